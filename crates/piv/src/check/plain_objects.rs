//! The unsigned objects: the Card Capability Container (SP 800-73-4 part 1, 3.1.1), the
//! discovery object, the key history object and the printed information (3.3.2 to 3.3.4): their structure
//! and the few values the standard fixes.

use super::containers::{self, CCC, DISCOVERY, KEY_HISTORY, PRINTED_INFORMATION};
use super::report::{ObjectReport, Status};
use crate::card::objects::PIV_AID;

/// The Card Capability Container.
pub fn check_ccc(value: &[u8], report: &mut ObjectReport) {
    const S: &str = "SP 800-73-4 part 1, 3.1.1";
    if let Some(elements) = containers::check_structure(&CCC, value, report) {
        if let Some(card_id) = containers::value_of(&elements, 0xF0) {
            if card_id.len() != 21 {
                report.error(
                    S,
                    format!("the Card Identifier is {} bytes, not 21", card_id.len()),
                );
            } else if card_id[..5] != [0xA0, 0x00, 0x00, 0x01, 0x16] {
                report.warning(
                    S,
                    "the Card Identifier does not begin with the GSC-RID A0 00 00 01 16",
                );
            } else {
                report.info(S, format!("card identifier {}", hex::encode_upper(card_id)));
            }
        }
        match containers::value_of(&elements, 0xF5) {
            Some([0x10]) | None => {}
            Some(other) => report.warning(
                S,
                format!("the Registered Data Model number is {other:02X?}, not 10 (PIV)"),
            ),
        }
    }
    report.settle(Status::Ok);
}

/// The discovery object (the content of tag 7E).
pub fn check_discovery(value: &[u8], report: &mut ObjectReport) {
    const S: &str = "SP 800-73-4 part 1, 3.3.3";
    if let Some(elements) = containers::check_structure(&DISCOVERY, value, report) {
        match containers::value_of(&elements, 0x4F) {
            Some(aid) if aid == PIV_AID => {}
            Some(aid) => report.error(
                S,
                format!("the AID is {}, not the PIV AID", hex::encode_upper(aid)),
            ),
            None => {}
        }
        match containers::value_of(&elements, 0x5F2F) {
            Some([first, second]) => {
                if first & 0x40 == 0 {
                    report.error(S, "the PIN usage policy does not say the PIV Card Application PIN satisfies the PIV access rules");
                }
                let global = first & 0x20 != 0;
                let occ = first & 0x10 != 0;
                report.info(
                    S,
                    format!(
                        "PIN usage policy {first:02X} {second:02X}: PIV PIN{}{}",
                        if global { ", global PIN" } else { "" },
                        if occ { ", on-card comparison" } else { "" }
                    ),
                );
            }
            Some(other) => report.error(
                S,
                format!("the PIN usage policy is {} bytes, not 2", other.len()),
            ),
            None => {}
        }
    }
    report.settle(Status::Ok);
}

/// The key history object.
pub fn check_key_history(value: &[u8], report: &mut ObjectReport) {
    const S: &str = "SP 800-73-4 part 1, 3.3.4";
    if let Some(elements) = containers::check_structure(&KEY_HISTORY, value, report) {
        let on = containers::value_of(&elements, 0xC1).and_then(|v| v.first().copied());
        let off = containers::value_of(&elements, 0xC2).and_then(|v| v.first().copied());
        let url = containers::value_of(&elements, 0xF3);
        if off.unwrap_or(0) > 0 && url.is_none() {
            report.error(
                S,
                "keys with off-card certificates are announced but there is no offCardCertURL",
            );
        }
        if off == Some(0) && url.is_some() {
            report.error(
                S,
                "an offCardCertURL is given though no key has an off-card certificate",
            );
        }
        if on.unwrap_or(0) + off.unwrap_or(0) > 20 {
            report.error(S, "more than 20 retired keys are announced");
        }
    }
    report.settle(Status::Ok);
}

/// The printed information (read after the PIN).
pub fn check_printed_information(value: &[u8], report: &mut ObjectReport) {
    const S: &str = "SP 800-73-4 part 1, 3.3.2";
    if let Some(elements) = containers::check_structure(&PRINTED_INFORMATION, value, report) {
        for e in &elements {
            if e.tag != 0xFE && !e.value.iter().all(|b| (0x20..0x7F).contains(b)) {
                report.error(
                    S,
                    format!("element {:02X} is not printable ASCII text", e.tag),
                );
            }
        }
        if let Some(date) = containers::value_of(&elements, 0x04) {
            // YYYYMMMDD, e.g. 2026DEC07.
            let ok = date.len() == 9
                && date[..4].iter().all(u8::is_ascii_digit)
                && date[4..7].iter().all(u8::is_ascii_uppercase)
                && date[7..].iter().all(u8::is_ascii_digit);
            if !ok {
                report.error(S, "the expiration date is not YYYYMMMDD (e.g. 2026DEC07)");
            }
        }
    }
    report.settle(Status::Ok);
}

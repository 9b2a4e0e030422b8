//! The Card Holder Unique Identifier (SP 800-73-4 part 1, 3.1.2): FASC-N, GUID, expiration date
//! and the issuer asymmetric signature, a detached CMS SignedData (id-PIV-CHUIDSecurityObject)
//! over the CHUID's elements before the signature, carrying the content signing certificate.

use super::certificates;
use super::cms::{self, Expect};
use super::containers::{self, CHUID};
use super::fascn;
use super::report::{ObjectReport, Status};
use crate::tlv;
use x509_cert::Certificate;

const SECTION: &str = "SP 800-73-4 part 1, 3.1.2";

/// What the rest of the check needs from the CHUID.
#[derive(Default)]
pub struct ChuidFacts {
    pub fasc_n: Option<Vec<u8>>,
    pub guid: Option<[u8; 16]>,
    /// `YYYYMMDD`.
    pub expiration: Option<String>,
    /// The content signing certificate that verified the CHUID's signature.
    pub content_signer: Option<Certificate>,
}

/// `8-4-4-4-12` hex form of a 16-byte UUID.
pub fn uuid_string(bytes: &[u8; 16]) -> String {
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Checks the CHUID value (the content of tag 53) as of `today` (`YYYYMMDD`).
pub fn check(value: &[u8], today: &str, now_unix: u64, report: &mut ObjectReport) -> ChuidFacts {
    let mut facts = ChuidFacts::default();
    let Some(elements) = containers::check_structure(&CHUID, value, report) else {
        report.settle(Status::Ok);
        return facts;
    };
    if containers::value_of(&elements, 0xEE).is_some() {
        report.warning(SECTION, "the Buffer Length element (EE) is deprecated");
    }
    for (tag, name) in [(0x32, "Organizational Identifier"), (0x33, "DUNS")] {
        if containers::value_of(&elements, tag).is_some() {
            report.warning(
                SECTION,
                format!("the {name} element ({tag:X}) is deprecated"),
            );
        }
    }

    if let Some(f) = containers::value_of(&elements, 0x30) {
        match fascn::decode(f) {
            Ok(decoded) => {
                let kind = if decoded.is_non_federal() {
                    " (non-federal issuer convention: agency, system and credential all nines)"
                } else {
                    ""
                };
                report.info(
                    SECTION,
                    format!("FASC-N: {}{kind}", fascn::summary(&decoded)),
                );
            }
            Err(e) => report.error("TIG SCEPACS, 6 (FASC-N)", format!("the FASC-N {e}")),
        }
        facts.fasc_n = Some(f.to_vec());
    }

    if let Some(g) = containers::value_of(&elements, 0x34) {
        match <[u8; 16]>::try_from(g) {
            Ok(guid) if guid.iter().all(|&b| b == 0) => report.warning(
                SECTION,
                "the GUID is all zeros: the card has no UUID (FIPS 201-3 asks every card for one)",
            ),
            Ok(guid) => {
                // RFC 4122: variant bits 10, a version in the high nibble of byte 6.
                if guid[8] & 0xC0 != 0x80 {
                    report.warning(
                        "RFC 4122, 4.1.1",
                        format!(
                            "the GUID {} is not an RFC 4122 UUID (variant bits)",
                            uuid_string(&guid)
                        ),
                    );
                } else {
                    report.info(SECTION, format!("GUID: urn:uuid:{}", uuid_string(&guid)));
                }
                facts.guid = Some(guid);
            }
            Err(_) => report.error(SECTION, format!("the GUID is {} bytes, not 16", g.len())),
        }
    }

    if let Some(e) = containers::value_of(&elements, 0x35) {
        match std::str::from_utf8(e) {
            Ok(date) if is_date(date) => {
                if date < today {
                    report.error(SECTION, format!("the card expired on {date}"));
                } else {
                    report.info(SECTION, format!("expiration date {date}"));
                }
                facts.expiration = Some(date.to_string());
            }
            _ => report.error(
                SECTION,
                format!("the expiration date {:02X?} is not YYYYMMDD", e),
            ),
        }
    }

    let Some(signature) = containers::value_of(&elements, 0x3E) else {
        report.settle(Status::Ok);
        return facts;
    };
    if signature.is_empty() {
        report.warning(
            SECTION,
            "the issuer asymmetric signature (3E) is empty: the CHUID is unsigned, so a reader cannot verify it",
        );
        report.settle(Status::Unsigned);
        return facts;
    }
    // The signed message: every element of the CHUID before the signature, as encoded.
    let position = elements
        .iter()
        .position(|e| e.tag == 0x3E)
        .unwrap_or(elements.len());
    let mut signed_content = Vec::new();
    for e in &elements[..position] {
        tlv::push(&mut signed_content, e.tag, e.value);
    }
    let signed = cms::check(
        signature,
        &Expect {
            content_type: cms::ID_PIV_CHUID,
            detached: Some(&signed_content),
            reference: SECTION,
            external_signer: None,
            require_certificate: true,
        },
        report,
    );
    if let Some(signer) = &signed.signer {
        certificates::check_content_signer(signer, now_unix, facts.expiration.as_deref(), report);
        if signed.verified {
            facts.content_signer = Some(signer.clone());
        }
    }
    report.settle(Status::Ok);
    facts
}

/// Eight digits that make a calendar date.
pub fn is_date(s: &str) -> bool {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let month: u32 = s[4..6].parse().unwrap_or(0);
    let day: u32 = s[6..8].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

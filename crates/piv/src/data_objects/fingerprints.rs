//! The cardholder fingerprints (5FC103; SP 800-73-4 part 1, 3.1.4 and appendix A): tag BC
//! holding a signed CBEFF record (see [`super::cbeff`]) whose BDB is the INCITS 378-2004 minutiae
//! record of the two primary fingers, then the error detection code FE.
//!
//! The record comes from the enrolment system and was checked when it was imported; it is
//! written as it is. Only its header is read here, for the CBEFF quality: the lowest finger
//! quality of its views (SP 800-76-2 allows 20, 40, 60, 80 or 100 there), or "not set" when a
//! view has another value.

use super::cbeff::{self, Modality};
use super::ObjectError;
use crate::tlv;
use tessera_core::fips201::{CardObjects, ContentSigner, Fingerprints};

pub const FORMAT_IDENTIFIER: [u8; 4] = *b"FMR\0";
pub const VERSION: [u8; 4] = *b" 20\0";
/// The record header of INCITS 378-2004 with a 2-byte record length; a record length of 0
/// there is followed by a 4-byte one, making the header 30 bytes.
const RECORD_HEADER_LEN: usize = 26;
const LONG_RECORD_HEADER_LEN: usize = 30;
pub const TAG_BIOMETRIC: u32 = 0xBC;
pub const TAG_ERROR_DETECTION_CODE: u32 = 0xFE;

const OBJECT: &str = "fingerprints";

/// The CBEFF quality of a minutiae record: the lowest finger quality of its views.
pub fn quality(record: &[u8]) -> Result<i8, ObjectError> {
    let bad = |detail: &str| ObjectError::new(OBJECT, format!("the INCITS 378 record {detail}"));
    if record.get(..4) != Some(&FORMAT_IDENTIFIER[..]) || record.get(4..8) != Some(&VERSION[..]) {
        return Err(bad("does not start with FMR, version 20"));
    }
    let header_len = match record.get(8..10) {
        Some([0, 0]) => LONG_RECORD_HEADER_LEN,
        _ => RECORD_HEADER_LEN,
    };
    let views = usize::from(
        *record
            .get(header_len - 2)
            .ok_or_else(|| bad("is cut short"))?,
    );
    if views == 0 {
        return Err(bad("has no finger view"));
    }
    let mut at = header_len;
    let mut lowest = u8::MAX;
    for _ in 0..views {
        // Finger position, view number and impression type, finger quality, minutiae count.
        let view = record
            .get(at..at + 4)
            .ok_or_else(|| bad("ends inside a finger view"))?;
        lowest = lowest.min(view[2]);
        at += 4 + 6 * usize::from(view[3]);
        let extended = record
            .get(at..at + 2)
            .ok_or_else(|| bad("ends inside a finger view"))?;
        at += 2 + usize::from(u16::from_be_bytes([extended[0], extended[1]]));
    }
    if at != record.len() {
        return Err(bad("does not end after its last finger view"));
    }
    Ok(match lowest {
        20 | 40 | 60 | 80 | 100 => lowest as i8,
        _ => cbeff::QUALITY_NOT_SET,
    })
}

/// The value of the fingerprints object: BC (the signed CBEFF record), FE.
pub fn object(
    fingerprints: &Fingerprints,
    objects: &CardObjects,
    signer: &dyn ContentSigner,
    sb_len_guess: &mut u16,
) -> Result<Vec<u8>, ObjectError> {
    let quality = quality(&fingerprints.incits_378)?;
    let cbeff = cbeff::signed_record(
        Modality::FingerMinutiae,
        &fingerprints.incits_378,
        quality,
        objects,
        signer,
        sb_len_guess,
    )?;
    let mut out = tlv::encode(TAG_BIOMETRIC, &cbeff);
    tlv::push(&mut out, TAG_ERROR_DETECTION_CODE, &[]);
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data_objects::cbeff::tests::card_objects;
    use crate::data_objects::test_signer::RecordingSigner;

    /// Two views (right and left index, qualities `q1` and `q2`) of two minutiae each.
    pub(crate) fn record(q1: u8, q2: u8) -> Vec<u8> {
        let mut r = FORMAT_IDENTIFIER.to_vec();
        r.extend_from_slice(&VERSION);
        r.extend_from_slice(&[0, 0]); // record length, set below
        r.extend_from_slice(&[0x00, 0x33, 0x00, 0x01]); // product identifier
        r.extend_from_slice(&[0x80, 0x01]); // capture equipment
        r.extend_from_slice(&[0x01, 0xF4, 0x01, 0xF4]); // image size 500 x 500
        r.extend_from_slice(&[0x00, 0xC5, 0x00, 0xC5]); // 197 pixels per cm
        r.extend_from_slice(&[2, 0]); // two views, reserved
        for (finger, q) in [(2u8, q1), (7u8, q2)] {
            r.extend_from_slice(&[finger, 0x00, q, 2]);
            r.extend_from_slice(&[0x40, 0x64, 0x00, 0xC8, 0x20, 60]);
            r.extend_from_slice(&[0x80, 0x96, 0x00, 0x50, 0x40, 80]);
            r.extend_from_slice(&[0, 0]); // no extended data
        }
        let len = r.len() as u16;
        r[8..10].copy_from_slice(&len.to_be_bytes());
        r
    }

    #[test]
    fn quality_is_the_lowest_view_quality() {
        assert_eq!(quality(&record(80, 60)).unwrap(), 60);
        assert_eq!(quality(&record(100, 100)).unwrap(), 100);
        assert_eq!(quality(&record(73, 100)).unwrap(), -1);
    }

    #[test]
    fn a_damaged_record_is_refused() {
        let good = record(80, 60);
        assert!(quality(&good[..good.len() - 1]).is_err());
        let mut longer = good.clone();
        longer.push(0);
        assert!(quality(&longer).is_err());
        let mut wrong = good;
        wrong[0] = b'X';
        assert!(quality(&wrong).is_err());
    }

    #[test]
    fn object_carries_the_record_as_it_was_enrolled() {
        let signer = RecordingSigner::new();
        let prints = Fingerprints {
            incits_378: record(80, 60),
            synthetic: true,
        };
        let value = object(&prints, &card_objects(), &signer, &mut 0).unwrap();
        let fields = tlv::parse_all(&value).unwrap();
        assert_eq!(fields[0].tag, 0xBC);
        assert_eq!((fields[1].tag, fields[1].value.len()), (0xFE, 0));
        let parsed = cbeff::parse(fields[0].value).unwrap();
        assert_eq!(parsed.format_type, 0x0201);
        assert_eq!(parsed.bdb, prints.incits_378);
        assert_eq!(parsed.header[36..41], [0, 0, 8, 0x80, 60]);
        assert_eq!(
            signer.requests().pop().unwrap().content,
            parsed.signed_content
        );
    }
}

//! The signed CBEFF record that carries PIV biometrics (SP 800-76-2, the table "Patron format PIV
//! specification"; SP 800-73-4 part 1, 3.1.4 and 3.1.5): an 88-byte header, the biometric
//! data block (BDB: an ISO/IEC 19794-5 facial record or an INCITS 378 minutiae record) and the
//! signature block (SB).
//!
//! The header, big-endian throughout:
//!
//! | offset | bytes | field | value here |
//! |---|---|---|---|
//! | 0 | 1 | patron header version | `03` |
//! | 1 | 1 | SBH security options | `0D` (b00001101: signed, not encrypted) |
//! | 2 | 4 | BDB length | length of the BDB |
//! | 6 | 2 | SB length | length of the SB |
//! | 8 | 2 | BDB format owner | `001B` (INCITS M1) |
//! | 10 | 2 | BDB format type | `0501` face image, `0201` finger minutiae |
//! | 12 | 8 | biometric creation date | `YYYYMMDDhhmmssZ`, two digits a byte, then `Z` |
//! | 20 | 16 | validity period | not before, not after, each encoded like the creation date |
//! | 36 | 3 | biometric type | `000002` face, `000008` finger |
//! | 39 | 1 | biometric data type | `20` raw (face), `80` processed (minutiae) |
//! | 40 | 1 | biometric data quality | signed: -2 not supported, -1 not set, else 0..100 |
//! | 41 | 18 | creator | ASCII, at most 17 characters, NUL-padded |
//! | 59 | 25 | FASC-N | the card's FASC-N, the CHUID's |
//! | 84 | 4 | reserved | `00000000` |
//!
//! The SB is a CMS SignedData, content detached, content type id-PIV-biometricObject, signed by
//! the content signing key with the pivFASC-N and entryUUID signed attributes (SP 800-76-2; SP
//! 800-73-4 part 1, "Card UUID", for entryUUID), without the certificate, which is the CHUID's. Its
//! message digest covers the header and the BDB, the header already carrying the SB's length.
//! (NIST's biomdi `piv.c` and GSA's piv-conformance read the header the same way.)

use super::ObjectError;
use tessera_core::fips201::{CardObjects, ContentSigner, ContentToSign, SignedContentType};

pub const HEADER_LEN: usize = 88;
pub const PATRON_HEADER_VERSION: u8 = 0x03;
/// b00001101: the record has a signature block and is not encrypted.
pub const SECURITY_OPTIONS_SIGNED: u8 = 0x0D;
/// The format owner of INCITS M1 (both 19794-5/INCITS 385 and INCITS 378 records).
pub const FORMAT_OWNER_INCITS_M1: u16 = 0x001B;
/// Quality "not supported by the BDB creator".
pub const QUALITY_NOT_SUPPORTED: i8 = -2;
/// Quality "not set".
pub const QUALITY_NOT_SET: i8 = -1;
/// Who made the record, in the creator field.
pub const CREATOR: &str = "Tessera";
/// Signing again with the header's SB length corrected converges at once for fixed-length
/// signatures (RSA). A DER ECDSA signature's length varies by a byte or two with what is signed;
/// a deterministic signer (RFC 6979) may have no SB length that reproduces itself for a given
/// header, so after [`ROUNDS_AT_ONE_TIME`] rounds the creation time moves on by a second, as it
/// would had the record been made a second later, and the lengths are drawn anew.
const MAX_SIGNING_ROUNDS: usize = 32;
const ROUNDS_AT_ONE_TIME: usize = 3;

/// What the record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Modality {
    /// An ISO/IEC 19794-5 facial image record (5FC108).
    FacialImage,
    /// An INCITS 378 finger minutiae record (5FC103).
    FingerMinutiae,
}

impl Modality {
    pub fn format_type(self) -> u16 {
        match self {
            Self::FacialImage => 0x0501,
            Self::FingerMinutiae => 0x0201,
        }
    }

    pub fn biometric_type(self) -> [u8; 3] {
        match self {
            Self::FacialImage => [0x00, 0x00, 0x02],
            Self::FingerMinutiae => [0x00, 0x00, 0x08],
        }
    }

    /// Raw for an image, processed for a template (the header's biometric data type).
    pub fn data_type(self) -> u8 {
        match self {
            Self::FacialImage => 0x20,
            Self::FingerMinutiae => 0x80,
        }
    }

    pub fn object_name(self) -> &'static str {
        match self {
            Self::FacialImage => "facial image",
            Self::FingerMinutiae => "fingerprints",
        }
    }
}

/// The fields of a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub modality: Modality,
    pub bdb_len: u32,
    pub sb_len: u16,
    pub created: [u8; 8],
    pub not_before: [u8; 8],
    pub not_after: [u8; 8],
    pub quality: i8,
    pub fasc_n: [u8; 25],
}

impl Header {
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.push(PATRON_HEADER_VERSION);
        out.push(SECURITY_OPTIONS_SIGNED);
        out.extend_from_slice(&self.bdb_len.to_be_bytes());
        out.extend_from_slice(&self.sb_len.to_be_bytes());
        out.extend_from_slice(&FORMAT_OWNER_INCITS_M1.to_be_bytes());
        out.extend_from_slice(&self.modality.format_type().to_be_bytes());
        out.extend_from_slice(&self.created);
        out.extend_from_slice(&self.not_before);
        out.extend_from_slice(&self.not_after);
        out.extend_from_slice(&self.modality.biometric_type());
        out.push(self.modality.data_type());
        out.extend_from_slice(&self.quality.to_be_bytes());
        let mut creator = [0u8; 18];
        creator[..CREATOR.len()].copy_from_slice(CREATOR.as_bytes());
        out.extend_from_slice(&creator);
        out.extend_from_slice(&self.fasc_n);
        out.extend_from_slice(&[0; 4]);
        out.try_into()
            .expect("the header fields add up to 88 bytes")
    }
}

/// `YYYYMMDDhhmmssZ` as the header encodes it: each pair of digits as one binary byte (the
/// century and the year in the century taking one each), then the character `Z`.
pub fn encode_time(text: &str) -> Option<[u8; 8]> {
    let bytes = text.as_bytes();
    if bytes.len() != 15 || bytes[14] != b'Z' || !bytes[..14].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut out = [0u8; 8];
    for (i, pair) in bytes[..14].chunks(2).enumerate() {
        out[i] = (pair[0] - b'0') * 10 + (pair[1] - b'0');
    }
    out[7] = b'Z';
    let (month, day, hour, minute, second) = (out[2], out[3], out[4], out[5], out[6]);
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    valid.then_some(out)
}

/// An encoded time one second later.
fn next_second(t: [u8; 8]) -> [u8; 8] {
    let [century, year, month, day, hour, minute, second, z] = t;
    let full_year = u32::from(century) * 100 + u32::from(year);
    let leap = full_year.is_multiple_of(4)
        && (!full_year.is_multiple_of(100) || full_year.is_multiple_of(400));
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let mut out = [century, year, month, day, hour, minute, second + 1, z];
    for (i, limit) in [(6, 60), (5, 60), (4, 24)] {
        if out[i] == limit {
            out[i] = 0;
            out[i - 1] += 1;
        }
    }
    if out[3] > days {
        out[3] = 1;
        out[2] += 1;
    }
    if out[2] > 12 {
        out[2] = 1;
        out[1] += 1;
        if out[1] == 100 {
            out[1] = 0;
            out[0] += 1;
        }
    }
    out
}

/// The header, BDB and SB of a signed record for the card `objects` describes: created at
/// `objects.created`, valid until the end of the card's expiry day, signed by `signer` with the
/// card's FASC-N and UUID as signed attributes.
///
/// `sb_len_guess` is the SB length to try first (0 when unknown); it is updated with the length
/// the signer produced, so that the next record of the same card is usually signed only once.
pub fn signed_record(
    modality: Modality,
    bdb: &[u8],
    quality: i8,
    objects: &CardObjects,
    signer: &dyn ContentSigner,
    sb_len_guess: &mut u16,
) -> Result<Vec<u8>, ObjectError> {
    let object = modality.object_name();
    let created = encode_time(&objects.created).ok_or_else(|| {
        ObjectError::new(
            object,
            format!(
                "the creation time {:?} is not YYYYMMDDhhmmssZ",
                objects.created
            ),
        )
    })?;
    let not_after = encode_time(&format!("{}235959Z", objects.expires)).ok_or_else(|| {
        ObjectError::new(
            object,
            format!("the card expiry {:?} is not YYYYMMDD", objects.expires),
        )
    })?;
    let bdb_len = u32::try_from(bdb.len())
        .map_err(|_| ObjectError::new(object, "the biometric data is too long"))?;
    let mut header = Header {
        modality,
        bdb_len,
        sb_len: *sb_len_guess,
        created,
        not_before: created,
        not_after,
        quality,
        fasc_n: objects.fasc_n,
    };
    for round in 0..MAX_SIGNING_ROUNDS {
        if round > 0 && round % ROUNDS_AT_ONE_TIME == 0 {
            header.created = next_second(header.created);
            header.not_before = header.created;
        }
        let mut record = header.to_bytes().to_vec();
        record.extend_from_slice(bdb);
        let sb = signer
            .sign(&ContentToSign {
                content_type: SignedContentType::Biometric,
                content: &record,
                fasc_n: Some(objects.fasc_n),
                uuid: Some(objects.guid),
                include_certificate: false,
            })
            .map_err(|e| ObjectError::signing(object, e))?;
        let sb_len = u16::try_from(sb.len())
            .map_err(|_| ObjectError::new(object, "the signature block is too long"))?;
        *sb_len_guess = sb_len;
        if sb_len == header.sb_len {
            record.extend_from_slice(&sb);
            return Ok(record);
        }
        header.sb_len = sb_len;
    }
    Err(ObjectError::new(
        object,
        "the signature's length kept changing between signatures",
    ))
}

/// A record read back, borrowed from its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedRecord<'a> {
    pub header: &'a [u8],
    pub bdb: &'a [u8],
    pub sb: &'a [u8],
    /// Header and BDB: what the SB's message digest covers.
    pub signed_content: &'a [u8],
    pub format_type: u16,
    pub fasc_n: &'a [u8],
}

/// Splits a record by the lengths its header gives; they must add up to the record's length.
pub fn parse(record: &[u8]) -> Result<ParsedRecord<'_>, &'static str> {
    if record.len() < HEADER_LEN {
        return Err("the record is shorter than its 88-byte header");
    }
    let header = &record[..HEADER_LEN];
    let bdb_len = u32::from_be_bytes(header[2..6].try_into().expect("4 bytes")) as usize;
    let sb_len = usize::from(u16::from_be_bytes([header[6], header[7]]));
    if HEADER_LEN
        .checked_add(bdb_len)
        .and_then(|n| n.checked_add(sb_len))
        != Some(record.len())
    {
        return Err("the header's BDB and SB lengths do not add up to the record's length");
    }
    let signed_end = HEADER_LEN + bdb_len;
    Ok(ParsedRecord {
        header,
        bdb: &record[HEADER_LEN..signed_end],
        sb: &record[signed_end..],
        signed_content: &record[..signed_end],
        format_type: u16::from_be_bytes([header[10], header[11]]),
        fasc_n: &header[59..84],
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data_objects::test_signer::RecordingSigner;
    use tessera_core::fips201::FascN;

    pub(crate) fn card_objects() -> CardObjects {
        CardObjects {
            guid: [0x5A; 16],
            expires: "20301231".into(),
            fasc_n: FascN::non_federal().encode().unwrap(),
            created: "20261207191250Z".into(),
            chuid: true,
            ccc: false,
            printed_information: None,
            facial_image: None,
            fingerprints: None,
            security_object: false,
        }
    }

    #[test]
    fn times_are_encoded_two_digits_a_byte() {
        assert_eq!(
            encode_time("20261207191250Z"),
            Some([20, 26, 12, 7, 19, 12, 50, b'Z'])
        );
        assert_eq!(encode_time("20261207191250"), None);
        assert_eq!(encode_time("20261307191250Z"), None);
        assert_eq!(encode_time("2026120719125aZ"), None);
    }

    #[test]
    fn seconds_carry_into_minutes_days_and_years() {
        let next = |t: &str| next_second(encode_time(t).unwrap());
        assert_eq!(
            next("20261207191250Z"),
            encode_time("20261207191251Z").unwrap()
        );
        assert_eq!(
            next("20261207235959Z"),
            encode_time("20261208000000Z").unwrap()
        );
        assert_eq!(
            next("20280228235959Z"),
            encode_time("20280229000000Z").unwrap()
        );
        assert_eq!(
            next("20270228235959Z"),
            encode_time("20270301000000Z").unwrap()
        );
        assert_eq!(
            next("20991231235959Z"),
            encode_time("21000101000000Z").unwrap()
        );
    }

    #[test]
    fn header_bytes_field_by_field() {
        let objects = card_objects();
        let header = Header {
            modality: Modality::FacialImage,
            bdb_len: 0x0102_0304,
            sb_len: 0x0506,
            created: encode_time("20261207191250Z").unwrap(),
            not_before: encode_time("20261207191250Z").unwrap(),
            not_after: encode_time("20301231235959Z").unwrap(),
            quality: QUALITY_NOT_SUPPORTED,
            fasc_n: objects.fasc_n,
        };
        let bytes = header.to_bytes();
        assert_eq!(bytes.len(), 88);
        assert_eq!(
            bytes[..12],
            [3, 0x0D, 1, 2, 3, 4, 5, 6, 0x00, 0x1B, 0x05, 0x01]
        );
        assert_eq!(bytes[12..20], [20, 26, 12, 7, 19, 12, 50, b'Z']);
        assert_eq!(bytes[20..28], bytes[12..20]);
        assert_eq!(bytes[28..36], [20, 30, 12, 31, 23, 59, 59, b'Z']);
        assert_eq!(bytes[36..41], [0, 0, 2, 0x20, 0xFE]);
        assert_eq!(&bytes[41..59], b"Tessera\0\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(bytes[59..84], objects.fasc_n);
        assert_eq!(bytes[84..], [0, 0, 0, 0]);

        let minutiae = Header {
            modality: Modality::FingerMinutiae,
            quality: 60,
            ..header
        }
        .to_bytes();
        assert_eq!(minutiae[10..12], [0x02, 0x01]);
        assert_eq!(minutiae[36..41], [0, 0, 8, 0x80, 60]);
    }

    #[test]
    fn the_signature_covers_header_and_bdb_with_the_final_sb_length() {
        let signer = RecordingSigner::new();
        let objects = card_objects();
        let bdb = b"FAC\0 a facial record".to_vec();
        let mut guess = 0;
        let record = signed_record(
            Modality::FacialImage,
            &bdb,
            QUALITY_NOT_SUPPORTED,
            &objects,
            &signer,
            &mut guess,
        )
        .unwrap();
        let parsed = parse(&record).unwrap();
        assert_eq!(parsed.bdb, bdb);
        assert_eq!(usize::from(guess), parsed.sb.len());
        let requests = signer.requests();
        // Unknown SB length: the first signature had 0 in the header, the second the real one.
        assert_eq!(requests.len(), 2);
        let last = requests.last().unwrap();
        assert_eq!(last.content, parsed.signed_content);
        assert_eq!(last.content_type, SignedContentType::Biometric);
        assert_eq!(last.fasc_n, Some(objects.fasc_n));
        assert_eq!(last.uuid, Some(objects.guid));
        assert!(!last.include_certificate);
        assert_eq!(parsed.sb, signer.signature_for(parsed.signed_content));
        assert_eq!(parsed.fasc_n, objects.fasc_n);

        // With the length known, one signature is enough.
        let again = RecordingSigner::new();
        signed_record(
            Modality::FacialImage,
            &bdb,
            -2,
            &objects,
            &again,
            &mut guess,
        )
        .unwrap();
        assert_eq!(again.requests().len(), 1);
    }

    /// The test signer is deterministic, like RFC 6979 ECDSA: for some records no SB length
    /// reproduces itself and the creation time has to move on.
    #[test]
    fn a_signature_of_varying_length_settles() {
        let signer = RecordingSigner::varying();
        let mut guess = 0;
        for n in 0..20u8 {
            let bdb = vec![n; 40];
            let record = signed_record(
                Modality::FingerMinutiae,
                &bdb,
                40,
                &card_objects(),
                &signer,
                &mut guess,
            )
            .unwrap();
            let parsed = parse(&record).unwrap();
            assert_eq!(parsed.sb, signer.signature_for(parsed.signed_content));
        }
    }

    #[test]
    fn bad_dates_and_lengths_are_refused() {
        let mut objects = card_objects();
        objects.expires = "2030-12".into();
        let signer = RecordingSigner::new();
        assert!(signed_record(Modality::FacialImage, b"x", -2, &objects, &signer, &mut 0).is_err());
        assert!(signer.requests().is_empty());
        assert!(parse(&[0; 87]).is_err());
        let mut record = card_header_only();
        record.push(0);
        assert!(parse(&record).is_err());
    }

    fn card_header_only() -> Vec<u8> {
        Header {
            modality: Modality::FacialImage,
            bdb_len: 0,
            sb_len: 0,
            created: [0; 8],
            not_before: [0; 8],
            not_after: [0; 8],
            quality: -2,
            fasc_n: [0; 25],
        }
        .to_bytes()
        .to_vec()
    }
}

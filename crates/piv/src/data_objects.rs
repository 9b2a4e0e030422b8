//! The contents of the PIV data objects the issuer writes (SP 800-73-4 part 1, appendix A): CHUID
//! with its FASC-N, Card Capability Container, certificate objects and printed information.

use crate::tlv;
use tessera_core::ports::PrintedInformation;

/// FASC-N field values of a non-federal issuer (SP 800-73-4 part 1, 3.1.2: agency code 9999,
/// system code 9999, credential number 999999), with organizational category 3 (commercial
/// enterprise): the FASC-N PIV-I cards and YubiKey's default CHUID carry.
pub const NON_FEDERAL_FASC_N_FIELDS: FascN<'static> = FascN {
    agency_code: "9999",
    system_code: "9999",
    credential_number: "999999",
    credential_series: "0",
    individual_credential_issue: "1",
    person_identifier: "0000000000",
    organizational_category: "3",
    organizational_identifier: "0000",
    person_association_category: "1",
};

/// The fields of a Federal Agency Smart Credential Number (TIG SCEPACS), all decimal digits.
#[derive(Clone, Copy, Debug)]
pub struct FascN<'a> {
    pub agency_code: &'a str,
    pub system_code: &'a str,
    pub credential_number: &'a str,
    pub credential_series: &'a str,
    pub individual_credential_issue: &'a str,
    pub person_identifier: &'a str,
    pub organizational_category: &'a str,
    pub organizational_identifier: &'a str,
    pub person_association_category: &'a str,
}

const START_SENTINEL: u8 = 0x0B;
const FIELD_SEPARATOR: u8 = 0x0D;
const END_SENTINEL: u8 = 0x0F;

impl FascN<'_> {
    /// The 25-byte encoding: 40 characters of 4 data bits (least significant first) and an odd
    /// parity bit, ending with a longitudinal redundancy character.
    ///
    /// Returns `None` if a field has the wrong number of digits.
    pub fn encode(&self) -> Option<[u8; 25]> {
        let fields: [(&str, usize); 9] = [
            (self.agency_code, 4),
            (self.system_code, 4),
            (self.credential_number, 6),
            (self.credential_series, 1),
            (self.individual_credential_issue, 1),
            (self.person_identifier, 10),
            (self.organizational_category, 1),
            (self.organizational_identifier, 4),
            (self.person_association_category, 1),
        ];
        let mut chars = vec![START_SENTINEL];
        for (i, (value, len)) in fields.iter().enumerate() {
            if value.len() != *len || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            chars.extend(value.bytes().map(|b| b - b'0'));
            // Separators follow the first five fields; PI, OC, OI and POA run together.
            if i < 5 {
                chars.push(FIELD_SEPARATOR);
            }
        }
        chars.push(END_SENTINEL);
        let lrc = chars.iter().fold(0u8, |acc, c| acc ^ c);
        chars.push(lrc);

        let mut out = [0u8; 25];
        let mut bit = 0usize;
        for c in chars {
            let parity = u8::from(c.count_ones() % 2 == 0);
            let five = [c & 1, (c >> 1) & 1, (c >> 2) & 1, (c >> 3) & 1, parity];
            for b in five {
                if b == 1 {
                    out[bit / 8] |= 0x80 >> (bit % 8);
                }
                bit += 1;
            }
        }
        Some(out)
    }
}

/// The value (content of tag 53) of a Card Holder Unique Identifier.
pub fn chuid(guid: [u8; 16], expires: &str) -> Vec<u8> {
    let fasc_n = NON_FEDERAL_FASC_N_FIELDS
        .encode()
        .expect("the constant FASC-N fields have the right lengths");
    let mut out = tlv::encode(0x30, &fasc_n);
    tlv::push(&mut out, 0x34, &guid);
    tlv::push(&mut out, 0x35, expires.as_bytes());
    // An unsigned CHUID: the issuer asymmetric signature is present but empty.
    tlv::push(&mut out, 0x3E, &[]);
    tlv::push(&mut out, 0xFE, &[]);
    out
}

/// GSC-IS registered application provider of the CCC card identifier, then manufacturer FF
/// (unspecified) and card type 02 (Java Card), as SP 800-73-4 part 1, table 8 describes it.
const CCC_CARD_ID_PREFIX: [u8; 7] = [0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02];

/// The value of a Card Capability Container.
pub fn ccc(card_id: [u8; 14]) -> Vec<u8> {
    let mut identifier = CCC_CARD_ID_PREFIX.to_vec();
    identifier.extend_from_slice(&card_id);
    let mut out = tlv::encode(0xF0, &identifier);
    tlv::push(&mut out, 0xF1, &[0x21]); // capability container version
    tlv::push(&mut out, 0xF2, &[0x21]); // capability grammar version
    tlv::push(&mut out, 0xF3, &[]); // applications CardURL
    tlv::push(&mut out, 0xF4, &[0x00]); // PKCS#15
    tlv::push(&mut out, 0xF5, &[0x10]); // registered data model number
    for tag in [0xF6, 0xF7, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE] {
        tlv::push(&mut out, tag, &[]);
    }
    out
}

/// The value of a certificate object: the DER certificate, CertInfo 00 (not compressed), no LRC.
pub fn certificate_object(der: &[u8]) -> Vec<u8> {
    let mut out = tlv::encode(0x70, der);
    tlv::push(&mut out, 0x71, &[0x00]);
    tlv::push(&mut out, 0xFE, &[]);
    out
}

/// The DER certificate inside a certificate object, if it has one and it is not compressed.
pub fn certificate_from_object(value: &[u8]) -> Option<Vec<u8>> {
    let fields = tlv::parse_all(value).ok()?;
    let compressed = fields
        .iter()
        .find(|t| t.tag == 0x71)
        .and_then(|t| t.value.first())
        .is_some_and(|info| info & 0x01 != 0);
    if compressed {
        return None;
    }
    fields
        .iter()
        .find(|t| t.tag == 0x70)
        .map(|t| t.value.to_vec())
}

/// Cuts `text` to at most `max` bytes without splitting a character.
fn fit(text: &str, max: usize) -> &[u8] {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text.as_bytes()[..end]
}

/// The value of the printed information object, each field cut to its maximum length.
pub fn printed_information(info: &PrintedInformation) -> Vec<u8> {
    let mut out = tlv::encode(0x01, fit(&info.name, 125));
    tlv::push(&mut out, 0x02, fit(&info.employee_affiliation, 20));
    tlv::push(&mut out, 0x04, fit(&info.expiration_date, 9));
    tlv::push(&mut out, 0x05, fit(&info.agency_card_serial, 20));
    tlv::push(&mut out, 0x06, fit(&info.issuer_identification, 15));
    if !info.organization_line_1.is_empty() {
        tlv::push(&mut out, 0x07, fit(&info.organization_line_1, 20));
    }
    if !info.organization_line_2.is_empty() {
        tlv::push(&mut out, 0x08, fit(&info.organization_line_2, 20));
    }
    tlv::push(&mut out, 0xFE, &[]);
    out
}

/// Reads a printed information object back (unknown tags are ignored).
pub fn parse_printed_information(value: &[u8]) -> Option<PrintedInformation> {
    let mut info = PrintedInformation::default();
    for t in tlv::parse_all(value).ok()? {
        let text = String::from_utf8_lossy(t.value).into_owned();
        match t.tag {
            0x01 => info.name = text,
            0x02 => info.employee_affiliation = text,
            0x04 => info.expiration_date = text,
            0x05 => info.agency_card_serial = text,
            0x06 => info.issuer_identification = text,
            0x07 => info.organization_line_1 = text,
            0x08 => info.organization_line_2 = text,
            _ => {}
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_federal_fasc_n() {
        let bytes = NON_FEDERAL_FASC_N_FIELDS.encode().unwrap();
        // The FASC-N of agency 9999, system 9999, credential 999999 found on PIV-I cards.
        assert_eq!(
            hex::encode_upper(bytes),
            "D4E739DA739CED39CE739D836858210842108421C84210C3EB"
        );
        let mut bad = NON_FEDERAL_FASC_N_FIELDS;
        bad.agency_code = "99";
        assert!(bad.encode().is_none());
    }

    #[test]
    fn chuid_layout() {
        let value = chuid([0x11; 16], "20301231");
        let fields = tlv::parse_all(&value).unwrap();
        let tags: Vec<u32> = fields.iter().map(|t| t.tag).collect();
        assert_eq!(tags, [0x30, 0x34, 0x35, 0x3E, 0xFE]);
        assert_eq!(fields[0].value.len(), 25);
        assert_eq!(fields[2].value, b"20301231");
    }

    #[test]
    fn ccc_layout() {
        let value = ccc([7; 14]);
        let f0 = tlv::find(&value, 0xF0).unwrap();
        assert_eq!(f0.len(), 21);
        assert_eq!(f0[..7], CCC_CARD_ID_PREFIX);
        assert_eq!(tlv::find(&value, 0xF5), Some(&[0x10u8][..]));
        assert_eq!(tlv::find(&value, 0xFE), Some(&[][..]));
    }

    #[test]
    fn certificate_object_round_trip() {
        let object = certificate_object(&[0x30, 0x03, 1, 2, 3]);
        assert_eq!(object[object.len() - 5..], [0x71, 0x01, 0x00, 0xFE, 0x00]);
        assert_eq!(
            certificate_from_object(&object).unwrap(),
            [0x30, 0x03, 1, 2, 3]
        );
    }

    #[test]
    fn printed_information_is_cut_to_size() {
        let info = PrintedInformation {
            name: "Jane Doe".into(),
            employee_affiliation: "Employee of a very long department name".into(),
            expiration_date: "2030DEC31".into(),
            agency_card_serial: "12345".into(),
            issuer_identification: "Tessera".into(),
            organization_line_1: "Example Org".into(),
            organization_line_2: String::new(),
        };
        let value = printed_information(&info);
        let back = parse_printed_information(&value).unwrap();
        assert_eq!(back.name, "Jane Doe");
        assert_eq!(back.employee_affiliation.len(), 20);
        assert_eq!(back.expiration_date, "2030DEC31");
        assert!(tlv::find(&value, 0x08).is_none());
        assert_eq!(fit("ééé", 3), "é".as_bytes());
    }
}

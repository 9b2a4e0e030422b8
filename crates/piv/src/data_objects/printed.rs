//! The printed information object (5FC109; SP 800-73-4 part 1, 3.3.1 and appendix A):
//! the text printed on the card, each field cut to its maximum length. Unsigned: the
//! Security Object protects it.

use crate::tlv;
use tessera_core::ports::PrintedInformation;

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

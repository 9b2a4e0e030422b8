//! The Card Capability Container (5FC107; SP 800-73-4 part 1, 3.1.1 and appendix A, table 8):
//! kept for GSC-IS applications; PIV only requires its data model number (10).

use crate::tlv;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ccc_layout() {
        let value = ccc([7; 14]);
        let f0 = tlv::find(&value, 0xF0).unwrap();
        assert_eq!(f0.len(), 21);
        assert_eq!(f0[..7], CCC_CARD_ID_PREFIX);
        assert_eq!(tlv::find(&value, 0xF5), Some(&[0x10u8][..]));
        assert_eq!(tlv::find(&value, 0xFE), Some(&[][..]));
    }
}

//! The certificate objects of the key slots (5FC105, 5FC10A, 5FC10B, 5FC101; SP 800-73-4 part 1,
//! appendix A) and Yubico's attestation object, which has the same layout.

use crate::tlv;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_object_round_trip() {
        let object = certificate_object(&[0x30, 0x03, 1, 2, 3]);
        assert_eq!(object[object.len() - 5..], [0x71, 0x01, 0x00, 0xFE, 0x00]);
        assert_eq!(
            certificate_from_object(&object).unwrap(),
            [0x30, 0x03, 1, 2, 3]
        );
    }
}

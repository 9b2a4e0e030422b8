//! Turns the public-key template a card returns (tag 7F49) into a DER SubjectPublicKeyInfo, the
//! form certificate authorities take.

use crate::tlv;
use spki::EncodePublicKey;
use tessera_core::model::KeyAlgorithm;

/// Converts the response of GENERATE ASYMMETRIC KEY PAIR into a SubjectPublicKeyInfo.
pub fn spki_from_template(algorithm: KeyAlgorithm, response: &[u8]) -> Result<Vec<u8>, String> {
    let (outer, _) = tlv::parse_one(response).map_err(|e| e.to_string())?;
    if outer.tag != 0x7F49 {
        return Err(format!("expected tag 7F49, found {:X}", outer.tag));
    }
    let inner = outer.value;
    let field = |tag: u32| {
        tlv::find(inner, tag).ok_or_else(|| format!("the public key template has no tag {tag:02X}"))
    };
    let document = match algorithm {
        KeyAlgorithm::EccP256 => p256::PublicKey::from_sec1_bytes(field(0x86)?)
            .map_err(|_| "not a P-256 point".to_string())?
            .to_public_key_der(),
        KeyAlgorithm::EccP384 => p384::PublicKey::from_sec1_bytes(field(0x86)?)
            .map_err(|_| "not a P-384 point".to_string())?
            .to_public_key_der(),
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 => {
            let bits = if algorithm == KeyAlgorithm::Rsa2048 {
                2048
            } else {
                3072
            };
            let n = rsa::BigUint::from_bytes_be(field(0x81)?);
            let e = rsa::BigUint::from_bytes_be(field(0x82)?);
            // Checked before RsaPublicKey::new, which refuses moduli above 4096 bits with a
            // less helpful message; the exact size catches a card that ignored the algorithm.
            if n.bits() != bits {
                return Err(format!("the RSA modulus is not {bits} bits"));
            }
            let key = rsa::RsaPublicKey::new(n, e).map_err(|e| e.to_string())?;
            key.to_public_key_der()
        }
    };
    document
        .map(|d| d.as_bytes().to_vec())
        .map_err(|e| e.to_string())
}

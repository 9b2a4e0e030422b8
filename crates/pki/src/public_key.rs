//! Checks the public keys that cards send before they go into a certificate.

use crate::error::PkiError;
use const_oid::db::rfc5912::{ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1};
use const_oid::ObjectIdentifier;
use der::asn1::UintRef;
use der::{Decode, Encode, Sequence};
use spki::SubjectPublicKeyInfoOwned;

#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// Parses a SubjectPublicKeyInfo and accepts EC P-256, EC P-384 (on-curve points) and RSA with a
/// 2048-, 3072- or 4096-bit modulus.
pub(crate) fn parse_card_key(der: &[u8]) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
    let bad = |detail: &str| PkiError::UnsupportedPublicKey(detail.to_owned());
    let spki = SubjectPublicKeyInfoOwned::from_der(der)
        .map_err(|_| bad("it is not a DER SubjectPublicKeyInfo"))?;
    // Re-encoding must give the same bytes, so the certificate carries exactly what the card sent.
    if spki.to_der()? != der {
        return Err(bad("it is not in canonical DER"));
    }
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| bad("the key bit string has unused bits"))?;
    match spki.algorithm.oid {
        ID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .ok_or_else(|| bad("the EC key does not name its curve"))?;
            let valid = match curve {
                SECP_256_R_1 => p256::PublicKey::from_sec1_bytes(point).is_ok(),
                SECP_384_R_1 => p384::PublicKey::from_sec1_bytes(point).is_ok(),
                _ => return Err(bad(&format!("EC curve {curve} is not supported"))),
            };
            if !valid {
                return Err(bad("the EC point is not on the curve"));
            }
        }
        RSA_ENCRYPTION => {
            let key = RsaPublicKey::from_der(point).map_err(|_| bad("malformed RSA public key"))?;
            let n = key.modulus.as_bytes();
            let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
            if ![2048, 3072, 4096].contains(&bits) {
                return Err(bad(&format!(
                    "an RSA modulus of {bits} bits is not supported"
                )));
            }
            let e = key.public_exponent.as_bytes();
            if e.last().is_none_or(|b| b & 1 == 0) || (e.len() == 1 && e[0] < 3) {
                return Err(bad("the RSA public exponent is invalid"));
            }
        }
        other => return Err(bad(&format!("key algorithm {other} is not supported"))),
    }
    Ok(spki)
}

/// The key identifier of RFC 5280 section 4.2.1.2, method 1: SHA-1 of the subjectPublicKey bits.
pub(crate) fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    use sha1::{Digest, Sha1};
    Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

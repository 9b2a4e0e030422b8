//! Digests and signature verification for the checker: the algorithms SP 800-78-4 allows for
//! PIV keys and content signing (RSA 2048/3072 with PKCS #1 v1.5 or PSS, ECDSA on P-256 and
//! P-384; SHA-256 and SHA-384), verified with a certificate's SubjectPublicKeyInfo.

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use sha2::Digest as _;
use spki::SubjectPublicKeyInfoOwned;

pub const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
pub const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
pub const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
pub const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
pub const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
pub const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
pub const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
pub const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
pub const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
pub const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
pub const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
pub const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
pub const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// A digest algorithm the checker can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlg {
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            SHA256 => Some(Self::Sha256),
            SHA384 => Some(Self::Sha384),
            SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// The public key of a certificate, ready to verify.
#[derive(Clone, Debug)]
pub enum PublicKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
}

impl PublicKey {
    pub fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<Self, String> {
        let der = spki.to_der().map_err(|e| e.to_string())?;
        match spki.algorithm.oid {
            EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
                let point = spki.subject_public_key.raw_bytes();
                match curve {
                    Some(P256) => p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                        .map(Self::P256)
                        .map_err(|_| "the P-256 point is not on the curve".to_string()),
                    Some(P384) => p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                        .map(Self::P384)
                        .map_err(|_| "the P-384 point is not on the curve".to_string()),
                    other => Err(format!(
                        "the elliptic curve {} is not one SP 800-78-4 allows",
                        other
                            .map(|o| o.to_string())
                            .unwrap_or_else(|| "(none)".into())
                    )),
                }
            }
            RSA_ENCRYPTION => {
                use rsa::pkcs8::DecodePublicKey;
                rsa::RsaPublicKey::from_public_key_der(&der)
                    .map(Self::Rsa)
                    .map_err(|e| format!("the RSA key does not parse: {e}"))
            }
            other => Err(format!(
                "the key algorithm {other} is not one SP 800-78-4 allows"
            )),
        }
    }

    /// `RSA 2048`, `ECC P-256`, ...
    pub fn describe(&self) -> String {
        use rsa::traits::PublicKeyParts;
        match self {
            Self::P256(_) => "ECC P-256".into(),
            Self::P384(_) => "ECC P-384".into(),
            Self::Rsa(k) => format!("RSA {}", k.size() * 8),
        }
    }

    /// The PIV algorithm of the key, for GENERAL AUTHENTICATE.
    pub fn key_algorithm(&self) -> Option<tessera_core::model::KeyAlgorithm> {
        use rsa::traits::PublicKeyParts;
        use tessera_core::model::KeyAlgorithm;
        match self {
            Self::P256(_) => Some(KeyAlgorithm::EccP256),
            Self::P384(_) => Some(KeyAlgorithm::EccP384),
            Self::Rsa(k) if k.size() == 256 => Some(KeyAlgorithm::Rsa2048),
            Self::Rsa(k) if k.size() == 384 => Some(KeyAlgorithm::Rsa3072),
            Self::Rsa(_) => None,
        }
    }

    /// Verifies `signature` over a message whose digest is `digest` (computed with `alg`),
    /// under the signature algorithm `sig_alg` (an OID of ECDSA, PKCS #1 v1.5 or PSS).
    pub fn verify_digest(
        &self,
        sig_alg: &ObjectIdentifier,
        alg: DigestAlg,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<(), String> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        let ecdsa_ok = matches!(*sig_alg, ECDSA_SHA256 | ECDSA_SHA384 | ECDSA_SHA512);
        let bad = || "the signature does not verify".to_string();
        match self {
            Self::P256(key) if ecdsa_ok => {
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|_| "the ECDSA signature is not DER".to_string())?;
                key.verify_prehash(digest, &sig).map_err(|_| bad())
            }
            Self::P384(key) if ecdsa_ok => {
                let sig = p384::ecdsa::Signature::from_der(signature)
                    .map_err(|_| "the ECDSA signature is not DER".to_string())?;
                key.verify_prehash(digest, &sig).map_err(|_| bad())
            }
            Self::Rsa(key) => match *sig_alg {
                RSA_ENCRYPTION | SHA256_WITH_RSA | SHA384_WITH_RSA | SHA512_WITH_RSA => {
                    let scheme = match alg {
                        DigestAlg::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                        DigestAlg::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                        DigestAlg::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                    };
                    key.verify(scheme, digest, signature).map_err(|_| bad())
                }
                RSASSA_PSS => {
                    let scheme = match alg {
                        DigestAlg::Sha256 => rsa::Pss::new::<sha2::Sha256>(),
                        DigestAlg::Sha384 => rsa::Pss::new::<sha2::Sha384>(),
                        DigestAlg::Sha512 => rsa::Pss::new::<sha2::Sha512>(),
                    };
                    key.verify(scheme, digest, signature).map_err(|_| bad())
                }
                other => Err(format!(
                    "the signature algorithm {other} does not fit an RSA key"
                )),
            },
            _ => Err(format!(
                "the signature algorithm {sig_alg} does not fit an {} key",
                self.describe()
            )),
        }
    }
}

/// The digest a certificate signature algorithm implies.
pub fn digest_of_signature_alg(sig_alg: &ObjectIdentifier) -> Option<DigestAlg> {
    match *sig_alg {
        SHA256_WITH_RSA | ECDSA_SHA256 => Some(DigestAlg::Sha256),
        SHA384_WITH_RSA | ECDSA_SHA384 => Some(DigestAlg::Sha384),
        SHA512_WITH_RSA | ECDSA_SHA512 => Some(DigestAlg::Sha512),
        _ => None,
    }
}

/// Verifies that `issuer` signed `cert` (the certificate's own signature).
pub fn verify_certificate(
    cert: &x509_cert::Certificate,
    issuer: &x509_cert::Certificate,
) -> Result<(), String> {
    let key = PublicKey::from_spki(&issuer.tbs_certificate.subject_public_key_info)?;
    let sig_alg = cert.signature_algorithm.oid;
    let alg = match sig_alg {
        RSASSA_PSS => pss_digest(&cert.signature_algorithm).unwrap_or(DigestAlg::Sha256),
        _ => digest_of_signature_alg(&sig_alg)
            .ok_or_else(|| format!("the signature algorithm {sig_alg} is not supported"))?,
    };
    let tbs = cert.tbs_certificate.to_der().map_err(|e| e.to_string())?;
    let signature = cert
        .signature
        .as_bytes()
        .ok_or("the signature has unused bits")?;
    key.verify_digest(&sig_alg, alg, &alg.digest(&tbs), signature)
}

/// The hash of RSASSA-PSS parameters (RFC 4055): the first field, [0] hashAlgorithm.
fn pss_digest(alg: &spki::AlgorithmIdentifierOwned) -> Option<DigestAlg> {
    let params = alg.parameters.as_ref()?.to_der().ok()?;
    let (seq, _) = crate::tlv::parse_one(&params).ok()?;
    let (first, _) = crate::tlv::parse_one(seq.value).ok()?;
    if first.tag != 0xA0 {
        return None;
    }
    let (hash_alg, _) = crate::tlv::parse_one(first.value).ok()?;
    let (oid, _) = crate::tlv::parse_one(hash_alg.value).ok()?;
    let oid = ObjectIdentifier::from_bytes(oid.value).ok()?;
    DigestAlg::from_oid(&oid)
}

/// Parses a DER certificate.
pub fn parse_certificate(der: &[u8]) -> Result<x509_cert::Certificate, String> {
    x509_cert::Certificate::from_der(der)
        .map_err(|e| format!("the certificate does not parse: {e}"))
}

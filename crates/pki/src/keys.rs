//! CA signing keys behind a provider abstraction. The CA only sees [`CaKey`]: a public key, an
//! algorithm and a `sign` operation, so software keys, other curves, RSA and PKCS#11 tokens are
//! interchangeable.
//!
//! Software keys sign with aws-lc-rs, whose P-256 and RSA code (from BoringSSL) runs at OpenSSL's
//! speed; RustCrypto's pure-Rust P-256 signs several times slower. RustCrypto still generates the
//! keys (so that the injected [`Random`] drives generation; aws-lc-rs only uses its own RNG),
//! encodes PKCS#8, and verifies signatures independently of aws-lc-rs.

use crate::error::PkiError;
use crate::fsutil;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION,
    SECP_256_R_1, SECP_384_R_1, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
};
use der::asn1::AnyRef;
use der::Decode;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rand_core::{CryptoRng, RngCore};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use tessera_core::ports::{Random, Sealer};
use zeroize::Zeroizing;

/// The key types a CA can sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CaKeyAlgorithm {
    /// ECDSA on P-256, signing with SHA-256.
    EcdsaP256Sha256,
    /// ECDSA on P-384, signing with SHA-384.
    EcdsaP384Sha384,
    /// RSA 2048 with PKCS#1 v1.5 and SHA-256 (for relying parties that only take RSA).
    Rsa2048Sha256,
    /// RSA 3072 with PKCS#1 v1.5 and SHA-256.
    Rsa3072Sha256,
}

impl CaKeyAlgorithm {
    pub const ALL: [CaKeyAlgorithm; 4] = [
        Self::EcdsaP256Sha256,
        Self::EcdsaP384Sha384,
        Self::Rsa2048Sha256,
        Self::Rsa3072Sha256,
    ];

    /// The `signatureAlgorithm` that certificates signed with this key carry.
    pub fn signature_algorithm(self) -> AlgorithmIdentifierOwned {
        match self {
            // RFC 5758: the parameters of ecdsa-with-SHA* are absent.
            Self::EcdsaP256Sha256 => AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA_256,
                parameters: None,
            },
            Self::EcdsaP384Sha384 => AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA_384,
                parameters: None,
            },
            // RFC 4055: the parameters of sha256WithRSAEncryption are NULL, not absent.
            Self::Rsa2048Sha256 | Self::Rsa3072Sha256 => AlgorithmIdentifierOwned {
                oid: SHA_256_WITH_RSA_ENCRYPTION,
                parameters: Some(AnyRef::NULL.into()),
            },
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::EcdsaP256Sha256 => "ECDSA P-256 with SHA-256",
            Self::EcdsaP384Sha384 => "ECDSA P-384 with SHA-384",
            Self::Rsa2048Sha256 => "RSA 2048 with SHA-256",
            Self::Rsa3072Sha256 => "RSA 3072 with SHA-256",
        }
    }

    /// The short name used on the command line and in `ca.json`.
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdsaP256Sha256 => "p256",
            Self::EcdsaP384Sha384 => "p384",
            Self::Rsa2048Sha256 => "rsa2048",
            Self::Rsa3072Sha256 => "rsa3072",
        }
    }

    /// The modulus size of an RSA algorithm.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            Self::Rsa2048Sha256 => Some(2048),
            Self::Rsa3072Sha256 => Some(3072),
            Self::EcdsaP256Sha256 | Self::EcdsaP384Sha384 => None,
        }
    }

    fn from_rsa_bits(bits: usize) -> Option<Self> {
        match bits {
            2048 => Some(Self::Rsa2048Sha256),
            3072 => Some(Self::Rsa3072Sha256),
            _ => None,
        }
    }
}

impl fmt::Display for CaKeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CaKeyAlgorithm {
    type Err = PkiError;
    fn from_str(s: &str) -> Result<Self, PkiError> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                PkiError::Config(format!(
                    "unknown CA key algorithm {s:?} (expected p256, p384, rsa2048 or rsa3072)"
                ))
            })
    }
}

/// A CA signing key. Implementations keep the private part to themselves (in memory, or inside a
/// token) and never reveal it.
pub trait CaKey: Send + Sync {
    fn algorithm(&self) -> CaKeyAlgorithm;
    /// The public key as a DER SubjectPublicKeyInfo.
    fn public_key_der(&self) -> &[u8];
    /// Signs `message` (a DER TBSCertificate or TBSCertList) and returns the contents of the
    /// signature BIT STRING: a DER `Ecdsa-Sig-Value` for ECDSA, the raw signature for RSA.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError>;
}

/// Creates and finds CA keys by label (`root`, `issuing`). The software provider keeps sealed
/// PKCS#8 files; the PKCS#11 provider maps labels to token objects.
pub trait KeyProvider: Send + Sync {
    /// Whether a key with this label exists.
    fn exists(&self, label: &str) -> bool;
    /// Generates and persists a new key. Fails if the label is taken: CA keys are never replaced.
    fn generate(&self, label: &str, algorithm: CaKeyAlgorithm) -> Result<Arc<dyn CaKey>, PkiError>;
    fn load(&self, label: &str) -> Result<Arc<dyn CaKey>, PkiError>;
}

/// Software keys: generated in memory, stored as PKCS#8 DER sealed with the given [`Sealer`]
/// (the master key, or a key derived from a passphrase) in `<dir>/<label>.key.sealed`. The clear
/// PKCS#8 never touches the disk.
pub struct SoftwareKeyProvider {
    dir: PathBuf,
    sealer: Arc<dyn Sealer>,
    random: Arc<dyn Random>,
}

impl SoftwareKeyProvider {
    pub fn new(dir: &Path, sealer: Arc<dyn Sealer>, random: Arc<dyn Random>) -> Self {
        Self {
            dir: dir.to_owned(),
            sealer,
            random,
        }
    }

    pub fn key_path(&self, label: &str) -> PathBuf {
        self.dir.join(format!("{label}.key.sealed"))
    }

    /// Parses a PKCS#8 private key without storing it, to check it before an import.
    pub fn parse(&self, label: &str, pkcs8_der: &[u8]) -> Result<Arc<dyn CaKey>, PkiError> {
        Ok(Arc::new(SoftwareKey::from_pkcs8(label, pkcs8_der)?))
    }

    /// Stores an existing private key (PKCS#8 DER, e.g. an issuing CA key certified by an
    /// organisation's root) under `label`, sealed like a generated one. The key is parsed first,
    /// so an unusable key is refused before anything is written.
    pub fn import(&self, label: &str, pkcs8_der: &[u8]) -> Result<Arc<dyn CaKey>, PkiError> {
        let key = SoftwareKey::from_pkcs8(label, pkcs8_der)?;
        self.store(label, pkcs8_der)?;
        Ok(Arc::new(key))
    }

    fn store(&self, label: &str, pkcs8: &[u8]) -> Result<(), PkiError> {
        let sealed = self.sealer.seal(pkcs8);
        fsutil::create_new(&self.key_path(label), &sealed, fsutil::PRIVATE).map_err(|e| match e {
            PkiError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
                PkiError::KeyExists(label.to_owned())
            }
            e => e,
        })
    }
}

impl KeyProvider for SoftwareKeyProvider {
    fn exists(&self, label: &str) -> bool {
        self.key_path(label).exists()
    }

    fn generate(&self, label: &str, algorithm: CaKeyAlgorithm) -> Result<Arc<dyn CaKey>, PkiError> {
        if self.exists(label) {
            return Err(PkiError::KeyExists(label.to_owned()));
        }
        let pkcs8 = generate_pkcs8(algorithm, &*self.random)?;
        let key = SoftwareKey::from_pkcs8(label, &pkcs8)?;
        self.store(label, &pkcs8)?;
        Ok(Arc::new(key))
    }

    fn load(&self, label: &str) -> Result<Arc<dyn CaKey>, PkiError> {
        let path = self.key_path(label);
        if !path.exists() {
            return Err(PkiError::KeyNotFound {
                label: label.to_owned(),
                place: self.dir.display().to_string(),
            });
        }
        let sealed = fsutil::read(&path)?;
        let pkcs8 = Zeroizing::new(self.sealer.open(&sealed).map_err(|e| PkiError::BadKey {
            label: label.to_owned(),
            detail: e.message,
        })?);
        Ok(Arc::new(SoftwareKey::from_pkcs8(label, &pkcs8)?))
    }
}

impl fmt::Debug for SoftwareKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareKeyProvider")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// A new private key as PKCS#8 DER, in a buffer zeroized on drop. The RustCrypto keys used for
/// generation zeroize themselves on drop too.
fn generate_pkcs8(
    algorithm: CaKeyAlgorithm,
    random: &dyn Random,
) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let mut rng = RandomRng(random);
    let failed = |e: &dyn fmt::Display| PkiError::Signing(format!("key generation failed: {e}"));
    let document = match algorithm {
        CaKeyAlgorithm::EcdsaP256Sha256 => p256::SecretKey::random(&mut rng)
            .to_pkcs8_der()
            .map_err(|e| failed(&e))?,
        CaKeyAlgorithm::EcdsaP384Sha384 => p384::SecretKey::random(&mut rng)
            .to_pkcs8_der()
            .map_err(|e| failed(&e))?,
        CaKeyAlgorithm::Rsa2048Sha256 | CaKeyAlgorithm::Rsa3072Sha256 => {
            let bits = algorithm.rsa_bits().unwrap_or(3072);
            rsa::RsaPrivateKey::new(&mut rng, bits)
                .map_err(|e| failed(&e))?
                .to_pkcs8_der()
                .map_err(|e| failed(&e))?
        }
    };
    Ok(Zeroizing::new(document.as_bytes().to_vec()))
}

/// A private key held in memory by aws-lc-rs.
///
/// aws-lc-rs does not wipe its key structures on drop; the PKCS#8 bytes they were parsed from are
/// (Zeroizing). A CA key lives as long as the process, so the window this leaves is a freed heap
/// block after shutdown. docs/pki.md records the trade-off.
struct SoftwareKey {
    algorithm: CaKeyAlgorithm,
    public_der: Vec<u8>,
    signer: Signer,
    rng: aws_lc_rs::rand::SystemRandom,
}

enum Signer {
    Ecdsa(aws_lc_rs::signature::EcdsaKeyPair),
    Rsa(aws_lc_rs::signature::RsaKeyPair),
}

impl SoftwareKey {
    /// Parses a PKCS#8 private key of one of the [`CaKeyAlgorithm`]s.
    fn from_pkcs8(label: &str, pkcs8: &[u8]) -> Result<Self, PkiError> {
        use aws_lc_rs::signature::{self as sig, KeyPair};
        let bad = |detail: String| PkiError::BadKey {
            label: label.to_owned(),
            detail,
        };
        let info = p256::pkcs8::PrivateKeyInfo::from_der(pkcs8)
            .map_err(|_| bad("not a PKCS#8 private key".into()))?;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let (algorithm, signer) = match info.algorithm.oid {
            ID_EC_PUBLIC_KEY => {
                let curve = info
                    .algorithm
                    .parameters_oid()
                    .map_err(|_| bad("not an EC key with a named curve".into()))?;
                let (algorithm, ring_alg) = match curve {
                    SECP_256_R_1 => (
                        CaKeyAlgorithm::EcdsaP256Sha256,
                        &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
                    ),
                    SECP_384_R_1 => (
                        CaKeyAlgorithm::EcdsaP384Sha384,
                        &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
                    ),
                    other => return Err(bad(format!("EC curve {other} is not supported"))),
                };
                let pair = sig::EcdsaKeyPair::from_pkcs8(ring_alg, pkcs8)
                    .map_err(|e| bad(format!("malformed EC private key ({e})")))?;
                (algorithm, Signer::Ecdsa(pair))
            }
            RSA_ENCRYPTION => {
                let pair = sig::RsaKeyPair::from_pkcs8(pkcs8)
                    .map_err(|e| bad(format!("malformed RSA private key ({e})")))?;
                let bits = pair.public_modulus_len() * 8;
                let algorithm = CaKeyAlgorithm::from_rsa_bits(bits).ok_or_else(|| {
                    bad(format!(
                        "an RSA CA key must have 2048 or 3072 bits, not {bits}"
                    ))
                })?;
                (algorithm, Signer::Rsa(pair))
            }
            other => return Err(bad(format!("key type {other} is not supported"))),
        };
        let public_der = match &signer {
            Signer::Ecdsa(pair) => ec_spki(algorithm, pair.public_key().as_ref())?,
            // ring's RSA public key is the DER RSAPublicKey (PKCS#1).
            Signer::Rsa(pair) => rsa_spki_from_pkcs1(pair.public_key().as_ref())?,
        };
        Ok(Self {
            algorithm,
            public_der,
            signer,
            rng,
        })
    }
}

impl CaKey for SoftwareKey {
    fn algorithm(&self) -> CaKeyAlgorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let failed = |_| PkiError::Signing("the software key refused to sign".into());
        match &self.signer {
            Signer::Ecdsa(pair) => Ok(pair
                .sign(&self.rng, message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Signer::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    message,
                    &mut signature,
                )
                .map_err(failed)?;
                Ok(signature)
            }
        }
    }
}

/// The SubjectPublicKeyInfo of an EC key from its SEC1 uncompressed point.
pub(crate) fn ec_spki(algorithm: CaKeyAlgorithm, point: &[u8]) -> Result<Vec<u8>, PkiError> {
    let bad = || PkiError::Signing("the EC public point is invalid".into());
    let der = match algorithm {
        CaKeyAlgorithm::EcdsaP256Sha256 => p256::PublicKey::from_sec1_bytes(point)
            .map_err(|_| bad())?
            .to_public_key_der(),
        CaKeyAlgorithm::EcdsaP384Sha384 => p384::PublicKey::from_sec1_bytes(point)
            .map_err(|_| bad())?
            .to_public_key_der(),
        _ => return Err(bad()),
    }
    .map_err(|e| PkiError::Signing(e.to_string()))?;
    Ok(der.into_vec())
}

/// The SubjectPublicKeyInfo of an RSA key from its modulus and public exponent (big-endian).
pub(crate) fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>, PkiError> {
    use rsa::pkcs8::EncodePublicKey as _;
    let key = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(modulus),
        rsa::BigUint::from_bytes_be(exponent),
    )
    .map_err(|e| PkiError::Signing(format!("the RSA public key is invalid: {e}")))?;
    Ok(key
        .to_public_key_der()
        .map_err(|e| PkiError::Signing(e.to_string()))?
        .into_vec())
}

fn rsa_spki_from_pkcs1(pkcs1: &[u8]) -> Result<Vec<u8>, PkiError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::EncodePublicKey as _;
    let key = rsa::RsaPublicKey::from_pkcs1_der(pkcs1)
        .map_err(|e| PkiError::Signing(format!("the RSA public key is invalid: {e}")))?;
    Ok(key
        .to_public_key_der()
        .map_err(|e| PkiError::Signing(e.to_string()))?
        .into_vec())
}

/// Verifies `signature` (BIT STRING contents) over `message` with the SubjectPublicKeyInfo
/// `public_key_der`: ECDSA on P-256 or P-384 with SHA-256/384/512, and RSA PKCS#1 v1.5 with
/// SHA-256/384/512, which covers Tessera's CA keys and the roots of organisations it is
/// subordinate to. It uses RustCrypto, independent of the aws-lc-rs code that signs.
pub fn verify_signature(
    public_key_der: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    use sha2::{Digest, Sha256, Sha384, Sha512};
    let unsupported =
        || PkiError::Signing(format!("unsupported signature algorithm {}", algorithm.oid));
    let spki =
        SubjectPublicKeyInfoRef::from_der(public_key_der).map_err(|_| PkiError::BadSignature)?;
    let digest = match algorithm.oid {
        ECDSA_WITH_SHA_256 | SHA_256_WITH_RSA_ENCRYPTION => Sha256::digest(message).to_vec(),
        ECDSA_WITH_SHA_384 | SHA_384_WITH_RSA_ENCRYPTION => Sha384::digest(message).to_vec(),
        ECDSA_WITH_SHA_512 | SHA_512_WITH_RSA_ENCRYPTION => Sha512::digest(message).to_vec(),
        _ => return Err(unsupported()),
    };
    let ecdsa = matches!(
        algorithm.oid,
        ECDSA_WITH_SHA_256 | ECDSA_WITH_SHA_384 | ECDSA_WITH_SHA_512
    );
    match (spki.algorithm.oid, ecdsa) {
        (ID_EC_PUBLIC_KEY, true) => {
            use ecdsa::signature::hazmat::PrehashVerifier;
            let point = spki
                .subject_public_key
                .as_bytes()
                .ok_or(PkiError::BadSignature)?;
            match spki
                .algorithm
                .parameters_oid()
                .map_err(|_| PkiError::BadSignature)?
            {
                SECP_256_R_1 => {
                    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                        .map_err(|_| PkiError::BadSignature)?;
                    let sig = p256::ecdsa::Signature::from_der(signature)
                        .map_err(|_| PkiError::BadSignature)?;
                    key.verify_prehash(&digest, &sig)
                }
                SECP_384_R_1 => {
                    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                        .map_err(|_| PkiError::BadSignature)?;
                    let sig = p384::ecdsa::Signature::from_der(signature)
                        .map_err(|_| PkiError::BadSignature)?;
                    key.verify_prehash(&digest, &sig)
                }
                _ => return Err(unsupported()),
            }
            .map_err(|_| PkiError::BadSignature)
        }
        (RSA_ENCRYPTION, false) => {
            use rsa::pkcs8::DecodePublicKey;
            let key = rsa::RsaPublicKey::from_public_key_der(public_key_der)
                .map_err(|_| PkiError::BadSignature)?;
            let scheme = match algorithm.oid {
                SHA_256_WITH_RSA_ENCRYPTION => rsa::Pkcs1v15Sign::new::<Sha256>(),
                SHA_384_WITH_RSA_ENCRYPTION => rsa::Pkcs1v15Sign::new::<Sha384>(),
                _ => rsa::Pkcs1v15Sign::new::<Sha512>(),
            };
            key.verify(scheme, &digest, signature)
                .map_err(|_| PkiError::BadSignature)
        }
        _ => Err(PkiError::BadSignature),
    }
}

/// Lets key generation draw from the injected [`Random`], which the core documents as a
/// cryptographically secure source, so tests control every random input of the CA.
struct RandomRng<'a>(&'a dyn Random);

impl RngCore for RandomRng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl CryptoRng for RandomRng<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    struct Os;
    impl Random for Os {
        fn fill(&self, buf: &mut [u8]) {
            rand_core::OsRng.fill_bytes(buf);
        }
    }

    #[test]
    fn every_algorithm_signs_what_rustcrypto_verifies() {
        for algorithm in CaKeyAlgorithm::ALL {
            let pkcs8 = generate_pkcs8(algorithm, &Os).unwrap();
            let key = SoftwareKey::from_pkcs8("t", &pkcs8).unwrap();
            assert_eq!(key.algorithm(), algorithm);
            let signature = key.sign(b"to be signed").unwrap();
            verify_signature(
                key.public_key_der(),
                &algorithm.signature_algorithm(),
                b"to be signed",
                &signature,
            )
            .unwrap();
            assert!(verify_signature(
                key.public_key_der(),
                &algorithm.signature_algorithm(),
                b"to be signed!",
                &signature,
            )
            .is_err());
            assert_eq!(
                algorithm.name().parse::<CaKeyAlgorithm>().unwrap(),
                algorithm
            );
        }
        assert!("ed25519".parse::<CaKeyAlgorithm>().is_err());
    }
}

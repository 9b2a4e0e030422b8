//! CA signing keys behind a provider abstraction. The CA only sees [`CaKey`]: a public key, an
//! algorithm and a `sign` operation, so software keys, other curves, RSA and PKCS#11 tokens can be
//! added without touching the CA.

use crate::error::PkiError;
use crate::fsutil;
use const_oid::db::rfc5912::{ECDSA_WITH_SHA_256, ID_EC_PUBLIC_KEY, SECP_256_R_1};
use der::Decode;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rand_core::{CryptoRng, RngCore};
use spki::AlgorithmIdentifierOwned;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_core::ports::{Random, Sealer};
use zeroize::Zeroizing;

/// The key types a CA can sign with. New variants (P-384, RSA 3072) are additions; callers that
/// only pass the value through need no change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CaKeyAlgorithm {
    /// ECDSA on P-256, signing with SHA-256.
    EcdsaP256Sha256,
}

impl CaKeyAlgorithm {
    /// The `signatureAlgorithm` that certificates signed with this key carry.
    pub fn signature_algorithm(self) -> AlgorithmIdentifierOwned {
        match self {
            // RFC 5758: the parameters of ecdsa-with-SHA256 are absent.
            Self::EcdsaP256Sha256 => AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA_256,
                parameters: None,
            },
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::EcdsaP256Sha256 => "ECDSA P-256 with SHA-256",
        }
    }
}

/// A CA signing key. Implementations keep the private part to themselves (in memory, zeroized on
/// drop, or inside a token) and never reveal it.
pub trait CaKey: Send + Sync {
    fn algorithm(&self) -> CaKeyAlgorithm;
    /// The public key as a DER SubjectPublicKeyInfo.
    fn public_key_der(&self) -> &[u8];
    /// Signs `message` (a DER TBSCertificate or TBSCertList) and returns the contents of the
    /// signature BIT STRING: a DER `Ecdsa-Sig-Value` for ECDSA, the raw signature for RSA.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError>;
}

/// Creates and finds CA keys by label (`root`, `issuing`). The software provider keeps sealed
/// PKCS#8 files; a PKCS#11 provider would map labels to token objects.
pub trait KeyProvider: Send + Sync {
    /// Whether a key with this label exists.
    fn exists(&self, label: &str) -> bool;
    /// Generates and persists a new key. Fails if the label is taken: CA keys are never replaced.
    fn generate(&self, label: &str, algorithm: CaKeyAlgorithm) -> Result<Arc<dyn CaKey>, PkiError>;
    fn load(&self, label: &str) -> Result<Arc<dyn CaKey>, PkiError>;
}

/// Software keys: generated in memory, stored as PKCS#8 DER sealed with AES-256-GCM in
/// `<dir>/<label>.key.sealed`. The clear PKCS#8 never touches the disk.
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
}

impl KeyProvider for SoftwareKeyProvider {
    fn exists(&self, label: &str) -> bool {
        self.key_path(label).exists()
    }

    fn generate(&self, label: &str, algorithm: CaKeyAlgorithm) -> Result<Arc<dyn CaKey>, PkiError> {
        let path = self.key_path(label);
        if path.exists() {
            return Err(PkiError::KeyExists(label.to_owned()));
        }
        let key = match algorithm {
            CaKeyAlgorithm::EcdsaP256Sha256 => SoftwareKey::p256(p256::ecdsa::SigningKey::random(
                &mut RandomRng(&*self.random),
            ))?,
        };
        let pkcs8 = key.pkcs8_der()?;
        let sealed = self.sealer.seal(&pkcs8);
        fsutil::create_new(&path, &sealed, fsutil::PRIVATE).map_err(|e| match e {
            PkiError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
                PkiError::KeyExists(label.to_owned())
            }
            e => e,
        })?;
        Ok(Arc::new(key))
    }

    fn load(&self, label: &str) -> Result<Arc<dyn CaKey>, PkiError> {
        let bad = |detail: String| PkiError::BadKey {
            label: label.to_owned(),
            detail,
        };
        let sealed = fsutil::read(&self.key_path(label))?;
        let pkcs8 = Zeroizing::new(self.sealer.open(&sealed).map_err(|e| bad(e.message))?);
        let info = p256::pkcs8::PrivateKeyInfo::from_der(&pkcs8)
            .map_err(|_| bad("not a PKCS#8 private key".into()))?;
        let curve = info
            .algorithm
            .parameters_oid()
            .map_err(|_| bad("not an EC key with a named curve".into()))?;
        if info.algorithm.oid != ID_EC_PUBLIC_KEY || curve != SECP_256_R_1 {
            return Err(bad(format!(
                "unsupported key type {} / {curve}",
                info.algorithm.oid
            )));
        }
        let signing = p256::ecdsa::SigningKey::from_pkcs8_der(&pkcs8)
            .map_err(|_| bad("malformed P-256 private key".into()))?;
        Ok(Arc::new(SoftwareKey::p256(signing)?))
    }
}

impl fmt::Debug for SoftwareKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareKeyProvider")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// A private key held in memory. The RustCrypto signing keys zeroize themselves on drop.
struct SoftwareKey {
    public_der: Vec<u8>,
    signer: SoftwareSigner,
}

enum SoftwareSigner {
    P256(p256::ecdsa::SigningKey),
}

impl SoftwareKey {
    fn p256(key: p256::ecdsa::SigningKey) -> Result<Self, PkiError> {
        let public_der = key
            .verifying_key()
            .to_public_key_der()
            .map_err(|e| PkiError::Signing(e.to_string()))?
            .into_vec();
        Ok(Self {
            public_der,
            signer: SoftwareSigner::P256(key),
        })
    }

    /// PKCS#8 DER in a buffer that is zeroized on drop.
    fn pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, PkiError> {
        let document = match &self.signer {
            SoftwareSigner::P256(k) => k.to_pkcs8_der(),
        }
        .map_err(|e| PkiError::Signing(e.to_string()))?;
        Ok(Zeroizing::new(document.as_bytes().to_vec()))
    }
}

impl CaKey for SoftwareKey {
    fn algorithm(&self) -> CaKeyAlgorithm {
        match self.signer {
            SoftwareSigner::P256(_) => CaKeyAlgorithm::EcdsaP256Sha256,
        }
    }

    fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        use p256::ecdsa::signature::Signer;
        match &self.signer {
            SoftwareSigner::P256(k) => {
                let signature: p256::ecdsa::Signature = k
                    .try_sign(message)
                    .map_err(|e| PkiError::Signing(e.to_string()))?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
        }
    }
}

/// Verifies `signature` (BIT STRING contents) over `message` with the SubjectPublicKeyInfo
/// `public_key_der`, for the signature algorithms Tessera's CA keys produce.
pub fn verify_signature(
    public_key_der: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    use p256::ecdsa::signature::Verifier;
    use p256::pkcs8::DecodePublicKey;
    if algorithm.oid != ECDSA_WITH_SHA_256 {
        return Err(PkiError::Signing(format!(
            "unsupported signature algorithm {}",
            algorithm.oid
        )));
    }
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(public_key_der)
        .map_err(|_| PkiError::BadSignature)?;
    let signature =
        p256::ecdsa::Signature::from_der(signature).map_err(|_| PkiError::BadSignature)?;
    key.verify(message, &signature)
        .map_err(|_| PkiError::BadSignature)
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

use std::path::PathBuf;
use tessera_core::ports::PortError;

/// Everything that can go wrong in the CA and the sealer. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the sealing key file {} does not hold a 32-byte key", .0.display())]
    BadSealingKey(PathBuf),
    #[error("sealed data could not be opened: {0}")]
    Unseal(&'static str),
    #[error("the CA directory {} is incomplete ({detail}); restore it from backup", dir.display())]
    IncompleteCa { dir: PathBuf, detail: String },
    #[error("a CA key labelled {0} already exists")]
    KeyExists(String),
    #[error("no CA key labelled {label} in {place}")]
    KeyNotFound { label: String, place: String },
    #[error("the CA key {label} is unusable: {detail}")]
    BadKey { label: String, detail: String },
    #[error("the CA certificate {name} is unusable: {detail}")]
    BadCaCertificate { name: String, detail: String },
    #[error("the organisation name must not be empty")]
    EmptyOrganisation,
    #[error("the card's public key is not supported: {0}")]
    UnsupportedPublicKey(String),
    #[error("the certificate subject is invalid: {0}")]
    InvalidSubject(String),
    #[error("the subject alternative name is invalid: {0}")]
    InvalidSubjectAltName(String),
    #[error("the certificate validity is invalid: {0}")]
    InvalidValidity(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("signature verification failed")]
    BadSignature,
    #[error("the CA configuration is invalid: {0}")]
    Config(String),
    #[error("a CA already exists in {}; it is never replaced (use a new data folder)", .0.display())]
    CaExists(PathBuf),
    #[error("the CA passphrase is wrong")]
    WrongPassphrase,
    #[error("the CA passphrase is missing: {0}")]
    MissingSecret(String),
    #[error("PKCS#11: {0}")]
    Pkcs11(String),
    #[error("DER encoding failed: {0}")]
    Der(#[from] der::Error),
    #[error("the certificate policy is invalid: {0}")]
    InvalidPolicy(String),
}

impl From<PkiError> for PortError {
    fn from(e: PkiError) -> Self {
        PortError::new(e.to_string())
    }
}

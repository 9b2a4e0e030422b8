//! tessera-pki owns Tessera's certificate authority: the CA signing keys behind a key-provider
//! abstraction (software keys sealed at rest under the master key or a passphrase, or keys on a
//! PKCS#11 token), the CA hierarchy (its own root and issuing CA, or an issuing CA imported under
//! an organisation's root) kept on disk with its key configuration (`ca.json`), the PIV
//! certificate profiles per slot, and the issuance of X.509 certificates for the public keys that
//! cards generate, and the verification of cards' key attestations against Yubico's shipped
//! attestation roots ([`attestation::AttestationRoots`]). It also provides the AES-256-GCM
//! [`AesGcmSealer`] that seals every secret the server stores. The core reaches it only through
//! `tessera_core::ports::{CertificateAuthority, Sealer}`.

pub mod attestation;
mod ca;
pub mod cms;
pub mod config;
pub mod content_signer;
mod error;
mod extensions;
mod fsutil;
mod keys;
mod name;
pub mod ocsp;
mod passphrase;
pub mod pkcs11;
pub mod policy_oids;
mod profile;
mod public_key;
pub mod revocation;
mod sealer;
mod time;

pub use ca::{summarise, Ca, SoftwareCa};
pub use error::PkiError;
pub use keys::{verify_signature, CaKey, CaKeyAlgorithm, KeyProvider, SoftwareKeyProvider};
pub use name::{escape_dn_value, format_name, parse_dn};
pub use passphrase::{KdfParams, PassphraseSealer};
pub use profile::piv_profile;
pub use sealer::AesGcmSealer;

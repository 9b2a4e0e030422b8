//! AES-256-GCM sealing of the secrets the server stores (card management keys, escrowed PINs and
//! PUKs, software CA keys).
//!
//! Format: `version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)`. The version
//! byte is authenticated as associated data so that a future format cannot be confused with this
//! one.

use crate::error::PkiError;
use crate::fsutil;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand_core::RngCore;
use std::fmt;
use std::path::Path;
use tessera_core::ports::{PortError, Sealer};
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Length of the sealing key in bytes.
pub const KEY_LEN: usize = 32;

/// Seals with AES-256-GCM under one 32-byte key. The expanded key is zeroized on drop (the `aes`
/// crate's `zeroize` feature).
pub struct AesGcmSealer {
    cipher: Aes256Gcm,
}

impl AesGcmSealer {
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }

    /// Loads the key file at `path`, or creates it (mode 0600, 32 bytes from the OS RNG) if absent.
    pub fn load_or_create(path: &Path) -> Result<Self, PkiError> {
        match std::fs::read(path) {
            Ok(bytes) => Self::from_file_bytes(path, Zeroizing::new(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = Zeroizing::new([0u8; KEY_LEN]);
                OsRng.fill_bytes(key.as_mut());
                match fsutil::create_new(path, key.as_ref(), fsutil::PRIVATE) {
                    Ok(()) => Ok(Self::new(&key)),
                    // Another process created it first: use theirs.
                    Err(PkiError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        Self::from_file_bytes(path, Zeroizing::new(fsutil::read(path)?))
                    }
                    Err(e) => Err(e),
                }
            }
            Err(source) => Err(PkiError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn from_file_bytes(path: &Path, bytes: Zeroizing<Vec<u8>>) -> Result<Self, PkiError> {
        let key: &[u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| PkiError::BadSealingKey(path.to_owned()))?;
        Ok(Self::new(key))
    }

    pub(crate) fn open_sealed(&self, sealed: &[u8]) -> Result<Vec<u8>, PkiError> {
        let (&version, rest) = sealed
            .split_first()
            .ok_or(PkiError::Unseal("it is empty"))?;
        if version != VERSION {
            return Err(PkiError::Unseal("unknown format version"));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(PkiError::Unseal("it is too short"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &[VERSION],
                },
            )
            .map_err(|_| PkiError::Unseal("wrong key or tampered data"))
    }
}

impl Sealer for AesGcmSealer {
    fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        // Random 96-bit nonces are safe for far more messages than one key will ever seal here.
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &[VERSION],
                },
            )
            .expect("AES-GCM encrypts any in-memory message");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, PortError> {
        self.open_sealed(sealed).map_err(PortError::from)
    }
}

impl fmt::Debug for AesGcmSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AesGcmSealer { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let sealer = AesGcmSealer::new(&[7u8; KEY_LEN]);
        let sealed = sealer.seal(b"management key");
        assert_eq!(sealed[0], VERSION);
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 14 + TAG_LEN);
        assert_eq!(sealer.open(&sealed).unwrap(), b"management key");
        assert_ne!(sealer.seal(b"management key"), sealed, "nonces must differ");

        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(sealer.open(&bad).is_err(), "flipped byte {i} not detected");
        }
        assert!(sealer.open(&sealed[..sealed.len() - 1]).is_err());
        assert!(sealer.open(&[]).is_err());
        let other = AesGcmSealer::new(&[8u8; KEY_LEN]);
        assert!(other.open(&sealed).is_err());
        assert_eq!(sealer.open(&sealer.seal(b"")).unwrap(), b"");
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets").join("sealing.key");
        let a = AesGcmSealer::load_or_create(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), KEY_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = AesGcmSealer::load_or_create(&path).unwrap();
        assert_eq!(b.open(&a.seal(b"x")).unwrap(), b"x");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );

        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            AesGcmSealer::load_or_create(&path),
            Err(PkiError::BadSealingKey(_))
        ));
    }
}

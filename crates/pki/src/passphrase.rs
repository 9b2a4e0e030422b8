//! A [`Sealer`] whose key is derived from a passphrase with argon2id, for sites that want the CA
//! keys unusable without something a person (or a secrets manager) provides at start, instead of
//! the master key file that sits in the data folder.
//!
//! The salt, the argon2 parameters and a check value live in `kek.json` next to the sealed keys.
//! The check value (a sealed constant) lets a wrong passphrase be reported as such at start,
//! instead of as an unusable key. The sealed format is the one of [`AesGcmSealer`]: only where
//! the key comes from differs, so the CA and the software key provider do not change.

use crate::error::PkiError;
use crate::fsutil;
use crate::sealer::{AesGcmSealer, KEY_LEN};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use tessera_core::ports::{PortError, Sealer};
use zeroize::Zeroizing;

const CHECK_PLAINTEXT: &[u8] = b"tessera CA key-encryption key check";
const SALT_LEN: usize = 16;
/// Shorter passphrases are refused when a CA is sealed under a new one: argon2 slows guessing
/// down, it does not make a short passphrase strong.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: above OWASP's argon2id minimum, a fraction of a second once per
    /// start.
    fn default() -> Self {
        Self {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct KekFile {
    kdf: String,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
    check: String,
}

/// Seals with AES-256-GCM under a key derived from a passphrase (argon2id).
pub struct PassphraseSealer {
    inner: AesGcmSealer,
}

impl PassphraseSealer {
    /// The file, in the CA folder, that holds the salt and parameters.
    pub const FILE: &'static str = "kek.json";

    /// Derives a new key under a fresh salt and writes `path`. Fails if `path` exists: the key
    /// of sealed CA keys is never replaced behind their back.
    pub fn create(path: &Path, passphrase: &str, params: KdfParams) -> Result<Self, PkiError> {
        if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(PkiError::Config(format!(
                "the CA passphrase must have at least {MIN_PASSPHRASE_CHARS} characters"
            )));
        }
        let mut salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        let inner = AesGcmSealer::new(&*derive(passphrase, &salt, params)?);
        let file = KekFile {
            kdf: "argon2id".into(),
            params,
            salt: hex::encode(salt),
            check: hex::encode(inner.seal(CHECK_PLAINTEXT)),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| PkiError::Config(e.to_string()))?;
        fsutil::create_new(path, &json, fsutil::PRIVATE)?;
        Ok(Self { inner })
    }

    /// Derives the key from `passphrase` with the salt and parameters in `path`, and checks it.
    pub fn open(path: &Path, passphrase: &str) -> Result<Self, PkiError> {
        let bad = |detail: &str| PkiError::Config(format!("{}: {detail}", path.display()));
        let file: KekFile = serde_json::from_slice(&fsutil::read(path)?)
            .map_err(|e| bad(&format!("not a key-encryption key file ({e})")))?;
        if file.kdf != "argon2id" {
            return Err(bad(&format!("unknown key derivation {:?}", file.kdf)));
        }
        let salt = hex::decode(&file.salt).map_err(|_| bad("the salt is not hex"))?;
        let check = hex::decode(&file.check).map_err(|_| bad("the check value is not hex"))?;
        let inner = AesGcmSealer::new(&*derive(passphrase, &salt, file.params)?);
        match inner.open_sealed(&check) {
            Ok(plain) if plain == CHECK_PLAINTEXT => Ok(Self { inner }),
            _ => Err(PkiError::WrongPassphrase),
        }
    }
}

fn derive(
    passphrase: &str,
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; KEY_LEN]>, PkiError> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(
        params.m_cost_kib,
        params.t_cost,
        params.p_cost,
        Some(KEY_LEN),
    )
    .map_err(|e| PkiError::Config(format!("argon2 parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| PkiError::Config(format!("argon2: {e}")))?;
    Ok(key)
}

impl Sealer for PassphraseSealer {
    fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        self.inner.seal(plaintext)
    }

    fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, PortError> {
        self.inner.open(sealed)
    }
}

impl fmt::Debug for PassphraseSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PassphraseSealer { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_cost_kib: 1024,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn derives_the_same_key_and_rejects_a_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PassphraseSealer::FILE);
        assert!(PassphraseSealer::create(&path, "too short", FAST).is_err());
        let a = PassphraseSealer::create(&path, "correct horse battery", FAST).unwrap();
        let sealed = a.seal(b"pkcs8");
        let b = PassphraseSealer::open(&path, "correct horse battery").unwrap();
        assert_eq!(b.open(&sealed).unwrap(), b"pkcs8");
        assert!(matches!(
            PassphraseSealer::open(&path, "correct horse battery!"),
            Err(PkiError::WrongPassphrase)
        ));
        assert!(PassphraseSealer::create(&path, "correct horse battery", FAST).is_err());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("argon2id") && !text.contains("horse"));
    }
}

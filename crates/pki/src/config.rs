//! `ca.json`: which key provider holds the CA keys and how to reach it, written by `tessera ca
//! init` / `tessera ca import` next to the CA certificates and read at every start. It never holds
//! a secret: a PIN or passphrase is named by file or comes from the environment.
//!
//! A CA folder without `ca.json` is the default of `tessera demo`: software keys sealed under the
//! master key, created on first start.

use crate::ca::Ca;
use crate::error::PkiError;
use crate::fsutil;
use crate::keys::{CaKeyAlgorithm, KeyProvider, SoftwareKeyProvider};
use crate::passphrase::{KdfParams, PassphraseSealer};
use crate::pkcs11::{Pkcs11KeyProvider, Pkcs11Settings};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_core::model::Timestamp;
use tessera_core::ports::{Random, Sealer};
use zeroize::Zeroizing;

/// The configuration file in the CA folder.
pub const CONFIG_FILE: &str = "ca.json";
/// The environment variable that holds the CA passphrase when no passphrase file is configured.
pub const PASSPHRASE_ENV: &str = "TESSERA_CA_PASSPHRASE";
/// The token labels of the keys `tessera ca init` generates on a PKCS#11 token.
pub const PKCS11_ROOT_LABEL: &str = "tessera-ca-root";
pub const PKCS11_ISSUING_LABEL: &str = "tessera-ca-issuing";

/// The content of `ca.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaConfig {
    /// The issuing key's algorithm (informational; the key itself is authoritative).
    pub algorithm: String,
    /// True when the issuing CA was imported under an organisation's root: there is no root key.
    #[serde(default)]
    pub imported: bool,
    pub keys: KeyConfig,
}

/// Where the CA keys are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub enum KeyConfig {
    /// Sealed PKCS#8 files in the CA folder.
    Software {
        sealing: Sealing,
        /// With [`Sealing::Passphrase`]: the file holding the passphrase; without it the
        /// passphrase comes from `TESSERA_CA_PASSPHRASE`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        passphrase_file: Option<PathBuf>,
    },
    /// Keys on a PKCS#11 token.
    Pkcs11(Pkcs11Settings),
}

/// What seals software CA keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sealing {
    /// The master key file (`secrets/master.key`), which also seals card secrets.
    MasterKey,
    /// A key derived with argon2id from a passphrase (salt in `kek.json`).
    Passphrase,
}

impl KeyConfig {
    /// Software keys under the master key: the default.
    pub fn master_key() -> Self {
        Self::Software {
            sealing: Sealing::MasterKey,
            passphrase_file: None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Software {
                sealing: Sealing::MasterKey,
                ..
            } => "software keys sealed under the master key".into(),
            Self::Software {
                sealing: Sealing::Passphrase,
                ..
            } => "software keys sealed under a passphrase-derived key (argon2id)".into(),
            Self::Pkcs11(s) => {
                format!("PKCS#11 token {:?} through {}", s.token, s.module.display())
            }
        }
    }
}

/// Reads `ca.json` in `dir`, if there is one.
pub fn read_config(dir: &Path) -> Result<Option<CaConfig>, PkiError> {
    let path = dir.join(CONFIG_FILE);
    if !path.exists() {
        return Ok(None);
    }
    serde_json::from_slice(&fsutil::read(&path)?)
        .map(Some)
        .map_err(|e| PkiError::Config(format!("{}: {e}", path.display())))
}

fn write_config(dir: &Path, config: &CaConfig) -> Result<(), PkiError> {
    let json = serde_json::to_vec_pretty(config).map_err(|e| PkiError::Config(e.to_string()))?;
    fsutil::create_new(&dir.join(CONFIG_FILE), &json, fsutil::PUBLIC)
}

/// The CA passphrase: the file if one is given, `TESSERA_CA_PASSPHRASE` otherwise. A trailing line
/// break in the file is not part of the passphrase.
pub fn read_passphrase(file: Option<&Path>) -> Result<Zeroizing<String>, PkiError> {
    let text = match file {
        Some(path) => Zeroizing::new(
            String::from_utf8(fsutil::read(path)?)
                .map_err(|_| PkiError::Config(format!("{} is not text", path.display())))?,
        ),
        None => Zeroizing::new(std::env::var(PASSPHRASE_ENV).map_err(|_| {
            PkiError::MissingSecret(format!(
                "the CA keys are sealed under a passphrase: give a passphrase file or set \
                 {PASSPHRASE_ENV}"
            ))
        })?),
    };
    Ok(Zeroizing::new(
        text.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

/// The key provider `keys` describes. `creating` derives a new passphrase key (fresh salt)
/// instead of opening the existing one.
pub fn key_provider(
    dir: &Path,
    keys: &KeyConfig,
    master: Arc<dyn Sealer>,
    random: Arc<dyn Random>,
    creating: bool,
) -> Result<Box<dyn KeyProvider>, PkiError> {
    Ok(match keys {
        KeyConfig::Software {
            sealing: Sealing::MasterKey,
            ..
        } => Box::new(SoftwareKeyProvider::new(dir, master, random)),
        KeyConfig::Software {
            sealing: Sealing::Passphrase,
            passphrase_file,
        } => {
            let passphrase = read_passphrase(passphrase_file.as_deref())?;
            let kek = dir.join(PassphraseSealer::FILE);
            let sealer = if creating {
                PassphraseSealer::create(&kek, &passphrase, KdfParams::default())?
            } else {
                PassphraseSealer::open(&kek, &passphrase)?
            };
            Box::new(SoftwareKeyProvider::new(dir, Arc::new(sealer), random))
        }
        KeyConfig::Pkcs11(settings) => {
            let pin = settings.read_pin()?;
            Box::new(Pkcs11KeyProvider::open(settings.clone(), pin)?)
        }
    })
}

/// Opens the CA in `dir` as `ca.json` says, or, without `ca.json`, the default CA (software keys
/// under `master`), creating it on first start. The caller sets the public URL and the clock,
/// then calls [`Ca::prepare_content_signer`], so that a new content signer carries them.
pub fn open_ca(
    dir: &Path,
    master: Arc<dyn Sealer>,
    organisation: &str,
    now: Timestamp,
    random: Arc<dyn Random>,
) -> Result<Ca, PkiError> {
    match read_config(dir)? {
        None => Ca::load_or_create(dir, master, organisation, now, random),
        Some(config) => {
            let keys = key_provider(dir, &config.keys, master, random.clone(), false)?;
            Ca::load(dir, keys.into(), random)
        }
    }
}

/// Whether `dir` holds a CA (its certificates, or the `ca.json` of `tessera ca init` or
/// `tessera ca import`).
pub fn has_ca(dir: &Path) -> bool {
    Ca::exists_in(dir) || dir.join(CONFIG_FILE).exists()
}

/// What `tessera ca init` creates.
#[derive(Clone, Debug)]
pub struct InitOptions {
    pub organisation: String,
    pub algorithm: CaKeyAlgorithm,
    pub keys: KeyConfig,
}

/// Creates a root and an issuing CA in `dir` with keys where `options.keys` says, and records
/// that in `ca.json`. Refuses when `dir` already holds a CA.
pub fn init_ca(
    dir: &Path,
    master: Arc<dyn Sealer>,
    options: &InitOptions,
    now: Timestamp,
    random: Arc<dyn Random>,
) -> Result<Ca, PkiError> {
    if Ca::exists_in(dir) || dir.join(CONFIG_FILE).exists() {
        return Err(PkiError::CaExists(dir.to_owned()));
    }
    let mut keys = options.keys.clone();
    if let KeyConfig::Pkcs11(settings) = &mut keys {
        for (name, label) in [
            ("root", PKCS11_ROOT_LABEL),
            ("issuing", PKCS11_ISSUING_LABEL),
        ] {
            settings
                .key_labels
                .entry(name.into())
                .or_insert_with(|| label.into());
        }
    }
    let config = CaConfig {
        algorithm: options.algorithm.name().into(),
        imported: false,
        keys,
    };
    with_rollback(dir, || {
        let provider = key_provider(dir, &config.keys, master, random.clone(), true)?;
        let ca = Ca::create_with(
            dir,
            provider.into(),
            &options.organisation,
            options.algorithm,
            now,
            random,
        )?;
        // Written last: a folder with ca.json is a complete CA.
        write_config(dir, &config)?;
        Ok(ca)
    })
}

/// The issuing key of `tessera ca import`.
pub enum ImportKey {
    /// A PKCS#8 private key (DER), sealed into the CA folder as configured by `keys`
    /// (master key or passphrase).
    Software {
        pkcs8_der: Zeroizing<Vec<u8>>,
        keys: KeyConfig,
    },
    /// A key already on a token, found by the label `settings.key_labels["issuing"]`.
    Pkcs11(Pkcs11Settings),
}

/// Makes Tessera an issuing CA under an organisation's root: checks that the key matches
/// `issuing_pem` and that `chain_pem` (issuer first, root last) certifies it, then stores the key
/// (software) and the certificates, and records the configuration.
pub fn import_ca(
    dir: &Path,
    master: Arc<dyn Sealer>,
    issuing_pem: &[u8],
    chain_pem: &[u8],
    key: ImportKey,
    random: Arc<dyn Random>,
) -> Result<Ca, PkiError> {
    if Ca::exists_in(dir) || dir.join(CONFIG_FILE).exists() {
        return Err(PkiError::CaExists(dir.to_owned()));
    }
    with_rollback(dir, || match key {
        ImportKey::Software { pkcs8_der, keys } => {
            if !matches!(keys, KeyConfig::Software { .. }) {
                return Err(PkiError::Config(
                    "a key file is imported as a software key".into(),
                ));
            }
            let provider =
                Arc::new(SoftwareProviderFor::new(dir, &keys, master, random.clone())?.0);
            let candidate = provider.parse(ISSUING, &pkcs8_der)?;
            let ca = Ca::import(
                dir,
                issuing_pem,
                chain_pem,
                candidate.clone(),
                provider.clone(),
                &|| provider.import(ISSUING, &pkcs8_der).map(drop),
                random,
            )?;
            write_config(
                dir,
                &CaConfig {
                    algorithm: candidate.algorithm().name().into(),
                    imported: true,
                    keys,
                },
            )?;
            Ok(ca)
        }
        ImportKey::Pkcs11(settings) => {
            if !settings.key_labels.contains_key(ISSUING) {
                return Err(PkiError::Config(
                    "name the issuing key's label on the token".into(),
                ));
            }
            let keys = KeyConfig::Pkcs11(settings);
            let provider = key_provider(dir, &keys, master, random.clone(), false)?;
            let key = provider.load(ISSUING)?;
            let ca = Ca::import(
                dir,
                issuing_pem,
                chain_pem,
                key.clone(),
                provider.into(),
                &|| Ok(()),
                random,
            )?;
            write_config(
                dir,
                &CaConfig {
                    algorithm: key.algorithm().name().into(),
                    imported: true,
                    keys,
                },
            )?;
            Ok(ca)
        }
    })
}

const ISSUING: &str = "issuing";

/// The software provider of an import, with the passphrase key created fresh.
struct SoftwareProviderFor(SoftwareKeyProvider);

impl SoftwareProviderFor {
    fn new(
        dir: &Path,
        keys: &KeyConfig,
        master: Arc<dyn Sealer>,
        random: Arc<dyn Random>,
    ) -> Result<Self, PkiError> {
        let sealer: Arc<dyn Sealer> = match keys {
            KeyConfig::Software {
                sealing: Sealing::Passphrase,
                passphrase_file,
            } => {
                let passphrase = read_passphrase(passphrase_file.as_deref())?;
                Arc::new(PassphraseSealer::create(
                    &dir.join(PassphraseSealer::FILE),
                    &passphrase,
                    KdfParams::default(),
                )?)
            }
            _ => master,
        };
        Ok(Self(SoftwareKeyProvider::new(dir, sealer, random)))
    }
}

/// Runs `f`; when it fails, removes what it may have left in `dir` (the files of a CA that was
/// not completed), so the command can be run again after fixing the cause. Keys generated on a
/// token stay there (a token object is not deleted behind the operator's back); a rerun reports
/// them as existing.
fn with_rollback<T>(dir: &Path, f: impl FnOnce() -> Result<T, PkiError>) -> Result<T, PkiError> {
    let result = f();
    if result.is_err() {
        for name in [
            CONFIG_FILE,
            PassphraseSealer::FILE,
            "root.pem",
            "issuing.pem",
            "chain.pem",
            "root.key.sealed",
            "issuing.key.sealed",
        ] {
            let _ = std::fs::remove_file(dir.join(name));
        }
    }
    result
}

/// Reads an unencrypted PKCS#8 private key file (PEM `PRIVATE KEY`, or DER) for an import.
pub fn read_pkcs8_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let bytes = Zeroizing::new(fsutil::read(path)?);
    let bad = |detail: &str| {
        PkiError::Config(format!(
            "{}: {detail} (convert it with `openssl pkcs8 -topk8 -nocrypt`)",
            path.display()
        ))
    };
    if bytes.starts_with(b"-----") {
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("not a PEM file"))?;
        let (label, document) =
            der::SecretDocument::from_pem(text).map_err(|_| bad("not a PEM private key"))?;
        if label != "PRIVATE KEY" {
            return Err(bad(&format!(
                "a PEM \"{label}\" is not an unencrypted PKCS#8 private key"
            )));
        }
        Ok(Zeroizing::new(document.as_bytes().to_vec()))
    } else {
        Ok(bytes.clone())
    }
}

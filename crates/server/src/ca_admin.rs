//! `tessera ca init` and `tessera ca import`: set up the certificate authority of a data folder
//! before the first start, with its keys where the administrator chooses (software keys under the
//! master key or a passphrase, or a PKCS#11 token), or as an issuing CA under an organisation's
//! own root. What is chosen is recorded in `ca/ca.json`, which every later start follows.

use crate::platform::{OsRandom, SystemClock};
use crate::wiring::{restrict_permissions, ORGANISATION};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_core::ports::{Clock, Random, Sealer};
use tessera_pki::config::{self, ImportKey, InitOptions, KeyConfig, Sealing, PASSPHRASE_ENV};
use tessera_pki::pkcs11::Pkcs11Settings;
use tessera_pki::{AesGcmSealer, Ca, CaKeyAlgorithm, PkiError};

/// Where the CA keys go (the command-line options, before they are checked).
#[derive(Clone, Debug, Default)]
pub struct KeyArgs {
    pub pkcs11_module: Option<PathBuf>,
    pub pkcs11_token: Option<String>,
    pub pkcs11_pin_file: Option<PathBuf>,
    pub ca_passphrase_file: Option<PathBuf>,
}

impl KeyArgs {
    /// PKCS#11 when a module is given; software keys under a passphrase when a passphrase file is
    /// given or `TESSERA_CA_PASSPHRASE` is set; software keys under the master key otherwise.
    fn key_config(&self) -> Result<KeyConfig, PkiError> {
        match (&self.pkcs11_module, &self.pkcs11_token) {
            (Some(module), Some(token)) => {
                if self.ca_passphrase_file.is_some() {
                    return Err(PkiError::Config(
                        "a passphrase seals software keys; keys on a PKCS#11 token are protected \
                         by the token and its PIN"
                            .into(),
                    ));
                }
                Ok(KeyConfig::Pkcs11(Pkcs11Settings {
                    module: absolute(module),
                    token: token.clone(),
                    pin_file: self.pkcs11_pin_file.as_deref().map(absolute),
                    key_labels: Default::default(),
                }))
            }
            (None, None) if self.pkcs11_pin_file.is_none() => {
                if self.ca_passphrase_file.is_some() || std::env::var_os(PASSPHRASE_ENV).is_some() {
                    Ok(KeyConfig::Software {
                        sealing: Sealing::Passphrase,
                        passphrase_file: self.ca_passphrase_file.as_deref().map(absolute),
                    })
                } else {
                    Ok(KeyConfig::master_key())
                }
            }
            _ => Err(PkiError::Config(
                "a PKCS#11 token needs both --pkcs11-module and --pkcs11-token".into(),
            )),
        }
    }
}

/// `ca.json` is read from wherever the server starts: store absolute paths.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The master key of the data folder (created if absent, as the server would on first start).
fn master_key(data_dir: &Path) -> Result<Arc<dyn Sealer>, PkiError> {
    let secrets = data_dir.join("secrets");
    std::fs::create_dir_all(&secrets).map_err(|source| PkiError::Io {
        action: "create",
        path: secrets.clone(),
        source,
    })?;
    restrict_permissions(&secrets);
    Ok(Arc::new(AesGcmSealer::load_or_create(
        &secrets.join("master.key"),
    )?))
}

/// What a command created, for the administrator.
fn summary(ca: &Ca, keys: &KeyConfig) -> String {
    format!(
        "Certificate authority ready in {}\n  issuing CA: {}\n  key:        {} ({})\n  chain:      {}",
        ca.directory().display(),
        ca.issuer(),
        ca.key_algorithm().label(),
        keys.describe(),
        ca.directory().join("issuing.pem").display(),
    )
}

/// `tessera ca init`: a new root and issuing CA for the data folder.
pub fn init(
    data_dir: &Path,
    algorithm: CaKeyAlgorithm,
    organisation: Option<&str>,
    keys: &KeyArgs,
) -> Result<String, PkiError> {
    let keys = keys.key_config()?;
    let master = master_key(data_dir)?;
    let random: Arc<dyn Random> = Arc::new(OsRandom);
    let ca = config::init_ca(
        &data_dir.join("ca"),
        master,
        &InitOptions {
            organisation: organisation.unwrap_or(ORGANISATION).to_owned(),
            algorithm,
            keys: keys.clone(),
        },
        SystemClock.now(),
        random,
    )?;
    Ok(summary(&ca, &keys))
}

/// The issuing key of `tessera ca import`.
pub enum ImportKeyArgs {
    /// An unencrypted PKCS#8 file (PEM or DER).
    File(PathBuf),
    /// A key on the token named in `KeyArgs`, by its label.
    Pkcs11Label(String),
}

/// `tessera ca import`: Tessera becomes an issuing CA under an organisation's root.
pub fn import(
    data_dir: &Path,
    issuing_cert: &Path,
    chain: &Path,
    key: ImportKeyArgs,
    keys: &KeyArgs,
) -> Result<String, PkiError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| PkiError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        })
    };
    let issuing_pem = read(issuing_cert)?;
    let chain_pem = read(chain)?;
    let mut config = keys.key_config()?;
    let key = match (key, &mut config) {
        (ImportKeyArgs::File(path), KeyConfig::Software { .. }) => ImportKey::Software {
            pkcs8_der: config::read_pkcs8_file(&path)?,
            keys: config.clone(),
        },
        (ImportKeyArgs::Pkcs11Label(label), KeyConfig::Pkcs11(settings)) => {
            settings.key_labels.insert("issuing".into(), label);
            ImportKey::Pkcs11(settings.clone())
        }
        (ImportKeyArgs::File(_), _) => {
            return Err(PkiError::Config(
                "--key-file imports a software key: leave out the --pkcs11-* options".into(),
            ))
        }
        (ImportKeyArgs::Pkcs11Label(_), _) => {
            return Err(PkiError::Config(
                "--pkcs11-key-label needs --pkcs11-module and --pkcs11-token".into(),
            ))
        }
    };
    let master = master_key(data_dir)?;
    let random: Arc<dyn Random> = Arc::new(OsRandom);
    let ca = config::import_ca(
        &data_dir.join("ca"),
        master,
        &issuing_pem,
        &chain_pem,
        key,
        random,
    )?;
    Ok(summary(&ca, &config))
}

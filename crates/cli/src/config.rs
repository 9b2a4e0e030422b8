//! The configuration file of `tessera serve` (and every command that opens a data folder) and of
//! `tessera station`: one TOML file, `--config FILE` or `TESSERA_CONFIG`.
//!
//! Precedence, highest first: the command line, the `TESSERA_*` environment variables, the file,
//! the built-in defaults. Secrets are never written into the file itself: each secret has a
//! `*_file` key (and a `TESSERA_*_FILE` variable) naming a file that holds it, the convention of
//! lldap and of container secrets. Unknown keys are refused, so a typo does not silently fall
//! back to a default.
//!
//! ```toml
//! [server]
//! data = "/var/lib/tessera"
//! database_url_file = "/run/secrets/tessera-database-url"
//! listen = "0.0.0.0:8443"
//! public_url = "https://cms.example.org"
//! policy_arc = "1.3.6.1.4.1.32473.1"
//! tls_cert = "/etc/tessera/tls/cert.pem"
//! tls_key = "/etc/tessera/tls/key.pem"
//!
//! [station]
//! server = "https://cms.example.org:8443"
//! server_ca_file = "/etc/tessera/ca.pem"
//! data = "/var/lib/tessera-station"
//! readers = "pcsc"
//! printers = { "Badge Printer" = "ipp://localhost:631/printers/Badge" }
//! encoders = { "Badge Printer" = "HID OMNIKEY 5422 00 00" }
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub station: StationSection,
    /// People from LDAP or Active Directory (see `tessera_directory::DirectoryConfig`).
    pub directory: Option<tessera_server::directory::DirectoryConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub data: Option<PathBuf>,
    /// Discouraged in the file (it carries the password): prefer `database_url_file`.
    pub database_url: Option<String>,
    pub database_url_file: Option<PathBuf>,
    pub public_url: Option<String>,
    /// The organisation's registered certificate policy arc (`1.3.6.1.4.1.<PEN>.1`).
    pub policy_arc: Option<String>,
    pub listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `simulated` or `pcsc`.
    pub readers: Option<String>,
    pub station_wait_secs: Option<u64>,
    pub job_lease_secs: Option<u64>,
    /// PEM files of key attestation roots to trust besides Yubico's.
    #[serde(default)]
    pub attestation_roots: Vec<PathBuf>,
    /// Several replicas: where the others reach this one, and the file of their shared secret.
    pub cluster_url: Option<String>,
    pub cluster_secret_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationSection {
    pub server: Option<String>,
    pub server_ca_file: Option<PathBuf>,
    /// A file holding the one-time enrolment token.
    pub token_file: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub simulated_printer: Option<bool>,
    #[serde(default)]
    pub printers: BTreeMap<String, String>,
    pub printer_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub encoders: BTreeMap<String, String>,
    /// `simulated` or `pcsc`.
    pub readers: Option<String>,
}

impl ConfigFile {
    /// Reads `path`, or gives the empty configuration when there is none.
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the configuration {}: {e}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| format!("the configuration {} is not valid: {e}", path.display()))
    }
}

/// The first line of a secret's file, without its line ending.
pub fn read_secret(path: &Path, what: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the {what} from {}: {e}", path.display()))?;
    let value = text.lines().next().unwrap_or("").trim().to_owned();
    if value.is_empty() {
        return Err(format!("{} holds no {what}", path.display()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_file_is_read_and_a_typo_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tessera.toml");
        std::fs::write(
            &file,
            "[server]\ndata = \"/var/lib/tessera\"\nlisten = \"0.0.0.0:8443\"\n\
             database_url_file = \"/run/secrets/db\"\npolicy_arc = \"1.3.6.1.4.1.32473.1\"\n\n[station]\nreaders = \"pcsc\"\n\
             printers = { \"Badge\" = \"ipp://localhost/ipp/print\" }\n",
        )
        .unwrap();
        let config = ConfigFile::load(Some(&file)).unwrap();
        assert_eq!(
            config.server.data.as_deref(),
            Some(Path::new("/var/lib/tessera"))
        );
        assert_eq!(config.server.listen, Some("0.0.0.0:8443".parse().unwrap()));
        assert_eq!(
            config.server.policy_arc.as_deref(),
            Some("1.3.6.1.4.1.32473.1")
        );
        assert_eq!(
            config.station.printers["Badge"],
            "ipp://localhost/ipp/print"
        );
        std::fs::write(&file, "[server]\nlisten_addr = \"0.0.0.0:1\"\n").unwrap();
        let err = ConfigFile::load(Some(&file)).unwrap_err();
        assert!(err.contains("listen_addr"), "{err}");
        assert!(ConfigFile::load(None).unwrap().server.data.is_none());
    }

    #[test]
    fn secrets_come_from_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db");
        std::fs::write(&file, "postgres://u:p@db/tessera\n").unwrap();
        assert_eq!(
            read_secret(&file, "database URL").unwrap(),
            "postgres://u:p@db/tessera"
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(read_secret(&file, "database URL").is_err());
    }
}

//! The station's data folder: `station.json` holds the server URL, the CA file trusted for its
//! certificate, the station's id and name and its credential. It is written owner-only (0600) and atomically (temporary file, then rename):
//! the credential is the station's only secret, and a half-written file would lose it.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tessera_core::secret::StationSecret;

#[derive(Clone, Serialize, Deserialize)]
pub struct StationConfig {
    pub server: String,
    pub station_id: String,
    pub station_name: String,
    pub credential: String,
    /// CA certificates (PEM) trusted for the server's certificate, beside the public roots: the
    /// `--ca-file` of the enrolment (or of a later start), as an absolute path, so that later
    /// starts need neither `--server` nor `--ca-file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for StationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StationConfig")
            .field("server", &self.server)
            .field("station_id", &self.station_id)
            .field("station_name", &self.station_name)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl StationConfig {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("station.json")
    }

    pub fn credential(&self) -> StationSecret {
        StationSecret::new(self.credential.clone())
    }

    /// None when the station was never enrolled.
    pub fn load(data_dir: &Path) -> Result<Option<Self>, String> {
        let path = Self::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{} is damaged: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    pub fn save(&self, data_dir: &Path) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("cannot write {}: {e}", data_dir.display());
        std::fs::create_dir_all(data_dir).map_err(fail)?;
        let path = Self::path(data_dir);
        let tmp = data_dir.join(".station.json.tmp");
        let text = serde_json::to_vec_pretty(self).expect("config serialises");
        write_private(&tmp, &text).map_err(fail)?;
        std::fs::rename(&tmp, &path).map_err(fail)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(StationConfig::load(dir.path()).unwrap().is_none());
        let c = StationConfig {
            server: "http://127.0.0.1:8080".into(),
            station_id: "st-1".into(),
            station_name: "Desk 1".into(),
            credential: "tsc_secret".into(),
            ca_file: None,
        };
        c.save(dir.path()).unwrap();
        let back = StationConfig::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.credential().expose(), "tsc_secret");
        assert!(!format!("{back:?}").contains("tsc_secret"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(StationConfig::path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

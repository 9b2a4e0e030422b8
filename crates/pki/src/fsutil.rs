//! File helpers for secrets and CA material: files are created whole or not at all, never
//! overwritten, and secrets readable by the owner only.

use crate::error::PkiError;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of files holding secrets, even sealed ones.
pub(crate) const PRIVATE: u32 = 0o600;
/// Mode of certificates, which are public.
pub(crate) const PUBLIC: u32 = 0o644;

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|source| PkiError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })
}

/// Writes `bytes` to a new file at `path` with the given Unix `mode`. Fails with `AlreadyExists` if `path`
/// exists. The content goes to a temporary file first and is hard-linked into place, so a crash
/// never leaves a half-written key or certificate under the final name.
pub(crate) fn create_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let io = |action, source| PkiError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| io("create the directory of", e))?;
    }
    let tmp = temp_name(path);
    // A leftover from a crashed run may have looser permissions than we are about to ask for.
    let _ = fs::remove_file(&tmp);
    let result = write_with_mode(&tmp, bytes, mode)
        .and_then(|()| fs::hard_link(&tmp, path))
        .map_err(|e| io("create", e));
    let _ = fs::remove_file(&tmp);
    result?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Persist the new directory entry; not all filesystems allow syncing a directory.
        if let Ok(dir) = fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

fn temp_name(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    path.with_file_name(name)
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(not(unix))]
    let _ = mode;
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

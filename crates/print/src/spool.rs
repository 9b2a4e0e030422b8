//! [`SpoolPrinter`]: a "printer" that is a folder. Each job's card faces land there as files — the
//! PDF with one CR80 page per side, and the front and back PNGs at 300 dpi — for the software of a
//! card printer that watches a hot folder, or for a print shop that collects them.
//!
//! A job is published atomically: every file is first written under a hidden temporary name
//! (`.name.tmp`) in the same folder and flushed to disk, then given its real name in one step
//! (a hard link, which never replaces an existing file), PNGs first and the PDF last, so that a
//! program watching the folder never picks up half a file and finds the PNGs in place when the
//! PDF appears. Names come from the job name and the time, `jane-doe-31337042-20261124T130502Z.pdf`,
//! with `-2`, `-3`... when another job holds that name; a job never overwrites another.
//!
//! The encoder of such a printer is an ordinary PC/SC reader, as for IPP printers.

use async_trait::async_trait;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tessera_core::model::Timestamp;
use tessera_core::ports::{CardPrinter, PortError, PrintReceipt, PrinterInfo, RenderedCard};

/// The prefix administrators give a spool printer's folder where a URI is expected
/// (`spool:/var/spool/cards`).
pub const SCHEME: &str = "spool:";

/// A card printer that writes each job's files into a folder.
#[derive(Debug)]
pub struct SpoolPrinter {
    name: String,
    dir: PathBuf,
    encoder_reader: Option<String>,
    /// Temporary names of concurrent jobs of this process never meet.
    jobs: AtomicU64,
}

impl SpoolPrinter {
    /// A printer writing into `dir`, an absolute path (a leading `spool:` is accepted). Fails only
    /// on a path that cannot be one; whether the folder is there and writable is checked by
    /// [`SpoolPrinter::check`], by `status` and before every job.
    pub fn new(
        name: impl Into<String>,
        dir: &str,
        encoder_reader: Option<String>,
    ) -> Result<Self, PortError> {
        let dir = folder_of(dir)?;
        Ok(Self {
            name: name.into(),
            dir,
            encoder_reader,
            jobs: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Is the folder there, a folder, and can this process create files in it? The error says
    /// which and what to do.
    pub fn check(&self) -> Result<(), PortError> {
        check_folder(&self.dir)
    }
}

/// Writes the job's files into `dir` and returns their paths (PNGs first, the PDF last). `n`
/// keeps the temporary names of concurrent jobs apart.
fn write_job(
    dir: &Path,
    n: u64,
    job_name: &str,
    card: &RenderedCard,
) -> Result<Vec<PathBuf>, PortError> {
    check_folder(dir)?;
    let base = format!("{}-{}", slug(job_name), timestamp(SystemTime::now()));
    let mut parts: Vec<(&str, &[u8])> = vec![("-front.png", &card.front_png)];
    if let Some(back) = &card.back_png {
        parts.push(("-back.png", back));
    }
    parts.push((".pdf", &card.pdf));
    let failed = |what: &str, e: std::io::Error| {
        PortError::new(format!("Cannot write {what} into {}: {e}", dir.display()))
    };
    // Every file's bytes reach the disk under a hidden name first.
    let mut temps = Vec::new();
    for (suffix, bytes) in &parts {
        let temp = dir.join(format!(".{base}{suffix}.{}-{n}.tmp", std::process::id()));
        if let Err(e) = write_synced(&temp, bytes) {
            remove_all(&temps);
            let _ = std::fs::remove_file(&temp);
            return Err(failed(&format!("{base}{suffix}"), e));
        }
        temps.push(temp);
    }
    // Then they get their names, the first of base, base-2, base-3... that no other job holds.
    let mut result = Err(PortError::new(format!(
        "Cannot name the files of {job_name:?} in {}: too many jobs of that name this second",
        dir.display()
    )));
    'names: for i in 1..=100 {
        let stem = if i == 1 {
            base.clone()
        } else {
            format!("{base}-{i}")
        };
        let mut published = Vec::new();
        for ((suffix, _), temp) in parts.iter().zip(&temps) {
            let target = dir.join(format!("{stem}{suffix}"));
            match publish(temp, &target) {
                Ok(()) => published.push(target),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Taken by another job: give back what this one took, try the next name.
                    remove_all(&published);
                    continue 'names;
                }
                Err(e) => {
                    remove_all(&published);
                    result = Err(failed(&format!("{stem}{suffix}"), e));
                    break 'names;
                }
            }
        }
        result = Ok(published);
        break;
    }
    remove_all(&temps);
    // The new names reach the disk with the folder's entry list.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    result
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Gives `temp`'s content the name `target` in one step, never replacing a file of that name
/// (AlreadyExists then). A hard link does both; where the file system has none (some network
/// shares), a copy under another hidden name renamed after a look whether the name is free.
fn publish(temp: &Path, target: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(temp, target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if target.exists() => Err(std::io::ErrorKind::AlreadyExists.into()),
        Err(_) => {
            let staged = temp.with_extension("staged");
            let copied = std::fs::copy(temp, &staged)
                .and_then(|_| std::fs::File::open(&staged)?.sync_all())
                .and_then(|()| std::fs::rename(&staged, target));
            if copied.is_err() {
                let _ = std::fs::remove_file(&staged);
            }
            copied
        }
    }
}

fn remove_all(paths: &[PathBuf]) {
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}

/// `/var/spool/cards` or `spool:/var/spool/cards` to the folder's path.
pub fn folder_of(dir: &str) -> Result<PathBuf, PortError> {
    let trimmed = dir.trim();
    let path = trimmed.strip_prefix(SCHEME).unwrap_or(trimmed).trim();
    if path.is_empty() {
        return Err(PortError::new(
            "name the spool folder, e.g. spool:/var/spool/tessera-cards",
        ));
    }
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(PortError::new(format!(
            "the spool folder {} must be an absolute path (it is used by the server and the \
             station, whatever their working folder)",
            path.display()
        )));
    }
    Ok(path)
}

/// The folder must exist, be a folder and take new files (tried with an empty probe file).
pub fn check_folder(dir: &Path) -> Result<(), PortError> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PortError::new(format!(
                "The spool folder {shown} does not exist: create it or correct the printer"
            )))
        }
        Err(e) => {
            return Err(PortError::new(format!(
                "The spool folder {shown} cannot be reached: {e}"
            )))
        }
        Ok(m) if !m.is_dir() => {
            return Err(PortError::new(format!(
                "The spool folder {shown} is a file, not a folder"
            )))
        }
        Ok(_) => {}
    }
    let probe = dir.join(format!(".tessera-probe-{}.tmp", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(PortError::new(format!(
            "Cannot write into the spool folder {shown}: {e}; give the Tessera service write \
             access to it"
        ))),
    }
}

/// A file name from a job name: ASCII letters and digits, dashes between words.
fn slug(job_name: &str) -> String {
    let s = tessera_core::layouts::slug(job_name);
    if s.is_empty() {
        "card".into()
    } else {
        // Long display names stay readable but never make a name the file system refuses.
        s.chars()
            .take(80)
            .collect::<String>()
            .trim_end_matches('-')
            .to_owned()
    }
}

/// `20261124T130502Z`, UTC.
fn timestamp(at: SystemTime) -> String {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let day = secs.rem_euclid(86_400);
    format!(
        "{}T{:02}{:02}{:02}Z",
        Timestamp(secs).compact_date(),
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

#[async_trait]
impl CardPrinter for SpoolPrinter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "spool"
    }

    fn encoder_reader(&self) -> Option<&str> {
        self.encoder_reader.as_deref()
    }

    async fn status(&self) -> PrinterInfo {
        let state = match self.check() {
            Ok(()) => "Ready".to_owned(),
            Err(e) => e.message,
        };
        PrinterInfo {
            name: self.name.clone(),
            kind: "spool".into(),
            encoder_reader: self.encoder_reader.clone(),
            state,
        }
    }

    async fn print(&self, job_name: &str, card: &RenderedCard) -> Result<PrintReceipt, PortError> {
        // A few hundred kilobytes and an fsync or two: off the async workers.
        let (dir, job_name, card) = (self.dir.clone(), job_name.to_owned(), card.clone());
        let n = self.jobs.fetch_add(1, Ordering::Relaxed);
        let files = tokio::task::spawn_blocking(move || write_job(&dir, n, &job_name, &card))
            .await
            .map_err(|e| PortError::new(format!("the spool job failed: {e}")))??;
        let pdf = files.last().expect("the PDF is always written");
        let job = pdf
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        tracing::info!(printer = %self.name, job, "card written to the spool folder");
        Ok(PrintReceipt {
            printer_job: job,
            state: "completed".into(),
            message: format!("Written to {} for {}", pdf.display(), self.name),
            files: files.iter().map(|p| p.display().to_string()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_dated() {
        assert_eq!(slug("Jane Doe 31337042"), "jane-doe-31337042");
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("山田"), "card");
        assert!(slug(&"x".repeat(300)).len() <= 80);
        // 2026-11-24 13:05:02 UTC
        let at = UNIX_EPOCH + std::time::Duration::from_secs(1_795_525_502);
        assert_eq!(timestamp(at), "20261124T130502Z");
    }

    #[test]
    fn folders_must_be_absolute() {
        assert!(folder_of("cards").is_err());
        assert!(folder_of("spool:").is_err());
        assert_eq!(
            folder_of(" spool:/var/spool/cards ").unwrap(),
            PathBuf::from("/var/spool/cards")
        );
        assert_eq!(
            folder_of("/var/spool/cards").unwrap(),
            PathBuf::from("/var/spool/cards")
        );
    }
}

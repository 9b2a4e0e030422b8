//! The photos uploaded with a people import: a ZIP whose files the CSV's photo column names by
//! their plain name (`jdoe.jpg`). The archive is opened once, its list of files checked (not too
//! many, none too large), and a file is read only when a line asks for it, through a reader that
//! stops past the size a photo may have whatever the archive claims, so a ZIP bomb inflates no
//! further than one photo. A file inside a folder is not found by its plain name: the sentence
//! says so, since "put the photos at the top of the ZIP" is the fix.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::sync::Mutex;
use tessera_core::people::csv_file::PhotoFiles;
use tessera_print::photo::MAX_PHOTO_BYTES;
use zip::ZipArchive;

/// The largest ZIP an import accepts.
pub const MAX_ZIP_BYTES: usize = 512 * 1024 * 1024;
/// The most files a ZIP may hold (a photo per person of a large organisation, and then some).
pub const MAX_ENTRIES: usize = 200_000;

/// A ZIP of photos, read on demand.
pub struct PhotoZip {
    archive: Mutex<ZipArchive<Cursor<Vec<u8>>>>,
    /// Plain file name -> index, for the files at the top of the archive.
    top: HashMap<String, usize>,
    /// Plain file name -> full name, for files inside folders (for the "not here" sentence).
    in_folders: HashMap<String, String>,
}

impl PhotoZip {
    /// Opens the archive and checks its list of files. The error is a sentence.
    pub fn open(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() > MAX_ZIP_BYTES {
            return Err(format!(
                "the ZIP of photos is {} MiB, more than the {} MiB an import accepts",
                bytes.len() / (1024 * 1024),
                MAX_ZIP_BYTES / (1024 * 1024)
            ));
        }
        let mut archive = ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| format!("the ZIP of photos cannot be read: {e}"))?;
        if archive.len() > MAX_ENTRIES {
            return Err(format!(
                "the ZIP holds {} files, more than the {MAX_ENTRIES} an import reads",
                archive.len()
            ));
        }
        let mut top = HashMap::new();
        let mut in_folders = HashMap::new();
        for i in 0..archive.len() {
            let entry = archive
                .by_index_raw(i)
                .map_err(|e| format!("the ZIP of photos cannot be read: {e}"))?;
            if entry.is_dir() {
                continue;
            }
            let name = entry.name().to_owned();
            match name.rsplit_once(['/', '\\']) {
                None => {
                    top.insert(name, i);
                }
                Some((_, plain)) if !plain.is_empty() => {
                    in_folders.insert(plain.to_owned(), name);
                }
                Some(_) => {}
            }
        }
        Ok(Self {
            archive: Mutex::new(archive),
            top,
            in_folders,
        })
    }

    /// How many files lie at the top of the archive.
    pub fn len(&self) -> usize {
        self.top.len()
    }

    pub fn is_empty(&self) -> bool {
        self.top.is_empty()
    }
}

impl PhotoFiles for PhotoZip {
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let Some(&index) = self.top.get(name) else {
            return match self.in_folders.get(name) {
                Some(full) => Err(format!(
                    "the ZIP holds {name:?} inside a folder ({full}): put the photos at the top of the ZIP"
                )),
                None => Ok(None),
            };
        };
        let mut archive = self
            .archive
            .lock()
            .map_err(|_| "the ZIP of photos could not be read".to_owned())?;
        let entry = archive
            .by_index(index)
            .map_err(|e| format!("the photo {name:?} cannot be read from the ZIP: {e}"))?;
        let too_large = || {
            format!(
                "the photo {name:?} is larger than the {} MiB a photo may have",
                MAX_PHOTO_BYTES / (1024 * 1024)
            )
        };
        if entry.size() > MAX_PHOTO_BYTES as u64 {
            return Err(too_large());
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        // The declared size may lie: read one byte past the limit at most.
        entry
            .take(MAX_PHOTO_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("the photo {name:?} cannot be read from the ZIP: {e}"))?;
        if bytes.len() > MAX_PHOTO_BYTES {
            return Err(too_large());
        }
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in files {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn finds_files_by_their_plain_name() {
        let z = PhotoZip::open(zip_of(&[
            ("jdoe.jpg", b"jpeg"),
            ("photos/asmith.jpg", b"x"),
        ]))
        .unwrap();
        assert_eq!(z.len(), 1);
        assert_eq!(z.get("jdoe.jpg").unwrap().unwrap(), b"jpeg");
        assert_eq!(z.get("nobody.jpg").unwrap(), None);
        let e = z.get("asmith.jpg").unwrap_err();
        assert!(e.contains("inside a folder (photos/asmith.jpg)"), "{e}");
    }

    #[test]
    fn refuses_what_is_not_a_zip_and_a_file_too_large() {
        let Err(e) = PhotoZip::open(b"not a zip".to_vec()) else {
            panic!("a text file opened as a ZIP");
        };
        assert!(e.contains("cannot be read"), "{e}");
        // Deflated zeros: a small archive whose file inflates past a photo's limit.
        let big = vec![0u8; MAX_PHOTO_BYTES + 10];
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file(
            "bomb.jpg",
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated),
        )
        .unwrap();
        w.write_all(&big).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        assert!(bytes.len() < 100_000);
        let z = PhotoZip::open(bytes).unwrap();
        assert!(z.get("bomb.jpg").unwrap_err().contains("larger than"));
    }
}

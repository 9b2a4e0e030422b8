//! The spool-folder printer from the outside: a job's files appear whole under dated names, a
//! second job never overwrites the first, and a missing or unwritable folder is said plainly.

use std::path::{Path, PathBuf};
use tessera_core::ports::{CardPrinter, RenderedCard};
use tessera_print::SpoolPrinter;

/// A fresh folder under the system's temporary folder, removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "tessera-spool-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn card() -> RenderedCard {
    RenderedCard {
        front_png: b"\x89PNG front".to_vec(),
        back_png: Some(b"\x89PNG back".to_vec()),
        pdf: b"%PDF-1.7 two pages".to_vec(),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_job_lands_in_the_folder_whole() {
    let folder = Folder::new("job");
    let spec = format!("spool:{}", folder.0.display());
    let printer = SpoolPrinter::new("Hot folder", &spec, Some("Encoder 00".into())).unwrap();
    assert_eq!(printer.kind(), "spool");
    assert_eq!(printer.encoder_reader(), Some("Encoder 00"));
    assert_eq!(printer.status().await.state, "Ready");
    printer.feed_card().await.unwrap();
    assert!(printer.connect_encoder().await.is_none());

    let receipt = printer.print("Jane Doe 31337042", &card()).await.unwrap();
    assert_eq!(receipt.state, "completed");
    let files = names(&folder.0);
    assert_eq!(files.len(), 3, "{files:?}");
    let stem = &receipt.printer_job;
    assert!(stem.starts_with("jane-doe-31337042-2"), "{stem}");
    assert!(stem.ends_with('Z') && stem.contains('T'), "{stem}");
    assert_eq!(
        files,
        vec![
            format!("{stem}-back.png"),
            format!("{stem}-front.png"),
            format!("{stem}.pdf")
        ]
    );
    assert_eq!(
        std::fs::read(folder.0.join(format!("{stem}.pdf"))).unwrap(),
        card().pdf
    );
    assert_eq!(
        std::fs::read(folder.0.join(format!("{stem}-front.png"))).unwrap(),
        card().front_png
    );
    // The PDF is published last, and the receipt lists every file.
    assert_eq!(receipt.files.len(), 3);
    assert!(receipt.files[2].ends_with(".pdf"));
    assert!(receipt.message.contains(&format!("{stem}.pdf")));

    // One side only: no back PNG.
    let single = RenderedCard {
        back_png: None,
        ..card()
    };
    let receipt = printer.print("Visitor", &single).await.unwrap();
    assert_eq!(receipt.files.len(), 2);
    assert_eq!(names(&folder.0).len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_never_overwrite_each_other() {
    let folder = Folder::new("twice");
    let printer = SpoolPrinter::new("Hot folder", &folder.0.display().to_string(), None).unwrap();
    let card = card();
    let (a, b, c) = tokio::join!(
        printer.print("Jane Doe 1", &card),
        printer.print("Jane Doe 1", &card),
        printer.print("Jane Doe 1", &card),
    );
    let mut jobs = vec![
        a.unwrap().printer_job,
        b.unwrap().printer_job,
        c.unwrap().printer_job,
    ];
    jobs.sort();
    jobs.dedup();
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    let files = names(&folder.0);
    assert_eq!(files.len(), 9, "{files:?}");
    assert!(
        files.iter().all(|f| !f.starts_with('.')),
        "temporary files left: {files:?}"
    );
}

#[tokio::test]
async fn a_missing_folder_is_refused_with_a_sentence() {
    let folder = Folder::new("missing");
    let gone = folder.0.join("not-there");
    let printer = SpoolPrinter::new("Hot folder", &gone.display().to_string(), None).unwrap();
    let state = printer.status().await.state;
    assert!(state.contains("does not exist: create it"), "{state}");
    let err = printer.print("Jane Doe", &card()).await.unwrap_err();
    assert!(err.message.contains("does not exist"), "{err}");
    assert!(printer.check().is_err());

    let file = folder.0.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let printer = SpoolPrinter::new("Hot folder", &file.display().to_string(), None).unwrap();
    assert!(printer
        .status()
        .await
        .state
        .contains("is a file, not a folder"));

    assert!(SpoolPrinter::new("Relative", "cards/out", None).is_err());
    assert!(SpoolPrinter::new("Empty", "spool:", None).is_err());
}

#[cfg(unix)]
#[tokio::test]
async fn an_unwritable_folder_is_refused_with_a_sentence() {
    use std::os::unix::fs::PermissionsExt;
    let folder = Folder::new("readonly");
    std::fs::set_permissions(&folder.0, std::fs::Permissions::from_mode(0o555)).unwrap();
    // root writes anywhere: there is nothing to check then.
    let writable = std::fs::write(folder.0.join("probe"), b"").is_ok();
    let printer = SpoolPrinter::new("Hot folder", &folder.0.display().to_string(), None).unwrap();
    if !writable {
        let state = printer.status().await.state;
        assert!(
            state.contains("Cannot write into the spool folder"),
            "{state}"
        );
        assert!(state.contains("write access"), "{state}");
        let err = printer.print("Jane Doe", &card()).await.unwrap_err();
        assert!(err.message.contains("Cannot write"), "{err}");
        assert!(names(&folder.0).is_empty());
    }
    std::fs::set_permissions(&folder.0, std::fs::Permissions::from_mode(0o755)).unwrap();
}

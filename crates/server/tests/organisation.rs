//! `tessera init`, `serve` and `demo` as the system of record sees them: init makes an
//! organisation and nothing else, a plain start never creates anything, a data folder that does
//! not belong to the database is refused, and two processes cannot both initialise one database.

use tessera_core::ports::Store;
use tessera_server::{InitSpec, Options, StartMode, Tessera};

fn existing(dir: &std::path::Path) -> Options {
    Options {
        start: StartMode::Existing,
        ..Options::new(dir)
    }
}

fn production() -> InitSpec {
    InitSpec {
        admin: "admin".into(),
        ..InitSpec::default()
    }
}

#[tokio::test]
async fn init_makes_an_organisation_without_demo_content_and_serve_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A plain start refuses a folder that was never initialised, and says what to do.
    let refused = Tessera::open(&existing(&data)).await.err().unwrap().0;
    assert!(refused.contains("tessera init"), "{refused}");
    std::fs::create_dir_all(&data).unwrap();
    let refused = Tessera::open(&existing(&data)).await.err().unwrap().0;
    assert!(refused.contains("never initialised"), "{refused}");
    assert!(!data.join("ca").exists(), "a refused start creates no CA");

    let (t, password) = Tessera::init(&Options::new(&data), &production())
        .await
        .unwrap();
    assert!(
        password.is_some(),
        "the first administrator's password is shown once"
    );
    assert_eq!(t.store.count_users().await.unwrap(), 0);
    assert!(t.store.policies().await.unwrap().is_empty());
    assert!(
        t.store.stations().await.unwrap().is_empty(),
        "no simulated printer"
    );
    assert_eq!(t.store.count_operators().await.unwrap(), 1);
    let kind = t.store.installation().await.unwrap().unwrap().kind;
    assert_eq!(kind, "production");
    drop(t);

    let again = Tessera::init(&Options::new(&data), &production())
        .await
        .err()
        .unwrap()
        .0;
    assert!(again.contains("already belongs"), "{again}");
    let (t, password) = Tessera::open(&existing(&data)).await.unwrap();
    assert!(password.is_none());
    assert_eq!(t.store.count_users().await.unwrap(), 0, "serve never seeds");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700, "the data folder is the owner's only");
        assert_eq!(
            mode(&data.join("tessera.db")),
            0o600,
            "so is the database file"
        );
    }
}

#[tokio::test]
async fn a_data_folder_that_is_not_the_databases_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    Tessera::init(&Options::new(&a), &production())
        .await
        .unwrap();
    Tessera::init(&Options::new(&b), &production())
        .await
        .unwrap();
    // Folder b's master key and CA with folder a's database (its file and write-ahead log).
    let copy_database = |to: &std::path::Path| {
        for file in ["tessera.db", "tessera.db-wal"] {
            let _ = std::fs::remove_file(to.join(file));
            if a.join(file).exists() {
                std::fs::copy(a.join(file), to.join(file)).unwrap();
            }
        }
        let _ = std::fs::remove_file(to.join("tessera.db-shm"));
    };
    copy_database(&b);
    let refused = Tessera::open(&existing(&b)).await.err().unwrap().0;
    assert!(refused.contains("master key"), "{refused}");
    // A fresh folder without a master key is refused before anything is created in it.
    let c = dir.path().join("c");
    std::fs::create_dir_all(&c).unwrap();
    copy_database(&c);
    let refused = Tessera::open(&existing(&c)).await.err().unwrap().0;
    assert!(refused.contains("no master key"), "{refused}");
    assert!(!c.join("secrets").join("master.key").exists());
}

#[tokio::test]
async fn the_demo_creates_its_organisation_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (t, password) = Tessera::open(&Options::new(&data)).await.unwrap();
    assert!(password.is_some());
    assert_eq!(t.store.count_users().await.unwrap(), 50);
    assert_eq!(t.store.installation().await.unwrap().unwrap().kind, "demo");
    drop(t);
    let (t, password) = Tessera::open(&Options::new(&data)).await.unwrap();
    assert!(password.is_none());
    let (_, again) = Tessera::open(&existing(&data)).await.unwrap();
    assert!(again.is_none());
    assert_eq!(t.store.count_operators().await.unwrap(), 1);
}

/// Replicas initialising one PostgreSQL database at the same moment: exactly one wins, the
/// others are told to start with its data folder, and the database holds one organisation.
#[tokio::test]
async fn two_inits_on_one_postgres_database_cannot_both_win() {
    let Ok(base) = std::env::var("TESSERA_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("TESSERA_REQUIRE_POSTGRES").is_err(),
            "TESSERA_REQUIRE_POSTGRES is set but TESSERA_TEST_DATABASE_URL is not"
        );
        return;
    };
    let url = tessera_store::testing::fresh_postgres_database(&base).await;
    let dir = tempfile::tempdir().unwrap();
    let inits: Vec<_> = (0..3)
        .map(|i| {
            let options = Options {
                database_url: Some(url.clone()),
                ..Options::new(dir.path().join(format!("replica{i}")))
            };
            tokio::spawn(async move {
                Tessera::init(&options, &production())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.0)
            })
        })
        .collect();
    let mut won = 0;
    for init in inits {
        match init.await.unwrap() {
            Ok(()) => won += 1,
            Err(e) => assert!(
                e.contains("already belongs") || e.contains("initialised meanwhile"),
                "{e}"
            ),
        }
    }
    assert_eq!(won, 1);
    tessera_store::testing::drop_postgres_database(&base, &url).await;
}

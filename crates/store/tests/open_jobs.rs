//! One issuance in progress per person and per printer, held by the database: a second open job
//! for the same person, or at the same printer, is refused by the unique keys of migration 8,
//! whatever the core checked before; a finished job holds nothing, and a Retry print on another
//! printer moves the key. On SQLite always and on PostgreSQL when `TESSERA_TEST_DATABASE_URL`
//! names a server.

use tessera_core::changes::{Change, Changes, LeaseChange};
use tessera_core::ids::*;
use tessera_core::model::*;
use tessera_core::ports::{Store, StoreError};
use tessera_store::SqlStore;

fn job(id: &str, user: &str, printer: &str, created: i64) -> IssuanceJob {
    IssuanceJob {
        id: JobId::new(id),
        operation: OperationId::new(format!("op-{id}")),
        operator: OperatorId::new("admin"),
        user: UserId::new(user),
        station: "local".into(),
        printer: printer.into(),
        reader: format!("{printer} encoder"),
        layout: "badge".into(),
        policy: None,
        device: None,
        step: JobStep::Started,
        progress: 0,
        message: String::new(),
        error: None,
        created_at: Timestamp(created),
        updated_at: Timestamp(created),
        temporary_for: None,
        fed_card: None,
    }
}

async fn insert(store: &SqlStore, job: &IssuanceJob) -> Result<(), StoreError> {
    let mut c = Changes::new();
    c.push(Change::InsertJob {
        job: job.clone(),
        lease: None,
    });
    store.commit(&c).await
}

async fn update(store: &SqlStore, job: &IssuanceJob, expected: JobStep) -> Result<(), StoreError> {
    let mut c = Changes::new();
    c.push(Change::UpdateJob {
        job: job.clone(),
        expected,
        lease: LeaseChange::Unleased { now_ms: 0 },
    });
    store.commit(&c).await
}

async fn one_open_job_per_person_and_printer(store: &SqlStore) {
    let first = job("j1", "jdoe", "P1", 1);
    insert(store, &first).await.unwrap();
    // The same person at another printer, and another person at the same printer: refused.
    assert_eq!(
        insert(store, &job("j2", "jdoe", "P2", 2)).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        insert(store, &job("j3", "asmith", "P1", 3)).await,
        Err(StoreError::Conflict)
    );
    // Printing off: the reader is what the job holds.
    let mut encode_only = job("j4", "bjones", "", 4);
    encode_only.reader = "P1 encoder".into();
    insert(store, &encode_only).await.unwrap();
    let mut same_reader = job("j5", "cwhite", "", 5);
    same_reader.reader = "P1 encoder".into();
    assert_eq!(insert(store, &same_reader).await, Err(StoreError::Conflict));
    // Nothing of a refused job was written.
    let open: Vec<_> = store
        .open_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id.0)
        .collect();
    assert_eq!(open, ["j1", "j4"]);

    // A Retry print on another printer moves the printer key; the first printer is free.
    let mut moved = first.clone();
    moved.step = JobStep::PrintFailed;
    update(store, &moved, JobStep::Started).await.unwrap();
    moved.printer = "P3".into();
    update(store, &moved, JobStep::PrintFailed).await.unwrap();
    insert(store, &job("j6", "asmith", "P1", 6)).await.unwrap();
    assert_eq!(
        insert(store, &job("j7", "dgreen", "P3", 7)).await,
        Err(StoreError::Conflict)
    );

    // Finished (cancelled), the job holds nothing: the person and the printer are free again.
    let mut cancelled = moved.clone();
    cancelled.step = JobStep::Cancelled;
    update(store, &cancelled, JobStep::PrintFailed)
        .await
        .unwrap();
    insert(store, &job("j8", "jdoe", "P3", 8)).await.unwrap();
    let open: Vec<_> = store
        .open_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.id.0, j.step))
        .collect();
    assert_eq!(
        open,
        [
            ("j4".to_owned(), JobStep::Started),
            ("j6".to_owned(), JobStep::Started),
            ("j8".to_owned(), JobStep::Started),
        ]
    );

    // Printed, the card is out of the printer: the printer takes the next card, the person
    // still waits for Continue or Cancel.
    let mut printed = job("j6", "asmith", "P1", 6);
    printed.step = JobStep::Printed;
    update(store, &printed, JobStep::Started).await.unwrap();
    insert(store, &job("j9", "egray", "P1", 9)).await.unwrap();
    assert_eq!(
        insert(store, &job("j10", "asmith", "P4", 10)).await,
        Err(StoreError::Conflict)
    );
}

#[tokio::test]
async fn sqlite_refuses_a_second_open_job() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = SqlStore::open(&url).await.unwrap();
    one_open_job_per_person_and_printer(&store).await;
}

#[tokio::test]
async fn postgres_refuses_a_second_open_job() {
    let Ok(base) = std::env::var("TESSERA_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("TESSERA_REQUIRE_POSTGRES").is_err(),
            "TESSERA_REQUIRE_POSTGRES is set but TESSERA_TEST_DATABASE_URL is not"
        );
        eprintln!("TESSERA_TEST_DATABASE_URL not set, PostgreSQL not tested");
        return;
    };
    let url = tessera_store::testing::fresh_postgres_database(&base).await;
    let store = SqlStore::open(&url).await.unwrap();
    one_open_job_per_person_and_printer(&store).await;
    store.close().await;
    tessera_store::testing::drop_postgres_database(&base, &url).await;
}

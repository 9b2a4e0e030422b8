//! The store's units of work, job leases, installation row and versioned migrations, on SQLite
//! always and on PostgreSQL when `TESSERA_TEST_DATABASE_URL` names a server.

use tessera_core::audit;
use tessera_core::changes::{Change, Changes, Lease, LeaseChange, UserWas};
use tessera_core::ids::*;
use tessera_core::model::*;
use tessera_core::ports::{Installation, NewAuditEvent, Store, StoreError};
use tessera_core::{DeviceState, Reason};
use tessera_store::SqlStore;

fn device(id: &str, state: DeviceState) -> Device {
    Device {
        id: DeviceId::new(id),
        serial: "5678".into(),
        atr: String::new(),
        device_type: "PIV".into(),
        state,
        reason: Reason::None,
        user: Some(UserId::new("jdoe")),
        policy: None,
        layout: None,
        created_at: Timestamp(1),
        updated_at: Timestamp(1),
        activated_at: None,
        expires_at: None,
        firmware: None,
        temporary_for: None,
    }
}

fn event(n: i64) -> NewAuditEvent {
    NewAuditEvent {
        at: Timestamp(n),
        code: audit::DEVICE_STATE_CHANGED.code,
        name: audit::DEVICE_STATE_CHANGED.name,
        operator: None,
        user: None,
        device: None,
        operation: None,
        details: serde_json::json!({"n": n}),
    }
}

fn job(id: &str, step: JobStep) -> IssuanceJob {
    IssuanceJob {
        id: JobId::new(id),
        operation: OperationId::new(format!("op-{id}")),
        operator: OperatorId::new("admin"),
        user: "jdoe".into(),
        station: "local".into(),
        printer: "P".into(),
        reader: "R".into(),
        layout: "badge".into(),
        policy: None,
        device: None,
        step,
        progress: 0,
        message: String::new(),
        error: None,
        created_at: Timestamp(1),
        updated_at: Timestamp(1),
        temporary_for: None,
        fed_card: None,
    }
}

fn hold(owner: &str, expires_ms: i64) -> LeaseChange {
    LeaseChange::Hold {
        owner: owner.into(),
        expires_ms,
    }
}

async fn audit_count(store: &SqlStore) -> usize {
    store.audit_events(None, 1000).await.unwrap().len()
}

fn person(uid: &str, name: &str) -> User {
    User {
        uid: UserId::new(uid),
        given_name: name.into(),
        family_name: "Doe".into(),
        display_name: format!("{name} Doe"),
        email: format!("{uid}@example.org"),
        upn: format!("{uid}@example.org"),
        employee_id: String::new(),
        department: String::new(),
        title: String::new(),
        groups: vec!["staff".into()],
        source: UserSource::Local,
        attributes: Default::default(),
        has_photo: false,
        disabled: false,
        photo_digest: None,
    }
}

/// A unit with one person write and one audit event.
fn put(user: &User, was: UserWas, n: i64) -> Changes {
    let mut changes = Changes::new();
    changes.push(Change::PutUser {
        user: user.clone(),
        was,
    });
    changes.audit(event(n));
    changes
}

/// Person writes apply only while the person is stored as the writer read them; a refused
/// unit writes nothing, its audit event included.
async fn person_conditions(store: &SqlStore, other: &SqlStore) {
    let before = audit_count(store).await;
    let ann = person("ann", "Ann");
    store.commit(&put(&ann, UserWas::New, 1)).await.unwrap();
    // a second creation of the uid (another tab, process or replica) is stale
    let err = other
        .commit(&put(&person("ann", "Anna"), UserWas::New, 2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Stale(_)), "{err:?}");
    assert_eq!(store.user(&ann.uid).await.unwrap().given_name, "Ann");

    // two edits decided from the same read: the first wins, the second is stale
    let read = store.user(&ann.uid).await.unwrap();
    let mut renamed = read.clone();
    renamed.display_name = "Ann Roe".into();
    let mut disabled = read.clone();
    disabled.disabled = true;
    let was = || UserWas::Stored(Box::new(read.clone()));
    other.commit(&put(&renamed, was(), 3)).await.unwrap();
    let err = store.commit(&put(&disabled, was(), 4)).await.unwrap_err();
    assert!(matches!(err, StoreError::Stale(_)), "{err:?}");
    let now = store.user(&ann.uid).await.unwrap();
    assert_eq!(now.display_name, "Ann Roe");
    assert!(!now.disabled, "the stale write left nothing");
    // a write of a person deleted meanwhile is stale too
    let err = store
        .commit(&put(
            &person("gone", "Gone"),
            UserWas::Stored(Box::new(person("gone", "Gone"))),
            5,
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Stale(_)), "{err:?}");

    // a deletion decided while the person had no card is stale once a card is issued
    let mut card = device("ann-card", DeviceState::Assigned);
    card.user = Some(ann.uid.clone());
    let delete = |cards: Vec<(DeviceId, DeviceState)>| {
        let mut changes = Changes::new();
        changes.push(Change::DeleteUser {
            was: Box::new(now.clone()),
            cards,
        });
        changes.audit(event(6));
        changes
    };
    let mut issue = Changes::new();
    issue.push(Change::InsertDevice(card.clone()));
    other.commit(&issue).await.unwrap();
    let err = store.commit(&delete(Vec::new())).await.unwrap_err();
    assert!(matches!(err, StoreError::Stale(_)), "{err:?}");
    assert!(store.user(&ann.uid).await.is_ok());
    // decided with the card as it is, the deletion goes through
    store
        .commit(&delete(vec![(card.id.clone(), DeviceState::Assigned)]))
        .await
        .unwrap();
    assert!(matches!(
        store.user(&ann.uid).await,
        Err(StoreError::NotFound)
    ));
    // and no card is recorded for a person who is gone
    let mut late = device("ann-late", DeviceState::Assigned);
    late.user = Some(ann.uid.clone());
    let mut issue = Changes::new();
    issue.push(Change::InsertDevice(late.clone()));
    issue.audit(event(7));
    let err = other.commit(&issue).await.unwrap_err();
    assert!(matches!(err, StoreError::Stale(_)), "{err:?}");
    assert!(store.device(&late.id).await.is_err());
    // the units that applied wrote their events (create, rename, delete); none of the others
    assert_eq!(audit_count(store).await, before + 3);
}

async fn units_of_work(store: &SqlStore) {
    // The cards below belong to jdoe.
    store.put_user(&person("jdoe", "Jane")).await.unwrap();
    // A unit commits whole: the device, its change and the events.
    let mut d = device("d1", DeviceState::Available);
    let mut first = Changes::new();
    first.push(Change::InsertDevice(d.clone()));
    first.audit(event(1));
    d.state = DeviceState::Assigned;
    first.push(Change::UpdateDevice {
        device: d.clone(),
        expected: DeviceState::Available,
    });
    first.audit(event(2));
    store.commit(&first).await.unwrap();
    assert_eq!(
        store.device(&d.id).await.unwrap().state,
        DeviceState::Assigned
    );
    assert_eq!(audit_count(store).await, 2);

    // A stale expectation refuses the whole unit: nothing of it is written.
    let mut stale = d.clone();
    stale.state = DeviceState::Failed;
    let mut second = Changes::new();
    second.audit(event(3));
    second.push(Change::InsertDevice(device("d2", DeviceState::Available)));
    second.push(Change::UpdateDevice {
        device: stale,
        expected: DeviceState::InProduction,
    });
    assert!(matches!(
        store.commit(&second).await,
        Err(StoreError::Stale(_))
    ));
    assert_eq!(
        store.device(&d.id).await.unwrap().state,
        DeviceState::Assigned
    );
    assert_eq!(
        store.device(&DeviceId::new("d2")).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        audit_count(store).await,
        2,
        "the refused unit's event is not in the log"
    );

    // Certificates move only from the status they were read in.
    let cert = CertificateRecord {
        serial: "0a".into(),
        device: d.id.clone(),
        user: "jdoe".into(),
        slot: Slot::PivAuthentication,
        subject: "CN=Jane".into(),
        issuer: "CN=CA".into(),
        not_before: Timestamp(1),
        not_after: Timestamp(2),
        status: CertificateStatus::OnHold,
        revocation_reason: Some("certificateHold".into()),
        der: vec![1, 2, 3],
        attestation: None,
    };
    let mut third = Changes::new();
    third.push(Change::InsertCertificate(cert.clone()));
    store.commit(&third).await.unwrap();
    let release = |expected| Change::SetCertificateStatus {
        serial: "0a".into(),
        expected,
        status: CertificateStatus::Valid,
        reason: None,
        at: Timestamp(3),
    };
    let mut wrong = Changes::new();
    wrong.push(release(CertificateStatus::Valid));
    assert!(matches!(
        store.commit(&wrong).await,
        Err(StoreError::Stale(_))
    ));
    let mut right = Changes::new();
    right.push(release(CertificateStatus::OnHold));
    store.commit(&right).await.unwrap();
    assert_eq!(
        store.certificates_of_device(&d.id).await.unwrap()[0].status,
        CertificateStatus::Valid
    );

    // The installation row exists once.
    let installation = Installation {
        organisation: "Org".into(),
        ca_fingerprint: "ab".into(),
        master_key_check: "cd".into(),
        kind: "production".into(),
        created_at: Timestamp(1),
    };
    assert_eq!(store.installation().await.unwrap(), None);
    let mut init = Changes::new();
    init.push(Change::InsertInstallation(installation.clone()));
    init.audit(event(4));
    store.commit(&init).await.unwrap();
    assert_eq!(store.installation().await.unwrap(), Some(installation));
    assert_eq!(store.commit(&init).await, Err(StoreError::Conflict));
    assert_eq!(audit_count(store).await, 3);
}

async fn leases(store: &SqlStore, other: &SqlStore) {
    let mut j = job("j1", JobStep::Issuing);
    let mut insert = Changes::new();
    insert.push(Change::InsertJob {
        job: j.clone(),
        lease: Some(Lease {
            owner: "a".into(),
            expires_ms: 1_000,
        }),
    });
    store.commit(&insert).await.unwrap();
    let update = |j: &IssuanceJob, lease: LeaseChange| {
        let mut c = Changes::new();
        c.push(Change::UpdateJob {
            job: j.clone(),
            expected: JobStep::Issuing,
            lease,
        });
        c
    };
    // Only the holder advances the job.
    j.progress = 50;
    assert!(matches!(
        store.commit(&update(&j, hold("b", 2_000))).await,
        Err(StoreError::Stale(_))
    ));
    store.commit(&update(&j, hold("a", 2_000))).await.unwrap();
    assert_eq!(
        store.job_lease(&j.id).await.unwrap(),
        Some(Lease {
            owner: "a".into(),
            expires_ms: 2_000
        })
    );
    // A person's decision waits for a live lease to go.
    assert!(matches!(
        store
            .commit(&update(&j, LeaseChange::Unleased { now_ms: 1_500 }))
            .await,
        Err(StoreError::Stale(_))
    ));
    // The heartbeat renews only the holder's lease.
    assert!(store.renew_lease(&j.id, "a", 3_000).await.unwrap());
    assert!(!store.renew_lease(&j.id, "b", 9_000).await.unwrap());
    // Nothing is taken over before the lease ends; after it, exactly once, by one taker.
    let steps = [JobStep::Issuing, JobStep::Printing];
    assert!(other
        .claim_abandoned_jobs(&steps, "b", 2_999, 10_000, 10)
        .await
        .unwrap()
        .is_empty());
    let (x, y) = tokio::join!(
        other.claim_abandoned_jobs(&steps, "b", 3_001, 10_000, 10),
        store.claim_abandoned_jobs(&steps, "c", 3_001, 10_000, 10)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.len() + y.len(), 1, "one taker: {x:?} {y:?}");
    let taker = if x.len() == 1 { "b" } else { "c" };
    assert_eq!(store.job_lease(&j.id).await.unwrap().unwrap().owner, taker);
    // The old holder's writes now fail; the taker's succeed and release the job.
    assert!(matches!(
        store.commit(&update(&j, hold("a", 20_000))).await,
        Err(StoreError::Stale(_))
    ));
    j.step = JobStep::Failed;
    store
        .commit(&update(
            &j,
            LeaseChange::Release {
                owner: taker.into(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(store.job_lease(&j.id).await.unwrap(), None);
    assert_eq!(store.job(&j.id).await.unwrap().step, JobStep::Failed);
}

/// A database made by the release before versioned migrations: its schema, some rows, no
/// `schema_migrations`. Opening it migrates and keeps the rows.
async fn upgrade_from_first_release(url: &str, blob: &str) {
    use sqlx::Executor;
    sqlx::any::install_default_drivers();
    let old = sqlx::AnyPool::connect(url).await.unwrap();
    let schema = include_str!("fixtures/schema-before-migrations.sql").replace("{{BLOB}}", blob);
    for statement in schema
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
        .filter(|s| !s.trim().is_empty())
    {
        old.execute(statement).await.unwrap();
    }
    let j = job("old-job", JobStep::Printing);
    sqlx::query("INSERT INTO jobs (id, step, data) VALUES ($1, $2, $3)")
        .bind("old-job")
        .bind("printing")
        .bind(serde_json::to_string(&j).unwrap())
        .execute(&old)
        .await
        .unwrap();
    old.close().await;

    let store = SqlStore::open(url).await.unwrap();
    assert_eq!(store.job(&j.id).await.unwrap(), j);
    assert_eq!(store.job_lease(&j.id).await.unwrap(), None);
    // A job of the old release has no lease: `serve` may take it over at once.
    let claimed = store
        .claim_abandoned_jobs(&[JobStep::Printing], "me", 1, 2, 10)
        .await
        .unwrap();
    assert_eq!(claimed, vec![j]);
    assert_eq!(store.installation().await.unwrap(), None);
    // Version 5 made the (empty) card stock.
    assert!(store
        .stock_cards(&StockFilter::default())
        .await
        .unwrap()
        .is_empty());
    store.close().await;
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        versions,
        (1..=tessera_store::SCHEMA_VERSION).collect::<Vec<_>>()
    );
    pool.close().await;
}

fn sqlite_url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join(name).display())
}

#[tokio::test]
async fn sqlite_units_of_work_and_leases() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir, "t.db");
    let store = SqlStore::open(&url).await.unwrap();
    let other = SqlStore::open(&url).await.unwrap();
    units_of_work(&store).await;
    leases(&store, &other).await;
    person_conditions(&store, &other).await;
}

#[tokio::test]
async fn sqlite_upgrade_from_first_release() {
    let dir = tempfile::tempdir().unwrap();
    upgrade_from_first_release(&sqlite_url(&dir, "old.db"), "BLOB").await;
}

async fn postgres_base(test: &str) -> Option<String> {
    match std::env::var("TESSERA_TEST_DATABASE_URL") {
        Ok(base) => Some(base),
        Err(_) => {
            assert!(
                std::env::var("TESSERA_REQUIRE_POSTGRES").is_err(),
                "TESSERA_REQUIRE_POSTGRES is set but TESSERA_TEST_DATABASE_URL is not"
            );
            eprintln!("{test}: TESSERA_TEST_DATABASE_URL not set, PostgreSQL not tested");
            None
        }
    }
}

#[tokio::test]
async fn postgres_units_of_work_and_leases() {
    let Some(base) = postgres_base("postgres_units_of_work_and_leases").await else {
        return;
    };
    let url = tessera_store::testing::fresh_postgres_database(&base).await;
    let store = SqlStore::open(&url).await.unwrap();
    let other = SqlStore::open(&url).await.unwrap();
    units_of_work(&store).await;
    leases(&store, &other).await;
    person_conditions(&store, &other).await;
    store.close().await;
    other.close().await;
    tessera_store::testing::drop_postgres_database(&base, &url).await;
}

#[tokio::test]
async fn postgres_upgrade_from_first_release() {
    let Some(base) = postgres_base("postgres_upgrade_from_first_release").await else {
        return;
    };
    let url = tessera_store::testing::fresh_postgres_database(&base).await;
    upgrade_from_first_release(&url, "BYTEA").await;
    tessera_store::testing::drop_postgres_database(&base, &url).await;
}

/// Replicas starting together on an empty PostgreSQL database: the advisory lock serialises the
/// migration, so every one of them opens it.
#[tokio::test]
async fn postgres_replicas_migrate_together() {
    let Some(base) = postgres_base("postgres_replicas_migrate_together").await else {
        return;
    };
    let url = tessera_store::testing::fresh_postgres_database(&base).await;
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { SqlStore::open(&url).await.map(|s| s.backend()) })
        })
        .collect();
    for open in opens {
        open.await
            .unwrap()
            .expect("every replica opens the database");
    }
    tessera_store::testing::drop_postgres_database(&base, &url).await;
}

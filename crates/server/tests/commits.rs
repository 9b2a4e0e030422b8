//! How many write transactions the database commits for one card, issued end to end as the
//! wizard does it: Start (a blank card fed and read), the PIV Standard policy (4 on-card keys and
//! certificates, CHUID, CCC, printed information, PIN, PUK, management key), the card face printed
//! on the demo printer, Continue. Every commit costs the database a flush of its log, so this
//! number bounds the cards an hour one database can issue (issue 16: at most 10 a card).
//!
//! The count is what the store counts ([`tessera_store::SqlStore::committed_writes`]). The
//! test also checks that fewer commits did not cost the record anything: the card is Active with
//! its 4 certificates valid, the job Completed, and the audit log holds every event of the
//! issuance, in order, on an intact hash chain.
//!
//! SQLite always; PostgreSQL too when `TESSERA_TEST_DATABASE_URL` names a server (each run in a
//! database of its own).

mod support;

use tessera_core::ids::*;
use tessera_core::issuance::{self, StartRequest};
use tessera_core::model::{BuiltinRole, CertificateStatus, JobStep};
use tessera_core::ports::Store;
use tessera_core::{DeviceState, Pin};
use tessera_server::{demo, Options, Tessera};

/// Issue 16's budget of committed write transactions per card.
const BUDGET: u64 = 10;

/// Issues one card for jdoe: Start, policy and PIN, personalisation and print, Continue.
/// Returns the job's id once the card is Active.
async fn issue_one(t: &Tessera) -> JobId {
    let svc = &t.services;
    let actor = support::actor(BuiltinRole::Administrator);
    let job = issuance::start(
        svc,
        &actor,
        StartRequest {
            user: UserId::new("jdoe"),
            station: StationId::new(demo::STATION_ID),
            printer: demo::PRINTER.into(),
            reader: demo::ENCODER.into(),
            layout: LayoutId::new("corporate-badge"),
            temporary_for: None,
        },
    )
    .await
    .unwrap();
    let (_, running) = issuance::choose_policy(
        &t.runner,
        &actor,
        &job.id,
        &PolicyId::new(demo::POLICY_ID),
        Some(Pin::new("13572468")),
    )
    .await
    .unwrap();
    let printed = running.await.unwrap();
    assert_eq!(printed.step, JobStep::Printed, "{:?}", printed.error);
    let done = issuance::finish(svc, &actor, &job.id).await.unwrap();
    assert_eq!(done.step, JobStep::Completed);
    job.id
}

/// The commits of each of three cards issued one after the other (the first one too: nothing
/// is cached for it), and the record each of them left.
async fn count(name: &str, t: &Tessera) {
    let mut counts = Vec::new();
    for _ in 0..3 {
        let before = t.store.committed_writes();
        let audit_before = t.store.audit_events(None, 1).await.unwrap()[0].seq;
        let job = issue_one(t).await;
        let commits = t.store.committed_writes() - before;
        counts.push(commits);
        println!("{name}: {commits} committed write transactions for one card");

        // The record is whole: the card Active, its certificates valid, the job completed.
        let job = t.store.job(&job).await.unwrap();
        assert_eq!(job.progress, 100);
        let device = job.device.clone().unwrap();
        assert_eq!(
            t.store.device(&device).await.unwrap().state,
            DeviceState::Active
        );
        let certificates = t.store.certificates_of_device(&device).await.unwrap();
        assert_eq!(certificates.len(), 4);
        assert!(certificates
            .iter()
            .all(|c| c.status == CertificateStatus::Valid));

        // Every event of the issuance, in the order it happened, each chained to the one before.
        let mut events = t.store.audit_events(None, 500).await.unwrap();
        events.retain(|e| e.seq > audit_before);
        events.reverse();
        for pair in events.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq + 1);
            assert_eq!(pair[1].prev_hash, pair[0].hash);
        }
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        let expected = [
            "IssuanceStarted",
            "CardFed",
            "DeviceRegistered",
            "DeviceStateChanged",
            "DeviceStateChanged",
            "CardAuthenticated",
            "KeyGenerated",
            "KeyGenerated",
            "KeyGenerated",
            "KeyGenerated",
            "CertificateIssued",
            "CertificateIssued",
            "CertificateIssued",
            "CertificateIssued",
            "CertificateWritten",
            "CertificateWritten",
            "CertificateWritten",
            "CertificateWritten",
            "DataObjectsWritten",
            "PinSet",
            "PukSet",
            "ManagementKeyReplaced",
            "DeviceStateChanged",
            "CardPrinted",
        ];
        assert_eq!(&names[..expected.len()], expected, "{names:?}");
        // Continue: the card Active and its 4 certificates released from hold.
        let activation = &names[expected.len()..];
        assert_eq!(
            activation
                .iter()
                .filter(|n| **n == "CertificateStatusChanged")
                .count(),
            4,
            "{activation:?}"
        );
        assert!(activation.contains(&"DeviceStateChanged"), "{activation:?}");
    }
    // The counter counts: the least a card can take is Start, the hand-over to the runner, the
    // end of personalisation, the print and Continue, each of which commits.
    for &commits in &counts {
        assert!(
            (5..=BUDGET).contains(&commits),
            "{name}: {commits} committed write transactions for one card (budget {BUDGET}); \
             all three cards: {counts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_card_takes_at_most_ten_commits_on_sqlite() {
    let (_dir, t) = support::open().await;
    count("sqlite", &t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_card_takes_at_most_ten_commits_on_postgres() {
    let Ok(base) = std::env::var("TESSERA_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("TESSERA_REQUIRE_POSTGRES").is_err(),
            "TESSERA_REQUIRE_POSTGRES is set but TESSERA_TEST_DATABASE_URL is not"
        );
        return;
    };
    let url = tessera_store::testing::fresh_postgres_database(&base).await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        database_url: Some(url.clone()),
        ..Options::new(dir.path().join("data"))
    };
    let (t, _) = Tessera::open(&options).await.unwrap();
    count("postgres", &t).await;
    drop(t);
    tessera_store::testing::drop_postgres_database(&base, &url).await;
}

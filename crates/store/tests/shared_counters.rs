//! What several `tessera serve` replicas on one database must share, tested with two independent
//! store handles (two pools, as two processes would have) on the same database: the lockout of
//! guessed sign-in names, the cap on refused attempts in the audit log, and the audit chain
//! itself when both append at once. On SQLite always, on PostgreSQL when
//! `TESSERA_TEST_DATABASE_URL` names a server.

use tessera_core::audit::{self, ChainCheck};
use tessera_core::changes::Changes;
use tessera_core::model::Timestamp;
use tessera_core::ports::{NewAuditEvent, Store};
use tessera_core::refusals::{self, PER_MINUTE};
use tessera_core::throttle::{self, Failure, FAILURES_BEFORE_LOCK, FORGET_AFTER_SECONDS};
use tessera_store::SqlStore;

/// A minute's start, far from the epoch so that minute arithmetic is not trivially zero.
const T: i64 = 1_800_000_000 / 60 * 60;

fn refused(kind: audit::EventKind, at: i64) -> NewAuditEvent {
    NewAuditEvent {
        at: Timestamp(at),
        code: kind.code,
        name: kind.name,
        operator: None,
        user: None,
        device: None,
        operation: None,
        details: serde_json::json!({"at": at}),
    }
}

/// A unit with one ordinary event, as `Services::commit` makes it (summaries due first).
fn ordinary(n: i64, at: i64) -> Changes {
    let mut changes = Changes::new();
    changes.audit(NewAuditEvent {
        details: serde_json::json!({"n": n}),
        ..refused(audit::DEVICE_STATE_CHANGED, at)
    });
    refusals::summarise_first(&mut changes, Timestamp(at));
    changes
}

async fn rows(url: &str, table: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let n: i64 = sqlx::Row::get(
        &sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(&pool)
            .await
            .unwrap(),
        "n",
    );
    pool.close().await;
    n
}

/// Checks the whole chain as `tessera audit check` does; the number of events.
async fn chain_holds(store: &SqlStore) -> u64 {
    let mut check = ChainCheck::default();
    let mut before = None;
    loop {
        let events = store.audit_events(before, 1000).await.unwrap();
        let Some(oldest) = events.last() else { break };
        before = Some(oldest.seq);
        for e in &events {
            check.feed(e).expect("the chain holds");
        }
    }
    check
        .finish()
        .expect("the chain starts at the genesis hash");
    check.checked
}

/// Failures through either replica count toward one lock, which both see; a good sign-in on one
/// clears the name for both.
async fn lockout_is_shared(a: &SqlStore, b: &SqlStore) {
    for _ in 0..3 {
        throttle::failed(a, "Admin", T).await.unwrap();
    }
    assert_eq!(
        throttle::failed(b, " admin", T).await.unwrap(),
        Failure::Counted { left: 1 }
    );
    assert_eq!(throttle::locked(a, "admin", T).await.unwrap(), None);
    assert_eq!(
        throttle::failed(b, "admin", T + 1).await.unwrap(),
        Failure::Locked { seconds: 60 }
    );
    assert_eq!(throttle::locked(a, "admin", T + 1).await.unwrap(), Some(60));
    assert_eq!(
        throttle::locked(b, "ADMIN", T + 31).await.unwrap(),
        Some(30)
    );
    assert_eq!(throttle::locked(a, "alice", T + 1).await.unwrap(), None);

    throttle::succeeded(a, "admin").await.unwrap();
    assert_eq!(throttle::locked(b, "admin", T + 2).await.unwrap(), None);
    assert_eq!(
        throttle::failed(b, "admin", T + 2).await.unwrap(),
        Failure::Counted { left: 4 },
        "the count starts again for both"
    );
    throttle::succeeded(b, "admin").await.unwrap();
}

/// Two replicas failing one name at the same moment: every failure is counted, so ten of them
/// lock it twice (a minute, then two), whatever the interleaving.
async fn concurrent_failures_are_all_counted(a: &SqlStore, b: &SqlStore) {
    let tasks: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|store| {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..FAILURES_BEFORE_LOCK {
                    seen.push(throttle::failed(&store, "bob", T).await.unwrap());
                }
                seen
            })
        })
        .collect();
    let mut locks = Vec::new();
    for task in tasks {
        for failure in task.await.unwrap() {
            if let Failure::Locked { seconds } = failure {
                locks.push(seconds);
            }
        }
    }
    locks.sort();
    assert_eq!(locks, [60, 120]);
    throttle::succeeded(a, "bob").await.unwrap();
}

/// A flood of invented names leaves rows only while they matter: a name's row goes once it is
/// neither locked nor has failed for the forgetting time, and a locked name keeps its row.
async fn invented_names_do_not_pile_up(url: &str, a: &SqlStore, b: &SqlStore) {
    let base = rows(url, "sign_in_failures").await;
    for _ in 0..FAILURES_BEFORE_LOCK {
        throttle::failed(a, "carol", T).await.unwrap();
    }
    for i in 0..100 {
        let store = if i % 2 == 0 { a } else { b };
        throttle::failed(store, &format!("guess{i}"), T)
            .await
            .unwrap();
    }
    assert_eq!(rows(url, "sign_in_failures").await, base + 101);
    // Just before the guesses are forgotten nothing goes; carol is locked until T + 60.
    throttle::failed(a, "dave", T + FORGET_AFTER_SECONDS - 1)
        .await
        .unwrap();
    assert_eq!(rows(url, "sign_in_failures").await, base + 102);
    throttle::failed(b, "erin", T + FORGET_AFTER_SECONDS)
        .await
        .unwrap();
    assert_eq!(
        rows(url, "sign_in_failures").await,
        base + 3,
        "the guesses are gone; carol (locked later), dave and erin are kept"
    );
    // Later still, everyone's time has come: erin's failure makes a new record.
    throttle::failed(b, "erin", T + 2 * FORGET_AFTER_SECONDS)
        .await
        .unwrap();
    assert_eq!(
        rows(url, "sign_in_failures").await,
        base + 1,
        "only erin's new record"
    );
    throttle::succeeded(a, "erin").await.unwrap();
}

/// Forty refusals in one minute through two replicas (half of them at once from two tasks):
/// thirty are written, and the next event after the minute, on either replica, comes after one
/// summary that counts the ten others.
async fn refusal_cap_is_shared(url: &str, a: &SqlStore, b: &SqlStore) {
    let minute = T + 600;
    let before = a.audit_events(None, 1).await.unwrap();
    let first_seq = before.first().map_or(0, |e| e.seq);
    for i in 0..20 {
        let store = if i % 2 == 0 { a } else { b };
        let kind = if i % 4 < 2 {
            audit::OPERATOR_SIGN_IN_FAILED
        } else {
            audit::STATION_ENROLMENT_REFUSED
        };
        store
            .commit(&refusals::refusal(refused(kind, minute + i)))
            .await
            .unwrap();
    }
    let tasks: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|store| {
            tokio::spawn(async move {
                for i in 0..10 {
                    let event = refused(audit::STATION_CONNECTION_REFUSED, minute + 30 + i);
                    store.commit(&refusals::refusal(event)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let written = a.audit_events(None, 1000).await.unwrap();
    let written: Vec<_> = written.iter().filter(|e| e.seq > first_seq).collect();
    assert_eq!(
        written.len(),
        PER_MINUTE as usize,
        "thirty of forty written"
    );
    assert!(written
        .iter()
        .all(|e| e.code != audit::REFUSALS_SUMMARISED.code));
    assert!(rows(url, "refusals_left_out").await > 0);

    // The next minute: an ordinary event through b brings the summary first; a is told nothing
    // more, so the summary is written once.
    b.commit(&ordinary(1, minute + 61)).await.unwrap();
    a.commit(&ordinary(2, minute + 62)).await.unwrap();
    let last = a.audit_events(None, 3).await.unwrap();
    assert_eq!(last[0].details["n"], 2);
    assert_eq!(last[1].details["n"], 1);
    let summary = &last[2];
    assert_eq!(summary.code, audit::REFUSALS_SUMMARISED.code);
    assert_eq!(summary.details["total"], 10);
    assert_eq!(summary.details["from"], minute);
    assert_eq!(summary.details["to"], minute + 60);
    // The first twenty (ten sign-in failures, ten enrolment refusals) were all written; the
    // ten left out were the last connection refusals.
    assert_eq!(
        summary.details["left_out"]["StationConnectionRefused"], 10,
        "{}",
        summary.details
    );
    let summaries = a
        .audit_events(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.seq > first_seq && e.code == audit::REFUSALS_SUMMARISED.code)
        .count();
    assert_eq!(summaries, 1);
    assert_eq!(
        rows(url, "refusals_left_out").await,
        0,
        "summarised and gone"
    );
    assert_eq!(
        rows(url, "refusal_minutes").await,
        0,
        "the ended minute's count too"
    );
}

/// Two replicas appending fifty events each at the same time form one chain.
async fn concurrent_appends_form_one_chain(a: &SqlStore, b: &SqlStore) {
    let before = chain_holds(a).await;
    let tasks: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(k, store)| {
            tokio::spawn(async move {
                for i in 0..50 {
                    store
                        .commit(&ordinary(k as i64 * 1000 + i, T + 3600))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(chain_holds(b).await, before + 100);
}

async fn all(url: &str) {
    let a = SqlStore::open(url).await.unwrap();
    let b = SqlStore::open(url).await.unwrap();
    lockout_is_shared(&a, &b).await;
    concurrent_failures_are_all_counted(&a, &b).await;
    invented_names_do_not_pile_up(url, &a, &b).await;
    refusal_cap_is_shared(url, &a, &b).await;
    concurrent_appends_form_one_chain(&a, &b).await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_replicas_share_counters_and_chain() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    all(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_share_counters_and_chain() {
    let base = match std::env::var("TESSERA_TEST_DATABASE_URL") {
        Ok(base) => base,
        Err(_) => {
            assert!(
                std::env::var("TESSERA_REQUIRE_POSTGRES").is_err(),
                "TESSERA_REQUIRE_POSTGRES is set but TESSERA_TEST_DATABASE_URL is not"
            );
            eprintln!("TESSERA_TEST_DATABASE_URL not set, PostgreSQL not tested");
            return;
        }
    };
    let url = tessera_store::testing::fresh_postgres_database(&base).await;
    all(&url).await;
    tessera_store::testing::drop_postgres_database(&base, &url).await;
}

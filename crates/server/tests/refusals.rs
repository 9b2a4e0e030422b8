//! A flood of refused attempts (invented enrolment tokens and station credentials) does not flood
//! the audit log: each minute writes its first refusals, counts the rest, and the next event after
//! the minute is preceded by one `RefusalsSummarised` with the counts. The clock is a test clock,
//! so the minute boundary falls where the test puts it.

mod support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tessera_core::audit;
use tessera_core::model::Timestamp;
use tessera_core::ports::{Clock, Store};
use tessera_core::refusals::PER_MINUTE;
use tessera_core::secret::StationSecret;
use tessera_core::stations;

struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[tokio::test]
async fn refusals_beyond_the_minutes_share_are_counted_not_written() {
    let (_dir, t) = support::open().await;
    let clock = Arc::new(TestClock(AtomicI64::new(1_800_000_000)));
    let mut svc = t.services.clone();
    svc.clock = clock.clone();
    let before = t.store.audit_events(None, 1000).await.unwrap().len();

    let forged = StationSecret::new(format!("tse_{}", "0".repeat(64)));
    for _ in 0..PER_MINUTE + 10 {
        let e = stations::enrol(&svc, &forged).await.unwrap_err();
        assert!(e.to_string().contains("unknown or was already used"), "{e}");
    }
    let unknown = StationSecret::new(format!("tsc_{}", "0".repeat(64)));
    for _ in 0..5 {
        assert!(stations::authenticate(&svc, &unknown).await.is_err());
    }
    let events = t.store.audit_events(None, 1000).await.unwrap();
    assert_eq!(
        events.len() - before,
        PER_MINUTE as usize,
        "the rest were counted"
    );

    // The next minute: the first event written, a refusal here, comes after the summary.
    clock.0.fetch_add(60, Ordering::SeqCst);
    assert!(stations::authenticate(&svc, &unknown).await.is_err());
    let events = t.store.audit_events(None, 3).await.unwrap();
    assert_eq!(events[0].code, audit::STATION_CONNECTION_REFUSED.code);
    let summary = &events[1];
    assert_eq!(summary.code, audit::REFUSALS_SUMMARISED.code);
    assert_eq!(summary.details["left_out"]["StationEnrolmentRefused"], 10);
    assert_eq!(summary.details["left_out"]["StationConnectionRefused"], 5);
    assert_eq!(summary.details["total"], 15);
    assert_eq!(summary.details["to"].as_i64().unwrap() % 60, 0);
}

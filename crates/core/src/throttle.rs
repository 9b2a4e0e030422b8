//! Password guessing is slowed down at the sign-in form. An operator name that fails five times
//! in a row is locked: for a minute the first time, twice as long each time after, up to fifteen
//! minutes; while locked, no password is even checked. A good sign-in clears the name's record.
//!
//! Unknown names are counted and locked like real ones, so the lock tells nothing about which
//! names exist. The records are kept in the database (see [`Store::sign_in_failed`]), so every
//! server replica on it sees the same failures and the same locks, and a restart forgets
//! nothing. Each failure is counted in one atomic step of the store, which applies
//! [`after_failure`] to the stored record: two replicas failing the same name at once count two
//! failures, never one. A record is keyed by a hash of the name (so a password typed into the
//! name field is not kept, and a huge name costs no more than a short one), and it is forgotten
//! once the name has been quiet, neither failing nor locked, for [`FORGET_AFTER_SECONDS`]: a
//! flood of invented names therefore cannot grow the table without bound.

use crate::ports::{Store, StoreError};
use sha2::{Digest, Sha256};

/// Failures in a row that lock a name.
pub const FAILURES_BEFORE_LOCK: u32 = 5;
const FIRST_LOCK_SECONDS: i64 = 60;
const LONGEST_LOCK_SECONDS: i64 = 15 * 60;
/// A name that neither failed nor was locked for this long starts afresh (its record is
/// deleted): as long as the longest lock, so the doubling of locks is kept while it matters.
pub const FORGET_AFTER_SECONDS: i64 = LONGEST_LOCK_SECONDS;

/// What the store keeps of one name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailureRecord {
    /// Failures since the last lock ended (or since the start).
    pub failures: u32,
    /// Locks so far: each lasts twice as long as the one before.
    pub locks: u32,
    /// Unix seconds until which the name is locked.
    pub locked_until: i64,
    /// Unix seconds from which the record is forgotten (and may be deleted).
    pub forget_at: i64,
}

/// What a failure led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Counted; this many more failures lock the name.
    Counted { left: u32 },
    /// This failure locked the name for so many seconds.
    Locked { seconds: i64 },
}

/// The key of a name's record: the SHA-256 of the name as typed loosely (trimmed, lower case).
pub fn key(name: &str) -> String {
    hex::encode(Sha256::digest(name.trim().to_lowercase().as_bytes()))
}

/// The record after one more failure at `now`, and what the failure led to. A record whose time
/// to be forgotten has come counts as none.
pub fn after_failure(record: Option<FailureRecord>, now: i64) -> (FailureRecord, Failure) {
    let mut r = record.filter(|r| r.forget_at > now).unwrap_or_default();
    r.failures += 1;
    let failure = if r.failures < FAILURES_BEFORE_LOCK {
        Failure::Counted {
            left: FAILURES_BEFORE_LOCK - r.failures,
        }
    } else {
        let seconds = (FIRST_LOCK_SECONDS << r.locks.min(10)).min(LONGEST_LOCK_SECONDS);
        r.failures = 0;
        r.locks += 1;
        r.locked_until = now + seconds;
        Failure::Locked { seconds }
    };
    r.forget_at = now.max(r.locked_until) + FORGET_AFTER_SECONDS;
    (r, failure)
}

/// Seconds the name is still locked for, if it is.
pub async fn locked(store: &dyn Store, name: &str, now: i64) -> Result<Option<i64>, StoreError> {
    Ok(store
        .sign_in_record(&key(name))
        .await?
        .map(|r| r.locked_until - now)
        .filter(|&left| left > 0))
}

/// Counts a failed sign-in of `name`, on every replica at once.
pub async fn failed(store: &dyn Store, name: &str, now: i64) -> Result<Failure, StoreError> {
    store.sign_in_failed(&key(name), now).await
}

/// A good sign-in: the name's record is cleared.
pub async fn succeeded(store: &dyn Store, name: &str) -> Result<(), StoreError> {
    store.sign_in_succeeded(&key(name)).await
}

/// "2 minutes", "1 minute", "45 seconds": how long a person has to wait.
pub fn wait_sentence(seconds: i64) -> String {
    match seconds {
        s if s >= 90 => format!("{} minutes", (s + 59) / 60),
        s if s >= 60 => "1 minute".to_owned(),
        1 => "1 second".to_owned(),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` failures at `now`, on a record kept in a variable as the store keeps it in a row.
    fn fail_times(r: &mut Option<FailureRecord>, n: u32, now: i64) -> Failure {
        let mut last = Failure::Counted { left: 0 };
        for _ in 0..n {
            let (next, failure) = after_failure(*r, now);
            *r = Some(next);
            last = failure;
        }
        last
    }

    #[test]
    fn five_failures_lock_the_name_for_a_minute() {
        let mut r = None;
        assert_eq!(fail_times(&mut r, 1, 0), Failure::Counted { left: 4 });
        assert_eq!(fail_times(&mut r, 3, 1), Failure::Counted { left: 1 });
        assert_eq!(r.unwrap().locked_until, 0);
        assert_eq!(fail_times(&mut r, 1, 2), Failure::Locked { seconds: 60 });
        assert_eq!(r.unwrap().locked_until, 62);
        assert_eq!(
            r.unwrap().failures,
            0,
            "the count starts again after the lock"
        );
        assert_eq!(r.unwrap().forget_at, 62 + FORGET_AFTER_SECONDS);
    }

    #[test]
    fn names_are_compared_as_typed_loosely() {
        assert_eq!(key(" ADMIN "), key("admin"));
        assert_ne!(key("admin"), key("alice"));
        assert_eq!(
            key(&"x".repeat(10_000)).len(),
            64,
            "a long name costs no more"
        );
    }

    #[test]
    fn each_lock_lasts_twice_as_long_up_to_fifteen_minutes() {
        let mut r = None;
        let mut now = 0;
        let mut seen = Vec::new();
        for _ in 0..6 {
            match fail_times(&mut r, FAILURES_BEFORE_LOCK, now) {
                Failure::Locked { seconds } => {
                    seen.push(seconds);
                    now += seconds;
                }
                other => panic!("not locked: {other:?}"),
            }
        }
        assert_eq!(seen, [60, 120, 240, 480, 900, 900]);
    }

    #[test]
    fn a_quiet_name_starts_afresh() {
        let mut r = None;
        fail_times(&mut r, FAILURES_BEFORE_LOCK, 0);
        fail_times(&mut r, 4, 60);
        let quiet = 60 + FORGET_AFTER_SECONDS;
        assert_eq!(
            fail_times(&mut r, 1, quiet),
            Failure::Counted { left: 4 },
            "old failures are forgotten"
        );
        fail_times(&mut r, 4, quiet);
        assert_eq!(
            r.unwrap().locked_until - quiet,
            60,
            "and so is the doubling"
        );
        // A name failing just before its record would be forgotten keeps it.
        let mut r = None;
        fail_times(&mut r, 4, 0);
        assert_eq!(
            fail_times(&mut r, 1, FORGET_AFTER_SECONDS - 1),
            Failure::Locked { seconds: 60 }
        );
    }

    #[test]
    fn wait_sentences() {
        assert_eq!(wait_sentence(60), "1 minute");
        assert_eq!(wait_sentence(61), "1 minute");
        assert_eq!(wait_sentence(120), "2 minutes");
        assert_eq!(wait_sentence(899), "15 minutes");
        assert_eq!(wait_sentence(45), "45 seconds");
        assert_eq!(wait_sentence(1), "1 second");
    }
}

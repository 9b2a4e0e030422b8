//! Password guessing is slowed down at the sign-in form. An operator name that fails five times
//! in a row is locked: for a minute the first time, twice as long each time after, up to fifteen
//! minutes; while locked, no password is even checked. A good sign-in clears the name's record.
//!
//! Unknown names are counted and locked like real ones, so the lock tells nothing about which
//! names exist. The records live in this process's memory: a restart forgets them, and each
//! server replica counts on its own. The number of names followed is bounded, so that a flood of
//! invented names cannot fill the memory.

use std::collections::HashMap;
use std::sync::Mutex;

/// Failures in a row that lock a name.
pub const FAILURES_BEFORE_LOCK: u32 = 5;
const FIRST_LOCK_SECONDS: i64 = 60;
const LONGEST_LOCK_SECONDS: i64 = 15 * 60;
/// Names followed at most; beyond it, names that are not locked are forgotten first.
const MAX_NAMES: usize = 10_000;

#[derive(Default)]
pub struct SignInThrottle {
    names: Mutex<HashMap<String, Record>>,
}

#[derive(Clone, Copy, Default)]
struct Record {
    /// Failures since the last lock ended (or since the start).
    failures: u32,
    /// Locks so far: each lasts twice as long as the one before.
    locks: u32,
    /// Unix seconds until which the name is locked.
    locked_until: i64,
}

/// What a failure led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Counted; this many more failures lock the name.
    Counted { left: u32 },
    /// This failure locked the name for so many seconds.
    Locked { seconds: i64 },
}

fn key(name: &str) -> String {
    name.trim().to_lowercase()
}

impl SignInThrottle {
    /// Seconds the name is still locked for, if it is.
    pub fn locked(&self, name: &str, now: i64) -> Option<i64> {
        let names = self.names.lock().expect("throttle lock");
        names
            .get(&key(name))
            .map(|r| r.locked_until - now)
            .filter(|&left| left > 0)
    }

    pub fn failed(&self, name: &str, now: i64) -> Failure {
        let mut names = self.names.lock().expect("throttle lock");
        if names.len() >= MAX_NAMES && !names.contains_key(&key(name)) {
            names.retain(|_, r| r.locked_until > now);
            if names.len() >= MAX_NAMES {
                names.clear();
            }
        }
        let record = names.entry(key(name)).or_default();
        record.failures += 1;
        if record.failures < FAILURES_BEFORE_LOCK {
            return Failure::Counted {
                left: FAILURES_BEFORE_LOCK - record.failures,
            };
        }
        let seconds = (FIRST_LOCK_SECONDS << record.locks.min(10)).min(LONGEST_LOCK_SECONDS);
        record.failures = 0;
        record.locks += 1;
        record.locked_until = now + seconds;
        Failure::Locked { seconds }
    }

    pub fn succeeded(&self, name: &str) {
        self.names.lock().expect("throttle lock").remove(&key(name));
    }
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

    fn fail_times(t: &SignInThrottle, name: &str, n: u32, now: i64) -> Failure {
        let mut last = Failure::Counted { left: 0 };
        for _ in 0..n {
            last = t.failed(name, now);
        }
        last
    }

    #[test]
    fn five_failures_lock_the_name_for_a_minute() {
        let t = SignInThrottle::default();
        assert_eq!(t.failed("admin", 0), Failure::Counted { left: 4 });
        assert_eq!(fail_times(&t, "admin", 3, 1), Failure::Counted { left: 1 });
        assert_eq!(t.locked("admin", 1), None);
        assert_eq!(t.failed("admin", 2), Failure::Locked { seconds: 60 });
        assert_eq!(t.locked("admin", 2), Some(60));
        assert_eq!(
            t.locked(" ADMIN ", 61),
            Some(1),
            "names are compared as typed loosely"
        );
        assert_eq!(t.locked("admin", 62), None, "the lock ends by itself");
        assert_eq!(t.locked("alice", 2), None, "other names are not touched");
    }

    #[test]
    fn each_lock_lasts_twice_as_long_up_to_fifteen_minutes() {
        let t = SignInThrottle::default();
        let mut now = 0;
        let mut seen = Vec::new();
        for _ in 0..6 {
            match fail_times(&t, "admin", FAILURES_BEFORE_LOCK, now) {
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
    fn a_good_sign_in_clears_the_record() {
        let t = SignInThrottle::default();
        fail_times(&t, "admin", FAILURES_BEFORE_LOCK, 0);
        t.succeeded("admin");
        assert_eq!(t.locked("admin", 1), None);
        assert_eq!(t.failed("admin", 1), Failure::Counted { left: 4 });
    }

    #[test]
    fn invented_names_cannot_fill_the_memory_nor_free_a_locked_name() {
        let t = SignInThrottle::default();
        fail_times(&t, "admin", FAILURES_BEFORE_LOCK, 0);
        for i in 0..MAX_NAMES + 10 {
            t.failed(&format!("guess{i}"), 1);
        }
        assert!(t.names.lock().unwrap().len() <= MAX_NAMES);
        assert!(t.locked("admin", 2).is_some());
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

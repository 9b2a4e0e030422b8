//! Refused attempts by someone who is not signed in (a wrong password, an unknown station token
//! or credential) are audited, yet anyone who can reach the server can cause them. So that a
//! script cannot flood the audit log, at most [`PER_MINUTE`] of them are written in each minute
//! of the clock; the rest are counted, and one `RefusalsSummarised` event, written with the next
//! event after that minute, says how many of each kind were left out.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Refusals written one by one in each minute.
pub const PER_MINUTE: u32 = 30;

#[derive(Default)]
pub struct RefusalLimiter {
    window: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    /// Unix minute this window counts.
    minute: i64,
    written: u32,
    left_out: BTreeMap<&'static str, u64>,
}

/// The refusals a minute left out of the audit log, by event name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Unix seconds: the minute's start and end.
    pub from: i64,
    pub to: i64,
    pub left_out: BTreeMap<&'static str, u64>,
}

impl Summary {
    pub fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "from": self.from,
            "to": self.to,
            "left_out": self.left_out,
            "total": self.left_out.values().sum::<u64>(),
        })
    }
}

impl Window {
    /// Moves to `now`'s minute; the summary of the minute that ended, if it left any out.
    fn roll(&mut self, now: i64) -> Option<Summary> {
        let minute = now.div_euclid(60);
        if minute == self.minute {
            return None;
        }
        let ended = std::mem::replace(
            self,
            Window {
                minute,
                ..Default::default()
            },
        );
        (!ended.left_out.is_empty()).then(|| Summary {
            from: ended.minute * 60,
            to: ended.minute * 60 + 60,
            left_out: ended.left_out,
        })
    }
}

impl RefusalLimiter {
    /// A summary that is due because its minute has ended.
    pub fn due(&self, now: i64) -> Option<Summary> {
        self.window.lock().expect("refusal window").roll(now)
    }

    /// Whether a refusal named `name` is written now, and a summary due before it.
    pub fn admit(&self, name: &'static str, now: i64) -> (bool, Option<Summary>) {
        let mut window = self.window.lock().expect("refusal window");
        let summary = window.roll(now);
        if window.written < PER_MINUTE {
            window.written += 1;
            (true, summary)
        } else {
            *window.left_out.entry(name).or_default() += 1;
            (false, summary)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_writes_its_first_refusals_and_counts_the_rest() {
        let l = RefusalLimiter::default();
        let base = 1_000 * 60;
        for i in 0..PER_MINUTE {
            assert_eq!(l.admit("A", base + (i as i64 % 60)), (true, None));
        }
        assert_eq!(l.admit("A", base + 59), (false, None));
        assert_eq!(l.admit("B", base + 59), (false, None));
        assert_eq!(l.admit("A", base + 59), (false, None));
        assert_eq!(l.due(base + 59), None, "the minute has not ended");
        let summary = l.due(base + 60).expect("due once the minute ended");
        assert_eq!(summary.from, base);
        assert_eq!(summary.to, base + 60);
        assert_eq!(summary.left_out, BTreeMap::from([("A", 2), ("B", 1)]));
        assert_eq!(summary.details()["total"], 3);
        assert_eq!(l.due(base + 61), None, "a summary is given once");
        assert_eq!(
            l.admit("A", base + 61),
            (true, None),
            "a new minute writes again"
        );
    }

    #[test]
    fn a_refusal_after_the_minute_brings_the_summary() {
        let l = RefusalLimiter::default();
        for _ in 0..=PER_MINUTE {
            l.admit("A", 0);
        }
        let (written, summary) = l.admit("A", 600);
        assert!(written);
        assert_eq!(summary.unwrap().left_out, BTreeMap::from([("A", 1)]));
    }

    #[test]
    fn a_quiet_minute_owes_nothing() {
        let l = RefusalLimiter::default();
        l.admit("A", 0);
        assert_eq!(l.due(120), None);
    }
}

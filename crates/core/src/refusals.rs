//! Refused attempts by someone who is not signed in (a wrong password, an unknown station token
//! or credential) are audited, yet anyone who can reach the server can cause them. So that a
//! script cannot flood the audit log, at most [`PER_MINUTE`] of them are written in each minute
//! of the clock; the rest are counted, and one `RefusalsSummarised` event, written with the next
//! event after that minute, says how many of each kind were left out.
//!
//! The counts are kept in the database, in the same transaction as the audit events, so the
//! cap holds for all server replicas on one database together: a refusal is a
//! [`Change::AuditRefusal`], which the store writes only while the minute's count is under the
//! cap, and every unit of work that writes an event starts with a
//! [`Change::SummariseRefusals`], which writes the summary of an ended minute once (whichever
//! replica comes first) and deletes that minute's counts.

use crate::audit;
use crate::changes::{Change, Changes};
use crate::model::Timestamp;
use crate::ports::NewAuditEvent;
use std::collections::BTreeMap;

/// Refusals written one by one in each minute.
pub const PER_MINUTE: u32 = 30;

/// The refusals a minute left out of the audit log, by event name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Unix seconds: the minute's start and end.
    pub from: i64,
    pub to: i64,
    pub left_out: BTreeMap<String, u64>,
}

impl Summary {
    /// The summary of the Unix minute `minute` (not seconds).
    pub fn of_minute(minute: i64, left_out: BTreeMap<String, u64>) -> Self {
        Self {
            from: minute * 60,
            to: minute * 60 + 60,
            left_out,
        }
    }

    pub fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "from": self.from,
            "to": self.to,
            "left_out": self.left_out,
            "total": self.left_out.values().sum::<u64>(),
        })
    }

    /// The `RefusalsSummarised` event written at `at`.
    pub fn event(&self, at: Timestamp) -> NewAuditEvent {
        NewAuditEvent {
            at,
            code: audit::REFUSALS_SUMMARISED.code,
            name: audit::REFUSALS_SUMMARISED.name,
            operator: None,
            user: None,
            device: None,
            operation: None,
            details: self.details(),
        }
    }
}

/// The Unix minute of a time.
pub fn minute_of(at: Timestamp) -> i64 {
    at.0.div_euclid(60)
}

/// Puts the summaries due at `now` first in a unit that writes audit events, so the log keeps
/// its order.
pub fn summarise_first(changes: &mut Changes, now: Timestamp) {
    if changes.audit_events() > 0 {
        changes.list.insert(0, Change::SummariseRefusals { now });
    }
}

/// The unit of work of one refusal: the summaries due, then the refusal's event, written only
/// within the minute's share.
pub fn refusal(event: NewAuditEvent) -> Changes {
    let now = event.at;
    let mut changes = Changes::new();
    changes.push(Change::AuditRefusal {
        event,
        per_minute: PER_MINUTE,
    });
    summarise_first(&mut changes, now);
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_covers_its_minute() {
        let s = Summary::of_minute(
            1_000,
            BTreeMap::from([("A".to_owned(), 2), ("B".to_owned(), 1)]),
        );
        assert_eq!((s.from, s.to), (60_000, 60_060));
        let details = s.details();
        assert_eq!(details["total"], 3);
        assert_eq!(details["left_out"]["A"], 2);
        let event = s.event(Timestamp(60_061));
        assert_eq!(event.code, audit::REFUSALS_SUMMARISED.code);
        assert_eq!(event.at, Timestamp(60_061));
    }

    #[test]
    fn a_refusal_is_preceded_by_the_summaries_due() {
        let event = Summary::of_minute(0, BTreeMap::new()).event(Timestamp(125));
        let changes = refusal(event);
        assert!(matches!(
            changes.list[0],
            Change::SummariseRefusals {
                now: Timestamp(125)
            }
        ));
        assert!(matches!(
            changes.list[1],
            Change::AuditRefusal {
                per_minute: PER_MINUTE,
                ..
            }
        ));
        assert_eq!(minute_of(Timestamp(125)), 2);
        assert_eq!(minute_of(Timestamp(-1)), -1);
    }

    #[test]
    fn only_units_with_events_look_for_summaries() {
        let mut quiet = Changes::new();
        quiet.push(Change::DeletePhoto(crate::ids::UserId::new("ann")));
        summarise_first(&mut quiet, Timestamp(0));
        assert_eq!(quiet.list.len(), 1);
    }
}

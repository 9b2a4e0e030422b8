//! The device (card) lifecycle: one pure transition function, tested from a table.
//!
//! ```text
//!  Available --Assign--> Assigned --StartProduction--> InProduction --CompleteProduction--> Pending
//!      ^                    |                               |                                  |
//!      |                    |Terminate                      |Fail                              |Activate
//!  MakeAvailable            v                               v                                  v
//!      |               Terminated <--Terminate-- Pending  Failed                  Active <--Resume-- Suspended
//!  Recycled <--Recycle-- (Terminated | Failed)            Active --Suspend--> Suspended
//!                                                         (Active | Suspended | Pending) --Terminate--> Terminated
//! ```
//!
//! A card is never reused without a reset. The issuance resets a card whose every record is
//! `Failed`, `Terminated` or `Recycled` before it personalises it again under a new record; the
//! old records keep their state as history (see `issuance::card_history`).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    Available,
    Assigned,
    InProduction,
    Pending,
    Active,
    Suspended,
    Terminated,
    Failed,
    Recycled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    None,
    Lost,
    Stolen,
    Damaged,
    Forgotten,
    Expired,
    Renew,
    Failed,
    /// The holder left: disabled or removed at their source (CSV, directory) or by an operator.
    Left,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceCommand {
    Assign,
    StartProduction,
    CompleteProduction,
    Activate,
    Suspend(Reason),
    Resume,
    Terminate(Reason),
    Fail,
    Recycle,
    MakeAvailable,
}

/// The transition that was refused: the state it was asked from and the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {state} card cannot be {command}")]
pub struct TransitionRefused {
    pub state: DeviceState,
    pub command: &'static str,
}

impl DeviceCommand {
    /// The past participle used in messages ("cannot be activated").
    pub fn verb(self) -> &'static str {
        match self {
            Self::Assign => "assigned",
            Self::StartProduction => "put into production",
            Self::CompleteProduction => "completed",
            Self::Activate => "activated",
            Self::Suspend(_) => "suspended",
            Self::Resume => "resumed",
            Self::Terminate(_) => "terminated",
            Self::Fail => "marked failed",
            Self::Recycle => "recycled",
            Self::MakeAvailable => "made available",
        }
    }
}

/// Applies `command` to a card in `state`, returning the next state and the reason it carries.
pub fn transition(
    state: DeviceState,
    command: DeviceCommand,
) -> Result<(DeviceState, Reason), TransitionRefused> {
    use DeviceCommand as C;
    use DeviceState as S;
    let next = match (state, command) {
        (S::Available, C::Assign) => (S::Assigned, Reason::None),
        (S::Assigned, C::StartProduction) => (S::InProduction, Reason::None),
        (S::InProduction, C::CompleteProduction) => (S::Pending, Reason::None),
        (S::InProduction | S::Assigned, C::Fail) => (S::Failed, Reason::Failed),
        (S::Pending, C::Activate) => (S::Active, Reason::None),
        (S::Active, C::Suspend(reason)) => (S::Suspended, reason),
        (S::Suspended, C::Resume) => (S::Active, Reason::None),
        (S::Assigned | S::Pending | S::Active | S::Suspended, C::Terminate(reason)) => {
            (S::Terminated, reason)
        }
        (S::Terminated | S::Failed, C::Recycle) => (S::Recycled, Reason::None),
        (S::Recycled, C::MakeAvailable) => (S::Available, Reason::None),
        _ => {
            return Err(TransitionRefused {
                state,
                command: command.verb(),
            })
        }
    };
    Ok(next)
}

impl DeviceState {
    pub const ALL: [DeviceState; 9] = [
        Self::Available,
        Self::Assigned,
        Self::InProduction,
        Self::Pending,
        Self::Active,
        Self::Suspended,
        Self::Terminated,
        Self::Failed,
        Self::Recycled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Assigned => "assigned",
            Self::InProduction => "in_production",
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Terminated => "terminated",
            Self::Failed => "failed",
            Self::Recycled => "recycled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// What a person reads on the User page.
    pub fn label(self) -> &'static str {
        match self {
            Self::Available => "Available",
            Self::Assigned => "Assigned",
            Self::InProduction => "In production",
            Self::Pending => "Pending",
            Self::Active => "Active",
            Self::Suspended => "Suspended",
            Self::Terminated => "Terminated",
            Self::Failed => "Failed",
            Self::Recycled => "Recycled",
        }
    }
}

impl fmt::Display for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Self::None,
        Self::Lost,
        Self::Stolen,
        Self::Damaged,
        Self::Forgotten,
        Self::Expired,
        Self::Renew,
        Self::Failed,
        Self::Left,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Lost => "lost",
            Self::Stolen => "stolen",
            Self::Damaged => "damaged",
            Self::Forgotten => "forgotten",
            Self::Expired => "expired",
            Self::Renew => "renew",
            Self::Failed => "failed",
            Self::Left => "left",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceCommand as C;
    use DeviceState as S;

    /// Every (state, command) pair that is allowed, with its result. Everything else is refused.
    const ALLOWED: &[(DeviceState, DeviceCommand, DeviceState, Reason)] = &[
        (S::Available, C::Assign, S::Assigned, Reason::None),
        (
            S::Assigned,
            C::StartProduction,
            S::InProduction,
            Reason::None,
        ),
        (S::Assigned, C::Fail, S::Failed, Reason::Failed),
        (
            S::Assigned,
            C::Terminate(Reason::Damaged),
            S::Terminated,
            Reason::Damaged,
        ),
        (
            S::InProduction,
            C::CompleteProduction,
            S::Pending,
            Reason::None,
        ),
        (S::InProduction, C::Fail, S::Failed, Reason::Failed),
        (S::Pending, C::Activate, S::Active, Reason::None),
        (
            S::Pending,
            C::Terminate(Reason::Damaged),
            S::Terminated,
            Reason::Damaged,
        ),
        (
            S::Active,
            C::Suspend(Reason::Forgotten),
            S::Suspended,
            Reason::Forgotten,
        ),
        (
            S::Active,
            C::Terminate(Reason::Lost),
            S::Terminated,
            Reason::Lost,
        ),
        (S::Suspended, C::Resume, S::Active, Reason::None),
        (
            S::Suspended,
            C::Terminate(Reason::Stolen),
            S::Terminated,
            Reason::Stolen,
        ),
        (S::Terminated, C::Recycle, S::Recycled, Reason::None),
        (S::Failed, C::Recycle, S::Recycled, Reason::None),
        (S::Recycled, C::MakeAvailable, S::Available, Reason::None),
    ];

    const COMMANDS: [DeviceCommand; 10] = [
        C::Assign,
        C::StartProduction,
        C::CompleteProduction,
        C::Activate,
        C::Suspend(Reason::Forgotten),
        C::Resume,
        C::Terminate(Reason::Lost),
        C::Fail,
        C::Recycle,
        C::MakeAvailable,
    ];

    #[test]
    fn allowed_transitions_give_the_table_result() {
        for &(from, cmd, to, reason) in ALLOWED {
            assert_eq!(transition(from, cmd), Ok((to, reason)), "{from:?} {cmd:?}");
        }
    }

    #[test]
    fn every_other_pair_is_refused() {
        for from in DeviceState::ALL {
            for cmd in COMMANDS {
                let allowed = ALLOWED.iter().any(|&(f, c, _, _)| {
                    f == from && std::mem::discriminant(&c) == std::mem::discriminant(&cmd)
                });
                if !allowed {
                    let err = transition(from, cmd).unwrap_err();
                    assert_eq!(err.state, from);
                    assert!(err.to_string().contains("cannot be"), "{err}");
                }
            }
        }
    }

    #[test]
    fn cancelled_issuance_stays_pending() {
        // Cancel in the Print step issues no command at all: Pending has no silent way to Active.
        assert!(transition(S::Pending, C::Resume).is_err());
        assert!(transition(S::Pending, C::Suspend(Reason::None)).is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in DeviceState::ALL {
            assert_eq!(DeviceState::parse(s.as_str()), Some(s));
        }
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
    }
}

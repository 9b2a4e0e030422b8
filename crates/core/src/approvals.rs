//! The two-person rule: a device policy names the actions (issue, terminate, reveal the initial
//! PIN, unlock) that one operator may request but only a second operator may approve.
//!
//! ```text
//!   operator A does X ── policy requires two persons for X? ── no ──> X is done
//!                                 │ yes
//!        an Approved request of A for X on this subject? ── yes ──> X is done; the request is
//!                                 │ no                               Used in the same unit of
//!                                 v                                  work, the events name A and B
//!   Pending (ApprovalRequested) ── B approves ──> Approved (ApprovalGranted)
//!                               └─ B rejects ───> Rejected (ApprovalRejected)
//! ```
//!
//! No secret is ever part of a request: A asks, B decides, and A performs the action again
//! (the PIN typed, the card in the reader) once approved. B must be someone else, hold
//! [`Permission::ApproveRequests`] *and* the permission of the action itself, and see the
//! subject in their scope. A request lapses [`LIFETIME_SECONDS`] after it was made, decided or not,
//! so an approval given in the morning cannot be used next week.

use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::ids::*;
use crate::model::*;
use crate::services::{Actor, AuditContext, Services};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How long a request stays good, from the moment it was made: 8 hours (one shift).
pub const LIFETIME_SECONDS: i64 = 8 * 3600;

/// An action a device policy can put under the two-person rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TwoPersonAction {
    Issue,
    Terminate,
    RevealPin,
    Unlock,
}

impl TwoPersonAction {
    pub const ALL: [TwoPersonAction; 4] =
        [Self::Issue, Self::Terminate, Self::RevealPin, Self::Unlock];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Terminate => "terminate",
            Self::RevealPin => "reveal_pin",
            Self::Unlock => "unlock",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// What the action does, for pages and sentences ("terminate a card").
    pub fn label(self) -> &'static str {
        match self {
            Self::Issue => "issue a card",
            Self::Terminate => "terminate a card",
            Self::RevealPin => "reveal a card's initial PIN",
            Self::Unlock => "unlock a card's PIN",
        }
    }

    /// The permission the action needs; whoever approves it must hold it too.
    pub fn permission(self) -> Permission {
        match self {
            Self::Issue => Permission::IssueDevice,
            Self::Terminate | Self::RevealPin => Permission::ManageDevices,
            Self::Unlock => Permission::UnlockDevice,
        }
    }
}

/// What a request is about: a card, or for an issuance the user and the policy chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Subject {
    Device {
        device: DeviceId,
        serial: String,
        user: Option<UserId>,
    },
    Issuance {
        user: UserId,
        policy: PolicyId,
    },
}

impl Subject {
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Self::Device { user, .. } => user.as_ref(),
            Self::Issuance { user, .. } => Some(user),
        }
    }

    pub fn device(&self) -> Option<&DeviceId> {
        match self {
            Self::Device { device, .. } => Some(device),
            Self::Issuance { .. } => None,
        }
    }

    /// "card 1234 of jdoe", "jdoe under policy piv-standard".
    pub fn describe(&self) -> String {
        match self {
            Self::Device {
                serial, user: None, ..
            } => format!("card {serial}"),
            Self::Device {
                serial,
                user: Some(u),
                ..
            } => format!("card {serial} of {u}"),
            Self::Issuance { user, policy } => format!("{user} under policy {policy}"),
        }
    }
}

/// Where a request stands. Pending -> Approved | Rejected; Approved -> Used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    Approved,
    Rejected,
    Used,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Used => "used",
        }
    }
}

/// One operator's request for a second operator's approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub id: ApprovalId,
    pub action: TwoPersonAction,
    pub subject: Subject,
    /// Why the requester wants it (the card's reason for a termination); may be empty.
    pub reason: String,
    pub requested_by: OperatorId,
    pub requested_at: Timestamp,
    pub state: ApprovalState,
    pub decided_by: Option<OperatorId>,
    pub decided_at: Option<Timestamp>,
    /// The approver's comment.
    #[serde(default)]
    pub comment: String,
    pub used_at: Option<Timestamp>,
}

impl Approval {
    /// Whether the request has lapsed at `now` (made [`LIFETIME_SECONDS`] ago or more).
    pub fn lapsed(&self, now: Timestamp) -> bool {
        now.0 >= self.requested_at.0 + LIFETIME_SECONDS
    }

    fn is_for(&self, actor: &Actor, action: TwoPersonAction, subject: &Subject) -> bool {
        self.requested_by == actor.operator && self.action == action && &self.subject == subject
    }
}

/// The earliest request time that has not lapsed at `now` (the store lists requests from it).
fn cutoff(now: Timestamp) -> Timestamp {
    Timestamp(now.0 - LIFETIME_SECONDS)
}

/// What the gate lets through: nothing to do (the policy does not ask for two persons), or an
/// approval that the action spends in its own unit of work.
#[derive(Debug, Default)]
#[must_use = "an approval must be spent in the action's unit of work"]
pub struct Grant(Option<Approval>);

impl Grant {
    /// No approval needed.
    pub fn none() -> Self {
        Self(None)
    }

    /// The approval, when one is being spent.
    pub fn approval(&self) -> Option<&Approval> {
        self.0.as_ref()
    }

    /// Adds to the action's `changes`: the request becomes Used (only while still Approved, so
    /// it is used once), every event of the requester in the unit names the approver, and an
    /// `ApprovalUsed` event closes the request's trail. Call it once the action's events are in.
    pub fn spend(self, svc: &Services, changes: &mut Changes) {
        let Some(mut approval) = self.0 else { return };
        let approver = approval.decided_by.clone();
        for change in &mut changes.list {
            if let Change::Audit(event) = change {
                if event.operator.as_ref() == Some(&approval.requested_by) {
                    if let Some(details) = event.details.as_object_mut() {
                        details.insert("approved_by".into(), json!(approver));
                        details.insert("approval".into(), json!(approval.id));
                    }
                }
            }
        }
        approval.state = ApprovalState::Used;
        approval.used_at = Some(svc.clock.now());
        changes.audit(svc.event(
            audit::APPROVAL_USED,
            context(&approval, &approval.requested_by),
            json!({"approval": approval.id, "action": approval.action.as_str(),
                   "subject": approval.subject, "approved_by": approver}),
        ));
        changes.push(Change::PutApproval {
            approval,
            expected: Some(ApprovalState::Approved),
        });
    }
}

fn context<'a>(approval: &'a Approval, operator: &'a OperatorId) -> AuditContext<'a> {
    AuditContext {
        operator: Some(operator),
        user: approval.subject.user(),
        device: approval.subject.device(),
        operation: None,
    }
}

/// The gate of an action on a card: the card's policy decides (see [`gate`]).
pub async fn for_device(
    svc: &Services,
    actor: &Actor,
    action: TwoPersonAction,
    device: &DeviceId,
    reason: &str,
) -> Result<Grant, CoreError> {
    // Someone who may not do the action is told so, whatever the card and its policy.
    actor.require(action.permission(), action.label())?;
    let d = svc.device_in_scope(actor, device).await?;
    let policy = match &d.policy {
        Some(id) => svc
            .store
            .policies()
            .await?
            .into_iter()
            .find(|p| &p.id == id),
        None => None,
    };
    let subject = Subject::Device {
        device: d.id,
        serial: d.serial,
        user: d.user,
    };
    gate(svc, actor, action, subject, policy.as_ref(), reason).await
}

/// Lets `actor` do `action` on `subject` when `policy` does not put it under the two-person rule,
/// or when a second operator approved the actor's request for it (the [`Grant`] to spend).
/// Otherwise records a Pending request (once: asking again does not add another) and refuses
/// with [`CoreError::ApprovalRequired`].
pub async fn gate(
    svc: &Services,
    actor: &Actor,
    action: TwoPersonAction,
    subject: Subject,
    policy: Option<&DevicePolicy>,
    reason: &str,
) -> Result<Grant, CoreError> {
    actor.require(action.permission(), action.label())?;
    gate_checked(svc, actor, action, subject, policy, reason).await
}

/// [`gate`] for a use case that checked a permission of its own that includes the action (the
/// help desk's replacement and recycling end a card as a termination does, under the
/// permission to replace or recycle cards).
pub async fn gate_checked(
    svc: &Services,
    actor: &Actor,
    action: TwoPersonAction,
    subject: Subject,
    policy: Option<&DevicePolicy>,
    reason: &str,
) -> Result<Grant, CoreError> {
    if !policy.is_some_and(|p| p.two_person.contains(&action)) {
        return Ok(Grant::none());
    }
    let now = svc.clock.now();
    let since = cutoff(now);
    let mine = |a: &Approval| a.is_for(actor, action, &subject) && !a.lapsed(now);
    if let Some(approved) = svc
        .store
        .approvals(ApprovalState::Approved, since)
        .await?
        .into_iter()
        .find(mine)
    {
        return Ok(Grant(Some(approved)));
    }
    let pending = svc
        .store
        .approvals(ApprovalState::Pending, since)
        .await?
        .into_iter()
        .find(mine);
    let approval = match pending {
        Some(pending) => pending,
        None => {
            let approval = Approval {
                id: ApprovalId::new(svc.random.uuid()),
                action,
                subject,
                reason: reason.trim().to_owned(),
                requested_by: actor.operator.clone(),
                requested_at: now,
                state: ApprovalState::Pending,
                decided_by: None,
                decided_at: None,
                comment: String::new(),
                used_at: None,
            };
            let mut changes = Changes::new();
            changes.audit(svc.event(
                audit::APPROVAL_REQUESTED,
                context(&approval, &actor.operator),
                json!({"approval": approval.id, "action": action.as_str(),
                       "subject": approval.subject, "reason": approval.reason}),
            ));
            changes.push(Change::PutApproval {
                approval: approval.clone(),
                expected: None,
            });
            svc.commit(changes).await?;
            approval
        }
    };
    Err(CoreError::ApprovalRequired {
        approval: approval.id.clone(),
        message: format!(
            "the device policy requires two persons to {}: your request {} waits in the \
             Approvals queue until a second operator approves it; then do it again",
            action.label(),
            approval.id
        ),
    })
}

/// Whether `actor` could decide `approval`: someone else, allowed to approve and to do the
/// action, with the subject in scope.
async fn may_decide(svc: &Services, actor: &Actor, approval: &Approval) -> bool {
    actor.may(Permission::ApproveRequests)
        && actor.may(approval.action.permission())
        && approval.requested_by != actor.operator
        && in_scope(svc, actor, &approval.subject).await
}

async fn in_scope(svc: &Services, actor: &Actor, subject: &Subject) -> bool {
    match subject {
        Subject::Device { device, .. } => svc.device_in_scope(actor, device).await.is_ok(),
        Subject::Issuance { user, .. } => svc.user_in_scope(actor, user).await.is_ok(),
    }
}

/// One row of the Approvals queue, with what the viewer may do with it.
#[derive(Clone, Debug, Serialize)]
pub struct QueueEntry {
    #[serde(flatten)]
    pub approval: Approval,
    /// The viewer may approve or reject it.
    pub decidable: bool,
    /// The viewer made it.
    pub own: bool,
}

/// The requests that have not lapsed and that `actor` may see, oldest first: the pending
/// requests they could decide, and their own requests whatever their state (so they know when
/// to go ahead). Nobody sees another operator's request on a user outside their scope.
pub async fn queue(svc: &Services, actor: &Actor) -> Result<Vec<QueueEntry>, CoreError> {
    let now = svc.clock.now();
    let since = cutoff(now);
    let mut out = Vec::new();
    for state in [
        ApprovalState::Pending,
        ApprovalState::Approved,
        ApprovalState::Rejected,
    ] {
        for approval in svc.store.approvals(state, since).await? {
            if approval.lapsed(now) {
                continue;
            }
            let own = approval.requested_by == actor.operator;
            let decidable =
                state == ApprovalState::Pending && may_decide(svc, actor, &approval).await;
            if own || decidable {
                out.push(QueueEntry {
                    approval,
                    decidable,
                    own,
                });
            }
        }
    }
    out.sort_by_key(|e| e.approval.requested_at);
    Ok(out)
}

/// Approves (`approve`) or rejects a pending request, with the approver's comment.
pub async fn decide(
    svc: &Services,
    actor: &Actor,
    id: &ApprovalId,
    approve: bool,
    comment: &str,
) -> Result<Approval, CoreError> {
    actor.require(Permission::ApproveRequests, "approve or reject requests")?;
    let not_found = || CoreError::NotFound(format!("the request {id}"));
    let mut approval = svc.store.approval(id).await.map_err(|_| not_found())?;
    if !in_scope(svc, actor, &approval.subject).await {
        return Err(not_found());
    }
    if approval.requested_by == actor.operator {
        return Err(CoreError::Forbidden(
            "decide your own request: a second operator must approve it".into(),
        ));
    }
    actor.require(
        approval.action.permission(),
        &format!(
            "approve a request to {}, because you may not do it yourself",
            approval.action.label()
        ),
    )?;
    if approval.state != ApprovalState::Pending {
        return Err(CoreError::Invalid(format!(
            "this request was already {}",
            approval.state.as_str()
        )));
    }
    let now = svc.clock.now();
    if approval.lapsed(now) {
        return Err(CoreError::Invalid(
            "this request lapsed (requests are good for 8 hours); the operator must ask again"
                .into(),
        ));
    }
    approval.state = if approve {
        ApprovalState::Approved
    } else {
        ApprovalState::Rejected
    };
    approval.decided_by = Some(actor.operator.clone());
    approval.decided_at = Some(now);
    approval.comment = comment.trim().to_owned();
    let kind = if approve {
        audit::APPROVAL_GRANTED
    } else {
        audit::APPROVAL_REJECTED
    };
    let mut changes = Changes::new();
    changes.audit(svc.event(
        kind,
        context(&approval, &actor.operator),
        json!({"approval": approval.id, "action": approval.action.as_str(),
               "subject": approval.subject, "requested_by": approval.requested_by,
               "comment": approval.comment}),
    ));
    changes.push(Change::PutApproval {
        approval: approval.clone(),
        expected: Some(ApprovalState::Pending),
    });
    svc.commit(changes).await?;
    Ok(approval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_and_name_their_permission() {
        for a in TwoPersonAction::ALL {
            assert_eq!(TwoPersonAction::parse(a.as_str()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        assert_eq!(
            TwoPersonAction::Unlock.permission(),
            Permission::UnlockDevice
        );
        assert_eq!(TwoPersonAction::Issue.permission(), Permission::IssueDevice);
    }

    #[test]
    fn a_request_lapses_after_eight_hours() {
        let a = Approval {
            id: ApprovalId::new("a"),
            action: TwoPersonAction::Terminate,
            subject: Subject::Issuance {
                user: UserId::new("jdoe"),
                policy: PolicyId::new("p"),
            },
            reason: String::new(),
            requested_by: OperatorId::new("alice"),
            requested_at: Timestamp(1_000),
            state: ApprovalState::Approved,
            decided_by: None,
            decided_at: None,
            comment: String::new(),
            used_at: None,
        };
        assert!(!a.lapsed(Timestamp(1_000 + 8 * 3600 - 1)));
        assert!(a.lapsed(Timestamp(1_000 + 8 * 3600)));
        assert_eq!(cutoff(Timestamp(1_000 + 8 * 3600)), a.requested_at);
    }
}

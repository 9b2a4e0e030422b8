//! Biometric enrolment data of a person: the fingerprints an enrolment system captured (an INCITS
//! 378 record of two finger views, see [`crate::fingerprints`]), which the card's fingerprints
//! object carries when the device policy asks for it.
//!
//! Enrolment data is not part of a person's record at their source: an operator (or the
//! enrolment system's account) with `ManageUsers` enrols it for anyone in their scope, whoever
//! keeps the rest of the record. The record is checked before anything is stored; the audit
//! event says which fingers and how many minutiae, and the record's digest, never the minutiae.

use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::fingerprints;
use crate::fips201::Fingerprints;
use crate::ids::UserId;
use crate::model::{DevicePolicy, Permission, User};
use crate::services::{Actor, AuditContext, Services};
use serde::Serialize;
use serde_json::json;

/// What the User page and the API say of a person's fingerprints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FingerprintsSummary {
    /// Made by Tessera for a demo person, not captured.
    pub synthetic: bool,
    /// The number of finger views (2 for any record taken).
    pub views: usize,
    /// The fingers and their minutiae, e.g. `right index finger (42 minutiae), ...`.
    pub fingers: String,
}

impl FingerprintsSummary {
    /// The summary of a stored record (one that cannot be read any more, written by an older
    /// release, says so instead of failing the page).
    pub fn of(stored: &Fingerprints) -> Self {
        match fingerprints::parse(&stored.incits_378) {
            Ok(record) => Self {
                synthetic: stored.synthetic,
                views: record.views.len(),
                fingers: record.describe(),
            },
            Err(e) => Self {
                synthetic: stored.synthetic,
                views: 0,
                fingers: format!("unreadable: {e}"),
            },
        }
    }

    /// `enrolled (2 finger views)` or `synthetic (demo data)`.
    pub fn label(&self) -> String {
        if self.synthetic {
            "synthetic (demo data)".into()
        } else {
            format!("enrolled ({} finger views)", self.views)
        }
    }
}

fn ctx<'a>(actor: &'a Actor, uid: &'a UserId) -> AuditContext<'a> {
    AuditContext {
        operator: Some(&actor.operator),
        user: Some(uid),
        ..Default::default()
    }
}

/// The details of the audit event for a record: fingers, minutiae counts, size and digest.
pub(crate) fn audit_details(
    record: &fingerprints::MinutiaeRecord,
    bytes: &[u8],
) -> serde_json::Value {
    json!({
        "fingers": record.views.iter().map(|v| fingerprints::finger_name(v.position)).collect::<Vec<_>>(),
        "minutiae": record.views.iter().map(|v| v.minutiae.len()).collect::<Vec<_>>(),
        "bytes": bytes.len(),
        "sha256": crate::people::reconcile::sha256_hex(bytes),
    })
}

/// Refuses a record that is not one a PIV card can carry, saying why (`USR0006`).
pub fn check_record(bytes: &[u8]) -> Result<fingerprints::MinutiaeRecord, CoreError> {
    fingerprints::check_for_card(bytes).map_err(|reason| {
        CoreError::FingerprintsMalformed(format!(
            "the fingerprints are not an INCITS 378-2004 record a PIV card can carry: {reason}; \
             nothing was changed"
        ))
    })
}

/// Enrols `record` (INCITS 378-2004, two finger views) as `uid`'s fingerprints, replacing any
/// they had.
pub async fn enrol_fingerprints(
    svc: &Services,
    actor: &Actor,
    uid: &UserId,
    record: Vec<u8>,
) -> Result<FingerprintsSummary, CoreError> {
    actor.require(Permission::ManageUsers, "enrol fingerprints")?;
    svc.user_in_scope(actor, uid).await?;
    let parsed = check_record(&record)?;
    let mut details = audit_details(&parsed, &record);
    details["synthetic"] = json!(false);
    let fingerprints = Fingerprints {
        incits_378: record,
        synthetic: false,
    };
    let summary = FingerprintsSummary::of(&fingerprints);
    let mut changes = Changes::new();
    changes.push(Change::PutFingerprints {
        uid: uid.clone(),
        fingerprints,
        at: svc.clock.now(),
    });
    changes.audit(svc.event(audit::FINGERPRINTS_ENROLLED, ctx(actor, uid), details));
    svc.commit(changes).await?;
    Ok(summary)
}

/// Removes `uid`'s fingerprints; `NotFound` when they have none.
pub async fn remove_fingerprints(
    svc: &Services,
    actor: &Actor,
    uid: &UserId,
) -> Result<(), CoreError> {
    actor.require(Permission::ManageUsers, "remove fingerprints")?;
    let user = svc.user_in_scope(actor, uid).await?;
    if svc.store.fingerprints(uid).await?.is_none() {
        return Err(CoreError::NotFound(format!(
            "the fingerprints of {}",
            user.display_name
        )));
    }
    let mut changes = Changes::new();
    changes.push(Change::DeleteFingerprints(uid.clone()));
    changes.audit(svc.event(audit::FINGERPRINTS_REMOVED, ctx(actor, uid), json!({})));
    svc.commit(changes).await
}

/// What a person's fingerprints are, for the User page and the API.
pub async fn fingerprints_of(
    svc: &Services,
    actor: &Actor,
    uid: &UserId,
) -> Result<Option<FingerprintsSummary>, CoreError> {
    actor.require(Permission::ViewUsers, "view users")?;
    svc.user_in_scope(actor, uid).await?;
    Ok(svc
        .store
        .fingerprints(uid)
        .await?
        .map(|f| FingerprintsSummary::of(&f)))
}

/// The fingerprints a card issued to `user` under `policy` carries: the stored ones when the
/// policy writes fingerprints (none when the person has none and the policy does not require
/// them). A policy that requires fingerprints refuses a person without them (`ISS0003`), before
/// any card command: the issuance checks it when the policy is chosen, and again when the card
/// is personalised (they may have been removed in between).
pub async fn fingerprints_for_card(
    svc: &Services,
    user: &User,
    policy: &DevicePolicy,
) -> Result<Option<Fingerprints>, CoreError> {
    if !policy.write_fingerprints && !policy.require_fingerprints {
        return Ok(None);
    }
    let stored = svc.store.fingerprints(&user.uid).await?;
    if stored.is_none() && policy.require_fingerprints {
        return Err(CoreError::FingerprintsRequired(format!(
            "the device policy {} requires fingerprints and {} ({}) has none enrolled, so no card \
             was issued: have the enrolment system send their fingerprints (PUT \
             /api/v1/users/{}/fingerprints, or a fingerprints column in the user import), or \
             choose a policy that does not require them",
            policy.name, user.display_name, user.uid, user.uid
        )));
    }
    Ok(stored.filter(|_| policy.write_fingerprints))
}

/// The synthetic fingerprints of a demo person (see [`fingerprints::synthetic`]).
pub fn synthetic_fingerprints(uid: &UserId) -> Fingerprints {
    Fingerprints {
        incits_378: fingerprints::synthetic(uid.as_str()),
        synthetic: true,
    }
}

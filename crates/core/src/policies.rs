//! Managing device policies: a policy is checked as a whole before it is saved (PIN and PUK rules
//! a PIV card can hold, refused PINs that are PINs, at least one slot, each slot once, subject templates that close their
//! bindings) and every save is audited.

use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::model::{DevicePolicy, Permission};
use crate::services::{Actor, AuditContext, Services};
use serde_json::json;

/// Why a policy cannot be saved, or Ok.
pub fn check(policy: &DevicePolicy) -> Result<(), CoreError> {
    let bad = |m: String| Err(CoreError::Invalid(m));
    if policy.name.trim().is_empty() {
        return bad("give the policy a name".into());
    }
    // SP 800-73-4: the PIN is 6 to 8 digits, the PUK 8, padded to 8 bytes on the card.
    let pin = &policy.pin;
    if pin.min_length < 6 || pin.max_length > 8 || pin.min_length > pin.max_length {
        return bad("a PIV PIN has 6 to 8 digits: choose a minimum and maximum within 6-8".into());
    }
    if let Err(why) = crate::pin_rules::check_settings(pin) {
        return bad(why);
    }
    if !(1..=15).contains(&pin.retries) || !(1..=15).contains(&policy.puk.retries) {
        return bad("PIN and PUK tries must be between 1 and 15".into());
    }
    if policy.puk.length != 8 {
        return bad("a PIV PUK has 8 digits".into());
    }
    if policy.slots.is_empty() {
        return bad("choose at least one slot".into());
    }
    for (i, slot) in policy.slots.iter().enumerate() {
        if policy.slots[..i].iter().any(|s| s.slot == slot.slot) {
            return bad(format!("the slot {} is listed twice", slot.slot.label()));
        }
        let t = &slot.profile.subject_template;
        if t.matches("{{").count() != t.matches("}}").count() {
            return bad(format!(
                "the subject template of {} has an unclosed {{{{ binding",
                slot.slot.label()
            ));
        }
        if !(1..=3650).contains(&slot.profile.validity_days) {
            return bad(format!(
                "the certificate validity of {} must be 1 to 3650 days",
                slot.slot.label()
            ));
        }
    }
    if !(1..=3650).contains(&policy.card_validity_days) {
        return bad("the card validity must be 1 to 3650 days".into());
    }
    Ok(())
}

/// Checks and saves a policy.
pub async fn save(svc: &Services, actor: &Actor, policy: DevicePolicy) -> Result<(), CoreError> {
    actor.require(Permission::ManagePolicies, "manage device policies")?;
    check(&policy)?;
    let new = !svc
        .store
        .policies()
        .await?
        .iter()
        .any(|p| p.id == policy.id);
    let mut changes = Changes::new();
    changes.push(Change::PutPolicy(policy.clone()));
    changes.audit(svc.event(
        audit::POLICY_SAVED,
        AuditContext {
            operator: Some(&actor.operator),
            ..Default::default()
        },
        json!({"policy": policy.id, "new": new, "slots": policy.slots.iter().map(|s| s.slot.code()).collect::<Vec<_>>()}),
    ));
    svc.commit(changes).await
}

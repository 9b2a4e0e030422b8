//! The help desk's card actions beyond the PIN unlock ([`crate::devices::unlock`]): replace a
//! card, restore the original when a forgotten card turns up, and recycle a returned card.
//!
//! - **Permanent replacement** (lost, stolen, damaged): the old card is Terminated and its
//!   certificates revoked — `keyCompromise` for a lost or stolen card (someone else may hold it),
//!   `superseded` for a damaged one (the key never left the holder; a new card supersedes it, the
//!   reason RFC 5280 gives for "replaced without suspicion of compromise"). The new card is then
//!   issued through the ordinary wizard.
//! - **Temporary replacement** (forgotten): the original is Suspended (certificates on hold) and
//!   a temporary card is issued through the wizard with [`StartRequest::temporary_for`]
//!   naming the original, under a short-lived policy.
//! - **Restore** (the forgotten card is found): every temporary card of the original is
//!   Terminated (`cessationOfOperation`) and the original Resumed, in one unit of work.
//! - **Recycle** (a card handed back): the card is erased at a station, its record Terminated if
//!   it was not and then Recycled, and a stock card goes back in stock; it is then a blank card.
//!
//! Each needs its own permission (`ReplaceDevice`, `RecycleDevice`), sees only cards in the
//! actor's scope, takes a reason the operator typed, and writes its state changes, certificate
//! statuses and audit event in one commit.
//!
//! [`StartRequest::temporary_for`]: crate::issuance::StartRequest::temporary_for

use crate::approvals::{self, Grant, Subject, TwoPersonAction};
use crate::audit;
use crate::changes::Changes;
use crate::devices::{card_of, certificates_follow, required_reason};
use crate::error::CoreError;
use crate::ids::*;
use crate::lifecycle::{DeviceCommand, DeviceState, Reason};
use crate::model::*;
use crate::services::{Actor, AuditContext, Services};
use serde_json::json;

/// How a replaced card ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replacement {
    /// Terminated for good; a new card is issued through the wizard.
    Permanent,
    /// Suspended while a temporary card stands in for it.
    Temporary,
}

/// The CRL reason of the certificates of a card replaced for `reason`, and whether the
/// replacement is permanent; `None` for a reason that is no replacement.
pub fn replacement_of(reason: Reason) -> Option<(Replacement, &'static str)> {
    match reason {
        Reason::Lost | Reason::Stolen => Some((Replacement::Permanent, "keyCompromise")),
        Reason::Damaged => Some((Replacement::Permanent, "superseded")),
        Reason::Forgotten => Some((Replacement::Temporary, "certificateHold")),
        Reason::None | Reason::Expired | Reason::Renew | Reason::Failed | Reason::Left => None,
    }
}

/// Replace the card `device` for `reason` (Lost, Stolen, Damaged: permanent; Forgotten:
/// temporary). Returns the old card as it is now; the caller sends the operator to the issuance
/// wizard for the holder (with `temporary_for` set to the old card for a temporary one).
pub async fn replace(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
    reason: Reason,
    comment: &str,
) -> Result<(Device, Replacement), CoreError> {
    actor.require(Permission::ReplaceDevice, "replace cards")?;
    let mut d = svc.device_in_scope(actor, device).await?;
    let comment = required_reason(comment)?;
    let (kind, crl_reason) = replacement_of(reason).ok_or_else(|| {
        CoreError::Invalid(
            "a card is replaced because it was lost, stolen, damaged or forgotten".into(),
        )
    })?;
    let holder = d.user.clone();
    let ctx = AuditContext {
        operator: Some(&actor.operator),
        user: holder.as_ref(),
        device: Some(device),
        operation: None,
    };
    let grant = match kind {
        Replacement::Permanent => terminate_gate(svc, actor, &d, comment).await?,
        Replacement::Temporary => Grant::none(),
    };
    let mut changes = Changes::new();
    let ctx_state = AuditContext {
        operator: Some(&actor.operator),
        ..Default::default()
    };
    match kind {
        Replacement::Permanent => {
            svc.change_state(
                &mut changes,
                &mut d,
                DeviceCommand::Terminate(reason),
                ctx_state,
            )?;
            svc.revoke_all(&mut changes, &d.id, crl_reason).await?;
        }
        Replacement::Temporary => {
            svc.change_state(
                &mut changes,
                &mut d,
                DeviceCommand::Suspend(reason),
                ctx_state,
            )?;
            certificates_follow(svc, &mut changes, &d).await?;
        }
    }
    changes.audit(svc.event(
        audit::DEVICE_REPLACED,
        ctx,
        json!({"serial": d.serial, "reason": reason.as_str(), "comment": comment,
               "replacement": match kind { Replacement::Permanent => "permanent", Replacement::Temporary => "temporary" },
               "certificates": crl_reason}),
    ));
    grant.spend(svc, &mut changes);
    svc.commit(changes).await?;
    Ok((d, kind))
}

/// The live temporary cards standing in for `original` (not yet Terminated, Failed or Recycled).
async fn temporaries_of(svc: &Services, original: &Device) -> Result<Vec<Device>, CoreError> {
    let Some(uid) = &original.user else {
        return Ok(Vec::new());
    };
    Ok(svc
        .store
        .devices_of_user(uid)
        .await?
        .into_iter()
        .filter(|d| d.temporary_for.as_ref() == Some(&original.id))
        .filter(|d| {
            !matches!(
                d.state,
                DeviceState::Terminated | DeviceState::Failed | DeviceState::Recycled
            )
        })
        .collect())
}

/// The two-person rule for terminating `d` (its policy may require it): a replacement or a
/// recycle ends a live card as a Terminate does, so it is no way around the rule. The help desk
/// asks; the approver needs the permission to terminate cards.
async fn terminate_gate(
    svc: &Services,
    actor: &Actor,
    d: &Device,
    reason: &str,
) -> Result<Grant, CoreError> {
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
        device: d.id.clone(),
        serial: d.serial.clone(),
        user: d.user.clone(),
    };
    approvals::gate_checked(
        svc,
        actor,
        TwoPersonAction::Terminate,
        subject,
        policy.as_ref(),
        reason,
    )
    .await
}

/// The forgotten card `original` was found: its temporary cards are Terminated (certificates
/// revoked, cessationOfOperation) and the original Resumed (certificates valid again), in one
/// commit. Returns the original and the temporary cards that ended.
pub async fn restore_original(
    svc: &Services,
    actor: &Actor,
    original: &DeviceId,
    comment: &str,
) -> Result<(Device, Vec<Device>), CoreError> {
    actor.require(Permission::ReplaceDevice, "restore replaced cards")?;
    let comment = required_reason(comment)?;
    let mut d = svc.device_in_scope(actor, original).await?;
    crate::devices::refuse_for_disabled_holder(svc, &d, "their card cannot be restored").await?;
    // Only a card suspended because it was forgotten: resuming a card a security officer
    // suspended for another reason takes the permission to manage cards.
    if d.state != DeviceState::Suspended || d.reason != Reason::Forgotten {
        return Err(CoreError::Invalid(format!(
            "card {} is {} ({}): only a card suspended as forgotten can be restored",
            d.serial,
            d.state,
            d.reason.as_str()
        )));
    }
    let ctx_state = AuditContext {
        operator: Some(&actor.operator),
        ..Default::default()
    };
    let mut changes = Changes::new();
    let mut ended = Vec::new();
    for mut temporary in temporaries_of(svc, &d).await? {
        // None: the temporary card did its job; its certificates end with cessationOfOperation.
        svc.change_state(
            &mut changes,
            &mut temporary,
            DeviceCommand::Terminate(Reason::None),
            ctx_state,
        )?;
        certificates_follow(svc, &mut changes, &temporary).await?;
        ended.push(temporary);
    }
    svc.change_state(&mut changes, &mut d, DeviceCommand::Resume, ctx_state)?;
    certificates_follow(svc, &mut changes, &d).await?;
    changes.audit(svc.event(
        audit::DEVICE_RESTORED,
        AuditContext {
            operator: Some(&actor.operator),
            user: d.user.as_ref(),
            device: Some(original),
            operation: None,
        },
        json!({"serial": d.serial, "comment": comment,
               "temporary_cards": ended.iter().map(|t| json!({"device": t.id, "serial": t.serial})).collect::<Vec<_>>()}),
    ));
    svc.commit(changes).await?;
    Ok((d, ended))
}

/// What recycling did.
#[derive(Clone, Debug)]
pub struct Recycled {
    pub device: Device,
    /// The stock state of the card afterwards, when it is a stock card.
    pub stock: Option<StockState>,
}

/// A card handed back: erased at `reader` of `station` (PIV factory reset), its record
/// Terminated if it was not (certificates revoked, cessationOfOperation) and then Recycled, a
/// stock card back `InStock`. The card in the reader must be the device's card.
///
/// The card is checked before anything changes; the termination is committed before the card is
/// erased (an erase that fails half-way must not leave a live record for a card that may no
/// longer hold its keys), and the recycling after it (a record says Recycled only for a card
/// that was erased). A failed erase can be repeated: the card is then already Terminated.
pub async fn recycle(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
    (station, reader): (&StationId, &str),
    comment: &str,
) -> Result<Recycled, CoreError> {
    actor.require(Permission::RecycleDevice, "recycle cards")?;
    let comment = required_reason(comment)?;
    let mut d = svc.device_in_scope(actor, device).await?;
    if d.state == DeviceState::Recycled {
        return Err(CoreError::Invalid(format!(
            "card {} was already recycled",
            d.serial
        )));
    }
    // A card issued again after this record ended belongs to its newer record (maybe to another
    // holder): erasing it through this old one would wipe a live card behind its record's back.
    let ended = |x: &Device| {
        matches!(
            x.state,
            DeviceState::Terminated | DeviceState::Failed | DeviceState::Recycled
        )
    };
    let live_elsewhere = svc
        .store
        .devices_with_serial(&d.serial)
        .await?
        .into_iter()
        .find(|x| x.id != d.id && !ended(x));
    if let Some(newer) = live_elsewhere {
        return Err(CoreError::Invalid(format!(
            "card {} was issued again after this record (device {}, {}): recycle it from that record",
            d.serial, newer.id, newer.state
        )));
    }
    let ctx_state = AuditContext {
        operator: Some(&actor.operator),
        ..Default::default()
    };
    // Refused before the card is touched when the lifecycle would refuse (a card in production).
    let live = !matches!(d.state, DeviceState::Terminated | DeviceState::Failed);
    let grant = if live {
        crate::lifecycle::transition(d.state, DeviceCommand::Terminate(Reason::None))?;
        terminate_gate(svc, actor, &d, comment).await?
    } else {
        Grant::none()
    };
    let mut card = card_of(svc, &d, station, reader).await?;
    if live {
        let mut changes = Changes::new();
        svc.change_state(
            &mut changes,
            &mut d,
            DeviceCommand::Terminate(Reason::None),
            ctx_state,
        )?;
        certificates_follow(svc, &mut changes, &d).await?;
        grant.spend(svc, &mut changes);
        svc.commit(changes).await?;
    }
    card.factory_reset().await?;
    let mut changes = Changes::new();
    svc.change_state(&mut changes, &mut d, DeviceCommand::Recycle, ctx_state)?;
    // The escrowed secrets belonged to the erased card.
    for kind in ["pin", "puk", "management_key"] {
        changes.push(crate::changes::Change::DeleteDeviceSecret {
            device: d.id.clone(),
            kind: kind.into(),
        });
    }
    let ctx = AuditContext {
        operator: Some(&actor.operator),
        user: d.user.as_ref(),
        device: Some(device),
        operation: None,
    };
    let stock = crate::stock::restock_recycled(svc, &mut changes, &d.serial, ctx).await?;
    changes.audit(svc.event(
        audit::DEVICE_RECYCLED,
        ctx,
        json!({"serial": d.serial, "station": station, "reader": reader, "comment": comment,
               "erased": true, "stock": stock.map(StockState::as_str)}),
    ));
    svc.commit(changes).await?;
    Ok(Recycled { device: d, stock })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_replacement_reason_has_its_crl_reason() {
        assert_eq!(
            replacement_of(Reason::Lost),
            Some((Replacement::Permanent, "keyCompromise"))
        );
        assert_eq!(
            replacement_of(Reason::Stolen),
            Some((Replacement::Permanent, "keyCompromise"))
        );
        assert_eq!(
            replacement_of(Reason::Damaged),
            Some((Replacement::Permanent, "superseded"))
        );
        assert_eq!(
            replacement_of(Reason::Forgotten),
            Some((Replacement::Temporary, "certificateHold"))
        );
        for r in [Reason::None, Reason::Expired, Reason::Renew, Reason::Failed] {
            assert_eq!(replacement_of(r), None, "{r:?}");
        }
    }
}

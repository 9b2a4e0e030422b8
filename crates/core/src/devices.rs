//! Managing issued cards: activate, suspend, resume, terminate, unlock, and the one-time reveal
//! of a generated initial PIN. Each applies the lifecycle's transition function, makes the
//! certificates follow the card (on hold while Pending or Suspended, revoked when Terminated) and
//! writes an audit event. Every use case finds the card through the actor's scope
//! ([`Services::device_in_scope`]): a card of a user out of scope is "not found". The help desk's
//! replacements and recycling are in [`crate::help_desk`].

use crate::approvals::{self, Grant, TwoPersonAction};
use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::ids::*;
use crate::lifecycle::{DeviceCommand, DeviceState, Reason};
use crate::model::*;
use crate::secret::{Pin, Puk};
use crate::services::{Actor, AuditContext, Services};
use serde_json::json;

/// The RFC 5280 CRL reason for terminating a card for `reason`.
pub fn revocation_reason(reason: Reason) -> &'static str {
    match reason {
        Reason::Lost | Reason::Stolen => "keyCompromise",
        Reason::Renew => "superseded",
        Reason::Left => "affiliationChanged",
        Reason::None | Reason::Damaged | Reason::Forgotten | Reason::Expired | Reason::Failed => {
            "cessationOfOperation"
        }
    }
}

/// Makes a card's certificates what its lifecycle state says: valid while Active, on hold while
/// Suspended, revoked (with the CRL reason of the card's reason) once Terminated. One rule for
/// every command, so a new command cannot forget the certificates. The moves go into `changes`,
/// beside the card's own.
pub(crate) async fn certificates_follow(
    svc: &Services,
    changes: &mut Changes,
    d: &Device,
) -> Result<(), CoreError> {
    use CertificateStatus::{OnHold, Valid};
    match d.state {
        DeviceState::Active => {
            svc.set_certificates(changes, &d.id, &[OnHold], Valid, None)
                .await
        }
        DeviceState::Suspended => {
            svc.set_certificates(changes, &d.id, &[Valid], OnHold, Some("certificateHold"))
                .await
        }
        DeviceState::Terminated => {
            svc.revoke_all(changes, &d.id, revocation_reason(d.reason))
                .await
        }
        _ => Ok(()),
    }
}

/// A device-management command by a security officer: the transition, then the certificates.
async fn manage(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
    command: DeviceCommand,
    grant: Grant,
) -> Result<Device, CoreError> {
    actor.require(Permission::ManageDevices, "manage devices")?;
    let mut d = svc.device_in_scope(actor, device).await?;
    let ctx = AuditContext {
        operator: Some(&actor.operator),
        ..Default::default()
    };
    let mut changes = Changes::new();
    svc.change_state(&mut changes, &mut d, command, ctx)?;
    certificates_follow(svc, &mut changes, &d).await?;
    grant.spend(svc, &mut changes);
    svc.commit(changes).await?;
    Ok(d)
}

/// Suspend an Active card (e.g. left at home): its certificates go on hold.
pub async fn suspend(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
    reason: Reason,
) -> Result<Device, CoreError> {
    manage(
        svc,
        actor,
        device,
        DeviceCommand::Suspend(reason),
        Grant::none(),
    )
    .await
}

/// Resume a Suspended card: its certificates are released from hold. A disabled person's card
/// stays suspended until they are enabled again.
pub async fn resume(svc: &Services, actor: &Actor, device: &DeviceId) -> Result<Device, CoreError> {
    actor.require(Permission::ManageDevices, "manage devices")?;
    let d = svc.device_in_scope(actor, device).await?;
    refuse_for_disabled_holder(svc, &d, "their card cannot be resumed").await?;
    manage(svc, actor, device, DeviceCommand::Resume, Grant::none()).await
}

/// Refuses `what` when the card's holder is disabled (a card without a holder, or whose holder
/// was deleted, has nobody to refuse).
pub(crate) async fn refuse_for_disabled_holder(
    svc: &Services,
    d: &Device,
    what: &str,
) -> Result<(), CoreError> {
    let Some(uid) = &d.user else {
        return Ok(());
    };
    for user in svc.store.users_by_uid(std::slice::from_ref(uid)).await? {
        crate::people::refuse_if_disabled(&user, what)?;
    }
    Ok(())
}

/// Terminate a card for good: its certificates are revoked with the reason's CRL reason.
pub async fn terminate(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
    reason: Reason,
) -> Result<Device, CoreError> {
    let grant = approvals::for_device(
        svc,
        actor,
        TwoPersonAction::Terminate,
        device,
        reason.as_str(),
    )
    .await?;
    manage(svc, actor, device, DeviceCommand::Terminate(reason), grant).await
}

/// Activates a Pending card (from the wizard's Continue or later from the User page).
pub async fn activate(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
    operation: Option<&OperationId>,
) -> Result<Device, CoreError> {
    actor.require(Permission::ActivateDevice, "activate devices")?;
    let mut changes = Changes::new();
    let device = activation(svc, actor, &mut changes, device, operation).await?;
    svc.commit(changes).await?;
    Ok(device)
}

/// The activation of a Pending card as a unit of work: the card `Active`, its certificates
/// valid, the events. The wizard's Continue commits it together with the job's completion.
pub(crate) async fn activation(
    svc: &Services,
    actor: &Actor,
    changes: &mut Changes,
    device: &DeviceId,
    operation: Option<&OperationId>,
) -> Result<Device, CoreError> {
    let mut device = svc.device_in_scope(actor, device).await?;
    refuse_for_disabled_holder(svc, &device, "their card cannot be activated").await?;
    let user = device.user.clone();
    let id = device.id.clone();
    let ctx = AuditContext {
        operator: Some(&actor.operator),
        user: user.as_ref(),
        device: Some(&id),
        operation,
    };
    svc.change_state(changes, &mut device, DeviceCommand::Activate, ctx)?;
    certificates_follow(svc, changes, &device).await?;
    changes.audit(svc.event(audit::DEVICE_ACTIVATED, ctx, json!({})));
    Ok(device)
}

/// Shows the system-generated initial PIN of a card (*Not displayed* mode) exactly once: the
/// sealed copy is deleted as it is opened, so the PIN never reaches a browser twice.
pub async fn reveal_initial_pin(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
) -> Result<Pin, CoreError> {
    actor.require(Permission::ManageDevices, "reveal initial PINs")?;
    let d = svc.device_in_scope(actor, device).await?;
    let grant = approvals::for_device(svc, actor, TwoPersonAction::RevealPin, device, "").await?;
    let sealed = svc
        .store
        .device_secret(device, "pin")
        .await?
        .ok_or_else(|| {
            CoreError::Invalid("this card has no initial PIN to reveal (it was typed by the operator or already revealed)".into())
        })?;
    let plain = svc
        .sealer
        .open(&sealed)
        .map_err(|e| CoreError::Invalid(format!("the sealed PIN cannot be opened: {e}")))?;
    let pin = Pin::new(
        String::from_utf8(plain)
            .map_err(|_| CoreError::Invalid("the sealed PIN is damaged".into()))?,
    );
    let mut changes = Changes::new();
    changes.push(Change::TakeDeviceSecret {
        device: device.clone(),
        kind: "pin".into(),
    });
    changes.audit(svc.event(
        audit::INITIAL_PIN_REVEALED,
        AuditContext {
            operator: Some(&actor.operator),
            user: d.user.as_ref(),
            device: Some(device),
            operation: None,
        },
        json!({}),
    ));
    grant.spend(svc, &mut changes);
    svc.commit(changes).await?;
    Ok(pin)
}

/// What an unlock did: the card, and the PIN tries it has now (read back from the card).
#[derive(Clone, Debug)]
pub struct Unlocked {
    pub device: Device,
    pub tries_left: u8,
}

/// Unlock: a holder forgot the PIN or blocked it. The server unblocks it with the PUK it escrowed
/// at issuance (RESET RETRY COUNTER) and sets `new_pin`; the PUK never leaves the server and stays
/// escrowed. The card in `reader` must be the device's card (same serial). `reason` (why the
/// help desk unlocked it: a ticket, "blocked after three tries") goes into the audit event.
/// `new_pin` must meet the PIN rules of the card's policy (the PIV rule for a card without one)
/// and equal `confirmation` when the person typed it twice ([`crate::pin_rules`]).
pub async fn unlock(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
    (station, reader): (&StationId, &str),
    (new_pin, confirmation): (&Pin, Option<&Pin>),
    reason: &str,
) -> Result<Unlocked, CoreError> {
    actor.require(Permission::UnlockDevice, "unlock cards")?;
    let d = svc.device_in_scope(actor, device).await?;
    let reason = required_reason(reason)?;
    let grant = approvals::for_device(svc, actor, TwoPersonAction::Unlock, device, reason).await?;
    if !matches!(
        d.state,
        DeviceState::Active | DeviceState::Pending | DeviceState::Suspended
    ) {
        return Err(CoreError::Invalid(format!(
            "a {} card cannot be unlocked",
            d.state
        )));
    }
    let policy = match &d.policy {
        Some(id) => svc
            .store
            .policies()
            .await?
            .into_iter()
            .find(|p| &p.id == id),
        None => None,
    };
    let rules = policy.map(|p| p.pin).unwrap_or_default();
    crate::pin_rules::check(&rules, new_pin, confirmation)?;
    let sealed = svc
        .store
        .device_secret(device, "puk")
        .await?
        .ok_or_else(|| CoreError::Invalid("no PUK is escrowed for this card".into()))?;
    let puk = svc
        .sealer
        .open(&sealed)
        .map_err(|e| CoreError::Invalid(format!("the escrowed PUK cannot be opened: {e}")))?;
    let puk = Puk::new(
        String::from_utf8(puk)
            .map_err(|_| CoreError::Invalid("the escrowed PUK is damaged".into()))?,
    );
    let mut card = card_of(svc, &d, station, reader).await?;
    let ctx = AuditContext {
        operator: Some(&actor.operator),
        user: d.user.as_ref(),
        device: Some(device),
        operation: None,
    };
    // Written before the card is touched: the approval is spent (a second unlock on it is
    // refused, even if this one fails half-way), an escrowed initial PIN is dropped (it may not
    // be the card's PIN a moment from now) and the log says an unlock began.
    let mut changes = Changes::new();
    changes.push(Change::DeleteDeviceSecret {
        device: device.clone(),
        kind: "pin".into(),
    });
    changes.audit(svc.event(
        audit::DEVICE_UNLOCK_STARTED,
        ctx,
        json!({"station": station, "reader": reader, "reason": reason}),
    ));
    // The outcome's event names the approver as the started one does.
    let approved = grant
        .approval()
        .map(|a| (a.id.clone(), a.decided_by.clone()));
    grant.spend(svc, &mut changes);
    svc.commit(changes).await?;
    card.unblock_pin(&puk, new_pin).await?;
    let tries_left = card.pin_retries().await?;
    let mut details =
        json!({"station": station, "reader": reader, "reason": reason, "tries_left": tries_left});
    if let Some((approval, approver)) = approved {
        details["approval"] = json!(approval);
        details["approved_by"] = json!(approver);
    }
    svc.audit(audit::DEVICE_UNLOCKED, ctx, details).await?;
    Ok(Unlocked {
        device: d,
        tries_left,
    })
}

/// The reason an operator gave for a help-desk action, trimmed; an empty one is refused, since
/// the audit log must say why.
pub(crate) fn required_reason(reason: &str) -> Result<&str, CoreError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(CoreError::Invalid(
            "say why (a ticket number or a few words): the reason goes into the audit log".into(),
        ));
    }
    Ok(reason)
}

/// Connects to the card in `reader` at `station`, selects PIV and checks that it is `d`'s card
/// (same serial), so that nothing is sent to a card that happens to be in the reader.
pub(crate) async fn card_of(
    svc: &Services,
    d: &Device,
    station: &StationId,
    reader: &str,
) -> Result<Box<dyn crate::ports::PivCard>, CoreError> {
    let transport = svc.station(station)?.connect(reader).await?;
    let mut card = (svc.piv)(transport);
    let identity = card.select().await?;
    if identity.serial != d.serial {
        return Err(CoreError::CardExchanged(format!(
            "the card in {reader} is card {}, not card {}: nothing was sent to it; put in card {} \
             and try again",
            identity.serial, d.serial, d.serial
        )));
    }
    Ok(card)
}

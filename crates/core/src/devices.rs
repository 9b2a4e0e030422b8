//! Managing issued cards: activate, suspend, resume, terminate, unlock, and the one-time reveal
//! of a generated initial PIN. Each applies the lifecycle's transition function, makes the
//! certificates follow the card (on hold while Pending or Suspended, revoked when Terminated) and
//! writes an audit event.

use crate::audit;
use crate::error::CoreError;
use crate::ids::*;
use crate::issuance::{check_pin, revoke_all, set_certificates, Actor, AuditContext, Services};
use crate::lifecycle::{DeviceCommand, DeviceState, Reason};
use crate::model::*;
use crate::secret::{Pin, Puk};
use serde_json::json;

/// The RFC 5280 CRL reason for terminating a card for `reason`.
pub fn revocation_reason(reason: Reason) -> &'static str {
    match reason {
        Reason::Lost | Reason::Stolen => "keyCompromise",
        Reason::Renew => "superseded",
        Reason::None | Reason::Damaged | Reason::Forgotten | Reason::Expired | Reason::Failed => {
            "cessationOfOperation"
        }
    }
}

async fn load_for_change(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
) -> Result<Device, CoreError> {
    actor.require(Permission::ManageDevices, "manage devices")?;
    Ok(svc.store.device(device).await?)
}

/// Suspend an Active card (e.g. left at home): its certificates go on hold.
pub async fn suspend(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
    reason: Reason,
) -> Result<Device, CoreError> {
    let mut d = load_for_change(svc, actor, device).await?;
    let ctx = AuditContext {
        operator: Some(&actor.operator),
        ..Default::default()
    };
    svc.change_state(&mut d, DeviceCommand::Suspend(reason), ctx)
        .await?;
    set_certificates(
        svc,
        &d.id,
        &[CertificateStatus::Valid],
        CertificateStatus::OnHold,
        Some("certificateHold"),
    )
    .await?;
    Ok(d)
}

/// Resume a Suspended card: its certificates are released from hold.
pub async fn resume(svc: &Services, actor: &Actor, device: &DeviceId) -> Result<Device, CoreError> {
    let mut d = load_for_change(svc, actor, device).await?;
    let ctx = AuditContext {
        operator: Some(&actor.operator),
        ..Default::default()
    };
    svc.change_state(&mut d, DeviceCommand::Resume, ctx).await?;
    set_certificates(
        svc,
        &d.id,
        &[CertificateStatus::OnHold],
        CertificateStatus::Valid,
        None,
    )
    .await?;
    Ok(d)
}

/// Terminate a card for good: its certificates are revoked with the reason's CRL reason.
pub async fn terminate(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
    reason: Reason,
) -> Result<Device, CoreError> {
    let mut d = load_for_change(svc, actor, device).await?;
    let ctx = AuditContext {
        operator: Some(&actor.operator),
        ..Default::default()
    };
    svc.change_state(&mut d, DeviceCommand::Terminate(reason), ctx)
        .await?;
    revoke_all(svc, &d.id, revocation_reason(reason)).await?;
    Ok(d)
}

/// Activates a Pending card (from the wizard's Continue or later from the User page).
pub async fn activate(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
    operation: Option<&OperationId>,
) -> Result<Device, CoreError> {
    actor.require(Permission::ActivateDevice, "activate devices")?;
    let mut device = svc.store.device(device).await?;
    let user = device.user.clone();
    let id = device.id.clone();
    let ctx = || AuditContext {
        operator: Some(&actor.operator),
        user: user.as_ref(),
        device: Some(&id),
        operation,
    };
    svc.change_state(&mut device, DeviceCommand::Activate, ctx())
        .await?;
    set_certificates(
        svc,
        &device.id,
        &[CertificateStatus::OnHold],
        CertificateStatus::Valid,
        None,
    )
    .await?;
    svc.audit(audit::DEVICE_ACTIVATED, ctx(), json!({})).await?;
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
    let d = svc.store.device(device).await?;
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
    svc.store.delete_device_secret(device, "pin").await?;
    svc.audit(
        audit::INITIAL_PIN_REVEALED,
        AuditContext {
            operator: Some(&actor.operator),
            user: d.user.as_ref(),
            device: Some(device),
            operation: None,
        },
        json!({}),
    )
    .await?;
    Ok(pin)
}

/// Unlock: a holder forgot the PIN or blocked it. The server unblocks it with the PUK it escrowed
/// at issuance (RESET RETRY COUNTER) and sets `new_pin`; the PUK never leaves the server. The
/// card in `reader` must be the device's card (same serial).
pub async fn unlock(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
    station: &StationId,
    reader: &str,
    new_pin: &Pin,
) -> Result<(), CoreError> {
    actor.require(Permission::ManageDevices, "unlock cards")?;
    let d = svc.store.device(device).await?;
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
    if let Some(policy) = &policy {
        check_pin(&policy.pin, new_pin)?;
    }
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
    let transport = svc.station(station)?.connect(reader).await?;
    let mut card = (svc.piv)(transport);
    let identity = card.select().await?;
    if identity.serial != d.serial {
        return Err(CoreError::Invalid(format!(
            "the card in {reader} is card {}, not card {}",
            identity.serial, d.serial
        )));
    }
    card.unblock_pin(&puk, new_pin).await?;
    if svc.store.device_secret(device, "pin").await?.is_some() {
        // An escrowed initial PIN is no longer the card's PIN.
        svc.store.delete_device_secret(device, "pin").await?;
    }
    svc.audit(
        audit::DEVICE_UNLOCKED,
        AuditContext {
            operator: Some(&actor.operator),
            user: d.user.as_ref(),
            device: Some(device),
            operation: None,
        },
        json!({"reader": reader}),
    )
    .await
}

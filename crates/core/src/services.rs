//! What every use case works with: [`Services`] (one implementation of each port), the [`Actor`]
//! doing it, the [`AuditContext`] of its events, and the helpers that turn a decision into a unit
//! of work ([`Changes`]): a device's transition with its audit event, the certificates that
//! follow it, the refusal summary that must precede the next event.

use crate::audit::{self, EventKind};
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::ids::*;
use crate::lifecycle::{transition, DeviceCommand, DeviceState};
use crate::model::*;
use crate::ports::*;
use serde_json::json;
use std::sync::Arc;

/// One implementation of every port, wired by the server.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub ca: Arc<dyn CertificateAuthority>,
    pub renderer: Arc<dyn CardRenderer>,
    pub stations: Arc<dyn StationDirectory>,
    pub piv: PivCardFactory,
    /// Checks key attestations against the configured attestation roots.
    pub attestation: Arc<dyn AttestationVerifier>,
    pub sealer: Arc<dyn Sealer>,
    pub passwords: Arc<dyn Passwords>,
    /// Checks and normalises portraits (uploads, imports, the directory's photos).
    pub photos: Arc<dyn PhotoProcessor>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
}

/// Who is acting: the signed-in operator, their role and their scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub operator: OperatorId,
    pub role: Role,
    pub scope: Scope,
}

impl Actor {
    /// An operator with a built-in role who sees every user.
    pub fn builtin(operator: impl Into<String>, role: BuiltinRole) -> Self {
        Self {
            operator: OperatorId::new(operator),
            role: role.role(),
            scope: Scope::All,
        }
    }

    /// The command line: whoever has the server's data folder and configuration is its
    /// administrator. It acts as the operator `cli`, audited like anyone else.
    pub fn cli() -> Self {
        Self::builtin("cli", BuiltinRole::Administrator)
    }

    /// Whether the actor has `permission` (for pages that hide what the actor may not do).
    pub fn may(&self, permission: Permission) -> bool {
        self.role.allows(permission)
    }

    pub fn require(&self, permission: Permission, what: &str) -> Result<(), CoreError> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(CoreError::Forbidden(what.to_owned()))
        }
    }
}

/// Context of an audit event.
#[derive(Clone, Copy, Default)]
pub struct AuditContext<'a> {
    pub operator: Option<&'a OperatorId>,
    pub user: Option<&'a UserId>,
    pub device: Option<&'a DeviceId>,
    pub operation: Option<&'a OperationId>,
}

impl AuditContext<'_> {
    /// The context of everything a job does.
    pub fn of_job(job: &IssuanceJob) -> AuditContext<'_> {
        AuditContext {
            operator: Some(&job.operator),
            user: Some(&job.user),
            device: job.device.as_ref(),
            operation: Some(&job.operation),
        }
    }
}

impl Services {
    /// An audit event stamped with the clock, ready to go into a unit of work.
    pub fn event(
        &self,
        kind: EventKind,
        ctx: AuditContext<'_>,
        details: serde_json::Value,
    ) -> NewAuditEvent {
        NewAuditEvent {
            at: self.clock.now(),
            code: kind.code,
            name: kind.name,
            operator: ctx.operator.cloned(),
            user: ctx.user.cloned(),
            device: ctx.device.cloned(),
            operation: ctx.operation.cloned(),
            details,
        }
    }

    /// Commits a unit of work; a refusal summary that is due goes in first, so the log keeps
    /// its order (see [`crate::refusals`]).
    pub async fn commit(&self, mut changes: Changes) -> Result<(), CoreError> {
        crate::refusals::summarise_first(&mut changes, self.clock.now());
        self.store.commit(&changes).await?;
        Ok(())
    }

    /// Writes one audit event on its own (for use cases whose only write is the event).
    pub async fn audit(
        &self,
        kind: EventKind,
        ctx: AuditContext<'_>,
        details: serde_json::Value,
    ) -> Result<(), CoreError> {
        let mut changes = Changes::new();
        changes.audit(self.event(kind, ctx, details));
        self.commit(changes).await
    }

    /// Audits a refused attempt by someone not signed in (a wrong password, an unknown token):
    /// written unless this minute already wrote its share of them (see [`crate::refusals`]).
    pub async fn audit_refusal(
        &self,
        kind: EventKind,
        ctx: AuditContext<'_>,
        details: serde_json::Value,
    ) -> Result<(), CoreError> {
        let changes = crate::refusals::refusal(self.event(kind, ctx, details));
        self.store.commit(&changes).await?;
        Ok(())
    }

    /// The user `uid` when `actor` may see them; a user out of the actor's scope is "not
    /// found", exactly as a user that does not exist.
    pub async fn user_in_scope(&self, actor: &Actor, uid: &UserId) -> Result<User, CoreError> {
        let user = self
            .store
            .user(uid)
            .await
            .map_err(|_| CoreError::NotFound(format!("user {uid}")))?;
        if actor.scope.covers(&user) {
            Ok(user)
        } else {
            Err(CoreError::NotFound(format!("user {uid}")))
        }
    }

    /// The device `id` when its user is in `actor`'s scope (a card with no user is seen only by
    /// operators who see everyone).
    pub async fn device_in_scope(&self, actor: &Actor, id: &DeviceId) -> Result<Device, CoreError> {
        let device = self
            .store
            .device(id)
            .await
            .map_err(|_| CoreError::NotFound(format!("card {id}")))?;
        let visible = match (&device.user, &actor.scope) {
            (_, Scope::All) => true,
            (Some(uid), _) => self.user_in_scope(actor, uid).await.is_ok(),
            (None, _) => false,
        };
        if visible {
            Ok(device)
        } else {
            Err(CoreError::NotFound(format!("card {id}")))
        }
    }

    pub(crate) fn station(&self, id: &StationId) -> Result<Arc<dyn StationPort>, CoreError> {
        self.stations.station(id).ok_or_else(|| {
            CoreError::StationNotConnected(format!(
                "the station {id} is not connected: start Tessera Station on that \
                     workstation (or choose another station), then try again"
            ))
        })
    }

    /// Applies a lifecycle command to `device` and adds its conditional update (on the state it
    /// had) and its audit event to `changes`.
    pub fn change_state(
        &self,
        changes: &mut Changes,
        device: &mut Device,
        command: DeviceCommand,
        ctx: AuditContext<'_>,
    ) -> Result<(), CoreError> {
        let from = device.state;
        let (to, reason) = transition(from, command)?;
        device.state = to;
        device.reason = reason;
        device.updated_at = self.clock.now();
        if to == DeviceState::Active && device.activated_at.is_none() {
            device.activated_at = Some(device.updated_at);
        }
        changes.push(Change::UpdateDevice {
            device: device.clone(),
            expected: from,
        });
        changes.audit(self.event(
            audit::DEVICE_STATE_CHANGED,
            AuditContext {
                device: Some(&device.id),
                user: device.user.as_ref(),
                ..ctx
            },
            json!({"from": from.as_str(), "to": to.as_str(), "reason": reason.as_str()}),
        ));
        Ok(())
    }

    /// Adds to `changes` the move of every certificate of `device` whose status is in `from` to
    /// `to`, each conditional on the status read and audited.
    pub async fn set_certificates(
        &self,
        changes: &mut Changes,
        device: &DeviceId,
        from: &[CertificateStatus],
        to: CertificateStatus,
        reason: Option<&str>,
    ) -> Result<(), CoreError> {
        let now = self.clock.now();
        for cert in self.store.certificates_of_device(device).await? {
            if from.contains(&cert.status) {
                changes.push(Change::SetCertificateStatus {
                    serial: cert.serial.clone(),
                    expected: cert.status,
                    status: to,
                    reason: reason.map(str::to_owned),
                    at: now,
                });
                changes.audit(self.event(
                    audit::CERTIFICATE_STATUS_CHANGED,
                    AuditContext {
                        device: Some(device),
                        ..Default::default()
                    },
                    json!({"serial": cert.serial, "from": cert.status.as_str(), "to": to.as_str(), "reason": reason}),
                ));
            }
        }
        Ok(())
    }

    /// Adds the revocation of every valid or held certificate of `device` to `changes`.
    pub async fn revoke_all(
        &self,
        changes: &mut Changes,
        device: &DeviceId,
        reason: &str,
    ) -> Result<(), CoreError> {
        self.set_certificates(
            changes,
            device,
            &[CertificateStatus::Valid, CertificateStatus::OnHold],
            CertificateStatus::Revoked,
            Some(reason),
        )
        .await
    }
}

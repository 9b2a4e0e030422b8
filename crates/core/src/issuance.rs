//! The issuance use case: one card from blank to Active, as the Device Issuance wizard drives it.
//!
//! ```text
//!  start ──> Started ──choose_policy──> Issuing ──(card personalised)──> Printing ──> Printed ──continue──> Completed (card Active)
//!                                          │                                │            └───cancel───> Cancelled (card Pending)
//!                                          └──(any error)──> Failed         └──(print error)──> PrintFailed ──retry_print──> Printing
//!                                             card Failed, certificates revoked         (card Pending, nothing lost)
//! ```
//!
//! Every step writes an audit event. The card record exists before the first write to the card, so a
//! card is never half-issued without the system knowing it. A card that an earlier issuance left
//! `Failed` (or that was `Terminated`) is reset first and issued under a new record; a card that
//! is live in Tessera or personalised by another system is refused untouched (see `card_history`).

use crate::audit::{self, EventKind};
use crate::error::CoreError;
use crate::ids::*;
use crate::lifecycle::{transition, DeviceCommand, DeviceState, Reason};
use crate::model::*;
use crate::ports::*;
use crate::secret::{ManagementKey, ManagementKeyAlgorithm, Pin, Puk};
use crate::template;
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
    pub sealer: Arc<dyn Sealer>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    /// Caps how many refused attempts of strangers reach the audit log each minute.
    pub refusals: Arc<crate::refusals::RefusalLimiter>,
}

/// Who is acting: the signed-in operator and their role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub operator: OperatorId,
    pub role: Role,
}

impl Actor {
    pub fn require(&self, permission: Permission, what: &str) -> Result<(), CoreError> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(CoreError::Forbidden(what.to_owned()))
        }
    }
}

/// Context of an audit event.
#[derive(Default)]
pub struct AuditContext<'a> {
    pub operator: Option<&'a OperatorId>,
    pub user: Option<&'a UserId>,
    pub device: Option<&'a DeviceId>,
    pub operation: Option<&'a OperationId>,
}

impl Services {
    pub async fn audit(
        &self,
        kind: EventKind,
        ctx: AuditContext<'_>,
        details: serde_json::Value,
    ) -> Result<(), CoreError> {
        if let Some(summary) = self.refusals.due(self.clock.now().0) {
            self.append_summary(&summary).await?;
        }
        self.append(kind, ctx, details).await
    }

    /// Audits a refused attempt by someone not signed in (a wrong password, an unknown token):
    /// written unless this minute already wrote its share of them (see [`crate::refusals`]).
    pub async fn audit_refusal(
        &self,
        kind: EventKind,
        ctx: AuditContext<'_>,
        details: serde_json::Value,
    ) -> Result<(), CoreError> {
        let (write, summary) = self.refusals.admit(kind.name, self.clock.now().0);
        if let Some(summary) = summary {
            self.append_summary(&summary).await?;
        }
        if write {
            self.append(kind, ctx, details).await?;
        }
        Ok(())
    }

    async fn append_summary(&self, summary: &crate::refusals::Summary) -> Result<(), CoreError> {
        let kind = crate::audit::REFUSALS_SUMMARISED;
        self.append(kind, AuditContext::default(), summary.details())
            .await
    }

    async fn append(
        &self,
        kind: EventKind,
        ctx: AuditContext<'_>,
        details: serde_json::Value,
    ) -> Result<(), CoreError> {
        self.store
            .append_audit(&NewAuditEvent {
                at: self.clock.now(),
                code: kind.code,
                name: kind.name,
                operator: ctx.operator.cloned(),
                user: ctx.user.cloned(),
                device: ctx.device.cloned(),
                operation: ctx.operation.cloned(),
                details,
            })
            .await?;
        Ok(())
    }

    pub(crate) fn station(&self, id: &StationId) -> Result<Arc<dyn StationPort>, CoreError> {
        self.stations
            .station(id)
            .ok_or_else(|| CoreError::NotFound(format!("station {id}")))
    }

    /// Applies a lifecycle command to a device, stores it and audits the change.
    pub async fn change_state(
        &self,
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
        self.store.update_device(device).await?;
        self.audit(
            audit::DEVICE_STATE_CHANGED,
            AuditContext {
                device: Some(&device.id),
                user: device.user.as_ref(),
                ..ctx
            },
            json!({"from": from.as_str(), "to": to.as_str(), "reason": reason.as_str()}),
        )
        .await
    }
}

/// Remembers the printer and reader an operator uses at a station.
pub async fn configure_printer(
    svc: &Services,
    actor: &Actor,
    pairing: &PrinterPairing,
) -> Result<(), CoreError> {
    actor.require(Permission::IssueDevice, "configure printers")?;
    let station = svc.station(&pairing.station)?;
    let printers = station.printers().await.map_err(CoreError::Station)?;
    if !printers.iter().any(|p| p.name == pairing.printer) {
        return Err(CoreError::Invalid(format!(
            "the station has no printer named {:?}",
            pairing.printer
        )));
    }
    let readers = station.readers().await.map_err(CoreError::Station)?;
    if !readers.contains(&pairing.reader) {
        return Err(CoreError::Invalid(format!(
            "the station has no reader named {:?}",
            pairing.reader
        )));
    }
    svc.store.put_pairing(pairing).await?;
    svc.audit(
        audit::PRINTER_PAIRED,
        AuditContext {
            operator: Some(&actor.operator),
            ..Default::default()
        },
        json!({"station": pairing.station, "printer": pairing.printer, "reader": pairing.reader}),
    )
    .await
}

/// What the operator chose on the Configure Device step.
#[derive(Clone, Debug)]
pub struct StartRequest {
    pub user: UserId,
    pub station: StationId,
    /// Empty when card printing is off: the card is only encoded.
    pub printer: String,
    pub reader: String,
    pub layout: LayoutId,
}

fn group_allowed(allowed: &[String], user: &User) -> bool {
    allowed.is_empty() || allowed.iter().any(|g| user.groups.contains(g))
}

/// Start: checks the choices, feeds a blank card into the printer's encoder and opens a job.
pub async fn start(
    svc: &Services,
    actor: &Actor,
    req: StartRequest,
) -> Result<IssuanceJob, CoreError> {
    actor.require(Permission::IssueDevice, "issue devices")?;
    let user = svc
        .store
        .user(&req.user)
        .await
        .map_err(|_| CoreError::NotFound(format!("user {}", req.user)))?;
    let layouts = svc.store.layouts().await?;
    let layout = layouts
        .iter()
        .find(|l| l.id == req.layout)
        .ok_or_else(|| CoreError::NotFound(format!("layout {}", req.layout)))?;
    if !group_allowed(&layout.allowed_groups, &user) {
        return Err(CoreError::Invalid(format!(
            "the layout {} is not allowed for {}",
            layout.name, user.display_name
        )));
    }
    if req.reader.is_empty() {
        return Err(CoreError::Invalid("choose the card reader first".into()));
    }
    let station = svc.station(&req.station)?;
    let now = svc.clock.now();
    let job = IssuanceJob {
        id: JobId::new(svc.random.uuid()),
        operation: OperationId::new(svc.random.uuid()),
        operator: actor.operator.clone(),
        user: req.user.clone(),
        station: req.station.clone(),
        printer: req.printer.clone(),
        reader: req.reader.clone(),
        layout: req.layout.clone(),
        policy: None,
        device: None,
        step: JobStep::Started,
        progress: 0,
        message: "Waiting for the device policy".into(),
        error: None,
        created_at: now,
        updated_at: now,
    };
    let ctx = || AuditContext {
        operator: Some(&actor.operator),
        user: Some(&job.user),
        operation: Some(&job.operation),
        ..Default::default()
    };
    svc.store.insert_job(&job).await?;
    svc.audit(
        audit::ISSUANCE_STARTED,
        ctx(),
        json!({"job": job.id, "station": job.station, "printer": job.printer, "reader": job.reader, "layout": job.layout}),
    )
    .await?;
    if !req.printer.is_empty() {
        station
            .feed_card(&req.printer)
            .await
            .map_err(CoreError::Station)?;
        svc.audit(audit::CARD_FED, ctx(), json!({"printer": job.printer}))
            .await?;
    }
    Ok(job)
}

/// Checks a PIN against the policy: digits only, length within bounds.
pub fn check_pin(policy: &PinPolicy, pin: &Pin) -> Result<(), CoreError> {
    let p = pin.expose();
    let len = p.chars().count();
    if !p.chars().all(|c| c.is_ascii_digit()) {
        return Err(CoreError::Invalid(
            "the PIN must contain digits only".into(),
        ));
    }
    if len < policy.min_length as usize || len > policy.max_length as usize {
        return Err(CoreError::Invalid(format!(
            "the PIN must have {} to {} digits",
            policy.min_length, policy.max_length
        )));
    }
    Ok(())
}

/// The policy and PIN the operator chose; returns the job ready to run and the PIN to set.
/// In *Not displayed* mode the PIN is generated here (and escrowed sealed once the card exists).
pub async fn choose_policy(
    svc: &Services,
    actor: &Actor,
    job: &JobId,
    policy: &PolicyId,
    pin: Option<Pin>,
) -> Result<(IssuanceJob, DevicePolicy, Pin), CoreError> {
    actor.require(Permission::IssueDevice, "issue devices")?;
    let mut job = svc.store.job(job).await?;
    if job.step != JobStep::Started {
        return Err(CoreError::Invalid(
            "this issuance has already moved past the policy step".into(),
        ));
    }
    let user = svc.store.user(&job.user).await?;
    let policy = svc
        .store
        .policies()
        .await?
        .into_iter()
        .find(|p| &p.id == policy)
        .ok_or_else(|| CoreError::NotFound(format!("device policy {policy}")))?;
    if !group_allowed(&policy.allowed_groups, &user) {
        return Err(CoreError::Invalid(format!(
            "the policy {} is not allowed for {}",
            policy.name, user.display_name
        )));
    }
    let settings = svc.store.settings().await?;
    let pin = match (settings.initial_pin_mode, pin) {
        (PinDisplayMode::NotDisplayed, _) => {
            Pin::new(svc.random.digits(policy.pin.max_length.max(6) as usize))
        }
        (_, Some(pin)) => pin,
        (_, None) => return Err(CoreError::Invalid("enter the initial PIN".into())),
    };
    check_pin(&policy.pin, &pin)?;
    if pin.expose() == Pin::factory_default().expose() {
        return Err(CoreError::Invalid(
            "the initial PIN must differ from the factory PIN".into(),
        ));
    }
    job.policy = Some(policy.id.clone());
    job.step = JobStep::Issuing;
    job.message = "Connecting to the card".into();
    job.updated_at = svc.clock.now();
    svc.store.update_job(&job).await?;
    Ok((job, policy, pin))
}

/// Updates the job's progress bar.
async fn progress(
    svc: &Services,
    job: &mut IssuanceJob,
    percent: u8,
    message: impl Into<String>,
) -> Result<(), CoreError> {
    job.progress = percent;
    job.message = message.into();
    job.updated_at = svc.clock.now();
    svc.store.update_job(job).await?;
    Ok(())
}

/// Personalises the card and prints it. Any error ends the job in `Failed` with the card `Failed`
/// and its certificates revoked; a print error ends it in `PrintFailed` with the card `Pending`.
pub async fn run(
    svc: &Services,
    mut job: IssuanceJob,
    policy: DevicePolicy,
    pin: Pin,
) -> IssuanceJob {
    let mut device: Option<Device> = None;
    let outcome = personalise(svc, &mut job, &policy, &pin, &mut device).await;
    match outcome {
        Ok(()) => {
            print(svc, &mut job).await;
        }
        Err(err) => fail(svc, &mut job, device, err).await,
    }
    job
}

async fn personalise(
    svc: &Services,
    job: &mut IssuanceJob,
    policy: &DevicePolicy,
    pin: &Pin,
    device_slot: &mut Option<Device>,
) -> Result<(), CoreError> {
    let station = svc.station(&job.station)?;
    let user = svc.store.user(&job.user).await?;
    progress(svc, job, 2, "Connecting to the card").await?;
    let transport = station.connect(&job.reader).await?;
    let mut card = (svc.piv)(transport);
    let identity = open_card(svc, job, card.as_mut()).await?;

    let now = svc.clock.now();
    let mut device = Device {
        id: DeviceId::new(svc.random.uuid()),
        serial: identity.serial.clone(),
        atr: hex::encode_upper(&identity.atr),
        device_type: "PIV".into(),
        state: DeviceState::Available,
        reason: Reason::None,
        user: None,
        policy: Some(policy.id.clone()),
        layout: Some(job.layout.clone()),
        created_at: now,
        updated_at: now,
        activated_at: None,
        expires_at: Some(now.plus_days(policy.card_validity_days as i64)),
    };
    svc.store.insert_device(&device).await?;
    job.device = Some(device.id.clone());
    svc.store.update_job(job).await?;
    svc.audit(
        audit::DEVICE_REGISTERED,
        AuditContext {
            operator: Some(&job.operator),
            user: Some(&job.user),
            device: Some(&device.id),
            operation: Some(&job.operation),
        },
        json!({"serial": device.serial, "atr": device.atr, "version": identity.version}),
    )
    .await?;
    device.user = Some(user.uid.clone());
    let op = job.operation.clone();
    let operator = job.operator.clone();
    let dev_id = device.id.clone();
    let ctx = || AuditContext {
        operator: Some(&operator),
        user: Some(&user.uid),
        device: Some(&dev_id),
        operation: Some(&op),
    };
    svc.change_state(&mut device, DeviceCommand::Assign, ctx())
        .await?;
    svc.change_state(&mut device, DeviceCommand::StartProduction, ctx())
        .await?;
    *device_slot = Some(device.clone());
    // `open_card` authenticated; the event waits for the record it belongs to.
    svc.audit(audit::CARD_AUTHENTICATED, ctx(), json!({"key": "factory"}))
        .await?;

    // Three phases, so that a card behind a station costs few round trips: every key is
    // generated (one APDU script), every certificate is issued, then every write goes to the card
    // together (one more script). Secrets are escrowed before the script that gives them to the card.
    let card_uuid = device.id.as_str().to_owned();
    let slots = policy.slots.len().max(1);
    progress(
        svc,
        job,
        10,
        format!(
            "Generating {} on the card",
            match slots {
                1 => "the key".to_owned(),
                n => format!("{n} keys"),
            }
        ),
    )
    .await?;
    let wanted: Vec<(Slot, KeyAlgorithm)> =
        policy.slots.iter().map(|s| (s.slot, s.algorithm)).collect();
    let public_keys = card.generate_keys(&wanted).await?;
    if public_keys.len() != wanted.len() {
        return Err(CoreError::Card(CardError::Malformed {
            operation: "GENERATE ASYMMETRIC KEY PAIR".into(),
            detail: "the card returned a different number of keys".into(),
        }));
    }
    for (slot, algorithm) in &wanted {
        svc.audit(
            audit::KEY_GENERATED,
            ctx(),
            json!({"slot": slot.code(), "algorithm": algorithm}),
        )
        .await?;
    }

    let mut issued_certificates = Vec::with_capacity(slots);
    for (i, (slot_policy, public_key)) in policy.slots.iter().zip(public_keys).enumerate() {
        let slot = slot_policy.slot;
        progress(
            svc,
            job,
            20 + (40 * i / slots) as u8,
            format!("Issuing the {} certificate", slot.label()),
        )
        .await?;
        let issued = svc
            .ca
            .issue(&CertificateRequest {
                slot,
                public_key_der: public_key,
                profile: slot_policy.profile.clone(),
                subject: CertificateSubject {
                    user: user.clone(),
                    card_uuid: card_uuid.clone(),
                },
                not_before: svc.clock.now(),
            })
            .await
            .map_err(CoreError::Ca)?;
        // Recorded before it reaches the card, on hold: a failure after this point revokes it.
        svc.store
            .insert_certificate(&CertificateRecord {
                serial: issued.serial.clone(),
                device: device.id.clone(),
                user: user.uid.clone(),
                slot,
                subject: issued.subject.clone(),
                issuer: issued.issuer.clone(),
                not_before: issued.not_before,
                not_after: issued.not_after,
                status: CertificateStatus::OnHold,
                revocation_reason: Some("certificateHold".into()),
                der: issued.der.clone(),
            })
            .await?;
        svc.audit(
            audit::CERTIFICATE_ISSUED,
            ctx(),
            json!({"slot": slot.code(), "serial": issued.serial, "subject": issued.subject}),
        )
        .await?;
        issued_certificates.push((slot, issued));
    }

    // Escrowed before the card gets them: losing the PUK or the management key would make the
    // card unrecoverable.
    let puk = Puk::new(svc.random.digits(policy.puk.length as usize));
    svc.store
        .put_device_secret(&device.id, "puk", &svc.sealer.seal(puk.expose().as_bytes()))
        .await?;
    let key = ManagementKey::new(
        ManagementKeyAlgorithm::Aes256,
        svc.random.bytes::<32>().to_vec(),
    )
    .map_err(CoreError::Invalid)?;
    svc.store
        .put_device_secret(
            &device.id,
            "management_key",
            &svc.sealer.seal(&key.to_sealable()),
        )
        .await?;
    if svc.store.settings().await?.initial_pin_mode == PinDisplayMode::NotDisplayed {
        svc.store
            .put_device_secret(&device.id, "pin", &svc.sealer.seal(pin.expose().as_bytes()))
            .await?;
    }

    progress(
        svc,
        job,
        70,
        "Writing certificates, CHUID, CCC, printed information, PIN, PUK and management key",
    )
    .await?;
    card.defer_writes();
    for (slot, issued) in &issued_certificates {
        card.write_certificate(*slot, &issued.der).await?;
    }
    let expires = device.expires_at.unwrap_or(now);
    let guid = uuid_to_bytes(device.id.as_str()).unwrap_or_default();
    let mut objects = Vec::new();
    if policy.write_chuid {
        card.write_chuid(guid, &expires.compact_date()).await?;
        objects.push("chuid");
    }
    if policy.write_ccc {
        let mut card_id = [0u8; 14];
        card_id.copy_from_slice(&guid[..14]);
        card.write_ccc(card_id).await?;
        objects.push("ccc");
    }
    if policy.write_printed_information {
        card.write_printed_information(&PrintedInformation {
            name: truncate(&user.display_name, 32),
            employee_affiliation: truncate(&user.title, 20),
            expiration_date: template::piv_printed_date(expires),
            agency_card_serial: truncate(&device.serial, 10),
            issuer_identification: "TESSERA".into(),
            organization_line_1: truncate(&user.department, 20),
            organization_line_2: String::new(),
        })
        .await?;
        objects.push("printed_information");
    }
    card.change_pin(&Pin::factory_default(), pin).await?;
    card.change_puk(&Puk::factory_default(), &puk).await?;
    card.set_management_key(&key).await?;
    card.flush_writes().await?;

    for (slot, issued) in &issued_certificates {
        svc.audit(
            audit::CERTIFICATE_WRITTEN,
            ctx(),
            json!({"slot": slot.code(), "serial": issued.serial}),
        )
        .await?;
    }
    svc.audit(
        audit::DATA_OBJECTS_WRITTEN,
        ctx(),
        json!({"objects": objects}),
    )
    .await?;
    svc.audit(audit::PIN_SET, ctx(), json!({})).await?;
    svc.audit(audit::PUK_SET, ctx(), json!({})).await?;
    svc.audit(
        audit::MANAGEMENT_KEY_REPLACED,
        ctx(),
        json!({"algorithm": "aes256"}),
    )
    .await?;

    svc.change_state(&mut device, DeviceCommand::CompleteProduction, ctx())
        .await?;
    *device_slot = Some(device);
    progress(svc, job, 90, "Card personalised").await?;
    Ok(())
}

/// What an issuance does with the card in the encoder, decided from Tessera's records of its
/// serial before the card gets a record of its own.
#[derive(Debug, PartialEq, Eq)]
enum CardHistory<'a> {
    /// Issue it as it is.
    Fresh,
    /// Reset it to its factory state first; the newest earlier record of the card.
    Reset(&'a Device),
    /// Refused, with the sentence the operator reads.
    Refused(String),
}

/// The rule for a card that may have been in the encoder before (`records`: every record of its
/// serial, newest first; `factory_key`: the factory management key opened it; `resettable`: it
/// offers the Yubico extensions, so the Yubico RESET).
///
/// - A record that is live (Pending, Active, Suspended) or being issued refuses the card: its
///   holder's certificates are on it, or another job is at work on it.
/// - A card Tessera has no record of is issued when the factory key opens it, and refused
///   otherwise: another system personalised it and holds its keys.
/// - When every record is Failed, Terminated or Recycled, the card is reset and issued again,
///   even when the factory key opens it, because a failed attempt may have changed the PIN or
///   the PUK before it got to the management key. Terminated cards count too: their certificates
///   are revoked and their record is closed, so only the plastic is left to reuse (a lost card
///   that turns up again is wiped, which is what one wants). The old records keep their state.
/// - A card without the Yubico extensions cannot be reset: it is issued as it is when the
///   factory key opens it, and refused otherwise.
fn card_history(records: &[Device], factory_key: bool, resettable: bool) -> CardHistory<'_> {
    use DeviceState as S;
    if let Some(live) = records
        .iter()
        .find(|d| matches!(d.state, S::Pending | S::Active | S::Suspended))
    {
        return CardHistory::Refused(format!(
            "This card is already personalised (device {}, {}); terminate it first",
            live.id, live.state
        ));
    }
    if let Some(busy) = records
        .iter()
        .find(|d| matches!(d.state, S::Available | S::Assigned | S::InProduction))
    {
        return CardHistory::Refused(format!(
            "This card is being issued by another job (device {}, {}); wait until it ends",
            busy.id, busy.state
        ));
    }
    match records.first() {
        None if factory_key => CardHistory::Fresh,
        None => CardHistory::Refused(
            "This card is personalised by another system; reset it with its own tools".into(),
        ),
        Some(newest) if resettable => CardHistory::Reset(newest),
        Some(_) if factory_key => CardHistory::Fresh,
        Some(newest) => CardHistory::Refused(format!(
            "This card (device {}, {}) has a management key Tessera does not know and no Yubico \
             reset; reset it with its own tools",
            newest.id, newest.state
        )),
    }
}

/// SELECTs the card, applies [`card_history`] and, where it says so, resets the card and audits
/// that; ends with the card authenticated with the factory management key. Runs before the card
/// gets a record, so a refused card gets none and its earlier records stay as they are.
async fn open_card(
    svc: &Services,
    job: &mut IssuanceJob,
    card: &mut dyn PivCard,
) -> Result<CardIdentity, CoreError> {
    let identity = card.select().await?;
    let records = svc.store.devices_with_serial(&identity.serial).await?;
    progress(svc, job, 4, "Authenticating to the card").await?;
    let factory_key = match card.authenticate(&ManagementKey::factory_default()).await {
        Ok(()) => true,
        Err(CardError::ManagementKeyRejected) => false,
        Err(e) => return Err(e.into()),
    };
    let previous = match card_history(&records, factory_key, identity.version.is_some()) {
        CardHistory::Fresh => return Ok(identity),
        CardHistory::Refused(message) => return Err(CoreError::Invalid(message)),
        CardHistory::Reset(previous) => previous,
    };
    progress(svc, job, 6, "Resetting the card to its factory state").await?;
    card.factory_reset().await?;
    svc.audit(
        audit::CARD_RESET,
        AuditContext {
            operator: Some(&job.operator),
            user: previous.user.as_ref(),
            device: Some(&previous.id),
            operation: Some(&job.operation),
        },
        json!({"serial": identity.serial, "previous_device": previous.id,
               "previous_state": previous.state.as_str()}),
    )
    .await?;
    let again = card.select().await?;
    if again.serial != identity.serial {
        return Err(CoreError::Invalid(
            "the card in the encoder was exchanged while it was being reset".into(),
        ));
    }
    card.authenticate(&ManagementKey::factory_default()).await?;
    Ok(again)
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Ends a job whose personalisation failed: card `Failed`, certificates revoked, job `Failed`.
async fn fail(svc: &Services, job: &mut IssuanceJob, device: Option<Device>, err: CoreError) {
    tracing::warn!(operation = %job.operation, error = %err, "issuance failed");
    if let Some(mut device) = device {
        let ctx = AuditContext {
            operator: Some(&job.operator),
            user: Some(&job.user),
            device: None,
            operation: Some(&job.operation),
        };
        if let Err(e) = svc
            .change_state(&mut device, DeviceCommand::Fail, ctx)
            .await
        {
            tracing::error!(operation = %job.operation, error = %e, "could not mark the card failed");
        }
        if let Err(e) = revoke_all(svc, &device.id, "cessationOfOperation").await {
            tracing::error!(operation = %job.operation, error = %e, "could not revoke certificates");
        }
    }
    job.step = JobStep::Failed;
    job.error = Some(JobError {
        code: err.code().as_str().to_owned(),
        message: err.to_string(),
    });
    job.message = "Issuance failed".into();
    job.updated_at = svc.clock.now();
    let _ = svc.store.update_job(job).await;
    let _ = svc
        .audit(
            audit::ISSUANCE_FAILED,
            AuditContext {
                operator: Some(&job.operator),
                user: Some(&job.user),
                device: job.device.as_ref(),
                operation: Some(&job.operation),
            },
            json!({"code": err.code().as_str(), "message": err.to_string()}),
        )
        .await;
}

pub(crate) async fn set_certificates(
    svc: &Services,
    device: &DeviceId,
    from: &[CertificateStatus],
    to: CertificateStatus,
    reason: Option<&str>,
) -> Result<(), CoreError> {
    let now = svc.clock.now();
    for cert in svc.store.certificates_of_device(device).await? {
        if from.contains(&cert.status) {
            svc.store
                .set_certificate_status(&cert.serial, to, reason, now)
                .await?;
            svc.audit(
                audit::CERTIFICATE_STATUS_CHANGED,
                AuditContext {
                    device: Some(device),
                    ..Default::default()
                },
                json!({"serial": cert.serial, "from": cert.status.as_str(), "to": to.as_str(), "reason": reason}),
            )
            .await?;
        }
    }
    Ok(())
}

pub(crate) async fn revoke_all(
    svc: &Services,
    device: &DeviceId,
    reason: &str,
) -> Result<(), CoreError> {
    set_certificates(
        svc,
        device,
        &[CertificateStatus::Valid, CertificateStatus::OnHold],
        CertificateStatus::Revoked,
        Some(reason),
    )
    .await
}

/// The values a layout binds for a user and device.
pub async fn card_data(
    svc: &Services,
    user: &User,
    device: &Device,
) -> Result<CardData, CoreError> {
    Ok(CardData {
        fields: template::fields(user, Some(device)),
        photo: svc.store.photo(&user.uid).await?,
    })
}

/// Renders the card face and sends it to the job's printer. Failure leaves the card Pending and the
/// job in `PrintFailed`, from where [`retry_print`] can try again.
async fn print(svc: &Services, job: &mut IssuanceJob) {
    if let Err(err) = try_print(svc, job).await {
        tracing::warn!(operation = %job.operation, error = %err, "printing failed");
        job.step = JobStep::PrintFailed;
        job.error = Some(JobError {
            code: err.code().as_str().to_owned(),
            message: err.to_string(),
        });
        job.message = "Printing failed; the card is personalised and Pending".into();
        job.updated_at = svc.clock.now();
        let _ = svc.store.update_job(job).await;
        let _ = svc
            .audit(
                audit::PRINT_FAILED,
                AuditContext {
                    operator: Some(&job.operator),
                    user: Some(&job.user),
                    device: job.device.as_ref(),
                    operation: Some(&job.operation),
                },
                json!({"printer": job.printer, "message": err.to_string()}),
            )
            .await;
    }
}

async fn try_print(svc: &Services, job: &mut IssuanceJob) -> Result<(), CoreError> {
    let device_id = job
        .device
        .clone()
        .ok_or_else(|| CoreError::Invalid("the job has no card yet".into()))?;
    job.step = JobStep::Printing;
    job.error = None;
    if job.printer.is_empty() {
        job.step = JobStep::Printed;
        progress(svc, job, 100, "Card encoded (card printing is off)").await?;
        return Ok(());
    }
    progress(svc, job, 92, format!("Printing on {}", job.printer)).await?;
    let device = svc.store.device(&device_id).await?;
    let target = PrintTarget {
        station: job.station.clone(),
        printer: job.printer.clone(),
        layout: job.layout.clone(),
        job: Some(job.id.clone()),
    };
    let ctx = AuditContext {
        operator: Some(&job.operator),
        user: Some(&job.user),
        device: Some(&device.id),
        operation: Some(&job.operation),
    };
    print_card(svc, &device, &target, ctx, None).await?;
    job.step = JobStep::Printed;
    progress(svc, job, 100, "Card printed").await?;
    Ok(())
}

/// Where and how a card face is printed.
struct PrintTarget {
    station: StationId,
    printer: String,
    layout: LayoutId,
    job: Option<JobId>,
}

/// Renders the card of `device` with its holder's data and prints it; every attempt is recorded
/// (layout version, printer, printer job, outcome) whatever happens.
async fn print_card(
    svc: &Services,
    device: &Device,
    target: &PrintTarget,
    ctx: AuditContext<'_>,
    reason: Option<&str>,
) -> Result<PrintRecord, CoreError> {
    let uid = device
        .user
        .clone()
        .ok_or_else(|| CoreError::Invalid("the card has no holder".into()))?;
    let user = svc.store.user(&uid).await?;
    let layout = svc
        .store
        .layouts()
        .await?
        .into_iter()
        .find(|l| l.id == target.layout)
        .ok_or_else(|| CoreError::NotFound(format!("layout {}", target.layout)))?;
    let data = card_data(svc, &user, device).await?;
    let rendered = svc
        .renderer
        .render(&layout, &data)
        .map_err(CoreError::Print)?;
    let station = svc.station(&target.station)?;
    let job_name = format!("{} {}", user.display_name, device.serial);
    let result = station.print(&target.printer, &job_name, &rendered).await;
    let record = PrintRecord {
        id: svc.random.uuid(),
        device: device.id.clone(),
        job: target.job.clone(),
        layout: layout.id.clone(),
        layout_version: layout.version,
        printer: target.printer.clone(),
        printer_job: result.as_ref().ok().map(|r| r.printer_job.clone()),
        state: match &result {
            Ok(r) => r.state.clone(),
            Err(_) => "failed".into(),
        },
        message: match &result {
            Ok(r) => r.message.clone(),
            Err(e) => e.to_string(),
        },
        files: result.as_ref().map(|r| r.files.clone()).unwrap_or_default(),
        created_at: svc.clock.now(),
    };
    svc.store.insert_print(&record).await?;
    let receipt = result.map_err(CoreError::Print)?;
    if receipt.state != "completed" {
        return Err(CoreError::Print(PortError::new(format!(
            "the printer reported the job {}: {}",
            receipt.state, receipt.message
        ))));
    }
    svc.audit(
        audit::CARD_PRINTED,
        ctx,
        json!({"printer": target.printer, "printer_job": receipt.printer_job, "layout": layout.id,
               "layout_version": layout.version, "reprint_reason": reason}),
    )
    .await?;
    Ok(record)
}

/// Prints the face of an issued card again: a Pending card whose print failed or was lost, or
/// an Active card whose face is worn (then a reason is required and audited).
pub async fn reprint(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
    station: &StationId,
    printer: &str,
    reason: &str,
) -> Result<PrintRecord, CoreError> {
    actor.require(Permission::IssueDevice, "print cards")?;
    let device = svc.store.device(device).await?;
    let reason = reason.trim();
    match device.state {
        DeviceState::Pending => {}
        DeviceState::Active if !reason.is_empty() => {}
        DeviceState::Active => {
            return Err(CoreError::Invalid(
                "say why an active card is printed again".into(),
            ))
        }
        other => {
            return Err(CoreError::Invalid(format!(
                "a {other} card is not printed again"
            )))
        }
    }
    let layout = device
        .layout
        .clone()
        .ok_or_else(|| CoreError::Invalid("the card has no layout".into()))?;
    let target = PrintTarget {
        station: station.clone(),
        printer: printer.to_owned(),
        layout,
        job: None,
    };
    let ctx = AuditContext {
        operator: Some(&actor.operator),
        user: device.user.as_ref(),
        device: Some(&device.id),
        operation: None,
    };
    let reason = (!reason.is_empty()).then_some(reason);
    print_card(svc, &device, &target, ctx, reason).await
}

/// Retry print after a print failure.
pub async fn retry_print(
    svc: &Services,
    actor: &Actor,
    job: &JobId,
) -> Result<IssuanceJob, CoreError> {
    actor.require(Permission::IssueDevice, "print devices")?;
    let mut job = svc.store.job(job).await?;
    if job.step != JobStep::PrintFailed {
        return Err(CoreError::Invalid(
            "only a failed print can be retried".into(),
        ));
    }
    print(svc, &mut job).await;
    Ok(job)
}

/// Continue: activates the card (Pending -> Active) and releases its certificates.
pub async fn finish(svc: &Services, actor: &Actor, job: &JobId) -> Result<IssuanceJob, CoreError> {
    let mut job = svc.store.job(job).await?;
    if job.step != JobStep::Printed {
        return Err(CoreError::Invalid(
            "the card can be activated once it is printed".into(),
        ));
    }
    let device = job
        .device
        .clone()
        .ok_or_else(|| CoreError::Invalid("the job has no card".into()))?;
    crate::devices::activate(svc, actor, &device, Some(&job.operation)).await?;
    job.step = JobStep::Completed;
    job.message = "Card activated".into();
    job.updated_at = svc.clock.now();
    svc.store.update_job(&job).await?;
    Ok(job)
}

/// Cancel: the card stays personalised and Pending, not activated; it can be activated later.
pub async fn cancel(svc: &Services, actor: &Actor, job: &JobId) -> Result<IssuanceJob, CoreError> {
    actor.require(Permission::IssueDevice, "cancel an issuance")?;
    let mut job = svc.store.job(job).await?;
    if !matches!(
        job.step,
        JobStep::Printed | JobStep::PrintFailed | JobStep::Started
    ) {
        return Err(CoreError::Invalid(
            "this issuance cannot be cancelled now".into(),
        ));
    }
    job.step = JobStep::Cancelled;
    job.message = "Cancelled; the card was not activated".into();
    job.updated_at = svc.clock.now();
    svc.store.update_job(&job).await?;
    svc.audit(
        audit::ACTIVATION_CANCELLED,
        AuditContext {
            operator: Some(&actor.operator),
            user: Some(&job.user),
            device: job.device.as_ref(),
            operation: Some(&job.operation),
        },
        json!({"job": job.id}),
    )
    .await?;
    Ok(job)
}

/// After a restart: jobs that were personalising a card when the server stopped end `Failed`
/// (card `Failed`, certificates revoked); jobs that were printing end `PrintFailed` (card
/// `Pending`, Retry print possible). Returns how many jobs were recovered.
pub async fn recover_interrupted(svc: &Services) -> Result<usize, CoreError> {
    let mut n = 0;
    let mut printing = svc.store.jobs_in_step(JobStep::Printing).await?;
    for mut job in svc.store.jobs_in_step(JobStep::Issuing).await? {
        let device = match &job.device {
            Some(id) => Some(svc.store.device(id).await?),
            None => None,
        };
        if device.as_ref().map(|d| d.state) == Some(DeviceState::Pending) {
            // Personalisation had finished; only the print was still to come.
            printing.push(job);
            continue;
        }
        let err = CoreError::Card(CardError::Unreachable(
            "the server stopped while the card was being personalised".into(),
        ));
        fail(svc, &mut job, device, err).await;
        n += 1;
    }
    for mut job in printing {
        job.step = JobStep::PrintFailed;
        job.error = Some(JobError {
            code: crate::ErrorCode::Print.as_str().into(),
            message: "the server stopped while the card was printing; print it again".into(),
        });
        job.updated_at = svc.clock.now();
        svc.store.update_job(&job).await?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, state: DeviceState) -> Device {
        Device {
            id: DeviceId::new(id),
            serial: "12345678".into(),
            atr: String::new(),
            device_type: "PIV".into(),
            state,
            reason: Reason::None,
            user: Some(UserId::new("jdoe")),
            policy: None,
            layout: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            activated_at: None,
            expires_at: None,
        }
    }

    #[test]
    fn a_card_is_reset_only_when_every_record_of_it_is_closed() {
        use DeviceState as S;
        let refused = |h: CardHistory| match h {
            CardHistory::Refused(m) => m,
            other => panic!("not refused: {other:?}"),
        };
        // Unknown: issued when blank, refused when another system holds its key.
        assert_eq!(card_history(&[], true, true), CardHistory::Fresh);
        assert_eq!(
            refused(card_history(&[], false, true)),
            "This card is personalised by another system; reset it with its own tools"
        );
        // Closed records, newest first: reset, whatever the management key.
        for closed in [S::Failed, S::Terminated, S::Recycled] {
            let records = [record("d2", closed), record("d1", S::Failed)];
            for factory_key in [true, false] {
                assert_eq!(
                    card_history(&records, factory_key, true),
                    CardHistory::Reset(&records[0])
                );
            }
            // No Yubico reset: issued as it is if the factory key opens it.
            assert_eq!(card_history(&records, true, false), CardHistory::Fresh);
            let m = refused(card_history(&records, false, false));
            assert!(
                m.contains("device d2") && m.contains("its own tools"),
                "{m}"
            );
        }
        // A live record anywhere refuses the card, even behind a failed newer one.
        for live in [S::Pending, S::Active, S::Suspended] {
            let records = [record("d2", S::Failed), record("d1", live)];
            for factory_key in [true, false] {
                assert_eq!(
                    refused(card_history(&records, factory_key, true)),
                    format!(
                        "This card is already personalised (device d1, {live}); terminate it first"
                    )
                );
            }
        }
        for busy in [S::Available, S::Assigned, S::InProduction] {
            let m = refused(card_history(&[record("d3", busy)], true, true));
            assert!(m.contains("being issued") && m.contains("device d3"), "{m}");
        }
    }
}

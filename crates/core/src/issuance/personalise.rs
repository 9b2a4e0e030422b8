//! The personalisation step of a job: the card from blank to `Pending`, with its keys,
//! certificates, data objects, PIN, PUK and management key. Each phase commits its records and
//! audit events together with the job's progress, under the runner's lease, at the milestones
//! only: the card record and the move to `InProduction`; the keys generated; the certificates
//! issued (with the escrowed secrets, before anything reaches the card); the end of production
//! with the job's move to printing. A reset of a card adds its own two. A failure ends the job
//! `Failed`, the card `Failed` and its certificates revoked, in one transaction ([`fail`]); the
//! job's error then says what happened to the card ([`CardOutcome`]): untouched, reset, or
//! `Failed` with its certificates revoked.

use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::fips201::{CardObjects, FacialImage, Fingerprints};
use crate::ids::*;
use crate::jobs::{JobEvent, JobRunner};
use crate::lifecycle::{DeviceCommand, DeviceState, Reason};
use crate::model::*;
use crate::ports::*;
use crate::secret::{ManagementKey, ManagementKeyAlgorithm, Pin, Puk};
use crate::services::AuditContext;
use crate::template;
use serde_json::json;

/// The job's progress while the card is being reset, and once the reset is done: recorded with
/// the job, so that a job closed after its runner died still tells what happened to the card.
pub(super) const PROGRESS_RESETTING: u8 = 6;
pub(super) const PROGRESS_RESET_DONE: u8 = 8;

/// What a personalisation did to the card so far: the facts its failure reports.
#[derive(Debug, Default)]
pub(super) struct CardWork {
    /// The card's record, once it has one.
    pub device: Option<Device>,
    /// `Some(false)` once its factory reset began, `Some(true)` once the reset finished.
    pub reset: Option<bool>,
}

impl CardWork {
    /// The facts of a job whose runner is gone, from what it recorded: its card's record and the
    /// progress it reached.
    pub(super) fn recorded(job: &IssuanceJob, device: Option<Device>) -> Self {
        let reset = match job.progress {
            p if p >= PROGRESS_RESET_DONE => Some(true),
            p if p >= PROGRESS_RESETTING => Some(false),
            _ => None,
        };
        Self { device, reset }
    }
}

/// Personalises the card of `job` (step `Issuing`, leased by `runner`). On success the card is
/// `Pending` and the job at `Printing`, committed together.
pub(super) async fn personalise(
    runner: &JobRunner,
    job: &mut IssuanceJob,
    policy: &DevicePolicy,
    pin: &Pin,
    work: &mut CardWork,
) -> Result<(), CoreError> {
    let svc = &runner.svc;
    let station = svc.station(&job.station)?;
    let user = svc.store.user(&job.user).await?;
    let settings = svc.store.settings().await?;
    // Before any card command: a person whose fingerprints were removed after the policy step
    // is refused with the card untouched.
    let (facial_image, fingerprints) = biometrics(runner, policy, &user).await?;
    // The job already says "Connecting to the card" (the hand-over to the runner wrote it): the
    // progress is written at the milestones that carry records, not at every small step.
    let transport = station.connect(&job.reader).await?;
    let mut card = (svc.piv)(transport);
    let (identity, factory_algorithm) = open_card(runner, job, policy, card.as_mut(), work).await?;

    // The card's record, its assignment and the start of production: one commit, so a card is
    // never known to the database without its holder and its audit trail.
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
        firmware: identity.version.clone(),
        temporary_for: job.temporary_for.clone(),
    };
    job.device = Some(device.id.clone());
    let mut changes = Changes::new();
    changes.push(Change::InsertDevice(device.clone()));
    changes.audit(svc.event(
        audit::DEVICE_REGISTERED,
        AuditContext::of_job(job),
        json!({"serial": device.serial, "atr": device.atr, "version": identity.version,
               "model": device.model()}),
    ));
    device.user = Some(user.uid.clone());
    let ctx_job = job.clone();
    let ctx = || AuditContext::of_job(&ctx_job);
    svc.change_state(&mut changes, &mut device, DeviceCommand::Assign, ctx())?;
    svc.change_state(
        &mut changes,
        &mut device,
        DeviceCommand::StartProduction,
        ctx(),
    )?;
    // `open_card` authenticated; the event waits for the record it belongs to.
    changes.audit(svc.event(
        audit::CARD_AUTHENTICATED,
        ctx(),
        json!({"key": "factory", "algorithm": factory_algorithm.label()}),
    ));
    let slots = policy.slots.len().max(1);
    let generating = format!(
        "Generating {} on the card",
        match slots {
            1 => "the key".to_owned(),
            n => format!("{n} keys"),
        }
    );
    runner.progress(changes, job, 10, generating).await?;
    work.device = Some(device.clone());

    // Three phases, so that a card behind a station costs few round trips: every key is
    // generated (one APDU script), every certificate is issued, then every write goes to the card
    // together (one more script). Secrets are escrowed before the script that gives them to the card.
    let card_uuid = device.id.as_str().to_owned();
    let fasc_n = settings.fips201.fasc_n(&user.employee_id).ok_or_else(|| {
        CoreError::Invalid(
            "the FASC-N settings are not valid: agency and system codes need 4 digits, the \
             credential number 6"
                .into(),
        )
    })?;
    let wanted: Vec<(Slot, KeyAlgorithm)> =
        policy.slots.iter().map(|s| (s.slot, s.algorithm)).collect();
    let public_keys = card.generate_keys(&wanted).await?;
    if public_keys.len() != wanted.len() {
        return Err(CoreError::Card(CardError::Malformed {
            operation: "GENERATE ASYMMETRIC KEY PAIR".into(),
            detail: "the card returned a different number of keys".into(),
        }));
    }
    // Milestone: the keys are on the card.
    let mut changes = Changes::new();
    for (slot, algorithm) in &wanted {
        changes.audit(svc.event(
            audit::KEY_GENERATED,
            ctx(),
            json!({"slot": slot.code(), "algorithm": algorithm}),
        ));
    }
    let issuing = format!(
        "Issuing {}",
        match slots {
            1 => "the certificate".to_owned(),
            n => format!("{n} certificates"),
        }
    );
    let attestations = if policy.require_attestation {
        runner
            .progress(changes, job, 15, "Checking the card's key attestations")
            .await?;
        changes = Changes::new();
        let attestations =
            attest_keys(runner, card.as_mut(), &identity, &wanted, &public_keys).await?;
        for ((slot, _), attestation) in wanted.iter().zip(&attestations) {
            changes.audit(svc.event(
                audit::KEY_ATTESTED,
                ctx(),
                json!({
                "slot": slot.code(), "serial": attestation.serial,
                "firmware": attestation.firmware, "pin_policy": attestation.pin_policy,
                "touch_policy": attestation.touch_policy, "form_factor": attestation.form_factor,
                "root": attestation.root}),
            ));
        }
        attestations.into_iter().map(Some).collect()
    } else {
        runner.progress(changes, job, 20, issuing).await?;
        changes = Changes::new();
        vec![None; wanted.len()]
    };
    // Every certificate is issued, then all of them are recorded in one commit (with the
    // attestations, when checked, and the escrowed secrets), before any of them reaches the card.
    let mut issued_certificates = Vec::with_capacity(slots);
    for ((slot_policy, public_key), attestation) in
        policy.slots.iter().zip(public_keys).zip(attestations)
    {
        let slot = slot_policy.slot;
        let issued = svc
            .ca
            .issue(&CertificateRequest {
                slot,
                public_key_der: public_key,
                profile: slot_policy.profile.clone(),
                subject: CertificateSubject {
                    user: user.clone(),
                    card_uuid: card_uuid.clone(),
                    fasc_n: Some(fasc_n),
                },
                not_before: svc.clock.now(),
            })
            .await
            .map_err(CoreError::Ca)?;
        // Recorded before it reaches the card, on hold: a failure after this point revokes it.
        changes.push(Change::InsertCertificate(CertificateRecord {
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
            attestation,
        }));
        changes.audit(svc.event(
            audit::CERTIFICATE_ISSUED,
            ctx(),
            json!({"slot": slot.code(), "serial": issued.serial, "subject": issued.subject}),
        ));
        issued_certificates.push((slot, issued));
    }

    // Escrowed before the card gets them (and committed with the certificates): losing the
    // PUK or the management key would make the card unrecoverable.
    let puk = Puk::new(svc.random.digits(policy.puk.length as usize));
    changes.push(Change::PutDeviceSecret {
        device: device.id.clone(),
        kind: "puk".into(),
        sealed: svc.sealer.seal(puk.expose().as_bytes()),
    });
    let key = ManagementKey::new(
        ManagementKeyAlgorithm::Aes256,
        svc.random.bytes::<32>().to_vec(),
    )
    .map_err(CoreError::Invalid)?;
    changes.push(Change::PutDeviceSecret {
        device: device.id.clone(),
        kind: "management_key".into(),
        sealed: svc.sealer.seal(&key.to_sealable()),
    });
    if settings.initial_pin_mode == PinDisplayMode::NotDisplayed {
        changes.push(Change::PutDeviceSecret {
            device: device.id.clone(),
            kind: "pin".into(),
            sealed: svc.sealer.seal(pin.expose().as_bytes()),
        });
    }
    runner
        .progress(
            changes,
            job,
            70,
            "Writing certificates, signed data objects and biometrics, PIN, PUK and management key",
        )
        .await?;

    card.defer_writes();
    for (slot, issued) in &issued_certificates {
        card.write_certificate(*slot, &issued.der).await?;
    }
    let expires = device.expires_at.unwrap_or(now);
    let guid = uuid_to_bytes(device.id.as_str()).unwrap_or_default();
    let card_objects = CardObjects {
        guid,
        expires: expires.compact_date(),
        fasc_n,
        created: now.cbeff_time(),
        chuid: policy.write_chuid,
        ccc: policy.write_ccc,
        printed_information: policy
            .write_printed_information
            .then(|| PrintedInformation {
                name: truncate(&user.display_name, 32),
                employee_affiliation: truncate(&user.title, 20),
                expiration_date: template::piv_printed_date(expires),
                agency_card_serial: truncate(&device.serial, 10),
                issuer_identification: "TESSERA".into(),
                organization_line_1: truncate(&user.department, 20),
                organization_line_2: String::new(),
            }),
        facial_image,
        fingerprints,
        security_object: policy.write_security_object,
    };
    let signer = svc.ca.content_signer();
    let objects = card
        .write_data_objects(&card_objects, signer.as_ref())
        .await?;
    card.change_pin(&Pin::factory_default(), pin).await?;
    card.change_puk(&Puk::factory_default(), &puk).await?;
    card.set_management_key(&key).await?;
    card.flush_writes().await?;

    // What the card now holds, the end of production and the job's move to printing: one commit.
    let mut changes = Changes::new();
    for (slot, issued) in &issued_certificates {
        changes.audit(svc.event(
            audit::CERTIFICATE_WRITTEN,
            ctx(),
            json!({"slot": slot.code(), "serial": issued.serial}),
        ));
    }
    changes.audit(svc.event(
        audit::DATA_OBJECTS_WRITTEN,
        ctx(),
        json!({"objects": objects}),
    ));
    changes.audit(svc.event(audit::PIN_SET, ctx(), json!({})));
    changes.audit(svc.event(audit::PUK_SET, ctx(), json!({})));
    changes.audit(svc.event(
        audit::MANAGEMENT_KEY_REPLACED,
        ctx(),
        json!({"algorithm": "aes256"}),
    ));
    svc.change_state(
        &mut changes,
        &mut device,
        DeviceCommand::CompleteProduction,
        ctx(),
    )?;
    crate::stock::mark_issued(svc, &mut changes, job, policy, &device.serial).await?;
    job.progress = 90;
    // The print follows at once: this commit says so, and the print step writes nothing more
    // until the printer answers.
    job.message = if job.printer.is_empty() {
        "Card personalised".into()
    } else {
        format!("Card personalised; printing on {}", job.printer)
    };
    runner.advance(changes, job, JobEvent::Personalised).await?;
    work.device = Some(device);
    Ok(())
}

/// The holder's facial image and fingerprints for the card, as far as the policy asks for them
/// and the person has them: the facial image is made from the stored portrait in the size and
/// format SP 800-76-2 asks of a card; a person without a photo or without enrolled fingerprints
/// gets a card without that object, unless the policy requires fingerprints.
async fn biometrics(
    runner: &JobRunner,
    policy: &DevicePolicy,
    user: &User,
) -> Result<(Option<FacialImage>, Option<Fingerprints>), CoreError> {
    let svc = &runner.svc;
    let facial_image = match policy.write_facial_image {
        false => None,
        true => match svc.store.photo(&user.uid).await? {
            None => None,
            Some(portrait) => Some(FacialImage {
                jpeg: svc.photos.card_facial_image(portrait).await.map_err(|e| {
                    CoreError::Card(CardError::DataObject {
                        object: "facial image".into(),
                        detail: e.to_string(),
                    })
                })?,
            }),
        },
    };
    let fingerprints = crate::enrolment::fingerprints_for_card(svc, user, policy).await?;
    Ok((facial_image, fingerprints))
}

/// What an issuance does with the card in the encoder, decided from Tessera's records of its
/// serial before the card gets a record of its own.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum CardHistory<'a> {
    /// Issue it as it is.
    Fresh,
    /// Reset it to its factory state first; the newest earlier record of the card.
    Reset(&'a Device),
    /// Refused: the card belongs to this live device (Pending, Active, Suspended).
    Live(&'a Device),
    /// Refused: another job is at work on the card (this record of it is being issued).
    Busy(&'a Device),
    /// Refused because no key Tessera has opens it: another system holds its management key.
    Foreign(String),
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
pub(super) fn card_history(
    records: &[Device],
    factory_key: bool,
    resettable: bool,
) -> CardHistory<'_> {
    use DeviceState as S;
    if let Some(live) = records
        .iter()
        .find(|d| matches!(d.state, S::Pending | S::Active | S::Suspended))
    {
        return CardHistory::Live(live);
    }
    if let Some(busy) = records
        .iter()
        .find(|d| matches!(d.state, S::Available | S::Assigned | S::InProduction))
    {
        return CardHistory::Busy(busy);
    }
    match records.first() {
        None if factory_key => CardHistory::Fresh,
        None => CardHistory::Foreign(
            "This card is personalised by another system; reset it with its own tools".into(),
        ),
        Some(newest) if resettable => CardHistory::Reset(newest),
        Some(_) if factory_key => CardHistory::Fresh,
        Some(newest) => CardHistory::Foreign(format!(
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
    runner: &JobRunner,
    job: &mut IssuanceJob,
    policy: &DevicePolicy,
    card: &mut dyn PivCard,
    work: &mut CardWork,
) -> Result<(CardIdentity, ManagementKeyAlgorithm), CoreError> {
    let svc = &runner.svc;
    let identity = card.select().await?;
    // Before anything is written to the card: a policy may require it to be in stock.
    crate::stock::admit(svc, policy, &identity.serial).await?;
    if policy.require_attestation && identity.version.is_none() {
        return Err(CoreError::Attestation(
            "any".into(),
            AttestationError::Invalid(
                "the policy requires key attestation, and only YubiKeys (cards that answer GET \
                 VERSION) attest their keys"
                    .into(),
            ),
        ));
    }
    if let Some(version) = &identity.version {
        if let Some(slot) = policy
            .slots
            .iter()
            .find(|s| !s.algorithm.offered_by_yubikey(version))
        {
            return Err(CoreError::CardLacksFeature(format!(
                "This card (firmware {version}) cannot generate {} keys, which the policy {} \
                 asks for in slot {}; YubiKeys offer them from firmware 5.7. Use another card \
                 or policy",
                slot.algorithm.label(),
                policy.name,
                slot.slot.code().to_uppercase()
            )));
        }
    }
    let records = svc.store.devices_with_serial(&identity.serial).await?;
    let factory_key = authenticate_factory(card).await?;
    let previous = match card_history(&records, factory_key.is_some(), identity.version.is_some()) {
        CardHistory::Fresh => {
            let algorithm = factory_key.expect("a fresh card opened with a factory key");
            return Ok((identity, algorithm));
        }
        CardHistory::Live(live) => return Err(belongs(svc, live).await),
        CardHistory::Busy(busy) => {
            return Err(CoreError::CardInUse(format!(
                "This card is being issued by another job (device {}, {}); nothing was written \
                 to it. Wait until that issuance ends, or feed another card",
                busy.id, busy.state
            )))
        }
        CardHistory::Foreign(message) => return Err(CoreError::ForeignCard(message)),
        CardHistory::Reset(previous) => previous,
    };
    runner
        .progress(
            Changes::new(),
            job,
            PROGRESS_RESETTING,
            "Resetting the card to its factory state",
        )
        .await?;
    work.reset = Some(false);
    card.factory_reset().await?;
    work.reset = Some(true);
    let mut changes = Changes::new();
    changes.audit(svc.event(
        audit::CARD_RESET,
        AuditContext {
            operator: Some(&job.operator),
            user: previous.user.as_ref(),
            device: Some(&previous.id),
            operation: Some(&job.operation),
        },
        json!({"serial": identity.serial, "previous_device": previous.id,
               "previous_state": previous.state.as_str()}),
    ));
    runner
        .progress(
            changes,
            job,
            PROGRESS_RESET_DONE,
            "Authenticating to the card",
        )
        .await?;
    let again = card.select().await?;
    if again.serial != identity.serial {
        return Err(CoreError::CardExchanged(format!(
            "the card in the encoder was exchanged while it was being reset (card {} became \
             card {}): feed one card and start again",
            identity.serial, again.serial
        )));
    }
    // A card that was reset yet refuses every factory key is broken, not foreign.
    let algorithm = authenticate_factory(card)
        .await?
        .ok_or(CoreError::Card(CardError::ManagementKeyRejected))?;
    Ok((again, algorithm))
}

/// The refusal of a card that belongs to a live device: whose it is, and what the operator can do
/// about it. Nothing was written to the card.
async fn belongs(svc: &crate::services::Services, live: &Device) -> CoreError {
    let holder = match &live.user {
        Some(uid) => match svc.store.user(uid).await {
            Ok(u) => format!("{} ({})", u.display_name, u.uid),
            Err(_) => uid.to_string(),
        },
        None => "no one".into(),
    };
    let todo = match live.state {
        DeviceState::Pending => format!(
            "If the card reached its holder, activate that device on {holder}'s page; to reuse \
             the card, terminate that device there first. Or feed a blank card"
        ),
        _ => format!(
            "Feed a blank card; to reuse this one, terminate that device on {holder}'s page first"
        ),
    };
    CoreError::CardBelongsToDevice {
        device: live.id.clone(),
        state: live.state,
        message: format!(
            "This card already belongs to device {} of {holder}, which is {}; it was left \
             untouched. {todo}",
            live.id, live.state
        ),
    }
}

/// Authenticates with the factory management key and returns its algorithm, or `None` when no
/// factory key opens the card. The card is asked which algorithm its key has (GET METADATA,
/// YubiKey 5.3 and later); a card that does not say is tried under each algorithm a factory key
/// may have: 3DES, then AES-192 (YubiKey 5.7 and later). A wrong management key costs nothing:
/// PIV keeps no retry counter for it.
async fn authenticate_factory(
    card: &mut dyn PivCard,
) -> Result<Option<ManagementKeyAlgorithm>, CoreError> {
    let candidates = match card.management_key_algorithm().await? {
        Some(algorithm) if ManagementKeyAlgorithm::FACTORY.contains(&algorithm) => vec![algorithm],
        // A key of another algorithm was set by someone: it is not the factory key.
        Some(_) => Vec::new(),
        None => ManagementKeyAlgorithm::FACTORY.to_vec(),
    };
    for algorithm in candidates {
        match card
            .authenticate(&ManagementKey::factory_default_for(algorithm))
            .await
        {
            Ok(()) => return Ok(Some(algorithm)),
            Err(CardError::ManagementKeyRejected) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// Asks the card to attest every generated key and verifies each attestation: signed by the
/// card's attestation certificate, chained to a trusted root, for the right slot, of the very
/// key the card returned from GENERATE, and from the card whose serial the card reported. A
/// station that put a key of its own in GENERATE's answer is caught here, before anything is
/// certified.
async fn attest_keys(
    runner: &JobRunner,
    card: &mut dyn PivCard,
    identity: &CardIdentity,
    wanted: &[(Slot, KeyAlgorithm)],
    public_keys: &[Vec<u8>],
) -> Result<Vec<KeyAttestation>, CoreError> {
    let svc = &runner.svc;
    let refused =
        |slot: Slot, e: AttestationError| CoreError::Attestation(slot.code().to_owned(), e);
    // A card that does not answer (a pulled card, a dead station) is a card error; one that
    // answers but will not attest (no ATTEST, no key of its own making) is a refused attestation.
    let unable = |slot: Slot, e: CardError| match e {
        CardError::Status { .. } | CardError::Malformed { .. } => refused(
            slot,
            AttestationError::Invalid(format!("the card cannot attest its key: {e}")),
        ),
        other => CoreError::Card(other),
    };
    let first = wanted.first().map_or(Slot::PivAuthentication, |w| w.0);
    let intermediate = card
        .attestation_certificate()
        .await
        .map_err(|e| unable(first, e))?;
    let mut out = Vec::with_capacity(wanted.len());
    for ((slot, _), public_key) in wanted.iter().zip(public_keys) {
        let intermediate = intermediate.as_deref().ok_or_else(|| {
            refused(
                *slot,
                AttestationError::Invalid("the card has no attestation certificate".into()),
            )
        })?;
        let attestation = card.attest(*slot).await.map_err(|e| unable(*slot, e))?;
        let attested = svc
            .attestation
            .verify(
                *slot,
                &attestation,
                intermediate,
                public_key,
                svc.clock.now(),
            )
            .map_err(|e| refused(*slot, e))?;
        // The attestation must be of this card: its serial, and its firmware when both say.
        let same_card = match attested.serial {
            Some(serial) => serial.to_string() == identity.serial,
            // Only a card without a numeric serial may leave it out.
            None => identity.serial.parse::<u32>().is_err(),
        };
        let same_firmware = match (&attested.firmware, &identity.version) {
            (Some(attested), Some(reported)) => attested == reported,
            _ => true,
        };
        if !same_card || !same_firmware {
            return Err(refused(
                *slot,
                AttestationError::Invalid(format!(
                    "it is of card {} (firmware {}), not of card {} (firmware {})",
                    attested.serial.map_or("?".into(), |s| s.to_string()),
                    attested.firmware.as_deref().unwrap_or("?"),
                    identity.serial,
                    identity.version.as_deref().unwrap_or("?"),
                )),
            ));
        }
        out.push(attested);
    }
    Ok(out)
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Ends a job whose personalisation failed, in one transaction: card `Failed` (when it has a
/// record), its certificates revoked, the job `Failed` with the error, and the audit events.
/// When that transaction is refused because someone else acted on the job (its lease was taken
/// over), nothing is written here: the new holder closes it.
pub(super) async fn fail(
    runner: &JobRunner,
    job: &mut IssuanceJob,
    work: CardWork,
    err: CoreError,
) {
    let svc = &runner.svc;
    tracing::warn!(operation = %job.operation, error = %err, "issuance failed");
    let mut changes = Changes::new();
    let outcome = match failure(runner, &mut changes, job, work).await {
        Ok(outcome) => Some(outcome),
        Err(e) => {
            tracing::error!(operation = %job.operation, error = %e, "could not prepare the failure");
            changes = Changes::new();
            None
        }
    };
    // The refusals that name their own cause in the audit log, beside the failure.
    match &err {
        CoreError::Attestation(slot, why) => {
            changes.audit(svc.event(
                audit::KEY_ATTESTATION_REFUSED,
                AuditContext::of_job(job),
                json!({"slot": slot, "reason": why.to_string()}),
            ));
        }
        CoreError::NotInStock { serial, state, .. } => {
            changes.audit(svc.event(
                audit::STOCK_CARD_REFUSED,
                AuditContext::of_job(job),
                json!({"serial": serial, "policy": job.policy, "state": state}),
            ));
        }
        _ => {}
    }
    changes.audit(svc.event(
        audit::ISSUANCE_FAILED,
        AuditContext::of_job(job),
        json!({"code": err.code().as_str(), "message": err.to_string(), "card": outcome}),
    ));
    job.error = Some(JobError {
        code: err.code().as_str().to_owned(),
        message: err.to_string(),
        card_outcome: outcome,
    });
    job.message = "Issuance failed".into();
    if let Err(e) = runner.advance(changes, job, JobEvent::Fail).await {
        tracing::error!(operation = %job.operation, error = %e, "could not record the failure");
    }
}

/// The card's part of a failure: `Failed`, certificates revoked, when it has a record; and what
/// that, or the lack of it, means for the card.
async fn failure(
    runner: &JobRunner,
    changes: &mut Changes,
    job: &IssuanceJob,
    work: CardWork,
) -> Result<CardOutcome, CoreError> {
    let svc = &runner.svc;
    let Some(mut device) = work.device else {
        return Ok(match work.reset {
            None => CardOutcome::Untouched,
            Some(false) => CardOutcome::ResetInterrupted,
            Some(true) => CardOutcome::Reset,
        });
    };
    if matches!(device.state, DeviceState::Failed) {
        return Ok(CardOutcome::Failed { revoked: 0 });
    }
    // Counted before they are revoked: the certificates this attempt had issued.
    let revoked = svc
        .store
        .certificates_of_device(&device.id)
        .await?
        .iter()
        .filter(|c| {
            matches!(
                c.status,
                CertificateStatus::Valid | CertificateStatus::OnHold
            )
        })
        .count() as u32;
    let ctx = AuditContext {
        device: None,
        ..AuditContext::of_job(job)
    };
    svc.change_state(changes, &mut device, DeviceCommand::Fail, ctx)?;
    svc.revoke_all(changes, &device.id, "cessationOfOperation")
        .await?;
    Ok(CardOutcome::Failed { revoked })
}

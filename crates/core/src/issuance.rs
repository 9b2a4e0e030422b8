//! The issuance use case: one card from blank to Active, as the Device Issuance wizard drives it.
//!
//! The wizard's steps are use cases here: [`configure_printer`], [`start`], [`choose_policy`]
//! (which hands the job to the [`JobRunner`]), then the operator's [`finish`] (Continue),
//! [`cancel`] or [`retry_print`]. The job's steps and who may move them are in [`crate::jobs`];
//! the work of the runner is in `personalise` (blank card to `Pending`) and `printing` (the card
//! face). Every write goes through a unit of work ([`crate::changes`]) that carries its audit
//! events: the card record exists, with its audit trail, before the first write to the card, so a
//! card is never half-issued without the system knowing it. A card that an earlier issuance left
//! `Failed` (or that was `Terminated`) is reset first and issued under a new record; a card that
//! is live in Tessera or personalised by another system is refused untouched.

mod in_progress;
mod personalise;
mod printing;

use crate::approvals::{self, Subject, TwoPersonAction};
use crate::audit;
use crate::changes::{Change, Changes, LeaseChange};
use crate::dispatch::Work;
use crate::error::CoreError;
use crate::ids::*;
use crate::jobs::{job_transition, Heartbeat, JobEvent, JobRunner};
use crate::lifecycle::DeviceState;
use crate::model::*;
use crate::pin_rules;
use crate::secret::Pin;
use serde_json::json;

pub use crate::services::{Actor, AuditContext, Services};
pub use in_progress::{jobs_in_progress, open_job_of, printer_key, JobInProgress};
pub use printing::{card_data, card_preview, reprint, reprint_at_station};

/// The wizard's Configure for `user`: the user must be in the operator's scope, then as
/// [`configure_printer`].
pub async fn configure_printer_for(
    svc: &Services,
    actor: &Actor,
    user: &UserId,
    pairing: &PrinterPairing,
) -> Result<(), CoreError> {
    actor.require(Permission::IssueDevice, "configure printers")?;
    svc.user_in_scope(actor, user).await?;
    configure_printer(svc, actor, pairing).await
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
        return Err(CoreError::PrinterNotFound(pairing.printer.clone()));
    }
    let readers = station.readers().await.map_err(CoreError::Station)?;
    if !readers.contains(&pairing.reader) {
        return Err(CoreError::ReaderNotFound(pairing.reader.clone()));
    }
    let mut changes = Changes::new();
    changes.push(Change::PutPairing(pairing.clone()));
    changes.audit(svc.event(
        audit::PRINTER_PAIRED,
        AuditContext {
            operator: Some(&actor.operator),
            ..Default::default()
        },
        json!({"station": pairing.station, "printer": pairing.printer, "reader": pairing.reader}),
    ));
    svc.commit(changes).await
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
    /// Issue a temporary card for this card of the same holder, which the help desk suspended
    /// as forgotten ([`crate::help_desk::replace`]); needs `ReplaceDevice`.
    pub temporary_for: Option<DeviceId>,
}

fn group_allowed(allowed: &[String], user: &User) -> bool {
    allowed.is_empty() || allowed.iter().any(|g| user.groups.contains(g))
}

/// Start: checks the choices, opens a job and feeds a blank card into the printer's encoder.
/// Refused while the person, or the printer, has another issuance in progress
/// ([`in_progress`]): the database refuses the second of two racing Starts too.
pub async fn start(
    svc: &Services,
    actor: &Actor,
    req: StartRequest,
) -> Result<IssuanceJob, CoreError> {
    actor.require(Permission::IssueDevice, "issue devices")?;
    let user = svc.user_in_scope(actor, &req.user).await?;
    crate::people::refuse_if_disabled(&user, "no card can be issued to them")?;
    let layouts = svc.store.layouts().await?;
    let layout = layouts
        .iter()
        .find(|l| l.id == req.layout)
        .ok_or_else(|| CoreError::LayoutUnknown(req.layout.to_string()))?;
    if !group_allowed(&layout.allowed_groups, &user) {
        return Err(CoreError::LayoutNotAllowed(format!(
            "the layout {} is not allowed for {}: it is for the groups {}; choose another layout",
            layout.name,
            user.display_name,
            layout.allowed_groups.join(", ")
        )));
    }
    if req.reader.is_empty() {
        return Err(CoreError::Invalid("choose the card reader first".into()));
    }
    if let Some(original) = &req.temporary_for {
        temporary_allowed(svc, actor, &user, original).await?;
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
        temporary_for: req.temporary_for.clone(),
        fed_card: None,
    };
    let key = printer_key(&job);
    in_progress::refuse_overlap(svc, actor, &job.user, &key).await?;
    let mut changes = Changes::new();
    changes.push(Change::InsertJob {
        job: job.clone(),
        lease: None,
    });
    changes.audit(svc.event(
        audit::ISSUANCE_STARTED,
        AuditContext::of_job(&job),
        json!({"job": job.id, "station": job.station, "printer": job.printer, "reader": job.reader, "layout": job.layout,
               "temporary_for": job.temporary_for}),
    ));
    match svc.commit(changes).await {
        // Another Start for the person or the printer won the race (another tab, replica):
        // the database's unique keys refused this one; say which job holds them.
        Err(CoreError::Store(crate::ports::StoreError::Conflict)) => {
            in_progress::refuse_overlap(svc, actor, &job.user, &key).await?;
            return Err(CoreError::Changed(
                "the person's or the printer's issuances".into(),
            ));
        }
        other => other?,
    }
    let fed = if req.printer.is_empty() {
        None
    } else {
        station
            .feed_card(&req.printer)
            .await
            .map_err(CoreError::Station)?;
        Some(svc.event(
            audit::CARD_FED,
            AuditContext::of_job(&job),
            json!({"printer": job.printer}),
        ))
    };
    record_fed_card(svc, station.as_ref(), job, fed).await
}

/// Reads the card now in the job's reader (SELECT: serial, ATR, firmware; nothing is written) and
/// records it on the job, so that the policy step shows the operator which card was fed before
/// anything happens to it; `fed`, the event of the printer's feed, commits with it. A card that
/// cannot be read yet is no error here (a real printer may feed it only when the job arrives):
/// the job is returned as it was (with the feed's event written on its own), and
/// personalisation reads the card again and says why if it still cannot.
async fn record_fed_card(
    svc: &Services,
    station: &dyn crate::ports::StationPort,
    mut job: IssuanceJob,
    fed: Option<crate::ports::NewAuditEvent>,
) -> Result<IssuanceJob, CoreError> {
    // The feed's event alone, when the card read is not recorded.
    let fed_alone = |fed: Option<crate::ports::NewAuditEvent>| async move {
        let mut changes = Changes::new();
        if let Some(event) = fed {
            changes.audit(event);
        }
        svc.commit(changes).await
    };
    let identity = match station.connect(&job.reader).await {
        Ok(transport) => {
            let mut card = (svc.piv)(transport);
            let identity = card.select().await;
            // Personalisation connects again soon: this connection must have ended by then.
            card.close().await;
            identity
        }
        Err(e) => Err(e),
    };
    let identity = match identity {
        Ok(identity) => identity,
        Err(e) => {
            tracing::info!(operation = %job.operation, error = %e, "no card to read at Start");
            fed_alone(fed).await?;
            return Ok(job);
        }
    };
    let before = job.clone();
    job.fed_card = Some(FedCard {
        serial: identity.serial,
        atr: hex::encode_upper(&identity.atr),
        firmware: identity.version,
    });
    let mut changes = Changes::new();
    changes.push(Change::UpdateJob {
        job: job.clone(),
        expected: JobStep::Started,
        lease: LeaseChange::Unleased {
            now_ms: svc.clock.now_ms(),
        },
    });
    if let Some(event) = fed.clone() {
        changes.audit(event);
    }
    match svc.commit(changes).await {
        Ok(()) => Ok(job),
        Err(e) => {
            // Moved on or cancelled meanwhile: the stored job stands; the feed happened.
            tracing::info!(operation = %job.operation, error = %e, "the card read at Start was not recorded");
            fed_alone(fed).await?;
            Ok(before)
        }
    }
}

/// The longest a temporary card (and its certificates) may be valid.
pub const TEMPORARY_MAX_DAYS: u32 = 30;

/// A temporary card stands in only for a card of the same holder that the help desk suspended
/// as forgotten.
async fn temporary_allowed(
    svc: &Services,
    actor: &Actor,
    user: &User,
    original: &DeviceId,
) -> Result<(), CoreError> {
    actor.require(Permission::ReplaceDevice, "issue temporary cards")?;
    let d = svc.device_in_scope(actor, original).await?;
    if d.user.as_ref() != Some(&user.uid)
        || d.state != DeviceState::Suspended
        || d.reason != crate::lifecycle::Reason::Forgotten
    {
        return Err(CoreError::TemporaryNotAllowed(format!(
            "a temporary card stands in for a forgotten card of the same holder; card {} is {} ({})",
            d.serial,
            d.state,
            d.reason.as_str()
        )));
    }
    Ok(())
}

/// Start as the wizard does it at `station`: with card printing on, at the printer and reader the
/// operator configured there (refused until they did); with it off, in the reader they chose.
pub async fn start_at_station(
    svc: &Services,
    actor: &Actor,
    user: UserId,
    station: StationId,
    layout: LayoutId,
    reader_without_printing: Option<String>,
    temporary_for: Option<DeviceId>,
) -> Result<IssuanceJob, CoreError> {
    actor.require(Permission::IssueDevice, "issue devices")?;
    svc.user_in_scope(actor, &user).await?;
    let (printer, reader) = if svc.store.settings().await?.card_printing_enabled {
        let pairing = svc
            .store
            .pairing(&actor.operator, &station)
            .await?
            .ok_or_else(|| {
                CoreError::PrinterNotConfigured(
                    "Configure the printer and its reader first (the printer tile, Configure)."
                        .into(),
                )
            })?;
        (pairing.printer, pairing.reader)
    } else {
        (String::new(), reader_without_printing.unwrap_or_default())
    };
    start(
        svc,
        actor,
        StartRequest {
            user,
            station,
            printer,
            reader,
            layout,
            temporary_for,
        },
    )
    .await
}

/// A PIN for *Not displayed* mode: random digits of the policy's longest length, drawn again
/// in the rare case the rules refuse them (a run, a repeat), so the card never gets a weak one.
fn generated_pin(svc: &Services, policy: &PinPolicy) -> Pin {
    let draw = || Pin::new(svc.random.digits(policy.max_length.max(6) as usize));
    // Bounded, since the random source is a port: about 1 draw in 10^5 is refused.
    (0..1000)
        .map(|_| draw())
        .find(|pin| pin_rules::check(policy, pin, None).is_ok())
        .unwrap_or_else(draw)
}

/// The job's work, running on the runner; its result is the job as it ended (at `Printed`,
/// `PrintFailed` or `Failed`).
pub type Running = tokio::task::JoinHandle<IssuanceJob>;

/// The policy and PIN the operator chose: checks them, moves the job to `Issuing` under the
/// runner's lease and hands it to the runner, which personalises and prints the card. In *Not
/// displayed* mode the PIN is generated here (and escrowed sealed once the card exists). The PIN
/// lives only in the runner's memory until the card has it.
pub async fn choose_policy(
    runner: &JobRunner,
    actor: &Actor,
    job: &JobId,
    policy: &PolicyId,
    pin: Option<Pin>,
) -> Result<(IssuanceJob, Running), CoreError> {
    choose_policy_confirmed(runner, actor, job, policy, pin, None).await
}

/// [`choose_policy`] with the PIN's confirmation as the operator typed it (the portal's
/// *Disguised* mode asks for the PIN twice): a confirmation that differs is refused
/// ([`crate::pin_rules::PinRefusal::Mismatch`]) and nothing starts.
pub async fn choose_policy_confirmed(
    runner: &JobRunner,
    actor: &Actor,
    job: &JobId,
    policy: &PolicyId,
    pin: Option<Pin>,
    confirmation: Option<Pin>,
) -> Result<(IssuanceJob, Running), CoreError> {
    let svc = &runner.svc;
    actor.require(Permission::IssueDevice, "issue devices")?;
    let mut job = job_in_reach(svc, actor, job).await?;
    in_progress::refuse_finished(&job)?;
    if job.step != JobStep::Started {
        return Err(CoreError::WrongStep(
            "this issuance has already moved past the policy step: reload its page".into(),
        ));
    }
    let user = svc.store.user(&job.user).await?;
    // Checked again: the person may have been disabled (by an import, say) since Start.
    crate::people::refuse_if_disabled(&user, "no card can be issued to them")?;
    let policy = svc
        .store
        .policies()
        .await?
        .into_iter()
        .find(|p| &p.id == policy)
        .ok_or_else(|| CoreError::PolicyUnknown(policy.to_string()))?;
    if !group_allowed(&policy.allowed_groups, &user) {
        return Err(CoreError::PolicyNotAllowed(format!(
            "the policy {} is not allowed for {}: it is for the groups {}; choose another policy",
            policy.name,
            user.display_name,
            policy.allowed_groups.join(", ")
        )));
    }
    // Before the job reaches the runner, so before any card command.
    crate::enrolment::fingerprints_for_card(svc, &user, &policy).await?;
    if let Some(original) = &job.temporary_for {
        // Checked again here: the original may have been found (restored) since Start, and a
        // temporary card must not outlive the day it stands in for.
        temporary_allowed(svc, actor, &user, original).await?;
        let longest = policy
            .slots
            .iter()
            .map(|s| s.profile.validity_days)
            .chain([policy.card_validity_days])
            .max()
            .unwrap_or(0);
        if longest > TEMPORARY_MAX_DAYS {
            return Err(CoreError::TemporaryTooLong(format!(
                "a temporary card needs a short-lived policy (at most {TEMPORARY_MAX_DAYS} days); \
                 {} lasts {longest} days: choose PIV Temporary or another short one",
                policy.name
            )));
        }
    }
    let settings = svc.store.settings().await?;
    let pin = match (settings.initial_pin_mode, pin) {
        (PinDisplayMode::NotDisplayed, _) => generated_pin(svc, &policy.pin),
        (_, pin) => {
            // No PIN at all is refused as a PIN of the wrong length (PIN0001).
            let pin = pin.unwrap_or_else(|| Pin::new(""));
            pin_rules::check(&policy.pin, &pin, confirmation.as_ref())?;
            pin
        }
    };
    // The two-person rule is checked here, where the policy is known; an approval is spent in
    // the unit of work that hands the job to the runner.
    let subject = Subject::Issuance {
        user: job.user.clone(),
        policy: policy.id.clone(),
    };
    let grant = approvals::gate(
        svc,
        actor,
        TwoPersonAction::Issue,
        subject,
        Some(&policy),
        "",
    )
    .await?;
    let mut changes = Changes::new();
    grant.spend(svc, &mut changes);
    job.policy = Some(policy.id.clone());
    job.message = "Connecting to the card".into();
    let running = runner
        .take(
            &mut job,
            JobEvent::ChoosePolicy,
            changes,
            Work::Issue {
                policy: Box::new(policy),
                pin,
            },
        )
        .await?;
    Ok((job, running))
}

/// Does `work` on `job`, which `runner` holds (see [`JobRunner::take`] and
/// [`crate::dispatch`]); returns the job as the work left it.
pub(crate) async fn run(
    runner: JobRunner,
    mut job: IssuanceJob,
    work: Work,
    heartbeat: Heartbeat,
) -> IssuanceJob {
    match work {
        Work::Issue { policy, pin } => {
            let mut work = personalise::CardWork::default();
            match personalise::personalise(&runner, &mut job, &policy, &pin, &mut work).await {
                Ok(()) => printing::print(&runner, &mut job).await,
                Err(err) if heartbeat.lost() || matches!(err, CoreError::Changed(_)) => {
                    // Someone else holds the job now (recovery after a stall): leave it to them.
                    tracing::warn!(operation = %job.operation, error = %err, "issuance stopped: the job was taken over");
                }
                Err(err) => personalise::fail(&runner, &mut job, work, err).await,
            }
        }
        Work::Print => printing::print(&runner, &mut job).await,
    }
    job
}

/// Fails a job that `runner` holds before any card command (a queued job that cannot be run).
pub(crate) async fn fail_before_card(runner: &JobRunner, job: &mut IssuanceJob, err: CoreError) {
    personalise::fail(runner, job, personalise::CardWork::default(), err).await
}

/// An issuance as `actor` may see it: operators see their own; those who manage devices see all.
/// Anyone else is told it does not exist, so job ids cannot be probed.
pub async fn job_for(svc: &Services, actor: &Actor, id: &JobId) -> Result<IssuanceJob, CoreError> {
    actor.require(Permission::IssueDevice, "follow issuances")?;
    job_in_reach(svc, actor, id).await
}

/// The owner and scope rule of [`job_for`], for the use cases that act on a job under their own
/// permission.
async fn job_in_reach(svc: &Services, actor: &Actor, id: &JobId) -> Result<IssuanceJob, CoreError> {
    let not_found = || CoreError::NotFound("The issuance".into());
    let job = svc.store.job(id).await.map_err(|_| not_found())?;
    if job.operator != actor.operator && !actor.role.allows(Permission::ManageDevices) {
        return Err(not_found());
    }
    svc.user_in_scope(actor, &job.user)
        .await
        .map_err(|_| not_found())?;
    Ok(job)
}

/// Retry print after a print failure, optionally on another printer of the station: the runner
/// takes the job and prints; the job ends at `Printed` or `PrintFailed` again.
pub async fn retry_print(
    runner: &JobRunner,
    actor: &Actor,
    job: &JobId,
    printer: Option<String>,
) -> Result<(IssuanceJob, Running), CoreError> {
    let svc = &runner.svc;
    actor.require(Permission::IssueDevice, "print devices")?;
    let mut job = job_in_reach(svc, actor, job).await?;
    in_progress::refuse_finished(&job)?;
    if job.step != JobStep::PrintFailed {
        return Err(CoreError::WrongStep(
            "only a failed print can be retried".into(),
        ));
    }
    if let Some(printer) = printer.filter(|p| *p != job.printer) {
        // The printer must be one the station has; the print then reaches it by name.
        let printers = svc
            .station(&job.station)?
            .printers()
            .await
            .map_err(CoreError::Station)?;
        if !printers.iter().any(|p| p.name == printer) {
            return Err(CoreError::PrinterNotFound(printer));
        }
        job.printer = printer;
    }
    job.error = None;
    job.message = format!("Printing on {}", job.printer);
    let running = runner
        .take(&mut job, JobEvent::RetryPrint, Changes::new(), Work::Print)
        .await?;
    Ok((job, running))
}

/// Continue: activates the card (Pending -> Active), releases its certificates and completes the
/// job, in one transaction.
pub async fn finish(svc: &Services, actor: &Actor, job: &JobId) -> Result<IssuanceJob, CoreError> {
    actor.require(Permission::ActivateDevice, "activate devices")?;
    let mut job = job_in_reach(svc, actor, job).await?;
    in_progress::refuse_finished(&job)?;
    if job.step != JobStep::Printed {
        return Err(CoreError::WrongStep(
            "the card can be activated once it is printed".into(),
        ));
    }
    let device = job
        .device
        .clone()
        .ok_or_else(|| CoreError::WrongStep("the job has no card".into()))?;
    let mut changes = Changes::new();
    crate::devices::activation(svc, actor, &mut changes, &device, Some(&job.operation)).await?;
    let expected = job.step;
    job.step = job_transition(expected, JobEvent::Continue)?;
    job.message = "Card activated".into();
    job.updated_at = svc.clock.now();
    changes.push(Change::UpdateJob {
        job: job.clone(),
        expected,
        lease: LeaseChange::Unleased {
            now_ms: svc.clock.now_ms(),
        },
    });
    svc.commit(changes).await?;
    Ok(job)
}

/// Why an issuance was cancelled when the operator gave no words: the wizard's own Cancel.
pub const CANCELLED_BY_OPERATOR: &str = "cancelled by the operator";
/// Why, when an operator cancels a job left in progress (Cancel it, from a refused Start, the
/// User page or the Jobs in progress page) without giving a reason.
pub const ABANDONED: &str = "abandoned";

/// Cancel: the card stays personalised and Pending, not activated; it can be activated later.
/// A job cancelled at `Started` has written nothing: its blank card is ejected untouched. One
/// whose print failed has its personalised card ejected too. `reason` (the operator's words, or
/// [`ABANDONED`] / [`CANCELLED_BY_OPERATOR`]) goes into the audit event.
pub async fn cancel(
    svc: &Services,
    actor: &Actor,
    job: &JobId,
    reason: &str,
) -> Result<IssuanceJob, CoreError> {
    actor.require(Permission::IssueDevice, "cancel an issuance")?;
    let mut job = job_in_reach(svc, actor, job).await?;
    in_progress::refuse_finished(&job)?;
    let expected = job.step;
    job.step = job_transition(expected, JobEvent::Cancel)
        .map_err(|_| CoreError::WrongStep("this issuance cannot be cancelled now".into()))?;
    let reason = match reason.trim() {
        "" => CANCELLED_BY_OPERATOR.to_owned(),
        r => r.chars().take(500).collect(),
    };
    // The card leaves the printer before the job closes, so the record says what happened.
    let eject =
        !job.printer.is_empty() && matches!(expected, JobStep::Started | JobStep::PrintFailed);
    let ejected = if eject {
        let port = svc.station(&job.station);
        let done = match port {
            Ok(port) => port.eject_card(&job.printer).await,
            Err(e) => Err(crate::ports::PortError::new(e.to_string())),
        };
        Some(done.map_err(|e| e.message))
    } else {
        None
    };
    let written = job.device.is_some();
    job.message = match (&ejected, written) {
        (Some(Err(_)), _) => format!(
            "Cancelled; the station could not eject the card: take it out of {} by hand",
            job.printer
        ),
        (Some(Ok(())), false) => "Cancelled; the blank card was ejected untouched".into(),
        (Some(Ok(())), true) => {
            "Cancelled; the card was ejected, personalised but not activated".into()
        }
        (None, _) => "Cancelled; the card was not activated".into(),
    };
    job.updated_at = svc.clock.now();
    let mut changes = Changes::new();
    changes.push(Change::UpdateJob {
        job: job.clone(),
        expected,
        lease: LeaseChange::Unleased {
            now_ms: svc.clock.now_ms(),
        },
    });
    let ctx = AuditContext {
        operator: Some(&actor.operator),
        ..AuditContext::of_job(&job)
    };
    if let Some(Ok(())) = &ejected {
        changes.audit(svc.event(
            audit::CARD_EJECTED,
            ctx,
            json!({"printer": job.printer, "written": written}),
        ));
    }
    changes.audit(svc.event(
        audit::ACTIVATION_CANCELLED,
        ctx,
        json!({"job": job.id, "step": expected.as_str(), "reason": reason,
               "ejected": ejected.as_ref().map(|e| e.is_ok()),
               "eject_error": ejected.and_then(|e| e.err())}),
    ));
    svc.commit(changes).await?;
    Ok(job)
}

/// Closes a job whose runner died, once [`JobRunner::recover_abandoned`] has taken over its
/// lease: a job that was personalising ends `Failed` (card `Failed`, certificates revoked); one
/// whose card was personalised or that was printing ends `PrintFailed` (card `Pending`, Retry
/// print possible).
pub(crate) async fn close_abandoned(
    runner: &JobRunner,
    mut job: IssuanceJob,
) -> Result<(), CoreError> {
    let svc = &runner.svc;
    let device = match &job.device {
        Some(id) => Some(svc.store.device(id).await?),
        None => None,
    };
    let personalised = device.as_ref().map(|d| d.state) == Some(DeviceState::Pending);
    if job.step == JobStep::Issuing && !personalised {
        let err = CoreError::Card(crate::ports::CardError::Unreachable(
            "the server stopped while the card was being personalised".into(),
        ));
        let work = personalise::CardWork::recorded(&job, device);
        personalise::fail(runner, &mut job, work, err).await;
        return Ok(());
    }
    // A job of the previous release may sit at Issuing with its card already Pending.
    let expected = job.step;
    if expected == JobStep::Issuing {
        job.step = job_transition(expected, JobEvent::Personalised)?;
    }
    job.step = job_transition(job.step, JobEvent::PrintFailed)?;
    job.error = Some(JobError {
        code: crate::ErrorCode::Print.as_str().into(),
        message: "the server stopped while the card was printing; print it again".into(),
        card_outcome: Some(CardOutcome::Personalised),
    });
    job.message = "Printing was interrupted; the card is personalised and Pending".into();
    job.updated_at = svc.clock.now();
    let mut changes = Changes::new();
    changes.audit(svc.event(
        audit::PRINT_FAILED,
        AuditContext::of_job(&job),
        json!({"printer": job.printer, "message": "the server stopped while the card was printing"}),
    ));
    changes.push(Change::UpdateJob {
        job: job.clone(),
        expected,
        lease: runner.release(),
    });
    svc.commit(changes).await
}

#[cfg(test)]
mod tests {
    use super::personalise::{card_history, CardHistory};
    use super::*;
    use crate::lifecycle::{DeviceState, Reason};

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
            firmware: None,
            temporary_for: None,
        }
    }

    #[test]
    fn rsa_3072_needs_a_yubikey_of_firmware_5_7() {
        assert!(!KeyAlgorithm::Rsa3072.offered_by_yubikey("5.4.3"));
        assert!(!KeyAlgorithm::Rsa3072.offered_by_yubikey("4.3.7"));
        assert!(KeyAlgorithm::Rsa3072.offered_by_yubikey("5.7.2"));
        assert!(KeyAlgorithm::Rsa3072.offered_by_yubikey("6.0.0"));
        assert!(KeyAlgorithm::Rsa3072.offered_by_yubikey("odd"));
        assert!(KeyAlgorithm::EccP256.offered_by_yubikey("4.3.7"));
    }

    #[test]
    fn a_card_is_reset_only_when_every_record_of_it_is_closed() {
        use DeviceState as S;
        let refused = |h: CardHistory| match h {
            CardHistory::Foreign(m) => m,
            other => panic!("not refused as foreign: {other:?}"),
        };
        // Unknown: issued when blank, refused when another system holds its key.
        assert_eq!(card_history(&[], true, true), CardHistory::Fresh);
        assert!(matches!(
            card_history(&[], false, true),
            CardHistory::Foreign(_)
        ));
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
                    card_history(&records, factory_key, true),
                    CardHistory::Live(&records[1])
                );
            }
        }
        for busy in [S::Available, S::Assigned, S::InProduction] {
            let records = [record("d3", busy)];
            assert_eq!(
                card_history(&records, true, true),
                CardHistory::Busy(&records[0])
            );
        }
    }
}

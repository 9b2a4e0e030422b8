//! The printing step of a job, and printing a card's face again from the User page. Every print
//! attempt is recorded (layout version, printer, printer job, outcome) in the same transaction as
//! its audit event and, for a job, the job's next step.

use super::AuditContext;
use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::ids::*;
use crate::jobs::{JobEvent, JobRunner};
use crate::lifecycle::DeviceState;
use crate::model::*;
use crate::ports::*;
use crate::services::{Actor, Services};
use crate::template;
use serde_json::json;

/// What the preview of an issued card is rendered from: its layout and its holder's data, for an
/// operator who may see the holder.
pub async fn card_preview(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
) -> Result<(Layout, CardData), CoreError> {
    actor.require(Permission::ViewUsers, "view cards")?;
    let device = svc.device_in_scope(actor, device).await?;
    let (Some(uid), Some(layout_id)) = (device.user.clone(), device.layout.clone()) else {
        return Err(CoreError::NotFound("the card layout".into()));
    };
    let user = svc.user_in_scope(actor, &uid).await?;
    let layout = svc
        .store
        .layouts()
        .await?
        .into_iter()
        .find(|l| l.id == layout_id)
        .ok_or_else(|| CoreError::NotFound("the card layout".into()))?;
    let data = card_data(svc, &user, &device).await?;
    Ok((layout, data))
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

/// Renders the card face and sends it to the job's printer (job at `Printing`, leased by
/// `runner`). Ends the job at `Printed`, or at `PrintFailed` with the card `Pending`, from
/// where Retry print can try again.
pub(super) async fn print(runner: &JobRunner, job: &mut IssuanceJob) {
    let svc = &runner.svc;
    let outcome = try_print(runner, job).await;
    let mut changes = Changes::new();
    let event = match outcome {
        Ok(done) => {
            changes = done;
            job.error = None;
            job.progress = 100;
            job.message = if job.printer.is_empty() {
                "Card encoded (card printing is off)".into()
            } else {
                "Card printed".into()
            };
            JobEvent::Printed
        }
        Err((record, err)) => {
            tracing::warn!(operation = %job.operation, error = %err, "printing failed");
            if let Some(record) = record {
                changes.push(Change::InsertPrint(record));
            }
            changes.audit(svc.event(
                audit::PRINT_FAILED,
                AuditContext::of_job(job),
                json!({"printer": job.printer, "message": err.to_string()}),
            ));
            job.error = Some(JobError {
                code: err.code().as_str().to_owned(),
                message: err.to_string(),
                card_outcome: Some(CardOutcome::Personalised),
            });
            job.message = "Printing failed; the card is personalised and Pending".into();
            JobEvent::PrintFailed
        }
    };
    if let Err(e) = runner.advance(changes, job, event).await {
        tracing::error!(operation = %job.operation, error = %e, "could not record the print");
    }
}

type PrintFailure = (Option<PrintRecord>, CoreError);

async fn try_print(runner: &JobRunner, job: &IssuanceJob) -> Result<Changes, PrintFailure> {
    let svc = &runner.svc;
    if job.printer.is_empty() {
        return Ok(Changes::new());
    }
    let device_id = job
        .device
        .clone()
        .ok_or_else(|| (None, CoreError::Invalid("the job has no card yet".into())))?;
    // No commit of its own before the print: the job's move to `Printing` (or Retry print's
    // hand-over) already says where it prints, and the print's outcome commits with its record.
    let device = svc
        .store
        .device(&device_id)
        .await
        .map_err(|e| (None, e.into()))?;
    let target = PrintTarget {
        station: job.station.clone(),
        printer: job.printer.clone(),
        layout: job.layout.clone(),
        job: Some(job.id.clone()),
    };
    let (_, changes) = print_card(svc, &device, &target, AuditContext::of_job(job), None).await?;
    Ok(changes)
}

/// Where and how a card face is printed.
struct PrintTarget {
    station: StationId,
    printer: String,
    layout: LayoutId,
    job: Option<JobId>,
}

/// Renders the card of `device` with its holder's data and prints it. Returns the unit of work
/// to commit (the print record and the `CardPrinted` event); on failure, the record of the failed
/// attempt (when the printer was reached) and the error.
async fn print_card(
    svc: &Services,
    device: &Device,
    target: &PrintTarget,
    ctx: AuditContext<'_>,
    reason: Option<&str>,
) -> Result<(PrintRecord, Changes), PrintFailure> {
    let uid = device
        .user
        .clone()
        .ok_or_else(|| (None, CoreError::Invalid("the card has no holder".into())))?;
    let user = svc.store.user(&uid).await.map_err(|e| (None, e.into()))?;
    let layout = svc
        .store
        .layouts()
        .await
        .map_err(|e| (None, e.into()))?
        .into_iter()
        .find(|l| l.id == target.layout)
        .ok_or_else(|| (None, CoreError::LayoutUnknown(target.layout.to_string())))?;
    let data = card_data(svc, &user, device).await.map_err(|e| (None, e))?;
    let rendered = svc
        .renderer
        .render(&layout, &data)
        .map_err(|e| (None, CoreError::Render(e)))?;
    let station = svc.station(&target.station).map_err(|e| (None, e))?;
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
    let receipt = match result {
        Ok(r) if r.state == "completed" => r,
        Ok(r) => {
            let err = CoreError::PrinterRefused(PortError::new(format!(
                "it reported the job {}: {}",
                r.state, r.message
            )));
            return Err((Some(record), err));
        }
        Err(e) => return Err((Some(record), CoreError::Print(e))),
    };
    let mut changes = Changes::new();
    changes.push(Change::InsertPrint(record.clone()));
    changes.audit(svc.event(
        audit::CARD_PRINTED,
        ctx,
        json!({"printer": target.printer, "printer_job": receipt.printer_job, "layout": layout.id,
               "layout_version": layout.version, "reprint_reason": reason}),
    ));
    Ok((record, changes))
}

/// [`reprint`] on the printer the operator paired at `station` (the wizard's printer tile);
/// returns the card's holder, whose page the operator goes back to.
pub async fn reprint_at_station(
    svc: &Services,
    actor: &Actor,
    device: &DeviceId,
    station: &StationId,
    reason: &str,
) -> Result<Option<UserId>, CoreError> {
    actor.require(Permission::IssueDevice, "print cards")?;
    let holder = svc.device_in_scope(actor, device).await?.user;
    let pairing = svc
        .store
        .pairing(&actor.operator, station)
        .await?
        .ok_or_else(|| {
            CoreError::PrinterNotConfigured(
                "configure your printer first (Add Device, printer tile)".into(),
            )
        })?;
    reprint(svc, actor, device, station, &pairing.printer, reason).await?;
    Ok(holder)
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
    let device = svc.device_in_scope(actor, device).await?;
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
    match print_card(svc, &device, &target, ctx, reason).await {
        Ok((record, changes)) => {
            svc.commit(changes).await?;
            Ok(record)
        }
        Err((record, err)) => {
            // The failed attempt is kept, as every attempt is.
            if let Some(record) = record {
                let mut changes = Changes::new();
                changes.push(Change::InsertPrint(record));
                svc.commit(changes).await?;
            }
            Err(err)
        }
    }
}

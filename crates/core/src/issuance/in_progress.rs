//! One issuance at a time per person and per printer. A job in progress (a step of
//! [`JobStep::OPEN`]) holds its person until it finishes, and its printer (or, with card printing
//! off, its reader) while its card is in it ([`JobStep::holds_printer`]); a second Start for either is refused with the job in progress described,
//! so the operator can resume it or cancel it. The database holds the same rule (unique keys on
//! the open jobs), so two tabs or two replicas racing cannot both win; this module turns what the
//! database refused back into the sentence.
//!
//! The use cases here also list the jobs in progress (all of the operator's scope, or one
//! person's), for the User page and the "Jobs in progress" page.

use crate::error::CoreError;
use crate::ids::*;
use crate::model::*;
use crate::services::{Actor, Services};

/// A job in progress as an operator sees it: what it is doing, who started it and when, on
/// which printer, the card in it if it has one, and whether this operator may resume or cancel
/// it.
#[derive(Clone, Debug)]
pub struct JobInProgress {
    pub job: IssuanceJob,
    /// The person the card is for.
    pub user_name: String,
    /// The operator who started it (display name).
    pub operator_name: String,
    /// The station it runs at (its name).
    pub station_name: String,
    /// The card's serial once the job knows its card (personalisation read it).
    pub card_serial: Option<String>,
    /// Whether a blank card was fed into a printer at Start.
    pub card_fed: bool,
    /// Whether this operator may resume and cancel it: its own jobs, or anyone's with
    /// `ManageDevices` (the rule of [`super::job_for`]).
    pub may_act: bool,
}

impl JobInProgress {
    /// Where the printer's name or, with card printing off, the reader's.
    pub fn at(&self) -> String {
        if self.job.printer.is_empty() {
            format!("reader {}", self.job.reader)
        } else {
            format!("printer {}", self.job.printer)
        }
    }

    /// One sentence: which step, who and when, where, and the card.
    pub fn describe(&self) -> String {
        let card = match (&self.card_serial, self.card_fed) {
            (Some(serial), _) => format!("; card {serial} is in it"),
            (None, true) => format!("; a blank card was fed into {}", self.job.printer),
            (None, false) => String::new(),
        };
        format!(
            "at step {}, started by {} on {} at {}, {}{card}",
            self.job.step.describe(),
            self.operator_name,
            self.job.created_at.date_time(),
            self.station_name,
            self.at(),
        )
    }
}

/// The key under which a job holds its printer: the station and the printer, or the reader
/// when the job prints nothing. The store keeps the same key in a unique column.
pub fn printer_key(job: &IssuanceJob) -> String {
    if job.printer.is_empty() {
        format!("{}/reader/{}", job.station, job.reader)
    } else {
        format!("{}/printer/{}", job.station, job.printer)
    }
}

async fn described(
    svc: &Services,
    actor: &Actor,
    job: IssuanceJob,
) -> Result<JobInProgress, CoreError> {
    let operator_name = match svc.store.operator(&job.operator).await {
        Ok(o) => o.display_name,
        Err(_) => job.operator.to_string(),
    };
    let user_name = match svc.store.user(&job.user).await {
        Ok(u) => u.display_name,
        Err(_) => job.user.to_string(),
    };
    let station_name = svc
        .store
        .stations()
        .await?
        .into_iter()
        .find(|s| s.id == job.station)
        .map(|s| s.name)
        .unwrap_or_else(|| job.station.to_string());
    let card_serial = match &job.device {
        Some(d) => svc.store.device(d).await.ok().map(|d| d.serial),
        None => None,
    };
    let may_act = job.operator == actor.operator || actor.role.allows(Permission::ManageDevices);
    Ok(JobInProgress {
        card_fed: !job.printer.is_empty(),
        job,
        user_name,
        operator_name,
        station_name,
        card_serial,
        may_act,
    })
}

/// Refuses a Start for `user` at the printer `key` while another job holds either. Called before
/// the job is written, and again after the database refused it (a race), to say why.
pub(crate) async fn refuse_overlap(
    svc: &Services,
    actor: &Actor,
    user: &UserId,
    key: &str,
) -> Result<(), CoreError> {
    let open = svc.store.open_jobs().await?;
    if let Some(job) = open.iter().find(|j| &j.user == user).cloned() {
        let job = described(svc, actor, job).await?;
        let message = format!(
            "{} already has an issuance in progress, {}. Resume it or cancel it before starting another; no card was fed",
            job.user_name,
            job.describe()
        );
        return Err(CoreError::UserIssuanceInProgress {
            job: Box::new(job),
            message,
        });
    }
    if let Some(job) = open
        .iter()
        .find(|j| j.step.holds_printer() && printer_key(j) == key)
        .cloned()
    {
        let job = described(svc, actor, job).await?;
        let message = format!(
            "the {} is busy with the issuance for {}, {}. Finish or cancel that one first; no card was fed",
            job.at(),
            job.user_name,
            job.describe()
        );
        return Err(CoreError::PrinterBusy {
            job: Box::new(job),
            message,
        });
    }
    Ok(())
}

/// The issuance in progress for `user`, if any, for the configure page and the User page.
pub async fn open_job_of(
    svc: &Services,
    actor: &Actor,
    user: &UserId,
) -> Result<Option<JobInProgress>, CoreError> {
    actor.require(Permission::IssueDevice, "follow issuances")?;
    svc.user_in_scope(actor, user).await?;
    let job = svc
        .store
        .open_jobs()
        .await?
        .into_iter()
        .find(|j| &j.user == user);
    match job {
        Some(job) => Ok(Some(described(svc, actor, job).await?)),
        None => Ok(None),
    }
}

/// Every issuance in progress for the people in the operator's scope, oldest first: the
/// "Jobs in progress" page, where an abandoned job that fed a card is found.
pub async fn jobs_in_progress(
    svc: &Services,
    actor: &Actor,
) -> Result<Vec<JobInProgress>, CoreError> {
    actor.require(Permission::IssueDevice, "follow issuances")?;
    let mut out = Vec::new();
    for job in svc.store.open_jobs().await? {
        if svc.user_in_scope(actor, &job.user).await.is_err() {
            continue;
        }
        out.push(described(svc, actor, job).await?);
    }
    out.sort_by_key(|j| j.job.created_at);
    Ok(out)
}

/// The refusal of a decision on a finished job, in words that say what became of the card.
pub(crate) fn refuse_finished(job: &IssuanceJob) -> Result<(), CoreError> {
    let what = match job.step {
        JobStep::Completed => "this issuance is already completed: the card is Active",
        JobStep::Cancelled if job.device.is_some() => {
            "this issuance was already cancelled: the card stays Pending, not activated"
        }
        JobStep::Cancelled => "this issuance was already cancelled: no card was written",
        JobStep::Failed => {
            "this issuance has already failed: see the card's state on the User page"
        }
        _ => return Ok(()),
    };
    Err(CoreError::JobFinished(format!(
        "{what}. Nothing was changed (the page you came from was out of date)"
    )))
}

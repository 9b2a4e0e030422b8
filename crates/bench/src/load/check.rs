//! After the run: every issuance job in the database (the run's database is fresh, so all of
//! them are the run's) and the card each made, read back through the store, and the audit
//! chain checked as `tessera audit check` does.
//!
//! - **lost**: a job stuck in Started, Issuing or Printing with no live lease (nobody will move
//!   it), or a job whose device record is missing;
//! - **duplicated**: two jobs for one device, two device records for one card serial, or a
//!   person with more than one Active card;
//! - **inconsistent**: a job's step and its card's state disagree (Completed and not Active,
//!   Cancelled and not Pending, Failed and not Failed), an Active card with a certificate that is
//!   not valid, a Failed card with one that is not revoked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tessera_core::ids::JobId;
use tessera_core::issuance::Actor;
use tessera_core::model::{CertificateStatus, JobStep};
use tessera_core::ports::Store;
use tessera_core::{audit_log, DeviceState};
use tessera_server::{Options as ServerOptions, StartMode, Tessera};

#[derive(Default)]
pub struct Findings {
    pub jobs: usize,
    /// Jobs by step.
    pub steps: BTreeMap<&'static str, usize>,
    /// Jobs some replica still works on (a live lease) when the run ended.
    pub in_flight: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub inconsistent: usize,
    pub audit_checked: u64,
    pub audit_intact: bool,
    /// One line per finding, for the report.
    pub details: Vec<String>,
}

impl Findings {
    pub fn render(&self) -> String {
        let steps: Vec<String> = self.steps.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let mut out = format!(
            "jobs in the database:   {} ({})\n\
             lost:                   {}\n\
             duplicated:             {}\n\
             inconsistent:           {}\n\
             in flight at the end:   {}\n\
             audit chain:            {} ({} events)\n",
            self.jobs,
            steps.join(", "),
            self.lost,
            self.duplicated,
            self.inconsistent,
            self.in_flight,
            if self.audit_intact {
                "intact"
            } else {
                "BROKEN"
            },
            self.audit_checked,
        );
        for d in self.details.iter().take(20) {
            out.push_str(&format!("  {d}\n"));
        }
        if self.details.len() > 20 {
            out.push_str(&format!("  ... and {} more\n", self.details.len() - 20));
        }
        out
    }
}

const ALL_STEPS: [JobStep; 8] = [
    JobStep::Started,
    JobStep::Issuing,
    JobStep::Printing,
    JobStep::Printed,
    JobStep::PrintFailed,
    JobStep::Completed,
    JobStep::Cancelled,
    JobStep::Failed,
];

fn io(e: impl std::fmt::Display) -> String {
    format!("the check cannot read the database: {e}")
}

pub async fn check(
    data: &Path,
    database_url: Option<&str>,
    started: &[String],
) -> Result<Findings, String> {
    let mut options = ServerOptions::new(data);
    options.database_url = database_url.map(str::to_owned);
    options.start = StartMode::Existing;
    let (t, _) = Tessera::open(&options).await.map_err(io)?;
    let store = t.store.clone();
    let mut f = Findings::default();
    let mut jobs = Vec::new();
    for step in ALL_STEPS {
        jobs.extend(store.jobs_in_step(step).await.map_err(io)?);
    }
    let known: BTreeSet<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    for id in started {
        if !known.contains(id.as_str()) {
            f.lost += 1;
            f.details.push(format!(
                "lost: job {id} was started but is not in the database"
            ));
        }
    }
    f.jobs = jobs.len();
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let mut jobs_of_device: BTreeMap<String, usize> = BTreeMap::new();
    let mut people = BTreeSet::new();
    let mut serials = BTreeSet::new();
    for job in &jobs {
        *f.steps.entry(job.step.as_str()).or_default() += 1;
        people.insert(job.user.clone());
        if matches!(
            job.step,
            JobStep::Started | JobStep::Issuing | JobStep::Printing
        ) {
            let live = store
                .job_lease(&JobId::new(job.id.as_str()))
                .await
                .map_err(io)?
                .is_some_and(|l| i128::from(l.expires_ms) > now_ms);
            if live {
                f.in_flight += 1;
            } else {
                f.lost += 1;
                f.details.push(format!(
                    "lost: job {} stuck at {} with no live lease",
                    job.id,
                    job.step.as_str()
                ));
            }
        }
        let Some(device_id) = &job.device else {
            continue;
        };
        *jobs_of_device.entry(device_id.to_string()).or_default() += 1;
        let device = match store.device(device_id).await {
            Ok(d) => d,
            Err(_) => {
                f.lost += 1;
                f.details.push(format!(
                    "lost: job {} names device {device_id}, which is missing",
                    job.id
                ));
                continue;
            }
        };
        serials.insert(device.serial.clone());
        let expected = match job.step {
            JobStep::Completed => Some(DeviceState::Active),
            JobStep::Cancelled => Some(DeviceState::Pending),
            JobStep::Failed => Some(DeviceState::Failed),
            _ => None,
        };
        if let Some(expected) = expected {
            if device.state != expected {
                f.inconsistent += 1;
                f.details.push(format!(
                    "inconsistent: job {} is {} but its card {} is {}",
                    job.id,
                    job.step.as_str(),
                    device.serial,
                    device.state
                ));
            }
        }
        let certs = store.certificates_of_device(device_id).await.map_err(io)?;
        let wanted = match device.state {
            DeviceState::Active => Some(CertificateStatus::Valid),
            DeviceState::Failed => Some(CertificateStatus::Revoked),
            _ => None,
        };
        if let Some(wanted) = wanted {
            let wrong = certs.iter().filter(|c| c.status != wanted).count();
            if wrong > 0 {
                f.inconsistent += 1;
                f.details.push(format!(
                    "inconsistent: card {} is {} with {wrong} certificate(s) not {wanted:?}",
                    device.serial, device.state
                ));
            }
        }
    }
    for (device, n) in &jobs_of_device {
        if *n > 1 {
            f.duplicated += 1;
            f.details
                .push(format!("duplicated: {n} jobs made device {device}"));
        }
    }
    for serial in &serials {
        let records = store.devices_with_serial(serial).await.map_err(io)?;
        if records.len() > 1 {
            f.duplicated += 1;
            f.details.push(format!(
                "duplicated: {} device records for card serial {serial}",
                records.len()
            ));
        }
    }
    for person in &people {
        let active = store
            .devices_of_user(person)
            .await
            .map_err(io)?
            .iter()
            .filter(|d| d.state == DeviceState::Active)
            .count();
        if active > 1 {
            f.duplicated += 1;
            f.details
                .push(format!("duplicated: {person} has {active} Active cards"));
        }
    }
    let report = audit_log::check_chain(&t.services, &Actor::cli())
        .await
        .map_err(|e| format!("{} {e}", e.code().as_str()))?;
    f.audit_checked = report.checked;
    f.audit_intact = report.broken.is_none();
    if let Some(b) = &report.broken {
        f.details.push(format!(
            "audit chain broken at event {}: {}",
            b.seq, b.reason
        ));
    }
    t.store.close().await;
    Ok(f)
}

//! The issuance job: its steps as one pure transition function, and the job runner that leases
//! jobs in the database and runs them.
//!
//! ```text
//!  Started ──ChoosePolicy──> Issuing ──Personalised──> Printing ──Printed──> Printed ──Continue──> Completed
//!     │                         │                        │   ^                  │
//!     │                         └──Fail──> Failed        │   └──RetryPrint──┐   └──Cancel──> Cancelled
//!     └──Cancel / Fail──> Cancelled / Failed             └──PrintFailed──> PrintFailed ──Cancel──> Cancelled
//! ```
//!
//! `Issuing` and `Printing` are the steps a runner works on; a job in them always holds a lease
//! (owner instance id and expiry, renewed by a heartbeat). Only the lease holder advances such a
//! job: each of its writes is conditional on the lease and on the step it read. The other steps
//! wait for a person, with no lease, and a person's decision (Continue, Cancel, Retry print) is
//! conditional on the job having no live lease. When a process dies, its leases expire, and only
//! `tessera serve` takes over expired leases ([`JobRunner::recover_abandoned`]): a job that was
//! personalising ends `Failed` (card `Failed`, certificates revoked), one that was printing ends
//! `PrintFailed` (card `Pending`, Retry print possible).

use crate::changes::{Changes, Lease, LeaseChange};
use crate::model::*;
use crate::services::Services;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What moves a job from one step to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEvent {
    /// The operator chose the device policy and PIN: the runner starts personalising.
    ChoosePolicy,
    /// The card holds its keys, certificates and secrets; it is `Pending`.
    Personalised,
    /// The printer reported the card printed (or printing is off).
    Printed,
    /// Printing failed; the card is personalised and `Pending`.
    PrintFailed,
    /// The operator asked to print again.
    RetryPrint,
    /// Continue: the card is activated.
    Continue,
    /// Cancel: the card (if any) stays `Pending`, not activated.
    Cancel,
    /// Personalisation failed (or its runner died): the card is `Failed`.
    Fail,
}

/// A job event that its step does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub struct JobTransitionRefused {
    pub step: JobStep,
    pub event: JobEvent,
}

impl fmt::Display for JobTransitionRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.event {
            JobEvent::ChoosePolicy => "choose the device policy",
            JobEvent::Personalised => "finish personalising",
            JobEvent::Printed => "finish printing",
            JobEvent::PrintFailed => "record a failed print",
            JobEvent::RetryPrint => "print again",
            JobEvent::Continue => "activate the card",
            JobEvent::Cancel => "cancel",
            JobEvent::Fail => "fail",
        };
        write!(
            f,
            "this issuance is at step {}, where it cannot {what}",
            self.step.as_str()
        )
    }
}

/// The one place a job's step changes.
pub fn job_transition(step: JobStep, event: JobEvent) -> Result<JobStep, JobTransitionRefused> {
    use JobEvent as E;
    use JobStep as S;
    let next = match (step, event) {
        (S::Started, E::ChoosePolicy) => S::Issuing,
        (S::Issuing, E::Personalised) => S::Printing,
        (S::Printing, E::Printed) => S::Printed,
        (S::Printing, E::PrintFailed) => S::PrintFailed,
        (S::PrintFailed, E::RetryPrint) => S::Printing,
        (S::Printed, E::Continue) => S::Completed,
        (S::Started | S::Printed | S::PrintFailed, E::Cancel) => S::Cancelled,
        (S::Started | S::Issuing, E::Fail) => S::Failed,
        _ => return Err(JobTransitionRefused { step, event }),
    };
    Ok(next)
}

/// Whether a runner works on jobs in this step (they hold a lease).
pub fn is_running(step: JobStep) -> bool {
    matches!(step, JobStep::Issuing | JobStep::Printing)
}

/// The job runner of one process: its instance id names the leases it holds.
#[derive(Clone)]
pub struct JobRunner {
    pub svc: Services,
    instance: Arc<str>,
    lease: Duration,
}

/// How long a lease lasts unless renewed; a heartbeat renews it every third of that.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

impl JobRunner {
    /// A runner with a fresh instance id.
    pub fn new(svc: Services, lease: Duration) -> Self {
        let instance = format!("runner-{}", svc.random.uuid());
        Self::named(svc, lease, instance)
    }

    /// A runner whose instance id is `instance` (a replica's name, shared with its presence
    /// rows: see [`crate::dispatch`]).
    pub fn named(svc: Services, lease: Duration, instance: String) -> Self {
        Self {
            svc,
            instance: instance.into(),
            lease,
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn expiry(&self) -> i64 {
        self.svc.clock.now_ms() + self.lease.as_millis() as i64
    }

    /// The lease condition of a write by this runner on a job it holds.
    pub(crate) fn hold(&self) -> LeaseChange {
        LeaseChange::Hold {
            owner: self.instance.to_string(),
            expires_ms: self.expiry(),
        }
    }

    /// The lease change of a write that ends this runner's work on a job.
    pub(crate) fn release(&self) -> LeaseChange {
        LeaseChange::Release {
            owner: self.instance.to_string(),
        }
    }

    /// The lease change of a write by which this runner takes a job nobody works on.
    pub(crate) fn claim(&self) -> LeaseChange {
        LeaseChange::Claim {
            owner: self.instance.to_string(),
            now_ms: self.svc.clock.now_ms(),
            expires_ms: self.expiry(),
        }
    }

    /// The lease a new job gets when this runner starts on it at once.
    pub fn new_lease(&self) -> Lease {
        Lease {
            owner: self.instance.to_string(),
            expires_ms: self.expiry(),
        }
    }

    /// Renews the lease on `job` every third of the lease time until the returned guard is
    /// dropped. When the lease is lost (taken over after this process stalled), `lost` turns
    /// true; the job's next write then fails anyway, because it is conditional on the lease.
    pub(crate) fn heartbeat(&self, job: &IssuanceJob) -> Heartbeat {
        let lost = Arc::new(AtomicBool::new(false));
        let (runner, id, flag) = (self.clone(), job.id.clone(), lost.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(runner.lease / 3).await;
                let renewed = runner
                    .svc
                    .store
                    .renew_lease(&id, &runner.instance, runner.expiry())
                    .await;
                match renewed {
                    Ok(true) => {}
                    Ok(false) => {
                        flag.store(true, Ordering::SeqCst);
                        tracing::warn!(job = %id, "the job's lease was taken over; stopping");
                        return;
                    }
                    // A database hiccup: try again at the next beat, before the lease ends.
                    Err(e) => {
                        tracing::warn!(job = %id, error = %e, "renewing the job's lease failed")
                    }
                }
            }
        });
        Heartbeat { task, lost }
    }

    /// Takes over the jobs whose runner died (lease expired): personalising ones end `Failed`,
    /// printing ones `PrintFailed`. Only `tessera serve` calls this; CLI commands never do, so a
    /// command run beside a live server cannot touch its jobs. Returns how many were closed.
    pub async fn recover_abandoned(&self) -> Result<usize, crate::CoreError> {
        let now = self.svc.clock.now_ms();
        let jobs = self
            .svc
            .store
            .claim_abandoned_jobs(
                &[JobStep::Issuing, JobStep::Printing],
                &self.instance,
                now,
                self.expiry(),
                50,
            )
            .await?;
        let mut n = 0;
        for job in jobs {
            let id = job.id.clone();
            match crate::issuance::close_abandoned(self, job).await {
                Ok(()) => n += 1,
                Err(e) => {
                    tracing::error!(job = %id, error = %e, "could not close an abandoned job")
                }
            }
        }
        Ok(n)
    }

    /// Recovers abandoned jobs now and then every half lease, for as long as the server runs.
    pub async fn recover_forever(self) {
        loop {
            match self.recover_abandoned().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(recovered = n, "issuances whose runner stopped were closed")
                }
                Err(e) => tracing::error!(error = %e, "recovering abandoned issuances failed"),
            }
            tokio::time::sleep(self.lease / 2).await;
        }
    }

    /// Takes `job` (in a step nobody works on) by `event`, committed together with `changes`
    /// (what the step that hands the job over writes too), and has `work` done on it. When this
    /// process holds the job's station, it takes the job under its own lease and runs the work
    /// in a task of its own, with a heartbeat that renews the lease until the work ends. When
    /// another replica holds the station, the job is queued for that replica instead (see
    /// [`crate::dispatch`]) and the returned task only hands back the job as committed.
    pub(crate) async fn take(
        &self,
        job: &mut IssuanceJob,
        event: JobEvent,
        mut changes: Changes,
        work: crate::dispatch::Work,
    ) -> Result<tokio::task::JoinHandle<IssuanceJob>, crate::CoreError> {
        let expected = job.step;
        job.step = job_transition(expected, event)?;
        job.updated_at = self.svc.clock.now();
        let here = self.svc.stations.is_here(&job.station);
        let lease = if here {
            self.claim()
        } else {
            self.queue(job, &work)
        };
        changes.push(crate::changes::Change::UpdateJob {
            job: job.clone(),
            expected,
            lease,
        });
        self.svc.commit(changes).await?;
        let (runner, started) = (self.clone(), job.clone());
        if !here {
            tracing::info!(job = %started.id, station = %started.station, "issuance queued for the replica holding its station");
            return Ok(tokio::spawn(async move { started }));
        }
        Ok(tokio::spawn(async move {
            let heartbeat = runner.heartbeat(&started);
            crate::issuance::run(runner, started, work, heartbeat).await
        }))
    }

    /// Commits `changes` plus the job's move by `event` under this runner's lease (held, or
    /// released when the job leaves the runner's steps).
    pub(crate) async fn advance(
        &self,
        mut changes: Changes,
        job: &mut IssuanceJob,
        event: JobEvent,
    ) -> Result<(), crate::CoreError> {
        let expected = job.step;
        job.step = job_transition(expected, event).map_err(crate::CoreError::from)?;
        job.updated_at = self.svc.clock.now();
        let lease = if is_running(job.step) {
            self.hold()
        } else {
            self.release()
        };
        changes.push(crate::changes::Change::UpdateJob {
            job: job.clone(),
            expected,
            lease,
        });
        self.svc.commit(changes).await
    }

    /// Commits `changes` with the job's progress, the step unchanged, under this runner's lease.
    pub(crate) async fn progress(
        &self,
        mut changes: Changes,
        job: &mut IssuanceJob,
        percent: u8,
        message: impl Into<String>,
    ) -> Result<(), crate::CoreError> {
        job.progress = percent;
        job.message = message.into();
        job.updated_at = self.svc.clock.now();
        changes.push(crate::changes::Change::UpdateJob {
            job: job.clone(),
            expected: job.step,
            lease: self.hold(),
        });
        self.svc.commit(changes).await
    }
}

/// Renews a job's lease while it lives.
pub(crate) struct Heartbeat {
    task: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl Heartbeat {
    pub(crate) fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobEvent as E;
    use JobStep as S;

    const STEPS: [JobStep; 8] = [
        S::Started,
        S::Issuing,
        S::Printing,
        S::Printed,
        S::PrintFailed,
        S::Completed,
        S::Cancelled,
        S::Failed,
    ];
    const EVENTS: [JobEvent; 8] = [
        E::ChoosePolicy,
        E::Personalised,
        E::Printed,
        E::PrintFailed,
        E::RetryPrint,
        E::Continue,
        E::Cancel,
        E::Fail,
    ];

    /// Every allowed move, and nothing else.
    const TABLE: &[(JobStep, JobEvent, JobStep)] = &[
        (S::Started, E::ChoosePolicy, S::Issuing),
        (S::Started, E::Cancel, S::Cancelled),
        (S::Started, E::Fail, S::Failed),
        (S::Issuing, E::Personalised, S::Printing),
        (S::Issuing, E::Fail, S::Failed),
        (S::Printing, E::Printed, S::Printed),
        (S::Printing, E::PrintFailed, S::PrintFailed),
        (S::PrintFailed, E::RetryPrint, S::Printing),
        (S::PrintFailed, E::Cancel, S::Cancelled),
        (S::Printed, E::Continue, S::Completed),
        (S::Printed, E::Cancel, S::Cancelled),
    ];

    #[test]
    fn allowed_moves_follow_the_table() {
        for &(from, event, to) in TABLE {
            assert_eq!(job_transition(from, event), Ok(to), "{from:?} {event:?}");
        }
    }

    #[test]
    fn every_other_pair_is_refused() {
        for step in STEPS {
            for event in EVENTS {
                if TABLE.iter().any(|&(f, e, _)| f == step && e == event) {
                    continue;
                }
                let refused = job_transition(step, event).unwrap_err();
                assert_eq!(refused, JobTransitionRefused { step, event });
                assert!(refused.to_string().contains(step.as_str()));
            }
        }
    }

    #[test]
    fn finished_jobs_accept_nothing_and_running_steps_are_the_leased_ones() {
        for step in STEPS.into_iter().filter(|s| s.is_finished()) {
            assert!(EVENTS.iter().all(|&e| job_transition(step, e).is_err()));
        }
        let running: Vec<_> = STEPS.into_iter().filter(|&s| is_running(s)).collect();
        assert_eq!(running, [S::Issuing, S::Printing]);
    }
}

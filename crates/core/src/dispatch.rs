//! Jobs follow the station. Replicas of `tessera serve` share one database, and a station's
//! WebSocket lands on any of them; the replica holding it is the one that can drive its card and
//! printer, so it runs the station's jobs. An operator's request may reach another replica: that
//! one commits the job's move and, instead of running it, queues it for the station (the job's
//! lease owner becomes `queue:<station>`, with an expiry), handing over what the run needs and
//! the job's document must not hold (the initial PIN) sealed with the organisation's sealer. Each
//! replica's dispatcher claims, every [`POLL`], the queued jobs of the stations it holds, with
//! an ordinary lease, and runs them as if they had started there.
//!
//! Nothing runs twice: the claim is a conditional write on the queue's owner, and afterwards
//! only the lease holder advances the job. Nothing is lost: a queued job whose station no
//! replica picks up within [`QUEUE_WAIT`] has an expired lease, and recovery closes it as it
//! closes a job whose runner died (personalising: `Failed`, nothing written to the card yet;
//! printing: `PrintFailed`, Retry print possible).

use crate::changes::LeaseChange;
use crate::ids::StationId;
use crate::jobs::JobRunner;
use crate::model::{DevicePolicy, IssuanceJob, JobStep};
use crate::ports::QueuedJob;
use crate::secret::Pin;
use crate::CoreError;
use std::time::Duration;

/// How often a replica looks for queued jobs of the stations it holds.
pub const POLL: Duration = Duration::from_millis(200);
/// How long a queued job waits for its station's replica before recovery closes it: as long as
/// a request waits for a station to reconnect.
pub const QUEUE_WAIT: Duration = Duration::from_secs(30);
/// Jobs claimed at once.
const BATCH: u32 = 50;

/// The lease owner of the jobs waiting for `station`'s replica.
pub fn queue_of(station: &StationId) -> String {
    format!("queue:{station}")
}

/// What a runner does with a job once it holds it.
pub(crate) enum Work {
    /// Personalise the card with `policy` and the initial `pin`, then print it.
    Issue { policy: Box<DevicePolicy>, pin: Pin },
    /// Print the personalised card (Retry print).
    Print,
}

impl Work {
    /// What the replica of the station needs besides the job's document, sealed.
    fn handover(&self, runner: &JobRunner) -> Option<Vec<u8>> {
        match self {
            Work::Issue { pin, .. } => Some(runner.svc.sealer.seal(pin.expose().as_bytes())),
            Work::Print => None,
        }
    }
}

impl JobRunner {
    /// The lease change that queues `job` for its station's replica, with `work`'s handover.
    pub(crate) fn queue(&self, job: &IssuanceJob, work: &Work) -> LeaseChange {
        let now_ms = self.svc.clock.now_ms();
        LeaseChange::Queue {
            queue: queue_of(&job.station),
            now_ms,
            expires_ms: now_ms + QUEUE_WAIT.as_millis() as i64,
            handover: work.handover(self),
        }
    }

    /// Claims the queued jobs of the stations this process holds and starts them; returns how
    /// many it started.
    pub async fn dispatch_once(&self) -> Result<usize, CoreError> {
        let here = self.svc.stations.here();
        if here.is_empty() {
            return Ok(0);
        }
        let queues: Vec<String> = here.iter().map(queue_of).collect();
        let now = self.svc.clock.now_ms();
        let claimed = self
            .svc
            .store
            .claim_queued_jobs(
                &queues,
                self.instance(),
                now,
                self.new_lease().expires_ms,
                BATCH,
            )
            .await?;
        let n = claimed.len();
        for queued in claimed {
            let runner = self.clone();
            tokio::spawn(async move {
                let mut job = queued.job.clone();
                match runner.work_of(queued).await {
                    Ok(work) => {
                        tracing::info!(job = %job.id, station = %job.station, "running a job queued by another replica");
                        let heartbeat = runner.heartbeat(&job);
                        crate::issuance::run(runner, job, work, heartbeat).await;
                    }
                    Err(err) => crate::issuance::fail_before_card(&runner, &mut job, err).await,
                }
            });
        }
        Ok(n)
    }

    /// Dispatches queued jobs every [`POLL`] for as long as the server runs.
    pub async fn dispatch_forever(self) {
        loop {
            if let Err(e) = self.dispatch_once().await {
                tracing::warn!(error = %e, "looking for queued issuances failed");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The work a queued job stands for, from its step, its document and its handover.
    async fn work_of(&self, queued: QueuedJob) -> Result<Work, CoreError> {
        let lost = |what: &str| {
            CoreError::HandoverLost(format!(
                "the issuance was handed over from another server replica without {what}; \
                 nothing was written to the card: start the issuance again"
            ))
        };
        match queued.job.step {
            JobStep::Printing => Ok(Work::Print),
            JobStep::Issuing => {
                let id = queued
                    .job
                    .policy
                    .clone()
                    .ok_or_else(|| lost("its policy"))?;
                let policy = self
                    .svc
                    .store
                    .policies()
                    .await?
                    .into_iter()
                    .find(|p| p.id == id)
                    .ok_or_else(|| CoreError::PolicyUnknown(id.to_string()))?;
                let sealed = queued.handover.ok_or_else(|| lost("its PIN"))?;
                let opened = self
                    .svc
                    .sealer
                    .open(&sealed)
                    .map_err(|_| lost("a PIN this replica can open"))?;
                let pin = String::from_utf8(opened).map_err(|_| lost("a readable PIN"))?;
                Ok(Work::Issue {
                    policy: Box::new(policy),
                    pin: Pin::new(pin),
                })
            }
            other => Err(CoreError::HandoverLost(format!(
                "a queued issuance at step {} has nothing to run",
                other.as_str()
            ))),
        }
    }
}

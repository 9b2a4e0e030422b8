//! The directory sync as the server runs it: the `[directory]` section's LDAP directory
//! (`tessera-directory`), one sync at a time per process, the last run for the portal, and the
//! schedule `serve` follows. Each run is the core's `people::sync_directory`, which checks the
//! permission, reads the whole directory, applies it and audits the outcome (a failed reading
//! changes nothing and is audited as `DirectorySyncFailed`).

use crate::wiring::{StartError, Tessera};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_core::model::{BuiltinRole, Timestamp};
use tessera_core::people::{self, Report};
use tessera_core::ports::Directory;
use tessera_core::services::{Actor, Services};
use tessera_core::CoreError;
pub use tessera_directory::{DirectoryConfig, LdapDirectory};

/// The operator id the scheduled syncs are audited under.
pub const SCHEDULE_OPERATOR: &str = "directory-sync";

/// How a run ended, for the portal.
#[derive(Clone, Debug)]
pub struct LastRun {
    pub at: Timestamp,
    /// `schedule`, `portal` or `cli`.
    pub trigger: &'static str,
    /// The report's summary, or the error's sentence.
    pub outcome: Result<String, String>,
}

/// The configured directory and what this process knows of its syncs.
pub struct DirectorySync {
    directory: LdapDirectory,
    /// Held during a run: a click on Sync now while the schedule runs waits for no second run.
    running: tokio::sync::Mutex<()>,
    last: Mutex<Option<LastRun>>,
}

/// Why a sync did not run or failed.
#[derive(Debug)]
pub enum SyncError {
    /// Another sync of this process is running.
    Busy,
    Core(CoreError),
}

impl DirectorySync {
    /// Checks the configuration (CA file and bind password file included).
    pub fn new(config: DirectoryConfig) -> Result<Self, String> {
        let directory = LdapDirectory::new(config).map_err(|e| e.to_string())?;
        Ok(Self {
            directory,
            running: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
        })
    }

    pub fn directory(&self) -> &LdapDirectory {
        &self.directory
    }

    /// The last real (not dry) run of this process.
    pub fn last_run(&self) -> Option<LastRun> {
        self.last.lock().expect("last run").clone()
    }

    /// One sync as `actor`; `wait`: queue behind a running sync rather than refuse.
    pub async fn run(
        &self,
        svc: &Services,
        actor: &Actor,
        dry_run: bool,
        trigger: &'static str,
        wait: bool,
    ) -> Result<Report, SyncError> {
        let _running = if wait {
            self.running.lock().await
        } else {
            self.running.try_lock().map_err(|_| SyncError::Busy)?
        };
        let outcome =
            people::sync_directory(svc, actor, &self.directory, dry_run, &|_progress| {}).await;
        if !dry_run {
            // A refusal of the actor (no permission) is no news about the directory.
            let remembered = match &outcome {
                Ok(report) => Some(Ok(report.summary())),
                Err(e @ CoreError::Directory(_)) => Some(Err(e.to_string())),
                Err(_) => None,
            };
            if let Some(outcome) = remembered {
                *self.last.lock().expect("last run") = Some(LastRun {
                    at: svc.clock.now(),
                    trigger,
                    outcome,
                });
            }
        }
        outcome.map_err(SyncError::Core)
    }
}

impl Tessera {
    /// Gives this server the directory of a `[directory]` section: `serve` then syncs on its
    /// schedule, and the portal's Directory page can sync on demand.
    pub fn with_directory(mut self, config: DirectoryConfig) -> Result<Self, StartError> {
        let sync = DirectorySync::new(config)
            .map_err(|e| StartError(format!("the [directory] section: {e}")))?;
        tracing::info!(directory = %sync.directory.describe(), "directory configured");
        self.directory = Some(Arc::new(sync));
        Ok(self)
    }
}

/// Syncs every `sync_interval_minutes`, the first time right after the start, until the task is
/// aborted. The report's summary (or the error) goes to the log; the core audits each run.
///
/// Scale-out: with several replicas on one database, each replica runs this schedule, so the
/// directory is read once per replica and interval. The syncs are idempotent (a second run
/// writes nothing) and each commits in one transaction, so this costs reads, not correctness;
/// electing one replica (a lease in the database, as issuance jobs have) is left for later.
pub async fn run_schedule(tessera: Tessera) {
    let Some(sync) = tessera.directory.clone() else {
        return;
    };
    let Some(every) = sync.directory.sync_interval() else {
        return;
    };
    let actor = Actor::builtin(SCHEDULE_OPERATOR, BuiltinRole::Administrator);
    let mut ticks = tokio::time::interval(every.max(Duration::from_secs(60)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match sync
            .run(&tessera.services, &actor, false, "schedule", true)
            .await
        {
            Ok(report) => {
                tracing::info!(directory = %report.origin, "directory sync: {}", report.summary())
            }
            Err(SyncError::Core(e)) => {
                tracing::warn!(code = e.code().as_str(), error = %e, "directory sync failed")
            }
            Err(SyncError::Busy) => {}
        }
    }
}

//! People imports running in the background, so that a file of a million lines shows a progress
//! bar instead of a request that times out. Each run calls the one use case,
//! [`people::import_csv`], on the blocking pool (reading a large CSV is CPU work), and is kept in
//! memory under a random id with the operator who started it: only they can follow it or apply
//! it. Nothing here is durable: a restart forgets the runs (the people an import wrote are in the
//! store, and its audit event says what it did).
//!
//! The uploaded files live only as long as they are needed: a real import drops them when it
//! ends; a dry run keeps them for [`KEEP_UPLOAD`] so that its report's Import button applies the
//! same files, and an operator has one such upload kept at a time.

use crate::photo_zip::PhotoZip;
use crate::web_error::WebError;
use axum::http::StatusCode;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_core::ids::OperatorId;
use tessera_core::people::csv_file::{CsvMapping, NoPhotos, PhotoFiles};
use tessera_core::people::{self, ImportOptions, Progress, Report};
use tessera_core::services::{Actor, Services};

/// How long a dry run keeps its files for the Import button.
pub const KEEP_UPLOAD: Duration = Duration::from_secs(15 * 60);
/// How long a finished run's report stays readable.
pub const KEEP_REPORT: Duration = Duration::from_secs(60 * 60);
/// Imports running at once, all operators together: each holds its files in memory.
pub const MAX_RUNNING: usize = 4;

/// What an operator uploaded: the CSV, its photos and how to read them.
pub struct Upload {
    pub file_name: String,
    pub csv: Vec<u8>,
    pub photos: Option<PhotoZip>,
    pub mapping: CsvMapping,
    pub complete: bool,
}

/// Where a run is.
#[derive(Clone)]
pub enum Outcome {
    Running(Option<Progress>),
    Done(Arc<Report>),
    Failed {
        status: StatusCode,
        code: &'static str,
        message: String,
        operation: String,
    },
}

impl Outcome {
    /// The error page of a failed run.
    pub fn error(&self) -> Option<WebError> {
        match self {
            Self::Failed {
                status,
                code,
                message,
                operation,
            } => Some(WebError::new(*status, code, message.clone()).with_operation(operation)),
            _ => None,
        }
    }
}

struct RunState {
    outcome: Outcome,
    /// A dry run's files, for the Import button.
    kept: Option<Upload>,
    finished: Option<Instant>,
}

/// One import or dry run.
pub struct ImportRun {
    pub id: String,
    pub operator: OperatorId,
    pub dry_run: bool,
    pub file_name: String,
    pub complete: bool,
    pub photos: bool,
    state: Mutex<RunState>,
}

impl ImportRun {
    fn lock(&self) -> std::sync::MutexGuard<'_, RunState> {
        // A panic while holding the lock leaves a state that is still whole: keep reading it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn outcome(&self) -> Outcome {
        self.lock().outcome.clone()
    }

    /// Whether the files are still here for the Import button.
    pub fn has_upload(&self) -> bool {
        self.lock().kept.is_some()
    }

    fn running(&self) -> bool {
        matches!(self.lock().outcome, Outcome::Running(_))
    }
}

/// Every run this server process knows.
#[derive(Default)]
pub struct Imports {
    runs: Mutex<HashMap<String, Arc<ImportRun>>>,
}

fn random_id() -> String {
    use rand_core::RngCore;
    let mut b = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

impl Imports {
    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ImportRun>>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets old reports and drops files kept past their time.
    fn prune(runs: &mut HashMap<String, Arc<ImportRun>>) {
        let now = Instant::now();
        runs.retain(|_, run| {
            let mut state = run.lock();
            match state.finished {
                Some(at) if now.duration_since(at) > KEEP_REPORT => false,
                Some(at) => {
                    if now.duration_since(at) > KEEP_UPLOAD {
                        state.kept = None;
                    }
                    true
                }
                None => true,
            }
        });
    }

    /// `id` when `operator` started it.
    pub fn get(&self, id: &str, operator: &OperatorId) -> Option<Arc<ImportRun>> {
        let mut runs = self.runs();
        Self::prune(&mut runs);
        runs.get(id).filter(|r| &r.operator == operator).cloned()
    }

    /// Takes the files a dry run kept (for the real import).
    pub fn take_upload(&self, id: &str, operator: &OperatorId) -> Option<Upload> {
        self.get(id, operator)?.lock().kept.take()
    }

    /// Starts an import (or a dry run) of `upload` as `actor`; the run's id follows it.
    pub fn start(
        self: &Arc<Self>,
        svc: Services,
        actor: Actor,
        upload: Upload,
        dry_run: bool,
    ) -> Result<Arc<ImportRun>, WebError> {
        let run = {
            let mut runs = self.runs();
            Self::prune(&mut runs);
            let running: Vec<&Arc<ImportRun>> = runs.values().filter(|r| r.running()).collect();
            if let Some(mine) = running.iter().find(|r| r.operator == actor.operator) {
                return Err(WebError::new(
                    StatusCode::CONFLICT,
                    "REQ0001",
                    format!(
                        "Your import of {} is still running: wait until it has finished, then start the next.",
                        mine.file_name
                    ),
                ));
            }
            if running.len() >= MAX_RUNNING {
                return Err(WebError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "REQ0001",
                    format!(
                        "{MAX_RUNNING} imports are running already: try again in a few minutes."
                    ),
                ));
            }
            // One kept upload per operator: a new run lets the earlier files go.
            for other in runs.values().filter(|r| r.operator == actor.operator) {
                other.lock().kept = None;
            }
            let run = Arc::new(ImportRun {
                id: random_id(),
                operator: actor.operator.clone(),
                dry_run,
                file_name: upload.file_name.clone(),
                complete: upload.complete,
                photos: upload.photos.is_some(),
                state: Mutex::new(RunState {
                    outcome: Outcome::Running(None),
                    kept: None,
                    finished: None,
                }),
            });
            runs.insert(run.id.clone(), run.clone());
            run
        };
        let handle = tokio::runtime::Handle::current();
        let task_run = run.clone();
        tokio::task::spawn_blocking(move || {
            let run = task_run;
            // A bug that panics must not leave the run "running" for ever (it would also bar
            // its operator from the next import).
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                handle.block_on(execute(&svc, &actor, &run, upload))
            }));
            let (result, upload) = match outcome {
                Ok(done) => done,
                Err(_) => {
                    tracing::error!(run = %run.id, "the import stopped on an internal error");
                    let mut state = run.lock();
                    state.finished = Some(Instant::now());
                    state.outcome = Outcome::Failed {
                        status: StatusCode::INTERNAL_SERVER_ERROR,
                        code: tessera_core::ErrorCode::ImportRefused.as_str(),
                        message: "The import stopped on an internal error. It writes everything in one transaction at its end, so either nothing or all of it was written: the audit log has a UsersImported event if it was. Report this with the time it happened.".into(),
                        operation: String::new(),
                    };
                    return;
                }
            };
            let mut state = run.lock();
            state.finished = Some(Instant::now());
            state.outcome = match result {
                Ok(report) => {
                    if run.dry_run {
                        state.kept = Some(upload);
                        // The files go after their time even if no one looks at a run again.
                        let run = run.clone();
                        handle.spawn(async move {
                            tokio::time::sleep(KEEP_UPLOAD).await;
                            run.lock().kept = None;
                        });
                    }
                    Outcome::Done(Arc::new(report))
                }
                Err(e) => {
                    let e = WebError::from(e);
                    Outcome::Failed {
                        status: e.status,
                        code: e.code,
                        message: e.message,
                        operation: e.operation,
                    }
                }
            };
        });
        Ok(run)
    }
}

/// The run itself: the use case, with progress reported into the run.
async fn execute(
    svc: &Services,
    actor: &Actor,
    run: &Arc<ImportRun>,
    upload: Upload,
) -> (Result<Report, tessera_core::CoreError>, Upload) {
    let progress = |p: Progress| run.lock().outcome = Outcome::Running(Some(p));
    let photos: &dyn PhotoFiles = match &upload.photos {
        Some(zip) => zip,
        None => &NoPhotos,
    };
    let result = people::import_csv(
        svc,
        actor,
        &upload.file_name,
        &upload.csv,
        upload.mapping.clone(),
        photos,
        ImportOptions {
            dry_run: run.dry_run,
            complete: upload.complete,
        },
        &progress,
    )
    .await;
    (result, upload)
}

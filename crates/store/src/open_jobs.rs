//! One issuance in progress per person and per printer, held by the database. Beside its JSON
//! document a job row keeps two keys while the job is open (a step of `JobStep::OPEN`):
//! `open_user`, the person's uid, and `open_printer`, the station and printer (or reader) it holds
//! (`tessera_core::issuance::printer_key`) while its card is in the printer (not once printed:
//! `JobStep::holds_printer`). Each has a unique index; both are NULL once the job
//! finishes, and NULLs never collide, so a finished job holds nothing. Two Starts racing (two
//! tabs, two replicas) both pass the core's check, and the second insert is refused here
//! (`StoreError::Conflict`).
//!
//! Migration 8 adds the keys and fills them for the open jobs there are; when an earlier release
//! let one person (or printer) have several open jobs, only the newest gets the key, the older
//! ones keep NULL (they stay listed in progress, and can be resumed or cancelled).

use crate::backend::backend_error;
use sqlx::{AnyConnection, Executor, Row};
use std::collections::HashSet;
use tessera_core::issuance::printer_key;
use tessera_core::model::{IssuanceJob, JobStep};
use tessera_core::ports::StoreError;

type R<T> = Result<T, StoreError>;

/// The keys a job row holds in its state: both None once it has finished.
pub(crate) fn keys(job: &IssuanceJob) -> (Option<String>, Option<String>) {
    if job.step.is_finished() {
        (None, None)
    } else {
        let printer = job.step.holds_printer().then(|| printer_key(job));
        (Some(job.user.to_string()), printer)
    }
}

/// `step IN ('started', ...)`: the open steps, for a query.
pub(crate) fn open_steps_sql() -> String {
    let steps: Vec<String> = JobStep::OPEN
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("step IN ({})", steps.join(", "))
}

/// Schema version 8: the keys, filled for the open jobs (newest first wins), and their unique
/// indexes.
pub(crate) async fn migrate(tx: &mut AnyConnection) -> R<()> {
    for sql in [
        "ALTER TABLE jobs ADD COLUMN open_user TEXT",
        "ALTER TABLE jobs ADD COLUMN open_printer TEXT",
    ] {
        tx.execute(sql).await.map_err(backend_error)?;
    }
    let rows = sqlx::query(&format!(
        "SELECT id, data FROM jobs WHERE {}",
        open_steps_sql()
    ))
    .fetch_all(&mut *tx)
    .await
    .map_err(backend_error)?;
    let mut jobs = Vec::new();
    for row in rows {
        let id: String = row.try_get("id").map_err(backend_error)?;
        let data: String = row.try_get("data").map_err(backend_error)?;
        match serde_json::from_str::<IssuanceJob>(&data) {
            Ok(job) => jobs.push(job),
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "an open job that cannot be read keeps no key")
            }
        }
    }
    jobs.sort_by_key(|j| std::cmp::Reverse(j.created_at));
    let (mut users, mut printers) = (HashSet::new(), HashSet::new());
    for job in jobs {
        let (user, printer) = keys(&job);
        let user = user.filter(|u| users.insert(u.clone()));
        let printer = printer.filter(|p| printers.insert(p.clone()));
        if user.is_none() || printer.is_none() {
            tracing::warn!(job = %job.id, "an older issuance in progress overlaps a newer one; cancel it from Jobs in progress");
        }
        sqlx::query("UPDATE jobs SET open_user = $2, open_printer = $3 WHERE id = $1")
            .bind(job.id.as_str())
            .bind(user)
            .bind(printer)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
    }
    for sql in [
        "CREATE UNIQUE INDEX IF NOT EXISTS jobs_open_user ON jobs (open_user)",
        "CREATE UNIQUE INDEX IF NOT EXISTS jobs_open_printer ON jobs (open_printer)",
    ] {
        tx.execute(sql).await.map_err(backend_error)?;
    }
    Ok(())
}

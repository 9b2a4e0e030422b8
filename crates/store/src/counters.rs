//! The counters every replica shares: failed sign-ins per name (`sign_in_failures`, for
//! `tessera_core::throttle`) and refused attempts per clock minute (`refusal_minutes` and
//! `refusals_left_out`, for `tessera_core::refusals`). They live in the database, not in a
//! process, so that several `tessera serve` on one PostgreSQL lock the same names and write
//! the same thirty refusals a minute.
//!
//! Each count is a read-modify-write that holds its row: on SQLite the write transaction
//! (`BEGIN IMMEDIATE`) holds the whole database, on PostgreSQL the row is locked (`FOR UPDATE`,
//! or the row lock of an `UPSERT`) until the commit. Rows do not outlive their use: a name's row
//! is deleted once it is to be forgotten (`forget_at`), a minute's rows once its summary is
//! written (or, when it left nothing out, with the next event after it).

use crate::backend::{backend_error, begin_write, Backend};
use crate::writes::append_audits;
use sqlx::{AnyConnection, AnyPool, Executor, Row};
use std::collections::BTreeMap;
use tessera_core::model::Timestamp;
use tessera_core::ports::{NewAuditEvent, StoreError};
use tessera_core::refusals::{minute_of, Summary};
use tessera_core::throttle::{after_failure, Failure, FailureRecord};

type R<T> = Result<T, StoreError>;

/// Schema version 10: the tables of the shared counters.
pub(crate) async fn migrate(tx: &mut AnyConnection) -> R<()> {
    for sql in [
        "CREATE TABLE IF NOT EXISTS sign_in_failures (name TEXT PRIMARY KEY, \
         failures BIGINT NOT NULL, locks BIGINT NOT NULL, locked_until BIGINT NOT NULL, \
         forget_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS sign_in_failures_forget ON sign_in_failures (forget_at)",
        "CREATE TABLE IF NOT EXISTS refusal_minutes (minute BIGINT PRIMARY KEY, \
         seen BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS refusals_left_out (minute BIGINT NOT NULL, \
         kind TEXT NOT NULL, count BIGINT NOT NULL, PRIMARY KEY (minute, kind))",
    ] {
        tx.execute(sql).await.map_err(backend_error)?;
    }
    Ok(())
}

fn record_of(row: &sqlx::any::AnyRow) -> R<FailureRecord> {
    let get = |c: &str| -> R<i64> { row.try_get(c).map_err(backend_error) };
    Ok(FailureRecord {
        failures: get("failures")? as u32,
        locks: get("locks")? as u32,
        locked_until: get("locked_until")?,
        forget_at: get("forget_at")?,
    })
}

const RECORD: &str = "SELECT failures, locks, locked_until, forget_at FROM sign_in_failures \
                      WHERE name = $1";

pub(crate) async fn sign_in_record(pool: &AnyPool, key: &str) -> R<Option<FailureRecord>> {
    sqlx::query(RECORD)
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(backend_error)?
        .as_ref()
        .map(record_of)
        .transpose()
}

pub(crate) async fn sign_in_failed(
    pool: &AnyPool,
    backend: Backend,
    key: &str,
    now: i64,
) -> R<Failure> {
    // The forgotten records go first, in a statement of their own: under a flood of invented
    // names each failure deletes about as many rows as it adds, and no row lock of the flood
    // is held while a real name is counted.
    sqlx::query("DELETE FROM sign_in_failures WHERE forget_at <= $1")
        .bind(now)
        .execute(pool)
        .await
        .map_err(backend_error)?;
    let mut tx = begin_write(pool, backend).await?;
    // An empty record (forgotten at once) that the read below can lock: two replicas counting
    // a new name at once then both wait on one row instead of one failing on the unique key.
    sqlx::query(
        "INSERT INTO sign_in_failures (name, failures, locks, locked_until, forget_at) \
         VALUES ($1, 0, 0, 0, 0) ON CONFLICT (name) DO NOTHING",
    )
    .bind(key)
    .execute(&mut *tx)
    .await
    .map_err(backend_error)?;
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let row = sqlx::query(&format!("{RECORD}{lock}"))
        .bind(key)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend_error)?;
    let (record, failure) = after_failure(Some(record_of(&row)?), now);
    sqlx::query(
        "UPDATE sign_in_failures SET failures = $2, locks = $3, locked_until = $4, \
         forget_at = $5 WHERE name = $1",
    )
    .bind(key)
    .bind(record.failures as i64)
    .bind(record.locks as i64)
    .bind(record.locked_until)
    .bind(record.forget_at)
    .execute(&mut *tx)
    .await
    .map_err(backend_error)?;
    tx.commit().await.map_err(backend_error)?;
    Ok(failure)
}

pub(crate) async fn sign_in_succeeded(pool: &AnyPool, key: &str) -> R<()> {
    sqlx::query("DELETE FROM sign_in_failures WHERE name = $1")
        .bind(key)
        .execute(pool)
        .await
        .map_err(backend_error)?;
    Ok(())
}

/// Holds the audit chain's head row until the commit. The refusal counters are always locked
/// after it (or, for ended minutes, before anything else of the unit), so two units never hold
/// one each while waiting for the other.
async fn hold_audit_head(c: &mut AnyConnection) -> R<()> {
    sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
        .execute(c)
        .await
        .map_err(backend_error)?;
    Ok(())
}

/// `Change::AuditRefusal`: counts the refusal in its minute; appends it while the minute is
/// within its share, counts it as left out otherwise.
pub(crate) async fn audit_refusal(
    c: &mut AnyConnection,
    backend: Backend,
    event: &NewAuditEvent,
    per_minute: u32,
) -> R<()> {
    hold_audit_head(c).await?;
    let minute = minute_of(event.at);
    let seen: i64 = sqlx::query(
        "INSERT INTO refusal_minutes (minute, seen) VALUES ($1, 1) \
         ON CONFLICT (minute) DO UPDATE SET seen = refusal_minutes.seen + 1 RETURNING seen",
    )
    .bind(minute)
    .fetch_one(&mut *c)
    .await
    .map_err(backend_error)?
    .try_get("seen")
    .map_err(backend_error)?;
    if seen <= per_minute as i64 {
        return append_audits(c, backend, &[event]).await;
    }
    sqlx::query(
        "INSERT INTO refusals_left_out (minute, kind, count) VALUES ($1, $2, 1) \
         ON CONFLICT (minute, kind) DO UPDATE SET count = refusals_left_out.count + 1",
    )
    .bind(minute)
    .bind(event.name)
    .execute(&mut *c)
    .await
    .map_err(backend_error)?;
    Ok(())
}

/// `Change::SummariseRefusals`: a summary for each ended minute that left refusals out, oldest
/// first, and the ended minutes' counts deleted. It comes first in its unit, holding nothing
/// yet: a unit of another replica summarising at the same moment makes it wait on the deleted
/// rows, after which it finds them gone and writes nothing.
pub(crate) async fn summarise_refusals(
    c: &mut AnyConnection,
    backend: Backend,
    now: Timestamp,
) -> R<()> {
    let minute = minute_of(now);
    // Most units find nothing to summarise: they read, lock nothing, and go on.
    let due = sqlx::query("SELECT 1 AS one FROM refusals_left_out WHERE minute < $1 LIMIT 1")
        .bind(minute)
        .fetch_optional(&mut *c)
        .await
        .map_err(backend_error)?
        .is_some();
    if due {
        // The head first, as a refusal does, then the counts it summarises.
        hold_audit_head(c).await?;
        let rows = sqlx::query(
            "DELETE FROM refusals_left_out WHERE minute < $1 RETURNING minute, kind, count",
        )
        .bind(minute)
        .fetch_all(&mut *c)
        .await
        .map_err(backend_error)?;
        let mut minutes: BTreeMap<i64, BTreeMap<String, u64>> = BTreeMap::new();
        for row in rows {
            let m: i64 = row.try_get("minute").map_err(backend_error)?;
            let kind: String = row.try_get("kind").map_err(backend_error)?;
            let count: i64 = row.try_get("count").map_err(backend_error)?;
            *minutes.entry(m).or_default().entry(kind).or_default() += count as u64;
        }
        for (m, left_out) in minutes {
            append_audits(c, backend, &[&Summary::of_minute(m, left_out).event(now)]).await?;
        }
    }
    sqlx::query("DELETE FROM refusal_minutes WHERE minute < $1")
        .bind(minute)
        .execute(&mut *c)
        .await
        .map_err(backend_error)?;
    Ok(())
}

//! What replicas of `tessera serve` on one database share about stations and jobs
//! (see `tessera_core::dispatch`).
//!
//! - `station_presence`: which replica holds each station's WebSocket now, and the URL other
//!   replicas forward that station's requests to. A replica writes its row when the station
//!   connects and deletes it (only its own, of the same connection) when the connection ends; a
//!   replica killed outright leaves its rows behind until the stations reconnect elsewhere, which
//!   overwrites them.
//! - `jobs.handover`: a job queued for the replica of its station carries what that replica needs
//!   to run it and that the job's document must not hold (the initial PIN), sealed with the
//!   organisation's sealer. The claim that takes the job reads it and clears it in one statement,
//!   and every other lease change clears it too, so it lives only while the job waits.

use crate::backend::{backend_error, begin_write, Backend};
use sqlx::{AnyConnection, AnyPool, Executor, Row};
use tessera_core::ids::StationId;
use tessera_core::model::IssuanceJob;
use tessera_core::ports::{QueuedJob, StationPresence, StoreError};

type R<T> = Result<T, StoreError>;

/// Migration 9.
pub(crate) async fn migrate(tx: &mut AnyConnection, backend: Backend) -> R<()> {
    let blob = match backend {
        Backend::Sqlite => "BLOB",
        Backend::Postgres => "BYTEA",
    };
    for statement in [
        format!("ALTER TABLE jobs ADD COLUMN handover {blob}"),
        "CREATE INDEX IF NOT EXISTS jobs_lease_owner ON jobs (lease_owner)".to_owned(),
        "CREATE TABLE IF NOT EXISTS station_presence (station_id TEXT PRIMARY KEY, \
         replica TEXT NOT NULL, url TEXT NOT NULL, generation BIGINT NOT NULL, \
         since_ms BIGINT NOT NULL)"
            .to_owned(),
    ] {
        tx.execute(statement.as_str())
            .await
            .map_err(backend_error)?;
    }
    Ok(())
}

/// Takes up to `limit` jobs waiting in one of `queues` (lease owners `queue:<station>`, see
/// `tessera_core::dispatch::queue_of`) whose wait has not run out: `owner` holds them until
/// `expires_ms`, and each comes with its handover, cleared in the same transaction.
pub(crate) async fn claim_queued(
    pool: &AnyPool,
    backend: Backend,
    queues: &[String],
    owner: &str,
    now_ms: i64,
    expires_ms: i64,
    limit: u32,
) -> R<Vec<QueuedJob>> {
    if queues.is_empty() {
        return Ok(Vec::new());
    }
    let places: Vec<String> = (0..queues.len()).map(|i| format!("${}", i + 3)).collect();
    // Polled several times a second: a plain read first, so that an empty queue never takes
    // SQLite's write lock from the writers that do work.
    let probe = format!(
        "SELECT id FROM jobs WHERE lease_owner IN ({}) AND lease_expires >= $1 LIMIT $2",
        places.join(", ")
    );
    let mut query = sqlx::query(&probe).bind(now_ms).bind(1_i64);
    for q in queues {
        query = query.bind(q.as_str());
    }
    if query
        .fetch_optional(pool)
        .await
        .map_err(backend_error)?
        .is_none()
    {
        return Ok(Vec::new());
    }
    let mut tx = begin_write(pool, backend).await?;
    // PostgreSQL: a replica never waits on a row another is claiming (there is none to claim:
    // a station's queue belongs to the one replica holding it), nor on a row being written.
    let sql = format!(
        "SELECT id, data, handover FROM jobs WHERE lease_owner IN ({}) AND lease_expires >= $1 \
         ORDER BY id LIMIT $2{}",
        places.join(", "),
        match backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    );
    let mut query = sqlx::query(&sql).bind(now_ms).bind(limit as i64);
    for q in queues {
        query = query.bind(q.as_str());
    }
    let rows = query.fetch_all(&mut *tx).await.map_err(backend_error)?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id").map_err(backend_error)?;
        let data: String = row.try_get("data").map_err(backend_error)?;
        let handover: Option<Vec<u8>> = row.try_get("handover").map_err(backend_error)?;
        sqlx::query(
            "UPDATE jobs SET lease_owner = $2, lease_expires = $3, handover = NULL WHERE id = $1",
        )
        .bind(&id)
        .bind(owner)
        .bind(expires_ms)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        let job: IssuanceJob = serde_json::from_str(&data)
            .map_err(|e| StoreError::Backend(format!("a stored job cannot be read: {e}")))?;
        claimed.push(QueuedJob { job, handover });
    }
    tx.commit().await.map_err(backend_error)?;
    Ok(claimed)
}

pub(crate) async fn put_presence(pool: &AnyPool, p: &StationPresence) -> R<()> {
    sqlx::query(
        "INSERT INTO station_presence (station_id, replica, url, generation, since_ms) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (station_id) DO UPDATE SET \
         replica = excluded.replica, url = excluded.url, generation = excluded.generation, \
         since_ms = excluded.since_ms",
    )
    .bind(p.station.as_str())
    .bind(&p.replica)
    .bind(&p.url)
    .bind(p.generation as i64)
    .bind(p.since_ms)
    .execute(pool)
    .await
    .map_err(backend_error)?;
    Ok(())
}

pub(crate) async fn clear_presence(
    pool: &AnyPool,
    station: &StationId,
    replica: &str,
    generation: u64,
) -> R<()> {
    sqlx::query(
        "DELETE FROM station_presence WHERE station_id = $1 AND replica = $2 AND generation = $3",
    )
    .bind(station.as_str())
    .bind(replica)
    .bind(generation as i64)
    .execute(pool)
    .await
    .map_err(backend_error)?;
    Ok(())
}

pub(crate) async fn presence(pool: &AnyPool, station: &StationId) -> R<Option<StationPresence>> {
    let row = sqlx::query(
        "SELECT replica, url, generation, since_ms FROM station_presence WHERE station_id = $1",
    )
    .bind(station.as_str())
    .fetch_optional(pool)
    .await
    .map_err(backend_error)?;
    row.map(|row| {
        Ok(StationPresence {
            station: station.clone(),
            replica: row.try_get("replica").map_err(backend_error)?,
            url: row.try_get("url").map_err(backend_error)?,
            generation: row.try_get::<i64, _>("generation").map_err(backend_error)? as u64,
            since_ms: row.try_get("since_ms").map_err(backend_error)?,
        })
    })
    .transpose()
}

//! Connecting and migrating: which backend a URL names, and the schema for it.

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Executor;
use sqlx::Row;
use tessera_core::ports::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::Backend(format!(
                "unsupported database URL (use sqlite:// or postgres://): {}",
                redact_url(url)
            )))
        }
    }

    fn schema(self) -> String {
        let blob = match self {
            Self::Sqlite => "BLOB",
            Self::Postgres => "BYTEA",
        };
        include_str!("schema.sql").replace("{{BLOB}}", blob)
    }
}

/// Hides a password in a database URL before it reaches a message.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

pub(crate) fn backend_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        other => StoreError::Backend(other.to_string()),
    }
}

/// Begins a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later fails at once
/// with "database is locked" when another process wrote in between, without waiting for the
/// busy timeout; one that starts as a writer waits its turn instead. PostgreSQL locks rows.
pub(crate) async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
    match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => pool.begin().await,
    }
    .map_err(backend_error)
}

pub(crate) async fn connect(url: &str) -> Result<(AnyPool, Backend), StoreError> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of_url(url)?;
    let mut options = AnyPoolOptions::new().max_connections(match backend {
        // SQLite has one writer; a small pool avoids lock contention without starving readers.
        Backend::Sqlite => 4,
        Backend::Postgres => 16,
    });
    if backend == Backend::Sqlite {
        // SQLite caches 2 MiB of pages per connection by default; the user search's indexes
        // at a million people are some hundreds of MiB, and an import writes into all of them.
        // 64 MiB a connection keeps their upper levels and hot pages in memory.
        options = options.after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA cache_size = -65536").await?;
                Ok(())
            })
        });
    }
    let pool = options.connect(url).await.map_err(backend_error)?;
    if backend == Backend::Sqlite {
        // WAL lets readers go on while the issuance engine writes; it is a property of the file.
        pool.execute("PRAGMA journal_mode=WAL")
            .await
            .map_err(backend_error)?;
    }
    migrate(&pool, backend).await?;
    Ok((pool, backend))
}

/// The schema's versions, in order. Each runs once per database, in its own write transaction
/// with the row that records it in `schema_migrations`. Version 1 is the schema as the first
/// release made it (`CREATE ... IF NOT EXISTS`), so a database made by that release, which has
/// no `schema_migrations` table yet, upgrades through the same list.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, "initial schema"),
    (2, "device serials"),
    (3, "job leases"),
    (4, "installation"),
    (5, "card stock"),
    (6, "roles and approvals"),
    (7, "user search"),
    (8, "one open job per person and printer"),
    (9, "station presence and job handover"),
    (10, "sign-in failures and refusal counts shared by replicas"),
    (11, "fingerprints"),
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 11;

/// PostgreSQL advisory lock key that serialises first-start migration across replicas.
const MIGRATION_LOCK: i64 = 0x7e55_e7a0;

async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(backend_error)?;
    if backend == Backend::Postgres {
        // Two replicas starting together on an empty database would both create the schema;
        // the lock makes the second wait and then find it done.
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(backend_error)?;
    }
    let result = run_migrations(&mut conn, backend).await;
    if backend == Backend::Postgres {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await;
    }
    result
}

async fn run_migrations(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
) -> Result<(), StoreError> {
    use sqlx::Connection;
    for &(version, name) in MIGRATIONS {
        let mut tx = match backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => conn.begin().await,
        }
        .map_err(backend_error)?;
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
             name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .await
        .map_err(backend_error)?;
        let done = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend_error)?
            .is_some();
        if done {
            continue;
        }
        apply_migration(&mut tx, backend, version).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        tx.commit().await.map_err(backend_error)?;
        tracing::info!(version, name, "database schema migrated");
    }
    Ok(())
}

async fn apply_migration(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
    version: i64,
) -> Result<(), StoreError> {
    match version {
        1 => {
            for statement in strip_comments(&backend.schema())
                .split(';')
                .filter(|s| !s.trim().is_empty())
            {
                tx.execute(statement).await.map_err(backend_error)?;
            }
            tx.execute(
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, \
                 '0000000000000000000000000000000000000000000000000000000000000000') \
                 ON CONFLICT (id) DO NOTHING",
            )
            .await
            .map_err(backend_error)?;
        }
        2 => add_device_serials(tx, backend).await?,
        3 => {
            for statement in [
                "ALTER TABLE jobs ADD COLUMN lease_owner TEXT",
                "ALTER TABLE jobs ADD COLUMN lease_expires BIGINT",
                "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (step, lease_expires)",
            ] {
                tx.execute(statement).await.map_err(backend_error)?;
            }
        }
        4 => {
            tx.execute("CREATE TABLE IF NOT EXISTS installation (id BIGINT PRIMARY KEY, data TEXT NOT NULL)")
                .await
                .map_err(backend_error)?;
        }
        5 => {
            // The cards a vendor shipped, by serial; the stock page counts them per model and
            // location.
            for statement in [
                "CREATE TABLE IF NOT EXISTS stock_cards (serial TEXT PRIMARY KEY, \
                 model TEXT NOT NULL, batch TEXT NOT NULL, state TEXT NOT NULL, location TEXT, \
                 imported_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
                "CREATE INDEX IF NOT EXISTS stock_cards_model_location \
                 ON stock_cards (model, location)",
            ] {
                tx.execute(statement).await.map_err(backend_error)?;
            }
        }
        6 => {
            // Custom roles (documents, like operators); a revision per operator, so that a change
            // decided on an old read fails instead of undoing another; requests awaiting a second operator's
            // approval, by state so the queue is one index scan.
            for statement in [
                "CREATE TABLE IF NOT EXISTS roles (id TEXT PRIMARY KEY, data TEXT NOT NULL)",
                "ALTER TABLE operators ADD COLUMN revision BIGINT NOT NULL DEFAULT 0",
                "ALTER TABLE sessions ADD COLUMN card_serial TEXT",
                "CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, state TEXT NOT NULL, \
                 requested_at BIGINT NOT NULL, data TEXT NOT NULL)",
                "CREATE INDEX IF NOT EXISTS approvals_state ON approvals (state, requested_at)",
            ] {
                tx.execute(statement).await.map_err(backend_error)?;
            }
        }
        // Search columns, groups and the substring index (see `user_index`).
        7 => crate::user_index::migrate(tx, backend).await?,
        // The keys that hold one open job per person and printer (see `open_jobs`).
        8 => crate::open_jobs::migrate(tx).await?,
        // Where each station is connected, and the queue's handover (see `cluster`).
        9 => crate::cluster::migrate(tx, backend).await?,
        // The counters every replica shares (see `counters`).
        10 => crate::counters::migrate(tx).await?,
        // A person's fingerprints (see `biometrics`).
        11 => crate::biometrics::migrate(tx, backend).await?,
        other => {
            return Err(StoreError::Backend(format!(
                "unknown schema version {other}"
            )))
        }
    }
    Ok(())
}

/// A database made before devices had a `serial` column gets it, filled from each device's
/// document; then the column is indexed (the issuance looks cards up by serial). The catalogue
/// says whether the column is there (a failing probe query would spoil a PostgreSQL transaction).
async fn add_device_serials(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
) -> Result<(), StoreError> {
    let probe = match backend {
        Backend::Sqlite => "SELECT 1 AS one FROM pragma_table_info('devices') WHERE name = 'serial'",
        Backend::Postgres => {
            "SELECT 1 AS one FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'devices' AND column_name = 'serial'"
        }
    };
    let has_serial = sqlx::query(probe)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend_error)?
        .is_some();
    if !has_serial {
        tx.execute("ALTER TABLE devices ADD COLUMN serial TEXT")
            .await
            .map_err(backend_error)?;
        let rows = sqlx::query("SELECT id, data FROM devices")
            .fetch_all(&mut *tx)
            .await
            .map_err(backend_error)?;
        for row in rows {
            let id: String = row.try_get("id").map_err(backend_error)?;
            let data: String = row.try_get("data").map_err(backend_error)?;
            let serial = serde_json::from_str::<serde_json::Value>(&data)
                .ok()
                .and_then(|d| d.get("serial")?.as_str().map(str::to_owned));
            sqlx::query("UPDATE devices SET serial = $1 WHERE id = $2")
                .bind(serial)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(backend_error)?;
        }
    }
    tx.execute("CREATE INDEX IF NOT EXISTS devices_serial ON devices (serial)")
        .await
        .map_err(backend_error)?;
    Ok(())
}

fn strip_comments(statement: &str) -> String {
    statement
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend_and_hide_passwords() {
        assert_eq!(Backend::of_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of_url("postgres://u:p@h/db").unwrap(),
            Backend::Postgres
        );
        let err = Backend::of_url("mysql://u:secret@h/db").unwrap_err();
        assert!(!err.to_string().contains("secret"));
        assert!(Backend::Postgres.schema().contains("BYTEA"));
        assert!(!Backend::Sqlite.schema().contains("{{"));
    }
}

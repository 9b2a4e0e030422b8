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
    let options = AnyPoolOptions::new().max_connections(match backend {
        // SQLite has one writer; a small pool avoids lock contention without starving readers.
        Backend::Sqlite => 4,
        Backend::Postgres => 16,
    });
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

async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    let schema = strip_comments(&backend.schema());
    let mut tx = begin_write(pool, backend).await?;
    for statement in schema.split(';').filter(|s| !s.trim().is_empty()) {
        tx.execute(statement).await.map_err(backend_error)?;
    }
    tx.execute(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, \
         '0000000000000000000000000000000000000000000000000000000000000000') \
         ON CONFLICT (id) DO NOTHING",
    )
    .await
    .map_err(backend_error)?;
    tx.commit().await.map_err(backend_error)?;
    add_device_serials(pool, backend).await
}

/// Whether the devices table has its `serial` column: a query naming it fails where it is
/// missing, the same way on both backends.
async fn has_device_serials(pool: &AnyPool) -> bool {
    sqlx::query("SELECT serial FROM devices WHERE 1 = 0")
        .fetch_all(pool)
        .await
        .is_ok()
}

/// A database made before devices had a `serial` column gets it, filled from each device's
/// document; then the column is indexed (the issuance looks cards up by serial).
async fn add_device_serials(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    if !has_device_serials(pool).await {
        let mut tx = begin_write(pool, backend).await?;
        let added = tx
            .execute("ALTER TABLE devices ADD COLUMN serial TEXT")
            .await;
        if let Err(e) = added {
            drop(tx);
            // Another replica opening the same database may have added it meanwhile.
            if has_device_serials(pool).await {
                return index_device_serials(pool).await;
            }
            return Err(backend_error(e));
        }
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
        tx.commit().await.map_err(backend_error)?;
    }
    index_device_serials(pool).await
}

async fn index_device_serials(pool: &AnyPool) -> Result<(), StoreError> {
    pool.execute("CREATE INDEX IF NOT EXISTS devices_serial ON devices (serial)")
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

//! `SqlStore`: the core's `Store` trait in SQL.

use crate::backend::{backend_error, begin_write, connect, Backend};
use crate::{user_index, user_search, writes};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::AnyPool;
use sqlx::Row;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tessera_core::approvals::{Approval, ApprovalState};
use tessera_core::changes::{Changes, Lease};
use tessera_core::ids::*;
use tessera_core::model::*;
use tessera_core::ports::{
    AuditRecord, CertificateState, Installation, QueuedJob, StationPresence, Store, StoreError,
    StoredSession, UserQuery,
};

#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// Write transactions committed so far, shared by every clone: each costs the database a
    /// flush of its log, so how many a card takes bounds how many cards an hour it can issue.
    writes: Arc<AtomicU64>,
    /// SQLite has one writer at a time. This process's writers wait for their turn here, in
    /// the order they came, and each is woken the moment the one before it commits. Left to
    /// SQLite, a writer that finds the database locked sleeps in its busy handler and tries
    /// again (1, 2, 5 ... up to 100 ms a sleep), so under load the lock sits free while
    /// writers sleep. Other processes on the same file (a CLI command beside the server) still
    /// meet the busy handler. PostgreSQL locks rows and needs no turn.
    turn: Arc<tokio::sync::Mutex<()>>,
}

type R<T> = Result<T, StoreError>;

fn from_json<T: DeserializeOwned>(text: &str) -> R<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("corrupt record: {e}")))
}

fn doc<T: DeserializeOwned>(row: &AnyRow) -> R<T> {
    let text: String = row.try_get("data").map_err(backend_error)?;
    from_json(&text)
}

fn docs<T: DeserializeOwned>(rows: &[AnyRow]) -> R<Vec<T>> {
    rows.iter().map(doc).collect()
}

impl SqlStore {
    /// Connects to `sqlite://path?mode=rwc` or `postgres://...` and brings the schema up to date.
    pub async fn open(url: &str) -> R<Self> {
        let (pool, backend) = connect(url).await?;
        Ok(Self {
            pool,
            backend,
            writes: Arc::default(),
            turn: Arc::default(),
        })
    }

    /// Waits for this process's turn to write (SQLite; see `turn`). Hold the guard until the
    /// write transaction has committed or rolled back.
    async fn turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(self.turn.clone().lock_owned().await),
            Backend::Postgres => None,
        }
    }

    /// How many write transactions this store (and its clones) committed since it was opened:
    /// units of work, lease renewals and the direct writes (sessions, people, photos). Reads
    /// are not counted; neither are the migrations of `open`.
    pub fn committed_writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Counts a committed write transaction.
    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn all_docs<T: DeserializeOwned>(&self, table: &str) -> R<Vec<T>> {
        let sql = format!("SELECT data FROM {table} ORDER BY name");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        docs(&rows)
    }

    async fn one_doc<T: DeserializeOwned>(&self, sql: &str, id: &str) -> R<T> {
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?
            .ok_or(StoreError::NotFound)?;
        doc(&row)
    }

    async fn count(&self, table: &str) -> R<u64> {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let row = sqlx::query(&sql)
            .fetch_one(&self.pool)
            .await
            .map_err(backend_error)?;
        let n: i64 = row.try_get("n").map_err(backend_error)?;
        Ok(n as u64)
    }
}

fn operator_of(row: &AnyRow) -> R<Operator> {
    let mut operator: Operator = doc(row)?;
    operator.revision = row.try_get("revision").map_err(backend_error)?;
    Ok(operator)
}

fn certificate_of(row: &AnyRow) -> R<CertificateRecord> {
    let mut cert: CertificateRecord = doc(row)?;
    cert.der = row.try_get("der").map_err(backend_error)?;
    let status: String = row.try_get("status").map_err(backend_error)?;
    cert.status = CertificateStatus::parse(&status)
        .ok_or_else(|| StoreError::Backend(format!("unknown certificate status {status}")))?;
    cert.revocation_reason = row.try_get("revocation_reason").map_err(backend_error)?;
    Ok(cert)
}

fn state_of(row: &AnyRow) -> R<CertificateState> {
    let status: String = row.try_get("status").map_err(backend_error)?;
    Ok(CertificateState {
        serial: row.try_get("serial").map_err(backend_error)?,
        status: CertificateStatus::parse(&status)
            .ok_or_else(|| StoreError::Backend(format!("unknown certificate status {status}")))?,
        reason: row.try_get("revocation_reason").map_err(backend_error)?,
        changed_at: Timestamp(
            row.try_get::<Option<i64>, _>("status_changed_at")
                .map_err(backend_error)?
                .unwrap_or(0),
        ),
    })
}

fn audit_of(row: &AnyRow) -> R<AuditRecord> {
    let get_s = |c: &str| -> R<Option<String>> { row.try_get(c).map_err(backend_error) };
    let details: String = row.try_get("details").map_err(backend_error)?;
    Ok(AuditRecord {
        seq: row.try_get("seq").map_err(backend_error)?,
        at: Timestamp(row.try_get("at").map_err(backend_error)?),
        code: row.try_get::<i64, _>("code").map_err(backend_error)? as u32,
        name: row.try_get("name").map_err(backend_error)?,
        operator: get_s("operator")?,
        user: get_s("user_id")?,
        device: get_s("device")?,
        operation: get_s("operation")?,
        details: from_json(&details)?,
        prev_hash: row.try_get("prev_hash").map_err(backend_error)?,
        hash: row.try_get("hash").map_err(backend_error)?,
    })
}

fn stock_card_of(row: &AnyRow) -> R<StockCard> {
    let state: String = row.try_get("state").map_err(backend_error)?;
    Ok(StockCard {
        serial: row.try_get("serial").map_err(backend_error)?,
        model: row.try_get("model").map_err(backend_error)?,
        batch: row.try_get("batch").map_err(backend_error)?,
        state: StockState::parse(&state)
            .ok_or_else(|| StoreError::Backend(format!("unknown stock state {state}")))?,
        location: row
            .try_get::<Option<String>, _>("location")
            .map_err(backend_error)?
            .map(StationId),
        imported_at: Timestamp(row.try_get("imported_at").map_err(backend_error)?),
        updated_at: Timestamp(row.try_get("updated_at").map_err(backend_error)?),
    })
}

const STOCK_COLUMNS: &str = "serial, model, batch, state, location, imported_at, updated_at";

#[async_trait]
impl Store for SqlStore {
    async fn put_user(&self, user: &User) -> R<()> {
        let _turn = self.turn().await;
        let mut tx = begin_write(&self.pool, self.backend).await?;
        user_index::put_users(&mut tx, self.backend, &[user], &[]).await?;
        tx.commit().await.map_err(backend_error)?;
        self.wrote();
        Ok(())
    }

    async fn user(&self, uid: &UserId) -> R<User> {
        self.one_doc("SELECT data FROM users WHERE uid = $1", uid.as_str())
            .await
    }

    async fn find_users(&self, query: &UserQuery) -> R<Vec<User>> {
        user_search::find(&self.pool, self.backend, query).await
    }

    async fn users_by_uid(&self, uids: &[UserId]) -> R<Vec<User>> {
        let mut found = Vec::new();
        for chunk in uids.chunks(500) {
            let sql = format!(
                "SELECT data FROM users WHERE uid IN ({})",
                user_index::uid_list(self.backend, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for uid in chunk {
                q = q.bind(uid.as_str());
            }
            let rows = q.fetch_all(&self.pool).await.map_err(backend_error)?;
            found.extend(docs::<User>(&rows)?);
        }
        Ok(found)
    }

    async fn uids_of_source(&self, source: UserSource) -> R<Vec<(UserId, bool)>> {
        // The index (source, uid, disabled) answers this alone.
        let rows = sqlx::query("SELECT uid, disabled FROM users WHERE source = $1 ORDER BY uid")
            .bind(user_index::source_name(source))
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        rows.iter()
            .map(|r| {
                let uid: String = r.try_get("uid").map_err(backend_error)?;
                let disabled: i64 = r.try_get("disabled").map_err(backend_error)?;
                Ok((UserId::new(uid), disabled != 0))
            })
            .collect()
    }

    async fn count_users(&self) -> R<u64> {
        self.count("users").await
    }

    async fn put_photo(&self, uid: &UserId, photo: &[u8]) -> R<()> {
        let _turn = self.turn().await;
        let mut c = self.pool.acquire().await.map_err(backend_error)?;
        writes::put_photo(&mut c, uid, photo).await?;
        self.wrote();
        Ok(())
    }

    async fn photo(&self, uid: &UserId) -> R<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT photo FROM photos WHERE uid = $1")
            .bind(uid.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        row.map(|r| r.try_get("photo").map_err(backend_error))
            .transpose()
    }

    async fn fingerprints(&self, uid: &UserId) -> R<Option<tessera_core::fips201::Fingerprints>> {
        crate::biometrics::read(&self.pool, uid).await
    }

    async fn policies(&self) -> R<Vec<DevicePolicy>> {
        self.all_docs("policies").await
    }

    async fn layouts(&self) -> R<Vec<Layout>> {
        self.all_docs("layouts").await
    }

    async fn stations(&self) -> R<Vec<Station>> {
        self.all_docs("stations").await
    }

    async fn pairing(
        &self,
        operator: &OperatorId,
        station: &StationId,
    ) -> R<Option<PrinterPairing>> {
        let row = sqlx::query(
            "SELECT printer, reader FROM pairings WHERE operator = $1 AND station = $2",
        )
        .bind(operator.as_str())
        .bind(station.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        row.map(|r| {
            Ok(PrinterPairing {
                operator: operator.clone(),
                station: station.clone(),
                printer: r.try_get("printer").map_err(backend_error)?,
                reader: r.try_get("reader").map_err(backend_error)?,
            })
        })
        .transpose()
    }

    async fn settings(&self) -> R<Settings> {
        let row = sqlx::query("SELECT data FROM settings WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        match row {
            Some(r) => doc(&r),
            None => Ok(Settings::default()),
        }
    }

    async fn operator(&self, id: &OperatorId) -> R<Operator> {
        let row = sqlx::query("SELECT data, revision FROM operators WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?
            .ok_or(StoreError::NotFound)?;
        operator_of(&row)
    }

    async fn count_operators(&self) -> R<u64> {
        self.count("operators").await
    }

    async fn operators(&self) -> R<Vec<Operator>> {
        let rows = sqlx::query("SELECT data, revision FROM operators ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        rows.iter().map(operator_of).collect()
    }

    async fn roles(&self) -> R<Vec<Role>> {
        let rows = sqlx::query("SELECT data FROM roles ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        docs(&rows)
    }

    async fn approval(&self, id: &ApprovalId) -> R<Approval> {
        self.one_doc("SELECT data FROM approvals WHERE id = $1", id.as_str())
            .await
    }

    async fn approvals(&self, state: ApprovalState, since: Timestamp) -> R<Vec<Approval>> {
        let rows = sqlx::query(
            "SELECT data FROM approvals WHERE state = $1 AND requested_at >= $2 \
             ORDER BY requested_at, id",
        )
        .bind(state.as_str())
        .bind(since.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        docs(&rows)
    }

    async fn put_session(
        &self,
        token_hash: &str,
        operator: &OperatorId,
        csrf: &str,
        expires: Timestamp,
        card: Option<&str>,
    ) -> R<()> {
        let _turn = self.turn().await;
        sqlx::query(
            "INSERT INTO sessions (token_hash, operator, csrf, expires, card_serial) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(operator.as_str())
        .bind(csrf)
        .bind(expires.0)
        .bind(card)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        self.wrote();
        Ok(())
    }

    async fn session(&self, token_hash: &str, now: Timestamp) -> R<Option<StoredSession>> {
        let row = sqlx::query(
            "SELECT operator, csrf, card_serial FROM sessions WHERE token_hash = $1 AND expires > $2",
        )
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        row.map(|r| {
            let operator: String = r.try_get("operator").map_err(backend_error)?;
            Ok(StoredSession {
                operator: OperatorId::new(operator),
                csrf: r.try_get("csrf").map_err(backend_error)?,
                card: r.try_get("card_serial").map_err(backend_error)?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> R<()> {
        let _turn = self.turn().await;
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        self.wrote();
        Ok(())
    }

    async fn device(&self, id: &DeviceId) -> R<Device> {
        self.one_doc("SELECT data FROM devices WHERE id = $1", id.as_str())
            .await
    }

    async fn devices_of_user(&self, uid: &UserId) -> R<Vec<Device>> {
        let rows =
            sqlx::query("SELECT data FROM devices WHERE user_id = $1 ORDER BY created_at DESC, id")
                .bind(uid.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(backend_error)?;
        docs(&rows)
    }

    async fn devices_with_serial(&self, serial: &str) -> R<Vec<Device>> {
        let rows =
            sqlx::query("SELECT data FROM devices WHERE serial = $1 ORDER BY created_at DESC, id")
                .bind(serial)
                .fetch_all(&self.pool)
                .await
                .map_err(backend_error)?;
        docs(&rows)
    }

    async fn device_secret(&self, device: &DeviceId, kind: &str) -> R<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT sealed FROM device_secrets WHERE device = $1 AND kind = $2")
            .bind(device.as_str())
            .bind(kind)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        row.map(|r| r.try_get("sealed").map_err(backend_error))
            .transpose()
    }

    async fn certificates_of_device(&self, device: &DeviceId) -> R<Vec<CertificateRecord>> {
        let rows = sqlx::query(
            "SELECT data, der, status, revocation_reason FROM certificates WHERE device = $1 \
             ORDER BY slot",
        )
        .bind(device.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter().map(certificate_of).collect()
    }

    async fn certificate(&self, serial: &str) -> R<Option<CertificateRecord>> {
        let row = sqlx::query(
            "SELECT data, der, status, revocation_reason FROM certificates WHERE serial = $1",
        )
        .bind(serial)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        row.as_ref().map(certificate_of).transpose()
    }

    async fn revoked_or_held(&self) -> R<Vec<CertificateState>> {
        let rows = sqlx::query(
            "SELECT serial, status, revocation_reason, status_changed_at FROM certificates \
             WHERE status = $1 OR status = $2 ORDER BY serial",
        )
        .bind(CertificateStatus::OnHold.as_str())
        .bind(CertificateStatus::Revoked.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter().map(state_of).collect()
    }

    async fn certificate_state(&self, serial: &str) -> R<Option<CertificateState>> {
        let row = sqlx::query(
            "SELECT serial, status, revocation_reason, status_changed_at FROM certificates \
             WHERE serial = $1",
        )
        .bind(serial)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        row.as_ref().map(state_of).transpose()
    }

    async fn commit(&self, changes: &Changes) -> R<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let _turn = self.turn().await;
        let mut tx = begin_write(&self.pool, self.backend).await?;
        // An error drops `tx`, which rolls the whole unit back.
        writes::apply_all(&mut tx, self.backend, &changes.list).await?;
        tx.commit().await.map_err(backend_error)?;
        self.wrote();
        Ok(())
    }

    async fn sign_in_record(&self, key: &str) -> R<Option<tessera_core::throttle::FailureRecord>> {
        crate::counters::sign_in_record(&self.pool, key).await
    }

    async fn sign_in_failed(&self, key: &str, now: i64) -> R<tessera_core::throttle::Failure> {
        crate::counters::sign_in_failed(&self.pool, self.backend, key, now).await
    }

    async fn sign_in_succeeded(&self, key: &str) -> R<()> {
        crate::counters::sign_in_succeeded(&self.pool, key).await
    }

    async fn renew_lease(&self, job: &JobId, owner: &str, expires_ms: i64) -> R<bool> {
        let _turn = self.turn().await;
        let done =
            sqlx::query("UPDATE jobs SET lease_expires = $3 WHERE id = $1 AND lease_owner = $2")
                .bind(job.as_str())
                .bind(owner)
                .bind(expires_ms)
                .execute(&self.pool)
                .await
                .map_err(backend_error)?;
        self.wrote();
        Ok(done.rows_affected() == 1)
    }

    async fn job_lease(&self, job: &JobId) -> R<Option<Lease>> {
        let row = sqlx::query("SELECT lease_owner, lease_expires FROM jobs WHERE id = $1")
            .bind(job.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?
            .ok_or(StoreError::NotFound)?;
        let owner: Option<String> = row.try_get("lease_owner").map_err(backend_error)?;
        let expires: Option<i64> = row.try_get("lease_expires").map_err(backend_error)?;
        Ok(owner.map(|owner| Lease {
            owner,
            expires_ms: expires.unwrap_or(0),
        }))
    }

    async fn claim_abandoned_jobs(
        &self,
        steps: &[JobStep],
        owner: &str,
        now_ms: i64,
        expires_ms: i64,
        limit: u32,
    ) -> R<Vec<IssuanceJob>> {
        let _turn = self.turn().await;
        let mut tx = begin_write(&self.pool, self.backend).await?;
        let mut claimed = Vec::new();
        for step in steps {
            // SQLite's write lock already serialises this; PostgreSQL skips the rows that
            // another replica is taking over right now instead of waiting for them.
            let sql = format!(
                "SELECT id, data FROM jobs WHERE step = $1 AND \
                 (lease_owner IS NULL OR lease_expires < $2) ORDER BY id LIMIT $3{}",
                match self.backend {
                    Backend::Postgres => " FOR UPDATE SKIP LOCKED",
                    Backend::Sqlite => "",
                }
            );
            let rows = sqlx::query(&sql)
                .bind(step.as_str())
                .bind(now_ms)
                .bind(limit as i64)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend_error)?;
            for row in rows {
                let id: String = row.try_get("id").map_err(backend_error)?;
                sqlx::query(
                    "UPDATE jobs SET lease_owner = $2, lease_expires = $3, handover = NULL \
                     WHERE id = $1",
                )
                .bind(&id)
                .bind(owner)
                .bind(expires_ms)
                .execute(&mut *tx)
                .await
                .map_err(backend_error)?;
                claimed.push(doc(&row)?);
            }
        }
        tx.commit().await.map_err(backend_error)?;
        self.wrote();
        Ok(claimed)
    }

    async fn claim_queued_jobs(
        &self,
        queues: &[String],
        owner: &str,
        now_ms: i64,
        expires_ms: i64,
        limit: u32,
    ) -> R<Vec<QueuedJob>> {
        crate::cluster::claim_queued(
            &self.pool,
            self.backend,
            queues,
            owner,
            now_ms,
            expires_ms,
            limit,
        )
        .await
    }

    async fn put_presence(&self, presence: &StationPresence) -> R<()> {
        crate::cluster::put_presence(&self.pool, presence).await
    }

    async fn clear_presence(&self, station: &StationId, replica: &str, generation: u64) -> R<()> {
        crate::cluster::clear_presence(&self.pool, station, replica, generation).await
    }

    async fn presence(&self, station: &StationId) -> R<Option<StationPresence>> {
        crate::cluster::presence(&self.pool, station).await
    }

    async fn installation(&self) -> R<Option<Installation>> {
        let row = sqlx::query("SELECT data FROM installation WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        row.as_ref().map(doc).transpose()
    }

    async fn stock_card(&self, serial: &str) -> R<Option<StockCard>> {
        let sql = format!("SELECT {STOCK_COLUMNS} FROM stock_cards WHERE serial = $1");
        sqlx::query(&sql)
            .bind(serial)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?
            .as_ref()
            .map(stock_card_of)
            .transpose()
    }

    async fn stock_cards(&self, filter: &StockFilter) -> R<Vec<StockCard>> {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        for (column, value) in [
            ("model", filter.model.clone()),
            ("state", filter.state.map(|s| s.as_str().to_owned())),
            ("location", filter.location.as_ref().map(|l| l.0.clone())),
        ] {
            if let Some(value) = value {
                values.push(value);
                conditions.push(format!("{column} = ${}", values.len()));
            }
        }
        let mut sql = format!("SELECT {STOCK_COLUMNS} FROM stock_cards");
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(" ORDER BY serial");
        if filter.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", filter.limit));
        }
        let mut query = sqlx::query(&sql);
        for value in values {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(backend_error)?;
        rows.iter().map(stock_card_of).collect()
    }

    async fn stock_counts(&self) -> R<Vec<StockCount>> {
        let rows = sqlx::query(
            "SELECT model, location, state, COUNT(*) AS n FROM stock_cards \
             GROUP BY model, location, state ORDER BY model, location, state",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("state").map_err(backend_error)?;
                Ok(StockCount {
                    model: row.try_get("model").map_err(backend_error)?,
                    location: row
                        .try_get::<Option<String>, _>("location")
                        .map_err(backend_error)?
                        .map(StationId),
                    state: StockState::parse(&state).ok_or_else(|| {
                        StoreError::Backend(format!("unknown stock state {state}"))
                    })?,
                    count: row.try_get::<i64, _>("n").map_err(backend_error)? as u64,
                })
            })
            .collect()
    }

    async fn job(&self, id: &JobId) -> R<IssuanceJob> {
        self.one_doc("SELECT data FROM jobs WHERE id = $1", id.as_str())
            .await
    }

    async fn jobs_in_step(&self, step: JobStep) -> R<Vec<IssuanceJob>> {
        let rows = sqlx::query("SELECT data FROM jobs WHERE step = $1 ORDER BY id")
            .bind(step.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        docs(&rows)
    }

    async fn open_jobs(&self) -> R<Vec<IssuanceJob>> {
        let sql = format!(
            "SELECT data FROM jobs WHERE {} ORDER BY id",
            crate::open_jobs::open_steps_sql()
        );
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        let mut jobs: Vec<IssuanceJob> = docs(&rows)?;
        jobs.sort_by_key(|j| j.created_at);
        Ok(jobs)
    }

    async fn prints_of_device(&self, device: &DeviceId) -> R<Vec<PrintRecord>> {
        let rows =
            sqlx::query("SELECT data FROM prints WHERE device = $1 ORDER BY created_at DESC, id")
                .bind(device.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(backend_error)?;
        docs(&rows)
    }

    async fn audit_events(&self, before_seq: Option<i64>, limit: u32) -> R<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT seq, at, code, name, operator, user_id, device, operation, details, \
             prev_hash, hash FROM audit WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter().map(audit_of).collect()
    }
}

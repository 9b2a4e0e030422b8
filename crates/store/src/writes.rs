//! Every write of the store, on one connection inside a transaction: the single-write methods of
//! `SqlStore` and [`apply`], which commits a whole unit of work, share these functions.
//!
//! A conditional update that finds nothing to change answers [`StoreError::Stale`] (or
//! `NotFound` when the row does not exist at all), and the caller's transaction is then rolled
//! back, so a unit of work is never half-written.

use crate::backend::{backend_error, Backend};
use crate::user_conditions;
use crate::user_index;
use serde::Serialize;
use sqlx::{AnyConnection, Row};
use tessera_core::approvals::{Approval, ApprovalState};
use tessera_core::audit;
use tessera_core::changes::{Change, Lease, LeaseChange, UserWas};
use tessera_core::ids::*;
use tessera_core::lifecycle::DeviceState;
use tessera_core::model::*;
use tessera_core::ports::{NewAuditEvent, StoreError};

type R<T> = Result<T, StoreError>;

pub(crate) fn to_json<T: Serialize>(value: &T) -> R<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

pub(crate) async fn put_photo(c: &mut AnyConnection, uid: &UserId, photo: &[u8]) -> R<()> {
    sqlx::query(
        "INSERT INTO photos (uid, photo) VALUES ($1, $2) \
         ON CONFLICT (uid) DO UPDATE SET photo = excluded.photo",
    )
    .bind(uid.as_str())
    .bind(photo.to_vec())
    .execute(c)
    .await
    .map_err(backend_error)?;
    Ok(())
}

/// Applies a unit of work's changes in order. Consecutive users are written in batches; the
/// audit events are appended last, together, in their order ([`append_audits`]): they commit
/// with the rest or not at all, so where in the transaction they are written changes nothing
/// but how long the chain's head is held.
pub(crate) async fn apply_all(
    c: &mut AnyConnection,
    backend: Backend,
    changes: &[Change],
) -> R<()> {
    let mut users: Vec<(&User, &UserWas)> = Vec::new();
    let mut events: Vec<&NewAuditEvent> = Vec::new();
    for change in changes {
        match change {
            Change::PutUser { user, was } => {
                users.push((user, was));
                continue;
            }
            Change::Audit(e) => {
                events.push(e);
                continue;
            }
            _ => {}
        }
        put_users(c, backend, &users).await?;
        users.clear();
        apply(c, backend, change).await?;
    }
    put_users(c, backend, &users).await?;
    append_audits(c, backend, &events).await
}

/// Writes people, each only while stored as its condition says.
async fn put_users(c: &mut AnyConnection, backend: Backend, users: &[(&User, &UserWas)]) -> R<()> {
    for run in user_index::batches(users) {
        for chunk in run.chunks(user_index::BATCH) {
            user_conditions::check(c, backend, chunk).await?;
            let people: Vec<&User> = chunk.iter().map(|(u, _)| *u).collect();
            let new: Vec<&str> = chunk
                .iter()
                .filter(|(_, was)| matches!(was, UserWas::New))
                .map(|(u, _)| u.uid.as_str())
                .collect();
            user_index::put_users(c, backend, &people, &new).await?;
        }
    }
    Ok(())
}

/// Applies one change of a unit of work.
pub(crate) async fn apply(c: &mut AnyConnection, backend: Backend, change: &Change) -> R<()> {
    match change {
        Change::PutUser { user, was } => put_users(c, backend, &[(user, was)]).await,
        Change::DeleteUser { was, cards } => {
            user_conditions::check_delete(c, backend, was, cards).await?;
            user_index::delete_user(c, backend, &was.uid).await
        }
        Change::PutPhoto { uid, photo } => put_photo(c, uid, photo).await,
        Change::DeletePhoto(uid) => {
            sqlx::query("DELETE FROM photos WHERE uid = $1")
                .bind(uid.as_str())
                .execute(c)
                .await
                .map_err(backend_error)?;
            Ok(())
        }
        Change::PutFingerprints {
            uid,
            fingerprints,
            at,
        } => crate::biometrics::put(c, backend, uid, fingerprints, *at).await,
        Change::DeleteFingerprints(uid) => crate::biometrics::delete(c, uid).await,
        Change::InsertDevice(d) => {
            if let Some(holder) = &d.user {
                user_conditions::check_holder(c, backend, holder.as_str()).await?;
            }
            insert_device(c, d).await
        }
        Change::UpdateDevice { device, expected } => {
            update_device(c, device, Some(*expected)).await
        }
        Change::InsertCertificate(cert) => insert_certificate(c, cert).await,
        Change::SetCertificateStatus {
            serial,
            expected,
            status,
            reason,
            at,
        } => {
            set_certificate_status(c, serial, Some(*expected), *status, reason.as_deref(), *at)
                .await
        }
        Change::PutDeviceSecret {
            device,
            kind,
            sealed,
        } => put_device_secret(c, device, kind, sealed).await,
        Change::DeleteDeviceSecret { device, kind } => {
            delete_device_secret(c, device, kind).await.map(|_| ())
        }
        Change::TakeDeviceSecret { device, kind } => {
            match delete_device_secret(c, device, kind).await? {
                1 => Ok(()),
                _ => Err(stale(format!("the {kind} of device {device}"))),
            }
        }
        Change::InsertJob { job, lease } => insert_job(c, job, lease.as_ref()).await,
        Change::UpdateJob {
            job,
            expected,
            lease,
        } => update_job(c, job, *expected, lease).await,
        Change::InsertPrint(p) => insert_print(c, p).await,
        Change::PutLayout(l) => put_doc(c, "layouts", l.id.as_str(), &l.name, to_json(l)?).await,
        Change::PutPolicy(p) => put_doc(c, "policies", p.id.as_str(), &p.name, to_json(p)?).await,
        Change::PutStation(s) => put_doc(c, "stations", s.id.as_str(), &s.name, to_json(s)?).await,
        Change::PutSettings(s) => put_settings(c, s).await,
        Change::PutPairing(p) => put_pairing(c, p).await,
        Change::PutOperator(o) => put_operator(c, o).await,
        Change::UpdateOperator(o) => {
            let done = sqlx::query(
                "UPDATE operators SET data = $1, revision = revision + 1 \
                 WHERE id = $2 AND revision = $3",
            )
            .bind(to_json(o)?)
            .bind(o.id.as_str())
            .bind(o.revision)
            .execute(c)
            .await
            .map_err(backend_error)?;
            if done.rows_affected() == 1 {
                Ok(())
            } else {
                Err(stale(format!("operator {}", o.id)))
            }
        }
        Change::DeleteOperator(id) => {
            execute(c, "DELETE FROM sessions WHERE operator = $1", id.as_str()).await?;
            execute(c, "DELETE FROM operators WHERE id = $1", id.as_str()).await
        }
        Change::DeleteOtherSessions { operator, keep } => {
            sqlx::query("DELETE FROM sessions WHERE operator = $1 AND token_hash <> $2")
                .bind(operator.as_str())
                .bind(keep)
                .execute(c)
                .await
                .map_err(backend_error)?;
            Ok(())
        }
        Change::DeleteSessionsOf(id) => {
            execute(c, "DELETE FROM sessions WHERE operator = $1", id.as_str()).await
        }
        Change::PutRole(role) => {
            sqlx::query(
                "INSERT INTO roles (id, data) VALUES ($1, $2) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            )
            .bind(role.id.as_str())
            .bind(to_json(role)?)
            .execute(c)
            .await
            .map_err(backend_error)?;
            Ok(())
        }
        Change::DeleteRole(id) => execute(c, "DELETE FROM roles WHERE id = $1", id.as_str()).await,
        Change::PutStockCard { card, expected } => put_stock_card(c, card, *expected).await,
        Change::PutApproval { approval, expected } => put_approval(c, approval, *expected).await,
        Change::InsertInstallation(i) => {
            sqlx::query("INSERT INTO installation (id, data) VALUES (1, $1)")
                .bind(to_json(i)?)
                .execute(c)
                .await
                .map_err(backend_error)?;
            Ok(())
        }
        Change::Audit(e) => append_audits(c, backend, &[e]).await,
        Change::AuditRefusal { event, per_minute } => {
            crate::counters::audit_refusal(c, backend, event, *per_minute).await
        }
        Change::SummariseRefusals { now } => {
            crate::counters::summarise_refusals(c, backend, *now).await
        }
    }
}

fn stale(what: String) -> StoreError {
    StoreError::Stale(what)
}

/// Upserts a JSON document keyed by `id` in one of the simple document tables.
pub(crate) async fn put_doc(
    c: &mut AnyConnection,
    table: &str,
    id: &str,
    name: &str,
    data: String,
) -> R<()> {
    let sql = format!(
        "INSERT INTO {table} (id, name, data) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, data = excluded.data"
    );
    sqlx::query(&sql)
        .bind(id)
        .bind(name)
        .bind(data)
        .execute(c)
        .await
        .map_err(backend_error)?;
    Ok(())
}

pub(crate) async fn put_settings(c: &mut AnyConnection, settings: &Settings) -> R<()> {
    sqlx::query(
        "INSERT INTO settings (id, data) VALUES (1, $1) \
         ON CONFLICT (id) DO UPDATE SET data = excluded.data",
    )
    .bind(to_json(settings)?)
    .execute(c)
    .await
    .map_err(backend_error)?;
    Ok(())
}

pub(crate) async fn put_pairing(c: &mut AnyConnection, p: &PrinterPairing) -> R<()> {
    sqlx::query(
        "INSERT INTO pairings (operator, station, printer, reader) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (operator, station) DO UPDATE SET printer = excluded.printer, \
         reader = excluded.reader",
    )
    .bind(p.operator.as_str())
    .bind(p.station.as_str())
    .bind(&p.printer)
    .bind(&p.reader)
    .execute(c)
    .await
    .map_err(backend_error)?;
    Ok(())
}

/// One statement with one text parameter.
async fn execute(c: &mut AnyConnection, sql: &str, value: &str) -> R<()> {
    sqlx::query(sql)
        .bind(value)
        .execute(c)
        .await
        .map_err(backend_error)?;
    Ok(())
}

pub(crate) async fn put_operator(c: &mut AnyConnection, operator: &Operator) -> R<()> {
    sqlx::query(
        "INSERT INTO operators (id, data) VALUES ($1, $2) \
         ON CONFLICT (id) DO UPDATE SET data = excluded.data, revision = operators.revision + 1",
    )
    .bind(operator.id.as_str())
    .bind(to_json(operator)?)
    .execute(c)
    .await
    .map_err(backend_error)?;
    Ok(())
}

pub(crate) async fn insert_device(c: &mut AnyConnection, d: &Device) -> R<()> {
    sqlx::query(
        "INSERT INTO devices (id, user_id, state, created_at, data, serial) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(d.id.as_str())
    .bind(d.user.as_ref().map(|u| u.0.clone()))
    .bind(d.state.as_str())
    .bind(d.created_at.0)
    .bind(to_json(d)?)
    .bind(d.serial.as_str())
    .execute(c)
    .await
    .map_err(backend_error)?;
    Ok(())
}

/// Updates a device; with `expected`, only while its stored state is that one.
pub(crate) async fn update_device(
    c: &mut AnyConnection,
    d: &Device,
    expected: Option<DeviceState>,
) -> R<()> {
    let sql = match expected {
        Some(_) => {
            "UPDATE devices SET user_id = $2, state = $3, data = $4, serial = $5 \
             WHERE id = $1 AND state = $6"
        }
        None => "UPDATE devices SET user_id = $2, state = $3, data = $4, serial = $5 WHERE id = $1",
    };
    let mut query = sqlx::query(sql)
        .bind(d.id.as_str())
        .bind(d.user.as_ref().map(|u| u.0.clone()))
        .bind(d.state.as_str())
        .bind(to_json(d)?)
        .bind(d.serial.as_str());
    if let Some(e) = expected {
        query = query.bind(e.as_str());
    }
    let done = query.execute(&mut *c).await.map_err(backend_error)?;
    if done.rows_affected() == 0 {
        return Err(
            match (expected, exists(c, "devices", "id", d.id.as_str()).await?) {
                (Some(e), true) => stale(format!("the card (device {}, expected {e})", d.id)),
                _ => StoreError::NotFound,
            },
        );
    }
    Ok(())
}

async fn exists(c: &mut AnyConnection, table: &str, key: &str, value: &str) -> R<bool> {
    let sql = format!("SELECT 1 AS one FROM {table} WHERE {key} = $1");
    Ok(sqlx::query(&sql)
        .bind(value)
        .fetch_optional(c)
        .await
        .map_err(backend_error)?
        .is_some())
}

pub(crate) async fn put_device_secret(
    c: &mut AnyConnection,
    device: &DeviceId,
    kind: &str,
    sealed: &[u8],
) -> R<()> {
    sqlx::query(
        "INSERT INTO device_secrets (device, kind, sealed) VALUES ($1, $2, $3) \
         ON CONFLICT (device, kind) DO UPDATE SET sealed = excluded.sealed",
    )
    .bind(device.as_str())
    .bind(kind)
    .bind(sealed.to_vec())
    .execute(c)
    .await
    .map_err(backend_error)?;
    Ok(())
}

pub(crate) async fn delete_device_secret(
    c: &mut AnyConnection,
    device: &DeviceId,
    kind: &str,
) -> R<u64> {
    let done = sqlx::query("DELETE FROM device_secrets WHERE device = $1 AND kind = $2")
        .bind(device.as_str())
        .bind(kind)
        .execute(c)
        .await
        .map_err(backend_error)?;
    Ok(done.rows_affected())
}

pub(crate) async fn insert_certificate(c: &mut AnyConnection, cert: &CertificateRecord) -> R<()> {
    let mut meta = cert.clone();
    meta.der = Vec::new(); // the DER lives in its own column
    sqlx::query(
        "INSERT INTO certificates (serial, device, user_id, slot, status, revocation_reason, \
         status_changed_at, data, der) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&cert.serial)
    .bind(cert.device.as_str())
    .bind(cert.user.as_str())
    .bind(cert.slot.code())
    .bind(cert.status.as_str())
    .bind(cert.revocation_reason.clone())
    .bind(cert.not_before.0)
    .bind(to_json(&meta)?)
    .bind(cert.der.clone())
    .execute(c)
    .await
    .map_err(backend_error)?;
    Ok(())
}

/// Sets a certificate's status; with `expected`, only while its stored status is that one.
pub(crate) async fn set_certificate_status(
    c: &mut AnyConnection,
    serial: &str,
    expected: Option<CertificateStatus>,
    status: CertificateStatus,
    reason: Option<&str>,
    at: Timestamp,
) -> R<()> {
    let sql = match expected {
        Some(_) => {
            "UPDATE certificates SET status = $2, revocation_reason = $3, status_changed_at = $4 \
             WHERE serial = $1 AND status = $5"
        }
        None => {
            "UPDATE certificates SET status = $2, revocation_reason = $3, status_changed_at = $4 \
             WHERE serial = $1"
        }
    };
    let mut query = sqlx::query(sql)
        .bind(serial)
        .bind(status.as_str())
        .bind(reason.map(str::to_owned))
        .bind(at.0);
    if let Some(e) = expected {
        query = query.bind(e.as_str());
    }
    let done = query.execute(&mut *c).await.map_err(backend_error)?;
    if done.rows_affected() == 0 {
        return Err(
            match (expected, exists(c, "certificates", "serial", serial).await?) {
                (Some(e), true) => stale(format!("the certificate {serial} (expected {e:?})")),
                _ => StoreError::NotFound,
            },
        );
    }
    Ok(())
}

pub(crate) async fn insert_job(
    c: &mut AnyConnection,
    job: &IssuanceJob,
    lease: Option<&Lease>,
) -> R<()> {
    let (open_user, open_printer) = crate::open_jobs::keys(job);
    sqlx::query(
        "INSERT INTO jobs (id, step, data, lease_owner, lease_expires, open_user, open_printer) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(job.id.as_str())
    .bind(job.step.as_str())
    .bind(to_json(job)?)
    .bind(lease.map(|l| l.owner.clone()))
    .bind(lease.map(|l| l.expires_ms))
    .bind(open_user)
    .bind(open_printer)
    .execute(c)
    .await
    .map_err(backend_error)?;
    Ok(())
}

/// Updates a job while it is in step `expected` and its lease is as `lease` says.
pub(crate) async fn update_job(
    c: &mut AnyConnection,
    job: &IssuanceJob,
    expected: JobStep,
    lease: &LeaseChange,
) -> R<()> {
    // $1 id, $2 step, $3 data, $4 the expected step, $5 and $6 the open keys; the lease's own
    // parameters follow.
    // Only a queued job keeps a handover (see `cluster`): every other lease change clears it.
    let (set, condition) = match lease {
        LeaseChange::Hold { .. } => ("lease_expires = $8, handover = NULL", "lease_owner = $7"),
        LeaseChange::Release { .. } => (
            "lease_owner = NULL, lease_expires = NULL, handover = NULL",
            "lease_owner = $7",
        ),
        LeaseChange::Unleased { .. } => (
            "lease_owner = NULL, lease_expires = NULL, handover = NULL",
            "(lease_owner IS NULL OR lease_expires < $7)",
        ),
        LeaseChange::Claim { .. } => (
            "lease_owner = $8, lease_expires = $9, handover = NULL",
            "(lease_owner IS NULL OR lease_expires < $7)",
        ),
        LeaseChange::Queue { .. } => (
            "lease_owner = $8, lease_expires = $9, handover = $10",
            "(lease_owner IS NULL OR lease_expires < $7)",
        ),
    };
    // A key is cleared when the job finishes, and follows the printer of a Retry print; a job
    // that an older release left overlapping another (NULL key, see `open_jobs`) never gets one.
    let sql = format!(
        "UPDATE jobs SET step = $2, data = $3, \
         open_user = CASE WHEN open_user IS NULL THEN NULL ELSE CAST($5 AS TEXT) END, \
         open_printer = CASE WHEN open_printer IS NULL THEN NULL ELSE CAST($6 AS TEXT) END, \
         {set} WHERE id = $1 AND step = $4 AND {condition}"
    );
    let (open_user, open_printer) = crate::open_jobs::keys(job);
    let query = sqlx::query(&sql)
        .bind(job.id.as_str())
        .bind(job.step.as_str())
        .bind(to_json(job)?)
        .bind(expected.as_str())
        .bind(open_user)
        .bind(open_printer);
    let query = match lease {
        LeaseChange::Hold { owner, expires_ms } => query.bind(owner.clone()).bind(*expires_ms),
        LeaseChange::Release { owner } => query.bind(owner.clone()),
        LeaseChange::Unleased { now_ms } => query.bind(*now_ms),
        LeaseChange::Claim {
            owner,
            now_ms,
            expires_ms,
        } => query.bind(*now_ms).bind(owner.clone()).bind(*expires_ms),
        LeaseChange::Queue {
            queue,
            now_ms,
            expires_ms,
            handover,
        } => query
            .bind(*now_ms)
            .bind(queue.clone())
            .bind(*expires_ms)
            .bind(handover.clone()),
    };
    let done = query.execute(&mut *c).await.map_err(backend_error)?;
    if done.rows_affected() == 0 {
        return Err(if exists(c, "jobs", "id", job.id.as_str()).await? {
            stale(format!(
                "the issuance {} (expected step {}, {})",
                job.id,
                expected.as_str(),
                match lease {
                    LeaseChange::Hold { .. } | LeaseChange::Release { .. } => "held by this runner",
                    _ => "with no live lease",
                }
            ))
        } else {
            StoreError::NotFound
        });
    }
    Ok(())
}

/// Inserts a new stock card (`expected` None: a serial already there is a `Conflict`), or
/// updates one while its stored state is `expected`.
pub(crate) async fn put_stock_card(
    c: &mut AnyConnection,
    card: &StockCard,
    expected: Option<StockState>,
) -> R<()> {
    let sql = match expected {
        None => {
            "INSERT INTO stock_cards (serial, model, batch, state, location, imported_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        }
        Some(_) => {
            "UPDATE stock_cards SET model = $2, batch = $3, state = $4, location = $5, \
             imported_at = $6, updated_at = $7 WHERE serial = $1 AND state = $8"
        }
    };
    let mut query = sqlx::query(sql)
        .bind(&card.serial)
        .bind(&card.model)
        .bind(&card.batch)
        .bind(card.state.as_str())
        .bind(card.location.as_ref().map(|l| l.0.clone()))
        .bind(card.imported_at.0)
        .bind(card.updated_at.0);
    if let Some(e) = expected {
        query = query.bind(e.as_str());
    }
    let done = query.execute(&mut *c).await.map_err(backend_error)?;
    if done.rows_affected() == 0 {
        return Err(
            match (
                expected,
                exists(c, "stock_cards", "serial", &card.serial).await?,
            ) {
                (Some(e), true) => stale(format!(
                    "the stock card {} (expected {})",
                    card.serial,
                    e.as_str()
                )),
                _ => StoreError::NotFound,
            },
        );
    }
    Ok(())
}

/// Inserts a new request (`expected` None; an id already there is a `Conflict`), or updates one
/// while its stored state is `expected`.
pub(crate) async fn put_approval(
    c: &mut AnyConnection,
    approval: &Approval,
    expected: Option<ApprovalState>,
) -> R<()> {
    let sql = match expected {
        None => "INSERT INTO approvals (id, state, requested_at, data) VALUES ($1, $2, $3, $4)",
        Some(_) => {
            "UPDATE approvals SET state = $2, requested_at = $3, data = $4 \
             WHERE id = $1 AND state = $5"
        }
    };
    let mut query = sqlx::query(sql)
        .bind(approval.id.as_str())
        .bind(approval.state.as_str())
        .bind(approval.requested_at.0)
        .bind(to_json(approval)?);
    if let Some(e) = expected {
        query = query.bind(e.as_str());
    }
    let done = query.execute(&mut *c).await.map_err(backend_error)?;
    if done.rows_affected() == 0 {
        return Err(
            match (
                expected,
                exists(c, "approvals", "id", approval.id.as_str()).await?,
            ) {
                (Some(e), true) => stale(format!(
                    "the request {} (expected {})",
                    approval.id,
                    e.as_str()
                )),
                _ => StoreError::NotFound,
            },
        );
    }
    Ok(())
}

pub(crate) async fn insert_print(c: &mut AnyConnection, record: &PrintRecord) -> R<()> {
    sqlx::query("INSERT INTO prints (id, device, created_at, data) VALUES ($1, $2, $3, $4)")
        .bind(&record.id)
        .bind(record.device.as_str())
        .bind(record.created_at.0)
        .bind(to_json(record)?)
        .execute(c)
        .await
        .map_err(backend_error)?;
    Ok(())
}

/// Events a single `INSERT` appends (11 parameters each; SQLite allows 32,766 in a statement).
const AUDIT_BATCH: usize = 64;

/// Appends a unit of work's events to the hash chain, in the order given. The head row is
/// taken once for all of them (its `UPDATE` moves the sequence past the whole batch and locks
/// the row until the transaction ends), so appends from any process or replica chain one after
/// the other; the rows then go in with one `INSERT` per [`AUDIT_BATCH`] events, and the head gets
/// the last hash. A unit's events are the last thing it writes (see [`apply_all`]): the head is
/// held only from there to the commit, not while the unit's other rows are written.
pub(crate) async fn append_audits(
    c: &mut AnyConnection,
    backend: Backend,
    events: &[&NewAuditEvent],
) -> R<()> {
    if events.is_empty() {
        return Ok(());
    }
    let head = sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
        .bind(events.len() as i64)
        .fetch_one(&mut *c)
        .await
        .map_err(backend_error)?;
    let last: i64 = head.try_get("seq").map_err(backend_error)?;
    let mut prev_hash: String = head.try_get("hash").map_err(backend_error)?;
    let first = last - events.len() as i64 + 1;
    let mut rows = Vec::with_capacity(events.len());
    for (seq, e) in (first..).zip(events) {
        let hash = audit::chain_hash(&prev_hash, &audit::canonical(seq, e));
        rows.push((
            seq,
            *e,
            std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
        ));
    }
    for chunk in rows.chunks(AUDIT_BATCH) {
        let sql = format!(
            "INSERT INTO audit (seq, at, code, name, operator, user_id, device, operation, \
             details, prev_hash, hash) VALUES {}",
            user_index::placeholders(backend, chunk.len(), 11)
        );
        let mut query = sqlx::query(&sql);
        for (seq, e, prev, hash) in chunk {
            query = query
                .bind(*seq)
                .bind(e.at.0)
                .bind(e.code as i64)
                .bind(e.name)
                .bind(e.operator.as_ref().map(|x| x.0.clone()))
                .bind(e.user.as_ref().map(|x| x.0.clone()))
                .bind(e.device.as_ref().map(|x| x.0.clone()))
                .bind(e.operation.as_ref().map(|x| x.0.clone()))
                .bind(e.details.to_string())
                .bind(prev.clone())
                .bind(hash.clone());
        }
        query.execute(&mut *c).await.map_err(backend_error)?;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev_hash)
        .execute(&mut *c)
        .await
        .map_err(backend_error)?;
    Ok(())
}

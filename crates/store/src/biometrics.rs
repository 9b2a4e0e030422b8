//! A person's biometric enrolment data: the fingerprints record (INCITS 378) an enrolment system
//! supplied, or the synthetic one a demo person gets, one row per person. The person's record
//! refers to nothing here; the row goes with the person (`user_index::delete_user`).

use crate::backend::{backend_error, Backend};
use crate::user_conditions;
use sqlx::{AnyConnection, Executor, Row};
use tessera_core::fips201::Fingerprints;
use tessera_core::ids::UserId;
use tessera_core::model::Timestamp;
use tessera_core::ports::StoreError;

type R<T> = Result<T, StoreError>;

/// Schema version 11: the fingerprints table.
pub(crate) async fn migrate(tx: &mut AnyConnection, backend: Backend) -> R<()> {
    let blob = match backend {
        Backend::Sqlite => "BLOB",
        Backend::Postgres => "BYTEA",
    };
    tx.execute(
        format!(
            "CREATE TABLE IF NOT EXISTS fingerprints (uid TEXT PRIMARY KEY REFERENCES users (uid), \
             record {blob} NOT NULL, synthetic BIGINT NOT NULL, enrolled_at BIGINT NOT NULL)"
        )
        .as_str(),
    )
    .await
    .map_err(backend_error)?;
    Ok(())
}

/// Writes `uid`'s fingerprints, replacing theirs; stale when the person does not exist.
pub(crate) async fn put(
    c: &mut AnyConnection,
    backend: Backend,
    uid: &UserId,
    fingerprints: &Fingerprints,
    at: Timestamp,
) -> R<()> {
    user_conditions::check_holder(c, backend, uid.as_str()).await?;
    sqlx::query(
        "INSERT INTO fingerprints (uid, record, synthetic, enrolled_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (uid) DO UPDATE SET record = excluded.record, \
         synthetic = excluded.synthetic, enrolled_at = excluded.enrolled_at",
    )
    .bind(uid.as_str())
    .bind(fingerprints.incits_378.clone())
    .bind(i64::from(fingerprints.synthetic))
    .bind(at.0)
    .execute(c)
    .await
    .map_err(backend_error)?;
    Ok(())
}

pub(crate) async fn delete(c: &mut AnyConnection, uid: &UserId) -> R<()> {
    sqlx::query("DELETE FROM fingerprints WHERE uid = $1")
        .bind(uid.as_str())
        .execute(c)
        .await
        .map_err(backend_error)?;
    Ok(())
}

pub(crate) async fn read(pool: &sqlx::AnyPool, uid: &UserId) -> R<Option<Fingerprints>> {
    let row = sqlx::query("SELECT record, synthetic FROM fingerprints WHERE uid = $1")
        .bind(uid.as_str())
        .fetch_optional(pool)
        .await
        .map_err(backend_error)?;
    row.map(|r| {
        Ok(Fingerprints {
            incits_378: r.try_get("record").map_err(backend_error)?,
            synthetic: r.try_get::<i64, _>("synthetic").map_err(backend_error)? != 0,
        })
    })
    .transpose()
}

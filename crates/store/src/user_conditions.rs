//! The conditions of person writes ([`UserWas`]): a person is written only while their stored
//! record is the one the use case read and decided from, or, for a new person, while nobody
//! has taken the uid. Otherwise the unit of work fails with [`StoreError::Stale`] and nothing of
//! it is written: an edit, an import and a sync that overlap cannot overwrite each other.
//!
//! On SQLite a unit of work is a `BEGIN IMMEDIATE` transaction, so nobody writes between the
//! check and the write. On PostgreSQL (read committed) the stored records are read `FOR UPDATE`,
//! which waits for, and then sees, a concurrent writer's commit; a new person whose uid someone
//! inserted after the check is caught by the insert itself (see `user_index::put_chunk`).

use crate::backend::{backend_error, Backend};
use crate::user_index::uid_list;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;
use tessera_core::changes::UserWas;
use tessera_core::ids::DeviceId;
use tessera_core::lifecycle::DeviceState;
use tessera_core::model::User;
use tessera_core::ports::StoreError;

type R<T> = Result<T, StoreError>;

/// `FOR UPDATE` where the backend needs it to hold the rows until the commit.
fn locking(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE",
    }
}

/// The stored records of `uids`, by uid.
async fn stored(
    c: &mut AnyConnection,
    backend: Backend,
    uids: &[&str],
) -> R<HashMap<String, User>> {
    let mut found = HashMap::new();
    // Well under both backends' parameter limits.
    for chunk in uids.chunks(1_000) {
        let sql = format!(
            "SELECT uid, data FROM users WHERE uid IN ({}){}",
            uid_list(backend, chunk.len()),
            locking(backend)
        );
        let mut q = sqlx::query(&sql);
        for uid in chunk {
            q = q.bind(*uid);
        }
        for row in q.fetch_all(&mut *c).await.map_err(backend_error)? {
            let uid: String = row.try_get("uid").map_err(backend_error)?;
            let data: String = row.try_get("data").map_err(backend_error)?;
            let user: User = serde_json::from_str(&data)
                .map_err(|e| StoreError::Backend(format!("corrupt record of {uid}: {e}")))?;
            found.insert(uid, user);
        }
    }
    Ok(found)
}

/// Checks that every person of `writes` is stored as its condition says.
pub(crate) async fn check(
    c: &mut AnyConnection,
    backend: Backend,
    writes: &[(&User, &UserWas)],
) -> R<()> {
    if writes.is_empty() {
        return Ok(());
    }
    let uids: Vec<&str> = writes.iter().map(|(u, _)| u.uid.as_str()).collect();
    let found = stored(c, backend, &uids).await?;
    for (user, was) in writes {
        let now = found.get(user.uid.as_str());
        match (was, now) {
            (UserWas::New, None) => {}
            (UserWas::Stored(read), Some(now)) if **read == *now => {}
            (UserWas::New, Some(_)) => {
                return Err(StoreError::Stale(format!(
                    "the uid {} (someone created a person with it)",
                    user.uid
                )))
            }
            (UserWas::Stored(read), _) => {
                return Err(StoreError::Stale(format!(
                    "the record of {} ({})",
                    read.display_name, read.uid
                )))
            }
        }
    }
    Ok(())
}

/// Checks, before a person is deleted, that their record is still `was` and their cards still
/// exactly `cards`.
pub(crate) async fn check_delete(
    c: &mut AnyConnection,
    backend: Backend,
    was: &User,
    cards: &[(DeviceId, DeviceState)],
) -> R<()> {
    let found = stored(c, backend, &[was.uid.as_str()]).await?;
    match found.get(was.uid.as_str()) {
        None => return Err(StoreError::NotFound),
        Some(now) if now != was => {
            return Err(StoreError::Stale(format!(
                "the record of {} ({})",
                was.display_name, was.uid
            )))
        }
        Some(_) => {}
    }
    let rows = sqlx::query("SELECT id, state FROM devices WHERE user_id = $1")
        .bind(was.uid.as_str())
        .fetch_all(&mut *c)
        .await
        .map_err(backend_error)?;
    let mut now: Vec<(String, String)> = rows
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("state")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(backend_error)?;
    let mut read: Vec<(String, String)> = cards
        .iter()
        .map(|(id, state)| (id.as_str().to_owned(), state.as_str().to_owned()))
        .collect();
    now.sort();
    read.sort();
    if now != read {
        return Err(StoreError::Stale(format!(
            "the cards of {} ({})",
            was.display_name, was.uid
        )));
    }
    Ok(())
}

/// Checks, before a card is recorded for `holder`, that the person exists; on PostgreSQL the
/// row is locked against a concurrent deletion (which reads it `FOR UPDATE`) until the commit.
pub(crate) async fn check_holder(c: &mut AnyConnection, backend: Backend, holder: &str) -> R<()> {
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR SHARE",
    };
    let found = sqlx::query(&format!("SELECT 1 AS one FROM users WHERE uid = $1{lock}"))
        .bind(holder)
        .fetch_optional(&mut *c)
        .await
        .map_err(backend_error)?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::Stale(format!(
            "the person {holder} (deleted meanwhile)"
        ))),
    }
}

//! How users are kept searchable: the columns a search filters and sorts on, the groups table, and
//! the substring index, all written with the user's document in the same statement batch.
//!
//! Beside its JSON document a user row holds lower-case keys to sort and prefix-search on
//! (`name_key`, `uid_key`, `employee_key`), its `source` and `disabled` flag (an import lists a
//! source's people without reading documents), and `search`, the lower-case text a search looks
//! into. `user_groups` holds one row per membership, by user and by group, so that an operator's
//! scope is SQL; with the member's sort keys, so that a group's members in order are a range of
//! an index. The substring index is per backend:
//!
//! - SQLite: `users_fts`, an FTS5 table with the trigram tokenizer, contentless (the text is
//!   already in `users.search`) with `contentless_delete`, keyed by `users.doc_id`. A row's
//!   `rowid` cannot be the key: `VACUUM` may renumber the rowids of a table without an
//!   `INTEGER PRIMARY KEY`.
//! - PostgreSQL: a GIN index with `pg_trgm`'s `gin_trgm_ops` on `users.search`.
//!
//! Consecutive user writes of a unit of work are written in batches (one multi-row statement per
//! table), which is what makes a 100,000-person import take seconds rather than minutes.

use crate::backend::{backend_error, Backend};
use crate::writes::to_json;
use sqlx::{AnyConnection, Executor, Row};
use tessera_core::ids::UserId;
use tessera_core::model::{User, UserSource};
use tessera_core::ports::StoreError;

type R<T> = Result<T, StoreError>;

/// Separates the fields in `search`, so that a search never matches across two fields. Nobody
/// types it.
/// PostgreSQL advisory lock key that serialises the numbering of new people's documents.
const DOC_ID_LOCK: i64 = 0x7e55_d0c1;

const FIELD_SEPARATOR: char = '\u{1f}';

/// The text a search looks into: uid, display name, email, employee id, department and groups.
pub(crate) fn search_text(user: &User) -> String {
    let mut fields = vec![
        user.uid.as_str(),
        &user.display_name,
        &user.email,
        &user.employee_id,
        &user.department,
    ];
    fields.extend(user.groups.iter().map(String::as_str));
    fields.join(&FIELD_SEPARATOR.to_string()).to_lowercase()
}

/// How a source is stored in the `source` column.
pub(crate) fn source_name(source: UserSource) -> &'static str {
    match source {
        UserSource::Local => "local",
        UserSource::Csv => "csv",
        UserSource::Ldap => "ldap",
    }
}

/// The columns of `users` a batch writes, in order.
const COLUMNS: [&str; 10] = [
    "uid",
    "display_name",
    "search",
    "data",
    "name_key",
    "uid_key",
    "employee_key",
    "source",
    "disabled",
    "doc_id",
];

/// Users per statement: 10 parameters each stays well under SQLite's 32,766 and PostgreSQL's
/// 65,535 parameters.
pub(crate) const BATCH: usize = 500;

/// Writes users (insert or replace), their groups and their search index entries. The users of
/// one call must have distinct uids (PostgreSQL refuses to upsert one row twice in a statement);
/// [`batches`] cuts a unit of work's users that way.
///
/// `new` names those of `users` who must not be stored yet: on PostgreSQL a row that someone
/// else inserted after the caller checked (the insert waits for them, then finds it) fails the
/// write with [`StoreError::Stale`] instead of overwriting it. (SQLite's writers are serialised.)
pub(crate) async fn put_users(
    c: &mut AnyConnection,
    backend: Backend,
    users: &[&User],
    new: &[&str],
) -> R<()> {
    for chunk in users.chunks(BATCH) {
        put_chunk(c, backend, chunk, new).await?;
    }
    Ok(())
}

/// Splits `writes` into runs without a repeated uid, keeping their order.
pub(crate) fn batches<'a, T: Copy>(writes: &[(&'a User, T)]) -> Vec<Vec<(&'a User, T)>> {
    let mut runs: Vec<Vec<(&User, T)>> = vec![Vec::new()];
    let mut seen = std::collections::HashSet::new();
    for &(user, extra) in writes {
        if !seen.insert(user.uid.as_str()) {
            runs.push(Vec::new());
            seen.clear();
            seen.insert(user.uid.as_str());
        }
        runs.last_mut().expect("never empty").push((user, extra));
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// The `n`-th parameter (from 1). SQLite gets anonymous `?`s, bound in order: sqlx looks a named
/// parameter up by its name among all of a statement's, so binding thousands of `$n` costs time
/// that grows with their square (seconds for an import of 100,000 people).
fn param(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".into(),
        Backend::Postgres => format!("${n}"),
    }
}

/// `(p, p, ...), (p, p, ...)`: `rows` rows of `per_row` parameters.
pub(crate) fn placeholders(backend: Backend, rows: usize, per_row: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (0..per_row)
                .map(|c| param(backend, 1 + r * per_row + c))
                .collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `p, p, ...`: `count` parameters.
pub(crate) fn uid_list(backend: Backend, count: usize) -> String {
    (1..=count)
        .map(|i| param(backend, i))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn put_chunk(
    c: &mut AnyConnection,
    backend: Backend,
    users: &[&User],
    new: &[&str],
) -> R<()> {
    if users.is_empty() {
        return Ok(());
    }
    let uids = uid_list(backend, users.len());
    // The old index entries and groups of those already stored go first.
    let mut old: Vec<String> = vec![format!("DELETE FROM user_groups WHERE uid IN ({uids})")];
    if backend == Backend::Sqlite {
        old.push(format!(
            "DELETE FROM users_fts WHERE rowid IN (SELECT doc_id FROM users WHERE uid IN ({uids}))"
        ));
    }
    for sql in &old {
        let mut q = sqlx::query(sql);
        for u in users {
            q = q.bind(u.uid.as_str());
        }
        q.execute(&mut *c).await.map_err(backend_error)?;
    }
    // A new user takes the next document number; one stored keeps its own, so the numbers
    // handed to those are simply never used. (A row the upgrade to version 7 fills has none.)
    // On PostgreSQL two transactions adding people at once would read the same MAX and collide
    // on the unique index; a transaction-scoped advisory lock makes them take turns (SQLite's
    // `BEGIN IMMEDIATE` already does).
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(DOC_ID_LOCK)
            .execute(&mut *c)
            .await
            .map_err(backend_error)?;
    }
    let next: i64 = sqlx::query("SELECT COALESCE(MAX(doc_id), 0) + 1 AS next FROM users")
        .fetch_one(&mut *c)
        .await
        .map_err(backend_error)?
        .try_get("next")
        .map_err(backend_error)?;
    let mut updates: Vec<String> = COLUMNS[1..COLUMNS.len() - 1]
        .iter()
        .map(|col| format!("{col} = excluded.{col}"))
        .collect();
    updates.push("doc_id = COALESCE(users.doc_id, excluded.doc_id)".into());
    // PostgreSQL tells an inserted row from an updated one by its `xmax` (0: inserted).
    let returning = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " RETURNING uid, (xmax::text = '0') AS inserted",
    };
    let sql = format!(
        "INSERT INTO users ({}) VALUES {} ON CONFLICT (uid) DO UPDATE SET {}{returning}",
        COLUMNS.join(", "),
        placeholders(backend, users.len(), COLUMNS.len()),
        updates.join(", ")
    );
    let mut q = sqlx::query(&sql);
    for (i, u) in users.iter().enumerate() {
        q = q
            .bind(u.uid.as_str())
            .bind(u.display_name.as_str())
            .bind(search_text(u))
            .bind(to_json(u)?)
            .bind(u.display_name.to_lowercase())
            .bind(u.uid.as_str().to_lowercase())
            .bind(u.employee_id.to_lowercase())
            .bind(source_name(u.source))
            .bind(u.disabled as i64)
            .bind(next + i as i64);
    }
    let rows = q.fetch_all(&mut *c).await.map_err(backend_error)?;
    let new: std::collections::HashSet<&str> = new.iter().copied().collect();
    for row in rows {
        let inserted: bool = row.try_get("inserted").map_err(backend_error)?;
        let uid: String = row.try_get("uid").map_err(backend_error)?;
        if !inserted && new.contains(&uid.as_str()) {
            return Err(StoreError::Stale(format!(
                "the uid {uid} (someone created a person with it)"
            )));
        }
    }
    if backend == Backend::Sqlite {
        let sql = format!(
            "INSERT INTO users_fts (rowid, search) SELECT doc_id, search FROM users \
             WHERE uid IN ({uids})"
        );
        let mut q = sqlx::query(&sql);
        for u in users {
            q = q.bind(u.uid.as_str());
        }
        q.execute(&mut *c).await.map_err(backend_error)?;
    }
    // A membership carries its user's sort keys: an operator scoped to a group pages through
    // its members in order along the group's own index.
    let memberships: Vec<(&User, &str)> = users
        .iter()
        .flat_map(|u| {
            let mut groups: Vec<&str> = u.groups.iter().map(String::as_str).collect();
            groups.sort_unstable();
            groups.dedup();
            groups.into_iter().map(move |g| (*u, g))
        })
        .collect();
    // Five parameters a row; 2,000 rows a statement.
    for chunk in memberships.chunks(2_000) {
        let sql = format!(
            "INSERT INTO user_groups (uid, group_name, name_key, uid_key, employee_key) \
             VALUES {}",
            placeholders(backend, chunk.len(), 5)
        );
        let mut q = sqlx::query(&sql);
        for (u, group) in chunk {
            q = q
                .bind(u.uid.as_str())
                .bind(*group)
                .bind(u.display_name.to_lowercase())
                .bind(u.uid.as_str().to_lowercase())
                .bind(u.employee_id.to_lowercase());
        }
        q.execute(&mut *c).await.map_err(backend_error)?;
    }
    Ok(())
}

/// Deletes a user with their photo, fingerprints, groups and index entries.
pub(crate) async fn delete_user(c: &mut AnyConnection, backend: Backend, uid: &UserId) -> R<()> {
    let mut statements = vec![
        "DELETE FROM photos WHERE uid = $1",
        "DELETE FROM fingerprints WHERE uid = $1",
        "DELETE FROM user_groups WHERE uid = $1",
    ];
    if backend == Backend::Sqlite {
        statements
            .push("DELETE FROM users_fts WHERE rowid IN (SELECT doc_id FROM users WHERE uid = $1)");
    }
    for sql in statements {
        sqlx::query(sql)
            .bind(uid.as_str())
            .execute(&mut *c)
            .await
            .map_err(backend_error)?;
    }
    let done = sqlx::query("DELETE FROM users WHERE uid = $1")
        .bind(uid.as_str())
        .execute(c)
        .await
        .map_err(backend_error)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// What PostgreSQL says when `pg_trgm` cannot be created, and what to do about it.
const PG_TRGM_NEEDED: &str = "the user search needs PostgreSQL's pg_trgm extension, which this \
     database user may not create: as a superuser, run `CREATE EXTENSION IF NOT EXISTS pg_trgm;` \
     in this database (the package postgresql-contrib provides it on some systems), then start \
     Tessera again";

/// Schema version 7: the search columns, the groups table and the substring index, filled from
/// the stored documents.
pub(crate) async fn migrate(tx: &mut AnyConnection, backend: Backend) -> R<()> {
    // On PostgreSQL the keys compare byte by byte ("C"), as SQLite's do, so that both backends
    // sort alike and a prefix is a range of the index.
    let key = match backend {
        Backend::Sqlite => "TEXT NOT NULL DEFAULT ''",
        Backend::Postgres => "TEXT COLLATE \"C\" NOT NULL DEFAULT ''",
    };
    let mut statements = vec![
        format!("ALTER TABLE users ADD COLUMN name_key {key}"),
        format!("ALTER TABLE users ADD COLUMN uid_key {key}"),
        format!("ALTER TABLE users ADD COLUMN employee_key {key}"),
        "ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT ''".into(),
        "ALTER TABLE users ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0".into(),
        "ALTER TABLE users ADD COLUMN doc_id BIGINT".into(),
        // SQLite: the trigram index's documents to users, with the sort keys, so that sorting
        // a search's candidates reads the index alone.
        match backend {
            Backend::Sqlite => {
                "CREATE INDEX IF NOT EXISTS users_doc_id \
                 ON users (doc_id, name_key, uid_key, employee_key, uid)"
            }
            Backend::Postgres => "CREATE UNIQUE INDEX IF NOT EXISTS users_doc_id ON users (doc_id)",
        }
        .into(),
        format!(
            "CREATE TABLE IF NOT EXISTS user_groups (uid TEXT NOT NULL, group_name TEXT NOT NULL, \
             name_key {key}, uid_key {key}, employee_key {key}, PRIMARY KEY (uid, group_name))"
        ),
    ];
    if backend == Backend::Sqlite {
        statements.push(
            "CREATE VIRTUAL TABLE IF NOT EXISTS users_fts USING fts5(search, content='', \
             contentless_delete=1, tokenize='trigram case_sensitive 1')"
                .into(),
        );
    }
    for sql in &statements {
        tx.execute(sql.as_str()).await.map_err(backend_error)?;
    }
    // Every stored user again, through the same writer, a batch at a time in uid order.
    let mut after = String::new();
    loop {
        let rows = sqlx::query("SELECT uid, data FROM users WHERE uid > $1 ORDER BY uid LIMIT $2")
            .bind(&after)
            .bind(BATCH as i64)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend_error)?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("uid").map_err(backend_error)?;
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            let uid: String = row.try_get("uid").map_err(backend_error)?;
            let data: String = row.try_get("data").map_err(backend_error)?;
            let user: User = serde_json::from_str(&data).map_err(|e| {
                StoreError::Backend(format!(
                    "the stored record of user {uid} cannot be read ({e}); \
                     the database cannot be upgraded to schema version 7"
                ))
            })?;
            users.push(user);
        }
        let refs: Vec<&User> = users.iter().collect();
        put_users(tx, backend, &refs, &[]).await?;
    }
    let mut indexes = vec![
        "DROP INDEX IF EXISTS users_display_name",
        "CREATE INDEX IF NOT EXISTS users_name_key ON users (name_key, uid)",
        "CREATE INDEX IF NOT EXISTS users_uid_key ON users (uid_key, uid)",
        "CREATE INDEX IF NOT EXISTS users_employee_key ON users (employee_key, uid)",
        "CREATE INDEX IF NOT EXISTS users_source ON users (source, uid, disabled)",
        "CREATE INDEX IF NOT EXISTS user_groups_name_key \
         ON user_groups (group_name, name_key, uid)",
        "CREATE INDEX IF NOT EXISTS user_groups_uid_key ON user_groups (group_name, uid_key, uid)",
        "CREATE INDEX IF NOT EXISTS user_groups_employee_key \
         ON user_groups (group_name, employee_key, uid)",
    ];
    if backend == Backend::Postgres {
        create_pg_trgm(tx).await?;
        indexes.push(
            "CREATE INDEX IF NOT EXISTS users_search_trgm ON users USING gin (search gin_trgm_ops)",
        );
    }
    for sql in indexes {
        tx.execute(sql).await.map_err(backend_error)?;
    }
    Ok(())
}

/// Creates `pg_trgm` unless it is there (an administrator may have created it for a database
/// user who may not).
async fn create_pg_trgm(tx: &mut AnyConnection) -> R<()> {
    let there = sqlx::query("SELECT 1 AS one FROM pg_extension WHERE extname = 'pg_trgm'")
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend_error)?
        .is_some();
    if there {
        return Ok(());
    }
    tx.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "CREATE EXTENSION pg_trgm failed");
            StoreError::Backend(format!("{PG_TRGM_NEEDED} (PostgreSQL said: {e})"))
        })?;
    Ok(())
}

//! The Users page's search: one page of the users whose name, uid, employee id, email,
//! department or a group contains the text, optionally only members of some groups, in the
//! asked order. It stays fast at a million users by choosing its plan from what it finds.
//!
//! Each filter (the text, the operator's groups) can either *drive* the search, listing its
//! candidates through an index, or be *checked* on each row. A probe first counts, up to
//! [`CANDIDATES`], the rows each filter's index gives. When one gives at most that many, those
//! candidates are read, checked against the other filters and sorted: a rare term costs a few
//! thousand index reads at most. When every filter is common, the search walks the sort order's
//! index and checks each row until the page is full: a term that matches one person in ten
//! fills a page of 50 after about 500 rows. (A single `LIKE '%q%' ORDER BY name` leaves the
//! choice to the planner, which on SQLite walked the name index for a miss too: seconds at a
//! million users.)
//!
//! Text of three characters or more is a substring (SQLite: the FTS5 trigram index; PostgreSQL:
//! `pg_trgm`). Shorter text cannot use trigrams: it matches the beginning of the name, the uid or
//! the employee id, through those columns' indexes. Either way `%` and `_` are plain characters.

use crate::backend::{backend_error, Backend};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Executor, Row};
use tessera_core::model::User;
use tessera_core::ports::{StoreError, UserQuery, UserSort};

type R<T> = Result<T, StoreError>;

/// A filter whose index gives at most this many rows drives the search; above it, the search
/// walks the sort index. Reading this many candidates and walking to a page of 50 through rows
/// of which `CANDIDATES` in a million match cost about the same.
pub(crate) const CANDIDATES: i64 = 5_000;

/// Text shorter than this (in characters) is a prefix, not a substring.
const TRIGRAM: usize = 3;

/// A bound value.
#[derive(Clone, Debug)]
enum Value {
    Text(String),
    Int(i64),
}

/// SQL with `$n` parameters and their values.
#[derive(Default)]
struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    /// Appends `$n` for `value` and returns it.
    fn bind(&mut self, value: Value) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for v in &self.values {
            q = match v {
                Value::Text(t) => q.bind(t.as_str()),
                Value::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

/// What the text asks for.
enum Text {
    /// The beginning of the name, uid or employee id: `[from, to)` in the lower-case keys.
    Prefix { from: String, to: String },
    /// Anywhere in the searched text.
    Substring(String),
}

impl Text {
    fn of(text: &str) -> Option<Self> {
        let text = text.trim().to_lowercase();
        if text.is_empty() {
            None
        } else if text.chars().count() < TRIGRAM {
            // Every key that starts with `text` sorts before `text` + the highest code point,
            // byte by byte (SQLite's BINARY, PostgreSQL's "C").
            let to = format!("{text}{}", char::MAX);
            Some(Self::Prefix { from: text, to })
        } else {
            Some(Self::Substring(text))
        }
    }
}

/// `text` as a LIKE pattern that finds it anywhere, its wildcards taken literally.
fn like_anywhere(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// `text` as an FTS5 phrase: with the trigram tokenizer, its trigrams one after the other, that
/// is `text` as a substring.
fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// One filter of a search.
enum Filter<'a> {
    Text(Text),
    Groups(&'a [String]),
}

impl Filter<'_> {
    /// How many rows this filter's index gives, counted up to `CANDIDATES + 1`.
    fn probe(&self, backend: Backend) -> Sql {
        let mut sql = Sql::default();
        let cap = |sql: &mut Sql| sql.bind(Value::Int(CANDIDATES + 1));
        sql.text = match self {
            Filter::Text(Text::Substring(t)) => match backend {
                Backend::Sqlite => {
                    let m = sql.bind(Value::Text(fts_phrase(t)));
                    let n = cap(&mut sql);
                    format!(
                        "SELECT COUNT(*) AS n FROM (SELECT rowid FROM users_fts \
                         WHERE users_fts MATCH {m} LIMIT {n}) t"
                    )
                }
                Backend::Postgres => {
                    let p = sql.bind(Value::Text(like_anywhere(t)));
                    let n = cap(&mut sql);
                    format!(
                        "SELECT COUNT(*) AS n FROM (SELECT 1 FROM users \
                         WHERE search LIKE {p} ESCAPE '\\' LIMIT {n}) t"
                    )
                }
            },
            Filter::Text(Text::Prefix { from, to }) => {
                let (a, b) = (
                    sql.bind(Value::Text(from.clone())),
                    sql.bind(Value::Text(to.clone())),
                );
                let n = cap(&mut sql);
                let counts: Vec<String> = ["name_key", "uid_key", "employee_key"]
                    .iter()
                    .map(|col| {
                        format!(
                            "(SELECT COUNT(*) FROM (SELECT 1 FROM users \
                             WHERE {col} >= {a} AND {col} < {b} LIMIT {n}) t)"
                        )
                    })
                    .collect();
                format!("SELECT {} AS n", counts.join(" + "))
            }
            Filter::Groups(groups) => {
                let list = groups_list(&mut sql, groups);
                let n = cap(&mut sql);
                format!(
                    "SELECT COUNT(*) AS n FROM (SELECT 1 FROM user_groups \
                     WHERE group_name IN ({list}) LIMIT {n}) t"
                )
            }
        };
        sql
    }

    /// The condition that lists this filter's candidates through its index.
    fn driving(&self, sql: &mut Sql, backend: Backend) -> String {
        match self {
            Filter::Text(Text::Substring(t)) => match backend {
                Backend::Sqlite => {
                    let m = sql.bind(Value::Text(fts_phrase(t)));
                    format!("doc_id IN (SELECT rowid FROM users_fts WHERE users_fts MATCH {m})")
                }
                Backend::Postgres => {
                    let p = sql.bind(Value::Text(like_anywhere(t)));
                    format!("search LIKE {p} ESCAPE '\\'")
                }
            },
            Filter::Text(Text::Prefix { from, to }) => {
                let (a, b) = (
                    sql.bind(Value::Text(from.clone())),
                    sql.bind(Value::Text(to.clone())),
                );
                let parts: Vec<String> = ["name_key", "uid_key", "employee_key"]
                    .iter()
                    .map(|col| format!("SELECT uid FROM users WHERE {col} >= {a} AND {col} < {b}"))
                    .collect();
                format!("uid IN ({})", parts.join(" UNION "))
            }
            Filter::Groups(groups) => {
                let list = groups_list(sql, groups);
                format!("uid IN (SELECT uid FROM user_groups WHERE group_name IN ({list}))")
            }
        }
    }

    /// The same condition checked on a row, written so that no index serves it (`col || ''`):
    /// the planner then keeps to the sort index it is walking.
    fn checked(&self, sql: &mut Sql) -> String {
        match self {
            Filter::Text(Text::Substring(t)) => {
                let p = sql.bind(Value::Text(like_anywhere(t)));
                format!("(search || '') LIKE {p} ESCAPE '\\'")
            }
            Filter::Text(Text::Prefix { from, to }) => {
                let (a, b) = (
                    sql.bind(Value::Text(from.clone())),
                    sql.bind(Value::Text(to.clone())),
                );
                let parts: Vec<String> = ["name_key", "uid_key", "employee_key"]
                    .iter()
                    .map(|col| format!("({col} || '' >= {a} AND {col} || '' < {b})"))
                    .collect();
                format!("({})", parts.join(" OR "))
            }
            Filter::Groups(groups) => {
                let list = groups_list(sql, groups);
                format!(
                    "EXISTS (SELECT 1 FROM user_groups g WHERE g.uid = users.uid \
                     AND g.group_name IN ({list}))"
                )
            }
        }
    }
}

fn groups_list(sql: &mut Sql, groups: &[String]) -> String {
    groups
        .iter()
        .map(|g| sql.bind(Value::Text(g.clone())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sort: walking its index, or sorting candidates (`|| ''` keeps the index out of it).
fn order_by(sort: UserSort, walking: bool) -> String {
    let key = match sort {
        UserSort::Name => "name_key",
        UserSort::Uid => "uid_key",
        UserSort::EmployeeId => "employee_key",
    };
    if walking {
        format!("{key}, uid")
    } else {
        format!("{key} || '', uid || ''")
    }
}

/// One page of the search, in the query's order.
pub(crate) async fn find(pool: &AnyPool, backend: Backend, query: &UserQuery) -> R<Vec<User>> {
    if query.limit == 0 || query.groups.as_ref().is_some_and(|g| g.is_empty()) {
        return Ok(Vec::new());
    }
    let mut filters = Vec::new();
    if let Some(text) = Text::of(&query.text) {
        filters.push(Filter::Text(text));
    }
    if let Some(groups) = &query.groups {
        filters.push(Filter::Groups(groups));
    }
    // One read transaction: the probes and the page see the same data.
    let mut tx = pool.begin().await.map_err(backend_error)?;
    if backend == Backend::Postgres {
        // A probe of a miss must use the trigram index, never scan the table hoping to stop
        // early; the walk is an index scan anyway.
        tx.execute("SET LOCAL enable_seqscan = off")
            .await
            .map_err(backend_error)?;
    }
    let mut driver: Option<(usize, i64)> = None;
    for (i, filter) in filters.iter().enumerate() {
        let n = count(&mut tx, &filter.probe(backend)).await?;
        if n == 0 {
            return Ok(Vec::new());
        }
        if n <= CANDIDATES && driver.is_none_or(|(_, best)| n < best) {
            driver = Some((i, n));
        }
    }
    let mut sql = Sql::default();
    let mut conditions = Vec::new();
    for (i, filter) in filters.iter().enumerate() {
        conditions.push(match driver {
            Some((d, _)) if d == i => filter.driving(&mut sql, backend),
            _ => filter.checked(&mut sql),
        });
    }
    let limit = sql.bind(Value::Int(query.limit as i64));
    let offset = sql.bind(Value::Int(query.offset as i64));
    sql.text = format!(
        "SELECT data FROM users{}{} ORDER BY {} LIMIT {limit} OFFSET {offset}",
        if conditions.is_empty() { "" } else { " WHERE " },
        conditions.join(" AND "),
        order_by(query.sort, driver.is_none()),
    );
    let rows = sql
        .query()
        .fetch_all(&mut *tx)
        .await
        .map_err(backend_error)?;
    tx.commit().await.map_err(backend_error)?;
    rows.iter().map(user_of).collect()
}

async fn count(c: &mut AnyConnection, sql: &Sql) -> R<i64> {
    sql.query()
        .fetch_one(c)
        .await
        .map_err(backend_error)?
        .try_get("n")
        .map_err(backend_error)
}

fn user_of(row: &AnyRow) -> R<User> {
    let text: String = row.try_get("data").map_err(backend_error)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Backend(format!("corrupt record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_a_prefix_and_wildcards_are_literal() {
        assert!(Text::of("  ").is_none());
        match Text::of("Ab") {
            Some(Text::Prefix { from, to }) => {
                assert_eq!(from, "ab");
                assert!(to.as_str() > "abzzz" && to.as_str() > "ab\u{ffff}");
                assert!(to.as_str() < "ac");
            }
            _ => panic!("two characters are a prefix"),
        }
        assert!(matches!(Text::of("abc"), Some(Text::Substring(t)) if t == "abc"));
        assert_eq!(like_anywhere("50%_a\\"), "%50\\%\\_a\\\\%");
        assert_eq!(fts_phrase("a\"b"), "\"a\"\"b\"");
    }
}

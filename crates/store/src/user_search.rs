//! The Users page's search: one page of the users whose name, uid, employee id, email,
//! department or a group contains the text, optionally only members of some groups, in the
//! asked order. It stays fast at a million users by choosing its plan from what it finds.
//!
//! Each filter (the text, the operator's groups) can either *drive* the search, listing its
//! candidates through an index, or be *checked* on each row. A probe first counts, up to
//! [`CANDIDATES`], the rows each filter's index gives. When one gives at most that many, those
//! candidates are checked against the other filters and sorted: a rare term costs a few thousand
//! index reads at most. When every filter is common, the search walks the sort order's index and
//! checks each row until the page is full: a term that matches one person in ten fills a page of
//! 50 after about 500 rows. A common term's matches may lie far along the sort order, though (a
//! common given name, sorted by name): after [`WALK`] rows the walk gives up and the driving
//! filter's matches are sorted after all. (A single `LIKE '%q%' ORDER BY name` leaves the choice
//! to the planner, which on SQLite walked the name index for a miss too: seconds at a million
//! users.) On SQLite the index that maps the trigram index's documents to users also holds the
//! sort keys, so sorting candidates reads no table row.
//!
//! Text of three characters or more is a substring (SQLite: the FTS5 trigram index; PostgreSQL:
//! `pg_trgm`). Shorter text cannot use trigrams: it matches the beginning of the key the page is
//! sorted by (the name, the uid or the employee id), a range of that key's index, which the walk
//! reads in order from its start, like the letters on the edge of a phone book. (Matching the
//! beginning of all three keys would mean sorting the matches of the two others: a hundred
//! thousand people for the letter `m` at a million.) Either way `%` and `_` are plain
//! characters.

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
    /// The beginning of the sort's key (name, uid or employee id): `[from, to)` in `column`.
    Prefix {
        column: &'static str,
        from: String,
        to: String,
    },
    /// Anywhere in the searched text.
    Substring(String),
}

impl Text {
    fn of(text: &str, sort: UserSort) -> Option<Self> {
        let text = text.trim().to_lowercase();
        if text.is_empty() {
            None
        } else if text.chars().count() < TRIGRAM {
            // Every key that starts with `text` sorts before `text` + the highest code point,
            // byte by byte (SQLite's BINARY, PostgreSQL's "C").
            let to = format!("{text}{}", char::MAX);
            Some(Self::Prefix {
                column: sort_key(sort),
                from: text,
                to,
            })
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
            Filter::Text(Text::Prefix { column, from, to }) => {
                let (a, b) = (
                    sql.bind(Value::Text(from.clone())),
                    sql.bind(Value::Text(to.clone())),
                );
                let n = cap(&mut sql);
                format!(
                    "SELECT COUNT(*) AS n FROM (SELECT 1 FROM users \
                     WHERE {column} >= {a} AND {column} < {b} LIMIT {n}) t"
                )
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

    /// Where this filter's candidates come from through its index, and the condition on them:
    /// `(from, condition)`, the candidates being rows of `users`.
    ///
    /// The searched text holds each user's groups, so an operator's `scope` narrows the text's
    /// candidates in the trigram index itself (to a superset: a group's name may appear in
    /// another field, and the scope is checked exactly afterwards). Two common filters whose
    /// intersection is small, a common name within one site, then cost what the intersection
    /// costs, not what the larger of them does.
    fn driving(
        &self,
        sql: &mut Sql,
        backend: Backend,
        scope: Option<&[String]>,
    ) -> (&'static str, String) {
        // Group names of fewer than three characters have no trigram.
        let scope: Vec<String> = scope
            .filter(|groups| groups.iter().all(|g| g.chars().count() >= TRIGRAM))
            .map(|groups| groups.iter().map(|g| g.to_lowercase()).collect())
            .unwrap_or_default();
        match self {
            Filter::Text(Text::Substring(t)) => match backend {
                Backend::Sqlite => {
                    // The trigram index's documents in order, each to its user through the
                    // covering index on `doc_id`: no temporary table of candidates.
                    let mut expression = fts_phrase(t);
                    if !scope.is_empty() {
                        let any: Vec<String> = scope.iter().map(|g| fts_phrase(g)).collect();
                        expression = format!("{expression} AND ({})", any.join(" OR "));
                    }
                    let m = sql.bind(Value::Text(expression));
                    (
                        "users_fts CROSS JOIN users ON users.doc_id = users_fts.rowid",
                        format!("users_fts MATCH {m}"),
                    )
                }
                Backend::Postgres => {
                    let p = sql.bind(Value::Text(like_anywhere(t)));
                    let mut condition = format!("users.search LIKE {p} ESCAPE '\\'");
                    if !scope.is_empty() {
                        let any: Vec<String> = scope
                            .iter()
                            .map(|g| {
                                let p = sql.bind(Value::Text(like_anywhere(g)));
                                format!("users.search LIKE {p} ESCAPE '\\'")
                            })
                            .collect();
                        condition = format!("{condition} AND ({})", any.join(" OR "));
                    }
                    ("users", condition)
                }
            },
            Filter::Text(Text::Prefix { column, from, to }) => {
                let (a, b) = (
                    sql.bind(Value::Text(from.clone())),
                    sql.bind(Value::Text(to.clone())),
                );
                (
                    "users",
                    format!("users.{column} >= {a} AND users.{column} < {b}"),
                )
            }
            Filter::Groups(groups) => {
                let list = groups_list(sql, groups);
                (
                    "users",
                    format!(
                        "users.uid IN (SELECT uid FROM user_groups WHERE group_name IN ({list}))"
                    ),
                )
            }
        }
    }

    /// The same condition checked on a row of `table` (`users` or a walked subquery).
    fn checked(&self, sql: &mut Sql, table: &str) -> String {
        match self {
            Filter::Text(Text::Substring(t)) => {
                let p = sql.bind(Value::Text(like_anywhere(t)));
                format!("{table}.search LIKE {p} ESCAPE '\\'")
            }
            Filter::Text(Text::Prefix { column, from, to }) => {
                let (a, b) = (
                    sql.bind(Value::Text(from.clone())),
                    sql.bind(Value::Text(to.clone())),
                );
                format!("({table}.{column} >= {a} AND {table}.{column} < {b})")
            }
            Filter::Groups(groups) => {
                let list = groups_list(sql, groups);
                format!(
                    "EXISTS (SELECT 1 FROM user_groups g WHERE g.uid = {table}.uid \
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

fn sort_key(sort: UserSort) -> &'static str {
    match sort {
        UserSort::Name => "name_key",
        UserSort::Uid => "uid_key",
        UserSort::EmployeeId => "employee_key",
    }
}

/// One page of the search, in the query's order.
pub(crate) async fn find(pool: &AnyPool, backend: Backend, query: &UserQuery) -> R<Vec<User>> {
    if query.limit == 0 || query.groups.as_ref().is_some_and(|g| g.is_empty()) {
        return Ok(Vec::new());
    }
    let mut filters = Vec::new();
    if let Some(text) = Text::of(&query.text, query.sort) {
        filters.push(Filter::Text(text));
    }
    if let Some(groups) = &query.groups {
        filters.push(Filter::Groups(groups));
    }
    // One read transaction: the probes and the page see the same data.
    let mut tx = pool.begin().await.map_err(backend_error)?;
    if backend == Backend::Postgres {
        // A probe of a miss must use the trigram index, never scan the table hoping to stop
        // early; a walk is an index scan anyway.
        tx.execute("SET LOCAL enable_seqscan = off")
            .await
            .map_err(backend_error)?;
        // Room for the bitmap of a common term's matches, which otherwise turns lossy and has
        // every row of its pages checked again.
        tx.execute("SET LOCAL work_mem = '32MB'")
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
    let scope = query.groups.as_deref();
    let uids = match driver {
        Some((d, _)) => candidates(&mut tx, backend, &filters, d, query).await?,
        // Everyone, or a prefix of the sort key alone: every row walked is on the page.
        None if scope.is_none()
            && filters
                .iter()
                .all(|f| matches!(f, Filter::Text(Text::Prefix { .. }))) =>
        {
            // Without a budget a walk always ends with its page.
            walk(&mut tx, backend, &filters, query, None, None)
                .await?
                .unwrap_or_default()
        }
        None => {
            // Every filter is common: the page is most likely near the start of the sort order.
            // When a walk's budget runs out first (the matches lie further on, as a common given
            // name's do in name order), the text's (or the scope's) matches are sorted.
            let walked = match scope {
                None => walk(&mut tx, backend, &filters, query, Some(WALK), None).await?,
                Some(groups) => scoped_walk(&mut tx, backend, &filters, query, groups).await?,
            };
            match walked {
                Some(uids) => uids,
                None => candidates(&mut tx, backend, &filters, 0, query).await?,
            }
        }
    };
    let users = by_uid(&mut tx, &uids).await?;
    tx.commit().await.map_err(backend_error)?;
    Ok(users)
}

/// Rows a walk of the sort index reads before it gives up on a page.
const WALK: i64 = 3_000;

/// The page's uids from a walk of the sort index (of everyone, or of the members of `group`) in
/// order, each row checked. With a `budget`, `None` when the walk read that many rows without
/// filling the page.
async fn walk(
    c: &mut AnyConnection,
    backend: Backend,
    filters: &[Filter<'_>],
    query: &UserQuery,
    budget: Option<i64>,
    group: Option<&str>,
) -> R<Option<Vec<String>>> {
    let mut sql = Sql::default();
    let key = sort_key(query.sort);
    let mut conditions = Vec::new();
    let source = match group {
        None => "users u".to_owned(),
        Some(group) => {
            // The groups table holds its members' sort keys: a group's members in order are a
            // range of its index.
            let g = sql.bind(Value::Text(group.to_owned()));
            conditions.push(format!("g.group_name = {g}"));
            conditions.push("u.uid = g.uid".to_owned());
            "user_groups g CROSS JOIN users u".to_owned()
        }
    };
    let walked = if group.is_some() { "g" } else { "u" };
    // A prefix of the sort key is a range of its index: the walk starts there.
    for filter in filters {
        if let Filter::Text(Text::Prefix { from, to, .. }) = filter {
            let a = sql.bind(Value::Text(from.clone()));
            let b = sql.bind(Value::Text(to.clone()));
            conditions.push(format!("{walked}.{key} >= {a} AND {walked}.{key} < {b}"));
        }
    }
    let budget_sql = match budget {
        Some(rows) => format!(" LIMIT {}", sql.bind(Value::Int(rows))),
        None => String::new(),
    };
    let checks: Vec<String> = filters
        .iter()
        .filter(|f| matches!(f, Filter::Text(Text::Substring(_))))
        .map(|f| f.checked(&mut sql, "w"))
        .collect();
    let limit = sql.bind(Value::Int(query.limit as i64));
    let offset = sql.bind(Value::Int(query.offset as i64));
    // The subquery is read in its order and the outer LIMIT stops it: no sort, no table scan.
    // SQLite reads a subquery as a co-routine, row after row in its order, and checks each; an
    // outer ORDER BY would sort all `budget` rows first. PostgreSQL may plan otherwise, so there
    // the order is said again: its planner knows the subquery's rows come in that order and
    // adds no sort unless its plan needs one.
    let order = match backend {
        Backend::Sqlite => String::new(),
        Backend::Postgres => format!(" ORDER BY w.{key}, w.uid"),
    };
    sql.text = format!(
        "SELECT w.uid FROM (SELECT {walked}.uid AS uid, u.search AS search, \
         {walked}.{key} AS {key} FROM {source}{}{} ORDER BY {walked}.{key}, {walked}.uid{budget_sql}) w\
         {}{}{order} LIMIT {limit} OFFSET {offset}",
        if conditions.is_empty() { "" } else { " WHERE " },
        conditions.join(" AND "),
        if checks.is_empty() { "" } else { " WHERE " },
        checks.join(" AND "),
    );
    if backend == Backend::Postgres {
        // A walk is the sort index read in order. Without statistics (after a bulk import,
        // before autovacuum analysed the table) PostgreSQL may rather collect a key range with a
        // bitmap and sort it: all of a letter's 80,000 people for one page.
        set_walking(c, true).await?;
    }
    let uids = uids_of(c, &sql).await;
    if backend == Backend::Postgres {
        set_walking(c, false).await?;
    }
    let uids = uids?;
    Ok((budget.is_none() || uids.len() == query.limit as usize).then_some(uids))
}

/// PostgreSQL: no bitmap scans and no sorting while walking (or again both).
async fn set_walking(c: &mut AnyConnection, walking: bool) -> R<()> {
    let value = if walking { "off" } else { "on" };
    for setting in ["enable_bitmapscan", "enable_sort"] {
        c.execute(format!("SET LOCAL {setting} = {value}").as_str())
            .await
            .map_err(backend_error)?;
    }
    Ok(())
}

/// A walk for an operator scoped to groups: each group's members in order, up to the end of
/// the page, then the page of them all.
async fn scoped_walk(
    c: &mut AnyConnection,
    backend: Backend,
    filters: &[Filter<'_>],
    query: &UserQuery,
    groups: &[String],
) -> R<Option<Vec<String>>> {
    let mut groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    groups.sort_unstable();
    groups.dedup();
    if let [group] = groups[..] {
        return walk(c, backend, filters, query, Some(WALK), Some(group)).await;
    }
    // Each group's first `offset + limit`, then those put in order: someone in two groups
    // counts once.
    let to_end = UserQuery {
        offset: 0,
        limit: query.offset.saturating_add(query.limit),
        ..query.clone()
    };
    let mut all = Vec::new();
    for group in groups {
        match walk(c, backend, filters, &to_end, Some(WALK), Some(group)).await? {
            Some(uids) => all.extend(uids),
            // The group's part of the page lies further on than the walk goes.
            None => return Ok(None),
        }
    }
    all.sort_unstable();
    all.dedup();
    let mut sql = Sql::default();
    let list: Vec<String> = all
        .iter()
        .map(|u| sql.bind(Value::Text(u.clone())))
        .collect();
    let key = sort_key(query.sort);
    let limit = sql.bind(Value::Int(query.limit as i64));
    let offset = sql.bind(Value::Int(query.offset as i64));
    sql.text = format!(
        "SELECT uid FROM users WHERE uid IN ({}) ORDER BY {key} || '', uid || '' \
         LIMIT {limit} OFFSET {offset}",
        list.join(", ")
    );
    let uids = uids_of(c, &sql).await?;
    Ok((uids.len() == query.limit as usize).then_some(uids))
}

/// The page's uids: the candidates of filter `driver` from its index, the others checked on
/// each, then sorted (`|| ''` keeps the planner off the sort index, which would mean a walk).
async fn candidates(
    c: &mut AnyConnection,
    backend: Backend,
    filters: &[Filter<'_>],
    driver: usize,
    query: &UserQuery,
) -> R<Vec<String>> {
    let mut sql = Sql::default();
    let mut from = "users";
    let mut conditions = Vec::new();
    for (i, filter) in filters.iter().enumerate() {
        if i == driver {
            let (source, condition) = filter.driving(&mut sql, backend, query.groups.as_deref());
            from = source;
            conditions.push(condition);
        } else {
            conditions.push(filter.checked(&mut sql, "users"));
        }
    }
    let key = sort_key(query.sort);
    let limit = sql.bind(Value::Int(query.limit as i64));
    let offset = sql.bind(Value::Int(query.offset as i64));
    sql.text = format!(
        "SELECT users.uid FROM {from} WHERE {} ORDER BY users.{key} || '', users.uid || '' \
         LIMIT {limit} OFFSET {offset}",
        conditions.join(" AND "),
    );
    uids_of(c, &sql).await
}

async fn uids_of(c: &mut AnyConnection, sql: &Sql) -> R<Vec<String>> {
    sql.query()
        .fetch_all(c)
        .await
        .map_err(backend_error)?
        .iter()
        .map(|r| r.try_get("uid").map_err(backend_error))
        .collect()
}

/// The users of `uids`, in that order.
async fn by_uid(c: &mut AnyConnection, uids: &[String]) -> R<Vec<User>> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::default();
    let list: Vec<String> = uids
        .iter()
        .map(|u| sql.bind(Value::Text(u.clone())))
        .collect();
    sql.text = format!(
        "SELECT uid, data FROM users WHERE uid IN ({})",
        list.join(", ")
    );
    let rows = sql.query().fetch_all(c).await.map_err(backend_error)?;
    let mut found = std::collections::HashMap::new();
    for row in &rows {
        let uid: String = row.try_get("uid").map_err(backend_error)?;
        found.insert(uid, user_of(row)?);
    }
    Ok(uids.iter().filter_map(|u| found.remove(u)).collect())
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
        assert!(Text::of("  ", UserSort::Name).is_none());
        match Text::of("Ab", UserSort::Uid) {
            Some(Text::Prefix { column, from, to }) => {
                assert_eq!(column, "uid_key");
                assert_eq!(from, "ab");
                assert!(to.as_str() > "abzzz" && to.as_str() > "ab\u{ffff}");
                assert!(to.as_str() < "ac");
            }
            _ => panic!("two characters are a prefix"),
        }
        assert!(matches!(Text::of("abc", UserSort::Name), Some(Text::Substring(t)) if t == "abc"));
        assert_eq!(like_anywhere("50%_a\\"), "%50\\%\\_a\\\\%");
        assert_eq!(fts_phrase("a\"b"), "\"a\"\"b\"");
    }
}

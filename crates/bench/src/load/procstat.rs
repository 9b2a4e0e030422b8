//! CPU time from `/proc/<pid>/stat` (user + system, in clock ticks), and PostgreSQL's commit
//! counter: what a card costs the replicas, the bench (stations and drivers) and the database.

use std::collections::BTreeMap;

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux almost everywhere).
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// `(command name, utime + stime, cutime + cstime)` in seconds.
fn stat(path: &str) -> Option<(String, f64, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    // The name is in parentheses and may hold spaces: the fields follow the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text[open + 1..close].to_owned();
    let fields: Vec<&str> = text[close + 2..].split_whitespace().collect();
    // After the name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    let n = |i: usize| fields.get(i - 3)?.parse::<f64>().ok();
    let t = ticks_per_second();
    Some((name, (n(14)? + n(15)?) / t, (n(16)? + n(17)?) / t))
}

/// The CPU seconds a live process has used.
pub fn process_seconds(pid: u32) -> Option<f64> {
    stat(&format!("/proc/{pid}/stat")).map(|(_, own, _)| own)
}

/// Every process named `postgres` (the postmaster, its backends and workers), with the time of
/// the children they reaped: a backend that ends moves its time into the postmaster's.
fn postgres_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| stat(&format!("{}/stat", e.path().display())))
        .filter(|(name, _, _)| name == "postgres")
        .map(|(_, own, children)| own + children)
        .sum()
}

/// CPU seconds of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSeconds {
    pub replicas: f64,
    pub bench: f64,
    /// PostgreSQL; `None` on SQLite (its work is inside the replica).
    pub database: Option<f64>,
}

pub struct Snapshot {
    replicas: BTreeMap<u32, f64>,
    bench: f64,
    database: Option<f64>,
}

impl Snapshot {
    pub fn take(replicas: &[u32], postgres: bool) -> Self {
        Self {
            replicas: replicas
                .iter()
                .filter_map(|&pid| process_seconds(pid).map(|s| (pid, s)))
                .collect(),
            bench: process_seconds(std::process::id()).unwrap_or(0.0),
            database: postgres.then(postgres_seconds),
        }
    }

    /// A replica killed during the run counts with what it had used just before.
    pub fn keep_dead(&mut self, (pid, seconds): (u32, f64)) {
        self.replicas.insert(pid, seconds);
    }

    pub fn since(&self, before: &Self) -> CpuSeconds {
        CpuSeconds {
            replicas: self
                .replicas
                .iter()
                .map(|(pid, s)| s - before.replicas.get(pid).copied().unwrap_or(0.0))
                .sum(),
            bench: self.bench - before.bench,
            database: match (self.database, before.database) {
                (Some(a), Some(b)) => Some(a - b),
                _ => None,
            },
        }
    }
}

/// The commits of the current database so far (`pg_stat_database.xact_commit`).
pub async fn commits(url: &str) -> Result<i64, String> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
    let row =
        sqlx::query("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            .fetch_one(&pool)
            .await
            .map_err(|e| format!("pg_stat_database: {e}"))?;
    let n: i64 = row.try_get(0).map_err(|e| e.to_string())?;
    pool.close().await;
    Ok(n)
}

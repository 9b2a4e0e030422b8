//! `tessera bench-load`: the whole system under many stations. It makes an organisation
//! (`tessera init` with the demo content) on SQLite or on a fresh PostgreSQL database, starts R
//! replicas of `tessera serve` as child processes of this binary (with HAProxy in front of them
//! when R > 1), enrols N in-process station agents with the simulated card printer that connect
//! over the real WebSocket protocol through the balancer, and drives each station from the REST
//! API: Start, PIV Standard with a PIN, follow the job to Printed, Continue; one person per card.
//! It can kill -9 a replica mid-run. It prints throughput, latency, CPU per card (replicas, the
//! bench, PostgreSQL), commits per card and `/healthz` latency, then checks the database: no
//! issuance lost, none duplicated, none inconsistent, the audit chain intact.

mod check;
mod cluster;
mod driver;
mod procstat;

pub use check::Findings;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            other => Err(format!("--backend {other:?}: use sqlite or postgres")),
        }
    }
}

/// How long the run lasts: seconds of new cards, or a number of cards.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    Seconds(u64),
    Cards(usize),
}

pub struct Options {
    /// The `tessera` binary the replicas run (`std::env::current_exe()`).
    pub exe: PathBuf,
    pub backend: Backend,
    /// The PostgreSQL server to make the run's database on.
    pub database_url: Option<String>,
    pub replicas: usize,
    pub stations: usize,
    pub budget: Budget,
    /// Kill -9 the first replica this many seconds into the run.
    pub kill_replica_at: Option<u64>,
    /// The scratch folder (data folder, stations, logs); removed afterwards unless `keep`.
    pub dir: PathBuf,
    pub keep: bool,
}

/// What one run measured and found.
pub struct Report {
    pub backend: Backend,
    pub replicas: usize,
    pub stations: usize,
    pub elapsed: Duration,
    pub completed: usize,
    pub latencies: Vec<Duration>,
    /// Cards that did not complete, by error code.
    pub failures: BTreeMap<String, usize>,
    pub cpu: procstat::CpuSeconds,
    pub commits: Option<i64>,
    pub healthz: Vec<Duration>,
    pub healthz_failed: usize,
    pub killed: Option<String>,
    pub findings: Findings,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64()
}

impl Report {
    /// Whether the database came out sound: nothing lost, duplicated or inconsistent.
    pub fn sound(&self) -> bool {
        self.findings.lost == 0
            && self.findings.duplicated == 0
            && self.findings.inconsistent == 0
            && self.findings.audit_intact
    }

    pub fn render(&self) -> String {
        let mut lat = self.latencies.clone();
        lat.sort();
        let mut hz = self.healthz.clone();
        hz.sort();
        let secs = self.elapsed.as_secs_f64();
        let cards = self.completed.max(1) as f64;
        let c = &self.cpu;
        let total = c.replicas + c.bench + c.database.unwrap_or(0.0);
        let mut out = format!(
            "bench-load: {} with {} replica(s), {} stations, {:.0} s\n",
            match self.backend {
                Backend::Sqlite => "SQLite",
                Backend::Postgres => "PostgreSQL",
            },
            self.replicas,
            self.stations,
            secs
        );
        if let Some(k) = &self.killed {
            out.push_str(&format!("killed: {k}\n"));
        }
        out.push_str(&format!(
            "cards completed:        {}\n\
             cards per hour:         {:.0}\n\
             seconds per card:       p50 {:.2}  p99 {:.2}\n\
             CPU s per card:         replicas {:.3}  bench {:.3}  database {}  total {:.3}\n\
             database share of CPU:  {}\n\
             commits per card:       {}\n\
             /healthz:               p50 {:.1} ms  p99 {:.1} ms  ({} samples, {} failed)\n",
            self.completed,
            self.completed as f64 * 3600.0 / secs,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            c.replicas / cards,
            c.bench / cards,
            c.database
                .map(|d| format!("{:.3}", d / cards))
                .unwrap_or_else(|| "n/a (in the replica)".into()),
            total / cards,
            c.database
                .map(|d| format!("{:.0} %", 100.0 * d / total.max(f64::MIN_POSITIVE)))
                .unwrap_or_else(|| "n/a".into()),
            self.commits
                .map(|n| format!("{:.1}", n as f64 / cards))
                .unwrap_or_else(|| "n/a".into()),
            percentile(&hz, 0.5) * 1e3,
            percentile(&hz, 0.99) * 1e3,
            hz.len(),
            self.healthz_failed,
        ));
        if self.failures.is_empty() {
            out.push_str("failures:               none\n");
        } else {
            let list: Vec<String> = self
                .failures
                .iter()
                .map(|(code, n)| format!("{code} {n}"))
                .collect();
            out.push_str(&format!("failures:               {}\n", list.join(", ")));
        }
        out.push_str(&self.findings.render());
        out
    }
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

pub async fn run(options: &Options) -> Result<Report, String> {
    if options.backend == Backend::Sqlite && options.replicas != 1 {
        return Err("SQLite serves one replica: use --replicas 1, or --backend postgres".into());
    }
    if options.replicas == 0 || options.stations == 0 {
        return Err("--replicas and --stations must be at least 1".into());
    }
    if options.kill_replica_at.is_some() && options.replicas < 2 {
        return Err("--kill-replica-at needs --replicas 2 or more (one must survive)".into());
    }
    std::fs::create_dir_all(&options.dir)
        .map_err(|e| format!("cannot create {}: {e}", options.dir.display()))?;
    let database = match options.backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let base = options
                .database_url
                .clone()
                .ok_or("--backend postgres needs --database-url (or TESSERA_TEST_DATABASE_URL)")?;
            let url = tessera_store::testing::fresh_postgres_database(&base).await;
            Some((base, url))
        }
    };
    let result = run_on(options, database.as_ref().map(|(_, url)| url.as_str())).await;
    if let Some((base, url)) = &database {
        if !options.keep {
            tessera_store::testing::drop_postgres_database(base, url).await;
        }
    }
    if !options.keep && result.is_ok() {
        let _ = std::fs::remove_dir_all(&options.dir);
    }
    result
}

async fn run_on(options: &Options, database_url: Option<&str>) -> Result<Report, String> {
    let data = options.dir.join("data");
    let password = random_hex(16);
    eprintln!(
        "bench-load: creating the organisation and {} stations",
        options.stations
    );
    let tokens = cluster::init(&data, database_url, &password, options.stations).await?;
    let mut cluster = cluster::Cluster::start(options, &data, database_url).await?;
    let outcome = drive(options, &mut cluster, &password, tokens, database_url).await;
    cluster.stop();
    let (mut report, jobs) = outcome?;
    eprintln!("bench-load: checking the database");
    report.findings = check::check(&data, database_url, &jobs).await?;
    Ok(report)
}

async fn drive(
    options: &Options,
    cluster: &mut cluster::Cluster,
    password: &str,
    tokens: Vec<(String, tessera_core::secret::StationSecret)>,
    database_url: Option<&str>,
) -> Result<(Report, Vec<String>), String> {
    let api = driver::Api::sign_in(&cluster.base, password).await?;
    eprintln!(
        "bench-load: enrolling and connecting {} stations",
        tokens.len()
    );
    let stations = driver::connect_stations(&cluster.base, &options.dir, tokens).await?;
    cluster.wait_stations(&api, stations.ids.len()).await?;
    let plan = driver::Plan::new(options.budget, stations.ids.len());
    eprintln!("bench-load: creating the people");
    driver::create_people(&api, &stations.ids, &plan).await?;

    let pids = cluster.pids();
    let before = procstat::Snapshot::take(&pids, database_url.is_some());
    let commits_before = match database_url {
        Some(url) => Some(procstat::commits(url).await?),
        None => None,
    };
    let started = Instant::now();
    eprintln!("bench-load: running");
    let stop = Arc::new(AtomicBool::new(false));
    let healthz = tokio::spawn(driver::sample_healthz(cluster.base.clone(), stop.clone()));
    let killer = options.kill_replica_at.map(|at| {
        let victim = cluster.victim();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(at)).await;
            victim.kill()
        })
    });
    let results = driver::run_all(&api, &stations.ids, &plan).await;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let killed = match killer {
        Some(k) => {
            k.abort();
            cluster.killed()
        }
        None => None,
    };
    let mut after = procstat::Snapshot::take(&pids, database_url.is_some());
    if let Some(dead) = cluster.killed_cpu() {
        after.keep_dead(dead);
    }
    let commits = match (database_url, commits_before) {
        (Some(url), Some(before)) => {
            // Idle PostgreSQL backends report their counters within ten seconds.
            tokio::time::sleep(Duration::from_secs(11)).await;
            Some(procstat::commits(url).await? - before)
        }
        _ => None,
    };
    let (healthz, healthz_failed) = healthz.await.unwrap_or_default();
    stations.stop();
    let cpu = after.since(&before);
    Ok((
        Report {
            backend: options.backend,
            replicas: options.replicas,
            stations: options.stations,
            elapsed,
            completed: results.completed,
            latencies: results.latencies,
            failures: results.failures,
            cpu,
            commits,
            healthz,
            healthz_failed,
            killed,
            findings: Findings::default(),
        },
        results.jobs,
    ))
}

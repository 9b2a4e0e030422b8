//! The system under test: the organisation (`tessera init` with the demo content and N remote
//! stations), R replicas of `tessera serve` as child processes on one database, and HAProxy in
//! front of them when R > 1 (round robin, `/healthz` checks, WebSocket-long tunnel timeout).

use super::{procstat, random_hex, Options};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_core::issuance::Actor;
use tessera_core::secret::StationSecret;
use tessera_core::stations;
use tessera_server::{InitSpec, Options as ServerOptions, StartMode, Tessera};

/// Creates the organisation as `tessera init --demo` does (PIV Standard, the Corporate Badge
/// layout, the first administrator with `password`) and N remote stations; their enrolment
/// tokens, by station name.
pub async fn init(
    data: &Path,
    database_url: Option<&str>,
    password: &str,
    stations: usize,
) -> Result<Vec<(String, StationSecret)>, String> {
    let mut options = ServerOptions::new(data);
    options.database_url = database_url.map(str::to_owned);
    options.start = StartMode::Existing;
    let spec = InitSpec {
        demo_content: true,
        simulated_printer: false,
        admin_password: Some(tessera_core::Password::new(password)),
        admin: "admin".into(),
    };
    let (t, _) = Tessera::init(&options, &spec)
        .await
        .map_err(|e| format!("init: {e}"))?;
    let actor = Actor::cli();
    let mut tokens = Vec::with_capacity(stations);
    for i in 0..stations {
        let name = format!("Load station {i:04}");
        let (_, token) = stations::create(&t.services, &actor, &name)
            .await
            .map_err(|e| format!("{} {e}", e.code().as_str()))?;
        tokens.push((name, token));
    }
    t.store.close().await;
    Ok(tokens)
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// The replica the run kills, and what it had used of the CPU just before.
#[derive(Clone)]
pub struct Victim {
    pid: u32,
    name: String,
    killed: Arc<Mutex<Option<(String, f64)>>>,
}

impl Victim {
    pub fn kill(&self) {
        let cpu = procstat::process_seconds(self.pid).unwrap_or(0.0);
        let done = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
        if matches!(done, Ok(s) if s.success()) {
            eprintln!("bench-load: killed {} (pid {})", self.name, self.pid);
            *self.killed.lock().unwrap() = Some((self.name.clone(), cpu));
        }
    }
}

pub struct Cluster {
    replicas: Vec<(String, u16, Child)>,
    haproxy: Option<Child>,
    /// Where stations and drivers go: the balancer, or the one replica.
    pub base: String,
    killed: Arc<Mutex<Option<(String, f64)>>>,
}

impl Cluster {
    pub async fn start(
        options: &Options,
        data: &Path,
        database_url: Option<&str>,
    ) -> Result<Self, String> {
        let logs = options.dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
        // The replicas' shared secret, in a file of the owner's only, as `serve` takes it.
        let secret_file = options.dir.join("cluster-secret");
        std::fs::write(&secret_file, random_hex(32)).map_err(|e| e.to_string())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| e.to_string())?;
        }
        let mut cluster = Self {
            replicas: Vec::new(),
            haproxy: None,
            base: String::new(),
            killed: Arc::new(Mutex::new(None)),
        };
        for i in 0..options.replicas {
            let port = free_port()?;
            let log = std::fs::File::create(logs.join(format!("replica-{i}.log")))
                .map_err(|e| e.to_string())?;
            let mut command = Command::new(&options.exe);
            command
                .arg("serve")
                .arg("--data")
                .arg(data)
                .args(["--listen", &format!("127.0.0.1:{port}")])
                // A killed replica's jobs are taken over this soon.
                .args(["--job-lease-secs", "5"])
                .args(["--cluster-url", &format!("http://127.0.0.1:{port}")])
                .arg("--cluster-secret-file")
                .arg(&secret_file)
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .env_remove("TESSERA_CONFIG")
                .env_remove("TESSERA_LISTEN")
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log);
            match database_url {
                Some(url) => command.env("TESSERA_DATABASE_URL", url),
                None => command.env_remove("TESSERA_DATABASE_URL"),
            };
            let child = command
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", options.exe.display()))?;
            cluster.replicas.push((format!("replica {i}"), port, child));
        }
        for (name, port, _) in &cluster.replicas {
            wait_healthy(&format!("http://127.0.0.1:{port}"), name).await?;
        }
        if options.replicas == 1 {
            cluster.base = format!("http://127.0.0.1:{}", cluster.replicas[0].1);
        } else {
            let port = free_port()?;
            let cfg = options.dir.join("haproxy.cfg");
            std::fs::write(&cfg, haproxy_config(port, &cluster.replicas))
                .map_err(|e| e.to_string())?;
            let log = std::fs::File::create(logs.join("haproxy.log")).map_err(|e| e.to_string())?;
            let child = Command::new("haproxy")
                .arg("-f")
                .arg(&cfg)
                .arg("-db")
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| {
                    format!("cannot start haproxy ({e}): install it (apt-get install haproxy)")
                })?;
            cluster.haproxy = Some(child);
            cluster.base = format!("http://127.0.0.1:{port}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Some(Ok(Some(status))) = cluster.haproxy.as_mut().map(Child::try_wait) {
                return Err(format!(
                    "haproxy ended ({status}): see {}",
                    logs.join("haproxy.log").display()
                ));
            }
            wait_healthy(&cluster.base, "haproxy").await?;
        }
        Ok(cluster)
    }

    /// The pids of the replicas.
    pub fn pids(&self) -> Vec<u32> {
        self.replicas.iter().map(|(_, _, c)| c.id()).collect()
    }

    /// The replica `--kill-replica-at` kills: the first (never the last one standing).
    pub fn victim(&self) -> Victim {
        let (name, _, child) = &self.replicas[0];
        Victim {
            pid: child.id(),
            name: name.clone(),
            killed: self.killed.clone(),
        }
    }

    pub fn killed(&self) -> Option<String> {
        self.killed.lock().unwrap().as_ref().map(|(n, _)| n.clone())
    }

    /// The killed replica's pid and CPU seconds just before it was killed.
    pub fn killed_cpu(&self) -> Option<(u32, f64)> {
        let killed = self.killed.lock().unwrap();
        killed
            .as_ref()
            .map(|(_, cpu)| (self.replicas[0].2.id(), *cpu))
    }

    /// Waits until the replicas hold `n` station connections between them (each replica's
    /// Stations page, asked directly).
    pub async fn wait_stations(&self, api: &super::driver::Api, n: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut last = 0;
        while Instant::now() < deadline {
            let mut connected = 0;
            for (_, port, _) in &self.replicas {
                connected += api
                    .connected_stations(&format!("http://127.0.0.1:{port}"))
                    .await
                    .unwrap_or(0);
            }
            if connected >= n {
                return Ok(());
            }
            last = connected;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(format!(
            "only {last} of {n} stations connected within two minutes"
        ))
    }

    /// Stops HAProxy and the replicas (SIGTERM, then SIGKILL after five seconds).
    pub fn stop(&mut self) {
        if let Some(mut h) = self.haproxy.take() {
            let _ = h.kill();
            let _ = h.wait();
        }
        for (_, _, child) in &mut self.replicas {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (_, _, child) in &mut self.replicas {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.replicas.clear();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn wait_healthy(base: &str, name: &str) -> Result<(), String> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(res) = http.get(format!("{base}/healthz")).send().await {
            if res.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{name} did not answer /healthz within a minute"))
}

/// Round robin over the replicas; `/healthz` decides which are up; `timeout tunnel` keeps the
/// stations' WebSockets open (they ping well within it).
fn haproxy_config(port: u16, replicas: &[(String, u16, Child)]) -> String {
    let mut cfg = format!(
        "global\n    maxconn 4096\n\n\
         defaults\n    mode http\n    option redispatch\n    retries 2\n    \
         timeout connect 2s\n    timeout client 120s\n    timeout server 120s\n    \
         timeout tunnel 1h\n    timeout http-keep-alive 30s\n\n\
         frontend tessera\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\n\
         backend replicas\n    balance roundrobin\n    option httpchk GET /healthz\n"
    );
    for (i, (_, p, _)) in replicas.iter().enumerate() {
        cfg.push_str(&format!(
            "    server r{i} 127.0.0.1:{p} check inter 500ms fall 2 rise 2\n"
        ));
    }
    cfg
}

//! Server and station as separate `tessera` processes on loopback, the issuance driven through
//! the portal's HTTP wizard as a browser would. The station runs the simulated card printer, or,
//! when `scripts/station.sh` provides them, a virtual card in pcscd (`card-sim`) and ippeveprinter:
//! `TESSERA_STATION_PCSC_READER` and `TESSERA_STATION_IPP_URI`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tessera_core::ids::{DeviceId, UserId};
use tessera_core::model::CertificateStatus;
use tessera_core::ports::Store;
use tessera_core::DeviceState;

const PIN: &str = "24681357";
const SIMULATED_PRINTER: &str = "Simulated Card Printer";
const SIMULATED_ENCODER: &str = "Simulated Card Printer Encoder";

/// A child process killed when the test ends, whatever happens.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tessera() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    c.env("RUST_LOG", "info,sqlx=warn");
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    _proc: Proc,
    base: String,
    data: PathBuf,
    password: String,
    station_id: String,
    token: String,
}

/// Creates the organisation (with the demo content) and a station with the CLI, then starts
/// `tessera serve`.
fn start_server(dir: &Path, station_wait_secs: u64) -> Server {
    let data = dir.join("server");
    let out = tessera()
        .args(["init", "--demo", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let password = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Password: "))
        .expect("init prints admin's password")
        .to_owned();
    let out = tessera()
        .args(["stations", "add", "--name", "Desk 1", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let proc = Proc(
        tessera()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--station-wait-secs", &station_wait_secs.to_string()])
            .arg("--data")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_for(Duration::from_secs(60), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    Server {
        _proc: proc,
        base,
        data,
        password,
        station_id: added["station_id"].as_str().unwrap().to_owned(),
        token: added["enrolment_token"].as_str().unwrap().to_owned(),
    }
}

fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "gave up waiting after {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where the station's card sits: the simulated printer, or a pcscd reader and an IPP printer.
#[derive(Clone)]
enum Hardware {
    Simulated,
    Pcsc { reader: String, ipp: String },
}

impl Hardware {
    fn printer(&self) -> &str {
        match self {
            Hardware::Simulated => SIMULATED_PRINTER,
            Hardware::Pcsc { .. } => "Desk IPP",
        }
    }
    fn reader(&self) -> &str {
        match self {
            Hardware::Simulated => SIMULATED_ENCODER,
            Hardware::Pcsc { reader, .. } => reader,
        }
    }
}

fn start_station(server: &Server, dir: &Path, hw: &Hardware, extra: &[&str]) -> Proc {
    let data = dir.join("station");
    let mut c = tessera();
    c.args(["station", "--server", &server.base, "--data"])
        .arg(&data);
    if !data.join("station.json").exists() {
        c.args(["--token", &server.token]);
    }
    match hw {
        Hardware::Simulated => {
            c.arg("--simulated-printer");
        }
        Hardware::Pcsc { reader, ipp } => {
            c.args(["--readers", "pcsc"])
                .args(["--printer", &format!("Desk IPP={ipp}")])
                .args(["--encoder", &format!("Desk IPP={reader}")]);
        }
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("station.log"))
        .unwrap();
    Proc(
        c.args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// The browser stand-in of the server's portal tests: cookies kept, CSRF tokens read from pages.
#[path = "../../server/tests/support/portal.rs"]
#[allow(dead_code)]
mod portal;
use portal::{csrf, Portal};

/// The wizard as an operator at the remote station goes through it.
struct Browser(Portal);

impl std::ops::Deref for Browser {
    type Target = Portal;
    fn deref(&self) -> &Portal {
        &self.0
    }
}

impl Browser {
    /// Signs in as admin, choosing the remote station.
    async fn sign_in(server: &Server) -> Self {
        let b = Browser(Portal {
            base: server.base.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
        });
        let (_, _, page) = b.get("/login").await;
        assert!(
            page.contains("Desk 1"),
            "the sign-in page offers the station"
        );
        let (status, _, body) = b
            .post(
                "/login",
                &[
                    ("csrf", &csrf(&page)),
                    ("operator", "admin"),
                    ("password", &server.password),
                    ("station", &server.station_id),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        b
    }

    /// Cancel on the Print Device step: the card stays Pending, and jdoe may be issued again
    /// (one issuance at a time per person).
    async fn cancel(&self, job: &serde_json::Value) {
        let id = job["id"].as_str().unwrap();
        let (_, _, page) = self.get(&format!("/issue/{id}")).await;
        let (status, _, page) = self
            .post(&format!("/issue/{id}/cancel"), &[("csrf", &csrf(&page))])
            .await;
        assert_eq!(status, 200, "{page}");
    }

    /// The wizard from Add Device to the end of personalisation and printing; returns the job.
    async fn issue(&self, hw: &Hardware) -> serde_json::Value {
        let (_, _, page) = self.get("/users/jdoe/issue").await;
        assert!(
            page.contains(hw.printer()),
            "the tile lists the station's printer: {page}"
        );
        let token = csrf(&page);
        let (status, _, page) = self
            .post(
                "/users/jdoe/issue/configure",
                &[
                    ("csrf", &token),
                    ("printer", hw.printer()),
                    ("reader", hw.reader()),
                ],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let (status, url, page) = self
            .post(
                "/users/jdoe/issue/start",
                &[("csrf", &token), ("layout", "corporate-badge")],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let job = url.trim_start_matches("/issue/").to_owned();
        let (status, _, page) = self
            .post(
                &format!("/issue/{job}/policy"),
                &[
                    ("csrf", &token),
                    ("policy", "piv-standard"),
                    ("pin", PIN),
                    ("pin_confirm", PIN),
                ],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let start = Instant::now();
        loop {
            let (_, _, body) = self.get(&format!("/api/v1/jobs/{job}")).await;
            let j: serde_json::Value = serde_json::from_str(&body).unwrap();
            match j["step"].as_str().unwrap() {
                "issuing" | "printing" | "started" => {}
                _ => return j,
            }
            assert!(start.elapsed() < Duration::from_secs(120), "{j}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The station is connected when the Stations page says so.
async fn wait_connected(b: &Browser) {
    let start = Instant::now();
    loop {
        let (_, _, page) = b.get("/users/jdoe/issue").await;
        if page.contains(SIMULATED_PRINTER) || page.contains("Desk IPP") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the station never connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Devices and certificates as the server's database holds them, read after the server stopped.
async fn device_state(data: &Path, device: &str) -> (DeviceState, Vec<CertificateStatus>) {
    let (t, _) = tessera_server::Tessera::open(&tessera_server::Options::new(data))
        .await
        .unwrap();
    let id = DeviceId::new(device);
    let d = t.store.device(&id).await.unwrap();
    let certs = t.store.certificates_of_device(&id).await.unwrap();
    let _ = t.store.devices_of_user(&UserId::new("jdoe")).await.unwrap();
    (d.state, certs.into_iter().map(|c| c.status).collect())
}

fn hardware_from_env() -> Option<Hardware> {
    match (
        std::env::var("TESSERA_STATION_PCSC_READER"),
        std::env::var("TESSERA_STATION_IPP_URI"),
    ) {
        (Ok(reader), Ok(ipp)) => Some(Hardware::Pcsc { reader, ipp }),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_is_issued_through_a_station_process_and_its_deaths_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let hw = Hardware::Simulated;
    // A station that dies waits 2 s at most before its issuance fails.
    let server = start_server(dir.path(), 2);
    let station = start_station(&server, dir.path(), &hw, &[]);
    let b = Browser::sign_in(&server).await;
    wait_connected(&b).await;
    let job = b.issue(&hw).await;
    assert_eq!(job["step"], "printed", "{job}");
    let good = job["device"].as_str().unwrap().to_owned();
    b.cancel(&job).await;
    drop(station);

    // Start reads the fed card first (SELECT, GET SERIAL, GET VERSION: APDUs 1-3); then the
    // station process is killed at APDU 6 (in personalisation's SELECT script), 8 (mutual
    // authentication), 12 (key generation) and 18 (the writes): each card ends Failed with no
    // live certificate.
    let mut failed = Vec::new();
    for at in ["6", "8", "12", "18"] {
        let station = start_station(&server, dir.path(), &hw, &["--exit-after-apdus", at]);
        wait_connected(&b).await;
        let job = b.issue(&hw).await;
        assert_eq!(job["step"], "failed", "killed at APDU {at}: {job}");
        let message = job["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains("station"), "killed at {at}: {message}");
        // The card gets its record after SELECT and authentication (APDU 8): later deaths
        // leave a Failed device behind, earlier ones none.
        match job["device"].as_str() {
            Some(device) => failed.push(device.to_owned()),
            None => assert!(at == "6" || at == "8", "killed at {at}: no device record"),
        }
        drop(station);
    }
    assert_eq!(
        failed.len(),
        2,
        "the kills in key generation and writes leave records"
    );
    drop(b);
    drop(server._proc);
    let (state, certs) = device_state(&server.data, &good).await;
    assert_eq!(state, DeviceState::Pending);
    assert!(certs.iter().all(|c| *c == CertificateStatus::OnHold));
    for device in failed {
        let (state, certs) = device_state(&server.data, &device).await;
        assert_eq!(state, DeviceState::Failed);
        assert!(
            certs.iter().all(|c| *c == CertificateStatus::Revoked),
            "no live certificate on a failed card: {certs:?}"
        );
    }
}

/// A card in pcscd, printed on ippeveprinter, all through the station process. With
/// `TESSERA_STATION_EXPECT=failed` (scripts/station.sh pulls the card part-way through with
/// `card-sim --remove-after-apdus`) the issuance must fail cleanly instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pcsc_card_and_an_ipp_printer_behind_a_station_process() {
    let Some(hw) = hardware_from_env() else {
        assert!(
            std::env::var("TESSERA_REQUIRE_STATION_PCSC").is_err(),
            "TESSERA_REQUIRE_STATION_PCSC is set but scripts/station.sh gave no reader"
        );
        eprintln!("skipped: run scripts/station.sh for the pcscd + ippeveprinter station test");
        return;
    };
    let pulled = std::env::var("TESSERA_STATION_EXPECT").as_deref() == Ok("failed");
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), 2);
    let _station = start_station(&server, dir.path(), &hw, &[]);
    let b = Browser::sign_in(&server).await;
    wait_connected(&b).await;
    let job = b.issue(&hw).await;
    let device = job["device"].as_str().map(str::to_owned);
    drop(b);
    drop(server._proc);
    if pulled {
        assert_eq!(job["step"], "failed", "{job}");
        let message = job["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("not reachable"), "{message}");
        if let Some(device) = device {
            let (state, certs) = device_state(&server.data, &device).await;
            assert_eq!(state, DeviceState::Failed);
            assert!(
                certs.iter().all(|c| *c == CertificateStatus::Revoked),
                "{certs:?}"
            );
        }
    } else {
        assert_eq!(job["step"], "printed", "{job}");
        let (state, certs) = device_state(&server.data, &device.unwrap()).await;
        assert_eq!(state, DeviceState::Pending);
        assert_eq!(certs.len(), 4);
    }
}

//! The station protocol over TLS: the server serves HTTPS with a certificate from a test CA made
//! here (rcgen), and the station checks it. A station given the CA file enrols, connects over
//! `wss://` and a card is issued through it; without the CA file, against a certificate for
//! another host name, or an expired one, the station stops with a sentence naming the problem.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tessera_core::ids::*;
use tessera_core::model::{BuiltinRole, JobStep};
use tessera_core::ports::Store;
use tessera_core::secret::StationSecret;
use tessera_core::{stations, DeviceState};
use tessera_server::app::router;
use tessera_server::serve::{serve_listener, ServerTls};
use tessera_server::station_process::{self, StationArgs, SIMULATED_ENCODER, SIMULATED_PRINTER};
use tessera_server::{Options, Tessera};
use tessera_station::agent::{Agent, AgentOptions};

/// A test CA, and server certificates it signs.
struct Pki {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

/// A certificate and its key, as PEM.
struct Issued {
    cert: String,
    key: String,
}

impl Pki {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Tessera Test Server CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        Self { ca, ca_key }
    }

    /// A server certificate for `names` (DNS names or IP addresses), valid from now on unless
    /// `expired`.
    fn server(&self, names: &[&str], expired: bool) -> Issued {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let now = time::OffsetDateTime::now_utc();
        if expired {
            params.not_before = now - time::Duration::days(30);
            params.not_after = now - time::Duration::days(1);
        } else {
            params.not_before = now - time::Duration::hours(1);
            params.not_after = now + time::Duration::days(30);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn ca_pem(&self) -> String {
        self.ca.pem()
    }
}

struct Setup {
    dir: tempfile::TempDir,
    t: Tessera,
    server: String,
    station: StationId,
    token: StationSecret,
    station_dir: PathBuf,
}

/// Serves `t` over HTTPS on a loopback port with `identity` (its files written to `dir`);
/// returns the server's URL.
async fn serve_tls(t: &Tessera, identity: &Issued, dir: &Path) -> String {
    let cert = write(dir, "server.pem", &identity.cert);
    let key = write(dir, "server-key.pem", &identity.key);
    // As `tessera serve` does: every handshake also asks for a card's certificate (optional),
    // which stations do not have.
    let tls = ServerTls::from_pem_files(&cert, &key)
        .unwrap()
        .accepting_cards(&t.services.ca.chain_pem())
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("https://{}", listener.local_addr().unwrap());
    let app = router(t.clone());
    tokio::spawn(async move {
        serve_listener(listener, app, Some(tls), std::future::pending())
            .await
            .unwrap()
    });
    server
}

/// Tessera serving HTTPS on a loopback port with `identity`, and a station to enrol.
async fn setup(identity: &Issued) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(dir.path().join("data"));
    options.station_reconnect_wait = Duration::from_secs(5);
    let (t, _) = Tessera::open(&options).await.unwrap();
    let server = serve_tls(&t, identity, dir.path()).await;
    let admin = support::actor(BuiltinRole::Administrator);
    let (station, token) = stations::create(&t.services, &admin, "Desk 7")
        .await
        .unwrap();
    Setup {
        station_dir: dir.path().join("station"),
        dir,
        t,
        server,
        station: station.id,
        token,
    }
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// The station's arguments for its first start, with the enrolment token.
fn args(s: &Setup, ca_file: Option<PathBuf>) -> StationArgs {
    StationArgs {
        server: Some(s.server.clone()),
        ca_file,
        token: Some(s.token.clone()),
        data_dir: s.station_dir.clone(),
        simulated_printer: true,
        ..Default::default()
    }
}

async fn wait_connected(s: &Setup) {
    support::wait_connected(&s.t, &s.station).await
}

async fn issue_through_station(s: &Setup) -> tessera_core::model::IssuanceJob {
    let actor = support::actor(BuiltinRole::Administrator);
    let at = (s.station.clone(), SIMULATED_PRINTER, SIMULATED_ENCODER);
    support::issue_at(&s.t, &actor, &at, "piv-standard", "246810").await
}

/// A station that runs with a credential it never got (the server is never reached anyway):
/// what it says when it stops.
async fn run_refused(s: &Setup, a: &StationArgs) -> String {
    let mut options = AgentOptions::new(
        s.server.clone(),
        StationSecret::new(format!("tsc_{}", "ab".repeat(32))),
    );
    options.trust = station_process::server_trust(a.ca_file.as_deref()).unwrap();
    options.min_backoff = Duration::from_millis(50);
    let station = station_process::local_station(a).unwrap();
    let agent = Agent::new(Arc::new(station), options);
    tokio::time::timeout(Duration::from_secs(10), agent.run())
        .await
        .expect("the station stops instead of retrying")
        .unwrap_err()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_trusting_the_servers_ca_issues_a_card_over_tls() {
    let pki = Pki::new();
    let s = setup(&pki.server(&["localhost", "127.0.0.1"], false)).await;
    let ca_file = write(s.dir.path(), "ca.pem", &pki.ca_pem());
    let config = station_process::enrol_or_load(&args(&s, Some(ca_file.clone())))
        .await
        .unwrap();
    assert_eq!(config.ca_file.as_deref(), Some(ca_file.as_path()));
    // Later starts give only the data folder: server and CA file are remembered.
    let later = StationArgs {
        data_dir: s.station_dir.clone(),
        simulated_printer: true,
        ..Default::default()
    };
    let _station = tokio::spawn(station_process::run(later));
    wait_connected(&s).await;

    let job = issue_through_station(&s).await;
    assert_eq!(job.step, JobStep::Printed, "{:?}", job.error);
    let device =
        s.t.store
            .device(job.device.as_ref().unwrap())
            .await
            .unwrap();
    assert_eq!(device.state, DeviceState::Pending);
    assert_eq!(
        s.t.store
            .certificates_of_device(&device.id)
            .await
            .unwrap()
            .len(),
        4
    );
    // The card was personalised at the station, on the far side of the TLS connection.
    assert_eq!(
        std::fs::read_dir(s.station_dir.join("cards"))
            .unwrap()
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_without_the_ca_file_refuses_the_server() {
    let pki = Pki::new();
    let s = setup(&pki.server(&["localhost", "127.0.0.1"], false)).await;
    let a = args(&s, None);
    // Enrolment: refused before the token leaves the station.
    let e = station_process::enrol_or_load(&a).await.unwrap_err();
    assert!(e.contains("untrusted issuer"), "{e}");
    assert!(e.contains("--ca-file"), "{e}");
    assert!(!s.station_dir.join("station.json").exists());
    // A running station stops with the same reason rather than retrying.
    let e = run_refused(&s, &a).await;
    assert!(e.contains("untrusted issuer"), "{e}");
    // The token was never spent: the station enrols once it trusts the CA.
    let ca_file = write(s.dir.path(), "ca.pem", &pki.ca_pem());
    station_process::enrol_or_load(&args(&s, Some(ca_file)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_name_is_refused() {
    let pki = Pki::new();
    let s = setup(&pki.server(&["cms.example.org"], false)).await;
    let ca_file = write(s.dir.path(), "ca.pem", &pki.ca_pem());
    let a = args(&s, Some(ca_file));
    let e = station_process::enrol_or_load(&a).await.unwrap_err();
    assert!(e.contains("another host name"), "{e}");
    let e = run_refused(&s, &a).await;
    assert!(e.contains("another host name"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused() {
    let pki = Pki::new();
    let s = setup(&pki.server(&["localhost", "127.0.0.1"], true)).await;
    let ca_file = write(s.dir.path(), "ca.pem", &pki.ca_pem());
    let e = station_process::enrol_or_load(&args(&s, Some(ca_file)))
        .await
        .unwrap_err();
    assert!(e.contains("expired"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_to_a_tls_server_gets_nowhere() {
    let pki = Pki::new();
    let s = setup(&pki.server(&["localhost", "127.0.0.1"], false)).await;
    let plain = s.server.replace("https://", "http://");
    let mut a = args(&s, None);
    a.server = Some(plain);
    // The server does not answer plain HTTP, so the token is not spent.
    assert!(station_process::enrol_or_load(&a).await.is_err());
    let ca_file = write(s.dir.path(), "ca.pem", &pki.ca_pem());
    station_process::enrol_or_load(&args(&s, Some(ca_file)))
        .await
        .unwrap();
}

/// A browser stand-in over HTTPS: trusts only the test CA, keeps cookies (as name=value, the
/// attributes checked by the test), follows no redirect. One connection per request.
struct Browser {
    server: String,
    tls: tokio_rustls::TlsConnector,
    cookies: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

struct Page {
    status: u16,
    /// The Strict-Transport-Security header, if any.
    hsts: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

impl Browser {
    fn new(server: &str, ca_pem: &str) -> Self {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        Self {
            server: server.to_owned(),
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            cookies: Default::default(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.request("GET", path, None).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.request("POST", path, Some(form)).await
    }

    async fn request(&self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        use http_body_util::BodyExt;
        let authority = self.server.trim_start_matches("https://").to_owned();
        let tcp = tokio::net::TcpStream::connect(&authority).await.unwrap();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = self.tls.connect(name, tcp).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(connection);
        let cookie = self
            .cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let body = form
            .map(|f| {
                f.iter()
                    .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&")
            })
            .unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &authority)
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let hsts = response
            .headers()
            .get("strict-transport-security")
            .map(|h| h.to_str().unwrap().to_owned());
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|c| c.to_str().unwrap().to_owned())
            .collect();
        for c in &set_cookies {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies
                .lock()
                .unwrap()
                .insert(k.to_owned(), v.to_owned());
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            hsts,
            set_cookies,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_over_https_hands_out_https_station_commands_and_secure_cookies() {
    let pki = Pki::new();
    let (dir, (t, password)) = support::open_with_password().await;
    let server = serve_tls(
        &t,
        &pki.server(&["localhost", "127.0.0.1"], false),
        dir.path(),
    )
    .await;
    let admin = Browser::new(&server, &pki.ca_pem());

    // Signing in: every cookie the portal sets over HTTPS is Secure, and HSTS keeps the
    // browser on HTTPS.
    let login = admin.get("/login").await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.hsts.as_deref(), Some("max-age=31536000"));
    let signed_in = admin
        .post(
            "/login",
            &[
                ("csrf", &support::portal::csrf(&login.body)),
                ("operator", "admin"),
                ("password", &password),
            ],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let cookies = [login.set_cookies, signed_in.set_cookies].concat();
    assert!(cookies.len() >= 2, "{cookies:?}");
    for cookie in &cookies {
        assert!(cookie.ends_with("; Secure"), "{cookie}");
    }

    // The Stations page hands out an https:// command.
    let page = admin.get("/stations").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let shown = admin
        .post(
            "/stations/create",
            &[
                ("csrf", &support::portal::csrf(&page.body)),
                ("name", "Desk 9"),
            ],
        )
        .await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    let at = shown.body.find("id=\"enrolment-token\">").unwrap() + 21;
    let token = &shown.body[at..at + shown.body[at..].find('<').unwrap()];
    assert!(
        shown.body.contains(&format!(
            "tessera station --server {server} --token {token}"
        )),
        "{}",
        shown.body
    );

    // The command works, given the CA file.
    let ca_file = write(dir.path(), "ca.pem", &pki.ca_pem());
    let config = station_process::enrol_or_load(&StationArgs {
        server: Some(server.clone()),
        ca_file: Some(ca_file),
        token: Some(StationSecret::new(token)),
        data_dir: dir.path().join("station"),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(config.station_name, "Desk 9");
}

#[test]
fn unusable_server_certificates_are_refused_with_the_reason() {
    let pki = Pki::new();
    let one = pki.server(&["localhost"], false);
    let other = pki.server(&["localhost"], false);
    let e = ServerTls::from_pem(
        "cert.pem",
        one.cert.as_bytes(),
        "key.pem",
        other.key.as_bytes(),
    )
    .unwrap_err();
    assert!(
        e.contains("the TLS key in key.pem does not belong to the certificate in cert.pem"),
        "{e}"
    );
    let e = ServerTls::from_pem("cert.pem", b"", "key.pem", one.key.as_bytes()).unwrap_err();
    assert!(e.contains("holds no certificate"), "{e}");
    let e = ServerTls::from_pem(
        "cert.pem",
        one.cert.as_bytes(),
        "key.pem",
        one.cert.as_bytes(),
    )
    .unwrap_err();
    assert!(e.contains("holds no private key"), "{e}");
    let e = ServerTls::from_pem_files(
        Path::new("/nonexistent/cert.pem"),
        Path::new("/nonexistent/key.pem"),
    )
    .unwrap_err();
    assert!(
        e.contains("cannot read the TLS certificate file /nonexistent/cert.pem"),
        "{e}"
    );
    ServerTls::from_pem(
        "cert.pem",
        one.cert.as_bytes(),
        "key.pem",
        one.key.as_bytes(),
    )
    .unwrap();
}

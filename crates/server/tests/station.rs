//! The station protocol end to end inside one test process: the server's router on a loopback
//! port, the station agent connecting to it over a real WebSocket, and the issuance engine driving
//! a virtual card through the relay. Separate-process tests live in the `tessera` crate.

mod support;

use std::sync::Arc;
use std::time::Duration;
use tessera_core::ids::*;
use tessera_core::model::{BuiltinRole, CertificateStatus, JobStep};
use tessera_core::ports::Store;
use tessera_core::secret::StationSecret;
use tessera_core::{stations, DeviceState};
use tessera_server::app::router;
use tessera_server::station_process::{self, StationArgs, SIMULATED_ENCODER, SIMULATED_PRINTER};
use tessera_server::{Options, Tessera};
use tessera_station::agent::{self, Agent, AgentOptions};

struct Setup {
    _dir: tempfile::TempDir,
    t: Tessera,
    server: String,
    station: StationId,
    token: StationSecret,
    station_dir: std::path::PathBuf,
}

async fn setup(reconnect_wait: Duration) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(dir.path().join("data"));
    options.station_reconnect_wait = reconnect_wait;
    let (t, _) = Tessera::open(&options).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    let app = router(t.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let admin = support::actor(BuiltinRole::Administrator);
    let (station, token) = stations::create(&t.services, &admin, "Desk 7")
        .await
        .unwrap();
    Setup {
        station_dir: dir.path().join("station"),
        _dir: dir,
        t,
        server,
        station: station.id,
        token,
    }
}

fn args(s: &Setup) -> StationArgs {
    StationArgs {
        server: Some(s.server.clone()),
        data_dir: s.station_dir.clone(),
        simulated_printer: true,
        ..Default::default()
    }
}

/// Enrols (first call) and starts the agent as a task; aborting the task kills the station.
async fn start_agent(
    s: &Setup,
    tune: impl FnOnce(&mut AgentOptions),
) -> tokio::task::JoinHandle<()> {
    let mut a = args(s);
    if tessera_station::config::StationConfig::load(&s.station_dir)
        .unwrap()
        .is_none()
    {
        a.token = Some(s.token.clone());
    }
    let config = station_process::enrol_or_load(&a).await.unwrap();
    let station = station_process::local_station(&a).unwrap();
    let mut options = AgentOptions::new(s.server.clone(), config.credential());
    options.min_backoff = Duration::from_millis(50);
    tune(&mut options);
    let agent = Agent::new(Arc::new(station), options);
    let handle = tokio::spawn(async move {
        let _ = agent.run().await;
    });
    wait_connected(s).await;
    handle
}

async fn wait_connected(s: &Setup) {
    support::wait_connected(&s.t, &s.station).await
}

async fn issue_through_station(s: &Setup) -> tessera_core::model::IssuanceJob {
    let actor = support::actor(BuiltinRole::Administrator);
    let at = (s.station.clone(), SIMULATED_PRINTER, SIMULATED_ENCODER);
    support::issue_at(&s.t, &actor, &at, "piv-standard", "246810").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_is_issued_and_printed_through_the_station() {
    let s = setup(Duration::from_secs(5)).await;
    let _agent = start_agent(&s, |_| {}).await;
    let link = s.t.hub.remote(&s.station).unwrap();
    let inventory = link.inventory();
    assert_eq!(inventory.printers[0].name, SIMULATED_PRINTER);
    assert!(inventory
        .readers
        .iter()
        .any(|r| r.name == SIMULATED_ENCODER));
    let encoder = |link: &tessera_station::link::StationLink| {
        link.inventory()
            .readers
            .into_iter()
            .find(|r| r.name == SIMULATED_ENCODER)
            .map(|r| r.card_present)
    };
    assert_eq!(encoder(&link), Some(Some(false)), "no card fed yet");

    let job = issue_through_station(&s).await;
    assert_eq!(job.step, JobStep::Printed, "{:?}", job.error);
    // The station reports the card now in the encoder (an inventory and a card event).
    for _ in 0..100 {
        if encoder(&link) == Some(Some(true)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        encoder(&link),
        Some(Some(true)),
        "the station saw the card arrive"
    );
    let device =
        s.t.store
            .device(job.device.as_ref().unwrap())
            .await
            .unwrap();
    assert_eq!(device.state, DeviceState::Pending);
    let certs = s.t.store.certificates_of_device(&device.id).await.unwrap();
    assert_eq!(certs.len(), 4);
    // The card is at the station: its state file is in the station's folder, not the server's.
    let cards: Vec<_> = std::fs::read_dir(s.station_dir.join("cards"))
        .unwrap()
        .collect();
    assert_eq!(cards.len(), 1);
    assert!(
        std::fs::read_dir(s.station_dir.join("printed"))
            .unwrap()
            .count()
            > 0
    );
    // The credential file is owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.station_dir.join("station.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let events = s.t.store.audit_events(None, 500).await.unwrap();
    for name in ["StationCreated", "StationEnrolled", "StationConnected"] {
        assert!(events.iter().any(|e| e.name == name), "{name} audited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_forged_and_revoked_secrets_are_refused() {
    let s = setup(Duration::from_secs(5)).await;
    let agent = start_agent(&s, |_| {}).await;
    // The token was used by the first enrolment: a replay is refused, as is an invented one.
    let replay = agent::enrol(&s.server, &s.token, &Default::default())
        .await
        .unwrap_err();
    assert!(replay.to_string().contains("already used"), "{replay}");
    let forged = StationSecret::new(format!("tse_{}", "ab".repeat(32)));
    let forged = agent::enrol(&s.server, &forged, &Default::default())
        .await
        .unwrap_err();
    assert!(forged.to_string().contains("unknown"), "{forged}");

    // Revoked: the running connection is cut and the credential never works again.
    let admin = support::actor(BuiltinRole::Administrator);
    stations::revoke(&s.t.services, &admin, &s.station)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(15), agent)
        .await
        .expect("a revoked station stops")
        .unwrap();
    let config = tessera_station::config::StationConfig::load(&s.station_dir)
        .unwrap()
        .unwrap();
    let again = Agent::new(
        Arc::new(station_process::local_station(&args(&s)).unwrap()),
        AgentOptions::new(s.server.clone(), config.credential()),
    );
    let refused = again.run().await.unwrap_err();
    assert!(refused.to_string().contains("revoked"), "{refused}");
    let events = s.t.store.audit_events(None, 500).await.unwrap();
    for name in [
        "StationEnrolmentRefused",
        "StationRevoked",
        "StationConnectionRefused",
    ] {
        assert!(events.iter().any(|e| e.name == name), "{name} audited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_cut_mid_issuance_is_bridged_by_reconnection() {
    let s = setup(Duration::from_secs(10)).await;
    // The connection drops before the 12th APDU; the station keeps the card session, reconnects,
    // and the server sends its pending request again.
    let _agent = start_agent(&s, |o| o.drop_after_apdus = Some(12)).await;
    let job = issue_through_station(&s).await;
    assert_eq!(job.step, JobStep::Printed, "{:?}", job.error);
    let events = s.t.store.audit_events(None, 500).await.unwrap();
    let connections = events
        .iter()
        .filter(|e| e.name == "StationConnected")
        .count();
    assert!(connections >= 2, "the station reconnected ({connections})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_that_dies_mid_issuance_fails_the_card_cleanly() {
    for after in [2, 7, 13] {
        let s = setup(Duration::from_secs(1)).await;
        // The station dies at this APDU, before sending it, and never comes back.
        let _agent = start_agent(&s, |o| {
            o.exit_after_apdus = Some(after);
            o.die_in_process = true;
        })
        .await;
        let svc = &s.t.services;
        let job = issue_through_station(&s).await;
        assert_eq!(job.step, JobStep::Failed, "died at APDU {after}");
        let error = job.error.clone().map(|e| e.message).unwrap_or_default();
        assert!(error.contains("station"), "{error}");
        if let Some(device) = &job.device {
            let device = svc.store.device(device).await.unwrap();
            assert_eq!(device.state, DeviceState::Failed);
            for c in svc.store.certificates_of_device(&device.id).await.unwrap() {
                assert_eq!(c.status, CertificateStatus::Revoked, "died at {after}");
            }
        }
    }
}

#[tokio::test]
async fn a_station_offers_spool_folders_and_refuses_a_missing_one() {
    use tessera_core::ports::StationPort;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cards");
    std::fs::create_dir(&folder).unwrap();
    let mut a = StationArgs {
        data_dir: dir.path().join("station"),
        printers: vec![("Badge Folder".into(), format!("spool:{}", folder.display()))],
        encoders: vec![("Badge Folder".into(), "Desk Reader".into())],
        ..Default::default()
    };
    let station = station_process::local_station(&a).unwrap();
    let printers = station.printers().await.unwrap();
    assert_eq!(printers[0].name, "Badge Folder");
    assert_eq!(printers[0].kind, "spool");
    assert_eq!(printers[0].encoder_reader.as_deref(), Some("Desk Reader"));

    a.printers = vec![("Gone".into(), "spool:/nonexistent/tessera-cards".into())];
    let Err(err) = station_process::local_station(&a) else {
        panic!("a missing spool folder is refused at start");
    };
    assert!(
        err.contains("Gone") && err.contains("does not exist"),
        "{err}"
    );

    // --printer-ca-file is for the ipps:// printers; a plain ipp:// one beside them is fine.
    a.printers = vec![
        ("Plain".into(), "ipp://127.0.0.1:9/ipp/print".into()),
        ("Secure".into(), "ipps://127.0.0.1:9/ipp/print".into()),
    ];
    let ca = dir.path().join("ca.pem");
    let printer_ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(&ca, printer_ca.cert.pem()).unwrap();
    a.printer_ca_file = Some(ca);
    let station = station_process::local_station(&a).unwrap();
    let printers = station.all_printers();
    assert_eq!(printers.len(), 2);
}

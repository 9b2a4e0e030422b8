//! Two replicas of the server on one PostgreSQL database, as `tessera serve` runs them behind a
//! load balancer: the station's WebSocket is held by replica A, the operator works on replica B.
//! B's Start reads the fed card through A (forwarding), B's policy step queues the job for A,
//! A's dispatcher runs it, and B's Continue activates the card.

use std::sync::Arc;
use std::time::Duration;
use tessera_core::ids::*;
use tessera_core::issuance::{self, StartRequest};
use tessera_core::lifecycle::DeviceState;
use tessera_core::model::{BuiltinRole, JobStep};
use tessera_core::{stations, Pin};
use tessera_server::app::router;
use tessera_server::station_process::{self, StationArgs, SIMULATED_ENCODER, SIMULATED_PRINTER};
use tessera_server::wiring::ClusterOptions;
use tessera_server::{Options, Tessera};
use tessera_station::agent::{Agent, AgentOptions};

mod support;

async fn replica(
    url: &str,
    dir: &std::path::Path,
    listener: tokio::net::TcpListener,
) -> (Tessera, String) {
    let address = format!("http://{}", listener.local_addr().unwrap());
    let options = Options {
        database_url: Some(url.to_owned()),
        trust_virtual_card_attestation: true,
        cluster: Some(ClusterOptions {
            url: address.clone(),
            secret: "a secret the replicas share".into(),
        }),
        ..Options::new(dir.join("data"))
    };
    let (t, _) = Tessera::open(&options).await.unwrap();
    let app = router(t.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    tokio::spawn(t.runner.clone().dispatch_forever());
    (t, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_started_on_one_replica_runs_on_the_replica_holding_the_station() {
    let Ok(base) = std::env::var("TESSERA_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("TESSERA_REQUIRE_POSTGRES").is_err(),
            "TESSERA_REQUIRE_POSTGRES is set but TESSERA_TEST_DATABASE_URL is not"
        );
        return;
    };
    let url = tessera_store::testing::fresh_postgres_database(&base).await;
    let dir = tempfile::tempdir().unwrap();
    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let (la, lb) = (bind().await.unwrap(), bind().await.unwrap());
    let (a, a_url) = replica(&url, dir.path(), la).await;
    let (b, b_url) = replica(&url, dir.path(), lb).await;
    // The forwarding endpoints answer only a replica: the shared secret, not a session.
    let http = reqwest::Client::new();
    for secret in [None, Some("a guess")] {
        let mut req = http.get(format!("{b_url}/cluster/stations/any/inventory"));
        if let Some(s) = secret {
            req = req.header("x-tessera-cluster", s);
        }
        assert_eq!(req.send().await.unwrap().status(), 403);
    }
    let admin = support::actor(BuiltinRole::Administrator);

    // The station enrols and connects at replica A only.
    let (station, token) = stations::create(&a.services, &admin, "Front desk")
        .await
        .unwrap();
    let args = StationArgs {
        server: Some(a_url.clone()),
        token: Some(token),
        data_dir: dir.path().join("station"),
        simulated_printer: true,
        ..Default::default()
    };
    let config = station_process::enrol_or_load(&args).await.unwrap();
    let local = station_process::local_station(&args).unwrap();
    let agent = Agent::new(
        Arc::new(local),
        AgentOptions::new(a_url.clone(), config.credential()),
    );
    tokio::spawn(async move { agent.run().await });
    let link = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match a.hub.remote(&station.id) {
                Some(l) if l.is_connected() && !l.inventory().printers.is_empty() => break l,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .expect("the station connects to replica A");
    assert!(
        b.hub.reachable(&station.id).await,
        "B sees the station through A"
    );

    // The operator works on replica B.
    let job = issuance::start(
        &b.services,
        &admin,
        StartRequest {
            user: UserId::new("jdoe"),
            station: station.id.clone(),
            printer: SIMULATED_PRINTER.into(),
            reader: SIMULATED_ENCODER.into(),
            layout: LayoutId::new("corporate-badge"),
            temporary_for: None,
        },
    )
    .await
    .unwrap();
    assert!(
        job.fed_card.is_some(),
        "B read the fed card through A: {job:?}"
    );
    let before = link.round_trips();
    let (queued, running) = issuance::choose_policy(
        &b.runner,
        &admin,
        &job.id,
        &PolicyId::new("piv-standard"),
        Some(Pin::new("246810")),
    )
    .await
    .unwrap();
    assert_eq!(queued.step, JobStep::Issuing);
    // B runs nothing: its task hands back the job as queued.
    assert_eq!(running.await.unwrap().progress, queued.progress);
    let printed = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let now = b.services.store.job(&job.id).await.unwrap();
            if !tessera_core::jobs::is_running(now.step) {
                break now;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("replica A runs the queued job");
    assert_eq!(printed.step, JobStep::Printed, "{:?}", printed.error);
    assert!(
        link.round_trips() > before + 5,
        "replica A drove the card over its own connection"
    );
    assert!(
        b.hub.remote(&station.id).is_none(),
        "B never held the station's connection"
    );

    let done = issuance::finish(&b.services, &admin, &job.id)
        .await
        .unwrap();
    assert_eq!(done.step, JobStep::Completed);
    let device = b
        .services
        .store
        .device(done.device.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(device.state, DeviceState::Active);
    let certificates = b
        .services
        .store
        .certificates_of_device(&device.id)
        .await
        .unwrap();
    assert_eq!(certificates.len(), 4);
    tessera_store::testing::drop_postgres_database(&base, &url).await;
}

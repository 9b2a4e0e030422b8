//! `tessera bench-station`: what APDU scripts save when the card is behind a station. A server
//! (router on a loopback port) and a station agent (simulated card printer) talk over a real
//! WebSocket; the station delays each answer by an injected network round trip (0, 20, 80 ms).
//! Each configuration issues cards with the PIV Standard policy and prints them on the station's
//! simulated printer, with APDU scripts and with every command on its own round trip, and
//! reports wall time and round trips per card.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::ids::*;
use tessera_core::issuance::{self, Actor, StartRequest};
use tessera_core::model::{BuiltinRole, JobStep};
use tessera_core::{stations, CoreError, Pin};
use tessera_server::app::router;
use tessera_server::station_process::{self, StationArgs, SIMULATED_ENCODER, SIMULATED_PRINTER};
use tessera_server::wiring::{Options, Tessera};
use tessera_station::agent::{Agent, AgentOptions};

pub struct Row {
    pub delay_ms: u64,
    pub scripts: bool,
    pub median: Duration,
    pub round_trips: u64,
}

pub struct Figures {
    pub cards: usize,
    pub rows: Vec<Row>,
}

impl Figures {
    pub fn report(&self) -> String {
        let mut out = format!(
            "Issuing and printing one card through a station (PIV Standard: 4 P-256 keys and \
             certificates), median of {} cards\n\n\
             | injected round trip | APDU scripts | wall time per card | round trips per card |\n\
             | --- | --- | --- | --- |\n",
            self.cards
        );
        for r in &self.rows {
            out.push_str(&format!(
                "| {} ms | {} | {:.0} ms | {} |\n",
                r.delay_ms,
                if r.scripts { "on" } else { "off" },
                r.median.as_secs_f64() * 1e3,
                r.round_trips
            ));
        }
        out
    }
}

fn invalid(e: impl std::fmt::Display) -> CoreError {
    CoreError::Invalid(e.to_string())
}

pub async fn run(
    dir: &std::path::Path,
    cards: usize,
    delays: &[u64],
) -> Result<Figures, CoreError> {
    let mut rows = Vec::new();
    for scripts in [true, false] {
        let data = dir.join(if scripts { "scripts" } else { "single" });
        let mut options = Options::new(data.join("server"));
        options.apdu_scripts = scripts;
        let (t, _) = Tessera::open(&options).await.map_err(invalid)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(invalid)?;
        let server = format!("http://{}", listener.local_addr().map_err(invalid)?);
        let app = router(t.clone());
        let serving = tokio::spawn(async move { axum::serve(listener, app).await });
        let actor = Actor::builtin("bench", BuiltinRole::Administrator);
        let (station, token) = stations::create(&t.services, &actor, "Bench station").await?;
        let args = StationArgs {
            server: Some(server.clone()),
            token: Some(token),
            data_dir: data.join("station"),
            simulated_printer: true,
            ..Default::default()
        };
        let config = station_process::enrol_or_load(&args)
            .await
            .map_err(invalid)?;
        for &delay_ms in delays {
            let local = station_process::local_station(&args).map_err(invalid)?;
            let mut agent_options = AgentOptions::new(server.clone(), config.credential());
            agent_options.injected_delay = Duration::from_millis(delay_ms);
            let agent = Agent::new(Arc::new(local), agent_options);
            let running = tokio::spawn(async move { agent.run().await });
            let link = loop {
                match t.hub.remote(&station.id) {
                    Some(l) if l.is_connected() && !l.inventory().printers.is_empty() => break l,
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            let mut times = Vec::with_capacity(cards);
            let mut trips = Vec::with_capacity(cards);
            for _ in 0..cards {
                let before = link.round_trips();
                let started = Instant::now();
                personalise(&t, &actor, &station.id).await?;
                times.push(started.elapsed());
                trips.push(link.round_trips() - before);
            }
            running.abort();
            // Wait for the server to notice, so that the next agent's link is the live one.
            while link.is_connected() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            times.sort();
            trips.sort();
            rows.push(Row {
                delay_ms,
                scripts,
                median: times[times.len() / 2],
                round_trips: trips[trips.len() / 2],
            });
        }
        serving.abort();
    }
    rows.sort_by_key(|r| (r.delay_ms, !r.scripts));
    Ok(Figures { cards, rows })
}

async fn personalise(t: &Tessera, actor: &Actor, station: &StationId) -> Result<(), CoreError> {
    let svc = &t.services;
    let job = issuance::start(
        svc,
        actor,
        StartRequest {
            user: UserId::new("jdoe"),
            station: station.clone(),
            printer: SIMULATED_PRINTER.into(),
            reader: SIMULATED_ENCODER.into(),
            layout: LayoutId::new("corporate-badge"),
            temporary_for: None,
        },
    )
    .await?;
    let (_, running) = issuance::choose_policy(
        &t.runner,
        actor,
        &job.id,
        &PolicyId::new("piv-standard"),
        Some(Pin::new("246810")),
    )
    .await?;
    let job = running
        .await
        .map_err(|e| CoreError::Invalid(e.to_string()))?;
    match job.step {
        // One issuance at a time per person: the printed card is decided before the next.
        JobStep::Printed => issuance::cancel(svc, actor, &job.id, "benchmark")
            .await
            .map(|_| ()),
        JobStep::Completed => Ok(()),
        other => Err(CoreError::Invalid(format!(
            "the bench issuance ended in {other:?}: {:?}",
            job.error
        ))),
    }
}

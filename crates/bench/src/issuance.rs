//! `tessera bench`: the speed of the two things an operator waits for, measured on this machine.
//! Personalising one card (the PIV Standard policy: 4 on-card P-256 keys, 4 certificates, CHUID,
//! CCC, printed information, PIN, PUK, management key) on the in-process virtual card, with every
//! store write and audit event of a real issuance, and the same with every key attested (PIV
//! Attested); and rendering one card (both sides, PNG and PDF).
//!
//! Then how the server answers while it works hard: the latency of `/healthz` (a real HTTP
//! server on a loopback port, one connection per request) when idle, while it draws the layout
//! at every limit at once ([`tessera_print::layouts::at_the_limits`]) the way issuance does
//! (a synchronous render from an async task), and during a flood of failed sign-ins (argon2id
//! each).

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tessera_core::ids::*;
use tessera_core::issuance::{self, Actor, StartRequest};
use tessera_core::model::{BuiltinRole, DevicePolicy, JobStep, Settings};
use tessera_core::{CoreError, Pin};
use tessera_server::demo;
use tessera_server::wiring::{Options, Tessera};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Figures {
    pub personalise: Vec<Duration>,
    /// The same under PIV Attested: the card attests its 4 keys, the server verifies each chain.
    pub personalise_attested: Vec<Duration>,
    /// PIV Standard without the FIPS 201 signed objects (see
    /// [`PLAIN_POLICY`]): the cost of the signatures, the facial image, the fingerprints and the
    /// Security Object is the difference with `personalise`.
    pub personalise_plain: Vec<Duration>,
    /// PIV Standard with every signed object but the facial image ([`NO_FACE_POLICY`]): the
    /// facial image's cost (decoding, scaling and encoding the portrait, 11 KB more on the card)
    /// is the difference with `personalise`.
    pub personalise_no_face: Vec<Duration>,
    /// Write transactions the store committed for each card of `personalise`, from Start to
    /// the end of the runner's work (printing is off here; Continue would add one).
    pub commits: Vec<u64>,
    pub render: Vec<Duration>,
    /// The layout at every limit, both sides, PNG and PDF, through the server's renderer.
    pub render_worst: Vec<Duration>,
    pub healthz_idle: Vec<Duration>,
    pub healthz_drawing: Vec<Duration>,
    pub healthz_sign_ins: Vec<Duration>,
    /// (sign-ins sent, of which refused with 401) during the flood.
    pub sign_ins: (u64, u64),
}

/// PIV Standard with the same keys, certificates, CCC and printed information, but none of the
/// signed objects: no CHUID (the only object whose signature cannot be switched off on its
/// own), no facial image, no fingerprints, no Security Object.
const PLAIN_POLICY: &str = "bench-plain";
/// PIV Standard without the facial image.
const NO_FACE_POLICY: &str = "bench-no-face";

/// Cards at every limit each of [`DRAWERS`] tasks draws while `/healthz` is measured.
const WORST_CARDS: usize = 2;
const DRAWERS: usize = 2;
/// The rate of failed sign-ins that once pushed `/healthz` from 0.3 ms to 135 ms.
const SIGN_INS_PER_SECOND: u64 = 44;
const SIGN_IN_SECONDS: u64 = 5;

fn latency(name: &str, samples: &[Duration]) -> String {
    let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        v.get(((v.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    };
    format!(
        "{name:<48} n={:<4} p50 {:8.2} ms   p99 {:8.2} ms   max {:8.2} ms",
        v.len(),
        at(0.5),
        at(0.99),
        v.last().copied().unwrap_or(0.0)
    )
}

fn summary(name: &str, samples: &[Duration]) -> String {
    let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let median = v.get(v.len() / 2).copied().unwrap_or(0.0);
    let min = v.first().copied().unwrap_or(0.0);
    format!(
        "{name:<48} n={:<4} median {median:8.2} ms   mean {mean:8.2} ms   min {min:8.2} ms",
        v.len()
    )
}

impl Figures {
    pub fn report(&self) -> String {
        [
            summary(
                "personalise one card (4 slots, P-256, in-process)",
                &self.personalise,
            ),
            summary(
                "personalise one card, keys attested (PIV Attested)",
                &self.personalise_attested,
            ),
            summary(
                "personalise one card, no CHUID, biometrics, SO",
                &self.personalise_plain,
            ),
            summary(
                "personalise one card, no facial image",
                &self.personalise_no_face,
            ),
            format!(
                "{:<48} n={:<4} {}",
                "store commits per card (Start to Printed)",
                self.commits.len(),
                self.commits
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            summary(
                "render one card (front+back PNG 300 dpi, PDF)",
                &self.render,
            ),
            summary(
                "render the layout at every limit, 2 at once",
                &self.render_worst,
            ),
            latency("/healthz, idle", &self.healthz_idle),
            latency(
                "/healthz while 2 layouts at every limit draw",
                &self.healthz_drawing,
            ),
            latency(
                &format!("/healthz during {SIGN_INS_PER_SECOND} failed sign-ins/s"),
                &self.healthz_sign_ins,
            ),
            format!(
                "  ({} sign-ins sent in {SIGN_IN_SECONDS} s, {} refused with 401)",
                self.sign_ins.0, self.sign_ins.1
            ),
        ]
        .join("\n")
    }
}

/// Runs `iterations` personalisations and renders in a fresh data folder under `dir`.
pub async fn run(dir: &std::path::Path, iterations: usize) -> Result<Figures, CoreError> {
    let options = Options {
        // The demo printer's virtual cards attest under their simulated root.
        trust_virtual_card_attestation: true,
        ..Options::new(dir.to_path_buf())
    };
    let (t, _) = Tessera::open(&options)
        .await
        .map_err(|e| CoreError::Invalid(e.to_string()))?;
    let svc = &t.services;
    // Printing is measured on its own below; here the card is only encoded.
    let actor = Actor::builtin("bench", BuiltinRole::Administrator);
    let settings = Settings {
        card_printing_enabled: false,
        ..Settings::default()
    };
    tessera_core::settings::save(svc, &actor, settings).await?;
    let (personalise, commits) = personalise_cards(&t, &actor, demo::POLICY_ID, iterations).await?;
    let (personalise_attested, _) =
        personalise_cards(&t, &actor, "piv-attested", iterations).await?;
    let standard = svc
        .store
        .policies()
        .await?
        .into_iter()
        .find(|p| p.id.as_str() == demo::POLICY_ID)
        .ok_or_else(|| CoreError::NotFound("the PIV Standard policy".into()))?;
    let no_face = DevicePolicy {
        id: PolicyId::new(NO_FACE_POLICY),
        name: "PIV Standard without the facial image".into(),
        write_facial_image: false,
        default_for_groups: vec![],
        ..standard.clone()
    };
    tessera_core::policies::save(svc, &actor, no_face).await?;
    let (personalise_no_face, _) =
        personalise_cards(&t, &actor, NO_FACE_POLICY, iterations).await?;
    let plain = DevicePolicy {
        id: PolicyId::new(PLAIN_POLICY),
        name: "PIV Standard without FIPS 201 signed objects".into(),
        write_chuid: false,
        write_facial_image: false,
        write_fingerprints: false,
        write_security_object: false,
        default_for_groups: vec![],
        ..standard
    };
    tessera_core::policies::save(svc, &actor, plain).await?;
    let (personalise_plain, _) = personalise_cards(&t, &actor, PLAIN_POLICY, iterations).await?;
    let user = svc.store.user(&UserId::new("jdoe")).await?;
    let device = svc
        .store
        .devices_of_user(&user.uid)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| CoreError::NotFound("a benchmark card".into()))?;
    let layout = tessera_print::corporate_badge();
    let data = issuance::card_data(svc, &user, &device).await?;
    let mut render = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        svc.renderer
            .render(&layout, &data)
            .map_err(CoreError::Print)?;
        render.push(started.elapsed());
    }
    let under_load = under_load(&t).await?;
    Ok(Figures {
        personalise,
        personalise_attested,
        personalise_plain,
        personalise_no_face,
        commits,
        render,
        ..under_load
    })
}

/// Personalises `iterations` blank cards in the demo printer's encoder under `policy`; returns
/// the time of each and the write transactions each committed.
async fn personalise_cards(
    t: &Tessera,
    actor: &Actor,
    policy: &str,
    iterations: usize,
) -> Result<(Vec<Duration>, Vec<u64>), CoreError> {
    let svc = &t.services;
    let mut personalise = Vec::with_capacity(iterations);
    let mut commits = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let before = t.store.committed_writes();
        t.demo_printer
            .feed()
            .map_err(|e| CoreError::Invalid(e.to_string()))?;
        let job = issuance::start(
            svc,
            actor,
            StartRequest {
                user: UserId::new("jdoe"),
                station: StationId::new(demo::STATION_ID),
                printer: String::new(),
                reader: demo::ENCODER.into(),
                layout: LayoutId::new("corporate-badge"),
                temporary_for: None,
            },
        )
        .await?;
        let started = Instant::now();
        let (_, running) = issuance::choose_policy(
            &t.runner,
            actor,
            &job.id,
            &PolicyId::new(policy),
            Some(Pin::new("13572468")),
        )
        .await?;
        let job = running
            .await
            .map_err(|e| CoreError::Invalid(e.to_string()))?;
        personalise.push(started.elapsed());
        commits.push(t.store.committed_writes() - before);
        if job.step != JobStep::Printed {
            return Err(CoreError::Invalid(format!(
                "benchmark issuance ended in {:?}: {:?}",
                job.step, job.error
            )));
        }
        // One issuance at a time per person: the card is decided (not timed) before the next.
        issuance::cancel(svc, actor, &job.id, "benchmark").await?;
    }
    Ok((personalise, commits))
}

/// Serves the portal on a loopback port and measures `/healthz` idle, while the layout at every
/// limit is drawn, and during failed sign-ins.
async fn under_load(t: &Tessera) -> Result<Figures, CoreError> {
    let failed = |e: std::io::Error| CoreError::Invalid(format!("benchmark server: {e}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(tessera_server::serve::serve_listener(
        listener,
        tessera_server::router(t.clone()),
        None,
        async move {
            let _ = stopped.await;
        },
    ));

    let mut healthz_idle = Vec::new();
    for _ in 0..500 {
        healthz_idle.push(healthz(addr).await?);
    }

    // As issuance does, a synchronous render called from an async task; two at once, as two
    // operators printing would, which is as many drawings as there are async workers here.
    let drawers: Vec<_> = (0..DRAWERS)
        .map(|_| {
            let svc = t.services.clone();
            tokio::spawn(async move {
                let worst = tessera_print::layouts::at_the_limits();
                let data = tessera_core::ports::CardData::default();
                let mut took = Vec::new();
                for _ in 0..WORST_CARDS {
                    let started = Instant::now();
                    svc.renderer
                        .render(&worst, &data)
                        .map_err(CoreError::Print)?;
                    took.push(started.elapsed());
                }
                Ok::<_, CoreError>(took)
            })
        })
        .collect();
    let healthz_drawing = sample_healthz(addr, || drawers.iter().all(|d| d.is_finished())).await?;
    let mut render_worst = Vec::new();
    for drawer in drawers {
        render_worst.extend(
            drawer
                .await
                .map_err(|e| CoreError::Invalid(e.to_string()))??,
        );
    }

    let flood = tokio::spawn(async move {
        let mut tick =
            tokio::time::interval(Duration::from_micros(1_000_000 / SIGN_INS_PER_SECOND));
        let mut attempts = Vec::new();
        for i in 0..SIGN_INS_PER_SECOND * SIGN_IN_SECONDS {
            tick.tick().await;
            attempts.push(tokio::spawn(failed_sign_in(addr, i)));
        }
        let sent = attempts.len() as u64;
        let mut refused = 0;
        for attempt in attempts {
            if matches!(attempt.await, Ok(Ok(401))) {
                refused += 1;
            }
        }
        (sent, refused)
    });
    let healthz_sign_ins = sample_healthz(addr, || flood.is_finished()).await?;
    let sign_ins = flood.await.map_err(|e| CoreError::Invalid(e.to_string()))?;

    let _ = stop.send(());
    let _ = serving.await;
    Ok(Figures {
        personalise: Vec::new(),
        personalise_attested: Vec::new(),
        personalise_plain: Vec::new(),
        personalise_no_face: Vec::new(),
        commits: Vec::new(),
        render: Vec::new(),
        render_worst,
        healthz_idle,
        healthz_drawing,
        healthz_sign_ins,
        sign_ins,
    })
}

/// `/healthz` every 5 ms until `done`.
async fn sample_healthz(
    addr: SocketAddr,
    done: impl Fn() -> bool,
) -> Result<Vec<Duration>, CoreError> {
    let mut samples = Vec::new();
    while !done() {
        samples.push(healthz(addr).await?);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(samples)
}

async fn healthz(addr: SocketAddr) -> Result<Duration, CoreError> {
    let started = Instant::now();
    let status = http(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
    )
    .await?;
    if status != 200 {
        return Err(CoreError::Invalid(format!("/healthz answered {status}")));
    }
    Ok(started.elapsed())
}

/// A sign-in with a wrong password for a name of its own (so that no name is locked out).
async fn failed_sign_in(addr: SocketAddr, i: u64) -> Result<u16, CoreError> {
    let body = format!("csrf=bench&operator=bench-{i}&password=wrong");
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nCookie: {}=bench\r\n\
         Content-Length: {}\r\n\r\n{body}",
        tessera_server::auth::LOGIN_COOKIE,
        body.len()
    );
    http(addr, request.as_bytes()).await
}

/// One request on a connection of its own; the answer's status code.
async fn http(addr: SocketAddr, request: &[u8]) -> Result<u16, CoreError> {
    let failed = |e: std::io::Error| CoreError::Invalid(format!("benchmark request: {e}"));
    let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(failed)?;
    stream.write_all(request).await.map_err(failed)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.map_err(failed)?;
    std::str::from_utf8(answer.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| CoreError::Invalid("the benchmark server answered garbage".into()))
}

#[cfg(test)]
mod tests {
    /// The figures of `tessera bench` without building the command:
    /// `cargo test -p tessera-bench --lib issuance::tests::figures -- --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "a benchmark, not a test: run it on purpose"]
    async fn figures() {
        let dir = tempfile::tempdir().unwrap();
        let figures = super::run(dir.path(), 10).await.unwrap();
        println!("{}", figures.report());
    }
}

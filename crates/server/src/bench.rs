//! `tessera bench`: the speed of the two things an operator waits for, measured on this machine.
//! Personalising one card (the PIV Standard policy: 4 on-card P-256 keys, 4 certificates, CHUID,
//! CCC, printed information, PIN, PUK, management key) on the in-process virtual card, with every
//! store write and audit event of a real issuance; and rendering one card (both sides, PNG and PDF).

use crate::demo;
use crate::wiring::{Options, Tessera};
use std::time::{Duration, Instant};
use tessera_core::ids::*;
use tessera_core::issuance::{self, Actor, StartRequest};
use tessera_core::model::{JobStep, Role, Settings};
use tessera_core::{CoreError, Pin};

pub struct Figures {
    pub personalise: Vec<Duration>,
    pub render: Vec<Duration>,
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
                "render one card (front+back PNG 300 dpi, PDF)",
                &self.render,
            ),
        ]
        .join("\n")
    }
}

/// Runs `iterations` personalisations and renders in a fresh data folder under `dir`.
pub async fn run(dir: &std::path::Path, iterations: usize) -> Result<Figures, CoreError> {
    let (t, _) = Tessera::open(&Options::new(dir.to_path_buf()))
        .await
        .map_err(|e| CoreError::Invalid(e.to_string()))?;
    let svc = &t.services;
    // Printing is measured on its own below; here the card is only encoded.
    let actor = Actor {
        operator: OperatorId::new("bench"),
        role: Role::Administrator,
    };
    let settings = Settings {
        card_printing_enabled: false,
        ..Settings::default()
    };
    tessera_core::settings::save(svc, &actor, settings).await?;
    let mut personalise = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        t.demo_printer
            .feed()
            .map_err(|e| CoreError::Invalid(e.to_string()))?;
        let job = issuance::start(
            svc,
            &actor,
            StartRequest {
                user: UserId::new("jdoe"),
                station: StationId::new(demo::STATION_ID),
                printer: String::new(),
                reader: demo::ENCODER.into(),
                layout: LayoutId::new("corporate-badge"),
            },
        )
        .await?;
        let started = Instant::now();
        let (_, running) = issuance::choose_policy(
            &t.runner,
            &actor,
            &job.id,
            &PolicyId::new(demo::POLICY_ID),
            Some(Pin::new("13572468")),
        )
        .await?;
        let job = running
            .await
            .map_err(|e| CoreError::Invalid(e.to_string()))?;
        personalise.push(started.elapsed());
        if job.step != JobStep::Printed {
            return Err(CoreError::Invalid(format!(
                "benchmark issuance ended in {:?}: {:?}",
                job.step, job.error
            )));
        }
    }
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
    Ok(Figures {
        personalise,
        render,
    })
}

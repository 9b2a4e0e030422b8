//! `tessera issue`: the issuance use case without a browser, on the demo station's simulated card
//! printer, answering with one JSON object (a stable interface for scripts).

use crate::demo;
use crate::wiring::Tessera;
use base64::Engine;
use serde_json::{json, Value};
use tessera_core::ids::*;
use tessera_core::issuance::{self, Actor, StartRequest};
use tessera_core::model::{JobStep, Role};
use tessera_core::{CoreError, Pin};

pub struct IssueArgs {
    pub user: String,
    /// Policy id or name.
    pub policy: String,
    /// Layout id or name.
    pub layout: String,
    pub pin: Option<String>,
    pub cancel: bool,
    /// The reader the card is in; the demo printer's encoder when absent.
    pub reader: Option<String>,
}

/// PEM text of a DER certificate.
pub fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

pub async fn issue(t: &Tessera, args: IssueArgs) -> Result<Value, CoreError> {
    let svc = &t.services;
    // The command line acts as the built-in operator `cli`, audited like anyone else.
    let actor = Actor {
        operator: OperatorId::new("cli"),
        role: Role::Administrator,
    };
    let matches =
        |id: &str, name: &str, wanted: &str| id == wanted || name.eq_ignore_ascii_case(wanted);
    let policy = svc
        .store
        .policies()
        .await?
        .into_iter()
        .find(|p| matches(p.id.as_str(), &p.name, &args.policy))
        .ok_or_else(|| CoreError::NotFound(format!("device policy {:?}", args.policy)))?;
    let layout = svc
        .store
        .layouts()
        .await?
        .into_iter()
        .find(|l| matches(l.id.as_str(), &l.name, &args.layout))
        .ok_or_else(|| CoreError::NotFound(format!("layout {:?}", args.layout)))?;
    let job = issuance::start(
        svc,
        &actor,
        StartRequest {
            user: UserId::new(&args.user),
            station: StationId::new(demo::STATION_ID),
            printer: demo::PRINTER.into(),
            reader: args.reader.clone().unwrap_or_else(|| demo::ENCODER.into()),
            layout: layout.id.clone(),
        },
    )
    .await?;
    let (job, policy, pin) =
        issuance::choose_policy(svc, &actor, &job.id, &policy.id, args.pin.map(Pin::new)).await?;
    let job = issuance::run(svc, job, policy, pin).await;
    if let Some(e) = &job.error {
        if job.step == JobStep::Failed {
            return Err(CoreError::Invalid(format!(
                "{} ({}; operation {})",
                e.message, e.code, job.operation
            )));
        }
    }
    let job = if args.cancel {
        issuance::cancel(svc, &actor, &job.id).await?
    } else {
        issuance::finish(svc, &actor, &job.id).await?
    };
    let device_id = job
        .device
        .clone()
        .ok_or_else(|| CoreError::Invalid("the issuance produced no card".into()))?;
    let device = svc.store.device(&device_id).await?;
    let certificates: Vec<Value> = svc
        .store
        .certificates_of_device(&device_id)
        .await?
        .into_iter()
        .map(|c| {
            json!({
                "slot": c.slot.code(), "serial": c.serial, "subject": c.subject,
                "status": c.status.as_str(), "pem": pem(&c.der),
            })
        })
        .collect();
    let printed: Vec<String> = svc
        .store
        .prints_of_device(&device_id)
        .await?
        .into_iter()
        .flat_map(|p| p.files)
        .collect();
    Ok(json!({
        "device_id": device.id,
        "serial": device.serial,
        "state": device.state.as_str(),
        "operation": job.operation,
        "certificates": certificates,
        "ca_chain_pem": svc.ca.chain_pem(),
        "printed": printed,
        // The state file exists only for a virtual card in the simulated printer's encoder.
        "card_state": match args.reader.as_deref() {
            None | Some(demo::ENCODER) => t.demo_printer.card_in_encoder().map(|p| p.display().to_string()),
            Some(_) => None,
        },
    }))
}

/// `tessera unlock`: unblocks a card's PIN with its escrowed PUK and sets a new PIN.
pub async fn unlock(
    t: &Tessera,
    device: &str,
    reader: Option<String>,
    new_pin: String,
) -> Result<Value, CoreError> {
    let actor = Actor {
        operator: OperatorId::new("cli"),
        role: Role::Administrator,
    };
    let reader = reader.unwrap_or_else(|| demo::ENCODER.into());
    tessera_core::devices::unlock(
        &t.services,
        &actor,
        &DeviceId::new(device),
        &StationId::new(demo::STATION_ID),
        &reader,
        &Pin::new(new_pin),
    )
    .await?;
    Ok(json!({"device_id": device, "unlocked": true}))
}

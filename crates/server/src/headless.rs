//! `tessera issue`: the issuance use case without a browser, on the demo station's simulated card
//! printer or another printer of the station, answering with one JSON object (a stable interface
//! for scripts). A print failure leaves the card Pending and is reported (`"state": "pending"`,
//! `print_error`), and `tessera print` prints it again once the printer is fixed.

use crate::demo;
use crate::wiring::Tessera;
use base64::Engine;
use serde_json::{json, Value};
use tessera_core::ids::*;
use tessera_core::issuance::{self, StartRequest};
use tessera_core::model::JobStep;
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
    /// The printer of the station; the demo printer when absent.
    pub printer: Option<String>,
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
    let actor = tessera_core::services::Actor::cli();
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
    let printer = args.printer.clone().unwrap_or_else(|| demo::PRINTER.into());
    let reader = args.reader.clone().unwrap_or_else(|| demo::ENCODER.into());
    if reader == demo::ENCODER && printer != demo::PRINTER {
        // Encoding in the demo's virtual encoder and printing elsewhere (a desktop encoder next
        // to a real printer): Start feeds the chosen printer, so the blank virtual card goes in
        // here.
        t.demo_printer.feed().map_err(CoreError::Station)?;
    }
    let job = issuance::start(
        svc,
        &actor,
        StartRequest {
            user: UserId::new(&args.user),
            station: StationId::new(demo::STATION_ID),
            printer,
            reader: reader.clone(),
            layout: layout.id.clone(),
            temporary_for: None,
        },
    )
    .await?;
    let (_, running) = issuance::choose_policy(
        &t.runner,
        &actor,
        &job.id,
        &policy.id,
        args.pin.map(Pin::new),
    )
    .await?;
    let job = running
        .await
        .map_err(|e| CoreError::Invalid(format!("the issuance stopped: {e}")))?;
    if let Some(e) = &job.error {
        if job.step == JobStep::Failed {
            return Err(CoreError::Invalid(format!(
                "{} ({}; operation {})",
                e.message, e.code, job.operation
            )));
        }
    }
    let job = if args.cancel {
        issuance::cancel(svc, &actor, &job.id, issuance::CANCELLED_BY_OPERATOR).await?
    } else if job.step == JobStep::PrintFailed {
        // The card is personalised and Pending; `tessera print` retries once the printer is fixed.
        job
    } else {
        issuance::finish(svc, &actor, &job.id).await?
    };
    report(t, &job, Some(&reader)).await
}

/// `tessera print`: prints a card whose print failed again (Retry print), optionally on another
/// printer of the station, and activates it once printed, as Continue would.
pub async fn print(t: &Tessera, device: &str, printer: Option<String>) -> Result<Value, CoreError> {
    let svc = &t.services;
    let actor = tessera_core::services::Actor::cli();
    let device_id = DeviceId::new(device);
    let job = svc
        .store
        .jobs_in_step(JobStep::PrintFailed)
        .await?
        .into_iter()
        .filter(|j| j.device.as_ref() == Some(&device_id))
        .max_by_key(|j| j.updated_at)
        .ok_or_else(|| {
            CoreError::Invalid(format!("the card {device} has no failed print to retry"))
        })?;
    let (_, running) = issuance::retry_print(&t.runner, &actor, &job.id, printer).await?;
    let job = running
        .await
        .map_err(|e| CoreError::Invalid(format!("the print stopped: {e}")))?;
    let job = if job.step == JobStep::Printed {
        issuance::finish(svc, &actor, &job.id).await?
    } else {
        job
    };
    report(t, &job, None).await
}

/// The JSON answer of `issue` and `print`: the card, its certificates, what was printed.
async fn report(
    t: &Tessera,
    job: &tessera_core::model::IssuanceJob,
    reader: Option<&str>,
) -> Result<Value, CoreError> {
    let svc = &t.services;
    let device_id = job
        .device
        .clone()
        .ok_or_else(|| CoreError::Invalid("the issuance produced no card".into()))?;
    let device = svc.store.device(&device_id).await?;
    let records = svc.store.certificates_of_device(&device_id).await?;
    let attested = tessera_core::model::keys_attested(&records);
    let certificates: Vec<Value> = records
        .into_iter()
        .map(|c| {
            json!({
                "slot": c.slot.code(), "serial": c.serial, "subject": c.subject,
                "status": c.status.as_str(), "pem": pem(&c.der), "attestation": c.attestation,
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
    let print_error = match job.step {
        JobStep::PrintFailed => job.error.as_ref().map(|e| e.message.clone()),
        _ => None,
    };
    Ok(json!({
        "device_id": device.id,
        "serial": device.serial,
        "model": device.model(),
        "firmware": device.firmware,
        "attested": attested,
        "state": device.state.as_str(),
        "operation": job.operation,
        "job_id": job.id,
        "printer": job.printer,
        "print_error": print_error,
        "certificates": certificates,
        "ca_chain_pem": svc.ca.chain_pem(),
        // The certificate that signs the card's CHUID, biometrics and Security Object now.
        "content_signer_pem": pem(&svc.ca.content_signer_certificate().map_err(CoreError::Ca)?.der),
        "printed": printed,
        // The state file exists only for a virtual card in the simulated printer's encoder.
        "card_state": match reader {
            Some(demo::ENCODER) => t.demo_printer.card_in_encoder().map(|p| p.display().to_string()),
            _ => None,
        },
    }))
}

/// `tessera unlock`: unblocks a card's PIN with its escrowed PUK and sets a new PIN.
pub async fn unlock(
    t: &Tessera,
    device: &str,
    reader: Option<String>,
    new_pin: String,
    reason: &str,
) -> Result<Value, CoreError> {
    let actor = tessera_core::services::Actor::cli();
    let reader = reader.unwrap_or_else(|| demo::ENCODER.into());
    let unlocked = tessera_core::devices::unlock(
        &t.services,
        &actor,
        &DeviceId::new(device),
        (&StationId::new(demo::STATION_ID), &reader),
        (&Pin::new(new_pin), None),
        reason,
    )
    .await?;
    Ok(
        json!({"device_id": device, "unlocked": true, "serial": unlocked.device.serial,
              "tries_left": unlocked.tries_left}),
    )
}

/// `tessera ca renew-content-signer`: a new content signing key and certificate now (audited
/// like the PKI page's button), and what it replaced.
pub async fn renew_content_signer(t: &Tessera) -> Result<Value, CoreError> {
    let actor = tessera_core::services::Actor::cli();
    let svc = &t.services;
    let current = tessera_core::content_signing::current(svc, &actor).await?;
    let renewed = tessera_core::content_signing::renew(svc, &actor, &current.serial).await?;
    Ok(json!({
        "replaced": current.serial,
        "serial": renewed.serial,
        "subject": renewed.subject,
        "not_before": renewed.not_before.date(),
        "not_after": renewed.not_after.date(),
        "pem": pem(&renewed.der),
    }))
}

/// `tessera ca show`: the CA certificates, the content signer, the organisation's policy arc and
/// the `.p7c` of the caIssuers access method (base64), as one JSON object.
pub async fn show_ca(t: &Tessera) -> Result<Value, CoreError> {
    let actor = tessera_core::services::Actor::cli();
    let signer = tessera_core::content_signing::current(&t.services, &actor).await?;
    Ok(json!({
        "root_pem": t.ca.root_pem(),
        "issuing_pem": t.ca.issuing_pem(),
        "issuing_p7c": base64::engine::general_purpose::STANDARD.encode(t.ca.issuing_p7c()),
        "policy_arc": t.ca.policy_arc(),
        "content_signer": {
            "serial": signer.serial,
            "subject": signer.subject,
            "not_before": signer.not_before.date(),
            "not_after": signer.not_after.date(),
            "pem": pem(&signer.der),
        },
    }))
}

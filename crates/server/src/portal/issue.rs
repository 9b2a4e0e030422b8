//! The Device Issuance wizard: Configure Device (printer tile, layout, Start; then policy and
//! initial PIN), Issue Device (progress bar) and Print Device (printing information, preview,
//! Cancel / Continue).

use super::jobs::InProgressView;
use super::{connected, current_station, render, CsrfForm, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::{sentence, WebError};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tessera_core::ids::*;
use tessera_core::issuance;
use tessera_core::model::*;
use tessera_core::pin_rules::{self, PinField, PinRefusal};
use tessera_core::{CoreError, Pin};

pub struct PrinterOption {
    pub name: String,
    pub reader: String,
    pub state: String,
    pub selected: bool,
}

pub struct ReaderOption {
    pub name: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "issue_configure.html")]
struct ConfigurePage {
    nav: Option<Nav>,
    csrf: String,
    user: User,
    station_name: String,
    /// Where "(change)" leads: the station choice, coming back here.
    change_station: String,
    /// A remote station without its connection: why the tile is empty.
    offline: Option<Offline>,
    card_printing: bool,
    show_printer_tile: bool,
    pairing: Option<PrinterPairing>,
    change: bool,
    printers: Vec<PrinterOption>,
    readers: Vec<ReaderOption>,
    layouts: Vec<Layout>,
    ready: bool,
    /// The forgotten card a temporary card is issued for (help desk), carried to Start.
    temporary_for: Option<TemporaryFor>,
    /// The person's issuance in progress: offered to resume or cancel instead of a second Start.
    in_progress: Option<InProgressView>,
}

/// The card a temporary card stands in for, as the wizard shows it.
pub struct TemporaryFor {
    pub id: String,
    pub serial: String,
}

/// Why a remote station offers nothing now.
pub enum Offline {
    NotEnrolled,
    NotConnected,
}

#[derive(Deserialize)]
pub struct ConfigureQuery {
    #[serde(default)]
    change: Option<String>,
    /// A temporary card for this (forgotten) device.
    #[serde(default)]
    temporary_for: Option<String>,
}

pub async fn configure_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Path(uid): Path<String>,
    Query(q): Query<ConfigureQuery>,
) -> Result<Response, WebError> {
    let actor = signed_in.actor();
    actor.require(Permission::IssueDevice, "issue devices")?;
    let svc = &state.tessera.services;
    let user = svc.user_in_scope(&actor, &UserId::new(uid)).await?;
    let back = format!("/users/{}/issue", urlencode(user.uid.as_str()));
    let in_progress = issuance::open_job_of(svc, &actor, &user.uid)
        .await?
        .map(|j| InProgressView::of(&j, back));
    let temporary_for = match q.temporary_for.as_deref().filter(|t| !t.is_empty()) {
        Some(id) => {
            let d = svc.device_in_scope(&actor, &DeviceId::new(id)).await?;
            Some(TemporaryFor {
                id: d.id.0,
                serial: d.serial,
            })
        }
        None => None,
    };
    let station = current_station(&state, &headers).await?;
    let is_connected = connected(&state, &station).await;
    let offline = match &station.access {
        Some(_) if !is_connected => Some(match station.access {
            Some(StationAccess {
                credential_hash: None,
                ..
            }) => Offline::NotEnrolled,
            _ => Offline::NotConnected,
        }),
        _ => None,
    };
    let (printers, readers) = match (&offline, svc.stations.station(&station.id)) {
        (Some(_), _) => (Vec::new(), Vec::new()),
        (None, Some(port)) => (
            port.printers().await.map_err(CoreError::Station)?,
            port.readers().await.map_err(CoreError::Station)?,
        ),
        (None, None) => {
            return Err(CoreError::StationNotConnected(format!(
                "the station {} is not connected: start Tessera Station on that workstation, or \
                 choose another station",
                station.name
            ))
            .into())
        }
    };
    let settings = svc.store.settings().await.map_err(WebError::from_store)?;
    let pairing = svc
        .store
        .pairing(&actor.operator, &station.id)
        .await
        .map_err(WebError::from_store)?
        // A remembered pair is proposed only while the station still has both.
        .filter(|p| printers.iter().any(|x| x.name == p.printer) && readers.contains(&p.reader));
    let show_printer_tile = settings.card_printing_enabled && !printers.is_empty();
    let chosen_printer = pairing.as_ref().map(|p| p.printer.clone());
    let chosen_reader = pairing
        .as_ref()
        .map(|p| p.reader.clone())
        .or_else(|| printers.first().and_then(|p| p.encoder_reader.clone()));
    let layouts = tessera_core::layouts::for_user(
        svc.store.layouts().await.map_err(WebError::from_store)?,
        &user,
    );
    render(&ConfigurePage {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        station_name: station.name.clone(),
        change_station: format!(
            "/station?back={}",
            urlencode(&format!("/users/{}/issue", urlencode(user.uid.as_str())))
        ),
        ready: offline.is_none() && (!show_printer_tile || pairing.is_some()),
        offline,
        card_printing: settings.card_printing_enabled,
        show_printer_tile,
        change: q.change.is_some(),
        printers: printers
            .iter()
            .map(|p| PrinterOption {
                name: p.name.clone(),
                reader: p.encoder_reader.clone().unwrap_or_default(),
                state: p.state.clone(),
                selected: chosen_printer.as_deref() == Some(p.name.as_str()),
            })
            .collect(),
        readers: readers
            .iter()
            .map(|r| ReaderOption {
                name: r.clone(),
                selected: chosen_reader.as_deref() == Some(r.as_str()),
            })
            .collect(),
        pairing,
        layouts,
        user,
        temporary_for,
        in_progress,
    })
}

#[derive(Deserialize)]
pub struct ConfigureForm {
    csrf: String,
    printer: String,
    reader: String,
    #[serde(default)]
    temporary_for: Option<String>,
}

pub async fn configure(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Path(uid): Path<String>,
    Form(f): Form<ConfigureForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let station = current_station(&state, &headers).await?;
    issuance::configure_printer_for(
        &state.tessera.services,
        &signed_in.actor(),
        &UserId::new(uid.as_str()),
        &PrinterPairing {
            operator: signed_in.operator.id.clone(),
            station: station.id,
            printer: f.printer,
            reader: f.reader,
        },
    )
    .await?;
    let back = match f.temporary_for.filter(|t| !t.is_empty()) {
        Some(t) => format!(
            "/users/{}/issue?temporary_for={}",
            urlencode(&uid),
            urlencode(&t)
        ),
        None => format!("/users/{}/issue", urlencode(&uid)),
    };
    Ok(Redirect::to(&back).into_response())
}

#[derive(Deserialize)]
pub struct StartForm {
    csrf: String,
    layout: String,
    /// Only when card printing is off (no printer tile).
    reader: Option<String>,
    /// A temporary card for this forgotten device (from the help desk's Replace).
    #[serde(default)]
    temporary_for: Option<String>,
}

pub async fn start(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Path(uid): Path<String>,
    Form(f): Form<StartForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let station = current_station(&state, &headers).await?;
    let started = issuance::start_at_station(
        &state.tessera.services,
        &signed_in.actor(),
        UserId::new(uid.as_str()),
        station.id,
        LayoutId::new(f.layout),
        f.reader,
        f.temporary_for.filter(|t| !t.is_empty()).map(DeviceId::new),
    )
    .await;
    match started {
        Ok(job) => Ok(Redirect::to(&format!("/issue/{}", job.id)).into_response()),
        // Another issuance holds the person or the printer: show it, with Resume and Cancel it.
        Err(e @ (CoreError::UserIssuanceInProgress { .. } | CoreError::PrinterBusy { .. })) => {
            in_progress_refusal(&signed_in, &uid, e)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "issue_in_progress.html")]
struct InProgressPage {
    nav: Option<Nav>,
    csrf: String,
    user_uid: String,
    user_name: String,
    code: &'static str,
    message: String,
    j: InProgressView,
}

/// The refused Start: the code and sentence, and the job in progress with its actions.
fn in_progress_refusal(
    signed_in: &SignedIn,
    uid: &str,
    e: CoreError,
) -> Result<Response, WebError> {
    let code = e.code().as_str();
    let message = crate::web_error::sentence(&e.to_string());
    let (CoreError::UserIssuanceInProgress { job, .. } | CoreError::PrinterBusy { job, .. }) = e
    else {
        return Err(e.into());
    };
    tracing::info!(code, job = %job.job.id, "a second issuance was refused");
    let back = format!("/users/{}/issue", urlencode(uid));
    let mut res = render(&InProgressPage {
        nav: Nav::of(signed_in),
        csrf: signed_in.csrf.clone(),
        user_uid: uid.to_owned(),
        user_name: job.user_name.clone(),
        code,
        message,
        j: InProgressView::of(&job, back),
    })?;
    *res.status_mut() = axum::http::StatusCode::CONFLICT;
    Ok(res)
}

#[derive(Template)]
#[template(path = "issue_job.html")]
struct JobPage {
    nav: Option<Nav>,
    csrf: String,
    user: User,
    job: IssuanceJob,
    wizard_step: i32,
    layout_name: String,
    /// The policies offered, in order, the proposed one marked, each with its description.
    policies: Vec<tessera_core::policies::PolicyChoice>,
    pin_mode: PinDisplayMode,
    print: Option<PrintRecord>,
    device_serial: Option<String>,
    has_back: bool,
    /// The policy the select shows: the one the operator chose, kept when a PIN is refused.
    chosen_policy: String,
    /// The PIN rules of each policy, shown beside the PIN field and mirrored by `pin.js`.
    pin_rules: Vec<PinRules>,
    /// A refused PIN's message, next to the PIN field or next to its confirmation.
    pin_error: Option<FieldError>,
    confirm_error: Option<FieldError>,
}

/// One policy's PIN rules as the Configure Device step shows them and its script checks them.
pub struct PinRules {
    pub policy: String,
    pub lines: Vec<String>,
    pub min: u8,
    pub max: u8,
    pub refuse_weak: bool,
    /// The PINs refused by name, space-separated.
    pub refused: String,
}

/// A refusal shown next to the field it concerns.
pub struct FieldError {
    pub message: String,
    pub code: &'static str,
}

/// What the policy step re-shows after a refused PIN: the policy chosen and why the PIN was
/// refused (the PIN itself is never sent back).
struct PinRefused {
    policy: String,
    refusal: PinRefusal,
}

async fn load_job(
    state: &AppState,
    signed_in: &SignedIn,
    job: &str,
) -> Result<IssuanceJob, WebError> {
    Ok(issuance::job_for(
        &state.tessera.services,
        &signed_in.actor(),
        &JobId::new(job),
    )
    .await?)
}

pub async fn job_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(job): Path<String>,
) -> Result<Response, WebError> {
    signed_in
        .actor()
        .require(Permission::IssueDevice, "issue devices")?;
    let job = load_job(&state, &signed_in, &job).await?;
    job_view(&state, &signed_in, job, None).await
}

/// The wizard's page for the job's step; after a refused PIN, the policy step again with the
/// chosen policy and the refusal next to its field.
async fn job_view(
    state: &AppState,
    signed_in: &SignedIn,
    job: IssuanceJob,
    refused: Option<PinRefused>,
) -> Result<Response, WebError> {
    let svc = &state.tessera.services;
    let user = svc
        .store
        .user(&job.user)
        .await
        .map_err(WebError::from_store)?;
    let layout = svc
        .store
        .layouts()
        .await
        .map_err(WebError::from_store)?
        .into_iter()
        .find(|l| l.id == job.layout);
    let settings = svc.store.settings().await.map_err(WebError::from_store)?;
    let policies =
        tessera_core::policies::choices_for_job(svc, &signed_in.actor(), &job.id).await?;
    let chosen_policy = refused
        .as_ref()
        .map(|r| r.policy.clone())
        .filter(|id| policies.iter().any(|p| p.id.as_str() == id))
        .or_else(|| {
            policies
                .iter()
                .find(|p| p.proposed)
                .or(policies.first())
                .map(|p| p.id.0.clone())
        })
        .unwrap_or_default();
    let pin_rules = policies
        .iter()
        .map(|p| PinRules {
            policy: p.id.0.clone(),
            lines: pin_rules::describe(&p.pin),
            min: p.pin.min_length,
            max: p.pin.max_length,
            refuse_weak: p.pin.refuse_weak,
            refused: pin_rules::refused_list(&p.pin).join(" "),
        })
        .collect();
    let (pin_error, confirm_error) = match refused.map(|r| r.refusal) {
        Some(refusal) => {
            let field = refusal.field();
            let error = FieldError {
                code: CoreError::from(refusal.clone()).code().as_str(),
                message: sentence(&refusal.to_string()),
            };
            match field {
                PinField::Pin => (Some(error), None),
                PinField::Confirmation => (None, Some(error)),
            }
        }
        None => (None, None),
    };
    let (print, device_serial) = match &job.device {
        Some(d) => (
            svc.store
                .prints_of_device(d)
                .await
                .map_err(WebError::from_store)?
                .into_iter()
                .find(|p| p.job.as_ref() == Some(&job.id)),
            svc.store.device(d).await.ok().map(|d| d.serial),
        ),
        None => (None, None),
    };
    let wizard_step = match job.step {
        JobStep::Started => 1,
        JobStep::Issuing => 2,
        JobStep::Printing | JobStep::Printed | JobStep::PrintFailed => 3,
        JobStep::Failed => 2,
        JobStep::Completed | JobStep::Cancelled => 4,
    };
    render(&JobPage {
        nav: Nav::of(signed_in),
        csrf: signed_in.csrf.clone(),
        chosen_policy,
        pin_rules,
        pin_error,
        confirm_error,
        user,
        wizard_step,
        layout_name: layout.as_ref().map(|l| l.name.clone()).unwrap_or_default(),
        has_back: layout.as_ref().is_some_and(|l| l.back_svg.is_some()),
        policies,
        pin_mode: settings.initial_pin_mode,
        print,
        device_serial,
        job,
    })
}

#[derive(Deserialize)]
pub struct PolicyForm {
    csrf: String,
    policy: String,
    pin: Option<String>,
    pin_confirm: Option<String>,
}

pub async fn choose_policy(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(job): Path<String>,
    Form(f): Form<PolicyForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let job = load_job(&state, &signed_in, &job).await?;
    // The PIN lives only in these values until the card has it; it is never logged or stored.
    let chosen = issuance::choose_policy_confirmed(
        &state.tessera.runner,
        &signed_in.actor(),
        &job.id,
        &PolicyId::new(f.policy.as_str()),
        f.pin.map(Pin::new),
        f.pin_confirm.map(Pin::new),
    )
    .await;
    match chosen {
        Ok((job, _running)) => Ok(Redirect::to(&format!("/issue/{}", job.id)).into_response()),
        // A refused PIN keeps the operator on the form: the same step, the policy still chosen,
        // the sentence next to the field; only the PIN fields are empty.
        Err(CoreError::PinRefused(refusal)) => {
            tracing::info!(operation = %job.operation, code = CoreError::from(refusal.clone()).code().as_str(), "initial PIN refused");
            let refused = PinRefused {
                policy: f.policy,
                refusal,
            };
            let mut res = job_view(&state, &signed_in, job, Some(refused)).await?;
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(res)
        }
        Err(e) => Err(WebError::from(e).with_operation(job.operation.as_str())),
    }
}

/// What the operator decided on the Print Device step.
#[derive(Clone, Copy)]
enum Decision {
    Continue,
    Cancel,
    RetryPrint,
}

async fn decide(
    state: AppState,
    signed_in: SignedIn,
    job: String,
    csrf: String,
    decision: Decision,
) -> Result<Response, WebError> {
    decide_with(state, signed_in, job, csrf, decision, None, None).await
}

/// A decision; for Cancel, the operator's reason (None from the wizard's own Cancel) and the
/// page to come back to (a local path).
async fn decide_with(
    state: AppState,
    signed_in: SignedIn,
    job: String,
    csrf: String,
    decision: Decision,
    reason: Option<String>,
    back: Option<String>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&csrf)?;
    let job = load_job(&state, &signed_in, &job).await?;
    let (svc, actor) = (&state.tessera.services, signed_in.actor());
    let done = match decision {
        Decision::Continue => issuance::finish(svc, &actor, &job.id).await,
        Decision::Cancel => {
            // Cancel it, on a job found in progress, names why; empty means abandoned.
            let reason = match reason.as_deref().map(str::trim) {
                None => issuance::CANCELLED_BY_OPERATOR,
                Some("") => issuance::ABANDONED,
                Some(r) => r,
            };
            issuance::cancel(svc, &actor, &job.id, reason).await
        }
        Decision::RetryPrint => issuance::retry_print(&state.tessera.runner, &actor, &job.id, None)
            .await
            .map(|(job, _running)| job),
    }
    .map_err(|e| WebError::from(e).with_operation(job.operation.as_str()))?;
    let user = urlencode(done.user.as_str());
    let to = match decision {
        Decision::Continue => format!("/users/{user}?flash=activated"),
        Decision::Cancel => match back.filter(|b| crate::back_link::is_local_path(b)) {
            Some(back) => back,
            None if done.device.is_none() => format!("/users/{user}?flash=cancelled_blank"),
            None => format!("/users/{user}?flash=cancelled"),
        },
        Decision::RetryPrint => format!("/issue/{}", done.id),
    };
    Ok(Redirect::to(&to).into_response())
}

pub async fn finish(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(job): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    decide(state, signed_in, job, f.csrf, Decision::Continue).await
}

#[derive(Deserialize)]
pub struct CancelForm {
    csrf: String,
    /// Present on Cancel it (a job found in progress): why, empty for abandoned.
    #[serde(default)]
    reason: Option<String>,
    /// Where Cancel it comes back to.
    #[serde(default)]
    back: Option<String>,
}

pub async fn cancel(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(job): Path<String>,
    Form(f): Form<CancelForm>,
) -> Result<Response, WebError> {
    decide_with(
        state,
        signed_in,
        job,
        f.csrf,
        Decision::Cancel,
        f.reason,
        f.back,
    )
    .await
}

pub async fn retry_print(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(job): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    decide(state, signed_in, job, f.csrf, Decision::RetryPrint).await
}

/// Percent-encodes a path segment (user ids are plain, but never trust that).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

//! `/api/v1/issuances`: the Device Issuance wizard for scripts. Start (a person, a station, a
//! layout; the printer and reader, or the pair configured at that station), the policy and the
//! initial PIN, then Continue (activate) or Cancel once the card is printed; each answers with
//! the job as `GET /api/v1/jobs/{id}` gives it. The core checks `IssueDevice`, the operator's
//! scope and the job's owner; requests carry the session's CSRF token in `X-CSRF-Token`.

use super::users::{check_csrf, json_body};
use super::{job_json, ApiError};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tessera_core::ids::{JobId, LayoutId, PolicyId, StationId, UserId};
use tessera_core::issuance::{self, StartRequest};
use tessera_core::{CoreError, Pin};

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct StartBody {
    user: String,
    station: String,
    layout: String,
    /// The printer of the station; without it, the pair the operator configured at the station
    /// (or, with card printing off, `reader`).
    printer: Option<String>,
    reader: Option<String>,
}

/// `POST /api/v1/issuances` `{user, station, layout, printer?, reader?}`: starts an issuance
/// (the blank card is fed); 201 with the job, at step `started`.
pub(super) async fn start(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    check_csrf(&signed_in, &headers)?;
    let b: StartBody = json_body(&body)?;
    let (svc, actor) = (&state.tessera.services, signed_in.actor());
    let started = match b.printer.filter(|p| !p.is_empty()) {
        Some(printer) => {
            issuance::start(
                svc,
                &actor,
                StartRequest {
                    user: UserId::new(b.user),
                    station: StationId::new(b.station),
                    printer,
                    reader: b.reader.unwrap_or_default(),
                    layout: LayoutId::new(b.layout),
                    temporary_for: None,
                },
            )
            .await
        }
        None => {
            issuance::start_at_station(
                svc,
                &actor,
                UserId::new(b.user),
                StationId::new(b.station),
                LayoutId::new(b.layout),
                b.reader.filter(|r| !r.is_empty()),
                None,
            )
            .await
        }
    };
    match started {
        Ok(job) => Ok((StatusCode::CREATED, Json(job_json(&job))).into_response()),
        Err(e) => Err(in_progress_refusal(e)),
    }
}

/// A Start refused because the person or the printer already has an issuance in progress
/// (JOB0002, JOB0003) names that job as `error.job`, so that a script can resume or cancel it as
/// the portal's refusal page offers; any other error is answered as usual.
fn in_progress_refusal(e: CoreError) -> ApiError {
    let job = match &e {
        CoreError::UserIssuanceInProgress { job, .. } | CoreError::PrinterBusy { job, .. } => {
            Some(job.job.id.to_string())
        }
        _ => None,
    };
    ApiError::naming_job(WebError::from(e), job)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PolicyBody {
    policy: String,
    /// Absent in the *Not displayed* PIN mode (the server generates it).
    pin: Option<String>,
    /// The PIN typed again; when present, it must match.
    pin_confirmation: Option<String>,
}

/// `POST /api/v1/issuances/{id}/policy` `{policy, pin, pin_confirmation}`: the card is
/// personalised and printed by the job runner; the job at `issuing` (follow it with
/// `GET /api/v1/jobs/{id}` until `printed`, `print_failed` or `failed`).
pub(super) async fn policy(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    check_csrf(&signed_in, &headers)?;
    let b: PolicyBody = json_body(&body)?;
    // The PIN lives only in these values until the card has it; it is never logged or stored.
    let (job, _running) = issuance::choose_policy_confirmed(
        &state.tessera.runner,
        &signed_in.actor(),
        &JobId::new(id),
        &PolicyId::new(b.policy),
        b.pin.map(Pin::new),
        b.pin_confirmation.map(Pin::new),
    )
    .await
    .map_err(WebError::from)?;
    Ok(Json(job_json(&job)).into_response())
}

/// `POST /api/v1/issuances/{id}/continue`: activates the printed card (`ActivateDevice`); the
/// job, `completed`.
pub(super) async fn finish(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    check_csrf(&signed_in, &headers)?;
    let job = issuance::finish(&state.tessera.services, &signed_in.actor(), &JobId::new(id))
        .await
        .map_err(WebError::from)?;
    Ok(Json(job_json(&job)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CancelBody {
    /// Why, for the audit log; "cancelled by the operator" when absent or empty.
    reason: String,
}

/// `POST /api/v1/issuances/{id}/cancel` `{reason?}`: cancels the issuance (a printed card stays
/// Pending, not activated); the job, `cancelled`.
pub(super) async fn cancel(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    check_csrf(&signed_in, &headers)?;
    let b: CancelBody = json_body(&body)?;
    let reason = match b.reason.trim() {
        "" => issuance::CANCELLED_BY_OPERATOR,
        r => r,
    };
    let job = issuance::cancel(
        &state.tessera.services,
        &signed_in.actor(),
        &JobId::new(id),
        reason,
    )
    .await
    .map_err(WebError::from)?;
    Ok(Json(job_json(&job)).into_response())
}

//! The REST API under `/api/v1`: JSON for scripts and the portal's progress bar.

mod issuances;
pub mod users;

use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tessera_core::approvals;
use tessera_core::ids::{ApprovalId, JobId, StationId};
use tessera_core::model::{StockFilter, StockState};
use tessera_core::stock;

/// API errors are JSON with the same code, message and operation id as the portal shows, and
/// the issuance they are about when there is one (a Start refused for an issuance in progress).
struct ApiError(WebError, Option<String>);

impl ApiError {
    fn naming_job(e: WebError, job: Option<String>) -> Self {
        Self(e, job)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (e, job) = (self.0, self.1);
        let status = if e.sign_in {
            StatusCode::UNAUTHORIZED
        } else {
            e.status
        };
        let mut error = json!({"code": e.code, "message": e.message, "operation": e.operation});
        if let Some(job) = job {
            error["job"] = json!(job);
        }
        (status, Json(json!({ "error": error }))).into_response()
    }
}

impl From<WebError> for ApiError {
    fn from(e: WebError) -> Self {
        Self(e, None)
    }
}

async fn job(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    // The same owner rule as the portal's issuance pages.
    let job = tessera_core::issuance::job_for(
        &state.tessera.services,
        &signed_in.actor(),
        &JobId::new(id),
    )
    .await
    .map_err(WebError::from)?;
    Ok(Json(job_json(&job)).into_response())
}

/// An issuance job as the API gives it.
fn job_json(job: &tessera_core::model::IssuanceJob) -> serde_json::Value {
    json!({
        "id": job.id, "operation": job.operation, "step": job.step.as_str(),
        "progress": job.progress, "message": job.message, "error": job.error,
        "device": job.device, "user": job.user, "station": job.station,
        "policy": job.policy,
    })
}

#[derive(Deserialize)]
struct StockQuery {
    model: Option<String>,
    state: Option<String>,
    location: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/stock?model=&state=&location=&limit=`: the stock cards, by serial.
async fn stock_list(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    Query(q): Query<StockQuery>,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    let filter = StockFilter {
        state: match q.state.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(StockState::parse(s).ok_or_else(|| {
                WebError::bad_request(format!(
                    "unknown state {s:?}: use in_stock, issued, returned or destroyed"
                ))
            })?),
            None => None,
        },
        model: q.model.filter(|m| !m.is_empty()),
        location: q.location.filter(|l| !l.is_empty()).map(StationId::new),
        limit: q.limit.unwrap_or(0),
    };
    let cards = stock::list_stock(&state.tessera.services, &signed_in.actor(), &filter)
        .await
        .map_err(WebError::from)?;
    Ok(Json(json!({ "cards": cards })).into_response())
}

/// `GET /api/v1/stock/summary`: counts per model and location.
async fn stock_summary(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    let rows = stock::stock_summary(&state.tessera.services, &signed_in.actor())
        .await
        .map_err(WebError::from)?;
    Ok(Json(json!({ "summary": rows })).into_response())
}

/// `GET /api/v1/stock/{serial}`: the card's stock record and every device made of it.
async fn stock_card(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    Path(serial): Path<String>,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    let history = stock::stock_history(&state.tessera.services, &signed_in.actor(), &serial)
        .await
        .map_err(WebError::from)?;
    Ok(Json(history).into_response())
}

#[derive(Deserialize)]
struct ImportQuery {
    model: Option<String>,
    batch: Option<String>,
    location: Option<String>,
}

/// `POST /api/v1/stock/import?model=&batch=&location=` with the CSV as the body (`text/csv`)
/// and the session's CSRF token in `X-CSRF-Token`: the import report; 422 with the report
/// (nothing imported) when a line is bad.
async fn stock_import(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    headers: HeaderMap,
    Query(q): Query<ImportQuery>,
    body: String,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    let csrf = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    signed_in.check_csrf(csrf)?;
    let defaults = stock::StockDefaults {
        model: q.model,
        batch: q.batch,
        location: q.location,
    };
    let report = stock::import_stock(
        &state.tessera.services,
        &signed_in.actor(),
        &body,
        &defaults,
    )
    .await
    .map_err(WebError::from)?;
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(report)).into_response())
}

/// `GET /api/v1/approvals`: the requests of the two-person rule the operator may decide, and
/// their own, oldest first (each with `decidable` and `own`).
async fn approvals_list(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    let queue = approvals::queue(&state.tessera.services, &signed_in.actor())
        .await
        .map_err(WebError::from)?;
    Ok(Json(json!({ "approvals": queue })).into_response())
}

#[derive(Deserialize, Default)]
struct DecisionBody {
    #[serde(default)]
    comment: String,
}

/// `POST /api/v1/approvals/{id}/approve` or `/reject`, with the session's CSRF token in
/// `X-CSRF-Token` and optionally a comment (`{"comment": "..."}` as JSON, or `comment=` as a
/// form): the request as decided.
async fn approvals_decide(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    headers: HeaderMap,
    Path((id, decision)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    let csrf = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    signed_in.check_csrf(csrf)?;
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(WebError::not_found("That decision").into()),
    };
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body: DecisionBody = if body.is_empty() {
        DecisionBody::default()
    } else if json {
        serde_json::from_slice(&body)
            .map_err(|e| WebError::bad_request(format!("The body is not the JSON expected: {e}")))?
    } else {
        serde_urlencoded::from_bytes(&body)
            .map_err(|e| WebError::bad_request(format!("The form cannot be read: {e}")))?
    };
    let approval = approvals::decide(
        &state.tessera.services,
        &signed_in.actor(),
        &ApprovalId::new(id),
        approve,
        &body.comment,
    )
    .await
    .map_err(WebError::from)?;
    Ok(Json(approval).into_response())
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/approvals", get(approvals_list))
        .route("/approvals/{id}/{decision}", post(approvals_decide))
        .route("/issuances", post(issuances::start))
        .route("/issuances/{id}/policy", post(issuances::policy))
        .route("/issuances/{id}/continue", post(issuances::finish))
        .route("/issuances/{id}/cancel", post(issuances::cancel))
        .route("/jobs/{id}", get(job))
        .route("/stock", get(stock_list))
        .route("/stock/summary", get(stock_summary))
        .route("/stock/import", post(stock_import))
        .route("/stock/{serial}", get(stock_card))
        .route("/users", get(users::list).post(users::create))
        .route("/users/import", post(users::import))
        .route(
            "/users/{uid}",
            get(users::show).put(users::update).delete(users::delete),
        )
        .route("/users/{uid}/disable", post(users::disable))
        .route("/users/{uid}/enable", post(users::enable))
        .route(
            "/users/{uid}/fingerprints",
            put(users::put_fingerprints).delete(users::delete_fingerprints),
        )
}

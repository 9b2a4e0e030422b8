//! The REST API under `/api/v1`: JSON for scripts and the portal's progress bar.

use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tessera_core::ids::JobId;

/// API errors are JSON with the same code, message and operation id as the portal shows.
struct ApiError(WebError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = if e.sign_in {
            StatusCode::UNAUTHORIZED
        } else {
            e.status
        };
        (
            status,
            Json(
                json!({"error": {"code": e.code, "message": e.message, "operation": e.operation}}),
            ),
        )
            .into_response()
    }
}

impl From<WebError> for ApiError {
    fn from(e: WebError) -> Self {
        Self(e)
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
    Ok(Json(json!({
        "id": job.id, "operation": job.operation, "step": job.step.as_str(),
        "progress": job.progress, "message": job.message, "error": job.error,
        "device": job.device, "user": job.user,
    }))
    .into_response())
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/jobs/{id}", get(job))
}

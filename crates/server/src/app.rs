//! The router: portal pages, static assets, the REST API and the health check.

use crate::wiring::Tessera;
use crate::{api, pki_http, portal, station_http};
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

#[derive(Clone)]
pub struct AppState {
    pub tessera: Tessera,
    /// The last CRL served, rebuilt when a certificate's status has changed.
    pub crl: std::sync::Arc<tokio::sync::Mutex<Option<crate::pki_http::CachedCrl>>>,
    /// People imports running in the background, and their reports.
    pub imports: std::sync::Arc<crate::imports::Imports>,
}

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");
/// The people pages' script: the photo crop and the import's progress bar.
const PEOPLE_JS: &str = include_str!("../static/people.js");
/// The issuance policy step's script: the chosen policy's PIN rules, checked as the PIN is typed.
const PIN_JS: &str = include_str!("../static/pin.js");
/// The wizard's policy step: the chosen policy's description.
const POLICY_CHOICE_JS: &str = include_str!("../static/policy_choice.js");

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
}

async fn people_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        PEOPLE_JS,
    )
}

async fn pin_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        PIN_JS,
    )
}

async fn policy_choice_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        POLICY_CHOICE_JS,
    )
}

async fn healthz() -> &'static str {
    "ok"
}

/// Every response forbids framing and inline script: the portal needs neither.
async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; \
             frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

/// axum answers an oversized body with a bare 413; a person gets the portal's error page. A 413
/// that explains itself already (an upload form's own page, the API's JSON) stays as it is.
async fn explain_too_large(res: axum::response::Response) -> axum::response::Response {
    let explained = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"text/html") || v.as_bytes().starts_with(b"application/json")
    });
    if res.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE && !explained {
        return crate::web_error::WebError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "REQ0003",
            "The upload is too large: the server accepts up to 8 MB per form (2 MB per layout side).",
        )
        .into_response();
    }
    res
}

pub fn router(tessera: Tessera) -> Router {
    let state = AppState {
        tessera,
        crl: Default::default(),
        imports: Default::default(),
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .route("/static/people.js", get(people_js))
        .route("/static/pin.js", get(pin_js))
        .route("/static/policy_choice.js", get(policy_choice_js))
        .merge(portal::routes())
        .nest("/api/v1", api::routes())
        .nest("/pki", pki_http::routes())
        .merge(station_http::routes())
        .merge(crate::cluster::routes())
        // Two layout sides of up to 2 MB each, with room for form encoding.
        .layer(axum::extract::DefaultBodyLimit::max(8 * 1024 * 1024))
        // The 413 page is made before the security headers are added, so it carries them too.
        .layer(axum::middleware::map_response(explain_too_large))
        .layer(axum::middleware::from_fn(security_headers))
        // Outermost, so every error page (the 413 one too) knows the page it came from.
        .layer(axum::middleware::from_fn(crate::back_link::remember))
        .with_state(state)
}

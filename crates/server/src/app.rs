//! The router: portal pages, static assets, the REST API and the health check.

use crate::wiring::Tessera;
use crate::{api, pki_http, portal};
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

#[derive(Clone)]
pub struct AppState {
    pub tessera: Tessera,
    /// The last CRL served, rebuilt when a certificate's status has changed.
    pub crl: std::sync::Arc<tokio::sync::Mutex<Option<crate::pki_http::CachedCrl>>>,
}

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
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

pub fn router(tessera: Tessera) -> Router {
    let state = AppState {
        tessera,
        crl: Default::default(),
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .merge(portal::routes())
        .nest("/api/v1", api::routes())
        .nest("/pki", pki_http::routes())
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

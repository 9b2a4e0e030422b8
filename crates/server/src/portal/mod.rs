//! The Operator Portal: server-rendered pages. Each handler parses, authorises, calls one use case
//! and renders a template.

mod devices;
mod issue;
mod layouts;
mod login;
mod policies;
mod printers;
mod settings;
mod users;

use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use askama::Template;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use tessera_core::model::Station;

/// A form that carries nothing but its CSRF token (a button).
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// What the page header shows about the signed-in operator.
pub struct Nav {
    pub is_admin: bool,
    pub operator_name: String,
    pub role: String,
    pub csrf: String,
}

impl Nav {
    pub fn of(s: &SignedIn) -> Option<Self> {
        Some(Self {
            is_admin: s
                .operator
                .role
                .allows(tessera_core::model::Permission::ManageSettings),
            operator_name: s.operator.display_name.clone(),
            role: s.operator.role.as_str().replace('_', " "),
            csrf: s.csrf.clone(),
        })
    }
}

pub fn render(t: &impl Template) -> Result<Response, WebError> {
    let html = t.render().map_err(|e| {
        tracing::error!(error = %e, "template failed");
        WebError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "WEB0001",
            "The page could not be shown.",
        )
    })?;
    Ok(Html(html).into_response())
}

/// The station the operator works at: the first enabled one (the demo has one, "This workstation").
pub async fn current_station(state: &AppState) -> Result<Station, WebError> {
    state
        .tessera
        .services
        .store
        .stations()
        .await
        .map_err(WebError::from_store)?
        .into_iter()
        .find(|s| s.enabled)
        .ok_or_else(|| {
            WebError::bad_request("No station is configured. Ask an administrator to add one.")
        })
}

async fn home() -> Redirect {
    Redirect::to("/users")
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/settings", get(settings::page).post(settings::save))
        .route("/policies", get(policies::list))
        .route("/policies/{id}", get(policies::edit))
        .route("/policies/save", post(policies::save))
        .route("/printers", get(printers::page))
        .route("/printers/add", post(printers::add))
        .route("/printers/test", post(printers::test))
        .route("/layouts", get(layouts::list))
        .route("/layouts/{id}", get(layouts::edit))
        .route("/layouts/save", post(layouts::save))
        .route("/layouts/preview", post(layouts::preview))
        .route("/users", get(users::search))
        .route("/users/{uid}", get(users::page))
        .route("/users/{uid}/photo", get(users::photo))
        .route("/users/{uid}/issue", get(issue::configure_page))
        .route("/users/{uid}/issue/configure", post(issue::configure))
        .route("/users/{uid}/issue/start", post(issue::start))
        .route("/issue/{job}", get(issue::job_page))
        .route("/issue/{job}/policy", post(issue::choose_policy))
        .route("/issue/{job}/continue", post(issue::finish))
        .route("/issue/{job}/cancel", post(issue::cancel))
        .route("/issue/{job}/retry-print", post(issue::retry_print))
        .route("/devices/{id}/activate", post(devices::activate))
        .route("/devices/{id}/reveal-pin", post(devices::reveal_pin))
        .route("/devices/{id}/suspend", post(devices::suspend))
        .route("/devices/{id}/reprint", post(devices::reprint))
        .route("/devices/{id}/resume", post(devices::resume))
        .route("/devices/{id}/terminate", post(devices::terminate))
        .route("/devices/{id}/preview/{side}", get(devices::preview))
}

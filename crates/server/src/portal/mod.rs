//! The Operator Portal: server-rendered pages. Each handler parses, authorises, calls one use case
//! and renders a template.

mod account;
mod approvals;
mod audit;
mod devices;
mod directory;
mod help_desk;
mod issue;
mod jobs;
mod layouts;
mod login;
mod multipart_form;
mod operators;
mod people;
mod people_fingerprints;
mod people_import;
mod people_photo;
mod pki;
mod policies;
mod printers;
mod settings;
mod station_choice;
mod stations;
mod stock;
mod users;

use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use tessera_core::model::{Permission, Station};

/// A form that carries nothing but its CSRF token (a button).
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// What the page header shows about the signed-in operator.
pub struct Nav {
    pub manages_settings: bool,
    pub manages_policies: bool,
    pub manages_layouts: bool,
    pub manages_stations: bool,
    pub views_audit: bool,
    pub views_stock: bool,
    pub manages_operators: bool,
    pub manages_users: bool,
    /// `IssueDevice`: the Jobs in progress page.
    pub issues: bool,
    pub approves: bool,
    pub operator_name: String,
    pub role: String,
    pub csrf: String,
}

impl Nav {
    pub fn of(s: &SignedIn) -> Option<Self> {
        Some(Self {
            manages_settings: s.may(Permission::ManageSettings),
            manages_policies: s.may(Permission::ManagePolicies),
            manages_layouts: s.may(Permission::ManageLayouts),
            manages_stations: s.may(Permission::ManageStations),
            views_audit: s.may(Permission::ViewAudit),
            views_stock: s.may(Permission::ViewStock),
            manages_operators: s.may(Permission::ManageOperators),
            manages_users: s.may(Permission::ManageUsers),
            issues: s.may(Permission::IssueDevice),
            approves: s.may(Permission::ApproveRequests),
            operator_name: s.operator.display_name.clone(),
            role: s.actor.role.name.clone(),
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

/// A page that shows a secret once (a one-time password, a TOTP key, recovery codes): no
/// browser or proxy may keep a copy.
pub fn render_secret(t: &impl Template) -> Result<Response, WebError> {
    let mut res = render(t)?;
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

/// The cookie that remembers, per browser, the station the operator works at (its id).
pub const STATION_COOKIE: &str = "tessera_station";
/// A workstation's browser keeps its station for a year.
const STATION_COOKIE_SECONDS: i64 = 365 * 24 * 3600;

pub fn station_cookie(id: &str) -> String {
    format!(
        "{STATION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={STATION_COOKIE_SECONDS}"
    )
}

/// Whether operators may work at a station: enabled and not revoked.
pub fn usable(station: &Station) -> bool {
    station.enabled && !station.access.as_ref().is_some_and(|a| a.revoked)
}

/// The stations an operator may choose: the in-process one first (always reachable), then the
/// connected remote ones, then the others, each group by name. Without a choice of its own, a
/// browser works at the first.
pub async fn usable_stations(state: &AppState) -> Result<Vec<Station>, WebError> {
    let stations: Vec<Station> = state
        .tessera
        .services
        .store
        .stations()
        .await
        .map_err(WebError::from_store)?
        .into_iter()
        .filter(usable)
        .collect();
    let mut keyed = Vec::with_capacity(stations.len());
    for s in stations {
        let key = (
            s.access.is_some(),
            !connected(state, &s).await,
            s.name.to_lowercase(),
        );
        keyed.push((key, s));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(keyed.into_iter().map(|(_, s)| s).collect())
}

/// The station this browser chose (its cookie), when it is still usable.
pub fn chosen<'a>(stations: &'a [Station], headers: &HeaderMap) -> Option<&'a Station> {
    let id = crate::auth::cookie_in(headers, STATION_COOKIE)?;
    stations.iter().find(|s| s.id.as_str() == id)
}

/// The station the operator works at: the one this browser chose, or else (none chosen, or the
/// chosen one disabled, revoked or deleted) the first usable one, "This workstation" in the demo.
pub async fn current_station(state: &AppState, headers: &HeaderMap) -> Result<Station, WebError> {
    let stations = usable_stations(state).await?;
    chosen(&stations, headers)
        .or_else(|| stations.first())
        .cloned()
        .ok_or_else(|| {
            WebError::bad_request("No station is configured. Ask an administrator to add one.")
        })
}

/// Whether a remote station has its connection open now, here or at another replica
/// (in-process stations always do).
pub async fn connected(state: &AppState, station: &Station) -> bool {
    station.access.is_none() || state.tessera.hub.reachable(&station.id).await
}

/// No portal page is kept by the browser or a proxy: Back after Continue asks the server again,
/// and sees the step as it is now (a finished job shows no live buttons); a signed-out browser's
/// history shows nobody's data. A response that chose its own caching keeps it.
async fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .entry(axum::http::header::CACHE_CONTROL)
        .or_insert(axum::http::HeaderValue::from_static("no-store"));
    res
}

async fn home() -> Redirect {
    Redirect::to("/users")
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login::form).post(login::submit))
        .route("/login/card", get(login::card))
        .route("/logout", post(login::logout))
        .route("/settings", get(settings::page).post(settings::save))
        .route("/ca", get(pki::page))
        .route("/ca/content-signer/renew", post(pki::renew))
        .route(
            "/account/password",
            get(account::password_form).post(account::change_password),
        )
        .route("/account/next", get(account::next))
        .route("/account/totp", get(account::totp_form))
        .route("/account/totp/begin", post(account::totp_begin))
        .route("/account/totp/confirm", post(account::totp_confirm))
        .route("/operators", get(operators::page))
        .route("/operators/create", post(operators::create))
        .route("/operators/{id}", get(operators::edit))
        .route("/operators/{id}/save", post(operators::save))
        .route(
            "/operators/{id}/reset-password",
            post(operators::reset_password),
        )
        .route("/operators/{id}/reset-totp", post(operators::reset_totp))
        .route("/operators/{id}/delete", post(operators::delete))
        .route("/roles/save", post(operators::save_role))
        .route("/roles/{id}/delete", post(operators::delete_role))
        .route("/approvals", get(approvals::page))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/reject", post(approvals::reject))
        .route("/policies", get(policies::list))
        .route("/policies/{id}", get(policies::edit))
        .route("/policies/save", post(policies::save))
        .route("/printers", get(printers::page))
        .route("/printers/add", post(printers::add))
        .route("/printers/test", post(printers::test))
        .route("/printers/remove", post(printers::remove))
        .route("/stations", get(stations::page))
        .route("/audit", get(audit::page))
        .route("/stock", get(stock::page))
        .route("/stock/import", post(stock::import))
        .route("/stock/cards/{serial}", get(stock::card))
        .route("/stock/cards/{serial}/state", post(stock::set_state))
        .route("/audit/check", post(audit::check))
        .route("/stations/create", post(stations::create))
        .route("/stations/{id}/token", post(stations::new_token))
        .route("/stations/{id}/enable", post(stations::enable))
        .route("/stations/{id}/disable", post(stations::disable))
        .route(
            "/stations/{id}/revoke",
            get(stations::confirm_revoke).post(stations::revoke),
        )
        .route(
            "/station",
            get(station_choice::page).post(station_choice::choose),
        )
        .route("/layouts", get(layouts::list))
        .route("/layouts/{id}", get(layouts::edit))
        .route("/layouts/save", post(layouts::save))
        .route("/layouts/preview", post(layouts::preview))
        .route("/users", get(users::search))
        .route("/users/{uid}", get(users::page))
        .route(
            "/users/{uid}/photo",
            get(users::photo)
                .post(people_photo::upload)
                .layer(DefaultBodyLimit::max(people_photo::PHOTO_BODY_BYTES)),
        )
        .route("/users/{uid}/photo/remove", post(people_photo::remove))
        .route(
            "/users/{uid}/fingerprints",
            post(people_fingerprints::enrol).layer(DefaultBodyLimit::max(
                people_fingerprints::FINGERPRINTS_BODY_BYTES,
            )),
        )
        .route(
            "/users/{uid}/fingerprints/remove",
            post(people_fingerprints::remove),
        )
        .route("/users/new", get(people::new_form).post(people::create))
        .route(
            "/users/{uid}/edit",
            get(people::edit_form).post(people::save),
        )
        .route(
            "/users/{uid}/disable",
            get(people::disable_form).post(people::disable),
        )
        .route("/users/{uid}/enable", post(people::enable))
        .route(
            "/users/{uid}/delete",
            get(people::delete_form).post(people::delete),
        )
        .route(
            "/users/import",
            get(people_import::form)
                .post(people_import::start)
                .layer(DefaultBodyLimit::max(people_import::IMPORT_BODY_BYTES)),
        )
        .route("/users/import/{id}", get(people_import::run_page))
        .route("/users/import/{id}/progress", get(people_import::progress))
        .route("/users/import/{id}/apply", post(people_import::apply))
        .route("/users/{uid}/issue", get(issue::configure_page))
        .route("/users/{uid}/issue/configure", post(issue::configure))
        .route("/users/{uid}/issue/start", post(issue::start))
        .route("/jobs", get(jobs::page))
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
        .route(
            "/devices/{id}/unlock",
            get(help_desk::unlock_page).post(help_desk::unlock),
        )
        .route(
            "/devices/{id}/recycle",
            get(help_desk::recycle_page).post(help_desk::recycle),
        )
        .route("/devices/{id}/replace", post(help_desk::replace))
        .route("/devices/{id}/restore", post(help_desk::restore))
        .route("/directory", get(directory::page))
        .route("/directory/sync", post(directory::sync))
        .layer(axum::middleware::map_response(no_store))
}

//! The Stations page: every station with its kind, enrolment, state, connection and the printers
//! and readers it reports; creating a remote station and handing out its one-time enrolment
//! token; enabling, disabling and revoking. A token is rendered once, in the answer to the POST
//! that made it (never stored, logged, redirected to or put in a URL); revoking or disabling a
//! station cuts its connection at once.

use super::{connected, render, CsrfForm, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::serve::ServedOverTls;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use tessera_core::ids::StationId;
use tessera_core::model::{Permission, Station, Timestamp};
use tessera_core::secret::StationSecret;
use tessera_core::stations;

pub struct StationRow {
    pub id: String,
    pub name: String,
    pub remote: bool,
    pub enrolment: String,
    pub revoked: bool,
    pub enabled: bool,
    pub connection: String,
    pub connected: bool,
    pub printers: Vec<String>,
    pub readers: Vec<String>,
}

#[derive(Template)]
#[template(path = "stations.html")]
struct StationsPage {
    nav: Option<Nav>,
    csrf: String,
    stations: Vec<StationRow>,
    flash: Option<String>,
}

#[derive(Template)]
#[template(path = "station_token.html")]
struct TokenPage {
    nav: Option<Nav>,
    station_name: String,
    created: bool,
    token: String,
    command: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "station_revoke.html")]
struct RevokePage {
    nav: Option<Nav>,
    csrf: String,
    station: Station,
}

#[derive(Deserialize)]
pub struct FlashQuery {
    done: Option<String>,
    station: Option<String>,
}

fn require(signed_in: &SignedIn) -> Result<(), WebError> {
    Ok(signed_in
        .actor()
        .require(Permission::ManageStations, "manage stations")?)
}

/// What the page says about a station's enrolment.
fn enrolment(station: &Station, now: Timestamp) -> String {
    let Some(access) = &station.access else {
        return "Runs inside the server".into();
    };
    let waiting = match (&access.enrolment_token_hash, access.enrolment_expires) {
        (Some(_), Some(t)) if t.0 >= now.0 => {
            Some(format!("token waiting, expires {}", t.date_time()))
        }
        (Some(_), _) => Some("token expired".into()),
        _ => None,
    };
    let base = match (access.revoked, access.enrolled_at) {
        (true, _) => "Revoked".to_owned(),
        (false, Some(t)) => format!("Enrolled {}", t.date_time()),
        (false, None) => "Not enrolled".to_owned(),
    };
    match waiting {
        Some(w) => format!("{base}; {w}"),
        None => base,
    }
}

async fn row(state: &AppState, station: &Station, now: Timestamp) -> StationRow {
    let is_connected = connected(state, station).await;
    let (printers, readers) = match &station.access {
        // The in-process station answers from this process.
        None => match state.tessera.services.stations.station(&station.id) {
            Some(port) => (
                port.printers().await.unwrap_or_default(),
                port.readers().await.unwrap_or_default(),
            ),
            None => (Vec::new(), Vec::new()),
        },
        Some(_) => match state.tessera.hub.inventory(&station.id).await {
            Some(inventory) if is_connected => {
                let readers = inventory
                    .readers
                    .into_iter()
                    .map(|r| match r.card_present {
                        Some(true) => format!("{} (card in)", r.name),
                        Some(false) => format!("{} (empty)", r.name),
                        None => r.name,
                    })
                    .collect();
                (inventory.printers, readers)
            }
            _ => (Vec::new(), Vec::new()),
        },
    };
    StationRow {
        id: station.id.as_str().to_owned(),
        name: station.name.clone(),
        remote: station.access.is_some(),
        enrolment: enrolment(station, now),
        revoked: station.access.as_ref().is_some_and(|a| a.revoked),
        enabled: station.enabled,
        connection: match (&station.access, is_connected) {
            (None, _) => "In this server".into(),
            (Some(_), true) => "Connected".into(),
            (Some(_), false) => "Not connected".into(),
        },
        connected: is_connected,
        printers: printers
            .into_iter()
            .map(|p| match p.encoder_reader {
                Some(r) => format!("{} ({}; encoder {r})", p.name, p.state),
                None => format!("{} ({})", p.name, p.state),
            })
            .collect(),
        readers,
    }
}

async fn find(state: &AppState, id: &str) -> Result<Station, WebError> {
    state
        .tessera
        .services
        .store
        .stations()
        .await
        .map_err(WebError::from_store)?
        .into_iter()
        .find(|s| s.id.as_str() == id)
        .ok_or_else(|| WebError::not_found("The station"))
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<FlashQuery>,
) -> Result<Response, WebError> {
    require(&signed_in)?;
    let svc = &state.tessera.services;
    let now = svc.clock.now();
    let mut all = svc.store.stations().await.map_err(WebError::from_store)?;
    all.sort_by_cached_key(|s| (s.access.is_some(), s.name.to_lowercase()));
    let mut rows = Vec::with_capacity(all.len());
    for station in &all {
        rows.push(row(&state, station, now).await);
    }
    let name = q
        .station
        .as_deref()
        .and_then(|id| all.iter().find(|s| s.id.as_str() == id))
        .map(|s| s.name.clone());
    let flash = match (q.done.as_deref(), name) {
        (Some("enabled"), Some(n)) => Some(format!("{n} is enabled.")),
        (Some("disabled"), Some(n)) => Some(format!(
            "{n} is disabled: its connection was cut and operators can no longer choose it."
        )),
        (Some("revoked"), Some(n)) => Some(format!(
            "{n} is revoked: its connection was cut and its credential no longer works."
        )),
        _ => None,
    };
    render(&StationsPage {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        stations: rows,
        flash,
    })
}

/// This server's address as the browser sees it, for the command the workstation runs.
fn server_url(headers: &HeaderMap, served_over_tls: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]_".contains(c))
        })
        .unwrap_or("SERVER:PORT");
    // The server's own TLS, or a TLS-terminating proxy in front of it: the browser spoke https.
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        _ if served_over_tls => "https",
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// The page that shows an enrolment token, the only time it is shown.
fn token_page(
    signed_in: &SignedIn,
    headers: &HeaderMap,
    served_over_tls: bool,
    station: &Station,
    token: &StationSecret,
    created: bool,
) -> Result<Response, WebError> {
    let expires = station
        .access
        .as_ref()
        .and_then(|a| a.enrolment_expires)
        .map(|t| t.date_time())
        .unwrap_or_default();
    let command = format!(
        "tessera station --server {} --token {}",
        server_url(headers, served_over_tls),
        token.expose()
    );
    let mut res = render(&TokenPage {
        nav: Nav::of(signed_in),
        station_name: station.name.clone(),
        created,
        token: token.expose().to_owned(),
        command,
        expires,
    })?;
    // Neither the browser's cache nor its history may keep the token.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[derive(Deserialize)]
pub struct CreateForm {
    csrf: String,
    name: String,
}

pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    tls: Option<Extension<ServedOverTls>>,
    Form(f): Form<CreateForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let (station, token) =
        stations::create(&state.tessera.services, &signed_in.actor(), &f.name).await?;
    token_page(&signed_in, &headers, tls.is_some(), &station, &token, true)
}

pub async fn new_token(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    tls: Option<Extension<ServedOverTls>>,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let (station, token) = stations::new_enrolment_token(
        &state.tessera.services,
        &signed_in.actor(),
        &StationId::new(id),
    )
    .await?;
    token_page(&signed_in, &headers, tls.is_some(), &station, &token, false)
}

fn done(what: &str, station: &Station) -> Response {
    let to = format!(
        "/stations?done={what}&station={}",
        super::issue::urlencode(station.id.as_str())
    );
    Redirect::to(&to).into_response()
}

async fn set_enabled(
    state: AppState,
    signed_in: SignedIn,
    id: String,
    csrf: String,
    enabled: bool,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&csrf)?;
    let station = stations::set_enabled(
        &state.tessera.services,
        &signed_in.actor(),
        &StationId::new(id),
        enabled,
    )
    .await?;
    if !enabled {
        if let Some(link) = state.tessera.hub.remote(&station.id) {
            link.kick("this station was disabled by an administrator");
        }
    }
    Ok(done(if enabled { "enabled" } else { "disabled" }, &station))
}

pub async fn enable(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    set_enabled(state, signed_in, id, f.csrf, true).await
}

pub async fn disable(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    set_enabled(state, signed_in, id, f.csrf, false).await
}

/// Asks before revoking: a revoked station needs a new token and a visit to the workstation.
pub async fn confirm_revoke(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    require(&signed_in)?;
    let station = find(&state, &id).await?;
    if station.access.is_none() {
        return Err(WebError::bad_request(
            "This station runs inside the server and has no credential to revoke.",
        ));
    }
    render(&RevokePage {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        station,
    })
}

pub async fn revoke(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let station = stations::revoke(
        &state.tessera.services,
        &signed_in.actor(),
        &StationId::new(id),
    )
    .await?;
    if let Some(link) = state.tessera.hub.remote(&station.id) {
        link.kick("this station's credential was revoked by an administrator");
    }
    Ok(done("revoked", &station))
}

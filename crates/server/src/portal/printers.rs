//! The Printers page: a station's card printers with their live state and what they can do,
//! adding an IPP printer by URI or a spool folder (`spool:/folder`) with its encoder reader,
//! removing one, and printing a test card. It shows the station of this browser unless another
//! is picked (`?station=ID`); a remote station gets its configured printers over its connection.

use super::station_choice::{self, StationOption};
use super::{render, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::printers;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tessera_core::ids::StationId;
use tessera_core::model::Permission;

pub struct PrinterRow {
    pub name: String,
    pub kind: String,
    pub uri: String,
    pub encoder: String,
    pub state: String,
    pub capabilities: String,
    /// In the station's configuration here (removable), not on a remote station's command line.
    pub configured: bool,
}

#[derive(Template)]
#[template(path = "printers.html")]
struct PrintersPage {
    nav: Option<Nav>,
    csrf: String,
    station_id: String,
    station_name: String,
    /// Remote stations: the folder and printer are on that workstation.
    remote: bool,
    stations: Vec<StationOption>,
    printers: Vec<PrinterRow>,
    readers: Vec<String>,
    flash: Option<String>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    station: Option<String>,
    added: Option<String>,
    removed: Option<String>,
    printed: Option<String>,
}

/// The station a form names; none: the one inside the server.
fn station_of(form: &str) -> StationId {
    match form.trim() {
        "" => printers::station_id(),
        id => StationId::new(id),
    }
}

/// The page's address for a station, with a flash message's key and value.
fn page_url(station: &str, flash: &str, name: &str) -> String {
    use crate::portal::issue::urlencode;
    format!(
        "/printers?station={}&{flash}={}",
        urlencode(station),
        urlencode(name)
    )
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    signed_in
        .actor()
        .require(Permission::ManageStations, "manage printers")?;
    let t = &state.tessera;
    let station = match q.station.as_deref().filter(|s| !s.is_empty()) {
        Some(id) => printers::station_record(t, &StationId::new(id)).await?,
        None => super::current_station(&state, &headers).await?,
    };
    let mut stations = station_choice::options(&state, &headers).await?;
    for s in &mut stations {
        s.selected = s.id == station.id.as_str();
    }
    let remote = station.access.is_some();
    let rows = printers::overview(t, &station.id)
        .await?
        .into_iter()
        .map(|v| PrinterRow {
            uri: v.uri().to_owned(),
            name: v.config.name.clone(),
            kind: v.info.kind.clone(),
            configured: v.configured,
            encoder: v.config.encoder_reader.clone().unwrap_or_default(),
            state: v.info.state.clone(),
            capabilities: v
                .capabilities
                .as_ref()
                .map(|c| {
                    format!(
                        "{}; {}; card media: {}; sides: {}",
                        c.make_and_model,
                        c.document_formats.join(", "),
                        c.card_media.as_deref().unwrap_or(if c.custom_sizes {
                            "custom sizes"
                        } else {
                            "none listed"
                        }),
                        c.sides.join(", ")
                    )
                })
                .unwrap_or_default(),
        })
        .collect();
    let readers = match t.services.stations.station(&station.id) {
        Some(port) => port.readers().await.unwrap_or_default(),
        None => Vec::new(),
    };
    let flash = match (q.added, q.removed, q.printed) {
        (Some(name), _, _) if remote => Some(format!(
            "Printer {name} added; the station {} gets it within seconds.",
            station.name
        )),
        (Some(name), _, _) => Some(format!("Printer {name} added.")),
        (_, Some(name), _) => Some(format!("Printer {name} removed.")),
        (_, _, Some(name)) => Some(format!("The test card was printed on {name}.")),
        _ => None,
    };
    render(&PrintersPage {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        station_id: station.id.as_str().to_owned(),
        station_name: station.name,
        remote,
        stations,
        printers: rows,
        readers,
        flash,
    })
}

#[derive(Deserialize)]
pub struct AddForm {
    csrf: String,
    #[serde(default)]
    station: String,
    name: String,
    uri: String,
    #[serde(default)]
    encoder: String,
    /// ipps:// printers: a PEM file of CA certificates on the server.
    #[serde(default)]
    ca_file: String,
}

pub async fn add(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<AddForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let config = printers::add(
        &state.tessera,
        &signed_in.actor(),
        &station_of(&f.station),
        &f.name,
        &f.uri,
        Some(f.encoder),
        Some(f.ca_file),
    )
    .await?;
    Ok(Redirect::to(&page_url(&f.station, "added", &config.name)).into_response())
}

/// The test page and remove buttons: a printer of a station.
#[derive(Deserialize)]
pub struct PrinterForm {
    csrf: String,
    #[serde(default)]
    station: String,
    name: String,
}

pub async fn test(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<PrinterForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let station = station_of(&f.station);
    printers::test_page(&state.tessera, &signed_in.actor(), &station, &f.name).await?;
    Ok(Redirect::to(&page_url(&f.station, "printed", &f.name)).into_response())
}

pub async fn remove(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<PrinterForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let station = station_of(&f.station);
    printers::remove(&state.tessera, &signed_in.actor(), &station, &f.name).await?;
    Ok(Redirect::to(&page_url(&f.station, "removed", &f.name)).into_response())
}

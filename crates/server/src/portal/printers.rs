//! The Printers page: the station's card printers with their live state and what they can do,
//! adding an IPP printer by URI or a spool folder (`spool:/folder`) with its encoder reader, and
//! printing a test card.

use super::{render, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::printers;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tessera_core::model::Permission;
use tessera_core::ports::StationPort;

pub struct PrinterRow {
    pub name: String,
    pub kind: String,
    pub uri: String,
    pub encoder: String,
    pub state: String,
    pub capabilities: String,
}

#[derive(Template)]
#[template(path = "printers.html")]
struct PrintersPage {
    nav: Option<Nav>,
    csrf: String,
    station_name: String,
    printers: Vec<PrinterRow>,
    readers: Vec<String>,
    flash: Option<String>,
}

#[derive(Deserialize)]
pub struct FlashQuery {
    added: Option<String>,
    printed: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<FlashQuery>,
) -> Result<Response, WebError> {
    signed_in
        .actor()
        .require(Permission::ManageStations, "manage printers")?;
    let t = &state.tessera;
    let station = printers::station_record(t).await?;
    let rows = printers::overview(t)
        .await?
        .into_iter()
        .map(|v| PrinterRow {
            uri: v.uri().to_owned(),
            name: v.config.name.clone(),
            kind: v.info.kind.clone(),
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
    let readers = t.station.readers().await.unwrap_or_default();
    let flash = match (q.added, q.printed) {
        (Some(name), _) => Some(format!("Printer {name} added.")),
        (_, Some(name)) => Some(format!("The test card was printed on {name}.")),
        _ => None,
    };
    render(&PrintersPage {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        station_name: station.name,
        printers: rows,
        readers,
        flash,
    })
}

#[derive(Deserialize)]
pub struct AddForm {
    csrf: String,
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
        &f.name,
        &f.uri,
        Some(f.encoder),
        Some(f.ca_file),
    )
    .await?;
    let to = format!(
        "/printers?added={}",
        crate::portal::issue::urlencode(&config.name)
    );
    Ok(Redirect::to(&to).into_response())
}

#[derive(Deserialize)]
pub struct TestForm {
    csrf: String,
    name: String,
}

pub async fn test(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<TestForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    printers::test_page(&state.tessera, &signed_in.actor(), &f.name).await?;
    let to = format!(
        "/printers?printed={}",
        crate::portal::issue::urlencode(&f.name)
    );
    Ok(Redirect::to(&to).into_response())
}

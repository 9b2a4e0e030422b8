//! The help desk's actions from the User page: Unlock PIN and Recycle (a page to pick the reader
//! the card is in at this station, a reason, and for Unlock the new PIN twice), Replace (a reason
//! and a comment, then on to the issuance wizard) and Restore original. Each handler parses,
//! calls one use case of `tessera_core::devices` / `help_desk`, and says what happened.

use super::{current_station, render, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::portal::issue::urlencode;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tessera_core::help_desk::{self, Replacement};
use tessera_core::ids::DeviceId;
use tessera_core::model::{Device, Permission, StockState};
use tessera_core::{devices, CoreError, Pin, Reason};

/// What a help-desk page at a reader is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AtReader {
    Unlock,
    Recycle,
}

#[derive(Template)]
#[template(path = "help_desk_reader.html")]
struct ReaderPage {
    nav: Option<Nav>,
    csrf: String,
    what: AtReader,
    device_id: String,
    serial: String,
    uid: String,
    station_name: String,
    readers: Vec<String>,
    selected_reader: String,
}

#[derive(Template)]
#[template(path = "help_desk_done.html")]
struct DonePage {
    nav: Option<Nav>,
    title: &'static str,
    message: String,
    uid: String,
}

/// The page of `what` for card `id`: the readers of the operator's station (the one paired with
/// their printer first).
async fn reader_page(
    state: &AppState,
    signed_in: &SignedIn,
    headers: &HeaderMap,
    id: String,
    what: AtReader,
) -> Result<Response, WebError> {
    let actor = signed_in.actor();
    match what {
        AtReader::Unlock => actor.require(Permission::UnlockDevice, "unlock cards")?,
        AtReader::Recycle => actor.require(Permission::RecycleDevice, "recycle cards")?,
    }
    let svc = &state.tessera.services;
    let device = svc.device_in_scope(&actor, &DeviceId::new(id)).await?;
    let station = current_station(state, headers).await?;
    let readers = match svc.stations.station(&station.id) {
        Some(port) => port.readers().await.map_err(CoreError::Station)?,
        None => Vec::new(),
    };
    let paired = svc
        .store
        .pairing(&actor.operator, &station.id)
        .await
        .map_err(WebError::from_store)?
        .map(|p| p.reader)
        .filter(|r| readers.contains(r));
    render(&ReaderPage {
        nav: Nav::of(signed_in),
        csrf: signed_in.csrf.clone(),
        what,
        device_id: device.id.0.clone(),
        serial: device.serial.clone(),
        uid: holder(&device),
        station_name: station.name,
        selected_reader: paired
            .or_else(|| readers.first().cloned())
            .unwrap_or_default(),
        readers,
    })
}

fn holder(d: &Device) -> String {
    d.user.as_ref().map(|u| u.0.clone()).unwrap_or_default()
}

fn done(signed_in: &SignedIn, title: &'static str, message: String, uid: String) -> Response {
    let page = DonePage {
        nav: Nav::of(signed_in),
        title,
        message,
        uid,
    };
    match render(&page) {
        Ok(mut res) => {
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            res
        }
        Err(e) => e.into_response(),
    }
}

pub async fn unlock_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    reader_page(&state, &signed_in, &headers, id, AtReader::Unlock).await
}

#[derive(Deserialize)]
pub struct UnlockForm {
    csrf: String,
    reader: String,
    #[serde(default)]
    reason: String,
    pin: String,
    pin_confirm: String,
}

pub async fn unlock(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<UnlockForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let station = current_station(&state, &headers).await?;
    let unlocked = devices::unlock(
        &state.tessera.services,
        &signed_in.actor(),
        &DeviceId::new(id),
        (&station.id, &f.reader),
        (&Pin::new(f.pin), Some(&Pin::new(f.pin_confirm))),
        &f.reason,
    )
    .await?;
    let message = format!(
        "The PIN of card {} was reset with the escrowed PUK and a new PIN set; the card has {} tries left. The PUK stays escrowed.",
        unlocked.device.serial, unlocked.tries_left
    );
    Ok(done(
        &signed_in,
        "PIN unlocked",
        message,
        holder(&unlocked.device),
    ))
}

pub async fn recycle_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    reader_page(&state, &signed_in, &headers, id, AtReader::Recycle).await
}

#[derive(Deserialize)]
pub struct RecycleForm {
    csrf: String,
    reader: String,
    #[serde(default)]
    reason: String,
}

pub async fn recycle(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<RecycleForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let station = current_station(&state, &headers).await?;
    let recycled = help_desk::recycle(
        &state.tessera.services,
        &signed_in.actor(),
        &DeviceId::new(id),
        (&station.id, &f.reader),
        &f.reason,
    )
    .await?;
    let stock = match recycled.stock {
        Some(StockState::InStock) => " It is back in stock.",
        Some(StockState::Destroyed) => " Its stock record says Destroyed: do not issue it.",
        _ => "",
    };
    let message = format!(
        "Card {} was erased (PIV reset to its factory state); its record is Recycled and its certificates are revoked. It can be issued again as a blank card.{stock}",
        recycled.device.serial
    );
    Ok(done(
        &signed_in,
        "Card recycled",
        message,
        holder(&recycled.device),
    ))
}

#[derive(Deserialize)]
pub struct ReplaceForm {
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    comment: String,
}

/// Replace: the old card ends (or is suspended, when forgotten) and the operator goes on to the
/// wizard to issue the new (or temporary) card.
pub async fn replace(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<ReplaceForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let reason = Reason::parse(&f.reason)
        .ok_or_else(|| WebError::bad_request("Choose a reason from the list."))?;
    let (device, kind) = help_desk::replace(
        &state.tessera.services,
        &signed_in.actor(),
        &DeviceId::new(id),
        reason,
        &f.comment,
    )
    .await?;
    let uid = urlencode(&holder(&device));
    let next = match kind {
        Replacement::Permanent => format!("/users/{uid}/issue"),
        Replacement::Temporary => {
            format!(
                "/users/{uid}/issue?temporary_for={}",
                urlencode(&device.id.0)
            )
        }
    };
    Ok(Redirect::to(&next).into_response())
}

#[derive(Deserialize)]
pub struct RestoreForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub async fn restore(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<RestoreForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let (original, ended) = help_desk::restore_original(
        &state.tessera.services,
        &signed_in.actor(),
        &DeviceId::new(id),
        &f.reason,
    )
    .await?;
    let ended = match ended.len() {
        0 => "it had no temporary card".to_owned(),
        _ => format!(
            "temporary card {} terminated, its certificates revoked",
            ended
                .iter()
                .map(|d| d.serial.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let message = format!(
        "Card {} is Active again and its certificates valid; {ended}.",
        original.serial
    );
    Ok(done(
        &signed_in,
        "Original restored",
        message,
        holder(&original),
    ))
}

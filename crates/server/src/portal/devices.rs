//! Device actions from the User page: activate a Pending card, preview its printed faces.

use super::{render, CsrfForm, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Form;
use tessera_core::ids::DeviceId;
use tessera_core::{devices, issuance};
use tessera_core::{CoreError, Reason};

#[derive(Template)]
#[template(path = "pin_reveal.html")]
struct PinPage {
    nav: Option<Nav>,
    serial: String,
    holder: String,
    uid: String,
    pin: String,
}

pub async fn reveal_pin(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let svc = &state.tessera.services;
    let id = DeviceId::new(id);
    let pin = devices::reveal_initial_pin(svc, &signed_in.actor(), &id).await?;
    let device = svc.store.device(&id).await.map_err(WebError::from_store)?;
    let uid = device.user.clone().unwrap_or_else(|| "".into());
    let holder = svc
        .store
        .user(&uid)
        .await
        .map(|u| u.display_name)
        .unwrap_or_default();
    let mut res = render(&PinPage {
        nav: Nav::of(&signed_in),
        serial: device.serial,
        holder,
        uid: uid.0,
        pin: pin.expose().to_owned(),
    })?;
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

pub async fn activate(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let device = devices::activate(
        &state.tessera.services,
        &signed_in.actor(),
        &DeviceId::new(id),
        None,
    )
    .await?;
    let uid = device.user.map(|u| u.0).unwrap_or_default();
    Ok(super::users::to_user_page(&uid, "activated"))
}

#[derive(serde::Deserialize)]
pub struct ReasonForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// Suspend, resume or terminate, from the User page.
async fn change(
    state: AppState,
    signed_in: SignedIn,
    id: String,
    form: ReasonForm,
    what: &str,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&form.csrf)?;
    let svc = &state.tessera.services;
    let actor = signed_in.actor();
    let id = DeviceId::new(id);
    let reason = || {
        Reason::parse(&form.reason)
            .ok_or_else(|| WebError::bad_request("Choose a reason from the list."))
    };
    let device = match what {
        "suspend" => devices::suspend(svc, &actor, &id, reason()?).await?,
        "resume" => devices::resume(svc, &actor, &id).await?,
        _ => devices::terminate(svc, &actor, &id, reason()?).await?,
    };
    let uid = device.user.map(|u| u.0).unwrap_or_default();
    Ok(super::users::to_user_page(&uid, what))
}

pub async fn suspend(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<ReasonForm>,
) -> Result<Response, WebError> {
    change(state, signed_in, id, f, "suspend").await
}

pub async fn resume(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<ReasonForm>,
) -> Result<Response, WebError> {
    change(state, signed_in, id, f, "resume").await
}

pub async fn terminate(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<ReasonForm>,
) -> Result<Response, WebError> {
    change(state, signed_in, id, f, "terminate").await
}

#[derive(serde::Deserialize)]
pub struct ReprintForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// Prints a card's face again on the printer the operator paired at this station.
pub async fn reprint(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ReprintForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let station = super::current_station(&state, &headers).await?;
    let uid = issuance::reprint_at_station(
        &state.tessera.services,
        &signed_in.actor(),
        &DeviceId::new(id),
        &station.id,
        &f.reason,
    )
    .await?
    .map(|u| u.0)
    .unwrap_or_default();
    Ok(super::users::to_user_page(&uid, "printed"))
}

/// Renders one face of a device's card with its layout and its holder's data.
pub async fn preview(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((id, side)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let svc = &state.tessera.services;
    let (layout, data) =
        issuance::card_preview(svc, &signed_in.actor(), &DeviceId::new(id)).await?;
    let renderer = svc.renderer.clone();
    let rendered = tokio::task::spawn_blocking(move || renderer.render(&layout, &data))
        .await
        .map_err(|_| WebError::bad_request("The preview could not be rendered."))?
        .map_err(CoreError::Print)?;
    let png = match side.as_str() {
        "front.png" => rendered.front_png,
        "back.png" => rendered
            .back_png
            .ok_or_else(|| WebError::not_found("The back of the card"))?,
        _ => return Err(WebError::not_found("That side")),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=60"),
        ],
        png,
    )
        .into_response())
}

//! The security settings an administrator controls: card printing on/off and the initial PIN
//! display mode.

use super::{render, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tessera_core::model::{Permission, PinDisplayMode, Settings};

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Option<Nav>,
    csrf: String,
    settings: Settings,
    saved: bool,
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<SavedQuery>,
) -> Result<Response, WebError> {
    signed_in
        .actor()
        .require(Permission::ManageSettings, "change settings")?;
    let settings = state
        .tessera
        .services
        .store
        .settings()
        .await
        .map_err(WebError::from_store)?;
    render(&SettingsPage {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        settings,
        saved: q.saved.is_some(),
    })
}

#[derive(Deserialize)]
pub struct SettingsForm {
    csrf: String,
    card_printing: Option<String>,
    pin_mode: String,
}

pub async fn save(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<SettingsForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let settings = Settings {
        card_printing_enabled: f.card_printing.is_some(),
        initial_pin_mode: PinDisplayMode::parse(&f.pin_mode)
            .ok_or_else(|| WebError::bad_request("Choose a PIN display mode from the list."))?,
    };
    tessera_core::settings::save(&state.tessera.services, &signed_in.actor(), settings).await?;
    Ok(Redirect::to("/settings?saved=1").into_response())
}

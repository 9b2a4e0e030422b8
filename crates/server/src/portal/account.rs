//! The signed-in operator's own account: changing the password (required after a one-time
//! password) and enrolling an authenticator app (required when the role says so). These pages
//! stay reachable while such a step is owed; every other page sends the operator here.

use super::{render, render_secret, CsrfForm, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::{sentence, WebError};
use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tessera_core::operators::{self, Pending};
use tessera_core::{totp, Password};

#[derive(Template)]
#[template(path = "account_password.html")]
struct PasswordPage {
    nav: Option<Nav>,
    csrf: String,
    required: bool,
    min_length: usize,
    message: Option<String>,
}

#[derive(Template)]
#[template(path = "account_totp.html")]
struct TotpPage {
    nav: Option<Nav>,
    csrf: String,
    required: bool,
    enrolled: bool,
    /// The QR code of the `otpauth://` URI, as inline SVG, while enrolling.
    qr_svg: String,
    secret: String,
    message: Option<String>,
}

#[derive(Template)]
#[template(path = "account_codes.html")]
struct CodesPage {
    nav: Option<Nav>,
    codes: Vec<String>,
}

/// The navigation bar only once nothing is owed (its links would only bounce back here).
async fn nav(state: &AppState, s: &SignedIn) -> Result<Option<Nav>, WebError> {
    Ok(
        match operators::pending(&state.tessera.services, &s.operator).await? {
            None => Nav::of(s),
            Some(_) => None,
        },
    )
}

async fn password_page(
    state: &AppState,
    s: &SignedIn,
    message: Option<String>,
) -> Result<Response, WebError> {
    let min_length = state
        .tessera
        .services
        .store
        .settings()
        .await
        .map_err(WebError::from_store)?
        .password_min_length;
    render(&PasswordPage {
        nav: nav(state, s).await?,
        csrf: s.csrf.clone(),
        required: s.operator.must_change_password,
        min_length,
        message,
    })
}

pub async fn password_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    password_page(&state, &signed_in, None).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    confirm: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<PasswordForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    if f.new != f.confirm {
        let message = "The new password and its confirmation differ.".to_owned();
        return password_page(&state, &signed_in, Some(message)).await;
    }
    let changed = operators::change_own_password(
        &state.tessera.services,
        &signed_in.operator.id,
        &signed_in.token_hash,
        Password::new(f.current),
        Password::new(f.new),
    )
    .await;
    match changed {
        Ok(()) => Ok(Redirect::to("/account/next").into_response()),
        Err(tessera_core::CoreError::Invalid(why)) => {
            password_page(&state, &signed_in, Some(sentence(&why))).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Where to go once a step is done: the next step owed, or the portal.
pub async fn next(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let to = match operators::pending(&state.tessera.services, &signed_in.operator).await? {
        Some(Pending::ChangePassword) => "/account/password",
        Some(Pending::EnrolTotp) => "/account/totp",
        None => "/users",
    };
    Ok(Redirect::to(to).into_response())
}

/// A QR code as an SVG of dark squares on a light ground with a four-module quiet zone.
fn qr_svg(text: &str) -> Result<String, WebError> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|_| WebError::bad_request("The enrolment link is too long for a QR code."))?;
    let width = code.width();
    let size = width + 8;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"240\" \
         height=\"240\" role=\"img\" aria-label=\"QR code to scan with the authenticator app\" \
         shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path fill=\"#000\" d=\""
    );
    for (i, colour) in code.to_colors().into_iter().enumerate() {
        if colour == qrcode::Color::Dark {
            svg.push_str(&format!("M{} {}h1v1h-1z", i % width + 4, i / width + 4));
        }
    }
    svg.push_str("\"/></svg>");
    Ok(svg)
}

async fn totp_page(
    state: &AppState,
    s: &SignedIn,
    message: Option<String>,
) -> Result<Response, WebError> {
    let svc = &state.tessera.services;
    let required = operators::totp_required(svc, &s.operator.role).await?;
    let enrolled = s.operator.totp.as_ref().is_some_and(|t| t.confirmed);
    let (qr, secret) = match totp::pending_secret(svc, &s.operator)? {
        Some(secret) => (
            qr_svg(&totp::uri("Tessera", &s.operator.id, &secret))?,
            totp::base32(&secret),
        ),
        None => (String::new(), String::new()),
    };
    render_secret(&TotpPage {
        nav: nav(state, s).await?,
        csrf: s.csrf.clone(),
        required,
        enrolled,
        qr_svg: qr,
        secret,
        message,
    })
}

pub async fn totp_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    totp_page(&state, &signed_in, None).await
}

/// Starts an enrolment (a new secret, shown as a QR code on the page it redirects to).
pub async fn totp_begin(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    totp::begin(&state.tessera.services, &signed_in.operator.id).await?;
    Ok(Redirect::to("/account/totp").into_response())
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

/// Confirms the enrolment with the app's first code and shows the recovery codes, once.
pub async fn totp_confirm(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<CodeForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    match totp::confirm(&state.tessera.services, &signed_in.operator.id, &f.code).await {
        Ok(codes) => render_secret(&CodesPage { nav: None, codes }),
        Err(tessera_core::CoreError::Invalid(why)) => {
            totp_page(&state, &signed_in, Some(sentence(&why))).await
        }
        Err(e) => Err(e.into()),
    }
}

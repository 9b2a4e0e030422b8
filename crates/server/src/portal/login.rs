//! Sign in and sign out. The sign-in form is protected against login CSRF by a double-submit
//! cookie; a session gets a fresh token and its own CSRF token.

use super::station_choice::{self, StationOption};
use super::{render, CsrfForm, Nav};
use crate::app::AppState;
use crate::auth::{self, SignedIn, LOGIN_COOKIE, SESSION_SECONDS};
use crate::throttle::{wait_sentence, Failure};
use crate::web_error::WebError;
use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use tessera_core::audit;
use tessera_core::ids::OperatorId;
use tessera_core::issuance::AuditContext;
use tessera_core::Password;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf: String,
    message: Option<String>,
    /// The stations to work at, offered when there is a choice.
    stations: Vec<StationOption>,
}

async fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    message: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let csrf = auth::random_token(&*state.tessera.services.random);
    let stations = station_choice::options(state, headers).await?;
    let mut res = render(&LoginPage {
        nav: None,
        csrf: csrf.clone(),
        message,
        stations: if stations.len() > 1 {
            stations
        } else {
            Vec::new()
        },
    })?;
    *res.status_mut() = status;
    res.headers_mut().append(
        header::SET_COOKIE,
        format!("{LOGIN_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600")
            .parse()
            .expect("cookie header"),
    );
    Ok(res)
}

pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    login_page(&state, &headers, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    operator: String,
    password: String,
    /// The station this browser works at, when the page offered a choice.
    #[serde(default)]
    station: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, WebError> {
    let svc = &state.tessera.services;
    if auth::cookie_in(&headers, LOGIN_COOKIE).as_deref() != Some(f.csrf.as_str()) {
        return login_page(
            &state,
            &headers,
            Some("The sign-in form expired; please try again.".into()),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let password = Password::new(f.password);
    let id = OperatorId::new(f.operator.trim());
    let now = svc.clock.now().0;
    // A locked name gets no password check at all, and no audit event per attempt: the lock
    // itself was audited when it began.
    if let Some(left) = state.sign_in.locked(id.as_str(), now) {
        return login_page(
            &state,
            &headers,
            Some(format!(
                "Too many failed sign-ins for this operator: try again in {}.",
                wait_sentence(left)
            )),
            StatusCode::TOO_MANY_REQUESTS,
        )
        .await;
    }
    let operator = svc.store.operator(&id).await.ok().filter(|o| o.enabled);
    // Hashed even for unknown operators so that timing does not reveal which names exist; on a
    // blocking thread, two at a time, so that a burst of guesses cannot stall the server.
    let stored = operator.as_ref().map(|o| o.password_hash.clone());
    let ok = auth::verify_password_async(password, stored).await && operator.is_some();
    if !ok {
        svc.audit_refusal(
            audit::OPERATOR_SIGN_IN_FAILED,
            AuditContext::default(),
            serde_json::json!({"operator": id.as_str()}),
        )
        .await?;
        let (message, status) = match state.sign_in.failed(id.as_str(), now) {
            Failure::Counted { .. } => (
                "Unknown operator or wrong password.".to_owned(),
                StatusCode::UNAUTHORIZED,
            ),
            Failure::Locked { seconds } => {
                svc.audit_refusal(
                    audit::OPERATOR_LOCKED_OUT,
                    AuditContext::default(),
                    serde_json::json!({
                        "operator": id.as_str(),
                        "failures": crate::throttle::FAILURES_BEFORE_LOCK,
                        "seconds": seconds,
                    }),
                )
                .await?;
                (
                    format!(
                        "Unknown operator or wrong password, {} times in a row: sign-in for \
                         this operator is locked for {}.",
                        crate::throttle::FAILURES_BEFORE_LOCK,
                        wait_sentence(seconds)
                    ),
                    StatusCode::TOO_MANY_REQUESTS,
                )
            }
        };
        return login_page(&state, &headers, Some(message), status).await;
    }
    state.sign_in.succeeded(id.as_str());
    let token = auth::random_token(&*svc.random);
    let csrf = auth::random_token(&*svc.random);
    let expires = svc.clock.now().plus_days(0).0 + SESSION_SECONDS;
    svc.store
        .put_session(
            &auth::token_hash(&token),
            &id,
            &csrf,
            tessera_core::model::Timestamp(expires),
        )
        .await
        .map_err(WebError::from_store)?;
    svc.audit(
        audit::OPERATOR_SIGNED_IN,
        AuditContext {
            operator: Some(&id),
            ..Default::default()
        },
        serde_json::json!({}),
    )
    .await?;
    let mut cookies = vec![(
        header::SET_COOKIE,
        auth::session_cookie(&token, SESSION_SECONDS),
    )];
    if let Some(station) = f.station.as_deref().filter(|s| !s.is_empty()) {
        if let Some(cookie) = station_choice::cookie_for(&state, station).await? {
            cookies.push((header::SET_COOKIE, cookie));
        }
    }
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, "/users".to_owned())],
        AppendHeaders(cookies),
    )
        .into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let svc = &state.tessera.services;
    if let Some(token) = auth::cookie_in(&headers, auth::SESSION_COOKIE) {
        svc.store
            .delete_session(&auth::token_hash(&token))
            .await
            .map_err(WebError::from_store)?;
    }
    svc.audit(
        audit::OPERATOR_SIGNED_OUT,
        AuditContext {
            operator: Some(&signed_in.operator.id),
            ..Default::default()
        },
        serde_json::json!({}),
    )
    .await?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/login".to_owned()),
            (header::SET_COOKIE, auth::session_cookie("", 0)),
        ],
    )
        .into_response())
}

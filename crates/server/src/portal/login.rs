//! Sign in and sign out. The sign-in form is protected against login CSRF by a double-submit
//! cookie; a session gets a fresh token and its own CSRF token. Over HTTPS an operator can also
//! sign in with their Tessera card (`/login/card`): the certificate their browser presented in
//! the TLS handshake goes to the core's card sign-in.

use super::station_choice::{self, StationOption};
use super::{render, CsrfForm, Nav};
use crate::app::AppState;
use crate::auth::{self, SignedIn, LOGIN_COOKIE, SESSION_SECONDS};
use crate::serve::{ClientCertificate, ServedOverTls};
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use axum::Extension;
use axum::Form;
use serde::Deserialize;
use tessera_core::card_sign_in::{self, PresentedCertificate};
use tessera_core::sign_in;
use tessera_core::Password;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf: String,
    message: Option<String>,
    /// The stations to work at, offered when there is a choice.
    stations: Vec<StationOption>,
    /// Whether to offer "Sign in with your card" (the server runs HTTPS).
    card: bool,
}

async fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    card: bool,
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
        card,
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

pub async fn form(
    State(state): State<AppState>,
    tls: Option<Extension<ServedOverTls>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    login_page(&state, &headers, tls.is_some(), None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    operator: String,
    password: String,
    /// The authenticator app's code (or a recovery code), for operators who enrolled one.
    #[serde(default)]
    code: Option<String>,
    /// The station this browser works at, when the page offered a choice.
    #[serde(default)]
    station: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    tls: Option<Extension<ServedOverTls>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, WebError> {
    let svc = &state.tessera.services;
    let card = tls.is_some();
    if auth::cookie_in(&headers, LOGIN_COOKIE).as_deref() != Some(f.csrf.as_str()) {
        return login_page(
            &state,
            &headers,
            card,
            Some("The sign-in form expired; please try again.".into()),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let signed_in = sign_in::sign_in(
        svc,
        &f.operator,
        Password::new(f.password),
        f.code.as_deref(),
    )
    .await?;
    let session = match signed_in {
        Ok(session) => session,
        Err(refused) => {
            let status = match refused {
                sign_in::Refused::Wrong | sign_in::Refused::CodeNeeded => StatusCode::UNAUTHORIZED,
                _ => StatusCode::TOO_MANY_REQUESTS,
            };
            return login_page(&state, &headers, card, Some(refused.sentence()), status).await;
        }
    };
    let token = session.token;
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

/// `GET /login/card`: signs in the operator whose card presented a certificate in this
/// connection's TLS handshake. A GET, because the browser follows a link; it is not open to
/// login CSRF, as only the browser holding the card (and its PIN) can present the certificate.
pub async fn card(
    State(state): State<AppState>,
    tls: Option<Extension<ServedOverTls>>,
    peer: Option<Extension<ConnectInfo<ClientCertificate>>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if tls.is_none() {
        let message = "Signing in with a card needs the server to run HTTPS (tessera serve \
                       --tls-cert ... --tls-key ...): sign in with your password.";
        return login_page(
            &state,
            &headers,
            false,
            Some(message.into()),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let der = peer.and_then(|Extension(ConnectInfo(ClientCertificate(der)))| der);
    let Some(der) = der else {
        let message = "Your browser sent no certificate. Insert your card in its reader, make \
                       sure your browser uses it (its security devices load OpenSC's PKCS#11 \
                       module), then open a new window, choose your card's PIV Authentication \
                       certificate when the browser asks and enter your PIN.";
        return login_page(
            &state,
            &headers,
            true,
            Some(message.into()),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    };
    let Some(presented) = presented(&der) else {
        let message = "The certificate your browser sent cannot be read.";
        return login_page(
            &state,
            &headers,
            true,
            Some(message.into()),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    match card_sign_in::sign_in_with_card(&state.tessera.services, &presented).await? {
        Ok(session) => Ok((
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/users".to_owned()),
                (
                    header::SET_COOKIE,
                    auth::session_cookie(&session.token, SESSION_SECONDS),
                ),
            ],
        )
            .into_response()),
        Err(refused) => {
            login_page(
                &state,
                &headers,
                true,
                Some(refused.sentence()),
                StatusCode::FORBIDDEN,
            )
            .await
        }
    }
}

/// The serial (hex, without leading zero bytes, as Tessera records it) of a DER certificate.
fn presented(der: &[u8]) -> Option<PresentedCertificate> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let bytes = cert.tbs_certificate.serial_number.as_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    Some(PresentedCertificate {
        serial: hex::encode(&bytes[first..]),
        der: der.to_vec(),
    })
}

pub async fn logout(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let token = auth::cookie_in(&headers, auth::SESSION_COOKIE);
    sign_in::sign_out(
        &state.tessera.services,
        &signed_in.operator.id,
        token.as_deref(),
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

//! The PKI page: the CA certificates, the organisation's certificate policy arc, and the content
//! signer that signs the cards' CHUID, biometrics and Security Object, with its renewal on
//! demand. For administrators (those who manage settings); renewing is audited.

use super::{render, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tessera_core::content_signing::{self, CertificateSummary};

/// One row of the certificates table.
pub struct CertificateRow {
    pub name: &'static str,
    pub subject: String,
    pub serial: String,
    pub valid: String,
    pub download: &'static str,
}

#[derive(Template)]
#[template(path = "pki.html")]
struct PkiPage {
    nav: Option<Nav>,
    csrf: String,
    certificates: Vec<CertificateRow>,
    signer: CertificateRow,
    /// The signer's serial, which the renewal form sends back.
    signer_serial: String,
    signer_issuer: String,
    /// The organisation's policy arc and the policy of each use under it.
    arc: String,
    policies: Vec<(&'static str, String)>,
    renewed: bool,
}

#[derive(Deserialize)]
pub struct RenewedQuery {
    renewed: Option<String>,
}

/// The renewal form: the serial of the signer the administrator saw, so that two renewals
/// clicked at once make one new signer, not two.
#[derive(Deserialize)]
pub struct RenewForm {
    pub csrf: String,
    #[serde(default)]
    pub serial: String,
}

fn validity(from: tessera_core::model::Timestamp, to: tessera_core::model::Timestamp) -> String {
    format!("{} to {}", from.date(), to.date())
}

fn row(name: &'static str, summary: &CertificateSummary, download: &'static str) -> CertificateRow {
    CertificateRow {
        name,
        subject: summary.subject.clone(),
        serial: summary.serial.clone(),
        valid: validity(summary.not_before, summary.not_after),
        download,
    }
}

/// The CA's own certificates were checked when it opened; one that cannot be read here is a
/// server fault.
fn summary(der: &[u8]) -> Result<CertificateSummary, WebError> {
    tessera_pki::summarise(der).map_err(|e| {
        tracing::error!(error = %e, "a CA certificate cannot be read");
        WebError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "CA0002",
            "The CA certificates cannot be read.",
        )
    })
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<RenewedQuery>,
) -> Result<Response, WebError> {
    let signer = content_signing::current(&state.tessera.services, &signed_in.actor()).await?;
    let ca = &state.tessera.ca;
    let arc = ca.policy_arc().to_owned();
    render(&PkiPage {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        certificates: vec![
            row("Root CA", &summary(ca.root_der())?, "/pki/root.crt"),
            row(
                "Issuing CA",
                &summary(ca.issuing_der())?,
                "/pki/issuing.crt",
            ),
        ],
        signer: row("Content signer", &signer, "/pki/content-signer.crt"),
        signer_serial: signer.serial,
        signer_issuer: signer.issuer,
        policies: tessera_pki::policy_oids::PolicyUse::ALL
            .into_iter()
            .map(|u| (u.label(), tessera_pki::policy_oids::default_policy(&arc, u)))
            .collect(),
        arc,
        renewed: q.renewed.is_some(),
    })
}

pub async fn renew(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<RenewForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    content_signing::renew(&state.tessera.services, &signed_in.actor(), &f.serial).await?;
    Ok(Redirect::to("/ca?renewed=1").into_response())
}

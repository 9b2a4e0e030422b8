//! What relying parties fetch, without signing in: the CA certificates (also the issuing CA's as
//! a certs-only `.p7c`), the content signing certificate, the CRL (rebuilt as soon as any
//! certificate's status has changed) and the OCSP responder (RFC 6960, GET and POST).

use crate::app::AppState;
use crate::web_error::WebError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use std::collections::HashMap;
use tessera_core::model::{CertificateStatus, Timestamp};
use tessera_core::ports::CertificateState;
use tessera_pki::ocsp::{self, OcspStatus};
use tessera_pki::revocation::{build_crl, crl_reason, Revocation, RevocationSigner};
use x509_cert::der::Decode;
use x509_cert::Certificate;

/// A CRL is valid for a day; it is rebuilt earlier whenever a status changes.
const CRL_VALIDITY: i64 = 86_400;

/// The last CRL built, with what it listed.
pub struct CachedCrl {
    listed: Vec<CertificateState>,
    number: u64,
    next_update: Timestamp,
    der: Vec<u8>,
}

fn revocation(state: &CertificateState) -> Revocation {
    let reason = match state.status {
        CertificateStatus::OnHold => "certificateHold",
        _ => state.reason.as_deref().unwrap_or("unspecified"),
    };
    Revocation {
        serial: state.serial.clone(),
        at: state.changed_at,
        reason: crl_reason(reason),
    }
}

fn der_response(content_type: &'static str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn issuer(state: &AppState) -> Result<Certificate, WebError> {
    Certificate::from_der(state.tessera.ca.issuing_der()).map_err(|_| {
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "CA0002",
            "The issuing CA certificate cannot be read.",
        )
    })
}

async fn root_cert(State(state): State<AppState>) -> Response {
    der_response(
        "application/pkix-cert",
        state.tessera.ca.root_der().to_vec(),
    )
}

async fn issuing_cert(State(state): State<AppState>) -> Response {
    der_response(
        "application/pkix-cert",
        state.tessera.ca.issuing_der().to_vec(),
    )
}

/// The caIssuers of the certificates: a certs-only CMS SignedData with the issuing CA
/// certificate (RFC 5280 4.2.2.1; the PIV-I and Common Policy profiles).
async fn issuing_p7c(State(state): State<AppState>) -> Response {
    der_response(
        "application/pkcs7-mime",
        state.tessera.ca.issuing_p7c().to_vec(),
    )
}

/// The content signing certificate that signs now (the CHUID carries it too).
async fn content_signer_cert(State(state): State<AppState>) -> Result<Response, WebError> {
    use tessera_core::ports::CertificateAuthority;
    let der = state
        .tessera
        .ca
        .content_signer_certificate()
        .map_err(|e| {
            tracing::error!(error = %e, "no content signing certificate");
            WebError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "CA0004",
                "The content signing certificate cannot be read.",
            )
        })?
        .der;
    Ok(der_response("application/pkix-cert", der))
}

async fn crl(State(state): State<AppState>) -> Result<Response, WebError> {
    let svc = &state.tessera.services;
    let listed = svc
        .store
        .revoked_or_held()
        .await
        .map_err(WebError::from_store)?;
    let now = svc.clock.now();
    let mut cache = state.crl.lock().await;
    let fresh = cache
        .as_ref()
        .is_some_and(|c| c.listed == listed && c.next_update.0 - now.0 > CRL_VALIDITY / 2);
    if !fresh {
        let issuer = issuer(&state)?;
        let key = state.tessera.ca.issuing_key();
        let signer = RevocationSigner {
            issuer: &issuer,
            key: key.as_ref(),
        };
        // Seconds since the epoch only grow, also across restarts: a valid CRL number sequence.
        let number = (now.0 as u64).max(cache.as_ref().map_or(0, |c| c.number + 1));
        let next_update = Timestamp(now.0 + CRL_VALIDITY);
        let entries: Vec<Revocation> = listed.iter().map(revocation).collect();
        let der = build_crl(&signer, number, now, next_update, &entries).map_err(|e| {
            tracing::error!(error = %e, "CRL could not be built");
            WebError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "CA0003",
                "The CRL could not be built.",
            )
        })?;
        *cache = Some(CachedCrl {
            listed,
            number,
            next_update,
            der,
        });
    }
    let der = cache.as_ref().map(|c| c.der.clone()).unwrap_or_default();
    Ok(der_response("application/pkix-crl", der))
}

async fn answer_ocsp(state: &AppState, request: &[u8]) -> Result<Response, WebError> {
    let svc = &state.tessera.services;
    let mut known = HashMap::new();
    for serial in ocsp::requested_serials(request) {
        if let Some(s) = svc
            .store
            .certificate_state(&serial)
            .await
            .map_err(WebError::from_store)?
        {
            known.insert(serial, s);
        }
    }
    let lookup = |serial: &str| match known.get(serial) {
        None => OcspStatus::Unknown,
        Some(s) if s.status == CertificateStatus::Valid => OcspStatus::Good,
        Some(s) => OcspStatus::Revoked(revocation(s)),
    };
    let issuer = issuer(state)?;
    let key = state.tessera.ca.issuing_key();
    let signer = RevocationSigner {
        issuer: &issuer,
        key: key.as_ref(),
    };
    let der = ocsp::respond(&signer, request, svc.clock.now(), &lookup);
    Ok(der_response("application/ocsp-response", der))
}

async fn ocsp_post(State(state): State<AppState>, body: Bytes) -> Result<Response, WebError> {
    answer_ocsp(&state, &body).await
}

/// RFC 6960 appendix A.1: GET {url}/{url-encoding of base-64 encoding of the DER request}.
async fn ocsp_get(
    State(state): State<AppState>,
    Path(encoded): Path<String>,
) -> Result<Response, WebError> {
    let b64 = encoded
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    let request = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .unwrap_or_default();
    answer_ocsp(&state, &request).await
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/root.crt", get(root_cert))
        .route("/issuing.crt", get(issuing_cert))
        .route("/issuing.p7c", get(issuing_p7c))
        .route("/content-signer.crt", get(content_signer_cert))
        .route("/issuing.crl", get(crl))
        .route("/ocsp", post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
}

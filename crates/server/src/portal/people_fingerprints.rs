//! A person's fingerprints from the User page: enrol an INCITS 378-2004 record that an enrolment
//! station saved to a file, or remove the enrolled one. The use case checks the record (USR0006)
//! and audits the change; enrolment systems that talk to Tessera directly use the REST API.

use super::multipart_form;
use super::CsrfForm;
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use tessera_core::enrolment;
use tessera_core::fingerprints::MAX_RECORD_BYTES;
use tessera_core::ids::UserId;

/// The body an enrolment may have: one record (one byte over the largest, so that the use case
/// says why it is too long) and the form around it.
pub const FINGERPRINTS_BODY_BYTES: usize = MAX_RECORD_BYTES + 1 + 64 * 1024;

/// `POST /users/{uid}/fingerprints`: the file `record`.
pub async fn enrol(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(uid): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, WebError> {
    let limit =
        format!("a fingerprints record a card can carry has up to {MAX_RECORD_BYTES} bytes");
    let mut form = multipart_form::read(
        &signed_in,
        &headers,
        multipart,
        &[("record", MAX_RECORD_BYTES + 1, &limit)],
    )
    .await?;
    // No file chosen reaches the use case as no bytes: it checks who may first, then refuses
    // them as not a record.
    let record = form
        .take_file("record")
        .map(|f| f.bytes)
        .unwrap_or_default();
    let uid = UserId::new(uid);
    enrolment::enrol_fingerprints(&state.tessera.services, &signed_in.actor(), &uid, record)
        .await?;
    Ok(super::users::to_user_page(uid.as_str(), "fingerprints"))
}

/// `POST /users/{uid}/fingerprints/remove`.
pub async fn remove(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(uid): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let uid = UserId::new(uid);
    enrolment::remove_fingerprints(&state.tessera.services, &signed_in.actor(), &uid).await?;
    Ok(super::users::to_user_page(
        uid.as_str(),
        "fingerprints_removed",
    ))
}

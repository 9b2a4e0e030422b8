//! `/api/v1/users`: people for scripts. Reading needs `ViewUsers`; adding, changing, disabling,
//! enabling, deleting and importing need `ManageUsers` (the core checks both, and the operator's
//! scope). Requests that change something carry the session's CSRF token in `X-CSRF-Token`.
//! An import takes the CSV file as the body (`text/csv`); photos cannot come with it here (the
//! portal's import form and `tessera users import --photos` take them).
//!
//! `PUT /api/v1/users/{uid}/fingerprints` takes a person's fingerprints from an enrolment
//! system: the body is the raw INCITS 378-2004 record of the two finger views
//! (`application/octet-stream`); `DELETE` removes them. Both need `ManageUsers`.

use super::ApiError;
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use tessera_core::ids::UserId;
use tessera_core::people::csv_file::{self, NoPhotos};
use tessera_core::people::local::{self, UserDraft};
use tessera_core::people::{self, DeprovisionRule, ImportOptions};
use tessera_core::users;

/// People per page of `GET /api/v1/users`.
pub const PAGE_SIZE: u32 = 50;

pub(super) fn check_csrf(signed_in: &SignedIn, headers: &HeaderMap) -> Result<(), WebError> {
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    signed_in.check_csrf(sent)
}

/// A person and their cards as the API and `tessera users show` give them (the certificates
/// without their bytes: `GET /pki/...` and the User page have those).
pub fn view_json(view: &users::UserView) -> serde_json::Value {
    let cards: Vec<serde_json::Value> = view
        .devices
        .iter()
        .map(|d| {
            let certificates: Vec<serde_json::Value> = d
                .certificates
                .iter()
                .map(|c| {
                    json!({
                        "slot": c.slot, "serial": c.serial, "subject": c.subject,
                        "status": c.status, "revocation_reason": c.revocation_reason,
                        "not_after": c.not_after,
                    })
                })
                .collect();
            json!({
                "id": d.device.id, "serial": d.device.serial, "state": d.device.state,
                "reason": d.device.reason, "policy": d.device.policy,
                "activated_at": d.device.activated_at, "expires_at": d.device.expires_at,
                "certificates": certificates,
            })
        })
        .collect();
    json!({ "user": view.user, "cards": cards, "fingerprints": view.fingerprints })
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    q: String,
    /// From 1.
    page: Option<u32>,
    /// `name` (default), `uid` or `employee_id`.
    #[serde(default)]
    sort: tessera_core::ports::UserSort,
}

/// `GET /api/v1/users?q=&sort=&page=`: one page of the Users page's search (the operator's
/// scope applied by the store), [`PAGE_SIZE`] a page; `more` says whether another page follows.
pub(super) async fn list(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    let page = q.page.unwrap_or(1).max(1);
    let found = users::search(
        &state.tessera.services,
        &signed_in.actor(),
        &users::UserSearch {
            text: q.q,
            sort: q.sort,
            page: page - 1,
            per_page: PAGE_SIZE,
        },
    )
    .await
    .map_err(WebError::from)?;
    Ok(Json(json!({ "users": found.users, "page": page, "more": found.has_next })).into_response())
}

/// A person's fields in a request body; absent fields are empty.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PersonBody {
    uid: String,
    given_name: String,
    family_name: String,
    display_name: String,
    email: String,
    upn: String,
    employee_id: String,
    department: String,
    title: String,
    groups: Vec<String>,
    attributes: BTreeMap<String, String>,
}

impl PersonBody {
    fn draft(self) -> UserDraft {
        UserDraft {
            uid: UserId::new(self.uid),
            given_name: self.given_name,
            family_name: self.family_name,
            display_name: self.display_name,
            email: self.email,
            upn: self.upn,
            employee_id: self.employee_id,
            department: self.department,
            title: self.title,
            groups: self.groups,
            attributes: self.attributes,
            ..UserDraft::default()
        }
    }
}

/// The JSON body, or a sentence saying why it is not the JSON expected.
pub(super) fn json_body<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, WebError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| WebError::bad_request(format!("The body is not the JSON expected: {e}")))
}

/// `POST /api/v1/users` with a person as JSON: creates a local person; 201 with the record.
pub(super) async fn create(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    check_csrf(&signed_in, &headers)?;
    let person: PersonBody = json_body(&body)?;
    let user = local::create(&state.tessera.services, &signed_in.actor(), person.draft())
        .await
        .map_err(WebError::from)?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// `GET /api/v1/users/{uid}`: the person and their cards.
pub(super) async fn show(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    Path(uid): Path<String>,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    let view = users::view(
        &state.tessera.services,
        &signed_in.actor(),
        &UserId::new(uid),
    )
    .await
    .map_err(WebError::from)?;
    Ok(Json(view_json(&view)).into_response())
}

/// `PUT /api/v1/users/{uid}` with the person's fields as JSON (all of them: an absent field is
/// emptied): changes a local person; the record as it is now.
pub(super) async fn update(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    check_csrf(&signed_in, &headers)?;
    let person: PersonBody = json_body(&body)?;
    if !person.uid.is_empty() && person.uid != uid {
        return Err(WebError::bad_request(format!(
            "The body's uid {:?} is not the address's {uid:?}: a uid cannot be changed.",
            person.uid
        ))
        .into());
    }
    let uid = UserId::new(uid);
    let user = local::update(
        &state.tessera.services,
        &signed_in.actor(),
        &uid,
        person.draft(),
    )
    .await
    .map_err(WebError::from)?;
    Ok(Json(user).into_response())
}

/// `DELETE /api/v1/users/{uid}`: deletes a person who has no live card; 204.
pub(super) async fn delete(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    check_csrf(&signed_in, &headers)?;
    local::delete(
        &state.tessera.services,
        &signed_in.actor(),
        &UserId::new(uid),
    )
    .await
    .map_err(WebError::from)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct DisableBody {
    /// `suspend`, `terminate` or `keep`; the configured rule when absent.
    cards: Option<String>,
}

/// `POST /api/v1/users/{uid}/disable` with optionally `{"cards": "suspend"|"terminate"|"keep"}`:
/// the cards that moved.
pub(super) async fn disable(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    check_csrf(&signed_in, &headers)?;
    let body: DisableBody = json_body(&body)?;
    let (svc, actor) = (&state.tessera.services, signed_in.actor());
    let rule = match body.cards.as_deref() {
        Some(text) => Some(DeprovisionRule::parse(text).ok_or_else(|| {
            WebError::bad_request(format!(
                "cards must be suspend, terminate or keep, not {text:?}"
            ))
        })?),
        None => None,
    };
    let uid = UserId::new(uid);
    let (rule, cards) = local::disable(svc, &actor, &uid, rule)
        .await
        .map_err(WebError::from)?;
    Ok(Json(json!({ "uid": uid, "disabled": true, "rule": rule, "cards": cards })).into_response())
}

/// `POST /api/v1/users/{uid}/enable`: the record as it is now.
pub(super) async fn enable(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    check_csrf(&signed_in, &headers)?;
    let user = local::enable(
        &state.tessera.services,
        &signed_in.actor(),
        &UserId::new(uid),
    )
    .await
    .map_err(WebError::from)?;
    Ok(Json(user).into_response())
}

/// The largest fingerprints body read: a record a card can carry is far smaller.
const MAX_FINGERPRINTS_BYTES: usize = tessera_core::fingerprints::MAX_RECORD_BYTES + 1;

/// `PUT /api/v1/users/{uid}/fingerprints` with the INCITS 378-2004 record as the body: enrols
/// it (replacing the person's fingerprints); what was enrolled. A record that is not one a card
/// can carry is 400 with code USR0006 and the reason.
pub(super) async fn put_fingerprints(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    check_csrf(&signed_in, &headers)?;
    // One byte over the largest record is read, so that the core says why it is too long.
    let record = read_limited(&headers, body, MAX_FINGERPRINTS_BYTES)
        .await
        .map_err(|_| {
            WebError::bad_request(format!(
                "The fingerprints record is larger than the {} bytes a card can carry.",
                tessera_core::fingerprints::MAX_RECORD_BYTES
            ))
        })?;
    let uid = UserId::new(uid);
    let enrolled = tessera_core::enrolment::enrol_fingerprints(
        &state.tessera.services,
        &signed_in.actor(),
        &uid,
        record,
    )
    .await
    .map_err(WebError::from)?;
    Ok(Json(json!({ "uid": uid, "fingerprints": enrolled })).into_response())
}

/// `DELETE /api/v1/users/{uid}/fingerprints`: removes the person's fingerprints; 204 (404 when
/// they have none).
pub(super) async fn delete_fingerprints(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    check_csrf(&signed_in, &headers)?;
    tessera_core::enrolment::remove_fingerprints(
        &state.tessera.services,
        &signed_in.actor(),
        &UserId::new(uid),
    )
    .await
    .map_err(WebError::from)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub(super) struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    complete: bool,
    /// The file's name, for the report and the audit log.
    name: Option<String>,
}

/// The refusal of a body larger than an import reads, before it is read (its declared length)
/// or as soon as it grows past the limit (a chunked upload).
fn too_large(limit: usize) -> WebError {
    WebError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        tessera_core::ErrorCode::ImportRefused.as_str(),
        format!(
            "The file is larger than the {} MiB an import reads: split it into several files. Nothing was imported.",
            limit / (1024 * 1024)
        ),
    )
}

/// Reads a body of at most `limit` bytes.
pub(super) async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, WebError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| WebError::bad_request(format!("The upload did not arrive whole: {e}")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// `POST /api/v1/users/import?dry_run=&complete=&name=` with the CSV file as the body
/// (`text/csv`, UTF-8, at most 256 MiB): imports people with the saved column mapping; the
/// report. A file refused whole is 400 (413 when too large) with code USR0001, and nothing is
/// written. Photos are not taken here.
pub(super) async fn import(
    State(state): State<AppState>,
    signed_in: Result<SignedIn, WebError>,
    headers: HeaderMap,
    Query(q): Query<ImportQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let signed_in = signed_in?;
    check_csrf(&signed_in, &headers)?;
    let bytes = read_limited(&headers, body, csv_file::MAX_FILE_BYTES).await?;
    let (svc, actor) = (&state.tessera.services, signed_in.actor());
    let mapping = people::saved_mapping(svc, &actor)
        .await
        .map_err(WebError::from)?;
    let report = people::import_csv(
        svc,
        &actor,
        q.name.as_deref().unwrap_or("upload.csv"),
        &bytes,
        mapping,
        &NoPhotos,
        ImportOptions {
            dry_run: q.dry_run,
            complete: q.complete,
        },
        &|_| {},
    )
    .await
    .map_err(WebError::from)?;
    Ok(Json(report).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_length(n: usize) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, n.into());
        h
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_with_the_reason() {
        let limit = 3 * 1024 * 1024;
        let fits = vec![b'a'; limit];
        let read = read_limited(&HeaderMap::new(), Body::from(fits.clone()), limit).await;
        assert_eq!(read.unwrap(), fits);
        // Declared too large: refused before a byte is read.
        let e = read_limited(&with_length(limit + 1), Body::from("uid\n"), limit)
            .await
            .unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::PAYLOAD_TOO_LARGE, "USR0001")
        );
        assert!(e.message.contains("larger than the 3 MiB"), "{}", e.message);
        // Sent without a length (chunked): refused as it grows past the limit.
        let chunks = (0..4).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 1024 * 1024]));
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        let e = read_limited(&HeaderMap::new(), body, limit)
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}

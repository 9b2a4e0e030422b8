//! User search, the User page (attributes, photo, source, devices with their certificates, and
//! the people actions for `ManageUsers`) and photos.

use super::{render, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::ids::UserId;
use tessera_core::model::*;
use tessera_core::ports::UserSort;
use tessera_core::users::{self, DeviceView, UserSearch};
use tessera_core::DeviceState;

/// Users a page lists.
const PER_PAGE: u32 = 50;

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    /// `name` (the default), `uid` or `employee_id`.
    #[serde(default)]
    sort: Option<String>,
    /// From 1.
    #[serde(default)]
    page: Option<u32>,
}

fn sort_of(text: Option<&str>) -> UserSort {
    match text {
        Some("uid") => UserSort::Uid,
        Some("employee_id") => UserSort::EmployeeId,
        _ => UserSort::Name,
    }
}

fn sort_name(sort: UserSort) -> &'static str {
    match sort {
        UserSort::Name => "name",
        UserSort::Uid => "uid",
        UserSort::EmployeeId => "employee_id",
    }
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Option<Nav>,
    query: String,
    /// `name`, `uid` or `employee_id`.
    sort: &'static str,
    /// The page shown, from 1.
    page: u32,
    /// Links to the pages before and after, when there are.
    previous: Option<String>,
    next: Option<String>,
    users: Vec<User>,
}

/// A link to page `page` (from 1) of the same search.
fn page_link(query: &str, sort: &str, page: u32) -> String {
    format!(
        "/users?q={}&sort={sort}&page={page}",
        super::issue::urlencode(query)
    )
}

pub async fn search(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<SearchQuery>,
) -> Result<Response, WebError> {
    let sort = sort_of(q.sort.as_deref());
    let page = q.page.unwrap_or(1).max(1);
    let found = users::search(
        &state.tessera.services,
        &signed_in.actor(),
        &UserSearch {
            text: q.q.clone(),
            sort,
            page: page - 1,
            per_page: PER_PAGE,
        },
    )
    .await?;
    let sort = sort_name(sort);
    render(&UsersPage {
        nav: Nav::of(&signed_in),
        previous: (page > 1).then(|| page_link(&q.q, sort, page - 1)),
        next: found.has_next.then(|| page_link(&q.q, sort, page + 1)),
        query: q.q,
        sort,
        page,
        users: found.users,
    })
}

pub struct CertificateRow {
    pub slot: String,
    pub subject: String,
    pub serial: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub status: &'static str,
    pub status_code: &'static str,
}

pub struct DeviceRow {
    pub id: String,
    pub serial: String,
    /// `YubiKey 5`, `PIV card` ([`Device::model`]).
    pub model: String,
    pub firmware: Option<String>,
    /// Every key on the card was attested by the card at issuance.
    pub attested: bool,
    pub state: &'static str,
    pub state_code: &'static str,
    /// The policy's name, not its id.
    pub policy: String,
    /// The layout's name, if the card has a face.
    pub layout: Option<String>,
    pub created: String,
    pub expires: Option<String>,
    pub can_activate: bool,
    pub can_reveal_pin: bool,
    pub can_suspend: bool,
    pub can_reprint: bool,
    pub active: bool,
    pub can_resume: bool,
    pub can_terminate: bool,
    /// Help desk: Unlock PIN (a live card, `UnlockDevice`).
    pub can_unlock: bool,
    /// Help desk: Replace for these reasons (`ReplaceDevice`): lost/stolen/damaged for a live
    /// card, forgotten for an Active one.
    pub replace_reasons: Vec<(&'static str, &'static str)>,
    /// Help desk: Restore original (a forgotten card, Suspended).
    pub can_restore: bool,
    /// Help desk: Recycle (`RecycleDevice`).
    pub can_recycle: bool,
    /// The serial of the forgotten card this temporary card stands in for.
    pub temporary_for: Option<String>,
    /// Suspended because its holder left (disabled, or gone at their source).
    pub left: bool,
    pub certificates: Vec<CertificateRow>,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    nav: Option<Nav>,
    csrf: String,
    user: User,
    devices: Vec<DeviceRow>,
    can_issue: bool,
    /// `ManageUsers`: edit, disable/enable, delete, photo, fingerprints.
    manage_users: bool,
    /// Kept by Tessera (local): the Edit form applies.
    editable: bool,
    kept_by: &'static str,
    flash: Option<String>,
    /// Back to the Users list, with the search the operator came from.
    back: String,
    /// The person's issuance in progress, with Resume and Cancel it.
    in_progress: Option<super::jobs::InProgressView>,
    /// `enrolled (2 finger views)`, `synthetic (demo data)` or `none`.
    fingerprints: String,
    /// Which fingers, with their minutiae (empty when none).
    fingerprints_detail: String,
    /// Enrolled or synthetic fingerprints are on record: Replace and Remove rather than Enrol.
    has_fingerprints: bool,
}

#[derive(Deserialize)]
pub struct UserQuery {
    flash: Option<String>,
}

/// The User page of `uid` with the message [`flash_text`] gives `flash` (after a change made from
/// it: the Post/Redirect/Get pattern, so a reload does not send the form again).
pub(super) fn to_user_page(uid: &str, flash: &str) -> Response {
    Redirect::to(&format!(
        "/users/{}?flash={flash}",
        super::issue::urlencode(uid)
    ))
    .into_response()
}

/// Flash messages are chosen by key so that a link cannot inject text into the page.
fn flash_text(key: &str) -> Option<String> {
    match key {
        "activated" => Some("The card is Active.".into()),
        "cancelled" => {
            Some("Issuance cancelled: the card was not activated and stays Pending.".into())
        }
        "cancelled_blank" => Some(
            "Issuance cancelled before anything was written to the card; a card fed into a printer was ejected."
                .into(),
        ),
        "created" => Some("The person was added.".into()),
        "saved" => Some("The changes were saved.".into()),
        "disabled" => Some("The person was disabled; their cards followed your choice.".into()),
        "enabled" => Some("The person was enabled again.".into()),
        "photo" => Some("The photo was saved.".into()),
        "photo_removed" => Some("The photo was removed.".into()),
        "fingerprints" => Some("The fingerprints were enrolled.".into()),
        "fingerprints_removed" => Some("The fingerprints were removed.".into()),
        _ => None,
    }
}

/// Where the User page's Back leads: the Users list the operator came from (its search, sort and
/// page, from the Referer the portal's same-origin policy sends), else the Users list. Only a
/// path of the Users list is taken, so the link cannot lead anywhere else.
fn back_to_users(headers: &axum::http::HeaderMap) -> String {
    let from = headers
        .get(axum::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.split_once("://"))
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]));
    match from {
        Some(path) if path == "/users" || path.starts_with("/users?") => path.to_owned(),
        _ => "/users".to_owned(),
    }
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: axum::http::HeaderMap,
    Path(uid): Path<String>,
    Query(q): Query<UserQuery>,
) -> Result<Response, WebError> {
    let actor = signed_in.actor();
    let view = users::view(&state.tessera.services, &actor, &UserId::new(uid)).await?;
    let manage = actor.may(Permission::ManageDevices);
    let replace = actor.may(Permission::ReplaceDevice);
    let serials: std::collections::BTreeMap<String, String> = view
        .devices
        .iter()
        .map(|v| (v.device.id.0.clone(), v.device.serial.clone()))
        .collect();
    let mut devices = Vec::new();
    for DeviceView {
        device: d,
        certificates: records,
        pin_escrowed,
        policy_name,
        layout_name,
    } in view.devices
    {
        let attested = keys_attested(&records);
        let certificates = records
            .into_iter()
            .map(|c| CertificateRow {
                slot: format!("{} ({})", c.slot.label(), c.slot.code().to_uppercase()),
                subject: c.subject,
                serial: c.serial,
                issuer: c.issuer,
                not_before: c.not_before.date_time(),
                not_after: c.not_after.date_time(),
                status: c.status.label(),
                status_code: c.status.as_str(),
            })
            .collect();
        devices.push(DeviceRow {
            id: d.id.0.clone(),
            serial: d.serial.clone(),
            model: d.model(),
            firmware: d.firmware.clone(),
            attested,
            state: d.state.label(),
            state_code: d.state.as_str(),
            policy: policy_name.unwrap_or_default(),
            layout: layout_name,
            created: d.created_at.date(),
            expires: d.expires_at.map(|e| e.date()),
            can_activate: d.state == DeviceState::Pending && actor.may(Permission::ActivateDevice),
            can_suspend: manage && d.state == DeviceState::Active,
            can_reprint: actor.may(Permission::IssueDevice)
                && matches!(d.state, DeviceState::Pending | DeviceState::Active),
            active: d.state == DeviceState::Active,
            can_resume: manage && d.state == DeviceState::Suspended,
            can_terminate: manage
                && matches!(
                    d.state,
                    DeviceState::Assigned
                        | DeviceState::Pending
                        | DeviceState::Active
                        | DeviceState::Suspended
                ),
            can_reveal_pin: manage && pin_escrowed,
            can_unlock: actor.may(Permission::UnlockDevice) && live(d.state),
            replace_reasons: if replace {
                replace_reasons(d.state)
            } else {
                Vec::new()
            },
            can_restore: replace
                && d.state == DeviceState::Suspended
                && d.reason == tessera_core::Reason::Forgotten,
            can_recycle: actor.may(Permission::RecycleDevice)
                && (live(d.state)
                    || matches!(d.state, DeviceState::Terminated | DeviceState::Failed)),
            temporary_for: d
                .temporary_for
                .as_ref()
                .map(|o| serials.get(&o.0).cloned().unwrap_or_else(|| o.0.clone())),
            left: d.state == DeviceState::Suspended && d.reason == tessera_core::Reason::Left,
            certificates,
        });
    }
    let (fingerprints, fingerprints_detail) = match &view.fingerprints {
        Some(f) => (f.label(), f.fingers.clone()),
        None => ("none".to_owned(), String::new()),
    };
    render(&UserPage {
        has_fingerprints: view.fingerprints.is_some(),
        fingerprints,
        fingerprints_detail,
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        // A disabled person gets no new card.
        can_issue: actor.may(Permission::IssueDevice) && !view.user.disabled,
        manage_users: actor.may(Permission::ManageUsers),
        editable: view.user.source == UserSource::Local,
        kept_by: super::people::kept_by(view.user.source),
        user: view.user,
        devices,
        flash: q.flash.as_deref().and_then(flash_text),
        back: back_to_users(&headers),
        in_progress: view.in_progress.as_ref().map(|j| {
            super::jobs::InProgressView::of(
                j,
                format!("/users/{}", super::issue::urlencode(j.job.user.as_str())),
            )
        }),
    })
}

/// A card its holder has (it can be unlocked, replaced, handed back).
fn live(state: DeviceState) -> bool {
    matches!(
        state,
        DeviceState::Pending | DeviceState::Active | DeviceState::Suspended
    )
}

/// The reasons the Replace action offers for a card in `state`: a forgotten card must be Active
/// (it is suspended while the temporary card stands in).
fn replace_reasons(state: DeviceState) -> Vec<(&'static str, &'static str)> {
    let mut reasons = Vec::new();
    if state == DeviceState::Active {
        reasons.push(("forgotten", "Forgotten (temporary card)"));
    }
    if live(state) {
        reasons.extend([
            ("lost", "Lost"),
            ("stolen", "Stolen"),
            ("damaged", "Damaged"),
        ]);
    }
    reasons
}

pub async fn photo(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(uid): Path<String>,
) -> Result<Response, WebError> {
    let photo = users::photo(
        &state.tessera.services,
        &signed_in.actor(),
        &UserId::new(uid),
    )
    .await?
    .ok_or_else(|| WebError::not_found("The photo"))?;
    // Portraits are stored as JPEG since the normaliser; older ones may be PNG.
    let content_type = if photo.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        photo,
    )
        .into_response())
}

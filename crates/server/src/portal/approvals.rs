//! The Approvals queue of the two-person rule: the pending requests the operator may decide,
//! with Approve and Reject, and the operator's own requests with where they stand.

use super::{render, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::portal::issue::urlencode;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tessera_core::approvals::{self, ApprovalState, QueueEntry};
use tessera_core::ids::ApprovalId;

pub struct Row {
    pub id: String,
    pub action: &'static str,
    pub subject: String,
    /// The user the request is about, for a link to their page.
    pub user: Option<String>,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: String,
    pub state: &'static str,
    pub decided_by: String,
    pub comment: String,
}

impl From<QueueEntry> for Row {
    fn from(e: QueueEntry) -> Self {
        let a = e.approval;
        Self {
            id: a.id.0,
            action: a.action.label(),
            subject: a.subject.describe(),
            user: a.subject.user().map(|u| u.0.clone()),
            reason: a.reason,
            requested_by: a.requested_by.0,
            requested_at: a.requested_at.date_time(),
            state: a.state.as_str(),
            decided_by: a.decided_by.map(|o| o.0).unwrap_or_default(),
            comment: a.comment,
        }
    }
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct QueuePage {
    nav: Option<Nav>,
    csrf: String,
    /// Other operators' requests this operator may decide.
    to_decide: Vec<Row>,
    /// This operator's own requests.
    mine: Vec<Row>,
    flash: Option<String>,
}

#[derive(Deserialize)]
pub struct FlashQuery {
    done: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<FlashQuery>,
) -> Result<Response, WebError> {
    let entries = approvals::queue(&state.tessera.services, &signed_in.actor()).await?;
    let (mine, others): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.own);
    render(&QueuePage {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        to_decide: others.into_iter().map(Row::from).collect(),
        mine: mine.into_iter().map(Row::from).collect(),
        flash: match q.done.as_deref() {
            Some("approved") => Some("Approved: the operator can now go ahead.".into()),
            Some("rejected") => Some("Rejected: the operator cannot go ahead with it.".into()),
            _ => None,
        },
    })
}

#[derive(Deserialize)]
pub struct DecisionForm {
    csrf: String,
    #[serde(default)]
    comment: String,
}

async fn decide(
    state: AppState,
    signed_in: SignedIn,
    id: String,
    form: DecisionForm,
    approve: bool,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&form.csrf)?;
    let approval = approvals::decide(
        &state.tessera.services,
        &signed_in.actor(),
        &ApprovalId::new(id),
        approve,
        &form.comment,
    )
    .await?;
    let done = match approval.state {
        ApprovalState::Approved => "approved",
        _ => "rejected",
    };
    Ok(Redirect::to(&format!("/approvals?done={}", urlencode(done))).into_response())
}

pub async fn approve(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Result<Response, WebError> {
    decide(state, signed_in, id, f, true).await
}

pub async fn reject(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Result<Response, WebError> {
    decide(state, signed_in, id, f, false).await
}

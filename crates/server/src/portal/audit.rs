//! The Audit page: the audit log newest first, a page at a time, and the check of its hash
//! chain. For operators whose role may view the audit log (administrators, security officers,
//! auditors); checking is audited in turn.

use super::{render, CsrfForm, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use tessera_core::audit_log::{self, ChainReport};

/// Events per page.
const PAGE: u32 = 50;

pub struct EventRow {
    pub seq: i64,
    pub at: String,
    pub code: u32,
    pub name: String,
    pub operator: String,
    pub user: String,
    pub device: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    csrf: String,
    events: Vec<EventRow>,
    /// The `before` of the next (older) page, when there is one.
    older: Option<i64>,
    /// The result of a chain check, as a sentence, and whether the chain held.
    check: Option<(bool, String)>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    before: Option<i64>,
}

async fn show(
    state: &AppState,
    signed_in: &SignedIn,
    before: Option<i64>,
    check: Option<(bool, String)>,
) -> Result<Response, WebError> {
    let events = audit_log::page(&state.tessera.services, &signed_in.actor(), before, PAGE).await?;
    let older = match events.last() {
        Some(e) if e.seq > 1 && events.len() == PAGE as usize => Some(e.seq),
        _ => None,
    };
    let rows = events
        .into_iter()
        .map(|e| EventRow {
            seq: e.seq,
            at: e.at.date_time(),
            code: e.code,
            name: e.name,
            operator: e.operator.unwrap_or_default(),
            user: e.user.unwrap_or_default(),
            device: e.device.unwrap_or_default(),
            details: e.details.to_string(),
        })
        .collect();
    render(&AuditPage {
        nav: Nav::of(signed_in),
        csrf: signed_in.csrf.clone(),
        events: rows,
        older,
        check,
    })
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    show(&state, &signed_in, q.before, None).await
}

fn sentence(report: &ChainReport) -> (bool, String) {
    let head = report.head.as_deref().unwrap_or("none");
    match &report.broken {
        None => (
            true,
            format!(
                "The chain of {} events is intact. Newest hash: {head} (keep it elsewhere to \
                 show later that the log was not rewritten).",
                report.checked
            ),
        ),
        Some(b) => (
            false,
            format!(
                "The chain is broken at event {}: {}. The events after it were checked and hold \
                 ({} events); the log was changed outside Tessera.",
                b.seq, b.reason, report.checked
            ),
        ),
    }
}

pub async fn check(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let report = audit_log::check_chain(&state.tessera.services, &signed_in.actor()).await?;
    show(&state, &signed_in, None, Some(sentence(&report))).await
}

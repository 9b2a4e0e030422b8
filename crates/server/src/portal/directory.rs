//! The Directory page: the `[directory]` configuration (never the bind password), Sync now and
//! Dry run, the report of the run, the last run of this server and the recent syncs in the
//! audit log. For operators whose role may manage users; without a `[directory]` section the page
//! says how to configure one.

use super::{render, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::directory::{LastRun, SyncError};
use crate::web_error::WebError;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use tessera_core::audit;
use tessera_core::model::Permission;
use tessera_core::people::Report;
use tessera_core::CoreError;

/// Names listed per kind of change; the rest is counted.
const LISTED: usize = 200;
/// Audit events searched for recent syncs.
const AUDIT_WINDOW: u32 = 500;

/// One list of the report: what is shown, and how many more there are.
pub struct Listed {
    pub items: Vec<String>,
    pub more: usize,
}

impl Listed {
    fn of<T>(all: &[T], show: impl Fn(&T) -> String) -> Self {
        Self {
            items: all.iter().take(LISTED).map(show).collect(),
            more: all.len().saturating_sub(LISTED),
        }
    }
}

/// A report as the page shows it.
pub struct ReportView {
    pub dry_run: bool,
    pub origin: String,
    pub summary: String,
    pub read: usize,
    pub unchanged: usize,
    pub created: Listed,
    pub updated: Listed,
    pub disabled: Listed,
    pub enabled: Listed,
    pub rejected: Listed,
    pub cards: Listed,
    pub resumable: Listed,
}

impl ReportView {
    fn of(r: &Report) -> Self {
        let card = |c: &tessera_core::people::reconcile::CardChange| {
            format!("{} of {}: {} -> {}", c.serial, c.uid, c.from, c.to)
        };
        Self {
            dry_run: r.dry_run,
            origin: r.origin.clone(),
            summary: r.summary(),
            read: r.read,
            unchanged: r.unchanged,
            created: Listed::of(&r.created, |u| u.to_string()),
            updated: Listed::of(&r.updated, |u| {
                format!("{} ({})", u.uid, u.fields.join(", "))
            }),
            disabled: Listed::of(&r.disabled, |u| u.to_string()),
            enabled: Listed::of(&r.enabled, |u| u.to_string()),
            rejected: Listed::of(&r.rejected, |x| match &x.uid {
                Some(uid) => format!("{} (uid {uid}): {}", x.at, x.reason),
                None => format!("{}: {}", x.at, x.reason),
            }),
            cards: Listed::of(&r.cards, card),
            resumable: Listed::of(&r.resumable, |c| {
                format!("{} of {} (suspended when they left)", c.serial, c.uid)
            }),
        }
    }
}

pub struct EventRow {
    pub at: String,
    pub name: String,
    pub operator: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "directory.html")]
struct DirectoryPage {
    nav: Option<Nav>,
    csrf: String,
    /// The configuration, label and value; None without a `[directory]` section.
    overview: Option<Vec<(&'static str, String)>>,
    last: Option<LastRun>,
    report: Option<ReportView>,
    /// The sentence of a failed run, with its code.
    error: Option<(String, String)>,
    /// Recent syncs from the audit log (for operators who may view it).
    events: Option<Vec<EventRow>>,
}

impl DirectoryPage {
    fn last_at(&self) -> String {
        self.last
            .as_ref()
            .map(|l| l.at.date_time())
            .unwrap_or_default()
    }
}

async fn show(
    state: &AppState,
    signed_in: &SignedIn,
    report: Option<ReportView>,
    error: Option<(String, String)>,
) -> Result<Response, WebError> {
    let directory = state.tessera.directory.as_ref();
    let events = if signed_in.may(Permission::ViewAudit) {
        let records = tessera_core::audit_log::page(
            &state.tessera.services,
            &signed_in.actor(),
            None,
            AUDIT_WINDOW,
        )
        .await?;
        Some(
            records
                .into_iter()
                .filter(|e| {
                    e.code == audit::DIRECTORY_SYNCED.code
                        || e.code == audit::DIRECTORY_SYNC_FAILED.code
                })
                .take(20)
                .map(|e| EventRow {
                    at: e.at.date_time(),
                    name: e.name,
                    operator: e.operator.unwrap_or_default(),
                    details: e.details.to_string(),
                })
                .collect(),
        )
    } else {
        None
    };
    render(&DirectoryPage {
        nav: Nav::of(signed_in),
        csrf: signed_in.csrf.clone(),
        overview: directory.map(|d| d.directory().overview()),
        last: directory.and_then(|d| d.last_run()),
        report,
        error,
        events,
    })
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    signed_in
        .actor()
        .require(Permission::ManageUsers, "see the directory sync")?;
    show(&state, &signed_in, None, None).await
}

#[derive(Deserialize)]
pub struct SyncForm {
    csrf: String,
    /// Present (any value) for a dry run.
    dry_run: Option<String>,
}

pub async fn sync(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<SyncForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let actor = signed_in.actor();
    actor.require(Permission::ManageUsers, "sync the directory")?;
    let Some(directory) = state.tessera.directory.clone() else {
        let mut res = show(
            &state,
            &signed_in,
            None,
            Some((
                "DIR0001".into(),
                "No directory is configured: add a [directory] section to the configuration \
                 file and restart Tessera."
                    .into(),
            )),
        )
        .await?;
        *res.status_mut() = StatusCode::CONFLICT;
        return Ok(res);
    };
    let dry_run = f.dry_run.is_some();
    let outcome = directory
        .run(&state.tessera.services, &actor, dry_run, "portal", false)
        .await;
    let (report, error, status) = match outcome {
        Ok(report) => (Some(ReportView::of(&report)), None, StatusCode::OK),
        Err(SyncError::Busy) => (
            None,
            Some((
                "DIR0001".into(),
                "A sync of the directory is running: try again when it has finished.".into(),
            )),
            StatusCode::CONFLICT,
        ),
        Err(SyncError::Core(e @ CoreError::Directory(_))) => (
            None,
            Some((
                e.code().as_str().to_owned(),
                crate::web_error::sentence(&e.to_string()),
            )),
            StatusCode::BAD_GATEWAY,
        ),
        Err(SyncError::Core(e)) => return Err(e.into()),
    };
    let mut res = show(&state, &signed_in, report, error).await?;
    *res.status_mut() = status;
    Ok(res)
}

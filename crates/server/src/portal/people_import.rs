//! Importing people from a CSV file (an HR export) with, optionally, a ZIP of their photos: the
//! form with the column mapping the last import saved, a dry run that shows what would change,
//! then the import. Both run in the background ([`crate::imports`]) through the one use case,
//! `people::import_csv`; the run's page follows a progress bar, then shows the report.

use super::multipart_form::{self, MultipartForm};
use super::{render, CsrfForm, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::imports::{ImportRun, Outcome, Upload};
use crate::photo_zip::{PhotoZip, MAX_ZIP_BYTES};
use crate::web_error::WebError;
use askama::Template;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Redirect, Response};
use axum::Form;
use serde_json::json;
use std::sync::Arc;
use tessera_core::model::Permission;
use tessera_core::people::csv_file::{CsvMapping, FIELDS, MAX_FILE_BYTES};
use tessera_core::people::{self, Report};

/// The body an import may have: the CSV, the ZIP and the form around them.
pub const IMPORT_BODY_BYTES: usize = MAX_FILE_BYTES + MAX_ZIP_BYTES + 1024 * 1024;

/// At most this many entries of each list of a report are shown (the counts are whole).
const SHOWN: usize = 5_000;

/// What each field holds, for the mapping form.
fn field_hint(field: &str) -> &'static str {
    match field {
        "uid" => "the person's unique id (required)",
        "groups" => "several groups, split by the separator below",
        "photo" => "the photo's file name in the ZIP",
        "disabled" => "yes/true/1/inactive: the person has left",
        "display_name" => "made from the names when empty",
        "fingerprints" => "the INCITS 378 record of two fingers, in base64 (empty: unchanged)",
        _ => "",
    }
}

#[derive(Template)]
#[template(path = "import.html")]
struct ImportForm {
    nav: Option<Nav>,
    csrf: String,
    /// (field, column, hint) for every field a column can fill.
    columns: Vec<(&'static str, String, &'static str)>,
    attributes: String,
    group_separator: String,
    max_csv_mib: usize,
    max_zip_mib: usize,
}

/// `GET /users/import`: the form, with the mapping the last import saved.
pub async fn form(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let mapping = people::saved_mapping(&state.tessera.services, &signed_in.actor()).await?;
    render(&ImportForm {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        columns: FIELDS
            .into_iter()
            .map(|f| {
                (
                    f,
                    mapping.columns.get(f).cloned().unwrap_or_default(),
                    field_hint(f),
                )
            })
            .collect(),
        attributes: mapping.attributes.join(", "),
        group_separator: mapping.group_separator.clone(),
        max_csv_mib: MAX_FILE_BYTES / (1024 * 1024),
        max_zip_mib: MAX_ZIP_BYTES / (1024 * 1024),
    })
}

/// The mapping as the form gives it: `map.FIELD` columns, attributes comma-separated.
fn mapping_of(form: &MultipartForm) -> CsvMapping {
    CsvMapping {
        columns: FIELDS
            .into_iter()
            .filter_map(|f| {
                let column = form.text(&format!("map.{f}"));
                (!column.is_empty()).then(|| (f.to_owned(), column.to_owned()))
            })
            .collect(),
        attributes: form
            .text("attributes")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect(),
        group_separator: form.text("group_separator").to_owned(),
    }
}

fn run_address(run: &ImportRun) -> String {
    format!("/users/import/{}", run.id)
}

/// `POST /users/import`: starts a dry run (`action=dry_run`) or the import.
pub async fn start(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, WebError> {
    let csv_limit = format!(
        "a CSV file may have up to {} MiB",
        MAX_FILE_BYTES / (1024 * 1024)
    );
    let zip_limit = format!(
        "a ZIP of photos may have up to {} MiB",
        MAX_ZIP_BYTES / (1024 * 1024)
    );
    let actor = signed_in.actor();
    // The use case checks again when it runs; this refuses before any file is read.
    actor.require(Permission::ManageUsers, "import people")?;
    let mut form = multipart_form::read(
        &signed_in,
        &headers,
        multipart,
        &[
            ("csv", MAX_FILE_BYTES, &csv_limit),
            ("photos", MAX_ZIP_BYTES, &zip_limit),
        ],
    )
    .await?;
    let csv = form
        .take_file("csv")
        .ok_or_else(|| WebError::bad_request("Choose the CSV file to import."))?;
    let photos = match form.take_file("photos") {
        Some(zip) => {
            // Reading a large archive's list of files is CPU work: off the async workers.
            let name = zip.file_name;
            let opened = tokio::task::spawn_blocking(move || PhotoZip::open(zip.bytes))
                .await
                .map_err(|_| WebError::bad_request("The ZIP of photos could not be read."))?;
            Some(opened.map_err(|e| WebError::bad_request(format!("{name}: {e}.")))?)
        }
        None => None,
    };
    let upload = Upload {
        file_name: csv.file_name,
        csv: csv.bytes,
        photos,
        mapping: mapping_of(&form),
        complete: form.text("complete") == "on",
    };
    let dry_run = form.text("action") != "import";
    let run = state
        .imports
        .start(state.tessera.services.clone(), actor, upload, dry_run)?;
    Ok(Redirect::to(&run_address(&run)).into_response())
}

/// `POST /users/import/{id}/apply`: imports the files a dry run checked.
pub async fn apply(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let actor = signed_in.actor();
    actor.require(Permission::ManageUsers, "import people")?;
    let upload = state
        .imports
        .take_upload(&id, &actor.operator)
        .ok_or_else(|| {
            WebError::new(
                StatusCode::GONE,
                "REQ0002",
                "The files of this dry run are no longer kept (they are let go after 15 minutes, or when you upload others): upload them again.",
            )
        })?;
    let run = state
        .imports
        .start(state.tessera.services.clone(), actor, upload, false)?;
    Ok(Redirect::to(&run_address(&run)).into_response())
}

fn own_run(state: &AppState, signed_in: &SignedIn, id: &str) -> Result<Arc<ImportRun>, WebError> {
    let actor = signed_in.actor();
    actor.require(Permission::ManageUsers, "import people")?;
    state
        .imports
        .get(id, &actor.operator)
        .ok_or_else(|| WebError::not_found("That import"))
}

/// A list of a report, as many as are shown and how many more there are.
struct Listed<T> {
    shown: Vec<T>,
    more: usize,
}

fn listed<T: Clone>(all: &[T]) -> Listed<T> {
    Listed {
        shown: all.iter().take(SHOWN).cloned().collect(),
        more: all.len().saturating_sub(SHOWN),
    }
}

#[derive(Template)]
#[template(path = "import_run.html")]
struct RunPage {
    nav: Option<Nav>,
    csrf: String,
    id: String,
    dry_run: bool,
    file_name: String,
    complete: bool,
    photos: bool,
    running: Option<Running>,
    report: Option<ReportView>,
    /// A dry run whose files are still here: the Import button.
    can_apply: bool,
}

/// How far a running import has come.
struct Running {
    stage: &'static str,
    done: usize,
    total: usize,
    /// The total is known (else the bar shows activity, not a fraction).
    counted: bool,
}

struct ReportView {
    summary: String,
    read: usize,
    created: Listed<String>,
    updated: Listed<(String, String)>,
    disabled: Listed<String>,
    enabled: Listed<String>,
    unchanged: usize,
    rejected: Listed<(String, String, String)>,
    cards: Listed<(String, String, String, String)>,
    resumable: Listed<(String, String)>,
    changes_anything: bool,
}

fn view(report: &Report) -> ReportView {
    let uids = |v: &[tessera_core::ids::UserId]| -> Vec<String> {
        v.iter().map(|u| u.0.clone()).collect()
    };
    ReportView {
        summary: report.summary(),
        read: report.read,
        created: listed(&uids(&report.created)),
        updated: listed(
            &report
                .updated
                .iter()
                .map(|u| (u.uid.0.clone(), u.fields.join(", ")))
                .collect::<Vec<_>>(),
        ),
        disabled: listed(&uids(&report.disabled)),
        enabled: listed(&uids(&report.enabled)),
        unchanged: report.unchanged,
        rejected: listed(
            &report
                .rejected
                .iter()
                .map(|r| {
                    (
                        r.at.clone(),
                        r.uid.clone().unwrap_or_default(),
                        r.reason.clone(),
                    )
                })
                .collect::<Vec<_>>(),
        ),
        cards: listed(
            &report
                .cards
                .iter()
                .map(|c| {
                    (
                        c.serial.clone(),
                        c.uid.0.clone(),
                        c.from.to_owned(),
                        c.to.to_owned(),
                    )
                })
                .collect::<Vec<_>>(),
        ),
        resumable: listed(
            &report
                .resumable
                .iter()
                .map(|c| (c.serial.clone(), c.uid.0.clone()))
                .collect::<Vec<_>>(),
        ),
        changes_anything: report.changes_anything(),
    }
}

fn stage_text(stage: &str) -> &'static str {
    match stage {
        "writing" => "Writing the changes",
        _ => "Checking people and photos",
    }
}

/// `GET /users/import/{id}`: the progress bar while the run goes on, then its report.
pub async fn run_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let run = own_run(&state, &signed_in, &id)?;
    let outcome = run.outcome();
    if let Some(mut e) = outcome.error() {
        e.next = Some(("/users/import", "Import again"));
        return Err(e);
    }
    let (running, report) = match &outcome {
        Outcome::Running(p) => (
            Some(match p {
                Some(p) => Running {
                    stage: stage_text(p.stage),
                    done: p.done,
                    total: p.total,
                    counted: p.total > 0,
                },
                None => Running {
                    stage: "Reading the file",
                    done: 0,
                    total: 0,
                    counted: false,
                },
            }),
            None,
        ),
        Outcome::Done(report) => (None, Some(view(report))),
        Outcome::Failed { .. } => unreachable!("handled above"),
    };
    render(&RunPage {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        id: run.id.clone(),
        dry_run: run.dry_run,
        file_name: run.file_name.clone(),
        complete: run.complete,
        photos: run.photos,
        can_apply: run.dry_run && run.has_upload(),
        running,
        report,
    })
}

/// `GET /users/import/{id}/progress`: `{"state": "running", "stage", "done", "total"}`, or the
/// state it ended in (`done`, `failed`), for the page's progress bar.
pub async fn progress(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let run = own_run(&state, &signed_in, &id)?;
    let body = match run.outcome() {
        Outcome::Running(Some(p)) => json!({
            "state": "running",
            "stage": p.stage,
            "message": stage_text(p.stage),
            "done": p.done,
            "total": p.total,
        }),
        Outcome::Running(None) => json!({
            "state": "running", "stage": "reading", "message": "Reading the file", "done": 0, "total": 0,
        }),
        Outcome::Done(_) => json!({"state": "done"}),
        Outcome::Failed { .. } => json!({"state": "failed"}),
    };
    Ok(Json(body).into_response())
}

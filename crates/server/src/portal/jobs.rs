//! Issuances in progress as the portal shows them: one tile per job with Resume and Cancel it
//! (on a refused Start, the configure page, the User page), and the "Jobs in progress" page that
//! lists every open job of the operator's scope, where an abandoned job that fed a card is found.

use super::{render, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use tessera_core::issuance::{self, JobInProgress};

/// A job in progress, in the words of [`JobInProgress`], with where Cancel it comes back to.
pub struct InProgressView {
    pub id: String,
    pub user_uid: String,
    pub user_name: String,
    pub step: &'static str,
    pub operator: String,
    pub started: String,
    pub station: String,
    pub at: String,
    pub card: String,
    pub may_act: bool,
    pub back: String,
}

impl InProgressView {
    pub fn of(j: &JobInProgress, back: String) -> Self {
        let card = match (&j.card_serial, j.card_fed) {
            (Some(serial), _) => format!("{serial} (personalised, Pending until activated)"),
            (None, true) => format!(
                "a blank card fed into {}, nothing written yet",
                j.job.printer
            ),
            (None, false) => "none yet".into(),
        };
        Self {
            id: j.job.id.to_string(),
            user_uid: j.job.user.to_string(),
            user_name: j.user_name.clone(),
            step: j.job.step.describe(),
            operator: j.operator_name.clone(),
            started: j.job.created_at.date_time(),
            station: j.station_name.clone(),
            at: j.at(),
            card,
            may_act: j.may_act,
            back,
        }
    }
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    nav: Option<Nav>,
    csrf: String,
    jobs: Vec<InProgressView>,
}

/// `GET /jobs`: every issuance in progress in the operator's scope.
pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let jobs = issuance::jobs_in_progress(&state.tessera.services, &signed_in.actor()).await?;
    render(&JobsPage {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        jobs: jobs
            .iter()
            .map(|j| InProgressView::of(j, "/jobs".into()))
            .collect(),
    })
}

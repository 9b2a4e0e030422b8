//! The Stock page: counts per model and location, the cards with filters, the import of a
//! vendor's serial list, and each card's page with its full history (every device made of it).
//! For operators whose role may view the stock; importing and changing cards needs `ManageStock`.

use super::{render, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tessera_core::ids::StationId;
use tessera_core::model::{Permission, StockCard, StockFilter, StockState};
use tessera_core::stock::{self, ImportReport, StockDefaults, StockSummaryRow};
use tessera_core::CoreError;

/// Cards listed at most on the page (the filters narrow it down).
const LIST_LIMIT: u32 = 500;

#[derive(Template)]
#[template(path = "stock.html")]
struct StockPage {
    nav: Option<Nav>,
    csrf: String,
    manage: bool,
    summary: Vec<StockSummaryRow>,
    cards: Vec<StockCard>,
    /// Whether the list stopped at [`LIST_LIMIT`].
    cut: bool,
    model: String,
    state: String,
    location: String,
    states: Vec<(&'static str, &'static str)>,
    report: Option<ImportReport>,
    import_error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    model: Option<String>,
    state: Option<String>,
    location: Option<String>,
}

fn states() -> Vec<(&'static str, &'static str)> {
    StockState::ALL
        .into_iter()
        .map(|s| (s.as_str(), s.label()))
        .collect()
}

async fn show(
    state: &AppState,
    signed_in: &SignedIn,
    q: ListQuery,
    report: Option<ImportReport>,
    import_error: Option<String>,
) -> Result<Response, WebError> {
    let svc = &state.tessera.services;
    let actor = signed_in.actor();
    let nonempty = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let filter = StockFilter {
        model: nonempty(&q.model),
        state: match nonempty(&q.state) {
            None => None,
            Some(s) => Some(StockState::parse(&s).ok_or_else(|| {
                WebError::from(CoreError::Invalid(format!("{s:?} is not a stock state")))
            })?),
        },
        location: nonempty(&q.location).map(StationId::new),
        limit: LIST_LIMIT + 1,
    };
    let stock::StockOverview { summary, mut cards } =
        stock::stock_overview(svc, &actor, &filter).await?;
    let cut = cards.len() > LIST_LIMIT as usize;
    cards.truncate(LIST_LIMIT as usize);
    render(&StockPage {
        nav: Nav::of(signed_in),
        csrf: signed_in.csrf.clone(),
        manage: actor.role.allows(Permission::ManageStock),
        summary,
        cards,
        cut,
        model: q.model.unwrap_or_default(),
        state: q.state.unwrap_or_default(),
        location: q.location.unwrap_or_default(),
        states: states(),
        report,
        import_error,
    })
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    show(&state, &signed_in, q, None, None).await
}

#[derive(Deserialize)]
pub struct ImportForm {
    csrf: String,
    csv: String,
    model: Option<String>,
    batch: Option<String>,
    location: Option<String>,
}

pub async fn import(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<ImportForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let nonempty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let defaults = StockDefaults {
        model: nonempty(f.model),
        batch: nonempty(f.batch),
        location: nonempty(f.location),
    };
    let outcome = stock::import_stock(
        &state.tessera.services,
        &signed_in.actor(),
        &f.csv,
        &defaults,
    )
    .await;
    let (report, error) = match outcome {
        Ok(report) => (Some(report), None),
        Err(CoreError::Changed(what)) => {
            (None, Some(format!("{what} changed meanwhile; try again")))
        }
        Err(e) => return Err(e.into()),
    };
    let failed = report.as_ref().is_some_and(|r| !r.errors.is_empty()) || error.is_some();
    let mut res = show(&state, &signed_in, ListQuery::default(), report, error).await?;
    if failed {
        *res.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(res)
}

pub struct DeviceRow {
    pub id: String,
    pub state: String,
    pub user: String,
    pub created: String,
    pub activated: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "stock_card.html")]
struct CardPage {
    nav: Option<Nav>,
    csrf: String,
    manage: bool,
    serial: String,
    card: Option<StockCard>,
    devices: Vec<DeviceRow>,
    states: Vec<(&'static str, &'static str)>,
    /// The state the form proposes: the card's own, or for an issued card (which no one sets by
    /// hand) the next one it can take, returned.
    proposed: &'static str,
    error: Option<String>,
}

async fn show_card(
    state: &AppState,
    signed_in: &SignedIn,
    serial: &str,
    error: Option<String>,
) -> Result<Response, WebError> {
    let actor = signed_in.actor();
    let history = stock::stock_history(&state.tessera.services, &actor, serial).await?;
    let date = |t: Option<tessera_core::model::Timestamp>| t.map(|t| t.date()).unwrap_or_default();
    let proposed = match history.card.as_ref().map(|c| c.state) {
        Some(StockState::Issued) => StockState::Returned.as_str(),
        Some(state) => state.as_str(),
        None => StockState::InStock.as_str(),
    };
    render(&CardPage {
        nav: Nav::of(signed_in),
        csrf: signed_in.csrf.clone(),
        manage: actor.role.allows(Permission::ManageStock),
        serial: history.serial,
        card: history.card,
        devices: history
            .devices
            .into_iter()
            .map(|d| DeviceRow {
                id: d.id.0,
                state: d.state.as_str().to_owned(),
                user: d.user.map(|u| u.0).unwrap_or_default(),
                created: d.created_at.date_time(),
                activated: date(d.activated_at),
                expires: date(d.expires_at),
            })
            .collect(),
        proposed,
        states: states()
            .into_iter()
            .filter(|(s, _)| *s != StockState::Issued.as_str())
            .collect(),
        error,
    })
}

pub async fn card(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(serial): Path<String>,
) -> Result<Response, WebError> {
    show_card(&state, &signed_in, &serial, None).await
}

#[derive(Deserialize)]
pub struct StateForm {
    csrf: String,
    state: String,
    location: Option<String>,
}

pub async fn set_state(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(serial): Path<String>,
    Form(f): Form<StateForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let Some(to) = StockState::parse(&f.state) else {
        return Err(WebError::bad_request("Choose a state."));
    };
    let location = f.location.as_deref().filter(|l| !l.trim().is_empty());
    match stock::set_stock_state(
        &state.tessera.services,
        &signed_in.actor(),
        &serial,
        to,
        location,
    )
    .await
    {
        Ok(card) => Ok(Redirect::to(&format!("/stock/cards/{}", card.serial)).into_response()),
        Err(CoreError::Invalid(message)) => {
            let mut res = show_card(&state, &signed_in, &serial, Some(message)).await?;
            *res.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(res)
        }
        Err(e) => Err(e.into()),
    }
}

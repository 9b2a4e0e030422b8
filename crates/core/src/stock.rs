//! The card stock: the cards a vendor shipped, imported from the serial list (CSV) that comes with
//! them, so that a deployment issues only its own cards. Each card has a model, a batch, a
//! location (the station where it is kept) and a state:
//!
//! ```text
//!   import ──> InStock ──Issue──> Issued ──Return──> Returned ──Restock──> InStock
//!                 │                  │                  │
//!                 └──────────────────┴──── Destroy ─────┴──> Destroyed (final)
//! ```
//!
//! - A card is issued only from `InStock`; the issuance marks it `Issued` at the job's station in
//!   the same commit that makes its device `Pending`. Nobody sets `Issued` by hand.
//! - A card comes back as `Returned` (its device terminated, the plastic handed in); it is wiped
//!   when it is issued again (see `issuance::personalise::card_history`), so it may go back on
//!   the shelf (`Restock`) or be destroyed. Returned is not issuable as such: someone must look
//!   at the card and decide.
//! - `Destroy` is allowed from every other state and is final: a destroyed card never comes back.
//! - A card that stays in its state may move to another location (`Move`), except a destroyed one
//!   and an issued one (it is where its holder is).
//!
//! A policy with `require_stock` refuses, before anything is written to it, a card that is not
//! in stock ([`admit`], error `STK0001`). Under other policies a card that is not in stock is
//! issued and simply not tracked.

use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::ids::*;
use crate::model::*;
use crate::services::{Actor, AuditContext, Services};
use serde::Serialize;
use serde_json::json;

mod csv;
mod states;
#[cfg(test)]
mod tests;

pub use csv::*;
pub use states::*;

/// Imports a vendor's serial list into stock: all or nothing when a line is bad (every bad line
/// is reported), serials already in stock skipped and reported. One audit event.
pub async fn import_stock(
    svc: &Services,
    actor: &Actor,
    csv: &str,
    defaults: &StockDefaults,
) -> Result<ImportReport, CoreError> {
    actor.require(Permission::ManageStock, "manage the card stock")?;
    let stations = svc.store.stations().await?;
    let cards = match parse_import(csv, defaults, &stations, svc.clock.now()) {
        Ok(cards) => cards,
        Err(errors) => {
            return Ok(ImportReport {
                errors,
                ..Default::default()
            })
        }
    };
    let mut report = ImportReport::default();
    let mut seen = std::collections::HashSet::new();
    let mut changes = Changes::new();
    let mut models = std::collections::BTreeSet::new();
    let mut batches = std::collections::BTreeSet::new();
    for card in cards {
        if !seen.insert(card.serial.clone()) || svc.store.stock_card(&card.serial).await?.is_some()
        {
            report.duplicates.push(card.serial);
            continue;
        }
        models.insert(card.model.clone());
        batches.insert(card.batch.clone());
        report.imported += 1;
        changes.push(Change::PutStockCard {
            card,
            expected: None,
        });
    }
    if report.imported == 0 && report.duplicates.is_empty() {
        return Ok(report);
    }
    changes.audit(svc.event(
        audit::STOCK_IMPORTED,
        AuditContext {
            operator: Some(&actor.operator),
            ..Default::default()
        },
        json!({"imported": report.imported, "duplicates": report.duplicates.len(),
               "models": models, "batches": batches}),
    ));
    match svc.commit(changes).await {
        // Another import of the same serials committed in between.
        Err(CoreError::Store(crate::ports::StoreError::Conflict)) => Err(CoreError::Changed(
            "the stock (another import added some of these serials)".into(),
        )),
        other => other.map(|()| report),
    }
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// The stock cards a filter selects.
pub async fn list_stock(
    svc: &Services,
    actor: &Actor,
    filter: &StockFilter,
) -> Result<Vec<StockCard>, CoreError> {
    actor.require(Permission::ViewStock, "view the card stock")?;
    Ok(svc
        .store
        .stock_cards(&by_station_id(svc, filter).await?)
        .await?)
}

/// The filter with its location given as a station's id, when it names a station by name (the
/// way an import or a change names it).
async fn by_station_id(svc: &Services, filter: &StockFilter) -> Result<StockFilter, CoreError> {
    let mut filter = filter.clone();
    if let Some(location) = &filter.location {
        let stations = svc.store.stations().await?;
        if let Some(id) = station_named(&stations, location.as_str()) {
            filter.location = Some(id);
        }
    }
    Ok(filter)
}

/// The cards of one model at one location, counted per state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StockSummaryRow {
    pub model: String,
    pub location: Option<StationId>,
    pub in_stock: u64,
    pub issued: u64,
    pub returned: u64,
    pub destroyed: u64,
}

impl StockSummaryRow {
    pub fn total(&self) -> u64 {
        self.in_stock + self.issued + self.returned + self.destroyed
    }
}

/// Counts per model and location (by model, then location).
pub async fn stock_summary(
    svc: &Services,
    actor: &Actor,
) -> Result<Vec<StockSummaryRow>, CoreError> {
    actor.require(Permission::ViewStock, "view the card stock")?;
    Ok(summarise(svc.store.stock_counts().await?))
}

/// What the Stock page shows: the counts per model and location, and the cards of a filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StockOverview {
    pub summary: Vec<StockSummaryRow>,
    pub cards: Vec<StockCard>,
}

/// The Stock page's content in one use case.
pub async fn stock_overview(
    svc: &Services,
    actor: &Actor,
    filter: &StockFilter,
) -> Result<StockOverview, CoreError> {
    actor.require(Permission::ViewStock, "view the card stock")?;
    Ok(StockOverview {
        summary: summarise(svc.store.stock_counts().await?),
        cards: svc
            .store
            .stock_cards(&by_station_id(svc, filter).await?)
            .await?,
    })
}

/// Folds the per-state counts into one row per model and location.
pub fn summarise(counts: Vec<StockCount>) -> Vec<StockSummaryRow> {
    let mut rows: std::collections::BTreeMap<(String, Option<StationId>), StockSummaryRow> =
        Default::default();
    for c in counts {
        let row = rows
            .entry((c.model.clone(), c.location.clone()))
            .or_insert_with(|| StockSummaryRow {
                model: c.model,
                location: c.location,
                ..Default::default()
            });
        *match c.state {
            StockState::InStock => &mut row.in_stock,
            StockState::Issued => &mut row.issued,
            StockState::Returned => &mut row.returned,
            StockState::Destroyed => &mut row.destroyed,
        } += c.count;
    }
    rows.into_values().collect()
}

/// A card's full story: its stock record (if it was imported) and every device record Tessera
/// made of it, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StockHistory {
    pub serial: String,
    pub card: Option<StockCard>,
    pub devices: Vec<Device>,
}

pub async fn stock_history(
    svc: &Services,
    actor: &Actor,
    serial: &str,
) -> Result<StockHistory, CoreError> {
    actor.require(Permission::ViewStock, "view the card stock")?;
    let serial = normalise_serial(serial).map_err(CoreError::Invalid)?;
    let card = svc.store.stock_card(&serial).await?;
    let devices = svc.store.devices_with_serial(&serial).await?;
    if card.is_none() && devices.is_empty() {
        return Err(CoreError::NotFound(format!("card {serial}")));
    }
    Ok(StockHistory {
        serial,
        card,
        devices,
    })
}

// ---------------------------------------------------------------------------------------------
// Changing
// ---------------------------------------------------------------------------------------------

/// An administrator returns, re-stocks, destroys or moves a card; `location` None keeps it where
/// it is.
pub async fn set_stock_state(
    svc: &Services,
    actor: &Actor,
    serial: &str,
    state: StockState,
    location: Option<&str>,
) -> Result<StockCard, CoreError> {
    actor.require(Permission::ManageStock, "manage the card stock")?;
    let serial = normalise_serial(serial).map_err(CoreError::Invalid)?;
    let mut card = svc
        .store
        .stock_card(&serial)
        .await?
        .ok_or_else(|| CoreError::NotFound(format!("card {serial} in stock")))?;
    let from = card.state;
    let from_location = card.location.clone();
    let command = command_for(from, state)?;
    card.state = transition(from, command).map_err(|e| CoreError::Invalid(e.to_string()))?;
    // The plastic of a card still in use is with its holder: its device ends first.
    if from == StockState::Issued {
        use crate::lifecycle::DeviceState as D;
        let devices = svc.store.devices_with_serial(&serial).await?;
        if let Some(live) = devices
            .iter()
            .find(|d| !matches!(d.state, D::Failed | D::Terminated | D::Recycled))
        {
            return Err(CoreError::Invalid(format!(
                "card {serial} is still in use (device {}, {}): terminate the device first",
                live.id, live.state
            )));
        }
    }
    if let Some(name) = location.map(str::trim).filter(|l| !l.is_empty()) {
        let stations = svc.store.stations().await?;
        card.location = Some(
            station_named(&stations, name)
                .ok_or_else(|| CoreError::NotFound(format!("station {name}")))?,
        );
    }
    if command == StockCommand::Move && card.location == from_location {
        return Ok(card); // nothing changes
    }
    card.updated_at = svc.clock.now();
    let mut changes = Changes::new();
    let ctx = AuditContext {
        operator: Some(&actor.operator),
        ..Default::default()
    };
    changed(svc, &mut changes, &card, (from, from_location), ctx);
    svc.commit(changes).await?;
    Ok(card)
}

/// Adds the conditional write of `card` (read in state `from`) and its audit event.
fn changed(
    svc: &Services,
    changes: &mut Changes,
    card: &StockCard,
    (from, from_location): (StockState, Option<StationId>),
    ctx: AuditContext<'_>,
) {
    changes.push(Change::PutStockCard {
        card: card.clone(),
        expected: Some(from),
    });
    changes.audit(svc.event(
        audit::STOCK_CARD_CHANGED,
        ctx,
        json!({"serial": card.serial, "from": from.as_str(), "to": card.state.as_str(),
               "from_location": from_location, "location": card.location}),
    ));
}

// ---------------------------------------------------------------------------------------------
// Issuance
// ---------------------------------------------------------------------------------------------

/// Why a card may not be issued under a policy that requires stock, or None when it may.
pub fn refusal(serial: &str, card: Option<&StockCard>) -> Option<String> {
    match card {
        None => Some(format!("card {serial} is not in stock")),
        Some(c) if c.state == StockState::InStock => None,
        Some(c) => Some(format!("card {serial} is {}, not in stock", c.state)),
    }
}

/// The issuance's check, right after the card is selected and before anything is written to it:
/// under a policy that requires stock, a card that is not `InStock` is refused (`STK0001`) and
/// the refusal audited.
pub async fn admit(svc: &Services, policy: &DevicePolicy, serial: &str) -> Result<(), CoreError> {
    if !policy.require_stock {
        return Ok(());
    }
    let serial = normalise_serial(serial).unwrap_or_else(|_| serial.to_owned());
    let card = svc.store.stock_card(&serial).await?;
    match refusal(&serial, card.as_ref()) {
        None => Ok(()),
        // Audited with the job's failure, in its transaction (`issuance::personalise::fail`).
        Some(message) => Err(CoreError::NotInStock {
            serial,
            state: card.as_ref().map(|c| c.state.as_str()),
            message,
        }),
    }
}

/// At the end of production: a card in stock becomes `Issued` at the job's station, in the same
/// unit of work that makes its device `Pending`. A card not in stock (or in a state it cannot be
/// issued from, under a policy that does not require stock) is left as it is.
pub async fn mark_issued(
    svc: &Services,
    changes: &mut Changes,
    job: &IssuanceJob,
    policy: &DevicePolicy,
    serial: &str,
) -> Result<(), CoreError> {
    let serial = normalise_serial(serial).unwrap_or_else(|_| serial.to_owned());
    let card = svc.store.stock_card(&serial).await?;
    // Under a policy that requires stock, a card that left the stock while it was being issued
    // (destroyed or returned meanwhile) fails the issuance like a card that never was in stock.
    if policy.require_stock {
        if let Some(message) = refusal(&serial, card.as_ref()) {
            return Err(CoreError::NotInStock {
                state: card.as_ref().map(|c| c.state.as_str()),
                serial,
                message,
            });
        }
    }
    let Some(mut card) = card else {
        return Ok(());
    };
    let from = card.state;
    let Ok(to) = transition(from, StockCommand::Issue) else {
        tracing::warn!(
            serial,
            state = from.as_str(),
            "a stock card was issued outside its stock lifecycle"
        );
        return Ok(());
    };
    let from_location = card.location.clone();
    card.state = to;
    card.location = Some(job.station.clone());
    card.updated_at = svc.clock.now();
    let ctx = AuditContext::of_job(job);
    changed(svc, changes, &card, (from, from_location), ctx);
    Ok(())
}

/// Recycling ([`crate::help_desk::recycle`]) erased the card `serial` at a station: a stock card
/// that was `Issued` or `Returned` goes back `InStock` (Return, then Restock: the operator who
/// erased it is the person who looked at it and decided), in the recycling's unit of work.
/// Returns the card's stock state afterwards; `None` for a card that is not in stock. A card in
/// stock already stays so; a destroyed one stays destroyed.
pub(crate) async fn restock_recycled(
    svc: &Services,
    changes: &mut Changes,
    serial: &str,
    ctx: AuditContext<'_>,
) -> Result<Option<StockState>, CoreError> {
    let serial = normalise_serial(serial).unwrap_or_else(|_| serial.to_owned());
    let Some(mut card) = svc.store.stock_card(&serial).await? else {
        return Ok(None);
    };
    let from = card.state;
    let mut to = from;
    if to == StockState::Issued {
        to = transition(to, StockCommand::Return).map_err(|e| CoreError::Invalid(e.to_string()))?;
    }
    if to == StockState::Returned {
        to =
            transition(to, StockCommand::Restock).map_err(|e| CoreError::Invalid(e.to_string()))?;
    }
    if to != from {
        let from_location = card.location.clone();
        card.state = to;
        card.updated_at = svc.clock.now();
        changed(svc, changes, &card, (from, from_location), ctx);
    }
    Ok(Some(to))
}

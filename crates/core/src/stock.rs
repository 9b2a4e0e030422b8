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

/// What happens to a stock card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockCommand {
    Issue,
    Return,
    Restock,
    Destroy,
    /// Stay in the same state (at another location).
    Move,
}

impl StockCommand {
    /// The past participle used in messages ("cannot be restocked").
    pub fn verb(self) -> &'static str {
        match self {
            Self::Issue => "issued",
            Self::Return => "returned",
            Self::Restock => "restocked",
            Self::Destroy => "destroyed",
            Self::Move => "moved",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a card that is {state} cannot be {command}")]
pub struct StockTransitionRefused {
    pub state: StockState,
    pub command: &'static str,
}

/// The one rule of the stock lifecycle (see the module documentation).
pub fn transition(
    state: StockState,
    command: StockCommand,
) -> Result<StockState, StockTransitionRefused> {
    use StockCommand as C;
    use StockState as S;
    match (state, command) {
        (S::InStock, C::Issue) => Ok(S::Issued),
        (S::Issued, C::Return) => Ok(S::Returned),
        (S::Returned, C::Restock) => Ok(S::InStock),
        (S::InStock | S::Issued | S::Returned, C::Destroy) => Ok(S::Destroyed),
        (S::InStock | S::Returned, C::Move) => Ok(state),
        _ => Err(StockTransitionRefused {
            state,
            command: command.verb(),
        }),
    }
}

/// The command that takes a card from `from` to the state an administrator asked for; `Issued`
/// is refused (a card becomes issued by issuing it).
pub fn command_for(from: StockState, to: StockState) -> Result<StockCommand, CoreError> {
    Ok(match to {
        _ if to == from => StockCommand::Move,
        StockState::InStock => StockCommand::Restock,
        StockState::Returned => StockCommand::Return,
        StockState::Destroyed => StockCommand::Destroy,
        StockState::Issued => {
            return Err(CoreError::Invalid(
                "a card becomes issued by issuing it, not by hand".into(),
            ))
        }
    })
}

/// A card serial as the issuance sees it: a decimal serial (YubiKey GET SERIAL) without leading
/// zeros, any other (the hex id of a card without one) in lower case; 1 to 32 letters or digits.
pub fn normalise_serial(text: &str) -> Result<String, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("the serial is empty".into());
    }
    if s.chars().count() > 32 || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "the serial {:?} is not 1 to 32 letters or digits",
            shorten(s)
        ));
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        let trimmed = s.trim_start_matches('0');
        Ok(if trimmed.is_empty() { "0" } else { trimmed }.to_owned())
    } else {
        Ok(s.to_ascii_lowercase())
    }
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// The largest serial list accepted at once (a vendor's shipment is far smaller).
pub const MAX_IMPORT_BYTES: usize = 4 * 1024 * 1024;
/// The most cards one import may hold.
pub const MAX_IMPORT_CARDS: usize = 50_000;
/// The longest model, batch or location value.
const MAX_VALUE: usize = 64;

/// A bad line of an import, by its line number in the file (the first line is 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

/// One record of a CSV text: the line it starts on and its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvRecord {
    pub line: usize,
    pub values: Vec<String>,
}

/// Reads CSV (RFC 4180: commas, double quotes, `""` for a quote inside quotes, CRLF or LF, a
/// leading byte-order mark). A record with bad quoting is reported with its line and skipped to
/// the end of its line; an unclosed quote ends the text. Blank lines are skipped.
pub fn csv_records(text: &str) -> Vec<Result<CsvRecord, LineError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut chars = text.chars().peekable();
    let mut out = Vec::new();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut values = Vec::new();
        let mut value = String::new();
        let mut quoted = false; // the current value was quoted and its quote is closed
        let mut error: Option<&str> = None;
        loop {
            match chars.next() {
                None => break,
                Some(c @ ('\r' | '\n')) => {
                    if c == '\r' && chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    line += 1;
                    break;
                }
                Some(',') => {
                    values.push(std::mem::take(&mut value));
                    quoted = false;
                }
                Some('"') if value.is_empty() && !quoted => {
                    quoted = true;
                    loop {
                        match chars.next() {
                            None => {
                                error = Some("a quoted value is not closed");
                                break;
                            }
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                value.push('"');
                            }
                            Some('"') => break,
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                value.push(c);
                            }
                        }
                    }
                }
                Some(c) if quoted && !matches!(c, ' ' | '\t') => {
                    error = Some("text follows a closing quote (write \"\" for a quote)");
                }
                Some(_) if quoted => {}
                Some('"') => error = Some("a quote inside an unquoted value (quote the value)"),
                Some(c) => value.push(c),
            }
            if let Some(reason) = error {
                // Skip the rest of the line; the next record starts after it.
                while let Some(c) = chars.next() {
                    if c == '\n' || c == '\r' {
                        if c == '\r' && chars.peek() == Some(&'\n') {
                            chars.next();
                        }
                        line += 1;
                        break;
                    }
                }
                out.push(Err(LineError {
                    line: start,
                    reason: reason.into(),
                }));
                break;
            }
        }
        if error.is_some() {
            continue;
        }
        values.push(value);
        if values.len() == 1 && values[0].trim().is_empty() && !quoted {
            continue; // a blank line
        }
        out.push(Ok(CsvRecord {
            line: start,
            values,
        }));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------------

/// Values from the command line or form that fill the columns a file lacks (or leaves empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StockDefaults {
    pub model: Option<String>,
    pub batch: Option<String>,
    /// A station id or name.
    pub location: Option<String>,
}

/// What an import did. When `errors` is not empty the file was refused as a whole and nothing
/// was imported; otherwise every new serial was imported and `duplicates` (serials already in
/// stock, or listed twice in the file) were left as they were.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub imported: usize,
    pub duplicates: Vec<String>,
    pub errors: Vec<LineError>,
}

/// The cards of a serial list, or every bad line in it. Pure: `stations` resolves a location
/// (by id or name), `now` stamps the cards.
pub fn parse_import(
    text: &str,
    defaults: &StockDefaults,
    stations: &[Station],
    now: Timestamp,
) -> Result<Vec<StockCard>, Vec<LineError>> {
    let err = |line: usize, reason: String| LineError { line, reason };
    if text.len() > MAX_IMPORT_BYTES {
        return Err(vec![err(
            0,
            format!(
                "the file is larger than {} MiB: split it",
                MAX_IMPORT_BYTES / 1024 / 1024
            ),
        )]);
    }
    let location_of = |name: &str| -> Result<StationId, String> {
        stations
            .iter()
            .find(|s| s.id.as_str() == name || s.name.eq_ignore_ascii_case(name))
            .map(|s| s.id.clone())
            .ok_or_else(|| format!("no station is called {:?}", shorten(name)))
    };
    let mut errors = Vec::new();
    let default_location = match defaults.location.as_deref().map(str::trim) {
        Some(l) if !l.is_empty() => match location_of(l) {
            Ok(id) => Some(id),
            Err(reason) => return Err(vec![err(0, reason)]),
        },
        _ => None,
    };
    let mut records = csv_records(text).into_iter();
    let header = match records.next() {
        None => {
            return Err(vec![err(
                1,
                "the file is empty: a header line naming the columns (serial, model, batch, \
                 location) is required"
                    .into(),
            )])
        }
        Some(Err(e)) => return Err(vec![e]),
        Some(Ok(h)) => h,
    };
    let names: Vec<String> = header
        .values
        .iter()
        .map(|v| v.trim().to_ascii_lowercase())
        .collect();
    let column = |name: &str| names.iter().position(|n| n == name);
    for (i, n) in names.iter().enumerate() {
        if !n.is_empty() && names[..i].contains(n) {
            return Err(vec![err(
                header.line,
                format!("the column {n:?} is named twice"),
            )]);
        }
    }
    let Some(serial_at) = column("serial") else {
        return Err(vec![err(
            header.line,
            "the header has no serial column (the first line must name the columns: serial, model, batch, location)".into(),
        )]);
    };
    let (model_at, batch_at, location_at) = (column("model"), column("batch"), column("location"));
    let mut cards: Vec<StockCard> = Vec::new();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let line = record.line;
        if record.values.len() != names.len() {
            errors.push(err(
                line,
                format!(
                    "{} values where the header names {} columns",
                    record.values.len(),
                    names.len()
                ),
            ));
            continue;
        }
        let get = |at: Option<usize>| {
            at.map(|i| record.values[i].trim())
                .filter(|v| !v.is_empty())
        };
        let serial = match normalise_serial(&record.values[serial_at]) {
            Ok(s) => s,
            Err(reason) => {
                errors.push(err(line, reason));
                continue;
            }
        };
        let text_value = |what: &str, v: Option<&str>, default: Option<&String>| {
            let v = v
                .map(str::to_owned)
                .or_else(|| default.map(|d| d.trim().to_owned()))
                .unwrap_or_default();
            if v.chars().count() > MAX_VALUE || v.chars().any(char::is_control) {
                Err(format!(
                    "the {what} {:?} is longer than {MAX_VALUE} characters or has control characters",
                    shorten(&v)
                ))
            } else {
                Ok(v)
            }
        };
        let model = match text_value("model", get(model_at), defaults.model.as_ref()) {
            Ok(m) if m.is_empty() => {
                errors.push(err(
                    line,
                    "no model: add a model column or give a model for the whole file".into(),
                ));
                continue;
            }
            Ok(m) => m,
            Err(reason) => {
                errors.push(err(line, reason));
                continue;
            }
        };
        let batch = match text_value("batch", get(batch_at), defaults.batch.as_ref()) {
            Ok(b) => b,
            Err(reason) => {
                errors.push(err(line, reason));
                continue;
            }
        };
        let location = match get(location_at) {
            Some(l) => match location_of(l) {
                Ok(id) => Some(id),
                Err(reason) => {
                    errors.push(err(line, reason));
                    continue;
                }
            },
            None => default_location.clone(),
        };
        if cards.len() == MAX_IMPORT_CARDS {
            errors.push(err(
                line,
                format!("more than {MAX_IMPORT_CARDS} cards: split the file"),
            ));
            break;
        }
        cards.push(StockCard {
            serial,
            model,
            batch,
            state: StockState::InStock,
            location,
            imported_at: now,
            updated_at: now,
        });
    }
    if errors.is_empty() {
        Ok(cards)
    } else {
        Err(errors)
    }
}

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
    Ok(svc.store.stock_cards(filter).await?)
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
    if let Some(name) = location.map(str::trim).filter(|l| !l.is_empty()) {
        let stations = svc.store.stations().await?;
        card.location = Some(
            stations
                .iter()
                .find(|s| s.id.as_str() == name || s.name.eq_ignore_ascii_case(name))
                .map(|s| s.id.clone())
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
pub async fn admit(
    svc: &Services,
    job: &IssuanceJob,
    policy: &DevicePolicy,
    serial: &str,
) -> Result<(), CoreError> {
    if !policy.require_stock {
        return Ok(());
    }
    let serial = normalise_serial(serial).unwrap_or_else(|_| serial.to_owned());
    let card = svc.store.stock_card(&serial).await?;
    let Some(message) = refusal(&serial, card.as_ref()) else {
        return Ok(());
    };
    svc.audit(
        audit::STOCK_CARD_REFUSED,
        AuditContext::of_job(job),
        json!({"serial": serial, "policy": policy.id,
               "state": card.as_ref().map(|c| c.state.as_str())}),
    )
    .await?;
    Err(CoreError::NotInStock(message))
}

/// At the end of production: a card in stock becomes `Issued` at the job's station, in the same
/// unit of work that makes its device `Pending`. A card not in stock (or in a state it cannot be
/// issued from, under a policy that does not require stock) is left as it is.
pub async fn mark_issued(
    svc: &Services,
    changes: &mut Changes,
    job: &IssuanceJob,
    serial: &str,
) -> Result<(), CoreError> {
    let serial = normalise_serial(serial).unwrap_or_else(|_| serial.to_owned());
    let Some(mut card) = svc.store.stock_card(&serial).await? else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use StockCommand as C;
    use StockState as S;

    #[test]
    fn transitions_follow_the_table() {
        let allowed = [
            (S::InStock, C::Issue, S::Issued),
            (S::Issued, C::Return, S::Returned),
            (S::Returned, C::Restock, S::InStock),
            (S::InStock, C::Destroy, S::Destroyed),
            (S::Issued, C::Destroy, S::Destroyed),
            (S::Returned, C::Destroy, S::Destroyed),
            (S::InStock, C::Move, S::InStock),
            (S::Returned, C::Move, S::Returned),
        ];
        for (from, command, to) in allowed {
            assert_eq!(transition(from, command), Ok(to), "{from:?} {command:?}");
        }
        // Every other pair is refused; Destroyed is final.
        for from in S::ALL {
            for command in [C::Issue, C::Return, C::Restock, C::Destroy, C::Move] {
                if allowed.iter().any(|(f, c, _)| *f == from && *c == command) {
                    continue;
                }
                assert!(
                    transition(from, command).is_err(),
                    "{from:?} {command:?} must be refused"
                );
            }
        }
        assert_eq!(
            transition(S::Destroyed, C::Restock)
                .unwrap_err()
                .to_string(),
            "a card that is destroyed cannot be restocked"
        );
    }

    #[test]
    fn an_administrator_never_sets_issued() {
        assert_eq!(command_for(S::Issued, S::Returned).unwrap(), C::Return);
        assert_eq!(command_for(S::InStock, S::InStock).unwrap(), C::Move);
        assert_eq!(command_for(S::Returned, S::InStock).unwrap(), C::Restock);
        assert!(command_for(S::InStock, S::Issued).is_err());
    }

    #[test]
    fn serials_are_normalised_like_the_card_reports_them() {
        assert_eq!(normalise_serial(" 0012345678 ").unwrap(), "12345678");
        assert_eq!(normalise_serial("000").unwrap(), "0");
        assert_eq!(normalise_serial("AbCd01").unwrap(), "abcd01");
        assert!(normalise_serial("").is_err());
        assert!(normalise_serial("12 34").is_err());
        assert!(normalise_serial("1234-5").is_err());
        assert!(normalise_serial(&"1".repeat(33)).is_err());
        assert!(normalise_serial("１２３").is_err(), "full-width digits");
    }

    /// A record as (line, values), or a bad one as (line, reason).
    type Read = Result<(usize, Vec<String>), (usize, String)>;

    fn values(text: &str) -> Vec<Read> {
        csv_records(text)
            .into_iter()
            .map(|r| match r {
                Ok(r) => Ok((r.line, r.values)),
                Err(e) => Err((e.line, e.reason)),
            })
            .collect()
    }

    fn ok(line: usize, v: &[&str]) -> Read {
        Ok((line, v.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn csv_reads_quotes_commas_and_line_ends() {
        let text = "\u{feff}serial,model\r\n1,\"YubiKey 5, NFC\"\n\n\"2\",\"say \"\"hi\"\"\"\r\n3,\"two\nlines\"\n4,";
        assert_eq!(
            values(text),
            vec![
                ok(1, &["serial", "model"]),
                ok(2, &["1", "YubiKey 5, NFC"]),
                ok(4, &["2", "say \"hi\""]),
                ok(5, &["3", "two\nlines"]),
                ok(7, &["4", ""]),
            ]
        );
        assert_eq!(values(""), vec![]);
        assert_eq!(values("\n\r\n  \n"), vec![]);
    }

    #[test]
    fn csv_reports_bad_quoting_and_goes_on() {
        let got = values("a,b\n1,x\"y\n2,\"z\"w\n3,ok\n4,\"open");
        assert_eq!(got[0], ok(1, &["a", "b"]));
        assert!(matches!(&got[1], Err((2, r)) if r.contains("quote inside")));
        assert!(matches!(&got[2], Err((3, r)) if r.contains("follows a closing quote")));
        assert_eq!(got[3], ok(4, &["3", "ok"]));
        assert!(matches!(&got[4], Err((5, r)) if r.contains("not closed")));
        assert_eq!(got.len(), 5);
        // Hostile bytes: NUL, lone CR, a quote-only line; nothing panics.
        for text in [
            "\0,\0",
            "\r\r\r",
            "\"",
            "\"\"",
            ",,,,",
            "\"\"\"",
            "a\u{202e}b,c",
        ] {
            let _ = csv_records(text);
        }
    }

    fn station(id: &str, name: &str) -> Station {
        Station {
            id: StationId::new(id),
            name: name.into(),
            enabled: true,
            printers: vec![],
            access: None,
        }
    }

    #[test]
    fn an_import_fills_missing_columns_from_the_defaults() {
        let stations = [
            station("local", "This workstation"),
            station("hq", "HQ desk"),
        ];
        let defaults = StockDefaults {
            model: Some("YubiKey 5 NFC".into()),
            batch: Some("B-7".into()),
            location: Some("this workstation".into()),
        };
        let text = "Serial,Batch,Location,Vendor note\n0012345678,,,x\n23456789,B-8,HQ desk,\n";
        let cards = parse_import(text, &defaults, &stations, Timestamp(5)).unwrap();
        assert_eq!(cards.len(), 2);
        assert_eq!(cards[0].serial, "12345678");
        assert_eq!(cards[0].model, "YubiKey 5 NFC");
        assert_eq!(cards[0].batch, "B-7");
        assert_eq!(cards[0].location, Some(StationId::new("local")));
        assert_eq!(cards[0].state, S::InStock);
        assert_eq!(cards[1].batch, "B-8");
        assert_eq!(cards[1].location, Some(StationId::new("hq")));
    }

    #[test]
    fn an_import_reports_every_bad_line() {
        let text = "serial,model\n1,A\n,A\n12 34,A\n5\n6,\n7,\"A\n8,A";
        let errors = parse_import(text, &StockDefaults::default(), &[], Timestamp(0)).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7], "{errors:?}");
        assert!(errors[0].reason.contains("empty"));
        assert!(errors[2].reason.contains("1 values"));
        assert!(errors[3].reason.contains("no model"));

        let no_header = parse_import("", &StockDefaults::default(), &[], Timestamp(0));
        assert!(no_header.unwrap_err()[0].reason.contains("header"));
        let no_serial = parse_import("model\nA", &StockDefaults::default(), &[], Timestamp(0));
        assert!(no_serial.unwrap_err()[0]
            .reason
            .contains("no serial column"));
        let twice = parse_import(
            "serial,SERIAL\n1,2",
            &StockDefaults::default(),
            &[],
            Timestamp(0),
        );
        assert!(twice.unwrap_err()[0].reason.contains("named twice"));
        let unknown = parse_import(
            "serial,model,location\n1,A,Nowhere",
            &StockDefaults::default(),
            &[],
            Timestamp(0),
        );
        assert!(unknown.unwrap_err()[0].reason.contains("no station"));
        let long = format!("serial,model\n1,{}", "m".repeat(65));
        assert!(parse_import(&long, &StockDefaults::default(), &[], Timestamp(0)).is_err());
        let huge = "x".repeat(MAX_IMPORT_BYTES + 1);
        assert!(parse_import(&huge, &StockDefaults::default(), &[], Timestamp(0)).is_err());
    }

    #[test]
    fn a_card_out_of_stock_is_refused_with_its_state() {
        assert_eq!(
            refusal("12345678", None).unwrap(),
            "card 12345678 is not in stock"
        );
        let mut card = StockCard {
            serial: "123".into(),
            model: "m".into(),
            batch: "b".into(),
            state: S::InStock,
            location: None,
            imported_at: Timestamp(0),
            updated_at: Timestamp(0),
        };
        assert_eq!(refusal("123", Some(&card)), None);
        card.state = S::Destroyed;
        assert_eq!(
            refusal("123", Some(&card)).unwrap(),
            "card 123 is destroyed, not in stock"
        );
        card.state = S::Returned;
        assert!(refusal("123", Some(&card)).is_some());
    }

    #[test]
    fn the_summary_has_one_row_per_model_and_location() {
        let count = |model: &str, location: Option<&str>, state, count| StockCount {
            model: model.into(),
            location: location.map(StationId::new),
            state,
            count,
        };
        let rows = summarise(vec![
            count("B", None, S::InStock, 2),
            count("A", Some("hq"), S::InStock, 5),
            count("A", Some("hq"), S::Issued, 3),
            count("A", Some("hq"), S::Destroyed, 1),
        ]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].model, "A");
        assert_eq!(
            (rows[0].in_stock, rows[0].issued, rows[0].destroyed),
            (5, 3, 1)
        );
        assert_eq!(rows[0].total(), 9);
        assert_eq!(rows[1].in_stock, 2);
    }
}

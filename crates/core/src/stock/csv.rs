//! Reading a vendor's serial list: a small CSV reader (RFC 4180) and the import's parse into
//! stock cards, which reports every bad line by number instead of stopping at the first. Pure:
//! no store, no clock; hostile input (quotes, sizes, odd bytes) ends in a line error.

use crate::ids::*;
use crate::model::*;
use serde::Serialize;

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

/// The station a location names, by its id or (in any case) its name: how an import, a change
/// and a filter name a location.
pub fn station_named(stations: &[Station], name: &str) -> Option<StationId> {
    stations
        .iter()
        .find(|s| s.id.as_str() == name || s.name.eq_ignore_ascii_case(name))
        .map(|s| s.id.clone())
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

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
        station_named(stations, name)
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

//! The card printers of the in-process station, built from its `Station` record: `Simulated` is
//! the demo's simulated card printer, `Ipp { uri }` an [`IppPrinter`], `Spool { dir }` a
//! [`SpoolPrinter`] writing each card's PDF and PNGs into a folder. Administrators add IPP and
//! spool printers (CLI `tessera printer add --uri ipp://... | spool:/folder`, portal Printers
//! page); the station picks them up at once.

use crate::demo;
use crate::wiring::Tessera;
use serde_json::{json, Value};
use std::sync::Arc;
use tessera_core::audit;
use tessera_core::ids::StationId;
use tessera_core::issuance::{Actor, AuditContext};
use tessera_core::model::{Permission, PrinterConfig, PrinterKind, Station};
use tessera_core::ports::{CardPrinter, PrintReceipt, PrinterInfo, Store};
use tessera_core::CoreError;
use tessera_print::{IppCapabilities, IppPrinter, SpoolPrinter};
use tessera_station::SimulatedCardPrinter;

/// The printers a station record names. A printer that cannot be built (an unusable URI or
/// folder name) is left out with a warning, so one bad entry does not take the others down. A
/// spool folder that is missing or unwritable is kept: its state says so, and it prints once the
/// folder is fixed.
pub fn build(
    station: &Station,
    demo_printer: &Arc<SimulatedCardPrinter>,
) -> Vec<Arc<dyn CardPrinter>> {
    let mut out: Vec<Arc<dyn CardPrinter>> = Vec::new();
    for config in &station.printers {
        match &config.kind {
            // One simulated printer per process: its virtual cards live in the data folder.
            PrinterKind::Simulated if config.name == demo_printer.name => {
                out.push(demo_printer.clone());
            }
            PrinterKind::Ipp { uri, ca_file } => {
                match ipp_printer(&config.name, uri, ca_file, config.encoder_reader.clone()) {
                    Ok(p) => out.push(Arc::new(p)),
                    Err(e) => {
                        tracing::warn!(printer = %config.name, error = %e, "printer left out")
                    }
                }
            }
            PrinterKind::Spool { dir } => {
                match SpoolPrinter::new(&config.name, dir, config.encoder_reader.clone()) {
                    Ok(p) => out.push(Arc::new(p)),
                    Err(e) => {
                        tracing::warn!(printer = %config.name, error = %e, "printer left out")
                    }
                }
            }
            other => {
                tracing::warn!(printer = %config.name, kind = ?other, "this station cannot drive this printer yet")
            }
        }
    }
    out
}

/// An IPP printer, with the CA file it trusts for `ipps://`.
fn ipp_printer(
    name: &str,
    uri: &str,
    ca_file: &Option<String>,
    encoder_reader: Option<String>,
) -> Result<IppPrinter, tessera_core::ports::PortError> {
    let printer = IppPrinter::new(name, uri, encoder_reader)?;
    match ca_file {
        Some(path) => printer.with_ca_file(path),
        None => Ok(printer),
    }
}

/// The in-process station's record (the demo station until another is configured).
pub async fn station_record(t: &Tessera) -> Result<Station, CoreError> {
    Ok(t.store
        .stations()
        .await?
        .into_iter()
        .find(|s| s.id.as_str() == demo::STATION_ID)
        .unwrap_or_else(demo::demo_station))
}

/// Rebuilds the station's printers from its record.
pub async fn reload(t: &Tessera) -> Result<(), CoreError> {
    let station = station_record(t).await?;
    t.station.set_printers(build(&station, &t.demo_printer));
    Ok(())
}

/// Adds a printer to the station, or changes the one of that name: `ipp://`/`http://` URIs are
/// IPP printers, `ipps://`/`https://` IPP over TLS (trusting the public roots and the CA
/// certificates of `ca_file`, a PEM file on the server), `spool:/absolute/folder` (or just
/// `/absolute/folder`) a spool folder, which must exist and be writable by this process now.
pub async fn add(
    t: &Tessera,
    actor: &Actor,
    name: &str,
    uri: &str,
    encoder_reader: Option<String>,
    ca_file: Option<String>,
) -> Result<PrinterConfig, CoreError> {
    actor.require(Permission::ManageStations, "manage stations")?;
    let name = name.trim();
    if name.is_empty() {
        return Err(CoreError::Invalid("give the printer a name".into()));
    }
    if name == demo::PRINTER {
        return Err(CoreError::Invalid(format!(
            "{name:?} is the demo's simulated printer; choose another name"
        )));
    }
    let uri = uri.trim();
    // Checks the URI or folder now rather than when a card is waiting.
    let kind = if uri.starts_with(tessera_print::spool::SCHEME) || uri.starts_with('/') {
        let printer =
            SpoolPrinter::new(name, uri, None).map_err(|e| CoreError::Invalid(e.message))?;
        printer.check().map_err(|e| CoreError::Invalid(e.message))?;
        PrinterKind::Spool {
            dir: printer.dir().display().to_string(),
        }
    } else {
        let ca_file = ca_file
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty());
        ipp_printer(name, uri, &ca_file, None).map_err(|e| CoreError::Invalid(e.message))?;
        PrinterKind::Ipp {
            uri: uri.to_owned(),
            ca_file,
        }
    };
    let encoder_reader = encoder_reader
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    let config = PrinterConfig {
        name: name.to_owned(),
        kind,
        encoder_reader,
    };
    let (kind, target, ca) = match &config.kind {
        PrinterKind::Spool { dir } => ("spool", dir.as_str(), None),
        PrinterKind::Ipp { ca_file, .. } => ("ipp", uri, ca_file.clone()),
        PrinterKind::Simulated => ("simulated", "", None),
    };
    let mut station = station_record(t).await?;
    station.printers.retain(|p| p.name != config.name);
    station.printers.push(config.clone());
    t.store.put_station(&station).await?;
    t.services
        .audit(
            audit::STATION_CHANGED,
            AuditContext {
                operator: Some(&actor.operator),
                ..Default::default()
            },
            json!({"station": station.id, "printer": config.name, "kind": kind, "uri": target, "ca_file": ca, "encoder_reader": config.encoder_reader}),
        )
        .await?;
    reload(t).await?;
    Ok(config)
}

/// One printer as the Printers page shows it: configuration, live state, what it can do.
#[derive(Clone, Debug)]
pub struct PrinterView {
    pub config: PrinterConfig,
    pub info: PrinterInfo,
    /// IPP printers only, when they answered.
    pub capabilities: Option<IppCapabilities>,
}

impl PrinterView {
    pub fn uri(&self) -> &str {
        match &self.config.kind {
            PrinterKind::Ipp { uri, .. } => uri,
            PrinterKind::Spool { dir } => dir,
            PrinterKind::Simulated => "",
        }
    }

    pub fn to_json(&self) -> Value {
        let caps = self.capabilities.as_ref().map(|c| {
            json!({
                "make_and_model": c.make_and_model,
                "document_formats": c.document_formats,
                "media": c.media,
                "card_media": c.card_media,
                "custom_sizes": c.custom_sizes,
                "sides": c.sides,
                "printer_state": c.state.as_str(),
                "printer_state_reasons": c.state_reasons,
                "accepting_jobs": c.accepting_jobs,
            })
        });
        json!({
            "name": self.config.name,
            "kind": self.info.kind,
            "uri": self.uri(),
            "ca_file": match &self.config.kind {
                PrinterKind::Ipp { ca_file, .. } => ca_file.as_deref(),
                _ => None,
            },
            "encoder_reader": self.config.encoder_reader,
            "state": self.info.state,
            "capabilities": caps,
        })
    }
}

/// Every printer of the station with its live state (IPP printers are asked in turn).
pub async fn overview(t: &Tessera) -> Result<Vec<PrinterView>, CoreError> {
    let station = station_record(t).await?;
    let mut out = Vec::new();
    for config in station.printers {
        let view = match &config.kind {
            PrinterKind::Ipp { uri, ca_file } => {
                match ipp_printer(&config.name, uri, ca_file, config.encoder_reader.clone()) {
                    Ok(p) => {
                        let capabilities = p.capabilities().await;
                        let state = match &capabilities {
                            Ok(c) => c.describe(),
                            Err(e) => e.message.clone(),
                        };
                        PrinterView {
                            info: PrinterInfo {
                                name: config.name.clone(),
                                kind: "ipp".into(),
                                encoder_reader: config.encoder_reader.clone(),
                                state,
                            },
                            capabilities: capabilities.ok(),
                            config,
                        }
                    }
                    Err(e) => PrinterView {
                        info: PrinterInfo {
                            name: config.name.clone(),
                            kind: "ipp".into(),
                            encoder_reader: config.encoder_reader.clone(),
                            state: e.message,
                        },
                        capabilities: None,
                        config,
                    },
                }
            }
            PrinterKind::Spool { dir } => {
                let state = match SpoolPrinter::new(&config.name, dir, None) {
                    Ok(p) => p.status().await.state,
                    Err(e) => e.message,
                };
                PrinterView {
                    info: PrinterInfo {
                        name: config.name.clone(),
                        kind: "spool".into(),
                        encoder_reader: config.encoder_reader.clone(),
                        state,
                    },
                    capabilities: None,
                    config,
                }
            }
            _ => {
                let info = match t.station.printer(&config.name) {
                    Ok(p) => p.status().await,
                    Err(e) => PrinterInfo {
                        name: config.name.clone(),
                        kind: "unsupported".into(),
                        encoder_reader: config.encoder_reader.clone(),
                        state: e.message,
                    },
                };
                PrinterView {
                    config,
                    info,
                    capabilities: None,
                }
            }
        };
        out.push(view);
    }
    Ok(out)
}

/// Prints the test card on a printer of the station.
pub async fn test_page(t: &Tessera, actor: &Actor, name: &str) -> Result<PrintReceipt, CoreError> {
    actor.require(Permission::ManageStations, "print test pages")?;
    let printer = t.station.printer(name).map_err(CoreError::Station)?;
    let station = station_record(t).await?;
    let uri = station
        .printers
        .iter()
        .find(|p| p.name == name)
        .map(|p| match &p.kind {
            PrinterKind::Ipp { uri, .. } => uri.clone(),
            PrinterKind::Spool { dir } => format!("{}{dir}", tessera_print::spool::SCHEME),
            _ => p.name.clone(),
        })
        .unwrap_or_default();
    let at = t.services.clock.now().date_time();
    tessera_print::ipp::test_page(printer.as_ref(), &uri, &at)
        .await
        .map_err(CoreError::Print)
}

/// The station id the in-process printers belong to.
pub fn station_id() -> StationId {
    StationId::new(demo::STATION_ID)
}

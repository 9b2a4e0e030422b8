//! The card printers configured for a station, in its `Station` record: `Simulated` is the
//! demo's simulated card printer, `Ipp { uri }` an [`IppPrinter`], `Spool { dir }` a
//! [`SpoolPrinter`] writing each card's PDF and PNGs into a folder. Administrators add and remove
//! IPP and spool printers (CLI `tessera printer add --uri ipp://... | spool:/folder`, portal
//! Printers page). The in-process station builds them at once; a remote station gets them over
//! its connection within seconds and drives them on its workstation, beside the printers of its
//! own command line.

use crate::demo;
use crate::wiring::Tessera;
use serde_json::{json, Value};
use std::sync::Arc;
use tessera_core::audit;
use tessera_core::changes::{Change, Changes};
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
        // One simulated printer per process: its virtual cards live in the data folder.
        if config.kind == PrinterKind::Simulated && config.name == demo_printer.name {
            out.push(demo_printer.clone());
            continue;
        }
        let ca_file = match &config.kind {
            PrinterKind::Ipp { ca_file, .. } => ca_file.clone(),
            _ => None,
        };
        match printer_of(config, ca_file.as_deref()) {
            Ok(p) => out.push(p),
            Err(e) => tracing::warn!(printer = %config.name, error = %e, "printer left out"),
        }
    }
    out
}

/// The IPP or spool printer a configuration names; `ipps_ca_file` is the PEM file of CA
/// certificates trusted for `ipps://` (on the machine that drives the printer). A spool folder
/// is not checked here: its state says when it is missing.
pub fn printer_of(
    config: &PrinterConfig,
    ipps_ca_file: Option<&str>,
) -> Result<Arc<dyn CardPrinter>, tessera_core::ports::PortError> {
    let encoder = config.encoder_reader.clone();
    match &config.kind {
        PrinterKind::Ipp { uri, .. } => {
            // A station's one CA file is for its TLS printers; a plain ipp:// one ignores it.
            let tls = uri.starts_with("ipps:") || uri.starts_with("https:");
            let ca_file = ipps_ca_file.filter(|_| tls).map(str::to_owned);
            Ok(Arc::new(ipp_printer(&config.name, uri, &ca_file, encoder)?))
        }
        PrinterKind::Spool { dir } => Ok(Arc::new(SpoolPrinter::new(&config.name, dir, encoder)?)),
        PrinterKind::Simulated => Err(tessera_core::ports::PortError::new(
            "a simulated printer belongs to the process that simulates it: start a station \
             with --simulated-printer",
        )),
    }
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

/// A station's record; the in-process station's is the demo station until one is stored.
pub async fn station_record(t: &Tessera, id: &StationId) -> Result<Station, CoreError> {
    let found = t.store.stations().await?.into_iter().find(|s| s.id == *id);
    match found {
        Some(station) => Ok(station),
        None if *id == station_id() => Ok(demo::demo_station()),
        None => Err(CoreError::NotFound(format!("station {id}"))),
    }
}

/// The station a name or id means (`tessera printer add --station`); none: the in-process one.
pub async fn station_named(t: &Tessera, name: Option<&str>) -> Result<StationId, CoreError> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(station_id());
    };
    t.store
        .stations()
        .await?
        .into_iter()
        .find(|s| s.id.as_str() == name || s.name == name)
        .map(|s| s.id)
        .ok_or_else(|| CoreError::NotFound(format!("station {name:?}")))
}

fn in_process(id: &StationId) -> bool {
    *id == station_id()
}

/// Rebuilds the in-process station's printers from its record.
pub async fn reload(t: &Tessera) -> Result<(), CoreError> {
    let station = station_record(t, &station_id()).await?;
    t.station.set_printers(build(&station, &t.demo_printer));
    Ok(())
}

/// Adds a printer to the station, or changes the one of that name: `ipp://`/`http://` URIs are
/// IPP printers, `ipps://`/`https://` IPP over TLS (trusting the public roots and the CA
/// certificates of `ca_file`, a PEM file on the server), `spool:/absolute/folder` (or just
/// `/absolute/folder`) a spool folder, which must exist and be writable by this process now.
///
/// On a remote station the URI or folder is only checked for its form: the folder and the
/// printer are on the workstation, which reports their state once it has them. `ipps://`
/// printers there are checked against the station's own `--printer-ca-file`, so a CA file (a
/// path on the server) is refused.
#[allow(clippy::too_many_arguments)]
pub async fn add(
    t: &Tessera,
    actor: &Actor,
    station_id: &StationId,
    name: &str,
    uri: &str,
    encoder_reader: Option<String>,
    ca_file: Option<String>,
) -> Result<PrinterConfig, CoreError> {
    actor.require(Permission::ManageStations, "manage stations")?;
    let mut station = station_record(t, station_id).await?;
    let local = in_process(station_id);
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
        if local {
            printer.check().map_err(|e| CoreError::Invalid(e.message))?;
        }
        PrinterKind::Spool {
            dir: printer.dir().display().to_string(),
        }
    } else {
        let ca_file = ca_file
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty());
        if ca_file.is_some() && !local {
            return Err(CoreError::Invalid(format!(
                "the station {} checks ipps:// printers against its own CA file: start it with \
                 --printer-ca-file, and leave the CA file here empty",
                station.name
            )));
        }
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
    station.printers.retain(|p| p.name != config.name);
    station.printers.push(config.clone());
    let details = json!({"station": station.id, "printer": config.name, "kind": kind, "uri": target, "ca_file": ca, "encoder_reader": config.encoder_reader});
    save_printers(t, actor, &station, details).await?;
    Ok(config)
}

/// Stores a station's changed printers, audits the change and puts them to work: at once in
/// this process, within the connection's next look for a remote station.
async fn save_printers(
    t: &Tessera,
    actor: &Actor,
    station: &Station,
    details: Value,
) -> Result<(), CoreError> {
    let ctx = AuditContext {
        operator: Some(&actor.operator),
        ..Default::default()
    };
    let mut changes = Changes::new();
    changes.push(Change::PutStation(station.clone()));
    changes.audit(t.services.event(audit::STATION_CHANGED, ctx, details));
    t.services.commit(changes).await?;
    if in_process(&station.id) {
        reload(t).await?;
    }
    Ok(())
}

/// Takes a printer off a station's configuration. A printer of a remote station's command line
/// is not in it: it goes when the station is started without it.
pub async fn remove(
    t: &Tessera,
    actor: &Actor,
    station_id: &StationId,
    name: &str,
) -> Result<(), CoreError> {
    actor.require(Permission::ManageStations, "manage stations")?;
    let mut station = station_record(t, station_id).await?;
    let before = station.printers.len();
    station.printers.retain(|p| p.name != name);
    if station.printers.len() == before {
        return Err(CoreError::NotFound(format!(
            "printer {name:?} in the configuration of {}",
            station.name
        )));
    }
    let details = json!({"station": station.id, "printer": name, "removed": true});
    save_printers(t, actor, &station, details).await
}

/// One printer as the Printers page shows it: configuration, live state, what it can do.
#[derive(Clone, Debug)]
pub struct PrinterView {
    pub config: PrinterConfig,
    pub info: PrinterInfo,
    /// IPP printers only, when they answered.
    pub capabilities: Option<IppCapabilities>,
    /// In the station's configuration here; false for a printer of a remote station's own
    /// command line, which the server only sees.
    pub configured: bool,
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

/// Every printer configured for the station with its live state: the in-process station asks
/// IPP printers in turn; a remote station's printers are as the station last reported them.
pub async fn overview(t: &Tessera, station_id: &StationId) -> Result<Vec<PrinterView>, CoreError> {
    let station = station_record(t, station_id).await?;
    if !in_process(station_id) {
        return Ok(remote_overview(t, station).await);
    }
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
                            configured: true,
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
                        configured: true,
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
                    configured: true,
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
                    configured: true,
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

/// A remote station's configured printers with the state the station last reported, and the
/// printers of its own command line (which it reports but the server does not configure).
async fn remote_overview(t: &Tessera, station: Station) -> Vec<PrinterView> {
    let inventory = t.hub.inventory(&station.id).await;
    // A configured printer the station has not reported: not connected, or just sent to it.
    let unreported = match &inventory {
        Some(_) => "Sent to the station; waiting for it to report the printer".to_owned(),
        None => format!("The station {} is not connected", station.name),
    };
    let reported = inventory.map(|i| i.printers).unwrap_or_default();
    let mut out: Vec<PrinterView> = station
        .printers
        .into_iter()
        .map(|config| {
            let info = reported
                .iter()
                .find(|p| p.name == config.name)
                .cloned()
                .unwrap_or_else(|| PrinterInfo {
                    name: config.name.clone(),
                    kind: kind_of(&config.kind).into(),
                    encoder_reader: config.encoder_reader.clone(),
                    state: unreported.clone(),
                });
            PrinterView {
                configured: true,
                config,
                info,
                capabilities: None,
            }
        })
        .collect();
    for info in reported {
        if !out.iter().any(|v| v.config.name == info.name) {
            out.push(PrinterView {
                configured: false,
                config: PrinterConfig {
                    name: info.name.clone(),
                    kind: PrinterKind::Simulated,
                    encoder_reader: info.encoder_reader.clone(),
                },
                capabilities: None,
                info: PrinterInfo {
                    state: format!("{} (from the command line of the station)", info.state),
                    ..info
                },
            });
        }
    }
    out
}

fn kind_of(kind: &PrinterKind) -> &'static str {
    match kind {
        PrinterKind::Ipp { .. } => "ipp",
        PrinterKind::Spool { .. } => "spool",
        PrinterKind::Simulated => "simulated",
    }
}

/// Prints the test card on a printer of the station, wherever the station is.
pub async fn test_page(
    t: &Tessera,
    actor: &Actor,
    station_id: &StationId,
    name: &str,
) -> Result<PrintReceipt, CoreError> {
    actor.require(Permission::ManageStations, "print test pages")?;
    let station = station_record(t, station_id).await?;
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
    if in_process(station_id) {
        let printer = t.station.printer(name).map_err(CoreError::Station)?;
        return tessera_print::ipp::test_page(printer.as_ref(), &uri, &at)
            .await
            .map_err(CoreError::Print);
    }
    let port = t.services.stations.station(station_id).ok_or_else(|| {
        CoreError::Invalid(format!(
            "the station {} is not connected to this server",
            station.name
        ))
    })?;
    let card = tessera_print::ipp::draw_test_card(name, &uri, &at)
        .await
        .map_err(CoreError::Print)?;
    port.print(name, tessera_print::ipp::TEST_JOB, &card)
        .await
        .map_err(CoreError::Print)
}

/// The station id the in-process printers belong to.
pub fn station_id() -> StationId {
    StationId::new(demo::STATION_ID)
}

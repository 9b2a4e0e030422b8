//! `tessera station`: the process on an operator's workstation. It enrols once with a token, then
//! connects to the server with its credential and serves the printers and readers of this
//! machine: IPP printers, PC/SC readers, or the simulated card printer.

use crate::wiring::{PivVirtualCards, Readers};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tessera_core::model::{PrinterConfig, PrinterKind};
use tessera_core::ports::CardPrinter;
use tessera_core::secret::StationSecret;
use tessera_print::SpoolPrinter;
use tessera_station::agent::{self, Agent, AgentOptions, PrinterSetup};
use tessera_station::config::StationConfig;
use tessera_station::tls::ServerTrust;
use tessera_station::{LocalStation, SimulatedCardPrinter};

/// The simulated printer of a station started with `--simulated-printer`.
pub const SIMULATED_PRINTER: &str = "Simulated Card Printer";
pub const SIMULATED_ENCODER: &str = "Simulated Card Printer Encoder";

#[derive(Clone, Debug, Default)]
pub struct StationArgs {
    /// The server's URL: needed to enrol; afterwards None means the one in `station.json`.
    pub server: Option<String>,
    /// A PEM file of CA certificates trusted for an `https://` server's certificate, beside the
    /// public roots. Remembered in `station.json`; None means the remembered one.
    pub ca_file: Option<PathBuf>,
    /// The one-time enrolment token, on the first start.
    pub token: Option<StationSecret>,
    pub data_dir: PathBuf,
    pub simulated_printer: bool,
    /// Printers: name and IPP URI, or `spool:/folder`.
    pub printers: Vec<(String, String)>,
    /// CA certificates (PEM) that `ipps://` printers' certificates are checked against.
    pub printer_ca_file: Option<PathBuf>,
    /// Printer name -> the PC/SC reader built into it.
    pub encoders: Vec<(String, String)>,
    pub readers: Readers,
    pub injected_delay: Duration,
    pub exit_after_apdus: Option<u64>,
    pub drop_after_apdus: Option<u64>,
}

/// What the station trusts for the server's certificate: the public roots, and the CA file.
pub fn server_trust(ca_file: Option<&Path>) -> Result<ServerTrust, String> {
    match ca_file {
        Some(path) => ServerTrust::with_ca_file(path),
        None => Ok(ServerTrust::public_roots()),
    }
}

/// Enrols when a token is given; returns the stored configuration. A server URL or CA file
/// given on a later start replaces the remembered one, and is remembered in turn.
pub async fn enrol_or_load(args: &StationArgs) -> Result<StationConfig, String> {
    let ca_file = match &args.ca_file {
        Some(path) => Some(
            std::path::absolute(path)
                .map_err(|e| format!("the CA file {} is not usable: {e}", path.display()))?,
        ),
        None => None,
    };
    if let Some(token) = &args.token {
        let server = args.server.as_deref().ok_or(
            "enrolment needs --server: the address of the Tessera server that created the token",
        )?;
        let trust = server_trust(ca_file.as_deref())?;
        let answer = agent::enrol(server, token, &trust)
            .await
            .map_err(|e| e.to_string())?;
        let config = StationConfig {
            server: server.to_owned(),
            station_id: answer.station_id,
            station_name: answer.station_name,
            credential: answer.credential,
            ca_file,
        };
        config.save(&args.data_dir)?;
        tracing::info!(station = %config.station_name, "enrolled; the credential is in the data folder");
        return Ok(config);
    }
    let mut config = StationConfig::load(&args.data_dir)?.ok_or_else(|| {
        format!(
            "this station is not enrolled yet ({} has no station.json): start it once with \
             --server, --token and the enrolment token an administrator created in the portal",
            args.data_dir.display()
        )
    })?;
    let server_changed = args.server.as_ref().is_some_and(|s| *s != config.server);
    let ca_changed = ca_file.is_some() && ca_file != config.ca_file;
    if server_changed || ca_changed {
        if let Some(server) = &args.server {
            config.server = server.clone();
        }
        if ca_file.is_some() {
            config.ca_file = ca_file;
        }
        config.save(&args.data_dir)?;
    }
    Ok(config)
}

/// The printers and readers of this workstation.
pub fn local_station(args: &StationArgs) -> Result<LocalStation, String> {
    let encoder_of = |name: &str| {
        args.encoders
            .iter()
            .find(|(p, _)| p == name)
            .map(|(_, r)| r.clone())
    };
    let mut printers: Vec<Arc<dyn CardPrinter>> = Vec::new();
    if args.simulated_printer {
        printers.push(Arc::new(SimulatedCardPrinter::new(
            SIMULATED_PRINTER,
            SIMULATED_ENCODER,
            args.data_dir.join("cards"),
            args.data_dir.join("printed"),
            Arc::new(PivVirtualCards::new()),
        )));
    }
    let ca_file = args.printer_ca_file.as_ref().map(|p| p.to_string_lossy());
    for (name, uri) in &args.printers {
        let unusable =
            |e: tessera_core::ports::PortError| format!("the printer {name:?} is not usable: {e}");
        // `spool:/folder` (or an absolute path) writes each card to a folder; anything else is IPP.
        let spool = uri.starts_with("spool:") || uri.starts_with('/');
        if spool {
            // Given on the command line, a missing folder stops the start rather than a card.
            SpoolPrinter::new(name, uri, None)
                .and_then(|s| s.check())
                .map_err(unusable)?;
        }
        let config = PrinterConfig {
            name: name.clone(),
            kind: if spool {
                PrinterKind::Spool { dir: uri.clone() }
            } else {
                PrinterKind::Ipp {
                    uri: uri.clone(),
                    ca_file: None,
                }
            },
            encoder_reader: encoder_of(name),
        };
        printers.push(crate::printers::printer_of(&config, ca_file.as_deref()).map_err(unusable)?);
    }
    let mut station = LocalStation::new(printers);
    if args.readers == Readers::Pcsc {
        station = station.with_readers(crate::wiring::pcsc_readers().map_err(|e| e.0)?);
    }
    Ok(station)
}

/// Runs the station until the server refuses it.
pub async fn run(args: StationArgs) -> Result<(), String> {
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", args.data_dir.display()))?;
    crate::wiring::restrict_permissions(&args.data_dir);
    let config = enrol_or_load(&args).await?;
    let trust = server_trust(config.ca_file.as_deref())?;
    let station = Arc::new(local_station(&args)?);
    let mut options = AgentOptions::new(config.server.clone(), config.credential());
    options.trust = trust;
    options.printer_setup = Some(printer_setup(&station, args.printer_ca_file.clone()));
    options.injected_delay = args.injected_delay;
    options.exit_after_apdus = args.exit_after_apdus;
    options.drop_after_apdus = args.drop_after_apdus;
    tracing::info!(station = %config.station_name, server = %config.server, "station starting");
    Agent::new(station, options)
        .run()
        .await
        .map_err(|e| e.to_string())
}

/// Puts the printers an administrator configured for this station on the server next to those
/// of its command line, which keep their names: a configured printer of the same name is left
/// out. `ca_file` (`--printer-ca-file`) is what `ipps://` printers are checked against here; a
/// CA file named on the server is a path on the server, not on this workstation.
pub fn printer_setup(station: &Arc<LocalStation>, ca_file: Option<PathBuf>) -> PrinterSetup {
    let own = station.all_printers();
    let station = station.clone();
    PrinterSetup(Arc::new(move |configs: &[PrinterConfig]| {
        let ca_file = ca_file.as_ref().map(|p| p.to_string_lossy());
        let mut printers = own.clone();
        for config in configs {
            if printers.iter().any(|p| p.name() == config.name) {
                tracing::warn!(printer = %config.name, "a printer of this name is on the command line; the server's is left out");
                continue;
            }
            match crate::printers::printer_of(config, ca_file.as_deref()) {
                Ok(p) => printers.push(p),
                Err(e) => tracing::warn!(printer = %config.name, error = %e, "printer left out"),
            }
        }
        station.set_printers(printers);
    }))
}

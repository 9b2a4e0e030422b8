//! `tessera station` (the workstation process) and `tessera stations` (administering them on the
//! server's data folder, as the portal's Stations page does).

use crate::{open, DataArgs, ReaderChoice};
use clap::Subcommand;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tessera_core::stations;
use tessera_server::station_process::{self, StationArgs};
use tessera_server::Readers;

#[derive(clap::Args)]
pub struct StationCli {
    /// The configuration file (TOML, its `[station]` section); the command line and the
    /// TESSERA_* variables override it.
    #[arg(long, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// The server, e.g. https://cms.example.org:8443 (plain http:// only for a server on this
    /// machine or a lab: the connection is not encrypted). Needed to enrol; remembered after.
    #[arg(long, env = "TESSERA_SERVER")]
    server: Option<String>,
    /// CA certificates (PEM) trusted for an https:// server's certificate, beside the public
    /// roots: the organisation's CA that issued it, or the certificate itself if self-signed.
    /// Remembered after the first start that gives it.
    #[arg(long, env = "TESSERA_SERVER_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// The one-time enrolment token from the portal's Stations page (first start only).
    #[arg(long, env = "TESSERA_STATION_TOKEN")]
    token: Option<String>,
    /// A file whose first line is the enrolment token (instead of `--token`).
    #[arg(long, env = "TESSERA_STATION_TOKEN_FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// Where the station keeps its credential (station.json, mode 0600) and simulated cards
    /// [default: tessera-station].
    #[arg(long = "data")]
    data: Option<PathBuf>,
    /// Offer a simulated card printer with a virtual PIV card in its encoder.
    #[arg(long)]
    simulated_printer: bool,
    /// A card printer, as NAME=URI (repeatable): an IPP printer or CUPS queue
    /// ("Badge Printer=ipp://host:631/ipp/print", ipps:// over TLS) or a spool folder
    /// ("Badge Folder=spool:/var/spool/cards").
    #[arg(long = "printer", value_parser = name_value)]
    printers: Vec<(String, String)>,
    /// CA certificates (PEM) that ipps:// printers' certificates are checked against.
    #[arg(long)]
    printer_ca_file: Option<PathBuf>,
    /// The reader built into a printer, as PRINTER=READER, e.g. "Badge Printer=Virtual PCD 00 00".
    #[arg(long = "encoder", value_parser = name_value)]
    encoders: Vec<(String, String)>,
    /// `pcsc` offers this machine's PC/SC readers (build feature `pcsc`) [default: simulated].
    #[arg(long, value_enum)]
    readers: Option<ReaderChoice>,
    /// Measurement: delay every answer by this many milliseconds (a slow network's round trip).
    #[arg(long, default_value_t = 0, hide = true)]
    inject_delay_ms: u64,
    /// Fault injection for tests: the process exits when it reaches this APDU.
    #[arg(long, hide = true)]
    exit_after_apdus: Option<u64>,
    /// Fault injection for tests: the connection drops once before this APDU.
    #[arg(long, hide = true)]
    drop_after_apdus: Option<u64>,
}

fn name_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() && !value.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

/// Printers and encoders of the command line, then those of the file whose names it lacks.
fn merged(cli: Vec<(String, String)>, file: BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut all = cli;
    for (name, value) in file {
        if !all.iter().any(|(n, _)| *n == name) {
            all.push((name, value));
        }
    }
    all
}

pub async fn station(cli: StationCli) -> Result<(), String> {
    let file = crate::config::ConfigFile::load(cli.config.as_deref())?.station;
    let token = match (cli.token, cli.token_file.or(file.token_file)) {
        (Some(token), _) => Some(token),
        (None, Some(path)) => Some(crate::config::read_secret(&path, "enrolment token")?),
        (None, None) => None,
    };
    let readers = match (cli.readers, &file.readers) {
        (Some(r), _) => r,
        (None, Some(text)) => ReaderChoice::parse(text)?,
        (None, None) => ReaderChoice::Simulated,
    };
    station_process::run(StationArgs {
        server: cli.server.or(file.server),
        ca_file: cli.ca_file.or(file.server_ca_file),
        token: token.map(|t| tessera_core::secret::StationSecret::new(t.trim())),
        data_dir: cli
            .data
            .or(file.data)
            .unwrap_or_else(|| PathBuf::from("tessera-station")),
        simulated_printer: cli.simulated_printer || file.simulated_printer.unwrap_or(false),
        printers: merged(cli.printers, file.printers),
        printer_ca_file: cli.printer_ca_file.or(file.printer_ca_file),
        encoders: merged(cli.encoders, file.encoders),
        readers: match readers {
            ReaderChoice::Simulated => Readers::Simulated,
            ReaderChoice::Pcsc => Readers::Pcsc,
        },
        injected_delay: Duration::from_millis(cli.inject_delay_ms),
        exit_after_apdus: cli.exit_after_apdus,
        drop_after_apdus: cli.drop_after_apdus,
    })
    .await
}

#[derive(Subcommand)]
pub enum StationsCommand {
    /// Create a remote station; prints its id and one-time enrolment token as JSON.
    Add {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        name: String,
    },
    /// A new enrolment token for a station (reinstalled, or revoked before).
    Token {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        name: String,
    },
    /// Revoke a station's credential: it can no longer connect.
    Revoke {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        name: String,
    },
    /// The stations, as JSON.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
}

pub async fn stations(command: StationsCommand) -> Result<(), String> {
    let actor = tessera_core::services::Actor::cli();
    let code = |e: tessera_core::CoreError| format!("{} {e}", e.code().as_str());
    let by_name = |t: &tessera_server::Tessera, name: String| {
        let store = t.store.clone();
        async move {
            use tessera_core::ports::Store;
            store
                .stations()
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .find(|s| s.name.eq_ignore_ascii_case(&name) || s.id.as_str() == name)
                .map(|s| s.id)
                .ok_or_else(|| format!("no station named {name:?}"))
        }
    };
    let out = match command {
        StationsCommand::Add { data, name } => {
            let t = open(&data).await?;
            let (station, token) = stations::create(&t.services, &actor, &name)
                .await
                .map_err(code)?;
            serde_json::json!({"station_id": station.id.as_str(), "name": station.name,
                "enrolment_token": token.expose()})
        }
        StationsCommand::Token { data, name } => {
            let t = open(&data).await?;
            let id = by_name(&t, name).await?;
            let (station, token) = stations::new_enrolment_token(&t.services, &actor, &id)
                .await
                .map_err(code)?;
            serde_json::json!({"station_id": station.id.as_str(), "name": station.name,
                "enrolment_token": token.expose()})
        }
        StationsCommand::Revoke { data, name } => {
            let t = open(&data).await?;
            let id = by_name(&t, name).await?;
            let station = stations::revoke(&t.services, &actor, &id)
                .await
                .map_err(code)?;
            serde_json::json!({"station_id": station.id.as_str(), "name": station.name,
                "revoked": true})
        }
        StationsCommand::List { data } => {
            use tessera_core::ports::Store;
            let t = open(&data).await?;
            let list: Vec<_> = t
                .store
                .stations()
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|s| {
                    let access = s.access.unwrap_or_default();
                    serde_json::json!({"station_id": s.id.as_str(), "name": s.name,
                        "enabled": s.enabled, "enrolled": access.credential_hash.is_some(),
                        "revoked": access.revoked})
                })
                .collect();
            serde_json::json!(list)
        }
    };
    println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
    Ok(())
}

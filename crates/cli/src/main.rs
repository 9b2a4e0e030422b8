//! The one Tessera binary. Each command is a thin wrapper around `tessera-server`.

mod card_cmd;
mod card_sim;
mod config;
mod directory_cmd;

mod operators_cmd;
mod station_cmd;
mod users_cmd;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_server::headless::{self, IssueArgs};
use tessera_server::{InitSpec, Options, Readers, StartMode, Tessera};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tessera smart-card credential management"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
pub(crate) struct DataArgs {
    /// The configuration file (TOML; see the administrator guide). The command line and the
    /// TESSERA_* variables override it.
    #[arg(long, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// Where Tessera keeps its database, CA, secrets, virtual cards and printed cards
    /// [default: tessera-data].
    #[arg(long = "data", env = "TESSERA_DATA")]
    data: Option<PathBuf>,
    /// PostgreSQL URL (postgres://...) instead of the SQLite file in the data folder.
    #[arg(long, env = "TESSERA_DATABASE_URL")]
    database_url: Option<String>,
    /// A file whose first line is the PostgreSQL URL (it carries the database password).
    #[arg(
        long,
        env = "TESSERA_DATABASE_URL_FILE",
        conflicts_with = "database_url"
    )]
    database_url_file: Option<PathBuf>,
    /// Where relying parties reach this server; certificates then carry CRL and OCSP URLs under
    /// it (`{URL}/pki/issuing.crl`, `{URL}/pki/ocsp`, `{URL}/pki/issuing.p7c`). The demo uses
    /// its own portal address when none is given.
    #[arg(long, env = "TESSERA_PUBLIC_URL")]
    public_url: Option<String>,
    /// Your organisation's registered certificate policy arc (e.g. 1.3.6.1.4.1.<your private
    /// enterprise number>.1): each slot's default policy is <ARC>.1.<n>. Without it, a 2.25
    /// UUID arc derived from the root CA.
    #[arg(long, env = "TESSERA_POLICY_ARC")]
    policy_arc: Option<String>,
    /// `pcsc` adds the PC/SC readers of this machine to the station (build feature `pcsc`)
    /// [default: simulated].
    #[arg(long, value_enum)]
    readers: Option<ReaderChoice>,
    /// How long a request to a remote station waits for it to reconnect before the issuance
    /// fails (seconds) [default: 30].
    #[arg(long)]
    station_wait_secs: Option<u64>,
    /// Measurement: send every card command on its own round trip instead of APDU scripts.
    #[arg(long, hide = true)]
    no_apdu_scripts: bool,
    /// How long an issuance job's lease lasts without a heartbeat (seconds): after a crash,
    /// `serve` takes over the jobs of the dead process once their leases run out [default: 15].
    #[arg(long, env = "TESSERA_JOB_LEASE_SECONDS")]
    job_lease_secs: Option<u64>,
    /// A PEM file of key attestation roots to trust besides Yubico's (repeatable); policies that
    /// require attestation accept keys attested up to them.
    #[arg(long = "attestation-root", value_name = "PEM")]
    attestation_roots: Vec<PathBuf>,
    /// One of several replicas on one PostgreSQL: the URL the other replicas reach this one at
    /// (`http://10.0.0.5:8080`), to forward requests for the stations connected here.
    #[arg(long, env = "TESSERA_CLUSTER_URL", requires = "cluster_secret_file")]
    cluster_url: Option<String>,
    /// A file holding the secret every replica shares; replicas send it with each forwarded
    /// request (also `TESSERA_CLUSTER_SECRET_FILE`).
    #[arg(long, env = "TESSERA_CLUSTER_SECRET_FILE")]
    cluster_secret_file: Option<PathBuf>,
}

/// HTTPS for the portal, the REST API and the stations' WebSockets.
#[derive(clap::Args, Clone)]
struct TlsArgs {
    /// The server's TLS certificate (PEM; its intermediate CAs may follow it): with `--tls-key`
    /// the server speaks HTTPS only, and stations connect with https:// and check it.
    #[arg(long, env = "TESSERA_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM, unencrypted PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "TESSERA_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The certificate and key of the command line, or else of the configuration file.
    fn load(
        &self,
        file: &config::ServerSection,
    ) -> Result<Option<tessera_server::serve::ServerTls>, String> {
        let (cert, key) = match (&self.tls_cert, &self.tls_key) {
            (None, None) => (file.tls_cert.clone(), file.tls_key.clone()),
            (cert, key) => (cert.clone(), key.clone()),
        };
        match (&cert, &key) {
            (Some(cert), Some(key)) => {
                tessera_server::serve::ServerTls::from_pem_files(cert, key).map(Some)
            }
            (None, None) => Ok(None),
            _ => Err("--tls-cert and --tls-key go together".into()),
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ReaderChoice {
    Simulated,
    Pcsc,
}

impl ReaderChoice {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(text, true)
            .map_err(|_| format!("readers must be simulated or pcsc, not {text:?}"))
    }
}

impl DataArgs {
    fn config_file(&self) -> Result<config::ConfigFile, String> {
        config::ConfigFile::load(self.config.as_deref())
    }

    /// The options of this command: its flags, else the environment, else the configuration
    /// file, else the defaults.
    fn options(&self) -> Result<Options, String> {
        self.options_with(self.config_file()?.server)
    }

    /// [`DataArgs::options`] with the configuration file already read.
    fn options_with(&self, file: config::ServerSection) -> Result<Options, String> {
        let database_url = match (&self.database_url, &self.database_url_file) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(path)) => Some(config::read_secret(path, "database URL")?),
            (None, None) => match (&file.database_url, &file.database_url_file) {
                (Some(url), _) => Some(url.clone()),
                (None, Some(path)) => Some(config::read_secret(path, "database URL")?),
                (None, None) => None,
            },
        };
        let readers = match (self.readers, &file.readers) {
            (Some(r), _) => r,
            (None, Some(text)) => ReaderChoice::parse(text)?,
            (None, None) => ReaderChoice::Simulated,
        };
        Ok(Options {
            data_dir: self
                .data
                .clone()
                .or(file.data)
                .unwrap_or_else(|| PathBuf::from("tessera-data")),
            database_url,
            public_url: self.public_url.clone().or(file.public_url),
            policy_arc: self.policy_arc.clone().or(file.policy_arc),
            readers: match readers {
                ReaderChoice::Simulated => Readers::Simulated,
                ReaderChoice::Pcsc => Readers::Pcsc,
            },
            station_reconnect_wait: std::time::Duration::from_secs(
                self.station_wait_secs
                    .or(file.station_wait_secs)
                    .unwrap_or(30),
            ),
            apdu_scripts: !self.no_apdu_scripts,
            job_lease: std::time::Duration::from_secs(
                self.job_lease_secs
                    .or(file.job_lease_secs)
                    .unwrap_or(15)
                    .max(1),
            ),
            start: StartMode::Existing,
            attestation_roots: if self.attestation_roots.is_empty() {
                file.attestation_roots
            } else {
                self.attestation_roots.clone()
            },
            trust_virtual_card_attestation: false,
            cluster: match (
                self.cluster_url.clone().or(file.cluster_url),
                self.cluster_secret_file
                    .clone()
                    .or(file.cluster_secret_file),
            ) {
                (Some(url), Some(path)) => Some(tessera_server::wiring::ClusterOptions {
                    url,
                    secret: config::read_secret(&path, "cluster secret")?,
                }),
                (None, None) => None,
                _ => return Err("the cluster URL and the cluster secret file go together".into()),
            },
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// The whole system on its embedded default: SQLite, software CA, simulated card printer,
    /// and demo users, policies and layout, created on first start.
    Demo {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Create a new organisation: the database schema, the CA (the one `tessera ca init` or
    /// `tessera ca import` prepared in the data folder, or new software keys), and the first
    /// administrator. No demo content unless asked for.
    Init {
        #[command(flatten)]
        data: DataArgs,
        /// The first administrator's name.
        #[arg(long, default_value = "admin")]
        admin: String,
        /// Read the first administrator's password from this file (first line); otherwise one
        /// is generated and printed once.
        #[arg(long, env = "TESSERA_ADMIN_PASSWORD_FILE")]
        admin_password_file: Option<PathBuf>,
        /// Also create the demo users, policies and layout, and the simulated printer.
        #[arg(long)]
        demo: bool,
        /// Give this server's own station the simulated card printer (it puts real
        /// certificates on virtual cards: for trials).
        #[arg(long)]
        simulated_printer: bool,
    },
    /// Run the server on an initialised database (see `init`); never creates anything.
    Serve {
        #[command(flatten)]
        data: DataArgs,
        /// The address to listen on [default: 127.0.0.1:8080].
        #[arg(long, env = "TESSERA_LISTEN")]
        listen: Option<SocketAddr>,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Issue a card without the browser, on the demo station; prints one JSON object.
    Issue {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        user: String,
        /// Device policy id or name, e.g. "PIV Standard".
        #[arg(long)]
        policy: String,
        /// Layout id or name, e.g. "Corporate Badge".
        #[arg(long)]
        layout: String,
        /// Initial PIN (required unless the PIN display mode is "not displayed").
        #[arg(long)]
        pin: Option<String>,
        /// Cancel at the Print Device step: the card stays Pending.
        #[arg(long)]
        cancel: bool,
        /// The reader holding the card (with `--readers pcsc`), e.g. "Virtual PCD 00 00".
        #[arg(long)]
        reader: Option<String>,
        /// The printer of the station (see `tessera printer list`); the demo printer by default.
        /// When printing fails the card stays Pending: the JSON says `"state": "pending"` with
        /// `print_error`, and the exit status is 2.
        #[arg(long)]
        printer: Option<String>,
        /// Print JSON (the only output format today; kept for scripts that say what they expect).
        #[arg(long)]
        json: bool,
    },
    /// Print again a card whose print failed (Retry print), then activate it; prints one JSON
    /// object like `issue` (exit status 2 if printing fails again).
    Print {
        #[command(flatten)]
        data: DataArgs,
        /// The device id (`device_id` in the output of `tessera issue`).
        #[arg(long)]
        device: String,
        /// Print on this printer of the station instead of the one the issuance used.
        #[arg(long)]
        printer: Option<String>,
    },
    /// The card printers of a station.
    Printer {
        #[command(subcommand)]
        command: PrinterCommand,
    },
    /// The audit log: its newest events, and the check of its hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// People from the directory of the [directory] section (LDAP, Active Directory).
    Directory {
        #[command(subcommand)]
        command: directory_cmd::DirectoryCommand,
    },
    /// Operators: add, list, change role or scope, disable, reset a password or authenticator.
    Operators {
        #[command(subcommand)]
        command: operators_cmd::OperatorsCommand,
    },
    /// People: add, change, disable or delete them, set photos, import a CSV file from HR.
    Users {
        #[command(subcommand)]
        command: users_cmd::UsersCommand,
    },
    /// The card stock: import a vendor's serial list, list the cards, show one card's history.
    Stock {
        #[command(subcommand)]
        command: StockCommand,
    },
    /// Unblock a card's PIN with the PUK Tessera escrowed at issuance, and set a new PIN.
    Unlock {
        #[command(flatten)]
        data: DataArgs,
        /// The device id (`device_id` in the output of `tessera issue`).
        #[arg(long)]
        device: String,
        /// The reader holding the card; the demo printer's encoder when absent.
        #[arg(long)]
        reader: Option<String>,
        #[arg(long)]
        new_pin: String,
        /// Why the PIN is unlocked (a ticket number, a few words); it goes into the audit log.
        #[arg(long, default_value = "unlocked from the command line")]
        reason: String,
    },
    /// Cards in a reader: `check` judges any PIV card against the FIPS 201 standards.
    Card {
        #[command(subcommand)]
        command: card_cmd::CardCommand,
    },
    /// Put a virtual PIV card into pcscd's virtual reader (vsmartcard vpcd). Type `r` + Enter to
    /// remove the card, `i` + Enter to insert it again; it also comes back by itself when pcscd
    /// restarts.
    CardSim {
        /// The card's state file: a blank card is created if it does not exist; a card Tessera
        /// issued (its `card_state`) works too.
        #[arg(long, required_unless_present = "print_attestation_root")]
        state: Option<PathBuf>,
        /// vpcd's address (reader "Virtual PCD 00 00" listens on 35963, "00 01" on 35964).
        #[arg(long, default_value = "127.0.0.1:35963")]
        vpcd: SocketAddr,
        /// The YubiKey firmware a NEW card emulates: 5.7.2 (AES-192 factory management key,
        /// RSA 3072/4096) or 5.4.3 (3DES factory management key). An existing state file keeps
        /// the firmware it was created with; this option does not change it.
        #[arg(long, default_value = "5.7.2", value_parser = tessera_piv::card::firmware::parse_firmware)]
        firmware: [u8; 3],
        /// Print the simulated attestation root certificate (PEM) that every virtual card's
        /// attestations chain to, and exit. It is a published test key: trust it for tests only.
        #[arg(long)]
        print_attestation_root: bool,
        /// Tests: pull the card when this command (counted from the start) arrives, once.
        #[arg(long, hide = true)]
        remove_after_apdus: Option<u64>,
    },
    /// The station on an operator's workstation: enrols with a token once, then relays the
    /// server's APDUs and print jobs to this machine's readers and card printers.
    Station(station_cmd::StationCli),
    /// Create, re-enrol and revoke remote stations of a server's data folder.
    Stations {
        #[command(subcommand)]
        command: station_cmd::StationsCommand,
    },
    /// Set up the certificate authority of a data folder before its first start.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Measure the certificate authority's signing speed beside `openssl speed`; prints a table.
    BenchCa {
        /// Seconds per measurement (and per `openssl speed` run).
        #[arg(long, default_value_t = 3)]
        seconds: u32,
    },
    /// Measure card rendering (PNG 300 dpi, PDF; per card and cards per second on every core)
    /// beside librsvg's rsvg-convert on the same filled-in SVG; prints a Markdown table.
    BenchRender {
        /// How many cards per measurement.
        #[arg(long, default_value_t = 20)]
        iterations: usize,
    },
    /// Measure issuance through a station with an injected network round trip, with and without
    /// APDU scripts; prints a Markdown table.
    BenchStation {
        /// Cards per configuration.
        #[arg(long, default_value_t = 5)]
        cards: usize,
        /// Injected round trips in milliseconds.
        #[arg(long, value_delimiter = ',', default_value = "0,20,80")]
        delays: Vec<u64>,
    },
    /// The whole system under many stations: R replicas of `tessera serve` (HAProxy in front when
    /// R > 1) on one database, N simulated stations, cards issued back to back through the REST
    /// API; prints throughput, latency and CPU per card, then checks the database (exit status 1
    /// when an issuance is lost, duplicated or inconsistent).
    BenchLoad {
        /// sqlite or postgres.
        #[arg(long, default_value = "sqlite")]
        backend: String,
        /// The PostgreSQL server to make the run's fresh database on (default:
        /// TESSERA_TEST_DATABASE_URL).
        #[arg(long)]
        database_url: Option<String>,
        /// Replicas of `tessera serve` (SQLite: 1).
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        #[arg(long, default_value_t = 200)]
        stations: usize,
        /// Seconds during which cards are started [default: 60].
        #[arg(long, conflicts_with = "cards")]
        duration: Option<u64>,
        /// Issue this many cards instead of running for a time.
        #[arg(long)]
        cards: Option<usize>,
        /// Kill -9 one replica (not the last) this many seconds into the run.
        #[arg(long)]
        kill_replica_at: Option<u64>,
        /// Keep the scratch folder (logs of the replicas, data) and the database.
        #[arg(long)]
        keep: bool,
    },
    /// Import a synthetic HR export of N people through the CSV import and measure the Users
    /// page's search (p50/p99) on SQLite and/or PostgreSQL.
    BenchUsers {
        #[arg(long, default_value_t = 1_000_000)]
        users: usize,
        /// sqlite, postgres or both.
        #[arg(long, default_value = "sqlite")]
        database: String,
        /// The PostgreSQL server to make a scratch database on (default:
        /// TESSERA_TEST_DATABASE_URL).
        #[arg(long)]
        postgres_url: Option<String>,
        /// Searches per operator (an Administrator and one scoped to a group).
        #[arg(long, default_value_t = 500)]
        searches: usize,
    },
    /// Measure personalisation and rendering speed on this machine; prints the figures.
    Bench {
        /// How many cards to personalise and render.
        #[arg(long, default_value_t = 20)]
        iterations: usize,
    },
}

#[derive(Subcommand)]
enum PrinterCommand {
    /// Add a card printer (IPP Everywhere, CUPS queue, or spool folder) to a station, or
    /// change the one of that name.
    Add {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        station: StationArg,
        #[arg(long)]
        name: String,
        /// e.g. ipp://printer.local:631/ipp/print, ipps://cups-host:631/printers/CardPrinter or
        /// spool:/var/spool/cards.
        #[arg(long)]
        uri: String,
        /// The PC/SC reader built into the printer (its encoder).
        #[arg(long)]
        encoder: Option<String>,
        /// CA certificates (PEM) that an ipps:// printer's certificate is checked against.
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
    /// A station's printers with their state and capabilities, as JSON.
    List {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        station: StationArg,
    },
    /// Take a printer off a station's configuration.
    Remove {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        station: StationArg,
        #[arg(long)]
        name: String,
    },
    /// Print the test card on a printer of the station inside this process (the portal's
    /// Printers page prints on remote stations' printers).
    Test {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// The newest events as JSON lines, newest first.
    List {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Check the hash chain from the newest event back to the first; exits 1 when it is broken.
    Check {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum StockCommand {
    /// Import the serial list a vendor ships (CSV with a header line: a `serial` column, and
    /// optionally `model`, `batch`, `location`). A file with a bad line imports nothing; serials
    /// already in stock are skipped. Prints the report as JSON; exits 1 on bad lines.
    Import {
        #[command(flatten)]
        data: DataArgs,
        /// The CSV file (`-` reads standard input).
        file: PathBuf,
        /// The model of cards whose line has none.
        #[arg(long)]
        model: Option<String>,
        /// The batch of cards whose line has none.
        #[arg(long)]
        batch: Option<String>,
        /// The station (id or name) of cards whose line names none.
        #[arg(long)]
        location: Option<String>,
    },
    /// The cards in stock as a table: serial, model, batch, state, location.
    List {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        model: Option<String>,
        /// in_stock, issued, returned or destroyed.
        #[arg(long)]
        state: Option<String>,
        /// A station id.
        #[arg(long)]
        location: Option<String>,
    },
    /// One card's history: its stock record and every device Tessera made of it, as JSON.
    Show {
        #[command(flatten)]
        data: DataArgs,
        serial: String,
    },
    /// Return, re-stock, destroy or move a card (a card becomes issued by issuing it).
    Set {
        #[command(flatten)]
        data: DataArgs,
        serial: String,
        /// in_stock, returned or destroyed (the current state to only move it).
        #[arg(long)]
        state: String,
        /// The station (id or name) where the card is now.
        #[arg(long)]
        location: Option<String>,
    },
}

async fn stock_command(command: StockCommand) -> Result<(), String> {
    use tessera_core::model::{StockFilter, StockState};
    use tessera_core::stock;
    let actor = tessera_core::services::Actor::cli();
    let code = |e: tessera_core::CoreError| format!("{} {e}", e.code().as_str());
    let state_of = |s: &str| {
        StockState::parse(s).ok_or_else(|| {
            format!("unknown state {s:?}: use in_stock, issued, returned or destroyed")
        })
    };
    match command {
        StockCommand::Import {
            data,
            file,
            model,
            batch,
            location,
        } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(&file)
            }
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let tessera = open(&data).await?;
            let defaults = stock::StockDefaults {
                model,
                batch,
                location,
            };
            let report = stock::import_stock(&tessera.services, &actor, &text, &defaults)
                .await
                .map_err(code)?;
            println!("{}", serde_json::to_string(&report).expect("JSON"));
            match report.errors.len() {
                0 => Ok(()),
                n => Err(format!(
                    "{n} bad line(s); nothing was imported (first: line {}: {})",
                    report.errors[0].line, report.errors[0].reason
                )),
            }
        }
        StockCommand::List {
            data,
            model,
            state,
            location,
        } => {
            let filter = StockFilter {
                model,
                state: state.as_deref().map(state_of).transpose()?,
                location: location.map(tessera_core::ids::StationId::new),
                limit: 0,
            };
            let tessera = open(&data).await?;
            let cards = stock::list_stock(&tessera.services, &actor, &filter)
                .await
                .map_err(code)?;
            println!(
                "{:<32}  {:<24}  {:<16}  {:<10}  LOCATION",
                "SERIAL", "MODEL", "BATCH", "STATE"
            );
            for c in cards {
                println!(
                    "{:<32}  {:<24}  {:<16}  {:<10}  {}",
                    c.serial,
                    c.model,
                    c.batch,
                    c.state.as_str(),
                    c.location.as_ref().map_or("-", |l| l.as_str())
                );
            }
            Ok(())
        }
        StockCommand::Show { data, serial } => {
            let tessera = open(&data).await?;
            let history = stock::stock_history(&tessera.services, &actor, &serial)
                .await
                .map_err(code)?;
            println!("{}", serde_json::to_string_pretty(&history).expect("JSON"));
            Ok(())
        }
        StockCommand::Set {
            data,
            serial,
            state,
            location,
        } => {
            let state = state_of(&state)?;
            let tessera = open(&data).await?;
            let card = stock::set_stock_state(
                &tessera.services,
                &actor,
                &serial,
                state,
                location.as_deref(),
            )
            .await
            .map_err(code)?;
            println!("{}", serde_json::to_string(&card).expect("JSON"));
            Ok(())
        }
    }
}

async fn audit_command(command: AuditCommand) -> Result<(), String> {
    use tessera_core::audit_log;
    let actor = tessera_core::services::Actor::cli();
    let code = |e: tessera_core::CoreError| format!("{} {e}", e.code().as_str());
    match command {
        AuditCommand::List { data, limit } => {
            let tessera = open(&data).await?;
            let events = audit_log::page(&tessera.services, &actor, None, limit)
                .await
                .map_err(code)?;
            for e in events {
                println!("{}", serde_json::to_string(&e).expect("JSON"));
            }
            Ok(())
        }
        AuditCommand::Check { data } => {
            let tessera = open(&data).await?;
            let report = audit_log::check_chain(&tessera.services, &actor)
                .await
                .map_err(code)?;
            let broken = report.broken.as_ref();
            println!(
                "{}",
                serde_json::json!({
                    "checked": report.checked, "head": report.head, "intact": broken.is_none(),
                    "broken_at": broken.map(|b| b.seq), "reason": broken.map(|b| &b.reason),
                })
            );
            match broken {
                None => Ok(()),
                Some(b) => Err(format!(
                    "the audit chain is broken at event {}: {}",
                    b.seq, b.reason
                )),
            }
        }
    }
}

#[derive(clap::Args)]
struct StationArg {
    /// The station, by name or id (default: the one inside the server, "This workstation").
    /// A remote station gets its printers over its connection within seconds.
    #[arg(long)]
    station: Option<String>,
}

impl StationArg {
    /// Opens the data folder and finds the station.
    async fn open(
        &self,
        data: &DataArgs,
    ) -> Result<(tessera_server::Tessera, tessera_core::ids::StationId), String> {
        let tessera = open(data).await?;
        let station = tessera_server::printers::station_named(&tessera, self.station.as_deref())
            .await
            .map_err(|e| format!("{} {e}", e.code().as_str()))?;
        Ok((tessera, station))
    }
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create a root and an issuing CA. Refuses when the data folder already has a CA.
    Init {
        /// The data folder (its `ca/` holds the CA).
        #[arg(long = "data", default_value = "tessera-data")]
        data: PathBuf,
        /// The CA key algorithm (root and issuing CA).
        #[arg(long, default_value = "p256", value_parser = ["p256", "p384", "rsa2048", "rsa3072"])]
        algorithm: String,
        /// The organisation named in the CA certificates.
        #[arg(long)]
        organisation: Option<String>,
        #[command(flatten)]
        keys: CaKeyArgs,
    },
    /// Import an issuing CA certified by an organisation's root: Tessera becomes subordinate to it.
    Import {
        #[arg(long = "data", default_value = "tessera-data")]
        data: PathBuf,
        /// The issuing CA certificate (PEM).
        #[arg(long)]
        issuing_cert: PathBuf,
        /// The certificates above it (PEM): its issuer first, the organisation's root last.
        #[arg(long)]
        chain: PathBuf,
        /// The issuing CA's private key, unencrypted PKCS#8 (PEM or DER); sealed on import.
        #[arg(long, conflicts_with = "pkcs11_key_label")]
        key_file: Option<PathBuf>,
        /// The label of the issuing CA's key on the PKCS#11 token.
        #[arg(long, required_unless_present = "key_file")]
        pkcs11_key_label: Option<String>,
        #[command(flatten)]
        keys: CaKeyArgs,
    },
    /// Make a new content signing key and certificate now (the CA also renews it by itself once
    /// fewer than three years and thirty days remain); prints JSON. The old one stays valid.
    RenewContentSigner {
        #[command(flatten)]
        data: DataArgs,
    },
    /// The CA certificates, the content signer, the certificate policy arc and the issuing
    /// CA's `.p7c` (base64), as JSON.
    Show {
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Where the CA keys live. Secrets are never taken on the command line: a PIN or a passphrase
/// comes from a file or from the environment.
#[derive(clap::Args)]
struct CaKeyArgs {
    /// PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so): keys are generated on the token.
    #[arg(long, requires = "pkcs11_token")]
    pkcs11_module: Option<PathBuf>,
    /// The token's label.
    #[arg(long, requires = "pkcs11_module")]
    pkcs11_token: Option<String>,
    /// A file holding the token's user PIN (otherwise TESSERA_PKCS11_PIN at every start).
    #[arg(long, requires = "pkcs11_module")]
    pkcs11_pin_file: Option<PathBuf>,
    /// Seal the software CA keys under a key derived from the passphrase in this file (argon2id)
    /// instead of the master key; TESSERA_CA_PASSPHRASE does the same without a file.
    #[arg(long, conflicts_with = "pkcs11_module")]
    ca_passphrase_file: Option<PathBuf>,
}

impl CaKeyArgs {
    fn to_server(&self) -> tessera_server::ca_admin::KeyArgs {
        tessera_server::ca_admin::KeyArgs {
            pkcs11_module: self.pkcs11_module.clone(),
            pkcs11_token: self.pkcs11_token.clone(),
            pkcs11_pin_file: self.pkcs11_pin_file.clone(),
            ca_passphrase_file: self.ca_passphrase_file.clone(),
        }
    }
}

fn ca_command(command: CaCommand) -> Result<(), String> {
    use tessera_server::ca_admin::{self, ImportKeyArgs};
    let summary = match command {
        CaCommand::Init {
            data,
            algorithm,
            organisation,
            keys,
        } => {
            let algorithm = algorithm.parse().map_err(|e| format!("{e}"))?;
            ca_admin::init(&data, algorithm, organisation.as_deref(), &keys.to_server())
        }
        CaCommand::Import {
            data,
            issuing_cert,
            chain,
            key_file,
            pkcs11_key_label,
            keys,
        } => {
            let key = match (key_file, pkcs11_key_label) {
                (Some(file), _) => ImportKeyArgs::File(file),
                (None, Some(label)) => ImportKeyArgs::Pkcs11Label(label),
                (None, None) => return Err("give --key-file or --pkcs11-key-label".into()),
            };
            ca_admin::import(&data, &issuing_cert, &chain, key, &keys.to_server())
        }
        CaCommand::RenewContentSigner { .. } | CaCommand::Show { .. } => {
            return Err("this command needs the data folder's database (see `run`)".into())
        }
    }
    .map_err(|e| e.to_string())?;
    println!("{summary}");
    Ok(())
}

/// Exit status 2: the card was issued but not printed (it is Pending; `tessera print` retries).
const EXIT_NOT_PRINTED: u8 = 2;

/// Prints the JSON of `issue`/`print`; a print failure is reported there and in the exit status.
fn print_outcome(out: &serde_json::Value) -> Result<(), String> {
    println!("{}", serde_json::to_string_pretty(out).expect("JSON"));
    match out.get("print_error").and_then(|e| e.as_str()) {
        Some(error) => {
            eprintln!("error: the card is Pending, not printed: {error}");
            std::process::exit(i32::from(EXIT_NOT_PRINTED));
        }
        None => Ok(()),
    }
}

async fn printer_command(command: PrinterCommand) -> Result<(), String> {
    use tessera_server::printers;
    let code = |e: tessera_core::CoreError| format!("{} {e}", e.code().as_str());
    let actor = tessera_core::services::Actor::cli();
    match command {
        PrinterCommand::Add {
            data,
            station,
            name,
            uri,
            encoder,
            ca_file,
        } => {
            let (tessera, station) = station.open(&data).await?;
            let ca_file = ca_file.map(|p| p.to_string_lossy().into_owned());
            let config = printers::add(&tessera, &actor, &station, &name, &uri, encoder, ca_file)
                .await
                .map_err(code)?;
            let view = printers::overview(&tessera, &station)
                .await
                .map_err(code)?
                .into_iter()
                .find(|v| v.config.name == config.name)
                .map(|v| v.to_json());
            println!("{}", serde_json::to_string_pretty(&view).expect("JSON"));
            Ok(())
        }
        PrinterCommand::List { data, station } => {
            let (tessera, station) = station.open(&data).await?;
            let views: Vec<_> = printers::overview(&tessera, &station)
                .await
                .map_err(code)?
                .iter()
                .map(|v| v.to_json())
                .collect();
            println!("{}", serde_json::to_string_pretty(&views).expect("JSON"));
            Ok(())
        }
        PrinterCommand::Remove {
            data,
            station,
            name,
        } => {
            let (tessera, station) = station.open(&data).await?;
            printers::remove(&tessera, &actor, &station, &name)
                .await
                .map_err(code)?;
            println!(
                "{}",
                serde_json::json!({"removed": name, "station": station})
            );
            Ok(())
        }
        PrinterCommand::Test { data, name } => {
            let tessera = open(&data).await?;
            let receipt = printers::test_page(&tessera, &actor, &printers::station_id(), &name)
                .await
                .map_err(code)?;
            println!(
                "{}",
                serde_json::json!({
                    "printer": name, "printer_job": receipt.printer_job,
                    "state": receipt.state, "message": receipt.message, "files": receipt.files,
                })
            );
            Ok(())
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Opens an initialised data folder (every command but `demo` and `init`).
pub(crate) async fn open(data: &DataArgs) -> Result<Tessera, String> {
    open_as(data, StartMode::Existing).await
}

async fn open_as(data: &DataArgs, start: StartMode) -> Result<Tessera, String> {
    open_with(Options {
        start,
        ..data.options()?
    })
    .await
}

/// The demo's cards are virtual: their simulated attestation root (whose private key is public)
/// is trusted by `demo` with only the simulated printer, never by `serve` nor beside real readers.
fn demo_trust(start: StartMode, options: Options) -> Options {
    Options {
        trust_virtual_card_attestation: start == StartMode::Demo
            && options.readers == Readers::Simulated,
        ..options
    }
}

async fn open_with(options: Options) -> Result<Tessera, String> {
    let (tessera, admin_password) = Tessera::open(&options).await.map_err(|e| e.to_string())?;
    if let Some(password) = admin_password {
        show_password(&options.data_dir, "admin", &password);
    }
    Ok(tessera)
}

/// Shown once, here; only its argon2 hash is stored.
fn show_password(dir: &std::path::Path, operator: &str, password: &tessera_core::Password) {
    eprintln!();
    eprintln!("  Tessera created its data in {}", dir.display());
    eprintln!("  Operator: {operator}");
    eprintln!("  Password: {}", password.expose());
    eprintln!("  (shown only this once: write it down)");
    eprintln!();
}

async fn init(
    data: &DataArgs,
    admin: String,
    password_file: Option<PathBuf>,
    demo: bool,
    simulated_printer: bool,
) -> Result<(), String> {
    let admin_password = match password_file {
        Some(file) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let first = text.lines().next().unwrap_or("").to_owned();
            if first.chars().count() < 12 {
                return Err(format!(
                    "the password in {} is shorter than 12 characters",
                    file.display()
                ));
            }
            Some(tessera_core::Password::new(first))
        }
        None => None,
    };
    let spec = InitSpec {
        demo_content: demo,
        simulated_printer: demo || simulated_printer,
        admin_password,
        admin: admin.clone(),
    };
    let options = data.options()?;
    let (_, password) = Tessera::init(&options, &spec)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(password) = password {
        show_password(&options.data_dir, &admin, &password);
    }
    eprintln!(
        "  Organisation created; start it with: tessera serve --data {}",
        options.data_dir.display()
    );
    Ok(())
}

/// The address relying parties reach this server at when it is the demo on `listen`: a listener
/// on every interface is reached on loopback.
fn own_url(listen: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let host = match listen.ip() {
        ip if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], listen.port())),
        _ => listen,
    };
    format!("{scheme}://{host}")
}

/// `demo` and `serve`: the portal, the API and the station endpoint on `listen` (the flag, else
/// the configuration file, else loopback port 8080). The configuration file is read once.
async fn serve(
    data: DataArgs,
    listen: Option<SocketAddr>,
    tls: TlsArgs,
    start: StartMode,
) -> Result<(), String> {
    let config = data.config_file()?;
    let (file, directory) = (config.server, config.directory);
    let listen = listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    // A certificate or key that does not work stops the start before anything else.
    let tls = tls.load(&file)?;
    let mut options = data.options_with(file)?;
    if start == StartMode::Demo && options.public_url.is_none() {
        // The demo's certificates point to its own portal for the CRL, OCSP and caIssuers.
        options.public_url = Some(own_url(listen, tls.is_some()));
    }
    let tessera = open_with(Options {
        start,
        ..demo_trust(start, options)
    })
    .await?;
    let tessera = directory_cmd::attach(tessera, directory)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("  Operator Portal: {scheme}://{listen}");
    tessera_server::serve::serve(tessera, listen, tls)
        .await
        .map_err(|e| format!("cannot serve on {listen}: {e}"))
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Init {
            data,
            admin,
            admin_password_file,
            demo,
            simulated_printer,
        } => init(&data, admin, admin_password_file, demo, simulated_printer).await,
        Command::Demo { data, listen, tls } => {
            serve(data, Some(listen), tls, StartMode::Demo).await
        }
        Command::Serve { data, listen, tls } => serve(data, listen, tls, StartMode::Existing).await,
        Command::Issue {
            data,
            user,
            policy,
            layout,
            pin,
            cancel,
            reader,
            printer,
            json: _,
        } => {
            let tessera = open(&data).await?;
            let out = headless::issue(
                &tessera,
                IssueArgs {
                    user,
                    policy,
                    layout,
                    pin,
                    cancel,
                    reader,
                    printer,
                },
            )
            .await
            .map_err(|e| format!("{} {e}", e.code().as_str()))?;
            print_outcome(&out)
        }
        Command::Print {
            data,
            device,
            printer,
        } => {
            let tessera = open(&data).await?;
            let out = headless::print(&tessera, &device, printer)
                .await
                .map_err(|e| format!("{} {e}", e.code().as_str()))?;
            print_outcome(&out)
        }
        Command::Printer { command } => printer_command(command).await,
        Command::Audit { command } => audit_command(command).await,
        Command::Stock { command } => stock_command(command).await,
        Command::Directory { command } => directory_cmd::directory_command(command).await,
        Command::Operators { command } => operators_cmd::operators_command(command).await,
        Command::Users { command } => users_cmd::users_command(command).await,
        Command::Station(cli) => station_cmd::station(cli).await,
        Command::Stations { command } => station_cmd::stations(command).await,
        Command::Unlock {
            data,
            device,
            reader,
            new_pin,
            reason,
        } => {
            let tessera = open(&data).await?;
            let out = headless::unlock(&tessera, &device, reader, new_pin, &reason)
                .await
                .map_err(|e| format!("{} {e}", e.code().as_str()))?;
            println!("{out}");
            Ok(())
        }
        Command::Card { command } => card_cmd::card_command(command).await,
        Command::CardSim {
            print_attestation_root: true,
            ..
        } => {
            print!("{}", tessera_piv::card::attestation::root_certificate_pem());
            Ok(())
        }
        Command::CardSim {
            state,
            vpcd,
            firmware,
            remove_after_apdus,
            print_attestation_root: false,
        } => {
            // clap requires --state unless --print-attestation-root is given.
            let state = state.ok_or("--state is required")?;
            tokio::task::spawn_blocking(move || {
                card_sim::run(&state, vpcd, firmware, remove_after_apdus)
            })
            .await
            .map_err(|e| e.to_string())?
        }
        Command::Ca {
            command: CaCommand::RenewContentSigner { data },
        } => {
            let tessera = open(&data).await?;
            let out = headless::renew_content_signer(&tessera)
                .await
                .map_err(|e| format!("{} {e}", e.code().as_str()))?;
            println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
            Ok(())
        }
        Command::Ca {
            command: CaCommand::Show { data },
        } => {
            let tessera = open(&data).await?;
            let out = headless::show_ca(&tessera)
                .await
                .map_err(|e| format!("{} {e}", e.code().as_str()))?;
            println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
            Ok(())
        }
        Command::Ca { command } => tokio::task::spawn_blocking(move || ca_command(command))
            .await
            .map_err(|e| e.to_string())?,
        Command::BenchCa { seconds } => {
            let dir = std::env::temp_dir().join(format!("tessera-bench-ca-{}", std::process::id()));
            let figures = tessera_bench::ca::run(&dir, seconds).await;
            let _ = std::fs::remove_dir_all(&dir);
            println!("{}", figures?.report());
            Ok(())
        }
        Command::BenchRender { iterations } => {
            let dir =
                std::env::temp_dir().join(format!("tessera-bench-render-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let figures = tessera_bench::render::run(&dir, iterations.max(1)).await;
            let _ = std::fs::remove_dir_all(&dir);
            let figures = figures.map_err(|e| format!("{} {e}", e.code().as_str()))?;
            println!("{}", figures.report());
            Ok(())
        }
        Command::BenchStation { cards, delays } => {
            let dir =
                std::env::temp_dir().join(format!("tessera-bench-station-{}", std::process::id()));
            let figures = tessera_bench::station::run(&dir, cards.max(1), &delays).await;
            let _ = std::fs::remove_dir_all(&dir);
            let figures = figures.map_err(|e| format!("{} {e}", e.code().as_str()))?;
            println!("{}", figures.report());
            Ok(())
        }
        Command::BenchLoad {
            backend,
            database_url,
            replicas,
            stations,
            duration,
            cards,
            kill_replica_at,
            keep,
        } => {
            let options = tessera_bench::load::Options {
                exe: std::env::current_exe().map_err(|e| e.to_string())?,
                backend: tessera_bench::load::Backend::parse(&backend)?,
                database_url: database_url
                    .or_else(|| std::env::var("TESSERA_TEST_DATABASE_URL").ok()),
                replicas,
                stations,
                budget: match cards {
                    Some(n) => tessera_bench::load::Budget::Cards(n),
                    None => tessera_bench::load::Budget::Seconds(duration.unwrap_or(60)),
                },
                kill_replica_at,
                dir: std::env::temp_dir()
                    .join(format!("tessera-bench-load-{}", std::process::id())),
                keep,
            };
            let report = tessera_bench::load::run(&options).await?;
            println!("{}", report.render());
            if report.sound() {
                Ok(())
            } else {
                Err("the database is not sound after the run: see above".into())
            }
        }
        Command::BenchUsers {
            users,
            database,
            postgres_url,
            searches,
        } => {
            let options = tessera_bench::people::Options {
                users,
                databases: tessera_bench::people::Databases::parse(&database)?,
                postgres_url,
                searches,
            };
            let dir =
                std::env::temp_dir().join(format!("tessera-bench-users-{}", std::process::id()));
            let figures = tessera_bench::people::run(&dir, &options).await;
            let _ = std::fs::remove_dir_all(&dir);
            let figures = figures.map_err(|e| format!("{} {e}", e.code().as_str()))?;
            for f in figures {
                println!("{}", f.report());
            }
            Ok(())
        }
        Command::Bench { iterations } => {
            let dir = std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id()));
            let figures = tessera_bench::issuance::run(&dir, iterations.max(1)).await;
            let _ = std::fs::remove_dir_all(&dir);
            let figures = figures.map_err(|e| format!("{} {e}", e.code().as_str()))?;
            println!("{}", figures.report());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

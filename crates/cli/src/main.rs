//! The one Tessera binary. Each command is a thin wrapper around `tessera-server`.

mod card_sim;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_server::headless::{self, IssueArgs};
use tessera_server::{Options, Readers, Tessera};

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
struct DataArgs {
    /// Where Tessera keeps its database, CA, secrets, virtual cards and printed cards.
    #[arg(long = "data", default_value = "tessera-data")]
    data: PathBuf,
    /// PostgreSQL URL (postgres://...) instead of the SQLite file in the data folder.
    #[arg(long, env = "TESSERA_DATABASE_URL")]
    database_url: Option<String>,
    /// `pcsc` adds the PC/SC readers of this machine to the station (build feature `pcsc`).
    #[arg(long, value_enum, default_value_t = ReaderChoice::Simulated)]
    readers: ReaderChoice,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ReaderChoice {
    Simulated,
    Pcsc,
}

impl DataArgs {
    fn options(&self) -> Options {
        Options {
            data_dir: self.data.clone(),
            database_url: self.database_url.clone(),
            readers: match self.readers {
                ReaderChoice::Simulated => Readers::Simulated,
                ReaderChoice::Pcsc => Readers::Pcsc,
            },
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// The whole system on its embedded default: SQLite, software CA, simulated card printer.
    Demo {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
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
        /// Print JSON (the only output format today; kept for scripts that say what they expect).
        #[arg(long)]
        json: bool,
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
    },
    /// Put a virtual PIV card into pcscd's virtual reader (vsmartcard vpcd). Type `r` + Enter to
    /// remove the card, `i` + Enter to insert it again; it also comes back by itself when pcscd
    /// restarts.
    CardSim {
        /// The card's state file: a blank card is created if it does not exist; a card Tessera
        /// issued (its `card_state`) works too.
        #[arg(long)]
        state: PathBuf,
        /// vpcd's address (reader "Virtual PCD 00 00" listens on 35963, "00 01" on 35964).
        #[arg(long, default_value = "127.0.0.1:35963")]
        vpcd: SocketAddr,
    },
    /// Measure personalisation and rendering speed on this machine; prints the figures.
    Bench {
        /// How many cards to personalise and render.
        #[arg(long, default_value_t = 20)]
        iterations: usize,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn open(data: &DataArgs) -> Result<Tessera, String> {
    let (tessera, admin_password) = Tessera::open(&data.options())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(password) = admin_password {
        // Shown once, here; only its argon2 hash is stored.
        eprintln!();
        eprintln!("  Tessera created its data in {}", data.data.display());
        eprintln!("  Operator: admin");
        eprintln!("  Password: {}", password.expose());
        eprintln!("  (shown only this once: write it down)");
        eprintln!();
    }
    Ok(tessera)
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Demo { data, listen } => {
            let tessera = open(&data).await?;
            eprintln!("  Operator Portal: http://{listen}");
            tessera_server::serve::serve(tessera, listen)
                .await
                .map_err(|e| format!("cannot serve on {listen}: {e}"))
        }
        Command::Issue {
            data,
            user,
            policy,
            layout,
            pin,
            cancel,
            reader,
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
                },
            )
            .await
            .map_err(|e| format!("{} {e}", e.code().as_str()))?;
            println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
            Ok(())
        }
        Command::Unlock {
            data,
            device,
            reader,
            new_pin,
        } => {
            let tessera = open(&data).await?;
            let out = headless::unlock(&tessera, &device, reader, new_pin)
                .await
                .map_err(|e| format!("{} {e}", e.code().as_str()))?;
            println!("{out}");
            Ok(())
        }
        Command::CardSim { state, vpcd } => {
            tokio::task::spawn_blocking(move || card_sim::run(&state, vpcd))
                .await
                .map_err(|e| e.to_string())?
        }
        Command::Bench { iterations } => {
            let dir = std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id()));
            let figures = tessera_server::bench::run(&dir, iterations.max(1)).await;
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

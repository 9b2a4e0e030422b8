//! `tessera card check`: opens a card (a PC/SC reader, or a virtual card's state file), runs
//! `tessera-piv`'s checker over it and prints its report, as text or JSON. The exit status is 0
//! when the card passes and 1 when an object fails or a mandatory one is missing. The PIN comes
//! from a file or standard input, never from the command line, and is never printed.

use clap::{Args, Subcommand};
use std::io::BufRead;
use std::path::PathBuf;
use tessera_core::ports::CardTransport;
use tessera_core::secret::Pin;
use tessera_piv::check::{check_card, parse_ca_pem, CheckOptions};
use tessera_piv::PivClient;
use zeroize::Zeroizing;

#[derive(Subcommand)]
pub enum CardCommand {
    /// Check every data object of any PIV card against SP 800-73-4, SP 800-76-2 and
    /// SP 800-78-4 (tags, order, lengths, signatures, Security Object hashes, certificate
    /// profiles) and prove each certificate's key is in its slot; prints one report per object.
    /// Exit status 0 when the card passes, 1 when something fails or a mandatory object is
    /// missing.
    Check(CheckArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// The PC/SC reader holding the card, e.g. "Virtual PCD 00 00" (needs the `pcsc` build).
    #[arg(
        long,
        required_unless_present = "virtual_card",
        conflicts_with = "virtual_card"
    )]
    reader: Option<String>,
    /// A virtual card's state file (`tessera card-sim --state`, a demo card's `card_state`).
    #[arg(long = "virtual", value_name = "FILE")]
    virtual_card: Option<PathBuf>,
    /// Read the PIN from this file (first line): the biometrics and printed information are read
    /// and the keys of 9A, 9C and 9D prove themselves. Without a PIN they are skipped.
    #[arg(long, conflicts_with = "pin_stdin")]
    pin_file: Option<PathBuf>,
    /// Read the PIN from the first line of standard input.
    #[arg(long)]
    pin_stdin: bool,
    /// CA certificates (PEM: issuing CA and root) the card's certificates must chain to.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Do not count missing fingerprints as a failure (for issuers whose cards carry no
    /// biometrics by policy; SP 800-73-4 makes them mandatory).
    #[arg(long)]
    fingerprints_optional: bool,
}

fn read_pin(args: &CheckArgs) -> Result<Option<Pin>, String> {
    // What was read is wiped when dropped, as the Pin made from it will be.
    let line = if let Some(path) = &args.pin_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the PIN file {}: {e}", path.display()))?,
        );
        Zeroizing::new(text.lines().next().unwrap_or_default().to_string())
    } else if args.pin_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the PIN from standard input: {e}"))?;
        line
    } else {
        return Ok(None);
    };
    let pin = line.trim_end_matches(['\r', '\n']);
    if pin.is_empty() {
        return Err("the PIN is empty".into());
    }
    Ok(Some(Pin::new(pin)))
}

async fn open(args: &CheckArgs) -> Result<Box<dyn CardTransport>, String> {
    if let Some(path) = &args.virtual_card {
        // Opening a missing file would create a blank card: refuse instead.
        if !path.exists() {
            return Err(format!("no virtual card at {}", path.display()));
        }
        let transport = tessera_piv::VirtualCardTransport::open(path).map_err(|e| e.to_string())?;
        return Ok(Box::new(transport));
    }
    let reader = args
        .reader
        .clone()
        .ok_or("--reader or --virtual is required")?;
    connect_reader(reader).await
}

#[cfg(feature = "pcsc")]
async fn connect_reader(reader: String) -> Result<Box<dyn CardTransport>, String> {
    let transport =
        tokio::task::spawn_blocking(move || tessera_piv::pcsc::PcscTransport::connect(&reader))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    Ok(Box::new(transport))
}

#[cfg(not(feature = "pcsc"))]
async fn connect_reader(_reader: String) -> Result<Box<dyn CardTransport>, String> {
    Err(
        "this tessera was built without PC/SC: build it with `--features pcsc`, or use --virtual"
            .into(),
    )
}

pub async fn card_command(command: CardCommand) -> Result<(), String> {
    match command {
        CardCommand::Check(args) => {
            let mut options = CheckOptions::now();
            options.pin = read_pin(&args)?;
            options.require_fingerprints = !args.fingerprints_optional;
            if let Some(path) = &args.ca {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                options.ca = parse_ca_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            let mut client = PivClient::new(open(&args).await?);
            let result = check_card(&mut client, &options).await;
            tessera_core::ports::PivCard::close(&mut client).await;
            let report = result.map_err(|e| format!("the card could not be checked: {e}"))?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
                );
            } else {
                print!("{}", report.to_text());
            }
            if report.passed {
                Ok(())
            } else {
                Err("the card does not pass the check (see the report)".into())
            }
        }
    }
}

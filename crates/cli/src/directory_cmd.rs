//! `tessera directory sync [--dry-run]`: one sync of the `[directory]` section's directory, its
//! report printed; a directory that cannot be read changes nothing and ends with a non-zero
//! exit status. Also how `serve` gets the directory it syncs on its schedule.

use crate::DataArgs;
use clap::Subcommand;
use tessera_core::people::Report;
use tessera_core::services::Actor;
use tessera_server::directory::{DirectoryConfig, SyncError};
use tessera_server::Tessera;

#[derive(Subcommand)]
pub enum DirectoryCommand {
    /// Read the whole directory of the configuration's [directory] section and apply it: people
    /// created, updated, disabled when it no longer lists them (their cards deprovisioned by the
    /// Settings' rule), enabled again when they come back.
    Sync {
        #[command(flatten)]
        data: DataArgs,
        /// Report what would change, and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn directory_command(command: DirectoryCommand) -> Result<(), String> {
    match command {
        DirectoryCommand::Sync {
            data,
            dry_run,
            json,
        } => {
            let config = data.config_file()?.directory.ok_or(
                "the configuration has no [directory] section (give it with --config or \
                 TESSERA_CONFIG; see the administrator guide, \"Directory\")",
            )?;
            let tessera = attach(crate::open(&data).await?, Some(config))?;
            let sync = tessera.directory.clone().ok_or("no directory")?;
            let report = sync
                .run(&tessera.services, &Actor::cli(), dry_run, "cli", true)
                .await
                .map_err(|e| match e {
                    SyncError::Core(e) => format!("{} {e}", e.code().as_str()),
                    SyncError::Busy => "another sync is running".into(),
                })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
            } else {
                print!("{}", text(&report));
            }
            Ok(())
        }
    }
}

/// The server with the configuration's directory, when it has one.
pub fn attach(tessera: Tessera, config: Option<DirectoryConfig>) -> Result<Tessera, String> {
    match config {
        Some(config) => tessera.with_directory(config).map_err(|e| e.to_string()),
        None => Ok(tessera),
    }
}

/// The report for people: the counts, then each change on a line.
fn text(r: &Report) -> String {
    let mut out = format!(
        "{}{}\n{}\n",
        r.origin,
        if r.dry_run {
            " (dry run: nothing was written)"
        } else {
            ""
        },
        r.summary()
    );
    let mut line = |label: &str, items: Vec<String>| {
        for item in items {
            out.push_str(&format!("{label}\t{item}\n"));
        }
    };
    line("created", r.created.iter().map(|u| u.to_string()).collect());
    line(
        "updated",
        r.updated
            .iter()
            .map(|u| format!("{} ({})", u.uid, u.fields.join(", ")))
            .collect(),
    );
    line(
        "disabled",
        r.disabled.iter().map(|u| u.to_string()).collect(),
    );
    line("enabled", r.enabled.iter().map(|u| u.to_string()).collect());
    line(
        "rejected",
        r.rejected
            .iter()
            .map(|x| format!("{}: {}", x.at, x.reason))
            .collect(),
    );
    line(
        "card",
        r.cards
            .iter()
            .map(|c| format!("{} of {}: {} -> {}", c.serial, c.uid, c.from, c.to))
            .collect(),
    );
    line(
        "resumable",
        r.resumable
            .iter()
            .map(|c| format!("{} of {}", c.serial, c.uid))
            .collect(),
    );
    out
}

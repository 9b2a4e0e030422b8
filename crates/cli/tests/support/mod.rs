//! What the command-line tests share: running the built `tessera` on a data folder.

use std::path::Path;
use std::process::{Command, Output};

/// `tessera ARGS --data DATA`, quietly, to completion.
pub fn tessera(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .env("RUST_LOG", "warn")
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap()
}

/// Standard output and error together.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

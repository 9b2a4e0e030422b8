//! Prints Tessera's test card on an IPP printer, with a CA file for `ipps://`, and says how it
//! went: `cargo run -p tessera-print --example ipp_test_page -- ipps://host/ipp/print [CA.pem]`.
//! `scripts/ipp.sh` uses it to check TLS against ippeveprinter.

use std::process::ExitCode;
use tessera_core::ports::CardPrinter;
use tessera_print::IppPrinter;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (uri, ca) = match args.as_slice() {
        [uri] => (uri, None),
        [uri, ca] => (uri, Some(ca)),
        _ => {
            eprintln!("usage: ipp_test_page URI [CA.pem]");
            return ExitCode::from(2);
        }
    };
    let printer = IppPrinter::new("Test printer", uri, None).and_then(|p| match ca {
        Some(ca) => p.with_ca_file(ca),
        None => Ok(p),
    });
    let printer = match printer {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    println!("state: {}", printer.status().await.state);
    match tessera_print::ipp::test_page(&printer, uri, "now").await {
        Ok(receipt) => {
            println!("{}: {}", receipt.state, receipt.message);
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("failed: {e}");
            ExitCode::FAILURE
        }
    }
}

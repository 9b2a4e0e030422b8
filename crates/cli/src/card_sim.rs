//! `tessera card-sim`: a virtual PIV card in pcscd's virtual reader, for as long as it runs.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tessera_piv::vpcd::{serve_once, SessionEnd};
use tessera_piv::VirtualCard;

/// `firmware`: what a card created here emulates (an existing state file keeps its own).
/// `remove_after`: the card leaves the reader when the command with this number (counted from
/// the start) arrives, once, as if pulled; it is inserted again a second later.
pub fn run(
    state: &Path,
    vpcd: SocketAddr,
    firmware: [u8; 3],
    remove_after: Option<u64>,
) -> Result<(), String> {
    let mut card = if state.exists() {
        VirtualCard::load(state).map_err(|e| format!("cannot load {}: {e}", state.display()))?
    } else {
        let serial = 10_000_000 + rand::random::<u32>() % 90_000_000;
        let card = VirtualCard::blank_with_firmware(serial, firmware, rand::rngs::OsRng);
        card.save(state)
            .map_err(|e| format!("cannot create {}: {e}", state.display()))?;
        card
    };
    let inserted = Arc::new(AtomicBool::new(true));
    watch_keyboard(inserted.clone());
    if card.take_dirty() {
        // A state file from before attestation keys got one on load; keep it.
        card.save(state)
            .map_err(|e| format!("cannot update {}: {e}", state.display()))?;
    }
    eprintln!(
        "card {} (firmware {}, {}) for vpcd at {vpcd}; `r` removes it, `i` inserts it",
        card.serial(),
        tessera_piv::card::firmware::firmware_string(card.firmware()),
        state.display()
    );
    let mut backoff = Duration::from_millis(100);
    let mut apdus = 0u64;
    loop {
        if !inserted.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let keep = || inserted.load(Ordering::SeqCst);
        let mut before_apdu = || {
            apdus += 1;
            let pull = remove_after == Some(apdus);
            if pull {
                eprintln!("card pulled at command {apdus}");
            }
            !pull
        };
        match serve_once(&mut card, state, vpcd, &keep, &mut before_apdu) {
            Ok(SessionEnd::Removed) if !inserted.load(Ordering::SeqCst) => {
                eprintln!("card removed")
            }
            Ok(SessionEnd::Removed) => {
                // Pulled by --remove-after-apdus: back in the reader a moment later.
                std::thread::sleep(Duration::from_secs(1));
            }
            Ok(SessionEnd::Closed) => {
                eprintln!("vpcd closed the connection; reconnecting");
                backoff = Duration::from_millis(100);
            }
            Err(e) => {
                // pcscd not (yet) running: try again, more slowly, up to every 5 seconds.
                tracing::debug!(error = %e, "vpcd not reachable");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        }
        card.reset();
    }
}

/// `r` + Enter removes the card, `i` + Enter inserts it. Without a terminal, nothing to do.
fn watch_keyboard(inserted: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line.as_deref().map(str::trim) {
                Ok("r") => inserted.store(false, Ordering::SeqCst),
                Ok("i") => {
                    inserted.store(true, Ordering::SeqCst);
                    eprintln!("card inserted");
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
}

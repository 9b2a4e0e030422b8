//! [`VirtualCardTransport`]: a [`CardTransport`] to a [`VirtualCard`] in this process, saving the
//! card's state file after every command that changed it, with a switch that pulls the card out
//! of the reader for tests of interrupted issuance.

use crate::card::VirtualCard;
use async_trait::async_trait;
use rand::RngCore;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tessera_core::ports::{CardError, CardTransport};

/// A card shared between transports (for example the demo station and a vpcd bridge).
pub type SharedCard = Arc<Mutex<VirtualCard>>;

pub struct VirtualCardTransport {
    card: SharedCard,
    path: Option<PathBuf>,
    removed: Arc<AtomicBool>,
    /// Whether the last command found the card removed, so a reinsertion resets it.
    was_removed: bool,
    /// Commands left before the card is pulled, if a failure is scheduled.
    fail_after: Option<usize>,
}

impl std::fmt::Debug for VirtualCardTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualCardTransport")
            .field("path", &self.path)
            .field("removed", &self.removed.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

fn lock(card: &SharedCard) -> MutexGuard<'_, VirtualCard> {
    // A panic elsewhere while holding the lock cannot leave the card half-updated in a way that
    // matters more than losing the card altogether, so keep using it.
    card.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl VirtualCardTransport {
    /// Opens the card stored at `path`, or creates a blank card with a random serial there.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CardError> {
        let path = path.as_ref();
        let card = if path.exists() {
            VirtualCard::load(path).map_err(|e| CardError::Unreachable(e.to_string()))?
        } else {
            // Eight decimal digits, like YubiKey serials.
            let serial = 10_000_000 + rand::rngs::OsRng.next_u32() % 90_000_000;
            let mut card =
                VirtualCard::blank(serial, rand::rngs::OsRng).with_rng(rand::rngs::OsRng);
            card.save(path)
                .map_err(|e| CardError::Unreachable(e.to_string()))?;
            card.take_dirty();
            card
        };
        Ok(Self::new(
            Arc::new(Mutex::new(card)),
            Some(path.to_path_buf()),
        ))
    }

    /// A transport to an existing card; with a `path`, state changes are saved there.
    pub fn new(card: SharedCard, path: Option<PathBuf>) -> Self {
        Self {
            card,
            path,
            removed: Arc::new(AtomicBool::new(false)),
            was_removed: false,
            fail_after: None,
        }
    }

    /// The card behind this transport.
    pub fn card(&self) -> SharedCard {
        Arc::clone(&self.card)
    }

    /// A switch that pulls the card (`true`) or puts it back (`false`). While pulled, `transmit`
    /// fails with [`CardError::Unreachable`]; a card put back has lost its security state.
    pub fn removal_switch(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.removed)
    }

    /// Pulls the card after `commands` more successful commands.
    pub fn fail_after(&mut self, commands: usize) {
        self.fail_after = Some(commands);
    }

    /// Power-cycles the card: PIN verification and management-key authentication are lost.
    pub fn power_cycle(&self) {
        lock(&self.card).reset();
    }
}

/// One command on the card, and its state saved when it changed.
fn process(
    card: &SharedCard,
    path: Option<&Path>,
    command: &[u8],
    reset: bool,
) -> Result<Vec<u8>, CardError> {
    let mut card = lock(card);
    if reset {
        card.reset();
    }
    let response = card.process(command);
    if card.take_dirty() {
        if let Some(path) = path {
            if let Err(e) = card.save(path) {
                // Keep the change pending so the next command tries to save it again.
                card.mark_dirty();
                return Err(CardError::Unreachable(format!(
                    "the virtual card could not be saved: {e}"
                )));
            }
        }
    }
    Ok(response)
}

#[async_trait]
impl CardTransport for VirtualCardTransport {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        if self.fail_after == Some(0) {
            self.fail_after = None;
            self.removed.store(true, Ordering::SeqCst);
        }
        if self.removed.load(Ordering::SeqCst) {
            self.was_removed = true;
            return Err(CardError::Unreachable("the card was removed".into()));
        }
        if let Some(left) = &mut self.fail_after {
            *left -= 1;
        }
        let (card, path) = (Arc::clone(&self.card), self.path.clone());
        let (command, reset) = (command.to_vec(), std::mem::take(&mut self.was_removed));
        let work = move || process(&card, path.as_deref(), &command, reset);
        // The card computes like a real one: an RSA key takes seconds. On a runtime that work
        // goes to a blocking thread, so that it never holds an async worker (and the tasks
        // queued behind it, such as a job's lease heartbeat).
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(work)
                .await
                .map_err(|e| CardError::Unreachable(format!("the virtual card failed: {e}")))?,
            Err(_) => work(),
        }
    }

    fn atr(&self) -> Vec<u8> {
        lock(&self.card).atr()
    }

    fn extended_length(&self) -> bool {
        true
    }
}

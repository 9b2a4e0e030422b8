//! The simulated card printer: Start feeds a fresh blank virtual PIV card into its encoder (or a
//! used card put back into its hopper), and printing writes both card faces as PNG and one PDF
//! into the output folder.

use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tessera_core::ports::{
    CardError, CardPrinter, CardTransport, PortError, PrintReceipt, PrinterInfo, RenderedCard,
};

/// Failures the simulated printer can be told to have, so that operators can rehearse them and
/// tests can prove that every failure ends in a known state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// The card is pulled from the encoder after this many more commands.
    pub pull_card_after: Option<usize>,
    /// With `pull_card_after`: the command the pull interrupts still reaches the card and is
    /// carried out, only its answer is lost (a card pulled while it answers).
    pub answer_lost: bool,
    /// The printer does not answer print jobs.
    pub printer_offline: bool,
    /// A tampered station: the public key in every ECC P-256 GENERATE answer is replaced with
    /// one whose private key the attacker knows, as a station that wants certificates for its own
    /// keys would do. Key attestation must catch it.
    pub substitute_generated_keys: bool,
}

/// Makes and opens virtual cards; implemented with `tessera-piv` by the server.
pub trait VirtualCards: Send + Sync {
    /// Creates a blank card and returns the path of its state file inside `dir`.
    fn insert_blank(&self, dir: &Path) -> Result<PathBuf, PortError>;
    /// Connects to the card whose state is in `state_file`.
    fn connect(&self, state_file: &Path) -> Result<Box<dyn CardTransport>, CardError>;
}

pub struct SimulatedCardPrinter {
    pub name: String,
    pub encoder_reader: String,
    cards_dir: PathBuf,
    output_dir: PathBuf,
    cards: Arc<dyn VirtualCards>,
    /// The state file of the card now in the encoder.
    in_encoder: Mutex<Option<PathBuf>>,
    /// Used cards put back into the hopper, fed before any blank one.
    hopper: Mutex<std::collections::VecDeque<PathBuf>>,
    jobs: AtomicU64,
    faults: Mutex<Faults>,
}

impl SimulatedCardPrinter {
    pub fn new(
        name: impl Into<String>,
        encoder_reader: impl Into<String>,
        cards_dir: PathBuf,
        output_dir: PathBuf,
        cards: Arc<dyn VirtualCards>,
    ) -> Self {
        Self {
            name: name.into(),
            encoder_reader: encoder_reader.into(),
            cards_dir,
            output_dir,
            cards,
            in_encoder: Mutex::new(None),
            hopper: Mutex::new(std::collections::VecDeque::new()),
            jobs: AtomicU64::new(0),
            faults: Mutex::new(Faults::default()),
        }
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().expect("faults lock") = faults;
    }

    fn faults(&self) -> Faults {
        self.faults.lock().expect("faults lock").clone()
    }

    /// The state file of the card in the encoder, if one was fed.
    pub fn card_in_encoder(&self) -> Option<PathBuf> {
        self.in_encoder.lock().expect("encoder lock").clone()
    }

    /// Puts a used card (its state file) back into the hopper, as an operator does with a card
    /// pulled from the encoder: the next Start feeds it instead of a blank one.
    pub fn put_in_hopper(&self, state_file: PathBuf) {
        self.hopper
            .lock()
            .expect("hopper lock")
            .push_back(state_file);
    }

    /// Moves the next card to the encoder: one from the hopper, else a fresh blank one.
    pub fn feed(&self) -> Result<PathBuf, PortError> {
        let used = self.hopper.lock().expect("hopper lock").pop_front();
        let path = match used {
            Some(path) => path,
            None => {
                std::fs::create_dir_all(&self.cards_dir)
                    .map_err(|e| PortError::new(format!("cannot create the card folder: {e}")))?;
                self.cards.insert_blank(&self.cards_dir)?
            }
        };
        *self.in_encoder.lock().expect("encoder lock") = Some(path.clone());
        Ok(path)
    }

    /// Moves the card out of the encoder to the output tray (Cancel); returns its state file,
    /// which stays as the card left the encoder.
    pub fn eject(&self) -> Option<PathBuf> {
        self.in_encoder.lock().expect("encoder lock").take()
    }

    pub fn connect(&self) -> Result<Box<dyn CardTransport>, CardError> {
        let path = self.card_in_encoder().ok_or_else(|| {
            CardError::NoCard(
                "there is no card in the printer's encoder: press Start to feed one".into(),
            )
        })?;
        let mut card = self.cards.connect(&path)?;
        let faults = self.faults();
        if faults.substitute_generated_keys {
            card = Box::new(Substituting { card });
        }
        Ok(match faults.pull_card_after {
            Some(remaining) => Box::new(Pulled {
                card,
                remaining,
                answer_lost: faults.answer_lost,
                pulled: false,
            }),
            None => card,
        })
    }

    /// Writes the card faces to the output folder, as the printer's "print".
    pub fn print_files(
        &self,
        job_name: &str,
        card: &RenderedCard,
    ) -> Result<PrintReceipt, PortError> {
        if self.faults().printer_offline {
            return Err(PortError::new(format!(
                "the printer {} is offline: check its power and cable",
                self.name
            )));
        }
        std::fs::create_dir_all(&self.output_dir)
            .map_err(|e| PortError::new(format!("cannot create the output folder: {e}")))?;
        let n = self.jobs.fetch_add(1, Ordering::Relaxed) + 1;
        let stem = format!("{}-{}", slug(job_name), unique_suffix(n));
        let mut files = Vec::new();
        let mut write = |suffix: &str, bytes: &[u8]| -> Result<(), PortError> {
            let path = self.output_dir.join(format!("{stem}-{suffix}"));
            std::fs::write(&path, bytes)
                .map_err(|e| PortError::new(format!("cannot write {}: {e}", path.display())))?;
            files.push(path.display().to_string());
            Ok(())
        };
        write("front.png", &card.front_png)?;
        if let Some(back) = &card.back_png {
            write("back.png", back)?;
        }
        write("card.pdf", &card.pdf)?;
        Ok(PrintReceipt {
            printer_job: n.to_string(),
            state: "completed".into(),
            message: format!("Printed on {}", self.name),
            files,
        })
    }
}

#[async_trait]
impl CardPrinter for SimulatedCardPrinter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "simulated"
    }

    fn encoder_reader(&self) -> Option<&str> {
        Some(&self.encoder_reader)
    }

    async fn status(&self) -> PrinterInfo {
        PrinterInfo {
            name: self.name.clone(),
            kind: "simulated".into(),
            encoder_reader: Some(self.encoder_reader.clone()),
            state: if self.faults().printer_offline {
                "offline".into()
            } else {
                "idle".into()
            },
        }
    }

    // Feeding and printing write a few small files; that short blocking is accepted here to
    // keep the simulator simple (a real printer's driver waits on the network instead).
    async fn feed_card(&self) -> Result<(), PortError> {
        self.feed().map(|_| ())
    }

    async fn eject_card(&self) -> Result<(), PortError> {
        self.eject();
        Ok(())
    }

    async fn connect_encoder(&self) -> Option<Result<Box<dyn CardTransport>, CardError>> {
        Some(self.connect())
    }

    async fn card_in_encoder(&self) -> Option<bool> {
        Some(self.in_encoder.lock().expect("encoder lock").is_some())
    }

    async fn print(&self, job_name: &str, card: &RenderedCard) -> Result<PrintReceipt, PortError> {
        self.print_files(job_name, card)
    }
}

/// A card that leaves the encoder after a number of commands.
struct Pulled {
    card: Box<dyn CardTransport>,
    remaining: usize,
    /// The command that meets the pull is still carried out by the card.
    answer_lost: bool,
    pulled: bool,
}

#[async_trait]
impl CardTransport for Pulled {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        if self.remaining == 0 {
            if self.answer_lost && !self.pulled {
                let _ = self.card.transmit(command).await;
            }
            self.pulled = true;
            return Err(CardError::Unreachable(
                "the card was removed from the encoder".into(),
            ));
        }
        self.remaining -= 1;
        self.card.transmit(command).await
    }

    fn atr(&self) -> Vec<u8> {
        self.card.atr()
    }

    fn extended_length(&self) -> bool {
        self.card.extended_length()
    }
}

/// The tampered station of [`Faults::substitute_generated_keys`].
struct Substituting {
    card: Box<dyn CardTransport>,
}

/// The P-256 base point G (SEC 2, 2.4.2): the public key of the private key 1, which anyone knows.
const P256_G: &str = "6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296\
                      4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5";

#[async_trait]
impl CardTransport for Substituting {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        const GENERATE: u8 = 0x47;
        let mut answer = self.card.transmit(command).await?;
        // 7F49 43 { 86 41 { 04 X Y } } 9000: an uncompressed P-256 point, 72 bytes in all.
        if command.get(1) == Some(&GENERATE)
            && answer.len() == 72
            && answer.starts_with(&[0x7F, 0x49, 0x43, 0x86, 0x41, 0x04])
        {
            let g = hex::decode(P256_G).expect("a constant");
            answer[6..70].copy_from_slice(&g);
        }
        Ok(answer)
    }

    fn atr(&self) -> Vec<u8> {
        self.card.atr()
    }

    fn extended_length(&self) -> bool {
        self.card.extended_length()
    }
}

/// A file-name-safe form of a job name.
fn slug(name: &str) -> String {
    let s = tessera_core::layouts::slug(name);
    if s.is_empty() {
        "card".into()
    } else {
        s
    }
}

/// Job numbers restart with the process; the process id keeps files of two runs apart.
fn unique_suffix(n: u64) -> String {
    format!("{}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_safe_file_names() {
        assert_eq!(slug("Jane Doe 12345"), "jane-doe-12345");
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("<>"), "card");
    }
}

//! PC/SC readers through pcsc-lite (cargo feature `pcsc`): list readers, wait for a card to be
//! inserted or removed, and a [`CardTransport`] that holds a PC/SC transaction for its lifetime,
//! so that no other application talks to the card between the commands of one issuance.
//!
//! PC/SC calls block, so each transport owns a thread that owns the context, the card and the
//! transaction; `transmit` hands it one command at a time.

use async_trait::async_trait;
use std::ffi::CString;
use std::sync::mpsc;
use std::time::Duration;
use tessera_core::ports::{CardError, CardTransport};

fn unreachable(what: &str, e: pcsc::Error) -> CardError {
    CardError::Unreachable(format!("{what}: {e}"))
}

fn context() -> Result<pcsc::Context, CardError> {
    pcsc::Context::establish(pcsc::Scope::User)
        .map_err(|e| unreachable("the smart card service (pcscd) is not available", e))
}

/// The names of the readers pcscd knows now.
pub fn list_readers() -> Result<Vec<String>, CardError> {
    let ctx = context()?;
    let mut buf = vec![0u8; 8192];
    match ctx.list_readers(&mut buf) {
        Ok(readers) => Ok(readers.map(|r| r.to_string_lossy().into_owned()).collect()),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(unreachable("cannot list readers", e)),
    }
}

/// Waits until a card is present in `reader` (`present = true`) or gone from it (`false`).
/// Returns false on timeout.
pub fn wait_for_card(reader: &str, present: bool, timeout: Duration) -> Result<bool, CardError> {
    let ctx = context()?;
    let name =
        CString::new(reader).map_err(|_| CardError::Unreachable("bad reader name".into()))?;
    let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let has_card = |s: &pcsc::ReaderState| s.event_state().contains(pcsc::State::PRESENT);
        ctx.get_status_change(Duration::ZERO, &mut states)
            .or_else(|e| {
                if e == pcsc::Error::Timeout {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| unreachable("cannot watch the reader", e))?;
        if has_card(&states[0]) == present {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        for s in &mut states {
            s.sync_current_state();
        }
        match ctx.get_status_change(left, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(unreachable("cannot watch the reader", e)),
        }
    }
}

type Reply = Result<Vec<u8>, CardError>;

/// A card in a PC/SC reader, inside one PC/SC transaction.
pub struct PcscTransport {
    /// None once dropped: closing the channel ends the reader thread's session.
    commands: Option<mpsc::Sender<(Vec<u8>, mpsc::Sender<Reply>)>>,
    atr: Vec<u8>,
    reader: String,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for PcscTransport {
    /// Ends the session and waits until the card is reset and released, so that whoever uses
    /// the reader next (this process exiting, another program) finds it idle, not mid-reset.
    fn drop(&mut self) {
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl PcscTransport {
    /// Connects to the card in `reader` and begins a transaction.
    pub fn connect(reader: &str) -> Result<Self, CardError> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<Vec<u8>, CardError>>();
        let (commands, inbox) = mpsc::channel::<(Vec<u8>, mpsc::Sender<Reply>)>();
        let name = reader.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("pcsc {reader}"))
            .spawn(move || session(&name, ready_tx, inbox))
            .map_err(|e| CardError::Unreachable(format!("cannot start the reader thread: {e}")))?;
        let atr = ready_rx
            .recv()
            .map_err(|_| CardError::Unreachable("the reader thread ended".into()))??;
        Ok(Self {
            commands: Some(commands),
            atr,
            reader: reader.to_owned(),
            thread: Some(thread),
        })
    }
}

/// The reader thread: connect, hold a transaction, answer commands until the transport is dropped.
fn session(
    reader: &str,
    ready: mpsc::Sender<Result<Vec<u8>, CardError>>,
    inbox: mpsc::Receiver<(Vec<u8>, mpsc::Sender<Reply>)>,
) {
    let opened = (|| {
        let ctx = context()?;
        let name =
            CString::new(reader).map_err(|_| CardError::Unreachable("bad reader name".into()))?;
        let card = ctx
            .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
            .map_err(|e| match e {
                pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => CardError::NoCard(format!(
                    "there is no card in the reader {reader}: insert one and try again"
                )),
                pcsc::Error::UnknownReader => CardError::NoReader(format!(
                    "there is no reader named {reader:?}: check that it is plugged in"
                )),
                e => unreachable(&format!("cannot connect to the card in {reader}"), e),
            })?;
        Ok::<_, CardError>((ctx, card))
    })();
    let (_ctx, mut card) = match opened {
        Ok(v) => v,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let atr = card
        .get_attribute_owned(pcsc::Attribute::AtrString)
        .unwrap_or_default();
    let tx = match card.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let _ = ready.send(Err(unreachable("cannot begin a transaction", e)));
            return;
        }
    };
    if ready.send(Ok(atr)).is_err() {
        return;
    }
    let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    while let Ok((command, reply)) = inbox.recv() {
        let answer = tx
            .transmit(&command, &mut buf)
            .map(<[u8]>::to_vec)
            .map_err(|e| match e {
                pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard | pcsc::Error::ResetCard => {
                    CardError::Unreachable(format!("the card was removed from {reader}"))
                }
                e => unreachable(&format!("the reader {reader} failed"), e),
            })
            .and_then(|answer| {
                // A reader whose card left mid-command can report success with no bytes at all
                // (vsmartcard's vpcd does); without a status word there is no card to talk to.
                if answer.len() < 2 {
                    Err(CardError::Unreachable(format!(
                        "the card in {reader} stopped answering (was it pulled out?)"
                    )))
                } else {
                    Ok(answer)
                }
            });
        let _ = reply.send(answer);
    }
    // The transaction ends first; then the card is reset as it is released, so that no PIN or
    // management-key authentication of this session survives into the next application's.
    drop(tx);
    if let Err((_, e)) = card.disconnect(pcsc::Disposition::ResetCard) {
        tracing::debug!(reader, error = %e, "disconnect failed");
    }
}

#[async_trait]
impl CardTransport for PcscTransport {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.commands
            .as_ref()
            .and_then(|c| c.send((command.to_vec(), reply_tx)).ok())
            .ok_or_else(|| CardError::Unreachable(format!("the reader {} is gone", self.reader)))?;
        // This waits for one PC/SC round trip (milliseconds) on the calling thread; the reader
        // thread does the blocking PC/SC call itself.
        reply_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| {
                CardError::Unreachable(format!(
                    "the reader {} did not answer in 30 seconds",
                    self.reader
                ))
            })?
    }

    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn extended_length(&self) -> bool {
        // Extended APDUs travel over T=1 only; a T=0 card gets chaining and GET RESPONSE.
        speaks_t1(&self.atr)
    }
}

/// Whether an ATR offers protocol T=1 (one of its TD bytes names protocol 1).
pub fn speaks_t1(atr: &[u8]) -> bool {
    let Some(&t0) = atr.get(1) else {
        return false;
    };
    // Each Y nibble says which of TA, TB, TC and TD follow; TD carries the protocol number.
    let (mut at, mut y) = (1usize, t0 >> 4);
    while y & 0x8 != 0 {
        at += 1 + (y & 0x7).count_ones() as usize;
        let Some(&td) = atr.get(at) else {
            return false;
        };
        if td & 0x0F == 1 {
            return true;
        }
        y = td >> 4;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::speaks_t1;

    #[test]
    fn reads_the_protocol_from_the_atr() {
        assert!(speaks_t1(&[0x3B, 0x8B, 0x01, 0x80]));
        assert!(
            speaks_t1(&[0x3B, 0x80, 0x80, 0x01, 0x01]),
            "T=1 named in TD2"
        );
        assert!(speaks_t1(&[0x3B, 0xF8, 0x13, 0x00, 0x00, 0x81, 0x31]));
        assert!(!speaks_t1(&[0x3B, 0x02, 0x14, 0x50]));
        assert!(!speaks_t1(&[]));
    }
}

//! Factory reset of a YubiKey-compatible PIV card, the way `ykman piv reset` does it: the card
//! accepts the Yubico RESET (INS FB) only once both the PIN and the PUK are blocked, so that nobody
//! who knows either is surprised by it. The client blocks them with values no card can hold (an
//! empty PIN and an empty PUK, eight bytes of padding), then resets.
//!
//! The sequence does not depend on the card's answers, so it travels as one APDU script:
//!
//! ```text
//!  GET VERSION                          9000 only: a card without the Yubico extensions is left alone
//!  VERIFY PIN (empty)          x 15     63Cx or 6983 (blocked) go on
//!  RESET RETRY COUNTER (empty PUK) x 15 63Cx or 6983 go on
//!  RESET                                9000 done; 6985 (more than 15 tries) sends the script again
//! ```
//!
//! Fifteen is the most tries a `63Cx` answer can count; a card allowing more (YubiKeys allow up to
//! 255) needs a few rounds. The trace redacts VERIFY and RESET RETRY COUNTER as always.

use super::*;
use tessera_core::ports::{ScriptCommand, SwPattern};

/// Tries per round: the most a `63Cx` status word can express.
const TRIES_PER_ROUND: usize = 15;
/// Rounds before giving up: 17 x 15 covers the 255 tries a YubiKey allows at most.
const MAX_ROUNDS: usize = 17;
/// The new PIN that RESET RETRY COUNTER carries. It never reaches the PIN, because the PUK sent
/// with it is empty and so always wrong; it is well-formed only so that a card checking the new
/// PIN's format first still counts the PUK try.
const UNUSED_PIN: &str = "00000000";

/// After a wrong PIN or PUK: tries left (`63Cx`) or blocked (`6983`).
const WRONG_OR_BLOCKED: [SwPattern; 2] = [
    SwPattern {
        value: sw::RETRIES_LEFT,
        mask: 0xFFF0,
    },
    SwPattern::exact(sw::AUTH_METHOD_BLOCKED),
];

impl PivClient {
    fn reset_script(&self) -> Result<Vec<ScriptCommand>, CardError> {
        let mut script = Vec::with_capacity(2 + 2 * TRIES_PER_ROUND);
        script.push(ScriptCommand::ok(self.with_answer(CommandApdu::new(
            0,
            ins::GET_VERSION,
            0,
            0,
        ))?));
        let verify = encode(
            &CommandApdu::new(0, ins::VERIFY, 0, PIN_REF).with_data(pin_block("").to_vec()),
        )?;
        for _ in 0..TRIES_PER_ROUND {
            script.push(ScriptCommand {
                apdu: verify.clone(),
                expect: WRONG_OR_BLOCKED.to_vec(),
            });
        }
        let mut data = pin_block("");
        data.extend_from_slice(&pin_block(UNUSED_PIN));
        let unblock = encode(
            &CommandApdu::new(0, ins::RESET_RETRY_COUNTER, 0, PIN_REF).with_data(data.to_vec()),
        )?;
        for _ in 0..TRIES_PER_ROUND {
            script.push(ScriptCommand {
                apdu: unblock.clone(),
                expect: WRONG_OR_BLOCKED.to_vec(),
            });
        }
        script.push(ScriptCommand::ok(encode(&CommandApdu::new(
            0,
            ins::RESET,
            0,
            0,
        ))?));
        Ok(script)
    }

    /// Blocks PIN and PUK and sends the Yubico RESET; see the module documentation.
    pub(super) async fn reset_to_factory(&mut self) -> Result<(), CardError> {
        let script = self.reset_script()?;
        let reset = script.len() - 1;
        for _ in 0..MAX_ROUNDS {
            let responses = self.run(&script).await?;
            // `run` checked that the script stopped at its last answer or ran to the end.
            let last = responses.len() - 1;
            let sw_ = tessera_core::ports::status_word(&responses[last]).unwrap_or(0);
            if last == reset {
                match sw_ {
                    sw::SUCCESS => {
                        // Writes collected for the card before the reset no longer apply.
                        self.deferred = None;
                        return Ok(());
                    }
                    // PIN or PUK has tries left still: the card allows more than one round.
                    sw::CONDITIONS_NOT_SATISFIED => continue,
                    other => return Err(status("RESET", other)),
                }
            }
            return Err(match last {
                0 => status("GET VERSION (a card without it is not reset)", sw_),
                i if i <= TRIES_PER_ROUND => status("VERIFY", sw_),
                _ => status("RESET RETRY COUNTER", sw_),
            });
        }
        Err(status("RESET", sw::CONDITIONS_NOT_SATISFIED))
    }
}

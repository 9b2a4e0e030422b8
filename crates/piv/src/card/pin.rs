//! VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER (SP 800-73-4 part 2, 3.2): the PIN
//! (key reference 80) and the PUK (81), their retry counters and blocking.

use super::{pad, same, Answer, VirtualCard, DEFAULT_PIN};
use crate::apdu::sw;
use zeroize::Zeroizing;

const PIN_REF: u8 = 0x80;
const PUK_REF: u8 = 0x81;
/// Key references SP 800-73-4 defines but this card does not have (global PIN, OCC).
const OTHER_REFS: [u8; 3] = [0x00, 0x96, 0x97];

/// A PIV PIN is 6 to 8 digits, padded with FF to 8 bytes.
fn valid_pin_block(block: &[u8]) -> bool {
    let digits = block.iter().take_while(|&&b| b != 0xFF).count();
    block.len() == 8
        && (6..=8).contains(&digits)
        && block[..digits].iter().all(u8::is_ascii_digit)
        && block[digits..].iter().all(|&b| b == 0xFF)
}

/// A PUK is any 8 bytes, but like the PIN at least 6 before the padding.
fn valid_puk_block(block: &[u8]) -> bool {
    let len = block.iter().take_while(|&&b| b != 0xFF).count();
    block.len() == 8 && len >= 6 && block[len..].iter().all(|&b| b == 0xFF)
}

fn tries_status(left: u8) -> u16 {
    sw::RETRIES_LEFT | u16::from(left.min(15))
}

impl VirtualCard {
    fn reference_check(p2: u8, allowed: &[u8]) -> Result<(), u16> {
        if allowed.contains(&p2) {
            Ok(())
        } else if OTHER_REFS.contains(&p2) {
            Err(sw::REFERENCE_NOT_FOUND)
        } else {
            Err(sw::INCORRECT_P1_P2)
        }
    }

    /// Compares `candidate` with the PIN or PUK, counting a failure; `Err` carries 63Cx or 6983.
    fn check_secret(&mut self, reference: u8, candidate: &[u8]) -> Result<(), u16> {
        let (stored, left) = if reference == PIN_REF {
            (&self.state.pin, &mut self.state.pin_tries_left)
        } else {
            (&self.state.puk, &mut self.state.puk_tries_left)
        };
        if *left == 0 {
            return Err(sw::AUTH_METHOD_BLOCKED);
        }
        let expected = Zeroizing::new(hex::decode(stored).unwrap_or_default());
        let max = if reference == PIN_REF {
            self.state.pin_tries_max
        } else {
            self.state.puk_tries_max
        };
        if same(&expected, candidate) {
            if *left != max {
                *left = max;
                self.dirty = true;
            }
            Ok(())
        } else {
            *left -= 1;
            self.dirty = true;
            Err(tries_status(*left))
        }
    }

    pub(super) fn verify(&mut self, p1: u8, p2: u8, data: &[u8]) -> Answer {
        Self::reference_check(p2, &[PIN_REF])?;
        match (p1, data.is_empty()) {
            // Reset the verification status.
            (0xFF, true) => {
                self.session.pin_verified = false;
                self.session.pin_just_verified = false;
                Ok(Vec::new())
            }
            (0x00, true) => {
                if self.session.pin_verified {
                    Ok(Vec::new())
                } else if self.state.pin_tries_left == 0 {
                    Err(sw::AUTH_METHOD_BLOCKED)
                } else {
                    Err(tries_status(self.state.pin_tries_left))
                }
            }
            (0x00, false) => {
                if data.len() != 8 {
                    return Err(sw::INCORRECT_DATA);
                }
                self.session.pin_verified = false;
                self.session.pin_just_verified = false;
                self.check_secret(PIN_REF, data)?;
                self.session.pin_verified = true;
                self.session.pin_just_verified = true;
                Ok(Vec::new())
            }
            _ => Err(sw::INCORRECT_P1_P2),
        }
    }

    pub(super) fn change_reference_data(&mut self, p1: u8, p2: u8, data: &[u8]) -> Answer {
        Self::reference_check(p2, &[PIN_REF, PUK_REF])?;
        if p1 != 0 {
            return Err(sw::INCORRECT_P1_P2);
        }
        if data.len() != 16 {
            return Err(sw::INCORRECT_DATA);
        }
        let (current, new) = data.split_at(8);
        let valid = if p2 == PIN_REF {
            valid_pin_block(new)
        } else {
            valid_puk_block(new)
        };
        if !valid {
            return Err(sw::INCORRECT_DATA);
        }
        if p2 == PIN_REF {
            self.session.pin_verified = false;
        }
        self.check_secret(p2, current)?;
        let encoded = hex::encode(new);
        if p2 == PIN_REF {
            self.state.pin = encoded;
            self.state.pin_tries_left = self.state.pin_tries_max;
            self.session.pin_verified = true;
        } else {
            self.state.puk = encoded;
            self.state.puk_tries_left = self.state.puk_tries_max;
        }
        self.dirty = true;
        Ok(Vec::new())
    }

    pub(super) fn reset_retry_counter(&mut self, p1: u8, p2: u8, data: &[u8]) -> Answer {
        Self::reference_check(p2, &[PIN_REF])?;
        if p1 != 0 {
            return Err(sw::INCORRECT_P1_P2);
        }
        if data.len() != 16 {
            return Err(sw::INCORRECT_DATA);
        }
        let (puk, new_pin) = data.split_at(8);
        if !valid_pin_block(new_pin) {
            return Err(sw::INCORRECT_DATA);
        }
        self.check_secret(PUK_REF, puk)?;
        self.state.pin = hex::encode(new_pin);
        self.state.pin_tries_left = self.state.pin_tries_max;
        self.session.pin_verified = false;
        self.dirty = true;
        Ok(Vec::new())
    }

    pub(super) fn pin_is_default(&self) -> bool {
        same(&self.stored(&self.state.pin), &pad(DEFAULT_PIN))
    }

    pub(super) fn puk_is_default(&self) -> bool {
        same(&self.stored(&self.state.puk), &pad(super::DEFAULT_PUK))
    }
}

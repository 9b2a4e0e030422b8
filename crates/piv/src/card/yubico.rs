//! The Yubico extensions middleware relies on (SET MANAGEMENT KEY, RESET, GET METADATA); GET
//! VERSION and GET SERIAL are answered directly by the dispatcher.

use super::{Answer, CardState, Session, VirtualCard};
use crate::apdu::sw;
use crate::management_key;
use crate::tlv;

impl VirtualCard {
    pub(super) fn set_management_key(&mut self, p1: u8, p2: u8, data: &[u8]) -> Answer {
        // P2 FE asks for touch on every use; a virtual card has no button, so both are accepted.
        if p1 != 0xFF || !matches!(p2, 0xFF | 0xFE) {
            return Err(sw::INCORRECT_P1_P2);
        }
        if !self.session.management_authenticated {
            return Err(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        let [alg, 0x9B, len, key @ ..] = data else {
            return Err(sw::INCORRECT_DATA);
        };
        if management_key::key_len(*alg) != Some(usize::from(*len))
            || key.len() != usize::from(*len)
        {
            return Err(sw::INCORRECT_DATA);
        }
        self.state.management_algorithm = *alg;
        self.state.management_key = hex::encode(key);
        self.dirty = true;
        Ok(Vec::new())
    }

    /// Returns the card to its factory state; allowed only once PIN and PUK are both blocked, so
    /// nobody who knows either can be surprised by it.
    pub(super) fn factory_reset(&mut self) -> Answer {
        if self.state.pin_tries_left != 0 || self.state.puk_tries_left != 0 {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        self.state = CardState::factory(self.state.serial);
        self.session = Session::default();
        self.dirty = true;
        Ok(Vec::new())
    }

    pub(super) fn metadata(&mut self, key_reference: u8) -> Answer {
        let mut out = Vec::new();
        match key_reference {
            0x80 | 0x81 => {
                let (default, max, left) = if key_reference == 0x80 {
                    let s = &self.state;
                    (self.pin_is_default(), s.pin_tries_max, s.pin_tries_left)
                } else {
                    let s = &self.state;
                    (self.puk_is_default(), s.puk_tries_max, s.puk_tries_left)
                };
                tlv::push(&mut out, 0x01, &[0xFF]);
                tlv::push(&mut out, 0x05, &[u8::from(default)]);
                tlv::push(&mut out, 0x06, &[max, left]);
            }
            0x9B => {
                let default = self.state.management_algorithm == management_key::ALG_3DES
                    && self.stored(&self.state.management_key) == super::default_management_key();
                tlv::push(&mut out, 0x01, &[self.state.management_algorithm]);
                tlv::push(&mut out, 0x02, &[0x00, 0x01]);
                tlv::push(&mut out, 0x05, &[u8::from(default)]);
            }
            slot if super::objects::certificate_tag(slot).is_some() => {
                let key = self.slot_key(slot).ok_or(sw::REFERENCE_NOT_FOUND)?;
                tlv::push(&mut out, 0x01, &[key.algorithm]);
                tlv::push(&mut out, 0x02, &[key.pin_policy, key.touch_policy]);
                tlv::push(&mut out, 0x03, &[key.origin]);
                tlv::push(&mut out, 0x04, &key.public_template()?);
            }
            _ => return Err(sw::REFERENCE_NOT_FOUND),
        }
        Ok(out)
    }
}

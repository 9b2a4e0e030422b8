//! The Yubico extensions middleware relies on (SET MANAGEMENT KEY, RESET, GET METADATA, ATTEST);
//! GET VERSION and GET SERIAL are answered directly by the dispatcher.

use super::attestation::{self, Device};
use super::{attestation_object_key, firmware, keys, Answer, CardState, Session, VirtualCard};
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
    /// nobody who knows either can be surprised by it. Like a YubiKey, it keeps its firmware, its
    /// attestation key and the F9 certificate (object 5FFF01).
    pub(super) fn factory_reset(&mut self) -> Answer {
        if self.state.pin_tries_left != 0 || self.state.puk_tries_left != 0 {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        let mut fresh = CardState::factory(self.state.serial, self.state.firmware);
        fresh.attestation = self.state.attestation.take();
        if let Some(f9) = self.state.objects.remove(&attestation_object_key()) {
            fresh.objects.insert(attestation_object_key(), f9);
        }
        self.state = fresh;
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
                // Default means the factory key under this firmware's factory algorithm: on 5.7 the
                // same 24 bytes as a 3DES key are not the default.
                let default = self.state.management_algorithm
                    == firmware::factory_management_algorithm(self.state.firmware)
                    && self.stored(&self.state.management_key) == super::default_management_key();
                tlv::push(&mut out, 0x01, &[self.state.management_algorithm]);
                // PIN policy 00 (none applies), touch policy 01 (never), as a YubiKey answers
                // for a management key set without touch (Yubico SDK "Get metadata").
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

    /// Yubico ATTEST (P1 the slot, P2 00): the DER attestation certificate of a key generated on
    /// the card. A YubiKey answers 6A80 both for an empty slot and for an imported key (Yubico
    /// .NET SDK issue 9: "Incorrect parameters in the command data field" in either case).
    pub(super) fn attest(&mut self, slot: u8, p2: u8) -> Answer {
        if p2 != 0 || super::objects::certificate_tag(slot).is_none() {
            return Err(sw::INCORRECT_P1_P2);
        }
        let key = self.slot_key(slot).ok_or(sw::INCORRECT_DATA)?.clone();
        if key.origin != keys::ORIGIN_GENERATED {
            return Err(sw::INCORRECT_DATA);
        }
        let attestation = self.state.attestation.clone().ok_or(sw::INCORRECT_DATA)?;
        // The issuer is whatever certificate 5FFF01 holds, as on a YubiKey; if it was replaced by
        // something that is not a certificate, the card's own F9 certificate.
        let issuer = self
            .state
            .objects
            .get(&attestation_object_key())
            .and_then(|v| hex::decode(v).ok())
            .and_then(|v| crate::data_objects::certificate_from_object(&v))
            .filter(|der| {
                use der::Decode;
                x509_cert::Certificate::from_der(der).is_ok()
            })
            .unwrap_or_else(|| attestation.certificate());
        let device = Device {
            serial: self.state.serial,
            firmware: self.state.firmware,
        };
        attestation::attest(&attestation, &issuer, slot, &key, &device, &mut *self.rng)
    }
}

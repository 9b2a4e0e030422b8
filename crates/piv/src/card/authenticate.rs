//! GENERAL AUTHENTICATE (SP 800-73-4 part 2, 3.2.4): the management key's challenge-response
//! (key reference 9B, mutual or external authentication) and the slot keys' signatures and ECDH,
//! each gated by the key's PIN policy.

use super::keys::{self, PIN_POLICY_ALWAYS, PIN_POLICY_NEVER};
use super::{same, Answer, Pending, VirtualCard};
use crate::apdu::sw;
use crate::management_key;
use crate::tlv;
use rand_core::RngCore;
use zeroize::Zeroizing;

const MANAGEMENT_KEY_REF: u8 = 0x9B;

/// The fields of a dynamic authentication template (7C): `None` absent, `Some(&[])` requested.
#[derive(Default)]
struct Template<'a> {
    witness: Option<&'a [u8]>,
    challenge: Option<&'a [u8]>,
    response: Option<&'a [u8]>,
    exponentiation: Option<&'a [u8]>,
}

fn parse_template(data: &[u8]) -> Result<Template<'_>, u16> {
    let (outer, rest) = tlv::parse_one(data).map_err(|_| sw::INCORRECT_DATA)?;
    if outer.tag != 0x7C || !rest.is_empty() {
        return Err(sw::INCORRECT_DATA);
    }
    let mut t = Template::default();
    for field in outer.children().map_err(|_| sw::INCORRECT_DATA)? {
        let slot = match field.tag {
            0x80 => &mut t.witness,
            0x81 => &mut t.challenge,
            0x82 => &mut t.response,
            0x85 => &mut t.exponentiation,
            _ => return Err(sw::INCORRECT_DATA),
        };
        if slot.is_some() {
            return Err(sw::INCORRECT_DATA);
        }
        *slot = Some(field.value);
    }
    Ok(t)
}

fn template(tag: u32, value: &[u8]) -> Vec<u8> {
    tlv::encode(0x7C, &tlv::encode(tag, value))
}

impl VirtualCard {
    pub(super) fn general_authenticate(&mut self, p1: u8, p2: u8, data: &[u8]) -> Answer {
        if p2 == MANAGEMENT_KEY_REF {
            return self.management_authenticate(p1, data);
        }
        if super::objects::certificate_tag(p2).is_none() {
            return Err(sw::INCORRECT_P1_P2);
        }
        self.slot_operation(p1, p2, data)
    }

    fn management_authenticate(&mut self, alg: u8, data: &[u8]) -> Answer {
        // Any new attempt ends the previous authentication; a failed one leaves none.
        self.session.management_authenticated = false;
        let pending = self.session.pending_auth.take();
        if alg != self.state.management_algorithm {
            return Err(sw::INCORRECT_P1_P2);
        }
        let block = management_key::block_len(alg).ok_or(sw::INCORRECT_P1_P2)?;
        let key = Zeroizing::new(self.stored(&self.state.management_key));
        let t = parse_template(data)?;
        let encrypt =
            |b: &[u8]| management_key::encrypt_block(alg, &key, b).ok_or(sw::INCORRECT_DATA);
        match (t.witness, t.challenge, t.response) {
            // Mutual authentication, step 1: the card sends an encrypted witness.
            (Some([]), None, None) => {
                let mut witness = vec![0u8; block];
                self.rng.fill_bytes(&mut witness);
                let encrypted = encrypt(&witness)?;
                self.session.pending_auth = Some(Pending::Witness(witness));
                Ok(template(0x80, &encrypted))
            }
            // Mutual authentication, step 2: the host returns the witness in clear and challenges
            // the card, which answers with the challenge encrypted.
            (Some(witness), Some(challenge), None | Some([])) if !witness.is_empty() => {
                let Some(Pending::Witness(expected)) = &pending else {
                    return Err(sw::CONDITIONS_NOT_SATISFIED);
                };
                if challenge.len() != block {
                    return Err(sw::INCORRECT_DATA);
                }
                if !same(expected, witness) {
                    return Err(sw::SECURITY_STATUS_NOT_SATISFIED);
                }
                let answer = encrypt(challenge)?;
                self.session.management_authenticated = true;
                Ok(template(0x82, &answer))
            }
            // External authentication, step 1: the card sends a challenge in clear.
            (None, Some([]), None) => {
                let mut challenge = vec![0u8; block];
                self.rng.fill_bytes(&mut challenge);
                let shown = challenge.clone();
                self.session.pending_auth = Some(Pending::Challenge(challenge));
                Ok(template(0x81, &shown))
            }
            // External authentication, step 2: the host returns the challenge encrypted.
            (None, None, Some(response)) if !response.is_empty() => {
                let Some(Pending::Challenge(challenge)) = &pending else {
                    return Err(sw::CONDITIONS_NOT_SATISFIED);
                };
                let expected = Zeroizing::new(encrypt(challenge)?);
                if !same(&expected, response) {
                    return Err(sw::SECURITY_STATUS_NOT_SATISFIED);
                }
                self.session.management_authenticated = true;
                Ok(Vec::new())
            }
            _ => Err(sw::INCORRECT_DATA),
        }
    }

    fn slot_operation(&mut self, alg: u8, slot: u8, data: &[u8]) -> Answer {
        let key = self.slot_key(slot).ok_or(sw::REFERENCE_NOT_FOUND)?.clone();
        if key.algorithm != alg {
            return Err(sw::INCORRECT_P1_P2);
        }
        let t = parse_template(data)?;
        let policy = match key.pin_policy {
            keys::PIN_POLICY_DEFAULT => keys::default_pin_policy(slot),
            p => p,
        };
        let allowed = match policy {
            PIN_POLICY_NEVER => true,
            PIN_POLICY_ALWAYS => self.session.pin_just_verified,
            _ => self.session.pin_verified,
        };
        if !allowed {
            return Err(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        match (t.witness, t.challenge, t.response, t.exponentiation) {
            (None, Some(input), Some([]), None) => {
                let signature = key.sign(input, &mut *self.rng)?;
                Ok(template(0x82, &signature))
            }
            (None, None, Some([]), Some(point)) => {
                let shared = Zeroizing::new(key.ecdh(point)?);
                Ok(template(0x82, &shared))
            }
            _ => Err(sw::INCORRECT_DATA),
        }
    }
}

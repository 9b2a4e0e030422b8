//! A virtual PIV card (NIST SP 800-73-4 with the Yubico extensions middleware expects), with its
//! persistent state in a JSON file. It answers raw command APDUs, so every client — ours, OpenSC
//! and yubico-piv-tool through vpcd — talks to it exactly as to a card in a reader.
//!
//! The card never panics on input: every handler returns a status word instead.

pub mod attestation;
mod authenticate;
pub mod firmware;
pub mod keys;
pub mod objects;
mod pin;
mod yubico;

use crate::apdu::{ins, sw, CommandApdu, ResponseApdu};
use crate::management_key;
use crate::tlv;
use attestation::AttestationKey;
use firmware::Firmware;
use keys::SlotKey;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use zeroize::Zeroize;

/// The answer to reset: T=1 only, and historical bytes that name the PIV application (category
/// 80, compact TLV F9 with the AID's first 9 bytes), which is how OpenSC recognises a standard PIV
/// card without a vendor quirk list. The popular minimal ATR `3B 80 80 01 01` is both a contactless
/// pseudo-ATR and a PIVKey entry in OpenSC's table, which switches its EC support off.
pub const ATR: [u8; 15] = atr();

const fn atr() -> [u8; 15] {
    let mut atr = [
        0x3B, 0x8B, 0x01, 0x80, 0xF9, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
    ];
    // TCK: the XOR of T0 through the last historical byte.
    let mut check = 0;
    let mut i = 1;
    while i < atr.len() - 1 {
        check ^= atr[i];
        i += 1;
    }
    atr[atr.len() - 1] = check;
    atr
}

const DEFAULT_PIN: &[u8] = b"123456";
const DEFAULT_PUK: &[u8] = b"12345678";
const DEFAULT_TRIES: u8 = 3;
/// Most data a chain of commands may accumulate (an object of the largest size plus its tags).
const MAX_CHAIN_LEN: usize = objects::LARGEST_CONTAINER + 64;
const STATE_FORMAT: u32 = 1;

/// Why a state file could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("virtual card state file: {0}")]
    Io(#[from] std::io::Error),
    #[error("virtual card state file is not valid: {0}")]
    Invalid(String),
}

/// What the card remembers across power cycles. It is the emulated secure element, so it holds
/// PIN, PUK, management key and private keys; the file is written owner-readable only.
#[derive(Clone, Serialize, Deserialize)]
struct CardState {
    format: u32,
    serial: u32,
    /// What GET VERSION answers; it decides the factory management key and the algorithms
    /// offered. State files from before it existed were cards answering 5.4.3.
    #[serde(default = "legacy_firmware")]
    firmware: Firmware,
    /// 8 bytes, FF-padded, hex.
    pin: String,
    puk: String,
    pin_tries_max: u8,
    pin_tries_left: u8,
    puk_tries_max: u8,
    puk_tries_left: u8,
    management_algorithm: u8,
    management_key: String,
    /// Object tag (hex) to value (hex), the content of tag 53.
    objects: BTreeMap<String, String>,
    /// Key reference (hex) to key.
    keys: BTreeMap<String, SlotKey>,
    /// The attestation key and F9 certificate; a state file without them gets them on load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attestation: Option<AttestationKey>,
}

fn legacy_firmware() -> Firmware {
    firmware::LEGACY_FIRMWARE
}

impl Drop for CardState {
    fn drop(&mut self) {
        self.pin.zeroize();
        self.puk.zeroize();
        self.management_key.zeroize();
    }
}

impl CardState {
    /// The factory state without an attestation key (see [`CardState::install_attestation`]).
    fn factory(serial: u32, firmware: Firmware) -> Self {
        Self {
            format: STATE_FORMAT,
            serial,
            firmware,
            pin: hex::encode(pad(DEFAULT_PIN)),
            puk: hex::encode(pad(DEFAULT_PUK)),
            pin_tries_max: DEFAULT_TRIES,
            pin_tries_left: DEFAULT_TRIES,
            puk_tries_max: DEFAULT_TRIES,
            puk_tries_left: DEFAULT_TRIES,
            management_algorithm: firmware::factory_management_algorithm(firmware),
            management_key: hex::encode(default_management_key()),
            objects: BTreeMap::new(),
            keys: BTreeMap::new(),
            attestation: None,
        }
    }

    /// Gives the card an attestation key and publishes its F9 certificate in object 5FFF01.
    fn install_attestation(&mut self, rng: &mut dyn CryptoRngCore) -> Result<(), u16> {
        let key = AttestationKey::new(self.serial, rng)?;
        let object = crate::data_objects::certificate_object(&key.certificate());
        self.objects
            .insert(attestation_object_key(), hex::encode(object));
        self.attestation = Some(key);
        Ok(())
    }

    fn check(&self) -> Result<(), String> {
        if self.format != STATE_FORMAT {
            return Err(format!("unknown format {}", self.format));
        }
        for (name, v) in [("PIN", &self.pin), ("PUK", &self.puk)] {
            if hex::decode(v).map(|b| b.len()) != Ok(8) {
                return Err(format!("the {name} is not 8 bytes of hex"));
            }
        }
        let key_len = hex::decode(&self.management_key)
            .map_err(|_| "the management key is not hex".to_string())?
            .len();
        if management_key::key_len(self.management_algorithm) != Some(key_len) {
            return Err("the management key does not fit its algorithm".into());
        }
        if self.pin_tries_max == 0
            || self.pin_tries_max > 15
            || self.puk_tries_max == 0
            || self.puk_tries_max > 15
        {
            return Err("retry counters out of range".into());
        }
        for (tag, value) in &self.objects {
            if u32::from_str_radix(tag, 16).is_err() || hex::decode(value).is_err() {
                return Err(format!("object {tag} is not hex"));
            }
        }
        Ok(())
    }
}

/// The key of object 5FFF01 (the F9 certificate) in [`CardState::objects`].
fn attestation_object_key() -> String {
    format!("{:06X}", objects::ATTESTATION_CERT)
}

fn default_management_key() -> Vec<u8> {
    (0..3).flat_map(|_| 1u8..=8).collect()
}

/// Pads a PIN or PUK to the 8 bytes VERIFY carries.
fn pad(value: &[u8]) -> Vec<u8> {
    let mut out = value.to_vec();
    out.resize(8, 0xFF);
    out
}

/// A management-key challenge the card is waiting for the host to answer.
enum Pending {
    /// Mutual authentication: the witness the host must decrypt.
    Witness(Vec<u8>),
    /// External authentication: the challenge the host must encrypt.
    Challenge(Vec<u8>),
}

impl Drop for Pending {
    fn drop(&mut self) {
        match self {
            Pending::Witness(v) | Pending::Challenge(v) => v.zeroize(),
        }
    }
}

/// Security state and transfer buffers; all of it is lost when the card loses power.
#[derive(Default)]
struct Session {
    pin_verified: bool,
    /// Set by a successful VERIFY and cleared by the next other command, for keys whose PIN
    /// policy demands verification immediately before each use (slot 9C).
    pin_just_verified: bool,
    management_authenticated: bool,
    pending_auth: Option<Pending>,
    /// Header (INS P1 P2) and data of a command chain in progress.
    chain: Option<([u8; 3], Vec<u8>)>,
    /// Response bytes waiting for GET RESPONSE.
    outgoing: Vec<u8>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // A chain may be carrying a PIN or a new management key.
        if let Some((_, data)) = &mut self.chain {
            data.zeroize();
        }
    }
}

type Answer = Result<Vec<u8>, u16>;

/// The emulated card. Create with [`VirtualCard::blank`] or [`VirtualCard::load`], feed it APDUs
/// with [`VirtualCard::process`], persist it with [`VirtualCard::save`].
pub struct VirtualCard {
    state: CardState,
    session: Session,
    rng: Box<dyn CryptoRngCore + Send>,
    dirty: bool,
}

impl std::fmt::Debug for VirtualCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualCard")
            .field("serial", &self.state.serial)
            .finish_non_exhaustive()
    }
}

impl VirtualCard {
    /// A card as it leaves the factory, firmware [`firmware::DEFAULT_FIRMWARE`] (5.7.2, AES-192
    /// factory management key); see [`VirtualCard::blank_with_firmware`].
    pub fn blank(serial: u32, rng: impl CryptoRngCore) -> Self {
        Self::blank_with_firmware(serial, firmware::DEFAULT_FIRMWARE, rng)
    }

    /// A card as it leaves the factory: default PIN, PUK and management key (3DES before firmware
    /// 5.7.0, AES-192 from it), no keys, no objects but its attestation certificate (5FFF01).
    /// `rng` seeds the card's own generator (ChaCha) for its attestation key, challenges and key
    /// generation, so a seeded `rng` makes a reproducible card; a card loaded from a file uses the
    /// OS generator.
    pub fn blank_with_firmware(
        serial: u32,
        firmware: Firmware,
        mut rng: impl CryptoRngCore,
    ) -> Self {
        use rand::SeedableRng;
        let mut seed = <rand::rngs::StdRng as SeedableRng>::Seed::default();
        rng.fill_bytes(&mut seed);
        let mut own = rand::rngs::StdRng::from_seed(seed);
        seed.zeroize();
        let mut state = CardState::factory(serial, firmware);
        // Only fixed inputs and a fresh key go in, so this cannot fail short of a bug; a card
        // without attestation would still work and ATTEST would answer 6A80.
        let _ = state.install_attestation(&mut own);
        Self {
            state,
            session: Session::default(),
            rng: Box::new(own),
            dirty: true,
        }
    }

    /// Replaces the card's random generator.
    pub fn with_rng(mut self, rng: impl CryptoRngCore + Send + 'static) -> Self {
        self.rng = Box::new(rng);
        self
    }

    /// Loads a card saved with [`VirtualCard::save`]; it starts powered on with no security state.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, StateError> {
        Self::load_with_rng(path, rand::rngs::OsRng)
    }

    pub fn load_with_rng(
        path: impl AsRef<Path>,
        rng: impl CryptoRngCore + Send + 'static,
    ) -> Result<Self, StateError> {
        let bytes = zeroize::Zeroizing::new(std::fs::read(path)?);
        let state: CardState =
            serde_json::from_slice(&bytes).map_err(|e| StateError::Invalid(e.to_string()))?;
        state.check().map_err(StateError::Invalid)?;
        let mut card = Self {
            state,
            session: Session::default(),
            rng: Box::new(rng),
            dirty: false,
        };
        if card.state.attestation.is_none() {
            // Written before cards had one: a real card always has, so this one gets it now.
            card.state
                .install_attestation(&mut *card.rng)
                .map_err(|sw| StateError::Invalid(format!("no attestation key ({sw:04X})")))?;
            card.dirty = true;
        }
        Ok(card)
    }

    /// Writes the state atomically (temporary file in the same folder, then rename), readable
    /// by the owner only because it holds the card's secrets.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), StateError> {
        use std::io::Write;
        let path = path.as_ref();
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec_pretty(&self.state)
                .map_err(|e| StateError::Invalid(e.to_string()))?,
        );
        let name = path
            .file_name()
            .ok_or_else(|| StateError::Invalid(format!("{} names no file", path.display())))?;
        let mut tmp_name = name.to_os_string();
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let result = (|| {
            let mut file = options.open(&tmp)?;
            file.write_all(&json)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(result?)
    }

    pub fn serial(&self) -> u32 {
        self.state.serial
    }

    /// The firmware version GET VERSION answers.
    pub fn firmware(&self) -> Firmware {
        self.state.firmware
    }

    pub fn atr(&self) -> Vec<u8> {
        ATR.to_vec()
    }

    /// Power-off or warm reset: the security state and transfer buffers are lost.
    pub fn reset(&mut self) {
        self.session = Session::default();
    }

    /// Whether the persistent state changed since the last call (then it should be saved).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// PIN tries left (for tests and diagnostics; hosts use VERIFY without data).
    pub fn pin_tries_left(&self) -> u8 {
        self.state.pin_tries_left
    }

    /// Processes one command APDU and returns the response APDU (data and status word).
    pub fn process(&mut self, command: &[u8]) -> Vec<u8> {
        let response = match CommandApdu::parse(command) {
            Ok(apdu) => self.handle(apdu),
            Err(_) => {
                self.session.chain = None;
                self.session.outgoing.clear();
                ResponseApdu::status(sw::WRONG_LENGTH)
            }
        };
        response.to_bytes()
    }

    fn handle(&mut self, apdu: CommandApdu) -> ResponseApdu {
        if apdu.cla & !crate::apdu::CLA_CHAINING != 0 {
            self.session.chain = None;
            return ResponseApdu::status(sw::CLA_NOT_SUPPORTED);
        }
        let limit = if apdu.extended {
            if apdu.ne == 0 {
                65536
            } else {
                apdu.ne
            }
        } else if apdu.ne == 0 {
            256
        } else {
            apdu.ne.min(256)
        };
        if apdu.ins == ins::GET_RESPONSE && !apdu.is_chained() {
            self.session.chain = None;
            if apdu.p1 != 0 || apdu.p2 != 0 {
                self.session.outgoing.clear();
                return ResponseApdu::status(sw::INCORRECT_P1_P2);
            }
            if self.session.outgoing.is_empty() {
                return ResponseApdu::status(sw::CONDITIONS_NOT_SATISFIED);
            }
            let data = std::mem::take(&mut self.session.outgoing);
            return self.deliver(data, limit);
        }
        self.session.outgoing.clear();

        let header = [apdu.ins, apdu.p1, apdu.p2];
        let mut data = apdu.data;
        if let Some((chain_header, buffer)) = self.session.chain.take() {
            if chain_header == header {
                let mut joined = buffer;
                joined.extend_from_slice(&data);
                data.zeroize();
                data = joined;
            }
            // A different command abandons the chain; its data is dropped (and wiped).
        }
        if data.len() > MAX_CHAIN_LEN {
            data.zeroize();
            return ResponseApdu::status(sw::NOT_ENOUGH_MEMORY);
        }
        if apdu.cla & crate::apdu::CLA_CHAINING != 0 {
            self.session.chain = Some((header, data));
            return ResponseApdu::status(sw::SUCCESS);
        }

        let answer = self.dispatch(apdu.ins, apdu.p1, apdu.p2, &data);
        data.zeroize();
        if apdu.ins != ins::VERIFY {
            self.session.pin_just_verified = false;
        }
        match answer {
            Ok(out) => self.deliver(out, limit),
            Err(status) => ResponseApdu::status(status),
        }
    }

    /// Sends what fits the expected length and keeps the rest for GET RESPONSE (`61xx`).
    fn deliver(&mut self, mut data: Vec<u8>, limit: usize) -> ResponseApdu {
        if data.len() <= limit {
            return ResponseApdu::new(data, sw::SUCCESS);
        }
        let rest = data.split_off(limit);
        let announced = rest.len().min(256) as u8; // 00 means 256 or more
        self.session.outgoing = rest;
        ResponseApdu::new(data, u16::from_be_bytes([0x61, announced]))
    }

    fn dispatch(&mut self, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Answer {
        match ins {
            ins::SELECT => self.select(p1, data),
            ins::GET_DATA => self.get_data(p1, p2, data),
            ins::PUT_DATA => self.put_data(p1, p2, data),
            ins::VERIFY => self.verify(p1, p2, data),
            ins::CHANGE_REFERENCE_DATA => self.change_reference_data(p1, p2, data),
            ins::RESET_RETRY_COUNTER => self.reset_retry_counter(p1, p2, data),
            ins::GENERAL_AUTHENTICATE => self.general_authenticate(p1, p2, data),
            ins::GENERATE_ASYMMETRIC_KEY_PAIR => self.generate(p1, p2, data),
            ins::GET_VERSION => Ok(self.state.firmware.to_vec()),
            ins::GET_SERIAL => Ok(self.state.serial.to_be_bytes().to_vec()),
            ins::SET_MANAGEMENT_KEY => self.set_management_key(p1, p2, data),
            ins::RESET => self.factory_reset(),
            ins::GET_METADATA if firmware::has_metadata(self.state.firmware) => self.metadata(p2),
            ins::ATTEST if firmware::has_attestation(self.state.firmware) => self.attest(p1, p2),
            _ => Err(sw::INS_NOT_SUPPORTED),
        }
    }

    fn select(&mut self, p1: u8, aid: &[u8]) -> Answer {
        if p1 != 0x04 {
            return Err(sw::INCORRECT_P1_P2);
        }
        if objects::selects_piv(aid) {
            Ok(objects::application_property_template())
        } else {
            Err(sw::NOT_FOUND)
        }
    }

    /// The object tag named by a `5C` tag list of one to three bytes.
    fn requested_tag(data: &[u8]) -> Result<(u32, &[u8]), u16> {
        let (tlv, rest) = tlv::parse_one(data).map_err(|_| sw::INCORRECT_DATA)?;
        if tlv.tag != 0x5C || tlv.value.is_empty() || tlv.value.len() > 3 {
            return Err(sw::INCORRECT_DATA);
        }
        let tag = tlv
            .value
            .iter()
            .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        Ok((tag, rest))
    }

    fn get_data(&mut self, p1: u8, p2: u8, data: &[u8]) -> Answer {
        if (p1, p2) != (0x3F, 0xFF) {
            return Err(sw::INCORRECT_P1_P2);
        }
        let (tag, rest) = Self::requested_tag(data)?;
        if !rest.is_empty() {
            return Err(sw::INCORRECT_DATA);
        }
        let access = objects::read_access(tag).ok_or(sw::NOT_FOUND)?;
        if access == objects::ReadAccess::Pin && !self.session.pin_verified {
            return Err(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        if tag == objects::DISCOVERY {
            return Ok(objects::discovery_object());
        }
        let value = self
            .state
            .objects
            .get(&format!("{tag:06X}"))
            .and_then(|v| hex::decode(v).ok())
            .ok_or(sw::NOT_FOUND)?;
        Ok(tlv::encode(0x53, &value))
    }

    fn put_data(&mut self, p1: u8, p2: u8, data: &[u8]) -> Answer {
        if (p1, p2) != (0x3F, 0xFF) {
            return Err(sw::INCORRECT_P1_P2);
        }
        if !self.session.management_authenticated {
            return Err(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        if data.first() == Some(&(objects::DISCOVERY as u8)) {
            // The discovery object describes this card's fixed behaviour.
            return Err(sw::FUNCTION_NOT_SUPPORTED);
        }
        let (tag, rest) = Self::requested_tag(data)?;
        let (value, after) = tlv::parse_one(rest).map_err(|_| sw::INCORRECT_DATA)?;
        if value.tag != 0x53 || !after.is_empty() {
            return Err(sw::INCORRECT_DATA);
        }
        if objects::read_access(tag).is_none() || tag == objects::DISCOVERY {
            return Err(sw::INCORRECT_DATA);
        }
        if value.value.len() > objects::capacity(tag) {
            return Err(sw::NOT_ENOUGH_MEMORY);
        }
        let key = format!("{tag:06X}");
        if value.value.is_empty() {
            self.state.objects.remove(&key);
        } else {
            self.state.objects.insert(key, hex::encode(value.value));
        }
        self.dirty = true;
        Ok(Vec::new())
    }

    fn generate(&mut self, p1: u8, p2: u8, data: &[u8]) -> Answer {
        if p1 != 0 || objects::certificate_tag(p2).is_none() {
            return Err(sw::INCORRECT_P1_P2);
        }
        if !self.session.management_authenticated {
            return Err(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        let (template, rest) = tlv::parse_one(data).map_err(|_| sw::INCORRECT_DATA)?;
        if template.tag != 0xAC || !rest.is_empty() {
            return Err(sw::INCORRECT_DATA);
        }
        let fields = template.children().map_err(|_| sw::INCORRECT_DATA)?;
        let single = |tag: u32| -> Result<Option<u8>, u16> {
            match fields.iter().find(|t| t.tag == tag) {
                None => Ok(None),
                Some(t) if t.value.len() == 1 => Ok(Some(t.value[0])),
                Some(_) => Err(sw::INCORRECT_DATA),
            }
        };
        let algorithm = single(0x80)?.ok_or(sw::INCORRECT_DATA)?;
        // A 5.4 key answers an algorithm it does not know like any other bad template value.
        if !firmware::offers_key_algorithm(self.state.firmware, algorithm) {
            return Err(sw::INCORRECT_DATA);
        }
        let pin_policy = match single(0xAA)?.unwrap_or(keys::PIN_POLICY_DEFAULT) {
            keys::PIN_POLICY_DEFAULT => keys::default_pin_policy(p2),
            p @ (keys::PIN_POLICY_NEVER | keys::PIN_POLICY_ONCE | keys::PIN_POLICY_ALWAYS) => p,
            _ => return Err(sw::INCORRECT_DATA),
        };
        // Touch is recorded for GET METADATA; a virtual card has no button to wait for.
        let touch_policy = single(0xAB)?.unwrap_or(0x01);
        let key = SlotKey::generate(algorithm, pin_policy, touch_policy, &mut *self.rng)?;
        let public = key.public_template()?;
        self.state.keys.insert(format!("{p2:02x}"), key);
        self.dirty = true;
        Ok(tlv::encode(0x7F49, &public))
    }

    fn slot_key(&self, key_reference: u8) -> Option<&SlotKey> {
        self.state.keys.get(&format!("{key_reference:02x}"))
    }

    fn stored(&self, hex_value: &str) -> Vec<u8> {
        hex::decode(hex_value).unwrap_or_default()
    }
}

/// Compares secrets without an early exit, so timing does not reveal how much matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod attestation_tests;
#[cfg(test)]
mod generation_tests;
#[cfg(test)]
mod tests;

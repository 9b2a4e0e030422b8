//! [`PivClient`]: the PIV operations of the issuance use case, as APDUs over any
//! [`CardTransport`]. It chains or uses extended length for long commands, fetches long answers
//! with GET RESPONSE, traces every exchange with secrets redacted, and turns status words into
//! [`CardError`]s.

use crate::apdu::{ins, sw, CommandApdu, ResponseApdu, CLA_CHAINING};
use crate::card::objects;
use crate::data_objects::card_objects::EncodedObject;
use crate::{data_objects, management_key, metadata, public_key, tlv, trace};
use async_trait::async_trait;
use rand::RngCore;
use std::sync::Arc;
use tessera_core::fips201::{CardObjects, ContentSigner, WrittenObject};
use tessera_core::model::{KeyAlgorithm, Slot};
use tessera_core::ports::{
    CardError, CardIdentity, CardTransport, PivCard, PivCardFactory, PrintedInformation,
};
use tessera_core::secret::{ManagementKey, ManagementKeyAlgorithm, Pin, Puk};
use zeroize::Zeroizing;

/// Largest data field of a short command; longer data is sent in a chain.
const SHORT_DATA_MAX: usize = 255;
/// GET RESPONSE rounds after which a card that keeps answering 61xx is considered broken.
const MAX_GET_RESPONSE: usize = 512;
const MANAGEMENT_KEY_REF: u8 = 0x9B;
const PIN_REF: u8 = 0x80;
const PUK_REF: u8 = 0x81;
/// The object holding the card's attestation certificate (Yubico's "F9" certificate).
const ATTESTATION_OBJECT: u32 = 0x5F_FF01;

/// Builds the [`PivCardFactory`] the server wires into the issuance services.
pub fn factory() -> PivCardFactory {
    factory_with(true)
}

/// Like [`factory`]; `scripts: false` sends every command on its own round trip (to measure
/// what APDU scripts save).
pub fn factory_with(scripts: bool) -> PivCardFactory {
    Arc::new(move |transport| {
        Box::new(PivClient::new(transport).with_scripts(scripts)) as Box<dyn PivCard>
    })
}

/// A PIV card reached through a transport.
pub struct PivClient {
    transport: Box<dyn CardTransport>,
    /// Send independent commands as one APDU script (one round trip through a station).
    scripts: bool,
    /// Writes collected between `defer_writes` and `flush_writes`.
    deferred: Option<Vec<batch::Deferred>>,
}

impl std::fmt::Debug for PivClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PivClient")
            .field("extended_length", &self.transport.extended_length())
            .finish_non_exhaustive()
    }
}

fn status(operation: &str, sw: u16) -> CardError {
    CardError::Status {
        operation: operation.to_string(),
        sw,
    }
}

fn malformed(operation: &str, detail: impl Into<String>) -> CardError {
    CardError::Malformed {
        operation: operation.to_string(),
        detail: detail.into(),
    }
}

/// PIN and PUK travel as 8 bytes padded with FF. A longer value is sent unpadded so that the card,
/// not the client, refuses it.
fn pin_block(value: &str) -> Zeroizing<Vec<u8>> {
    let mut block = Zeroizing::new(value.as_bytes().to_vec());
    if block.len() < 8 {
        block.resize(8, 0xFF);
    }
    block
}

/// The value of `tag` inside a dynamic authentication template (7C) answer.
fn template_field(operation: &str, data: &[u8], tag: u32) -> Result<Vec<u8>, CardError> {
    let (outer, _) = tlv::parse_one(data).map_err(|e| malformed(operation, e.to_string()))?;
    if outer.tag != 0x7C {
        return Err(malformed(operation, "the answer is not a 7C template"));
    }
    tlv::find(outer.value, tag)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| malformed(operation, format!("the answer has no tag {tag:02X}")))
}

impl PivClient {
    pub fn new(transport: Box<dyn CardTransport>) -> Self {
        Self {
            transport,
            scripts: true,
            deferred: None,
        }
    }

    pub fn with_scripts(mut self, scripts: bool) -> Self {
        self.scripts = scripts;
        self
    }

    /// Gives the transport back (to hand the card to another client or close it).
    pub fn into_transport(self) -> Box<dyn CardTransport> {
        self.transport
    }

    async fn transmit(&mut self, command: &[u8], redact: bool) -> Result<ResponseApdu, CardError> {
        let result = self.transport.transmit(command).await;
        match &result {
            Ok(bytes) => trace::exchange(command, Some(bytes), redact),
            Err(e) => {
                trace::exchange(command, None, redact);
                tracing::debug!(target: "tessera_piv::apdu", "transport error: {e}");
            }
        }
        let bytes = result?;
        ResponseApdu::parse(&bytes).map_err(|e| malformed("a command", e.to_string()))
    }

    /// Sends one command, however long, and returns the whole answer: extended length when the
    /// transport supports it, otherwise a chain of short commands; `61xx` answers are completed
    /// with GET RESPONSE and `6Cxx` ones repeated with the length the card asks for.
    ///
    /// `apdu.ne` greater than zero means the command expects data; the client asks for as much as
    /// the encoding allows.
    pub async fn exchange(&mut self, mut apdu: CommandApdu) -> Result<ResponseApdu, CardError> {
        let redact = trace::is_sensitive(&[apdu.cla, apdu.ins, apdu.p1, apdu.p2]);
        let extended = self.transport.extended_length();
        let expects_data = apdu.ne > 0;
        let mut response = if extended {
            apdu.extended = true;
            if expects_data {
                apdu.ne = 65536;
            }
            let bytes = Zeroizing::new(encode(&apdu)?);
            self.transmit(&bytes, redact).await?
        } else {
            if expects_data {
                apdu.ne = 256;
            }
            let data = Zeroizing::new(std::mem::take(&mut apdu.data));
            let chunks: Vec<&[u8]> = if data.is_empty() {
                vec![&[][..]]
            } else {
                data.chunks(SHORT_DATA_MAX).collect()
            };
            let last = chunks.len() - 1;
            let mut answer = None;
            for (i, chunk) in chunks.into_iter().enumerate() {
                let mut part = CommandApdu::new(apdu.cla, apdu.ins, apdu.p1, apdu.p2)
                    .with_data(chunk.to_vec());
                if i < last {
                    part.cla |= CLA_CHAINING;
                } else {
                    part.ne = apdu.ne;
                }
                let bytes = Zeroizing::new(encode(&part)?);
                let r = self.transmit(&bytes, redact).await?;
                if i < last && r.sw != sw::SUCCESS {
                    return Ok(r);
                }
                answer = Some(r);
            }
            answer.expect("at least one part is sent")
        };

        if response.sw1() == 0x6C && apdu.ins != ins::GET_RESPONSE {
            let mut again = apdu.clone();
            again.ne = match response.sw2() {
                0 => 256,
                n => usize::from(n),
            };
            again.extended = false;
            let bytes = Zeroizing::new(encode(&again)?);
            response = self.transmit(&bytes, redact).await?;
        }

        self.complete(response, redact).await
    }

    /// Fetches the rest of a `61xx` answer with GET RESPONSE.
    async fn complete(
        &mut self,
        mut response: ResponseApdu,
        redact: bool,
    ) -> Result<ResponseApdu, CardError> {
        let mut data = std::mem::take(&mut response.data);
        let mut rounds = 0;
        while response.sw1() == sw::MORE_DATA {
            rounds += 1;
            if rounds > MAX_GET_RESPONSE {
                return Err(malformed(
                    "GET RESPONSE",
                    "the card never stops sending data",
                ));
            }
            let ne = match response.sw2() {
                0 => 256,
                n => usize::from(n),
            };
            let get = CommandApdu::new(0x00, ins::GET_RESPONSE, 0, 0).with_ne(ne);
            response = self.transmit(&encode(&get)?, redact).await?;
            data.append(&mut response.data);
        }
        response.data = data;
        Ok(response)
    }

    /// Sends a command and requires `9000`.
    async fn command(&mut self, operation: &str, apdu: CommandApdu) -> Result<Vec<u8>, CardError> {
        let response = self.exchange(apdu).await?;
        if response.sw == sw::SUCCESS {
            Ok(response.data)
        } else {
            Err(status(operation, response.sw))
        }
    }

    /// GET DATA of an object; `None` if the card does not have it (`6A82`).
    pub async fn get_data(&mut self, tag: u32) -> Result<Option<Vec<u8>>, CardError> {
        let mut tag_list = Vec::new();
        tlv::push_tag(&mut tag_list, tag);
        let apdu = CommandApdu::new(0, ins::GET_DATA, 0x3F, 0xFF)
            .with_data(tlv::encode(0x5C, &tag_list))
            .with_ne(256);
        let response = self.exchange(apdu).await?;
        match response.sw {
            sw::SUCCESS => {}
            sw::NOT_FOUND => return Ok(None),
            other => return Err(status("GET DATA", other)),
        }
        let (object, _) =
            tlv::parse_one(&response.data).map_err(|e| malformed("GET DATA", e.to_string()))?;
        // The discovery object comes in its own template; everything else inside tag 53.
        if object.tag != 0x53 && object.tag != tag {
            return Err(malformed(
                "GET DATA",
                format!("unexpected tag {:X}", object.tag),
            ));
        }
        Ok(Some(object.value.to_vec()))
    }

    /// PUT DATA of an object's value (the content of tag 53); needs management-key authentication.
    pub async fn put_data(&mut self, tag: u32, value: &[u8]) -> Result<(), CardError> {
        let mut tag_list = Vec::new();
        tlv::push_tag(&mut tag_list, tag);
        let mut data = tlv::encode(0x5C, &tag_list);
        tlv::push(&mut data, 0x53, value);
        let check = batch::Check::PutData {
            tag,
            len: value.len(),
        };
        if self.deferred.is_some() {
            let apdu = CommandApdu::new(0, ins::PUT_DATA, 0x3F, 0xFF).with_data(data);
            return self.defer(apdu, check);
        }
        let response = self
            .exchange(CommandApdu::new(0, ins::PUT_DATA, 0x3F, 0xFF).with_data(data))
            .await?;
        match response.sw {
            sw::SUCCESS => Ok(()),
            other => Err(check.error(other)),
        }
    }

    /// The DER certificate of a slot, if the card holds one.
    pub async fn read_certificate(&mut self, slot: Slot) -> Result<Option<Vec<u8>>, CardError> {
        let tag = objects::certificate_tag(slot.key_reference()).expect("every slot has one");
        match self.get_data(tag).await? {
            None => Ok(None),
            Some(value) => data_objects::certificate_from_object(&value)
                .map(Some)
                .ok_or_else(|| malformed("GET DATA", "the certificate object has no certificate")),
        }
    }

    /// The printed information object (needs the PIN verified first).
    pub async fn read_printed_information(
        &mut self,
    ) -> Result<Option<PrintedInformation>, CardError> {
        match self.get_data(objects::PRINTED_INFORMATION).await? {
            None => Ok(None),
            Some(value) => data_objects::parse_printed_information(&value)
                .map(Some)
                .ok_or_else(|| malformed("GET DATA", "the printed information does not parse")),
        }
    }

    /// GET SERIAL (Yubico); `None` if the card does not offer it.
    pub async fn serial(&mut self) -> Result<Option<u32>, CardError> {
        let response = self
            .exchange(CommandApdu::new(0, ins::GET_SERIAL, 0, 0).with_ne(256))
            .await?;
        Ok(match (response.sw, response.data.as_slice()) {
            (sw::SUCCESS, [a, b, c, d]) => Some(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => None,
        })
    }

    /// GET VERSION (Yubico); `None` if the card does not offer it.
    pub async fn version(&mut self) -> Result<Option<String>, CardError> {
        let response = self
            .exchange(CommandApdu::new(0, ins::GET_VERSION, 0, 0).with_ne(256))
            .await?;
        Ok(match (response.sw, response.data.as_slice()) {
            (sw::SUCCESS, [a, b, c]) => Some(format!("{a}.{b}.{c}")),
            _ => None,
        })
    }

    /// GENERAL AUTHENTICATE with a slot key over `input`: for ECDSA the hash (the card returns a
    /// DER signature), for RSA the complete padded block as long as the modulus, 256 or 384 bytes
    /// (the raw private-key result).
    pub async fn sign(
        &mut self,
        slot: Slot,
        algorithm: KeyAlgorithm,
        input: &[u8],
    ) -> Result<Vec<u8>, CardError> {
        let mut inner = tlv::encode(0x82, &[]);
        tlv::push(&mut inner, 0x81, input);
        let apdu = CommandApdu::new(
            0,
            ins::GENERAL_AUTHENTICATE,
            algorithm.piv_id(),
            slot.key_reference(),
        )
        .with_data(tlv::encode(0x7C, &inner))
        .with_ne(256);
        let data = self.command("GENERAL AUTHENTICATE", apdu).await?;
        template_field("GENERAL AUTHENTICATE", &data, 0x82)
    }

    /// ECDH with a slot key and the peer's uncompressed point; returns the shared secret.
    pub async fn ecdh(
        &mut self,
        slot: Slot,
        algorithm: KeyAlgorithm,
        peer_point: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CardError> {
        let mut inner = tlv::encode(0x82, &[]);
        tlv::push(&mut inner, 0x85, peer_point);
        let apdu = CommandApdu::new(
            0,
            ins::GENERAL_AUTHENTICATE,
            algorithm.piv_id(),
            slot.key_reference(),
        )
        .with_data(tlv::encode(0x7C, &inner))
        .with_ne(256);
        let data = Zeroizing::new(self.command("GENERAL AUTHENTICATE", apdu).await?);
        template_field("GENERAL AUTHENTICATE", &data, 0x82).map(Zeroizing::new)
    }

    /// RESET RETRY COUNTER: unblocks the PIN with the PUK and sets a new PIN.
    pub async fn unblock_pin(&mut self, puk: &Puk, new_pin: &Pin) -> Result<(), CardError> {
        let mut data = pin_block(puk.expose());
        data.extend_from_slice(&pin_block(new_pin.expose()));
        let apdu =
            CommandApdu::new(0, ins::RESET_RETRY_COUNTER, 0, PIN_REF).with_data(data.to_vec());
        let response = self.exchange(apdu).await?;
        puk_result("RESET RETRY COUNTER", response.sw)
    }

    /// GET METADATA (Yubico) of a key reference: the raw TLV list, `None` if not offered.
    pub async fn metadata(&mut self, key_reference: u8) -> Result<Option<Vec<u8>>, CardError> {
        let response = self
            .exchange(CommandApdu::new(0, ins::GET_METADATA, 0, key_reference).with_ne(256))
            .await?;
        Ok((response.sw == sw::SUCCESS).then_some(response.data))
    }
}

fn encode(apdu: &CommandApdu) -> Result<Vec<u8>, CardError> {
    apdu.to_bytes()
        .map_err(|e| malformed("building a command", e.to_string()))
}

fn pin_result(operation: &str, sw_: u16) -> Result<(), CardError> {
    match sw_ {
        sw::SUCCESS => Ok(()),
        sw::AUTH_METHOD_BLOCKED => Err(CardError::PinBlocked),
        s if s & 0xFFF0 == sw::RETRIES_LEFT => match (s & 0x0F) as u8 {
            0 => Err(CardError::PinBlocked),
            n => Err(CardError::WrongPin { retries_left: n }),
        },
        other => Err(status(operation, other)),
    }
}

fn puk_result(operation: &str, sw_: u16) -> Result<(), CardError> {
    match sw_ {
        sw::SUCCESS => Ok(()),
        // CardError has no "PUK blocked"; a PUK with no tries left is what that means.
        sw::AUTH_METHOD_BLOCKED => Err(CardError::WrongPuk { retries_left: 0 }),
        s if s & 0xFFF0 == sw::RETRIES_LEFT => Err(CardError::WrongPuk {
            retries_left: (s & 0x0F) as u8,
        }),
        other => Err(status(operation, other)),
    }
}

#[async_trait]
impl PivCard for PivClient {
    async fn close(&mut self) {
        self.transport.close().await
    }

    async fn select(&mut self) -> Result<CardIdentity, CardError> {
        let apdu = CommandApdu::new(0, ins::SELECT, 0x04, 0x00)
            .with_data(objects::PIV_AID.to_vec())
            .with_ne(256);
        let (response, serial, version) = self.select_script(apdu).await?;
        match response.sw {
            sw::SUCCESS => {}
            sw::NOT_FOUND => return Err(CardError::NotPiv),
            other => return Err(status("SELECT", other)),
        }
        // An empty answer is allowed (older cards); a non-empty one must be the property template.
        if !response.data.is_empty() {
            match tlv::parse_one(&response.data) {
                Ok((t, _)) if t.tag == 0x61 => {}
                _ => return Err(CardError::NotPiv),
            }
        }
        let atr = self.transport.atr();
        let serial = match serial {
            Some(serial) => serial,
            None => self.serial().await?,
        };
        let serial = match serial {
            Some(serial) => serial.to_string(),
            None => self.fallback_id(&atr).await?,
        };
        let version = match version {
            Some(version) => version,
            None => self.version().await?,
        };
        Ok(CardIdentity {
            serial,
            atr,
            version,
        })
    }

    async fn authenticate(&mut self, key: &ManagementKey) -> Result<(), CardError> {
        const OP: &str = "GENERAL AUTHENTICATE";
        let alg = key.algorithm().piv_id();
        let block = management_key::block_len(alg).expect("core management keys have a cipher");
        let step = |inner: Vec<u8>| {
            CommandApdu::new(0, ins::GENERAL_AUTHENTICATE, alg, MANAGEMENT_KEY_REF)
                .with_data(tlv::encode(0x7C, &inner))
                .with_ne(256)
        };
        let rejected = |sw_: u16| match sw_ {
            // Wrong key, or a key of another algorithm than the card's.
            sw::SECURITY_STATUS_NOT_SATISFIED | sw::INCORRECT_P1_P2 | sw::INCORRECT_DATA => {
                CardError::ManagementKeyRejected
            }
            other => status(OP, other),
        };

        let first = self.exchange(step(tlv::encode(0x80, &[]))).await?;
        if first.sw != sw::SUCCESS {
            return Err(rejected(first.sw));
        }
        let encrypted_witness = template_field(OP, &first.data, 0x80)?;
        let witness = Zeroizing::new(
            management_key::decrypt_block(alg, key.expose(), &encrypted_witness)
                .ok_or_else(|| malformed(OP, "the witness is not one cipher block"))?,
        );
        let mut challenge = vec![0u8; block];
        rand::rngs::OsRng.fill_bytes(&mut challenge);
        let mut inner = Zeroizing::new(tlv::encode(0x80, &witness));
        tlv::push(&mut inner, 0x81, &challenge);
        let second = self.exchange(step(inner.to_vec())).await?;
        if second.sw != sw::SUCCESS {
            return Err(rejected(second.sw));
        }
        let answer = template_field(OP, &second.data, 0x82)?;
        let expected = Zeroizing::new(
            management_key::encrypt_block(alg, key.expose(), &challenge)
                .expect("the challenge is one block"),
        );
        if answer != *expected {
            // The card took our proof but could not prove it holds the same key.
            return Err(malformed(OP, "the card's answer to our challenge is wrong"));
        }
        Ok(())
    }

    async fn generate_key(
        &mut self,
        slot: Slot,
        algorithm: KeyAlgorithm,
    ) -> Result<Vec<u8>, CardError> {
        const OP: &str = "GENERATE ASYMMETRIC KEY PAIR";
        let apdu = CommandApdu::new(
            0,
            ins::GENERATE_ASYMMETRIC_KEY_PAIR,
            0,
            slot.key_reference(),
        )
        .with_data(tlv::encode(0xAC, &tlv::encode(0x80, &[algorithm.piv_id()])))
        .with_ne(256);
        let data = self.command(OP, apdu).await?;
        public_key::spki_from_template(algorithm, &data).map_err(|e| malformed(OP, e))
    }

    async fn write_certificate(&mut self, slot: Slot, der: &[u8]) -> Result<(), CardError> {
        let tag = objects::certificate_tag(slot.key_reference()).expect("every slot has one");
        self.put_data(tag, &data_objects::certificate_object(der))
            .await
    }

    async fn write_data_objects(
        &mut self,
        objects: &CardObjects,
        signer: &dyn ContentSigner,
    ) -> Result<Vec<WrittenObject>, CardError> {
        // Everything is encoded and signed before the first PUT DATA: a signer that fails leaves
        // the card as it was.
        let encoded = data_objects::card_objects::encode(objects, signer).map_err(|e| {
            CardError::DataObject {
                object: e.object.to_string(),
                detail: e.detail,
            }
        })?;
        for object in &encoded {
            self.put_data(object.tag, &object.value).await?;
        }
        Ok(encoded.iter().map(EncodedObject::written).collect())
    }

    async fn change_pin(&mut self, current: &Pin, new: &Pin) -> Result<(), CardError> {
        let mut data = pin_block(current.expose());
        data.extend_from_slice(&pin_block(new.expose()));
        let apdu =
            CommandApdu::new(0, ins::CHANGE_REFERENCE_DATA, 0, PIN_REF).with_data(data.to_vec());
        if self.deferred.is_some() {
            return self.defer(apdu, batch::Check::Pin);
        }
        let response = self.exchange(apdu).await?;
        pin_result("CHANGE REFERENCE DATA", response.sw)
    }

    async fn change_puk(&mut self, current: &Puk, new: &Puk) -> Result<(), CardError> {
        let mut data = pin_block(current.expose());
        data.extend_from_slice(&pin_block(new.expose()));
        let apdu =
            CommandApdu::new(0, ins::CHANGE_REFERENCE_DATA, 0, PUK_REF).with_data(data.to_vec());
        if self.deferred.is_some() {
            return self.defer(apdu, batch::Check::Puk);
        }
        let response = self.exchange(apdu).await?;
        puk_result("CHANGE REFERENCE DATA", response.sw)
    }

    async fn set_management_key(&mut self, new: &ManagementKey) -> Result<(), CardError> {
        let key = new.expose();
        let mut data = Zeroizing::new(vec![
            new.algorithm().piv_id(),
            MANAGEMENT_KEY_REF,
            key.len() as u8,
        ]);
        data.extend_from_slice(key);
        let apdu =
            CommandApdu::new(0, ins::SET_MANAGEMENT_KEY, 0xFF, 0xFF).with_data(data.to_vec());
        if self.deferred.is_some() {
            return self.defer(apdu, batch::Check::ManagementKey);
        }
        let response = self.exchange(apdu).await?;
        match response.sw {
            sw::SUCCESS => Ok(()),
            sw::SECURITY_STATUS_NOT_SATISFIED => Err(CardError::ManagementKeyRejected),
            other => Err(status("SET MANAGEMENT KEY", other)),
        }
    }

    async fn verify_pin(&mut self, pin: &Pin) -> Result<(), CardError> {
        let apdu = CommandApdu::new(0, ins::VERIFY, 0, PIN_REF)
            .with_data(pin_block(pin.expose()).to_vec());
        let response = self.exchange(apdu).await?;
        pin_result("VERIFY", response.sw)
    }

    async fn pin_retries(&mut self) -> Result<u8, CardError> {
        let response = self
            .exchange(CommandApdu::new(0, ins::VERIFY, 0, PIN_REF))
            .await?;
        match response.sw {
            sw::AUTH_METHOD_BLOCKED => Ok(0),
            s if s & 0xFFF0 == sw::RETRIES_LEFT => Ok((s & 0x0F) as u8),
            // Already verified in this session, so VERIFY does not tell the count; Yubico
            // metadata does, and a verified PIN has its counter reset to the maximum anyway.
            sw::SUCCESS => {
                let left = match self.metadata(PIN_REF).await? {
                    Some(data) => metadata::parse(&data)
                        .map_err(|e| malformed("GET METADATA", e))?
                        .retries
                        .map(|(_, left)| left),
                    None => None,
                };
                Ok(left.unwrap_or(3))
            }
            other => Err(status("VERIFY", other)),
        }
    }

    async fn unblock_pin(&mut self, puk: &Puk, new_pin: &Pin) -> Result<(), CardError> {
        PivClient::unblock_pin(self, puk, new_pin).await
    }

    async fn factory_reset(&mut self) -> Result<(), CardError> {
        self.reset_to_factory().await
    }

    async fn generate_keys(
        &mut self,
        keys: &[(Slot, KeyAlgorithm)],
    ) -> Result<Vec<Vec<u8>>, CardError> {
        self.generate_all(keys).await
    }

    async fn management_key_algorithm(
        &mut self,
    ) -> Result<Option<ManagementKeyAlgorithm>, CardError> {
        const OP: &str = "GET METADATA";
        let Some(data) = self.metadata(MANAGEMENT_KEY_REF).await? else {
            return Ok(None);
        };
        // An answer that names no known algorithm tells nothing: the caller then tries each
        // factory key, which costs no retry.
        Ok(metadata::parse(&data)
            .map_err(|e| malformed(OP, e))?
            .algorithm
            .and_then(ManagementKeyAlgorithm::from_piv_id))
    }

    async fn attest(&mut self, slot: Slot) -> Result<Vec<u8>, CardError> {
        const OP: &str = "ATTEST";
        let apdu = CommandApdu::new(0, ins::ATTEST, slot.key_reference(), 0).with_ne(256);
        let der = self.command(OP, apdu).await?;
        // The answer is a bare certificate: one DER SEQUENCE and nothing after it.
        match tlv::parse_one(&der) {
            Ok((t, [])) if t.tag == 0x30 => Ok(der),
            _ => Err(malformed(OP, "the answer is not a certificate")),
        }
    }

    async fn attestation_certificate(&mut self) -> Result<Option<Vec<u8>>, CardError> {
        match self.get_data(ATTESTATION_OBJECT).await? {
            None => Ok(None),
            Some(value) => data_objects::certificate_from_object(&value)
                .map(Some)
                .ok_or_else(|| malformed("GET DATA", "the attestation object has no certificate")),
        }
    }

    fn defer_writes(&mut self) {
        self.deferred.get_or_insert_with(Vec::new);
    }

    async fn flush_writes(&mut self) -> Result<(), CardError> {
        self.flush().await
    }
}

impl PivClient {
    /// A stable identifier for cards without GET SERIAL: the CHUID GUID, else a hash of the ATR.
    async fn fallback_id(&mut self, atr: &[u8]) -> Result<String, CardError> {
        if let Some(chuid) = self.get_data(objects::CHUID).await? {
            if let Some(guid) = tlv::find(&chuid, 0x34).filter(|g| g.iter().any(|&b| b != 0)) {
                return Ok(hex::encode(guid));
            }
        }
        use sha2::Digest;
        Ok(hex::encode(&sha2::Sha256::digest(atr)[..8]))
    }
}

mod batch;
#[cfg(test)]
mod fips201_tests;
mod reset;
#[cfg(test)]
mod tests;

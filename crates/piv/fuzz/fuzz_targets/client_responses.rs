//! The PIV client against a hostile card: a `CardTransport` answers each command with the next
//! chunk of the input (a 2-byte big-endian length, then that many bytes, or what is left), and
//! fails as a pulled card does once the input runs out. Between operations the next input byte
//! chooses which client operation runs. Every operation must end in `Ok` or a `CardError`.
//!
//! The first byte of the input says whether the transport offers extended length (bit 0), which
//! switches the client between extended APDUs and command chaining.
#![no_main]

use async_trait::async_trait;
use futures_executor::block_on;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, Mutex};
use tessera_core::fips201::{CardObjects, ContentSigner, ContentToSign, FascN, FacialImage};
use tessera_core::model::{KeyAlgorithm, Slot};
use tessera_core::ports::{CardError, CardTransport, PivCard, PortError, PrintedInformation};
use tessera_core::secret::{ManagementKey, ManagementKeyAlgorithm, Pin, Puk};
use tessera_piv::card::objects;
use tessera_piv::PivClient;

/// The fuzz input, read from the front by the operation picker and the transport alike.
#[derive(Clone)]
struct Input(Arc<Mutex<(Vec<u8>, usize)>>);

impl Input {
    fn byte(&self) -> Option<u8> {
        let mut guard = self.0.lock().unwrap();
        let (bytes, at) = &mut *guard;
        let b = bytes.get(*at).copied();
        *at += usize::from(b.is_some());
        b
    }

    fn chunk(&self) -> Option<Vec<u8>> {
        let mut guard = self.0.lock().unwrap();
        let (bytes, at) = &mut *guard;
        let rest = &bytes[*at..];
        if rest.len() < 2 {
            *at = bytes.len();
            return None;
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let out = rest[2..2 + len].to_vec();
        *at += 2 + len;
        Some(out)
    }
}

struct HostileCard {
    input: Input,
    extended: bool,
}

#[async_trait]
impl CardTransport for HostileCard {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        // The client must only ever send well-formed commands.
        assert!(
            tessera_piv::CommandApdu::parse(command).is_ok(),
            "the client sent a malformed command"
        );
        self.input
            .chunk()
            .ok_or_else(|| CardError::Unreachable("the fuzz input is used up".into()))
    }

    fn atr(&self) -> Vec<u8> {
        tessera_piv::card::ATR.to_vec()
    }

    fn extended_length(&self) -> bool {
        self.extended
    }
}

/// Signs with a stand-in signature: what matters here is the card's answers to PUT DATA.
struct FixedSigner;

impl ContentSigner for FixedSigner {
    fn sign(&self, request: &ContentToSign<'_>) -> Result<Vec<u8>, PortError> {
        Ok(vec![0x30, 0x01, request.content.len() as u8])
    }
}

/// A baseline JPEG header of 420 x 560 with three components, then `len` bytes of scan.
fn portrait(len: usize) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 8, 0x02, 0x30, 0x01, 0xA4, 3];
    j.extend_from_slice(&[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xDA, 0x00, 0x02]);
    j.resize(j.len() + len, 0x11);
    j.extend_from_slice(&[0xFF, 0xD9]);
    j
}

fn slot(b: u8) -> Slot {
    Slot::ALL[usize::from(b) % Slot::ALL.len()]
}

fn algorithm(b: u8) -> KeyAlgorithm {
    match b % 4 {
        0 => KeyAlgorithm::EccP256,
        1 => KeyAlgorithm::EccP384,
        2 => KeyAlgorithm::Rsa2048,
        _ => KeyAlgorithm::Rsa3072,
    }
}

fn management_key(b: u8) -> ManagementKey {
    let (alg, len) = match b % 4 {
        0 => (ManagementKeyAlgorithm::TripleDes, 24),
        1 => (ManagementKeyAlgorithm::Aes128, 16),
        2 => (ManagementKeyAlgorithm::Aes192, 24),
        _ => (ManagementKeyAlgorithm::Aes256, 32),
    };
    ManagementKey::new(alg, (1..=len).collect()).unwrap()
}

async fn run(input: Input) {
    let Some(flags) = input.byte() else {
        return;
    };
    let mut client = PivClient::new(Box::new(HostileCard {
        input: input.clone(),
        extended: flags & 1 != 0,
    }));
    let info = PrintedInformation {
        name: "Jane Doe".into(),
        expiration_date: "2030DEC31".into(),
        ..Default::default()
    };
    // Each operation consumes at least one byte (its selector), so the loop ends.
    while let Some(op) = input.byte() {
        let arg = input.byte().unwrap_or(0);
        match op % 27 {
            0 => drop(client.select().await),
            1 => drop(client.authenticate(&management_key(arg)).await),
            2 => drop(client.generate_key(slot(arg), algorithm(arg >> 2)).await),
            3 => drop(client.read_certificate(slot(arg)).await),
            4 => drop(client.read_printed_information().await),
            5 => drop(client.pin_retries().await),
            6 => drop(client.verify_pin(&Pin::factory_default()).await),
            7 => drop(
                client
                    .change_pin(&Pin::factory_default(), &Pin::new("654321"))
                    .await,
            ),
            8 => drop(
                client
                    .change_puk(&Puk::factory_default(), &Puk::new("87654321"))
                    .await,
            ),
            9 => drop(
                client
                    .unblock_pin(&Puk::factory_default(), &Pin::new("111111"))
                    .await,
            ),
            10 => drop(client.set_management_key(&management_key(arg)).await),
            11 => {
                // Long enough to be chained (or sent extended).
                let der: Vec<u8> = (0..usize::from(arg) * 8).map(|i| i as u8).collect();
                drop(client.write_certificate(slot(arg), &der).await)
            }
            12..=14 => {
                // Every object, a facial image long enough to be chained (or sent extended).
                let objects = CardObjects {
                    guid: [arg; 16],
                    expires: "20301231".into(),
                    fasc_n: FascN::non_federal().encode().unwrap(),
                    created: "20261207120000Z".into(),
                    chuid: true,
                    ccc: op % 27 != 12,
                    printed_information: Some(info.clone()),
                    facial_image: (op % 27 == 14).then(|| FacialImage {
                        jpeg: portrait(usize::from(arg) * 16),
                    }),
                    fingerprints: None,
                    security_object: arg & 1 == 0,
                };
                drop(client.write_data_objects(&objects, &FixedSigner).await)
            }
            15 => drop(
                client
                    .sign(slot(arg), algorithm(arg >> 2), &[arg; 32])
                    .await,
            ),
            16 => drop(
                client
                    .sign(slot(arg), KeyAlgorithm::Rsa2048, &[arg; 256])
                    .await,
            ),
            17 => drop(client.ecdh(slot(arg), algorithm(arg >> 2), &[4; 65]).await),
            18 => drop(client.serial().await),
            19 => drop(client.version().await),
            20 => drop(client.metadata(arg).await),
            21 => drop(client.get_data(objects::CHUID).await),
            22 => drop(client.get_data(objects::DISCOVERY).await),
            23 => drop(client.management_key_algorithm().await),
            24 => drop(client.attest(slot(arg)).await),
            25 => drop(client.attestation_certificate().await),
            _ => {
                let apdu = tessera_piv::CommandApdu::new(0, 0xCB, 0x3F, 0xFF)
                    .with_data(vec![0x5C, 0x01, 0x7E])
                    .with_ne(usize::from(arg) + 1);
                drop(client.exchange(apdu).await)
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    block_on(run(Input(Arc::new(Mutex::new((data.to_vec(), 0))))));
});

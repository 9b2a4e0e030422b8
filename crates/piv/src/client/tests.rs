//! The client against the virtual card through the transport, as the issuance use case drives it.

use super::*;
use crate::virtual_transport::VirtualCardTransport;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use tessera_core::secret::ManagementKeyAlgorithm;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tessera-piv-{name}-{}-{}",
            std::process::id(),
            rand::rngs::OsRng.next_u32()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        // A firmware 5.4 card (eight-digit serial, like the transport makes): its factory
        // management key is the 3DES one these tests use.
        let serial = 10_000_000 + rand::rngs::OsRng.next_u32() % 90_000_000;
        crate::VirtualCard::blank_with_firmware(serial, [5, 4, 3], rand::rngs::OsRng)
            .save(dir.join("card.json"))
            .unwrap();
        Self(dir)
    }
    fn card(&self) -> PathBuf {
        self.0.join("card.json")
    }

    /// Replaces the card with a firmware 5.7 one (RSA 3072) whose management key was set to the
    /// 3DES factory key these tests authenticate with (a 5.7 leaves the factory with AES-192).
    fn firmware_5_7_with_3des_factory_key(&self) {
        use crate::management_key::{decrypt_block, ALG_3DES, ALG_AES192};
        let key: Vec<u8> = (0..3).flat_map(|_| 1u8..=8).collect();
        let mut card = crate::VirtualCard::blank(12_345_678, rand::rngs::OsRng);
        let mut send = |apdu: CommandApdu| {
            let r = ResponseApdu::parse(&card.process(&apdu.to_bytes().unwrap())).unwrap();
            assert!(r.is_success(), "{r:?}");
            r.data
        };
        let step = |inner: Vec<u8>| {
            CommandApdu::new(0, 0x87, ALG_AES192, 0x9B)
                .with_data(tlv::encode(0x7C, &inner))
                .with_ne(256)
        };
        let first = send(step(tlv::encode(0x80, &[])));
        let outer = tlv::parse_one(&first).unwrap().0;
        let encrypted = tlv::find(outer.value, 0x80).unwrap();
        let witness = decrypt_block(ALG_AES192, &key, encrypted).unwrap();
        let mut inner = tlv::encode(0x80, &witness);
        tlv::push(&mut inner, 0x81, &[0x5A; 16]);
        send(step(inner));
        let mut set = vec![ALG_3DES, 0x9B, 24];
        set.extend_from_slice(&key);
        send(CommandApdu::new(0, 0xFF, 0xFF, 0xFF).with_data(set));
        card.save(self.card()).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A reader without extended length that records every command it carries.
struct ShortReader {
    inner: VirtualCardTransport,
    commands: Arc<Mutex<Vec<Vec<u8>>>>,
}

#[async_trait]
impl CardTransport for ShortReader {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        self.commands.lock().unwrap().push(command.to_vec());
        self.inner.transmit(command).await
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
}

/// A certificate-sized blob (the card stores it without looking inside).
fn dummy_certificate(seed: u8) -> Vec<u8> {
    let body: Vec<u8> = (0..796u32).map(|i| (i as u8).wrapping_mul(seed)).collect();
    tlv::encode(0x30, &body)
}

fn aes_key() -> ManagementKey {
    ManagementKey::new(ManagementKeyAlgorithm::Aes256, (0..32).collect()).unwrap()
}

#[tokio::test]
async fn full_personalisation() {
    let dir = TempDir::new("personalise");
    let transport = VirtualCardTransport::open(dir.card()).unwrap();
    let mut card = (factory())(Box::new(transport));

    let identity = card.select().await.unwrap();
    assert_eq!(identity.serial.len(), 8);
    assert_eq!(identity.version.as_deref(), Some("5.4.3"));
    assert_eq!(identity.atr, crate::card::ATR);

    card.authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    for (i, slot) in Slot::ALL.into_iter().enumerate() {
        let spki = card
            .generate_key(slot, KeyAlgorithm::EccP256)
            .await
            .unwrap();
        use spki::DecodePublicKey;
        p256::PublicKey::from_public_key_der(&spki).unwrap();
        card.write_certificate(slot, &dummy_certificate(i as u8 + 3))
            .await
            .unwrap();
    }
    let signer = crate::data_objects::test_signer::RecordingSigner::new();
    let written = card
        .write_data_objects(
            &CardObjects {
                guid: [0x42; 16],
                expires: "20301231".into(),
                fasc_n: tessera_core::fips201::FascN::non_federal()
                    .encode()
                    .unwrap(),
                created: "20261207120000Z".into(),
                chuid: true,
                ccc: true,
                printed_information: Some(PrintedInformation {
                    name: "Jane Doe".into(),
                    employee_affiliation: "Staff".into(),
                    expiration_date: "2030DEC31".into(),
                    agency_card_serial: "000123".into(),
                    issuer_identification: "Tessera".into(),
                    organization_line_1: "Example".into(),
                    organization_line_2: String::new(),
                }),
                facial_image: None,
                fingerprints: None,
                security_object: false,
            },
            &signer,
        )
        .await
        .unwrap();
    assert_eq!(written.len(), 3);
    card.change_pin(&Pin::factory_default(), &Pin::new("24681357"))
        .await
        .unwrap();
    card.change_puk(&Puk::factory_default(), &Puk::new("97531864"))
        .await
        .unwrap();
    card.set_management_key(&aes_key()).await.unwrap();

    // A fresh session on the same card file, as after the card is carried to another reader.
    drop(card);
    let mut client = PivClient::new(Box::new(VirtualCardTransport::open(dir.card()).unwrap()));
    client.select().await.unwrap();
    assert_eq!(
        client.authenticate(&ManagementKey::factory_default()).await,
        Err(CardError::ManagementKeyRejected)
    );
    let wrong_aes = ManagementKey::new(ManagementKeyAlgorithm::Aes256, vec![1; 32]).unwrap();
    assert_eq!(
        client.authenticate(&wrong_aes).await,
        Err(CardError::ManagementKeyRejected)
    );
    client.authenticate(&aes_key()).await.unwrap();
    for (i, slot) in Slot::ALL.into_iter().enumerate() {
        assert_eq!(
            client.read_certificate(slot).await.unwrap().unwrap(),
            dummy_certificate(i as u8 + 3)
        );
    }
    let chuid = client.get_data(objects::CHUID).await.unwrap().unwrap();
    assert_eq!(tlv::find(&chuid, 0x34), Some(&[0x42u8; 16][..]));
    let ccc = client.get_data(objects::CCC).await.unwrap().unwrap();
    assert_eq!(tlv::find(&ccc, 0xF0).unwrap().len(), 21);
    let discovery = client.get_data(objects::DISCOVERY).await.unwrap().unwrap();
    assert!(tlv::find(&discovery, 0x4F).is_some());

    // The old PIN is gone; wrong PINs count down; the printed information needs the PIN.
    assert!(client.read_printed_information().await.is_err());
    assert_eq!(client.pin_retries().await.unwrap(), 3);
    assert_eq!(
        client.verify_pin(&Pin::factory_default()).await,
        Err(CardError::WrongPin { retries_left: 2 })
    );
    assert_eq!(client.pin_retries().await.unwrap(), 2);
    client.verify_pin(&Pin::new("24681357")).await.unwrap();
    assert_eq!(client.pin_retries().await.unwrap(), 3);
    let printed = client.read_printed_information().await.unwrap().unwrap();
    assert_eq!(printed.name, "Jane Doe");
    assert_eq!(
        client
            .change_puk(&Puk::factory_default(), &Puk::new("11112222"))
            .await,
        Err(CardError::WrongPuk { retries_left: 2 })
    );

    // Block the PIN, then unblock it with the PUK.
    for expected in [
        CardError::WrongPin { retries_left: 2 },
        CardError::WrongPin { retries_left: 1 },
        CardError::PinBlocked,
        CardError::PinBlocked,
    ] {
        assert_eq!(client.verify_pin(&Pin::new("000000")).await, Err(expected));
    }
    assert_eq!(client.pin_retries().await.unwrap(), 0);
    assert_eq!(
        client
            .change_pin(&Pin::new("24681357"), &Pin::new("123123"))
            .await,
        Err(CardError::PinBlocked)
    );
    client
        .unblock_pin(&Puk::new("97531864"), &Pin::new("135790"))
        .await
        .unwrap();
    assert_eq!(client.pin_retries().await.unwrap(), 3);
    client.verify_pin(&Pin::new("135790")).await.unwrap();
}

#[tokio::test]
async fn signing_with_9a_verifies_against_the_returned_key() {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use sha2::Digest;
    use spki::DecodePublicKey;
    let dir = TempDir::new("sign");
    let mut client = PivClient::new(Box::new(VirtualCardTransport::open(dir.card()).unwrap()));
    client.select().await.unwrap();
    client
        .authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    let spki = client
        .generate_key(Slot::PivAuthentication, KeyAlgorithm::EccP256)
        .await
        .unwrap();
    let public = p256::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap();
    let hash = sha2::Sha256::digest(b"sign me");

    let refused = client
        .sign(Slot::PivAuthentication, KeyAlgorithm::EccP256, &hash)
        .await;
    assert!(matches!(refused, Err(CardError::Status { sw: 0x6982, .. })));
    client.verify_pin(&Pin::factory_default()).await.unwrap();
    let der = client
        .sign(Slot::PivAuthentication, KeyAlgorithm::EccP256, &hash)
        .await
        .unwrap();
    let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
    public.verify_prehash(&hash, &signature).unwrap();

    // P-384 in the card authentication slot, no PIN needed.
    let spki = client
        .generate_key(Slot::CardAuthentication, KeyAlgorithm::EccP384)
        .await
        .unwrap();
    let public = p384::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap();
    let hash = sha2::Sha384::digest(b"door");
    let der = client
        .sign(Slot::CardAuthentication, KeyAlgorithm::EccP384, &hash)
        .await
        .unwrap();
    let signature = p384::ecdsa::Signature::from_der(&der).unwrap();
    public.verify_prehash(&hash, &signature).unwrap();
}

#[tokio::test]
async fn short_readers_get_chains_and_get_response() {
    let dir = TempDir::new("short");
    let commands = Arc::new(Mutex::new(Vec::new()));
    let reader = ShortReader {
        inner: VirtualCardTransport::open(dir.card()).unwrap(),
        commands: Arc::clone(&commands),
    };
    let mut client = PivClient::new(Box::new(reader));
    client.select().await.unwrap();
    client
        .authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    commands.lock().unwrap().clear();
    let cert = dummy_certificate(5);
    client
        .write_certificate(Slot::KeyManagement, &cert)
        .await
        .unwrap();
    {
        let sent = commands.lock().unwrap();
        assert_eq!(sent.len(), 4, "810 bytes of object in 255-byte parts");
        for (i, c) in sent.iter().enumerate() {
            assert!(c.len() <= 5 + 255 + 1);
            assert_eq!(c[0] & 0x10 != 0, i < 3);
            assert_ne!(c[4], 0, "no extended length");
        }
    }
    commands.lock().unwrap().clear();
    assert_eq!(
        client
            .read_certificate(Slot::KeyManagement)
            .await
            .unwrap()
            .unwrap(),
        cert
    );
    let sent = commands.lock().unwrap();
    assert_eq!(sent.len(), 4, "GET DATA then three GET RESPONSE");
    assert!(sent[1..].iter().all(|c| c[1] == 0xC0));
}

#[tokio::test]
async fn extended_length_readers_need_one_command_per_object() {
    let dir = TempDir::new("extended");
    let transport = VirtualCardTransport::open(dir.card()).unwrap();
    let card = transport.card();
    let mut client = PivClient::new(Box::new(transport));
    client
        .authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    let cert = dummy_certificate(9);
    client
        .write_certificate(Slot::DigitalSignature, &cert)
        .await
        .unwrap();
    assert_eq!(
        client
            .read_certificate(Slot::DigitalSignature)
            .await
            .unwrap()
            .unwrap(),
        cert
    );
    // Through the raw card: an extended PUT DATA lands in one command.
    let bytes = CommandApdu::new(0, ins::GET_DATA, 0x3F, 0xFF)
        .with_data(vec![0x5C, 3, 0x5F, 0xC1, 0x0A])
        .with_ne(65536)
        .extended(true)
        .to_bytes()
        .unwrap();
    let response = card.lock().unwrap().process(&bytes);
    assert_eq!(response[response.len() - 2..], [0x90, 0x00]);
}

#[tokio::test]
async fn a_pulled_card_is_unreachable_and_forgets_its_session() {
    let dir = TempDir::new("pulled");
    let mut transport = VirtualCardTransport::open(dir.card()).unwrap();
    let switch = transport.removal_switch();
    transport.fail_after(3);
    let mut client = PivClient::new(Box::new(transport));
    // Authentication takes two commands and VERIFY one; the card is pulled before the next.
    client
        .authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    client.verify_pin(&Pin::factory_default()).await.unwrap();
    let err = client
        .generate_key(Slot::PivAuthentication, KeyAlgorithm::EccP256)
        .await
        .unwrap_err();
    assert!(matches!(err, CardError::Unreachable(_)), "{err:?}");
    assert!(switch.load(Ordering::SeqCst));
    assert!(matches!(
        client.select().await,
        Err(CardError::Unreachable(_))
    ));
    // Put it back: the management-key authentication is gone.
    switch.store(false, Ordering::SeqCst);
    client.select().await.unwrap();
    assert_eq!(
        client
            .put_data(objects::CHUID, &tlv::encode(0x34, &[1; 16]))
            .await,
        Err(CardError::ManagementKeyRejected)
    );
}

#[tokio::test]
async fn a_card_that_is_not_piv() {
    struct NotPiv;
    #[async_trait]
    impl CardTransport for NotPiv {
        async fn transmit(&mut self, _command: &[u8]) -> Result<Vec<u8>, CardError> {
            Ok(vec![0x6A, 0x82])
        }
        fn atr(&self) -> Vec<u8> {
            vec![0x3B, 0x00]
        }
    }
    let mut client = PivClient::new(Box::new(NotPiv));
    assert_eq!(client.select().await, Err(CardError::NotPiv));

    struct Garbage;
    #[async_trait]
    impl CardTransport for Garbage {
        async fn transmit(&mut self, _command: &[u8]) -> Result<Vec<u8>, CardError> {
            Ok(vec![0x90])
        }
        fn atr(&self) -> Vec<u8> {
            vec![]
        }
    }
    let mut client = PivClient::new(Box::new(Garbage));
    assert!(matches!(
        client.verify_pin(&Pin::factory_default()).await,
        Err(CardError::Malformed { .. })
    ));

    /// A card that answers 61xx forever.
    struct Endless;
    #[async_trait]
    impl CardTransport for Endless {
        async fn transmit(&mut self, _command: &[u8]) -> Result<Vec<u8>, CardError> {
            Ok(vec![0, 0x61, 0x01])
        }
        fn atr(&self) -> Vec<u8> {
            vec![]
        }
    }
    let mut client = PivClient::new(Box::new(Endless));
    assert!(matches!(
        client.get_data(objects::CHUID).await,
        Err(CardError::Malformed { .. })
    ));
}

/// Collects log output so a test can look for secrets in it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn traces_never_show_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = TempDir::new("trace");
    let mut client = PivClient::new(Box::new(VirtualCardTransport::open(dir.card()).unwrap()));
    client.select().await.unwrap();
    client
        .authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    client
        .change_pin(&Pin::factory_default(), &Pin::new("97979797"))
        .await
        .unwrap();
    client.verify_pin(&Pin::new("97979797")).await.unwrap();
    client
        .change_puk(&Puk::factory_default(), &Puk::new("86868686"))
        .await
        .unwrap();
    client
        .unblock_pin(&Puk::new("86868686"), &Pin::new("75757575"))
        .await
        .unwrap();
    client.set_management_key(&aes_key()).await.unwrap();
    client.factory_reset().await.unwrap();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("A4"), "the trace is there: {log}");
    assert!(log.contains("redacted"));
    for secret in [
        "313233343536",                     // 123456
        "3937393739373937",                 // new PIN
        "3836383638363836",                 // new PUK
        "3735373537353735",                 // PIN set with the PUK
        "0102030405060708",                 // factory management key
        "000102030405060708090A0B0C0D0E0F", // new AES key
        "FFFFFFFFFFFFFFFF",                 // the empty PIN and PUK of the factory reset
        "3030303030303030",                 // the unused PIN of the factory reset
    ] {
        assert!(!log.contains(secret), "{secret} leaked into {log}");
    }
}

/// The PKCS#1 v1.5 block of a SHA-256 signature over `message`, `len` bytes long, built here as
/// middleware does before asking the card; returns the hash too.
fn pkcs1_sha256_block(message: &[u8], len: usize) -> (Vec<u8>, Vec<u8>) {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(message).to_vec();
    let digest_info_prefix: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let t_len = digest_info_prefix.len() + hash.len();
    let mut block = vec![0x00, 0x01];
    block.resize(len - t_len - 1, 0xFF);
    block.push(0x00);
    block.extend_from_slice(&digest_info_prefix);
    block.extend_from_slice(&hash);
    (hash, block)
}

/// Generates an RSA key in the Key Management slot, checks its size, and has the card sign with it
/// after the PIN; returns the public key.
async fn rsa_generate_and_sign(
    client: &mut PivClient,
    algorithm: KeyAlgorithm,
    bytes: usize,
) -> rsa::RsaPublicKey {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PublicKeyParts;
    client
        .authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    let spki = client
        .generate_key(Slot::KeyManagement, algorithm)
        .await
        .unwrap();
    let public = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
    assert_eq!(public.size(), bytes);

    let (hash, block) = pkcs1_sha256_block(b"key management", bytes);
    client.verify_pin(&Pin::factory_default()).await.unwrap();
    let signature = client
        .sign(Slot::KeyManagement, algorithm, &block)
        .await
        .unwrap();
    assert_eq!(signature.len(), bytes);
    public
        .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hash, &signature)
        .unwrap();
    public
}

#[tokio::test]
async fn rsa_2048_generation_and_signature() {
    let dir = TempDir::new("rsa");
    let mut client = PivClient::new(Box::new(VirtualCardTransport::open(dir.card()).unwrap()));
    rsa_generate_and_sign(&mut client, KeyAlgorithm::Rsa2048, 256).await;
}

#[tokio::test]
async fn rsa_3072_generation_signature_and_short_reader() {
    let dir = TempDir::new("rsa3072");
    dir.firmware_5_7_with_3des_factory_key();
    let mut client = PivClient::new(Box::new(VirtualCardTransport::open(dir.card()).unwrap()));
    // Extended length: the 394-byte command and the 392-byte answer each travel in one APDU.
    let public = rsa_generate_and_sign(&mut client, KeyAlgorithm::Rsa3072, 384).await;
    drop(client);

    // The same key after the card was put away, through a reader without extended length: the
    // command goes as a chain of two, the answer comes back with GET RESPONSE.
    let commands = Arc::new(Mutex::new(Vec::new()));
    let reader = ShortReader {
        inner: VirtualCardTransport::open(dir.card()).unwrap(),
        commands: Arc::clone(&commands),
    };
    let mut client = PivClient::new(Box::new(reader));
    client.select().await.unwrap();
    client.verify_pin(&Pin::factory_default()).await.unwrap();
    commands.lock().unwrap().clear();
    let (hash, block) = pkcs1_sha256_block(b"short reader", 384);
    let signature = client
        .sign(Slot::KeyManagement, KeyAlgorithm::Rsa3072, &block)
        .await
        .unwrap();
    public
        .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hash, &signature)
        .unwrap();
    {
        // Scoped: the reader takes this lock for every later command.
        let sent = commands.lock().unwrap();
        assert_eq!(sent.len(), 3, "two chained parts and one GET RESPONSE");
        assert_eq!(sent[0][..4], [0x10, 0x87, 0x05, 0x9D]);
        assert_eq!(sent[1][..4], [0x00, 0x87, 0x05, 0x9D]);
        assert_eq!(sent[2][..4], [0x00, 0xC0, 0x00, 0x00]);
        assert!(sent.iter().all(|c| c.len() <= 5 + 255 + 1));
    }

    // GET METADATA reports the algorithm and the same modulus.
    let meta = client.metadata(0x9D).await.unwrap().unwrap();
    assert_eq!(tlv::find(&meta, 0x01), Some(&[0x05u8][..]));
    let template = tlv::find(&meta, 0x04).unwrap();
    let spki =
        public_key::spki_from_template(KeyAlgorithm::Rsa3072, &tlv::encode(0x7F49, template))
            .unwrap();
    use rsa::pkcs8::EncodePublicKey;
    assert_eq!(spki, public.to_public_key_der().unwrap().as_bytes());
    // A 3072-bit template is not taken for a 2048-bit key.
    assert!(
        public_key::spki_from_template(KeyAlgorithm::Rsa2048, &tlv::encode(0x7F49, template))
            .is_err()
    );
}

/// A relay-like transport: counts round trips, one per `transmit` and one per script.
struct CountingRelay {
    inner: Box<dyn CardTransport>,
    extended: bool,
    round_trips: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait]
impl CardTransport for CountingRelay {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        self.round_trips.fetch_add(1, Ordering::SeqCst);
        self.inner.transmit(command).await
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn extended_length(&self) -> bool {
        self.extended
    }
    async fn run_script(
        &mut self,
        script: &[tessera_core::ports::ScriptCommand],
    ) -> Result<Vec<Vec<u8>>, CardError> {
        self.round_trips.fetch_add(1, Ordering::SeqCst);
        let mut out = Vec::new();
        for c in script {
            let r = self.inner.transmit(&c.apdu).await?;
            let go_on = c.accepts(&r);
            out.push(r);
            if !go_on {
                break;
            }
        }
        Ok(out)
    }
}

/// Personalises a card through a counting relay; returns the round trips and the card file.
async fn personalise_counting(extended: bool, scripts: bool) -> (usize, TempDir) {
    let dir = TempDir::new("scripts");
    let round_trips = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let relay = CountingRelay {
        inner: Box::new(VirtualCardTransport::open(dir.card()).unwrap()),
        extended,
        round_trips: round_trips.clone(),
    };
    let mut card = (factory_with(scripts))(Box::new(relay));
    let identity = card.select().await.unwrap();
    assert_eq!(identity.version.as_deref(), Some("5.4.3"));
    assert_eq!(identity.serial.len(), 8);
    card.authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    let keys: Vec<_> = Slot::ALL
        .into_iter()
        .map(|s| (s, KeyAlgorithm::EccP256))
        .collect();
    let spkis = card.generate_keys(&keys).await.unwrap();
    assert_eq!(spkis.len(), 4);
    card.defer_writes();
    for (i, slot) in Slot::ALL.into_iter().enumerate() {
        card.write_certificate(slot, &dummy_certificate(i as u8 + 1))
            .await
            .unwrap();
    }
    card.change_pin(&Pin::factory_default(), &Pin::new("24681357"))
        .await
        .unwrap();
    card.set_management_key(&aes_key()).await.unwrap();
    card.flush_writes().await.unwrap();
    (round_trips.load(Ordering::SeqCst), dir)
}

#[tokio::test]
async fn scripts_cut_round_trips_and_leave_the_same_card() {
    let (with, dir) = personalise_counting(true, true).await;
    // SELECT+SERIAL+VERSION, two GENERAL AUTHENTICATE, all keys, all writes.
    assert_eq!(with, 5);
    let (without, _) = personalise_counting(true, false).await;
    assert!(without >= 13, "{without}");
    // Short readers chain the certificates inside the script; still one round trip for writes.
    let (short, _) = personalise_counting(false, true).await;
    assert!(short <= 6, "{short}");

    // The card took everything: new PIN, new management key, the certificates.
    let mut card = (factory())(Box::new(VirtualCardTransport::open(dir.card()).unwrap()));
    card.select().await.unwrap();
    card.verify_pin(&Pin::new("24681357")).await.unwrap();
    card.authenticate(&aes_key()).await.unwrap();
    let mut client = PivClient::new(
        VirtualCardTransport::open(dir.card())
            .map(Box::new)
            .unwrap(),
    );
    client.select().await.unwrap();
    assert_eq!(
        client
            .read_certificate(Slot::DigitalSignature)
            .await
            .unwrap(),
        Some(dummy_certificate(2))
    );
}

#[tokio::test]
async fn a_script_stops_at_the_first_refusal_and_names_it() {
    let dir = TempDir::new("script-refusal");
    let mut card = (factory())(Box::new(VirtualCardTransport::open(dir.card()).unwrap()));
    card.select().await.unwrap();
    card.authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    card.defer_writes();
    card.write_certificate(Slot::PivAuthentication, &dummy_certificate(1))
        .await
        .unwrap();
    // Wrong current PIN: the card refuses, and the management key after it is never sent.
    card.change_pin(&Pin::new("999999"), &Pin::new("24681357"))
        .await
        .unwrap();
    card.set_management_key(&aes_key()).await.unwrap();
    let err = card.flush_writes().await.unwrap_err();
    assert_eq!(err, CardError::WrongPin { retries_left: 2 });
    let mut card = (factory())(Box::new(VirtualCardTransport::open(dir.card()).unwrap()));
    card.select().await.unwrap();
    card.authenticate(&ManagementKey::factory_default())
        .await
        .expect("the factory key is still in place");
}

#[tokio::test]
async fn a_card_without_room_for_an_object_says_which_and_how_big() {
    let dir = TempDir::new("no-room");
    let mut client = PivClient::new(Box::new(VirtualCardTransport::open(dir.card()).unwrap()));
    client.select().await.unwrap();
    client
        .authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    // The printed information takes what a YubiKey holds in one object, 3052 bytes, and no more.
    let too_big = vec![0; objects::MAX_OBJECT_LEN + 1];
    let expected = CardError::DataObject {
        object: "printed information".into(),
        detail: "the card has no room for its 3053 bytes (it answered 6A84); issue this card \
                 model with a device policy that leaves the object out"
            .into(),
    };
    let sent_alone = client
        .put_data(objects::PRINTED_INFORMATION, &too_big)
        .await;
    assert_eq!(sent_alone, Err(expected.clone()));
    // The same answer when the write travels in a script.
    client.defer_writes();
    client
        .put_data(objects::PRINTED_INFORMATION, &too_big)
        .await
        .unwrap();
    assert_eq!(client.flush_writes().await, Err(expected));
}

/// A transport that counts the APDU scripts (round trips through a station) it carries.
struct ScriptCounter {
    inner: VirtualCardTransport,
    scripts: Arc<Mutex<usize>>,
    /// Answers `6D00` to GET VERSION, like a PIV card without the Yubico extensions.
    plain_piv: bool,
    /// Answers `6985` to this many RESETs, like a card whose PIN and PUK allow more tries than
    /// one round blocks.
    refuse_resets: usize,
}

#[async_trait]
impl CardTransport for ScriptCounter {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        if self.plain_piv && command.get(1) == Some(&ins::GET_VERSION) {
            return Ok(vec![0x6D, 0x00]);
        }
        if self.refuse_resets > 0 && command.get(1) == Some(&ins::RESET) {
            self.refuse_resets -= 1;
            return Ok(vec![0x69, 0x85]);
        }
        self.inner.transmit(command).await
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    async fn run_script(
        &mut self,
        script: &[tessera_core::ports::ScriptCommand],
    ) -> Result<Vec<Vec<u8>>, CardError> {
        *self.scripts.lock().unwrap() += 1;
        let mut responses = Vec::new();
        for command in script {
            let response = self.transmit(&command.apdu).await?;
            let go_on = command.accepts(&response);
            responses.push(response);
            if !go_on {
                break;
            }
        }
        Ok(responses)
    }
}

fn counted(dir: &TempDir, plain_piv: bool) -> (PivClient, Arc<Mutex<usize>>, SharedCard) {
    let inner = VirtualCardTransport::open(dir.card()).unwrap();
    let card = inner.card();
    let scripts = Arc::new(Mutex::new(0));
    let transport = ScriptCounter {
        inner,
        scripts: scripts.clone(),
        plain_piv,
        refuse_resets: 0,
    };
    (PivClient::new(Box::new(transport)), scripts, card)
}

use crate::virtual_transport::SharedCard;

/// Personalises the card as an issuance that stopped after its last write would have left it.
async fn personalise_and_lock(client: &mut PivClient) {
    client.select().await.unwrap();
    client
        .authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    client
        .generate_key(Slot::PivAuthentication, KeyAlgorithm::EccP256)
        .await
        .unwrap();
    client
        .write_certificate(Slot::PivAuthentication, &dummy_certificate(5))
        .await
        .unwrap();
    client
        .change_pin(&Pin::factory_default(), &Pin::new("24681357"))
        .await
        .unwrap();
    client
        .change_puk(&Puk::factory_default(), &Puk::new("97531864"))
        .await
        .unwrap();
    client.set_management_key(&aes_key()).await.unwrap();
}

/// The card answers as a factory-fresh one: factory management key, PIN and PUK, no objects.
async fn assert_factory(client: &mut PivClient, serial: &str) {
    let identity = client.select().await.unwrap();
    assert_eq!(identity.serial, serial, "a reset keeps the serial");
    client
        .authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    assert_eq!(client.pin_retries().await.unwrap(), 3);
    client.verify_pin(&Pin::factory_default()).await.unwrap();
    assert_eq!(
        client
            .read_certificate(Slot::PivAuthentication)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        client
            .metadata(Slot::PivAuthentication.key_reference())
            .await
            .unwrap(),
        None,
        "the slot key is gone"
    );
    client
        .change_puk(&Puk::factory_default(), &Puk::factory_default())
        .await
        .expect("the PUK is the factory one");
}

#[tokio::test]
async fn a_factory_reset_erases_a_personalised_card_in_one_script() {
    let dir = TempDir::new("reset");
    let (mut client, scripts, card) = counted(&dir, false);
    personalise_and_lock(&mut client).await;
    let serial = client.select().await.unwrap().serial;
    *scripts.lock().unwrap() = 0;

    client.factory_reset().await.unwrap();
    assert_eq!(*scripts.lock().unwrap(), 1, "one round trip");
    assert_eq!(card.lock().unwrap().pin_tries_left(), 3);
    assert_factory(&mut client, &serial).await;

    // A fresh session on the same card file: the reset was saved.
    drop(client);
    let mut again = PivClient::new(Box::new(VirtualCardTransport::open(dir.card()).unwrap()));
    assert_factory(&mut again, &serial).await;
}

#[tokio::test]
async fn a_factory_reset_works_on_blocked_and_factory_cards() {
    // Already blocked PIN (the holder forgot it): VERIFY answers 6983 and the script goes on.
    let dir = TempDir::new("reset-blocked");
    let (mut client, _, card) = counted(&dir, false);
    personalise_and_lock(&mut client).await;
    for _ in 0..3 {
        let _ = client.verify_pin(&Pin::new("000000")).await;
    }
    assert_eq!(card.lock().unwrap().pin_tries_left(), 0);
    let serial = client.select().await.unwrap().serial;
    client.factory_reset().await.unwrap();
    assert_factory(&mut client, &serial).await;

    // A card still in its factory state resets too (nothing to lose).
    let dir = TempDir::new("reset-fresh");
    let (mut client, _, _) = counted(&dir, false);
    let serial = client.select().await.unwrap().serial;
    client.factory_reset().await.unwrap();
    assert_factory(&mut client, &serial).await;
}

#[tokio::test]
async fn a_factory_reset_takes_more_rounds_when_the_card_allows_more_tries() {
    let dir = TempDir::new("reset-tries");
    {
        let (mut client, _, _) = counted(&dir, false);
        personalise_and_lock(&mut client).await;
    }
    // Fifteen tries each, the most the virtual card allows: one round still blocks both.
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.card()).unwrap()).unwrap();
    for field in [
        "pin_tries_max",
        "pin_tries_left",
        "puk_tries_max",
        "puk_tries_left",
    ] {
        state[field] = 15.into();
    }
    std::fs::write(dir.card(), serde_json::to_vec(&state).unwrap()).unwrap();
    let (mut client, scripts, _) = counted(&dir, false);
    let serial = client.select().await.unwrap().serial;
    *scripts.lock().unwrap() = 0;
    client.factory_reset().await.unwrap();
    assert_eq!(*scripts.lock().unwrap(), 1);
    assert_factory(&mut client, &serial).await;

    // A card with more tries than one round blocks (a YubiKey allows up to 255) refuses the
    // RESET with 6985; the script is sent again.
    {
        let (mut client, _, _) = counted(&dir, false);
        personalise_and_lock(&mut client).await;
    }
    let scripts = Arc::new(Mutex::new(0));
    let mut client = PivClient::new(Box::new(ScriptCounter {
        inner: VirtualCardTransport::open(dir.card()).unwrap(),
        scripts: scripts.clone(),
        plain_piv: false,
        refuse_resets: 2,
    }));
    client.factory_reset().await.unwrap();
    assert_eq!(
        *scripts.lock().unwrap(),
        3,
        "two refused rounds, then the reset"
    );
    assert_factory(&mut client, &serial).await;
}

#[tokio::test]
async fn a_card_without_the_yubico_extensions_is_not_touched() {
    let dir = TempDir::new("reset-plain");
    let (mut client, _, card) = counted(&dir, true);
    personalise_and_lock(&mut client).await;
    let err = client.factory_reset().await.unwrap_err();
    assert!(
        matches!(&err, CardError::Status { operation, sw: 0x6D00 } if operation.contains("GET VERSION")),
        "{err:?}"
    );
    assert_eq!(
        card.lock().unwrap().pin_tries_left(),
        3,
        "the PIN is not blocked"
    );
    client.verify_pin(&Pin::new("24681357")).await.unwrap();
    client.authenticate(&aes_key()).await.unwrap();
}

#[tokio::test]
async fn a_pulled_reset_can_be_sent_again() {
    let dir = TempDir::new("reset-pulled");
    {
        let (mut client, _, _) = counted(&dir, false);
        personalise_and_lock(&mut client).await;
    }
    // Pulled after GET VERSION and two VERIFYs: the PIN has one try left, the PUK all three.
    let mut transport = VirtualCardTransport::open(dir.card()).unwrap();
    transport.fail_after(3);
    let mut client = PivClient::new(Box::new(transport));
    let err = client.factory_reset().await.unwrap_err();
    assert!(matches!(err, CardError::Unreachable(_)), "{err:?}");

    let mut client = PivClient::new(Box::new(VirtualCardTransport::open(dir.card()).unwrap()));
    let serial = client.select().await.unwrap().serial;
    client.factory_reset().await.unwrap();
    assert_factory(&mut client, &serial).await;
}

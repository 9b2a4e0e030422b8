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
        Self(dir)
    }
    fn card(&self) -> PathBuf {
        self.0.join("card.json")
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
    card.write_chuid([0x42; 16], "20301231").await.unwrap();
    card.write_ccc([0x17; 14]).await.unwrap();
    card.write_printed_information(&PrintedInformation {
        name: "Jane Doe".into(),
        employee_affiliation: "Staff".into(),
        expiration_date: "2030DEC31".into(),
        agency_card_serial: "000123".into(),
        issuer_identification: "Tessera".into(),
        organization_line_1: "Example".into(),
        organization_line_2: String::new(),
    })
    .await
    .unwrap();
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
            .put_data(objects::CHUID, &data_objects::chuid([1; 16], "20301231"))
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

//! The FIPS 201 data objects written by the client to the virtual card and read back: every
//! object of a policy, through a reader with extended length and through one that chains, the
//! biometric and printed objects refused before VERIFY and returned after, the Security Object's
//! hashes over what the card returns.

use super::*;
use crate::data_objects::card_objects::tests::portrait;
use crate::data_objects::fingerprints::tests::record;
use crate::data_objects::test_signer::RecordingSigner;
use crate::data_objects::{chuid, facial, security_object};
use crate::virtual_transport::{SharedCard, VirtualCardTransport};
use std::sync::Mutex;
use tessera_core::fips201::{FacialImage, FascN, Fingerprints, SignedContentType};

/// A reader without extended length: long commands are chained, long answers come with 61xx.
struct ShortReader(VirtualCardTransport);

#[async_trait]
impl CardTransport for ShortReader {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        self.0.transmit(command).await
    }
    fn atr(&self) -> Vec<u8> {
        self.0.atr()
    }
}

/// A blank card (firmware 5.4.3, whose factory management key is the 3DES default).
fn blank_card() -> SharedCard {
    Arc::new(Mutex::new(crate::VirtualCard::blank_with_firmware(
        12_345_678,
        [5, 4, 3],
        rand::rngs::OsRng,
    )))
}

fn everything() -> CardObjects {
    CardObjects {
        guid: [0x42; 16],
        expires: "20301231".into(),
        fasc_n: FascN::non_federal().encode().unwrap(),
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
        // The largest portrait the card's facial image container takes with this signer.
        facial_image: Some(FacialImage {
            jpeg: portrait(11_500),
        }),
        fingerprints: Some(Fingerprints {
            incits_378: record(80, 60),
            synthetic: true,
        }),
        security_object: true,
    }
}

async fn write_and_read_back(mut client: PivClient, deferred: bool) {
    client.select().await.unwrap();
    client
        .authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    let objects = everything();
    let signer = RecordingSigner::new();
    if deferred {
        client.defer_writes();
    }
    let written = client.write_data_objects(&objects, &signer).await.unwrap();
    if deferred {
        client.flush_writes().await.unwrap();
    }
    let summary: Vec<(&str, &str, bool)> = written
        .iter()
        .map(|w| (w.name.as_str(), w.tag.as_str(), w.signed))
        .collect();
    assert_eq!(
        summary,
        [
            ("chuid", "5FC102", true),
            ("ccc", "5FC107", false),
            ("printed_information", "5FC109", false),
            ("facial_image", "5FC108", true),
            ("fingerprints", "5FC103", true),
            ("security_object", "5FC106", true),
        ]
    );

    // Without the PIN: the CHUID, CCC and Security Object are read, the rest refused (6982).
    for tag in [
        objects::FACIAL_IMAGE,
        objects::FINGERPRINTS,
        objects::PRINTED_INFORMATION,
    ] {
        assert_eq!(
            client.get_data(tag).await,
            Err(CardError::Status {
                operation: "GET DATA".into(),
                sw: 0x6982
            }),
            "{tag:06X} before VERIFY"
        );
    }
    let chuid_value = client.get_data(objects::CHUID).await.unwrap().unwrap();
    let parsed = chuid::parse(&chuid_value).unwrap();
    assert_eq!(parsed.guid, Some(&[0x42u8; 16][..]));
    assert_eq!(
        parsed.signature,
        signer.signature_for(parsed.signed_content)
    );

    client.verify_pin(&Pin::factory_default()).await.unwrap();
    let mut read = Vec::new();
    for w in &written {
        let tag = u32::from_str_radix(&w.tag, 16).unwrap();
        let value = client.get_data(tag).await.unwrap().unwrap();
        assert_eq!(value.len(), w.length, "{}", w.name);
        read.push((tag, value));
    }
    assert_eq!(
        facial::jpeg_from_object(&read[3].1),
        Some(&objects.facial_image.as_ref().unwrap().jpeg[..])
    );

    // The Security Object maps DG 1..5 to the containers and hashes what the card returns.
    let so = &read[5].1;
    let mapping = security_object::parse_mapping(tlv::find(so, 0xBA).unwrap()).unwrap();
    let ids: Vec<u16> = mapping.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids, [0x3000, 0xDB00, 0x3001, 0x6030, 0x6010]);
    let hashes: Vec<(u8, [u8; 32])> = mapping
        .iter()
        .zip(&read)
        .map(|((dg, _), (_, value))| (*dg, security_object::hash(value)))
        .collect();
    let lds = signer
        .requests()
        .into_iter()
        .find(|r| r.content_type == SignedContentType::SecurityObject)
        .unwrap()
        .content;
    assert_eq!(lds, security_object::lds_security_object(&hashes));
    assert_eq!(tlv::find(so, 0xBB), Some(&signer.signature_for(&lds)[..]));
}

#[tokio::test]
async fn every_object_written_and_read_back_with_extended_length() {
    let transport = VirtualCardTransport::new(blank_card(), None);
    assert!(transport.extended_length());
    write_and_read_back(PivClient::new(Box::new(transport)), false).await;
}

#[tokio::test]
async fn every_object_written_and_read_back_through_a_chaining_reader_deferred() {
    let transport = ShortReader(VirtualCardTransport::new(blank_card(), None));
    write_and_read_back(PivClient::new(Box::new(transport)), true).await;
}

#[tokio::test]
async fn a_signer_that_fails_leaves_the_card_untouched() {
    let card = blank_card();
    let mut client = PivClient::new(Box::new(VirtualCardTransport::new(card, None)));
    client.select().await.unwrap();
    client
        .authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    let err = client
        .write_data_objects(&everything(), &RecordingSigner::failing())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CardError::DataObject { object, .. } if object == "CHUID"),
        "{err:?}"
    );
    assert_eq!(client.get_data(objects::CHUID).await, Ok(None));
    assert_eq!(client.get_data(objects::CCC).await, Ok(None));
}

#[tokio::test]
async fn a_portrait_too_large_for_its_container_is_refused_before_writing() {
    let mut client = PivClient::new(Box::new(VirtualCardTransport::new(blank_card(), None)));
    client.select().await.unwrap();
    client
        .authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    let objects = CardObjects {
        facial_image: Some(FacialImage {
            jpeg: portrait(12_700),
        }),
        ..everything()
    };
    let err = client
        .write_data_objects(&objects, &RecordingSigner::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CardError::DataObject { object, detail }
            if object == "facial image" && detail.contains("12710")),
        "{err:?}"
    );
    assert_eq!(client.get_data(objects::CHUID).await, Ok(None));
}

//! Real cards as they ship: a blank card of either YubiKey generation (3DES factory management
//! key before firmware 5.7, AES-192 from 5.7) is issued; under a policy that requires key
//! attestation every key is attested by the card up to a trusted root and the attestation is
//! recorded with its certificate; a tampered station that substitutes a key is refused before
//! anything is certified, and the card ends `Failed`.

mod support;

use tessera_core::model::{BuiltinRole, JobStep};
use tessera_core::ports::Store;
use tessera_core::DeviceState;
use tessera_server::demo;
use tessera_station::Faults;

const ATTESTED: &str = "piv-attested";

/// Puts a blank virtual card of `firmware` in the demo printer's hopper; returns its serial.
fn blank_card_in_hopper(
    t: &tessera_server::Tessera,
    dir: &std::path::Path,
    firmware: [u8; 3],
) -> u32 {
    let serial = 20_000_000 + u32::from(firmware[1]) * 1000 + u32::from(firmware[2]);
    let path = dir.join(format!("card-{serial}.json"));
    tessera_piv::VirtualCard::blank_with_firmware(serial, firmware, rand::rngs::OsRng)
        .save(&path)
        .unwrap();
    t.demo_printer.put_in_hopper(path);
    serial
}

#[tokio::test]
async fn blank_cards_of_both_generations_are_issued_with_attested_keys() {
    let (dir, t) = support::open().await;
    let actor = support::actor(BuiltinRole::Administrator);
    for firmware in [[5, 4, 3], [5, 7, 2]] {
        let serial = blank_card_in_hopper(&t, dir.path(), firmware);
        let job = support::issue(&t, &actor, ATTESTED, "24681357").await;
        assert_eq!(job.step, JobStep::Printed, "{firmware:?}: {:?}", job.error);
        let device = t.store.device(job.device.as_ref().unwrap()).await.unwrap();
        let version = format!("{}.{}.{}", firmware[0], firmware[1], firmware[2]);
        assert_eq!(device.serial, serial.to_string());
        assert_eq!(device.firmware.as_deref(), Some(version.as_str()));
        assert_eq!(device.model(), "YubiKey 5");
        let certificates = t.store.certificates_of_device(&device.id).await.unwrap();
        assert_eq!(certificates.len(), 4);
        for c in &certificates {
            let a = c.attestation.as_ref().expect("every key is attested");
            assert_eq!(a.serial, Some(serial), "slot {}", c.slot.code());
            assert_eq!(a.firmware.as_deref(), Some(version.as_str()));
            assert!(a.pin_policy.is_some() && a.touch_policy.is_some());
        }
        let events = t.store.audit_events(None, 500).await.unwrap();
        let of_job = |name: &str| {
            events
                .iter()
                .filter(|e| {
                    e.name == name && e.operation.as_deref() == Some(job.operation.as_str())
                })
                .count()
        };
        assert_eq!(of_job("KeyAttested"), 4);
        let authenticated = events
            .iter()
            .find(|e| {
                e.name == "CardAuthenticated"
                    && e.operation.as_deref() == Some(job.operation.as_str())
            })
            .unwrap();
        let expected = if firmware[1] >= 7 { "aes192" } else { "3des" };
        assert_eq!(authenticated.details["algorithm"], expected, "{firmware:?}");
    }
}

#[tokio::test]
async fn a_station_that_substitutes_a_key_is_refused_and_the_card_fails() {
    let (_dir, t) = support::open().await;
    let actor = support::actor(BuiltinRole::Administrator);
    t.demo_printer.set_faults(Faults {
        substitute_generated_keys: true,
        ..Faults::default()
    });
    let job = support::issue(&t, &actor, ATTESTED, "24681357").await;
    assert_eq!(job.step, JobStep::Failed);
    let error = job.error.clone().unwrap();
    assert_eq!(error.code, "CARD0002");
    assert!(
        error.message.contains("not the key the card returned"),
        "{}",
        error.message
    );
    let device = t.store.device(job.device.as_ref().unwrap()).await.unwrap();
    assert_eq!(device.state, DeviceState::Failed);
    assert!(
        t.store
            .certificates_of_device(&device.id)
            .await
            .unwrap()
            .is_empty(),
        "nothing was certified for the substituted key"
    );
    let events = t.store.audit_events(None, 500).await.unwrap();
    assert!(events.iter().any(|e| e.name == "KeyAttestationRefused"
        && e.operation.as_deref() == Some(job.operation.as_str())));

    // The same tampered station under a policy without attestation gets its own key certified
    // (the P-256 base point, whose private key is 1): what the policy switch is for.
    let job = support::issue(&t, &actor, demo::POLICY_ID, "24681357").await;
    assert_eq!(job.step, JobStep::Printed);
    let g_x =
        hex::decode("6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296").unwrap();
    let certificates = t
        .store
        .certificates_of_device(job.device.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(certificates.len(), 4);
    for c in certificates {
        assert!(
            c.der.windows(g_x.len()).any(|w| w == g_x.as_slice()),
            "slot {}: the station's key was not the one certified",
            c.slot.code()
        );
    }
}

#[tokio::test]
async fn a_card_without_the_policy_s_algorithm_is_refused_before_anything_is_written() {
    use tessera_core::ports::PivCard;
    let (dir, t) = support::open().await;
    let actor = support::actor(BuiltinRole::Administrator);
    blank_card_in_hopper(&t, dir.path(), [5, 4, 3]);
    let job = support::issue(&t, &actor, "piv-rsa3072", "24681357").await;
    assert_eq!(job.step, JobStep::Failed);
    let error = job.error.clone().unwrap();
    assert!(
        error.message.contains("firmware 5.4.3") && error.message.contains("RSA 3072"),
        "{}",
        error.message
    );
    assert!(job.device.is_none(), "the card got no record");
    // Untouched: the factory key still opens it, and it holds no key.
    let path = t.demo_printer.card_in_encoder().unwrap();
    let transport = tessera_piv::VirtualCardTransport::open(&path).unwrap();
    let mut card = tessera_piv::PivClient::new(Box::new(transport));
    card.select().await.unwrap();
    card.authenticate(&tessera_core::secret::ManagementKey::factory_default())
        .await
        .unwrap();
    assert_eq!(card.metadata(0x9A).await.unwrap(), None);
}

//! A card whose issuance failed is issued again: the operator puts the pulled card back into the
//! demo printer's hopper, and the next issuance resets it (audited as CardReset) and personalises
//! it, wherever the first one stopped and even when the reset itself is interrupted. A card that
//! another system personalised, or that is Active in Tessera, is refused and left untouched.

mod support;

use std::path::Path;
use tessera_core::ids::DeviceId;
use tessera_core::issuance;
use tessera_core::model::{
    BuiltinRole, CardOutcome, CertificateStatus, IssuanceJob, JobStep, Slot,
};
use tessera_core::ports::{AuditRecord, CardError, PivCard, Store};
use tessera_core::secret::{ManagementKey, ManagementKeyAlgorithm};
use tessera_core::{devices, DeviceState, Pin, Reason};
use tessera_piv::virtual_transport::VirtualCardTransport;
use tessera_piv::PivClient;
use tessera_server::{demo, Tessera};
use tessera_station::Faults;

fn pull_after(t: &Tessera, commands: Option<usize>) {
    t.demo_printer.set_faults(Faults {
        pull_card_after: commands,
        ..Faults::default()
    });
}

async fn issue(t: &Tessera, pin: &str) -> IssuanceJob {
    support::issue(
        t,
        &support::actor(BuiltinRole::Administrator),
        demo::POLICY_ID,
        pin,
    )
    .await
}

/// The factory management key of the demo printer's blank cards (YubiKey 5.7: AES-192).
fn factory_key() -> ManagementKey {
    ManagementKey::factory_default_for(ManagementKeyAlgorithm::Aes192)
}

fn open_card(path: &Path) -> PivClient {
    PivClient::new(Box::new(VirtualCardTransport::open(path).unwrap()))
}

async fn events_of(t: &Tessera, job: &IssuanceJob, name: &str) -> Vec<AuditRecord> {
    t.store
        .audit_events(None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.name == name && e.operation.as_deref() == Some(job.operation.as_str()))
        .collect()
}

/// The card in `path` holds what Tessera recorded for `device`: its certificates, `pin`, and a
/// management key other than the factory one.
async fn assert_card_holds(t: &Tessera, path: &Path, device: &DeviceId, pin: &str) {
    let certificates = t.store.certificates_of_device(device).await.unwrap();
    assert_eq!(certificates.len(), 4);
    let mut card = open_card(path);
    let identity = card.select().await.unwrap();
    assert_eq!(
        identity.serial,
        t.store.device(device).await.unwrap().serial
    );
    for slot in Slot::ALL {
        let on_card = card.read_certificate(slot).await.unwrap();
        let recorded = certificates.iter().find(|c| c.slot == slot).unwrap();
        assert_eq!(on_card.as_ref(), Some(&recorded.der), "{slot:?}");
    }
    card.verify_pin(&Pin::new(pin)).await.unwrap();
    assert_eq!(
        card.authenticate(&factory_key()).await,
        Err(CardError::ManagementKeyRejected)
    );
}

/// What [`pull_then_issue_again`] saw.
enum Pulled {
    /// The pull came after the last command: the first issuance succeeded.
    TooLate,
    /// Issued again without a reset: the first issuance never got to register the card.
    IssuedAgain,
    /// Issued again after a reset; whether the factory management key still opened the card.
    ResetAndIssuedAgain { factory_key: bool },
}

/// Issues a card that is pulled before command number `after` (with `answer_lost`, that command
/// still reaches the card), then puts it back, loses it once more during the reset, and puts it
/// back for good: the last issuance must succeed on the same card.
async fn pull_then_issue_again(t: &Tessera, after: usize, answer_lost: bool) -> Pulled {
    let at = format!("pulled after {after} commands, answer lost: {answer_lost}");
    t.demo_printer.set_faults(Faults {
        pull_card_after: Some(after),
        answer_lost,
        ..Faults::default()
    });
    let first = issue(t, "97531864").await;
    if first.step == JobStep::Printed {
        return Pulled::TooLate;
    }
    assert_eq!(first.step, JobStep::Failed, "{at}");
    let card = t.demo_printer.card_in_encoder().unwrap();
    let factory_key = {
        let mut client = open_card(&card);
        client.select().await.unwrap();
        client.authenticate(&factory_key()).await.is_ok()
    };

    if first.device.is_some() {
        // Put back and lost again, now during the reset: nothing is recorded for the card, and
        // the first record stays the one to reset.
        pull_after(t, Some(8));
        t.demo_printer.put_in_hopper(card.clone());
        let interrupted = issue(t, "24681357").await;
        assert_eq!(interrupted.step, JobStep::Failed, "{at}");
        let message = &interrupted.error.as_ref().unwrap().message;
        assert!(message.contains("removed"), "{at}: {message}");
        assert_eq!(interrupted.device, None, "{at}");
        assert!(events_of(t, &interrupted, "CardReset").await.is_empty());
        // The error tells that the card was being erased, not that it was untouched.
        assert_eq!(
            interrupted.error.as_ref().unwrap().card_outcome,
            Some(CardOutcome::ResetInterrupted),
            "{at}"
        );
    }

    // Put back once more, and this time left in the printer.
    pull_after(t, None);
    t.demo_printer.put_in_hopper(card.clone());
    let second = issue(t, "24681357").await;
    assert_eq!(second.step, JobStep::Printed, "{at}: {:?}", second.error);
    assert_eq!(t.demo_printer.card_in_encoder().as_ref(), Some(&card));
    let new_device = second.device.clone().unwrap();
    assert_card_holds(t, &card, &new_device, "24681357").await;
    let serial = t.store.device(&new_device).await.unwrap().serial;
    let records = t.store.devices_with_serial(&serial).await.unwrap();
    let states: Vec<_> = records.iter().map(|d| (d.id.clone(), d.state)).collect();
    let mut expected = vec![(new_device, DeviceState::Pending)];
    expected.extend(first.device.clone().map(|d| (d, DeviceState::Failed)));
    assert_eq!(states.len(), expected.len(), "{at}");
    assert!(
        expected.iter().all(|e| states.contains(e)),
        "{at}: {states:?}"
    );

    let resets = events_of(t, &second, "CardReset").await;
    let Some(old) = &first.device else {
        // Pulled before the card had a record: nothing was written, nothing to reset.
        assert!(resets.is_empty(), "{at}");
        return Pulled::IssuedAgain;
    };
    // The first record stays Failed with its certificates revoked; the reset names it.
    for c in t.store.certificates_of_device(old).await.unwrap() {
        assert_eq!(c.status, CertificateStatus::Revoked, "{at}");
    }
    assert_eq!(resets.len(), 1, "{at}");
    let reset = &resets[0];
    assert_eq!(reset.code, 3021);
    assert_eq!(reset.device.as_deref(), Some(old.as_str()));
    assert_eq!(reset.details["serial"], serial.as_str());
    assert_eq!(reset.details["previous_device"], old.as_str());
    assert_eq!(reset.details["previous_state"], "failed");
    Pulled::ResetAndIssuedAgain { factory_key }
}

#[tokio::test]
async fn a_card_pulled_anywhere_is_reset_and_issued_again() {
    let (_dir, t) = support::open().await;
    let (mut resets, mut key_changed) = (0, 0);
    for answer_lost in [false, true] {
        for after in 0.. {
            match pull_then_issue_again(&t, after, answer_lost).await {
                Pulled::TooLate => break,
                Pulled::IssuedAgain => {}
                Pulled::ResetAndIssuedAgain { factory_key } => {
                    resets += 1;
                    key_changed += usize::from(!factory_key);
                }
            }
        }
    }
    assert!(resets > 20, "the card was reset after {resets} pulls");
    // The last write replaced the management key, and only its answer was lost.
    assert_eq!(
        key_changed, 1,
        "a card with a management key Tessera no longer knows"
    );
}

#[tokio::test]
async fn a_card_personalised_by_another_system_is_refused_untouched() {
    let (dir, t) = support::open().await;
    let path = dir.path().join("foreign-card.json");
    let foreign_key = ManagementKey::new(ManagementKeyAlgorithm::Aes256, vec![0x5A; 32]).unwrap();
    let serial = {
        let mut card = open_card(&path);
        let serial = card.select().await.unwrap().serial;
        card.authenticate(&factory_key()).await.unwrap();
        card.change_pin(&Pin::factory_default(), &Pin::new("11223344"))
            .await
            .unwrap();
        card.set_management_key(&foreign_key).await.unwrap();
        serial
    };

    t.demo_printer.put_in_hopper(path.clone());
    let job = issue(&t, "24681357").await;
    assert_eq!(job.step, JobStep::Failed);
    let error = job.error.clone().unwrap();
    assert_eq!(
        error.message,
        "This card is personalised by another system; reset it with its own tools"
    );
    assert_eq!(error.code, "CARD0003");
    assert_eq!(error.card_outcome, Some(CardOutcome::Untouched));
    assert_eq!(job.device, None, "a refused card gets no record");
    assert!(t
        .store
        .devices_with_serial(&serial)
        .await
        .unwrap()
        .is_empty());
    for name in ["CertificateIssued", "KeyGenerated", "CardReset"] {
        assert!(events_of(&t, &job, name).await.is_empty(), "{name}");
    }
    assert_eq!(events_of(&t, &job, "IssuanceFailed").await.len(), 1);

    // Untouched: the other system's PIN (no try lost) and management key still open it.
    let mut card = open_card(&path);
    card.select().await.unwrap();
    assert_eq!(card.pin_retries().await.unwrap(), 3);
    card.verify_pin(&Pin::new("11223344")).await.unwrap();
    card.authenticate(&foreign_key).await.unwrap();
}

#[tokio::test]
async fn an_active_card_is_refused_until_it_is_terminated() {
    let (_dir, t) = support::open().await;
    let admin = support::actor(BuiltinRole::Administrator);
    pull_after(&t, None);
    let job = issue(&t, "97531864").await;
    assert_eq!(job.step, JobStep::Printed, "{:?}", job.error);
    issuance::finish(&t.services, &admin, &job.id)
        .await
        .unwrap();
    let device = job.device.clone().unwrap();
    let card = t.demo_printer.card_in_encoder().unwrap();
    let serial = t.store.device(&device).await.unwrap().serial;

    t.demo_printer.put_in_hopper(card.clone());
    let again = issue(&t, "24681357").await;
    assert_eq!(again.step, JobStep::Failed);
    let error = again.error.clone().unwrap();
    assert_eq!(error.code, "CARD0005");
    assert_eq!(error.card_outcome, Some(CardOutcome::Untouched));
    assert_eq!(
        error.message,
        format!(
            "This card already belongs to device {device} of Jane Doe (jdoe), which is Active; \
             it was left untouched. Feed a blank card; to reuse this one, terminate that device \
             on Jane Doe (jdoe)'s page first"
        )
    );
    assert_eq!(again.device, None);
    assert_eq!(t.store.devices_with_serial(&serial).await.unwrap().len(), 1);
    assert_eq!(
        t.store.device(&device).await.unwrap().state,
        DeviceState::Active
    );
    for c in t.store.certificates_of_device(&device).await.unwrap() {
        assert_eq!(c.status, CertificateStatus::Valid);
    }
    // The holder's card still works as issued.
    assert_card_holds(&t, &card, &device, "97531864").await;

    // Terminated (replaced by a new card), the same plastic is reset and issued again.
    devices::terminate(&t.services, &admin, &device, Reason::Damaged)
        .await
        .unwrap();
    t.demo_printer.put_in_hopper(card.clone());
    let reissued = issue(&t, "24681357").await;
    assert_eq!(reissued.step, JobStep::Printed, "{:?}", reissued.error);
    let resets = events_of(&t, &reissued, "CardReset").await;
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0].details["previous_device"], device.as_str());
    assert_eq!(resets[0].details["previous_state"], "terminated");
    assert_eq!(
        t.store.device(&device).await.unwrap().state,
        DeviceState::Terminated
    );
    assert_card_holds(&t, &card, reissued.device.as_ref().unwrap(), "24681357").await;
}

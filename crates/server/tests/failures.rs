//! Bad things during issuance end in a known state: a card pulled at several points of the
//! personalisation ends `Failed` with no live certificate; a printer that is offline leaves the
//! card personalised and `Pending`, and Retry print then succeeds.

mod support;

use tessera_core::issuance;
use tessera_core::model::{BuiltinRole, CardOutcome, CertificateStatus, JobStep};
use tessera_core::ports::Store;
use tessera_core::DeviceState;
use tessera_server::demo;
use tessera_station::Faults;

#[tokio::test]
async fn a_pulled_card_fails_cleanly_wherever_it_is_pulled() {
    let (_dir, t) = support::open().await;
    // Pulled before every command of the personalisation in turn, until one pull comes too late
    // to matter (the card was complete).
    let mut after = 0;
    let mut revoked_seen = 0;
    loop {
        t.demo_printer.set_faults(Faults {
            pull_card_after: Some(after),
            ..Faults::default()
        });
        let job = support::issue(
            &t,
            &support::actor(BuiltinRole::Administrator),
            demo::POLICY_ID,
            "97531864",
        )
        .await;
        after += 1;
        if job.step == JobStep::Printed {
            assert!(
                after > 10,
                "a personalisation takes more than {after} commands"
            );
            assert_eq!(revoked_seen, 4, "a pull after every certificate was issued");
            break;
        }
        assert_eq!(job.step, JobStep::Failed, "pulled after {after} commands");
        let error = job.error.clone().unwrap();
        assert_eq!(error.code, "CARD0001");
        assert!(error.message.contains("removed"), "{}", error.message);
        let Some(device) = job.device.clone() else {
            // Pulled before the card got a record (a blank card: no reset): nothing was written.
            assert_eq!(
                error.card_outcome,
                Some(CardOutcome::Untouched),
                "pulled after {after}"
            );
            continue;
        };
        let device = t.store.device(&device).await.unwrap();
        assert_eq!(device.state, DeviceState::Failed, "pulled after {after}");
        let certificates = t.store.certificates_of_device(&device.id).await.unwrap();
        for c in &certificates {
            assert_eq!(
                c.status,
                CertificateStatus::Revoked,
                "no live certificate on a failed card"
            );
        }
        // The error says so, with the number of certificates this attempt had issued.
        let revoked = certificates.len() as u32;
        assert_eq!(
            error.card_outcome,
            Some(CardOutcome::Failed { revoked }),
            "pulled after {after}"
        );
        let sentence = error.card_outcome.unwrap().sentence();
        assert!(sentence.contains("marked Failed"), "{sentence}");
        if revoked > 0 {
            assert!(
                sentence.contains(&format!("the {revoked} certificate"))
                    && sentence.contains("revoked"),
                "{sentence}"
            );
            revoked_seen = revoked_seen.max(revoked);
        } else {
            assert!(
                sentence.contains("no certificate had been issued"),
                "{sentence}"
            );
        }
        let events = t.store.audit_events(None, 500).await.unwrap();
        assert!(events.iter().any(|e| e.name == "IssuanceFailed"
            && e.operation.as_deref() == Some(job.operation.as_str())));
    }
}

#[tokio::test]
async fn an_offline_printer_loses_nothing_and_retry_print_succeeds() {
    let (_dir, t) = support::open().await;
    t.demo_printer.set_faults(Faults {
        printer_offline: true,
        ..Faults::default()
    });
    let job = support::issue(
        &t,
        &support::actor(BuiltinRole::Administrator),
        demo::POLICY_ID,
        "97531864",
    )
    .await;
    assert_eq!(job.step, JobStep::PrintFailed);
    assert!(job.error.as_ref().unwrap().message.contains("offline"));
    assert_eq!(job.error.as_ref().unwrap().code, "PRN0001");
    assert_eq!(
        job.card_outcome(),
        Some(CardOutcome::Personalised),
        "a print failure loses nothing"
    );
    let device = job.device.clone().unwrap();
    assert_eq!(
        t.store.device(&device).await.unwrap().state,
        DeviceState::Pending
    );
    let certs = t.store.certificates_of_device(&device).await.unwrap();
    assert_eq!(certs.len(), 4);
    assert!(certs.iter().all(|c| c.status == CertificateStatus::OnHold));
    let prints = t.store.prints_of_device(&device).await.unwrap();
    assert_eq!(prints.len(), 1);
    assert_eq!(prints[0].state, "failed");

    t.demo_printer.set_faults(Faults::default());
    let (_, running) = issuance::retry_print(
        &t.runner,
        &support::actor(BuiltinRole::Administrator),
        &job.id,
        None,
    )
    .await
    .unwrap();
    let job = running.await.unwrap();
    assert_eq!(job.step, JobStep::Printed);
    assert_eq!(
        t.store.prints_of_device(&device).await.unwrap().len(),
        2,
        "every print job is recorded"
    );
    let job = issuance::finish(
        &t.services,
        &support::actor(BuiltinRole::Administrator),
        &job.id,
    )
    .await
    .unwrap();
    assert_eq!(job.step, JobStep::Completed);
    assert_eq!(
        t.store.device(&device).await.unwrap().state,
        DeviceState::Active
    );

    // A worn face: an Active card is printed again only with a reason, which the audit keeps.
    let officer = support::actor(BuiltinRole::Administrator);
    let station = tessera_core::ids::StationId::new(demo::STATION_ID);
    let err = issuance::reprint(&t.services, &officer, &device, &station, demo::PRINTER, " ")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("say why"), "{err}");
    let record = issuance::reprint(
        &t.services,
        &officer,
        &device,
        &station,
        demo::PRINTER,
        "worn face",
    )
    .await
    .unwrap();
    assert_eq!(record.state, "completed");
    assert_eq!(t.store.prints_of_device(&device).await.unwrap().len(), 3);
    let events = t.store.audit_events(None, 500).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.name == "CardPrinted" && e.details["reprint_reason"] == "worn face"));
}

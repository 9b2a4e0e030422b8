//! An issuance that ends in error says what happened to the card, from what the job recorded, and
//! carries the code of its cause. The reproduction of issue 15: a card that already belongs to
//! a Pending device is fed again; the page must say that it was left untouched and whose it is,
//! and must not claim that it was marked Failed, revoked or that it needs a reset.

mod support;

use std::time::Duration;
use tessera_core::ids::JobId;
use tessera_core::model::{CardOutcome, CertificateStatus, JobStep};
use tessera_core::ports::Store;
use tessera_core::{DeviceState, Pin};
use tessera_server::{Options, Tessera};

use support::portal::{csrf, Portal, PIN};

/// Chooses the policy and PIN, then waits for the job to end its work (at `Printed` or
/// `Failed`); returns its step as the API says it.
async fn choose_policy_and_wait(portal: &Portal, job: &str) -> String {
    let (_, _, page) = portal.get(&format!("/issue/{job}")).await;
    let (status, _, page) = portal
        .post(
            &format!("/issue/{job}/policy"),
            &[
                ("csrf", &csrf(&page)),
                ("policy", "piv-standard"),
                ("pin", PIN),
                ("pin_confirm", PIN),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    for _ in 0..1000 {
        let (_, _, body) = portal.get(&format!("/api/v1/jobs/{job}")).await;
        let j: serde_json::Value = serde_json::from_str(&body).unwrap();
        match j["step"].as_str().unwrap() {
            "issuing" | "printing" => tokio::time::sleep(Duration::from_millis(20)).await,
            other => return other.to_owned(),
        }
    }
    panic!("the issuance did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_of_a_pending_device_is_refused_untouched_and_the_page_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (t, password) = Tessera::open(&Options::new(dir.path().join("data")))
        .await
        .unwrap();
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(password.unwrap().expose()).await;

    // Issued, then Cancel on Print Device: the card is Pending, not activated.
    let first = portal.issue("jdoe", false).await;
    let (_, _, page) = portal.get(&format!("/issue/{first}")).await;
    let (status, _, _) = portal
        .post(&format!("/issue/{first}/cancel"), &[("csrf", &csrf(&page))])
        .await;
    assert_eq!(status, 200);
    let device = t
        .store
        .job(&JobId::new(first.as_str()))
        .await
        .unwrap()
        .device
        .unwrap();
    assert_eq!(
        t.store.device(&device).await.unwrap().state,
        DeviceState::Pending
    );
    let certificates = t.store.certificates_of_device(&device).await.unwrap();
    assert_eq!(certificates.len(), 4);

    // The same card is fed again for a new issuance.
    let card = t.demo_printer.card_in_encoder().unwrap();
    t.demo_printer.put_in_hopper(card.clone());
    let again = portal.start_wizard("jdoe", false).await;
    assert_eq!(choose_policy_and_wait(&portal, &again).await, "failed");

    let job = t.store.job(&JobId::new(again.as_str())).await.unwrap();
    assert_eq!(job.step, JobStep::Failed);
    assert_eq!(job.device, None, "a refused card gets no record");
    let error = job.error.clone().unwrap();
    assert_eq!(error.code, "CARD0005");
    assert_eq!(error.card_outcome, Some(CardOutcome::Untouched));
    assert!(
        error
            .message
            .contains(&format!("device {device} of Jane Doe (jdoe)"))
            && error.message.contains("Pending")
            && error.message.contains("left untouched")
            && error.message.contains("activate that device"),
        "{}",
        error.message
    );

    // The page: what happened to the card, and nothing that did not happen.
    let (_, _, page) = portal.get(&format!("/issue/{again}")).await;
    assert!(page.contains("CARD0005"), "{page}");
    assert!(page.contains("left untouched"), "{page}");
    assert!(page.contains("Nothing was written to the card"), "{page}");
    for untrue in [
        "marked <strong>Failed",
        "marked Failed",
        "revoked",
        "Reset the card",
    ] {
        assert!(!page.contains(untrue), "the page says {untrue:?}: {page}");
    }

    // And it is true: the earlier device, its certificates and the card itself are unchanged.
    assert_eq!(
        t.store.device(&device).await.unwrap().state,
        DeviceState::Pending
    );
    let after = t.store.certificates_of_device(&device).await.unwrap();
    assert_eq!(after, certificates);
    assert!(after.iter().all(|c| c.status == CertificateStatus::OnHold));
    let serial = t.store.device(&device).await.unwrap().serial;
    assert_eq!(t.store.devices_with_serial(&serial).await.unwrap().len(), 1);
    let transport = tessera_piv::VirtualCardTransport::open(&card).unwrap();
    let mut on_card = (tessera_piv::factory())(Box::new(transport));
    on_card.select().await.unwrap();
    assert_eq!(on_card.pin_retries().await.unwrap(), 3, "no PIN try spent");
    on_card.verify_pin(&Pin::new(PIN)).await.unwrap();
    let audit = t.store.audit_events(None, 1000).await.unwrap();
    let failed = audit
        .iter()
        .find(|e| {
            e.name == "IssuanceFailed" && e.operation.as_deref() == Some(job.operation.as_str())
        })
        .unwrap();
    assert_eq!(failed.details["code"], "CARD0005");
    assert_eq!(failed.details["card"], "untouched");
    assert!(!audit
        .iter()
        .any(|e| e.name == "CardReset" && e.operation.as_deref() == Some(job.operation.as_str())));
}

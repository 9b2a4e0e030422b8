//! The help desk end to end on the demo printer's virtual cards: a blocked PIN unlocked with the
//! escrowed PUK; a forgotten card replaced by a temporary one and then restored; lost and damaged
//! cards replaced for good; a returned card recycled and issued again. Certificate statuses are
//! checked as relying parties see them, in the CRL (`openssl crl`) and by OCSP (`openssl ocsp`)
//! against the server's HTTP endpoints. Operators out of scope are told "not found", operators
//! without the permission "forbidden".

mod support;

use std::path::{Path, PathBuf};
use support::pki::{crl_text as crl, openssl};
use support::portal::{csrf, Portal};
use tessera_core::devices;
use tessera_core::help_desk::{self, Replacement};
use tessera_core::ids::*;
use tessera_core::issuance::{self, Actor, StartRequest};
use tessera_core::model::{BuiltinRole, CertificateStatus, JobStep, Scope, StockState};
use tessera_core::operators::{self, OperatorForm};
use tessera_core::ports::CardError;
use tessera_core::ports::{PivCard, Store};
use tessera_core::secret::{ManagementKey, ManagementKeyAlgorithm};
use tessera_core::stock::{self, StockDefaults};
use tessera_core::Password;
use tessera_core::{CoreError, DeviceState, Pin, Reason};
use tessera_piv::virtual_transport::VirtualCardTransport;
use tessera_piv::PivClient;
use tessera_server::{demo, router, Options, Tessera};

const PIN: &str = "31415926";
const NEW_PIN: &str = "27182818";
const ENCODER: (&str, &str) = (demo::STATION_ID, demo::ENCODER);

fn at_encoder() -> (StationId, &'static str) {
    (StationId::new(ENCODER.0), ENCODER.1)
}

fn open_card(path: &Path) -> PivClient {
    PivClient::new(Box::new(VirtualCardTransport::open(path).unwrap()))
}

/// A Tessera serving HTTP, whose public URL (in the certificates' CRL and OCSP pointers) is
/// known before its CA opens.
async fn serve() -> (tempfile::TempDir, Tessera, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let mut options = Options {
        trust_virtual_card_attestation: true,
        ..Options::new(tmp.path().join("data"))
    };
    options.public_url = Some(base.clone());
    let (t, _) = Tessera::open(&options).await.unwrap();
    let app = router(t.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    std::fs::write(tmp.path().join("chain.pem"), t.ca.chain_pem()).unwrap();
    std::fs::write(tmp.path().join("issuing.pem"), t.ca.issuing_pem()).unwrap();
    (tmp, t, base)
}

/// The CRL entry of certificate `serial` (its lines up to the next entry), or None.
fn crl_entry(text: &str, serial: &str) -> Option<String> {
    let serial = serial.to_uppercase();
    let start = text.find(&format!("Serial Number: {serial}"))?;
    let rest = &text[start..];
    let end = rest[1..]
        .find("Serial Number:")
        .map_or(rest.len(), |e| e + 1);
    Some(rest[..end].to_owned())
}

/// `openssl ocsp` for the certificate `der` against the server's responder.
fn ocsp(base: &str, dir: &Path, der: &[u8]) -> String {
    std::fs::write(dir.join("leaf.pem"), tessera_server::headless::pem(der)).unwrap();
    let text = openssl(
        dir,
        &[
            "ocsp",
            "-url",
            &format!("{base}/pki/ocsp"),
            "-issuer",
            "issuing.pem",
            "-cert",
            "leaf.pem",
            "-CAfile",
            "chain.pem",
        ],
    );
    assert!(text.contains("Response verify OK"), "{text}");
    text
}

/// Issues a card to jdoe under `policy` (optionally as a temporary card for `temporary_for`) and
/// activates it; returns the device and the state file of the card.
async fn issue_active(
    t: &Tessera,
    actor: &Actor,
    policy: &str,
    temporary_for: Option<&DeviceId>,
) -> (DeviceId, PathBuf) {
    let svc = &t.services;
    let job = issuance::start(
        svc,
        actor,
        StartRequest {
            user: UserId::new("jdoe"),
            station: StationId::new(demo::STATION_ID),
            printer: demo::PRINTER.into(),
            reader: demo::ENCODER.into(),
            layout: LayoutId::new("corporate-badge"),
            temporary_for: temporary_for.cloned(),
        },
    )
    .await
    .unwrap();
    let (_, running) = issuance::choose_policy(
        &t.runner,
        actor,
        &job.id,
        &PolicyId::new(policy),
        Some(Pin::new(PIN)),
    )
    .await
    .unwrap();
    let job = running.await.unwrap();
    assert_eq!(job.step, JobStep::Printed, "{:?}", job.error);
    issuance::finish(svc, actor, &job.id).await.unwrap();
    (
        job.device.unwrap(),
        t.demo_printer.card_in_encoder().unwrap(),
    )
}

async fn statuses(t: &Tessera, d: &DeviceId) -> Vec<(CertificateStatus, Option<String>)> {
    t.store
        .certificates_of_device(d)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.status, c.revocation_reason))
        .collect()
}

async fn event(t: &Tessera, name: &str, device: &DeviceId) -> serde_json::Value {
    t.store
        .audit_events(None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .find(|e| e.name == name && e.device.as_deref() == Some(device.as_str()))
        .unwrap_or_else(|| panic!("no {name} event for {device}"))
        .details
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_pin_is_unlocked_with_the_escrowed_puk() {
    let (_tmp, t, _) = serve().await;
    let svc = &t.services;
    let desk = support::actor(BuiltinRole::HelpDesk);
    let (device, card) = issue_active(&t, &desk, demo::POLICY_ID, None).await;

    // The holder blocks the PIN: three wrong VERIFYs.
    let mut client = open_card(&card);
    client.select().await.unwrap();
    for left in [2, 1, 0] {
        let wrong = client.verify_pin(&Pin::new("99999999")).await;
        assert!(
            matches!(wrong, Err(CardError::WrongPin { retries_left }) if retries_left == left)
                || (left == 0 && matches!(wrong, Err(CardError::PinBlocked))),
            "{wrong:?}"
        );
    }
    assert_eq!(client.pin_retries().await.unwrap(), 0);
    assert!(client.verify_pin(&Pin::new(PIN)).await.is_err(), "blocked");
    drop(client);

    // A reason is required, and the new PIN must follow the policy (6 to 8 digits): nothing is
    // sent to the card otherwise.
    let refused = devices::unlock(
        svc,
        &desk,
        &device,
        (&at_encoder().0, at_encoder().1),
        (&Pin::new(NEW_PIN), None),
        "  ",
    )
    .await;
    assert!(matches!(refused, Err(CoreError::Invalid(_))), "{refused:?}");
    let refused = devices::unlock(
        svc,
        &desk,
        &device,
        (&at_encoder().0, at_encoder().1),
        (&Pin::new("12345"), None),
        "ticket 42",
    )
    .await;
    assert!(
        matches!(
            &refused,
            Err(e @ CoreError::PinRefused(_)) if e.code().as_str() == "PIN0001"
        ),
        "{refused:?}"
    );
    // A weak PIN is refused at an unlock as at issuance.
    let refused = devices::unlock(
        svc,
        &desk,
        &device,
        (&at_encoder().0, at_encoder().1),
        (&Pin::new("111111"), None),
        "ticket 42",
    )
    .await;
    assert!(
        matches!(&refused, Err(e) if e.code().as_str() == "PIN0004"),
        "{refused:?}"
    );

    let unlocked = devices::unlock(
        svc,
        &desk,
        &device,
        (&at_encoder().0, at_encoder().1),
        (&Pin::new(NEW_PIN), None),
        "ticket 42: blocked after three tries",
    )
    .await
    .unwrap();
    assert_eq!(unlocked.tries_left, 3);

    let mut client = open_card(&card);
    client.select().await.unwrap();
    assert_eq!(
        client.pin_retries().await.unwrap(),
        3,
        "the counter is back"
    );
    assert!(client.verify_pin(&Pin::new(PIN)).await.is_err(), "old PIN");
    client.verify_pin(&Pin::new(NEW_PIN)).await.unwrap();
    assert_eq!(client.pin_retries().await.unwrap(), 3);
    drop(client);

    // The PUK stays escrowed (a second unlock works); the audit says who and why.
    assert!(svc
        .store
        .device_secret(&device, "puk")
        .await
        .unwrap()
        .is_some());
    let details = event(&t, "DeviceUnlocked", &device).await;
    assert_eq!(details["reason"], "ticket 42: blocked after three tries");
    assert_eq!(details["tries_left"], 3);
    let text = details.to_string();
    assert!(!text.contains(NEW_PIN), "no PIN in the audit log: {text}");
    // The card stays Active with valid certificates.
    assert_eq!(
        svc.store.device(&device).await.unwrap().state,
        DeviceState::Active
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_card_is_replaced_by_a_temporary_one_then_restored() {
    let (tmp, t, base) = serve().await;
    let dir = tmp.path();
    let svc = &t.services;
    let desk = support::actor(BuiltinRole::HelpDesk);
    let (original, original_card) = issue_active(&t, &desk, demo::POLICY_ID, None).await;
    let original_certs = svc.store.certificates_of_device(&original).await.unwrap();

    // A temporary card stands in only for a forgotten card.
    let early = issuance::start(
        svc,
        &desk,
        StartRequest {
            user: UserId::new("jdoe"),
            station: StationId::new(demo::STATION_ID),
            printer: demo::PRINTER.into(),
            reader: demo::ENCODER.into(),
            layout: LayoutId::new("corporate-badge"),
            temporary_for: Some(original.clone()),
        },
    )
    .await;
    assert!(
        matches!(early, Err(CoreError::TemporaryNotAllowed(_))),
        "{early:?}"
    );
    assert_eq!(early.unwrap_err().code().as_str(), "ISS0001");

    let (suspended, kind) = help_desk::replace(
        svc,
        &desk,
        &original,
        Reason::Forgotten,
        "left at home, ticket 7",
    )
    .await
    .unwrap();
    assert_eq!(kind, Replacement::Temporary);
    assert_eq!(
        (suspended.state, suspended.reason),
        (DeviceState::Suspended, Reason::Forgotten)
    );
    assert!(statuses(&t, &original)
        .await
        .iter()
        .all(|(s, _)| *s == CertificateStatus::OnHold));
    let text = crl(&base, dir).await;
    for c in &original_certs {
        let entry = crl_entry(&text, &c.serial).expect("held certificate in the CRL");
        assert!(entry.contains("Certificate Hold"), "{entry}");
    }
    let details = event(&t, "DeviceReplaced", &original).await;
    assert_eq!(details["reason"], "forgotten");
    assert_eq!(details["replacement"], "temporary");
    assert_eq!(details["comment"], "left at home, ticket 7");

    // A temporary card under a three-year policy is refused at the policy step (the card goes
    // back to the hopper with the job cancelled).
    let job = issuance::start(
        svc,
        &desk,
        StartRequest {
            user: UserId::new("jdoe"),
            station: StationId::new(demo::STATION_ID),
            printer: demo::PRINTER.into(),
            reader: demo::ENCODER.into(),
            layout: LayoutId::new("corporate-badge"),
            temporary_for: Some(original.clone()),
        },
    )
    .await
    .unwrap();
    let err = issuance::choose_policy(
        &t.runner,
        &desk,
        &job.id,
        &PolicyId::new(demo::POLICY_ID),
        Some(Pin::new(PIN)),
    )
    .await
    .expect_err("a long-lived policy is refused for a temporary card");
    assert!(err.to_string().contains("short-lived policy"), "{err}");
    assert_eq!(err.code().as_str(), "ISS0002");
    // Cancel ejects the blank card; the operator puts it back into the hopper.
    let card = t.demo_printer.card_in_encoder().unwrap();
    issuance::cancel(svc, &desk, &job.id, "").await.unwrap();
    assert!(t.demo_printer.card_in_encoder().is_none());
    t.demo_printer.put_in_hopper(card);

    // The temporary card, under the one-day policy.
    let (temporary, _) = issue_active(&t, &desk, demo::TEMPORARY_POLICY_ID, Some(&original)).await;
    let temp = svc.store.device(&temporary).await.unwrap();
    assert_eq!(temp.temporary_for.as_ref(), Some(&original));
    assert_eq!(temp.state, DeviceState::Active);
    let temp_certs = svc.store.certificates_of_device(&temporary).await.unwrap();
    assert_eq!(temp_certs.len(), 4);
    for c in &temp_certs {
        let days = (c.not_after.0 - c.not_before.0) as f64 / 86_400_000.0;
        assert!(days <= 1.01, "{} is valid for {days} days", c.serial);
        let text = ocsp(&base, dir, &c.der);
        assert!(text.contains("leaf.pem: good"), "{text}");
    }

    // The original is found: one action ends the temporary card and resumes the original.
    let (restored, ended) = help_desk::restore_original(svc, &desk, &original, "found in the car")
        .await
        .unwrap();
    assert_eq!(restored.state, DeviceState::Active);
    assert_eq!(
        ended.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        vec![temporary.clone()]
    );
    assert_eq!(
        svc.store.device(&temporary).await.unwrap().state,
        DeviceState::Terminated
    );
    assert!(statuses(&t, &original)
        .await
        .iter()
        .all(|(s, _)| *s == CertificateStatus::Valid));
    assert!(statuses(&t, &temporary).await.iter().all(|(s, r)| {
        *s == CertificateStatus::Revoked && r.as_deref() == Some("cessationOfOperation")
    }));

    // Relying parties: the original's certificates are off the CRL and good by OCSP; the
    // temporary card's are revoked, cessationOfOperation.
    let text = crl(&base, dir).await;
    for c in &original_certs {
        assert_eq!(crl_entry(&text, &c.serial), None, "{text}");
        let answer = ocsp(&base, dir, &c.der);
        assert!(answer.contains("leaf.pem: good"), "{answer}");
    }
    for c in &temp_certs {
        let entry = crl_entry(&text, &c.serial).expect("revoked certificate in the CRL");
        assert!(entry.contains("Cessation Of Operation"), "{entry}");
        let answer = ocsp(&base, dir, &c.der);
        assert!(
            answer.contains("leaf.pem: revoked") && answer.contains("cessationOfOperation"),
            "{answer}"
        );
    }
    let details = event(&t, "DeviceRestored", &original).await;
    assert_eq!(details["comment"], "found in the car");
    assert_eq!(details["temporary_cards"][0]["device"], temporary.as_str());

    // The original card still works with its PIN.
    let mut client = open_card(&original_card);
    client.select().await.unwrap();
    client.verify_pin(&Pin::new(PIN)).await.unwrap();

    // Restoring again is refused: the original is Active.
    assert!(help_desk::restore_original(svc, &desk, &original, "again")
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_and_damaged_cards_are_replaced_for_good() {
    let (tmp, t, base) = serve().await;
    let dir = tmp.path();
    let svc = &t.services;
    let desk = support::actor(BuiltinRole::HelpDesk);

    for (reason, crl_text, ocsp_text) in [
        (Reason::Lost, "Key Compromise", "keyCompromise"),
        (Reason::Damaged, "Superseded", "superseded"),
    ] {
        let (old, _) = issue_active(&t, &desk, demo::POLICY_ID, None).await;
        let certs = svc.store.certificates_of_device(&old).await.unwrap();
        // Replacing for a reason that is no replacement is refused.
        assert!(help_desk::replace(svc, &desk, &old, Reason::Expired, "x")
            .await
            .is_err());
        let (ended, kind) = help_desk::replace(svc, &desk, &old, reason, "ticket 9")
            .await
            .unwrap();
        assert_eq!(kind, Replacement::Permanent);
        assert_eq!(
            (ended.state, ended.reason),
            (DeviceState::Terminated, reason)
        );
        let text = crl(&base, dir).await;
        for c in &certs {
            let entry = crl_entry(&text, &c.serial).expect("revoked certificate in the CRL");
            assert!(entry.contains(crl_text), "{reason:?}: {entry}");
        }
        let answer = ocsp(&base, dir, &certs[0].der);
        assert!(
            answer.contains("leaf.pem: revoked") && answer.contains(ocsp_text),
            "{answer}"
        );
        let details = event(&t, "DeviceReplaced", &old).await;
        assert_eq!(details["reason"], reason.as_str());
        assert_eq!(details["replacement"], "permanent");
        assert_eq!(details["comment"], "ticket 9");
        // The new card goes through the ordinary wizard.
        let (new, _) = issue_active(&t, &desk, demo::POLICY_ID, None).await;
        assert_eq!(
            svc.store.device(&new).await.unwrap().state,
            DeviceState::Active
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_card_is_erased_recycled_and_issued_again() {
    let (tmp, t, base) = serve().await;
    let dir = tmp.path();
    let svc = &t.services;
    let admin = support::actor(BuiltinRole::Administrator);
    let desk = support::actor(BuiltinRole::HelpDesk);

    // A stock card: fed once to learn its serial, imported, put back for the issuance.
    let card = t.demo_printer.feed().unwrap();
    let serial = open_card(&card).select().await.unwrap().serial;
    let csv = format!("serial,batch\n{serial},B-7\n");
    let defaults = StockDefaults {
        model: Some("Virtual PIV".into()),
        ..Default::default()
    };
    let report = stock::import_stock(svc, &admin, &csv, &defaults)
        .await
        .unwrap();
    assert_eq!(report.imported, 1, "{:?}", report.errors);
    t.demo_printer.put_in_hopper(card.clone());
    let (device, issued_card) = issue_active(&t, &desk, demo::POLICY_ID, None).await;
    assert_eq!(issued_card, card);
    let certs = svc.store.certificates_of_device(&device).await.unwrap();
    assert_eq!(
        svc.store.stock_card(&serial).await.unwrap().unwrap().state,
        StockState::Issued
    );

    // The holder hands it back; the help desk recycles it at the encoder.
    let recycled = help_desk::recycle(
        svc,
        &desk,
        &device,
        (&at_encoder().0, at_encoder().1),
        "left the company",
    )
    .await
    .unwrap();
    assert_eq!(recycled.device.state, DeviceState::Recycled);
    assert_eq!(recycled.stock, Some(StockState::InStock));
    assert_eq!(
        svc.store.device(&device).await.unwrap().state,
        DeviceState::Recycled
    );
    assert_eq!(
        svc.store.stock_card(&serial).await.unwrap().unwrap().state,
        StockState::InStock
    );
    assert!(statuses(&t, &device).await.iter().all(|(s, r)| {
        *s == CertificateStatus::Revoked && r.as_deref() == Some("cessationOfOperation")
    }));
    assert!(svc
        .store
        .device_secret(&device, "puk")
        .await
        .unwrap()
        .is_none());
    let text = crl(&base, dir).await;
    for c in &certs {
        assert!(crl_entry(&text, &c.serial).is_some(), "{text}");
    }
    let answer = ocsp(&base, dir, &certs[0].der);
    assert!(answer.contains("leaf.pem: revoked"), "{answer}");
    let details = event(&t, "DeviceRecycled", &device).await;
    assert_eq!(details["comment"], "left the company");
    assert_eq!(details["stock"], "in_stock");

    // The card is blank: factory PIN, factory management key, no certificate.
    let mut client = open_card(&card);
    client.select().await.unwrap();
    client.verify_pin(&Pin::factory_default()).await.unwrap();
    client
        .authenticate(&ManagementKey::factory_default_for(
            ManagementKeyAlgorithm::Aes192,
        ))
        .await
        .unwrap();
    for slot in tessera_core::model::Slot::ALL {
        assert_eq!(client.read_certificate(slot).await.unwrap(), None);
    }
    drop(client);

    // Recycling twice is refused; the same card issues again under a new record.
    assert!(help_desk::recycle(
        svc,
        &desk,
        &device,
        (&at_encoder().0, at_encoder().1),
        "again"
    )
    .await
    .is_err());
    t.demo_printer.put_in_hopper(card.clone());
    let (again, _) = issue_active(&t, &desk, demo::POLICY_ID, None).await;
    assert_ne!(again, device);
    assert_eq!(svc.store.device(&again).await.unwrap().serial, serial);
    assert_eq!(
        svc.store.stock_card(&serial).await.unwrap().unwrap().state,
        StockState::Issued
    );
    // A record that was terminated (not recycled) before its card was issued again no longer
    // speaks for the card: recycling through it would erase the new holder's live card, and is
    // refused before the card is touched.
    let officer = support::actor(BuiltinRole::SecurityOfficer);
    devices::terminate(svc, &officer, &again, Reason::Damaged)
        .await
        .unwrap();
    t.demo_printer.put_in_hopper(card.clone());
    let (third, _) = issue_active(&t, &desk, demo::POLICY_ID, None).await;
    t.demo_printer.put_in_hopper(card.clone());
    let err = help_desk::recycle(
        svc,
        &desk,
        &again,
        (&at_encoder().0, at_encoder().1),
        "stale record",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("issued again"), "{err}");
    assert_eq!(
        svc.store.device(&third).await.unwrap().state,
        DeviceState::Active
    );
    let mut client = open_card(&card);
    client.select().await.unwrap();
    assert!(
        client
            .read_certificate(tessera_core::model::Slot::PivAuthentication)
            .await
            .unwrap()
            .is_some(),
        "the live card was not erased"
    );
}

/// Restore resumes only a card suspended as forgotten: a card a security officer suspended for
/// another reason stays suspended for the help desk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_is_only_for_forgotten_cards() {
    let (_tmp, t, _base) = serve().await;
    let svc = &t.services;
    let desk = support::actor(BuiltinRole::HelpDesk);
    let officer = support::actor(BuiltinRole::SecurityOfficer);
    let (device, _) = issue_active(&t, &desk, demo::POLICY_ID, None).await;
    devices::suspend(svc, &officer, &device, Reason::Stolen)
        .await
        .unwrap();
    let err = help_desk::restore_original(svc, &desk, &device, "found it")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("suspended as forgotten"), "{err}");
    assert_eq!(
        svc.store.device(&device).await.unwrap().state,
        DeviceState::Suspended
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_scope_is_not_found_and_without_permission_forbidden() {
    let (_dir, t) = support::open().await;
    let svc = &t.services;
    let officer = support::actor(BuiltinRole::SecurityOfficer);
    let job = support::issue(&t, &officer, demo::POLICY_ID, PIN).await;
    issuance::finish(svc, &officer, &job.id).await.unwrap();
    let device = job.device.unwrap();
    let (station, reader) = at_encoder();

    let outsider = Actor {
        scope: Scope::Groups(vec!["no-such-group".into()]),
        ..support::actor(BuiltinRole::HelpDesk)
    };
    let auditor = support::actor(BuiltinRole::Auditor);
    // The Issuance Operator has none of the help desk's permissions either.
    let issuer = support::actor(BuiltinRole::Issuer);
    for (actor, forbidden) in [(&outsider, false), (&auditor, true), (&issuer, true)] {
        let check = |r: Result<(), CoreError>, what: &str| match (&r, forbidden) {
            (Err(CoreError::Forbidden(_)), true) | (Err(CoreError::NotFound(_)), false) => {}
            _ => panic!("{what} by {}: {r:?}", actor.role.name),
        };
        check(
            devices::unlock(
                svc,
                actor,
                &device,
                (&station, reader),
                (&Pin::new(NEW_PIN), None),
                "r",
            )
            .await
            .map(drop),
            "unlock",
        );
        check(
            help_desk::replace(svc, actor, &device, Reason::Lost, "r")
                .await
                .map(drop),
            "replace",
        );
        check(
            help_desk::restore_original(svc, actor, &device, "r")
                .await
                .map(drop),
            "restore",
        );
        check(
            help_desk::recycle(svc, actor, &device, (&station, reader), "r")
                .await
                .map(drop),
            "recycle",
        );
    }
    // A security officer out of scope does not find the card either.
    let officer_outside = Actor {
        scope: Scope::Groups(vec!["no-such-group".into()]),
        ..officer.clone()
    };
    assert!(matches!(
        devices::suspend(svc, &officer_outside, &device, Reason::Forgotten).await,
        Err(CoreError::NotFound(_))
    ));
    // Nothing changed.
    assert_eq!(
        svc.store.device(&device).await.unwrap().state,
        DeviceState::Active
    );
}

/// Signs `operator` in on `portal`.
async fn sign_in_as(portal: &Portal, operator: &str, password: &str) {
    let (_, _, page) = portal.get("/login").await;
    let (status, url, body) = portal
        .post(
            "/login",
            &[
                ("csrf", &csrf(&page)),
                ("operator", operator),
                ("password", password),
            ],
        )
        .await;
    assert_eq!((status.as_u16(), url.as_str()), (200, "/users"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_page_offers_the_help_desk_to_those_who_may() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let svc = &t.services;
    let admin = support::actor(BuiltinRole::Administrator);
    let (device, card) = issue_active(&t, &admin, demo::POLICY_ID, None).await;
    let id = device.as_str();
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;

    let (_, _, page) = portal.get("/users/jdoe").await;
    for action in ["unlock", "replace", "recycle"] {
        assert!(
            page.contains(&format!("/devices/{id}/{action}")),
            "{action}: {page}"
        );
    }
    assert!(
        !page.contains(&format!("/devices/{id}/restore")),
        "an Active card is not restored"
    );

    // Unlock PIN: the holder blocked it; the operator types the new PIN twice.
    let mut client = open_card(&card);
    client.select().await.unwrap();
    for _ in 0..3 {
        let _ = client.verify_pin(&Pin::new("99999999")).await;
    }
    assert_eq!(client.pin_retries().await.unwrap(), 0);
    drop(client);
    let (status, _, page) = portal.get(&format!("/devices/{id}/unlock")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(demo::ENCODER), "{page}");
    let token = csrf(&page);
    let unlock = |pin: &'static str, confirm: &'static str| {
        let token = token.clone();
        let portal = &portal;
        async move {
            portal
                .post(
                    &format!("/devices/{id}/unlock"),
                    &[
                        ("csrf", token.as_str()),
                        ("reader", demo::ENCODER),
                        ("reason", "ticket 11"),
                        ("pin", pin),
                        ("pin_confirm", confirm),
                    ],
                )
                .await
        }
    };
    let (status, _, page) = unlock(NEW_PIN, "27182819").await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("PIN0005"), "{page}");
    let (status, _, page) = unlock(NEW_PIN, NEW_PIN).await;
    assert_eq!(status, 200, "{page}");
    let serial = svc.store.device(&device).await.unwrap().serial;
    assert!(
        page.contains(&format!("The PIN of card {serial} was reset"))
            && page.contains("the card has 3 tries left"),
        "{page}"
    );
    let mut client = open_card(&card);
    client.select().await.unwrap();
    client.verify_pin(&Pin::new(NEW_PIN)).await.unwrap();
    drop(client);

    // Replace as forgotten: on to the wizard, which carries the original into the job.
    let (_, _, page) = portal.get("/users/jdoe").await;
    let token = csrf(&page);
    let (status, url, page) = portal
        .post(
            &format!("/devices/{id}/replace"),
            &[
                ("csrf", token.as_str()),
                ("reason", "forgotten"),
                ("comment", "left at home"),
            ],
        )
        .await;
    assert_eq!((status.as_u16(), url.as_str()), (200, "/users/jdoe/issue"));
    assert!(page.contains("id=\"temporary-for\""), "{page}");
    assert!(
        page.contains(&format!("name=\"temporary_for\" value=\"{id}\"")),
        "{page}"
    );
    let (status, _, page) = portal
        .post(
            "/users/jdoe/issue/configure",
            &[
                ("csrf", token.as_str()),
                ("printer", demo::PRINTER),
                ("reader", demo::ENCODER),
                ("temporary_for", id),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("name=\"temporary_for\" value=\"{id}\"")),
        "the choice of printer keeps the original: {page}"
    );
    let (status, url, page) = portal
        .post(
            "/users/jdoe/issue/start",
            &[
                ("csrf", token.as_str()),
                ("layout", "corporate-badge"),
                ("temporary_for", id),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let job = svc
        .store
        .job(&JobId::new(url.trim_start_matches("/issue/")))
        .await
        .unwrap();
    assert_eq!(job.temporary_for.as_ref(), Some(&device));

    // Restore original, from the User page.
    let (_, _, page) = portal.get("/users/jdoe").await;
    assert!(page.contains(&format!("/devices/{id}/restore")), "{page}");
    let (status, _, page) = portal
        .post(
            &format!("/devices/{id}/restore"),
            &[("csrf", token.as_str()), ("reason", "found")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("is Active again"), "{page}");

    // An Issuance Operator sees none of it and is refused at the door.
    let form = OperatorForm {
        display_name: "Ivy Issuer".into(),
        role: RoleId::new(BuiltinRole::Issuer.id()),
        scope: Scope::All,
        enabled: true,
        user: None,
    };
    let once = operators::create(svc, &admin, "ivy", form).await.unwrap();
    let ivy_password = "a long enough passphrase 42";
    operators::change_own_password(
        svc,
        &OperatorId::new("ivy"),
        "no session",
        once,
        Password::new(ivy_password),
    )
    .await
    .unwrap();
    let ivy = Portal::start(t.clone()).await;
    sign_in_as(&ivy, "ivy", ivy_password).await;
    let (status, _, page) = ivy.get("/users/jdoe").await;
    assert_eq!(status, 200);
    let token = csrf(&page);
    for action in ["unlock", "replace", "recycle", "restore"] {
        assert!(
            !page.contains(&format!("/devices/{id}/{action}")),
            "{action} is shown to an issuer: {page}"
        );
    }
    let (status, _, _) = ivy.get(&format!("/devices/{id}/unlock")).await;
    assert_eq!(status, 403);
    let (status, _, _) = ivy
        .post(
            &format!("/devices/{id}/recycle"),
            &[
                ("csrf", token.as_str()),
                ("reader", demo::ENCODER),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        svc.store.device(&device).await.unwrap().state,
        DeviceState::Active
    );
}

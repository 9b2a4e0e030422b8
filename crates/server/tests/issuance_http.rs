//! The seed flow through HTTP against a real server on a loopback port: sign in, open Jane Doe's
//! page, Add Device, configure printer and reader, Start, policy and PIN, watch the progress, and
//! then Continue (card Active) or Cancel (card Pending, activated later from the User page).
//! Every certificate is checked with `openssl verify`, the PIN with the virtual card itself, and
//! the printed files for their physical size.

mod support;

use std::time::Duration;
use tessera_core::model::CertificateStatus;
use tessera_core::ports::{CardError, Store};
use tessera_core::{DeviceState, Pin};
use tessera_server::{Options, Tessera};

use support::portal::{csrf, Portal, PIN};

fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[1..4], b"PNG");
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    (w, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_activates_and_cancel_leaves_pending() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::new(dir.path().join("data"));
    let (t, password) = Tessera::open(&options).await.unwrap();
    let password = password.expect("first start creates admin");
    let portal = Portal::start(t.clone()).await;
    let (status, _, _) = portal.get("/healthz").await;
    assert_eq!(status, 200);
    let (_, url, _) = portal.get("/users/jdoe").await;
    assert_eq!(url, "/login", "pages need a signed-in operator");
    portal.sign_in(password.expose()).await;
    let (_, _, page) = portal.get("/users?q=jane").await;
    assert!(page.contains("Jane Doe"));

    // --- Continue: the card becomes Active with four valid certificates.
    let job = portal.issue("jdoe", true).await;
    let (_, _, page) = portal.get(&format!("/issue/{job}")).await;
    let (status, url, page) = portal
        .post(&format!("/issue/{job}/continue"), &[("csrf", &csrf(&page))])
        .await;
    assert_eq!((status.as_u16(), url.as_str()), (200, "/users/jdoe"));
    assert!(page.contains("state-active"), "{page}");
    for slot in [
        "PIV Authentication",
        "Digital Signature",
        "Key Management",
        "Card Authentication",
    ] {
        assert!(
            page.contains(slot),
            "the User page lists the {slot} certificate"
        );
    }
    let devices = t.store.devices_of_user(&"jdoe".into()).await.unwrap();
    assert_eq!(devices.len(), 1);
    let active = &devices[0];
    assert_eq!(active.state, DeviceState::Active);
    let certs = t.store.certificates_of_device(&active.id).await.unwrap();
    assert_eq!(certs.len(), 4);
    for c in &certs {
        assert_eq!(c.status, CertificateStatus::Valid);
        support::openssl_verify(dir.path(), &t, &c.der);
    }

    // The card: the PIN verifies, a wrong PIN costs a try.
    let state_file = t.demo_printer.card_in_encoder().unwrap();
    let transport = tessera_piv::VirtualCardTransport::open(&state_file).unwrap();
    let mut card = (tessera_piv::factory())(Box::new(transport));
    card.select().await.unwrap();
    assert_eq!(card.pin_retries().await.unwrap(), 3);
    assert_eq!(
        card.verify_pin(&Pin::new("999999")).await,
        Err(CardError::WrongPin { retries_left: 2 })
    );
    card.verify_pin(&Pin::new(PIN)).await.unwrap();
    assert_eq!(
        card.pin_retries().await.unwrap(),
        3,
        "a right PIN resets the counter"
    );

    // The printed card: PNGs at 300 dpi CR80, a PDF with CR80 pages.
    let prints = t.store.prints_of_device(&active.id).await.unwrap();
    assert_eq!(prints.len(), 1);
    assert_eq!(prints[0].state, "completed");
    let mut pdfs = 0;
    for f in &prints[0].files {
        let bytes = std::fs::read(f).unwrap();
        if f.ends_with(".png") {
            let (w, h) = png_size(&bytes);
            assert!((w == 1011 || w == 1012) && h == 638, "{f}: {w}x{h}");
        } else {
            assert!(f.ends_with(".pdf"));
            let text = String::from_utf8_lossy(&bytes);
            assert!(text.contains("/MediaBox [0 0 242.6"), "CR80 page in {f}");
            pdfs += 1;
        }
    }
    assert_eq!(pdfs, 1);
    let res = portal
        .http
        .get(format!(
            "{}/devices/{}/preview/front.png",
            portal.base, active.id
        ))
        .send()
        .await
        .unwrap();
    let (w, h) = png_size(&res.bytes().await.unwrap());
    assert!(w >= 1011 && h == 638);

    // --- Cancel: a second card for Jane stays Pending with certificates on hold.
    let job = portal.issue("jdoe", true).await;
    let (_, _, page) = portal.get(&format!("/issue/{job}")).await;
    let token = csrf(&page);
    let (status, url, page) = portal
        .post(&format!("/issue/{job}/cancel"), &[("csrf", &token)])
        .await;
    assert_eq!((status.as_u16(), url.as_str()), (200, "/users/jdoe"));
    assert!(page.contains("state-pending"), "{page}");
    let pending = t
        .store
        .devices_of_user(&"jdoe".into())
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.id != active.id)
        .unwrap();
    assert_eq!(pending.state, DeviceState::Pending);
    for c in t.store.certificates_of_device(&pending.id).await.unwrap() {
        assert_eq!(c.status, CertificateStatus::OnHold);
    }
    // A form without its CSRF token is refused.
    let (status, _, _) = portal
        .post(
            &format!("/devices/{}/activate", pending.id),
            &[("csrf", "forged")],
        )
        .await;
    assert_eq!(status, 403);
    // Activated later from the User page.
    let (status, _, page) = portal
        .post(
            &format!("/devices/{}/activate", pending.id),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(status, 200);
    assert!(!page.contains("state-pending"), "{page}");
    assert_eq!(
        t.store.device(&pending.id).await.unwrap().state,
        DeviceState::Active
    );

    // Secrets: the PIN is in no audit event and no stored record.
    let events = t.store.audit_events(None, 1000).await.unwrap();
    assert!(events.len() > 40);
    for e in &events {
        let text = serde_json::to_string(e).unwrap();
        assert!(!text.contains(PIN), "audit event {} leaks the PIN", e.seq);
    }
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    for expected in [
        "OperatorSignedIn",
        "IssuanceStarted",
        "KeyGenerated",
        "CertificateIssued",
        "PinSet",
        "CardPrinted",
        "DeviceActivated",
        "ActivationCancelled",
    ] {
        assert!(names.contains(&expected), "audit has {expected}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_pin_is_revealed_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (t, password) = Tessera::open(&Options::new(dir.path().to_path_buf()))
        .await
        .unwrap();
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(password.unwrap().expose()).await;
    let (_, _, page) = portal.get("/settings").await;
    let token = csrf(&page);
    let (status, _, page) = portal
        .post(
            "/settings",
            &[
                ("csrf", &token),
                ("card_printing", "on"),
                ("pin_mode", "not_displayed"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("Settings saved"));

    let uid = tessera_server::demo::users()[1].uid.clone();
    let job = portal.start_wizard(uid.as_str(), false).await;
    let (_, _, page) = portal.get(&format!("/issue/{job}")).await;
    assert!(
        !page.contains("id=\"pin\""),
        "no PIN field in Not displayed mode"
    );
    let (status, _, _) = portal
        .post(
            &format!("/issue/{job}/policy"),
            &[("csrf", &token), ("policy", "piv-standard")],
        )
        .await;
    assert_eq!(status, 200);
    for _ in 0..600 {
        let j: serde_json::Value = portal
            .http
            .get(format!("{}/api/v1/jobs/{job}", portal.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if j["step"] == "printed" {
            break;
        }
        assert!(j["step"] == "issuing" || j["step"] == "printing", "{j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _, _) = portal
        .post(&format!("/issue/{job}/continue"), &[("csrf", &token)])
        .await;
    assert_eq!(status, 200);
    let device = t.store.devices_of_user(&uid).await.unwrap().remove(0);
    let (_, _, page) = portal.get(&format!("/users/{uid}")).await;
    assert!(page.contains("Reveal initial PIN"));
    let (status, _, page) = portal
        .post(
            &format!("/devices/{}/reveal-pin", device.id),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(status, 200);
    let at = page.find("id=\"revealed-pin\">").unwrap() + 18;
    let pin: String = page[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    assert_eq!(pin.len(), 8, "{page}");
    // The revealed PIN is the card's PIN.
    let state_file = t.demo_printer.card_in_encoder().unwrap();
    let transport = tessera_piv::VirtualCardTransport::open(&state_file).unwrap();
    let mut card = (tessera_piv::factory())(Box::new(transport));
    card.select().await.unwrap();
    card.verify_pin(&Pin::new(pin.clone())).await.unwrap();
    // A second reveal is refused: the PIN never reaches a browser twice.
    let (status, _, page) = portal
        .post(
            &format!("/devices/{}/reveal-pin", device.id),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(status, 400);
    assert!(!page.contains(&pin));
    let events = t.store.audit_events(None, 500).await.unwrap();
    assert!(events.iter().any(|e| e.name == "InitialPinRevealed"));
    assert!(events
        .iter()
        .all(|e| !serde_json::to_string(e).unwrap().contains(&pin)));
}

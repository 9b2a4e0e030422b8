//! The card stock end to end: under a policy that requires stock, a card that is not in stock is
//! refused (STK0001) before anything is written to it and gets no device record; once its serial
//! is imported the same card issues, the stock card becomes Issued at the station, and its
//! history lists the device.

mod support;

use tessera_core::ids::*;
use tessera_core::issuance::{self, StartRequest};
use tessera_core::model::{BuiltinRole, JobStep, Slot, StockState};
use tessera_core::ports::{PivCard, Store};
use tessera_core::secret::{ManagementKey, ManagementKeyAlgorithm};
use tessera_core::stock::{self, StockDefaults};
use tessera_core::{policies, Pin};
use tessera_piv::virtual_transport::VirtualCardTransport;
use tessera_piv::PivClient;
use tessera_server::demo;

#[tokio::test]
async fn a_card_not_in_stock_is_refused_before_anything_is_written() {
    let (_dir, t) = support::open().await;
    let svc = &t.services;
    let admin = support::actor(BuiltinRole::Administrator);

    let mut policy = svc
        .store
        .policies()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.id.as_str() == demo::POLICY_ID)
        .unwrap();
    policy.require_stock = true;
    policies::save(svc, &admin, policy).await.unwrap();

    // Start feeds a blank card into the encoder; its state file is what the card holds.
    let job = issuance::start(
        svc,
        &admin,
        StartRequest {
            user: UserId::new("jdoe"),
            station: StationId::new(demo::STATION_ID),
            printer: demo::PRINTER.into(),
            reader: demo::ENCODER.into(),
            layout: LayoutId::new("corporate-badge"),
            temporary_for: None,
        },
    )
    .await
    .unwrap();
    let card = t.demo_printer.card_in_encoder().unwrap();
    let before = std::fs::read(&card).unwrap();
    let (_, running) = issuance::choose_policy(
        &t.runner,
        &admin,
        &job.id,
        &PolicyId::new(demo::POLICY_ID),
        Some(Pin::new("24681357")),
    )
    .await
    .unwrap();
    let refused = running.await.unwrap();
    assert_eq!(refused.step, JobStep::Failed);
    assert_eq!(refused.device, None, "no device record");
    let error = refused.error.unwrap();
    assert_eq!(error.code, "STK0001");

    // Nothing was written: the card's state is byte for byte what was fed, it still opens with
    // the factory management key and PIN, and holds no certificate.
    assert_eq!(
        std::fs::read(&card).unwrap(),
        before,
        "the card was written"
    );
    let mut client = PivClient::new(Box::new(VirtualCardTransport::open(&card).unwrap()));
    let serial = client.select().await.unwrap().serial;
    assert_eq!(error.message, format!("card {serial} is not in stock"));
    assert_eq!(client.pin_retries().await.unwrap(), 3);
    client
        // The demo printer's blank cards are YubiKey 5.7s: AES-192 factory key.
        .authenticate(&ManagementKey::factory_default_for(
            ManagementKeyAlgorithm::Aes192,
        ))
        .await
        .unwrap();
    for slot in Slot::ALL {
        assert_eq!(client.read_certificate(slot).await.unwrap(), None);
    }
    drop(client);
    assert!(svc
        .store
        .devices_with_serial(&serial)
        .await
        .unwrap()
        .is_empty());
    let events = svc.store.audit_events(None, 1000).await.unwrap();
    let refusal = events
        .iter()
        .find(|e| e.name == "StockCardRefused")
        .expect("the refusal is audited");
    assert_eq!(refusal.details["serial"], serial.as_str());
    assert_eq!(refusal.operation.as_deref(), Some(job.operation.as_str()));

    // An issuer may not import; an administrator may.
    let csv = format!("serial,batch\n{serial},B-1\n");
    let defaults = StockDefaults {
        model: Some("Virtual PIV".into()),
        ..Default::default()
    };
    let issuer = support::actor(BuiltinRole::Issuer);
    assert!(stock::import_stock(svc, &issuer, &csv, &defaults)
        .await
        .is_err());
    let report = stock::import_stock(svc, &admin, &csv, &defaults)
        .await
        .unwrap();
    assert_eq!(report.imported, 1);
    assert!(report.errors.is_empty() && report.duplicates.is_empty());
    let again = stock::import_stock(svc, &admin, &csv, &defaults)
        .await
        .unwrap();
    assert_eq!(
        (again.imported, again.duplicates),
        (0, vec![serial.clone()])
    );

    // The same card, back in the printer, now issues.
    t.demo_printer.put_in_hopper(card.clone());
    let issued = support::issue(&t, &admin, demo::POLICY_ID, "24681357").await;
    assert_eq!(issued.step, JobStep::Printed, "{:?}", issued.error);
    assert_eq!(t.demo_printer.card_in_encoder().as_ref(), Some(&card));
    let device = issued.device.unwrap();
    let in_stock = svc.store.stock_card(&serial).await.unwrap().unwrap();
    assert_eq!(in_stock.state, StockState::Issued);
    assert_eq!(in_stock.location, Some(StationId::new(demo::STATION_ID)));
    assert_eq!(in_stock.model, "Virtual PIV");
    assert_eq!(in_stock.batch, "B-1");

    let history = stock::stock_history(svc, &admin, &serial).await.unwrap();
    assert_eq!(history.card.unwrap().state, StockState::Issued);
    assert_eq!(history.devices.len(), 1);
    assert_eq!(history.devices[0].id, device);
    assert_eq!(history.devices[0].user, Some(UserId::new("jdoe")));

    let summary = stock::stock_summary(svc, &admin).await.unwrap();
    assert_eq!(summary.len(), 1);
    assert_eq!((summary[0].issued, summary[0].in_stock), (1, 0));

    // A card still in use cannot be handed back; once its device is terminated it can.
    let err = stock::set_stock_state(svc, &admin, &serial, StockState::Returned, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("still in use"), "{err}");
    tessera_core::devices::terminate(svc, &admin, &device, tessera_core::Reason::Damaged)
        .await
        .unwrap();
    // Issued cards are not issued again under this policy until returned and re-stocked.
    let returned = stock::set_stock_state(svc, &admin, &serial, StockState::Returned, None)
        .await
        .unwrap();
    assert_eq!(returned.state, StockState::Returned);
    let destroyed = stock::set_stock_state(svc, &admin, &serial, StockState::Destroyed, None)
        .await
        .unwrap();
    assert_eq!(destroyed.state, StockState::Destroyed);
    let err = stock::set_stock_state(svc, &admin, &serial, StockState::InStock, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("destroyed"), "{err}");
}

/// The Stock page, its import form, a card's page and the REST API, over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stock_page_imports_lists_and_shows_a_card() {
    use support::portal::{csrf, Portal};
    let (_dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;

    let (status, _, page) = portal.get("/stock").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<a href=\"/stock\">Stock</a>"),
        "the menu offers it"
    );
    let token = csrf(&page);

    // A bad line refuses the whole file and names the line.
    let (status, _, refused) = portal
        .post(
            "/stock/import",
            &[
                ("csrf", &token),
                ("csv", "serial,model\n111,A\nnot a serial,A\n"),
                ("model", ""),
                ("batch", ""),
                ("location", ""),
            ],
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused.contains("line 3:"), "{refused}");
    assert!(t.store.stock_card("111").await.unwrap().is_none());

    let (status, _, imported) = portal
        .post(
            "/stock/import",
            &[
                ("csrf", &token),
                ("csv", "serial,batch\n111,B1\n0222,B2\n"),
                ("model", "YubiKey 5 NFC"),
                ("batch", ""),
                ("location", "This workstation"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{imported}");
    assert!(imported.contains("Imported 2 card(s)."), "{imported}");
    assert!(imported.contains("/stock/cards/222"), "{imported}");

    let (status, _, card) = portal.get("/stock/cards/222").await;
    assert_eq!(status, 200, "{card}");
    assert!(
        card.contains("YubiKey 5 NFC") && card.contains("B2"),
        "{card}"
    );
    let (status, _, _) = portal
        .post(
            "/stock/cards/222/state",
            &[("csrf", &token), ("state", "destroyed"), ("location", "")],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        t.store.stock_card("222").await.unwrap().unwrap().state,
        StockState::Destroyed
    );

    // The API: list with a filter, a card's history, an import with the CSRF header.
    let get = |path: &str| {
        let url = format!("{}/api/v1{path}", portal.base);
        let http = portal.http.clone();
        async move {
            let res = http.get(url).send().await.unwrap();
            (res.status(), res.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, list) = get("/stock?state=in_stock").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["cards"].as_array().unwrap().len(), 1);
    assert_eq!(list["cards"][0]["serial"], "111");
    let (status, history) = get("/stock/222").await;
    assert_eq!(status, 200);
    assert_eq!(history["card"]["state"], "destroyed");
    let (status, _) = get("/stock/999").await;
    assert_eq!(status, 404);

    let import = |csrf: String| {
        portal
            .http
            .post(format!(
                "{}/api/v1/stock/import?model=Virtual%20PIV",
                portal.base
            ))
            .header("content-type", "text/csv")
            .header("x-csrf-token", csrf)
            .body("serial\n333\n111\n")
            .send()
    };
    assert_eq!(import("wrong".into()).await.unwrap().status(), 403);
    let res = import(token.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    let report: serde_json::Value = res.json().await.unwrap();
    assert_eq!(report["imported"], 1);
    assert_eq!(report["duplicates"], serde_json::json!(["111"]));
}

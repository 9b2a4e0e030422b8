//! Fingerprint enrolment end to end on a real server: the demo people have synthetic
//! fingerprints, marked so; an enrolment system replaces them over `PUT
//! /api/v1/users/{uid}/fingerprints` with the raw INCITS 378 record (a malformed one is refused
//! with USR0006 and the stored one stays), the User page says which, `DELETE` removes them, the
//! audit log records each without the minutiae; the user import takes a base64 `fingerprints`
//! column; an operator enrols a record file and removes it on the User page; and a policy that
//! requires fingerprints refuses a person without them (ISS0003) when the policy is chosen,
//! before any card command.

mod support;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;
use support::portal::{csrf, Portal, PIN};
use tessera_core::fingerprints::{self, MinutiaeRecord};
use tessera_core::ids::*;
use tessera_core::issuance::{self, StartRequest};
use tessera_core::model::BuiltinRole;
use tessera_core::Pin;
use tessera_server::demo;

struct Api {
    portal: Portal,
    csrf: String,
}

impl Api {
    async fn send(&self, method: &str, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let res = self
            .portal
            .http
            .request(
                method.parse().unwrap(),
                format!("{}/api/v1{path}", self.portal.base),
            )
            .header("x-csrf-token", &self.csrf)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// A captured record (as an enrolment system would send it): another seed's record, read and
/// written again with a product identifier, so it is not the demo one.
fn captured() -> Vec<u8> {
    let mut record: MinutiaeRecord = fingerprints::parse(&fingerprints::synthetic("scan")).unwrap();
    record.product_owner = 0x0033;
    record.product_type = 0x0101;
    record.encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprints_are_enrolled_shown_and_removed_over_the_api() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;
    let (_, _, page) = portal.get("/account/password").await;
    let api = Api {
        csrf: csrf(&page),
        portal,
    };
    let jane = UserId::new("jdoe");

    // The demo gave Jane synthetic fingerprints, and the page says so.
    let demo_record = t.services.store.fingerprints(&jane).await.unwrap().unwrap();
    assert!(demo_record.synthetic);
    assert_eq!(demo_record.incits_378, fingerprints::synthetic("jdoe"));
    let (_, _, page) = api.portal.get("/users/jdoe").await;
    assert!(page.contains("synthetic (demo data)"), "{page}");
    let (status, body) = api.send("GET", "/users/jdoe", vec![]).await;
    assert_eq!(status, 200);
    assert_eq!(body["fingerprints"]["synthetic"], true);

    // An enrolment system sends the captured record: it replaces the synthetic one.
    let record = captured();
    let (status, body) = api
        .send("PUT", "/users/jdoe/fingerprints", record.clone())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fingerprints"]["synthetic"], false);
    assert_eq!(body["fingerprints"]["views"], 2);
    let stored = t.services.store.fingerprints(&jane).await.unwrap().unwrap();
    assert_eq!(
        (stored.incits_378, stored.synthetic),
        (record.clone(), false)
    );
    let (_, _, page) = api.portal.get("/users/jdoe").await;
    assert!(page.contains("enrolled (2 finger views)"), "{page}");
    assert!(page.contains("right index finger ("), "{page}");

    // Malformed records are refused with the reason; the stored one stays.
    let mut one_view = fingerprints::parse(&record).unwrap();
    one_view.views.truncate(1);
    let mut cut = record.clone();
    cut.truncate(record.len() - 3);
    for (bad, reason) in [
        (b"not a record at all, longer than 26 bytes".to_vec(), "FMR"),
        (one_view.encode(), "exactly two"),
        (cut, "bytes long but"),
    ] {
        let (status, body) = api.send("PUT", "/users/jdoe/fingerprints", bad).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "USR0006", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{reason:?} not in {message}");
    }
    let stored = t.services.store.fingerprints(&jane).await.unwrap().unwrap();
    assert_eq!(stored.incits_378, record);

    // Removed; a second removal finds none.
    let (status, _) = api.send("DELETE", "/users/jdoe/fingerprints", vec![]).await;
    assert_eq!(status, 204);
    assert_eq!(t.services.store.fingerprints(&jane).await.unwrap(), None);
    let (_, _, page) = api.portal.get("/users/jdoe").await;
    assert!(page.contains(r#"<dd id="fingerprints">none"#), "{page}");
    let (status, body) = api.send("DELETE", "/users/jdoe/fingerprints", vec![]).await;
    assert_eq!(status, 404, "{body}");

    // Each change is audited with what and whose, never the minutiae.
    let events = t.services.store.audit_events(None, 1000).await.unwrap();
    let enrolled: Vec<_> = events
        .iter()
        .filter(|e| e.name == "FingerprintsEnrolled")
        .collect();
    assert_eq!(enrolled.len(), 1, "refused records are not enrolled");
    let details = &enrolled[0].details;
    assert_eq!(
        details["fingers"],
        serde_json::json!(["right index finger", "left index finger"])
    );
    assert_eq!(details["bytes"], record.len());
    let b64 = base64::engine::general_purpose::STANDARD.encode(&record);
    assert!(!details.to_string().contains(&b64[..16]));
    assert_eq!(enrolled[0].user.as_deref(), Some("jdoe"));
    assert_eq!(
        events
            .iter()
            .filter(|e| e.name == "FingerprintsRemoved")
            .count(),
        1
    );

    // The user import takes the record in base64; a bad one loses only itself.
    let csv =
        format!("uid,given_name,family_name,fingerprints\nann,Ann,Lee,{b64}\nbob,Bob,Ray,AAAA\n");
    let res = api
        .portal
        .http
        .post(format!("{}/api/v1/users/import", api.portal.base))
        .header("x-csrf-token", &api.csrf)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let report: Value = res.json().await.unwrap();
    assert_eq!(
        report["created"],
        serde_json::json!(["ann", "bob"]),
        "{report}"
    );
    let rejected = report["rejected"].to_string();
    assert!(
        rejected.contains("the fingerprints were refused"),
        "{rejected}"
    );
    let ann = t.services.store.fingerprints(&"ann".into()).await.unwrap();
    assert_eq!(
        ann.map(|f| (f.incits_378, f.synthetic)),
        Some((record, false))
    );
    assert_eq!(
        t.services.store.fingerprints(&"bob".into()).await.unwrap(),
        None
    );

    // Deleting a person removes their fingerprints.
    let (status, _) = api.send("DELETE", "/users/ann", vec![]).await;
    assert_eq!(status, 204);
    assert_eq!(
        t.services.store.fingerprints(&"ann".into()).await.unwrap(),
        None
    );
}

/// Posts `record` as the file of the User page's enrolment form; status, final path and page.
async fn upload(api: &Api, uid: &str, record: Vec<u8>) -> (StatusCode, String, String) {
    let form = reqwest::multipart::Form::new()
        .text("csrf", api.csrf.clone())
        .part(
            "record",
            reqwest::multipart::Part::bytes(record).file_name("jdoe.fmr"),
        );
    let res = api
        .portal
        .http
        .post(format!("{}/users/{uid}/fingerprints", api.portal.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let path = res.url().path().to_owned();
    (res.status(), path, res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_enrols_and_removes_fingerprints_on_the_user_page() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;
    let (_, _, page) = portal.get("/users/jdoe").await;
    assert!(page.contains("Replace fingerprints"), "{page}");
    let api = Api {
        csrf: csrf(&page),
        portal,
    };
    let jane = UserId::new("jdoe");

    // A record the enrolment station saved to a file replaces the synthetic one.
    let record = captured();
    let (status, path, page) = upload(&api, "jdoe", record.clone()).await;
    assert_eq!((status, path.as_str()), (StatusCode::OK, "/users/jdoe"));
    assert!(page.contains("The fingerprints were enrolled."), "{page}");
    assert!(page.contains("enrolled (2 finger views)"), "{page}");
    let stored = t.services.store.fingerprints(&jane).await.unwrap().unwrap();
    assert_eq!(
        (stored.incits_378, stored.synthetic),
        (record.clone(), false)
    );

    // A file that is not a record is refused with USR0006 and the reason; nothing changes.
    let (status, _, page) = upload(
        &api,
        "jdoe",
        b"a photo, not minutiae, and longer than 26 bytes".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("USR0006") && page.contains("FMR"), "{page}");
    // So is a file larger than any record a card can carry.
    let huge = vec![0; fingerprints::MAX_RECORD_BYTES + 2];
    let (status, _, _) = upload(&api, "jdoe", huge).await;
    assert!(status.is_client_error(), "{status}");
    let stored = t.services.store.fingerprints(&jane).await.unwrap().unwrap();
    assert_eq!(stored.incits_378, record);

    // Removed from the page; the form then offers to enrol.
    let (status, path, page) = api
        .portal
        .post(
            "/users/jdoe/fingerprints/remove",
            &[("csrf", api.csrf.as_str())],
        )
        .await;
    assert_eq!((status, path.as_str()), (StatusCode::OK, "/users/jdoe"));
    assert!(page.contains("The fingerprints were removed."), "{page}");
    assert!(page.contains("Enrol fingerprints"), "{page}");
    assert!(!page.contains("remove-fingerprints"), "{page}");
    assert_eq!(t.services.store.fingerprints(&jane).await.unwrap(), None);
    let events = t.services.store.audit_events(None, 1000).await.unwrap();
    let names: Vec<_> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "FingerprintsEnrolled")
            .count(),
        1
    );
    assert!(names.contains(&"FingerprintsRemoved"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_requires_fingerprints_refuses_a_person_without_them() {
    let (_dir, t) = support::open().await;
    let svc = &t.services;
    let admin = support::actor(BuiltinRole::Administrator);
    let jane = UserId::new("jdoe");
    let mut policy = svc
        .store
        .policies()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.id.as_str() == demo::POLICY_ID)
        .unwrap();
    policy.require_fingerprints = true;
    tessera_core::policies::save(svc, &admin, policy.clone())
        .await
        .unwrap();
    tessera_core::enrolment::remove_fingerprints(svc, &admin, &jane)
        .await
        .unwrap();

    let job = issuance::start(
        svc,
        &admin,
        StartRequest {
            user: jane.clone(),
            station: StationId::new(demo::STATION_ID),
            printer: demo::PRINTER.into(),
            reader: demo::ENCODER.into(),
            layout: LayoutId::new("corporate-badge"),
            temporary_for: None,
        },
    )
    .await
    .unwrap();
    let err = issuance::choose_policy(&t.runner, &admin, &job.id, &policy.id, Some(Pin::new(PIN)))
        .await
        .expect_err("refused");
    assert_eq!(err.code().as_str(), "ISS0003");
    let message = err.to_string();
    assert!(
        message.contains("requires fingerprints")
            && message.contains("/api/v1/users/jdoe/fingerprints"),
        "{message}"
    );
    // Nothing happened to the job or a card: it waits at the policy step.
    let after = svc.store.job(&job.id).await.unwrap();
    assert_eq!(after.step, job.step);
    assert!(after.device.is_none());

    // Enrolled, the same choice goes through.
    tessera_core::enrolment::enrol_fingerprints(svc, &admin, &jane, captured())
        .await
        .unwrap();
    let (_, running) =
        issuance::choose_policy(&t.runner, &admin, &job.id, &policy.id, Some(Pin::new(PIN)))
            .await
            .unwrap();
    let done = running.await.unwrap();
    assert!(done.device.is_some(), "{done:?}");
}

//! `/api/v1/issuances` as a script uses it, over HTTP on a real server: Start at the demo
//! printer, a refused PIN confirmation (422, nothing started), the policy and PIN, the job
//! followed through `GET /api/v1/jobs/{id}` to Printed, Continue, and the card Active with four
//! valid certificates; a second issuance cancelled with a reason leaves its card Pending; a
//! request without the CSRF token is refused.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use support::portal::{csrf, Portal, PIN};
use tessera_core::model::CertificateStatus;
use tessera_core::ports::Store;
use tessera_core::DeviceState;
use tessera_server::demo;

struct Api {
    portal: Portal,
    csrf: String,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .portal
            .http
            .request(
                method.parse().unwrap(),
                format!("{}/api/v1{path}", self.portal.base),
            )
            .header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let res = request.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }

    /// Follows the job until the runner lets go of it.
    async fn wait_printed(&self, job: &str) -> Value {
        for _ in 0..600 {
            let (status, j) = self.call("GET", &format!("/jobs/{job}"), None).await;
            assert_eq!(status, 200, "{j}");
            if !matches!(j["step"].as_str(), Some("issuing" | "printing")) {
                return j;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the job {job} did not finish in a minute");
    }
}

fn start_body() -> Value {
    json!({
        "user": "jdoe", "station": demo::STATION_ID, "layout": "corporate-badge",
        "printer": demo::PRINTER, "reader": demo::ENCODER,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_is_issued_and_activated_through_the_api() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;
    let (_, _, page) = portal.get("/account/password").await;
    let api = Api {
        csrf: csrf(&page),
        portal,
    };

    // Without the CSRF token nothing starts.
    let res = api
        .portal
        .http
        .post(format!("{}/api/v1/issuances", api.portal.base))
        .json(&start_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(t.store.open_jobs().await.unwrap().is_empty());

    let (status, job) = api.call("POST", "/issuances", Some(start_body())).await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["step"], "started");
    let id = job["id"].as_str().unwrap().to_owned();

    // A second Start for the same person is refused while this one is open.
    let (status, refused) = api.call("POST", "/issuances", Some(start_body())).await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["error"]["code"]
        .as_str()
        .unwrap()
        .starts_with("JOB"));

    // A confirmation that differs is refused and nothing starts.
    let (status, refused) = api
        .call(
            "POST",
            &format!("/issuances/{id}/policy"),
            Some(json!({"policy": demo::POLICY_ID, "pin": PIN, "pin_confirmation": "135799"})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["error"]["code"]
        .as_str()
        .unwrap()
        .starts_with("PIN"));
    let (_, still) = api.call("GET", &format!("/jobs/{id}"), None).await;
    assert_eq!(still["step"], "started");

    let (status, job) = api
        .call(
            "POST",
            &format!("/issuances/{id}/policy"),
            Some(json!({"policy": demo::POLICY_ID, "pin": PIN, "pin_confirmation": PIN})),
        )
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["policy"], demo::POLICY_ID);
    let job = api.wait_printed(&id).await;
    assert_eq!(job["step"], "printed", "{job}");
    let (status, job) = api
        .call("POST", &format!("/issuances/{id}/continue"), None)
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["step"], "completed");
    // Continue twice is refused: the job is finished.
    let (status, _) = api
        .call("POST", &format!("/issuances/{id}/continue"), None)
        .await;
    assert_eq!(status, 409);

    let device = tessera_core::ids::DeviceId::new(job["device"].as_str().unwrap());
    let card = t.store.device(&device).await.unwrap();
    assert_eq!(card.state, DeviceState::Active);
    let certs = t.store.certificates_of_device(&device).await.unwrap();
    assert_eq!(certs.len(), 4);
    assert!(certs.iter().all(|c| c.status == CertificateStatus::Valid));
    let (_, person) = api.call("GET", "/users/jdoe", None).await;
    assert_eq!(person["cards"][0]["state"], "active", "{person}");

    // A second card, cancelled at Print Device with a reason: Pending, certificates on hold.
    let (_, job) = api.call("POST", "/issuances", Some(start_body())).await;
    let id = job["id"].as_str().unwrap().to_owned();
    api.call(
        "POST",
        &format!("/issuances/{id}/policy"),
        Some(json!({"policy": demo::POLICY_ID, "pin": PIN})),
    )
    .await;
    assert_eq!(api.wait_printed(&id).await["step"], "printed");
    let (status, job) = api
        .call(
            "POST",
            &format!("/issuances/{id}/cancel"),
            Some(json!({"reason": "the holder left before it was handed over"})),
        )
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["step"], "cancelled");
    let device = tessera_core::ids::DeviceId::new(job["device"].as_str().unwrap());
    assert_eq!(
        t.store.device(&device).await.unwrap().state,
        DeviceState::Pending
    );
    let audit = t.store.audit_events(None, 50).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.details.to_string().contains("the holder left")),
        "the reason reaches the audit log"
    );
}

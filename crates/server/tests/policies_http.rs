//! Device policies in the portal: an invalid policy is refused whole with a reason, a valid one is
//! saved (audited) and its subject template is what the next card's certificate carries.

mod support;

use support::portal::{csrf, Portal};
use tessera_core::model::{BuiltinRole, JobStep, Slot};
use tessera_core::ports::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_are_checked_saved_and_used() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;
    let (status, _, page) = portal.get("/policies").await;
    assert_eq!(status, 200);
    assert!(page.contains("PIV Standard"));
    let (_, _, page) = portal.get("/policies/piv-standard").await;
    assert!(page.contains("CN={{user.display_name}}"), "{page}");
    let token = csrf(&page);

    let form = |pin_min: &'static str, subject: &'static str| {
        vec![
            ("csrf", token.clone()),
            ("id", "piv-standard".to_owned()),
            ("name", "PIV Standard".to_owned()),
            ("pin_min", pin_min.to_owned()),
            ("pin_max", "8".to_owned()),
            ("pin_retries", "3".to_owned()),
            ("puk_retries", "3".to_owned()),
            ("card_validity_days", "1095".to_owned()),
            ("slot_9a", "on".to_owned()),
            ("alg_9a", "ecc_p256".to_owned()),
            ("subject_9a", subject.to_owned()),
            ("upn_9a", "on".to_owned()),
            ("uuid_9a", "on".to_owned()),
            ("validity_9a", "365".to_owned()),
        ]
    };
    let post = |f: Vec<(&'static str, String)>| {
        let portal = &portal;
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            portal.post("/policies/save", &pairs).await
        }
    };
    let (status, _, page) = post(form("4", "CN={{user.display_name}}")).await;
    assert_eq!(status, 400);
    assert!(
        page.contains("6 to 8 digits") && page.contains("Nothing was saved"),
        "{page}"
    );
    let (status, _, page) = post(form("6", "CN={{user.display_name")).await;
    assert_eq!(status, 400);
    assert!(page.contains("unclosed"), "{page}");

    let (status, url, page) = post(form(
        "6",
        "CN={{user.display_name}},OU=Badge Office,O=Example",
    ))
    .await;
    assert_eq!(
        (status.as_u16(), url.as_str()),
        (200, "/policies"),
        "{page}"
    );
    let policy = t
        .store
        .policies()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.id.as_str() == "piv-standard")
        .unwrap();
    assert_eq!(policy.slots.len(), 1, "only 9A was ticked");
    assert_eq!(policy.slots[0].profile.validity_days, 365);

    let job = support::issue(
        &t,
        &support::actor(BuiltinRole::Issuer),
        "piv-standard",
        "24681357",
    )
    .await;
    assert_eq!(job.step, JobStep::Printed, "{:?}", job.error);
    let certs = t
        .store
        .certificates_of_device(job.device.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].slot, Slot::PivAuthentication);
    assert!(
        certs[0].subject.contains("OU=Badge Office"),
        "{}",
        certs[0].subject
    );
    let events = t.store.audit_events(None, 300).await.unwrap();
    assert!(events.iter().any(|e| e.name == "PolicySaved"));
}

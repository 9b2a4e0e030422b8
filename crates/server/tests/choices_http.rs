//! The choices of the wizard through HTTP against the demo: the policy list proposes the
//! configured default (PIV Standard in the demo), then the default of the person's group once a
//! policy names it; each policy shows its description; the card read at Start is named on the
//! policy step; the User page shows policy and layout names, not their ids, and a Back link to the
//! Users list the operator came from.

mod support;

use tessera_core::model::BuiltinRole;
use tessera_core::ports::Store;
use tessera_server::{Options, Tessera};

use support::portal::{csrf, Portal};

/// The option of `policy` in the page's policy list, as rendered.
fn option<'a>(page: &'a str, policy: &str) -> &'a str {
    let start = page
        .find(&format!("<option value=\"{policy}\""))
        .unwrap_or_else(|| panic!("{policy} is offered: {page}"));
    let end = start + page[start..].find("</option>").unwrap();
    &page[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_step_proposes_the_groups_default_and_names_the_fed_card() {
    let dir = tempfile::tempdir().unwrap();
    let (t, password) = Tessera::open(&Options::new(dir.path().join("data")))
        .await
        .unwrap();
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(password.unwrap().expose()).await;

    // The demo's configured default: PIV Standard, although others come first in the list.
    let job = portal.start_wizard("jdoe", false).await;
    let (_, _, page) = portal.get(&format!("/issue/{job}")).await;
    assert!(option(&page, "piv-standard").contains("selected"), "{page}");
    assert!(!option(&page, "piv-p384").contains("selected"));
    assert_eq!(page.matches(" selected>").count(), 1, "one proposal");
    // Every policy's description, made from the policy, the proposed one shown.
    assert!(page.contains("<div class=\"policy-summary\" data-policy-summary=\"piv-standard\">"));
    assert!(page.contains("data-policy-summary=\"piv-rsa2048\" hidden"));
    assert!(page.contains("ECC P-256 keys in slots 9A PIV Authentication"));
    assert!(page.contains("RSA 2048 keys in slots"));
    assert!(page.contains("PIN 6 to 8 digits, 3 tries"));
    assert!(page.contains("/static/policy_choice.js"));

    // The card fed at Start, read before anything is written to it.
    let stored = t.store.job(&job.as_str().into()).await.unwrap();
    let fed = stored.fed_card.expect("the card was read at Start");
    assert!(!fed.serial.is_empty());
    assert!(
        page.contains(&format!(
            "<strong id=\"fed-card-serial\">{}</strong>",
            fed.serial
        )) && page.contains("in the encoder of printer Demo Card Printer"),
        "{page}"
    );
    // Cancel and Continue are at the head of the step, before the form.
    let head = page.find("id=\"continue\"").unwrap();
    assert!(head < page.find("id=\"policy-form\"").unwrap());
    assert!(page.contains("form=\"policy-form\" class=\"primary\" id=\"continue\""));

    // A policy made the default of Jane's group "staff" wins over the configured default.
    let admin = support::actor(BuiltinRole::Administrator);
    let mut rsa = t
        .store
        .policies()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.id.as_str() == "piv-rsa2048")
        .unwrap();
    rsa.default_for_groups = vec!["staff".into()];
    tessera_core::policies::save(&t.services, &admin, rsa)
        .await
        .unwrap();
    let (status, _, _) = portal
        .post(&format!("/issue/{job}/cancel"), &[("csrf", &csrf(&page))])
        .await;
    assert_eq!(status, 200);
    let job = portal.start_wizard("jdoe", false).await;
    let (_, _, page) = portal.get(&format!("/issue/{job}")).await;
    assert!(option(&page, "piv-rsa2048").contains("selected"), "{page}");
    assert!(!option(&page, "piv-standard").contains("selected"));
    assert!(page.contains("<div class=\"policy-summary\" data-policy-summary=\"piv-rsa2048\">"));

    // The policy edit page and the list show the group's default.
    let (_, _, edit) = portal.get("/policies/piv-rsa2048").await;
    assert!(edit.contains("name=\"default_for_groups\" id=\"default-for-groups\" value=\"staff\""));

    // The configured default is chosen in Settings, among the policies by name.
    let (_, _, settings) = portal.get("/settings").await;
    assert!(
        settings.contains("<option value=\"piv-standard\" selected>PIV Standard</option>"),
        "{settings}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_page_shows_names_not_ids_and_leads_back_to_the_search() {
    let dir = tempfile::tempdir().unwrap();
    let (t, password) = Tessera::open(&Options::new(dir.path().join("data")))
        .await
        .unwrap();
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(password.unwrap().expose()).await;
    let job = portal.issue("jdoe", false).await;
    let (_, _, page) = portal.get(&format!("/issue/{job}")).await;
    // Print Device: the buttons at the head and again at the foot of the long page.
    assert!(page.contains("id=\"continue\"") && page.contains("id=\"continue-bottom\""));
    assert!(page.find("id=\"continue\"").unwrap() < page.find("print-info").unwrap());
    assert!(page.find("id=\"continue-bottom\"").unwrap() > page.find("print-info").unwrap());
    let (_, url, page) = portal
        .post(&format!("/issue/{job}/continue"), &[("csrf", &csrf(&page))])
        .await;
    assert_eq!(url, "/users/jdoe");
    assert!(
        page.contains("policy <span class=\"policy-name\">PIV Standard</span>")
            && page.contains("layout Corporate Badge"),
        "{page}"
    );
    assert!(!page.contains("piv-standard") && !page.contains("corporate-badge"));
    // The reason lists are labelled.
    let device = &t.store.devices_of_user(&"jdoe".into()).await.unwrap()[0];
    assert!(page.contains(&format!(
        "<label class=\"reason-label\" for=\"suspend-reason-{}\">Reason</label>",
        device.id
    )));
    assert!(page.contains(&format!(
        "<select name=\"reason\" id=\"suspend-reason-{}\">",
        device.id
    )));
    assert!(page.contains(&format!("for=\"terminate-reason-{}\"", device.id)));

    // Back: to the Users list the operator came from, else the list; never elsewhere.
    assert!(page.contains("id=\"back-to-users\" href=\"/users\""));
    for (referer, back) in [
        (
            format!("{}/users?q=jane&amp;sort=name", portal.base),
            "/users?q=jane&amp;amp;sort=name",
        ),
        (format!("{}/users?q=jane", portal.base), "/users?q=jane"),
        ("https://evil.example/users?q=x".to_owned(), "/users?q=x"),
        (format!("{}/audit", portal.base), "/users"),
        ("https://evil.example/".to_owned(), "/users"),
    ] {
        let res = portal
            .http
            .get(format!("{}/users/jdoe", portal.base))
            .header("referer", referer.replace("&amp;", "&"))
            .send()
            .await
            .unwrap();
        let html = res.text().await.unwrap();
        let back = back.replace("&amp;amp;", "&amp;");
        assert!(
            html.contains(&format!("id=\"back-to-users\" href=\"{back}\"")),
            "{referer} -> {back}"
        );
    }
}

//! The initial PIN at the policy step through HTTP against a real server: each PIN the rules
//! refuse comes back as the same Configure Device step (422) with its own code next to the
//! field, the chosen policy still selected and no PIN in the page, and the job has not moved; a
//! good PIN then proceeds. The error page's Go back leads to the page the request came from,
//! and only when that page is on this server.

mod support;

use tessera_core::ids::JobId;
use tessera_core::model::JobStep;
use tessera_core::ports::Store;
use tessera_server::{Options, Tessera};

use support::portal::{csrf, Portal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pin_keeps_the_operator_on_the_form() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::new(dir.path().join("data"));
    let (t, password) = Tessera::open(&options).await.unwrap();
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(password.unwrap().expose()).await;
    // Disguised mode (the default): start_wizard also sends two different PINs (PIN0005).
    let job = portal.start_wizard("jdoe", true).await;
    let (_, _, page) = portal.get(&format!("/issue/{job}")).await;
    let token = csrf(&page);

    let cases = [
        ("111111", "111111", "PIN0004", "repeats one digit"),
        ("234567", "234567", "PIN0004", "run up or down"),
        ("123456", "123456", "PIN0003", "factory PIN 123456"),
        ("48291", "48291", "PIN0001", "6 to 8 digits"),
        ("48a916", "48a916", "PIN0002", "digits only"),
        ("", "", "PIN0001", "6 to 8 digits"),
        ("482916", "482961", "PIN0005", "two PINs differ"),
    ];
    for (pin, confirm, code, says) in cases {
        let (status, url, page) = portal
            .post(
                &format!("/issue/{job}/policy"),
                &[
                    ("csrf", token.as_str()),
                    ("policy", "piv-rsa2048"),
                    ("pin", pin),
                    ("pin_confirm", confirm),
                ],
            )
            .await;
        assert_eq!(status, 422, "{pin}: {page}");
        assert_eq!(url, format!("/issue/{job}/policy"));
        assert!(page.contains("<h2>Configure Device</h2>"), "{pin}: {page}");
        assert!(!page.contains("error-box"), "{pin}: not the error page");
        assert!(page.contains(code) && page.contains(says), "{pin}: {page}");
        let (field, error) = if code == "PIN0005" {
            ("id=\"pin-confirm\"", "id=\"pin-confirm-error\"")
        } else {
            ("id=\"pin\"", "id=\"pin-error\"")
        };
        // The sentence is in the field's own error element, and the field is marked invalid.
        let at = page.find(error).unwrap();
        assert!(page[at..at + 300].contains(code), "{pin}: {page}");
        let input = &page[page.find(field).unwrap()..];
        let input = &input[..input.find('>').unwrap()];
        assert!(input.contains("aria-invalid=\"true\""), "{pin}: {input}");
        assert!(
            page.contains("<option value=\"piv-rsa2048\" selected>"),
            "{pin}: the chosen policy stays chosen"
        );
        assert!(
            !page.contains("value=\"4829") && !page.contains("value=\"1111"),
            "{pin}: no PIN is sent back"
        );
        let stored = t.store.job(&JobId::new(job.as_str())).await.unwrap();
        assert_eq!(stored.step, JobStep::Started, "{pin}: the job did not move");
        assert!(stored.device.is_none() && stored.policy.is_none());
    }
    // The rules of the chosen policy are beside the field.
    let (_, _, page) = portal.get(&format!("/issue/{job}")).await;
    assert!(page.contains("id=\"pin-rules\"") && page.contains("not the factory PIN 123456"));

    // The error page's Go back: the form the request came from, never another site.
    let send = |referer: &'static str| {
        let (portal, token, job) = (&portal, token.clone(), job.clone());
        async move {
            let res = portal
                .http
                .post(format!("{}/issue/{job}/policy", portal.base))
                .header(
                    "referer",
                    referer
                        .replace("{base}", &portal.base)
                        .replace("{job}", &job),
                )
                .form(&[
                    ("csrf", token.as_str()),
                    ("policy", "no-such-policy"),
                    ("pin", "482916"),
                    ("pin_confirm", "482916"),
                ])
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let (status, page) = send("{base}/issue/{job}").await;
    assert_eq!(status, 404, "{page}");
    assert!(
        page.contains(&format!(
            "<a href=\"/issue/{job}\" id=\"error-back\">Go back</a>"
        )),
        "{page}"
    );
    assert!(!page.contains("javascript:"), "{page}");
    assert!(page.contains("name=\"viewport\""));
    let (_, page) = send("https://evil.example/issue/{job}").await;
    assert!(!page.contains("error-back"), "{page}");

    // A good PIN proceeds to the card.
    portal.personalise_and_print(&job, &token).await;
}

//! Layout management in the portal: a hostile or broken SVG is refused with a message naming the
//! problem and nothing is saved; a good one is previewed with a chosen user's data, saved with a
//! new version, and proposed first to the groups it is the default for.

mod support;

use support::portal::{csrf, Portal};
use tessera_core::ports::Store;

const GOOD: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="85.6mm" height="53.98mm" viewBox="0 0 856 539.8">
  <rect width="856" height="539.8" fill="#fff"/>
  <text x="40" y="120" font-size="60">{{user.display_name | upper}}</text>
  <rect x="40" y="300" width="500" height="120" data-barcode="code128" data-bind="user.employee_id"/>
</svg>"##;

fn with(body: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="85.6mm" height="53.98mm" viewBox="0 0 856 539.8">{body}</svg>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layouts_are_checked_previewed_and_versioned() {
    let (_dir, t) = support::open_with_password().await;
    let (t, password) = t;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;
    let (status, _, page) = portal.get("/layouts").await;
    assert_eq!(status, 200);
    assert!(page.contains("Corporate Badge"));
    let (_, _, page) = portal.get("/layouts/new").await;
    let token = csrf(&page);

    let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><svg xmlns="http://www.w3.org/2000/svg" width="85.6mm" height="53.98mm"><text>&lol2;</text></svg>"#;
    let hostile = [
        (with(r#"<script>alert(1)</script>"#), "script"),
        (
            with(r#"<image xlink:href="file:///etc/passwd" width="10" height="10"/>"#),
            "image",
        ),
        (
            with(r#"<image href="http://example.org/x.png" width="10" height="10"/>"#),
            "image",
        ),
        (billion_laughs.to_owned(), "DOCTYPE"),
        ("<svg><rect></svg>".to_owned(), "line"),
        (
            format!("{}{}", with(""), " ".repeat(3 * 1024 * 1024)),
            "at most 2097152 bytes",
        ),
        // Layouts that ask too much of the renderer: 4,000 nested groups used to abort the
        // server, a thousand octaves of noise to hold a worker for minutes.
        (
            with(&format!("{}{}", "<g>".repeat(4000), "</g>".repeat(4000))),
            "the layout nests elements 4001 deep; at most 24 levels are allowed",
        ),
        (
            with(&"<rect/>".repeat(100_000)),
            "the layout has 100001 elements; at most 10000 are allowed",
        ),
        (
            with(
                r#"<filter id="f"><feTurbulence numOctaves="1000"/></filter><rect width="9" height="9" filter="url(#f)"/>"#,
            ),
            "at most 8 octaves are allowed",
        ),
        (
            with(
                r#"<filter id="f"><feGaussianBlur stdDeviation="1e9"/></filter><rect width="9" height="9" filter="url(#f)"/>"#,
            ),
            "more than a million pixels at 300 dpi; at most 100 pixels are allowed",
        ),
    ];
    for (svg, expected) in &hostile {
        let (status, _, page) = portal
            .post(
                "/layouts/save",
                &[("csrf", &token), ("name", "Hostile"), ("front_svg", svg)],
            )
            .await;
        assert_eq!(status, 400, "{expected}: {page}");
        assert!(page.contains("Nothing was saved"), "{page}");
        let message = page[page.find("class=\"message\"").unwrap()..].to_lowercase();
        assert!(
            message.contains(&expected.to_lowercase()),
            "{expected}: {message}"
        );
    }
    assert!(!t
        .store
        .layouts()
        .await
        .unwrap()
        .iter()
        .any(|l| l.name == "Hostile"));
    // A file far past any limit never reaches the layout code: a clear page, not a bare 413.
    // The server answers before it has read the whole upload, so the client may see the
    // connection reset instead of the answer; a few tries see the answer.
    let huge = " ".repeat(50 * 1024 * 1024);
    let mut answered = None;
    for _ in 0..5 {
        let sent = portal
            .http
            .post(format!("{}/layouts/save", portal.base))
            .form(&[
                ("csrf", token.as_str()),
                ("name", "Huge"),
                ("front_svg", &huge),
            ])
            .send()
            .await;
        if let Ok(res) = sent {
            let headers = res.headers().clone();
            answered = Some((res.status(), headers, res.text().await.unwrap_or_default()));
            break;
        }
    }
    let (status, headers, page) = answered.expect("the server answers an oversized upload");
    assert_eq!(status, 413);
    for header in [
        "content-security-policy",
        "x-content-type-options",
        "referrer-policy",
    ] {
        assert!(headers.contains_key(header), "the 413 page has {header}");
    }
    assert!(page.contains("The upload is too large"), "{page}");

    // User text with markup characters and right-to-left script is rendered as text.
    let mut user = t.store.user(&"jdoe".into()).await.unwrap();
    user.display_name = "<b>Jane</b> & \"O'Doe\" שלום".into();
    t.store.put_user(&user).await.unwrap();
    let (status, _, page) = portal
        .post(
            "/layouts/preview",
            &[
                ("csrf", &token),
                ("name", "Badge B"),
                ("front_svg", GOOD),
                ("preview_user", "jdoe"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("layout-preview-front"), "{page}");
    // The front preview shows where the chip sits (tessera_print::CHIP_KEEP_OUT, and the ISO
    // contacts inside it) as an overlay of the page, over a landscape card in millimetres.
    assert!(
        page.contains(r#"id="chip-guide" viewBox="0 0 85.6 53.98""#),
        "{page}"
    );
    assert!(
        page.contains(r#"x="7.5" y="16.5" width="15" height="15""#),
        "{page}"
    );
    assert!(page.contains(r#"x="10.25" y="19.23""#), "{page}");
    assert!(page.contains("The outline is not printed."), "{page}");

    for expected_version in [1, 2] {
        let (status, url, page) = portal
            .post(
                "/layouts/save",
                &[
                    ("csrf", &token),
                    ("name", "Badge B"),
                    ("front_svg", GOOD),
                    ("allowed_groups", "security"),
                    ("default_for_groups", "security"),
                ],
            )
            .await;
        assert_eq!((status.as_u16(), url.as_str()), (200, "/layouts"), "{page}");
        let saved = t
            .store
            .layouts()
            .await
            .unwrap()
            .into_iter()
            .find(|l| l.id.as_str() == "badge-b")
            .unwrap();
        assert_eq!(saved.version, expected_version);
        assert_eq!(saved.allowed_groups, vec!["security".to_owned()]);
    }
    // Jane is in the security group: the wizard proposes Badge B first.
    let (_, _, page) = portal.get("/users/jdoe/issue").await;
    let first = page.find("<option value=\"badge-b\"").unwrap();
    assert!(first < page.find("<option value=\"corporate-badge\"").unwrap());
    let events = t.store.audit_events(None, 200).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.name == "LayoutSaved").count(), 2);
}

/// The layout at every limit at once is accepted, and while the server draws it, both through the
/// portal's preview and by the synchronous call that issuance makes from an async task, the
/// health check keeps answering. The runtime has a single async worker: a drawing that held it
/// would stop every answer. (How fast /healthz answers meanwhile is measured by `tessera bench`,
/// not asserted here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_server_answers_while_it_draws_the_worst_layout_it_accepts() {
    use std::time::{Duration, Instant};
    use tessera_core::ports::CardData;

    let (_dir, t) = support::open_with_password().await;
    let (t, password) = t;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;
    let (_, _, page) = portal.get("/layouts/new").await;
    let token = csrf(&page);
    let worst = tessera_print::layouts::at_the_limits();
    let back = worst.back_svg.clone().unwrap();
    let form = [
        ("csrf", token.as_str()),
        ("name", "At the limits"),
        ("front_svg", worst.front_svg.as_str()),
        ("back_svg", back.as_str()),
        ("preview_user", "jdoe"),
    ];
    let (status, url, page) = portal.post("/layouts/save", &form).await;
    assert_eq!((status.as_u16(), url.as_str()), (200, "/layouts"), "{page}");

    let preview = {
        let (http, base) = (portal.http.clone(), portal.base.clone());
        let form: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        tokio::spawn(async move {
            let res = http
                .post(format!("{base}/layouts/preview"))
                .form(&form)
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap())
        })
    };
    let issuance_like = {
        let svc = t.services.clone();
        tokio::spawn(async move { svc.renderer.render(&worst, &CardData::default()) })
    };
    let health = reqwest::Client::new();
    let mut answers = Vec::new();
    while !(preview.is_finished() && issuance_like.is_finished()) {
        let asked = Instant::now();
        let res = health
            .get(format!("{}/healthz", portal.base))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("the health check answers while a card is drawn");
        assert_eq!(res.text().await.unwrap(), "ok");
        answers.push(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, page) = preview.await.unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("layout-preview-back"), "{page}");
    issuance_like
        .await
        .unwrap()
        .expect("the worst accepted layout is drawn");
    assert!(answers.len() >= 3, "{answers:?}");
    let slowest = answers.iter().max().unwrap();
    assert!(
        *slowest < Duration::from_secs(1),
        "/healthz took {slowest:?} while a card was drawn"
    );
}

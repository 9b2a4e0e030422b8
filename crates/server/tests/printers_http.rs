//! The Printers page: live state, adding an IPP printer by URI (a bad URI is refused), and a test
//! page on a printer that does not answer ends in a clear error, not a hang.

mod support;

use support::portal::{csrf, Portal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printers_are_listed_added_and_tested() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;
    let (status, _, page) = portal.get("/printers").await;
    assert_eq!(status, 200);
    assert!(page.contains("Demo Card Printer") && page.contains("Demo Card Printer Encoder"));
    let token = csrf(&page);

    let (status, _, page) = portal
        .post(
            "/printers/add",
            &[("csrf", &token), ("name", "Bad"), ("uri", "ftp://x/y")],
        )
        .await;
    assert_eq!(status, 400, "{page}");

    // Nothing listens on port 9 of the loopback: the printer is "not reachable".
    let (status, url, page) = portal
        .post(
            "/printers/add",
            &[
                ("csrf", &token),
                ("name", "Badge Printer 2"),
                ("uri", "ipp://127.0.0.1:9/ipp/print"),
                ("encoder", "Virtual PCD 00 00"),
            ],
        )
        .await;
    assert_eq!(
        (status.as_u16(), url.as_str()),
        (200, "/printers"),
        "{page}"
    );
    assert!(page.contains("Printer Badge Printer 2 added"), "{page}");
    assert!(
        page.contains("Not reachable at ipp://127.0.0.1:9/ipp/print"),
        "{page}"
    );

    let (status, _, page) = portal
        .post(
            "/printers/test",
            &[("csrf", &token), ("name", "Badge Printer 2")],
        )
        .await;
    assert_eq!(status, 502, "{page}");
    assert!(page.contains("Not reachable"), "{page}");
    assert!(
        page.contains("Operation"),
        "the error carries an operation id"
    );

    // The simulated printer prints its test card.
    let (status, _, page) = portal
        .post(
            "/printers/test",
            &[("csrf", &token), ("name", "Demo Card Printer")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("test card was printed"), "{page}");
}

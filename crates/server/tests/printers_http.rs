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

/// A spool folder is added by `spool:/folder`; a missing one is refused, an existing one is Ready
/// and receives the test card as PDF and PNGs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_folders_are_added_and_receive_the_test_card() {
    let (dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;
    let (_, _, page) = portal.get("/printers").await;
    assert!(page.contains("spool:/"), "the form explains spool folders");
    let token = csrf(&page);

    let missing = dir.path().join("no-such-folder");
    let (status, _, page) = portal
        .post(
            "/printers/add",
            &[
                ("csrf", &token),
                ("name", "Hot folder"),
                ("uri", &format!("spool:{}", missing.display())),
            ],
        )
        .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("does not exist"), "{page}");

    let folder = dir.path().join("cards-out");
    std::fs::create_dir(&folder).unwrap();
    let (status, url, page) = portal
        .post(
            "/printers/add",
            &[
                ("csrf", &token),
                ("name", "Hot folder"),
                ("uri", &format!("spool:{}", folder.display())),
                ("encoder", "Virtual PCD 00 01"),
            ],
        )
        .await;
    assert_eq!(
        (status.as_u16(), url.as_str()),
        (200, "/printers"),
        "{page}"
    );
    assert!(page.contains("Printer Hot folder added"), "{page}");
    let row = &page[page.find("data-printer=\"Hot folder\"").expect("listed")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("spool"), "{row}");
    assert!(row.contains(&folder.display().to_string()), "{row}");
    assert!(row.contains("Ready"), "{row}");

    let (status, _, page) = portal
        .post(
            "/printers/test",
            &[("csrf", &token), ("name", "Hot folder")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("test card was printed"), "{page}");
    let mut files: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files[0].starts_with("tessera-test-card-") && files[0].ends_with("-back.png"));
    assert!(files[1].ends_with("-front.png") && files[2].ends_with(".pdf"));
    let pdf = std::fs::read(folder.join(&files[2])).unwrap();
    assert!(pdf.starts_with(b"%PDF"));

    // The folder goes away: the page says so, and the test card fails with that sentence.
    std::fs::remove_dir_all(&folder).unwrap();
    let (_, _, page) = portal.get("/printers").await;
    assert!(page.contains("does not exist: create it"), "{page}");
    let (status, _, page) = portal
        .post(
            "/printers/test",
            &[("csrf", &token), ("name", "Hot folder")],
        )
        .await;
    assert_eq!(status, 502, "{page}");
    assert!(page.contains("does not exist"), "{page}");
}

/// An ipps:// printer is added with the CA file its certificate chains to; a CA file that cannot
/// be read is refused before anything is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipps_printers_take_a_ca_file() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;
    let (_, _, page) = portal.get("/printers").await;
    assert!(
        page.contains("name=\"ca_file\""),
        "the form has a CA file field"
    );
    let token = csrf(&page);

    let (status, _, page) = portal
        .post(
            "/printers/add",
            &[
                ("csrf", &token),
                ("name", "Secure"),
                ("uri", "ipps://127.0.0.1:9/ipp/print"),
                ("ca_file", "/nonexistent/printer-ca.pem"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("cannot be read"), "{page}");

    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/../print/tests/tls/ca.pem");
    let (status, url, page) = portal
        .post(
            "/printers/add",
            &[
                ("csrf", &token),
                ("name", "Secure"),
                ("uri", "ipps://127.0.0.1:9/ipp/print"),
                ("ca_file", ca),
            ],
        )
        .await;
    assert_eq!(
        (status.as_u16(), url.as_str()),
        (200, "/printers"),
        "{page}"
    );
    assert!(page.contains("Printer Secure added"), "{page}");
    assert!(
        page.contains("Not reachable at ipps://127.0.0.1:9/ipp/print"),
        "{page}"
    );
    let station =
        tessera_server::printers::station_record(&t, &tessera_server::printers::station_id())
            .await
            .unwrap();
    let secure = station
        .printers
        .iter()
        .find(|p| p.name == "Secure")
        .unwrap();
    assert_eq!(
        secure.kind,
        tessera_core::model::PrinterKind::Ipp {
            uri: "ipps://127.0.0.1:9/ipp/print".into(),
            ca_file: Some(ca.into()),
        }
    );
}

//! The PKI side of issue 17 over HTTP: the `.p7c` and the content signing certificate relying
//! parties fetch (checked with openssl), the certificatePolicies, pivInterim and caIssuers of an
//! issued card's certificates, the PKI page with its content signer and the renewal (audited, and
//! refused when another renewal came first), and the settings' issuer type refused with SET0001
//! when a federal code lacks digits.

mod support;

use support::pki::openssl;
use support::portal::{csrf, Portal};
use tessera_core::model::BuiltinRole;
use tessera_core::ports::{CertificateAuthority, Store};
use tessera_server::{demo, router, Options, Tessera};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relying_parties_get_the_p7c_and_the_content_signer() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut options = Options::new(dir.join("data"));
    options.public_url = Some(base.clone());
    let (t, _) = Tessera::open(&options).await.unwrap();
    let app = router(t.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let res = reqwest::get(format!("{base}/pki/issuing.p7c"))
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "application/pkcs7-mime");
    std::fs::write(dir.join("issuing.p7c"), res.bytes().await.unwrap()).unwrap();
    let printed = openssl(
        dir,
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            "issuing.p7c",
            "-print_certs",
        ],
    );
    assert_eq!(printed.matches("BEGIN CERTIFICATE").count(), 1, "{printed}");
    assert!(printed.contains(t.ca.issuing_pem().trim()), "{printed}");

    let signer = reqwest::get(format!("{base}/pki/content-signer.crt"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        signer.to_vec(),
        t.ca.content_signer_certificate().unwrap().der
    );

    // A card's certificates: policies under the organisation's arc, pivInterim in 9A and 9E,
    // caIssuers at the .p7c.
    let officer = support::actor(BuiltinRole::SecurityOfficer);
    let job = support::issue(&t, &officer, demo::POLICY_ID, "31415926").await;
    let certificates = t
        .store
        .certificates_of_device(&job.device.unwrap())
        .await
        .unwrap();
    assert!(!certificates.is_empty());
    for c in &certificates {
        let name = format!("{}.pem", c.slot.code());
        std::fs::write(dir.join(&name), tessera_server::headless::pem(&c.der)).unwrap();
        let text = openssl(dir, &["x509", "-noout", "-text", "-in", &name]);
        let policy = format!("Policy: {}.1.", t.ca.policy_arc());
        assert!(text.contains(&policy), "{name}: {text}");
        assert!(
            text.contains(&format!("CA Issuers - URI:{base}/pki/issuing.p7c")),
            "{text}"
        );
        let interim = matches!(c.slot.code(), "9a" | "9e");
        assert_eq!(
            text.contains("2.16.840.1.101.3.6.9.1"),
            interim,
            "{name}: {text}"
        );
        assert!(text.contains("URI:urn:uuid:"), "{name}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pki_page_renews_the_content_signer_once() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;
    let before = t.ca.content_signer_certificate().unwrap();
    let (status, _, page) = portal.get("/ca").await;
    assert_eq!(status, 200);
    assert!(page.contains(&before.serial), "{page}");
    assert!(page.contains("PIV Content Signer"), "{page}");
    assert!(page.contains(t.ca.policy_arc()), "{page}");
    let token = csrf(&page);

    let (status, url, page) = portal
        .post(
            "/ca/content-signer/renew",
            &[("csrf", &token), ("serial", &before.serial)],
        )
        .await;
    assert_eq!((status.as_u16(), url.as_str()), (200, "/ca"), "{page}");
    let after = t.ca.content_signer_certificate().unwrap();
    assert_ne!(after.serial, before.serial);
    assert!(
        page.contains(&after.serial) && page.contains("renewed"),
        "{page}"
    );
    let events = t.store.audit_events(None, 1000).await.unwrap();
    let renewed = events.iter().find(|e| e.code == 4002).expect("audited");
    assert!(renewed.details.to_string().contains(&after.serial));

    // A second click on the old page: another renewal came first, nothing is made.
    let (status, _, page) = portal
        .post(
            "/ca/content-signer/renew",
            &[("csrf", &token), ("serial", &before.serial)],
        )
        .await;
    assert_eq!(status.as_u16(), 409, "{page}");
    assert!(page.contains("DB0002"), "{page}");
    assert_eq!(t.ca.content_signer_certificate().unwrap(), after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federal_issuer_needs_its_codes() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;
    let (_, _, page) = portal.get("/settings").await;
    let token = csrf(&page);
    let form = |agency: &'static str| {
        vec![
            ("csrf", token.clone()),
            ("pin_mode", "disguised".to_owned()),
            ("password_min_length", "12".to_owned()),
            ("issuer_type", "federal".to_owned()),
            ("agency_code", agency.to_owned()),
            ("system_code", "0001".to_owned()),
            ("credential_number", "000042".to_owned()),
        ]
    };
    let post = |f: Vec<(&'static str, String)>| {
        let portal = &portal;
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            portal.post("/settings", &pairs).await
        }
    };
    let (status, _, page) = post(form("12")).await;
    assert_eq!(status.as_u16(), 400, "{page}");
    assert!(
        page.contains("SET0001") && page.contains("the agency code must be 4 digits"),
        "{page}"
    );
    let (status, _, page) = post(form("1234")).await;
    assert_eq!(status.as_u16(), 200, "{page}");
    let settings = t.store.settings().await.unwrap();
    assert_eq!(
        settings.fips201.issuer,
        tessera_core::fips201::IssuerType::Federal {
            agency_code: "1234".into(),
            system_code: "0001".into(),
            credential_number: "000042".into(),
        }
    );
    let (_, _, page) = portal.get("/settings").await;
    assert!(page.contains("value=\"1234\""), "{page}");
}

//! Relying parties' view over HTTP: `openssl crl` on the CRL Tessera serves shows the right
//! entries after hold, release and revoke, and `openssl ocsp` against Tessera's responder answers
//! good, revoked and unknown.

mod support;

use std::path::Path;
use support::pki::{crl_text as fetch_crl, openssl};
use tessera_core::devices;
use tessera_core::issuance;
use tessera_core::model::BuiltinRole;
use tessera_core::ports::Store;
use tessera_core::Reason;
use tessera_server::{demo, router, Options, Tessera};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crl_and_ocsp_follow_the_card() {
    // The server's public URL goes into the certificates, so it is known before the CA opens.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut options = Options::new(dir.join("data"));
    options.public_url = Some(base.clone());
    let (t, _) = Tessera::open(&options).await.unwrap();
    let app = router(t.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let officer = support::actor(BuiltinRole::SecurityOfficer);
    let job = support::issue(&t, &officer, demo::POLICY_ID, "31415926").await;
    issuance::finish(&t.services, &officer, &job.id)
        .await
        .unwrap();
    let device = job.device.unwrap();
    let certs = t.store.certificates_of_device(&device).await.unwrap();
    std::fs::write(dir.join("chain.pem"), t.ca.chain_pem()).unwrap();
    std::fs::write(dir.join("issuing.pem"), t.ca.issuing_pem()).unwrap();
    std::fs::write(
        dir.join("leaf.pem"),
        tessera_server::headless::pem(&certs[0].der),
    )
    .unwrap();
    let serial = certs[0].serial.to_uppercase();

    let text = fetch_crl(&base, dir).await;
    assert!(
        text.contains("verify OK") && text.contains("No Revoked Certificates"),
        "{text}"
    );

    let ocsp = |dir: &Path| {
        openssl(
            dir,
            &[
                "ocsp",
                "-url",
                &format!("{base}/pki/ocsp"),
                "-issuer",
                "issuing.pem",
                "-cert",
                "leaf.pem",
                "-CAfile",
                "chain.pem",
            ],
        )
    };
    let text = tokio::task::block_in_place(|| ocsp(dir));
    assert!(
        text.contains("leaf.pem: good") && text.contains("Response verify OK"),
        "{text}"
    );

    devices::suspend(&t.services, &officer, &device, Reason::Forgotten)
        .await
        .unwrap();
    let text = fetch_crl(&base, dir).await;
    assert_eq!(text.matches("Certificate Hold").count(), 4, "{text}");
    assert!(text.contains(&serial), "{text}");
    let text = tokio::task::block_in_place(|| ocsp(dir));
    assert!(
        text.contains("leaf.pem: revoked") && text.contains("certificateHold"),
        "{text}"
    );

    devices::resume(&t.services, &officer, &device)
        .await
        .unwrap();
    let text = fetch_crl(&base, dir).await;
    assert!(text.contains("No Revoked Certificates"), "released: {text}");

    devices::terminate(&t.services, &officer, &device, Reason::Stolen)
        .await
        .unwrap();
    let text = fetch_crl(&base, dir).await;
    assert_eq!(text.matches("Key Compromise").count(), 4, "{text}");
    let text = tokio::task::block_in_place(|| ocsp(dir));
    assert!(
        text.contains("leaf.pem: revoked") && text.contains("keyCompromise"),
        "{text}"
    );

    // A certificate this CA never issued is unknown.
    let (other_tmp, other) = support::open().await;
    let other_job = support::issue(&other, &officer, demo::POLICY_ID, "27182818").await;
    let other_cert = &other
        .store
        .certificates_of_device(other_job.device.as_ref().unwrap())
        .await
        .unwrap()[0];
    std::fs::write(
        dir.join("leaf.pem"),
        tessera_server::headless::pem(&other_cert.der),
    )
    .unwrap();
    drop(other_tmp);
    let text = tokio::task::block_in_place(|| ocsp(dir));
    assert!(text.contains("leaf.pem: unknown"), "{text}");
}

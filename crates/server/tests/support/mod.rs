//! What the server's integration tests share: a fresh Tessera in a temporary folder, one issuance
//! through the use cases, and `openssl verify` of a certificate against the CA.

#![allow(dead_code)] // each test binary uses a part of it

pub mod pki;
pub mod portal;

use std::path::Path;
use tessera_core::ids::*;
use tessera_core::issuance::{self, Actor, StartRequest};
use tessera_core::model::{BuiltinRole, IssuanceJob};
use tessera_core::Pin;
use tessera_server::demo;
use tessera_server::{Options, Tessera};

pub async fn open() -> (tempfile::TempDir, Tessera) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        // The demo printer's virtual cards attest their keys under this test root.
        trust_virtual_card_attestation: true,
        ..Options::new(dir.path().join("data"))
    };
    let (t, _) = Tessera::open(&options).await.unwrap();
    (dir, t)
}

pub fn actor(role: BuiltinRole) -> Actor {
    Actor::builtin(role.id(), role)
}

/// Start, choose `policy` with `pin`, and run the personalisation and print on the demo printer.
pub async fn issue(t: &Tessera, actor: &Actor, policy: &str, pin: &str) -> IssuanceJob {
    let demo = (
        StationId::new(demo::STATION_ID),
        demo::PRINTER,
        demo::ENCODER,
    );
    issue_at(t, actor, &demo, policy, pin).await
}

/// Like [`issue`], at a station's printer and reader: `(station, printer, reader)`.
pub async fn issue_at(
    t: &Tessera,
    actor: &Actor,
    (station, printer, reader): &(StationId, &str, &str),
    policy: &str,
    pin: &str,
) -> IssuanceJob {
    let svc = &t.services;
    // One issuance at a time per person: the one an earlier call left at Print Device is
    // cancelled first (its card stays Pending, as before this rule).
    for open in svc.store.open_jobs().await.unwrap() {
        if open.user.as_str() == "jdoe" && !tessera_core::jobs::is_running(open.step) {
            let admin = self::actor(BuiltinRole::Administrator);
            issuance::cancel(svc, &admin, &open.id, "the test issues again")
                .await
                .unwrap();
        }
    }
    let job = issuance::start(
        svc,
        actor,
        StartRequest {
            user: UserId::new("jdoe"),
            station: station.clone(),
            printer: (*printer).into(),
            reader: (*reader).into(),
            layout: LayoutId::new("corporate-badge"),
            temporary_for: None,
        },
    )
    .await
    .unwrap();
    let (_, running) = issuance::choose_policy(
        &t.runner,
        actor,
        &job.id,
        &PolicyId::new(policy),
        Some(Pin::new(pin)),
    )
    .await
    .unwrap();
    running.await.unwrap()
}

/// Waits until a remote station is connected and has reported its printers.
pub async fn wait_connected(t: &Tessera, station: &StationId) {
    for _ in 0..200 {
        if let Some(link) = t.hub.remote(station) {
            if link.is_connected() && !link.inventory().printers.is_empty() {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the station did not connect");
}

/// `openssl verify -x509_strict` of a DER certificate against the Tessera CA.
pub fn openssl_verify(dir: &Path, t: &Tessera, der: &[u8]) {
    std::fs::write(dir.join("root.pem"), t.ca.root_pem()).unwrap();
    std::fs::write(dir.join("issuing.pem"), t.ca.issuing_pem()).unwrap();
    std::fs::write(dir.join("leaf.pem"), tessera_server::headless::pem(der)).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(dir.join("root.pem"))
        .arg("-untrusted")
        .arg(dir.join("issuing.pem"))
        .arg(dir.join("leaf.pem"))
        .output()
        .expect("openssl is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(": OK"),
        "openssl verify: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Like [`open`], also returning the one-time admin password.
pub async fn open_with_password() -> (tempfile::TempDir, (Tessera, String)) {
    let dir = tempfile::tempdir().unwrap();
    let (t, password) = Tessera::open(&Options::new(dir.path().join("data")))
        .await
        .unwrap();
    (dir, (t, password.unwrap().expose().to_owned()))
}

//! Certificates follow the card: on hold while Pending or Suspended, valid while Active, revoked
//! with the right CRL reason when the card is terminated; refused transitions change nothing.

mod support;

use tessera_core::devices;
use tessera_core::ids::*;
use tessera_core::issuance;
use tessera_core::model::{BuiltinRole, CertificateStatus, JobStep};
use tessera_core::ports::Store;
use tessera_core::{DeviceState, ErrorCode, Reason};
use tessera_server::demo;
use tessera_server::Tessera;

async fn statuses(t: &Tessera, d: &DeviceId) -> Vec<(CertificateStatus, Option<String>)> {
    t.store
        .certificates_of_device(d)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.status, c.revocation_reason))
        .collect()
}

#[tokio::test]
async fn certificates_follow_the_card() {
    let (_dir, t) = support::open().await;
    let svc = &t.services;
    let officer = support::actor(BuiltinRole::SecurityOfficer);
    let issuer = support::actor(BuiltinRole::Issuer);
    let job = support::issue(&t, &issuer, demo::POLICY_ID, "86420975").await;
    assert_eq!(job.step, JobStep::Printed);
    let d = job.device.clone().unwrap();
    let on_hold = (
        CertificateStatus::OnHold,
        Some("certificateHold".to_owned()),
    );
    assert!(
        statuses(&t, &d).await.iter().all(|s| *s == on_hold),
        "Pending: on hold"
    );

    issuance::finish(svc, &issuer, &job.id).await.unwrap();
    let valid = (CertificateStatus::Valid, None);
    assert!(
        statuses(&t, &d).await.iter().all(|s| *s == valid),
        "Active: valid"
    );

    // An issuer may not suspend: managing devices is a security officer's permission.
    let err = devices::suspend(svc, &issuer, &d, Reason::Forgotten)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);

    let card = devices::suspend(svc, &officer, &d, Reason::Forgotten)
        .await
        .unwrap();
    assert_eq!(
        (card.state, card.reason),
        (DeviceState::Suspended, Reason::Forgotten)
    );
    assert!(
        statuses(&t, &d).await.iter().all(|s| *s == on_hold),
        "Suspended: on hold"
    );

    devices::resume(svc, &officer, &d).await.unwrap();
    assert!(
        statuses(&t, &d).await.iter().all(|s| *s == valid),
        "resumed: valid"
    );

    let card = devices::terminate(svc, &officer, &d, Reason::Stolen)
        .await
        .unwrap();
    assert_eq!(card.state, DeviceState::Terminated);
    let revoked = (CertificateStatus::Revoked, Some("keyCompromise".to_owned()));
    assert!(
        statuses(&t, &d).await.iter().all(|s| *s == revoked),
        "stolen: keyCompromise"
    );

    // A terminated card stays terminated and its certificates stay revoked.
    let err = devices::resume(svc, &officer, &d).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Lifecycle);
    assert!(err.to_string().contains("cannot be resumed"), "{err}");
    assert!(statuses(&t, &d).await.iter().all(|s| *s == revoked));

    let names: Vec<String> = t
        .store
        .audit_events(None, 500)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(
        names
            .iter()
            .filter(|n| *n == "CertificateStatusChanged")
            .count()
            >= 16
    );
    assert!(names.iter().any(|n| n == "DeviceStateChanged"));
}

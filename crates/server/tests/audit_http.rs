//! The Audit page: the log newest first, the check of its hash chain (audited in turn), a change
//! made to the database behind Tessera's back found at the event it touched, and roles without
//! the permission kept out.

mod support;

use support::portal::{csrf, Portal};
use tessera_core::audit;
use tessera_core::audit_log;
use tessera_core::model::BuiltinRole;
use tessera_core::ports::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_shown_and_its_chain_checked() {
    let (dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;

    let (status, _, page) = portal.get("/audit").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<a href=\"/audit\">Audit</a>"),
        "the menu offers it"
    );
    assert!(page.contains("OperatorSignInFailed") && page.contains("OperatorSignedIn"));

    let (status, _, checked) = portal.post("/audit/check", &[("csrf", &csrf(&page))]).await;
    assert_eq!(status, 200, "{checked}");
    assert!(checked.contains("id=\"audit-check\""), "{checked}");
    assert!(
        checked.contains("events is intact. Newest hash: "),
        "{checked}"
    );
    let newest = &t.store.audit_events(None, 1).await.unwrap()[0];
    assert_eq!(newest.code, audit::AUDIT_CHAIN_CHECKED.code);
    assert_eq!(newest.details["intact"], true);
    assert_eq!(newest.operator.as_deref(), Some("admin"));

    // Someone with the database file rewrites who signed in at event 2.
    sqlx::any::install_default_drivers();
    let db = format!("sqlite://{}", dir.path().join("data/tessera.db").display());
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    sqlx::query("UPDATE audit SET operator = 'mallory' WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (_, _, page) = portal.get("/audit").await;
    let (_, _, checked) = portal.post("/audit/check", &[("csrf", &csrf(&page))]).await;
    assert!(
        checked.contains("The chain is broken at event 2: its content does not match its hash"),
        "{checked}"
    );
    let newest = &t.store.audit_events(None, 1).await.unwrap()[0];
    assert_eq!(newest.details["intact"], false);
    assert_eq!(newest.details["broken_at"], 2);
}

#[tokio::test]
async fn only_roles_with_the_permission_read_the_audit_log() {
    let (_dir, t) = support::open().await;
    for role in [BuiltinRole::Issuer] {
        let e = audit_log::page(&t.services, &support::actor(role), None, 10)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("view the audit log"), "{e}");
        assert!(audit_log::check_chain(&t.services, &support::actor(role))
            .await
            .is_err());
    }
    for role in [
        BuiltinRole::Auditor,
        BuiltinRole::SecurityOfficer,
        BuiltinRole::Administrator,
    ] {
        let events = audit_log::page(&t.services, &support::actor(role), None, 10)
            .await
            .unwrap();
        assert!(!events.is_empty());
        let report = audit_log::check_chain(&t.services, &support::actor(role))
            .await
            .unwrap();
        assert!(report.broken.is_none(), "{report:?}");
    }
}

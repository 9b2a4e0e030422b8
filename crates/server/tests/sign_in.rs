//! Password guessing at the sign-in form: five failures in a row lock the operator name, the
//! right password is then refused too, unknown names lock the same way, and the audit log holds
//! each failure and one lock event, not one event per attempt while locked.

mod support;

use support::portal::{csrf, Portal};
use tessera_core::audit;
use tessera_core::ports::Store;

async fn try_sign_in(portal: &Portal, operator: &str, password: &str) -> (u16, String, String) {
    let (_, _, page) = portal.get("/login").await;
    let (status, url, body) = portal
        .post(
            "/login",
            &[
                ("csrf", &csrf(&page)),
                ("operator", operator),
                ("password", password),
            ],
        )
        .await;
    (status.as_u16(), url, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_passwords_lock_the_operator_out() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;

    for _ in 0..4 {
        let (status, _, body) = try_sign_in(&portal, "admin", "guess").await;
        assert_eq!(status, 401);
        assert!(
            body.contains("Unknown operator, wrong password or wrong code."),
            "{body}"
        );
    }
    let (status, _, body) = try_sign_in(&portal, "admin", "guess").await;
    assert_eq!(status, 429);
    assert!(
        body.contains("5 times in a row: sign-in for this operator is locked for 1 minute."),
        "{body}"
    );

    // Locked: the right password is not even checked.
    let (status, url, body) = try_sign_in(&portal, "admin", &password).await;
    assert_eq!(status, 429);
    assert_eq!(url, "/login");
    assert!(
        body.contains("Too many failed sign-ins for this operator: try again in"),
        "{body}"
    );
    let (_, url, _) = portal.get("/users").await;
    assert_eq!(url, "/login", "no session was opened");

    // A name nobody has locks the same way, so the lock does not tell which names exist.
    for _ in 0..4 {
        assert_eq!(try_sign_in(&portal, "nobody", "guess").await.0, 401);
    }
    assert_eq!(try_sign_in(&portal, "nobody", "guess").await.0, 429);

    let events = t.store.audit_events(None, 100).await.unwrap();
    let count = |code: u32, operator: &str| {
        events
            .iter()
            .filter(|e| e.code == code && e.details["operator"] == operator)
            .count()
    };
    assert_eq!(count(audit::OPERATOR_SIGN_IN_FAILED.code, "admin"), 5);
    assert_eq!(count(audit::OPERATOR_LOCKED_OUT.code, "admin"), 1);
    assert_eq!(count(audit::OPERATOR_LOCKED_OUT.code, "nobody"), 1);
    let lock = events
        .iter()
        .find(|e| e.code == audit::OPERATOR_LOCKED_OUT.code)
        .unwrap();
    assert_eq!(lock.details["seconds"], 60);
    assert!(!events
        .iter()
        .any(|e| e.details.to_string().contains(&password)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_sign_in_clears_the_failures() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;
    for _ in 0..4 {
        assert_eq!(try_sign_in(&portal, "admin", "guess").await.0, 401);
    }
    let (status, url, body) = try_sign_in(&portal, "admin", &password).await;
    assert_eq!((status, url.as_str()), (200, "/users"), "{body}");
    // The count starts again: four more failures, from another browser, do not lock.
    let other = Portal {
        base: portal.base.clone(),
        http: reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap(),
    };
    for _ in 0..4 {
        assert_eq!(try_sign_in(&other, "admin", "guess").await.0, 401);
    }
}

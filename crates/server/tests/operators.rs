//! Operators through the portal: an administrator creates a Help Desk operator scoped to one
//! group, who must change the one-time password, enrol an authenticator (its codes checked
//! against oathtool when it is installed), sign in with password and code, and sees only the
//! users in scope. The guards that keep an installation manageable hold.

mod support;

use support::portal::{csrf, Portal};
use tessera_core::audit;
use tessera_core::ids::{OperatorId, RoleId};
use tessera_core::model::{BuiltinRole, Scope};
use tessera_core::operators::{self, OperatorForm};
use tessera_core::ports::Store;
use tessera_core::services::Actor;
use tessera_server::demo;

/// A second browser on the same server.
fn browser(portal: &Portal) -> Portal {
    Portal {
        base: portal.base.clone(),
        http: reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap(),
    }
}

async fn sign_in(p: &Portal, operator: &str, password: &str, code: &str) -> (u16, String, String) {
    let (_, _, page) = p.get("/login").await;
    let (status, url, body) = p
        .post(
            "/login",
            &[
                ("csrf", &csrf(&page)),
                ("operator", operator),
                ("password", password),
                ("code", code),
            ],
        )
        .await;
    (status.as_u16(), url, body)
}

/// The text of the first `<code>` after `marker`.
fn code_after(page: &str, marker: &str) -> String {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {page}"));
    let rest = &page[at..];
    let open = rest.find("<code").unwrap();
    let start = open + rest[open..].find('>').unwrap() + 1;
    rest[start..start + rest[start..].find("</code>").unwrap()].to_owned()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The TOTP code at `at` for a base32 secret: from oathtool (an independent implementation) when
/// it is installed — required when TESSERA_REQUIRE_OATHTOOL is set, as scripts/test.sh does —
/// otherwise from Tessera's own RFC 6238 code.
fn totp_code(secret_base32: &str, at: i64) -> String {
    let out = std::process::Command::new("oathtool")
        .args(["--totp", "-b", "--now", &format!("@{at}"), secret_base32])
        .output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8(out.stdout).unwrap().trim().into(),
        _ => {
            assert!(
                std::env::var_os("TESSERA_REQUIRE_OATHTOOL").is_none(),
                "oathtool is required but did not run"
            );
            let secret = base32_decode(secret_base32);
            tessera_core::totp::code_at(&secret, at)
        }
    }
}

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in text.chars() {
        buffer = (buffer << 5) | ALPHABET.find(c).unwrap() as u32;
        bits += 5;
        if bits >= 8 {
            out.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_help_desk_operator_with_totp_sees_only_users_in_scope() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let admin = Portal::start(t.clone()).await;
    admin.sign_in(&password).await;

    // The administrator creates Hana, Help Desk, for the Security group; she must use TOTP.
    let (_, _, page) = admin.get("/operators").await;
    assert!(page.contains("Help Desk"), "{page}");
    let (status, _, page) = admin
        .post(
            "/operators/create",
            &[
                ("csrf", &csrf(&page)),
                ("id", "hana"),
                ("display_name", "Hana Helpdesk"),
                ("role", "help_desk"),
                ("scope", "security"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let one_time = code_after(&page, "id=\"one-time-password\"");
    assert_eq!(one_time.len(), 19);
    let (_, _, page) = admin.get("/settings").await;
    let (status, _, _) = admin
        .post(
            "/settings",
            &[
                ("csrf", &csrf(&page)),
                ("card_printing", "on"),
                ("pin_mode", "disguised"),
                ("password_min_length", "12"),
                ("totp_role", "help_desk"),
            ],
        )
        .await;
    assert_eq!(status, 200);

    // First sign-in: every page leads to the password change until it is done.
    let hana = browser(&admin);
    let (status, url, _) = sign_in(&hana, "hana", &one_time, "").await;
    assert_eq!((status, url.as_str()), (200, "/account/password"));
    let (_, url, page) = hana.get("/users").await;
    assert_eq!(url, "/account/password");
    let (_, _, page2) = hana
        .post(
            "/account/password",
            &[
                ("csrf", &csrf(&page)),
                ("current", &one_time),
                ("new", "Password2026!"),
                ("confirm", "Password2026!"),
            ],
        )
        .await;
    assert!(page2.contains("common passwords"), "{page2}");
    let (_, url, page) = hana
        .post(
            "/account/password",
            &[
                ("csrf", &csrf(&page2)),
                ("current", &one_time),
                ("new", "violet kettle harbour"),
                ("confirm", "violet kettle harbour"),
            ],
        )
        .await;
    // Then the authenticator, which her role requires.
    assert_eq!(url, "/account/totp", "{page}");
    let (_, url, page) = hana
        .post("/account/totp/begin", &[("csrf", &csrf(&page))])
        .await;
    assert_eq!(url, "/account/totp");
    assert!(page.contains("<svg"), "a QR code: {page}");
    let secret = code_after(&page, "Key:");
    assert_eq!(secret.len(), 32, "160 bits in base32");
    let enrolled_at = now();
    let (_, _, page) = hana
        .post(
            "/account/totp/confirm",
            &[("csrf", &csrf(&page)), ("code", "000000")],
        )
        .await;
    assert!(
        page.contains("not the one your authenticator shows"),
        "{page}"
    );
    let (_, _, page) = hana
        .post(
            "/account/totp/confirm",
            &[
                ("csrf", &csrf(&page)),
                ("code", &totp_code(&secret, enrolled_at)),
            ],
        )
        .await;
    let codes: Vec<String> = page
        .split("<li><code>")
        .skip(1)
        .map(|s| s[..s.find("</code>").unwrap()].to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{page}");
    let (_, url, _) = hana.get("/account/next").await;
    assert_eq!(url, "/users");

    // Signing in again: the password alone asks for the code; the code just used is a replay;
    // the next step's code works; a recovery code works once.
    let hana = browser(&admin);
    let new_password = "violet kettle harbour";
    let (status, _, page) = sign_in(&hana, "hana", new_password, "").await;
    assert_eq!(status, 401);
    assert!(page.contains("Enter the 6-digit code"), "{page}");
    let (status, _, _) = sign_in(
        &hana,
        "hana",
        new_password,
        &totp_code(&secret, enrolled_at),
    )
    .await;
    assert_eq!(status, 401, "a code is good once");
    let (status, url, _) = sign_in(
        &hana,
        "hana",
        new_password,
        &totp_code(&secret, enrolled_at + 30),
    )
    .await;
    assert_eq!((status, url.as_str()), (200, "/users"));
    let other = browser(&admin);
    assert_eq!(
        sign_in(&other, "hana", new_password, &codes[3]).await.0,
        200
    );
    let other = browser(&admin);
    assert_eq!(
        sign_in(&other, "hana", new_password, &codes[3]).await.0,
        401
    );

    // Scope: Jane Doe (Security) is hers; a user of another department does not exist for her.
    let outsider = demo::users()
        .into_iter()
        .find(|u| !u.groups.contains(&"security".to_owned()))
        .unwrap();
    let (_, _, page) = hana.get("/users?q=").await;
    assert!(page.contains("/users/jdoe"), "{page}");
    assert!(
        !page.contains(&format!("/users/{}\"", outsider.uid)),
        "{page}"
    );
    let (status, _, _) = hana.get("/users/jdoe").await;
    assert_eq!(status, 200);
    let (status, _, _) = hana.get(&format!("/users/{}", outsider.uid)).await;
    assert_eq!(status, 404);
    let (status, _, _) = hana.get(&format!("/users/{}/issue", outsider.uid)).await;
    assert_eq!(status, 404);
    // Her role does not manage operators or settings.
    assert_eq!(hana.get("/operators").await.0, 403);
    assert_eq!(hana.get("/settings").await.0, 403);

    let events = t.store.audit_events(None, 500).await.unwrap();
    let has = |kind: audit::EventKind| events.iter().any(|e| e.code == kind.code);
    for kind in [
        audit::OPERATOR_CREATED,
        audit::OPERATOR_PASSWORD_CHANGED,
        audit::TOTP_ENROLLED,
        audit::RECOVERY_CODE_USED,
        audit::SETTINGS_CHANGED,
    ] {
        assert!(has(kind), "{}", kind.name);
    }
    let text =
        serde_json::to_string(&events.iter().map(|e| &e.details).collect::<Vec<_>>()).unwrap();
    for secret_text in [one_time.as_str(), new_password, &secret, &codes[0]] {
        assert!(
            !text.contains(secret_text),
            "a secret reached the audit log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_removes_the_last_administrator_or_themselves() {
    let (_dir, (t, _)) = support::open_with_password().await;
    let svc = &t.services;
    let admin = Actor::builtin("admin", BuiltinRole::Administrator);
    let form = |role: &str, enabled: bool| OperatorForm {
        display_name: "Someone".into(),
        role: RoleId::new(role),
        scope: Scope::All,
        enabled,
        user: None,
    };
    let me = OperatorId::new("admin");
    let err = operators::delete(svc, &admin, &me).await.unwrap_err();
    assert!(err.to_string().contains("yourself"), "{err}");
    let err = operators::update(svc, &admin, &me, form("auditor", true))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("your own role"), "{err}");

    // A second administrator may be demoted only while the first remains.
    operators::create(svc, &admin, "bob", form("administrator", true))
        .await
        .unwrap();
    let bob = Actor::builtin("bob", BuiltinRole::Administrator);
    operators::update(svc, &bob, &me, form("administrator", false))
        .await
        .unwrap();
    let err = operators::update(svc, &admin, &OperatorId::new("bob"), form("auditor", true))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no enabled operator"), "{err}");

    // Names: taken, reserved, malformed; unknown roles.
    assert!(operators::create(svc, &admin, "bob", form("auditor", true))
        .await
        .is_err());
    assert!(operators::create(svc, &admin, "cli", form("auditor", true))
        .await
        .is_err());
    assert!(operators::create(svc, &admin, "a b", form("auditor", true))
        .await
        .is_err());
    assert!(operators::create(svc, &admin, "carl", form("nope", true))
        .await
        .is_err());

    // Only those who manage operators manage them.
    let officer = Actor::builtin("so", BuiltinRole::SecurityOfficer);
    let err = operators::create(svc, &officer, "dora", form("auditor", true))
        .await
        .unwrap_err();
    assert_eq!(err.code().as_str(), "AUTH0001");

    // A custom role: saved, given, not deletable while held, then deleted.
    let role = tessera_core::model::Role {
        id: RoleId::new("badge_printer"),
        name: "Badge printer".into(),
        permissions: vec![tessera_core::model::Permission::ViewUsers],
        builtin: false,
    };
    operators::save_role(svc, &admin, role.clone())
        .await
        .unwrap();
    operators::create(svc, &admin, "erin", form("badge_printer", true))
        .await
        .unwrap();
    let erin = t.store.operator(&OperatorId::new("erin")).await.unwrap();
    let actor = operators::actor_of(svc, &erin).await.unwrap();
    assert_eq!(actor.role.permissions, role.permissions);
    assert!(operators::delete_role(svc, &admin, &role.id).await.is_err());
    operators::delete(svc, &admin, &OperatorId::new("erin"))
        .await
        .unwrap();
    operators::delete_role(svc, &admin, &role.id).await.unwrap();
    let err = operators::save_role(
        svc,
        &admin,
        tessera_core::model::Role {
            id: RoleId::new("administrator"),
            ..role
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("built-in"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_password_is_one_time_and_ends_sessions() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let admin = Portal::start(t.clone()).await;
    admin.sign_in(&password).await;
    let svc = &t.services;
    let cli = Actor::cli();
    let first = operators::create(
        svc,
        &cli,
        "ivan",
        OperatorForm {
            display_name: "Ivan".into(),
            role: RoleId::new("issuer"),
            scope: Scope::All,
            enabled: true,
            user: None,
        },
    )
    .await
    .unwrap();
    let ivan = browser(&admin);
    assert_eq!(
        sign_in(&ivan, "ivan", first.expose(), "").await.1,
        "/account/password"
    );
    // The reset ends Ivan's session and the old password no longer works.
    let (_, _, page) = admin.get("/operators/ivan").await;
    let (status, _, page) = admin
        .post("/operators/ivan/reset-password", &[("csrf", &csrf(&page))])
        .await;
    assert_eq!(status, 200);
    let second = code_after(&page, "id=\"one-time-password\"");
    assert_ne!(second, first.expose());
    assert_eq!(ivan.get("/account/password").await.1, "/login");
    assert_eq!(sign_in(&ivan, "ivan", first.expose(), "").await.0, 401);
    assert_eq!(
        sign_in(&ivan, "ivan", &second, "").await.1,
        "/account/password"
    );
    // Disabled: signed out at once and refused.
    let (_, _, page) = admin.get("/operators/ivan").await;
    let (_, url, _) = admin
        .post(
            "/operators/ivan/save",
            &[
                ("csrf", &csrf(&page)),
                ("display_name", "Ivan"),
                ("role", "issuer"),
                ("scope", ""),
            ],
        )
        .await;
    assert_eq!(url, "/operators");
    assert_eq!(ivan.get("/account/password").await.1, "/login");
    assert_eq!(sign_in(&ivan, "ivan", &second, "").await.0, 401);
}

/// An operator who may manage operators but is no administrator (a custom role, a scope) cannot
/// make an administrator, widen a scope, reset an administrator's password or grow their own
/// role; a change decided on an old read of an operator fails instead of undoing a newer one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_grants_more_than_they_have() {
    let (_dir, (t, _)) = support::open_with_password().await;
    let svc = &t.services;
    let cli = Actor::cli();
    let form = |role: &str, scope: &str| OperatorForm {
        display_name: "Someone".into(),
        role: RoleId::new(role),
        scope: Scope::parse(scope),
        enabled: true,
        user: None,
    };
    let team_lead = tessera_core::model::Role {
        id: RoleId::new("team_lead"),
        name: "Team lead".into(),
        permissions: vec![
            tessera_core::model::Permission::ViewUsers,
            tessera_core::model::Permission::IssueDevice,
            tessera_core::model::Permission::ActivateDevice,
            tessera_core::model::Permission::ManageOperators,
        ],
        builtin: false,
    };
    operators::save_role(svc, &cli, team_lead.clone())
        .await
        .unwrap();
    operators::create(svc, &cli, "lea", form("team_lead", "security"))
        .await
        .unwrap();
    let lea_record = t.store.operator(&OperatorId::new("lea")).await.unwrap();
    let lea = operators::actor_of(svc, &lea_record).await.unwrap();

    fn refused<T>(r: Result<T, tessera_core::CoreError>) -> &'static str {
        r.err().expect("refused").code().as_str()
    }
    // She may make an issuer of her own group...
    operators::create(svc, &lea, "ian", form("issuer", "security"))
        .await
        .unwrap();
    // ...but not an administrator, nor anyone with a wider scope.
    assert_eq!(
        refused(operators::create(svc, &lea, "eve", form("administrator", "security")).await),
        "AUTH0001"
    );
    assert_eq!(
        refused(operators::create(svc, &lea, "eve", form("issuer", "")).await),
        "AUTH0001"
    );
    assert_eq!(
        refused(operators::create(svc, &lea, "eve", form("issuer", "security, sales")).await),
        "AUTH0001"
    );
    // The administrator is beyond her reach: no password reset, no change, no deletion.
    let admin = OperatorId::new("admin");
    assert_eq!(
        refused(operators::reset_password(svc, &lea, &admin).await),
        "AUTH0001"
    );
    assert_eq!(
        refused(operators::delete(svc, &lea, &admin).await),
        "AUTH0001"
    );
    // Her own role does not grow, and neither does her scope.
    let mut grown = team_lead.clone();
    grown
        .permissions
        .push(tessera_core::model::Permission::ManageSettings);
    assert!(operators::save_role(svc, &lea, grown).await.is_err());
    assert!(
        operators::update(svc, &lea, &OperatorId::new("lea"), form("team_lead", ""))
            .await
            .is_err()
    );

    // A stale change: two reads of Ian, the second write loses.
    let ian = OperatorId::new("ian");
    let first = t.store.operator(&ian).await.unwrap();
    operators::reset_password(svc, &cli, &ian).await.unwrap();
    let mut changes = tessera_core::changes::Changes::new();
    changes.push(tessera_core::changes::Change::UpdateOperator(first));
    let err = t.store.commit(&changes).await.unwrap_err();
    assert_eq!(
        err,
        tessera_core::ports::StoreError::Stale("operator ian".into())
    );
}

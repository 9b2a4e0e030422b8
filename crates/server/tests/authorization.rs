//! The authorisation matrix: every route of the router × every built-in role, no session, and an
//! administrator whose scope holds no user. The routes are read from the source that builds the
//! router (every `.route("...", get(..).post(..))`), so a route added without an entry in
//! [`MATRIX`] fails this test, as does an entry for a route that no longer exists.
//!
//! "Allowed" means the request got past authorisation: not 403, not sent to the sign-in page.
//! Requests carry a form with every field any portal form has, valid in shape but naming nothing
//! that exists (or asking for something the use case refuses after its permission check), so an
//! allowed request changes nothing.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use support::portal::{csrf, Portal};
use tessera_core::changes::{Change, Changes};
use tessera_core::ids::RoleId;
use tessera_core::model::{BuiltinRole, Operator, Permission, Scope};
use tessera_core::ports::Store;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Access {
    /// Anyone, signed in or not.
    Public,
    /// A station's own endpoints (its enrolment token or credential, never a session).
    Station,
    /// The other replicas' forwarding (the cluster's shared secret, never a session; see
    /// tests/cluster.rs).
    Replica,
    /// Any signed-in operator.
    SignedIn,
    /// Signed-in operators with this permission.
    Needs(Permission),
    /// Operators with this permission who see every user (imports touch everyone).
    NeedsEveryone(Permission),
}

use Access::*;
use Permission::*;

/// (method, path as the router names it, who may, whether a user is behind it (scope)).
#[rustfmt::skip]
const MATRIX: &[(&str, &str, Access, bool)] = &[
    ("GET", "/healthz", Public, false),
    ("GET", "/static/app.css", Public, false),
    ("GET", "/static/app.js", Public, false),
    ("GET", "/static/people.js", Public, false),
    ("GET", "/static/pin.js", Public, false),
    ("GET", "/static/policy_choice.js", Public, false),
    ("GET", "/", SignedIn, false),
    ("GET", "/login", Public, false),
    ("POST", "/login", Public, false),
    ("GET", "/login/card", Public, false),
    ("POST", "/logout", SignedIn, false),
    ("GET", "/settings", Needs(ManageSettings), false),
    ("POST", "/settings", Needs(ManageSettings), false),
    ("GET", "/ca", Needs(ManageSettings), false),
    ("POST", "/ca/content-signer/renew", Needs(ManageSettings), false),
    ("GET", "/account/password", SignedIn, false),
    ("POST", "/account/password", SignedIn, false),
    ("GET", "/account/next", SignedIn, false),
    ("GET", "/account/totp", SignedIn, false),
    ("POST", "/account/totp/begin", SignedIn, false),
    ("POST", "/account/totp/confirm", SignedIn, false),
    ("GET", "/operators", Needs(ManageOperators), false),
    ("POST", "/operators/create", Needs(ManageOperators), false),
    ("GET", "/operators/{id}", Needs(ManageOperators), false),
    ("POST", "/operators/{id}/save", Needs(ManageOperators), false),
    ("POST", "/operators/{id}/reset-password", Needs(ManageOperators), false),
    ("POST", "/operators/{id}/reset-totp", Needs(ManageOperators), false),
    ("POST", "/operators/{id}/delete", Needs(ManageOperators), false),
    ("POST", "/roles/save", Needs(ManageOperators), false),
    ("POST", "/roles/{id}/delete", Needs(ManageOperators), false),
    ("GET", "/approvals", SignedIn, false),
    ("POST", "/approvals/{id}/approve", Needs(ApproveRequests), false),
    ("POST", "/approvals/{id}/reject", Needs(ApproveRequests), false),
    ("GET", "/policies", Needs(ManagePolicies), false),
    ("GET", "/policies/{id}", Needs(ManagePolicies), false),
    ("POST", "/policies/save", Needs(ManagePolicies), false),
    ("GET", "/printers", Needs(ManageStations), false),
    ("POST", "/printers/add", Needs(ManageStations), false),
    ("POST", "/printers/test", Needs(ManageStations), false),
    ("POST", "/printers/remove", Needs(ManageStations), false),
    ("GET", "/stations", Needs(ManageStations), false),
    ("POST", "/stations/create", Needs(ManageStations), false),
    ("POST", "/stations/{id}/token", Needs(ManageStations), false),
    ("POST", "/stations/{id}/enable", Needs(ManageStations), false),
    ("POST", "/stations/{id}/disable", Needs(ManageStations), false),
    ("GET", "/stations/{id}/revoke", Needs(ManageStations), false),
    ("POST", "/stations/{id}/revoke", Needs(ManageStations), false),
    ("GET", "/station", SignedIn, false),
    ("POST", "/station", SignedIn, false),
    ("GET", "/audit", Needs(ViewAudit), false),
    ("POST", "/audit/check", Needs(ViewAudit), false),
    ("GET", "/stock", Needs(ViewStock), false),
    ("POST", "/stock/import", Needs(ManageStock), false),
    ("GET", "/stock/cards/{serial}", Needs(ViewStock), false),
    ("POST", "/stock/cards/{serial}/state", Needs(ManageStock), false),
    ("GET", "/layouts", Needs(ManageLayouts), false),
    ("GET", "/layouts/{id}", Needs(ManageLayouts), false),
    ("POST", "/layouts/save", Needs(ManageLayouts), false),
    ("POST", "/layouts/preview", Needs(ManageLayouts), false),
    ("GET", "/users", Needs(ViewUsers), false),
    ("GET", "/users/{uid}", Needs(ViewUsers), true),
    ("GET", "/users/{uid}/photo", Needs(ViewUsers), true),
    ("POST", "/users/{uid}/photo", Needs(ManageUsers), true),
    ("POST", "/users/{uid}/photo/remove", Needs(ManageUsers), true),
    ("POST", "/users/{uid}/fingerprints", Needs(ManageUsers), true),
    ("POST", "/users/{uid}/fingerprints/remove", Needs(ManageUsers), true),
    ("GET", "/users/new", Needs(ManageUsers), false),
    ("POST", "/users/new", Needs(ManageUsers), false),
    ("GET", "/users/{uid}/edit", Needs(ManageUsers), true),
    ("POST", "/users/{uid}/edit", Needs(ManageUsers), true),
    ("GET", "/users/{uid}/disable", Needs(ManageUsers), true),
    ("POST", "/users/{uid}/disable", Needs(ManageUsers), true),
    ("POST", "/users/{uid}/enable", Needs(ManageUsers), true),
    ("GET", "/users/{uid}/delete", Needs(ManageUsers), true),
    ("POST", "/users/{uid}/delete", Needs(ManageUsers), true),
    ("GET", "/users/import", Needs(ManageUsers), false),
    ("POST", "/users/import", Needs(ManageUsers), false),
    ("GET", "/users/import/{id}", Needs(ManageUsers), false),
    ("GET", "/users/import/{id}/progress", Needs(ManageUsers), false),
    ("POST", "/users/import/{id}/apply", Needs(ManageUsers), false),
    ("GET", "/users/{uid}/issue", Needs(IssueDevice), true),
    ("POST", "/users/{uid}/issue/configure", Needs(IssueDevice), true),
    ("POST", "/users/{uid}/issue/start", Needs(IssueDevice), true),
    ("GET", "/jobs", Needs(IssueDevice), false),
    ("GET", "/issue/{job}", Needs(IssueDevice), true),
    ("POST", "/issue/{job}/policy", Needs(IssueDevice), true),
    ("POST", "/issue/{job}/continue", Needs(ActivateDevice), true),
    ("POST", "/issue/{job}/cancel", Needs(IssueDevice), true),
    ("POST", "/issue/{job}/retry-print", Needs(IssueDevice), true),
    ("POST", "/devices/{id}/activate", Needs(ActivateDevice), true),
    ("POST", "/devices/{id}/reveal-pin", Needs(ManageDevices), true),
    ("POST", "/devices/{id}/suspend", Needs(ManageDevices), true),
    ("POST", "/devices/{id}/reprint", Needs(IssueDevice), true),
    ("POST", "/devices/{id}/resume", Needs(ManageDevices), true),
    ("POST", "/devices/{id}/terminate", Needs(ManageDevices), true),
    ("GET", "/devices/{id}/preview/{side}", Needs(ViewUsers), true),
    ("GET", "/api/v1/jobs/{id}", Needs(IssueDevice), true),
    ("POST", "/api/v1/issuances", Needs(IssueDevice), false),
    ("POST", "/api/v1/issuances/{id}/policy", Needs(IssueDevice), true),
    ("POST", "/api/v1/issuances/{id}/continue", Needs(ActivateDevice), true),
    ("POST", "/api/v1/issuances/{id}/cancel", Needs(IssueDevice), true),
    ("GET", "/api/v1/stock", Needs(ViewStock), false),
    ("GET", "/api/v1/stock/summary", Needs(ViewStock), false),
    ("POST", "/api/v1/stock/import", Needs(ManageStock), false),
    ("GET", "/api/v1/stock/{serial}", Needs(ViewStock), false),
    ("GET", "/pki/root.crt", Public, false),
    ("GET", "/pki/issuing.crt", Public, false),
    ("GET", "/pki/issuing.p7c", Public, false),
    ("GET", "/pki/content-signer.crt", Public, false),
    ("GET", "/pki/issuing.crl", Public, false),
    ("POST", "/pki/ocsp", Public, false),
    ("GET", "/pki/ocsp/{*request}", Public, false),
    ("GET", "/station/v1/enrol", Station, false),
    ("GET", "/station/v1/connect", Station, false),
    ("GET", "/devices/{id}/unlock", Needs(UnlockDevice), true),
    ("POST", "/devices/{id}/unlock", Needs(UnlockDevice), true),
    ("GET", "/devices/{id}/recycle", Needs(RecycleDevice), true),
    ("POST", "/devices/{id}/recycle", Needs(RecycleDevice), true),
    ("POST", "/devices/{id}/replace", Needs(ReplaceDevice), true),
    ("POST", "/devices/{id}/restore", Needs(ReplaceDevice), true),
    ("GET", "/api/v1/approvals", SignedIn, false),
    ("POST", "/api/v1/approvals/{id}/{decision}", Needs(ApproveRequests), false),
    ("GET", "/directory", Needs(ManageUsers), false),
    ("POST", "/directory/sync", Needs(ManageUsers), false),
    ("GET", "/api/v1/users", Needs(ViewUsers), false),
    ("POST", "/api/v1/users", Needs(ManageUsers), false),
    ("POST", "/api/v1/users/import", NeedsEveryone(ManageUsers), false),
    ("GET", "/api/v1/users/{uid}", Needs(ViewUsers), true),
    ("PUT", "/api/v1/users/{uid}", Needs(ManageUsers), true),
    ("DELETE", "/api/v1/users/{uid}", Needs(ManageUsers), true),
    ("POST", "/api/v1/users/{uid}/disable", Needs(ManageUsers), true),
    ("POST", "/api/v1/users/{uid}/enable", Needs(ManageUsers), true),
    ("PUT", "/api/v1/users/{uid}/fingerprints", Needs(ManageUsers), true),
    ("DELETE", "/api/v1/users/{uid}/fingerprints", Needs(ManageUsers), true),
    ("POST", "/cluster/stations/{id}/request", Replica, false),
    ("GET", "/cluster/stations/{id}/inventory", Replica, false),
];

/// The files that build the router, with the prefix each is nested under.
const ROUTER_SOURCES: &[(&str, &str)] = &[
    ("src/app.rs", ""),
    ("src/portal/mod.rs", ""),
    ("src/api.rs", "/api/v1"),
    ("src/pki_http.rs", "/pki"),
    ("src/station_http.rs", ""),
    ("src/cluster.rs", ""),
];

/// Every (method, path) the router serves, read from its source.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let constants: BTreeMap<&str, &str> = [
        ("ENROL_PATH", "/station/v1/enrol"),
        ("CONNECT_PATH", "/station/v1/connect"),
    ]
    .into();
    let protocol = std::fs::read_to_string(root.join("../station/src/protocol.rs")).unwrap();
    for (name, value) in &constants {
        assert!(
            protocol.contains(&format!("pub const {name}: &str = \"{value}\";")),
            "{name} moved: update this test"
        );
    }
    let mut out = BTreeSet::new();
    for (file, prefix) in ROUTER_SOURCES {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + 7..];
            // The call's arguments: up to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .unwrap()
                .0;
            let args = &rest[..end];
            let (path_arg, methods) = args.split_once(',').unwrap();
            let path_arg = path_arg.trim();
            let path = match path_arg.strip_prefix('"') {
                Some(p) => p.trim_end_matches('"').to_owned(),
                None => constants[path_arg].to_owned(),
            };
            for method in ["get", "post", "put", "delete", "patch"] {
                let called = methods.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0
                        || !methods.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && methods.as_bytes()[i - 1] != b'_'
                });
                if called {
                    out.insert((method.to_uppercase(), format!("{prefix}{path}")));
                }
            }
        }
    }
    out
}

#[test]
fn every_route_has_an_entry_in_the_matrix() {
    let routes = routes_in_source();
    assert!(routes.len() > 50, "the routes were not found: {routes:?}");
    let matrix: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = routes.difference(&matrix).collect();
    let stale: Vec<_> = matrix.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes without an entry in the authorisation matrix: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "entries for routes that do not exist: {stale:?}"
    );
    assert_eq!(matrix.len(), MATRIX.len(), "an entry is listed twice");
}

/// The form every request carries: each field some portal form has, harmless values.
fn form(csrf: &str) -> Vec<(&'static str, String)> {
    let mut f: Vec<(&'static str, String)> = [
        ("current", ""),
        ("new", ""),
        ("confirm", ""),
        ("code", "000000"),
        ("reason", "lost"),
        ("comment", ""),
        ("printer", ""),
        ("reader", ""),
        ("layout", "no-such-layout"),
        ("policy", "no-such-policy"),
        ("pin", ""),
        ("pin_confirm", ""),
        ("id", "no such id"),
        ("name", ""),
        ("description", ""),
        ("allowed_groups", ""),
        ("default_for_groups", ""),
        ("front_svg", ""),
        ("back_svg", ""),
        ("preview_user", ""),
        ("operator", "nobody"),
        ("password", "wrong"),
        ("display_name", ""),
        ("role", "no-such-role"),
        ("scope", ""),
        ("user", ""),
        ("station", "no-such-station"),
        ("uri", ""),
        ("encoder", ""),
        ("ca_file", ""),
        ("csv", ""),
        ("model", ""),
        ("batch", ""),
        ("location", ""),
        ("state", "returned"),
        ("back", "/users"),
        ("card_printing", "on"),
        ("pin_mode", "disguised"),
        ("password_min_length", "3"),
        ("cards", "keep"),
        // The content signer the renewal replaces: not the current one, so nothing is renewed.
        ("serial", "00"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect();
    f.push(("csrf", csrf.to_owned()));
    f
}

struct Session {
    label: String,
    portal: Portal,
    csrf: String,
    /// The permissions of the role; `None` for no session.
    permissions: Option<Vec<Permission>>,
    /// An operator whose scope holds no user.
    out_of_scope: bool,
}

async fn session(
    t: &tessera_server::Tessera,
    base: &Portal,
    name: &str,
    role: BuiltinRole,
    scope: Scope,
) -> Session {
    let mut operator = Operator::new(
        name,
        name,
        tessera_server::auth::hash_password(&tessera_core::Password::new("matrix password 1")),
        RoleId::new(role.id()),
    );
    operator.scope = scope.clone();
    let mut changes = Changes::new();
    changes.push(Change::PutOperator(operator));
    t.store.commit(&changes).await.unwrap();
    let portal = Portal {
        base: base.base.clone(),
        http: reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap(),
    };
    let (_, _, page) = portal.get("/login").await;
    let (_, url, _) = portal
        .post(
            "/login",
            &[
                ("csrf", &csrf(&page)),
                ("operator", name),
                ("password", "matrix password 1"),
            ],
        )
        .await;
    assert_ne!(url, "/login", "{name} signs in");
    let (_, _, page) = portal.get("/account/password").await;
    Session {
        label: name.to_owned(),
        csrf: csrf(&page),
        portal,
        permissions: Some(role.permissions().to_vec()),
        out_of_scope: scope != Scope::All,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_allows_exactly_the_roles_of_its_entry() {
    let (_dir, t) = support::open().await;
    let admin = support::actor(BuiltinRole::Administrator);
    let job = support::issue(&t, &admin, "piv-standard", "246810").await;
    let device = job.device.clone().unwrap();
    let before = t.store.device(&device).await.unwrap();
    let jane = t
        .store
        .user(&tessera_core::ids::UserId::new("jdoe"))
        .await
        .unwrap();
    let base = Portal::start(t.clone()).await;

    let mut sessions = Vec::new();
    for role in BuiltinRole::ALL {
        sessions.push(session(&t, &base, role.id(), role, Scope::All).await);
    }
    sessions.push(
        session(
            &t,
            &base,
            "outsider",
            BuiltinRole::Administrator,
            Scope::Groups(vec!["no-such-group".into()]),
        )
        .await,
    );
    sessions.push(Session {
        label: "no session".into(),
        portal: Portal {
            base: base.base.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
        },
        csrf: String::new(),
        permissions: None,
        out_of_scope: false,
    });

    // The menu offers each role exactly the pages it may open.
    let menu: &[(&str, Permission)] = &[
        ("/policies", ManagePolicies),
        ("/printers", ManageStations),
        ("/layouts", ManageLayouts),
        ("/settings", ManageSettings),
        ("/stations", ManageStations),
        ("/stock", ViewStock),
        ("/audit", ViewAudit),
        ("/operators", ManageOperators),
        ("/approvals", ApproveRequests),
        ("/users/import", ManageUsers),
        ("/directory", ManageUsers),
    ];
    for s in sessions.iter().filter(|s| s.permissions.is_some()) {
        let (_, _, page) = s.portal.get("/account/password").await;
        let nav = &page[page.find("<nav>").unwrap()..page.find("</nav>").unwrap()];
        for (link, permission) in menu {
            let shown = nav.contains(&format!("href=\"{link}\""));
            let may = s.permissions.as_ref().unwrap().contains(permission);
            assert_eq!(shown, may, "{} and the menu link {link}", s.label);
        }
    }

    let mut wrong = Vec::new();
    let mut checked = 0;
    for &(method, pattern, access, scoped) in MATRIX {
        if access == Station || access == Replica || pattern == "/logout" {
            // The station's and the replicas' endpoints have their own tests; logout would end
            // the session.
            continue;
        }
        for s in &sessions {
            // Operators in scope get ids that exist nowhere, so that what they are allowed to
            // do changes nothing; the operator out of scope gets Jane's real card, job and
            // record, which must stay out of their reach.
            let real = s.out_of_scope || method == "GET";
            let uid = if real { "jdoe" } else { "no-such-user" };
            let device_id = if real { device.as_str() } else { "no-such-id" };
            let job_id = if real { job.id.as_str() } else { "no-such-job" };
            let id = if pattern.starts_with("/api/v1/jobs/")
                || pattern.starts_with("/api/v1/issuances/")
            {
                job_id
            } else if pattern.starts_with("/devices/") {
                device_id
            } else {
                "no-such-id"
            };
            let path = pattern
                .replace("{uid}", uid)
                .replace("{side}", "front.png")
                .replace("{*request}", "MAA=")
                .replace("{id}", id)
                .replace("{job}", job_id)
                .replace("{decision}", "approve")
                .replace("{serial}", "no-such-serial");
            let url = format!("{}{path}", s.portal.base);
            let request = match method {
                "GET" => s.portal.http.get(&url),
                // The people API reads JSON (an import reads `{}` as a CSV file without a uid
                // column, and refuses it).
                _ if pattern.starts_with("/api/v1/users")
                    || pattern.starts_with("/api/v1/issuances") =>
                {
                    s.portal
                        .http
                        .request(method.parse().unwrap(), &url)
                        .header("x-csrf-token", &s.csrf)
                        .header("content-type", "application/json")
                        .body("{}")
                }
                _ => s
                    .portal
                    .http
                    .post(&url)
                    .header("x-csrf-token", &s.csrf)
                    .form(&form(&s.csrf)),
            };
            let res = request.send().await.unwrap();
            let status = res.status().as_u16();
            let landed = res.url().path().to_owned();
            // A public route only has to answer (the sign-in form refuses a form without its
            // own cookie, for instance).
            let passed = if access == Public {
                status < 500
            } else {
                status != 403 && status != 401 && landed != "/login"
            };
            let expected_pass = match (access, &s.permissions) {
                (Public, _) => true,
                (_, None) => false,
                (SignedIn, Some(_)) => true,
                (Needs(p), Some(perms)) => perms.contains(&p),
                (NeedsEveryone(p), Some(perms)) => perms.contains(&p) && !s.out_of_scope,
                (Station | Replica, _) => unreachable!(),
            };
            checked += 1;
            if passed != expected_pass {
                wrong.push(format!(
                    "{method} {path} as {}: {status} (landed on {landed}), expected {}",
                    s.label,
                    if expected_pass { "allowed" } else { "refused" }
                ));
            }
            if scoped && s.out_of_scope && status != 404 {
                wrong.push(format!(
                    "{method} {path} as an operator out of scope: {status}, expected 404"
                ));
            }
        }
    }
    assert!(checked > 400, "only {checked} requests");
    assert!(
        wrong.is_empty(),
        "{} escalations or refusals:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // Nothing the matrix sent changed a card, or Jane.
    assert_eq!(t.store.device(&device).await.unwrap(), before);
    assert_eq!(
        t.store
            .user(&tessera_core::ids::UserId::new("jdoe"))
            .await
            .unwrap(),
        jane
    );
}

//! `/api/v1/users` as a script uses it, over HTTP on a real server: add, read, change, find,
//! disable with a card rule, enable and delete people (a person with a live card is not
//! deleted); import a CSV body, dry and real; and the refusals: a file not in UTF-8 (USR0001,
//! nothing written), a body larger than an import reads (413 USR0001, refused before it is read),
//! a request without the CSRF token.

mod support;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use support::portal::{csrf, Portal};
use tessera_core::issuance;
use tessera_core::model::BuiltinRole;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An administrator's session: the portal, its cookie jar and its CSRF token.
struct Session {
    portal: Portal,
    jar: Arc<Jar>,
    csrf: String,
}

async fn session(t: &tessera_server::Tessera, password: &str) -> Session {
    let started = Portal::start(t.clone()).await;
    let jar = Arc::new(Jar::default());
    let portal = Portal {
        base: started.base,
        http: reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .build()
            .unwrap(),
    };
    portal.sign_in(password).await;
    let (_, _, page) = portal.get("/account/password").await;
    Session {
        csrf: csrf(&page),
        portal,
        jar,
    }
}

impl Session {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .portal
            .http
            .request(
                method.parse().unwrap(),
                format!("{}{path}", self.portal.base),
            )
            .header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let res = request.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn import(&self, query: &str, csv: Vec<u8>) -> (StatusCode, Value) {
        let res = self
            .portal
            .http
            .post(format!("{}/api/v1/users/import{query}", self.portal.base))
            .header("x-csrf-token", &self.csrf)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_are_managed_over_the_api() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let s = session(&t, &password).await;

    let zed = json!({"uid": "zed", "given_name": "Zed", "family_name": "Zulu",
                     "email": "zed@example.org", "groups": ["staff"], "attributes": {"badge": "7"}});
    let (status, body) = s.call("POST", "/api/v1/users", Some(zed.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["source"], "local");
    assert_eq!(body["display_name"], "Zed Zulu");
    let (status, body) = s.call("POST", "/api/v1/users", Some(zed)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "REQ0001");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already"),
        "{body}"
    );
    let (status, body) = s
        .call("POST", "/api/v1/users", Some(json!({"uid": "../x"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, body) = s
        .call(
            "PUT",
            "/api/v1/users/zed",
            Some(json!({"given_name": "Zed", "family_name": "Zulu-Young", "groups": ["staff"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["family_name"], "Zulu-Young");
    assert_eq!(body["email"], "", "PUT replaces every field");
    let (_, body) = s.call("GET", "/api/v1/users/zed", None).await;
    assert_eq!(body["user"]["family_name"], "Zulu-Young");
    assert_eq!(body["cards"], json!([]));
    let (_, found) = s.call("GET", "/api/v1/users?q=zulu-y", None).await;
    assert_eq!(found["users"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["more"], false);

    // 50 demo people and Zed: two pages.
    let (_, first) = s.call("GET", "/api/v1/users", None).await;
    assert_eq!(first["users"].as_array().unwrap().len(), 50);
    assert_eq!(first["more"], true);
    let (_, second) = s.call("GET", "/api/v1/users?page=2", None).await;
    assert_eq!(second["users"].as_array().unwrap().len(), 1, "{second}");
    assert_eq!(second["more"], false);

    // Jane has an Active card: disabling her suspends it; she cannot be deleted.
    let admin = support::actor(BuiltinRole::Administrator);
    let job = support::issue(&t, &admin, "piv-standard", "246810").await;
    issuance::finish(&t.services, &admin, &job.id)
        .await
        .unwrap();
    let (status, body) = s
        .call(
            "POST",
            "/api/v1/users/jdoe/disable",
            Some(json!({"cards": "explode"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("suspend, terminate or keep"));
    let (status, body) = s
        .call(
            "POST",
            "/api/v1/users/jdoe/disable",
            Some(json!({"cards": "suspend"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cards"][0]["from"], "active");
    assert_eq!(body["cards"][0]["to"], "suspended");
    let (status, body) = s.call("POST", "/api/v1/users/jdoe/disable", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already disabled"));
    let (status, body) = s.call("DELETE", "/api/v1/users/jdoe", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "USR0002");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Terminate them first"));
    let (status, body) = s.call("POST", "/api/v1/users/jdoe/enable", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["disabled"], false);
    let (_, body) = s.call("GET", "/api/v1/users/jdoe", None).await;
    assert_eq!(
        body["cards"][0]["state"], "suspended",
        "enabled, the card waits"
    );

    // Without the session's CSRF token nothing changes.
    let res = s
        .portal
        .http
        .delete(format!("{}/api/v1/users/zed", s.portal.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (status, _) = s.call("DELETE", "/api/v1/users/zed", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s.call("GET", "/api/v1/users/zed", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// A request with a declared length and a few bytes of body, on a connection of its own: the
/// answer (status line, body).
async fn declare(s: &Session, path: &str, length: u64) -> (String, Value) {
    let base = reqwest::Url::parse(&s.portal.base).unwrap();
    let cookie = s.jar.cookies(&base).unwrap();
    let mut stream = tokio::net::TcpStream::connect(format!(
        "{}:{}",
        base.host_str().unwrap(),
        base.port().unwrap()
    ))
    .await
    .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nX-CSRF-Token: {}\r\n\
         Content-Type: text/csv\r\nContent-Length: {length}\r\nConnection: close\r\n\r\nuid\n",
        base.authority(),
        cookie.to_str().unwrap(),
        s.csrf
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The answer comes before the rest of the body is sent; read its head and body.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read(&mut buf))
            .await
            .expect("the server answers without waiting for the body")
            .unwrap();
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap();
            if got.len() >= end + 4 + length || n == 0 {
                let status = text.lines().next().unwrap().to_owned();
                return (status, serde_json::from_str(&text[end + 4..]).unwrap());
            }
        }
        assert!(
            n > 0,
            "the connection closed: {}",
            String::from_utf8_lossy(&got)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_file_is_imported_over_the_api() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let s = session(&t, &password).await;
    let csv = b"uid,given_name,family_name,groups,photo\n\
                alice,Alice,Able,staff;it,\n\
                bob,Bob,Brown,staff,bob.jpg\n"
        .to_vec();

    let (status, report) = s.import("?dry_run=true&name=hr.csv", csv.clone()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["origin"], "hr.csv");
    assert_eq!(report["created"], json!(["alice", "bob"]));
    // Photos do not come with a file over the API: a line naming one is taken without it.
    assert_eq!(report["rejected"][0]["at"], "line 3");
    let reason = report["rejected"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("not found") && reason.contains("other fields were taken"),
        "{reason}"
    );
    let (status, _) = s.call("GET", "/api/v1/users/alice", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a dry run writes nothing");

    let (status, report) = s.import("", csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let (_, alice) = s.call("GET", "/api/v1/users/alice", None).await;
    assert_eq!(alice["user"]["groups"], json!(["it", "staff"]));
    assert_eq!(alice["user"]["source"], "csv");

    // A file that is not UTF-8 is refused whole, with the line.
    let (status, body) = s
        .import("", b"uid,given_name\ncarol,Carol\njose,Jos\xe9\n".to_vec())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "USR0001");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 3"),
        "{body}"
    );
    let (status, _) = s.call("GET", "/api/v1/users/carol", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Larger than the portal's 8 MB forms: an import takes it.
    let mut big = b"uid,given_name,notes\ndora,Dora,".to_vec();
    big.extend(std::iter::repeat_n(b'n', 9 * 1024 * 1024));
    big.push(b'\n');
    let (status, report) = s.import("", big).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["created"], json!(["dora"]));

    // Larger than an import reads: refused from its declared length, before it is sent.
    let (status, body) = declare(&s, "/api/v1/users/import", 300 * 1024 * 1024).await;
    assert!(status.contains(" 413 "), "{status}");
    assert_eq!(body["error"]["code"], "USR0001");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("larger than the 256 MiB an import reads"),
        "{message}"
    );
    assert!(message.contains("Nothing was imported"), "{message}");
}

//! A browser stand-in for the portal tests: a real server on a loopback port, a cookie-keeping
//! HTTP client, and the steps of the Device Issuance wizard.

use std::time::Duration;
use tessera_server::serve::serve_listener;
use tessera_server::{router, Tessera};

/// The initial PIN the wizard tests type.
pub const PIN: &str = "246810";

pub struct Portal {
    pub base: String,
    pub http: reqwest::Client,
}

/// The value of `<input type="hidden" name="csrf" value="...">` in a page.
pub fn csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("page has a CSRF field")
        + 19;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

impl Portal {
    pub async fn start(t: Tessera) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = serve_listener(listener, router(t), None, std::future::pending());
        tokio::spawn(async move { serving.await.unwrap() });
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> (reqwest::StatusCode, String, String) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let url = res.url().path().to_owned();
        (res.status(), url, res.text().await.unwrap())
    }

    pub async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (reqwest::StatusCode, String, String) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        let url = res.url().path().to_owned();
        (res.status(), url, res.text().await.unwrap())
    }

    pub async fn sign_in(&self, password: &str) {
        let (_, _, page) = self.get("/login").await;
        let (status, url, _) = self
            .post(
                "/login",
                &[
                    ("csrf", &csrf(&page)),
                    ("operator", "admin"),
                    ("password", "wrong"),
                ],
            )
            .await;
        assert_eq!(status, 401, "a wrong password is refused");
        assert_eq!(url, "/login");
        let (_, _, page) = self.get("/login").await;
        let (status, url, body) = self
            .post(
                "/login",
                &[
                    ("csrf", &csrf(&page)),
                    ("operator", "admin"),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(url, "/users");
    }

    /// Configure Device up to Start: returns the job id.
    pub async fn start_wizard(&self, uid: &str, disguised: bool) -> String {
        let (_, _, page) = self.get(&format!("/users/{uid}")).await;
        assert!(page.contains("Add Device"));
        let (_, _, page) = self.get(&format!("/users/{uid}/issue")).await;
        assert!(
            page.contains("Demo Card Printer"),
            "the printer tile shows the demo printer"
        );
        let token = csrf(&page);
        if !page.contains("id=\"change-reader\"") {
            let (status, _, page) = self
                .post(
                    &format!("/users/{uid}/issue/configure"),
                    &[
                        ("csrf", &token),
                        ("printer", "Demo Card Printer"),
                        ("reader", "Demo Card Printer Encoder"),
                    ],
                )
                .await;
            assert_eq!(status, 200, "{page}");
            assert!(
                page.contains("id=\"change-reader\""),
                "the pairing is remembered"
            );
        }
        let (status, url, page) = self
            .post(
                &format!("/users/{uid}/issue/start"),
                &[("csrf", &token), ("layout", "corporate-badge")],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Device Policy"), "{page}");
        let job = url.trim_start_matches("/issue/").to_owned();

        // Disguised mode: a PIN typed twice differently is refused, nothing starts.
        if disguised {
            self.refuse_mismatched_pins(&job, &token).await;
        }
        job
    }

    pub async fn refuse_mismatched_pins(&self, job: &str, token: &str) {
        let (status, _, page) = self
            .post(
                &format!("/issue/{job}/policy"),
                &[
                    ("csrf", token),
                    ("policy", "piv-standard"),
                    ("pin", PIN),
                    ("pin_confirm", "135790"),
                ],
            )
            .await;
        // The same step again, the sentence next to the confirmation (PIN0005).
        assert_eq!(status, 422, "{page}");
        assert!(page.contains("The two PINs differ"));
        assert!(page.contains("PIN0005") && page.contains("id=\"policy-form\""));
        assert!(
            !page.contains(PIN),
            "the PIN never comes back to the browser"
        );
    }

    /// Chooses the policy (and PIN), then follows the progress until the Print Device step.
    pub async fn personalise_and_print(&self, job: &str, token: &str) {
        let (status, _, page) = self
            .post(
                &format!("/issue/{job}/policy"),
                &[
                    ("csrf", token),
                    ("policy", "piv-standard"),
                    ("pin", PIN),
                    ("pin_confirm", PIN),
                ],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(!page.contains(PIN));

        let mut seen = Vec::new();
        for _ in 0..600 {
            let res = self
                .http
                .get(format!("{}/api/v1/jobs/{job}", self.base))
                .send()
                .await
                .unwrap();
            let j: serde_json::Value = res.json().await.unwrap();
            seen.push(j["progress"].as_u64().unwrap());
            match j["step"].as_str().unwrap() {
                "printed" => break,
                "issuing" | "printing" => tokio::time::sleep(Duration::from_millis(20)).await,
                other => panic!("issuance ended in {other}: {j}"),
            }
        }
        assert_eq!(seen.last(), Some(&100));
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "progress only moves forward: {seen:?}"
        );
        let (_, _, page) = self.get(&format!("/issue/{job}")).await;
        assert!(
            page.contains("Print Device") && page.contains("print-info"),
            "{page}"
        );
        assert!(page.contains("preview-front") && page.contains("preview-back"));
        assert!(page.contains("id=\"continue\"") && page.contains("id=\"cancel\""));
    }

    /// The whole wizard up to Print Device.
    pub async fn issue(&self, uid: &str, disguised: bool) -> String {
        let job = self.start_wizard(uid, disguised).await;
        let (_, _, page) = self.get(&format!("/issue/{job}")).await;
        self.personalise_and_print(&job, &csrf(&page)).await;
        job
    }
}

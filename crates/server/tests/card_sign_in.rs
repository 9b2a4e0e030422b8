//! Smart-card sign-in. A card is issued on the demo printer; an operator is linked to its holder.
//! Over HTTPS, a rustls client presents the card's 9A certificate and signs the handshake with
//! the key on the virtual card (VERIFY PIN and GENERAL AUTHENTICATE, the key never leaves the
//! card): `/login/card` opens a session, the owed password change still comes first, and once
//! the card is terminated the same card is refused. The core's rules are then checked one by
//! one: the slot, the certificate's status, the card's state, the link to exactly one enabled
//! operator, and a certificate Tessera did not issue.

mod support;

use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use tessera_core::audit;
use tessera_core::card_sign_in::{sign_in_with_card, CardRefused, PresentedCertificate};
use tessera_core::ids::*;
use tessera_core::lifecycle::{DeviceState, Reason};
use tessera_core::model::{BuiltinRole, CertificateRecord, KeyAlgorithm, Scope, Slot};
use tessera_core::operators::{self, OperatorForm};
use tessera_core::ports::{PivCard, Store};
use tessera_core::services::Actor;
use tessera_core::sign_in::token_hash;
use tessera_core::{devices, Password, Pin};
use tessera_piv::{PivClient, VirtualCardTransport};
use tessera_server::app::router;
use tessera_server::serve::{serve_listener, ServerTls};
use tessera_server::{demo, Tessera};
use tokio_rustls::rustls;

const PIN: &str = "24681357";

/// A card issued to jdoe on the demo printer: its record, its 9A and 9C certificates and the
/// state file of the virtual card (still in the printer's encoder).
struct Issued {
    device: DeviceId,
    auth: CertificateRecord,
    signature: CertificateRecord,
    card: PathBuf,
}

async fn issue(t: &Tessera) -> Issued {
    let admin = support::actor(BuiltinRole::Administrator);
    let job = support::issue(t, &admin, demo::POLICY_ID, PIN).await;
    let device = job.device.expect("the card was issued");
    // The wizard's Continue: the printed card is handed over and activated.
    devices::activate(&t.services, &admin, &device, None)
        .await
        .unwrap();
    assert_eq!(
        t.store.device(&device).await.unwrap().state,
        DeviceState::Active
    );
    let certs = t.store.certificates_of_device(&device).await.unwrap();
    let of = |slot| certs.iter().find(|c| c.slot == slot).unwrap().clone();
    Issued {
        device,
        auth: of(Slot::PivAuthentication),
        signature: of(Slot::DigitalSignature),
        card: t.demo_printer.card_in_encoder().unwrap(),
    }
}

/// Links a new operator `id` to jdoe; returns the one-time password.
async fn link(t: &Tessera, id: &str) -> Password {
    operators::create(
        &t.services,
        &Actor::cli(),
        id,
        OperatorForm {
            display_name: id.into(),
            role: RoleId::new("help_desk"),
            scope: Scope::default(),
            enabled: true,
            user: Some(UserId::new("jdoe")),
        },
    )
    .await
    .unwrap()
}

fn presented(c: &CertificateRecord) -> PresentedCertificate {
    PresentedCertificate {
        serial: c.serial.clone(),
        der: c.der.clone(),
    }
}

async fn refusal(t: &Tessera, c: &PresentedCertificate) -> CardRefused {
    match sign_in_with_card(&t.services, c).await.unwrap() {
        Ok(s) => panic!(
            "signed in {} with a card that should be refused",
            s.operator
        ),
        Err(refused) => refused,
    }
}

// --- the TLS client: a key that stays on the virtual card ------------------------------------

/// The 9A key of a virtual card, for rustls: every signature is asked of the card, as a PKCS#11
/// module would (VERIFY PIN, then GENERAL AUTHENTICATE over the SHA-256 of the handshake).
#[derive(Debug)]
struct CardKey {
    card: PathBuf,
}

impl rustls::sign::SigningKey for CardKey {
    fn choose_scheme(
        &self,
        offered: &[rustls::SignatureScheme],
    ) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&rustls::SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| {
                Box::new(CardSigner {
                    card: self.card.clone(),
                }) as Box<dyn rustls::sign::Signer>
            })
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

#[derive(Debug)]
struct CardSigner {
    card: PathBuf,
}

impl rustls::sign::Signer for CardSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let digest = Sha256::digest(message).to_vec();
        let card = self.card.clone();
        // rustls signs synchronously inside the handshake; the card is driven on a thread of
        // its own, the way a PKCS#11 module blocks on its reader.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut card = PivClient::new(Box::new(VirtualCardTransport::open(&card)?));
                card.select().await?;
                card.verify_pin(&Pin::new(PIN)).await?;
                card.sign(Slot::PivAuthentication, KeyAlgorithm::EccP256, &digest)
                    .await
            })
        })
        .join()
        .unwrap()
        .map_err(|e| rustls::Error::General(format!("the card did not sign: {e}")))
    }

    fn scheme(&self) -> rustls::SignatureScheme {
        rustls::SignatureScheme::ECDSA_NISTP256_SHA256
    }
}

/// Offers the card's certificate whenever the server asks for one.
#[derive(Debug)]
struct CardInReader(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for CardInReader {
    fn resolve(
        &self,
        _acceptable_issuers: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A browser over HTTPS, with or without the card in its reader.
struct Browser {
    server: String,
    tls: tokio_rustls::TlsConnector,
}

struct Answer {
    status: u16,
    location: Option<String>,
    set_cookie: Option<String>,
    body: String,
}

impl Browser {
    fn new(server: &str, server_ca_pem: &str, card: Option<(&PathBuf, &[u8])>) -> Self {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(server_ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let config = match card {
            None => builder.with_no_client_auth(),
            Some((path, der)) => {
                let key = rustls::sign::CertifiedKey::new(
                    vec![der.to_vec().into()],
                    Arc::new(CardKey { card: path.clone() }),
                );
                builder.with_client_cert_resolver(Arc::new(CardInReader(Arc::new(key))))
            }
        };
        Self {
            server: server.to_owned(),
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        }
    }

    /// GET `path` on a new connection (a new handshake), sending `cookie`.
    async fn get(&self, path: &str, cookie: &str) -> Answer {
        use http_body_util::BodyExt;
        let authority = self.server.trim_start_matches("https://").to_owned();
        let tcp = tokio::net::TcpStream::connect(&authority).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = self.tls.connect(name, tcp).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(connection);
        let request = hyper::Request::builder()
            .uri(path)
            .header("host", &authority)
            .header("cookie", cookie)
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (location, set_cookie) = (header("location"), header("set-cookie"));
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            location,
            set_cookie,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

/// A server certificate for 127.0.0.1, self-signed (it is its own CA for the browser).
fn server_identity() -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Serves `t` over HTTPS as `tessera serve` does (asking for a card); returns its URL and the
/// certificate a browser trusts.
async fn serve_https(t: &Tessera) -> (String, String) {
    let (cert, key) = server_identity();
    let tls = ServerTls::from_pem("cert.pem", cert.as_bytes(), "key.pem", key.as_bytes())
        .unwrap()
        .accepting_cards(&t.services.ca.chain_pem())
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("https://{}", listener.local_addr().unwrap());
    let app = router(t.clone());
    tokio::spawn(async move {
        serve_listener(listener, app, Some(tls), std::future::pending())
            .await
            .unwrap()
    });
    (server, cert)
}

fn session_of(answer: &Answer) -> String {
    let cookie = answer.set_cookie.as_deref().expect("a session cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
    cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("tessera_session=")
        .expect("the session cookie")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_signs_in_with_the_card_until_it_is_terminated() {
    let (_dir, t) = support::open().await;
    let card = issue(&t).await;
    let password = link(&t, "jdoe-desk").await;
    let (server, server_ca) = serve_https(&t).await;

    // Without a card: the page offers the card, and /login/card says what to do.
    let no_card = Browser::new(&server, &server_ca, None);
    let login = no_card.get("/login", "").await;
    assert_eq!(login.status, 200);
    assert!(
        login.body.contains("Sign in with your card"),
        "{}",
        login.body
    );
    let refused = no_card.get("/login/card", "").await;
    assert_eq!(refused.status, 401);
    assert!(
        refused.body.contains("Your browser sent no certificate"),
        "{}",
        refused.body
    );

    // With the card: a session for the linked operator.
    let browser = Browser::new(&server, &server_ca, Some((&card.card, &card.auth.der)));
    let signed_in = browser.get("/login/card", "").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location.as_deref(), Some("/users"));
    let token = session_of(&signed_in);
    let stored = t
        .store
        .session(&token_hash(&token), t.services.clock.now())
        .await
        .unwrap()
        .unwrap();
    let operator = stored.operator;
    assert_eq!(operator.as_str(), "jdoe-desk");
    assert!(
        stored.card.is_some(),
        "the session knows the card that opened it"
    );
    let cookie = format!("tessera_session={token}");
    // The one-time password is still owed: the card does not skip it.
    let users = browser.get("/users", &cookie).await;
    assert_eq!(users.status, 303);
    assert_eq!(users.location.as_deref(), Some("/account/password"));
    operators::change_own_password(
        &t.services,
        &operator,
        &tessera_core::sign_in::token_hash(&token),
        password,
        Password::new("a card and a long passphrase"),
    )
    .await
    .unwrap();
    let users = browser.get("/users", &cookie).await;
    assert_eq!(users.status, 200, "{}", users.body);
    assert!(users.body.contains("jdoe"), "{}", users.body);

    // Terminated: its certificates are revoked, the same card is refused.
    devices::terminate(
        &t.services,
        &support::actor(BuiltinRole::Administrator),
        &card.device,
        Reason::Lost,
    )
    .await
    .unwrap();
    // The session the card opened ends with it, before the end of the shift.
    let users = browser.get("/users", &cookie).await;
    assert_eq!(users.status, 303, "{}", users.body);
    assert_eq!(users.location.as_deref(), Some("/login"));
    let refused = browser.get("/login/card", "").await;
    assert_eq!(refused.status, 403);
    assert!(refused
        .set_cookie
        .as_deref()
        .is_none_or(|c| !c.starts_with("tessera_session")));
    assert!(
        refused.body.contains("This card is revoked"),
        "{}",
        refused.body
    );

    let events = t.store.audit_events(None, 10_000).await.unwrap();
    let signed_in: Vec<_> = events
        .iter()
        .filter(|e| e.name == audit::OPERATOR_SIGNED_IN.name)
        .filter(|e| e.details["method"] == "card")
        .collect();
    assert_eq!(signed_in.len(), 1);
    assert_eq!(signed_in[0].operator.as_deref(), Some("jdoe-desk"));
    let refusals: Vec<_> = events
        .iter()
        .filter(|e| e.name == audit::CARD_SIGN_IN_REFUSED.name)
        .collect();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].details["reason"], "revoked");
    assert_eq!(refusals[0].details["serial"], card.auth.serial.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_checks_slot_status_card_and_operator() {
    let (_dir, t) = support::open().await;
    let svc = &t.services;
    let admin = support::actor(BuiltinRole::Administrator);
    let card = issue(&t).await;
    let auth = presented(&card.auth);

    // Nobody is linked to jdoe yet.
    assert_eq!(
        refusal(&t, &auth).await,
        CardRefused::NoOperator(UserId::new("jdoe"))
    );
    link(&t, "jdoe-desk").await;
    let session = sign_in_with_card(svc, &auth).await.unwrap().unwrap();
    assert_eq!(session.operator.as_str(), "jdoe-desk");

    // Only the PIV Authentication certificate signs in.
    assert_eq!(
        refusal(&t, &presented(&card.signature)).await,
        CardRefused::WrongSlot(Slot::DigitalSignature)
    );
    // A serial Tessera never issued, or another certificate under a serial it did.
    let mut unknown = auth.clone();
    unknown.serial = "0badc0de".into();
    assert_eq!(refusal(&t, &unknown).await, CardRefused::NotIssuedHere);
    let mut forged = auth.clone();
    forged.der = card.signature.der.clone();
    assert_eq!(refusal(&t, &forged).await, CardRefused::NotIssuedHere);

    // Suspended: the certificates are on hold; resumed, the card works again.
    devices::suspend(svc, &admin, &card.device, Reason::Forgotten)
        .await
        .unwrap();
    assert_eq!(refusal(&t, &auth).await, CardRefused::OnHold);
    devices::resume(svc, &admin, &card.device).await.unwrap();
    assert!(sign_in_with_card(svc, &auth).await.unwrap().is_ok());

    // The operator disabled; then two operators linked to the same person.
    let desk = OperatorId::new("jdoe-desk");
    let form = |enabled| OperatorForm {
        display_name: "jdoe-desk".into(),
        role: RoleId::new("help_desk"),
        scope: Scope::default(),
        enabled,
        user: Some(UserId::new("jdoe")),
    };
    operators::update(svc, &Actor::cli(), &desk, form(false))
        .await
        .unwrap();
    assert_eq!(
        refusal(&t, &auth).await,
        CardRefused::OperatorDisabled(desk.clone())
    );
    operators::update(svc, &Actor::cli(), &desk, form(true))
        .await
        .unwrap();
    link(&t, "jdoe-admin").await;
    let CardRefused::SeveralOperators(uid, mut ids) = refusal(&t, &auth).await else {
        panic!("two operators for one card");
    };
    ids.sort();
    assert_eq!(uid.as_str(), "jdoe");
    assert_eq!(ids, [OperatorId::new("jdoe-admin"), desk.clone()]);
    operators::delete(svc, &Actor::cli(), &OperatorId::new("jdoe-admin"))
        .await
        .unwrap();
    assert!(sign_in_with_card(svc, &auth).await.unwrap().is_ok());

    // Terminated: revoked for good.
    devices::terminate(svc, &admin, &card.device, Reason::Stolen)
        .await
        .unwrap();
    assert_eq!(refusal(&t, &auth).await, CardRefused::Revoked);

    // Each refusal is audited; the stranger's (an unknown certificate) without card or user.
    let refusals: Vec<_> = t
        .store
        .audit_events(None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.name == audit::CARD_SIGN_IN_REFUSED.name)
        .collect();
    let reasons: Vec<_> = refusals
        .iter()
        .map(|e| e.details["reason"].as_str().unwrap().to_owned())
        .collect();
    for reason in [
        "no_operator",
        "wrong_slot",
        "not_issued_here",
        "on_hold",
        "operator_disabled",
        "several_operators",
        "revoked",
    ] {
        assert!(reasons.iter().any(|r| r == reason), "{reason}: {reasons:?}");
    }
    let revoked = refusals
        .iter()
        .find(|e| e.details["reason"] == "revoked")
        .unwrap();
    assert_eq!(revoked.device.as_deref(), Some(card.device.as_str()));
    assert_eq!(revoked.user.as_deref(), Some("jdoe"));
}

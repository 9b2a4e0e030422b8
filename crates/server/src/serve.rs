//! Running the HTTP server until Ctrl-C or SIGTERM: plain HTTP, or HTTPS when the administrator
//! gives a certificate and its key ([`ServerTls`]). TLS is rustls on aws-lc-rs (TLS 1.2 and 1.3);
//! each connection's handshake runs in its own task, so a slow or silent client holds up no
//! other, and the finished connections go to axum like plain TCP ones (the portal, the REST API
//! and the stations' WebSockets alike). Over HTTPS every handshake asks, without requiring it,
//! for a client certificate under Tessera's CA: the one a card presents reaches the handlers as
//! [`ClientCertificate`] (card sign-in).

use crate::app::router;
use crate::wiring::Tessera;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;

/// A client has this long to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's TLS identity: its certificate chain and private key, checked to belong together;
/// and, once [`ServerTls::accepting_cards`] gave it Tessera's CA, the request for a client
/// certificate that lets an operator sign in with their card.
pub struct ServerTls {
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl Clone for ServerTls {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            acceptor: self.acceptor.clone(),
        }
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads the certificate chain (PEM: the server's certificate first, then the intermediate
    /// CAs) and its private key (PEM: PKCS#8, PKCS#1 or SEC1). The sentence of the error names
    /// the file and what is wrong with it.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, String> {
        let cert_pem = std::fs::read(cert).map_err(|e| {
            format!(
                "cannot read the TLS certificate file {}: {e}",
                cert.display()
            )
        })?;
        let key_pem = std::fs::read(key)
            .map_err(|e| format!("cannot read the TLS key file {}: {e}", key.display()))?;
        Self::from_pem(
            &cert.display().to_string(),
            &cert_pem,
            &key.display().to_string(),
            &key_pem,
        )
    }

    /// As [`ServerTls::from_pem_files`], from the files' contents; the names are for messages.
    pub fn from_pem(
        cert_name: &str,
        cert_pem: &[u8],
        key_name: &str,
        key_pem: &[u8],
    ) -> Result<Self, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the TLS certificate file {cert_name} is not PEM: {e:?}"))?;
        if chain.is_empty() {
            return Err(format!(
                "the TLS certificate file {cert_name} holds no certificate (expected -----BEGIN \
                 CERTIFICATE-----)"
            ));
        }
        warn_if_outdated(cert_name, &chain[0]);
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => format!(
                "the TLS key file {key_name} holds no private key (expected -----BEGIN PRIVATE \
                 KEY-----, unencrypted)"
            ),
            other => format!("the TLS key file {key_name} is not a PEM private key: {other:?}"),
        })?;
        let acceptor = acceptor(chain.clone(), key.clone_key(), None).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                format!(
                    "the TLS key in {key_name} does not belong to the certificate in {cert_name}"
                )
            }
            other => {
                format!(
                    "the TLS certificate {cert_name} and key {key_name} are not usable: {other}"
                )
            }
        })?;
        Ok(Self {
            chain,
            key,
            acceptor,
        })
    }

    /// Asks every client for a certificate issued under `ca_chain_pem` (Tessera's issuing CA and
    /// root) without requiring one: a browser with a Tessera card can sign in with it
    /// (`/login/card`), a browser or station without one connects as before. A certificate
    /// that does not chain to Tessera's CA, or is outside its validity, fails the handshake;
    /// revocation is left to the sign-in use case, which reads it from the database.
    pub fn accepting_cards(self, ca_chain_pem: &str) -> Result<Self, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_chain_pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("Tessera's CA chain is not PEM: {e:?}"))?;
            // The issuing CA is a trust anchor of its own: cards send only their 9A certificate,
            // not the issuing CA's.
            roots
                .add(cert)
                .map_err(|e| format!("Tessera's CA certificate is not usable for TLS: {e}"))?;
        }
        if roots.is_empty() {
            return Err("Tessera's CA chain holds no certificate".into());
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("client certificates cannot be checked against Tessera's CA: {e}"))?;
        let acceptor = acceptor(self.chain.clone(), self.key.clone_key(), Some(verifier))
            .map_err(|e| format!("TLS cannot be set up: {e}"))?;
        Ok(Self { acceptor, ..self })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The server's rustls configuration: HTTP/1.1 only (WebSocket upgrades included), with or
/// without a request for a client certificate.
fn acceptor(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    clients: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> Result<tokio_rustls::TlsAcceptor, rustls::Error> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let builder = match clients {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A certificate past its end (or before its start) makes every station refuse the server: say
/// so at start rather than leave it to the stations.
fn warn_if_outdated(name: &str, cert: &[u8]) {
    use x509_cert::der::Decode;
    let Ok(cert) = x509_cert::Certificate::from_der(cert) else {
        return;
    };
    let validity = &cert.tbs_certificate.validity;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    if validity.not_after.to_unix_duration() < now {
        tracing::warn!(certificate = %name, not_after = %validity.not_after,
            "the server's TLS certificate has expired: stations and browsers will refuse it");
    } else if validity.not_before.to_unix_duration() > now {
        tracing::warn!(certificate = %name, not_before = %validity.not_before,
            "the server's TLS certificate is not valid yet: stations and browsers will refuse it");
    }
}

/// Serves Tessera on `listen` until Ctrl-C or SIGTERM: HTTPS with `tls`, plain HTTP without.
pub async fn serve(
    tessera: Tessera,
    listen: SocketAddr,
    tls: Option<ServerTls>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("Operator Portal on {scheme}://{}", listener.local_addr()?);
    // Only a serving process takes over the jobs of a process that died (expired leases); CLI
    // commands never do, so running one beside a live server cannot touch its issuances.
    // Operators whose card Tessera issued sign in with it: the handshake asks for a certificate
    // under Tessera's own CA.
    let tls = tls
        .map(|tls| tls.accepting_cards(&tessera.services.ca.chain_pem()))
        .transpose()
        .map_err(std::io::Error::other)?;
    let recovery = tokio::spawn(tessera.runner.clone().recover_forever());
    // Jobs that another replica (or this one, while their station was away) queued for the
    // stations connected here.
    let dispatch = tokio::spawn(tessera.runner.clone().dispatch_forever());
    // The directory sync on its schedule, when a [directory] section asks for one.
    let directory_sync = tokio::spawn(crate::directory::run_schedule(tessera.clone()));
    let served = serve_listener(listener, router(tessera), tls, shutdown()).await;
    recovery.abort();
    dispatch.abort();
    directory_sync.abort();
    served
}

/// Marks the requests that came over the server's own TLS (a request extension), for pages that
/// show the server's URL.
#[derive(Clone, Copy, Debug)]
pub struct ServedOverTls;

/// The certificate the client presented in its TLS handshake, verified against Tessera's CA
/// (the leaf, DER), or None. Every request of the connection carries it, as
/// `ConnectInfo<ClientCertificate>`; only the card sign-in reads it.
#[derive(Clone, Debug, Default)]
pub struct ClientCertificate(pub Option<Arc<Vec<u8>>>);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for ClientCertificate
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        let (_, connection) = stream.io().get_ref();
        Self(
            connection
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| Arc::new(leaf.to_vec())),
        )
    }
}

/// Serves `app` on a bound listener until `stop` completes (then in-flight requests finish).
pub async fn serve_listener(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<ServerTls>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        None => {
            use axum::serve::ListenerExt;
            // Nagle off: station messages and API answers are small and each one is waited for.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
        }
        Some(tls) => {
            let app = app
                .layer(axum::middleware::map_response(secure_cookies))
                .layer(axum::middleware::map_response(strict_transport))
                .layer(axum::Extension(ServedOverTls));
            let app = app.into_make_service_with_connect_info::<ClientCertificate>();
            axum::serve(TlsListener::new(listener, tls)?, app)
                .with_graceful_shutdown(stop)
                .await
        }
    }
}

/// Over HTTPS the browser must never send the session cookies in plain text: every cookie the
/// portal sets is marked `Secure`.
async fn secure_cookies(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::header::{Entry, SET_COOKIE};
    use axum::http::HeaderValue;
    if let Entry::Occupied(mut cookies) = response.headers_mut().entry(SET_COOKIE) {
        for cookie in cookies.iter_mut() {
            let text = String::from_utf8_lossy(cookie.as_bytes());
            let secure = text
                .split(';')
                .any(|a| a.trim().eq_ignore_ascii_case("secure"));
            if !secure {
                if let Ok(marked) = HeaderValue::from_str(&format!("{text}; Secure")) {
                    *cookie = marked;
                }
            }
        }
    }
    response
}

/// Over HTTPS the browser is told to use nothing else for this host for a year (HSTS), so a
/// later `http://` link cannot expose the session.
async fn strict_transport(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static("max-age=31536000"),
    );
    response
}

/// TCP connections that finished their TLS handshake, for `axum::serve`.
pub struct TlsListener {
    local_addr: SocketAddr,
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    /// Accepts TCP connections and spawns their handshakes; ends with the listener.
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, tls: ServerTls) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        let acceptor = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, as axum does.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = tls.acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            local_addr,
            ready,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task never ends on its own: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

//! How the station checks the server it connects to over `https://` (a `wss://` WebSocket): rustls
//! on aws-lc-rs, TLS 1.2 and 1.3, with the Mozilla roots of webpki-roots and, optionally, the CA
//! certificates of a PEM file the administrator names (`--ca-file`) as trust anchors. A
//! certificate that does not check out ends the connection with a sentence that names the
//! problem; there is no fallback to plain text.

use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls;

/// The trust anchors for the server's certificate.
#[derive(Clone)]
pub struct ServerTrust {
    config: Arc<rustls::ClientConfig>,
    /// The CA file trusted beside the public roots, for messages.
    ca_file: Option<String>,
}

impl std::fmt::Debug for ServerTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTrust")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl Default for ServerTrust {
    fn default() -> Self {
        Self::public_roots()
    }
}

impl ServerTrust {
    /// The Mozilla roots only: a server with a certificate from a public CA.
    pub fn public_roots() -> Self {
        Self {
            config: client_config(public_roots()),
            ca_file: None,
        }
    }

    /// The public roots and the CA certificates of the PEM file at `path` (the organisation's CA
    /// that issued the server's certificate, or a self-signed server certificate itself).
    pub fn with_ca_file(path: &Path) -> Result<Self, String> {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
        Self::with_ca_pem(&path.display().to_string(), &pem)
    }

    /// As [`ServerTrust::with_ca_file`], from the file's content; `name` names it in messages.
    pub fn with_ca_pem(name: &str, pem: &[u8]) -> Result<Self, String> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = public_roots();
        let mut added = 0;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert =
                cert.map_err(|e| format!("the CA file {name} is not PEM certificates: {e:?}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("the CA file {name} holds an unusable certificate: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "the CA file {name} holds no certificate (expected -----BEGIN CERTIFICATE-----)"
            ));
        }
        Ok(Self {
            config: client_config(roots),
            ca_file: Some(name.to_owned()),
        })
    }

    /// The connector tokio-tungstenite uses for `wss://`.
    pub(crate) fn connector(&self) -> tokio_tungstenite::Connector {
        tokio_tungstenite::Connector::Rustls(self.config.clone())
    }

    /// The sentence for a failed TLS handshake with `server`, when the error is one.
    pub(crate) fn failure(&self, server: &str, e: &std::io::Error) -> Option<String> {
        use rustls::{CertificateError, Error};
        let tls = e.get_ref()?.downcast_ref::<Error>()?;
        let trust = match &self.ca_file {
            Some(f) => format!("neither the public roots nor the CA file {f} vouch for it"),
            None => "give the station the CA certificate that issued it with --ca-file, or give \
                     the server a certificate from a public CA"
                .to_owned(),
        };
        Some(match tls {
            Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                "the server at {server} presented a TLS certificate from an untrusted issuer \
                 (self-signed or signed by an unknown CA): {trust}"
            ),
            Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "the server at {server} presented a TLS certificate issued for another host name: \
                 use the name the certificate was issued for in --server, or give the server a \
                 certificate for this name"
            ),
            Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            ) => format!("the server at {server} presented an expired TLS certificate: renew it"),
            Error::InvalidCertificate(
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
            ) => format!(
                "the server at {server} presented a TLS certificate that is not valid yet: check \
                 the clocks of the server and this workstation"
            ),
            Error::InvalidCertificate(CertificateError::Revoked) => {
                format!("the server at {server} presented a revoked TLS certificate")
            }
            Error::InvalidCertificate(other) => {
                format!("the server at {server} presented a TLS certificate that is not valid: {other:?}")
            }
            other => format!(
                "TLS with the server at {server} failed: {other} (does it serve https:// on this \
                 port?)"
            ),
        })
    }
}

fn public_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

fn client_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Whether a URL's host is this machine (plain `http://` to it never leaves the machine).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// The host of an `http://` or `https://` URL (without port, user or path).
pub(crate) fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    authority.split(':').next().unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:8080/",
            "http://[::1]:8080",
            "http://127.0.0.53",
            "http://user@LOCALHOST",
        ] {
            assert!(is_loopback_host(host_of(url)), "{url}");
        }
        for url in [
            "http://cms.example.org:8080",
            "http://10.0.0.1",
            "http://[2001:db8::1]:80",
            "http://localhost.example.org",
        ] {
            assert!(!is_loopback_host(host_of(url)), "{url}");
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let e = ServerTrust::with_ca_pem("empty.pem", b"nothing here").unwrap_err();
        assert!(e.contains("holds no certificate"), "{e}");
        let e = ServerTrust::with_ca_file(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(e.contains("cannot read the CA file"), "{e}");
    }
}

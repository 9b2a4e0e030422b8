//! TLS for `ldaps://` and StartTLS: rustls on aws-lc-rs, the server's certificate checked against
//! the CA file the configuration names (an Active Directory domain's own CA, typically), or else
//! the Mozilla roots. A certificate is never accepted unchecked.

use crate::error::DirectoryError;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;

/// The client configuration for the directory's connections.
pub(crate) fn client_config(
    ca_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, DirectoryError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                DirectoryError::config(format!("cannot read ca_file {}: {e}", path.display()))
            })?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    DirectoryError::config(format!("ca_file {} is not PEM: {e:?}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    DirectoryError::config(format!(
                        "ca_file {} holds a certificate that cannot be a trust anchor: {e}",
                        path.display()
                    ))
                })?;
            }
            if roots.is_empty() {
                return Err(DirectoryError::config(format!(
                    "ca_file {} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
                    path.display()
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DirectoryError::config(format!("TLS cannot be set up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The rustls error inside an I/O error of a TLS handshake, if that is what it is.
pub(crate) fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref())
}

/// A TLS failure as a sentence: an untrusted or misnamed certificate says so.
pub(crate) fn explain(
    e: &rustls::Error,
    url: &str,
    host: &str,
    ca_file: Option<&Path>,
) -> DirectoryError {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            DirectoryError::CertificateNotTrusted {
                trusted_by: crate::error::trust_source(ca_file),
                detail: "its issuer is unknown".into(),
            }
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => DirectoryError::CertificateName {
            host: host.to_owned(),
            detail: "the name is not in its subject alternative names".into(),
        },
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            DirectoryError::Tls {
                url: url.to_owned(),
                detail: "the directory's certificate has expired".into(),
            }
        }
        rustls::Error::InvalidCertificate(C::Revoked) => DirectoryError::Tls {
            url: url.to_owned(),
            detail: "the directory's certificate is revoked".into(),
        },
        rustls::Error::InvalidCertificate(other) => DirectoryError::Tls {
            url: url.to_owned(),
            detail: format!("the directory's certificate is not acceptable ({other:?})"),
        },
        other => DirectoryError::Tls {
            url: url.to_owned(),
            detail: other.to_string(),
        },
    }
}

//! `ipps://`: the IPP driver over TLS against a small IPP printer on the loopback (rustls server,
//! one Get-Printer-Attributes answer per connection). A certificate from a CA the printer's CA file
//! names is trusted; a self-signed certificate without a CA file is refused with a sentence that
//! says so; a certificate for another name is refused too.
//!
//! The certificates in `tests/tls/` are test fixtures (P-256, valid for 100 years), made with:
//! `openssl req -x509 -new -key ca.key -days 36500 -subj "/O=Tessera tests/CN=Test Printer CA"
//! -addext basicConstraints=critical,CA:TRUE ...` for `ca.pem`, a leaf `printer.pem` for
//! `localhost` and `127.0.0.1` signed by it, and a self-signed leaf `self-signed.pem` for the same
//! names.

use ipp::model::{DelimiterTag, IppVersion, StatusCode};
use ipp::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;
use tessera_core::ports::CardPrinter;
use tessera_print::IppPrinter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

/// An idle printer's attributes, as an IPP response.
fn printer_attributes() -> Vec<u8> {
    let mut r =
        IppRequestResponse::new_response(IppVersion::v1_1(), StatusCode::SuccessfulOk, 1).unwrap();
    let p = DelimiterTag::PrinterAttributes;
    for (name, value) in [
        ("printer-state", IppValue::Enum(3)),
        ("printer-is-accepting-jobs", IppValue::Boolean(true)),
        (
            "document-format-supported",
            IppValue::MimeMediaType("application/pdf".try_into().unwrap()),
        ),
        (
            "printer-make-and-model",
            IppValue::TextWithoutLanguage("TLS Card Printer".try_into().unwrap()),
        ),
    ] {
        r.attributes_mut()
            .add(p, IppAttribute::with_name(name, value).unwrap());
    }
    r.to_bytes().to_vec()
}

/// Serves IPPS on a loopback port with the certificate `cert` and its key; returns the port.
async fn printer(cert: &str, key: &str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(listener, cert, key)
}

fn serve(listener: tokio::net::TcpListener, cert: &str, key: &str) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = vec![CertificateDer::from_pem_file(fixture(cert)).unwrap()];
    let key = PrivateKeyDer::from_pem_file(fixture(key)).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake is what some tests want: nothing more to do then.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                // Headers, then as many body bytes as Content-Length says.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let body_start = loop {
                    let n = tls.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&request[..body_start]).to_ascii_lowercase();
                assert!(head.starts_with("post "), "{head}");
                assert!(head.contains("content-type: application/ipp"), "{head}");
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                while request.len() < body_start + length {
                    let n = tls.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let body = printer_attributes();
                let mut answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/ipp\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                answer.extend_from_slice(&body);
                let _ = tls.write_all(&answer).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn a_printer_certified_by_the_configured_ca_is_trusted() {
    let port = printer("printer.pem", "printer-key.pem").await;
    let uri = format!("ipps://localhost:{port}/ipp/print");
    let ca = fixture("ca.pem").display().to_string();
    let p = IppPrinter::new("TLS printer", &uri, None)
        .unwrap()
        .with_ca_file(&ca)
        .unwrap();
    let caps = p.capabilities().await.unwrap();
    assert_eq!(caps.make_and_model, "TLS Card Printer");
    assert_eq!(p.status().await.state, "Ready");
    // By address too: the certificate names 127.0.0.1.
    let by_ip = IppPrinter::new(
        "TLS printer",
        &format!("ipps://127.0.0.1:{port}/ipp/print"),
        None,
    )
    .unwrap()
    .with_ca_file(&ca)
    .unwrap();
    assert_eq!(by_ip.status().await.state, "Ready");
}

#[tokio::test]
async fn a_self_signed_printer_without_a_ca_file_is_refused_with_a_reason() {
    let port = printer("self-signed.pem", "self-signed-key.pem").await;
    let uri = format!("ipps://localhost:{port}/ipp/print");
    let p = IppPrinter::new("TLS printer", &uri, None).unwrap();
    let state = p.status().await.state;
    assert!(
        state.contains("self-signed or signed by an unknown CA"),
        "{state}"
    );
    assert!(state.contains(&uri), "{state}");
    assert!(state.contains("CA file"), "{state}");
    let err = p.capabilities().await.unwrap_err();
    assert!(err.message.contains("self-signed"), "{err}");

    // The company CA does not vouch for it either.
    let ca = fixture("ca.pem").display().to_string();
    let p = IppPrinter::new("TLS printer", &uri, None)
        .unwrap()
        .with_ca_file(&ca)
        .unwrap();
    let state = p.status().await.state;
    assert!(state.contains(&format!("nor the CA file {ca}")), "{state}");

    // Naming the printer's own certificate as the CA file trusts exactly that printer.
    let own = fixture("self-signed.pem").display().to_string();
    let p = IppPrinter::new("TLS printer", &uri, None)
        .unwrap()
        .with_ca_file(&own)
        .unwrap();
    assert_eq!(p.status().await.state, "Ready");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    // 127.0.0.2 is the loopback too (on Linux), but not among the certificate's names.
    let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.2:0").await else {
        eprintln!("127.0.0.2 cannot be bound here: skipped");
        return;
    };
    let port = serve(listener, "printer.pem", "printer-key.pem");
    let uri = format!("ipps://127.0.0.2:{port}/ipp/print");
    let ca = fixture("ca.pem").display().to_string();
    let p = IppPrinter::new("TLS printer", &uri, None)
        .unwrap()
        .with_ca_file(&ca)
        .unwrap();
    let state = p.status().await.state;
    assert!(state.contains("issued for another host name"), "{state}");
}

#[test]
fn ca_files_are_checked() {
    let uri = "ipps://printer.example/ipp/print";
    let missing = IppPrinter::new("P", uri, None)
        .unwrap()
        .with_ca_file("/nonexistent/ca.pem")
        .unwrap_err();
    assert!(missing.message.contains("cannot be read"), "{missing}");
    let not_pem = IppPrinter::new("P", uri, None)
        .unwrap()
        .with_ca_file(&fixture("../render.rs").display().to_string())
        .unwrap_err();
    assert!(not_pem.message.contains("no certificate"), "{not_pem}");
    let plain = IppPrinter::new("P", "ipp://printer.example/ipp/print", None)
        .unwrap()
        .with_ca_file(&fixture("ca.pem").display().to_string())
        .unwrap_err();
    assert!(plain.message.contains("does not use TLS"), "{plain}");
}

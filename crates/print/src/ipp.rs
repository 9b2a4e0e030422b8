//! [`IppPrinter`]: a card printer reached over IPP, a CUPS queue or an IPP Everywhere printer.
//!
//! Printing is Get-Printer-Attributes (is it ready, what does it take), Print-Job with the card's
//! PDF (or the front PNG where PDF is refused), retried while the printer answers
//! server-error-busy (IPP Everywhere printers take one job at a time), then Get-Job-Attributes
//! until the job is completed, aborted or canceled. Every wait is bounded ([`IppLimits`]), and
//! what the printer says is turned into sentences an operator can act on ("Out of cards: load
//! blank cards").
//!
//! The encoder of such a printer is an ordinary PC/SC reader: [`CardPrinter::connect_encoder`]
//! answers None and the station connects through its reader provider. Feeding is a no-op: card
//! printers move the card to the encoder or print head themselves when a job starts.
//!
//! Requests travel as HTTP/1.1 POSTs over a TCP connection: plain for `ipp://` and `http://`, TLS
//! (rustls on aws-lc-rs) for `ipps://` and `https://`. The printer's certificate must chain to one
//! of the Mozilla roots (webpki-roots) or to a CA the administrator names in a PEM file
//! ([`IppPrinter::with_ca_file`]), and be issued for the host of the URI; a self-signed or
//! otherwise unknown certificate ends the connection with a sentence that says so.

use crate::render::SvgRenderer;
use ::ipp::attribute::IppAttribute;
use ::ipp::model::{DelimiterTag, StatusCode};
use ::ipp::operation::builder::IppOperationBuilder;
use ::ipp::operation::IppOperation;
use ::ipp::payload::IppPayload;
use ::ipp::request::IppRequestResponse;
use ::ipp::value::IppValue;
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::ids::LayoutId;
use tessera_core::model::Layout;
use tessera_core::ports::{
    CardData, CardPrinter, PortError, PrintReceipt, PrinterInfo, RenderedCard,
};
use tokio_rustls::rustls;

/// The largest IPP response accepted. Printer attributes with a media database are tens of
/// kilobytes; more than this is a misbehaving or hostile peer.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// CR80 in hundredths of a millimetre, as IPP's media-size counts.
const CR80_X: i32 = 5398;
const CR80_Y: i32 = 8560;
/// How far a media size may stray from CR80 and still be the card (1 mm).
const CR80_TOLERANCE: i32 = 100;
/// The PWG self-describing name of a CR80 card, sent when the printer takes custom sizes.
pub const CR80_CUSTOM_MEDIA: &str = "custom_cr80_53.98x85.6mm";

/// How long the driver waits for each thing. Defaults suit a desk printer on a LAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IppLimits {
    /// One request and its answer, connection included.
    pub request: Duration,
    /// How long to keep retrying while the printer is busy with another job.
    pub busy: Duration,
    /// How long a job may take from acceptance to completed.
    pub job: Duration,
    /// How long a job may sit behind a printer problem (jam, no cards) before it is canceled.
    pub stalled: Duration,
    /// Between two Get-Job-Attributes.
    pub poll: Duration,
}

impl Default for IppLimits {
    fn default() -> Self {
        Self {
            request: Duration::from_secs(15),
            busy: Duration::from_secs(60),
            job: Duration::from_secs(120),
            stalled: Duration::from_secs(30),
            poll: Duration::from_millis(300),
        }
    }
}

/// `printer-state`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PrinterState {
    Idle,
    Processing,
    Stopped,
    #[default]
    Unknown,
}

impl PrinterState {
    fn from_enum(v: Option<i32>) -> Self {
        match v {
            Some(3) => Self::Idle,
            Some(4) => Self::Processing,
            Some(5) => Self::Stopped,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Processing => "processing",
            Self::Stopped => "stopped",
            Self::Unknown => "unknown",
        }
    }
}

/// What a printer says about itself (Get-Printer-Attributes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IppCapabilities {
    pub make_and_model: String,
    /// `document-format-supported`.
    pub document_formats: Vec<String>,
    /// `media-supported` keywords.
    pub media: Vec<String>,
    /// Sizes from `media-col-database` / `media-size-supported`, in hundredths of a millimetre.
    pub media_sizes: Vec<(i32, i32)>,
    /// The media keyword that is a CR80 card, if the printer lists one.
    pub card_media: Option<String>,
    /// Whether the printer takes custom sizes (`custom_min_`/`custom_max_` or size ranges).
    pub custom_sizes: bool,
    pub sides: Vec<String>,
    pub state: PrinterState,
    pub state_reasons: Vec<String>,
    pub state_message: String,
    pub accepting_jobs: bool,
}

impl IppCapabilities {
    /// What to say to the operator about the printer's state.
    pub fn describe(&self) -> String {
        describe_state(
            self.state,
            &self.state_reasons,
            self.accepting_jobs,
            &self.state_message,
        )
    }

    /// Why the printer cannot take a card now, or None when it can.
    pub fn blocking_problem(&self) -> Option<String> {
        let blocked = self.state == PrinterState::Stopped
            || !self.accepting_jobs
            || self
                .state_reasons
                .iter()
                .any(|r| reason_sentence(r).is_some_and(|(_, blocking)| blocking));
        blocked.then(|| self.describe())
    }

    /// The document format to send: PDF (both sides) where accepted, else a PNG of the front.
    pub fn document_format(&self) -> Option<&'static str> {
        let has = |f: &str| {
            self.document_formats
                .iter()
                .any(|d| d.eq_ignore_ascii_case(f))
        };
        // An empty list means the printer did not say; PDF is what IPP Everywhere requires.
        if self.document_formats.is_empty() || has("application/pdf") {
            Some("application/pdf")
        } else if has("image/png") {
            Some("image/png")
        } else if has("application/octet-stream") {
            // Auto-typing printers sniff the document; PDF is the richest thing we have.
            Some("application/pdf")
        } else {
            None
        }
    }

    /// The `media` keyword for a card: the printer's own CR80 keyword, else the PWG custom name
    /// where custom sizes are taken, else nothing (the PDF's page size then says it).
    pub fn media_for_card(&self) -> Option<String> {
        if let Some(m) = &self.card_media {
            return Some(m.clone());
        }
        self.custom_sizes.then(|| CR80_CUSTOM_MEDIA.to_owned())
    }

    pub fn duplex(&self) -> bool {
        self.sides.iter().any(|s| s == "two-sided-long-edge")
    }
}

/// The sentence for one `printer-state-reasons` keyword and whether it stops a card from being
/// printed; None for reasons that need no words (`none`, reports the operator can ignore).
///
/// Suffixes are dropped on purpose: ippeveprinter (and some CUPS backends) suffix by printer
/// state, not by severity, so `media-empty-report` on an idle card printer still means no card
/// can be printed.
fn reason_sentence(reason: &str) -> Option<(&'static str, bool)> {
    let base = reason
        .strip_suffix("-error")
        .or_else(|| reason.strip_suffix("-warning"))
        .or_else(|| reason.strip_suffix("-report"))
        .unwrap_or(reason);
    Some(match base {
        "media-jam" | "jam" => ("Card jam: open the printer and remove the card", true),
        "media-empty" | "media-needed" | "input-tray-missing" => {
            ("Out of cards: load blank cards", true)
        }
        "marker-supply-empty" | "toner-empty" | "marker-ink-almost-empty" => {
            ("Ribbon empty: replace the ribbon", true)
        }
        "cover-open" | "door-open" | "interlock-open" => {
            ("Cover open: close the printer's cover", true)
        }
        "offline" | "shutdown" | "connecting-to-device" | "timed-out" => (
            "Offline: check that the printer is switched on and connected",
            true,
        ),
        "paused" | "moving-to-paused" => ("Paused: resume the printer", true),
        "marker-waste-full" => ("Waste full: empty the printer's waste bin", true),
        "media-low" => ("few blank cards left", false),
        "marker-supply-low" | "toner-low" => ("ribbon low", false),
        _ => return None,
    })
}

/// Printer state and reasons as the sentence an operator reads on the Printers page.
pub fn describe_state(
    state: PrinterState,
    reasons: &[String],
    accepting_jobs: bool,
    message: &str,
) -> String {
    let sentences: Vec<(&str, bool)> = reasons.iter().filter_map(|r| reason_sentence(r)).collect();
    if let Some((s, _)) = sentences.iter().find(|(_, blocking)| *blocking) {
        return (*s).to_owned();
    }
    let warnings: Vec<&str> = sentences.iter().map(|(s, _)| *s).collect();
    let with_warnings = |base: &str| {
        if warnings.is_empty() {
            base.to_owned()
        } else {
            format!("{base} ({})", warnings.join(", "))
        }
    };
    match state {
        PrinterState::Stopped => {
            let m = message.trim().trim_end_matches('.');
            if m.is_empty() || m.eq_ignore_ascii_case("stopped") {
                "Stopped: the printer needs attention".into()
            } else {
                format!("Stopped: {m}")
            }
        }
        _ if !accepting_jobs => "Not accepting jobs: enable the queue on the print server".into(),
        PrinterState::Processing => with_warnings("Printing"),
        PrinterState::Idle => with_warnings("Ready"),
        PrinterState::Unknown => with_warnings("Ready (state not reported)"),
    }
}

/// Where requests go, from the configured URI.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    host: String,
    port: u16,
    /// `ipps://` and `https://`: TLS.
    tls: bool,
    /// Path and query of the HTTP request.
    path: String,
    /// The `printer-uri` operation attribute: always `ipp://` with the port spelled out.
    printer_uri: http::Uri,
}

impl Endpoint {
    fn parse(uri: &str) -> Result<Self, PortError> {
        let bad = |why: &str| PortError::new(format!("the printer URI {uri:?} {why}"));
        let parsed: http::Uri = uri
            .trim()
            .parse()
            .map_err(|_| bad("is not a URI (expected ipp://host:port/ipp/print)"))?;
        let (default_port, tls) =
            match parsed.scheme_str() {
                Some("ipp") => (631, false),
                Some("http") => (80, false),
                Some("ipps") => (631, true),
                Some("https") => (443, true),
                _ => return Err(bad(
                    "must start with ipp://, ipps://, http:// or https:// (or spool: for a folder)",
                )),
            };
        let authority = parsed.authority().ok_or_else(|| bad("has no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        let port = authority.port_u16().unwrap_or(default_port);
        let path = parsed
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        let host_in_uri = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let scheme = if tls { "ipps" } else { "ipp" };
        let printer_uri = format!("{scheme}://{host_in_uri}:{port}{path}")
            .parse()
            .map_err(|_| bad("cannot be used as a printer-uri"))?;
        Ok(Self {
            host,
            port,
            tls,
            path,
            printer_uri,
        })
    }

    fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a request did not get an IPP answer.
#[derive(Debug)]
enum Transport {
    /// Refused, timed out, reset: the printer is not there.
    Unreachable(String),
    /// Something answered, but not IPP.
    Protocol(String),
    /// The TLS handshake failed: the sentence says why (an untrusted certificate, mostly).
    Tls(String),
}

/// The TLS client of `ipps://` printers: aws-lc-rs, TLS 1.2 and 1.3, the Mozilla roots and the
/// certificates of `ca_pem` (a PEM file's content) as trust anchors.
fn tls_config(ca_pem: Option<(&str, &[u8])>) -> Result<Arc<rustls::ClientConfig>, PortError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some((path, pem)) = ca_pem {
        use rustls::pki_types::pem::PemObject;
        let mut added = 0;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| {
                PortError::new(format!("the CA file {path} is not PEM certificates: {e:?}"))
            })?;
            roots.add(cert).map_err(|e| {
                PortError::new(format!(
                    "the CA file {path} holds an unusable certificate: {e}"
                ))
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(PortError::new(format!(
                "the CA file {path} holds no certificate (expected -----BEGIN CERTIFICATE-----)"
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PortError::new(format!("TLS cannot be set up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What went wrong in a TLS handshake, for the operator.
fn tls_failure(uri: &str, ca_file: Option<&str>, e: &std::io::Error) -> Transport {
    use rustls::{CertificateError, Error};
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) else {
        return Transport::Unreachable(e.to_string());
    };
    let trust = match ca_file {
        Some(f) => format!("neither the public roots nor the CA file {f} vouch for it"),
        None => "name its CA certificate in the printer's CA file, or use a certificate from a \
                 public CA"
            .to_owned(),
    };
    Transport::Tls(match tls {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "The printer at {uri} presented a TLS certificate that is self-signed or signed by an \
             unknown CA: {trust}"
        ),
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "The printer at {uri} presented a TLS certificate issued for another host name: use \
             the name the certificate was issued for in the URI"
        ),
        Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => format!("The printer at {uri} presented an expired TLS certificate: renew it"),
        Error::InvalidCertificate(other) => {
            format!("The printer at {uri} presented a TLS certificate that is not valid: {other:?}")
        }
        other => format!("TLS with the printer at {uri} failed: {other}"),
    })
}

/// A card printer reached over IPP.
pub struct IppPrinter {
    name: String,
    uri: String,
    endpoint: Endpoint,
    encoder_reader: Option<String>,
    limits: IppLimits,
    /// `ipps://` printers: the TLS client, and the CA file it trusts beside the public roots.
    tls: Option<Arc<rustls::ClientConfig>>,
    ca_file: Option<String>,
}

impl std::fmt::Debug for IppPrinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IppPrinter")
            .field("name", &self.name)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl IppPrinter {
    /// A printer at `uri` (`ipp://host:port/ipp/print`, `http://...`), whose encoder is the
    /// PC/SC reader `encoder_reader`. Fails only on a URI that cannot be used.
    pub fn new(
        name: impl Into<String>,
        uri: &str,
        encoder_reader: Option<String>,
    ) -> Result<Self, PortError> {
        let endpoint = Endpoint::parse(uri)?;
        let tls = if endpoint.tls {
            Some(tls_config(None)?)
        } else {
            None
        };
        Ok(Self {
            name: name.into(),
            uri: uri.trim().to_owned(),
            endpoint,
            encoder_reader,
            limits: IppLimits::default(),
            tls,
            ca_file: None,
        })
    }

    /// For an `ipps://` printer, trusts the CA certificates of the PEM file at `path` besides the
    /// public roots (a printer with a certificate from the company CA, or a self-signed one named
    /// here). Fails when the file cannot be read or holds no certificate, or when the URI is not
    /// `ipps://`/`https://`.
    pub fn with_ca_file(mut self, path: &str) -> Result<Self, PortError> {
        let path = path.trim();
        if !self.endpoint.tls {
            return Err(PortError::new(format!(
                "a CA file is for ipps:// printers; {} does not use TLS",
                self.uri
            )));
        }
        let pem = std::fs::read(path)
            .map_err(|e| PortError::new(format!("the CA file {path} cannot be read: {e}")))?;
        self.tls = Some(tls_config(Some((path, &pem)))?);
        self.ca_file = Some(path.to_owned());
        Ok(self)
    }

    pub fn with_limits(mut self, limits: IppLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn unreachable(&self) -> String {
        format!("Not reachable at {}: check the cable and power", self.uri)
    }

    /// Get-Printer-Attributes, read into [`IppCapabilities`].
    pub async fn capabilities(&self) -> Result<IppCapabilities, PortError> {
        let op = IppOperationBuilder::get_printer_attributes(self.endpoint.printer_uri.clone())
            .attributes([
                "printer-make-and-model",
                "document-format-supported",
                "media-supported",
                "media-col-database",
                "media-size-supported",
                "sides-supported",
                "printer-state",
                "printer-state-reasons",
                "printer-state-message",
                "printer-is-accepting-jobs",
            ])
            .build()
            .map_err(|e| PortError::new(format!("cannot build the IPP request: {e}")))?;
        let resp = self.call(op).await?;
        let status = resp.header().status_code();
        if !status.is_success() {
            return Err(PortError::new(format!(
                "The printer {} refused to describe itself: {}",
                self.name,
                status_sentence(&resp)
            )));
        }
        Ok(capabilities_from(&resp))
    }

    /// Sends one operation and parses the answer, mapping transport failures to sentences.
    async fn call(&self, op: impl IppOperation) -> Result<IppRequestResponse, PortError> {
        let mut body = Vec::new();
        op.into_ipp_request()
            .into_read()
            .read_to_end(&mut body)
            .map_err(|e| PortError::new(format!("cannot build the IPP request: {e}")))?;
        match self.post(body).await {
            Ok(bytes) => parse_response(bytes).map_err(|e| {
                PortError::new(format!(
                    "The printer {} gave an answer that is not IPP: {e}",
                    self.name
                ))
            }),
            Err(Transport::Unreachable(detail)) => {
                tracing::warn!(printer = %self.name, uri = %self.uri, %detail, "printer unreachable");
                Err(PortError::new(self.unreachable()))
            }
            Err(Transport::Protocol(detail)) => Err(PortError::new(format!(
                "The printer at {} does not answer as an IPP printer: {detail}",
                self.uri
            ))),
            Err(Transport::Tls(sentence)) => {
                tracing::warn!(printer = %self.name, uri = %self.uri, %sentence, "TLS failed");
                Err(PortError::new(sentence))
            }
        }
    }

    /// One HTTP/1.1 POST of an IPP message on a fresh connection, within the request limit.
    async fn post(&self, body: Vec<u8>) -> Result<Bytes, Transport> {
        let fut = async {
            let stream =
                tokio::net::TcpStream::connect((self.endpoint.host.as_str(), self.endpoint.port))
                    .await
                    .map_err(|e| Transport::Unreachable(e.to_string()))?;
            match &self.tls {
                None => self.exchange(stream, body).await,
                Some(config) => {
                    let name = rustls::pki_types::ServerName::try_from(self.endpoint.host.clone())
                        .map_err(|e| Transport::Tls(format!("{}: {e}", self.uri)))?;
                    let stream = tokio_rustls::TlsConnector::from(config.clone())
                        .connect(name, stream)
                        .await
                        .map_err(|e| tls_failure(&self.uri, self.ca_file.as_deref(), &e))?;
                    self.exchange(stream, body).await
                }
            }
        };
        match tokio::time::timeout(self.limits.request, fut).await {
            Ok(result) => result,
            Err(_) => Err(Transport::Unreachable(format!(
                "no answer within {} s",
                self.limits.request.as_secs()
            ))),
        }
    }

    /// The request and its answer on an open connection, plain or TLS.
    async fn exchange<S>(&self, stream: S, body: Vec<u8>) -> Result<Bytes, Transport>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| Transport::Unreachable(e.to_string()))?;
        // The connection task ends with the exchange; abort it in any case when done.
        let driver = tokio::spawn(conn);
        let _abort = AbortOnDrop(driver);
        let request = http::Request::post(self.endpoint.path.as_str())
            .header(http::header::HOST, self.endpoint.host_header())
            .header(http::header::CONTENT_TYPE, "application/ipp")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Transport::Protocol(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Transport::Unreachable(e.to_string()))?;
        if response.status() != http::StatusCode::OK {
            return Err(Transport::Protocol(format!("HTTP {}", response.status())));
        }
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| Transport::Protocol(e.to_string()))?;
        Ok(body.to_bytes())
    }

    /// Print-Job, retried while the printer is busy; returns the job id and notes for the receipt.
    async fn submit(
        &self,
        job_name: &str,
        card: &RenderedCard,
        caps: &IppCapabilities,
    ) -> Result<(i32, Vec<String>), PortError> {
        let mut notes = Vec::new();
        let mut format = caps.document_format().ok_or_else(|| {
            PortError::new(format!(
                "The printer {} accepts neither PDF nor PNG (it accepts {})",
                self.name,
                caps.document_formats.join(", ")
            ))
        })?;
        let mut optional = true;
        let started = Instant::now();
        let mut backoff = Duration::from_millis(250);
        loop {
            let (document, two_sided) = match format {
                "image/png" => (card.front_png.clone(), false),
                _ => (card.pdf.clone(), card.back_png.is_some()),
            };
            let mut builder = IppOperationBuilder::print_job(
                self.endpoint.printer_uri.clone(),
                IppPayload::new(std::io::Cursor::new(document)),
            )
            .user_name("tessera")
            .job_title(truncate(job_name, 200))
            .document_format(format);
            if optional {
                if let Some(media) = caps.media_for_card() {
                    builder = builder.attribute(keyword("media", &media)?);
                }
                let sides = if two_sided && caps.duplex() {
                    "two-sided-long-edge"
                } else {
                    "one-sided"
                };
                if caps.sides.iter().any(|s| s == sides) {
                    builder = builder.attribute(keyword("sides", sides)?);
                }
            }
            let op = builder
                .build()
                .map_err(|e| PortError::new(format!("cannot build the print job: {e}")))?;
            let resp = self.call(op).await?;
            match resp.header().status_code() {
                s if s.is_success() => {
                    let id = job_id(&resp).ok_or_else(|| {
                        PortError::new(format!(
                            "The printer {} accepted the job but gave no job id",
                            self.name
                        ))
                    })?;
                    if format == "image/png" && card.back_png.is_some() {
                        notes.push(
                            "front side only: the printer does not accept PDF, so the back was \
                             not printed"
                                .to_owned(),
                        );
                    }
                    return Ok((id, notes));
                }
                StatusCode::ServerErrorBusy | StatusCode::ServerErrorServiceUnavailable => {
                    if started.elapsed() + backoff > self.limits.busy {
                        return Err(PortError::new(format!(
                            "The printer {} stayed busy with another job for {} s: try again \
                             when it has finished",
                            self.name,
                            self.limits.busy.as_secs()
                        )));
                    }
                    tracing::info!(printer = %self.name, "printer busy with another job, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                // Media and sides are wishes; a strict printer that refuses them prints anyway.
                StatusCode::ClientErrorAttributesOrValuesNotSupported
                | StatusCode::ClientErrorConflictingAttributes
                    if optional =>
                {
                    optional = false;
                }
                StatusCode::ClientErrorDocumentFormatNotSupported
                    if format == "application/pdf"
                        && caps.document_formats.iter().any(|f| f == "image/png") =>
                {
                    format = "image/png";
                }
                _ => {
                    return Err(PortError::new(format!(
                        "The printer {} refused the job: {}",
                        self.name,
                        status_sentence(&resp)
                    )))
                }
            }
        }
    }

    /// Follows a job until it ends, within the job limit.
    async fn follow(&self, job: i32) -> Result<(), PortError> {
        let started = Instant::now();
        let mut stalled_since: Option<Instant> = None;
        let mut failures = 0u32;
        loop {
            let op =
                IppOperationBuilder::get_job_attributes(self.endpoint.printer_uri.clone(), job)
                    .build()
                    .map_err(|e| PortError::new(format!("cannot build the IPP request: {e}")))?;
            match self.call(op).await {
                Ok(resp) if resp.header().status_code().is_success() => {
                    failures = 0;
                    let state = JobState::of(&resp);
                    match state.state {
                        9 => return Ok(()),
                        7 | 8 => {
                            // The printer's own reasons say why more clearly than the job's.
                            let printer = self.capabilities().await.ok();
                            return Err(PortError::new(job_failure(
                                &self.name,
                                &state,
                                printer.as_ref(),
                            )));
                        }
                        _ => {}
                    }
                    // A job held up by the printer (no cards, jam) is canceled after a while so
                    // that it does not print unattended once someone clears the problem.
                    let problem = match self.capabilities().await {
                        Ok(caps) if state.state == 6 || caps.blocking_problem().is_some() => {
                            Some(caps.blocking_problem().unwrap_or_else(|| caps.describe()))
                        }
                        _ => None,
                    };
                    match (problem, stalled_since) {
                        (Some(problem), Some(since)) if since.elapsed() >= self.limits.stalled => {
                            self.cancel(job).await;
                            return Err(PortError::new(format!(
                                "The printer {} stopped printing the card: {problem}. The job was \
                                 canceled; print the card again once the printer is ready",
                                self.name
                            )));
                        }
                        (Some(_), None) => stalled_since = Some(Instant::now()),
                        (None, _) => stalled_since = None,
                        _ => {}
                    }
                }
                Ok(resp) => {
                    return Err(PortError::new(format!(
                        "The printer {} lost track of job {job}: {}",
                        self.name,
                        status_sentence(&resp)
                    )))
                }
                Err(e) => {
                    // One dropped answer is not a lost printer; three in a row are.
                    failures += 1;
                    if failures >= 3 {
                        return Err(e);
                    }
                }
            }
            if started.elapsed() >= self.limits.job {
                self.cancel(job).await;
                return Err(PortError::new(format!(
                    "The printer {} did not finish the card within {} s; the job was canceled",
                    self.name,
                    self.limits.job.as_secs()
                )));
            }
            tokio::time::sleep(self.limits.poll).await;
        }
    }

    /// Cancel-Job, best effort: the error that led here is the one worth reporting.
    async fn cancel(&self, job: i32) {
        if let Ok(op) = IppOperationBuilder::cancel_job(self.endpoint.printer_uri.clone(), job)
            .user_name("tessera")
            .build()
        {
            if let Err(e) = self.call(op).await {
                tracing::warn!(printer = %self.name, job, error = %e, "could not cancel the job");
            }
        }
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[async_trait]
impl CardPrinter for IppPrinter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "ipp"
    }

    fn encoder_reader(&self) -> Option<&str> {
        self.encoder_reader.as_deref()
    }

    async fn status(&self) -> PrinterInfo {
        // The wizard lists every printer's state before the operator can go on: a printer that
        // swallows packets must not hold the page for the whole request limit.
        let limit = self.limits.request.min(Duration::from_secs(5));
        let state = match tokio::time::timeout(limit, self.capabilities()).await {
            Ok(Ok(caps)) => caps.describe(),
            Ok(Err(e)) => e.message,
            Err(_) => self.unreachable(),
        };
        PrinterInfo {
            name: self.name.clone(),
            kind: "ipp".into(),
            encoder_reader: self.encoder_reader.clone(),
            state,
        }
    }

    async fn print(&self, job_name: &str, card: &RenderedCard) -> Result<PrintReceipt, PortError> {
        let caps = self.capabilities().await?;
        if let Some(problem) = caps.blocking_problem() {
            return Err(PortError::new(format!(
                "The printer {} cannot print now: {problem}",
                self.name
            )));
        }
        let (job, notes) = self.submit(job_name, card, &caps).await?;
        tracing::info!(printer = %self.name, job, "print job accepted");
        self.follow(job).await?;
        let mut message = format!("Printed on {} (job {job})", self.name);
        for note in notes {
            message.push_str("; ");
            message.push_str(&note);
        }
        Ok(PrintReceipt {
            printer_job: job.to_string(),
            state: "completed".into(),
            message,
            files: Vec::new(),
        })
    }
}

/// `job-state` and what the printer said with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct JobState {
    state: i32,
    reasons: Vec<String>,
    message: String,
}

impl JobState {
    fn of(resp: &IppRequestResponse) -> Self {
        Self {
            state: attr(resp, DelimiterTag::JobAttributes, "job-state")
                .and_then(int)
                .unwrap_or(0),
            reasons: attr(resp, DelimiterTag::JobAttributes, "job-state-reasons")
                .map(strings)
                .unwrap_or_default(),
            message: attr(resp, DelimiterTag::JobAttributes, "job-state-message")
                .map(|v| strings(v).join(" "))
                .unwrap_or_default(),
        }
    }
}

/// The sentence for an aborted or canceled job.
fn job_failure(printer: &str, job: &JobState, caps: Option<&IppCapabilities>) -> String {
    let verb = if job.state == 7 {
        "canceled"
    } else {
        "aborted"
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(problem) = caps.and_then(IppCapabilities::blocking_problem) {
        parts.push(problem);
    }
    let message = job.message.trim().trim_end_matches('.');
    let generic = [
        "job aborted",
        "job canceled",
        "job stopped",
        "job completed",
        "job printing",
    ];
    if !message.is_empty() && !generic.contains(&message.to_ascii_lowercase().as_str()) {
        parts.push(message.to_owned());
    }
    for reason in &job.reasons {
        let s = match reason.as_str() {
            "job-canceled-by-user" => "canceled by a user",
            "job-canceled-by-operator" => "canceled at the printer",
            "job-canceled-at-device" => "canceled at the printer's panel",
            "aborted-by-system" => "the printer gave up on it",
            "document-format-error" => "the printer could not read the card document",
            "document-unprintable-error" => "the printer could not print the card document",
            "job-incoming" | "job-printing" | "none" | "job-completed-with-errors" => continue,
            other => other,
        };
        if !parts.iter().any(|p| p == s) {
            parts.push(s.to_owned());
        }
    }
    if parts.is_empty() {
        format!("The printer {printer} {verb} the job")
    } else {
        format!("The printer {printer} {verb} the job: {}", parts.join("; "))
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn keyword(name: &str, value: &str) -> Result<IppAttribute, PortError> {
    let bad = |e: ::ipp::parser::IppParseError| PortError::new(format!("bad IPP {name}: {e}"));
    IppAttribute::with_name(name, IppValue::new_keyword(value).map_err(bad)?).map_err(bad)
}

/// Parses an IPP message. The parser is a third-party crate and the bytes come from the network,
/// so a panic inside it is caught and reported as a malformed answer rather than taking the
/// issuance down with it.
fn parse_response(bytes: Bytes) -> Result<IppRequestResponse, String> {
    let parsed = std::panic::catch_unwind(move || {
        ::ipp::parser::IppParser::new(::ipp::reader::IppReader::new(std::io::Cursor::new(bytes)))
            .parse()
    });
    match parsed {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the IPP parser failed on it".into()),
    }
}

/// The first attribute of that name in a group of that kind.
fn attr<'a>(resp: &'a IppRequestResponse, group: DelimiterTag, name: &str) -> Option<&'a IppValue> {
    resp.attributes()
        .groups_of(group)
        .find_map(|g| g.attributes().iter().find(|a| a.name().as_str() == name))
        .map(|a| a.value())
}

/// Every string in a value (keywords, names, text, MIME types), arrays flattened.
fn strings(v: &IppValue) -> Vec<String> {
    match v {
        IppValue::Array(items) => items.iter().flat_map(strings).collect(),
        IppValue::Keyword(s)
        | IppValue::NameWithoutLanguage(s)
        | IppValue::MimeMediaType(s)
        | IppValue::MemberAttrName(s) => vec![s.to_string()],
        IppValue::TextWithoutLanguage(t) => vec![t.to_string()],
        IppValue::TextWithLanguage { text, .. } => vec![text.to_string()],
        IppValue::NameWithLanguage { name, .. } => vec![name.to_string()],
        _ => Vec::new(),
    }
}

fn int(v: &IppValue) -> Option<i32> {
    match v {
        IppValue::Integer(i) | IppValue::Enum(i) => Some(*i),
        IppValue::Array(items) => items.first().and_then(int),
        _ => None,
    }
}

fn boolean(v: &IppValue) -> Option<bool> {
    match v {
        IppValue::Boolean(b) => Some(*b),
        IppValue::Array(items) => items.first().and_then(boolean),
        _ => None,
    }
}

fn member<'a>(v: &'a IppValue, name: &str) -> Option<&'a IppValue> {
    match v {
        IppValue::Collection(map) => map.iter().find(|(k, _)| k.as_str() == name).map(|(_, v)| v),
        _ => None,
    }
}

/// A `media-size` collection: (x, y) in hundredths of a millimetre; None for ranges (custom).
fn media_size(v: &IppValue) -> Option<(i32, i32)> {
    Some((
        int(member(v, "x-dimension")?)?,
        int(member(v, "y-dimension")?)?,
    ))
}

fn is_cr80(x: i32, y: i32) -> bool {
    let near = |a: i32, b: i32| (a - b).abs() <= CR80_TOLERANCE;
    (near(x, CR80_X) && near(y, CR80_Y)) || (near(x, CR80_Y) && near(y, CR80_X))
}

/// The size a PWG self-describing media name carries (`iso_a4_210x297mm`,
/// `oe_cr80_2.125x3.375in`), in hundredths of a millimetre.
fn pwg_media_size(keyword: &str) -> Option<(i32, i32)> {
    let dims = keyword.rsplit('_').next()?;
    let (dims, per_unit) = if let Some(d) = dims.strip_suffix("mm") {
        (d, 100.0)
    } else if let Some(d) = dims.strip_suffix("in") {
        (d, 2540.0)
    } else {
        return None;
    };
    let (w, h) = dims.split_once('x')?;
    let w: f64 = w.parse().ok()?;
    let h: f64 = h.parse().ok()?;
    if !(w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0 && w < 10_000.0 && h < 10_000.0) {
        return None;
    }
    Some(((w * per_unit).round() as i32, (h * per_unit).round() as i32))
}

/// Reads Get-Printer-Attributes into capabilities; missing or odd attributes get safe defaults.
fn capabilities_from(resp: &IppRequestResponse) -> IppCapabilities {
    let p = DelimiterTag::PrinterAttributes;
    let list = |name| attr(resp, p, name).map(strings).unwrap_or_default();
    let media = list("media-supported");
    let mut media_sizes = Vec::new();
    let mut custom_sizes = media.iter().any(|m| m.starts_with("custom_m"));
    let mut card_media = media
        .iter()
        .find(|m| {
            !m.starts_with("custom_m") && pwg_media_size(m).is_some_and(|(x, y)| is_cr80(x, y))
        })
        .cloned();
    let collections = |v: &IppValue| -> Vec<IppValue> {
        match v {
            IppValue::Array(items) => items.clone(),
            other => vec![other.clone()],
        }
    };
    if let Some(db) = attr(resp, p, "media-col-database") {
        for col in collections(db) {
            let Some(size) = member(&col, "media-size") else {
                continue;
            };
            match media_size(size) {
                Some((x, y)) => {
                    media_sizes.push((x, y));
                    if card_media.is_none() && is_cr80(x, y) {
                        card_media = member(&col, "media-key")
                            .or_else(|| member(&col, "media-size-name"))
                            .and_then(|v| strings(v).into_iter().next());
                    }
                }
                None => custom_sizes = true,
            }
        }
    }
    if let Some(sizes) = attr(resp, p, "media-size-supported") {
        for size in collections(sizes) {
            match media_size(&size) {
                Some(s) => {
                    if !media_sizes.contains(&s) {
                        media_sizes.push(s);
                    }
                }
                None => custom_sizes = true,
            }
        }
    }
    IppCapabilities {
        make_and_model: list("printer-make-and-model").join(" "),
        document_formats: list("document-format-supported"),
        media,
        media_sizes,
        card_media,
        custom_sizes,
        sides: list("sides-supported"),
        state: PrinterState::from_enum(attr(resp, p, "printer-state").and_then(int)),
        state_reasons: list("printer-state-reasons")
            .into_iter()
            .filter(|r| r != "none")
            .collect(),
        state_message: list("printer-state-message").join(" "),
        // A printer that does not say is assumed to take jobs; Print-Job will tell otherwise.
        accepting_jobs: attr(resp, p, "printer-is-accepting-jobs")
            .and_then(boolean)
            .unwrap_or(true),
    }
}

fn job_id(resp: &IppRequestResponse) -> Option<i32> {
    attr(resp, DelimiterTag::JobAttributes, "job-id")
        .and_then(int)
        .filter(|id| *id > 0)
}

/// An IPP error status with the printer's `status-message`, as a sentence.
fn status_sentence(resp: &IppRequestResponse) -> String {
    let status = resp.header().status_code();
    let code = resp.header().operation_or_status as u16;
    let message = attr(resp, DelimiterTag::OperationAttributes, "status-message")
        .map(|v| strings(v).join(" "))
        .unwrap_or_default();
    let what = match status {
        StatusCode::ServerErrorNotAcceptingJobs => "it is not accepting jobs".to_owned(),
        StatusCode::ClientErrorNotAuthenticated | StatusCode::ClientErrorNotAuthorized => {
            "it wants a user name and password, which Tessera does not send".to_owned()
        }
        StatusCode::ClientErrorNotFound => "no such printer at this URI".to_owned(),
        StatusCode::UnknownStatusCode => format!("status 0x{code:04x}"),
        other => format!("{other} (0x{code:04x})"),
    };
    if message.trim().is_empty() {
        what
    } else {
        format!("{what}: {}", message.trim())
    }
}

// ---------------------------------------------------------------------------------------------
// Test page
// ---------------------------------------------------------------------------------------------

const TEST_FRONT: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="85.6mm" height="53.98mm" viewBox="0 0 85.6 53.98">
  <rect x="0" y="0" width="85.6" height="53.98" fill="#ffffff"/>
  <rect x="1" y="1" width="83.6" height="51.98" fill="none" stroke="#1f4e79" stroke-width="0.5"/>
  <rect x="0" y="0" width="85.6" height="10" fill="#1f4e79"/>
  <text x="4" y="7" font-family="sans-serif" font-size="4.5" font-weight="bold" fill="#ffffff">Tessera test card</text>
  <text x="4" y="18" font-family="sans-serif" font-size="3.2" fill="#000000">Printer: {{ printer.name }}</text>
  <text x="4" y="23" font-family="sans-serif" font-size="2.4" fill="#333333">{{ printer.uri }}</text>
  <text x="4" y="28" font-family="sans-serif" font-size="2.4" fill="#333333">{{ printed.at }}</text>
  <rect x="4" y="33" width="12" height="12" fill="#00ffff"/>
  <rect x="18" y="33" width="12" height="12" fill="#ff00ff"/>
  <rect x="32" y="33" width="12" height="12" fill="#ffff00"/>
  <rect x="46" y="33" width="12" height="12" fill="#000000"/>
  <rect data-qr="printer.name" x="64" y="30" width="18" height="18"/>
</svg>"##;

const TEST_BACK: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="85.6mm" height="53.98mm" viewBox="0 0 85.6 53.98">
  <rect x="1" y="1" width="83.6" height="51.98" fill="none" stroke="#000000" stroke-width="0.5"/>
  <text x="42.8" y="28" font-family="sans-serif" font-size="4" text-anchor="middle">Back side: duplex works</text>
</svg>"##;

/// A two-sided CR80 test card naming the printer: the "Print test page" of the Printers page.
pub fn test_card(
    printer_name: &str,
    printer_uri: &str,
    printed_at: &str,
) -> Result<RenderedCard, crate::PrintError> {
    let layout = Layout {
        id: LayoutId::new("tessera-test-card"),
        name: "Test card".into(),
        description: String::new(),
        front_svg: TEST_FRONT.into(),
        back_svg: Some(TEST_BACK.into()),
        allowed_groups: Vec::new(),
        default_for_groups: Vec::new(),
        version: 1,
    };
    let mut data = CardData::default();
    for (k, v) in [
        ("printer.name", printer_name),
        ("printer.uri", printer_uri),
        ("printed.at", printed_at),
    ] {
        data.fields.insert(k.into(), v.into());
    }
    SvgRenderer::new().render_card(&layout, &data)
}

/// The job name of a test card.
pub const TEST_JOB: &str = "Tessera test card";

/// Renders the test card and prints it on any card printer.
pub async fn test_page(
    printer: &dyn CardPrinter,
    printer_uri: &str,
    printed_at: &str,
) -> Result<PrintReceipt, PortError> {
    let card = draw_test_card(printer.name(), printer_uri, printed_at).await?;
    printer.print(TEST_JOB, &card).await
}

/// [`test_card`] off the async workers: rendering is a few tens of milliseconds of CPU.
pub async fn draw_test_card(
    printer_name: &str,
    printer_uri: &str,
    printed_at: &str,
) -> Result<RenderedCard, PortError> {
    let (name, uri, at) = (
        printer_name.to_owned(),
        printer_uri.to_owned(),
        printed_at.to_owned(),
    );
    tokio::task::spawn_blocking(move || test_card(&name, &uri, &at))
        .await
        .map_err(|e| PortError::new(format!("the test card could not be drawn: {e}")))?
        .map_err(PortError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::ipp::model::IppVersion;
    use std::collections::BTreeMap;

    fn response(status: StatusCode, attrs: Vec<(DelimiterTag, &str, IppValue)>) -> Bytes {
        let mut r = IppRequestResponse::new_response(IppVersion::v1_1(), status, 1).unwrap();
        for (group, name, value) in attrs {
            r.attributes_mut()
                .add(group, IppAttribute::with_name(name, value).unwrap());
        }
        r.to_bytes()
    }

    fn kw(s: &str) -> IppValue {
        IppValue::new_keyword(s).unwrap()
    }

    fn kws(items: &[&str]) -> IppValue {
        IppValue::Array(items.iter().map(|s| kw(s)).collect())
    }

    fn size(x: i32, y: i32) -> IppValue {
        let mut m = BTreeMap::new();
        m.insert("x-dimension".try_into().unwrap(), IppValue::Integer(x));
        m.insert("y-dimension".try_into().unwrap(), IppValue::Integer(y));
        IppValue::Collection(m)
    }

    fn printer_attrs(
        state: i32,
        reasons: &[&str],
        accepting: bool,
    ) -> Vec<(DelimiterTag, &'static str, IppValue)> {
        let p = DelimiterTag::PrinterAttributes;
        vec![
            (
                p,
                "document-format-supported",
                IppValue::Array(vec![
                    IppValue::MimeMediaType("application/pdf".try_into().unwrap()),
                    IppValue::MimeMediaType("image/png".try_into().unwrap()),
                ]),
            ),
            (
                p,
                "media-supported",
                kws(&["iso_a4_210x297mm", "oe_cr80_2.125x3.375in"]),
            ),
            (
                p,
                "sides-supported",
                kws(&["one-sided", "two-sided-long-edge"]),
            ),
            (p, "printer-state", IppValue::Enum(state)),
            (p, "printer-state-reasons", kws(reasons)),
            (p, "printer-is-accepting-jobs", IppValue::Boolean(accepting)),
        ]
    }

    fn caps(state: i32, reasons: &[&str], accepting: bool) -> IppCapabilities {
        let bytes = response(
            StatusCode::SuccessfulOk,
            printer_attrs(state, reasons, accepting),
        );
        capabilities_from(&parse_response(bytes).unwrap())
    }

    #[test]
    fn printer_states_become_sentences() {
        assert_eq!(caps(3, &["none"], true).describe(), "Ready");
        assert_eq!(caps(4, &["none"], true).describe(), "Printing");
        assert_eq!(
            caps(3, &["media-empty-report"], true).describe(),
            "Out of cards: load blank cards"
        );
        assert_eq!(
            caps(4, &["media-needed-warning"], true).describe(),
            "Out of cards: load blank cards"
        );
        assert_eq!(
            caps(5, &["marker-supply-empty-error"], true).describe(),
            "Ribbon empty: replace the ribbon"
        );
        assert_eq!(
            caps(5, &["media-jam-error", "media-low-report"], true).describe(),
            "Card jam: open the printer and remove the card"
        );
        assert_eq!(
            caps(5, &["paused"], true).describe(),
            "Paused: resume the printer"
        );
        assert_eq!(
            caps(5, &["offline-report"], true).describe(),
            "Offline: check that the printer is switched on and connected"
        );
        assert_eq!(
            caps(5, &["none"], true).describe(),
            "Stopped: the printer needs attention"
        );
        assert_eq!(
            caps(3, &["none"], false).describe(),
            "Not accepting jobs: enable the queue on the print server"
        );
        assert_eq!(
            caps(3, &["media-low-report", "marker-supply-low-warning"], true).describe(),
            "Ready (few blank cards left, ribbon low)"
        );
        assert_eq!(
            describe_state(PrinterState::Stopped, &[], true, "Door open."),
            "Stopped: Door open"
        );
    }

    #[test]
    fn blocking_problems_stop_a_print_warnings_do_not() {
        assert_eq!(caps(3, &["none"], true).blocking_problem(), None);
        assert_eq!(
            caps(3, &["media-low-report"], true).blocking_problem(),
            None
        );
        assert!(caps(3, &["media-empty-report"], true)
            .blocking_problem()
            .is_some());
        assert!(caps(5, &["none"], true).blocking_problem().is_some());
        assert!(caps(3, &["none"], false).blocking_problem().is_some());
        assert!(caps(3, &["cover-open-error"], true)
            .blocking_problem()
            .is_some());
    }

    #[test]
    fn capabilities_are_read_from_the_answer() {
        let c = caps(3, &["none"], true);
        assert_eq!(c.document_formats, ["application/pdf", "image/png"]);
        assert_eq!(c.card_media.as_deref(), Some("oe_cr80_2.125x3.375in"));
        assert_eq!(c.media_for_card().as_deref(), Some("oe_cr80_2.125x3.375in"));
        assert!(c.duplex());
        assert_eq!(c.document_format(), Some("application/pdf"));
        assert_eq!(c.state_reasons, Vec::<String>::new());
    }

    #[test]
    fn card_media_comes_from_the_media_database_or_custom_sizes() {
        let p = DelimiterTag::PrinterAttributes;
        let mut col = BTreeMap::new();
        col.insert("media-key".try_into().unwrap(), kw("card_cr80"));
        col.insert("media-size".try_into().unwrap(), size(8560, 5398));
        let bytes = response(
            StatusCode::SuccessfulOk,
            vec![
                (p, "media-supported", kws(&["na_letter_8.5x11in"])),
                (
                    p,
                    "media-col-database",
                    IppValue::Array(vec![IppValue::Collection(col)]),
                ),
            ],
        );
        let c = capabilities_from(&parse_response(bytes).unwrap());
        assert_eq!(c.card_media.as_deref(), Some("card_cr80"));

        // ippeveprinter's office sizes: no card keyword, no custom sizes, so no media is sent.
        let bytes = response(
            StatusCode::SuccessfulOk,
            vec![
                (
                    p,
                    "media-supported",
                    kws(&["na_letter_8.5x11in", "iso_a4_210x297mm"]),
                ),
                (
                    p,
                    "media-size-supported",
                    IppValue::Array(vec![size(21590, 27940)]),
                ),
            ],
        );
        let c = capabilities_from(&parse_response(bytes).unwrap());
        assert_eq!(c.media_for_card(), None);
        assert!(!c.duplex());

        let bytes = response(
            StatusCode::SuccessfulOk,
            vec![(
                p,
                "media-supported",
                kws(&["custom_min_50x80mm", "custom_max_60x90mm"]),
            )],
        );
        let c = capabilities_from(&parse_response(bytes).unwrap());
        assert_eq!(c.media_for_card().as_deref(), Some(CR80_CUSTOM_MEDIA));
    }

    #[test]
    fn pwg_names_carry_sizes() {
        assert_eq!(pwg_media_size("iso_a4_210x297mm"), Some((21000, 29700)));
        assert_eq!(pwg_media_size(CR80_CUSTOM_MEDIA), Some((5398, 8560)));
        assert!(is_cr80(5398, 8560) && is_cr80(8560, 5398) && is_cr80(5400, 8600));
        assert_eq!(pwg_media_size("na_letter_8.5x11in"), Some((21590, 27940)));
        assert_eq!(pwg_media_size("card"), None);
        assert_eq!(pwg_media_size("x_NaNxinfmm"), None);
        assert_eq!(pwg_media_size("x_1e300x5mm"), None);
    }

    #[test]
    fn format_falls_back_to_png_then_refuses() {
        let mut c = IppCapabilities {
            document_formats: vec!["image/png".into(), "image/pwg-raster".into()],
            ..Default::default()
        };
        assert_eq!(c.document_format(), Some("image/png"));
        c.document_formats = vec!["image/pwg-raster".into()];
        assert_eq!(c.document_format(), None);
        c.document_formats = vec![];
        assert_eq!(c.document_format(), Some("application/pdf"));
    }

    #[test]
    fn job_state_and_failures_read_as_sentences() {
        let j = DelimiterTag::JobAttributes;
        let bytes = response(
            StatusCode::SuccessfulOk,
            vec![
                (j, "job-id", IppValue::Integer(7)),
                (j, "job-state", IppValue::Enum(8)),
                (j, "job-state-reasons", kws(&["aborted-by-system"])),
                (
                    j,
                    "job-state-message",
                    IppValue::TextWithoutLanguage("ribbon out".try_into().unwrap()),
                ),
            ],
        );
        let resp = parse_response(bytes).unwrap();
        assert_eq!(job_id(&resp), Some(7));
        let state = JobState::of(&resp);
        assert_eq!(state.state, 8);
        assert_eq!(
            job_failure("P1", &state, None),
            "The printer P1 aborted the job: ribbon out; the printer gave up on it"
        );
        let jam = caps(3, &["media-jam-report"], true);
        assert_eq!(
            job_failure("P1", &state, Some(&jam)),
            "The printer P1 aborted the job: Card jam: open the printer and remove the card; \
             ribbon out; the printer gave up on it"
        );
        let canceled = JobState {
            state: 7,
            reasons: vec!["job-canceled-by-user".into()],
            message: "Job canceled.".into(),
        };
        assert_eq!(
            job_failure("P1", &canceled, None),
            "The printer P1 canceled the job: canceled by a user"
        );
    }

    #[test]
    fn error_statuses_carry_the_printers_message() {
        let bytes = response(
            StatusCode::ServerErrorBusy,
            vec![(
                DelimiterTag::OperationAttributes,
                "status-message",
                IppValue::TextWithoutLanguage(
                    "Currently printing another job.".try_into().unwrap(),
                ),
            )],
        );
        let resp = parse_response(bytes).unwrap();
        assert_eq!(resp.header().status_code(), StatusCode::ServerErrorBusy);
        assert!(status_sentence(&resp).ends_with(": Currently printing another job."));
        // A job-less success has no job id to follow.
        assert_eq!(job_id(&resp), None);
    }

    #[test]
    fn hostile_answers_are_errors_not_panics() {
        let good = response(StatusCode::SuccessfulOk, printer_attrs(3, &["none"], true));
        // Every truncation of a valid answer, and some noise.
        for n in 0..good.len() {
            let _ = parse_response(good.slice(..n));
        }
        let mut noise = good.to_vec();
        let mut x = 0x9e37_79b9u32;
        for b in noise.iter_mut().skip(8) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if x.is_multiple_of(7) {
                *b = x as u8;
            }
        }
        if let Ok(resp) = parse_response(Bytes::from(noise)) {
            let _ = capabilities_from(&resp);
            let _ = JobState::of(&resp);
        }
        assert!(parse_response(Bytes::from_static(b"HTTP/1.1 200 OK\r\n")).is_err());
        // Wrong types where numbers and lists are expected read as defaults.
        let p = DelimiterTag::PrinterAttributes;
        let odd = response(
            StatusCode::SuccessfulOk,
            vec![
                (p, "printer-state", kw("idle")),
                (p, "printer-is-accepting-jobs", IppValue::Integer(1)),
                (p, "media-col-database", IppValue::Integer(3)),
                (
                    p,
                    "media-size-supported",
                    IppValue::RangeOfInteger { min: 1, max: 2 },
                ),
            ],
        );
        let c = capabilities_from(&parse_response(odd).unwrap());
        assert_eq!(c.state, PrinterState::Unknown);
        assert!(c.accepting_jobs);
        assert!(c.blocking_problem().is_none());
    }

    #[test]
    fn uris_are_checked_and_normalised() {
        let e = Endpoint::parse("ipp://localhost:8631/ipp/print").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("localhost", 8631, "/ipp/print")
        );
        let e = Endpoint::parse("ipp://printer.example/printers/card").unwrap();
        assert_eq!(e.port, 631);
        assert_eq!(
            e.printer_uri.to_string(),
            "ipp://printer.example:631/printers/card"
        );
        let e = Endpoint::parse("http://127.0.0.1:631/printers/Card").unwrap();
        assert_eq!(
            e.printer_uri.to_string(),
            "ipp://127.0.0.1:631/printers/Card"
        );
        let e = Endpoint::parse("ipp://[::1]:8631/ipp/print").unwrap();
        assert_eq!(
            (e.host.as_str(), e.host_header()),
            ("::1", "[::1]:8631".to_owned())
        );
        let e = Endpoint::parse("ipps://printer.example/ipp/print").unwrap();
        assert!(e.tls);
        assert_eq!(e.port, 631);
        assert_eq!(
            e.printer_uri.to_string(),
            "ipps://printer.example:631/ipp/print"
        );
        assert_eq!(Endpoint::parse("https://printer/ipp").unwrap().port, 443);
        assert!(!Endpoint::parse("ipp://printer/ipp").unwrap().tls);
        assert!(Endpoint::parse("lpd://printer/queue").is_err());
        assert!(Endpoint::parse("not a uri").is_err());
    }

    #[tokio::test]
    async fn an_absent_printer_is_not_reachable() {
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let uri = format!("ipp://127.0.0.1:{port}/ipp/print");
        let printer = IppPrinter::new("Card Printer", &uri, Some("Reader 0".into())).unwrap();
        let info = printer.status().await;
        assert_eq!(
            info.state,
            format!("Not reachable at {uri}: check the cable and power")
        );
        let card = RenderedCard {
            front_png: vec![],
            back_png: None,
            pdf: vec![],
        };
        let err = printer.print("job", &card).await.unwrap_err();
        assert!(err.message.starts_with("Not reachable at"), "{err}");
        assert!(printer.feed_card().await.is_ok());
        assert!(printer.connect_encoder().await.is_none());
    }

    #[test]
    fn the_test_card_is_two_cr80_pages() {
        let card = test_card("Card Printer", "ipp://localhost/ipp/print", "today").unwrap();
        assert!(card.back_png.is_some());
        assert_eq!(crate::png_dimensions(&card.front_png), Some((1011, 638)));
        assert!(card.pdf.starts_with(b"%PDF"));
    }
}

//! The station's end: `tessera station` connects to the server and serves its requests with the
//! printers and readers of this workstation (any `StationPort`, usually a [`crate::LocalStation`]).
//!
//! It reconnects with exponential backoff for as long as it runs, except when the server refuses
//! it (revoked, disabled, another protocol version): then it stops with the server's reason.
//! Card sessions live in the agent, not in the connection, so a dropped network does not cost
//! the card: the server re-sends its pending request on the next connection and the agent
//! answers a repeated request id from memory.

use crate::protocol::*;
use crate::tls::ServerTrust;
use futures_util::{SinkExt, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_core::model::PrinterConfig;
use tessera_core::ports::*;
use tessera_core::secret::StationSecret;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// How long a card session stays open without requests (a server that never came back).
const SESSION_IDLE: Duration = Duration::from_secs(120);
/// Answers kept for repeated request ids.
const REMEMBERED_REPLIES: usize = 256;
/// Readers (and whether a card is in them) are looked at this often.
const INVENTORY_EVERY: Duration = Duration::from_secs(2);
/// Printers every this many looks (10 s): asking an IPP printer for its state is a network
/// request, and a printer's state changes far less often than a reader's card.
const PRINTERS_EVERY: u32 = 5;

#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// `http://host:port` or `https://host:port` of the server.
    pub server: String,
    pub credential: StationSecret,
    /// The trust anchors for an `https://` server's certificate (the public roots unless a CA
    /// file was given).
    pub trust: ServerTrust,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Test and measurement knobs: a delay added to every answer (a slow network's round trip),
    /// a number of APDUs after which the process dies (a killed station), a number of APDUs
    /// after which the connection is dropped once (a network cut).
    pub injected_delay: Duration,
    pub exit_after_apdus: Option<u64>,
    pub drop_after_apdus: Option<u64>,
    /// With `exit_after_apdus`: stop the agent (forgetting its card sessions, never reconnecting)
    /// instead of exiting the process, for tests that run the agent inside their own process.
    pub die_in_process: bool,
    /// Puts the printers the server configured on the station; without it they are ignored.
    pub printer_setup: Option<PrinterSetup>,
}

/// What the agent does with the printers the server sends (`ServerMessage::Printers`): the
/// station process builds IPP and spool printers from them, which this crate cannot.
#[derive(Clone)]
pub struct PrinterSetup(pub Arc<SetUpPrinters>);

/// Puts a list of configured printers on the station, replacing the previous list.
pub type SetUpPrinters = dyn Fn(&[PrinterConfig]) + Send + Sync;

impl std::fmt::Debug for PrinterSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrinterSetup")
    }
}

impl AgentOptions {
    pub fn new(server: impl Into<String>, credential: StationSecret) -> Self {
        Self {
            server: server.into(),
            credential,
            trust: ServerTrust::public_roots(),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            injected_delay: Duration::ZERO,
            exit_after_apdus: None,
            drop_after_apdus: None,
            die_in_process: false,
            printer_setup: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the server refused this station: {0}")]
    Refused(String),
    /// The station refused the server: its TLS certificate did not check out.
    #[error("the station does not trust the server: {0}")]
    Untrusted(String),
    #[error("{0}")]
    Config(String),
}

/// Answers by request id, and the ids in arrival order (the oldest is forgotten first).
type RememberedReplies = (
    HashMap<u64, watch::Receiver<Option<ReplyBody>>>,
    VecDeque<u64>,
);

struct Session {
    card: tokio::sync::Mutex<Box<dyn CardTransport>>,
    last_used: Mutex<Instant>,
}

/// The agent's state, kept across connections.
pub struct Agent {
    port: Arc<dyn StationPort>,
    options: AgentOptions,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Request id -> its answer (None while it runs), for requests the server sends again.
    replies: Mutex<RememberedReplies>,
    apdus: AtomicU64,
    dropped_once: std::sync::atomic::AtomicBool,
    /// Set when an injected fault killed the station (in-process variant).
    dead: watch::Sender<bool>,
    /// This process's identity for the server (see `Hello::instance`).
    instance: String,
    /// Wakes the inventory report at once, printers included (the printers changed).
    printers_changed: tokio::sync::Notify,
}

/// Exchanges a one-time enrolment token for this station's credential. An `https://` server's
/// certificate is checked against `trust`, as on every later connection.
pub async fn enrol(
    server: &str,
    token: &StationSecret,
    trust: &ServerTrust,
) -> Result<EnrolResponse, AgentError> {
    let url = endpoint_url(server, ENROL_PATH)?;
    warn_if_plain(server);
    let request = with_bearer(&url, token).map_err(|e| match e {
        ConnectionEnd::Refused(m) | ConnectionEnd::Untrusted(m) | ConnectionEnd::Lost(m) => {
            AgentError::Config(m)
        }
        ConnectionEnd::Dead => AgentError::Config("the station stopped".into()),
    })?;
    let (mut socket, _) =
        open_socket(request, trust)
            .await
            .map_err(|e| match refusal_or_loss(server, trust, e) {
                ConnectionEnd::Refused(m) => AgentError::Refused(m),
                ConnectionEnd::Untrusted(m) => AgentError::Untrusted(m),
                ConnectionEnd::Lost(m) => AgentError::Config(format!("cannot reach {server}: {m}")),
                ConnectionEnd::Dead => AgentError::Config("the station stopped".into()),
            })?;
    while let Some(frame) = socket.next().await {
        if let Ok(Message::Text(text)) = frame {
            return serde_json::from_str(&text).map_err(|e| {
                AgentError::Config(format!("the server's enrolment answer is malformed: {e}"))
            });
        }
    }
    Err(AgentError::Config(
        "the server closed the enrolment without an answer".into(),
    ))
}

fn with_bearer(
    url: &str,
    secret: &StationSecret,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, ConnectionEnd> {
    let mut request = url
        .into_client_request()
        .map_err(|e| ConnectionEnd::Refused(format!("bad server URL: {e}")))?;
    let bearer = format!("Bearer {}", secret.expose());
    request.headers_mut().insert(
        "authorization",
        bearer
            .parse()
            .map_err(|_| ConnectionEnd::Refused("the token or credential is malformed".into()))?,
    );
    Ok(request)
}

/// Opens the WebSocket: `wss://` through rustls with `trust`, `ws://` in plain text.
async fn open_socket(
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
    trust: &ServerTrust,
) -> Result<
    (
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    // Nagle off: the protocol is small request/answer messages, each waited for.
    tokio_tungstenite::connect_async_tls_with_config(request, None, true, Some(trust.connector()))
        .await
}

/// Plain `http://` is for a server on this machine (or a lab): elsewhere the credential and the
/// card traffic would cross the network readable by anyone on the path.
fn warn_if_plain(server: &str) {
    if server.starts_with("http://") && !crate::tls::is_loopback_host(crate::tls::host_of(server)) {
        tracing::warn!(
            %server,
            "the server is reached over plain http:// on another machine: the station's credential \
             and card commands travel unencrypted; give the server a TLS certificate and use https://"
        );
    }
}

/// The WebSocket URL of the station endpoint for a server URL.
pub fn connect_url(server: &str) -> Result<String, AgentError> {
    endpoint_url(server, CONNECT_PATH)
}

fn endpoint_url(server: &str, path: &str) -> Result<String, AgentError> {
    let server = server.trim_end_matches('/');
    let rest = if let Some(rest) = server.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = server.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        return Err(AgentError::Config(format!(
            "the server URL {server:?} must start with http:// or https://"
        )));
    };
    Ok(format!("{rest}{path}"))
}

impl Agent {
    pub fn new(port: Arc<dyn StationPort>, options: AgentOptions) -> Arc<Self> {
        Arc::new(Self {
            port,
            options,
            sessions: Mutex::new(HashMap::new()),
            replies: Mutex::new((HashMap::new(), VecDeque::new())),
            apdus: AtomicU64::new(0),
            dropped_once: std::sync::atomic::AtomicBool::new(false),
            dead: watch::channel(false).0,
            instance: hex::encode(rand::random::<[u8; 8]>()),
            printers_changed: tokio::sync::Notify::new(),
        })
    }

    /// Runs until the server refuses the station; reconnects after every other failure.
    pub async fn run(self: &Arc<Self>) -> Result<(), AgentError> {
        let url = connect_url(&self.options.server)?;
        warn_if_plain(&self.options.server);
        let mut backoff = self.options.min_backoff;
        let _sweeper = AbortOnDrop(tokio::spawn(self.clone().sweep_sessions()));
        let result = loop {
            let started = Instant::now();
            match self.connection(&url).await {
                Err(ConnectionEnd::Refused(reason)) => break Err(AgentError::Refused(reason)),
                Err(ConnectionEnd::Untrusted(reason)) => break Err(AgentError::Untrusted(reason)),
                Err(ConnectionEnd::Dead) => {
                    self.sessions.lock().expect("sessions").clear();
                    break Ok(());
                }
                Err(ConnectionEnd::Lost(why)) => {
                    // A connection that lived a while starts the backoff over.
                    if started.elapsed() > Duration::from_secs(30) {
                        backoff = self.options.min_backoff;
                    }
                    tracing::warn!(%why, retry_in_ms = backoff.as_millis() as u64, "station connection lost");
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(self.options.max_backoff);
                }
                Ok(()) => break Ok(()),
            }
        };
        result
    }

    async fn connection(self: &Arc<Self>, url: &str) -> Result<(), ConnectionEnd> {
        let request = with_bearer(url, &self.options.credential)?;
        let (socket, _) = open_socket(request, &self.options.trust)
            .await
            .map_err(|e| refusal_or_loss(&self.options.server, &self.options.trust, e))?;
        let (mut sink, mut stream) = socket.split();
        let hello = StationMessage::Hello {
            version: VERSION,
            agent: format!("tessera-station {}", env!("CARGO_PKG_VERSION")),
            instance: self.instance.clone(),
            open_sessions: self
                .sessions
                .lock()
                .expect("sessions")
                .keys()
                .cloned()
                .collect(),
        };
        send(&mut sink, &hello).await?;
        match next_message(&mut stream).await? {
            ServerMessage::Welcome { station_name, .. } => {
                tracing::info!(station = %station_name, "connected to the server")
            }
            ServerMessage::Refused { reason } => return Err(ConnectionEnd::Refused(reason)),
            ServerMessage::Request(_) | ServerMessage::Printers { .. } => {
                return Err(ConnectionEnd::Lost("a message before the welcome".into()))
            }
        }
        let (out, mut out_rx) = mpsc::unbounded_channel::<StationMessage>();
        let writer = tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if send(&mut sink, &m).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let _writer = AbortOnDrop(writer);
        let _inventory = AbortOnDrop(tokio::spawn(self.clone().report_inventory(out.clone())));
        let mut dead = self.dead.subscribe();
        let end = loop {
            let next = tokio::select! {
                m = next_message(&mut stream) => m,
                _ = dead.wait_for(|d| *d) => Err(ConnectionEnd::Dead),
            };
            let message = match next {
                Ok(m) => m,
                Err(end) => break end,
            };
            match message {
                ServerMessage::Request(request) => {
                    if self.network_cut_due(&request.body) {
                        break ConnectionEnd::Lost("injected network cut".into());
                    }
                    let agent = self.clone();
                    let out = out.clone();
                    tokio::spawn(async move {
                        let reply = agent.answer(request.id, request.body).await;
                        if !agent.options.injected_delay.is_zero() {
                            tokio::time::sleep(agent.options.injected_delay).await;
                        }
                        if *agent.dead.borrow() {
                            return;
                        }
                        let _ = out.send(StationMessage::Reply(Reply {
                            id: request.id,
                            body: reply,
                        }));
                    });
                }
                ServerMessage::Refused { reason } => break ConnectionEnd::Refused(reason),
                ServerMessage::Printers { printers } => self.set_up_printers(&printers),
                ServerMessage::Welcome { .. } => {}
            }
        };
        // The writer and inventory tasks end with this function, also when the agent's own task
        // is aborted (a station stopped from outside closes its socket).
        drop(out);
        Err(end)
    }

    /// Drops the connection once, before the APDU that reaches `drop_after_apdus`.
    fn network_cut_due(&self, body: &RequestBody) -> bool {
        let Some(limit) = self.options.drop_after_apdus else {
            return false;
        };
        let n = match body {
            RequestBody::Transmit { .. } => 1,
            RequestBody::Script { commands, .. } => commands.len() as u64,
            _ => 0,
        };
        n > 0
            && self.apdus.load(Ordering::SeqCst) + n >= limit
            && !self.dropped_once.swap(true, Ordering::SeqCst)
    }

    fn set_up_printers(&self, printers: &[PrinterConfig]) {
        match &self.options.printer_setup {
            Some(setup) => {
                tracing::info!(count = printers.len(), "printers configured on the server");
                (setup.0)(printers);
                self.printers_changed.notify_one();
            }
            None if !printers.is_empty() => {
                tracing::warn!("the server configured printers; this station ignores them")
            }
            None => {}
        }
    }

    async fn report_inventory(self: Arc<Self>, out: mpsc::UnboundedSender<StationMessage>) {
        let mut last: Option<Inventory> = None;
        let mut changed = false;
        for tick in 0u32.. {
            let printers = match &last {
                Some(last) if tick % PRINTERS_EVERY != 0 && !changed => last.printers.clone(),
                _ => self.printers().await,
            };
            let now = Inventory {
                readers: self.readers().await,
                printers,
            };
            if last.as_ref() != Some(&now) {
                if let Some(before) = &last {
                    for event in card_events(before, &now) {
                        let _ = out.send(event);
                    }
                }
                if out.send(StationMessage::Inventory(now.clone())).is_err() {
                    return;
                }
                last = Some(now);
            }
            changed = tokio::select! {
                _ = tokio::time::sleep(INVENTORY_EVERY) => false,
                _ = self.printers_changed.notified() => true,
            };
        }
    }

    async fn inventory(&self) -> Inventory {
        Inventory {
            readers: self.readers().await,
            printers: self.printers().await,
        }
    }

    async fn printers(&self) -> Vec<PrinterInfo> {
        self.port.printers().await.unwrap_or_default()
    }

    async fn readers(&self) -> Vec<ReaderInfo> {
        let mut readers = Vec::new();
        for name in self.port.readers().await.unwrap_or_default() {
            let card_present = self.port.card_present(&name).await;
            readers.push(ReaderInfo { name, card_present });
        }
        readers
    }

    /// The answer to a request, run once per id.
    async fn answer(self: &Arc<Self>, id: u64, body: RequestBody) -> ReplyBody {
        let (tx, mut rx) = {
            let mut replies = self.replies.lock().expect("replies");
            if let Some(rx) = replies.0.get(&id) {
                (None, rx.clone())
            } else {
                let (tx, rx) = watch::channel(None);
                replies.0.insert(id, rx.clone());
                replies.1.push_back(id);
                while replies.1.len() > REMEMBERED_REPLIES {
                    if let Some(old) = replies.1.pop_front() {
                        replies.0.remove(&old);
                    }
                }
                (Some(tx), rx)
            }
        };
        if let Some(tx) = tx {
            let reply = self.perform(body).await;
            let _ = tx.send(Some(reply.clone()));
            return reply;
        }
        tracing::info!(id, "a repeated request answered from memory");
        let answer = match rx.wait_for(Option::is_some).await {
            Ok(reply) => reply.clone().expect("waited for an answer"),
            Err(_) => ReplyBody::Failed {
                message: "the station lost this request's answer".into(),
            },
        };
        answer
    }

    async fn perform(&self, body: RequestBody) -> ReplyBody {
        match body {
            RequestBody::Inventory => ReplyBody::Inventory(self.inventory().await),
            RequestBody::FeedCard { printer } => match self.port.feed_card(&printer).await {
                Ok(()) => ReplyBody::Fed,
                Err(e) => ReplyBody::Failed { message: e.message },
            },
            RequestBody::EjectCard { printer } => match self.port.eject_card(&printer).await {
                Ok(()) => ReplyBody::Ejected,
                Err(e) => ReplyBody::Failed { message: e.message },
            },
            RequestBody::Connect { reader } => match self.port.connect(&reader).await {
                Ok(card) => {
                    let session = hex::encode(rand::random::<[u8; 12]>());
                    let atr = card.atr();
                    let extended_length = card.extended_length();
                    self.sessions.lock().expect("sessions").insert(
                        session.clone(),
                        Arc::new(Session {
                            card: tokio::sync::Mutex::new(card),
                            last_used: Mutex::new(Instant::now()),
                        }),
                    );
                    tracing::info!(%reader, "card session opened");
                    ReplyBody::Connected {
                        session,
                        atr,
                        extended_length,
                    }
                }
                Err(e) => ReplyBody::CardFailed(e),
            },
            RequestBody::Transmit { session, apdu } => {
                let Some(s) = self.session(&session) else {
                    return lost_session();
                };
                if !self.count_apdus(1) {
                    return lost_session();
                }
                let mut card = s.card.lock().await;
                match card.transmit(&apdu).await {
                    Ok(apdu) => ReplyBody::Response { apdu },
                    Err(e) => ReplyBody::CardFailed(e),
                }
            }
            RequestBody::Script { session, commands } => {
                let Some(s) = self.session(&session) else {
                    return lost_session();
                };
                let script: Result<Vec<ScriptCommand>, String> =
                    commands.iter().map(WireCommand::to_command).collect();
                let script = match script {
                    Ok(s) => s,
                    Err(message) => return ReplyBody::Failed { message },
                };
                if !self.count_apdus(script.len() as u64) {
                    return lost_session();
                }
                let mut card = s.card.lock().await;
                match card.run_script(&script).await {
                    Ok(responses) => ReplyBody::ScriptDone { responses },
                    Err(e) => ReplyBody::CardFailed(e),
                }
            }
            RequestBody::Disconnect { session } => {
                self.sessions.lock().expect("sessions").remove(&session);
                ReplyBody::Disconnected
            }
            RequestBody::Print {
                printer,
                job_name,
                front_png,
                back_png,
                pdf,
            } => {
                let card = RenderedCard {
                    front_png,
                    back_png,
                    pdf,
                };
                match self.port.print(&printer, &job_name, &card).await {
                    Ok(receipt) => ReplyBody::Printed(receipt),
                    Err(e) => ReplyBody::Failed { message: e.message },
                }
            }
        }
    }

    fn session(&self, id: &str) -> Option<Arc<Session>> {
        let s = self.sessions.lock().expect("sessions").get(id).cloned()?;
        *s.last_used.lock().expect("last used") = Instant::now();
        Some(s)
    }

    /// Counts APDUs toward the injected station death; false when the station is dead now.
    fn count_apdus(&self, n: u64) -> bool {
        let before = self.apdus.fetch_add(n, Ordering::SeqCst);
        match self.options.exit_after_apdus {
            Some(limit) if before + n >= limit => {
                if !self.options.die_in_process {
                    eprintln!("tessera station: injected fault, exiting at APDU {limit}");
                    std::process::exit(3);
                }
                self.dead.send_replace(true);
                false
            }
            _ => !*self.dead.borrow(),
        }
    }

    async fn sweep_sessions(self: Arc<Self>) {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            self.sessions
                .lock()
                .expect("sessions")
                .retain(|_, s| s.last_used.lock().expect("last used").elapsed() < SESSION_IDLE);
        }
    }
}

fn lost_session() -> ReplyBody {
    ReplyBody::CardFailed(CardError::Unreachable(
        "the station no longer holds this card session (it restarted or the card was released)"
            .into(),
    ))
}

/// Insertion and removal events between two inventories.
fn card_events(before: &Inventory, now: &Inventory) -> Vec<StationMessage> {
    now.readers
        .iter()
        .filter_map(|r| {
            let old = before.readers.iter().find(|b| b.name == r.name);
            match (old.and_then(|o| o.card_present), r.card_present) {
                (Some(a), Some(b)) if a != b => Some(StationMessage::CardEvent {
                    reader: r.name.clone(),
                    present: b,
                }),
                _ => None,
            }
        })
        .collect()
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum ConnectionEnd {
    Refused(String),
    /// The server's TLS certificate did not check out: never retried, never plain text instead.
    Untrusted(String),
    Lost(String),
    /// An injected fault killed the station.
    Dead,
}

/// A refusal ends the station (the server said no), and so does an untrustworthy certificate; a
/// loss is retried.
fn refusal_or_loss(
    server: &str,
    trust: &ServerTrust,
    e: tokio_tungstenite::tungstenite::Error,
) -> ConnectionEnd {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Http(response) if matches!(response.status().as_u16(), 401 | 403) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            ConnectionEnd::Refused(if body.is_empty() {
                format!("HTTP {}", response.status())
            } else {
                body
            })
        }
        Error::Tls(e) => {
            ConnectionEnd::Untrusted(format!("TLS with the server at {server} cannot start: {e}"))
        }
        Error::Io(e) => match trust.failure(server, &e) {
            Some(sentence) => ConnectionEnd::Untrusted(sentence),
            None => ConnectionEnd::Lost(e.to_string()),
        },
        // A TLS server answers a plain request with a TLS alert, which is no HTTP.
        Error::Protocol(
            e @ tokio_tungstenite::tungstenite::error::ProtocolError::HttparseError(_),
        ) if server.starts_with("http://") => ConnectionEnd::Lost(format!(
            "{e} (if the server has TLS, use https:// in its URL)"
        )),
        other => ConnectionEnd::Lost(other.to_string()),
    }
}

async fn send<S>(sink: &mut S, message: &impl serde::Serialize) -> Result<(), ConnectionEnd>
where
    S: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let text = serde_json::to_string(message).expect("protocol messages serialise");
    sink.send(Message::text(text))
        .await
        .map_err(|e| ConnectionEnd::Lost(e.to_string()))
}

async fn next_message<S>(stream: &mut S) -> Result<ServerMessage, ConnectionEnd>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(&text).map_err(|e| {
                    ConnectionEnd::Lost(format!("the server sent a malformed message: {e}"))
                })
            }
            Some(Ok(Message::Close(_))) | None => {
                return Err(ConnectionEnd::Lost(
                    "the server closed the connection".into(),
                ))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(ConnectionEnd::Lost(e.to_string())),
        }
    }
}

/// Up to a quarter less, so that stations cut off together do not come back together.
fn jitter(d: Duration) -> Duration {
    let quarter = d.as_millis() as u64 / 4;
    d - Duration::from_millis(rand::random::<u64>() % (quarter + 1))
}

//! The server's end of a station connection. A [`StationLink`] is the `StationPort` of one remote
//! station: the issuance engine calls it like any other station, and it turns each call into a
//! protocol request over whatever WebSocket the station has open now.
//!
//! The link outlives connections. When the station's connection drops, a request in flight waits
//! up to `reconnect_wait` for the station to come back and is then sent again with the same id
//! (the station answers a repeated id from memory, so nothing runs twice). A station that stays
//! away longer fails the request with [`CardError::Unreachable`], and the issuance fails cleanly.

use crate::protocol::*;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tessera_core::ids::StationId;
use tessera_core::ports::*;
use tokio::sync::{mpsc, oneshot, watch};

/// How long a request waits for a station that lost its connection.
pub const DEFAULT_RECONNECT_WAIT: Duration = Duration::from_secs(30);
/// How long a card command may take at the station (RSA key generation on a slow card).
const CARD_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a print job may take before the server gives up on its answer.
const PRINT_TIMEOUT: Duration = Duration::from_secs(300);

/// The connection a station has open now.
#[derive(Clone)]
struct Connection {
    generation: u64,
    out: mpsc::UnboundedSender<ServerMessage>,
    /// The station process on the other end (see `Hello::instance`).
    instance: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the station {0} is not connected and did not come back in time")]
    Away(String),
    #[error("the station {0} did not answer in time")]
    Timeout(String),
    #[error("the station {0} restarted during the request, which was not repeated")]
    Restarted(String),
}

pub struct StationLink {
    id: StationId,
    name: RwLock<String>,
    connection: watch::Sender<Option<Connection>>,
    generations: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<ReplyBody>>>,
    inventory: RwLock<Inventory>,
    next_id: AtomicU64,
    requests: AtomicU64,
    reconnect_wait: Duration,
}

impl StationLink {
    pub fn new(id: StationId, name: &str, reconnect_wait: Duration) -> Self {
        Self {
            id,
            name: RwLock::new(name.to_owned()),
            connection: watch::channel(None).0,
            generations: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
            inventory: RwLock::new(Inventory::default()),
            // Ids start at a random point so that a restarted server never reuses an id the
            // station still remembers an answer for.
            next_id: AtomicU64::new(u64::from(rand::random::<u32>()) << 20),
            requests: AtomicU64::new(0),
            reconnect_wait,
        }
    }

    pub fn id(&self) -> &StationId {
        &self.id
    }

    pub fn name(&self) -> String {
        self.name.read().expect("name lock").clone()
    }

    pub fn is_connected(&self) -> bool {
        self.connection.borrow().is_some()
    }

    /// Requests sent since the server started: round trips, for measurements.
    pub fn round_trips(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// A new connection of this station; returns its generation, which `detach` names.
    pub fn attach(
        &self,
        name: &str,
        instance: &str,
        out: mpsc::UnboundedSender<ServerMessage>,
    ) -> u64 {
        *self.name.write().expect("name lock") = name.to_owned();
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        // A newer connection replaces an older one: the old socket's writer ends with its sender.
        self.connection.send_replace(Some(Connection {
            generation,
            out,
            instance: instance.to_owned(),
        }));
        generation
    }

    /// The connection of `generation` ended (a newer one may already be attached).
    pub fn detach(&self, generation: u64) {
        self.connection.send_if_modified(|c| {
            if c.as_ref().is_some_and(|c| c.generation == generation) {
                *c = None;
                true
            } else {
                false
            }
        });
    }

    /// Sends `refused` and closes the connection now (the station was revoked or disabled).
    pub fn kick(&self, reason: &str) {
        let old = self.connection.send_replace(None);
        if let Some(c) = old {
            let _ = c.out.send(ServerMessage::Refused {
                reason: reason.to_owned(),
            });
        }
    }

    /// A message from the station.
    pub fn receive(&self, message: StationMessage) {
        match message {
            StationMessage::Reply(reply) => {
                let waiter = self.pending.lock().expect("pending lock").remove(&reply.id);
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(reply.body);
                    }
                    None => tracing::debug!(id = reply.id, "a reply nobody waits for"),
                }
            }
            StationMessage::Inventory(inventory) => {
                *self.inventory.write().expect("inventory lock") = inventory;
            }
            StationMessage::CardEvent { reader, present } => {
                tracing::info!(station = %self.id, %reader, present, "card event");
                let mut inventory = self.inventory.write().expect("inventory lock");
                if let Some(r) = inventory.readers.iter_mut().find(|r| r.name == reader) {
                    r.card_present = Some(present);
                }
            }
            StationMessage::Hello { .. } => {
                tracing::warn!(station = %self.id, "a second hello on one connection ignored")
            }
        }
    }

    pub fn inventory(&self) -> Inventory {
        self.inventory.read().expect("inventory lock").clone()
    }

    async fn connected(&self, wait: Duration) -> Result<Connection, LinkError> {
        let mut rx = self.connection.subscribe();
        let found = tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await;
        match found {
            Ok(Ok(c)) => Ok(c.clone().expect("waited for a connection")),
            _ => Err(LinkError::Away(self.name())),
        }
    }

    /// Sends a request and waits for its reply, across reconnections.
    pub async fn request(
        &self,
        body: RequestBody,
        timeout: Duration,
    ) -> Result<ReplyBody, LinkError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        let result = self.exchange(id, body, timeout, &mut rx).await;
        self.pending.lock().expect("pending lock").remove(&id);
        result
    }

    async fn exchange(
        &self,
        id: u64,
        body: RequestBody,
        timeout: Duration,
        rx: &mut oneshot::Receiver<ReplyBody>,
    ) -> Result<ReplyBody, LinkError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut sent_to: Option<String> = None;
        loop {
            let conn = self.connected(self.reconnect_wait).await?;
            // Sent again only to the process that got it first: a restarted station has lost the
            // card session, and a print it may have finished must not run twice.
            if sent_to
                .as_ref()
                .is_some_and(|first| *first != conn.instance)
            {
                return Err(LinkError::Restarted(self.name()));
            }
            sent_to.get_or_insert_with(|| conn.instance.clone());
            self.requests.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(station = %self.id, id, op = body.op(), "request");
            let sent = conn.out.send(ServerMessage::Request(Request {
                id,
                body: body.clone(),
            }));
            if sent.is_err() {
                // The socket's writer is gone: wait for the next connection.
                self.detach(conn.generation);
                continue;
            }
            let mut watch = self.connection.subscribe();
            let lost =
                watch.wait_for(|c| c.as_ref().map(|c| c.generation) != Some(conn.generation));
            tokio::select! {
                reply = &mut *rx => {
                    return reply.map_err(|_| LinkError::Away(self.name()));
                }
                _ = lost => {
                    tracing::warn!(station = %self.id, id, "connection lost during a request; waiting for the station");
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(LinkError::Timeout(self.name()));
                }
            }
        }
    }
}

fn unexpected(reply: &ReplyBody) -> String {
    match reply {
        ReplyBody::Failed { message } => message.clone(),
        ReplyBody::CardFailed(e) => e.to_string(),
        other => format!("the station gave an unexpected answer: {other:?}"),
    }
}

/// Whatever carries a station's requests: its own connection to this process
/// ([`StationLink`]), or another replica that holds the connection (see [`Elsewhere`]).
#[async_trait]
pub trait Requester: Send + Sync {
    /// Sends a request and waits for its reply.
    async fn request(&self, body: RequestBody, timeout: Duration) -> Result<ReplyBody, LinkError>;
    /// The readers and printers the station last reported.
    async fn inventory(&self) -> Inventory;
}

#[async_trait]
impl Requester for StationLink {
    async fn request(&self, body: RequestBody, timeout: Duration) -> Result<ReplyBody, LinkError> {
        StationLink::request(self, body, timeout).await
    }

    async fn inventory(&self) -> Inventory {
        StationLink::inventory(self)
    }
}

/// The other replicas of the server, for the stations whose connection one of them holds.
#[async_trait]
pub trait Elsewhere: Send + Sync {
    /// The requests of `station` through the replica that holds its connection, when another
    /// replica (not this process) does.
    async fn holder(&self, station: &StationId) -> Option<Arc<dyn Requester>>;
}

/// A station as this process reaches it: through its own connection here when it has one, else
/// through the replica that holds it, else by waiting for it to come back here.
struct Routed {
    id: StationId,
    link: Option<Arc<StationLink>>,
    elsewhere: Option<Arc<dyn Elsewhere>>,
}

impl Routed {
    async fn route(&self) -> Result<Arc<dyn Requester>, LinkError> {
        if let Some(link) = self.link.as_ref().filter(|l| l.is_connected()) {
            return Ok(link.clone());
        }
        if let Some(elsewhere) = &self.elsewhere {
            if let Some(holder) = elsewhere.holder(&self.id).await {
                return Ok(holder);
            }
        }
        match &self.link {
            // Connected here before: a request waits for it to come back.
            Some(link) => Ok(link.clone()),
            None => Err(LinkError::Away(self.id.to_string())),
        }
    }
}

#[async_trait]
impl Requester for Routed {
    async fn request(&self, body: RequestBody, timeout: Duration) -> Result<ReplyBody, LinkError> {
        self.route().await?.request(body, timeout).await
    }

    async fn inventory(&self) -> Inventory {
        match self.route().await {
            Ok(r) => r.inventory().await,
            Err(_) => Inventory::default(),
        }
    }
}

/// A remote station as the issuance engine sees it.
pub struct RemoteStation(pub Arc<dyn Requester>);

impl RemoteStation {
    async fn request(&self, body: RequestBody, timeout: Duration) -> Result<ReplyBody, LinkError> {
        self.0.request(body, timeout).await
    }
}

#[async_trait]
impl StationPort for RemoteStation {
    async fn printers(&self) -> Result<Vec<PrinterInfo>, PortError> {
        Ok(self.0.inventory().await.printers)
    }

    async fn readers(&self) -> Result<Vec<String>, PortError> {
        Ok(self
            .0
            .inventory()
            .await
            .readers
            .into_iter()
            .map(|r| r.name)
            .collect())
    }

    async fn feed_card(&self, printer: &str) -> Result<(), PortError> {
        let body = RequestBody::FeedCard {
            printer: printer.to_owned(),
        };
        match self.request(body, CARD_TIMEOUT).await {
            Ok(ReplyBody::Fed) => Ok(()),
            Ok(other) => Err(PortError::new(unexpected(&other))),
            Err(e) => Err(PortError::new(e.to_string())),
        }
    }

    async fn eject_card(&self, printer: &str) -> Result<(), PortError> {
        let body = RequestBody::EjectCard {
            printer: printer.to_owned(),
        };
        match self.request(body, CARD_TIMEOUT).await {
            Ok(ReplyBody::Ejected) => Ok(()),
            Ok(other) => Err(PortError::new(unexpected(&other))),
            Err(e) => Err(PortError::new(e.to_string())),
        }
    }

    async fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, CardError> {
        let body = RequestBody::Connect {
            reader: reader.to_owned(),
        };
        match self.request(body, CARD_TIMEOUT).await {
            Ok(ReplyBody::Connected {
                session,
                atr,
                extended_length,
            }) => Ok(Box::new(RelayTransport {
                link: self.0.clone(),
                session,
                atr,
                extended_length,
            })),
            Ok(ReplyBody::CardFailed(e)) => Err(e),
            Ok(other) => Err(CardError::Unreachable(unexpected(&other))),
            Err(e) => Err(CardError::Unreachable(e.to_string())),
        }
    }

    async fn print(
        &self,
        printer: &str,
        job_name: &str,
        card: &RenderedCard,
    ) -> Result<PrintReceipt, PortError> {
        let body = RequestBody::Print {
            printer: printer.to_owned(),
            job_name: job_name.to_owned(),
            front_png: card.front_png.clone(),
            back_png: card.back_png.clone(),
            pdf: card.pdf.clone(),
        };
        match self.request(body, PRINT_TIMEOUT).await {
            Ok(ReplyBody::Printed(receipt)) => Ok(receipt),
            Ok(other) => Err(PortError::new(unexpected(&other))),
            Err(e) => Err(PortError::new(e.to_string())),
        }
    }
}

/// A card at a remote station: APDUs and APDU scripts relayed through the link.
pub struct RelayTransport {
    link: Arc<dyn Requester>,
    session: String,
    atr: Vec<u8>,
    extended_length: bool,
}

impl RelayTransport {
    async fn card_request(&self, body: RequestBody) -> Result<ReplyBody, CardError> {
        match self.link.request(body, CARD_TIMEOUT).await {
            Ok(ReplyBody::CardFailed(e)) => Err(e),
            Ok(ReplyBody::Failed { message }) => Err(CardError::Unreachable(message)),
            Ok(reply) => Ok(reply),
            Err(e) => Err(CardError::Unreachable(e.to_string())),
        }
    }
}

#[async_trait]
impl CardTransport for RelayTransport {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        let body = RequestBody::Transmit {
            session: self.session.clone(),
            apdu: command.to_vec(),
        };
        match self.card_request(body).await? {
            ReplyBody::Response { apdu } => Ok(apdu),
            other => Err(CardError::Unreachable(unexpected(&other))),
        }
    }

    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn extended_length(&self) -> bool {
        self.extended_length
    }

    async fn close(&mut self) {
        // The station resets the card as it closes the session; waiting for that keeps the next
        // connection to the reader from meeting the reset.
        let session = std::mem::take(&mut self.session);
        if !session.is_empty() {
            let body = RequestBody::Disconnect { session };
            let _ = self.link.request(body, Duration::from_secs(10)).await;
        }
    }

    async fn run_script(&mut self, script: &[ScriptCommand]) -> Result<Vec<Vec<u8>>, CardError> {
        let body = RequestBody::Script {
            session: self.session.clone(),
            commands: script.iter().map(WireCommand::from).collect(),
        };
        match self.card_request(body).await? {
            ReplyBody::ScriptDone { responses } if responses.len() <= script.len() => Ok(responses),
            other => Err(CardError::Unreachable(unexpected(&other))),
        }
    }
}

impl Drop for RelayTransport {
    fn drop(&mut self) {
        // Closing the session resets the card at the station; nobody waits for the answer.
        let link = self.link.clone();
        let session = std::mem::take(&mut self.session);
        if session.is_empty() {
            return; // closed already
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let body = RequestBody::Disconnect { session };
                let _ = link.request(body, Duration::from_secs(10)).await;
            });
        }
    }
}

/// Every station the server can reach: the in-process ones and the connected remote ones.
pub struct StationHub {
    local: HashMap<StationId, Arc<dyn StationPort>>,
    remote: RwLock<HashMap<StationId, Arc<StationLink>>>,
    reconnect_wait: Duration,
    /// The other replicas, when this process is one of several.
    elsewhere: Option<Arc<dyn Elsewhere>>,
}

impl StationHub {
    pub fn new(reconnect_wait: Duration) -> Self {
        Self {
            local: HashMap::new(),
            remote: RwLock::new(HashMap::new()),
            reconnect_wait,
            elsewhere: None,
        }
    }

    /// Reaches the stations that other replicas hold through `elsewhere`.
    pub fn set_elsewhere(&mut self, elsewhere: Arc<dyn Elsewhere>) {
        self.elsewhere = Some(elsewhere);
    }

    /// Whether the station can be reached now: connected here or at another replica.
    pub async fn reachable(&self, id: &StationId) -> bool {
        if self.remote(id).is_some_and(|l| l.is_connected()) {
            return true;
        }
        match &self.elsewhere {
            Some(e) => e.holder(id).await.is_some(),
            None => false,
        }
    }

    /// The inventory a remote station last reported, here or at the replica that holds it;
    /// None when it is connected nowhere.
    pub async fn inventory(&self, id: &StationId) -> Option<Inventory> {
        if let Some(link) = self.remote(id).filter(|l| l.is_connected()) {
            return Some(link.inventory());
        }
        match &self.elsewhere {
            Some(e) => Some(e.holder(id).await?.inventory().await),
            None => None,
        }
    }

    pub fn insert_local(&mut self, id: StationId, station: Arc<dyn StationPort>) {
        self.local.insert(id, station);
    }

    /// The link of a remote station, made on its first connection.
    pub fn link(&self, id: &StationId, name: &str) -> Arc<StationLink> {
        let mut remote = self.remote.write().expect("stations lock");
        remote
            .entry(id.clone())
            .or_insert_with(|| Arc::new(StationLink::new(id.clone(), name, self.reconnect_wait)))
            .clone()
    }

    pub fn remote(&self, id: &StationId) -> Option<Arc<StationLink>> {
        self.remote.read().expect("stations lock").get(id).cloned()
    }
}

impl StationDirectory for StationHub {
    fn station(&self, id: &StationId) -> Option<Arc<dyn StationPort>> {
        if let Some(local) = self.local.get(id) {
            return Some(local.clone());
        }
        let link = self.remote(id);
        if link.is_none() && self.elsewhere.is_none() {
            return None;
        }
        let routed = Routed {
            id: id.clone(),
            link,
            elsewhere: self.elsewhere.clone(),
        };
        Some(Arc::new(RemoteStation(Arc::new(routed))) as Arc<dyn StationPort>)
    }

    fn is_here(&self, id: &StationId) -> bool {
        if self.local.contains_key(id) {
            return true;
        }
        match &self.elsewhere {
            // One of several replicas: only a connection here makes the station this one's.
            Some(_) => self.remote(id).is_some_and(|l| l.is_connected()),
            // Alone: every station is this process's, connected now or coming back.
            None => self.remote(id).is_some(),
        }
    }

    fn here(&self) -> Vec<StationId> {
        let remote = self.remote.read().expect("stations lock");
        self.local
            .keys()
            .cloned()
            .chain(
                remote
                    .iter()
                    .filter(|(_, l)| l.is_connected())
                    .map(|(id, _)| id.clone()),
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn next_request(rx: &mut mpsc::UnboundedReceiver<ServerMessage>) -> Request {
        match rx.recv().await {
            Some(ServerMessage::Request(r)) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_request_is_sent_again_to_the_same_process_only() {
        let link = Arc::new(StationLink::new(
            StationId::new("st-1"),
            "Desk",
            Duration::from_secs(5),
        ));
        // The same process reconnects: the request goes out again with the same id.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let g1 = link.attach("Desk", "process-a", tx);
        let l = link.clone();
        let pending = tokio::spawn(async move {
            l.request(
                RequestBody::FeedCard {
                    printer: "P".into(),
                },
                Duration::from_secs(5),
            )
            .await
        });
        let first = next_request(&mut rx).await;
        link.detach(g1);
        let (tx, mut rx) = mpsc::unbounded_channel();
        link.attach("Desk", "process-a", tx);
        let again = next_request(&mut rx).await;
        assert_eq!(again.id, first.id);
        link.receive(StationMessage::Reply(Reply {
            id: again.id,
            body: ReplyBody::Fed,
        }));
        assert_eq!(pending.await.unwrap().unwrap(), ReplyBody::Fed);

        // Another process (the station restarted): the request is not repeated.
        let l = link.clone();
        let pending = tokio::spawn(async move {
            l.request(
                RequestBody::FeedCard {
                    printer: "P".into(),
                },
                Duration::from_secs(5),
            )
            .await
        });
        let _ = next_request(&mut rx).await;
        link.kick("test");
        let (tx, _rx) = mpsc::unbounded_channel();
        link.attach("Desk", "process-b", tx);
        let err = pending.await.unwrap().unwrap_err();
        assert!(matches!(err, LinkError::Restarted(_)), "{err}");
    }

    #[tokio::test]
    async fn a_station_that_stays_away_fails_the_request_in_bounded_time() {
        let link = StationLink::new(StationId::new("st-1"), "Desk", Duration::from_millis(100));
        let started = std::time::Instant::now();
        let err = link
            .request(RequestBody::Inventory, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, LinkError::Away(_)));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

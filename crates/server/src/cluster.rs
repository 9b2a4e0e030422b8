//! Several replicas of `tessera serve` on one PostgreSQL (see `tessera_core::dispatch`). A
//! station's WebSocket is held by one replica; the others reach that station through it:
//!
//! - each replica records in the database which stations it holds (`station_presence`), with the
//!   URL it is reached at (`--cluster-url`);
//! - a replica that needs a station it does not hold (an operator's Start reads the fed card, a
//!   Cancel ejects it, a page lists the printers) forwards each station request to the holder's
//!   `/cluster/stations/{id}/...` endpoints, with the secret all replicas share;
//! - issuance jobs themselves are not forwarded: they are queued in the database for the holder,
//!   which runs them (`tessera_core::dispatch`), so no card session spans two replicas.
//!
//! A holder that died leaves its presence rows until the stations reconnect elsewhere; a
//! forwarded request to it fails at once (connection refused) and is answered as "the station
//! is away", as a dropped connection would be.

use crate::app::AppState;
use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tessera_core::ids::StationId;
use tessera_core::ports::{StationPresence, Store};
use tessera_station::link::{Elsewhere, LinkError, Requester};
use tessera_station::protocol::{Inventory, ReplyBody, RequestBody};

/// The header that carries the replicas' shared secret.
const SECRET_HEADER: &str = "x-tessera-cluster";

/// This replica as the others know it.
pub struct Peers {
    store: Arc<dyn Store>,
    /// This replica's instance id (its job runner's), as presence rows name it.
    replica: String,
    url: String,
    secret: String,
    http: reqwest::Client,
}

impl Peers {
    pub fn new(store: Arc<dyn Store>, replica: String, url: String, secret: String) -> Self {
        Self {
            store,
            replica,
            url: url.trim_end_matches('/').to_owned(),
            secret,
            http: reqwest::Client::new(),
        }
    }

    /// The station's connection `generation` opened here: the other replicas forward to us.
    pub async fn arrived(&self, station: &StationId, generation: u64, now_ms: i64) {
        let presence = StationPresence {
            station: station.clone(),
            replica: self.replica.clone(),
            url: self.url.clone(),
            generation,
            since_ms: now_ms,
        };
        if let Err(e) = self.store.put_presence(&presence).await {
            tracing::error!(%station, error = %e, "could not record where the station is connected");
        }
    }

    /// The connection `generation` ended; the row goes only if no newer connection replaced it.
    pub async fn left(&self, station: &StationId, generation: u64) {
        if let Err(e) = self
            .store
            .clear_presence(station, &self.replica, generation)
            .await
        {
            tracing::warn!(%station, error = %e, "could not clear the station's presence");
        }
    }

    /// Whether a forwarded request carries the shared secret. Both sides are hashed first, so
    /// the comparison takes the same time whatever the guess.
    fn admits(&self, headers: &HeaderMap) -> bool {
        let given = headers
            .get(SECRET_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        !self.secret.is_empty()
            && Sha256::digest(given.as_bytes()) == Sha256::digest(self.secret.as_bytes())
    }
}

#[async_trait]
impl Elsewhere for Peers {
    async fn holder(&self, station: &StationId) -> Option<Arc<dyn Requester>> {
        let presence = self.store.presence(station).await.ok()??;
        if presence.replica == self.replica {
            return None;
        }
        Some(Arc::new(Forwarded {
            station: station.clone(),
            base: format!("{}/cluster/stations/{}", presence.url, station),
            secret: self.secret.clone(),
            http: self.http.clone(),
        }))
    }
}

/// A station reached through the replica that holds it.
struct Forwarded {
    station: StationId,
    base: String,
    secret: String,
    http: reqwest::Client,
}

#[derive(Serialize, Deserialize)]
struct ForwardedRequest {
    body: RequestBody,
    timeout_ms: u64,
}

/// The holder's answer: the station's reply, or why there is none.
#[derive(Serialize, Deserialize)]
#[serde(tag = "outcome", content = "value", rename_all = "snake_case")]
enum ForwardedReply {
    Reply(ReplyBody),
    Away(String),
    Timeout(String),
    Restarted(String),
}

#[async_trait]
impl Requester for Forwarded {
    async fn request(&self, body: RequestBody, timeout: Duration) -> Result<ReplyBody, LinkError> {
        let away = |e: String| {
            tracing::warn!(station = %self.station, error = %e, "forwarding to the replica holding the station failed");
            LinkError::Away(self.station.to_string())
        };
        let sent = self
            .http
            .post(format!("{}/request", self.base))
            .header(SECRET_HEADER, &self.secret)
            .timeout(timeout + Duration::from_secs(5))
            .json(&ForwardedRequest {
                body,
                timeout_ms: timeout.as_millis() as u64,
            })
            .send()
            .await
            .map_err(|e| away(e.to_string()))?;
        if !sent.status().is_success() {
            return Err(away(format!("the replica answered {}", sent.status())));
        }
        match sent
            .json::<ForwardedReply>()
            .await
            .map_err(|e| away(e.to_string()))?
        {
            ForwardedReply::Reply(reply) => Ok(reply),
            ForwardedReply::Away(name) => Err(LinkError::Away(name)),
            ForwardedReply::Timeout(name) => Err(LinkError::Timeout(name)),
            ForwardedReply::Restarted(name) => Err(LinkError::Restarted(name)),
        }
    }

    async fn inventory(&self) -> Inventory {
        let fetched = self
            .http
            .get(format!("{}/inventory", self.base))
            .header(SECRET_HEADER, &self.secret)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match fetched {
            Ok(r) if r.status().is_success() => r.json().await.unwrap_or_default(),
            _ => Inventory::default(),
        }
    }
}

/// The endpoints the other replicas forward to; present only when this one is in a cluster.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cluster/stations/{id}/request", post(forwarded_request))
        .route("/cluster/stations/{id}/inventory", get(forwarded_inventory))
}

async fn forwarded_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<ForwardedRequest>,
) -> Response {
    if !state
        .tessera
        .peers
        .as_ref()
        .is_some_and(|p| p.admits(&headers))
    {
        return StatusCode::FORBIDDEN.into_response();
    }
    let link = state
        .tessera
        .hub
        .remote(&StationId::new(id.clone()))
        .filter(|l| l.is_connected());
    let Some(link) = link else {
        return Json(ForwardedReply::Away(id)).into_response();
    };
    let timeout = Duration::from_millis(req.timeout_ms.min(600_000));
    let reply = match link.request(req.body, timeout).await {
        Ok(reply) => ForwardedReply::Reply(reply),
        Err(LinkError::Away(n)) => ForwardedReply::Away(n),
        Err(LinkError::Timeout(n)) => ForwardedReply::Timeout(n),
        Err(LinkError::Restarted(n)) => ForwardedReply::Restarted(n),
    };
    Json(reply).into_response()
}

async fn forwarded_inventory(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !state
        .tessera
        .peers
        .as_ref()
        .is_some_and(|p| p.admits(&headers))
    {
        return StatusCode::FORBIDDEN.into_response();
    }
    match state
        .tessera
        .hub
        .remote(&StationId::new(id))
        .filter(|l| l.is_connected())
    {
        Some(link) => Json(link.inventory()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

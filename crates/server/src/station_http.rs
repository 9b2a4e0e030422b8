//! The station endpoints, both WebSocket upgrades: enrolment (`GET /station/v1/enrol`, the token
//! as bearer, answered with one message) and the connection a station keeps open
//! (`GET /station/v1/connect`, the credential as bearer). Secrets are checked before the upgrade,
//! so a revoked or unknown station never gets a socket; after it, frames are pumped into the
//! station's link.

use crate::app::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tessera_core::model::Station;
use tessera_core::secret::StationSecret;
use tessera_core::stations;
use tessera_station::protocol::*;
use tokio::sync::mpsc;

/// How long a new connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame a station may send (a print job travels the other way).
const MAX_FRAME: usize = 1024 * 1024;
/// How often a connected station's right to be connected is checked again.
const RECHECK_EVERY: Duration = Duration::from_secs(2);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(ENROL_PATH, get(enrol))
        .route(CONNECT_PATH, get(connect))
}

fn refusal(status: StatusCode, message: String) -> Response {
    (status, message).into_response()
}

/// "You are not allowed to connect this station: its credential is revoked; ...".
fn sentence(e: &tessera_core::CoreError) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => text,
    }
}

fn bearer(headers: &HeaderMap) -> Option<StationSecret> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(StationSecret::new)
}

async fn enrol(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(token) = bearer(&headers) else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "Enrolment needs the token an administrator created for this station.".into(),
        );
    };
    match stations::enrol(&state.tessera.services, &token).await {
        Ok((station, credential)) => {
            let answer = EnrolResponse {
                station_id: station.id.as_str().to_owned(),
                station_name: station.name,
                credential: credential.expose().to_owned(),
            };
            let text = serde_json::to_string(&answer).expect("protocol messages serialise");
            upgrade.on_upgrade(move |mut socket| async move {
                let _ = socket.send(Message::Text(text.into())).await;
                let _ = socket.close().await;
            })
        }
        Err(e) => {
            let status = match e.code() {
                tessera_core::error::ErrorCode::Forbidden => StatusCode::FORBIDDEN,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            refusal(status, sentence(&e))
        }
    }
}

async fn connect(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(credential) = bearer(&headers) else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "A station must present its credential; enrol it with a token first.".into(),
        );
    };
    let station = match stations::authenticate(&state.tessera.services, &credential).await {
        Ok(station) => station,
        Err(e) => return refusal(StatusCode::FORBIDDEN, sentence(&e)),
    };
    upgrade
        .max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| serve(state, station, socket))
}

async fn serve(state: AppState, station: Station, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let hello = tokio::time::timeout(HELLO_TIMEOUT, next_message(&mut stream)).await;
    let (version, agent, instance) = match hello {
        Ok(Some(StationMessage::Hello {
            version,
            agent,
            instance,
            ..
        })) => (version, agent, instance),
        _ => {
            tracing::warn!(station = %station.id, "a station connected without saying hello");
            return;
        }
    };
    if version != VERSION {
        let reason = format!(
            "this server speaks station protocol {VERSION}, the station speaks {version}; \
             install the same Tessera version on both"
        );
        let _ = send(&mut sink, &ServerMessage::Refused { reason }).await;
        return;
    }
    let welcome = ServerMessage::Welcome {
        version: VERSION,
        station_id: station.id.as_str().to_owned(),
        station_name: station.name.clone(),
    };
    if send(&mut sink, &welcome).await.is_err() {
        return;
    }
    let link = state.tessera.hub.link(&station.id, &station.name);
    let (out, mut out_rx) = mpsc::unbounded_channel();
    // The printers configured for this station on the server, now and whenever they change.
    let mut printers = station.printers.clone();
    let _ = out.send(ServerMessage::Printers {
        printers: printers.clone(),
    });
    let printers_out = out.clone();
    let generation = link.attach(&station.name, &instance, out);
    let svc = &state.tessera.services;
    if let Some(peers) = &state.tessera.peers {
        peers
            .arrived(&station.id, generation, svc.clock.now_ms())
            .await;
    }
    let _ =
        stations::audit_connection(svc, &station, true, serde_json::json!({"agent": agent})).await;
    tracing::info!(station = %station.name, %agent, "station connected");

    let writer = tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            let refused = matches!(message, ServerMessage::Refused { .. });
            if send(&mut sink, &message).await.is_err() || refused {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let reader_link = link.clone();
    let mut reader = tokio::spawn(async move {
        while let Some(message) = next_message(&mut stream).await {
            reader_link.receive(message);
        }
    });
    let mut writer = writer;
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    loop {
        tokio::select! {
            _ = &mut reader => { writer.abort(); break; }
            _ = &mut writer => { reader.abort(); break; }
            _ = recheck.tick() => {
                let now = current(&state, &station).await;
                if let Err(reason) = &now {
                    link.kick(reason);
                }
                if let Ok(Some(now)) = now {
                    if now.printers != printers {
                        printers = now.printers;
                        let _ = printers_out.send(ServerMessage::Printers {
                            printers: printers.clone(),
                        });
                    }
                }
            }
        }
    }
    link.detach(generation);
    if let Some(peers) = &state.tessera.peers {
        peers.left(&station.id, generation).await;
    }
    let _ = stations::audit_connection(svc, &station, false, serde_json::json!({})).await;
    tracing::info!(station = %station.name, "station disconnected");
}

/// The connected station's record as it is now (changed by an administrator, another server
/// replica or the CLI; None when the database did not answer), or why the station must be cut
/// off now: revoked, disabled or enrolled again elsewhere.
async fn current(state: &AppState, station: &Station) -> Result<Option<Station>, String> {
    let Ok(stations) = state.tessera.services.store.stations().await else {
        return Ok(None);
    };
    let now = stations.into_iter().find(|s| s.id == station.id);
    let credential = |s: &Station| s.access.as_ref().and_then(|a| a.credential_hash.clone());
    match now {
        None => Err("this station was deleted".into()),
        Some(s) if s.access.as_ref().is_some_and(|a| a.revoked) => {
            Err("this station's credential was revoked".into())
        }
        Some(s) if !s.enabled => Err("this station was disabled".into()),
        Some(s) if credential(&s) != credential(station) => {
            Err("this station was enrolled again with a new credential".into())
        }
        Some(s) => Ok(Some(s)),
    }
}

async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    message: &ServerMessage,
) -> Result<(), axum::Error> {
    let text = serde_json::to_string(message).expect("protocol messages serialise");
    sink.send(Message::Text(text.into())).await
}

/// The next protocol message; None when the socket ends or sends something malformed (the
/// connection is then dropped: a station that speaks nonsense is not argued with).
async fn next_message(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Option<StationMessage> {
    loop {
        match stream.next().await? {
            Ok(Message::Text(text)) => match serde_json::from_str(&text) {
                Ok(message) => return Some(message),
                Err(e) => {
                    tracing::warn!(error = %e, "a malformed station message; closing");
                    return None;
                }
            },
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

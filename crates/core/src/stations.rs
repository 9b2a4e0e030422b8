//! Remote stations: the workstations where card printers and readers are plugged in, running
//! `tessera station`. An administrator creates one and gets a one-time enrolment token; the
//! station exchanges the token for a long-lived credential; from then on the credential opens its
//! connection. Only SHA-256 digests of tokens and credentials are stored, so a copy of the
//! database cannot impersonate a station. Every step, refused ones included, is audited.

use crate::audit::{self, EventKind};
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::ids::StationId;
use crate::model::{Permission, Station, StationAccess, Timestamp};
use crate::secret::StationSecret;
use crate::services::{Actor, AuditContext, Services};
use serde_json::json;

/// How long an enrolment token stays usable after it was handed out.
pub const ENROLMENT_TOKEN_HOURS: i64 = 24;
/// Prefixes that tell a person which secret they hold (and let secret scanners find leaks).
const TOKEN_PREFIX: &str = "tse_";
const CREDENTIAL_PREFIX: &str = "tsc_";

fn new_secret(svc: &Services, prefix: &str) -> StationSecret {
    StationSecret::new(format!("{prefix}{}", hex::encode(svc.random.bytes::<32>())))
}

/// Stores a station and its audit event in one transaction.
async fn save_station(
    svc: &Services,
    kind: EventKind,
    actor: Option<&Actor>,
    station: &Station,
    extra: serde_json::Value,
) -> Result<(), CoreError> {
    let mut changes = Changes::new();
    changes.push(Change::PutStation(station.clone()));
    changes.audit(station_event(svc, kind, actor, station, extra));
    svc.commit(changes).await
}

fn station_event(
    svc: &Services,
    kind: EventKind,
    actor: Option<&Actor>,
    station: &Station,
    extra: serde_json::Value,
) -> crate::ports::NewAuditEvent {
    let mut details = json!({"station": station.id.as_str(), "name": station.name});
    if let (Some(map), serde_json::Value::Object(more)) = (details.as_object_mut(), extra) {
        map.extend(more);
    }
    svc.event(
        kind,
        AuditContext {
            operator: actor.map(|a| &a.operator),
            ..Default::default()
        },
        details,
    )
}

async fn find(svc: &Services, id: &StationId) -> Result<Station, CoreError> {
    svc.store
        .stations()
        .await?
        .into_iter()
        .find(|s| &s.id == id)
        .ok_or_else(|| CoreError::NotFound(format!("the station {id}")))
}

/// Creates a remote station and returns it with its enrolment token (shown once).
pub async fn create(
    svc: &Services,
    actor: &Actor,
    name: &str,
) -> Result<(Station, StationSecret), CoreError> {
    actor.require(Permission::ManageStations, "manage stations")?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(CoreError::Invalid(
            "give the station a name of 1 to 80 characters".into(),
        ));
    }
    let stations = svc.store.stations().await?;
    if stations.iter().any(|s| s.name.eq_ignore_ascii_case(name)) {
        return Err(CoreError::Invalid(format!(
            "a station named {name:?} exists already"
        )));
    }
    let mut station = Station {
        id: StationId::new(format!("st-{}", &svc.random.uuid()[..8])),
        name: name.to_owned(),
        enabled: true,
        printers: Vec::new(),
        access: Some(StationAccess::default()),
    };
    let token = arm_enrolment(svc, &mut station);
    save_station(
        svc,
        audit::STATION_CREATED,
        Some(actor),
        &station,
        json!({}),
    )
    .await?;
    Ok((station, token))
}

/// Gives an existing remote station a fresh enrolment token (a reinstalled or revoked station).
/// The credential it had stays valid until the new token is used, unless it was revoked.
pub async fn new_enrolment_token(
    svc: &Services,
    actor: &Actor,
    id: &StationId,
) -> Result<(Station, StationSecret), CoreError> {
    actor.require(Permission::ManageStations, "manage stations")?;
    let mut station = find(svc, id).await?;
    if station.access.is_none() {
        return Err(CoreError::Invalid(
            "this station runs inside the server and needs no enrolment".into(),
        ));
    }
    let token = arm_enrolment(svc, &mut station);
    save_station(
        svc,
        audit::STATION_CHANGED,
        Some(actor),
        &station,
        json!({"change": "enrolment token issued"}),
    )
    .await?;
    Ok((station, token))
}

fn arm_enrolment(svc: &Services, station: &mut Station) -> StationSecret {
    let token = new_secret(svc, TOKEN_PREFIX);
    let access = station.access.get_or_insert_with(Default::default);
    access.enrolment_token_hash = Some(token.digest());
    access.enrolment_expires = Some(Timestamp(svc.clock.now().0 + ENROLMENT_TOKEN_HOURS * 3600));
    token
}

/// Exchanges an enrolment token for the station's credential. The token works once: a replayed,
/// expired or invented token is refused and audited.
pub async fn enrol(
    svc: &Services,
    token: &StationSecret,
) -> Result<(Station, StationSecret), CoreError> {
    let digest = token.digest();
    let now = svc.clock.now();
    let stations = svc.store.stations().await?;
    let found = stations.into_iter().find(|s| {
        s.access
            .as_ref()
            .and_then(|a| a.enrolment_token_hash.as_deref())
            == Some(digest.as_str())
    });
    let Some(mut station) = found else {
        svc.audit_refusal(
            audit::STATION_ENROLMENT_REFUSED,
            AuditContext::default(),
            json!({"reason": "unknown or already used token"}),
        )
        .await?;
        return Err(CoreError::Forbidden(
            "enrol with this token: it is unknown or was already used; ask an administrator \
             for a new one"
                .into(),
        ));
    };
    let access = station.access.get_or_insert_with(Default::default);
    if access.enrolment_expires.is_some_and(|t| t.0 < now.0) {
        access.enrolment_token_hash = None;
        access.enrolment_expires = None;
        save_station(
            svc,
            audit::STATION_ENROLMENT_REFUSED,
            None,
            &station,
            json!({"reason": "token expired"}),
        )
        .await?;
        return Err(CoreError::Forbidden(
            "enrol with this token: it has expired; ask an administrator for a new one".into(),
        ));
    }
    let credential = new_secret(svc, CREDENTIAL_PREFIX);
    access.enrolment_token_hash = None;
    access.enrolment_expires = None;
    access.credential_hash = Some(credential.digest());
    access.enrolled_at = Some(now);
    access.revoked = false;
    save_station(svc, audit::STATION_ENROLLED, None, &station, json!({})).await?;
    Ok((station, credential))
}

/// The station a credential belongs to, if it may connect now (enrolled, enabled, not revoked).
pub async fn authenticate(
    svc: &Services,
    credential: &StationSecret,
) -> Result<Station, CoreError> {
    let digest = credential.digest();
    let station = svc.store.stations().await?.into_iter().find(|s| {
        s.access.as_ref().and_then(|a| a.credential_hash.as_deref()) == Some(digest.as_str())
    });
    let refusal = match &station {
        None => Some("unknown credential"),
        Some(s) if s.access.as_ref().is_some_and(|a| a.revoked) => Some("revoked"),
        Some(s) if !s.enabled => Some("disabled"),
        Some(_) => None,
    };
    match (station, refusal) {
        (Some(station), None) => Ok(station),
        (station, Some(reason)) => {
            let details = match &station {
                Some(s) => json!({"station": s.id.as_str(), "name": s.name, "reason": reason}),
                None => json!({"reason": reason}),
            };
            svc.audit_refusal(
                audit::STATION_CONNECTION_REFUSED,
                AuditContext::default(),
                details,
            )
            .await?;
            Err(CoreError::Forbidden(format!(
                "connect this station: its credential is {}",
                match reason {
                    "unknown credential" => "unknown; enrol the station again",
                    "revoked" => "revoked; ask an administrator for a new enrolment token",
                    _ => "valid but the station is disabled; ask an administrator to enable it",
                }
            )))
        }
        (None, None) => unreachable!("a missing station always has a refusal"),
    }
}

/// Enables or disables a station; a disabled station's connection is refused until enabled.
pub async fn set_enabled(
    svc: &Services,
    actor: &Actor,
    id: &StationId,
    enabled: bool,
) -> Result<Station, CoreError> {
    actor.require(Permission::ManageStations, "manage stations")?;
    let mut station = find(svc, id).await?;
    station.enabled = enabled;
    save_station(
        svc,
        audit::STATION_CHANGED,
        Some(actor),
        &station,
        json!({"change": if enabled { "enabled" } else { "disabled" }}),
    )
    .await?;
    Ok(station)
}

/// Revokes a station's credential and any unused enrolment token: it can never connect again
/// with them.
pub async fn revoke(svc: &Services, actor: &Actor, id: &StationId) -> Result<Station, CoreError> {
    actor.require(Permission::ManageStations, "manage stations")?;
    let mut station = find(svc, id).await?;
    let Some(access) = station.access.as_mut() else {
        return Err(CoreError::Invalid(
            "this station runs inside the server and has no credential to revoke".into(),
        ));
    };
    // The digest stays, so that the refusal can say "revoked" rather than "unknown".
    access.enrolment_token_hash = None;
    access.enrolment_expires = None;
    access.revoked = true;
    save_station(
        svc,
        audit::STATION_REVOKED,
        Some(actor),
        &station,
        json!({}),
    )
    .await?;
    Ok(station)
}

/// Records a station's connection or disconnection in the audit log.
pub async fn audit_connection(
    svc: &Services,
    station: &Station,
    connected: bool,
    details: serde_json::Value,
) -> Result<(), CoreError> {
    let kind = if connected {
        audit::STATION_CONNECTED
    } else {
        audit::STATION_DISCONNECTED
    };
    svc.commit({
        let mut changes = Changes::new();
        changes.audit(station_event(svc, kind, None, station, details));
        changes
    })
    .await
}

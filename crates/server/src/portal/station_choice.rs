//! The operator's station: which workstation this browser issues cards at. The choice is a
//! cookie (the station's id), made at sign-in or on the `/station` page; `current_station` reads
//! it and falls back to the first usable station when it names none that is usable.

use super::{chosen, connected, render, station_cookie, usable_stations, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

pub struct StationOption {
    pub id: String,
    pub name: String,
    pub connection: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "station_choice.html")]
struct ChoicePage {
    nav: Option<Nav>,
    csrf: String,
    stations: Vec<StationOption>,
    back: String,
    flash: Option<String>,
}

#[derive(Deserialize)]
pub struct ChoiceQuery {
    #[serde(default)]
    back: Option<String>,
    #[serde(default)]
    chosen: Option<String>,
}

/// A path inside the portal to return to; anything else (another site, `//host`, a path with
/// control characters that could split a header or hide where it leads) is dropped.
fn safe_back(back: Option<&str>) -> String {
    match back {
        Some(b) if crate::back_link::is_local_path(b) => b.to_owned(),
        _ => String::new(),
    }
}

/// The usable stations as options, the current one selected.
pub async fn options(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Vec<StationOption>, WebError> {
    let stations = usable_stations(state).await?;
    let current = chosen(&stations, headers)
        .or_else(|| stations.first())
        .map(|s| s.id.clone());
    let mut options = Vec::with_capacity(stations.len());
    for s in &stations {
        options.push(StationOption {
            id: s.id.as_str().to_owned(),
            name: s.name.clone(),
            connection: match (s.access.is_some(), connected(state, s).await) {
                (false, _) => "in this server".into(),
                (true, true) => "connected".into(),
                (true, false) => "not connected".into(),
            },
            selected: current.as_ref() == Some(&s.id),
        });
    }
    Ok(options)
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Query(q): Query<ChoiceQuery>,
) -> Result<Response, WebError> {
    let stations = options(&state, &headers).await?;
    let flash = q.chosen.as_ref().and_then(|_| {
        stations
            .iter()
            .find(|s| s.selected)
            .map(|s| format!("You now work at {}.", s.name))
    });
    render(&ChoicePage {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        stations,
        back: safe_back(q.back.as_deref()),
        flash,
    })
}

#[derive(Deserialize)]
pub struct ChooseForm {
    csrf: String,
    station: String,
    #[serde(default)]
    back: String,
}

/// The cookie that makes `id` this browser's station, when it names a usable station.
pub async fn cookie_for(state: &AppState, id: &str) -> Result<Option<String>, WebError> {
    Ok(usable_stations(state)
        .await?
        .iter()
        .find(|s| s.id.as_str() == id)
        .map(|s| station_cookie(s.id.as_str())))
}

pub async fn choose(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<ChooseForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let cookie = cookie_for(&state, &f.station).await?.ok_or_else(|| {
        WebError::bad_request(
            "That station cannot be chosen: it is disabled, revoked or no longer exists.",
        )
    })?;
    let back = safe_back(Some(&f.back));
    let to = if back.is_empty() {
        "/station?chosen=1".to_owned()
    } else {
        back
    };
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, to), (header::SET_COOKIE, cookie)],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::safe_back;

    #[test]
    fn only_portal_paths_are_places_to_go_back_to() {
        assert_eq!(safe_back(Some("/users/jdoe/issue")), "/users/jdoe/issue");
        for elsewhere in [
            "//example.org/",
            "https://example.org/",
            "/\\example.org",
            "/users\r\nSet-Cookie: x=1",
            "/users\tx",
            "/\u{7f}",
            "",
        ] {
            assert_eq!(safe_back(Some(elsewhere)), "", "{elsewhere}");
        }
        assert_eq!(safe_back(None), "");
    }
}

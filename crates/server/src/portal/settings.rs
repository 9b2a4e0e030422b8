//! The security settings an administrator controls: card printing on/off, the initial PIN
//! display mode, the operators' password length, which roles need an authenticator, and the
//! issuer type that makes the cards' FASC-N (non-federal PIV-I, or a federal issuer's codes).

use super::{render, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tessera_core::fips201::IssuerType;
use tessera_core::ids::RoleId;
use tessera_core::model::{Permission, PinDisplayMode, Role, Settings};

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Option<Nav>,
    csrf: String,
    settings: Settings,
    /// Every role, for "require an authenticator" per role.
    roles: Vec<Role>,
    /// What may happen to the cards of people who leave.
    rules: [tessera_core::people::DeprovisionRule; 3],
    /// Every policy (id, name, whether it is the configured default).
    policies: Vec<(String, String, bool)>,
    /// The federal issuer's codes (empty for a non-federal issuer).
    federal: Option<(String, String, String)>,
    saved: bool,
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<SavedQuery>,
) -> Result<Response, WebError> {
    signed_in
        .actor()
        .require(Permission::ManageSettings, "change settings")?;
    let settings = state
        .tessera
        .services
        .store
        .settings()
        .await
        .map_err(WebError::from_store)?;
    let policies = tessera_core::policies::names(&state.tessera.services)
        .await?
        .into_iter()
        .map(|(id, name)| {
            let default = settings.default_policy.as_ref() == Some(&id);
            (id.0, name, default)
        })
        .collect();
    let federal = match &settings.fips201.issuer {
        IssuerType::NonFederal => None,
        IssuerType::Federal {
            agency_code,
            system_code,
            credential_number,
        } => Some((
            agency_code.clone(),
            system_code.clone(),
            credential_number.clone(),
        )),
    };
    render(&SettingsPage {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        settings,
        federal,
        roles: tessera_core::operators::role_list(&state.tessera.services).await?,
        rules: tessera_core::people::DeprovisionRule::ALL,
        policies,
        saved: q.saved.is_some(),
    })
}

/// The form's fields, as pairs: `totp_role` comes once per ticked role.
type SettingsForm = Vec<(String, String)>;

pub async fn save(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<SettingsForm>,
) -> Result<Response, WebError> {
    let field = |name: &str| f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    signed_in.check_csrf(field("csrf").unwrap_or_default())?;
    let settings = Settings {
        card_printing_enabled: field("card_printing").is_some(),
        initial_pin_mode: PinDisplayMode::parse(field("pin_mode").unwrap_or_default())
            .ok_or_else(|| WebError::bad_request("Choose a PIN display mode from the list."))?,
        totp_roles: f
            .iter()
            .filter(|(k, _)| k == "totp_role")
            .map(|(_, v)| RoleId::new(v.as_str()))
            .collect(),
        password_min_length: field("password_min_length")
            .unwrap_or("12")
            .trim()
            .parse()
            .map_err(|_| WebError::bad_request("The shortest password must be a number."))?,
        people: tessera_core::people::PeopleSettings {
            deprovision: match field("deprovision") {
                None => Default::default(),
                Some(rule) => {
                    tessera_core::people::DeprovisionRule::parse(rule).ok_or_else(|| {
                        WebError::bad_request(
                            "Choose what happens to the cards of people who leave from the list.",
                        )
                    })?
                }
            },
            ..Default::default()
        },
        default_policy: field("default_policy")
            .filter(|p| !p.is_empty())
            .map(tessera_core::ids::PolicyId::new),
        fips201: tessera_core::fips201::Fips201Settings {
            issuer: match field("issuer_type") {
                Some("federal") => IssuerType::Federal {
                    agency_code: field("agency_code").unwrap_or_default().trim().to_owned(),
                    system_code: field("system_code").unwrap_or_default().trim().to_owned(),
                    credential_number: field("credential_number")
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                },
                // Forms without the field (older pages, scripts) keep the non-federal default.
                None | Some("non_federal") => IssuerType::NonFederal,
                Some(_) => {
                    return Err(WebError::bad_request(
                        "Choose the issuer type from the list.",
                    ))
                }
            },
        },
    };
    tessera_core::settings::save(&state.tessera.services, &signed_in.actor(), settings).await?;
    Ok(Redirect::to("/settings?saved=1").into_response())
}

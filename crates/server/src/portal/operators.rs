//! The Operators page: the people who use the portal, their roles and scopes, and the custom
//! roles. A new operator's (or a reset) one-time password is rendered once, in the answer to the
//! POST that made it; it is never stored in clear, logged, redirected to or put in a URL.

use super::{render, render_secret, CsrfForm, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tessera_core::ids::{OperatorId, RoleId, UserId};
use tessera_core::model::{Operator, Permission, Role, Scope};
use tessera_core::operators::{self, OperatorForm};

pub struct OperatorRow {
    pub id: String,
    pub display_name: String,
    pub role: String,
    pub scope: String,
    pub enabled: bool,
    pub totp: bool,
    pub must_change_password: bool,
    pub user: String,
}

pub struct RoleRow {
    pub id: String,
    pub name: String,
    pub builtin: bool,
    pub permissions: Vec<&'static str>,
}

pub struct PermissionOption {
    pub id: &'static str,
    pub label: &'static str,
}

#[derive(Template)]
#[template(path = "operators.html")]
struct OperatorsPage {
    nav: Option<Nav>,
    csrf: String,
    operators: Vec<OperatorRow>,
    roles: Vec<RoleRow>,
    permissions: Vec<PermissionOption>,
    flash: Option<String>,
}

#[derive(Template)]
#[template(path = "operator_edit.html")]
struct EditPage {
    nav: Option<Nav>,
    csrf: String,
    operator: Operator,
    scope: String,
    user: String,
    roles: Vec<RoleRow>,
}

#[derive(Template)]
#[template(path = "operator_password.html")]
struct PasswordPage {
    nav: Option<Nav>,
    operator: String,
    created: bool,
    password: String,
}

#[derive(Deserialize)]
pub struct FlashQuery {
    done: Option<String>,
}

fn role_rows(roles: &[Role]) -> Vec<RoleRow> {
    roles
        .iter()
        .map(|r| RoleRow {
            id: r.id.0.clone(),
            name: r.name.clone(),
            builtin: r.builtin,
            permissions: r.permissions.iter().map(|p| p.label()).collect(),
        })
        .collect()
}

fn role_name(roles: &[Role], id: &RoleId) -> String {
    roles
        .iter()
        .find(|r| &r.id == id)
        .map(|r| r.name.clone())
        .unwrap_or_else(|| format!("{id} (deleted)"))
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<FlashQuery>,
) -> Result<Response, WebError> {
    let svc = &state.tessera.services;
    let actor = signed_in.actor();
    let list = operators::list(svc, &actor).await?;
    let roles = operators::roles(svc, &actor).await?;
    let rows = list
        .iter()
        .map(|o| OperatorRow {
            id: o.id.0.clone(),
            display_name: o.display_name.clone(),
            role: role_name(&roles, &o.role),
            scope: o.scope.describe(),
            enabled: o.enabled,
            totp: o.totp.as_ref().is_some_and(|t| t.confirmed),
            must_change_password: o.must_change_password,
            user: o.user.as_ref().map(|u| u.0.clone()).unwrap_or_default(),
        })
        .collect();
    let flash = q.done.map(|d| match d.as_str() {
        "saved" => "Operator saved.".to_owned(),
        "deleted" => "Operator deleted.".to_owned(),
        "totp" => "The operator's authenticator was removed.".to_owned(),
        "role" => "Role saved.".to_owned(),
        "role-deleted" => "Role deleted.".to_owned(),
        _ => "Done.".to_owned(),
    });
    render(&OperatorsPage {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        operators: rows,
        roles: role_rows(&roles),
        permissions: Permission::ALL
            .iter()
            .map(|p| PermissionOption {
                id: p.as_str(),
                label: p.label(),
            })
            .collect(),
        flash,
    })
}

#[derive(Deserialize)]
pub struct OperatorFields {
    csrf: String,
    #[serde(default)]
    id: String,
    display_name: String,
    role: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    enabled: Option<String>,
}

impl OperatorFields {
    fn form(&self, enabled: bool) -> OperatorForm {
        OperatorForm {
            display_name: self.display_name.clone(),
            role: RoleId::new(self.role.trim()),
            scope: Scope::parse(&self.scope),
            enabled,
            user: Some(self.user.trim())
                .filter(|u| !u.is_empty())
                .map(UserId::new),
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<OperatorFields>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let id = f.id.trim().to_owned();
    let password = operators::create(
        &state.tessera.services,
        &signed_in.actor(),
        &id,
        f.form(true),
    )
    .await?;
    render_secret(&PasswordPage {
        nav: Nav::of(&signed_in),
        operator: id,
        created: true,
        password: password.expose().to_owned(),
    })
}

pub async fn edit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let svc = &state.tessera.services;
    let actor = signed_in.actor();
    let operator = operators::get(svc, &actor, &OperatorId::new(id)).await?;
    let roles = operators::roles(svc, &actor).await?;
    render(&EditPage {
        nav: Nav::of(&signed_in),
        csrf: signed_in.csrf.clone(),
        scope: match &operator.scope {
            Scope::All => String::new(),
            Scope::Groups(g) => g.join(", "),
        },
        user: operator
            .user
            .as_ref()
            .map(|u| u.0.clone())
            .unwrap_or_default(),
        operator,
        roles: role_rows(&roles),
    })
}

pub async fn save(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<OperatorFields>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    operators::update(
        &state.tessera.services,
        &signed_in.actor(),
        &OperatorId::new(id),
        f.form(f.enabled.is_some()),
    )
    .await?;
    Ok(Redirect::to("/operators?done=saved").into_response())
}

pub async fn reset_password(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let password = operators::reset_password(
        &state.tessera.services,
        &signed_in.actor(),
        &OperatorId::new(&id),
    )
    .await?;
    render_secret(&PasswordPage {
        nav: Nav::of(&signed_in),
        operator: id,
        created: false,
        password: password.expose().to_owned(),
    })
}

pub async fn reset_totp(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    operators::reset_totp(
        &state.tessera.services,
        &signed_in.actor(),
        &OperatorId::new(id),
    )
    .await?;
    Ok(Redirect::to("/operators?done=totp").into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    operators::delete(
        &state.tessera.services,
        &signed_in.actor(),
        &OperatorId::new(id),
    )
    .await?;
    Ok(Redirect::to("/operators?done=deleted").into_response())
}

/// The role form's fields, as pairs: `permission` comes once per ticked permission.
type RoleFields = Vec<(String, String)>;

pub async fn save_role(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<RoleFields>,
) -> Result<Response, WebError> {
    let field = |name: &str| {
        f.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    signed_in.check_csrf(&field("csrf"))?;
    let mut permissions = Vec::new();
    for (_, p) in f.iter().filter(|(k, _)| k == "permission") {
        permissions.push(
            Permission::parse(p)
                .ok_or_else(|| WebError::bad_request(format!("Unknown permission {p:?}.")))?,
        );
    }
    let role = Role {
        id: RoleId::new(field("id")),
        name: field("name"),
        permissions,
        builtin: false,
    };
    operators::save_role(&state.tessera.services, &signed_in.actor(), role).await?;
    Ok(Redirect::to("/operators?done=role").into_response())
}

pub async fn delete_role(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    operators::delete_role(
        &state.tessera.services,
        &signed_in.actor(),
        &RoleId::new(id),
    )
    .await?;
    Ok(Redirect::to("/operators?done=role-deleted").into_response())
}

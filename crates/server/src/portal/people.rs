//! People kept by Tessera: the forms to add and change a person, to disable them (asking what
//! happens to their cards), enable them again and delete them. Each handler parses the form and
//! calls one use case of `tessera_core::people::local`, which checks the permission
//! (`ManageUsers`), the operator's scope and the fields. A form the use case refuses for its
//! content comes back with what the operator typed and the sentence beside it.

use super::{render, CsrfForm, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::{sentence, WebError};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use std::collections::BTreeMap;
use tessera_core::ids::UserId;
use tessera_core::model::{Permission, User, UserSource};
use tessera_core::people::local::{self, UserDraft};
use tessera_core::people::DeprovisionRule;
use tessera_core::{users, CoreError};

/// Who keeps a person's record, as a page says it.
pub fn kept_by(source: UserSource) -> &'static str {
    match source {
        UserSource::Local => "Tessera (added in the portal)",
        UserSource::Csv => "a CSV import",
        UserSource::Ldap => "the directory (LDAP)",
    }
}

/// The person form's fields as typed: groups comma-separated, attributes one `name=value` a line.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct PersonForm {
    csrf: String,
    uid: String,
    given_name: String,
    family_name: String,
    display_name: String,
    email: String,
    upn: String,
    employee_id: String,
    department: String,
    title: String,
    groups: String,
    attributes: String,
}

impl PersonForm {
    fn of(user: &User) -> Self {
        Self {
            csrf: String::new(),
            uid: user.uid.0.clone(),
            given_name: user.given_name.clone(),
            family_name: user.family_name.clone(),
            display_name: user.display_name.clone(),
            email: user.email.clone(),
            upn: user.upn.clone(),
            employee_id: user.employee_id.clone(),
            department: user.department.clone(),
            title: user.title.clone(),
            groups: user.groups.join(", "),
            attributes: user
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// The draft the use case takes; a malformed attribute line is refused here, with its number.
    fn draft(&self) -> Result<UserDraft, String> {
        let mut attributes = BTreeMap::new();
        for (i, line) in self.attributes.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (name, value) = line.split_once('=').ok_or_else(|| {
                format!(
                    "Line {} of the free attributes is not of the form name=value.",
                    i + 1
                )
            })?;
            let name = name.trim().to_lowercase();
            if name.is_empty() {
                return Err(format!(
                    "Line {} of the free attributes has no name before the =.",
                    i + 1
                ));
            }
            attributes.insert(name, value.trim().to_owned());
        }
        Ok(UserDraft {
            uid: UserId::new(self.uid.trim()),
            given_name: self.given_name.trim().to_owned(),
            family_name: self.family_name.trim().to_owned(),
            display_name: self.display_name.trim().to_owned(),
            email: self.email.trim().to_owned(),
            upn: self.upn.trim().to_owned(),
            employee_id: self.employee_id.trim().to_owned(),
            department: self.department.trim().to_owned(),
            title: self.title.trim().to_owned(),
            groups: self
                .groups
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
            attributes,
            ..Default::default()
        })
    }
}

#[derive(Template)]
#[template(path = "person_edit.html")]
struct PersonPage {
    nav: Option<Nav>,
    csrf: String,
    /// `None`: a new person; `Some(uid)`: changing them.
    editing: Option<String>,
    form: PersonForm,
    /// Set when another source keeps the person: no form then.
    kept_elsewhere: Option<&'static str>,
    display_name: String,
    error: Option<(&'static str, String)>,
}

fn person_page(
    signed_in: &SignedIn,
    editing: Option<String>,
    form: PersonForm,
    error: Option<(&'static str, String)>,
) -> PersonPage {
    PersonPage {
        nav: Nav::of(signed_in),
        csrf: signed_in.csrf.clone(),
        display_name: form.display_name.clone(),
        editing,
        form,
        kept_elsewhere: None,
        error,
    }
}

/// A refusal the operator can fix on the form (a field, a group beyond their scope) keeps them
/// there; anything else is the error page.
fn back_to_form(
    signed_in: &SignedIn,
    editing: Option<String>,
    form: PersonForm,
    e: CoreError,
) -> Result<Response, WebError> {
    let fixable = match &e {
        CoreError::Invalid(_) => true,
        CoreError::Forbidden(_) => signed_in.may(Permission::ManageUsers),
        _ => false,
    };
    if !fixable {
        return Err(e.into());
    }
    let status = match e {
        CoreError::Forbidden(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    let code = e.code().as_str();
    let mut res = render(&person_page(
        signed_in,
        editing,
        form,
        Some((code, sentence(&e.to_string()))),
    ))?;
    *res.status_mut() = status;
    Ok(res)
}

/// `GET /users/new`: an empty form.
pub async fn new_form(signed_in: SignedIn) -> Result<Response, WebError> {
    signed_in
        .actor()
        .require(Permission::ManageUsers, "add people")?;
    render(&person_page(&signed_in, None, PersonForm::default(), None))
}

/// `POST /users/new`: adds the person and opens their page.
pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(f): Form<PersonForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let draft = match f.draft() {
        Ok(d) => d,
        Err(message) => {
            signed_in
                .actor()
                .require(Permission::ManageUsers, "add people")?;
            let mut res = render(&person_page(
                &signed_in,
                None,
                f,
                Some(("REQ0001", message)),
            ))?;
            *res.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(res);
        }
    };
    match local::create(&state.tessera.services, &signed_in.actor(), draft).await {
        Ok(user) => Ok(super::users::to_user_page(user.uid.as_str(), "created")),
        Err(e) => back_to_form(&signed_in, None, f, e),
    }
}

/// `GET /users/{uid}/edit`: the person's fields, or where to change them when another source
/// keeps them.
pub async fn edit_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(uid): Path<String>,
) -> Result<Response, WebError> {
    let actor = signed_in.actor();
    actor.require(Permission::ManageUsers, "change people")?;
    let user = users::view(&state.tessera.services, &actor, &UserId::new(uid))
        .await?
        .user;
    let mut page = person_page(
        &signed_in,
        Some(user.uid.0.clone()),
        PersonForm::of(&user),
        None,
    );
    if user.source != UserSource::Local {
        page.kept_elsewhere = Some(kept_by(user.source));
    }
    render(&page)
}

/// `POST /users/{uid}/edit`: saves the fields.
pub async fn save(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(uid): Path<String>,
    Form(f): Form<PersonForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let uid = UserId::new(uid);
    let draft = match f.draft() {
        Ok(d) => d,
        Err(message) => {
            // Only someone who may see the form learns that it was malformed.
            let actor = signed_in.actor();
            actor.require(Permission::ManageUsers, "change people")?;
            users::view(&state.tessera.services, &actor, &uid).await?;
            let mut res = render(&person_page(
                &signed_in,
                Some(uid.0.clone()),
                f,
                Some(("REQ0001", message)),
            ))?;
            *res.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(res);
        }
    };
    match local::update(&state.tessera.services, &signed_in.actor(), &uid, draft).await {
        Ok(user) => Ok(super::users::to_user_page(user.uid.as_str(), "saved")),
        Err(e) => back_to_form(&signed_in, Some(uid.0), f, e),
    }
}

/// A card as the Disable and Delete pages list it.
pub struct CardLine {
    pub serial: String,
    pub state: &'static str,
    pub state_code: &'static str,
}

#[derive(Template)]
#[template(path = "person_leave.html")]
struct LeavePage {
    nav: Option<Nav>,
    csrf: String,
    uid: String,
    display_name: String,
    disabled: bool,
    /// `disable` or `delete`.
    action: &'static str,
    cards: Vec<CardLine>,
    /// Each rule as (value, label, chosen by default).
    rules: Vec<(&'static str, &'static str, bool)>,
}

async fn leave_page(
    state: &AppState,
    signed_in: &SignedIn,
    uid: String,
    action: &'static str,
) -> Result<Response, WebError> {
    let leaving = local::leaving(
        &state.tessera.services,
        &signed_in.actor(),
        &UserId::new(uid),
    )
    .await?;
    render(&LeavePage {
        nav: Nav::of(signed_in),
        csrf: signed_in.csrf.clone(),
        uid: leaving.user.uid.0.clone(),
        display_name: leaving.user.display_name.clone(),
        disabled: leaving.user.disabled,
        action,
        cards: leaving
            .live_cards
            .iter()
            .map(|d| CardLine {
                serial: d.serial.clone(),
                state: d.state.label(),
                state_code: d.state.as_str(),
            })
            .collect(),
        rules: DeprovisionRule::ALL
            .into_iter()
            .map(|r| (r.as_str(), r.label(), r == leaving.rule))
            .collect(),
    })
}

/// `GET /users/{uid}/disable`: what happens to their cards, the configured rule proposed.
pub async fn disable_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(uid): Path<String>,
) -> Result<Response, WebError> {
    leave_page(&state, &signed_in, uid, "disable").await
}

#[derive(Deserialize)]
pub struct DisableForm {
    csrf: String,
    /// `suspend`, `terminate` or `keep`.
    cards: String,
}

/// `POST /users/{uid}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(uid): Path<String>,
    Form(f): Form<DisableForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let rule = DeprovisionRule::parse(&f.cards).ok_or_else(|| {
        WebError::bad_request("Choose from the list what happens to the person's cards.")
    })?;
    let uid = UserId::new(uid);
    local::disable(
        &state.tessera.services,
        &signed_in.actor(),
        &uid,
        Some(rule),
    )
    .await?;
    Ok(super::users::to_user_page(uid.as_str(), "disabled"))
}

/// `POST /users/{uid}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(uid): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let uid = UserId::new(uid);
    local::enable(&state.tessera.services, &signed_in.actor(), &uid).await?;
    Ok(super::users::to_user_page(uid.as_str(), "enabled"))
}

/// `GET /users/{uid}/delete`: asks first, and lists the cards that stand in the way.
pub async fn delete_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(uid): Path<String>,
) -> Result<Response, WebError> {
    leave_page(&state, &signed_in, uid, "delete").await
}

#[derive(Template)]
#[template(path = "person_deleted.html")]
struct DeletedPage {
    nav: Option<Nav>,
    uid: String,
}

/// `POST /users/{uid}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(uid): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let uid = UserId::new(uid);
    local::delete(&state.tessera.services, &signed_in.actor(), &uid).await?;
    render(&DeletedPage {
        nav: Nav::of(&signed_in),
        uid: uid.0,
    })
}

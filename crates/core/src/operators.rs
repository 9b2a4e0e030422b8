//! Operators and roles: who the people at the portal are, what they may do and to whom.
//!
//! An administrator creates an operator with a one-time password that must be changed at first
//! sign-in, changes their role, scope and link to a user, disables, deletes or resets them, and
//! makes custom roles from the permission set. Every change is audited in the transaction that
//! makes it. Two rules keep an installation manageable: nobody removes their own access, and at
//! least one enabled operator who can manage operators remains.

use crate::access::{BuiltinRole, Permission, Role, Scope};
use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::ids::{OperatorId, RoleId, UserId};
use crate::model::Operator;
use crate::passwords::{check_password, one_time_password};
use crate::secret::Password;
use crate::services::{Actor, AuditContext, Services};
use serde_json::json;

/// A role by id: built in or custom.
pub async fn role(svc: &Services, id: &RoleId) -> Result<Role, CoreError> {
    if let Some(builtin) = BuiltinRole::of(id) {
        return Ok(builtin.role());
    }
    svc.store
        .roles()
        .await?
        .into_iter()
        .find(|r| &r.id == id)
        .ok_or_else(|| CoreError::NotFound(format!("role {id}")))
}

/// Who a signed-in operator is as an actor. An operator whose custom role was deleted keeps
/// signing in but may do nothing until given a role.
pub async fn actor_of(svc: &Services, operator: &Operator) -> Result<Actor, CoreError> {
    let role = match role(svc, &operator.role).await {
        Ok(role) => role,
        Err(CoreError::NotFound(_)) => Role {
            id: operator.role.clone(),
            name: format!("{} (deleted)", operator.role),
            permissions: Vec::new(),
            builtin: false,
        },
        Err(e) => return Err(e),
    };
    Ok(Actor {
        operator: operator.id.clone(),
        role,
        scope: operator.scope.clone(),
    })
}

/// What an operator must do before anything else after signing in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// Their password is a one-time password.
    ChangePassword,
    /// Their role requires TOTP and they have not enrolled an authenticator yet.
    EnrolTotp,
}

/// The step a signed-in operator still owes, if any.
pub async fn pending(svc: &Services, operator: &Operator) -> Result<Option<Pending>, CoreError> {
    if operator.must_change_password {
        return Ok(Some(Pending::ChangePassword));
    }
    let enrolled = operator.totp.as_ref().is_some_and(|t| t.confirmed);
    if !enrolled && totp_required(svc, &operator.role).await? {
        return Ok(Some(Pending::EnrolTotp));
    }
    Ok(None)
}

/// Whether operators of `role` must sign in with a TOTP code.
pub async fn totp_required(svc: &Services, role: &RoleId) -> Result<bool, CoreError> {
    Ok(svc.store.settings().await?.totp_roles.contains(role))
}

/// Every role, built-in first, then the custom ones by id.
pub async fn roles(svc: &Services, actor: &Actor) -> Result<Vec<Role>, CoreError> {
    actor.require(Permission::ManageOperators, "manage operators")?;
    role_list(svc).await
}

/// Every role, for pages whose own permission was checked (the settings' TOTP roles).
pub async fn role_list(svc: &Services) -> Result<Vec<Role>, CoreError> {
    let mut all = Role::builtins();
    all.extend(svc.store.roles().await?);
    Ok(all)
}

pub async fn list(svc: &Services, actor: &Actor) -> Result<Vec<Operator>, CoreError> {
    actor.require(Permission::ManageOperators, "manage operators")?;
    Ok(svc.store.operators().await?)
}

pub async fn get(svc: &Services, actor: &Actor, id: &OperatorId) -> Result<Operator, CoreError> {
    actor.require(Permission::ManageOperators, "manage operators")?;
    svc.store
        .operator(id)
        .await
        .map_err(|_| CoreError::NotFound(format!("operator {id}")))
}

/// Whether `scope` sees no user that `outer` does not.
fn scope_within(outer: &Scope, scope: &Scope) -> bool {
    match (outer, scope) {
        (Scope::All, _) => true,
        (Scope::Groups(_), Scope::All) => false,
        (Scope::Groups(mine), Scope::Groups(theirs)) => theirs.iter().all(|g| mine.contains(g)),
    }
}

/// An operator manages only what is within their own reach: a role with no permission they lack,
/// a scope with no user outside theirs. Without this, an operator who may manage operators but is
/// no administrator (a custom role, a scope) could make an administrator, or reset one's
/// password, and become one.
fn within_reach(actor: &Actor, role: &Role, scope: &Scope) -> Result<(), CoreError> {
    if let Some(p) = role.permissions.iter().find(|p| !actor.may(**p)) {
        return Err(CoreError::Forbidden(format!(
            "give or manage the role {} (it may {}, which you may not)",
            role.name,
            p.label().to_lowercase()
        )));
    }
    if !scope_within(&actor.scope, scope) {
        return Err(CoreError::Forbidden(format!(
            "give or manage the scope \"{}\", wider than yours",
            scope.describe()
        )));
    }
    Ok(())
}

/// An existing operator the actor may manage (see [`within_reach`]).
async fn target(svc: &Services, actor: &Actor, id: &OperatorId) -> Result<Operator, CoreError> {
    let operator = get(svc, actor, id).await?;
    let current = actor_of(svc, &operator).await?;
    within_reach(actor, &current.role, &operator.scope)?;
    Ok(operator)
}

/// What an administrator says about an operator: a new one or a change.
#[derive(Clone, Debug)]
pub struct OperatorForm {
    pub display_name: String,
    pub role: RoleId,
    pub scope: Scope,
    pub enabled: bool,
    pub user: Option<UserId>,
}

fn valid_id(id: &str) -> Result<(), CoreError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok && id != "cli" {
        Ok(())
    } else {
        Err(CoreError::Invalid(format!(
            "{id:?} cannot be an operator name: use 1 to 64 letters, digits, '.', '_', '-' or '@' \
             (and not \"cli\", the command line's own name)"
        )))
    }
}

async fn checked_form(svc: &Services, form: &OperatorForm) -> Result<Role, CoreError> {
    if form.display_name.trim().is_empty() {
        return Err(CoreError::Invalid(
            "the operator needs a display name".into(),
        ));
    }
    if let Some(uid) = &form.user {
        svc.store
            .user(uid)
            .await
            .map_err(|_| CoreError::Invalid(format!("there is no user {uid} to link")))?;
    }
    role(svc, &form.role)
        .await
        .map_err(|_| CoreError::Invalid(format!("there is no role {}", form.role)))
}

fn ctx(actor: &Actor) -> AuditContext<'_> {
    AuditContext {
        operator: Some(&actor.operator),
        ..Default::default()
    }
}

/// Creates an operator; returns the one-time password to hand them (shown once).
pub async fn create(
    svc: &Services,
    actor: &Actor,
    id: &str,
    form: OperatorForm,
) -> Result<Password, CoreError> {
    actor.require(Permission::ManageOperators, "manage operators")?;
    valid_id(id)?;
    let role = checked_form(svc, &form).await?;
    within_reach(actor, &role, &form.scope)?;
    if svc.store.operator(&OperatorId::new(id)).await.is_ok() {
        return Err(CoreError::Invalid(format!(
            "an operator named {id} already exists"
        )));
    }
    let password = one_time_password(&*svc.random);
    let mut operator = Operator::new(
        id,
        form.display_name.trim(),
        svc.passwords.hash(password.clone()).await,
        form.role.clone(),
    );
    operator.enabled = form.enabled;
    operator.scope = form.scope.clone();
    operator.user = form.user.clone();
    operator.must_change_password = true;
    let mut changes = Changes::new();
    changes.audit(svc.event(
        audit::OPERATOR_CREATED,
        ctx(actor),
        json!({"id": id, "role": form.role, "scope": operator.scope.describe(), "user": form.user}),
    ));
    changes.push(Change::PutOperator(operator));
    svc.commit(changes).await?;
    Ok(password)
}

/// Whether, with `changed` in place of its stored version, an enabled operator who can manage
/// operators would remain.
async fn managers_remain(
    svc: &Services,
    changed: Option<&Operator>,
    id: &OperatorId,
) -> Result<bool, CoreError> {
    for other in svc.store.operators().await? {
        let candidate = if &other.id == id {
            match changed {
                Some(c) => c.clone(),
                None => continue,
            }
        } else {
            other
        };
        if candidate.enabled
            && role(svc, &candidate.role)
                .await
                .is_ok_and(|r| r.allows(Permission::ManageOperators))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Changes an operator's name, role, scope, link to a user or whether they may sign in. A
/// disabled operator's sessions end at once.
pub async fn update(
    svc: &Services,
    actor: &Actor,
    id: &OperatorId,
    form: OperatorForm,
) -> Result<Operator, CoreError> {
    let mut operator = target(svc, actor, id).await?;
    let role = checked_form(svc, &form).await?;
    within_reach(actor, &role, &form.scope)?;
    let before = operator.clone();
    operator.display_name = form.display_name.trim().to_owned();
    operator.role = form.role;
    operator.scope = form.scope;
    operator.enabled = form.enabled;
    operator.user = form.user;
    if id == &actor.operator
        && (operator.role != before.role || operator.scope != before.scope || !operator.enabled)
    {
        return Err(CoreError::Invalid(
            "you cannot change your own role or scope, or disable yourself: ask another administrator"
                .into(),
        ));
    }
    if !managers_remain(svc, Some(&operator), id).await? {
        return Err(CoreError::Invalid(
            "this would leave no enabled operator who can manage operators".into(),
        ));
    }
    let mut changes = Changes::new();
    changes.audit(svc.event(
        audit::OPERATOR_CHANGED,
        ctx(actor),
        json!({
            "id": id,
            "role": {"from": before.role, "to": operator.role},
            "scope": {"from": before.scope.describe(), "to": operator.scope.describe()},
            "enabled": {"from": before.enabled, "to": operator.enabled},
            "user": operator.user,
        }),
    ));
    if !operator.enabled {
        changes.push(Change::DeleteSessionsOf(id.clone()));
    }
    changes.push(Change::UpdateOperator(operator.clone()));
    svc.commit(changes).await?;
    Ok(operator)
}

/// Deletes an operator (their audit events keep their name).
pub async fn delete(svc: &Services, actor: &Actor, id: &OperatorId) -> Result<(), CoreError> {
    target(svc, actor, id).await?;
    if id == &actor.operator {
        return Err(CoreError::Invalid("you cannot delete yourself".into()));
    }
    if !managers_remain(svc, None, id).await? {
        return Err(CoreError::Invalid(
            "this would leave no enabled operator who can manage operators".into(),
        ));
    }
    let mut changes = Changes::new();
    changes.audit(svc.event(audit::OPERATOR_DELETED, ctx(actor), json!({"id": id})));
    changes.push(Change::DeleteOperator(id.clone()));
    svc.commit(changes).await
}

/// Gives an operator a new one-time password (returned, shown once) that they must change at
/// their next sign-in; their sessions end.
pub async fn reset_password(
    svc: &Services,
    actor: &Actor,
    id: &OperatorId,
) -> Result<Password, CoreError> {
    let mut operator = target(svc, actor, id).await?;
    let password = one_time_password(&*svc.random);
    operator.password_hash = svc.passwords.hash(password.clone()).await;
    operator.must_change_password = true;
    let mut changes = Changes::new();
    changes.audit(svc.event(
        audit::OPERATOR_PASSWORD_RESET,
        ctx(actor),
        json!({"id": id}),
    ));
    changes.push(Change::DeleteSessionsOf(id.clone()));
    changes.push(Change::UpdateOperator(operator));
    svc.commit(changes).await?;
    Ok(password)
}

/// Removes an operator's authenticator (lost phone): they enrol again at their next sign-in if
/// their role requires it.
pub async fn reset_totp(svc: &Services, actor: &Actor, id: &OperatorId) -> Result<(), CoreError> {
    let mut operator = target(svc, actor, id).await?;
    operator.totp = None;
    let mut changes = Changes::new();
    changes.audit(svc.event(audit::TOTP_RESET, ctx(actor), json!({"id": id})));
    changes.push(Change::DeleteSessionsOf(id.clone()));
    changes.push(Change::UpdateOperator(operator));
    svc.commit(changes).await
}

/// An operator changes their own password: the current one must be right and the new one must
/// follow the password policy and differ from it. Their other sessions end (someone who knew
/// the old password is signed out); the one with the token hash `session` is kept.
pub async fn change_own_password(
    svc: &Services,
    id: &OperatorId,
    session: &str,
    current: Password,
    new: Password,
) -> Result<(), CoreError> {
    let mut operator = svc.store.operator(id).await?;
    if !svc
        .passwords
        .verify(current, Some(operator.password_hash.clone()))
        .await
    {
        return Err(CoreError::Invalid("the current password is wrong".into()));
    }
    let settings = svc.store.settings().await?;
    check_password(&new, id, settings.password_min_length)?;
    if svc
        .passwords
        .verify(new.clone(), Some(operator.password_hash.clone()))
        .await
    {
        return Err(CoreError::Invalid(
            "choose another password: the new password is the one you have".into(),
        ));
    }
    operator.password_hash = svc.passwords.hash(new).await;
    operator.must_change_password = false;
    let mut changes = Changes::new();
    changes.audit(svc.event(
        audit::OPERATOR_PASSWORD_CHANGED,
        AuditContext {
            operator: Some(id),
            ..Default::default()
        },
        json!({}),
    ));
    changes.push(Change::DeleteOtherSessions {
        operator: id.clone(),
        keep: session.to_owned(),
    });
    changes.push(Change::UpdateOperator(operator));
    svc.commit(changes).await
}

/// Saves a custom role. A built-in role's id cannot be taken.
pub async fn save_role(svc: &Services, actor: &Actor, role: Role) -> Result<(), CoreError> {
    actor.require(Permission::ManageOperators, "manage operators")?;
    valid_id(role.id.as_str())?;
    if BuiltinRole::of(&role.id).is_some() {
        return Err(CoreError::Invalid(format!(
            "{} is a built-in role and cannot be changed",
            role.id
        )));
    }
    if role.name.trim().is_empty() {
        return Err(CoreError::Invalid("the role needs a name".into()));
    }
    if role.id == actor.role.id {
        return Err(CoreError::Invalid(
            "you cannot change your own role: ask another administrator".into(),
        ));
    }
    within_reach(actor, &role, &actor.scope)?;
    if let Ok(old) = self::role(svc, &role.id).await {
        within_reach(actor, &old, &actor.scope)?;
    }
    let role = Role {
        builtin: false,
        name: role.name.trim().to_owned(),
        ..role
    };
    // Taking ManageOperators away from a role could leave nobody to manage operators.
    let losing = self::role(svc, &role.id)
        .await
        .is_ok_and(|old| old.allows(Permission::ManageOperators))
        && !role.allows(Permission::ManageOperators);
    if losing {
        let mut others = false;
        for o in svc.store.operators().await? {
            if o.enabled
                && o.role != role.id
                && self::role(svc, &o.role)
                    .await
                    .is_ok_and(|r| r.allows(Permission::ManageOperators))
            {
                others = true;
                break;
            }
        }
        if !others {
            return Err(CoreError::Invalid(
                "this would leave no enabled operator who can manage operators".into(),
            ));
        }
    }
    let mut changes = Changes::new();
    changes.audit(svc.event(
        audit::ROLE_SAVED,
        ctx(actor),
        json!({"id": role.id, "name": role.name,
               "permissions": role.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>()}),
    ));
    changes.push(Change::PutRole(role));
    svc.commit(changes).await
}

/// Deletes a custom role nobody has.
pub async fn delete_role(svc: &Services, actor: &Actor, id: &RoleId) -> Result<(), CoreError> {
    actor.require(Permission::ManageOperators, "manage operators")?;
    if BuiltinRole::of(id).is_some() {
        return Err(CoreError::Invalid(format!(
            "{id} is a built-in role and cannot be deleted"
        )));
    }
    within_reach(actor, &self::role(svc, id).await?, &actor.scope)?;
    let holders: Vec<String> = svc
        .store
        .operators()
        .await?
        .into_iter()
        .filter(|o| &o.role == id)
        .map(|o| o.id.0)
        .collect();
    if !holders.is_empty() {
        return Err(CoreError::Invalid(format!(
            "the role {id} is still given to {}: give them another role first",
            holders.join(", ")
        )));
    }
    let mut changes = Changes::new();
    changes.audit(svc.event(audit::ROLE_DELETED, ctx(actor), json!({"id": id})));
    changes.push(Change::DeleteRole(id.clone()));
    svc.commit(changes).await
}

//! People kept by Tessera itself (source `local`): an operator with `ManageUsers` creates,
//! changes, disables, enables and deletes them. People from a CSV import or the directory are
//! changed at their source; here they can only be disabled or enabled (the next sync or complete
//! import says again what their source says) and, once they have no live card, deleted.
//!
//! An operator scoped to groups manages only the people in those groups, and a person they
//! create or change must stay within them.

use super::reconcile::{check_person, deprovision_cards, differences, source_label, CardChange};
use super::source::SourcePerson;
use super::DeprovisionRule;
use crate::access::Scope;
use crate::audit;
use crate::changes::{Change, Changes, UserWas};
use crate::error::CoreError;
use crate::ids::UserId;
use crate::lifecycle::DeviceState;
use crate::model::*;
use crate::services::{Actor, AuditContext, Services};
use serde_json::json;

/// The fields of a person as the form or the command line gives them.
pub type UserDraft = SourcePerson;

fn check_scope(actor: &Actor, groups: &[String]) -> Result<(), CoreError> {
    if let Scope::Groups(mine) = &actor.scope {
        if groups.is_empty() || groups.iter().any(|g| !mine.contains(g)) {
            return Err(CoreError::Forbidden(format!(
                "put people in groups beyond your scope ({})",
                mine.join(", ")
            )));
        }
    }
    Ok(())
}

fn ctx<'a>(actor: &'a Actor, uid: &'a UserId) -> AuditContext<'a> {
    AuditContext {
        operator: Some(&actor.operator),
        user: Some(uid),
        ..Default::default()
    }
}

/// Creates a local person.
pub async fn create(
    svc: &Services,
    actor: &Actor,
    mut draft: UserDraft,
) -> Result<User, CoreError> {
    actor.require(Permission::ManageUsers, "add people")?;
    check_person(&mut draft).map_err(CoreError::Invalid)?;
    check_scope(actor, &draft.groups)?;
    if !svc
        .store
        .users_by_uid(&[draft.uid.clone()])
        .await?
        .is_empty()
    {
        return Err(CoreError::Invalid(format!(
            "there is already a person with the uid {}",
            draft.uid
        )));
    }
    let user = User {
        uid: draft.uid.clone(),
        given_name: draft.given_name,
        family_name: draft.family_name,
        display_name: draft.display_name,
        email: draft.email,
        upn: draft.upn,
        employee_id: draft.employee_id,
        department: draft.department,
        title: draft.title,
        groups: draft.groups,
        source: UserSource::Local,
        attributes: draft.attributes,
        has_photo: false,
        disabled: false,
        photo_digest: None,
    };
    let mut changes = Changes::new();
    changes.push(Change::PutUser {
        user: user.clone(),
        was: UserWas::New,
    });
    changes.audit(svc.event(
        audit::USER_CREATED,
        ctx(actor, &user.uid),
        json!({"display_name": user.display_name, "groups": user.groups}),
    ));
    svc.commit(changes).await?;
    Ok(user)
}

/// Changes a local person's fields (not their state: see [`disable`] and [`enable`]).
pub async fn update(
    svc: &Services,
    actor: &Actor,
    uid: &UserId,
    mut draft: UserDraft,
) -> Result<User, CoreError> {
    actor.require(Permission::ManageUsers, "change people")?;
    let old = svc.user_in_scope(actor, uid).await?;
    if old.source != UserSource::Local {
        return Err(CoreError::ManagedElsewhere(format!(
            "{} comes from {}: change them there, and the next import or sync brings the change",
            old.display_name,
            source_label(old.source)
        )));
    }
    draft.uid = uid.clone();
    check_person(&mut draft).map_err(CoreError::Invalid)?;
    check_scope(actor, &draft.groups)?;
    let user = User {
        given_name: draft.given_name,
        family_name: draft.family_name,
        display_name: draft.display_name,
        email: draft.email,
        upn: draft.upn,
        employee_id: draft.employee_id,
        department: draft.department,
        title: draft.title,
        groups: draft.groups,
        attributes: draft.attributes,
        ..old.clone()
    };
    let fields = differences(&old, &user);
    if fields.is_empty() {
        return Ok(user);
    }
    let mut changes = Changes::new();
    changes.push(Change::PutUser {
        user: user.clone(),
        was: UserWas::from(Some(&old)),
    });
    changes.audit(svc.event(
        audit::USER_CHANGED,
        ctx(actor, uid),
        json!({"fields": fields}),
    ));
    svc.commit(changes).await?;
    Ok(user)
}

/// Disables a person: they keep their record and history, get no new card, and their cards
/// follow `cards` (the operator's choice), or the configured rule when `None`. Returns the rule
/// applied and the cards that moved.
pub async fn disable(
    svc: &Services,
    actor: &Actor,
    uid: &UserId,
    cards: Option<DeprovisionRule>,
) -> Result<(DeprovisionRule, Vec<CardChange>), CoreError> {
    actor.require(Permission::ManageUsers, "disable people")?;
    let mut user = svc.user_in_scope(actor, uid).await?;
    let cards = match cards {
        Some(rule) => rule,
        None => svc.store.settings().await?.people.deprovision,
    };
    if user.disabled {
        return Err(CoreError::Invalid(format!(
            "{} is already disabled",
            user.display_name
        )));
    }
    let was = UserWas::from(Some(&user));
    user.disabled = true;
    let mut changes = Changes::new();
    changes.push(Change::PutUser { user, was });
    changes.audit(svc.event(
        audit::USER_DISABLED,
        ctx(actor, uid),
        json!({"source": "operator", "cards": cards.as_str()}),
    ));
    let moved = deprovision_cards(svc, actor, &mut changes, uid, cards, ctx(actor, uid)).await?;
    svc.commit(changes).await?;
    Ok((cards, moved))
}

/// Enables a disabled person again. Cards suspended when they left stay suspended: the User
/// page offers to resume each.
pub async fn enable(svc: &Services, actor: &Actor, uid: &UserId) -> Result<User, CoreError> {
    actor.require(Permission::ManageUsers, "enable people")?;
    let mut user = svc.user_in_scope(actor, uid).await?;
    if !user.disabled {
        return Err(CoreError::Invalid(format!(
            "{} is not disabled",
            user.display_name
        )));
    }
    let was = UserWas::from(Some(&user));
    user.disabled = false;
    let mut changes = Changes::new();
    changes.push(Change::PutUser {
        user: user.clone(),
        was,
    });
    changes.audit(svc.event(
        audit::USER_ENABLED,
        ctx(actor, uid),
        json!({"source": "operator"}),
    ));
    svc.commit(changes).await?;
    Ok(user)
}

/// The states in which a card still belongs to its holder's life: such a card must be
/// terminated (or finish failing) before its holder can be deleted.
fn live(state: DeviceState) -> bool {
    matches!(
        state,
        DeviceState::Assigned
            | DeviceState::InProduction
            | DeviceState::Pending
            | DeviceState::Active
            | DeviceState::Suspended
    )
}

/// Deletes a person who has no live card. Their terminated cards, certificates and audit
/// events stay, under their uid.
pub async fn delete(svc: &Services, actor: &Actor, uid: &UserId) -> Result<(), CoreError> {
    actor.require(Permission::ManageUsers, "delete people")?;
    let user = svc.user_in_scope(actor, uid).await?;
    let cards = svc.store.devices_of_user(uid).await?;
    let live_cards: Vec<String> = cards
        .iter()
        .filter(|d| live(d.state))
        .map(|d| format!("{} ({})", d.serial, d.state.as_str()))
        .collect();
    if !live_cards.is_empty() {
        return Err(CoreError::UserHasCards(format!(
            "{} still has cards that are not terminated: {}. Terminate them first (or disable the person instead)",
            user.display_name,
            live_cards.join(", ")
        )));
    }
    let mut changes = Changes::new();
    changes.push(Change::DeleteUser {
        was: Box::new(user.clone()),
        cards: cards.iter().map(|d| (d.id.clone(), d.state)).collect(),
    });
    changes.audit(svc.event(
        audit::USER_DELETED,
        ctx(actor, uid),
        json!({"display_name": user.display_name, "source": user.source}),
    ));
    svc.commit(changes).await?;
    Ok(())
}

/// What disabling or deleting a person touches, for the forms that ask first: the person,
/// their live cards, and the configured rule (the Disable form's default choice).
pub struct Leaving {
    pub user: User,
    pub live_cards: Vec<Device>,
    pub rule: DeprovisionRule,
}

/// Reads [`Leaving`] for `uid`, in the operator's scope.
pub async fn leaving(svc: &Services, actor: &Actor, uid: &UserId) -> Result<Leaving, CoreError> {
    actor.require(Permission::ManageUsers, "disable or delete people")?;
    let user = svc.user_in_scope(actor, uid).await?;
    let live_cards = svc
        .store
        .devices_of_user(uid)
        .await?
        .into_iter()
        .filter(|d| live(d.state))
        .collect();
    let rule = svc.store.settings().await?.people.deprovision;
    Ok(Leaving {
        user,
        live_cards,
        rule,
    })
}

//! A person's portrait, uploaded (and cropped) by an operator. The photo is checked and
//! normalised by the [`PhotoProcessor`](crate::ports::PhotoProcessor) port: JPEG or PNG within
//! the limits, cropped, scaled, re-encoded without its metadata.

use crate::audit;
use crate::changes::{Change, Changes, UserWas};
use crate::error::CoreError;
use crate::ids::UserId;
use crate::model::*;
use crate::ports::Crop;
use crate::services::{Actor, AuditContext, Services};
use serde_json::json;

/// Sets `uid`'s photo from an upload. A photo an operator sets has no source digest, so a
/// source that has no photo for the person leaves it in place.
pub async fn set(
    svc: &Services,
    actor: &Actor,
    uid: &UserId,
    bytes: Vec<u8>,
    crop: Option<Crop>,
) -> Result<User, CoreError> {
    actor.require(Permission::ManageUsers, "change photos")?;
    let mut user = svc.user_in_scope(actor, uid).await?;
    let jpeg = svc
        .photos
        .normalise(bytes, crop)
        .await
        .map_err(|e| CoreError::Photo(e.message))?;
    let was = UserWas::from(Some(&user));
    user.has_photo = true;
    user.photo_digest = None;
    let mut changes = Changes::new();
    changes.push(Change::PutPhoto {
        uid: uid.clone(),
        photo: jpeg.clone(),
    });
    changes.push(Change::PutUser {
        user: user.clone(),
        was,
    });
    changes.audit(svc.event(
        audit::USER_PHOTO_CHANGED,
        AuditContext {
            operator: Some(&actor.operator),
            user: Some(uid),
            ..Default::default()
        },
        json!({"bytes": jpeg.len(), "sha256": super::reconcile::sha256_hex(&jpeg), "cropped": crop.is_some()}),
    ));
    svc.commit(changes).await?;
    Ok(user)
}

/// Removes `uid`'s photo.
pub async fn remove(svc: &Services, actor: &Actor, uid: &UserId) -> Result<(), CoreError> {
    actor.require(Permission::ManageUsers, "change photos")?;
    let mut user = svc.user_in_scope(actor, uid).await?;
    let was = UserWas::from(Some(&user));
    user.has_photo = false;
    user.photo_digest = None;
    let mut changes = Changes::new();
    changes.push(Change::DeletePhoto(uid.clone()));
    changes.push(Change::PutUser { user, was });
    changes.audit(svc.event(
        audit::USER_PHOTO_CHANGED,
        AuditContext {
            operator: Some(&actor.operator),
            user: Some(uid),
            ..Default::default()
        },
        json!({"removed": true}),
    ));
    svc.commit(changes).await
}

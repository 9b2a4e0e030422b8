//! Finding and showing users, within the operator's scope: a user out of scope is not listed,
//! and asking for them by name answers "not found", as for a user who does not exist.

use crate::error::CoreError;
use crate::ids::UserId;
use crate::model::{CertificateRecord, Device, Permission, User};
use crate::services::{Actor, Services};

/// How many users a search reads before the scope filter, per user it returns: an operator
/// scoped to a few groups still finds their users among many others.
const OVERREAD: u32 = 20;

/// Users whose name, uid, email or employee id contains `query`, at most `limit`, in scope.
pub async fn search(
    svc: &Services,
    actor: &Actor,
    query: &str,
    limit: u32,
) -> Result<Vec<User>, CoreError> {
    actor.require(Permission::ViewUsers, "view users")?;
    let read = if matches!(actor.scope, crate::access::Scope::All) {
        limit
    } else {
        limit.saturating_mul(OVERREAD)
    };
    let mut users: Vec<User> = svc
        .store
        .search_users(query, read)
        .await?
        .into_iter()
        .filter(|u| actor.scope.covers(u))
        .collect();
    users.truncate(limit as usize);
    Ok(users)
}

/// A card as the User page shows it.
pub struct DeviceView {
    pub device: Device,
    pub certificates: Vec<CertificateRecord>,
    /// A generated initial PIN is escrowed and can be revealed (once).
    pub pin_escrowed: bool,
}

/// A user with their cards.
pub struct UserView {
    pub user: User,
    pub devices: Vec<DeviceView>,
}

pub async fn view(svc: &Services, actor: &Actor, uid: &UserId) -> Result<UserView, CoreError> {
    actor.require(Permission::ViewUsers, "view users")?;
    let user = svc.user_in_scope(actor, uid).await?;
    let mut devices = Vec::new();
    for device in svc.store.devices_of_user(uid).await? {
        let certificates = svc.store.certificates_of_device(&device.id).await?;
        let pin_escrowed = svc.store.device_secret(&device.id, "pin").await?.is_some();
        devices.push(DeviceView {
            device,
            certificates,
            pin_escrowed,
        });
    }
    Ok(UserView { user, devices })
}

/// A user's photo (PNG), if they have one.
pub async fn photo(
    svc: &Services,
    actor: &Actor,
    uid: &UserId,
) -> Result<Option<Vec<u8>>, CoreError> {
    actor.require(Permission::ViewUsers, "view users")?;
    svc.user_in_scope(actor, uid).await?;
    Ok(svc.store.photo(uid).await?)
}

//! Finding and showing users, within the operator's scope: a user out of scope is not listed,
//! and asking for them by name answers "not found", as for a user who does not exist.

use crate::access::Scope;
use crate::error::CoreError;
use crate::ids::UserId;
use crate::model::{CertificateRecord, Device, Permission, User};
use crate::ports::{UserQuery, UserSort};
use crate::services::{Actor, Services};

/// The most users one page holds.
pub const MAX_PER_PAGE: u32 = 200;

/// What the Users page asks: text found in the name, uid, employee id, email, department or a
/// group (one or two characters: the start of the key sorted by), the order, and which page
/// (from 0) of `per_page` users.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserSearch {
    pub text: String,
    pub sort: UserSort,
    pub page: u32,
    pub per_page: u32,
}

/// One page of a search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPage {
    pub users: Vec<User>,
    /// The page shown (from 0) and its size, as used (the size is capped).
    pub page: u32,
    pub per_page: u32,
    /// Another page follows.
    pub has_next: bool,
}

/// One page of the users that match, among those in the operator's scope (the store filters
/// the scope, so an operator of a few groups pages through their own people only).
pub async fn search(
    svc: &Services,
    actor: &Actor,
    search: &UserSearch,
) -> Result<UserPage, CoreError> {
    actor.require(Permission::ViewUsers, "view users")?;
    let per_page = search.per_page.clamp(1, MAX_PER_PAGE);
    let groups = match &actor.scope {
        Scope::All => None,
        Scope::Groups(groups) => Some(groups.clone()),
    };
    let query = UserQuery {
        text: search.text.clone(),
        sort: search.sort,
        offset: search.page.saturating_mul(per_page),
        // One more than a page: whether it comes says whether a next page exists.
        limit: per_page + 1,
        groups,
    };
    let mut users = svc.store.find_users(&query).await?;
    let has_next = users.len() > per_page as usize;
    users.truncate(per_page as usize);
    Ok(UserPage {
        users,
        page: search.page,
        per_page,
        has_next,
    })
}

/// A card as the User page shows it.
pub struct DeviceView {
    pub device: Device,
    pub certificates: Vec<CertificateRecord>,
    /// A generated initial PIN is escrowed and can be revealed (once).
    pub pin_escrowed: bool,
    /// The name of the card's policy (its id when the policy is gone), for people to read.
    pub policy_name: Option<String>,
    /// The name of the card's layout, likewise.
    pub layout_name: Option<String>,
}

/// A user with their cards.
pub struct UserView {
    pub user: User,
    pub devices: Vec<DeviceView>,
    /// Their issuance in progress, shown to operators who issue (it may have fed a card and
    /// been left: resume it or cancel it).
    pub in_progress: Option<crate::issuance::JobInProgress>,
    /// Their enrolled fingerprints, if any.
    pub fingerprints: Option<crate::enrolment::FingerprintsSummary>,
}

pub async fn view(svc: &Services, actor: &Actor, uid: &UserId) -> Result<UserView, CoreError> {
    actor.require(Permission::ViewUsers, "view users")?;
    let user = svc.user_in_scope(actor, uid).await?;
    let policies = crate::policies::names(svc).await?;
    let layouts: std::collections::BTreeMap<_, _> = svc
        .store
        .layouts()
        .await?
        .into_iter()
        .map(|l| (l.id, l.name))
        .collect();
    let mut devices = Vec::new();
    for device in svc.store.devices_of_user(uid).await? {
        let certificates = svc.store.certificates_of_device(&device.id).await?;
        let pin_escrowed = svc.store.device_secret(&device.id, "pin").await?.is_some();
        let policy_name = device
            .policy
            .as_ref()
            .map(|p| policies.get(p).cloned().unwrap_or_else(|| p.0.clone()));
        let layout_name = device
            .layout
            .as_ref()
            .map(|l| layouts.get(l).cloned().unwrap_or_else(|| l.0.clone()));
        devices.push(DeviceView {
            device,
            certificates,
            pin_escrowed,
            policy_name,
            layout_name,
        });
    }
    let in_progress = if actor.may(Permission::IssueDevice) {
        crate::issuance::open_job_of(svc, actor, uid).await?
    } else {
        None
    };
    let fingerprints = svc
        .store
        .fingerprints(uid)
        .await?
        .map(|f| crate::enrolment::FingerprintsSummary::of(&f));
    Ok(UserView {
        user,
        devices,
        in_progress,
        fingerprints,
    })
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

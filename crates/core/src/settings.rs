//! The system settings (card printing on or off, how the initial PIN is shown): saved by those
//! who may manage them, with the change audited in the same transaction.

use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::model::{Permission, Settings};
use crate::services::{Actor, AuditContext, Services};
use serde_json::json;

/// Saves the settings form. The CSV column mapping is not on the form: it is kept as the last
/// import saved it.
pub async fn save(svc: &Services, actor: &Actor, mut settings: Settings) -> Result<(), CoreError> {
    actor.require(Permission::ManageSettings, "change settings")?;
    settings.people.csv_mapping = svc.store.settings().await?.people.csv_mapping;
    if !(8..=128).contains(&settings.password_min_length) {
        return Err(CoreError::Invalid(
            "the shortest password must be between 8 and 128 characters".into(),
        ));
    }
    if let Some(policy) = &settings.default_policy {
        if !svc.store.policies().await?.iter().any(|p| &p.id == policy) {
            return Err(CoreError::Invalid(format!(
                "there is no device policy {policy} to make the default"
            )));
        }
    }
    let mut changes = Changes::new();
    changes.audit(svc.event(
        audit::SETTINGS_CHANGED,
        AuditContext {
            operator: Some(&actor.operator),
            ..Default::default()
        },
        json!({
            "card_printing_enabled": settings.card_printing_enabled,
            "initial_pin_mode": settings.initial_pin_mode.as_str(),
            "totp_roles": settings.totp_roles,
            "password_min_length": settings.password_min_length,
            "deprovision": settings.people.deprovision.as_str(),
            "default_policy": settings.default_policy,
        }),
    ));
    changes.push(Change::PutSettings(settings));
    svc.commit(changes).await
}

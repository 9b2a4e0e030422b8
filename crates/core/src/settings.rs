//! The system settings (card printing on or off, how the initial PIN is shown): saved by those
//! who may manage them, with the change audited in the same transaction.

use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::fips201::IssuerType;
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
    check_issuer(&settings.fips201.issuer)?;
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
            "fips201_issuer": settings.fips201.issuer,
        }),
    ));
    changes.push(Change::PutSettings(settings));
    svc.commit(changes).await
}

/// A federal issuer's codes become FASC-N fields of fixed width (TIG SCEPACS): agency code and
/// system code 4 digits, credential number 6.
fn check_issuer(issuer: &IssuerType) -> Result<(), CoreError> {
    let IssuerType::Federal {
        agency_code,
        system_code,
        credential_number,
    } = issuer
    else {
        return Ok(());
    };
    let mut wrong = Vec::new();
    for (name, value, digits) in [
        ("the agency code", agency_code, 4),
        ("the system code", system_code, 4),
        ("the credential number", credential_number, 6),
    ] {
        if value.len() != digits || !value.bytes().all(|b| b.is_ascii_digit()) {
            wrong.push(format!("{name} must be {digits} digits (it is {value:?})"));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(CoreError::FascNCodes(format!(
            "the FASC-N of a federal issuer cannot be made: {}",
            wrong.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn federal(agency: &str, system: &str, credential: &str) -> IssuerType {
        IssuerType::Federal {
            agency_code: agency.into(),
            system_code: system.into(),
            credential_number: credential.into(),
        }
    }

    #[test]
    fn federal_codes_need_their_digits() {
        assert!(check_issuer(&IssuerType::NonFederal).is_ok());
        assert!(check_issuer(&federal("1234", "5678", "000001")).is_ok());
        for (a, s, c) in [
            ("123", "5678", "000001"),
            ("1234", "56789", "000001"),
            ("1234", "5678", "00001"),
            ("12a4", "5678", "000001"),
            ("", "", ""),
        ] {
            let e = check_issuer(&federal(a, s, c)).unwrap_err();
            assert_eq!(e.code().as_str(), "SET0001", "{a} {s} {c}");
        }
        let e = check_issuer(&federal("123", "5678", "0001")).unwrap_err();
        assert!(
            e.to_string().contains("the agency code must be 4 digits"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("the credential number must be 6 digits"),
            "{e}"
        );
    }
}

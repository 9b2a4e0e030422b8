//! The content signer as administrators see it: the certificate that signs the cards' CHUID,
//! biometrics and Security Object now (shown on the PKI page), and its renewal on demand,
//! audited. The CA renews it by itself too (see `tessera-pki`'s `content_signer`).

use crate::audit;
use crate::changes::Changes;
use crate::error::CoreError;
use crate::model::{Permission, Timestamp};
use crate::services::{Actor, AuditContext, Services};
use serde_json::json;

/// A certificate as the PKI page and the audit log show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateSummary {
    /// Serial number, lower-case hex.
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

/// The content signing certificate in use, for the PKI page.
pub async fn current(svc: &Services, actor: &Actor) -> Result<CertificateSummary, CoreError> {
    actor.require(Permission::ManageSettings, "see the certificate authority")?;
    svc.ca.content_signer_certificate().map_err(CoreError::Ca)
}

/// Makes a new content signing key and certificate now, whatever the current one's validity;
/// the old certificate stays (cards it signed keep verifying). `replacing` is the serial of the
/// signer the administrator saw: when another renewal came first, nothing is made. Audited.
pub async fn renew(
    svc: &Services,
    actor: &Actor,
    replacing: &str,
) -> Result<CertificateSummary, CoreError> {
    actor.require(Permission::ManageSettings, "renew the content signer")?;
    let current = svc.ca.content_signer_certificate().map_err(CoreError::Ca)?;
    if !current.serial.eq_ignore_ascii_case(replacing.trim()) {
        return Err(CoreError::Changed("the content signer".into()));
    }
    let renewed = svc.ca.renew_content_signer().map_err(CoreError::Ca)?;
    let mut changes = Changes::new();
    changes.audit(svc.event(
        audit::CONTENT_SIGNER_RENEWED,
        AuditContext {
            operator: Some(&actor.operator),
            ..Default::default()
        },
        json!({
            "replaced": current.serial,
            "serial": renewed.serial,
            "subject": renewed.subject,
            "not_after": renewed.not_after.date(),
        }),
    ));
    svc.commit(changes).await?;
    Ok(renewed)
}

//! Signing in with a card Tessera issued. The server's TLS layer has already checked that the
//! browser holds the private key of a certificate chaining to Tessera's CA (TLS client
//! authentication); this use case decides whether that certificate still opens the portal: it
//! must be the very certificate Tessera recorded, in slot 9A (PIV Authentication), valid now and
//! not revoked or on hold, on a card that is Active, whose holder is linked to exactly one
//! enabled operator. Revocation is read from the database at every sign-in, so a card terminated
//! a second ago no longer signs anyone in (no CRL to wait for).

use crate::audit;
use crate::changes::Changes;
use crate::error::CoreError;
use crate::ids::{DeviceId, OperatorId, UserId};
use crate::lifecycle::DeviceState;
use crate::model::{CertificateRecord, CertificateStatus, Slot};
use crate::services::{AuditContext, Services};
use crate::sign_in::{open_session, Session};
use serde_json::json;

/// The client certificate the TLS handshake verified, as the server parsed it.
#[derive(Clone, Debug)]
pub struct PresentedCertificate {
    /// Serial number, lower-case hex without leading zero bytes (as Tessera records serials).
    pub serial: String,
    /// The whole certificate (DER): it must be byte for byte the one Tessera issued.
    pub der: Vec<u8>,
}

/// Why a card did not sign anyone in, with the sentence the person reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardRefused {
    /// Tessera never issued this certificate (or issued another under that serial).
    NotIssuedHere,
    /// A certificate of another slot than 9A.
    WrongSlot(Slot),
    Revoked,
    OnHold,
    Expired,
    NotYetValid,
    /// The card's record is not Active (Suspended, Terminated, Pending...).
    CardNotActive(DeviceState),
    NoOperator(UserId),
    /// The only operators linked to the user are disabled.
    OperatorDisabled(OperatorId),
    /// More than one enabled operator is linked to the user: the card cannot choose.
    SeveralOperators(UserId, Vec<OperatorId>),
}

impl CardRefused {
    pub fn sentence(&self) -> String {
        match self {
            Self::NotIssuedHere => {
                "This card's certificate was not issued by Tessera: sign in with your password."
                    .into()
            }
            Self::WrongSlot(slot) => format!(
                "The certificate your browser sent is the card's {} certificate ({}): choose its \
                 PIV Authentication certificate (9A).",
                slot.label(),
                slot.code().to_uppercase()
            ),
            Self::Revoked => "This card is revoked: it no longer signs anyone in.".into(),
            Self::OnHold => {
                "This card's certificates are on hold (the card is suspended or not activated \
                 yet): it cannot sign you in."
                    .into()
            }
            Self::Expired => "This card's certificate has expired.".into(),
            Self::NotYetValid => "This card's certificate is not valid yet.".into(),
            Self::CardNotActive(state) => {
                format!(
                    "This card is {}: only an Active card signs you in.",
                    state.label()
                )
            }
            Self::NoOperator(uid) => format!(
                "No operator is linked to user {uid}: an administrator links one on the \
                 Operators page (or with `tessera operators add --user {uid}`)."
            ),
            Self::OperatorDisabled(id) => {
                format!("The operator {id} linked to this card's holder is disabled.")
            }
            Self::SeveralOperators(uid, ids) => format!(
                "Several operators are linked to user {uid} ({}): an administrator must keep \
                 only one.",
                ids.iter()
                    .map(|i| i.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// A short name for the audit event.
    fn code(&self) -> &'static str {
        match self {
            Self::NotIssuedHere => "not_issued_here",
            Self::WrongSlot(_) => "wrong_slot",
            Self::Revoked => "revoked",
            Self::OnHold => "on_hold",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::CardNotActive(_) => "card_not_active",
            Self::NoOperator(_) => "no_operator",
            Self::OperatorDisabled(_) => "operator_disabled",
            Self::SeveralOperators(..) => "several_operators",
        }
    }
}

/// Signs in the operator linked to the holder of the card that presented `cert`, or says why
/// not. Every refusal is audited: a certificate Tessera does not know as a stranger's attempt
/// (capped, see [`crate::refusals`]), one of its own cards in full, with the card and its holder.
pub async fn sign_in_with_card(
    svc: &Services,
    cert: &PresentedCertificate,
) -> Result<Result<Session, CardRefused>, CoreError> {
    let record = svc
        .store
        .certificate(&cert.serial)
        .await?
        .filter(|r| r.der == cert.der);
    let Some(record) = record else {
        svc.audit_refusal(
            audit::CARD_SIGN_IN_REFUSED,
            AuditContext::default(),
            json!({"serial": cert.serial, "reason": CardRefused::NotIssuedHere.code()}),
        )
        .await?;
        return Ok(Err(CardRefused::NotIssuedHere));
    };
    match operator_for(svc, &record).await? {
        Ok(operator) => {
            let session =
                open_session(svc, operator, "card", Some(&record.serial), Changes::new()).await?;
            Ok(Ok(session))
        }
        Err(refused) => {
            svc.audit(
                audit::CARD_SIGN_IN_REFUSED,
                AuditContext {
                    user: Some(&record.user),
                    device: Some(&record.device),
                    ..Default::default()
                },
                json!({
                    "serial": record.serial,
                    "reason": refused.code(),
                    "sentence": refused.sentence(),
                }),
            )
            .await?;
            Ok(Err(refused))
        }
    }
}

/// The rules, in the order a person would check them: the certificate, the card, the operator.
async fn operator_for(
    svc: &Services,
    record: &CertificateRecord,
) -> Result<Result<OperatorId, CardRefused>, CoreError> {
    if record.slot != Slot::PivAuthentication {
        return Ok(Err(CardRefused::WrongSlot(record.slot)));
    }
    match record.status {
        CertificateStatus::Valid => {}
        CertificateStatus::Revoked => return Ok(Err(CardRefused::Revoked)),
        CertificateStatus::OnHold => return Ok(Err(CardRefused::OnHold)),
    }
    let now = svc.clock.now();
    if now > record.not_after {
        return Ok(Err(CardRefused::Expired));
    }
    if now < record.not_before {
        return Ok(Err(CardRefused::NotYetValid));
    }
    let device = device_of(svc, &record.device).await?;
    if device.state != DeviceState::Active {
        return Ok(Err(CardRefused::CardNotActive(device.state)));
    }
    // The certificate was issued to the card's holder; a record that says otherwise is not a
    // card Tessera stands behind for this person, so nobody is signed in with it.
    if device.user.as_ref() != Some(&record.user) {
        return Ok(Err(CardRefused::NotIssuedHere));
    }
    let uid = record.user.clone();
    let linked: Vec<_> = svc
        .store
        .operators()
        .await?
        .into_iter()
        .filter(|o| o.user.as_ref() == Some(&uid))
        .collect();
    let enabled: Vec<_> = linked.iter().filter(|o| o.enabled).collect();
    Ok(match (enabled.as_slice(), linked.first()) {
        ([one], _) => Ok(one.id.clone()),
        ([], None) => Err(CardRefused::NoOperator(uid)),
        ([], Some(disabled)) => Err(CardRefused::OperatorDisabled(disabled.id.clone())),
        (several, _) => Err(CardRefused::SeveralOperators(
            uid,
            several.iter().map(|o| o.id.clone()).collect(),
        )),
    })
}

async fn device_of(svc: &Services, id: &DeviceId) -> Result<crate::model::Device, CoreError> {
    svc.store
        .device(id)
        .await
        .map_err(|_| CoreError::NotFound(format!("card {id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_is_wrong_with_the_card() {
        assert_eq!(
            CardRefused::Revoked.sentence(),
            "This card is revoked: it no longer signs anyone in."
        );
        assert!(CardRefused::NoOperator(UserId::new("jdoe"))
            .sentence()
            .starts_with("No operator is linked to user jdoe"));
        assert!(CardRefused::CardNotActive(DeviceState::Suspended)
            .sentence()
            .starts_with("This card is Suspended"));
        assert!(CardRefused::WrongSlot(Slot::DigitalSignature)
            .sentence()
            .contains("Digital Signature certificate (9C)"));
        assert!(CardRefused::SeveralOperators(
            UserId::new("jdoe"),
            vec![OperatorId::new("a"), OperatorId::new("b")]
        )
        .sentence()
        .contains("(a, b)"));
    }
}

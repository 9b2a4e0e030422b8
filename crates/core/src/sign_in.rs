//! Signing in and out of the portal: the password check (behind the [`Passwords`] port, off the
//! async workers), the lockout of guessed names ([`crate::throttle`]), the session (only the
//! SHA-256 of its token is stored) and the audit events, capped for strangers.

use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::ids::OperatorId;
use crate::model::Timestamp;
use crate::ports::Random;
use crate::secret::Password;
use crate::services::{AuditContext, Services};
use crate::throttle::{self, wait_sentence, Failure, FAILURES_BEFORE_LOCK};
use crate::totp;
use serde_json::json;
use sha2::{Digest, Sha256};

/// How long a session lasts.
pub const SESSION_SECONDS: i64 = 8 * 3600;

/// A session just opened: the token goes to the browser once, in a cookie.
pub struct Session {
    pub operator: OperatorId,
    pub token: String,
    pub csrf: String,
    pub expires: Timestamp,
}

/// Why a sign-in was refused, with the sentence the person reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The name is locked: no password was checked.
    Locked { seconds: i64 },
    /// Unknown operator or wrong password.
    Wrong,
    /// Wrong again, and this failure locked the name.
    NowLocked { seconds: i64 },
    /// The password was right; the operator has an authenticator and sent no code. Not a
    /// failure: the form asks for the code.
    CodeNeeded,
}

impl Refused {
    pub fn sentence(&self) -> String {
        match self {
            Self::Locked { seconds } => format!(
                "Too many failed sign-ins for this operator: try again in {}.",
                wait_sentence(*seconds)
            ),
            Self::Wrong => "Unknown operator, wrong password or wrong code.".into(),
            Self::CodeNeeded => {
                "Enter the 6-digit code your authenticator app shows (or a recovery code).".into()
            }
            Self::NowLocked { seconds } => format!(
                "Unknown operator or wrong password, {FAILURES_BEFORE_LOCK} times in a row: \
                 sign-in for this operator is locked for {}.",
                wait_sentence(*seconds)
            ),
        }
    }
}

/// 32 random bytes, URL-safe base64 without padding: session and CSRF tokens.
pub fn random_token(random: &dyn Random) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random.bytes::<32>())
}

/// What the store keeps of a session token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks a name and password. A locked name gets no password check and no audit event per
/// attempt (the lock itself was audited when it began); a failure is audited (capped for
/// strangers, see [`crate::refusals`]) and counted toward a lock; a success opens a session.
pub async fn sign_in(
    svc: &Services,
    name: &str,
    password: Password,
    code: Option<&str>,
) -> Result<Result<Session, Refused>, CoreError> {
    let id = OperatorId::new(name.trim());
    let now = svc.clock.now();
    if let Some(seconds) = throttle::locked(&*svc.store, id.as_str(), now.0).await? {
        return Ok(Err(Refused::Locked { seconds }));
    }
    let operator = svc.store.operator(&id).await.ok().filter(|o| o.enabled);
    let stored = operator.as_ref().map(|o| o.password_hash.clone());
    let mut ok = svc.passwords.verify(password, stored).await && operator.is_some();
    let mut changes = Changes::new();
    let mut method = "password";
    if let (true, Some(mut operator)) = (ok, operator) {
        if operator.totp.as_ref().is_some_and(|t| t.confirmed) {
            match code.map(str::trim).filter(|c| !c.is_empty()) {
                None => return Ok(Err(Refused::CodeNeeded)),
                Some(code) => ok = totp::check(svc, &mut operator, code, &mut changes)?.is_some(),
            }
            method = "password+totp";
        } else {
            // Written back unchanged, on the revision read: a reset or a disable that came
            // during the password check makes this sign-in fail instead of outliving it.
            changes.push(Change::UpdateOperator(operator));
        }
    }
    if !ok {
        svc.audit_refusal(
            audit::OPERATOR_SIGN_IN_FAILED,
            AuditContext::default(),
            json!({"operator": id.as_str()}),
        )
        .await?;
        return Ok(Err(
            match throttle::failed(&*svc.store, id.as_str(), now.0).await? {
                Failure::Counted { .. } => Refused::Wrong,
                Failure::Locked { seconds } => {
                    svc.audit_refusal(
                    audit::OPERATOR_LOCKED_OUT,
                    AuditContext::default(),
                    json!({"operator": id.as_str(), "failures": FAILURES_BEFORE_LOCK, "seconds": seconds}),
                )
                .await?;
                    Refused::NowLocked { seconds }
                }
            },
        ));
    }
    throttle::succeeded(&*svc.store, id.as_str()).await?;
    open_session(svc, id, method, None, changes).await.map(Ok)
}

/// Opens a session for an operator already checked (by password and code, or by card) and
/// commits it with `changes` and the sign-in event.
pub async fn open_session(
    svc: &Services,
    id: OperatorId,
    method: &str,
    card: Option<&str>,
    mut changes: Changes,
) -> Result<Session, CoreError> {
    let now = svc.clock.now();
    let session = Session {
        token: random_token(&*svc.random),
        csrf: random_token(&*svc.random),
        expires: Timestamp(now.0 + SESSION_SECONDS),
        operator: id,
    };
    changes.audit(svc.event(
        audit::OPERATOR_SIGNED_IN,
        AuditContext {
            operator: Some(&session.operator),
            ..Default::default()
        },
        json!({"method": method}),
    ));
    // The operator's record first (a spent TOTP step, a revision check): a session exists only
    // once that held.
    svc.commit(changes).await?;
    svc.store
        .put_session(
            &token_hash(&session.token),
            &session.operator,
            &session.csrf,
            session.expires,
            card,
        )
        .await?;
    Ok(session)
}

/// The operator and CSRF token of the live session whose token hashes to `token_hash`. A session
/// a card opened lives only while the card's certificate is valid: once the card is suspended or
/// terminated, the session ends at the operator's next request, not at the end of the shift.
pub async fn live_session(
    svc: &Services,
    token_hash: &str,
) -> Result<Option<(OperatorId, String)>, CoreError> {
    let Some(session) = svc.store.session(token_hash, svc.clock.now()).await? else {
        return Ok(None);
    };
    if let Some(serial) = &session.card {
        let valid = svc
            .store
            .certificate_state(serial)
            .await?
            .is_some_and(|c| c.status == crate::model::CertificateStatus::Valid);
        if !valid {
            svc.store.delete_session(token_hash).await?;
            return Ok(None);
        }
    }
    Ok(Some((session.operator, session.csrf)))
}

/// Ends a session (when the browser still had its token) and audits the sign-out.
pub async fn sign_out(
    svc: &Services,
    operator: &OperatorId,
    token: Option<&str>,
) -> Result<(), CoreError> {
    if let Some(token) = token {
        svc.store.delete_session(&token_hash(token)).await?;
    }
    svc.audit(
        audit::OPERATOR_SIGNED_OUT,
        AuditContext {
            operator: Some(operator),
            ..Default::default()
        },
        json!({}),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_happened() {
        assert_eq!(
            Refused::Wrong.sentence(),
            "Unknown operator, wrong password or wrong code."
        );
        assert!(Refused::Locked { seconds: 60 }
            .sentence()
            .contains("try again in 1 minute"));
        assert!(Refused::NowLocked { seconds: 120 }
            .sentence()
            .contains("5 times in a row"));
    }
}

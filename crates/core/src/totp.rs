//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP, HMAC-SHA-1, 6 digits, 30-second
//! steps): what authenticator apps (and `oathtool --totp`) compute from the secret in the QR code.
//!
//! Enrolment ([`begin`], [`confirm`]) keeps the secret sealed in the operator's record and hands
//! out ten recovery codes once; sign-in ([`check`]) accepts a code of the step before, this step
//! or the step after (clocks drift), each step at most once, or an unused recovery code.

use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::ids::OperatorId;
use crate::model::{Operator, TotpEnrolment};
use crate::ports::Random;
use crate::services::{AuditContext, Services};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Seconds per step.
pub const STEP: i64 = 30;
pub const DIGITS: u32 = 6;
/// How many recovery codes an enrolment gives.
pub const RECOVERY_CODES: usize = 10;

/// HOTP (RFC 4226 §5.3) of `counter`.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[19] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// The code at Unix time `now`, zero-padded.
pub fn code_at(secret: &[u8], now: i64) -> String {
    format!(
        "{:0width$}",
        hotp(secret, (now / STEP) as u64, DIGITS),
        width = DIGITS as usize
    )
}

/// RFC 4648 base32 without padding, as authenticator apps take the secret.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The `otpauth://` URI of the QR code (Google Authenticator's key URI format).
pub fn uri(issuer: &str, operator: &OperatorId, secret: &[u8]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        enc(issuer),
        enc(operator.as_str()),
        base32(secret),
        enc(issuer)
    )
}

fn recovery_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

/// 16 characters of base32 (80 bits) in groups of four: enough that a stolen database's hashes
/// cannot be reversed by trying every code, so a fast hash will do.
fn recovery_code(random: &dyn Random) -> String {
    let text = base32(&random.bytes::<10>()).to_lowercase();
    text.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("base32 is ASCII"))
        .collect::<Vec<_>>()
        .join("-")
}

/// A new, unconfirmed enrolment: the secret to show (as a QR code and in base32), kept sealed in
/// the operator's record until [`confirm`] sees a correct code.
pub async fn begin(svc: &Services, operator: &OperatorId) -> Result<Vec<u8>, CoreError> {
    let mut o = svc.store.operator(operator).await?;
    if o.totp.as_ref().is_some_and(|t| t.confirmed) {
        return Err(CoreError::Invalid(
            "an authenticator is already enrolled: ask an administrator to reset it first".into(),
        ));
    }
    let secret = svc.random.bytes::<20>().to_vec();
    o.totp = Some(TotpEnrolment {
        sealed_secret: base64::engine::general_purpose::STANDARD.encode(svc.sealer.seal(&secret)),
        confirmed: false,
        last_step: 0,
        recovery_code_hashes: Vec::new(),
    });
    let mut changes = Changes::new();
    changes.push(Change::UpdateOperator(o));
    svc.commit(changes).await?;
    Ok(secret)
}

fn secret_of(svc: &Services, t: &TotpEnrolment) -> Result<Vec<u8>, CoreError> {
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&t.sealed_secret)
        .map_err(|_| CoreError::Invalid("the stored TOTP secret is damaged".into()))?;
    svc.sealer
        .open(&sealed)
        .map_err(|e| CoreError::Invalid(format!("the stored TOTP secret cannot be opened: {e}")))
}

/// The secret of an unconfirmed enrolment, to show its QR code again (a page reload).
pub fn pending_secret(svc: &Services, o: &Operator) -> Result<Option<Vec<u8>>, CoreError> {
    match &o.totp {
        Some(t) if !t.confirmed => secret_of(svc, t).map(Some),
        _ => Ok(None),
    }
}

/// The step `code` is good for, if any, among the previous, current and next steps.
fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code = code.trim().replace(' ', "");
    if code.len() != DIGITS as usize || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let step = now / STEP;
    (step - 1..=step + 1).find(|&s| code_at(secret, s * STEP) == code)
}

/// Confirms an enrolment with the first code from the app; returns the recovery codes to show
/// once (only their hashes are kept).
pub async fn confirm(
    svc: &Services,
    operator: &OperatorId,
    code: &str,
) -> Result<Vec<String>, CoreError> {
    let mut o = svc.store.operator(operator).await?;
    let Some(t) = o.totp.clone().filter(|t| !t.confirmed) else {
        return Err(CoreError::Invalid(
            "there is no enrolment waiting for a code".into(),
        ));
    };
    let secret = secret_of(svc, &t)?;
    let step = matching_step(&secret, code, svc.clock.now().0).ok_or_else(|| {
        CoreError::Invalid(
            "that code is not the one your authenticator shows now: check the phone's clock and try the next code"
                .into(),
        )
    })?;
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| recovery_code(&*svc.random))
        .collect();
    o.totp = Some(TotpEnrolment {
        confirmed: true,
        last_step: step,
        recovery_code_hashes: codes.iter().map(|c| recovery_hash(c)).collect(),
        ..t
    });
    let mut changes = Changes::new();
    changes.audit(svc.event(
        audit::TOTP_ENROLLED,
        AuditContext {
            operator: Some(operator),
            ..Default::default()
        },
        json!({"recovery_codes": RECOVERY_CODES}),
    ));
    changes.push(Change::UpdateOperator(o));
    svc.commit(changes).await?;
    Ok(codes)
}

/// How a second factor was checked at sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Second {
    Code,
    /// A recovery code, now used up; so many remain.
    Recovery {
        left: usize,
    },
}

/// Checks a sign-in's code (or recovery code) for an operator with a confirmed enrolment and
/// records its use in `changes` (the step, or the spent recovery code). `None`: refused.
pub fn check(
    svc: &Services,
    operator: &mut Operator,
    code: &str,
    changes: &mut Changes,
) -> Result<Option<Second>, CoreError> {
    let Some(mut t) = operator.totp.clone().filter(|t| t.confirmed) else {
        return Ok(None);
    };
    let secret = secret_of(svc, &t)?;
    let second = match matching_step(&secret, code, svc.clock.now().0) {
        // A code is good once: a step at or before the last one used is a replay.
        Some(step) if step > t.last_step => {
            t.last_step = step;
            Second::Code
        }
        Some(_) => return Ok(None),
        None => {
            let hash = recovery_hash(code);
            let Some(i) = t.recovery_code_hashes.iter().position(|h| *h == hash) else {
                return Ok(None);
            };
            t.recovery_code_hashes.remove(i);
            changes.audit(svc.event(
                audit::RECOVERY_CODE_USED,
                AuditContext {
                    operator: Some(&operator.id),
                    ..Default::default()
                },
                json!({"left": t.recovery_code_hashes.len()}),
            ));
            Second::Recovery {
                left: t.recovery_code_hashes.len(),
            }
        }
    };
    operator.totp = Some(t);
    changes.push(Change::UpdateOperator(operator.clone()));
    Ok(Some(second))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, with the 20-byte ASCII secret "12345678901234567890".
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(secret, (t / STEP) as u64, 8), code, "t = {t}");
        }
        assert_eq!(code_at(secret, 59), "287082");
    }

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn codes_of_neighbouring_steps_match() {
        let secret = b"12345678901234567890";
        let now = 1_700_000_000;
        assert_eq!(
            matching_step(secret, &code_at(secret, now), now),
            Some(now / STEP)
        );
        assert_eq!(
            matching_step(secret, &code_at(secret, now - STEP), now),
            Some(now / STEP - 1)
        );
        assert_eq!(
            matching_step(secret, &code_at(secret, now - 3 * STEP), now),
            None
        );
        assert_eq!(matching_step(secret, "12345", now), None);
        assert_eq!(matching_step(secret, "abcdef", now), None);
    }

    #[test]
    fn the_uri_names_issuer_and_operator() {
        let u = uri(
            "Tessera CMS",
            &OperatorId::new("hd@x"),
            b"12345678901234567890",
        );
        assert_eq!(
            u,
            "otpauth://totp/Tessera%20CMS:hd%40x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Tessera%20CMS&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_compare_without_punctuation() {
        assert_eq!(
            recovery_hash("abcd-efgh-2345"),
            recovery_hash(" ABCDefgh2345 ")
        );
    }
}

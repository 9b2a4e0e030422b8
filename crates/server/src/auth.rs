//! Operator authentication: argon2id password hashes, session cookies (only their SHA-256 is
//! stored), CSRF tokens bound to the session, and the extractor that gives handlers the signed-in
//! operator.

use crate::app::AppState;
use crate::web_error::WebError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use sha2::{Digest, Sha256};
use tessera_core::issuance::Actor;
use tessera_core::model::Operator;
use tessera_core::ports::Random;
use tessera_core::Password;

pub const SESSION_COOKIE: &str = "tessera_session";
pub const LOGIN_COOKIE: &str = "tessera_login";
/// Eight hours: one working shift.
pub const SESSION_SECONDS: i64 = 8 * 3600;

pub fn hash_password(password: &Password) -> String {
    let salt = SaltString::generate(&mut rand_core::OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

pub fn verify_password(password: &Password, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.expose().as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// 32 random bytes, URL-safe base64: session tokens and CSRF tokens.
pub fn random_token(random: &dyn Random) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random.bytes::<32>())
}

/// A password people can type: 4 groups of 4 from an alphabet without look-alikes.
pub fn random_password(random: &dyn Random) -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::new();
    while out.len() < 19 {
        if out.len() % 5 == 4 {
            out.push('-');
            continue;
        }
        let [b] = random.bytes::<1>();
        // Rejection sampling keeps every character equally likely.
        if (b as usize) < 256 - 256 % ALPHABET.len() {
            out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
        }
    }
    out
}

/// A real hash of a random password, verified against when the operator does not exist.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&Password::new(random_password(&crate::platform::OsRandom))))
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Reads one cookie from the request headers.
pub fn cookie(parts: &Parts, name: &str) -> Option<String> {
    cookie_in(&parts.headers, name)
}

/// Reads one cookie from a header map.
pub fn cookie_in(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub fn session_cookie(token: &str, max_age: i64) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

/// The signed-in operator, their role and the session's CSRF token.
pub struct SignedIn {
    pub operator: Operator,
    pub csrf: String,
}

impl SignedIn {
    pub fn actor(&self) -> Actor {
        Actor {
            operator: self.operator.id.clone(),
            role: self.operator.role,
        }
    }

    /// Checks the CSRF token a form sent back.
    pub fn check_csrf(&self, sent: &str) -> Result<(), WebError> {
        // Comparison time must not depend on how much of the token matched.
        let a = Sha256::digest(sent.as_bytes());
        let b = Sha256::digest(self.csrf.as_bytes());
        if a == b {
            Ok(())
        } else {
            Err(WebError::csrf())
        }
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let token = cookie(parts, SESSION_COOKIE).ok_or_else(WebError::sign_in)?;
        let svc = &state.tessera.services;
        let (operator, csrf) = svc
            .store
            .session(&token_hash(&token), svc.clock.now())
            .await
            .map_err(WebError::from_store)?
            .ok_or_else(WebError::sign_in)?;
        let operator = svc
            .store
            .operator(&operator)
            .await
            .map_err(|_| WebError::sign_in())?;
        if !operator.enabled {
            return Err(WebError::sign_in());
        }
        Ok(Self { operator, csrf })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::OsRandom;

    #[test]
    fn passwords_hash_and_verify() {
        let p = Password::new("correct horse");
        let h = hash_password(&p);
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&p, &h));
        assert!(!verify_password(&Password::new("wrong"), &h));
        assert!(!verify_password(&p, "not a hash"));
    }

    #[test]
    fn generated_passwords_have_four_groups() {
        let p = random_password(&OsRandom);
        assert_eq!(p.len(), 19);
        assert_eq!(p.split('-').count(), 4);
    }
}

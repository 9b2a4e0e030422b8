//! Operator authentication: argon2id password hashes, session cookies (only their SHA-256 is
//! stored), CSRF tokens bound to the session, and the extractor that gives handlers the signed-in
//! operator.

use crate::app::AppState;
use crate::web_error::WebError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use tessera_core::issuance::Actor;
use tessera_core::model::Operator;
use tessera_core::operators::Pending;
use tessera_core::Password;

pub const SESSION_COOKIE: &str = "tessera_session";
pub const LOGIN_COOKIE: &str = "tessera_login";
/// Eight hours: one working shift.
pub use tessera_core::sign_in::SESSION_SECONDS;

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

/// How many password hashes are computed at once. Each argon2id hash takes 19 MiB and tens of
/// milliseconds of a core; a burst of sign-ins (or of guesses) must queue for these rather than
/// take every core from the async workers that answer everything else.
pub const HASHING_AT_ONCE: usize = 2;
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HASHING_AT_ONCE);

/// Runs `work` on a blocking thread once one of the [`HASHING_AT_ONCE`] places is free. The
/// place is held by the thread, not by the caller: a sign-in whose browser gives up still counts
/// until its hash is done.
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let place = HASHING
        .acquire()
        .await
        .expect("the semaphore is never closed");
    let done = tokio::task::spawn_blocking(move || {
        let _place = place;
        work()
    })
    .await;
    match done {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// [`hash_password`] off the async workers, for async callers.
pub async fn hash_password_async(password: Password) -> String {
    hashing(move || hash_password(&password)).await
}

/// [`verify_password`] off the async workers, for async callers. Without a stored hash (no such
/// operator) the password is checked against [`dummy_hash`] all the same, so that the answer takes
/// as long whether or not the name exists; it is `false` then.
pub async fn verify_password_async(password: Password, stored: Option<String>) -> bool {
    hashing(move || match stored {
        Some(hash) => verify_password(&password, &hash),
        None => {
            verify_password(&password, dummy_hash());
            false
        }
    })
    .await
}

/// The core's [`Passwords`] port on argon2id, off the async workers.
pub struct Argon2Passwords;

#[async_trait::async_trait]
impl tessera_core::ports::Passwords for Argon2Passwords {
    async fn hash(&self, password: Password) -> String {
        hash_password_async(password).await
    }
    async fn verify(&self, password: Password, stored: Option<String>) -> bool {
        verify_password_async(password, stored).await
    }
}

pub use tessera_core::passwords::one_time_password;
pub use tessera_core::sign_in::{random_token, token_hash};

/// A real hash of a random password, verified against when the operator does not exist.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&one_time_password(&crate::platform::OsRandom)))
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

/// The signed-in operator, who they are as an actor (role and scope), and the session's CSRF
/// token.
pub struct SignedIn {
    pub operator: Operator,
    pub actor: Actor,
    pub csrf: String,
    /// The SHA-256 of this session's token (the session a password change keeps).
    pub token_hash: String,
}

/// Where an operator who still owes a step after signing in may go: the account pages that
/// settle it, and sign-out.
fn allowed_while_pending(path: &str) -> bool {
    path.starts_with("/account") || path == "/logout"
}

impl SignedIn {
    pub fn actor(&self) -> Actor {
        self.actor.clone()
    }

    /// Whether the operator may do `permission` (for pages that hide what they may not do).
    pub fn may(&self, permission: tessera_core::model::Permission) -> bool {
        self.actor.may(permission)
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
        let hash = token_hash(&token);
        let (operator, csrf) = tessera_core::sign_in::live_session(svc, &hash)
            .await?
            .ok_or_else(WebError::sign_in)?;
        let operator = svc
            .store
            .operator(&operator)
            .await
            .map_err(|_| WebError::sign_in())?;
        if !operator.enabled {
            return Err(WebError::sign_in());
        }
        if !allowed_while_pending(parts.uri.path()) {
            match tessera_core::operators::pending(svc, &operator).await? {
                Some(Pending::ChangePassword) => {
                    return Err(WebError::redirect("/account/password"))
                }
                Some(Pending::EnrolTotp) => return Err(WebError::redirect("/account/totp")),
                None => {}
            }
        }
        let actor = tessera_core::operators::actor_of(svc, &operator).await?;
        Ok(Self {
            operator,
            actor,
            csrf,
            token_hash: hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let p = Password::new("correct horse");
        let h = hash_password(&p);
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&p, &h));
        assert!(!verify_password(&Password::new("wrong"), &h));
        assert!(!verify_password(&p, "not a hash"));
    }

    #[tokio::test]
    async fn async_hashing_agrees_with_the_sync_functions() {
        let p = Password::new("correct horse");
        let h = hash_password_async(p.clone()).await;
        assert!(verify_password(&p, &h));
        assert!(verify_password_async(p.clone(), Some(h.clone())).await);
        assert!(!verify_password_async(Password::new("wrong"), Some(h)).await);
        // An unknown operator is never signed in, even with the dummy's password.
        assert!(!verify_password_async(p, None).await);
    }

    /// With one async worker, a burst of password checks leaves it free for other tasks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn password_checks_do_not_hold_the_async_worker() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let hash = hash_password_async(Password::new("x")).await;
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    ticks.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            })
        };
        let before = ticks.load(Ordering::Relaxed);
        let checks: Vec<_> = (0..8)
            .map(|_| {
                let hash = hash.clone();
                tokio::spawn(verify_password_async(Password::new("y"), Some(hash)))
            })
            .collect();
        for check in checks {
            assert!(!check.await.unwrap());
        }
        let after = ticks.load(Ordering::Relaxed);
        assert!(
            after > before + 1,
            "the ticker stood still: {before} -> {after}"
        );
        ticker.abort();
    }
}

//! The operators' password policy and one-time passwords.
//!
//! A password must be at least the configured length (12 by default), must not be the operator's
//! name, one character repeated, or one of the common passwords shipped in
//! `data/common-passwords.txt` once digits and symbols around it are taken away ("Summer2026!" is
//! "summer"). Length beats composition rules (NIST SP 800-63B §5.1.1.2), so there are none.

use crate::error::CoreError;
use crate::ids::OperatorId;
use crate::ports::Random;
use crate::secret::Password;
use std::collections::HashSet;
use std::sync::OnceLock;

const COMMON: &str = include_str!("../data/common-passwords.txt");

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// The password's core: lower case, without the digits and symbols around the letters.
fn core_word(password: &str) -> String {
    let lower = password.to_lowercase();
    lower.trim_matches(|c: char| !c.is_alphabetic()).to_owned()
}

/// Checks a new password against the policy; the message says what to change.
pub fn check_password(
    password: &Password,
    operator: &OperatorId,
    min_length: usize,
) -> Result<(), CoreError> {
    let p = password.expose();
    let refuse = |why: &str| {
        Err(CoreError::Invalid(format!(
            "choose another password: {why}"
        )))
    };
    if p.chars().count() < min_length {
        return refuse(&format!("it must have at least {min_length} characters"));
    }
    let lower = p.to_lowercase();
    if lower.contains(&operator.as_str().to_lowercase()) {
        return refuse("it must not contain your operator name");
    }
    let mut chars = p.chars();
    if let Some(first) = chars.next() {
        if chars.all(|c| c == first) {
            return refuse("it is one character repeated");
        }
    }
    let word = core_word(p);
    if common().contains(lower.as_str()) || (!word.is_empty() && common().contains(word.as_str())) {
        return refuse("it is on the list of common passwords that attackers try first");
    }
    Ok(())
}

/// A one-time password people can type: 4 groups of 4 from an alphabet without look-alikes
/// (about 92 bits).
pub fn one_time_password(random: &dyn Random) -> Password {
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
    Password::new(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(p: &str) -> Result<(), CoreError> {
        check_password(&Password::new(p), &OperatorId::new("hannah"), 12)
    }

    #[test]
    fn the_policy_refuses_short_common_and_personal_passwords() {
        assert!(check("correct horse battery").is_ok());
        assert!(check("short")
            .unwrap_err()
            .to_string()
            .contains("12 characters"));
        assert!(check("Password123!")
            .unwrap_err()
            .to_string()
            .contains("common"));
        assert!(check("2026Summer2026!")
            .unwrap_err()
            .to_string()
            .contains("common"));
        assert!(check("qwertyuiop12")
            .unwrap_err()
            .to_string()
            .contains("common"));
        assert!(check("hannah-is-great")
            .unwrap_err()
            .to_string()
            .contains("operator name"));
        assert!(check("aaaaaaaaaaaaaaa")
            .unwrap_err()
            .to_string()
            .contains("repeated"));
        assert!(check("1234567890").is_err());
    }

    #[test]
    fn one_time_passwords_have_four_groups_without_look_alikes() {
        use std::sync::atomic::{AtomicU8, Ordering};
        struct Counter(AtomicU8);
        impl Random for Counter {
            fn fill(&self, buf: &mut [u8]) {
                for b in buf {
                    *b = self.0.fetch_add(37, Ordering::Relaxed);
                }
            }
        }
        let p = one_time_password(&Counter(AtomicU8::new(0)));
        let p = p.expose();
        assert_eq!(p.len(), 19);
        assert_eq!(p.split('-').map(str::len).collect::<Vec<_>>(), [4, 4, 4, 4]);
        assert!(!p.contains(['0', 'O', '1', 'l', 'I']), "{p}");
    }

    #[test]
    fn the_common_list_is_loaded() {
        assert!(common().len() > 1000);
        assert!(common().contains("password"));
        assert!(!common().iter().any(|p| p.starts_with('#')));
    }
}

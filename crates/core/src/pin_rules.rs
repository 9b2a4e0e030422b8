//! The rules a new PIN must meet before any card gets it: at issuance (the initial PIN) and at a
//! help-desk unlock (the new PIN). One pure check, [`check`], against the card's [`PinPolicy`]:
//! the length the policy allows, digits only, not the factory PIN 123456, not a weak PIN (one
//! digit repeated, a short group repeated, an ascending or descending run, a common PIN, or one
//! of the policy's own refused PINs) and, when the person typed it twice, the same both times.
//!
//! The refusal is typed ([`PinRefusal`]) so the edge can put the sentence next to the field it
//! concerns, and each cause has its own error code (`PIN0001`...). The portal's script mirrors
//! these rules to warn while the operator types; this check stays the authority.

use crate::model::PinPolicy;
use crate::secret::Pin;

/// The PIN every PIV card leaves the factory with.
pub const FACTORY_PIN: &str = "123456";

/// PINs people choose most often that the pattern rules below do not already catch (keypad
/// shapes, pairs, mirrored runs). Short on purpose: it is a floor, and a policy adds its own.
pub const COMMON_PINS: &[&str] = &[
    "112233", "121212", "123321", "131313", "147258", "147852", "159357", "159753", "258456",
    "258369", "369258", "456654", "520520", "696969", "741852", "789456", "102030", "010203",
    "11223344", "12344321", "11112222", "14725836", "20202020",
];

/// Which field a refusal concerns: the PIN, or its confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinField {
    Pin,
    Confirmation,
}

/// Why a weak PIN is weak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weakness {
    /// One digit, or a short group of digits, repeated (111111, 121212, 123123).
    Repeated,
    /// An ascending or descending run (234567, 987654, 890123).
    Sequence,
    /// On the list of common PINs, or on the policy's own list.
    Common,
}

/// Why a PIN was refused: one variant per rule, each with its own error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PinRefusal {
    /// Empty, too short or too long for the policy.
    #[error("the PIN must have {}", digits(*.min, *.max))]
    Length { min: u8, max: u8 },
    /// Something other than the digits 0-9.
    #[error("the PIN must contain digits only (0-9), no letters, spaces or signs")]
    NotDigits,
    /// The factory PIN, which anyone who holds the card could guess.
    #[error("the PIN must not be the factory PIN 123456")]
    Factory,
    /// A PIN an attacker would try first.
    #[error("{}", weak_sentence(*.0))]
    Weak(Weakness),
    /// The PIN typed twice differs.
    #[error("the two PINs differ: type the same PIN in both fields")]
    Mismatch,
}

/// "6 to 8 digits", or "8 digits" when the policy allows one length.
fn digits(min: u8, max: u8) -> String {
    if min == max {
        format!("{min} digits")
    } else {
        format!("{min} to {max} digits")
    }
}

fn weak_sentence(w: Weakness) -> &'static str {
    match w {
        Weakness::Repeated => {
            "the PIN is too easy to guess: it repeats one digit or a short group of digits"
        }
        Weakness::Sequence => {
            "the PIN is too easy to guess: its digits run up or down in order (such as 234567)"
        }
        Weakness::Common => "the PIN is too easy to guess: it is on the list of common PINs",
    }
}

impl PinRefusal {
    /// The field the operator must change.
    pub fn field(&self) -> PinField {
        match self {
            Self::Mismatch => PinField::Confirmation,
            _ => PinField::Pin,
        }
    }
}

/// Checks a new PIN against the policy, then its confirmation when one was typed. The rules
/// apply in the order a person would fix them: form first, then guessability, then the second
/// field.
pub fn check(policy: &PinPolicy, pin: &Pin, confirmation: Option<&Pin>) -> Result<(), PinRefusal> {
    let p = pin.expose();
    if p.is_empty() {
        return Err(length(policy));
    }
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PinRefusal::NotDigits);
    }
    if p.len() < policy.min_length as usize || p.len() > policy.max_length as usize {
        return Err(length(policy));
    }
    if p == FACTORY_PIN {
        return Err(PinRefusal::Factory);
    }
    if let Some(weakness) = weakness(policy, p) {
        return Err(PinRefusal::Weak(weakness));
    }
    match confirmation {
        Some(c) if c.expose() != p => Err(PinRefusal::Mismatch),
        _ => Ok(()),
    }
}

fn length(policy: &PinPolicy) -> PinRefusal {
    PinRefusal::Length {
        min: policy.min_length,
        max: policy.max_length,
    }
}

/// Why `digits` (ASCII digits only) is weak under the policy, if it is: a pattern, then a PIN
/// refused by name. The policy's own list applies even when the built-in rules are turned off.
fn weakness(policy: &PinPolicy, digits: &str) -> Option<Weakness> {
    if policy.refuse_weak {
        if let Some(pattern) = pattern(digits.as_bytes()) {
            return Some(pattern);
        }
    }
    refused_list(policy)
        .iter()
        .any(|r| r == digits)
        .then_some(Weakness::Common)
}

/// The pattern that makes `d` (ASCII digits) weak, if one does. The portal's script
/// (`static/pin.js`) checks the same two patterns in the same order.
fn pattern(d: &[u8]) -> Option<Weakness> {
    // A block of at most half the PIN, repeated to fill it: 111111, 121212, 123123, 12341234.
    let repeated = (1..=d.len() / 2)
        .filter(|n| d.len().is_multiple_of(*n))
        .any(|n| d.chunks(n).all(|c| c == &d[..n]));
    if repeated {
        return Some(Weakness::Repeated);
    }
    // Each digit one more (or one less) than the one before, wrapping 9 to 0 as a keypad
    // row is read: 345678, 890123, 876543.
    let steps: Vec<u8> = d.windows(2).map(|w| (10 + w[1] - w[0]) % 10).collect();
    if steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == 9) {
        return Some(Weakness::Sequence);
    }
    None
}

/// The rules of a policy in words, one line each, for the form that asks for a PIN.
pub fn describe(policy: &PinPolicy) -> Vec<String> {
    let mut lines = vec![
        digits(policy.min_length, policy.max_length),
        "digits only (0-9)".into(),
        format!("not the factory PIN {FACTORY_PIN}"),
    ];
    if policy.refuse_weak {
        lines.push(
            "no repeated digits or groups (111111, 121212), no runs up or down (234567, 987654), \
             no common PIN"
                .into(),
        );
    }
    if !policy.refused.is_empty() {
        lines.push("not a PIN on this policy's own refused list".into());
    }
    lines
}

/// The PINs refused by name under the policy (the built-in common ones when weak PINs are
/// refused, and the policy's own), for the form's script to mirror the server.
pub fn refused_list(policy: &PinPolicy) -> Vec<String> {
    let builtin = COMMON_PINS.iter().filter(|_| policy.refuse_weak);
    builtin
        .map(|s| s.to_string())
        .chain(policy.refused.iter().map(|s| s.trim().to_owned()))
        .collect()
}

/// Why the policy's own PIN settings cannot be saved, or Ok: its refused PINs must be PINs the
/// policy could otherwise accept (digits, within its length), so a typo does not pass unnoticed.
pub fn check_settings(policy: &PinPolicy) -> Result<(), String> {
    for r in &policy.refused {
        let r = r.trim();
        let fits = (policy.min_length as usize..=policy.max_length as usize).contains(&r.len());
        if !r.bytes().all(|b| b.is_ascii_digit()) || !fits {
            return Err(format!(
                "the refused PIN {r:?} is not a PIN of {} to {} digits",
                policy.min_length, policy.max_length
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PinPolicy {
        PinPolicy::default()
    }

    #[test]
    fn each_rule_refuses_what_it_names_and_nothing_else() {
        use PinRefusal::*;
        let len = Length { min: 6, max: 8 };
        let cases: &[(&str, Option<&str>, Result<(), PinRefusal>)] = &[
            ("482916", None, Ok(())),
            ("48291637", None, Ok(())),
            ("246810", None, Ok(())),
            ("482916", Some("482916"), Ok(())),
            ("", None, Err(len.clone())),
            ("48291", None, Err(len.clone())),
            ("482916370", None, Err(len.clone())),
            ("48a916", None, Err(NotDigits)),
            ("4829 6", None, Err(NotDigits)),
            ("٤٨٢٩١٦", None, Err(NotDigits)),
            ("abcdef", None, Err(NotDigits)),
            ("123456", None, Err(Factory)),
            ("111111", None, Err(Weak(Weakness::Repeated))),
            ("00000000", None, Err(Weak(Weakness::Repeated))),
            ("121212", None, Err(Weak(Weakness::Repeated))),
            ("123123", None, Err(Weak(Weakness::Repeated))),
            ("12341234", None, Err(Weak(Weakness::Repeated))),
            ("234567", None, Err(Weak(Weakness::Sequence))),
            ("654321", None, Err(Weak(Weakness::Sequence))),
            ("012345", None, Err(Weak(Weakness::Sequence))),
            ("890123", None, Err(Weak(Weakness::Sequence))),
            ("12345678", None, Err(Weak(Weakness::Sequence))),
            ("87654321", None, Err(Weak(Weakness::Sequence))),
            ("112233", None, Err(Weak(Weakness::Common))),
            ("159753", None, Err(Weak(Weakness::Common))),
            ("696969", None, Err(Weak(Weakness::Repeated))),
            ("482916", Some("482917"), Err(Mismatch)),
            ("482916", Some(""), Err(Mismatch)),
            // The PIN's own fault is named before the confirmation's.
            ("111111", Some("222222"), Err(Weak(Weakness::Repeated))),
        ];
        for (pin, confirm, want) in cases {
            let confirmation = confirm.map(Pin::new);
            let got = check(&policy(), &Pin::new(*pin), confirmation.as_ref());
            assert_eq!(&got, want, "{pin:?} / {confirm:?}");
        }
    }

    #[test]
    fn a_policy_may_turn_off_the_built_in_rules_and_add_its_own() {
        let mut p = policy();
        p.refuse_weak = false;
        p.refused = vec!["482916".into()];
        assert_eq!(check(&p, &Pin::new("111111"), None), Ok(()));
        assert_eq!(check(&p, &Pin::new("112233"), None), Ok(()));
        assert_eq!(
            check(&p, &Pin::new("482916"), None),
            Err(PinRefusal::Weak(Weakness::Common))
        );
        // The factory PIN is never allowed, whatever the policy says.
        assert_eq!(
            check(&p, &Pin::new("123456"), None),
            Err(PinRefusal::Factory)
        );
        assert_eq!(refused_list(&p), vec!["482916".to_owned()]);
    }

    #[test]
    fn the_length_follows_the_policy() {
        let mut p = policy();
        p.min_length = 8;
        assert_eq!(
            check(&p, &Pin::new("482916"), None),
            Err(PinRefusal::Length { min: 8, max: 8 })
        );
        assert_eq!(describe(&p)[0], "8 digits");
        assert_eq!(describe(&policy())[0], "6 to 8 digits");
    }

    #[test]
    fn refused_pins_in_a_policy_must_be_pins() {
        let mut p = policy();
        p.refused = vec!["48291".into()];
        assert!(check_settings(&p).is_err());
        p.refused = vec!["48291a".into()];
        assert!(check_settings(&p).is_err());
        p.refused = vec![" 482916 ".into()];
        assert!(check_settings(&p).is_ok());
    }

    #[test]
    fn every_common_pin_is_refused_and_is_a_pin() {
        for pin in COMMON_PINS {
            assert!(pin.len() >= 6 && pin.len() <= 8, "{pin}");
            assert!(
                matches!(
                    check(&policy(), &Pin::new(*pin), None),
                    Err(PinRefusal::Weak(_))
                ),
                "{pin}"
            );
        }
    }
}

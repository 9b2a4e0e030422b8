//! Managing device policies: a policy is checked as a whole before it is saved (PIN and PUK rules
//! a PIV card can hold, refused PINs that are PINs, at least one slot, each slot once, subject
//! templates that close their bindings) and every save is audited. Also how the wizard offers
//! them: which policies a person may get and in what order ([`for_user`]), which one is proposed
//! ([`default_for`]) and what each one does in words ([`summary`]).

use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::ids::PolicyId;
use crate::model::{DevicePolicy, Permission, PinPolicy, User};
use crate::services::{Actor, AuditContext, Services};
use serde_json::json;

/// Why a policy cannot be saved, or Ok.
pub fn check(policy: &DevicePolicy) -> Result<(), CoreError> {
    let bad = |m: String| Err(CoreError::Invalid(m));
    if policy.name.trim().is_empty() {
        return bad("give the policy a name".into());
    }
    // SP 800-73-4: the PIN is 6 to 8 digits, the PUK 8, padded to 8 bytes on the card.
    let pin = &policy.pin;
    if pin.min_length < 6 || pin.max_length > 8 || pin.min_length > pin.max_length {
        return bad("a PIV PIN has 6 to 8 digits: choose a minimum and maximum within 6-8".into());
    }
    if let Err(why) = crate::pin_rules::check_settings(pin) {
        return bad(why);
    }
    if !(1..=15).contains(&pin.retries) || !(1..=15).contains(&policy.puk.retries) {
        return bad("PIN and PUK tries must be between 1 and 15".into());
    }
    if policy.puk.length != 8 {
        return bad("a PIV PUK has 8 digits".into());
    }
    if policy.slots.is_empty() {
        return bad("choose at least one slot".into());
    }
    for (i, slot) in policy.slots.iter().enumerate() {
        if policy.slots[..i].iter().any(|s| s.slot == slot.slot) {
            return bad(format!("the slot {} is listed twice", slot.slot.label()));
        }
        let t = &slot.profile.subject_template;
        if t.matches("{{").count() != t.matches("}}").count() {
            return bad(format!(
                "the subject template of {} has an unclosed {{{{ binding",
                slot.slot.label()
            ));
        }
        if !(1..=3650).contains(&slot.profile.validity_days) {
            return bad(format!(
                "the certificate validity of {} must be 1 to 3650 days",
                slot.slot.label()
            ));
        }
        if let Some(oid) = slot.profile.policy_oids.iter().find(|o| !is_oid(o)) {
            return bad(format!(
                "the certificate policy `{oid}` of {} is not an object identifier (dotted \
                 numbers such as 2.16.840.1.101.3.2.1.3.13)",
                slot.slot.label()
            ));
        }
    }
    if !(1..=3650).contains(&policy.card_validity_days) {
        return bad("the card validity must be 1 to 3650 days".into());
    }
    Ok(())
}

/// A dotted object identifier: two arcs or more, the first 0, 1 or 2, decimal without leading
/// zeros.
fn is_oid(text: &str) -> bool {
    let arcs: Vec<&str> = text.split('.').collect();
    arcs.len() >= 2
        && matches!(arcs[0], "0" | "1" | "2")
        && arcs.iter().all(|a| {
            !a.is_empty()
                && a.len() <= 39
                && a.bytes().all(|b| b.is_ascii_digit())
                && (a.len() == 1 || !a.starts_with('0'))
        })
}

/// Checks and saves a policy.
pub async fn save(svc: &Services, actor: &Actor, policy: DevicePolicy) -> Result<(), CoreError> {
    actor.require(Permission::ManagePolicies, "manage device policies")?;
    check(&policy)?;
    let new = !svc
        .store
        .policies()
        .await?
        .iter()
        .any(|p| p.id == policy.id);
    let mut changes = Changes::new();
    changes.push(Change::PutPolicy(policy.clone()));
    changes.audit(svc.event(
        audit::POLICY_SAVED,
        AuditContext {
            operator: Some(&actor.operator),
            ..Default::default()
        },
        json!({"policy": policy.id, "new": new, "slots": policy.slots.iter().map(|s| s.slot.code()).collect::<Vec<_>>()}),
    ));
    svc.commit(changes).await
}

/// The longest a card or certificate of `policy` stays valid, in days.
pub fn longest_validity_days(policy: &DevicePolicy) -> u32 {
    policy
        .slots
        .iter()
        .map(|s| s.profile.validity_days)
        .chain([policy.card_validity_days])
        .max()
        .unwrap_or(0)
}

/// Short-lived enough for a temporary card (see [`crate::issuance::TEMPORARY_MAX_DAYS`]).
pub fn short_lived(policy: &DevicePolicy) -> bool {
    longest_validity_days(policy) <= crate::issuance::TEMPORARY_MAX_DAYS
}

/// Asks something beyond an ordinary issuance: attested keys, a card from stock, a second
/// operator's approval, or a short life.
fn special(policy: &DevicePolicy) -> bool {
    policy.require_attestation
        || policy.require_stock
        || policy
            .two_person
            .contains(&crate::approvals::TwoPersonAction::Issue)
        || short_lived(policy)
}

fn meets(groups: &[String], user: &User) -> bool {
    groups.iter().any(|g| user.groups.contains(g))
}

/// The policies `user` may get, in the order the wizard lists them: those restricted to one of
/// the person's groups first (made for them), then the everyday ones, then those that ask for
/// something special (attestation, stock, a second operator) and the short-lived ones last;
/// by name within each. For a temporary card (`temporary`) the short-lived ones come first.
pub fn for_user(
    mut policies: Vec<DevicePolicy>,
    user: &User,
    temporary: bool,
) -> Vec<DevicePolicy> {
    policies.retain(|p| p.allowed_groups.is_empty() || meets(&p.allowed_groups, user));
    policies.sort_by(|a, b| {
        let rank = |p: &DevicePolicy| {
            (
                temporary && !short_lived(p),
                !meets(&p.allowed_groups, user),
                special(p),
                short_lived(p),
            )
        };
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            .then_with(|| a.id.as_str().cmp(b.id.as_str()))
    });
    policies
}

/// The policy the wizard proposes among `offered` (as [`for_user`] orders them):
///
/// 1. the default of one of the person's groups (`default_for_groups`). When the person's groups
///    name different defaults, the configured default wins if it is one of them, else the first
///    of them in the list's order: the group order of a directory means nothing, the list's
///    order is the same for everyone;
/// 2. else the configured default (Settings), when the person may get it;
/// 3. else the first policy of the list.
///
/// For a temporary card only short-lived policies are proposed, when there is one.
pub fn default_for(
    offered: &[DevicePolicy],
    user: &User,
    configured: Option<&PolicyId>,
    temporary: bool,
) -> Option<PolicyId> {
    let fits = |p: &&DevicePolicy| !temporary || short_lived(p);
    let mut candidates: Vec<&DevicePolicy> = offered.iter().filter(fits).collect();
    if candidates.is_empty() {
        candidates = offered.iter().collect();
    }
    let is_configured = |p: &DevicePolicy| Some(&p.id) == configured;
    let of_groups: Vec<&DevicePolicy> = candidates
        .iter()
        .copied()
        .filter(|p| meets(&p.default_for_groups, user))
        .collect();
    let chosen = of_groups
        .iter()
        .copied()
        .find(|p| is_configured(p))
        .or_else(|| of_groups.first().copied())
        .or_else(|| candidates.iter().copied().find(|p| is_configured(p)))
        .or_else(|| candidates.first().copied());
    chosen.map(|p| p.id.clone())
}

/// What `policy` puts on the card and asks of the holder, in words, made from the policy itself
/// (so it cannot drift from what issuance does): keys and slots, PIN and PUK rules, validity and
/// whatever it requires beyond that.
pub fn summary(policy: &DevicePolicy) -> String {
    let list = |items: Vec<String>| match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
    };
    let mut parts = Vec::new();
    let first = policy.slots.first().map(|s| s.algorithm);
    let slot = |s: &crate::model::SlotPolicy| {
        format!("{} {}", s.slot.code().to_uppercase(), s.slot.label())
    };
    if policy.slots.iter().all(|s| Some(s.algorithm) == first) {
        if let Some(algorithm) = first {
            let noun = if policy.slots.len() == 1 {
                "slot"
            } else {
                "slots"
            };
            parts.push(format!(
                "{} keys in {noun} {}.",
                algorithm.label(),
                list(policy.slots.iter().map(slot).collect())
            ));
        }
    } else {
        parts.push(format!(
            "Keys in slots {}.",
            list(
                policy
                    .slots
                    .iter()
                    .map(|s| format!("{} ({})", slot(s), s.algorithm.label()))
                    .collect()
            )
        ));
    }
    let pin = &policy.pin;
    let digits = if pin.min_length == pin.max_length {
        format!("{} digits", pin.min_length)
    } else {
        format!("{} to {} digits", pin.min_length, pin.max_length)
    };
    parts.push(format!(
        "PIN {digits}, {} tries; PUK {} digits, {} tries.",
        pin.retries, policy.puk.length, policy.puk.retries
    ));
    let days = policy.card_validity_days;
    parts.push(match days {
        d if d % 365 == 0 && d >= 365 => {
            let years = d / 365;
            format!(
                "Card valid {years} year{}.",
                if years == 1 { "" } else { "s" }
            )
        }
        1 => "Card valid 1 day.".into(),
        d => format!("Card valid {d} days."),
    });
    if policy.require_attestation {
        parts.push("Every key attested by the card (YubiKey).".into());
    }
    if policy.require_stock {
        parts.push("Only cards in stock.".into());
    }
    if policy
        .two_person
        .contains(&crate::approvals::TwoPersonAction::Issue)
    {
        parts.push("Issuance needs a second operator's approval.".into());
    }
    if !policy.activation_required {
        parts.push("Active as soon as printed.".into());
    }
    parts.join(" ")
}

/// A policy as the wizard's policy step offers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyChoice {
    pub id: PolicyId,
    pub name: String,
    /// The administrator's own words.
    pub description: String,
    /// What the policy does, made from it ([`summary`]).
    pub summary: String,
    /// The one the list proposes ([`default_for`]).
    pub proposed: bool,
    /// Its PIN rules, shown beside the PIN field and checked as the operator types.
    pub pin: PinPolicy,
}

/// The policies offered for `job`, in order, the proposed one marked.
pub fn choices(
    policies: Vec<DevicePolicy>,
    user: &User,
    configured: Option<&PolicyId>,
    temporary: bool,
) -> Vec<PolicyChoice> {
    let offered = for_user(policies, user, temporary);
    let proposed = default_for(&offered, user, configured, temporary);
    offered
        .into_iter()
        .map(|p| PolicyChoice {
            summary: summary(&p),
            proposed: Some(&p.id) == proposed.as_ref(),
            id: p.id,
            name: p.name,
            description: p.description,
            pin: p.pin,
        })
        .collect()
}

/// The policy step of an issuance the operator may see: the choices for its holder.
pub async fn choices_for_job(
    svc: &Services,
    actor: &Actor,
    job: &crate::ids::JobId,
) -> Result<Vec<PolicyChoice>, CoreError> {
    actor.require(Permission::IssueDevice, "issue devices")?;
    let job = crate::issuance::job_for(svc, actor, job).await?;
    let user = svc.store.user(&job.user).await?;
    let settings = svc.store.settings().await?;
    Ok(choices(
        svc.store.policies().await?,
        &user,
        settings.default_policy.as_ref(),
        job.temporary_for.is_some(),
    ))
}

/// The names of the policies, by id, for pages that show a person's cards: a person reads
/// "PIV Standard", not `piv-standard`. An id no policy has any more is shown as it is.
pub async fn names(
    svc: &Services,
) -> Result<std::collections::BTreeMap<PolicyId, String>, CoreError> {
    Ok(svc
        .store
        .policies()
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn policy(id: &str, name: &str, algorithm: KeyAlgorithm) -> DevicePolicy {
        let profile = CertificateProfile {
            subject_template: "CN={{user.display_name}}".into(),
            key_usage: vec![],
            extended_key_usage: vec![],
            san_upn: false,
            san_email: false,
            san_card_uuid: false,
            validity_days: 1095,
            policy_oids: vec![],
            piv_interim: false,
            san_fasc_n: false,
        };
        DevicePolicy {
            id: PolicyId::new(id),
            name: name.into(),
            description: String::new(),
            pin: PinPolicy {
                min_length: 6,
                max_length: 8,
                retries: 3,
                ..Default::default()
            },
            puk: PukPolicy {
                length: 8,
                retries: 3,
            },
            slots: [Slot::PivAuthentication, Slot::DigitalSignature]
                .into_iter()
                .map(|slot| SlotPolicy {
                    slot,
                    algorithm,
                    profile: profile.clone(),
                })
                .collect(),
            write_chuid: true,
            write_ccc: true,
            write_printed_information: true,
            write_facial_image: false,
            write_fingerprints: false,
            require_fingerprints: false,
            write_security_object: false,
            card_validity_days: 1095,
            allowed_groups: vec![],
            activation_required: true,
            require_attestation: false,
            require_stock: false,
            two_person: vec![],
            default_for_groups: vec![],
        }
    }

    fn temporary() -> DevicePolicy {
        let mut p = policy("temp", "PIV Temporary", KeyAlgorithm::EccP256);
        p.card_validity_days = 1;
        for s in &mut p.slots {
            s.profile.validity_days = 1;
        }
        p
    }

    fn person(groups: &[&str]) -> User {
        User {
            uid: "jdoe".into(),
            given_name: "Jane".into(),
            family_name: "Doe".into(),
            display_name: "Jane Doe".into(),
            email: String::new(),
            upn: String::new(),
            employee_id: String::new(),
            department: String::new(),
            title: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            source: UserSource::Local,
            attributes: Default::default(),
            has_photo: false,
            disabled: false,
            photo_digest: None,
        }
    }

    /// The demo's shape: an attested policy, three everyday ones and a temporary one.
    fn demo() -> Vec<DevicePolicy> {
        let mut attested = policy("attested", "PIV Attested", KeyAlgorithm::EccP256);
        attested.require_attestation = true;
        vec![
            temporary(),
            attested,
            policy("standard", "PIV Standard", KeyAlgorithm::EccP256),
            policy("p384", "PIV High Assurance (P-384)", KeyAlgorithm::EccP384),
            policy("rsa", "PIV RSA 2048", KeyAlgorithm::Rsa2048),
        ]
    }

    fn ids(policies: &[DevicePolicy]) -> Vec<&str> {
        policies.iter().map(|p| p.id.as_str()).collect()
    }

    #[test]
    fn the_list_puts_the_persons_own_then_everyday_then_special_policies() {
        let mut security = policy("sec", "Security Officers", KeyAlgorithm::EccP384);
        security.allowed_groups = vec!["security".into()];
        let mut all = demo();
        all.push(security);
        let jane = person(&["staff"]);
        assert_eq!(
            ids(&for_user(all.clone(), &jane, false)),
            ["p384", "rsa", "standard", "attested", "temp"],
            "not allowed: sec; special and short-lived last"
        );
        let officer = person(&["security"]);
        assert_eq!(
            ids(&for_user(all.clone(), &officer, false)),
            ["sec", "p384", "rsa", "standard", "attested", "temp"]
        );
        assert_eq!(ids(&for_user(all, &jane, true))[0], "temp");
    }

    #[test]
    fn the_default_is_the_groups_then_the_configured_then_the_first() {
        let mut all = demo();
        all[2].default_for_groups = vec!["staff".into()];
        let offered = for_user(all, &person(&["staff"]), false);
        let configured = PolicyId::new("rsa");
        // The group's default beats the configured one.
        assert_eq!(
            default_for(&offered, &person(&["staff"]), Some(&configured), false),
            Some(PolicyId::new("standard"))
        );
        // No group default: the configured one.
        assert_eq!(
            default_for(&offered, &person(&["visitors"]), Some(&configured), false),
            Some(configured.clone())
        );
        // A configured default the person may not get, or none: the first of the list.
        let gone = PolicyId::new("retired");
        for c in [None, Some(&gone)] {
            assert_eq!(
                default_for(&offered, &person(&["visitors"]), c, false),
                Some(PolicyId::new("p384"))
            );
        }
        assert_eq!(
            default_for(&[], &person(&[]), Some(&configured), false),
            None
        );
    }

    #[test]
    fn groups_that_disagree_take_the_configured_default_else_the_first_listed() {
        let mut all = demo();
        all[2].default_for_groups = vec!["staff".into()]; // PIV Standard
        all[4].default_for_groups = vec!["engineers".into()]; // PIV RSA 2048
        let both = person(&["staff", "engineers"]);
        let offered = for_user(all, &both, false);
        // The list's order decides, not the order of the person's groups.
        assert_eq!(
            default_for(&offered, &both, None, false),
            Some(PolicyId::new("rsa"))
        );
        assert_eq!(
            default_for(&offered, &person(&["engineers", "staff"]), None, false),
            Some(PolicyId::new("rsa"))
        );
        // The configured default settles the tie when it is one of the groups' defaults...
        let standard = PolicyId::new("standard");
        assert_eq!(
            default_for(&offered, &both, Some(&standard), false),
            Some(standard)
        );
        // ...and only then.
        let p384 = PolicyId::new("p384");
        assert_eq!(
            default_for(&offered, &both, Some(&p384), false),
            Some(PolicyId::new("rsa"))
        );
    }

    #[test]
    fn a_temporary_card_is_proposed_a_short_lived_policy() {
        let mut all = demo();
        all[2].default_for_groups = vec!["staff".into()];
        let jane = person(&["staff"]);
        let offered = for_user(all.clone(), &jane, true);
        let standard = PolicyId::new("standard");
        assert_eq!(
            default_for(&offered, &jane, Some(&standard), true),
            Some(PolicyId::new("temp"))
        );
        // Without a short-lived policy, the usual rule.
        all.remove(0);
        let offered = for_user(all, &jane, true);
        assert_eq!(default_for(&offered, &jane, None, true), Some(standard));
    }

    #[test]
    fn the_summary_says_keys_slots_pin_and_validity() {
        let p = policy("standard", "PIV Standard", KeyAlgorithm::EccP256);
        assert_eq!(
            summary(&p),
            "ECC P-256 keys in slots 9A PIV Authentication and 9C Digital Signature. \
             PIN 6 to 8 digits, 3 tries; PUK 8 digits, 3 tries. Card valid 3 years."
        );
        let mut mixed = p.clone();
        mixed.slots[1].algorithm = KeyAlgorithm::Rsa2048;
        mixed.slots.push(SlotPolicy {
            slot: Slot::CardAuthentication,
            ..mixed.slots[0].clone()
        });
        mixed.pin.min_length = 8;
        mixed.require_attestation = true;
        mixed.require_stock = true;
        mixed.two_person = vec![crate::approvals::TwoPersonAction::Issue];
        mixed.activation_required = false;
        assert_eq!(
            summary(&mixed),
            "Keys in slots 9A PIV Authentication (ECC P-256), 9C Digital Signature (RSA 2048) \
             and 9E Card Authentication (ECC P-256). PIN 8 digits, 3 tries; PUK 8 digits, 3 \
             tries. Card valid 3 years. Every key attested by the card (YubiKey). Only cards in \
             stock. Issuance needs a second operator's approval. Active as soon as printed."
        );
        assert!(summary(&temporary()).contains("Card valid 1 day."));
        let mut one = p;
        one.slots.truncate(1);
        one.card_validity_days = 30;
        assert!(summary(&one).starts_with("ECC P-256 keys in slot 9A PIV Authentication."));
        assert!(summary(&one).ends_with("Card valid 30 days."));
    }
}

//! Device policies: list, and edit the PIN and PUK rules, the slots with their key algorithm,
//! subject template, alternative names and validity. Key usages follow the slot and algorithm
//! (the PIV profile), so a policy cannot ask for a certificate the PIV world would reject.

use super::{render, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use crate::wiring::ORGANISATION;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::collections::HashMap;
use tessera_core::approvals::TwoPersonAction;
use tessera_core::ids::PolicyId;
use tessera_core::model::*;
use tessera_core::{policies, CoreError};

pub struct PolicyRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub slots: String,
    pub pin: String,
    pub groups: String,
    /// The groups this policy is the default of, or empty.
    pub default_for: String,
    /// The actions under the two-person rule, or empty.
    pub two_person: String,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct ListPage {
    nav: Option<Nav>,
    policies: Vec<PolicyRow>,
    saved: bool,
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<SavedQuery>,
) -> Result<Response, WebError> {
    signed_in
        .actor()
        .require(Permission::ManagePolicies, "manage device policies")?;
    let policies = state
        .tessera
        .services
        .store
        .policies()
        .await
        .map_err(WebError::from_store)?
        .into_iter()
        .map(|p| PolicyRow {
            slots: p
                .slots
                .iter()
                .map(|s| format!("{} {}", s.slot.code().to_uppercase(), s.algorithm.label()))
                .collect::<Vec<_>>()
                .join(", "),
            pin: format!(
                "{}-{} digits, {} tries{}",
                p.pin.min_length,
                p.pin.max_length,
                p.pin.retries,
                if p.pin.refuse_weak {
                    ", weak PINs refused"
                } else {
                    ""
                }
            ),
            groups: if p.allowed_groups.is_empty() {
                "everyone".into()
            } else {
                p.allowed_groups.join(", ")
            },
            two_person: p
                .two_person
                .iter()
                .map(|a| a.label())
                .collect::<Vec<_>>()
                .join("; "),
            default_for: p.default_for_groups.join(", "),
            id: p.id.0,
            name: p.name,
            description: p.description,
        })
        .collect();
    render(&ListPage {
        nav: Nav::of(&signed_in),
        policies,
        saved: q.saved.is_some(),
    })
}

pub struct SlotRow {
    pub code: &'static str,
    pub label: &'static str,
    pub enabled: bool,
    pub algorithm: String,
    pub subject: String,
    pub san_upn: bool,
    pub san_email: bool,
    pub san_uuid: bool,
    pub validity: u32,
    /// The slot's certificate policy OIDs, space-separated (empty: the organisation's own).
    pub policy_oids: String,
}

#[derive(Template)]
#[template(path = "policy_edit.html")]
struct EditPage {
    nav: Option<Nav>,
    csrf: String,
    title: String,
    error: Option<String>,
    id: String,
    name: String,
    description: String,
    allowed_groups: String,
    default_for_groups: String,
    pin_min: u8,
    pin_max: u8,
    pin_retries: u8,
    pin_refuse_weak: bool,
    /// The policy's own refused PINs, one per line.
    pin_refused: String,
    puk_retries: u8,
    card_validity_days: u32,
    require_attestation: bool,
    require_stock: bool,
    write_facial_image: bool,
    write_fingerprints: bool,
    require_fingerprints: bool,
    write_security_object: bool,
    /// Each action of the two-person rule: its form value, its label and whether it is on.
    two_person: Vec<(&'static str, &'static str, bool)>,
    slots: Vec<SlotRow>,
    algorithms: Vec<(String, &'static str)>,
    /// The Federal Common Policy profile (FASC-N in the SAN of 9A and 9E) rather than PIV-I.
    federal_profile: bool,
}

/// The choices of the slot algorithm; a stored algorithm missing here would be saved back as
/// P-256 by the form.
const ALGORITHMS: [KeyAlgorithm; 4] = [
    KeyAlgorithm::EccP256,
    KeyAlgorithm::EccP384,
    KeyAlgorithm::Rsa2048,
    KeyAlgorithm::Rsa3072,
];

fn algorithm_code(a: KeyAlgorithm) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn page_of(signed_in: &SignedIn, p: &DevicePolicy, error: Option<String>) -> EditPage {
    let slots = Slot::ALL
        .into_iter()
        .map(|slot| {
            let configured = p.slots.iter().find(|s| s.slot == slot);
            let profile = configured.map(|s| s.profile.clone()).unwrap_or_else(|| {
                tessera_pki::piv_profile(slot, KeyAlgorithm::EccP256, ORGANISATION)
            });
            SlotRow {
                code: slot.code(),
                label: slot.label(),
                enabled: configured.is_some(),
                algorithm: algorithm_code(
                    configured.map_or(KeyAlgorithm::EccP256, |s| s.algorithm),
                ),
                subject: profile.subject_template,
                san_upn: profile.san_upn,
                san_email: profile.san_email,
                san_uuid: profile.san_card_uuid,
                validity: profile.validity_days,
                policy_oids: profile.policy_oids.join(" "),
            }
        })
        .collect();
    EditPage {
        nav: Nav::of(signed_in),
        csrf: signed_in.csrf.clone(),
        title: if p.id.as_str().is_empty() {
            "New device policy".into()
        } else {
            format!("Device policy {}", p.name)
        },
        error,
        id: p.id.0.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        allowed_groups: p.allowed_groups.join(", "),
        default_for_groups: p.default_for_groups.join(", "),
        pin_min: p.pin.min_length,
        pin_max: p.pin.max_length,
        pin_retries: p.pin.retries,
        pin_refuse_weak: p.pin.refuse_weak,
        pin_refused: p.pin.refused.join("\n"),
        puk_retries: p.puk.retries,
        card_validity_days: p.card_validity_days,
        require_attestation: p.require_attestation,
        require_stock: p.require_stock,
        write_facial_image: p.write_facial_image,
        write_fingerprints: p.write_fingerprints,
        require_fingerprints: p.require_fingerprints,
        write_security_object: p.write_security_object,
        two_person: TwoPersonAction::ALL
            .into_iter()
            .map(|a| (a.as_str(), a.label(), p.two_person.contains(&a)))
            .collect(),
        slots,
        algorithms: ALGORITHMS
            .into_iter()
            .map(|a| (algorithm_code(a), a.label()))
            .collect(),
        federal_profile: p.slots.iter().any(|s| s.profile.san_fasc_n),
    }
}

/// The slots whose certificates carry the FASC-N under the Federal Common Policy profile.
fn federal_fasc_n(slot: Slot) -> bool {
    matches!(slot, Slot::PivAuthentication | Slot::CardAuthentication)
}

pub async fn edit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    signed_in
        .actor()
        .require(Permission::ManagePolicies, "manage device policies")?;
    let policy = if id == "new" {
        let mut p = crate::demo::policies().remove(0);
        p.id = PolicyId::new("");
        p.name = String::new();
        p.description = String::new();
        p.default_for_groups = Vec::new();
        p
    } else {
        state
            .tessera
            .services
            .store
            .policies()
            .await
            .map_err(WebError::from_store)?
            .into_iter()
            .find(|p| p.id.as_str() == id)
            .ok_or_else(|| WebError::not_found("The device policy"))?
    };
    render(&page_of(&signed_in, &policy, None))
}

/// Reads the edit form; key usages come from the PIV profile of each slot and algorithm.
fn policy_of(form: &HashMap<String, String>, existing: Option<&DevicePolicy>) -> DevicePolicy {
    let text = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let number = |k: &str, default: u32| text(k).parse::<u32>().unwrap_or(default);
    let on = |k: &str| form.get(k).is_some_and(|v| v == "on");
    let groups = |k: &str| -> Vec<String> {
        text(k)
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let name = text("name");
    let id = match text("id") {
        id if !id.is_empty() => id,
        _ => tessera_core::layouts::slug(&name),
    };
    let slots = Slot::ALL
        .into_iter()
        .filter(|s| on(&format!("slot_{}", s.code())))
        .map(|slot| {
            let code = slot.code();
            let algorithm = ALGORITHMS
                .into_iter()
                .find(|a| algorithm_code(*a) == text(&format!("alg_{code}")))
                .unwrap_or(KeyAlgorithm::EccP256);
            let mut profile = tessera_pki::piv_profile(slot, algorithm, ORGANISATION);
            profile.subject_template = text(&format!("subject_{code}"));
            profile.san_upn = on(&format!("upn_{code}"));
            profile.san_email = on(&format!("email_{code}"));
            profile.san_card_uuid = on(&format!("uuid_{code}"));
            profile.validity_days = number(&format!("validity_{code}"), 0);
            profile.san_fasc_n = text("certificate_profile") == "federal" && federal_fasc_n(slot);
            profile.policy_oids = text(&format!("policies_{code}"))
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect();
            SlotPolicy {
                slot,
                algorithm,
                profile,
            }
        })
        .collect();
    let clamp = |v: u32| u8::try_from(v).unwrap_or(u8::MAX);
    DevicePolicy {
        id: PolicyId::new(id),
        name,
        description: text("description"),
        pin: PinPolicy {
            min_length: clamp(number("pin_min", 6)),
            max_length: clamp(number("pin_max", 8)),
            retries: clamp(number("pin_retries", 3)),
            refuse_weak: on("pin_refuse_weak"),
            refused: text("pin_refused")
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        },
        puk: PukPolicy {
            length: 8,
            retries: clamp(number("puk_retries", 3)),
        },
        slots,
        write_chuid: existing.is_none_or(|p| p.write_chuid),
        write_ccc: existing.is_none_or(|p| p.write_ccc),
        write_printed_information: existing.is_none_or(|p| p.write_printed_information),
        write_facial_image: on("write_facial_image"),
        write_fingerprints: on("write_fingerprints"),
        require_fingerprints: on("require_fingerprints"),
        write_security_object: on("write_security_object"),
        card_validity_days: number("card_validity_days", 1095),
        allowed_groups: groups("allowed_groups"),
        default_for_groups: groups("default_for_groups"),
        activation_required: existing.is_none_or(|p| p.activation_required),
        require_attestation: on("require_attestation"),
        require_stock: on("require_stock"),
        two_person: TwoPersonAction::ALL
            .into_iter()
            .filter(|a| on(&format!("two_person_{}", a.as_str())))
            .collect(),
    }
}

pub async fn save(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(form.get("csrf").map(String::as_str).unwrap_or(""))?;
    let svc = &state.tessera.services;
    let existing = svc
        .store
        .policies()
        .await
        .map_err(WebError::from_store)?
        .into_iter()
        .find(|p| form.get("id").is_some_and(|id| p.id.as_str() == id));
    let policy = policy_of(&form, existing.as_ref());
    match policies::save(svc, &signed_in.actor(), policy.clone()).await {
        Ok(()) => Ok(Redirect::to("/policies?saved=1").into_response()),
        Err(CoreError::Invalid(message)) => {
            let mut res = render(&page_of(&signed_in, &policy, Some(message)))?;
            *res.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(res)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_offers_every_demo_algorithm() {
        for policy in crate::demo::policies() {
            for slot in &policy.slots {
                assert!(ALGORITHMS.contains(&slot.algorithm), "{:?}", slot.algorithm);
            }
        }
    }
}

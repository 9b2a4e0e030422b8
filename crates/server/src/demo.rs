//! The demo content every first start creates, the same on every machine: about fifty users with
//! drawn portraits, the PIV Standard policy, the Corporate Badge layout, the station "This
//! workstation" with its simulated card printer, and the operator `admin`.

use crate::wiring::ORGANISATION;
use std::collections::BTreeMap;
use tessera_core::ids::*;
use tessera_core::model::*;

pub const STATION_ID: &str = "local";
pub const STATION_NAME: &str = "This workstation";
pub const PRINTER: &str = "Demo Card Printer";
pub const ENCODER: &str = "Demo Card Printer Encoder";
pub const POLICY_ID: &str = "piv-standard";

const GIVEN: [&str; 24] = [
    "Amelia", "Ben", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hiro", "Isla", "Jonas", "Kira",
    "Liam", "Maya", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera",
    "Wei", "Yara",
];
const FAMILY: [&str; 24] = [
    "Adams", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito", "Jensen",
    "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Petrov", "Quispe", "Rossi", "Suzuki",
    "Tanaka", "Ueda", "Varga", "Weber", "Zhang",
];
const DEPARTMENTS: [(&str, &[&str]); 6] = [
    (
        "Engineering",
        &[
            "Software Engineer",
            "Site Reliability Engineer",
            "Engineering Manager",
        ],
    ),
    (
        "Finance",
        &["Accountant", "Financial Analyst", "Controller"],
    ),
    ("Human Resources", &["HR Partner", "Recruiter"]),
    (
        "Security",
        &["Security Officer", "Badge Operator", "Security Analyst"],
    ),
    ("Sales", &["Account Executive", "Sales Engineer"]),
    (
        "Operations",
        &[
            "Facilities Manager",
            "Logistics Coordinator",
            "Operations Analyst",
        ],
    ),
];

/// A small deterministic generator so that the demo is the same everywhere (not for secrets).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

fn demo_user(uid: &str, given: &str, family: &str, department: &str, title: &str, n: u64) -> User {
    let mut attributes = BTreeMap::new();
    attributes.insert("location".to_owned(), "Headquarters".to_owned());
    User {
        uid: UserId::new(uid),
        given_name: given.into(),
        family_name: family.into(),
        display_name: format!("{given} {family}"),
        email: format!(
            "{}.{}@tessera.example",
            given.to_lowercase(),
            family.to_lowercase()
        ),
        upn: format!("{uid}@tessera.example"),
        employee_id: format!("{:06}", 100_000 + (n * 7_919) % 900_000),
        department: department.into(),
        title: title.into(),
        groups: vec!["staff".into(), department.to_lowercase().replace(' ', "-")],
        source: UserSource::Local,
        attributes,
        has_photo: true,
        disabled: false,
        photo_digest: None,
    }
}

/// The fifty demo users, Jane Doe first.
pub fn users() -> Vec<User> {
    let mut out = vec![demo_user(
        "jdoe",
        "Jane",
        "Doe",
        "Security",
        "Security Officer",
        1,
    )];
    let mut rng = SplitMix(0x7E55_E2A0);
    let mut taken = std::collections::BTreeSet::from(["jdoe".to_owned()]);
    while out.len() < 50 {
        let given = *rng.pick(&GIVEN);
        let family = *rng.pick(&FAMILY);
        let uid = format!("{}{}", &given[..1], family).to_lowercase();
        if !taken.insert(uid.clone()) {
            continue;
        }
        let (dept, titles) = rng.pick(&DEPARTMENTS);
        let title = *rng.pick(titles);
        let n = out.len() as u64 + 1;
        out.push(demo_user(&uid, given, family, dept, title, n));
    }
    out
}

/// A PIV policy with all four slots on one algorithm: PIN 6-8 digits, PUK 8 digits.
fn piv_policy(id: &str, name: &str, algorithm: KeyAlgorithm) -> DevicePolicy {
    let slots = Slot::ALL
        .into_iter()
        .map(|slot| SlotPolicy {
            slot,
            algorithm,
            profile: tessera_pki::piv_profile(slot, algorithm, ORGANISATION),
        })
        .collect();
    DevicePolicy {
        id: PolicyId::new(id),
        name: name.into(),
        description: format!(
            "PIV Authentication, Digital Signature, Key Management and Card Authentication \
             keys on {}",
            algorithm.label()
        ),
        pin: PinPolicy::default(),
        puk: PukPolicy {
            length: 8,
            retries: 3,
        },
        slots,
        write_chuid: true,
        write_ccc: true,
        write_printed_information: true,
        card_validity_days: 1095,
        allowed_groups: vec![],
        activation_required: true,
        require_attestation: false,
        require_stock: false,
        two_person: vec![],
        default_for_groups: vec![],
    }
}

/// The id of the demo's policy for temporary cards (a forgotten card's stand-in).
pub const TEMPORARY_POLICY_ID: &str = "piv-temporary";

/// PIV Standard for a day: the certificates and the card of a temporary replacement expire the
/// day after issuance, so a stand-in that is never handed back stops working on its own.
fn temporary_policy() -> DevicePolicy {
    let mut policy = piv_policy(TEMPORARY_POLICY_ID, "PIV Temporary", KeyAlgorithm::EccP256);
    for slot in &mut policy.slots {
        slot.profile.validity_days = 1;
    }
    policy.card_validity_days = 1;
    policy.description = "A temporary card for a holder who forgot theirs: PIV Standard keys, \
                          certificates valid for one day"
        .into();
    policy
}

/// The policies of the demo: PIV Standard (ECC P-256, the default), the same four slots on
/// ECC P-384, RSA 2048 and RSA 3072 for relying parties that ask for them, PIV Attested, and
/// PIV Temporary (one day) for the help desk's temporary cards.
pub fn policies() -> Vec<DevicePolicy> {
    vec![
        piv_policy(POLICY_ID, "PIV Standard", KeyAlgorithm::EccP256),
        piv_policy(
            "piv-p384",
            "PIV High Assurance (P-384)",
            KeyAlgorithm::EccP384,
        ),
        piv_policy("piv-rsa2048", "PIV RSA 2048", KeyAlgorithm::Rsa2048),
        piv_policy("piv-rsa3072", "PIV RSA 3072", KeyAlgorithm::Rsa3072),
        DevicePolicy {
            description: "PIV Standard, and every key attested by the card (YubiKey ATTEST) \
                          before it is certified"
                .into(),
            require_attestation: true,
            ..piv_policy("piv-attested", "PIV Attested", KeyAlgorithm::EccP256)
        },
        temporary_policy(),
    ]
}

pub fn demo_station() -> Station {
    Station {
        id: StationId::new(STATION_ID),
        name: STATION_NAME.into(),
        enabled: true,
        printers: vec![PrinterConfig {
            name: PRINTER.into(),
            kind: PrinterKind::Simulated,
            encoder_reader: Some(ENCODER.into()),
        }],
        access: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_distinct_users_with_jane_first() {
        let u = users();
        assert_eq!(u.len(), 50);
        assert_eq!(u[0].display_name, "Jane Doe");
        let uids: std::collections::BTreeSet<_> = u.iter().map(|x| x.uid.clone()).collect();
        assert_eq!(uids.len(), 50);
        assert_eq!(users(), u, "the same on every run");
    }
}

//! The demo content every first start creates, the same on every machine: about fifty users with
//! drawn portraits, the PIV Standard policy, the Corporate Badge layout, the station "This
//! workstation" with its simulated card printer, and the operator `admin`.

use crate::wiring::ORGANISATION;
use std::collections::BTreeMap;
use tessera_core::ids::*;
use tessera_core::model::*;
use tessera_print::portrait::{Gender, Sitter};

pub const STATION_ID: &str = "local";
pub const STATION_NAME: &str = "This workstation";
pub const PRINTER: &str = "Demo Card Printer";
pub const ENCODER: &str = "Demo Card Printer Encoder";
pub const POLICY_ID: &str = "piv-standard";

/// Given names and the gender each usually goes with: a demo user's drawn portrait follows it.
const GIVEN: [(&str, Gender); 24] = [
    ("Amelia", Gender::Female),
    ("Ben", Gender::Male),
    ("Chloe", Gender::Female),
    ("Daniel", Gender::Male),
    ("Elena", Gender::Female),
    ("Farid", Gender::Male),
    ("Grace", Gender::Female),
    ("Hiro", Gender::Male),
    ("Isla", Gender::Female),
    ("Jonas", Gender::Male),
    ("Kira", Gender::Female),
    ("Liam", Gender::Male),
    ("Maya", Gender::Female),
    ("Noah", Gender::Male),
    ("Olga", Gender::Female),
    ("Pedro", Gender::Male),
    // Quentin, not Quinn: a name that is given to both would leave the portrait a guess.
    ("Quentin", Gender::Male),
    ("Rosa", Gender::Female),
    ("Samir", Gender::Male),
    ("Tara", Gender::Female),
    ("Umar", Gender::Male),
    ("Vera", Gender::Female),
    ("Wei", Gender::Male),
    ("Yara", Gender::Female),
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

/// A demo user and the sitter of their drawn portrait.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoPerson {
    pub user: User,
    /// The portrait's gender is the usual one of the given name; its age is the person's.
    pub sitter: Sitter,
}

/// An age from 24 to 63 for the `n`th person, from a stream of its own so that the names and
/// departments drawn from the main stream stay what they have always been.
fn age_of(n: u64) -> u8 {
    24 + (SplitMix(0xA6E5_0000 ^ n).next() % 40) as u8
}

/// The fifty demo people, Jane Doe (41) first; each portrait is drawn from the seed `n`.
pub fn people() -> Vec<DemoPerson> {
    let mut out = vec![DemoPerson {
        user: demo_user("jdoe", "Jane", "Doe", "Security", "Security Officer", 1),
        sitter: Sitter {
            seed: 1,
            gender: Gender::Female,
            age: 41,
        },
    }];
    let mut rng = SplitMix(0x7E55_E2A0);
    let mut taken = std::collections::BTreeSet::from(["jdoe".to_owned()]);
    while out.len() < 50 {
        let (given, gender) = *rng.pick(&GIVEN);
        let family = *rng.pick(&FAMILY);
        let uid = format!("{}{}", &given[..1], family).to_lowercase();
        if !taken.insert(uid.clone()) {
            continue;
        }
        let (dept, titles) = rng.pick(&DEPARTMENTS);
        let title = *rng.pick(titles);
        let n = out.len() as u64 + 1;
        out.push(DemoPerson {
            user: demo_user(&uid, given, family, dept, title, n),
            sitter: Sitter {
                seed: n,
                gender,
                age: age_of(n),
            },
        });
    }
    out
}

/// The fifty demo users, Jane Doe first.
pub fn users() -> Vec<User> {
    people().into_iter().map(|p| p.user).collect()
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
        write_facial_image: true,
        write_fingerprints: true,
        require_fingerprints: false,
        write_security_object: true,
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

    /// Every portrait is of the gender the first name usually goes with and of a working age,
    /// and the drawing shows it: a woman's hair and no beard, or a man's hair and no lashes.
    #[test]
    fn portraits_match_the_people() {
        use tessera_print::portrait::Hair;
        let usual: std::collections::BTreeMap<&str, Gender> = GIVEN.into_iter().collect();
        let people = people();
        let mut ages = std::collections::BTreeSet::new();
        for p in &people {
            let expected = if p.user.given_name == "Jane" {
                Gender::Female
            } else {
                usual[p.user.given_name.as_str()]
            };
            assert_eq!(p.sitter.gender, expected, "{}", p.user.display_name);
            assert!((22..=65).contains(&p.sitter.age), "{}", p.user.display_name);
            ages.insert(p.sitter.age / 10);
            let f = p.sitter.features();
            match expected {
                Gender::Female => {
                    assert!(
                        Hair::FEMININE.contains(&f.hair) && !f.beard,
                        "{}",
                        p.user.uid
                    )
                }
                Gender::Male => {
                    assert!(
                        Hair::MASCULINE.contains(&f.hair) && !f.lashes,
                        "{}",
                        p.user.uid
                    )
                }
            }
        }
        assert!(ages.len() >= 4, "ages spread over the decades: {ages:?}");
        // Both genders are there, and no two people share a portrait.
        let seeds: std::collections::BTreeSet<_> = people.iter().map(|p| p.sitter.seed).collect();
        assert_eq!(seeds.len(), people.len());
        assert!(people.iter().any(|p| p.sitter.gender == Gender::Male));
    }
}

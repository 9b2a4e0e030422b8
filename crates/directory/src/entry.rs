//! Entries as the directory sends them, and the person each one gives. An entry Tessera cannot
//! take as a person (no uid, a value that is not text, an ambiguous uid) becomes a [`Rejected`]
//! with its DN and the reason: it is reported, and never makes the reading fail.

use crate::config::{Disabled, Groups, Settings};
use crate::error::DirectoryError;
use ldap3::asn1::StructureTag;
use std::collections::{BTreeMap, HashMap};
use tessera_core::ids::UserId;
use tessera_core::people::{Rejected, SourcePerson};

/// One entry: its DN and each attribute's values as bytes (text or binary, such as a photo).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    pub dn: String,
    pub attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl RawEntry {
    /// Reads a SearchResultEntry (RFC 4511 4.5.2) without the library's parser, which panics on
    /// what it cannot read.
    pub fn decode(tag: StructureTag) -> Result<Self, DirectoryError> {
        let malformed = |detail: &str| DirectoryError::Malformed {
            at: String::new(),
            detail: detail.to_owned(),
        };
        let mut parts = tag
            .match_id(4)
            .and_then(|t| t.expect_constructed())
            .ok_or_else(|| malformed("it is not a search result entry"))?
            .into_iter();
        let dn = parts
            .next()
            .and_then(|t| t.expect_primitive())
            .ok_or_else(|| malformed("it has no DN"))?;
        let dn = String::from_utf8(dn).map_err(|_| malformed("its DN is not UTF-8 text"))?;
        let at = format!(" ({dn})");
        let bad = |detail: &str| DirectoryError::Malformed {
            at: at.clone(),
            detail: detail.to_owned(),
        };
        let mut attrs = Vec::new();
        for attribute in parts
            .next()
            .and_then(|t| t.expect_constructed())
            .ok_or_else(|| bad("it has no attribute list"))?
        {
            let mut pair = attribute
                .expect_constructed()
                .ok_or_else(|| bad("an attribute is not a sequence"))?
                .into_iter();
            let name = pair
                .next()
                .and_then(|t| t.expect_primitive())
                .and_then(|n| String::from_utf8(n).ok())
                .ok_or_else(|| bad("an attribute has no name"))?;
            let values = pair
                .next()
                .and_then(|t| t.expect_constructed())
                .ok_or_else(|| bad(&format!("the attribute {name} has no values")))?
                .into_iter()
                .map(|v| v.expect_primitive())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(&format!("a value of {name} is not a string")))?;
            attrs.push((name, values));
        }
        Ok(Self { dn, attrs })
    }

    /// The values of `name` (compared without regard to case); none when the entry lacks it.
    pub fn values(&self, name: &str) -> &[Vec<u8>] {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    /// Whether the server sent only a range of `name`'s values (`member;range=0-1499`: Active
    /// Directory's answer for attributes with more values than it sends at once).
    pub fn ranged(&self, name: &str) -> bool {
        let prefix = format!("{};range=", name.to_ascii_lowercase());
        self.attrs
            .iter()
            .any(|(n, _)| n.to_ascii_lowercase().starts_with(&prefix))
    }
}

/// The groups of each person in `group_of_names` mode: normalized member DN -> group names.
pub type GroupIndex = HashMap<String, Vec<String>>;

/// Builds the [`GroupIndex`] from the group entries; a group's name is its DN's first RDN value.
pub fn group_index(
    groups: &[RawEntry],
    member_attribute: &str,
) -> Result<GroupIndex, DirectoryError> {
    let mut index = GroupIndex::new();
    for group in groups {
        if group.ranged(member_attribute) {
            return Err(DirectoryError::Malformed {
                at: format!(" ({})", group.dn),
                detail: format!(
                    "the group has more {member_attribute} values than the directory sends at \
                     once (range retrieval), which Tessera does not read: use groups = \
                     \"member_of\""
                ),
            });
        }
        let name =
            crate::dn::first_rdn_value(&group.dn).map_err(|e| DirectoryError::Malformed {
                at: format!(" ({})", group.dn),
                detail: e,
            })?;
        for member in group.values(member_attribute) {
            // A member value that is not a DN names no person: nobody gets the group from it.
            let Some(member) = std::str::from_utf8(member)
                .ok()
                .and_then(|m| crate::dn::normalize(m).ok())
            else {
                tracing::debug!(group = %group.dn, "a member value is not a DN");
                continue;
            };
            index.entry(member).or_default().push(name.clone());
        }
    }
    Ok(index)
}

/// The person an entry gives, or why it gives none.
pub fn person(
    entry: &RawEntry,
    settings: &Settings,
    groups: &GroupIndex,
) -> Result<SourcePerson, Rejected> {
    let m = &settings.mapping;
    let reject = |uid: Option<&str>, reason: String| Rejected {
        at: entry.dn.clone(),
        uid: uid.map(str::to_owned),
        reason,
    };
    let uid = uid_of(entry, &m.uid).map_err(|reason| reject(None, reason))?;
    let uid_ref = Some(uid.as_str());
    let field = |attribute: &Option<String>| -> Result<String, Rejected> {
        match attribute {
            None => Ok(String::new()),
            Some(name) => match entry.values(name).first() {
                None => Ok(String::new()),
                Some(v) => text(name, v)
                    .map(|t| t.trim().to_owned())
                    .map_err(|r| reject(uid_ref, r)),
            },
        }
    };
    let mut person = SourcePerson {
        uid: UserId::new(uid.clone()),
        given_name: field(&m.given_name)?,
        family_name: field(&m.family_name)?,
        display_name: field(&m.display_name)?,
        email: field(&m.email)?,
        upn: field(&m.upn)?,
        employee_id: field(&m.employee_id)?,
        department: field(&m.department)?,
        title: field(&m.title)?,
        origin: entry.dn.clone(),
        ..Default::default()
    };
    person.groups = match &settings.groups {
        Groups::None => Vec::new(),
        Groups::MemberOf { attribute } => {
            let mut names = Vec::new();
            for value in entry.values(attribute) {
                let dn = text(attribute, value).map_err(|r| reject(uid_ref, r))?;
                let name = crate::dn::first_rdn_value(&dn).map_err(|e| {
                    reject(
                        uid_ref,
                        format!("a group in {attribute} cannot be read: {e}"),
                    )
                })?;
                names.push(name);
            }
            names
        }
        Groups::GroupOfNames { .. } => {
            let key = crate::dn::normalize(&entry.dn)
                .map_err(|e| reject(uid_ref, format!("the entry's DN cannot be read: {e}")))?;
            groups.get(&key).cloned().unwrap_or_default()
        }
    };
    person.disabled = disabled(entry, &settings.disabled).map_err(|r| reject(uid_ref, r))?;
    if let Some(photo) = &m.photo {
        person.photo = entry
            .values(photo)
            .first()
            .filter(|p| !p.is_empty())
            .cloned();
    }
    let mut attributes = BTreeMap::new();
    for name in &settings.config.free_attributes {
        let values = entry
            .values(name)
            .iter()
            .map(|v| text(name, v))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|r| reject(uid_ref, r))?;
        if !values.is_empty() {
            attributes.insert(name.clone(), values.join("; "));
        }
    }
    person.attributes = attributes;
    Ok(person)
}

fn text(attribute: &str, value: &[u8]) -> Result<String, String> {
    String::from_utf8(value.to_vec())
        .map_err(|_| format!("the value of {attribute} is not text (UTF-8)"))
}

/// The uid: the attribute's one value, or among several the one the entry's RDN names.
fn uid_of(entry: &RawEntry, attribute: &str) -> Result<String, String> {
    let values = entry.values(attribute);
    let texts = values
        .iter()
        .map(|v| text(attribute, v).map(|t| t.trim().to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    match texts.as_slice() {
        [] => Err(format!("the entry has no {attribute} (the uid attribute)")),
        [one] if one.is_empty() => Err(format!("the entry's {attribute} is empty")),
        [one] => Ok(one.clone()),
        many => {
            let in_rdn = crate::dn::parse(&entry.dn)
                .ok()
                .and_then(|rdns| rdns.into_iter().next())
                .and_then(|rdn| {
                    rdn.into_iter()
                        .find(|a| a.attr.eq_ignore_ascii_case(attribute))
                })
                .map(|a| a.value);
            match in_rdn {
                Some(v) if many.contains(&v) => Ok(v),
                _ => Err(format!(
                    "the entry has {} values of {attribute} ({}), and its DN does not say which \
                     is the uid",
                    many.len(),
                    many.join(", ")
                )),
            }
        }
    }
}

/// Whether the entry is a disabled account.
fn disabled(entry: &RawEntry, rule: &Disabled) -> Result<bool, String> {
    match rule {
        Disabled::Never => Ok(false),
        Disabled::UserAccountControl => {
            let Some(value) = entry.values("userAccountControl").first() else {
                return Ok(false);
            };
            let text = text("userAccountControl", value)?;
            // A 32-bit set of flags, which some servers write as a signed number.
            let flags: i64 = text
                .trim()
                .parse()
                .map_err(|_| format!("userAccountControl {text:?} is not a number"))?;
            // ACCOUNTDISABLE
            Ok(flags & 0x2 != 0)
        }
        Disabled::Attribute { name, value: None } => Ok(!entry.values(name).is_empty()),
        Disabled::Attribute {
            name,
            value: Some(wanted),
        } => Ok(entry.values(name).iter().any(|v| {
            std::str::from_utf8(v).is_ok_and(|v| v.trim().eq_ignore_ascii_case(wanted.trim()))
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DirectoryConfig, GroupMode, Preset};

    fn settings(preset: Preset, groups: GroupMode) -> Settings {
        DirectoryConfig {
            url: "ldap://127.0.0.1".into(),
            start_tls: false,
            ca_file: None,
            bind_dn: None,
            bind_password_file: None,
            base_dn: "dc=example,dc=org".into(),
            preset,
            filter: None,
            page_size: 100,
            timeout_secs: 5,
            max_entries: 10,
            sync_interval_minutes: 0,
            groups: Some(groups),
            group_base_dn: None,
            group_filter: None,
            group_member_attribute: None,
            disabled_attribute: None,
            disabled_value: None,
            free_attributes: vec!["telephoneNumber".into()],
            mapping: Default::default(),
            ignore_referrals: false,
            allow_plain_bind: false,
        }
        .resolve()
        .unwrap()
    }

    fn entry(dn: &str, attrs: &[(&str, &[&[u8]])]) -> RawEntry {
        RawEntry {
            dn: dn.into(),
            attrs: attrs
                .iter()
                .map(|(n, vs)| (n.to_string(), vs.iter().map(|v| v.to_vec()).collect()))
                .collect(),
        }
    }

    #[test]
    fn an_active_directory_account() {
        let s = settings(Preset::ActiveDirectory, GroupMode::MemberOf);
        let e = entry(
            "CN=Jane Doe,OU=Staff,DC=corp",
            &[
                ("sAMAccountName", &[b"jdoe"]),
                ("givenName", &[b"Jane"]),
                ("sn", &[b"Doe"]),
                ("userPrincipalName", &[b"jdoe@corp.example.org"]),
                ("employeeID", &[b"E-1001"]),
                (
                    "memberOf",
                    &[b"CN=Finance,OU=Groups,DC=corp", b"CN=Smith\\, Team,DC=corp"],
                ),
                ("userAccountControl", &[b"514"]),
                ("thumbnailPhoto", &[&[0xff, 0xd8, 0xff, 0xe0]]),
                ("telephoneNumber", &[b"+1 555 0100", b"+1 555 0101"]),
            ],
        );
        let p = person(&e, &s, &GroupIndex::new()).unwrap();
        assert_eq!(p.uid.as_str(), "jdoe");
        assert_eq!(p.upn, "jdoe@corp.example.org");
        assert_eq!(p.employee_id, "E-1001");
        assert_eq!(p.groups, vec!["Finance", "Smith, Team"]);
        assert!(p.disabled, "514 = 512 | ACCOUNTDISABLE");
        assert_eq!(p.photo.as_deref(), Some(&[0xff, 0xd8, 0xff, 0xe0][..]));
        assert_eq!(p.attributes["telephoneNumber"], "+1 555 0100; +1 555 0101");
        assert_eq!(p.origin, "CN=Jane Doe,OU=Staff,DC=corp");
        let enabled = entry(
            "CN=x,DC=corp",
            &[
                ("sAMAccountName", &[b"x"]),
                ("userAccountControl", &[b"512"]),
            ],
        );
        assert!(!person(&enabled, &s, &GroupIndex::new()).unwrap().disabled);
    }

    #[test]
    fn groups_of_names_by_member_dn() {
        let s = settings(Preset::Openldap, GroupMode::GroupOfNames);
        let groups = vec![
            entry(
                "cn=Engineering,ou=groups,dc=example,dc=org",
                &[(
                    "member",
                    &[b"uid=JDoe, ou=People,dc=example,dc=org", b"uid=other,dc=x"],
                )],
            ),
            entry(
                "cn=staff,ou=groups,dc=example,dc=org",
                &[("member", &[b"uid=jdoe,ou=people,dc=example,dc=org"])],
            ),
        ];
        let index = group_index(&groups, "member").unwrap();
        let e = entry(
            "uid=jdoe,ou=people,dc=example,dc=org",
            &[("uid", &[b"jdoe"]), ("cn", &[b"Jane Doe"])],
        );
        let p = person(&e, &s, &index).unwrap();
        assert_eq!(p.groups, vec!["Engineering", "staff"]);
        let ranged = vec![entry(
            "cn=big,dc=x",
            &[("member;range=0-1499", &[b"uid=a,dc=x"])],
        )];
        let err = group_index(&ranged, "member").unwrap_err().to_string();
        assert!(err.contains("member_of"), "{err}");
    }

    #[test]
    fn entries_that_are_not_people_are_rejected_with_their_dn() {
        let s = settings(Preset::Openldap, GroupMode::None);
        let index = GroupIndex::new();
        let no_uid = entry("cn=printer,dc=example,dc=org", &[("cn", &[b"printer"])]);
        let r = person(&no_uid, &s, &index).unwrap_err();
        assert_eq!(r.at, "cn=printer,dc=example,dc=org");
        assert_eq!(r.uid, None);
        assert!(r.reason.contains("no uid"), "{}", r.reason);

        let binary_name = entry(
            "uid=b,dc=example,dc=org",
            &[("uid", &[b"b"]), ("givenName", &[&[0xff, 0xfe]])],
        );
        let r = person(&binary_name, &s, &index).unwrap_err();
        assert_eq!(r.uid.as_deref(), Some("b"));
        assert!(r.reason.contains("givenName"), "{}", r.reason);

        // Two uids: the one the DN names is the uid; without it, the entry is ambiguous.
        let two = entry(
            "uid=jdoe,dc=example,dc=org",
            &[("uid", &[b"john.doe", b"jdoe"])],
        );
        assert_eq!(person(&two, &s, &index).unwrap().uid.as_str(), "jdoe");
        let ambiguous = entry(
            "cn=John,dc=example,dc=org",
            &[("uid", &[b"john.doe", b"jdoe"])],
        );
        assert!(person(&ambiguous, &s, &index)
            .unwrap_err()
            .reason
            .contains("2 values"));
    }

    #[test]
    fn a_disabled_marker_attribute() {
        let mut config = settings(Preset::Openldap, GroupMode::None).config;
        config.disabled_attribute = Some("employeeType".into());
        config.disabled_value = Some("Disabled".into());
        let s = config.resolve().unwrap();
        let e = |t: &[u8]| {
            entry(
                "uid=a,dc=x",
                &[("uid", &[b"a"]), ("employeeType", &[b"staff", t])],
            )
        };
        let index = GroupIndex::new();
        assert!(person(&e(b"disabled"), &s, &index).unwrap().disabled);
        assert!(!person(&e(b"contractor"), &s, &index).unwrap().disabled);
        config.disabled_attribute = Some("pwdAccountLockedTime".into());
        config.disabled_value = None;
        let s = config.resolve().unwrap();
        let locked = entry(
            "uid=a,dc=x",
            &[
                ("uid", &[b"a"]),
                ("pwdAccountLockedTime", &[b"000001010000Z"]),
            ],
        );
        assert!(person(&locked, &s, &index).unwrap().disabled);
        let open = entry("uid=a,dc=x", &[("uid", &[b"a"])]);
        assert!(!person(&open, &s, &index).unwrap().disabled);
    }
}

//! The `[directory]` section of Tessera's configuration, and what it resolves to: a preset
//! (`openldap` or `active_directory`) gives the filter, the attribute of each field, how groups
//! are found and how a disabled account shows; each can be overridden. The bind password is never
//! in the file: `bind_password_file` names a file that holds it.
//!
//! ```toml
//! [directory]
//! url = "ldaps://dc1.corp.example.org:636"
//! ca_file = "/etc/tessera/corp-ca.pem"
//! bind_dn = "CN=svc-tessera,OU=Service Accounts,DC=corp,DC=example,DC=org"
//! bind_password_file = "/run/secrets/tessera-ldap"
//! base_dn = "OU=Staff,DC=corp,DC=example,DC=org"
//! preset = "active_directory"
//! sync_interval_minutes = 60
//!
//! [directory.mapping]
//! employee_id = "employeeNumber"
//! ```

use crate::error::DirectoryError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

fn default_page_size() -> u32 {
    500
}
fn default_timeout_secs() -> u64 {
    30
}
fn default_max_entries() -> usize {
    2_000_000
}

/// The `[directory]` section as written.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    #[serde(default)]
    pub start_tls: bool,
    /// PEM file of the CA(s) that issued the directory's certificate; without it, the Mozilla
    /// roots.
    pub ca_file: Option<PathBuf>,
    /// The account Tessera binds as; anonymous without it.
    pub bind_dn: Option<String>,
    /// A file whose first line is the bind password.
    pub bind_password_file: Option<PathBuf>,
    /// Where the people are searched (subtree).
    pub base_dn: String,
    #[serde(default)]
    pub preset: Preset,
    /// The people's search filter; the preset's by default.
    pub filter: Option<String>,
    /// Entries per page of the Simple Paged Results control (RFC 2696).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// How long connecting (TLS included) and each operation may take.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// A search that finds more entries than this fails rather than read without end.
    #[serde(default = "default_max_entries")]
    pub max_entries: usize,
    /// 0: only on demand (the portal's Sync now, `tessera directory sync`).
    #[serde(default)]
    pub sync_interval_minutes: u64,
    /// How groups are found; the preset's by default.
    pub groups: Option<GroupMode>,
    /// Where `group_of_names` searches groups; `base_dn` by default.
    pub group_base_dn: Option<String>,
    /// `(objectClass=groupOfNames)` by default.
    pub group_filter: Option<String>,
    /// The attribute listing a group's members' DNs: `member` by default.
    pub group_member_attribute: Option<String>,
    /// An attribute that marks a disabled account (OpenLDAP): with `disabled_value`, when one
    /// of its values is that (case-insensitive); without, when the entry has it at all (such as
    /// `pwdAccountLockedTime`). Active Directory uses `userAccountControl` unless this is set.
    pub disabled_attribute: Option<String>,
    pub disabled_value: Option<String>,
    /// Further attributes kept with each person (their free attributes).
    #[serde(default)]
    pub free_attributes: Vec<String>,
    /// Field -> attribute overrides of the preset; `""` reads nothing for that field.
    #[serde(default)]
    pub mapping: MappingOverrides,
    /// Continue when the server refers part of the search elsewhere. Off: such a reading is
    /// incomplete, and the sync fails.
    #[serde(default)]
    pub ignore_referrals: bool,
    /// Send the bind password over plain (unencrypted) LDAP to a host other than this machine.
    /// Off: such a configuration is refused, since anyone on the path reads the password.
    #[serde(default)]
    pub allow_plain_bind: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    #[default]
    Openldap,
    ActiveDirectory,
}

impl Preset {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openldap => "openldap",
            Self::ActiveDirectory => "active_directory",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupMode {
    /// The person's `memberOf` values; a group's name is its DN's first RDN value.
    MemberOf,
    /// Groups searched under `group_base_dn`, their `member` DNs matched with the people's.
    GroupOfNames,
    /// No groups.
    None,
}

impl GroupMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MemberOf => "member_of",
            Self::GroupOfNames => "group_of_names",
            Self::None => "none",
        }
    }
}

/// `[directory.mapping]`: the attribute each field is read from, when not the preset's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MappingOverrides {
    pub uid: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub upn: Option<String>,
    pub employee_id: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub photo: Option<String>,
    /// The attribute holding group DNs in `member_of` mode.
    pub member_of: Option<String>,
}

/// The attribute of each field (None: not read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub uid: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub upn: Option<String>,
    pub employee_id: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub photo: Option<String>,
}

/// How groups are found, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Groups {
    None,
    MemberOf {
        attribute: String,
    },
    GroupOfNames {
        base: String,
        filter: String,
        member_attribute: String,
    },
}

/// How a disabled account shows, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disabled {
    /// Never: everyone the filter selects is enabled.
    Never,
    /// Active Directory: bit 0x2 (ACCOUNTDISABLE) of `userAccountControl`.
    UserAccountControl,
    /// An attribute with a value (case-insensitive), or present at all.
    Attribute { name: String, value: Option<String> },
}

/// A configuration checked and resolved against its preset.
#[derive(Clone, Debug)]
pub struct Settings {
    pub config: DirectoryConfig,
    pub url: url::Url,
    pub filter: String,
    pub mapping: Mapping,
    pub groups: Groups,
    pub disabled: Disabled,
}

impl Settings {
    pub fn uses_tls(&self) -> bool {
        self.url.scheme() == "ldaps" || self.config.start_tls
    }

    /// Whether the directory runs on this machine (nothing crosses a network).
    pub fn is_loopback(&self) -> bool {
        match self.url.host() {
            // `ldap:` is not a scheme the URL standard knows, so its hosts, addresses too,
            // come as names.
            Some(url::Host::Domain(name)) => {
                name.eq_ignore_ascii_case("localhost")
                    || name
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }

    /// `ldaps://dc1.example.org:636` without anything else the URL might carry.
    pub fn server(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port() {
            Some(port) => format!("{}://{host}:{port}", self.url.scheme()),
            None => format!("{}://{host}", self.url.scheme()),
        }
    }

    /// Every attribute the people's search asks for.
    pub fn person_attributes(&self) -> Vec<String> {
        let m = &self.mapping;
        let mut attrs: Vec<String> = [
            Some(&m.uid),
            m.given_name.as_ref(),
            m.family_name.as_ref(),
            m.display_name.as_ref(),
            m.email.as_ref(),
            m.upn.as_ref(),
            m.employee_id.as_ref(),
            m.department.as_ref(),
            m.title.as_ref(),
            m.photo.as_ref(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        if let Groups::MemberOf { attribute } = &self.groups {
            attrs.push(attribute.clone());
        }
        match &self.disabled {
            Disabled::Never => {}
            Disabled::UserAccountControl => attrs.push("userAccountControl".into()),
            Disabled::Attribute { name, .. } => attrs.push(name.clone()),
        }
        attrs.extend(self.config.free_attributes.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        attrs.retain(|a| seen.insert(a.to_lowercase()));
        attrs
    }
}

/// An attribute name as LDAP allows it (a descriptor or an OID), so a typo is caught at start.
fn check_attribute(field: &str, name: &str) -> Result<(), DirectoryError> {
    let descriptor = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_digit() || c == '.');
    if descriptor || oid {
        Ok(())
    } else {
        Err(DirectoryError::config(format!(
            "{field} = {name:?} is not an LDAP attribute name"
        )))
    }
}

fn check_filter(key: &str, filter: &str) -> Result<(), DirectoryError> {
    ldap3::parse_filter(filter).map(|_| ()).map_err(|_| {
        DirectoryError::config(format!(
            "{key} = {filter:?} is not an LDAP filter (RFC 4515), such as (objectClass=inetOrgPerson)"
        ))
    })
}

fn check_dn(key: &str, dn: &str) -> Result<(), DirectoryError> {
    match crate::dn::parse(dn) {
        Ok(rdns) if !rdns.is_empty() => Ok(()),
        Ok(_) => Err(DirectoryError::config(format!("{key} is empty"))),
        Err(e) => Err(DirectoryError::config(format!("{key}: {e}"))),
    }
}

impl DirectoryConfig {
    /// Checks the configuration and resolves it against its preset. The bind password file is
    /// checked separately, when it is read.
    pub fn resolve(&self) -> Result<Settings, DirectoryError> {
        let url = url::Url::parse(&self.url).map_err(|e| {
            DirectoryError::config(format!(
                "url = {:?} is not a URL ({e}): write ldap://host:389 or ldaps://host:636",
                self.url
            ))
        })?;
        match url.scheme() {
            "ldap" | "ldaps" => {}
            other => {
                return Err(DirectoryError::config(format!(
                    "url must start with ldap:// or ldaps://, not {other}://"
                )))
            }
        }
        if url.host_str().unwrap_or_default().is_empty() {
            return Err(DirectoryError::config(format!(
                "url = {:?} names no server",
                self.url
            )));
        }
        if url.scheme() == "ldaps" && self.start_tls {
            return Err(DirectoryError::config(
                "start_tls is for ldap:// URLs: an ldaps:// connection is TLS from the start",
            ));
        }
        check_dn("base_dn", &self.base_dn)?;
        if let Some(dn) = &self.bind_dn {
            check_dn("bind_dn", dn)?;
            if self.bind_password_file.is_none() {
                return Err(DirectoryError::config(
                    "bind_dn needs bind_password_file, a file holding the password",
                ));
            }
        } else if self.bind_password_file.is_some() {
            return Err(DirectoryError::config(
                "bind_password_file is set but bind_dn is not",
            ));
        }
        if !(1..=100_000).contains(&self.page_size) {
            return Err(DirectoryError::config(
                "page_size must be between 1 and 100000",
            ));
        }
        if !(1..=3600).contains(&self.timeout_secs) {
            return Err(DirectoryError::config(
                "timeout_secs must be between 1 and 3600",
            ));
        }
        if self.max_entries == 0 {
            return Err(DirectoryError::config("max_entries must be at least 1"));
        }
        let ad = self.preset == Preset::ActiveDirectory;
        let filter = self.filter.clone().unwrap_or_else(|| {
            if ad {
                "(&(objectCategory=person)(objectClass=user))".into()
            } else {
                "(objectClass=inetOrgPerson)".into()
            }
        });
        check_filter("filter", &filter)?;
        let mapping = self.mapping(ad)?;
        let groups = match self.groups.unwrap_or(if ad {
            GroupMode::MemberOf
        } else {
            GroupMode::GroupOfNames
        }) {
            GroupMode::None => Groups::None,
            GroupMode::MemberOf => {
                let attribute = self
                    .mapping
                    .member_of
                    .clone()
                    .unwrap_or_else(|| "memberOf".into());
                check_attribute("mapping.member_of", &attribute)?;
                Groups::MemberOf { attribute }
            }
            GroupMode::GroupOfNames => {
                let base = self
                    .group_base_dn
                    .clone()
                    .unwrap_or_else(|| self.base_dn.clone());
                check_dn("group_base_dn", &base)?;
                let filter = self
                    .group_filter
                    .clone()
                    .unwrap_or_else(|| "(objectClass=groupOfNames)".into());
                check_filter("group_filter", &filter)?;
                let member_attribute = self
                    .group_member_attribute
                    .clone()
                    .unwrap_or_else(|| "member".into());
                check_attribute("group_member_attribute", &member_attribute)?;
                Groups::GroupOfNames {
                    base,
                    filter,
                    member_attribute,
                }
            }
        };
        let disabled = match (&self.disabled_attribute, ad) {
            (Some(name), _) => {
                check_attribute("disabled_attribute", name)?;
                Disabled::Attribute {
                    name: name.clone(),
                    value: self.disabled_value.clone().filter(|v| !v.is_empty()),
                }
            }
            (None, true) => Disabled::UserAccountControl,
            (None, false) => Disabled::Never,
        };
        if self.disabled_value.is_some() && self.disabled_attribute.is_none() {
            return Err(DirectoryError::config(
                "disabled_value needs disabled_attribute",
            ));
        }
        for name in &self.free_attributes {
            check_attribute("free_attributes", name)?;
        }
        Ok(Settings {
            config: self.clone(),
            url,
            filter,
            mapping,
            groups,
            disabled,
        })
    }

    fn mapping(&self, ad: bool) -> Result<Mapping, DirectoryError> {
        let o = &self.mapping;
        // The override when there is one ("" for none), else the preset's attribute.
        let pick = |field: &str,
                    over: &Option<String>,
                    openldap: Option<&str>,
                    active_directory: Option<&str>|
         -> Result<Option<String>, DirectoryError> {
            let chosen = match over {
                Some(name) => Some(name.trim().to_owned()).filter(|n| !n.is_empty()),
                None => if ad { active_directory } else { openldap }.map(str::to_owned),
            };
            if let Some(name) = &chosen {
                check_attribute(&format!("mapping.{field}"), name)?;
            }
            Ok(chosen)
        };
        let uid = pick("uid", &o.uid, Some("uid"), Some("sAMAccountName"))?
            .ok_or_else(|| DirectoryError::config("mapping.uid cannot be empty"))?;
        Ok(Mapping {
            uid,
            given_name: pick(
                "given_name",
                &o.given_name,
                Some("givenName"),
                Some("givenName"),
            )?,
            family_name: pick("family_name", &o.family_name, Some("sn"), Some("sn"))?,
            display_name: pick(
                "display_name",
                &o.display_name,
                Some("displayName"),
                Some("displayName"),
            )?,
            email: pick("email", &o.email, Some("mail"), Some("mail"))?,
            upn: pick("upn", &o.upn, None, Some("userPrincipalName"))?,
            employee_id: pick(
                "employee_id",
                &o.employee_id,
                Some("employeeNumber"),
                Some("employeeID"),
            )?,
            department: pick(
                "department",
                &o.department,
                Some("departmentNumber"),
                Some("department"),
            )?,
            title: pick("title", &o.title, Some("title"), Some("title"))?,
            photo: pick("photo", &o.photo, Some("jpegPhoto"), Some("thumbnailPhoto"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> DirectoryConfig {
        #[derive(Deserialize)]
        struct File {
            directory: DirectoryConfig,
        }
        toml::from_str::<File>(text).unwrap().directory
    }

    #[test]
    fn openldap_defaults() {
        let s = parse(
            "[directory]\nurl = \"ldap://127.0.0.1:3389\"\nstart_tls = true\n\
             base_dn = \"ou=people,dc=example,dc=org\"\n",
        )
        .resolve()
        .unwrap();
        assert_eq!(s.filter, "(objectClass=inetOrgPerson)");
        assert_eq!(s.mapping.uid, "uid");
        assert_eq!(s.mapping.photo.as_deref(), Some("jpegPhoto"));
        assert_eq!(s.mapping.upn, None);
        assert_eq!(s.disabled, Disabled::Never);
        assert_eq!(
            s.groups,
            Groups::GroupOfNames {
                base: "ou=people,dc=example,dc=org".into(),
                filter: "(objectClass=groupOfNames)".into(),
                member_attribute: "member".into()
            }
        );
        assert_eq!(s.config.page_size, 500);
        assert_eq!(s.config.max_entries, 2_000_000);
        assert!(s.uses_tls());
        assert_eq!(s.server(), "ldap://127.0.0.1:3389");
    }

    #[test]
    fn active_directory_defaults_and_overrides() {
        let s = parse(
            "[directory]\nurl = \"ldaps://dc1.corp.example.org\"\n\
             base_dn = \"OU=Staff,DC=corp,DC=example,DC=org\"\npreset = \"active_directory\"\n\
             bind_dn = \"CN=svc,DC=corp\"\nbind_password_file = \"/run/secrets/ldap\"\n\
             free_attributes = [\"telephoneNumber\"]\n\
             [directory.mapping]\nemployee_id = \"employeeNumber\"\nphoto = \"\"\n",
        )
        .resolve()
        .unwrap();
        assert_eq!(s.filter, "(&(objectCategory=person)(objectClass=user))");
        assert_eq!(s.mapping.uid, "sAMAccountName");
        assert_eq!(s.mapping.upn.as_deref(), Some("userPrincipalName"));
        assert_eq!(s.mapping.employee_id.as_deref(), Some("employeeNumber"));
        assert_eq!(s.mapping.photo, None);
        assert_eq!(s.disabled, Disabled::UserAccountControl);
        assert_eq!(
            s.groups,
            Groups::MemberOf {
                attribute: "memberOf".into()
            }
        );
        let attrs = s.person_attributes();
        for a in [
            "sAMAccountName",
            "memberOf",
            "userAccountControl",
            "telephoneNumber",
        ] {
            assert!(attrs.iter().any(|x| x == a), "{a} in {attrs:?}");
        }
        assert!(!attrs.iter().any(|x| x == "thumbnailPhoto"));
    }

    #[test]
    fn mistakes_are_refused_with_the_key_named() {
        let base = "[directory]\nbase_dn = \"dc=example,dc=org\"\n";
        let err = |extra: &str| {
            let text = format!("{base}{extra}");
            parse(&text).resolve().unwrap_err().to_string()
        };
        assert!(err("url = \"http://x\"\n").contains("ldap://"));
        assert!(err("url = \"ldaps://x\"\nstart_tls = true\n").contains("start_tls"));
        assert!(err("url = \"ldap://x\"\nbind_dn = \"cn=a,dc=b\"\n").contains("bind_password_file"));
        assert!(err("url = \"ldap://x\"\nfilter = \"(&(objectClass=*)\"\n").contains("filter"));
        assert!(err("url = \"ldap://x\"\npage_size = 0\n").contains("page_size"));
        assert!(err("url = \"ldap://x\"\n[directory.mapping]\nuid = \"\"\n").contains("uid"));
        assert!(
            err("url = \"ldap://x\"\n[directory.mapping]\ntitle = \"ti tle\"\n")
                .contains("mapping.title")
        );
        assert!(
            err("url = \"ldap://x\"\ndisabled_value = \"yes\"\n").contains("disabled_attribute")
        );
        // An unknown key is refused by the TOML reader itself.
        let typo = format!("{base}url = \"ldap://x\"\nbind_password = \"secret\"\n");
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct File {
            directory: DirectoryConfig,
        }
        let e = toml::from_str::<File>(&typo).unwrap_err().to_string();
        assert!(e.contains("bind_password"), "{e}");
    }
}

//! Tessera's directory adapter: it reads people, their groups and photos from an LDAP directory
//! (OpenLDAP, Active Directory) and gives the core a [`SourceReading`] through the
//! [`Directory`] port. A reading is the whole selection or an error: the core disables the
//! people a complete reading no longer lists, so an unreachable server, a refused bind, an
//! untrusted certificate, a referral or a search over the size guard fails the reading rather
//! than return part of it. An entry that cannot be a person (no uid, a value that is not text)
//! is only rejected, with its DN. Searches page with the Simple Paged Results control (Active
//! Directory answers at most 1000 entries otherwise); TLS is rustls (`ldaps://` or StartTLS),
//! the server's certificate checked against a CA file; referrals are reported, never followed.

mod config;
pub mod dn;
mod entry;
mod error;
mod session;
mod tls;

pub use config::{
    DirectoryConfig, Disabled, GroupMode, Groups, Mapping, MappingOverrides, Preset, Settings,
};
pub use error::DirectoryError;

use async_trait::async_trait;
use session::{Budget, Session};
use std::sync::Arc;
use std::time::Duration;
use tessera_core::model::UserSource;
use tessera_core::people::SourceReading;
use tessera_core::ports::{Directory, PortError};
use tokio_rustls::rustls::ClientConfig;
use zeroize::Zeroizing;

/// A directory over LDAP, as the configuration describes it.
pub struct LdapDirectory {
    settings: Settings,
    tls: Arc<ClientConfig>,
}

impl std::fmt::Debug for LdapDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapDirectory")
            .field("url", &self.settings.server())
            .field("base_dn", &self.settings.config.base_dn)
            .finish_non_exhaustive()
    }
}

impl LdapDirectory {
    /// Checks the configuration, its CA file and its bind password file (which is read again
    /// at every sync, so a changed password needs no restart).
    pub fn new(config: DirectoryConfig) -> Result<Self, DirectoryError> {
        let settings = config.resolve()?;
        let tls = tls::client_config(settings.config.ca_file.as_deref())?;
        if settings.config.ca_file.is_some() && !settings.uses_tls() {
            tracing::warn!(
                "directory: ca_file is set but the connection is plain LDAP (use ldaps:// or start_tls = true)"
            );
        }
        let directory = Self { settings, tls };
        let plain = directory.password()?.is_some() && !directory.settings.uses_tls();
        if plain && !directory.settings.is_loopback() && !directory.settings.config.allow_plain_bind
        {
            return Err(DirectoryError::Config(format!(
                "the bind password would travel unencrypted to {}: use ldaps:// or start_tls = true (or, knowing anyone on the way can read it, allow_plain_bind = true)",
                directory.settings.server()
            )));
        }
        if plain {
            tracing::warn!(
                url = %directory.settings.server(),
                "directory: the bind password travels unencrypted: use ldaps:// or start_tls = true"
            );
        }
        Ok(directory)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// How often `serve` syncs; None: only on demand.
    pub fn sync_interval(&self) -> Option<Duration> {
        match self.settings.config.sync_interval_minutes {
            0 => None,
            minutes => Some(Duration::from_secs(minutes.saturating_mul(60))),
        }
    }

    /// The configuration for people to read (the portal's Directory page): never the password.
    pub fn overview(&self) -> Vec<(&'static str, String)> {
        let s = &self.settings;
        let c = &s.config;
        let security = if s.url.scheme() == "ldaps" {
            "TLS (ldaps://)"
        } else if c.start_tls {
            "StartTLS"
        } else {
            "none: plain LDAP"
        };
        let groups = match &s.groups {
            Groups::None => "not read".to_owned(),
            Groups::MemberOf { attribute } => format!("from each person's {attribute}"),
            Groups::GroupOfNames {
                base,
                filter,
                member_attribute,
            } => format!("{filter} under {base}, members in {member_attribute}"),
        };
        let disabled = match &s.disabled {
            Disabled::Never => "never (no disabled_attribute)".to_owned(),
            Disabled::UserAccountControl => "userAccountControl has 0x2 (ACCOUNTDISABLE)".into(),
            Disabled::Attribute { name, value: None } => format!("the entry has {name}"),
            Disabled::Attribute {
                name,
                value: Some(v),
            } => format!("{name} = {v}"),
        };
        let m = &s.mapping;
        let mut mapping = vec![format!("uid = {}", m.uid)];
        for (field, attr) in [
            ("given_name", &m.given_name),
            ("family_name", &m.family_name),
            ("display_name", &m.display_name),
            ("email", &m.email),
            ("upn", &m.upn),
            ("employee_id", &m.employee_id),
            ("department", &m.department),
            ("title", &m.title),
            ("photo", &m.photo),
        ] {
            if let Some(attr) = attr {
                mapping.push(format!("{field} = {attr}"));
            }
        }
        vec![
            ("Server", s.server()),
            ("Encryption", security.to_owned()),
            (
                "CA file",
                c.ca_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "none (the Mozilla roots)".into()),
            ),
            (
                "Bind DN",
                c.bind_dn.clone().unwrap_or_else(|| "anonymous".into()),
            ),
            ("Base DN", c.base_dn.clone()),
            ("Filter", s.filter.clone()),
            ("Preset", c.preset.as_str().to_owned()),
            ("Attributes", mapping.join(", ")),
            ("Groups", groups),
            ("Disabled when", disabled),
            (
                "Free attributes",
                if c.free_attributes.is_empty() {
                    "none".into()
                } else {
                    c.free_attributes.join(", ")
                },
            ),
            ("Page size", c.page_size.to_string()),
            ("At most", format!("{} entries", c.max_entries)),
            ("Timeout", format!("{} s", c.timeout_secs)),
            (
                "Schedule",
                match c.sync_interval_minutes {
                    0 => "only on demand".into(),
                    1 => "every minute".into(),
                    n => format!("every {n} minutes"),
                },
            ),
        ]
    }

    /// The bind password, read from its file now (None for an anonymous bind).
    fn password(&self) -> Result<Option<Zeroizing<String>>, DirectoryError> {
        let Some(path) = &self.settings.config.bind_password_file else {
            return Ok(None);
        };
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            DirectoryError::config(format!(
                "cannot read bind_password_file {}: {e}",
                path.display()
            ))
        })?);
        let first = Zeroizing::new(
            text.lines()
                .next()
                .unwrap_or_default()
                .trim_end_matches('\r')
                .to_owned(),
        );
        // An empty password would make a simple bind anonymous (RFC 4513 5.1.2).
        if first.is_empty() {
            return Err(DirectoryError::config(format!(
                "bind_password_file {} holds no password on its first line",
                path.display()
            )));
        }
        Ok(Some(first))
    }

    /// Reads the whole selection: the people, then (in `group_of_names` mode) the groups.
    pub async fn read_people(&self) -> Result<SourceReading, DirectoryError> {
        let password = self.password()?;
        let mut session = Session::open(&self.settings, self.tls.clone(), password).await?;
        let reading = self.read_with(&mut session).await;
        session.close().await;
        reading
    }

    async fn read_with(&self, session: &mut Session<'_>) -> Result<SourceReading, DirectoryError> {
        let s = &self.settings;
        let mut budget = Budget {
            limit: s.config.max_entries,
            used: 0,
        };
        let entries = session
            .search_all(
                &s.config.base_dn,
                &s.filter,
                &s.person_attributes(),
                &mut budget,
            )
            .await?;
        let index = match &s.groups {
            Groups::GroupOfNames {
                base,
                filter,
                member_attribute,
            } => {
                let groups = session
                    .search_all(
                        base,
                        filter,
                        std::slice::from_ref(member_attribute),
                        &mut budget,
                    )
                    .await?;
                entry::group_index(&groups, member_attribute)?
            }
            _ => entry::GroupIndex::new(),
        };
        let mut reading = SourceReading::new(UserSource::Ldap);
        reading.has_photos = s.mapping.photo.is_some();
        for e in &entries {
            match entry::person(e, s, &index) {
                Ok(person) => reading.people.push(person),
                Err(rejected) => reading.rejected.push(rejected),
            }
        }
        tracing::info!(
            directory = %self.describe(),
            people = reading.people.len(),
            rejected = reading.rejected.len(),
            "directory read"
        );
        Ok(reading)
    }
}

#[async_trait]
impl Directory for LdapDirectory {
    async fn read(&self) -> Result<SourceReading, PortError> {
        self.read_people().await.map_err(|e| {
            tracing::warn!(directory = %self.describe(), error = %e, "directory read failed");
            PortError::new(e.to_string())
        })
    }

    fn describe(&self) -> String {
        format!(
            "{} {}",
            self.settings.server(),
            self.settings.config.base_dn
        )
    }
}

//! People: where Tessera's users come from and what happens to their cards when they go.
//!
//! Three sources keep people: the portal and CLI (local users, [`local`]), CSV files exported
//! from HR ([`csv_file`]), and a directory over LDAP (read by an adapter behind the
//! [`Directory`](crate::ports::Directory) port). A file or a directory gives a
//! [`SourceReading`]; [`reconcile`] compares it with the store and writes the difference in one
//! unit of work: people created, changed, disabled or enabled again, their photos, their cards
//! deprovisioned by the configured [`DeprovisionRule`], and the audit events. A person belongs to
//! one source: another source (or an operator) cannot overwrite them.

pub mod csv_file;
mod import;
pub mod local;
pub mod photos;
pub mod reconcile;
mod source;

pub use import::{import_csv, saved_mapping, sync_directory};
pub use reconcile::{reconcile, ImportOptions, Progress, Report};
pub use source::{Rejected, SourcePerson, SourceReading};

use crate::error::CoreError;
use serde::{Deserialize, Serialize};

/// What happens to a person's cards when they leave (disabled or gone at their source, or
/// disabled by an operator who chose the configured rule).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeprovisionRule {
    /// Active cards are suspended (certificates on hold), so that a person who comes back can
    /// have them resumed.
    #[default]
    Suspend,
    /// Every live card is terminated and its certificates revoked (`affiliationChanged`).
    Terminate,
    /// Cards are left as they are; an operator decides.
    Keep,
}

impl DeprovisionRule {
    pub const ALL: [DeprovisionRule; 3] = [Self::Suspend, Self::Terminate, Self::Keep];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Suspend => "suspend",
            Self::Terminate => "terminate",
            Self::Keep => "keep",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Suspend => "Suspend their active cards (they can be resumed)",
            Self::Terminate => "Terminate their cards and revoke the certificates",
            Self::Keep => "Leave their cards as they are",
        }
    }
}

/// Settings of the people sources.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeopleSettings {
    /// The CSV column mapping last used, offered again next time.
    #[serde(default)]
    pub csv_mapping: csv_file::CsvMapping,
    #[serde(default)]
    pub deprovision: DeprovisionRule,
}

/// Refuses `what` (a card issued, resumed or activated) for a disabled person: they keep their
/// record and history but get no working card until they are enabled again.
pub(crate) fn refuse_if_disabled(user: &crate::model::User, what: &str) -> Result<(), CoreError> {
    if !user.disabled {
        return Ok(());
    }
    Err(CoreError::UserDisabled(format!(
        "{} ({}) is disabled, so {what}: enable them first (a person from a CSV file or the \
         directory is enabled by their source, at the next import or sync)",
        user.display_name, user.uid
    )))
}

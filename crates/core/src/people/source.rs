//! What a source (a CSV file, a directory) says about people, before it is compared with the
//! store.

use crate::ids::UserId;
use crate::model::UserSource;
use std::collections::BTreeMap;

/// One person as their source gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourcePerson {
    pub uid: UserId,
    pub given_name: String,
    pub family_name: String,
    /// Made from the given and family names when the source has none.
    pub display_name: String,
    pub email: String,
    pub upn: String,
    pub employee_id: String,
    pub department: String,
    pub title: String,
    pub groups: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    /// Disabled at the source (a CSV `disabled` column, AD's `userAccountControl`).
    pub disabled: bool,
    /// The photo's bytes as the source holds them (JPEG or PNG), not yet checked.
    pub photo: Option<Vec<u8>>,
    /// The source named a photo that could not be had (a file missing from the folder or ZIP):
    /// the stored photo stays, where `photo: None` alone would remove it.
    pub photo_missing: bool,
    /// The person's fingerprints as the source gives them (an INCITS 378 record), checked.
    /// `None` leaves the stored ones as they are.
    pub fingerprints: Option<Vec<u8>>,
    /// Where the person was read, for messages: `line 12`, or the entry's DN.
    pub origin: String,
}

/// A record the source gave that could not be taken, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// `line 12`, or a DN.
    pub at: String,
    /// The uid, when the record had one.
    pub uid: Option<String>,
    pub reason: String,
}

/// Everything one reading of a source gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceReading {
    pub source: UserSource,
    pub people: Vec<SourcePerson>,
    /// Records refused while reading (a malformed line, an entry without uid).
    pub rejected: Vec<Rejected>,
    /// The source says something about photos (a CSV photo column, a directory photo
    /// attribute): a person it gives no photo for loses the photo that source gave before.
    pub has_photos: bool,
}

impl SourceReading {
    pub fn new(source: UserSource) -> Self {
        Self {
            source,
            people: Vec::new(),
            rejected: Vec::new(),
            has_photos: false,
        }
    }
}

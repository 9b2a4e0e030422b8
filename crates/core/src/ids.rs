//! Identifiers are newtypes so that a device id can never be passed where a user id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

id_type!(
    /// A user's unique login name, e.g. `jdoe`.
    UserId
);
id_type!(
    /// A device (card) record; a UUID in text form, also the card's PIV GUID.
    DeviceId
);
id_type!(
    /// An operator's login name.
    OperatorId
);
id_type!(
    /// A role: a built-in one (`administrator`, `help_desk`...) or a custom one.
    RoleId
);
id_type!(
    /// A request awaiting a second operator's approval (the two-person rule).
    ApprovalId
);
id_type!(
    /// A device policy, by its unique name slug.
    PolicyId
);
id_type!(
    /// A card layout, by its unique name slug.
    LayoutId
);
id_type!(
    /// A station: the workstation where printers and readers are plugged in.
    StationId
);
id_type!(
    /// An issuance job (the durable workflow of one card).
    JobId
);
id_type!(
    /// The id shown to a person with every error so that support can find the log lines.
    OperationId
);

/// Formats 16 random bytes as an RFC 4122 version-4 UUID string.
pub fn uuid_from_bytes(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Parses a UUID string back into its 16 bytes (used for the card's PIV GUID).
pub fn uuid_to_bytes(uuid: &str) -> Option<[u8; 16]> {
    let hex_digits: String = uuid.chars().filter(|c| *c != '-').collect();
    let v = hex::decode(hex_digits).ok()?;
    v.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_round_trip_sets_version_and_variant() {
        let s = uuid_from_bytes([0xff; 16]);
        assert_eq!(s, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let b = uuid_to_bytes(&s).unwrap();
        assert_eq!(uuid_from_bytes(b), s);
        assert!(uuid_to_bytes("zz").is_none());
    }
}

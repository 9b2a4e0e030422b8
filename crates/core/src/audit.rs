//! Audit events: stable numeric codes, past-tense names, and the hash chain that makes the log
//! tamper-evident (each event's hash covers the previous hash and the event's canonical JSON).

use sha2::{Digest, Sha256};

/// An audit event kind: its stable code and its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventKind {
    pub code: u32,
    pub name: &'static str,
}

macro_rules! events {
    ($($ident:ident = $code:literal, $name:literal;)*) => {
        $(pub const $ident: EventKind = EventKind { code: $code, name: $name };)*
        /// Every kind, for documentation and uniqueness tests.
        pub const ALL: &[EventKind] = &[$($ident),*];
    };
}

events! {
    OPERATOR_SIGNED_IN = 1001, "OperatorSignedIn";
    OPERATOR_SIGN_IN_FAILED = 1002, "OperatorSignInFailed";
    OPERATOR_SIGNED_OUT = 1003, "OperatorSignedOut";
    OPERATOR_CREATED = 1004, "OperatorCreated";
    PERMISSION_DENIED = 1005, "PermissionDenied";
    OPERATOR_LOCKED_OUT = 1006, "OperatorLockedOut";
    REFUSALS_SUMMARISED = 1007, "RefusalsSummarised";
    PRINTER_PAIRED = 2001, "PrinterPaired";
    SETTINGS_CHANGED = 2002, "SettingsChanged";
    LAYOUT_SAVED = 2003, "LayoutSaved";
    POLICY_SAVED = 2005, "PolicySaved";
    STATION_CHANGED = 2004, "StationChanged";
    STATION_CREATED = 2006, "StationCreated";
    STATION_ENROLLED = 2007, "StationEnrolled";
    STATION_ENROLMENT_REFUSED = 2008, "StationEnrolmentRefused";
    STATION_REVOKED = 2009, "StationRevoked";
    STATION_CONNECTED = 2010, "StationConnected";
    STATION_DISCONNECTED = 2011, "StationDisconnected";
    STATION_CONNECTION_REFUSED = 2012, "StationConnectionRefused";
    ISSUANCE_STARTED = 3001, "IssuanceStarted";
    CARD_FED = 3002, "CardFed";
    DEVICE_REGISTERED = 3003, "DeviceRegistered";
    DEVICE_STATE_CHANGED = 3004, "DeviceStateChanged";
    CARD_AUTHENTICATED = 3005, "CardAuthenticated";
    KEY_GENERATED = 3006, "KeyGenerated";
    CERTIFICATE_ISSUED = 3007, "CertificateIssued";
    CERTIFICATE_WRITTEN = 3008, "CertificateWritten";
    DATA_OBJECTS_WRITTEN = 3009, "DataObjectsWritten";
    PIN_SET = 3010, "PinSet";
    PUK_SET = 3011, "PukSet";
    MANAGEMENT_KEY_REPLACED = 3012, "ManagementKeyReplaced";
    CARD_PRINTED = 3013, "CardPrinted";
    PRINT_FAILED = 3014, "PrintFailed";
    DEVICE_ACTIVATED = 3015, "DeviceActivated";
    ACTIVATION_CANCELLED = 3016, "ActivationCancelled";
    ISSUANCE_FAILED = 3017, "IssuanceFailed";
    CERTIFICATE_STATUS_CHANGED = 3018, "CertificateStatusChanged";
    INITIAL_PIN_REVEALED = 3019, "InitialPinRevealed";
    DEVICE_UNLOCKED = 3020, "DeviceUnlocked";
    CARD_RESET = 3021, "CardReset";
    CA_CREATED = 4001, "CaCreated";
    SYSTEM_INITIALISED = 5001, "SystemInitialised";
}

/// The hash of the first event's predecessor.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `sha256(prev_hash || "\n" || canonical)` in lower-case hex. `canonical` is the event's JSON
/// with sorted keys (serde_json's map is sorted), so any store computes the same chain.
pub fn chain_hash(prev_hash: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// The canonical text of an event that the chain hash covers.
pub fn canonical(seq: i64, e: &crate::ports::NewAuditEvent) -> String {
    serde_json::json!({
        "seq": seq, "at": e.at.0, "code": e.code, "name": e.name, "operator": e.operator,
        "user": e.user, "device": e.device, "operation": e.operation, "details": e.details,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique() {
        let mut codes: Vec<u32> = ALL.iter().map(|k| k.code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
    }

    #[test]
    fn chain_depends_on_previous_hash() {
        let e = crate::ports::NewAuditEvent {
            at: crate::model::Timestamp(5),
            code: 1001,
            name: "X",
            operator: None,
            user: None,
            device: None,
            operation: None,
            details: serde_json::json!({}),
        };
        let c = canonical(1, &e);
        assert_ne!(
            chain_hash(GENESIS_HASH, &c),
            chain_hash(&"1".repeat(64), &c)
        );
        assert_eq!(chain_hash(GENESIS_HASH, &c).len(), 64);
    }
}

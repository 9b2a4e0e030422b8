//! Audit events: stable numeric codes, past-tense names, and the hash chain that makes the log
//! tamper-evident (each event's hash covers the previous hash and the event's canonical JSON).

use crate::ports::AuditRecord;
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
    OPERATOR_CHANGED = 1008, "OperatorChanged";
    OPERATOR_DELETED = 1009, "OperatorDeleted";
    OPERATOR_PASSWORD_RESET = 1010, "OperatorPasswordReset";
    OPERATOR_PASSWORD_CHANGED = 1011, "OperatorPasswordChanged";
    ROLE_SAVED = 1012, "RoleSaved";
    ROLE_DELETED = 1013, "RoleDeleted";
    TOTP_ENROLLED = 1014, "TotpEnrolled";
    TOTP_RESET = 1015, "TotpReset";
    RECOVERY_CODE_USED = 1016, "RecoveryCodeUsed";
    CARD_SIGN_IN_REFUSED = 1017, "CardSignInRefused";
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
    DEVICE_REPLACED = 3022, "DeviceReplaced";
    DEVICE_RESTORED = 3023, "DeviceRestored";
    DEVICE_RECYCLED = 3024, "DeviceRecycled";
    DEVICE_UNLOCK_STARTED = 3025, "DeviceUnlockStarted";
    CARD_EJECTED = 3032, "CardEjected";
    KEY_ATTESTED = 3030, "KeyAttested";
    KEY_ATTESTATION_REFUSED = 3031, "KeyAttestationRefused";
    CA_CREATED = 4001, "CaCreated";
    CONTENT_SIGNER_RENEWED = 4002, "ContentSignerRenewed";
    SYSTEM_INITIALISED = 5001, "SystemInitialised";
    AUDIT_CHAIN_CHECKED = 5002, "AuditChainChecked";
    STOCK_IMPORTED = 6001, "StockImported";
    STOCK_CARD_CHANGED = 6002, "StockCardChanged";
    STOCK_CARD_REFUSED = 6003, "StockCardRefused";
    APPROVAL_REQUESTED = 7001, "ApprovalRequested";
    APPROVAL_GRANTED = 7002, "ApprovalGranted";
    APPROVAL_REJECTED = 7003, "ApprovalRejected";
    APPROVAL_USED = 7004, "ApprovalUsed";
    USER_CREATED = 8001, "UserCreated";
    USER_CHANGED = 8002, "UserChanged";
    USER_DISABLED = 8003, "UserDisabled";
    USER_ENABLED = 8004, "UserEnabled";
    USER_DELETED = 8005, "UserDeleted";
    USER_PHOTO_CHANGED = 8006, "UserPhotoChanged";
    USERS_IMPORTED = 8007, "UsersImported";
    DIRECTORY_SYNCED = 8008, "DirectorySynced";
    DIRECTORY_SYNC_FAILED = 8009, "DirectorySyncFailed";
    FINGERPRINTS_ENROLLED = 8010, "FingerprintsEnrolled";
    FINGERPRINTS_REMOVED = 8011, "FingerprintsRemoved";
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

/// The same canonical text, of an event as it was stored.
pub fn canonical_record(r: &AuditRecord) -> String {
    serde_json::json!({
        "seq": r.seq, "at": r.at.0, "code": r.code, "name": r.name, "operator": r.operator,
        "user": r.user, "device": r.device, "operation": r.operation, "details": r.details,
    })
    .to_string()
}

/// Where a stored chain stops holding together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBreak {
    /// The event found wrong (or, for a gap, the newer one beside it).
    pub seq: i64,
    pub reason: String,
}

/// Checks a stored audit chain fed newest first, a page at a time, so that a long log needs no
/// more memory than a page: each event's hash must be the hash of its own content chained to the
/// hash before it, each event must name its older neighbour's hash, the numbers must have no gap,
/// and the first event must follow the genesis hash. Anyone who changes, removes or reorders an
/// event without rewriting every later hash is found out; someone who rewrites them all is not,
/// which is why the newest hash is worth keeping somewhere else too (it is shown with the result).
#[derive(Default)]
pub struct ChainCheck {
    /// The newer event seen last: its number and the hash it says comes before it.
    newer: Option<(i64, String)>,
    pub checked: u64,
    /// The hash of the newest event.
    pub head: Option<String>,
}

impl ChainCheck {
    pub fn feed(&mut self, r: &AuditRecord) -> Result<(), ChainBreak> {
        let broken = |seq: i64, reason: String| Err(ChainBreak { seq, reason });
        if let Some((newer_seq, expected)) = &self.newer {
            if r.seq != newer_seq - 1 {
                return broken(
                    *newer_seq,
                    format!("event {} is missing before it", newer_seq - 1),
                );
            }
            if r.hash != *expected {
                return broken(
                    *newer_seq,
                    format!("it does not follow event {} as stored", r.seq),
                );
            }
        }
        if chain_hash(&r.prev_hash, &canonical_record(r)) != r.hash {
            return broken(r.seq, "its content does not match its hash".into());
        }
        self.head.get_or_insert_with(|| r.hash.clone());
        self.newer = Some((r.seq, r.prev_hash.clone()));
        self.checked += 1;
        Ok(())
    }

    /// After the oldest event: it must be the first and follow the genesis hash.
    pub fn finish(&self) -> Result<(), ChainBreak> {
        match &self.newer {
            None => Ok(()),
            Some((1, prev)) if prev == GENESIS_HASH => Ok(()),
            Some((1, _)) => Err(ChainBreak {
                seq: 1,
                reason: "the first event does not follow the genesis hash".into(),
            }),
            Some((seq, _)) => Err(ChainBreak {
                seq: *seq,
                reason: format!("the events before {seq} are missing"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain of `n` events as a store keeps them, newest first.
    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        let mut out = Vec::new();
        for seq in 1..=n {
            let mut r = AuditRecord {
                seq,
                at: crate::model::Timestamp(seq * 10),
                code: 1001,
                name: "OperatorSignedIn".into(),
                operator: Some("admin".into()),
                user: None,
                device: None,
                operation: None,
                details: serde_json::json!({"n": seq}),
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            r.hash = chain_hash(&prev, &canonical_record(&r));
            prev = r.hash.clone();
            out.push(r);
        }
        out.reverse();
        out
    }

    fn check(events: &[AuditRecord]) -> Result<u64, ChainBreak> {
        let mut c = ChainCheck::default();
        for e in events {
            c.feed(e)?;
        }
        c.finish().map(|_| c.checked)
    }

    #[test]
    fn an_intact_chain_checks_out() {
        assert_eq!(check(&chain(5)), Ok(5));
        assert_eq!(check(&[]), Ok(0));
    }

    #[test]
    fn a_changed_removed_or_cut_chain_is_found_out() {
        let mut changed = chain(5);
        changed[2].details = serde_json::json!({"n": 99}); // seq 3
        assert_eq!(check(&changed).unwrap_err().seq, 3);

        let mut rehashed = chain(5);
        rehashed[2].details = serde_json::json!({"n": 99});
        rehashed[2].hash = chain_hash(&rehashed[2].prev_hash, &canonical_record(&rehashed[2]));
        let e = check(&rehashed).unwrap_err();
        assert_eq!(e.seq, 4, "event 4 no longer follows event 3");

        let mut removed = chain(5);
        removed.remove(2);
        assert!(check(&removed)
            .unwrap_err()
            .reason
            .contains("event 3 is missing"));

        let mut cut = chain(5);
        cut.pop();
        assert!(check(&cut)
            .unwrap_err()
            .reason
            .contains("before 2 are missing"));
    }

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

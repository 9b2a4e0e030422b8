//! The core's error type. Every error carries a stable code (`DEV0001`...) that reaches the user
//! together with an operation id; the sentence is written for a person, internals go to the log.

use crate::ids::DeviceId;
use crate::lifecycle::{DeviceState, TransitionRefused};
use crate::ports::{CardError, PortError, StoreError};

/// Stable error codes, grouped by area. Never renumber: support articles refer to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// Input a person gave is not acceptable.
    Invalid,
    /// The thing asked for does not exist.
    NotFound,
    /// The operator lacks the permission.
    Forbidden,
    /// A lifecycle transition that is not allowed.
    Lifecycle,
    /// The card stopped answering: it was removed from the reader, or the reader or the station's
    /// connection went away.
    Card,
    /// The certificate authority failed.
    Ca,
    /// Rendering or printing failed.
    Print,
    /// The station is unknown or unreachable.
    Station,
    /// The database failed.
    Store,
    /// An issuance job cannot take that step now.
    JobStep,
    /// A record changed between reading and writing it (another operator, process or replica).
    Changed,
    /// The card could not prove that it generated a key (key attestation refused).
    Attestation,
    /// No factory management key opens the card, and Tessera does not know its key.
    ForeignCard,
    /// The card cannot do what the policy asks (a key algorithm its firmware lacks).
    CardLacksFeature,

    // One code per cause of the wizard, the card, the station and the printer (issue 15).
    /// The card already belongs to a live device (Pending, Active, Suspended): refused untouched.
    CardBelongsToDevice,
    /// Another issuance is at work on this card.
    CardInUse,
    /// No card in the reader (or the printer's encoder).
    NoCard,
    /// The card answered a command with an unexpected status word.
    CardStatus,
    /// The card's answer could not be understood.
    CardMalformed,
    /// The card is not a PIV card.
    NotPiv,
    /// The card refused the management key.
    ManagementKeyRejected,
    /// The card refused the PIN.
    WrongPin,
    /// The card's PIN is blocked.
    PinBlocked,
    /// The card refused the PUK.
    WrongPuk,
    /// The card in the reader is not the card the operation is about.
    CardExchanged,
    /// The station is not connected (or unknown).
    StationNotConnected,
    /// The station has no printer of that name.
    PrinterNotFound,
    /// The station has no reader of that name.
    ReaderNotFound,
    /// The operator has not configured a printer and reader at this station yet.
    PrinterNotConfigured,
    /// The printer took the job and did not complete it (aborted, cancelled, stopped).
    PrinterRefused,
    /// The card face could not be drawn from its layout.
    Render,
    /// The layout is not allowed for the person's groups.
    LayoutNotAllowed,
    /// No such layout.
    LayoutUnknown,
    /// The device policy is not allowed for the person's groups.
    PolicyNotAllowed,
    /// No such device policy.
    PolicyUnknown,
    /// A temporary card stands in only for a forgotten card of the same holder.
    TemporaryNotAllowed,
    /// A temporary card needs a short-lived policy.
    TemporaryTooLong,
    /// The policy requires a card from stock and this card is not in stock.
    NotInStock,
    /// The two-person rule: a second operator must approve the request first.
    ApprovalRequired,
    /// An import file that cannot be read at all (encoding, size, no header, no uid column).
    ImportRefused,
    /// A person who still has live cards cannot be deleted.
    UserHasCards,
    /// A person whose record another source keeps (LDAP, CSV) cannot be changed here.
    ManagedElsewhere,
    /// The directory could not be read (unreachable, wrong certificate, refused bind, ...).
    Directory,
    /// A photo that is not an acceptable portrait (type, size, dimensions).
    Photo,
    /// A disabled person gets no new card, and none of their cards is resumed or activated.
    UserDisabled,
    /// A new PIN of the wrong length (or none at all) for the card's policy.
    PinLength,
    /// A new PIN with something other than digits.
    PinNotDigits,
    /// A new PIN that is the factory PIN 123456.
    PinFactory,
    /// A new PIN that is weak: repeated digits, a run, a common PIN or one the policy refuses.
    PinWeak,
    /// The PIN and its confirmation differ.
    PinMismatch,
    /// The person already has an issuance in progress: resume it or cancel it first.
    UserIssuanceInProgress,
    /// The printer (or reader) is busy with another issuance.
    PrinterBusy,
    /// A decision (Continue, Cancel, Retry print, the policy) on an issuance that has finished.
    JobFinished,
    /// An issuance handed over from another server replica arrived without what it needs.
    HandoverLost,
    /// A FIPS 201 data object could not be made (its input does not fit, or signing failed).
    CardDataObject,
    /// Fingerprints that are not an INCITS 378 record of the two fingers a PIV card carries.
    FingerprintsMalformed,
    /// The device policy requires fingerprints and the person has none enrolled.
    FingerprintsRequired,
    /// The federal issuer's codes of the FASC-N settings do not have the digits they need.
    FascNCodes,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "REQ0001",
            Self::NotFound => "REQ0002",
            Self::Forbidden => "AUTH0001",
            Self::Lifecycle => "DEV0001",
            Self::Card => "CARD0001",
            Self::Ca => "CA0001",
            Self::Print => "PRN0001",
            Self::Station => "STN0001",
            Self::Store => "DB0001",
            Self::JobStep => "JOB0001",
            Self::Changed => "DB0002",
            Self::Attestation => "CARD0002",
            Self::ForeignCard => "CARD0003",
            Self::CardLacksFeature => "CARD0004",
            Self::CardBelongsToDevice => "CARD0005",
            Self::CardInUse => "CARD0006",
            Self::NoCard => "CARD0007",
            Self::CardStatus => "CARD0008",
            Self::CardMalformed => "CARD0009",
            Self::NotPiv => "CARD0010",
            Self::ManagementKeyRejected => "CARD0011",
            Self::WrongPin => "CARD0012",
            Self::PinBlocked => "CARD0013",
            Self::WrongPuk => "CARD0014",
            Self::CardExchanged => "CARD0015",
            Self::StationNotConnected => "STN0002",
            Self::PrinterNotFound => "STN0003",
            Self::ReaderNotFound => "STN0004",
            Self::PrinterNotConfigured => "STN0005",
            Self::PrinterRefused => "PRN0002",
            Self::Render => "PRN0003",
            Self::LayoutNotAllowed => "LAY0001",
            Self::LayoutUnknown => "LAY0002",
            Self::PolicyNotAllowed => "POL0001",
            Self::PolicyUnknown => "POL0002",
            Self::TemporaryNotAllowed => "ISS0001",
            Self::TemporaryTooLong => "ISS0002",
            Self::NotInStock => "STK0001",
            Self::ApprovalRequired => "AUTH0005",
            Self::ImportRefused => "USR0001",
            Self::UserHasCards => "USR0002",
            Self::ManagedElsewhere => "USR0003",
            Self::Photo => "USR0004",
            Self::UserDisabled => "USR0005",
            Self::Directory => "DIR0001",
            Self::PinLength => "PIN0001",
            Self::PinNotDigits => "PIN0002",
            Self::PinFactory => "PIN0003",
            Self::PinWeak => "PIN0004",
            Self::PinMismatch => "PIN0005",
            Self::UserIssuanceInProgress => "JOB0002",
            Self::PrinterBusy => "JOB0003",
            Self::JobFinished => "JOB0004",
            Self::HandoverLost => "JOB0005",
            Self::CardDataObject => "CARD0016",
            Self::FingerprintsMalformed => "USR0006",
            Self::FingerprintsRequired => "ISS0003",
            Self::FascNCodes => "SET0001",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} was not found")]
    NotFound(String),
    #[error("you are not allowed to {0}")]
    Forbidden(String),
    #[error(transparent)]
    Lifecycle(#[from] TransitionRefused),
    #[error(transparent)]
    JobStep(#[from] crate::jobs::JobTransitionRefused),
    #[error(transparent)]
    Card(#[from] CardError),
    #[error("the certificate authority failed: {0}")]
    Ca(PortError),
    #[error("printing failed: {0}")]
    Print(PortError),
    #[error("the station failed: {0}")]
    Station(PortError),
    #[error("the database failed")]
    Store(StoreError),
    /// The card's key attestation was refused (slot, why).
    #[error("the card could not prove that it generated its key for slot {0}: {1}; the card was not issued")]
    Attestation(String, crate::ports::AttestationError),
    /// A card no factory management key opens and that Tessera has no key for.
    #[error("{0}")]
    ForeignCard(String),
    /// The card cannot do what the policy asks; the sentence says what and why.
    #[error("{0}")]
    CardLacksFeature(String),

    // One variant per cause of the wizard, the station and the printer (issue 15); the card's
    // own causes are the kinds of `Card`.
    /// The card belongs to a live device: which, its state, and the sentence saying what to do.
    #[error("{message}")]
    CardBelongsToDevice {
        device: DeviceId,
        state: DeviceState,
        message: String,
    },
    /// Another issuance is at work on the card.
    #[error("{0}")]
    CardInUse(String),
    /// The card in the reader is not the one the operation is about.
    #[error("{0}")]
    CardExchanged(String),
    /// The station is not connected; the sentence names it.
    #[error("{0}")]
    StationNotConnected(String),
    /// The station has no printer of that name.
    #[error("the station has no printer named {0:?}: choose one of its printers")]
    PrinterNotFound(String),
    /// The station has no reader of that name.
    #[error("the station has no reader named {0:?}: check that the reader is plugged in, or choose another")]
    ReaderNotFound(String),
    /// No printer and reader configured at this station yet.
    #[error("{0}")]
    PrinterNotConfigured(String),
    /// The printer took the job and did not complete it.
    #[error("the printer did not print the card: {0}")]
    PrinterRefused(PortError),
    /// The card face could not be drawn from its layout.
    #[error("the card face could not be drawn: {0}")]
    Render(PortError),
    /// The layout is not allowed for the person.
    #[error("{0}")]
    LayoutNotAllowed(String),
    /// No such layout (its id).
    #[error("there is no layout {0}: it may have been deleted; reload the page")]
    LayoutUnknown(String),
    /// The device policy is not allowed for the person.
    #[error("{0}")]
    PolicyNotAllowed(String),
    /// No such device policy (its id).
    #[error("there is no device policy {0}: it may have been deleted; reload the page")]
    PolicyUnknown(String),
    /// A temporary card asked for a card that is not a forgotten card of the same holder.
    #[error("{0}")]
    TemporaryNotAllowed(String),
    /// A temporary card under a policy that lasts too long.
    #[error("{0}")]
    TemporaryTooLong(String),
    /// An issuance asked for a step it is not at (the sentence says which); code `JOB0001`.
    #[error("{0}")]
    WrongStep(String),
    /// A card the policy's stock rule refuses: its serial, its stock state when the stock knows
    /// it, and the sentence that says both.
    #[error("{message}")]
    NotInStock {
        serial: String,
        state: Option<&'static str>,
        message: String,
    },
    /// The two-person rule held the action back: the request (recorded, Pending) and the
    /// sentence that tells the operator to have it approved.
    #[error("{message}")]
    ApprovalRequired {
        approval: crate::ids::ApprovalId,
        message: String,
    },
    /// An import file refused whole; nothing was written.
    #[error("{0}")]
    ImportRefused(String),
    /// Deleting a person who still has live cards.
    #[error("{0}")]
    UserHasCards(String),
    /// Changing a person whose record is kept by another source.
    #[error("{0}")]
    ManagedElsewhere(String),
    /// The directory failed; the sentence says how. Nothing was changed.
    #[error("the directory could not be read, so nothing was changed: {0}")]
    Directory(PortError),
    /// A photo refused: the sentence says why.
    #[error("{0}")]
    Photo(String),
    /// A card asked for (issued, resumed, activated) for a disabled person.
    #[error("{0}")]
    UserDisabled(String),
    #[error("{0} changed meanwhile (another operator, process or server acted on it); nothing was written: reload and try again")]
    Changed(String),
    /// A new PIN refused by the PIN rules (see [`crate::pin_rules`]); nothing reached a card.
    #[error(transparent)]
    PinRefused(#[from] crate::pin_rules::PinRefusal),
    /// Start for a person who already has an issuance in progress: the job in progress (to
    /// resume or cancel) and the sentence that describes it. No card was fed.
    #[error("{message}")]
    UserIssuanceInProgress {
        job: Box<crate::issuance::JobInProgress>,
        message: String,
    },
    /// Start at a printer (or reader) that another issuance holds. No card was fed.
    #[error("{message}")]
    PrinterBusy {
        job: Box<crate::issuance::JobInProgress>,
        message: String,
    },
    /// A decision on an issuance that has already finished; nothing was changed.
    #[error("{0}")]
    JobFinished(String),
    /// A job queued for its station's replica (see [`crate::dispatch`]) arrived there without
    /// what it needs (its policy, or a PIN that replica can open); it ends `Failed` before any
    /// card command.
    #[error("{0}")]
    HandoverLost(String),
    /// Fingerprints refused: the sentence says what is wrong with the record. Nothing changed.
    #[error("{0}")]
    FingerprintsMalformed(String),
    /// An issuance under a policy that requires fingerprints, for a person without them; no
    /// card command was sent.
    #[error("{0}")]
    FingerprintsRequired(String),
    /// Settings refused: a federal issuer's agency code, system code or credential number without
    /// the digits the FASC-N needs (the sentence says which).
    #[error("{0}")]
    FascNCodes(String),
}

impl CoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::Invalid,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Lifecycle(_) => ErrorCode::Lifecycle,
            Self::JobStep(_) => ErrorCode::JobStep,
            Self::Card(e) => card_code(e),
            Self::Ca(_) => ErrorCode::Ca,
            Self::Print(_) => ErrorCode::Print,
            Self::Station(_) => ErrorCode::Station,
            Self::Store(StoreError::NotFound) => ErrorCode::NotFound,
            Self::Store(_) => ErrorCode::Store,
            Self::Changed(_) => ErrorCode::Changed,
            Self::Attestation(..) => ErrorCode::Attestation,
            Self::ForeignCard(_) => ErrorCode::ForeignCard,
            Self::CardLacksFeature(_) => ErrorCode::CardLacksFeature,
            Self::CardBelongsToDevice { .. } => ErrorCode::CardBelongsToDevice,
            Self::CardInUse(_) => ErrorCode::CardInUse,
            Self::CardExchanged(_) => ErrorCode::CardExchanged,
            Self::StationNotConnected(_) => ErrorCode::StationNotConnected,
            Self::PrinterNotFound(_) => ErrorCode::PrinterNotFound,
            Self::ReaderNotFound(_) => ErrorCode::ReaderNotFound,
            Self::PrinterNotConfigured(_) => ErrorCode::PrinterNotConfigured,
            Self::PrinterRefused(_) => ErrorCode::PrinterRefused,
            Self::Render(_) => ErrorCode::Render,
            Self::LayoutNotAllowed(_) => ErrorCode::LayoutNotAllowed,
            Self::LayoutUnknown(_) => ErrorCode::LayoutUnknown,
            Self::PolicyNotAllowed(_) => ErrorCode::PolicyNotAllowed,
            Self::PolicyUnknown(_) => ErrorCode::PolicyUnknown,
            Self::TemporaryNotAllowed(_) => ErrorCode::TemporaryNotAllowed,
            Self::TemporaryTooLong(_) => ErrorCode::TemporaryTooLong,
            Self::WrongStep(_) => ErrorCode::JobStep,
            Self::NotInStock { .. } => ErrorCode::NotInStock,
            Self::ApprovalRequired { .. } => ErrorCode::ApprovalRequired,
            Self::ImportRefused(_) => ErrorCode::ImportRefused,
            Self::UserHasCards(_) => ErrorCode::UserHasCards,
            Self::ManagedElsewhere(_) => ErrorCode::ManagedElsewhere,
            Self::Directory(_) => ErrorCode::Directory,
            Self::Photo(_) => ErrorCode::Photo,
            Self::UserDisabled(_) => ErrorCode::UserDisabled,
            Self::PinRefused(r) => {
                use crate::pin_rules::PinRefusal;
                match r {
                    PinRefusal::Length { .. } => ErrorCode::PinLength,
                    PinRefusal::NotDigits => ErrorCode::PinNotDigits,
                    PinRefusal::Factory => ErrorCode::PinFactory,
                    PinRefusal::Weak(_) => ErrorCode::PinWeak,
                    PinRefusal::Mismatch => ErrorCode::PinMismatch,
                }
            }
            Self::UserIssuanceInProgress { .. } => ErrorCode::UserIssuanceInProgress,
            Self::PrinterBusy { .. } => ErrorCode::PrinterBusy,
            Self::JobFinished(_) => ErrorCode::JobFinished,
            Self::HandoverLost(_) => ErrorCode::HandoverLost,
            Self::FingerprintsMalformed(_) => ErrorCode::FingerprintsMalformed,
            Self::FingerprintsRequired(_) => ErrorCode::FingerprintsRequired,
            Self::FascNCodes(_) => ErrorCode::FascNCodes,
        }
    }
}

/// Each way a card fails has its code: the operator's next move differs (put the card back,
/// feed one, use another card, ask for the PUK).
fn card_code(e: &CardError) -> ErrorCode {
    match e {
        CardError::Unreachable(_) => ErrorCode::Card,
        CardError::NoCard(_) => ErrorCode::NoCard,
        CardError::NoReader(_) => ErrorCode::ReaderNotFound,
        CardError::Status { .. } => ErrorCode::CardStatus,
        CardError::Malformed { .. } => ErrorCode::CardMalformed,
        CardError::NotPiv => ErrorCode::NotPiv,
        CardError::DataObject { .. } => ErrorCode::CardDataObject,
        CardError::ManagementKeyRejected => ErrorCode::ManagementKeyRejected,
        CardError::WrongPin { .. } => ErrorCode::WrongPin,
        CardError::PinBlocked => ErrorCode::PinBlocked,
        CardError::WrongPuk { .. } => ErrorCode::WrongPuk,
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound("the record".into()),
            StoreError::Stale(what) => Self::Changed(what),
            other => Self::Store(other),
        }
    }
}

#[cfg(test)]
mod tests {
    /// The codes `ErrorCode::as_str` gives, read from this file's source so that a new code is
    /// checked without anyone listing it twice.
    fn codes() -> Vec<&'static str> {
        let source = include_str!("error.rs");
        let start = source.find("pub fn as_str").expect("as_str");
        let end = start + source[start..].find("\n    }\n").expect("end of as_str");
        source[start..end]
            .lines()
            .filter_map(|l| l.split("=> \"").nth(1))
            .map(|rest| rest.trim_end_matches("\","))
            .collect()
    }

    #[test]
    fn every_code_is_distinct_and_well_formed() {
        let codes = codes();
        assert!(codes.len() > 40, "read {} codes", codes.len());
        let mut seen = std::collections::BTreeSet::new();
        for code in &codes {
            assert!(seen.insert(*code), "{code} is given twice");
            let digits = code.trim_start_matches(|c: char| c.is_ascii_uppercase());
            assert!(
                digits.len() == 4
                    && digits.chars().all(|c| c.is_ascii_digit())
                    && digits.len() < code.len(),
                "{code} is not AREA0000"
            );
        }
    }

    /// Support answers from the operator guide's table: a code that is not in it fails here.
    #[test]
    fn the_operator_guide_lists_every_code() {
        let guide = include_str!("../../../docs/operator-guide.md");
        let listed: Vec<&str> = guide
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        for code in codes() {
            assert!(
                listed.contains(&code),
                "{code} is missing from the error table of docs/operator-guide.md"
            );
        }
    }
}

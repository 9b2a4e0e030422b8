//! The core's error type. Every error carries a stable code (`DEV0001`...) that reaches the user
//! together with an operation id; the sentence is written for a person, internals go to the log.

use crate::lifecycle::TransitionRefused;
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
    /// The card, reader or its connection failed.
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
    /// The person already has an issuance in progress: resume it or cancel it first.
    UserIssuanceInProgress,
    /// The printer (or reader) is busy with another issuance.
    PrinterBusy,
    /// A decision (Continue, Cancel, Retry print, the policy) on an issuance that has finished.
    JobFinished,
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
            Self::NotInStock => "STK0001",
            Self::ApprovalRequired => "AUTH0005",
            Self::ImportRefused => "USR0001",
            Self::UserHasCards => "USR0002",
            Self::ManagedElsewhere => "USR0003",
            Self::Photo => "USR0004",
            Self::UserDisabled => "USR0005",
            Self::Directory => "DIR0001",
            Self::UserIssuanceInProgress => "JOB0002",
            Self::PrinterBusy => "JOB0003",
            Self::JobFinished => "JOB0004",
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
}

impl CoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::Invalid,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Lifecycle(_) => ErrorCode::Lifecycle,
            Self::JobStep(_) => ErrorCode::JobStep,
            Self::Card(_) => ErrorCode::Card,
            Self::Ca(_) => ErrorCode::Ca,
            Self::Print(_) => ErrorCode::Print,
            Self::Station(_) => ErrorCode::Station,
            Self::Store(StoreError::NotFound) => ErrorCode::NotFound,
            Self::Store(_) => ErrorCode::Store,
            Self::Changed(_) => ErrorCode::Changed,
            Self::Attestation(..) => ErrorCode::Attestation,
            Self::ForeignCard(_) => ErrorCode::ForeignCard,
            Self::CardLacksFeature(_) => ErrorCode::CardLacksFeature,
            Self::NotInStock { .. } => ErrorCode::NotInStock,
            Self::ApprovalRequired { .. } => ErrorCode::ApprovalRequired,
            Self::ImportRefused(_) => ErrorCode::ImportRefused,
            Self::UserHasCards(_) => ErrorCode::UserHasCards,
            Self::ManagedElsewhere(_) => ErrorCode::ManagedElsewhere,
            Self::Directory(_) => ErrorCode::Directory,
            Self::Photo(_) => ErrorCode::Photo,
            Self::UserDisabled(_) => ErrorCode::UserDisabled,
            Self::UserIssuanceInProgress { .. } => ErrorCode::UserIssuanceInProgress,
            Self::PrinterBusy { .. } => ErrorCode::PrinterBusy,
            Self::JobFinished(_) => ErrorCode::JobFinished,
        }
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

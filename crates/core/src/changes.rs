//! A unit of work: the writes of one step of a use case, which the store commits in one
//! transaction, all or nothing.
//!
//! The core reads what it needs, decides, and then hands the store a [`Changes`]: a device's new
//! state, its certificates' new status, the job's next step and the audit events that say so.
//! Every update names the state it was decided from (`expected`), and the store applies it only
//! while the stored row still has that state; otherwise the whole unit fails with
//! [`StoreError::Stale`](crate::ports::StoreError::Stale) and nothing of it is written. A
//! second process, a recovered job or a replica that acted in between therefore makes the stale
//! writer fail instead of being overwritten by it.
//!
//! Why a list of writes rather than a transaction object held across `await`s: the use cases talk
//! to cards and printers between their writes, which can take seconds; a database transaction
//! held open over that would block every other writer on SQLite. Reads happen before, writes
//! commit at once, and the `expected` conditions give the same safety.

use crate::ids::*;
use crate::lifecycle::DeviceState;
use crate::model::*;
use crate::ports::NewAuditEvent;

/// Who holds a job's lease: the job runner of one process (see [`crate::jobs`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The runner's instance id (random per process).
    pub owner: String,
    /// The lease ends at this time (milliseconds since the Unix epoch) unless renewed.
    pub expires_ms: i64,
}

/// How an update of a job checks and changes its lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseChange {
    /// The job must be leased by `owner`; the lease is renewed to `expires_ms`. A lease that ran
    /// out but that nobody took over is still the owner's: taking over is itself a conditional
    /// write ([`LeaseChange::Claim`]), so the two cannot both succeed.
    Hold { owner: String, expires_ms: i64 },
    /// The job must be leased by `owner`; the lease is given up (the job waits for a person).
    Release { owner: String },
    /// The job must have no live lease at `now_ms` (nobody is working on it); it stays unleased.
    Unleased { now_ms: i64 },
    /// The job must have no live lease at `now_ms`; `owner` takes it until `expires_ms`.
    Claim {
        owner: String,
        now_ms: i64,
        expires_ms: i64,
    },
    /// The job must have no live lease at `now_ms`; it waits in `queue` (its station's, see
    /// [`crate::dispatch`]) until `expires_ms` for the replica holding that station, with the
    /// sealed `handover`. A wait that runs out is an expired lease: recovery closes the job.
    Queue {
        queue: String,
        now_ms: i64,
        expires_ms: i64,
        handover: Option<Vec<u8>>,
    },
}

/// What a person's stored record must be for a write of it to apply.
#[derive(Clone, Debug)]
pub enum UserWas {
    /// No such person yet: a uid that someone else created meanwhile makes the unit stale.
    New,
    /// Stored exactly so: the record as the use case read it.
    Stored(Box<User>),
}

impl UserWas {
    /// The condition for a write of a person read as `old` (`None`: not stored).
    pub fn from(old: Option<&User>) -> Self {
        match old {
            None => Self::New,
            Some(user) => Self::Stored(Box::new(user.clone())),
        }
    }
}

/// One write.
#[derive(Clone, Debug)]
pub enum Change {
    /// A person, new or changed, written whole; applied only while the stored record is as
    /// `was` says (the use case decided from it).
    PutUser {
        user: User,
        was: UserWas,
    },
    /// Deletes a person, only while their record is still `was` and their cards are still
    /// exactly `cards` (id and state as read): a card issued or resumed meanwhile makes the
    /// unit stale instead of leaving a card whose holder is gone. Fails with `NotFound` when
    /// there is no such person.
    DeleteUser {
        was: Box<User>,
        cards: Vec<(DeviceId, DeviceState)>,
    },
    /// A person's normalised portrait (JPEG).
    PutPhoto {
        uid: UserId,
        photo: Vec<u8>,
    },
    DeletePhoto(UserId),
    /// A person's fingerprints (enrolment data), new or replacing theirs; applied only while the
    /// person exists (one deleted meanwhile makes the unit stale).
    PutFingerprints {
        uid: UserId,
        fingerprints: crate::fips201::Fingerprints,
        at: Timestamp,
    },
    DeleteFingerprints(UserId),
    InsertDevice(Device),
    /// Applied only while the stored device is in state `expected`.
    UpdateDevice {
        device: Device,
        expected: DeviceState,
    },
    InsertCertificate(CertificateRecord),
    /// Applied only while the stored certificate has status `expected`.
    SetCertificateStatus {
        serial: String,
        expected: CertificateStatus,
        status: CertificateStatus,
        reason: Option<String>,
        at: Timestamp,
    },
    PutDeviceSecret {
        device: DeviceId,
        kind: String,
        sealed: Vec<u8>,
    },
    DeleteDeviceSecret {
        device: DeviceId,
        kind: String,
    },
    /// Deletes a secret that must still be there (fails as stale otherwise): a secret shown
    /// once is shown to the one unit of work that took it.
    TakeDeviceSecret {
        device: DeviceId,
        kind: String,
    },
    /// A new job; with a lease when its runner starts at once.
    InsertJob {
        job: IssuanceJob,
        lease: Option<Lease>,
    },
    /// Applied only while the stored job is in step `expected` and its lease is as `lease` says.
    UpdateJob {
        job: IssuanceJob,
        expected: JobStep,
        lease: LeaseChange,
    },
    InsertPrint(PrintRecord),
    PutLayout(Layout),
    PutPolicy(DevicePolicy),
    PutStation(Station),
    PutSettings(Settings),
    PutPairing(PrinterPairing),
    /// A new operator, or one written whatever its stored revision (the first administrator).
    PutOperator(Operator),
    /// Applied only while the stored operator still has `operator.revision`; the revision then
    /// goes up by one.
    UpdateOperator(Operator),
    DeleteOperator(OperatorId),
    /// Ends every session of an operator (disabled, deleted, password reset or changed).
    DeleteSessionsOf(OperatorId),
    /// Ends every session of an operator but the one whose token hashes to `keep` (the browser
    /// that changed the password).
    DeleteOtherSessions {
        operator: OperatorId,
        keep: String,
    },
    /// A custom role (built-in roles live in the code and are never stored).
    PutRole(Role),
    DeleteRole(RoleId),
    /// A card of the stock. With `expected: None` it is new: a serial already in stock fails
    /// with `Conflict` (an import never overwrites a card). Otherwise it is applied only while
    /// the stored card is in state `expected`.
    PutStockCard {
        card: StockCard,
        expected: Option<StockState>,
    },
    /// A request under the two-person rule. With `expected: None` it is new; otherwise it is
    /// applied only while the stored request is in state `expected` (so it is decided once and
    /// used once).
    PutApproval {
        approval: crate::approvals::Approval,
        expected: Option<crate::approvals::ApprovalState>,
    },
    /// Fails with `Conflict` when the database already belongs to an organisation.
    InsertInstallation(crate::ports::Installation),
    /// Appended to the audit hash chain, in the order given.
    Audit(NewAuditEvent),
    /// A refused attempt of someone not signed in ([`crate::refusals`]): counted in its minute
    /// (of `event.at`) for every replica together, and appended to the chain only while the
    /// minute has written fewer than `per_minute` of them; otherwise counted as left out, by
    /// the event's name.
    AuditRefusal {
        event: NewAuditEvent,
        per_minute: u32,
    },
    /// Writes one `RefusalsSummarised` event (stamped `now`) for each minute before `now`'s that
    /// left refusals out, and forgets the counts of those minutes. The first unit of work to
    /// apply it writes the summaries; a unit of another replica at the same moment finds
    /// nothing left to summarise.
    SummariseRefusals {
        now: Timestamp,
    },
}

/// The writes of one step, committed together by [`crate::ports::Store::commit`].
#[derive(Clone, Debug, Default)]
pub struct Changes {
    pub list: Vec<Change>,
}

impl Changes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, change: Change) -> &mut Self {
        self.list.push(change);
        self
    }

    pub fn audit(&mut self, event: NewAuditEvent) -> &mut Self {
        self.push(Change::Audit(event))
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many audit events the unit appends.
    pub fn audit_events(&self) -> usize {
        self.list
            .iter()
            .filter(|c| matches!(c, Change::Audit(_) | Change::AuditRefusal { .. }))
            .count()
    }
}

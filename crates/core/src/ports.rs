//! The traits through which the core reaches the world. Adapters implement them in other crates;
//! the server wires one implementation of each into [`crate::issuance::Services`].

use crate::ids::*;
pub use crate::model::KeyAttestation;
use crate::model::*;
use crate::secret::{ManagementKey, ManagementKeyAlgorithm, Pin, Puk};
use async_trait::async_trait;
use std::sync::Arc;

// ---------------------------------------------------------------------------------------------
// Time and randomness
// ---------------------------------------------------------------------------------------------

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
    /// Milliseconds since the Unix epoch, for job leases. A clock that knows only seconds may
    /// keep this default.
    fn now_ms(&self) -> i64 {
        self.now().0 * 1000
    }
}

/// A cryptographically secure random source.
pub trait Random: Send + Sync {
    fn fill(&self, buf: &mut [u8]);
}

impl dyn Random + '_ {
    pub fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }
    pub fn uuid(&self) -> String {
        uuid_from_bytes(self.bytes::<16>())
    }
    /// A string of `len` decimal digits, uniformly distributed (rejection sampling).
    pub fn digits(&self, len: usize) -> String {
        let mut out = String::with_capacity(len);
        while out.len() < len {
            let [b] = self.bytes::<1>();
            if b < 250 {
                out.push(char::from(b'0' + b % 10));
            }
        }
        out
    }
}

/// Hashes and checks operator passwords (argon2id in the server), off the async workers.
#[async_trait]
pub trait Passwords: Send + Sync {
    async fn hash(&self, password: crate::secret::Password) -> String;
    /// Whether `password` matches `stored`. Without a stored hash (no such operator) a password is
    /// checked all the same against a hash of nothing anyone knows, so that the answer takes as
    /// long whether the name exists or not; it is `false` then.
    async fn verify(&self, password: crate::secret::Password, stored: Option<String>) -> bool;
}

/// Encrypts secrets (card management keys, escrowed PUKs and PINs) before they reach the store.
pub trait Sealer: Send + Sync {
    fn seal(&self, plaintext: &[u8]) -> Vec<u8>;
    fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, PortError>;
}

/// The error of an adapter, with the sentence a person can read. Adapters keep their own detailed
/// error types and log the internals; this is what crosses into the core.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PortError {
    pub message: String,
}

impl PortError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cards
// ---------------------------------------------------------------------------------------------

/// Moves one command APDU to a card and brings back its response (data followed by SW1 SW2).
/// Implementations: the in-process virtual card, PC/SC, the station relay.
#[async_trait]
pub trait CardTransport: Send {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError>;
    /// The card's answer to reset.
    fn atr(&self) -> Vec<u8>;
    /// Whether the card supports extended-length APDUs (fewer round trips for certificates).
    fn extended_length(&self) -> bool {
        false
    }
    /// Ends the connection now and waits until it has ended, so that the next connection to the
    /// same reader cannot meet this one's end (a relay's session is otherwise closed in the
    /// background when the transport is dropped). Dropping is enough where that is synchronous.
    async fn close(&mut self) {}
    /// Runs commands in order and returns their responses, stopping after the first response whose
    /// status word the command does not expect (that response is the last one returned). A relay
    /// overrides this to send the whole script in one round trip.
    async fn run_script(&mut self, script: &[ScriptCommand]) -> Result<Vec<Vec<u8>>, CardError> {
        let mut responses = Vec::with_capacity(script.len());
        for command in script {
            let response = self.transmit(&command.apdu).await?;
            let go_on = command.accepts(&response);
            responses.push(response);
            if !go_on {
                break;
            }
        }
        Ok(responses)
    }
}

/// One command of an APDU script, with the status words after which the script goes on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScriptCommand {
    pub apdu: Vec<u8>,
    pub expect: Vec<SwPattern>,
}

impl ScriptCommand {
    /// A command that must answer 9000.
    pub fn ok(apdu: Vec<u8>) -> Self {
        Self {
            apdu,
            expect: vec![SwPattern::exact(0x9000)],
        }
    }

    /// Whether `response` (data followed by SW1 SW2) ends in an expected status word.
    pub fn accepts(&self, response: &[u8]) -> bool {
        let Some(sw) = status_word(response) else {
            return false;
        };
        self.expect.iter().any(|p| p.matches(sw))
    }
}

/// The status word at the end of a response APDU.
pub fn status_word(response: &[u8]) -> Option<u16> {
    let n = response.len();
    (n >= 2).then(|| u16::from_be_bytes([response[n - 2], response[n - 1]]))
}

/// A status word pattern: `sw & mask == value & mask`; `61XX` is `{ value: 0x6100, mask: 0xFF00 }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SwPattern {
    pub value: u16,
    pub mask: u16,
}

impl SwPattern {
    pub const fn exact(value: u16) -> Self {
        Self {
            value,
            mask: 0xFFFF,
        }
    }
    /// Any status word with this SW1 (`61XX`: more data waiting).
    pub const fn sw1(sw1: u8) -> Self {
        Self {
            value: (sw1 as u16) << 8,
            mask: 0xFF00,
        }
    }
    pub fn matches(&self, sw: u16) -> bool {
        sw & self.mask == self.value & self.mask
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum CardError {
    /// The card or reader went away (pulled card, dead reader, lost station).
    #[error("the card is not reachable: {0}")]
    Unreachable(String),
    /// No card in the reader (or in the printer's encoder); the sentence names the reader.
    #[error("{0}")]
    NoCard(String),
    /// The reader named is not there (unplugged, renamed, another station's).
    #[error("{0}")]
    NoReader(String),
    #[error("wrong PIN, {retries_left} tries left")]
    WrongPin { retries_left: u8 },
    #[error("the PIN is blocked")]
    PinBlocked,
    #[error("wrong PUK, {retries_left} tries left")]
    WrongPuk { retries_left: u8 },
    #[error("the card refused the management key")]
    ManagementKeyRejected,
    /// The card answered a command with an unexpected status word.
    #[error("the card answered {operation} with status {sw:04X}")]
    Status { operation: String, sw: u16 },
    /// The card's answer could not be parsed.
    #[error("the card gave a malformed answer to {operation}: {detail}")]
    Malformed { operation: String, detail: String },
    #[error("this card is not a PIV card")]
    NotPiv,
    /// A data object could not be made for the card (its input does not fit the standard, or
    /// the content signer could not sign it); nothing of it was sent.
    #[error("the {object} cannot be written: {detail}")]
    DataObject { object: String, detail: String },
}

/// What a card says about itself after SELECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardIdentity {
    /// Serial number, decimal if the card reports one (GET SERIAL), else hex of a stable id.
    pub serial: String,
    pub atr: Vec<u8>,
    /// Firmware version if the card reports it (GET VERSION), e.g. `5.4.3`.
    pub version: Option<String>,
}

/// The contents of the PIV printed information object (tag 5FC109).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PrintedInformation {
    pub name: String,
    pub employee_affiliation: String,
    /// `2027NOV24` form (PIV: YYYYMMMDD).
    pub expiration_date: String,
    pub agency_card_serial: String,
    pub issuer_identification: String,
    pub organization_line_1: String,
    pub organization_line_2: String,
}

/// High-level PIV card operations (SP 800-73-4) used by the issuance use case. `tessera-piv`
/// implements this over any [`CardTransport`].
#[async_trait]
pub trait PivCard: Send {
    /// SELECT the PIV application; read serial and version where the card offers them.
    async fn select(&mut self) -> Result<CardIdentity, CardError>;
    /// Ends the connection to the card and waits until it has ended ([`CardTransport::close`]).
    async fn close(&mut self) {}
    /// Mutual authentication with the card management key (GENERAL AUTHENTICATE, key 9B).
    async fn authenticate(&mut self, key: &ManagementKey) -> Result<(), CardError>;
    /// GENERATE ASYMMETRIC KEY PAIR on the card; returns the public key as a DER SubjectPublicKeyInfo.
    async fn generate_key(
        &mut self,
        slot: Slot,
        algorithm: KeyAlgorithm,
    ) -> Result<Vec<u8>, CardError>;
    /// PUT DATA of the slot's certificate object (tags 70, 71 = 0, FE).
    async fn write_certificate(&mut self, slot: Slot, der: &[u8]) -> Result<(), CardError>;
    /// Encodes the data objects of `objects` (CHUID, CCC, printed information, facial image,
    /// fingerprints, Security Object), signs those FIPS 201 signs with `signer`, and PUT DATAs
    /// them (deferred like the other writes after [`PivCard::defer_writes`]). Returns what was
    /// written, in order.
    async fn write_data_objects(
        &mut self,
        objects: &crate::fips201::CardObjects,
        signer: &dyn crate::fips201::ContentSigner,
    ) -> Result<Vec<crate::fips201::WrittenObject>, CardError>;
    /// CHANGE REFERENCE DATA of the PIN (key 80).
    async fn change_pin(&mut self, current: &Pin, new: &Pin) -> Result<(), CardError>;
    /// CHANGE REFERENCE DATA of the PUK (key 81).
    async fn change_puk(&mut self, current: &Puk, new: &Puk) -> Result<(), CardError>;
    /// Replace the management key (Yubico SET MANAGEMENT KEY, INS FF), after `authenticate`.
    async fn set_management_key(&mut self, new: &ManagementKey) -> Result<(), CardError>;
    /// VERIFY the PIN (key 80).
    async fn verify_pin(&mut self, pin: &Pin) -> Result<(), CardError>;
    /// Remaining PIN tries (VERIFY with no data).
    async fn pin_retries(&mut self) -> Result<u8, CardError>;
    /// RESET RETRY COUNTER: unblocks the PIN with the PUK and sets a new PIN.
    async fn unblock_pin(&mut self, puk: &Puk, new: &Pin) -> Result<(), CardError>;
    /// Returns the card to its factory state with the Yubico RESET (INS FB), which a card accepts
    /// only once its PIN and PUK are blocked: blocks the PIN (VERIFY with a wrong value) and the
    /// PUK (RESET RETRY COUNTER with a wrong PUK) until they are, then resets. Keys, certificates
    /// and data objects are erased; PIN, PUK and management key are the factory ones again, and
    /// the PIV application must be selected again. A card that does not offer the Yubico
    /// extensions (GET VERSION) is refused before its PIN is touched. The values sent are never
    /// logged.
    async fn factory_reset(&mut self) -> Result<(), CardError>;

    /// Generates several keys; a client may send them as one APDU script (one round trip).
    async fn generate_keys(
        &mut self,
        keys: &[(Slot, KeyAlgorithm)],
    ) -> Result<Vec<Vec<u8>>, CardError> {
        let mut out = Vec::with_capacity(keys.len());
        for (slot, algorithm) in keys {
            out.push(self.generate_key(*slot, *algorithm).await?);
        }
        Ok(out)
    }

    /// From now on the writes (certificates, data objects, PIN, PUK, management key) may be
    /// collected instead of sent, and answer `Ok` at once; [`PivCard::flush_writes`] sends them
    /// together and reports the first that the card refused.
    fn defer_writes(&mut self) {}

    /// Sends the writes collected since [`PivCard::defer_writes`], in order.
    async fn flush_writes(&mut self) -> Result<(), CardError> {
        Ok(())
    }

    /// The algorithm of the card's management key (Yubico GET METADATA of key 9B, firmware 5.3
    /// and later); `None` when the card does not say, and the caller tries each factory key.
    async fn management_key_algorithm(
        &mut self,
    ) -> Result<Option<ManagementKeyAlgorithm>, CardError> {
        Ok(None)
    }

    /// Yubico ATTEST (INS F9) of a key generated on the card: the attestation certificate (DER),
    /// signed by the card's attestation key.
    async fn attest(&mut self, slot: Slot) -> Result<Vec<u8>, CardError> {
        let _ = slot;
        Err(CardError::Status {
            operation: "ATTEST".into(),
            sw: 0x6D00,
        })
    }

    /// The card's attestation certificate (object 5FFF01, the "F9" certificate) that signs
    /// [`PivCard::attest`]'s answers; `None` if the card has none.
    async fn attestation_certificate(&mut self) -> Result<Option<Vec<u8>>, CardError> {
        Ok(None)
    }
}

/// Why a key attestation was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// A certificate does not parse, a signature does not verify or a date is out of range.
    #[error("the attestation is not valid: {0}")]
    Invalid(String),
    /// The chain does not end in a configured attestation root.
    #[error("the attestation does not chain to a trusted attestation root: {0}")]
    Untrusted(String),
    /// The attested key is not the one the card (or the station relaying it) reported.
    #[error("the attested key is not the key the card returned")]
    KeyMismatch,
}

/// Verifies key attestations against a configured set of attestation roots; supplied by
/// `tessera-pki`.
pub trait AttestationVerifier: Send + Sync {
    /// Checks that `attestation` (the slot's attestation certificate) is signed by `intermediate`
    /// (the card's attestation certificate), which chains to a trusted root, at time `now`; that
    /// it attests `slot`; and that its public key is `public_key_der` (a SubjectPublicKeyInfo).
    fn verify(
        &self,
        slot: Slot,
        attestation: &[u8],
        intermediate: &[u8],
        public_key_der: &[u8],
        now: Timestamp,
    ) -> Result<KeyAttestation, AttestationError>;
}

/// Wraps a transport into a PIV card; supplied by `tessera-piv`.
pub type PivCardFactory = Arc<dyn Fn(Box<dyn CardTransport>) -> Box<dyn PivCard> + Send + Sync>;

// ---------------------------------------------------------------------------------------------
// Certificate authority
// ---------------------------------------------------------------------------------------------

/// The user and card data a certificate is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateSubject {
    pub user: User,
    /// The card's GUID as a UUID string (for the `urn:uuid:` SAN).
    pub card_uuid: String,
    /// The card's encoded FASC-N, for the SAN of a profile with `san_fasc_n`.
    pub fasc_n: Option<[u8; 25]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRequest {
    pub slot: Slot,
    /// The card-generated public key, DER SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
    pub profile: CertificateProfile,
    pub subject: CertificateSubject,
    pub not_before: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// Lower-case hex.
    pub serial: String,
    pub der: Vec<u8>,
    /// RFC 4514 string, e.g. `CN=Jane Doe,O=Tessera`.
    pub subject: String,
    pub issuer: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

#[async_trait]
pub trait CertificateAuthority: Send + Sync {
    async fn issue(&self, request: &CertificateRequest) -> Result<IssuedCertificate, PortError>;
    /// Issuing CA certificate followed by the root, PEM.
    fn chain_pem(&self) -> String;
    /// The signer of the cards' signed data objects (CHUID, biometrics, Security Object).
    fn content_signer(&self) -> Arc<dyn crate::fips201::ContentSigner>;
    /// The content signing certificate in use (made first when there is none).
    fn content_signer_certificate(
        &self,
    ) -> Result<crate::content_signing::CertificateSummary, PortError>;
    /// A new content signing key and certificate, used from now on; the old ones stay.
    fn renew_content_signer(&self)
        -> Result<crate::content_signing::CertificateSummary, PortError>;
}

// ---------------------------------------------------------------------------------------------
// Card faces
// ---------------------------------------------------------------------------------------------

/// The values a layout binds: `user.display_name`, `device.expires_on`, ... and the photo.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CardData {
    pub fields: std::collections::BTreeMap<String, String>,
    /// PNG or JPEG bytes of the holder's portrait.
    pub photo: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedCard {
    pub front_png: Vec<u8>,
    pub back_png: Option<Vec<u8>>,
    /// One page per side, CR80 size.
    pub pdf: Vec<u8>,
}

pub trait CardRenderer: Send + Sync {
    fn render(&self, layout: &Layout, data: &CardData) -> Result<RenderedCard, PortError>;
    /// Validates a layout before it is saved; the error names the side, element and line.
    fn check(&self, layout: &Layout) -> Result<(), PortError>;
}

// ---------------------------------------------------------------------------------------------
// People: photos and directories
// ---------------------------------------------------------------------------------------------

/// A rectangle of a photo to keep, in the photo's own pixels (the portal's crop box).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Checks and normalises portraits; supplied by `tessera-print`.
#[async_trait]
pub trait PhotoProcessor: Send + Sync {
    /// Accepts a JPEG or PNG within the size and dimension limits, crops it to `crop` when given,
    /// scales it down to the card's portrait size and returns it as a JPEG with no metadata (the
    /// EXIF block, location included, is not carried over). The error says, for a person, why the
    /// photo was refused. Runs off the async workers: decoding is CPU work.
    async fn normalise(&self, bytes: Vec<u8>, crop: Option<Crop>) -> Result<Vec<u8>, PortError>;
    /// The facial image a PIV card carries (5FC108) made from a stored portrait: a baseline
    /// JPEG, 24-bit RGB, 420 × 560, small enough for the object's container with its CBEFF
    /// header and signature. The error says why the portrait cannot be used.
    async fn card_facial_image(&self, portrait: Vec<u8>) -> Result<Vec<u8>, PortError>;
}

/// A directory of people (LDAP, Active Directory); supplied by `tessera-directory`.
#[async_trait]
pub trait Directory: Send + Sync {
    /// Reads every person the configuration selects, with their groups and photos. Either the
    /// whole selection is read or the call fails: a partial reading must never look complete,
    /// or the sync would disable the people it missed.
    async fn read(&self) -> Result<crate::people::SourceReading, PortError>;
    /// Where it reads from, for the sync report: `ldaps://dc1:636 ou=people,dc=example,dc=org`.
    fn describe(&self) -> String;
}

/// How the Users page sorts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserSort {
    #[default]
    Name,
    Uid,
    EmployeeId,
}

/// A search of the Users page: text found in the name, uid, employee id, email, department or a
/// group (case-insensitive, anywhere in the field; text of one or two characters matches the
/// beginning of the sort's key instead), one page of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserQuery {
    pub text: String,
    pub sort: UserSort,
    pub offset: u32,
    pub limit: u32,
    /// Only members of one of these groups (the operator's scope); `None` for everyone.
    pub groups: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// Stations: printers and readers on the operator's desk
// ---------------------------------------------------------------------------------------------

/// A printer as a station reports it, with the reader embedded in it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrinterInfo {
    pub name: String,
    pub kind: String,
    pub encoder_reader: Option<String>,
    pub state: String,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrintReceipt {
    pub printer_job: String,
    /// `completed`, `aborted`, ...
    pub state: String,
    pub message: String,
    /// Where the simulated printer wrote its output (empty for real printers).
    pub files: Vec<String>,
}

/// One card printer at a station: the simulated printer of the demo, an IPP printer, a spool
/// folder. Its encoder is either a card of its own (the simulated printer) or a reader the station
/// reaches some other way (PC/SC).
#[async_trait]
pub trait CardPrinter: Send + Sync {
    fn name(&self) -> &str;
    /// `simulated`, `ipp`, `spool`.
    fn kind(&self) -> &str;
    fn encoder_reader(&self) -> Option<&str>;
    /// What the printer says about itself now, in words an operator understands.
    async fn status(&self) -> PrinterInfo;
    /// Start: move a blank card to the encoder. Nothing to do by default: a real card printer
    /// takes a card from its hopper when the job arrives, or the operator inserts it by hand.
    async fn feed_card(&self) -> Result<(), PortError> {
        Ok(())
    }
    /// Cancel: move the card in the encoder out of the printer, untouched by printing. Nothing
    /// to do by default: a real card printer holds a card only while a job runs, and a card put
    /// in by hand is taken out by hand.
    async fn eject_card(&self) -> Result<(), PortError> {
        Ok(())
    }
    /// The card in the encoder, when the printer itself provides it (the simulated printer);
    /// None (the default) when the encoder is an ordinary reader.
    async fn connect_encoder(&self) -> Option<Result<Box<dyn CardTransport>, CardError>> {
        None
    }
    /// Prints the card faces; returns when the printer reports the job finished.
    async fn print(&self, job_name: &str, card: &RenderedCard) -> Result<PrintReceipt, PortError>;
    /// Whether a card sits in the encoder, when the printer itself can tell.
    async fn card_in_encoder(&self) -> Option<bool> {
        None
    }
}

#[async_trait]
pub trait StationPort: Send + Sync {
    async fn printers(&self) -> Result<Vec<PrinterInfo>, PortError>;
    async fn readers(&self) -> Result<Vec<String>, PortError>;
    /// Move a blank card from the hopper to the encoder of `printer` (Start).
    async fn feed_card(&self, printer: &str) -> Result<(), PortError>;
    /// Move the card in the encoder of `printer` out of it (an issuance cancelled).
    async fn eject_card(&self, printer: &str) -> Result<(), PortError>;
    /// Connect to the card in `reader`.
    async fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, CardError>;
    /// Whether a card is in `reader`, when the station can tell.
    async fn card_present(&self, _reader: &str) -> Option<bool> {
        None
    }
    /// Print the card faces on `printer`; returns when the printer reports the job finished.
    async fn print(
        &self,
        printer: &str,
        job_name: &str,
        card: &RenderedCard,
    ) -> Result<PrintReceipt, PortError>;
}

/// Finds the station hardware by station id (in-process demo station, or connected stations).
pub trait StationDirectory: Send + Sync {
    fn station(&self, id: &StationId) -> Option<Arc<dyn StationPort>>;
    /// Whether this process holds the station's connection (or runs it in process), so that
    /// it runs the station's jobs. One process alone holds every station it can reach.
    fn is_here(&self, id: &StationId) -> bool {
        self.station(id).is_some()
    }
    /// The stations whose connection this process holds now, for the job dispatcher; only a
    /// directory that may hold part of the stations (a replica's) lists them.
    fn here(&self) -> Vec<StationId> {
        Vec::new()
    }
}

// ---------------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Conflict,
    #[error("storage failure: {0}")]
    Backend(String),
    /// A conditional write found the record changed since it was read (another process, a
    /// recovered job, a second replica): nothing of the unit of work was written.
    #[error("changed meanwhile: {0}")]
    Stale(String),
}

/// An audit event before the store numbers and chains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEvent {
    pub at: Timestamp,
    pub code: u32,
    pub name: &'static str,
    pub operator: Option<OperatorId>,
    pub user: Option<UserId>,
    pub device: Option<DeviceId>,
    pub operation: Option<OperationId>,
    /// Never contains a secret.
    pub details: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: Timestamp,
    pub code: u32,
    pub name: String,
    pub operator: Option<String>,
    pub user: Option<String>,
    pub device: Option<String>,
    pub operation: Option<String>,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The status of one certificate, as CRLs and OCSP answers need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateState {
    /// Lower-case hex.
    pub serial: String,
    pub status: CertificateStatus,
    /// RFC 5280 reason name (`keyCompromise`, `certificateHold`, ...).
    pub reason: Option<String>,
    pub changed_at: Timestamp,
}

/// What ties a database to the data folders that may serve it: written once by `tessera init`
/// (or the demo's first start), checked by every later start.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Installation {
    pub organisation: String,
    /// SHA-256 (hex) of the issuing CA certificate's DER.
    pub ca_fingerprint: String,
    /// A value sealed under the master key: a data folder whose master key cannot open it does
    /// not belong to this database.
    pub master_key_check: String,
    /// `demo` or `production`.
    pub kind: String,
    pub created_at: Timestamp,
}

/// Persistence for the whole domain. Implemented on SQLite and PostgreSQL by `tessera-store`;
/// one conformance suite runs against both. Everything that a use case changes goes through
/// [`Store::commit`], so a state change never reaches the database without its audit events;
/// the few direct writes left are for data without a lifecycle (users, photos, sessions).
/// Which replica of the server holds a station's connection (see [`crate::dispatch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StationPresence {
    pub station: StationId,
    /// The replica's instance id.
    pub replica: String,
    /// Where the other replicas forward the station's requests.
    pub url: String,
    /// The connection's number at that replica.
    pub generation: u64,
    pub since_ms: i64,
}

/// A job taken from a station's queue, with what the replica that queued it handed over.
pub struct QueuedJob {
    pub job: IssuanceJob,
    /// Sealed; None when the job needs nothing beyond its document.
    pub handover: Option<Vec<u8>>,
}

#[async_trait]
pub trait Store: Send + Sync {
    // users
    async fn put_user(&self, user: &User) -> Result<(), StoreError>;
    async fn user(&self, uid: &UserId) -> Result<User, StoreError>;
    /// One page of the Users page's search, in the query's order.
    async fn find_users(&self, query: &UserQuery) -> Result<Vec<User>, StoreError>;
    /// The users among `uids` that exist, in no particular order (an import reads its file's
    /// people in batches this way).
    async fn users_by_uid(&self, uids: &[UserId]) -> Result<Vec<User>, StoreError>;
    /// Every user whose record `source` keeps, with whether they are disabled (a complete import
    /// or a sync disables those it no longer lists).
    async fn uids_of_source(&self, source: UserSource) -> Result<Vec<(UserId, bool)>, StoreError>;
    async fn count_users(&self) -> Result<u64, StoreError>;
    async fn put_photo(&self, uid: &UserId, photo: &[u8]) -> Result<(), StoreError>;
    async fn photo(&self, uid: &UserId) -> Result<Option<Vec<u8>>, StoreError>;
    /// A person's enrolled fingerprints (see [`crate::enrolment`]).
    async fn fingerprints(
        &self,
        uid: &UserId,
    ) -> Result<Option<crate::fips201::Fingerprints>, StoreError>;

    // policies, layouts, stations, settings
    async fn policies(&self) -> Result<Vec<DevicePolicy>, StoreError>;
    async fn layouts(&self) -> Result<Vec<Layout>, StoreError>;
    async fn stations(&self) -> Result<Vec<Station>, StoreError>;
    async fn pairing(
        &self,
        operator: &OperatorId,
        station: &StationId,
    ) -> Result<Option<PrinterPairing>, StoreError>;
    async fn settings(&self) -> Result<Settings, StoreError>;

    // operators and their sessions
    async fn operator(&self, id: &OperatorId) -> Result<Operator, StoreError>;
    async fn count_operators(&self) -> Result<u64, StoreError>;
    async fn operators(&self) -> Result<Vec<Operator>, StoreError>;
    /// The custom roles (the built-in ones are in [`crate::access::BuiltinRole`]).
    async fn roles(&self) -> Result<Vec<Role>, StoreError>;
    /// Stores a session by the SHA-256 of its cookie token (the token itself is never stored).
    async fn put_session(
        &self,
        token_hash: &str,
        operator: &OperatorId,
        csrf: &str,
        expires: Timestamp,
        card: Option<&str>,
    ) -> Result<(), StoreError>;
    /// A live session: its operator, CSRF token and, for a card sign-in, the serial of the
    /// certificate that opened it (the session lives only while that certificate is valid).
    async fn session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<StoredSession>, StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;

    // failed sign-ins, shared by every replica (see `crate::throttle`)
    /// The record of a name's failed sign-ins, by [`crate::throttle::key`], if there is one.
    async fn sign_in_record(
        &self,
        key: &str,
    ) -> Result<Option<crate::throttle::FailureRecord>, StoreError>;
    /// Counts a failed sign-in at `now`: the name's record becomes what
    /// [`crate::throttle::after_failure`] makes of it, read and written in one transaction that
    /// holds the record against every other writer (so concurrent failures on several replicas
    /// are all counted). Records whose time to be forgotten has come are deleted.
    async fn sign_in_failed(
        &self,
        key: &str,
        now: i64,
    ) -> Result<crate::throttle::Failure, StoreError>;
    /// Deletes the name's record (a good sign-in).
    async fn sign_in_succeeded(&self, key: &str) -> Result<(), StoreError>;

    // the two-person rule
    async fn approval(&self, id: &ApprovalId) -> Result<crate::approvals::Approval, StoreError>;
    /// The requests in `state` made at `since` or later, oldest first.
    async fn approvals(
        &self,
        state: crate::approvals::ApprovalState,
        since: Timestamp,
    ) -> Result<Vec<crate::approvals::Approval>, StoreError>;

    // devices and certificates
    async fn device(&self, id: &DeviceId) -> Result<Device, StoreError>;
    async fn devices_of_user(&self, uid: &UserId) -> Result<Vec<Device>, StoreError>;
    /// Every record of the card with this serial (one per issuance attempt), newest first
    /// (records created in the same second in no particular order).
    async fn devices_with_serial(&self, serial: &str) -> Result<Vec<Device>, StoreError>;
    async fn device_secret(
        &self,
        device: &DeviceId,
        kind: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    async fn certificates_of_device(
        &self,
        device: &DeviceId,
    ) -> Result<Vec<CertificateRecord>, StoreError>;
    /// The certificate this CA issued with `serial` (lower-case hex), or None.
    async fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>, StoreError>;
    /// Every certificate that is on hold or revoked (what a CRL lists).
    async fn revoked_or_held(&self) -> Result<Vec<CertificateState>, StoreError>;
    /// One certificate's status, or None if this CA never issued that serial.
    async fn certificate_state(&self, serial: &str)
        -> Result<Option<CertificateState>, StoreError>;

    // card stock
    /// The stock card with this serial, if it was imported.
    async fn stock_card(&self, serial: &str) -> Result<Option<StockCard>, StoreError>;
    /// The stock cards `filter` selects, by serial.
    async fn stock_cards(&self, filter: &StockFilter) -> Result<Vec<StockCard>, StoreError>;
    /// How many cards there are per model, location and state (only the non-zero counts).
    async fn stock_counts(&self) -> Result<Vec<StockCount>, StoreError>;

    // issuance jobs and print records
    async fn job(&self, id: &JobId) -> Result<IssuanceJob, StoreError>;
    async fn jobs_in_step(&self, step: JobStep) -> Result<Vec<IssuanceJob>, StoreError>;
    /// Every job in progress (a step of [`JobStep::OPEN`]), oldest first. There are at most as
    /// many as people or printers being issued to at once.
    async fn open_jobs(&self) -> Result<Vec<IssuanceJob>, StoreError>;
    async fn prints_of_device(&self, device: &DeviceId) -> Result<Vec<PrintRecord>, StoreError>;

    /// Commits every change in one transaction, or none of them: [`StoreError::Stale`] when a
    /// change's condition (expected state, step or lease) does not hold.
    async fn commit(&self, changes: &crate::changes::Changes) -> Result<(), StoreError>;
    /// Renews the lease of a job that `owner` holds; false when it holds it no longer.
    async fn renew_lease(
        &self,
        job: &JobId,
        owner: &str,
        expires_ms: i64,
    ) -> Result<bool, StoreError>;
    /// The lease on a job, if any (expired or not).
    async fn job_lease(&self, job: &JobId) -> Result<Option<crate::changes::Lease>, StoreError>;
    /// Takes over up to `limit` jobs in `steps` whose lease expired before `now_ms` (or that
    /// have none): `owner` holds them until `expires_ms`. Jobs that another process is taking
    /// over at the same moment are skipped (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
    async fn claim_abandoned_jobs(
        &self,
        steps: &[JobStep],
        owner: &str,
        now_ms: i64,
        expires_ms: i64,
        limit: u32,
    ) -> Result<Vec<IssuanceJob>, StoreError>;
    /// Takes up to `limit` jobs queued in one of `queues` (see [`crate::dispatch`]) whose wait
    /// has not run out at `now_ms`: `owner` holds them until `expires_ms`. Each comes with its
    /// handover, which the claim clears.
    async fn claim_queued_jobs(
        &self,
        queues: &[String],
        owner: &str,
        now_ms: i64,
        expires_ms: i64,
        limit: u32,
    ) -> Result<Vec<QueuedJob>, StoreError>;
    /// Records that a replica holds a station's connection now.
    async fn put_presence(&self, presence: &StationPresence) -> Result<(), StoreError>;
    /// Forgets a station's presence, if it is still that of `replica`'s connection `generation`.
    async fn clear_presence(
        &self,
        station: &StationId,
        replica: &str,
        generation: u64,
    ) -> Result<(), StoreError>;
    /// Which replica holds the station's connection, if any does.
    async fn presence(&self, station: &StationId) -> Result<Option<StationPresence>, StoreError>;
    /// The organisation this database belongs to, once `tessera init` (or the demo) made it.
    async fn installation(&self) -> Result<Option<Installation>, StoreError>;

    // audit
    async fn audit_events(
        &self,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;
}

/// A live session as the store keeps it (the token itself is never stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSession {
    pub operator: OperatorId,
    pub csrf: String,
    /// The serial of the certificate a card sign-in opened the session with.
    pub card: Option<String>,
}

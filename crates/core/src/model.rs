//! The domain model: plain data, serialisable, with no behaviour that needs I/O.

use crate::ids::*;
use crate::lifecycle::{DeviceState, Reason};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Seconds since the Unix epoch, UTC. Time always comes from a [`crate::ports::Clock`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn plus_days(self, days: i64) -> Self {
        Self(self.0 + days * 86_400)
    }
    fn datetime(self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(self.0)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }
    /// `2026-11-24`
    pub fn date(self) -> String {
        let d = self.datetime().date();
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    }
    /// `20261124`, the form PIV uses for the CHUID expiration date.
    pub fn compact_date(self) -> String {
        self.date().replace('-', "")
    }
    /// `20261124130502Z`, the form of a CBEFF header's creation date and validity period.
    pub fn cbeff_time(self) -> String {
        let t = self.datetime();
        format!(
            "{}{:02}{:02}{:02}Z",
            self.compact_date(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
    /// `2026-11-24 13:05 UTC`
    pub fn date_time(self) -> String {
        let t = self.datetime();
        format!("{} {:02}:{:02} UTC", self.date(), t.hour(), t.minute())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserSource {
    Local,
    Csv,
    Ldap,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub uid: UserId,
    pub given_name: String,
    pub family_name: String,
    pub display_name: String,
    pub email: String,
    pub upn: String,
    pub employee_id: String,
    pub department: String,
    pub title: String,
    pub groups: Vec<String>,
    pub source: UserSource,
    pub attributes: BTreeMap<String, String>,
    /// Whether a photo is stored (the bytes travel separately: they are large).
    pub has_photo: bool,
    /// A disabled person keeps their record and history but gets no new card; their cards
    /// followed the deprovisioning rule when they were disabled.
    #[serde(default)]
    pub disabled: bool,
    /// SHA-256 (hex) of the photo as its source gave it, before it was normalised: an import
    /// or sync that brings the same bytes again changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_digest: Option<String>,
}

/// PIV key reference of a slot (SP 800-73-4 part 1, table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    #[serde(rename = "9a")]
    PivAuthentication,
    #[serde(rename = "9c")]
    DigitalSignature,
    #[serde(rename = "9d")]
    KeyManagement,
    #[serde(rename = "9e")]
    CardAuthentication,
}

impl Slot {
    pub const ALL: [Slot; 4] = [
        Self::PivAuthentication,
        Self::DigitalSignature,
        Self::KeyManagement,
        Self::CardAuthentication,
    ];
    pub fn key_reference(self) -> u8 {
        match self {
            Self::PivAuthentication => 0x9A,
            Self::DigitalSignature => 0x9C,
            Self::KeyManagement => 0x9D,
            Self::CardAuthentication => 0x9E,
        }
    }
    /// `9a`, the short name tools such as yubico-piv-tool use.
    pub fn code(self) -> &'static str {
        match self {
            Self::PivAuthentication => "9a",
            Self::DigitalSignature => "9c",
            Self::KeyManagement => "9d",
            Self::CardAuthentication => "9e",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.code().eq_ignore_ascii_case(code))
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::PivAuthentication => "PIV Authentication",
            Self::DigitalSignature => "Digital Signature",
            Self::KeyManagement => "Key Management",
            Self::CardAuthentication => "Card Authentication",
        }
    }
}

/// Asymmetric algorithms a slot key can have (SP 800-78-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAlgorithm {
    EccP256,
    EccP384,
    Rsa2048,
    Rsa3072,
}

impl KeyAlgorithm {
    /// Algorithm identifier of GENERATE ASYMMETRIC KEY PAIR.
    pub fn piv_id(self) -> u8 {
        match self {
            Self::Rsa2048 => 0x07,
            // SP 800-78-5 and YubiKey firmware 5.7 both use 05 for RSA 3072.
            Self::Rsa3072 => 0x05,
            Self::EccP256 => 0x11,
            Self::EccP384 => 0x14,
        }
    }
    /// Whether a YubiKey of firmware `version` (`5.4.3`) generates keys of this algorithm:
    /// RSA 3072 came with firmware 5.7. A version that does not parse is given the benefit of
    /// the doubt (the card itself refuses what it lacks).
    pub fn offered_by_yubikey(self, version: &str) -> bool {
        let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
        let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) else {
            return true;
        };
        match self {
            Self::Rsa3072 => (major, minor) >= (5, 7),
            Self::EccP256 | Self::EccP384 | Self::Rsa2048 => true,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::EccP256 => "ECC P-256",
            Self::EccP384 => "ECC P-384",
            Self::Rsa2048 => "RSA 2048",
            Self::Rsa3072 => "RSA 3072",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyUsage {
    DigitalSignature,
    NonRepudiation,
    KeyEncipherment,
    KeyAgreement,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtendedKeyUsage {
    ClientAuth,
    SmartcardLogon,
    EmailProtection,
    PivCardAuth,
}

impl ExtendedKeyUsage {
    pub fn oid(self) -> &'static str {
        match self {
            Self::ClientAuth => "1.3.6.1.5.5.7.3.2",
            Self::SmartcardLogon => "1.3.6.1.4.1.311.20.2.2",
            Self::EmailProtection => "1.3.6.1.5.5.7.3.4",
            Self::PivCardAuth => "2.16.840.1.101.3.6.8",
        }
    }
}

/// What goes into the certificate of one slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateProfile {
    /// Subject DN template, e.g. `CN={{user.display_name}},UID={{user.uid}},O=Tessera`.
    pub subject_template: String,
    pub key_usage: Vec<KeyUsage>,
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// Put the user's UPN (Microsoft otherName) into the subject alternative name.
    pub san_upn: bool,
    pub san_email: bool,
    /// Put `urn:uuid:<card GUID>` into the subject alternative name (FIPS 201 requires it for 9A/9E).
    pub san_card_uuid: bool,
    pub validity_days: u32,
    /// certificatePolicies: policy OIDs (dotted); empty means the organisation's own arc for the
    /// slot (see `tessera-pki`'s profiles).
    #[serde(default)]
    pub policy_oids: Vec<String>,
    /// The pivInterim extension (2.16.840.1.101.3.6.9.1, interim_indicator FALSE): PIV
    /// Authentication and Card Authentication certificates carry it.
    #[serde(default)]
    pub piv_interim: bool,
    /// Put the card's FASC-N (otherName 2.16.840.1.101.3.6.6) into the subject alternative name:
    /// the Federal Common Policy profile asks for it.
    #[serde(default)]
    pub san_fasc_n: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotPolicy {
    pub slot: Slot,
    pub algorithm: KeyAlgorithm,
    pub profile: CertificateProfile,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinPolicy {
    pub min_length: u8,
    pub max_length: u8,
    pub retries: u8,
    /// Refuse weak PINs: one digit or a short group repeated, runs up or down, the common PINs
    /// (see [`crate::pin_rules`]). On unless an administrator turns it off; policies stored
    /// before the setting existed get it on.
    #[serde(default = "refuse_weak_default")]
    pub refuse_weak: bool,
    /// PINs this policy refuses besides the built-in ones (a site's own guessable PINs: the
    /// building's door code, the year it opened).
    #[serde(default)]
    pub refused: Vec<String>,
}

fn refuse_weak_default() -> bool {
    true
}

impl Default for PinPolicy {
    /// The PIV rule (SP 800-73-4: 6 to 8 digits), three tries, weak PINs refused.
    fn default() -> Self {
        Self {
            min_length: 6,
            max_length: 8,
            retries: 3,
            refuse_weak: true,
            refused: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PukPolicy {
    pub length: u8,
    pub retries: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicePolicy {
    pub id: PolicyId,
    pub name: String,
    pub description: String,
    pub pin: PinPolicy,
    pub puk: PukPolicy,
    pub slots: Vec<SlotPolicy>,
    pub write_chuid: bool,
    pub write_ccc: bool,
    pub write_printed_information: bool,
    /// Write the facial image (5FC108) made from the holder's photo, when there is one.
    #[serde(default)]
    pub write_facial_image: bool,
    /// Write the fingerprints (5FC103) from the holder's enrolment data, when there are some.
    #[serde(default)]
    pub write_fingerprints: bool,
    /// Refuse to issue to a person without enrolled fingerprints.
    #[serde(default)]
    pub require_fingerprints: bool,
    /// Write a Security Object (5FC106) with the hashes of the signed objects.
    #[serde(default)]
    pub write_security_object: bool,
    /// Card validity (CHUID expiry, printed expiry date) in days from issuance.
    pub card_validity_days: u32,
    /// User groups allowed to receive this policy; empty means everyone.
    pub allowed_groups: Vec<String>,
    /// When false the card is activated as soon as it is printed.
    pub activation_required: bool,
    /// Every key must be attested by the card (Yubico ATTEST) up to a trusted attestation root
    /// before it is certified.
    #[serde(default)]
    pub require_attestation: bool,
    /// Only cards in stock (imported, state `InStock`) may be issued under this policy; any
    /// other card is refused before anything is written to it (see [`crate::stock`]).
    #[serde(default)]
    pub require_stock: bool,
    /// The actions that one operator requests and a second approves (the two-person rule, see
    /// [`crate::approvals`]).
    #[serde(default)]
    pub two_person: Vec<crate::approvals::TwoPersonAction>,
    /// The wizard proposes this policy first to people in these groups (see
    /// [`crate::policies::default_for`] for the rule when a person's groups disagree).
    #[serde(default)]
    pub default_for_groups: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub id: LayoutId,
    pub name: String,
    pub description: String,
    pub front_svg: String,
    pub back_svg: Option<String>,
    pub allowed_groups: Vec<String>,
    /// Groups for which the wizard proposes this layout first.
    #[serde(default)]
    pub default_for_groups: Vec<String>,
    pub version: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PrinterKind {
    /// The demo's card printer: a virtual PIV card in the encoder, card faces written to files.
    Simulated,
    Ipp {
        uri: String,
        /// `ipps://` printers: a PEM file of CA certificates trusted besides the public roots.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_file: Option<String>,
    },
    Spool {
        dir: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrinterConfig {
    pub name: String,
    pub kind: PrinterKind,
    /// The smart-card reader built into the printer (its encoder), as PC/SC names it.
    pub encoder_reader: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Station {
    pub id: StationId,
    pub name: String,
    pub enabled: bool,
    pub printers: Vec<PrinterConfig>,
    /// How a station process on a workstation proves itself; None for the station that runs
    /// inside the server (the demo's "This workstation").
    #[serde(default)]
    pub access: Option<StationAccess>,
}

/// The secrets of a remote station, as hashes: the one-time enrolment token an administrator
/// hands to the workstation, and the long-lived credential the station got in exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StationAccess {
    /// SHA-256 (hex) of the enrolment token while it is unused; None once used.
    pub enrolment_token_hash: Option<String>,
    pub enrolment_expires: Option<Timestamp>,
    /// SHA-256 (hex) of the station credential, once enrolled.
    pub credential_hash: Option<String>,
    pub enrolled_at: Option<Timestamp>,
    /// A revoked station can never connect again; it must be enrolled anew with a new token.
    pub revoked: bool,
}

/// The printer and reader an operator chose at a station, proposed again next time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrinterPairing {
    pub operator: OperatorId,
    pub station: StationId,
    pub printer: String,
    pub reader: String,
}

pub use crate::access::{BuiltinRole, Permission, Role, Scope};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    pub id: OperatorId,
    pub display_name: String,
    /// Argon2id PHC string; never the password.
    pub password_hash: String,
    /// A built-in role (`administrator`, `help_desk`...) or a custom one.
    pub role: RoleId,
    pub enabled: bool,
    /// The users this operator sees and acts on.
    #[serde(default)]
    pub scope: Scope,
    /// Set for a new operator and after a reset: the password is a one-time password that must
    /// be changed before anything else.
    #[serde(default)]
    pub must_change_password: bool,
    /// The operator's authenticator app, once enrolled.
    #[serde(default)]
    pub totp: Option<TotpEnrolment>,
    /// The person this operator is in the user directory: a card Tessera issued to them signs
    /// the operator in.
    #[serde(default)]
    pub user: Option<UserId>,
    /// How many times the stored record was changed: an update names the revision it was
    /// decided from and fails as stale when another one came first (a reset during a sign-in).
    #[serde(skip)]
    pub revision: i64,
}

impl Operator {
    /// An enabled operator who sees every user, with no second factor yet.
    pub fn new(
        id: impl Into<String>,
        display_name: impl Into<String>,
        password_hash: String,
        role: RoleId,
    ) -> Self {
        Self {
            id: OperatorId::new(id),
            display_name: display_name.into(),
            password_hash,
            role,
            enabled: true,
            scope: Scope::All,
            must_change_password: false,
            totp: None,
            user: None,
            revision: 0,
        }
    }
}

/// A TOTP (RFC 6238) enrolment: the shared secret, sealed; the last time step accepted (a code
/// is good once); the SHA-256 of the unused recovery codes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpEnrolment {
    /// The 20-byte secret, sealed by the server's [`crate::ports::Sealer`], base64.
    pub sealed_secret: String,
    /// False between showing the QR code and the first correct code.
    pub confirmed: bool,
    pub last_step: i64,
    pub recovery_code_hashes: Vec<String>,
}

/// How the initial PIN is entered at issuance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinDisplayMode {
    /// Typed in a visible field.
    Displayed,
    /// Typed masked, twice.
    Disguised,
    /// Generated by the system, escrowed sealed, retrievable later by an authorised operator.
    NotDisplayed,
}

impl PinDisplayMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Displayed => "displayed",
            Self::Disguised => "disguised",
            Self::NotDisplayed => "not_displayed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Displayed, Self::Disguised, Self::NotDisplayed]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub card_printing_enabled: bool,
    /// How people come from CSV files and the directory, and what happens to their cards when
    /// they leave.
    #[serde(default)]
    pub people: crate::people::PeopleSettings,
    pub initial_pin_mode: PinDisplayMode,
    /// The roles whose operators must sign in with a TOTP code as well as their password.
    #[serde(default)]
    pub totp_roles: Vec<RoleId>,
    /// The shortest password an operator may choose.
    #[serde(default = "default_password_length")]
    pub password_min_length: usize,
    /// The policy the wizard proposes when none of the person's groups has a default of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_policy: Option<PolicyId>,
    /// The issuer type and FASC-N (see [`crate::fips201`]).
    #[serde(default)]
    pub fips201: crate::fips201::Fips201Settings,
}

fn default_password_length() -> usize {
    12
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            card_printing_enabled: true,
            initial_pin_mode: PinDisplayMode::Disguised,
            totp_roles: Vec::new(),
            password_min_length: default_password_length(),
            people: Default::default(),
            default_policy: None,
            fips201: Default::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    /// The card's serial (YubiKey-style GET SERIAL or the card's CUID), hex or decimal as the card gives it.
    pub serial: String,
    pub atr: String,
    pub device_type: String,
    pub state: DeviceState,
    pub reason: Reason,
    pub user: Option<UserId>,
    pub policy: Option<PolicyId>,
    pub layout: Option<LayoutId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub activated_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    /// Firmware version the card reported (GET VERSION), `5.7.2` form.
    #[serde(default)]
    pub firmware: Option<String>,
    /// A temporary card issued while this holder's card `id` is Suspended as forgotten; it is
    /// terminated when the original is restored ([`crate::help_desk::restore_original`]).
    #[serde(default)]
    pub temporary_for: Option<DeviceId>,
}

impl Device {
    /// What the card is, in the words of its answers at issuance: a YubiKey answers GET VERSION
    /// with its firmware (`YubiKey 5`), other PIV cards do not (`PIV card`).
    pub fn model(&self) -> String {
        card_model(self.firmware.as_deref())
    }
}

/// `YubiKey 5` for a card that answered GET VERSION with `5.x.y`, `PIV card` for any other.
pub fn card_model(firmware: Option<&str>) -> String {
    match firmware.and_then(|v| v.split('.').next()) {
        Some(major) => format!("YubiKey {major}"),
        None => "PIV card".into(),
    }
}

/// The card read in the job's reader right after Start, so that the operator can confirm it is
/// the card they fed before anything is written to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FedCard {
    /// As [`Device::serial`]: decimal from GET SERIAL, else hex of a stable id.
    pub serial: String,
    /// Hex, upper case.
    pub atr: String,
    /// GET VERSION's answer, when the card gave one.
    #[serde(default)]
    pub firmware: Option<String>,
}

impl FedCard {
    pub fn model(&self) -> String {
        card_model(self.firmware.as_deref())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateStatus {
    Valid,
    /// Revoked with reason certificateHold: the card is Pending or Suspended.
    OnHold,
    Revoked,
}

impl CertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::OnHold => "on_hold",
            Self::Revoked => "revoked",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Valid, Self::OnHold, Self::Revoked]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::Valid => "Valid",
            Self::OnHold => "On hold",
            Self::Revoked => "Revoked",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// Serial number, lower-case hex without separators.
    pub serial: String,
    pub device: DeviceId,
    pub user: UserId,
    pub slot: Slot,
    pub subject: String,
    pub issuer: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub status: CertificateStatus,
    pub revocation_reason: Option<String>,
    pub der: Vec<u8>,
    /// The card's proof that it generated the key, when the policy asked for one.
    #[serde(default)]
    pub attestation: Option<KeyAttestation>,
}

/// What a verified key attestation proves about a key and the card that generated it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttestation {
    /// The card's serial number as the attestation states it.
    pub serial: Option<u32>,
    /// Firmware version, `5.7.2` form.
    pub firmware: Option<String>,
    /// `never`, `once`, `always` (and later firmware's `match_once`, `match_always`).
    pub pin_policy: Option<String>,
    /// `never`, `always`, `cached`.
    pub touch_policy: Option<String>,
    /// Form factor as the card states it (`usb_a_keychain`, ...), if it does.
    pub form_factor: Option<String>,
    /// Subject of the trusted attestation root the chain ends in.
    pub root: String,
    /// The evidence, base64 DER: the slot's attestation certificate, then the card's F9
    /// certificate, kept so that the attestation can be verified again later (a root withdrawn,
    /// an audit).
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// Whether every key of a card was attested at issuance: it has certificates and each carries
/// the card's attestation.
pub fn keys_attested(certificates: &[CertificateRecord]) -> bool {
    !certificates.is_empty() && certificates.iter().all(|c| c.attestation.is_some())
}

/// Where an issuance job is in the wizard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStep {
    /// Printer and reader chosen, blank card fed; waiting for policy and PIN.
    Started,
    /// Personalising the card (progress moves).
    Issuing,
    /// Card personalised, card face being printed.
    Printing,
    /// Printed; waiting for the operator's Continue or Cancel.
    Printed,
    /// Printing failed; the card is personalised and Pending, Retry print is possible.
    PrintFailed,
    /// Continued: the card is Active.
    Completed,
    /// Cancelled: the card stays Pending, not activated.
    Cancelled,
    /// Failed: the card is `Failed`, its certificates revoked.
    Failed,
}

impl JobStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Issuing => "issuing",
            Self::Printing => "printing",
            Self::Printed => "printed",
            Self::PrintFailed => "print_failed",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Started,
            Self::Issuing,
            Self::Printing,
            Self::Printed,
            Self::PrintFailed,
            Self::Completed,
            Self::Cancelled,
            Self::Failed,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Failed)
    }
    /// Whether a job at this step holds its printer (or reader): from Start until its card has
    /// left the printer. At `Printed` the printed card is out (in the output hopper) and the job
    /// waits only for the operator's Continue or Cancel, so the printer takes the next card; the
    /// job still holds its person.
    pub fn holds_printer(self) -> bool {
        matches!(
            self,
            Self::Started | Self::Issuing | Self::Printing | Self::PrintFailed
        )
    }
    /// The steps of a job in progress: it holds its person (and, see [`Self::holds_printer`], its
    /// printer or reader) until it finishes. `PrintFailed` counts: its personalised card still
    /// sits in the printer.
    pub const OPEN: [JobStep; 5] = [
        Self::Started,
        Self::Issuing,
        Self::Printing,
        Self::Printed,
        Self::PrintFailed,
    ];
    /// Where the job is, in the wizard's words, for an operator who finds it in progress.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Started => "Configure Device, waiting for the device policy and PIN",
            Self::Issuing => "Issue Device, personalising the card",
            Self::Printing => "Print Device, printing the card",
            Self::Printed => "Print Device, waiting for Continue or Cancel",
            Self::PrintFailed => "Print Device, the print failed (Retry print or Cancel)",
            Self::Completed => "completed, the card is Active",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub code: String,
    pub message: String,
    /// What happened to the card, from what the job recorded; absent on jobs of earlier
    /// releases.
    #[serde(default)]
    pub card_outcome: Option<CardOutcome>,
}

/// What a job that ended in error did to the card, derived from its recorded facts (did it
/// reset the card, did the card get a record, how many certificates were issued and revoked), so
/// that the message tells the truth about the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardOutcome {
    /// Nothing was written to the card: it was refused (or lost) before personalisation.
    Untouched,
    /// Its reset to the factory state began and did not finish: its PIN and PUK may be blocked;
    /// nothing else was written.
    ResetInterrupted,
    /// It was reset to its factory state, and nothing was written after that.
    Reset,
    /// Personalisation had begun: its record is `Failed` and the certificates issued for it
    /// (this many) are revoked.
    Failed { revoked: u32 },
    /// It is personalised and `Pending` (the failure came while printing): nothing is lost.
    Personalised,
}

impl CardOutcome {
    /// The sentence the operator reads about the card, and what to do with it.
    pub fn sentence(&self) -> String {
        match self {
            Self::Untouched => {
                "Nothing was written to the card: it is as it was before this issuance.".into()
            }
            Self::ResetInterrupted => "The card was being reset to its factory state when this \
                 happened, so its PIN may be blocked; nothing else was written. Put it back into \
                 the printer and issue it again: Tessera resets it first."
                .into(),
            Self::Reset => "The card was reset to its factory state (its earlier record stays \
                 closed); nothing else was written. It can be issued again."
                .into(),
            Self::Failed { revoked: 0 } => "Personalisation had begun: the card is marked \
                 Failed; no certificate had been issued for it. Put it back into the printer and \
                 issue it again: Tessera resets it first."
                .into(),
            Self::Failed { revoked } => format!(
                "Personalisation had begun: the card is marked Failed and the {revoked} \
                 certificate{} issued for it {} revoked. Put it back into the printer and issue \
                 it again: Tessera resets it first.",
                if *revoked == 1 { "" } else { "s" },
                if *revoked == 1 { "is" } else { "are" },
            ),
            Self::Personalised => {
                "The card is personalised and stays Pending: nothing is lost.".into()
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuanceJob {
    pub id: JobId,
    pub operation: OperationId,
    pub operator: OperatorId,
    pub user: UserId,
    pub station: StationId,
    pub printer: String,
    pub reader: String,
    pub layout: LayoutId,
    pub policy: Option<PolicyId>,
    pub device: Option<DeviceId>,
    pub step: JobStep,
    /// 0 to 100.
    pub progress: u8,
    /// What is happening now, for the progress bar.
    pub message: String,
    pub error: Option<JobError>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The job issues a temporary card for this forgotten (Suspended) card of the same holder;
    /// the card it makes carries it as [`Device::temporary_for`].
    #[serde(default)]
    pub temporary_for: Option<DeviceId>,
    /// The card found in the reader after Start; None until it was read (or when it could not be
    /// read then: personalisation reads it again and says why if it still cannot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fed_card: Option<FedCard>,
}

impl IssuanceJob {
    /// What its error says happened to the card (`None` without an error, and for a job of an
    /// earlier release, which did not record it).
    pub fn card_outcome(&self) -> Option<CardOutcome> {
        self.error.as_ref().and_then(|e| e.card_outcome)
    }
}

/// One print job sent to a printer, kept whatever its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrintRecord {
    pub id: String,
    pub device: DeviceId,
    pub job: Option<JobId>,
    pub layout: LayoutId,
    pub layout_version: i64,
    pub printer: String,
    pub printer_job: Option<String>,
    pub state: String,
    pub message: String,
    pub files: Vec<String>,
    pub created_at: Timestamp,
}

/// Where a card of the stock is: on the shelf, with its holder, back from them, or gone.
/// The moves between them are [`crate::stock::transition`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockState {
    /// Blank, on the shelf of its location: the only state a card is issued from.
    InStock,
    /// Personalised for someone (its device record says for whom).
    Issued,
    /// Handed back (terminated, replaced, left the organisation); waits to be re-stocked or destroyed.
    Returned,
    /// Shredded, lost for good, or otherwise out of use. Final.
    Destroyed,
}

impl StockState {
    pub const ALL: [StockState; 4] = [Self::InStock, Self::Issued, Self::Returned, Self::Destroyed];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InStock => "in_stock",
            Self::Issued => "issued",
            Self::Returned => "returned",
            Self::Destroyed => "destroyed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s || m.label().eq_ignore_ascii_case(s))
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::InStock => "in stock",
            Self::Issued => "issued",
            Self::Returned => "returned",
            Self::Destroyed => "destroyed",
        }
    }
}

impl std::fmt::Display for StockState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// One card of the stock a vendor shipped, by the serial the card reports (GET SERIAL).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockCard {
    pub serial: String,
    /// The card model, e.g. `YubiKey 5 NFC`.
    pub model: String,
    /// The vendor's batch or delivery reference.
    pub batch: String,
    pub state: StockState,
    /// The station where the card is kept (or was issued); None when not known.
    pub location: Option<StationId>,
    pub imported_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Which stock cards a listing shows; empty fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StockFilter {
    pub model: Option<String>,
    pub state: Option<StockState>,
    pub location: Option<StationId>,
    /// At most this many cards, by serial (0: no limit).
    pub limit: u32,
}

/// How many cards of one model at one location are in one state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockCount {
    pub model: String,
    pub location: Option<StationId>,
    pub state: StockState,
    pub count: u64,
}

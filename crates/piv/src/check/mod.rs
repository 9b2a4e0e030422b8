//! `tessera card check`: reads any PIV card over a [`PivClient`] and judges every data object
//! against the standards, independently of how Tessera writes them — SP 800-73-4 (containers,
//! tags, order, lengths; CHUID; Security Object), SP 800-76-2 (CBEFF, INCITS 378, ISO/IEC
//! 19794-5), SP 800-78-4 (algorithms), RFC 5652 (the signatures) and the Common Policy / PIV-I
//! certificate profiles — and proves each certificate's key is the one in its slot. The result is
//! a [`CheckReport`] with one entry per object.

mod biometric;
mod certificates;
mod chuid;
mod cms;
mod containers;
mod crypto;
mod fascn;
mod keys;
mod plain_objects;
mod report;
mod security_object;
#[cfg(test)]
mod tests;

pub use fascn::decode as decode_fasc_n;
pub use report::{CheckReport, Finding, ObjectReport, Severity, Status};

use crate::apdu::{ins, sw, CommandApdu};
use crate::client::PivClient;
use crate::tlv;
use biometric::Modality;
use containers::Container;
use std::collections::BTreeMap;
use tessera_core::model::Slot;
use tessera_core::ports::{CardError, PivCard};
use tessera_core::secret::Pin;
use x509_cert::Certificate;

/// What to check with.
pub struct CheckOptions {
    /// The PIN: reads the biometrics and printed information, and lets the PIN-protected keys
    /// prove themselves. Without it those are reported "skipped: needs PIN".
    pub pin: Option<Pin>,
    /// CA certificates (issuing and root) the card's certificates must chain to; empty: the chain
    /// is not checked.
    pub ca: Vec<Certificate>,
    /// The time of the check, seconds since 1970 (expiry dates are judged against it).
    pub now_unix: u64,
    /// Report missing fingerprints as a failure (SP 800-73-4 makes them mandatory); `false` for
    /// issuers whose cards carry no biometrics by policy.
    pub require_fingerprints: bool,
}

impl CheckOptions {
    /// No PIN, no CA, now, fingerprints required.
    pub fn now() -> Self {
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self {
            pin: None,
            ca: Vec::new(),
            now_unix,
            require_fingerprints: true,
        }
    }
}

/// Parses the CA certificates of a PEM file (`--ca`).
///
/// Each `BEGIN CERTIFICATE` block is read on its own: x509-cert's `load_pem_chain` panics on
/// whitespace after the last block (x509-cert 0.2.5), and a PEM file with a trailing blank line
/// is ordinary.
pub fn parse_ca_pem(pem: &str) -> Result<Vec<Certificate>, String> {
    use der::DecodePem;
    const END: &str = "-----END CERTIFICATE-----";
    let mut certs = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let block = &rest[start..];
        let end = block
            .find(END)
            .ok_or("a certificate block has no END line")?
            + END.len();
        certs.push(Certificate::from_pem(&block[..end]).map_err(|e| e.to_string())?);
        rest = &block[end..];
    }
    if certs.is_empty() {
        return Err("the file holds no certificate".into());
    }
    Ok(certs)
}

/// One object as GET DATA found it.
#[derive(Clone, Debug)]
pub(crate) enum ReadObject {
    /// `raw`: the whole BER-TLV answer (tag 53 or 7E included), `value`: its content.
    Present {
        raw: Vec<u8>,
        value: Vec<u8>,
    },
    Missing,
    NeedsPin,
}

/// GET DATA of one object, keeping the answer whole (the Security Object hashes it that way).
async fn read(
    client: &mut PivClient,
    container: &Container,
) -> Result<(ReadObject, Option<String>), CardError> {
    let mut tag_list = Vec::new();
    tlv::push_tag(&mut tag_list, container.tag);
    let apdu = CommandApdu::new(0, ins::GET_DATA, 0x3F, 0xFF)
        .with_data(tlv::encode(0x5C, &tag_list))
        .with_ne(256);
    let response = client.exchange(apdu).await?;
    match response.sw {
        sw::SUCCESS => {}
        sw::NOT_FOUND => return Ok((ReadObject::Missing, None)),
        sw::SECURITY_STATUS_NOT_SATISFIED => return Ok((ReadObject::NeedsPin, None)),
        other => {
            return Ok((
                ReadObject::Missing,
                Some(format!("GET DATA answered {other:04X}")),
            ))
        }
    }
    let raw = response.data;
    let wrapper = if container.tag == containers::DISCOVERY.tag {
        0x7E
    } else {
        0x53
    };
    let problem = match tlv::parse_one(&raw) {
        Ok((t, rest)) if t.tag == wrapper && rest.is_empty() => {
            let value = t.value.to_vec();
            return Ok((ReadObject::Present { raw, value }, None));
        }
        Ok((t, rest)) if t.tag == wrapper => {
            let value = t.value.to_vec();
            let note = format!(
                "{} bytes follow the {wrapper:X} object in the GET DATA answer",
                rest.len()
            );
            return Ok((ReadObject::Present { raw, value }, Some(note)));
        }
        Ok((t, _)) => format!("the GET DATA answer is tag {:X}, not {wrapper:X}", t.tag),
        Err(e) => format!("the GET DATA answer is not BER-TLV: {e}"),
    };
    Ok((
        ReadObject::Present {
            raw,
            value: Vec::new(),
        },
        Some(problem),
    ))
}

fn hex_tag(tag: u32) -> String {
    format!("{tag:X}")
}

/// `YYYYMMDD` and `YYYYMMDDhhmmssZ` of a time.
fn dates(now_unix: u64) -> (String, String) {
    match der::DateTime::from_unix_duration(std::time::Duration::from_secs(now_unix)) {
        Ok(t) => {
            let day = format!("{:04}{:02}{:02}", t.year(), t.month(), t.day());
            let full = format!("{day}{:02}{:02}{:02}Z", t.hour(), t.minutes(), t.seconds());
            (day, full)
        }
        Err(_) => ("00000000".into(), "00000000000000Z".into()),
    }
}

/// The report of an object about to be checked and its value, or the finished report of one that
/// is missing or needs the PIN.
fn begin(
    container: &Container,
    read_objects: &BTreeMap<u32, ReadObject>,
    read_notes: &BTreeMap<u32, String>,
    options: &CheckOptions,
) -> Result<(ObjectReport, Vec<u8>), ObjectReport> {
    let required = container.mandatory
        && (container.tag != containers::FINGERPRINTS.tag || options.require_fingerprints);
    let mut report = ObjectReport::new(container.name, &hex_tag(container.tag), required);
    if let Some(note) = read_notes.get(&container.tag) {
        report.error("SP 800-73-4 part 2, 3.1.2 (GET DATA)", note.clone());
    }
    match read_objects.get(&container.tag) {
        Some(ReadObject::Present { value, .. }) => {
            report.length = Some(value.len());
            Ok((report, value.clone()))
        }
        Some(ReadObject::NeedsPin) => {
            report.info(
                "SP 800-73-4 part 1, table 3",
                "readable only after the PIN, and no PIN was given",
            );
            report.status = Status::SkippedNeedsPin;
            Err(report)
        }
        Some(ReadObject::Missing) | None if read_notes.contains_key(&container.tag) => {
            report.status = Status::Failed;
            Err(report)
        }
        Some(ReadObject::Missing) | None => {
            if required {
                report.error(
                    "SP 800-73-4 part 1, table 3",
                    "the card does not hold this mandatory object",
                );
            }
            report.status = Status::Missing;
            Err(report)
        }
    }
}

/// SELECTs the PIV application, reads every object of SP 800-73-4 table 3 that matters, checks
/// each, and proves the slot keys. Errors only when the card cannot be talked to (or is not PIV,
/// or refuses the PIN); everything else is a finding.
pub async fn check_card(
    client: &mut PivClient,
    options: &CheckOptions,
) -> Result<CheckReport, CardError> {
    let identity = client.select().await?;
    let (today, now_full) = dates(options.now_unix);

    let mut read_objects: BTreeMap<u32, ReadObject> = BTreeMap::new();
    let mut read_notes: BTreeMap<u32, String> = BTreeMap::new();
    for container in containers::ALL.iter().filter(|c| !c.needs_pin) {
        let (object, note) = read(client, container).await?;
        read_objects.insert(container.tag, object);
        if let Some(note) = note {
            read_notes.insert(container.tag, note);
        }
    }
    let pin_verified = match &options.pin {
        Some(pin) => {
            client.verify_pin(pin).await?;
            true
        }
        None => false,
    };
    for container in containers::ALL.iter().filter(|c| c.needs_pin) {
        let (object, note) = if pin_verified {
            read(client, container).await?
        } else {
            (ReadObject::NeedsPin, None)
        };
        read_objects.insert(container.tag, object);
        if let Some(note) = note {
            read_notes.insert(container.tag, note);
        }
    }

    let mut reports: BTreeMap<u32, ObjectReport> = BTreeMap::new();
    let start = |container: &Container| begin(container, &read_objects, &read_notes, options);
    macro_rules! present {
        ($container:expr) => {
            match start($container) {
                Ok(found) => Some(found),
                Err(report) => {
                    reports.insert($container.tag, report);
                    None
                }
            }
        };
    }

    // The CHUID first: the others refer to its FASC-N, GUID and content signer.
    let chuid_facts = match present!(&containers::CHUID) {
        Some((mut report, value)) => {
            let facts = chuid::check(&value, &today, options.now_unix, &mut report);
            reports.insert(containers::CHUID.tag, report);
            facts
        }
        None => chuid::ChuidFacts::default(),
    };
    if let Some((mut report, value)) = present!(&containers::DISCOVERY) {
        plain_objects::check_discovery(&value, &mut report);
        reports.insert(containers::DISCOVERY.tag, report);
    }
    if let Some((mut report, value)) = present!(&containers::CCC) {
        plain_objects::check_ccc(&value, &mut report);
        reports.insert(containers::CCC.tag, report);
    }
    if let Some((mut report, value)) = present!(&containers::KEY_HISTORY) {
        plain_objects::check_key_history(&value, &mut report);
        reports.insert(containers::KEY_HISTORY.tag, report);
    }
    if let Some((mut report, value)) = present!(&containers::PRINTED_INFORMATION) {
        plain_objects::check_printed_information(&value, &mut report);
        reports.insert(containers::PRINTED_INFORMATION.tag, report);
    }
    for modality in [Modality::FacialImage, Modality::Fingerprints] {
        if let Some((mut report, value)) = present!(modality.container()) {
            biometric::check(modality, &value, &chuid_facts, &now_full, &mut report);
            reports.insert(modality.container().tag, report);
        }
    }
    let mut slot_certs = Vec::new();
    for slot in Slot::ALL {
        let container = certificates::container(slot);
        if let Some((mut report, value)) = present!(container) {
            let cert = certificates::check_object(
                slot,
                &value,
                &chuid_facts,
                &options.ca,
                options.now_unix,
                &mut report,
            );
            certificates::settle(&mut report);
            reports.insert(container.tag, report);
            if let Some(cert) = cert {
                slot_certs.push((slot, cert));
            }
        }
    }
    if let Some((mut report, value)) = present!(&containers::SECURITY_OBJECT) {
        security_object::check(&value, &chuid_facts, &read_objects, &mut report);
        reports.insert(containers::SECURITY_OBJECT.tag, report);
    }
    if let Some(signer) = &chuid_facts.content_signer {
        if let Some(report) = reports.get_mut(&containers::CHUID.tag) {
            certificates::check_chain(signer, &options.ca, options.now_unix, report);
            report.settle(if report.status == Status::Unsigned {
                Status::Unsigned
            } else {
                Status::Ok
            });
        }
    }

    // In the order of SP 800-73-4 table 3, then the keys.
    let mut objects: Vec<ObjectReport> = containers::ALL
        .iter()
        .filter_map(|c| reports.remove(&c.tag))
        .collect();
    for (slot, cert) in &slot_certs {
        let mut report = ObjectReport::new(
            &format!("key_{}", slot.code()),
            &format!("{:02X}", slot.key_reference()),
            false,
        );
        keys::prove(client, *slot, cert, options.pin.as_ref(), &mut report).await;
        objects.push(report);
    }
    Ok(CheckReport::new(&identity.atr, pin_verified, objects))
}

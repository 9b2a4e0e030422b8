//! What a Yubico slot attestation certificate says beyond its key: the attested slot (in the
//! subject's common name) and the card's facts in Yubico's private extensions under
//! 1.3.6.1.4.1.41482.3. The values are the raw bytes inside each extension's OCTET STRING (not
//! DER-wrapped), except the serial, which is a DER INTEGER; this is how yubico-piv-tool writes
//! them and how piv-go (`piv/key.go`) and ykman read them.

use const_oid::db::rfc4519::CN;
use const_oid::ObjectIdentifier;
use der::asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef};
use der::Decode;
use tessera_core::model::Slot;
use tessera_core::ports::AttestationError;
use x509_cert::name::Name;
use x509_cert::Certificate;

const FIRMWARE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.3");
const SERIAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
const USAGE_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
const FORM_FACTOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.9");

/// The subject common name of a slot attestation: this prefix, then the slot's key reference in
/// hex (`YubiKey PIV Attestation 9a`).
const SUBJECT_PREFIX: &str = "YubiKey PIV Attestation ";

/// The facts read from the extensions; every one is optional because older firmware writes fewer.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    pub serial: Option<u32>,
    pub firmware: Option<String>,
    pub pin_policy: Option<String>,
    pub touch_policy: Option<String>,
    pub form_factor: Option<String>,
}

fn invalid(detail: impl Into<String>) -> AttestationError {
    AttestationError::Invalid(detail.into())
}

/// The first common name of `name`, whichever string type carries it.
pub(crate) fn common_name(name: &Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == CN)
        .and_then(|atv| {
            let value = &atv.value;
            Utf8StringRef::try_from(value)
                .map(|s| s.as_str().to_owned())
                .or_else(|_| PrintableStringRef::try_from(value).map(|s| s.as_str().to_owned()))
                .or_else(|_| Ia5StringRef::try_from(value).map(|s| s.as_str().to_owned()))
                .ok()
        })
}

/// Whether the certificate is a slot attestation (`CN=YubiKey PIV Attestation ..`).
pub(crate) fn is_slot_attestation(certificate: &Certificate) -> bool {
    common_name(&certificate.tbs_certificate.subject)
        .is_some_and(|cn| cn.starts_with(SUBJECT_PREFIX))
}

/// Checks that the certificate attests `slot`: its common name must be the prefix followed by
/// exactly the slot's key reference in hex, so `...Attestation 9a` never passes for `9c`.
pub(crate) fn check_slot(certificate: &Certificate, slot: Slot) -> Result<(), AttestationError> {
    let cn = common_name(&certificate.tbs_certificate.subject)
        .ok_or_else(|| invalid("the attestation certificate has no common name"))?;
    let attested = cn
        .strip_prefix(SUBJECT_PREFIX)
        .filter(|hex| hex.len() == 2)
        .and_then(|hex| u8::from_str_radix(hex, 16).ok());
    match attested {
        Some(reference) if reference == slot.key_reference() => Ok(()),
        Some(reference) => Err(invalid(format!(
            "the attestation is for slot {reference:02x}, not {}",
            slot.code()
        ))),
        None => Err(invalid(format!(
            "the attestation subject {cn:?} is not a YubiKey PIV slot attestation"
        ))),
    }
}

/// Reads Yubico's extensions. A malformed value is an error: the card signed it, so a value of
/// the wrong shape means the certificate is not what it claims to be.
pub(crate) fn facts(certificate: &Certificate) -> Result<Facts, AttestationError> {
    let mut facts = Facts::default();
    let mut seen: Vec<ObjectIdentifier> = Vec::new();
    for extension in certificate.tbs_certificate.extensions.iter().flatten() {
        let oid = extension.extn_id;
        if ![FIRMWARE, SERIAL, USAGE_POLICY, FORM_FACTOR].contains(&oid) {
            continue;
        }
        // RFC 5280 4.2: an extension appears at most once; two answers would be ambiguous.
        if seen.contains(&oid) {
            return Err(invalid(format!("the extension {oid} appears twice")));
        }
        seen.push(oid);
        let value = extension.extn_value.as_bytes();
        match oid {
            FIRMWARE => facts.firmware = Some(firmware(value)?),
            SERIAL => facts.serial = Some(serial(value)?),
            USAGE_POLICY => {
                let [pin, touch] = value else {
                    return Err(invalid(format!(
                        "the usage policy extension is {} bytes, expected 2",
                        value.len()
                    )));
                };
                facts.pin_policy = Some(pin_policy(*pin));
                facts.touch_policy = Some(touch_policy(*touch));
            }
            _ => {
                let [code] = value else {
                    return Err(invalid(format!(
                        "the form factor extension is {} bytes, expected 1",
                        value.len()
                    )));
                };
                facts.form_factor = form_factor(*code);
            }
        }
    }
    Ok(facts)
}

fn firmware(value: &[u8]) -> Result<String, AttestationError> {
    match value {
        [major, minor, patch] => Ok(format!("{major}.{minor}.{patch}")),
        _ => Err(invalid(format!(
            "the firmware extension is {} bytes, expected 3",
            value.len()
        ))),
    }
}

fn serial(value: &[u8]) -> Result<u32, AttestationError> {
    // A DER INTEGER; der's u32 refuses negatives and values above u32::MAX.
    u32::from_der(value).map_err(|_| invalid("the serial extension is not a 32-bit DER INTEGER"))
}

/// PIN policy codes as the card reports them (the same codes as in GENERATE ASYMMETRIC). Later
/// firmware may add codes: they are kept visible rather than refused, since they only describe.
fn pin_policy(code: u8) -> String {
    match code {
        1 => "never".into(),
        2 => "once".into(),
        3 => "always".into(),
        4 => "match_once".into(),
        5 => "match_always".into(),
        other => format!("unknown(0x{other:02x})"),
    }
}

fn touch_policy(code: u8) -> String {
    match code {
        1 => "never".into(),
        2 => "always".into(),
        3 => "cached".into(),
        other => format!("unknown(0x{other:02x})"),
    }
}

/// The form factor byte as Yubico's management application defines it: the low bits name the
/// shape, 0x80 marks a FIPS and 0x40 a CSPN model. Zero means the card does not say.
fn form_factor(code: u8) -> Option<String> {
    if code == 0 {
        return None;
    }
    let shape = match code & 0x3F {
        0x01 => "usb_a_keychain",
        0x02 => "usb_a_nano",
        0x03 => "usb_c_keychain",
        0x04 => "usb_c_nano",
        0x05 => "usb_c_lightning",
        0x06 => "usb_a_bio",
        0x07 => "usb_c_bio",
        _ => return Some(format!("unknown(0x{code:02x})")),
    };
    Some(match code & 0xC0 {
        0x00 => shape.to_owned(),
        0x80 => format!("{shape}_fips"),
        0x40 => format!("{shape}_cspn"),
        _ => format!("unknown(0x{code:02x})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_documented_codes() {
        assert_eq!(firmware(&[5, 7, 2]).unwrap(), "5.7.2");
        assert!(firmware(&[5, 7]).is_err());
        assert_eq!(
            serial(&[0x02, 0x04, 0x00, 0xF0, 0x0F, 0x14]).unwrap(),
            0x00F0_0F14
        );
        assert!(serial(&[0x02, 0x01, 0xFF]).is_err());
        assert!(serial(&[]).is_err());
        assert_eq!(pin_policy(4), "match_once");
        assert_eq!(pin_policy(9), "unknown(0x09)");
        assert_eq!(touch_policy(3), "cached");
        assert_eq!(form_factor(0), None);
        assert_eq!(form_factor(0x04).as_deref(), Some("usb_c_nano"));
        assert_eq!(form_factor(0x81).as_deref(), Some("usb_a_keychain_fips"));
        assert_eq!(form_factor(0x43).as_deref(), Some("usb_c_keychain_cspn"));
        assert_eq!(form_factor(0x0F).as_deref(), Some("unknown(0x0f)"));
        assert_eq!(form_factor(0xC1).as_deref(), Some("unknown(0xc1)"));
    }
}

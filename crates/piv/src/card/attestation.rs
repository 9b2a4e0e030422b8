//! Yubico key attestation (ATTEST, INS F9) as the virtual card performs it, and the simulated
//! device CA its attestation certificates chain to.
//!
//! A YubiKey leaves the factory with an attestation key and its "F9" certificate (object 5FFF01),
//! signed by Yubico's PIV CA. ATTEST of a slot holding a key generated on the card answers a DER
//! certificate for that key, signed by the F9 key: issuer the F9 certificate's subject, validity
//! copied from it, a random 16-byte serial, subject `CN=YubiKey PIV Attestation 9a`, and Yubico's
//! extensions under 1.3.6.1.4.1.41482.3 (firmware, serial, PIN and touch policy, form factor).
//! Source: Yubico "PIV Attestation OID Arc" and "PIV attestation"; the extension encodings are
//! the ones yubikit and piv-go parse (raw bytes in the extension value, except the serial, which
//! is a DER INTEGER).
//!
//! The virtual card's F9 certificate is signed by [`root_certificate_der`], a simulated root whose
//! key is derived from a seed published in this file. **Anyone can sign with it: it proves
//! nothing about a key.** It exists so the demo, `tessera card-sim` and the tests agree on one root
//! without files; a server must trust it only when explicitly configured to, for tests and demos.
//! All three certificates use ECDSA P-256 with SHA-256 (RFC 6979, hence a deterministic root).

use super::firmware::Firmware;
use super::keys::{self, SlotKey};
use crate::apdu::sw;
use der::asn1::{Any, BitString, GeneralizedTime, OctetString, PrintableStringRef, SetOfVec};
use der::asn1::{UtcTime, Utf8StringRef};
use der::oid::ObjectIdentifier;
use der::{DateTime, Decode, Encode};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use spki::{AlgorithmIdentifierOwned, EncodePublicKey, SubjectPublicKeyInfoOwned};
use std::sync::OnceLock;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use zeroize::Zeroize;

/// The simulated root's subject common name.
pub const ROOT_COMMON_NAME: &str = "Tessera Virtual Card Attestation Root (INSECURE, for tests)";
/// The common name of every virtual card's F9 certificate (its serialNumber attribute differs).
pub const DEVICE_COMMON_NAME: &str = "Tessera Virtual PIV Attestation";

/// The published seed of the simulated root's key. INSECURE by design: see the module comment.
const ROOT_SEED: &[u8] = b"Tessera virtual card attestation root: a published test key, v1";

/// Yubico's OIDs in attestation certificates (1.3.6.1.4.1.41482.3.x).
const OID_FIRMWARE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.3");
const OID_SERIAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
const OID_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
const OID_FORM_FACTOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.9");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");

/// Form factor 01, "USB-A keychain" (a YubiKey 5 NFC), what the virtual card claims to be.
pub const FORM_FACTOR_USB_A_KEYCHAIN: u8 = 0x01;
/// Touch policy "never": what a key generated without one has.
const TOUCH_NEVER: u8 = 0x01;

/// The card's attestation key (P-256 scalar, hex) and its F9 certificate (DER, hex). Kept by the
/// factory RESET, as on a YubiKey.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct AttestationKey {
    private: String,
    certificate: String,
}

impl Drop for AttestationKey {
    fn drop(&mut self) {
        self.private.zeroize();
    }
}

impl AttestationKey {
    /// A fresh attestation key for card `serial` and its F9 certificate signed by the root.
    pub(super) fn new(serial: u32, mut rng: &mut dyn CryptoRngCore) -> Result<Self, u16> {
        let secret = p256::SecretKey::random(&mut rng);
        let subject = name(&[
            (OID_COMMON_NAME, DEVICE_COMMON_NAME, false),
            (OID_SERIAL_NUMBER, &serial.to_string(), true),
        ])?;
        let spki = public_key_info(&secret)?;
        let extensions = ca_extensions(Some(0))?;
        let root = root_key();
        let certificate = sign(
            &root,
            random_serial(rng)?,
            root_name()?,
            fixed_validity()?,
            subject,
            spki,
            extensions,
        )?;
        Ok(Self {
            private: hex::encode(secret.to_bytes()),
            certificate: hex::encode(certificate),
        })
    }

    /// The F9 certificate, DER.
    pub(super) fn certificate(&self) -> Vec<u8> {
        hex::decode(&self.certificate).unwrap_or_default()
    }

    fn secret(&self) -> Result<p256::SecretKey, u16> {
        let bytes =
            zeroize::Zeroizing::new(hex::decode(&self.private).map_err(|_| sw::MEMORY_FAILURE)?);
        p256::SecretKey::from_slice(&bytes).map_err(|_| sw::MEMORY_FAILURE)
    }
}

/// What ATTEST states about the card besides the key.
pub(super) struct Device {
    pub serial: u32,
    pub firmware: Firmware,
}

/// The attestation certificate (DER) of `key` in `slot`, issued under `issuer` (the F9
/// certificate the card holds in 5FFF01, DER) with the attestation key.
pub(super) fn attest(
    attestation: &AttestationKey,
    issuer: &[u8],
    slot: u8,
    key: &SlotKey,
    device: &Device,
    rng: &mut dyn CryptoRngCore,
) -> Result<Vec<u8>, u16> {
    let issuer = Certificate::from_der(issuer).map_err(|_| sw::MEMORY_FAILURE)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&key.public_key_info()?)
        .map_err(|_| sw::MEMORY_FAILURE)?;
    let pin_policy = match key.pin_policy {
        keys::PIN_POLICY_DEFAULT => keys::default_pin_policy(slot),
        p => p,
    };
    let touch_policy = match key.touch_policy {
        0 => TOUCH_NEVER,
        t => t,
    };
    let serial_integer = device.serial.to_der().map_err(|_| sw::MEMORY_FAILURE)?;
    let extensions = vec![
        raw_extension(OID_FIRMWARE, &device.firmware)?,
        raw_extension(OID_SERIAL, &serial_integer)?,
        raw_extension(OID_POLICY, &[pin_policy, touch_policy])?,
        raw_extension(OID_FORM_FACTOR, &[FORM_FACTOR_USB_A_KEYCHAIN])?,
    ];
    let subject = name(&[(
        OID_COMMON_NAME,
        &format!("YubiKey PIV Attestation {slot:02x}"),
        false,
    )])?;
    sign(
        &attestation.secret()?,
        random_serial(rng)?,
        issuer.tbs_certificate.subject.clone(),
        issuer.tbs_certificate.validity,
        subject,
        spki,
        extensions,
    )
}

/// The simulated root certificate, DER. The same bytes on every machine and every run.
pub fn root_certificate_der() -> Vec<u8> {
    static ROOT: OnceLock<Vec<u8>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let key = root_key();
        let build = || -> Result<Vec<u8>, u16> {
            sign(
                &key,
                SerialNumber::new(&[0x01]).map_err(|_| sw::MEMORY_FAILURE)?,
                root_name()?,
                fixed_validity()?,
                root_name()?,
                public_key_info(&key)?,
                ca_extensions(None)?,
            )
        };
        // Every input is a constant; a failure here is a bug that every test would show.
        build().expect("the simulated attestation root builds")
    })
    .clone()
}

/// [`root_certificate_der`] as PEM (`-----BEGIN CERTIFICATE-----`), for scripts that configure
/// trust in it.
pub fn root_certificate_pem() -> String {
    der::pem::encode_string(
        "CERTIFICATE",
        der::pem::LineEnding::LF,
        &root_certificate_der(),
    )
    .unwrap_or_default()
}

fn root_key() -> p256::SecretKey {
    let digest = sha2::Sha256::digest(ROOT_SEED);
    // A SHA-256 output is a valid P-256 scalar except with probability about 2^-32; this seed's is.
    p256::SecretKey::from_slice(&digest).expect("the root seed hashes to a valid scalar")
}

fn root_name() -> Result<Name, u16> {
    name(&[(OID_COMMON_NAME, ROOT_COMMON_NAME, false)])
}

/// 2024-01-01 to 2099-12-31 for the root and every card's F9 certificate, so a card made from a
/// seeded generator is reproducible (and attestation certificates copy these dates).
fn fixed_validity() -> Result<Validity, u16> {
    let date =
        |y, m, d, h, min, s| DateTime::new(y, m, d, h, min, s).map_err(|_| sw::MEMORY_FAILURE);
    Ok(Validity {
        not_before: Time::UtcTime(
            UtcTime::from_date_time(date(2024, 1, 1, 0, 0, 0)?).map_err(|_| sw::MEMORY_FAILURE)?,
        ),
        // RFC 5280: dates from 2050 on are GeneralizedTime.
        not_after: Time::GeneralTime(GeneralizedTime::from_date_time(date(
            2099, 12, 31, 23, 59, 59,
        )?)),
    })
}

/// A name of one attribute per RDN, in the order given; `printable` picks PrintableString (as
/// X.520 wants for serialNumber) over UTF8String.
fn name(attributes: &[(ObjectIdentifier, &str, bool)]) -> Result<Name, u16> {
    let mut rdns = Vec::new();
    for &(oid, value, printable) in attributes {
        let value = if printable {
            Any::encode_from(&PrintableStringRef::new(value).map_err(|_| sw::MEMORY_FAILURE)?)
        } else {
            Any::encode_from(&Utf8StringRef::new(value).map_err(|_| sw::MEMORY_FAILURE)?)
        }
        .map_err(|_| sw::MEMORY_FAILURE)?;
        let atv = AttributeTypeAndValue { oid, value };
        let set = SetOfVec::try_from(vec![atv]).map_err(|_| sw::MEMORY_FAILURE)?;
        rdns.push(RelativeDistinguishedName::from(set));
    }
    Ok(RdnSequence::from(rdns))
}

fn public_key_info(key: &p256::SecretKey) -> Result<SubjectPublicKeyInfoOwned, u16> {
    let der = key
        .public_key()
        .to_public_key_der()
        .map_err(|_| sw::MEMORY_FAILURE)?;
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).map_err(|_| sw::MEMORY_FAILURE)
}

/// A positive 16-byte serial (Yubico's attestation serials are random 16-byte integers).
fn random_serial(rng: &mut dyn CryptoRngCore) -> Result<SerialNumber, u16> {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    // Top bit clear keeps it positive, a non-zero first byte keeps the DER minimal.
    bytes[0] = (bytes[0] & 0x7F) | 0x01;
    SerialNumber::new(&bytes).map_err(|_| sw::MEMORY_FAILURE)
}

/// Basic constraints (CA, critical) and key usage keyCertSign + cRLSign (critical).
fn ca_extensions(path_len: Option<u8>) -> Result<Vec<Extension>, u16> {
    let constraints = BasicConstraints {
        ca: true,
        path_len_constraint: path_len,
    };
    let usage = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign);
    let encode = |oid, value: Vec<u8>| -> Result<Extension, u16> {
        Ok(Extension {
            extn_id: oid,
            critical: true,
            extn_value: OctetString::new(value).map_err(|_| sw::MEMORY_FAILURE)?,
        })
    };
    Ok(vec![
        encode(
            OID_BASIC_CONSTRAINTS,
            constraints.to_der().map_err(|_| sw::MEMORY_FAILURE)?,
        )?,
        encode(
            OID_KEY_USAGE,
            usage.to_der().map_err(|_| sw::MEMORY_FAILURE)?,
        )?,
    ])
}

/// A non-critical extension whose value is `bytes` as they are (Yubico's encoding).
fn raw_extension(oid: ObjectIdentifier, bytes: &[u8]) -> Result<Extension, u16> {
    Ok(Extension {
        extn_id: oid,
        critical: false,
        extn_value: OctetString::new(bytes).map_err(|_| sw::MEMORY_FAILURE)?,
    })
}

/// Builds and signs a v3 certificate with ECDSA P-256 / SHA-256; answers its DER.
fn sign(
    key: &p256::SecretKey,
    serial_number: SerialNumber,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    extensions: Vec<Extension>,
) -> Result<Vec<u8>, u16> {
    use ecdsa::signature::Signer;
    let algorithm = AlgorithmIdentifierOwned {
        oid: OID_ECDSA_SHA256,
        parameters: None,
    };
    let tbs_certificate = TbsCertificate {
        version: Version::V3,
        serial_number,
        signature: algorithm.clone(),
        issuer,
        validity,
        subject,
        subject_public_key_info,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let tbs = tbs_certificate.to_der().map_err(|_| sw::MEMORY_FAILURE)?;
    let signer = p256::ecdsa::SigningKey::from(key);
    let signature: p256::ecdsa::Signature = signer.sign(&tbs);
    let certificate = Certificate {
        tbs_certificate,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(signature.to_der().as_bytes())
            .map_err(|_| sw::MEMORY_FAILURE)?,
    };
    certificate.to_der().map_err(|_| sw::MEMORY_FAILURE)
}

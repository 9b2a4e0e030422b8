//! The PIV data objects (SP 800-73-4 part 1, table 3): which tags exist, who may read them, and the
//! fixed templates the card answers SELECT and GET DATA 7E with.

use crate::tlv;

/// The full PIV application identifier (NIST RID A0 00 00 03 08, PIX 00 00 10 00 01 00).
pub const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];
/// The NIST registered application provider identifier.
pub const PIV_RID: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x08];

pub const DISCOVERY: u32 = 0x7E;
pub const CARD_AUTH_CERT: u32 = 0x5FC101;
pub const CHUID: u32 = 0x5FC102;
pub const FINGERPRINTS: u32 = 0x5FC103;
pub const PIV_AUTH_CERT: u32 = 0x5FC105;
pub const SECURITY_OBJECT: u32 = 0x5FC106;
pub const CCC: u32 = 0x5FC107;
pub const FACIAL_IMAGE: u32 = 0x5FC108;
pub const PRINTED_INFORMATION: u32 = 0x5FC109;
pub const SIGNATURE_CERT: u32 = 0x5FC10A;
pub const KEY_MANAGEMENT_CERT: u32 = 0x5FC10B;
pub const KEY_HISTORY: u32 = 0x5FC10C;
pub const IRIS_IMAGES: u32 = 0x5FC121;
pub const PAIRING_CODE: u32 = 0x5FC123;
pub const BIOMETRIC_GROUP_TEMPLATE: u32 = 0x7F61;
/// Yubico's attestation ("F9") certificate, a certificate object like the slot certificates.
pub const ATTESTATION_CERT: u32 = 0x5FFF01;

/// Largest object value the card stores (a YubiKey 5 stores at most 3052 bytes per object).
pub const MAX_OBJECT_LEN: usize = 3052;

/// Who may read an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadAccess {
    Always,
    /// After PIN verification (biometrics, printed information, pairing code).
    Pin,
}

/// The read rule of a data object the card knows, or `None` for a tag that is not a PIV object.
/// Vendor objects 5FFF00..5FFF15 are the ones Yubico's tools keep (admin data, MS roots).
pub fn read_access(tag: u32) -> Option<ReadAccess> {
    match tag {
        FINGERPRINTS | FACIAL_IMAGE | PRINTED_INFORMATION | IRIS_IMAGES | PAIRING_CODE => {
            Some(ReadAccess::Pin)
        }
        DISCOVERY | BIOMETRIC_GROUP_TEMPLATE => Some(ReadAccess::Always),
        0x5FC101..=0x5FC123 | 0x5FFF00..=0x5FFF15 => Some(ReadAccess::Always),
        _ => None,
    }
}

/// The certificate object of a slot key reference.
pub fn certificate_tag(key_reference: u8) -> Option<u32> {
    match key_reference {
        0x9A => Some(PIV_AUTH_CERT),
        0x9C => Some(SIGNATURE_CERT),
        0x9D => Some(KEY_MANAGEMENT_CERT),
        0x9E => Some(CARD_AUTH_CERT),
        _ => None,
    }
}

/// The discovery object: the AID and a PIN usage policy of "PIV PIN only" (40 00).
pub fn discovery_object() -> Vec<u8> {
    let mut inner = tlv::encode(0x4F, &PIV_AID);
    tlv::push(&mut inner, 0x5F2F, &[0x40, 0x00]);
    tlv::encode(DISCOVERY, &inner)
}

/// The application property template SELECT returns (SP 800-73-4 part 2, table 3).
pub fn application_property_template() -> Vec<u8> {
    let mut inner = tlv::encode(0x4F, &PIV_AID[5..]);
    tlv::push(&mut inner, 0x79, &tlv::encode(0x4F, &PIV_RID));
    tlv::push(&mut inner, 0x50, b"Tessera virtual PIV");
    let mut algorithms = Vec::new();
    for alg in [0x03, 0x08, 0x0A, 0x0C, 0x07, 0x05, 0x11, 0x14] {
        tlv::push(&mut algorithms, 0x80, &[alg]);
    }
    tlv::push(&mut algorithms, 0x06, &[0x00]);
    tlv::push(&mut inner, 0xAC, &algorithms);
    tlv::encode(0x61, &inner)
}

/// Whether `aid` selects PIV: the full AID or a truncation of it down to the RID.
pub fn selects_piv(aid: &[u8]) -> bool {
    aid.len() >= PIV_RID.len() && PIV_AID.starts_with(aid)
}

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
pub const SM_CERT_SIGNER: u32 = 0x5FC122;
pub const PAIRING_CODE: u32 = 0x5FC123;
pub const BIOMETRIC_GROUP_TEMPLATE: u32 = 0x7F61;
/// Yubico's attestation ("F9") certificate, a certificate object like the slot certificates.
pub const ATTESTATION_CERT: u32 = 0x5FFF01;

/// Largest object value a YubiKey 5 stores (3052 bytes per object); the card stores at least
/// that in every object, more where the standard's container is larger (see [`capacity`]).
pub const MAX_OBJECT_LEN: usize = 3052;
/// The largest container of SP 800-73-4: the facial image's.
pub const LARGEST_CONTAINER: usize = 12710;

/// The size of a PIV data container in SP 800-73-4 part 1, appendix A (the table of PIV data
/// containers): the bytes of an object's value (the content of tag 53) every PIV card holds.
pub fn container_size(tag: u32) -> Option<usize> {
    Some(match tag {
        CCC => 287,
        CHUID => 2916,
        PIV_AUTH_CERT | SIGNATURE_CERT | KEY_MANAGEMENT_CERT | CARD_AUTH_CERT => 1905,
        FINGERPRINTS => 4006,
        SECURITY_OBJECT => 1336,
        FACIAL_IMAGE => LARGEST_CONTAINER,
        PRINTED_INFORMATION => 245,
        DISCOVERY => 19,
        KEY_HISTORY => 128,
        // The twenty retired key management certificates.
        0x5FC10D..=0x5FC120 => 1905,
        IRIS_IMAGES => 7106,
        BIOMETRIC_GROUP_TEMPLATE => 65,
        SM_CERT_SIGNER => 2471,
        PAIRING_CODE => 12,
        _ => return None,
    })
}

/// The most this card stores in an object: the standard's container size where that is larger
/// than a YubiKey's 3052 bytes (the biometric objects), else 3052. The standard's sizes are the
/// capacities every card guarantees; a card may hold more.
pub fn capacity(tag: u32) -> usize {
    container_size(tag).map_or(MAX_OBJECT_LEN, |size| size.max(MAX_OBJECT_LEN))
}

/// What an operator calls the object `tag`, for messages (its tag in hex when it has no name).
pub fn object_name(tag: u32) -> String {
    match tag {
        CARD_AUTH_CERT => "Card Authentication certificate".into(),
        CHUID => "CHUID".into(),
        FINGERPRINTS => "fingerprints".into(),
        PIV_AUTH_CERT => "PIV Authentication certificate".into(),
        SECURITY_OBJECT => "Security Object".into(),
        CCC => "Card Capability Container".into(),
        FACIAL_IMAGE => "facial image".into(),
        PRINTED_INFORMATION => "printed information".into(),
        SIGNATURE_CERT => "Digital Signature certificate".into(),
        KEY_MANAGEMENT_CERT => "Key Management certificate".into(),
        other => format!("object {other:X}"),
    }
}

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

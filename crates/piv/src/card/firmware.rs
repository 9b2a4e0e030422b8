//! The two YubiKey 5 generations the virtual card emulates, told apart by firmware version: what
//! GET VERSION answers, which factory management key the card ships with (3DES before 5.7.0,
//! AES-192 from 5.7.0), which key algorithms GENERATE offers and which Yubico commands exist.
//!
//! Versions compare as byte arrays, which is the same order as major.minor.patch.

use crate::management_key;

/// A firmware version, major, minor, patch.
pub type Firmware = [u8; 3];

/// A YubiKey 5 series key before 5.7: 3DES factory management key, RSA 2048 and EC P-256/P-384.
pub const FIRMWARE_5_4_3: Firmware = [5, 4, 3];
/// A YubiKey 5 sold today: AES-192 factory management key, RSA 3072/4096 added.
pub const FIRMWARE_5_7_2: Firmware = [5, 7, 2];
/// What [`super::VirtualCard::blank`] makes: what a badge office buys today.
pub const DEFAULT_FIRMWARE: Firmware = FIRMWARE_5_7_2;
/// What a state file written before the card had a firmware version emulated (it answered 5.4.3).
pub const LEGACY_FIRMWARE: Firmware = FIRMWARE_5_4_3;

/// Yubico's firmware 5.7.0 changed the factory management key and added the new key algorithms
/// ("YubiKey 5.7 firmware specifics").
const GENERATION_5_7: Firmware = [5, 7, 0];
/// GET METADATA appeared with firmware 5.3.0 (yubikit `piv.py`, `get_*_metadata`).
const METADATA_SINCE: Firmware = [5, 3, 0];
/// ATTEST appeared with firmware 4.3.0 (Yubico "PIV attestation").
const ATTESTATION_SINCE: Firmware = [4, 3, 0];

/// Parses `5.7.2` (three decimal numbers up to 255, dot separated).
pub fn parse_firmware(text: &str) -> Result<Firmware, String> {
    let parts: Vec<&str> = text.trim().split('.').collect();
    let [major, minor, patch] = parts.as_slice() else {
        return Err(format!("firmware {text:?} is not of the form 5.7.2"));
    };
    let number = |s: &str| {
        s.parse::<u8>()
            .map_err(|_| format!("firmware {text:?}: {s:?} is not a number from 0 to 255"))
    };
    Ok([number(major)?, number(minor)?, number(patch)?])
}

/// `5.7.2` form.
pub fn firmware_string(firmware: Firmware) -> String {
    format!("{}.{}.{}", firmware[0], firmware[1], firmware[2])
}

/// The algorithm of the factory management key (0x010203040506070801020304050607080102030405060708
/// either way; only the cipher changed in 5.7.0).
pub fn factory_management_algorithm(firmware: Firmware) -> u8 {
    if firmware >= GENERATION_5_7 {
        management_key::ALG_AES192
    } else {
        management_key::ALG_3DES
    }
}

/// Whether GENERATE offers `algorithm` on this firmware; the caller still refuses algorithms the
/// emulator does not implement at all. RSA 3072 and 4096 (and Ed25519, X25519) came with 5.7.0.
pub fn offers_key_algorithm(firmware: Firmware, algorithm: u8) -> bool {
    use super::keys::{ALG_ED25519, ALG_RSA3072, ALG_RSA4096, ALG_X25519};
    match algorithm {
        ALG_RSA3072 | ALG_RSA4096 | ALG_ED25519 | ALG_X25519 => firmware >= GENERATION_5_7,
        _ => true,
    }
}

pub fn has_metadata(firmware: Firmware) -> bool {
    firmware >= METADATA_SINCE
}

pub fn has_attestation(firmware: Firmware) -> bool {
    firmware >= ATTESTATION_SINCE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_versions() {
        assert_eq!(parse_firmware("5.7.2"), Ok([5, 7, 2]));
        assert_eq!(parse_firmware(" 5.4.3 "), Ok([5, 4, 3]));
        for bad in ["5.7", "5.7.2.1", "5.x.2", "5.7.256", "", "5..2"] {
            assert!(parse_firmware(bad).is_err(), "{bad}");
        }
        assert_eq!(firmware_string([5, 7, 2]), "5.7.2");
        assert_eq!(
            factory_management_algorithm(FIRMWARE_5_4_3),
            management_key::ALG_3DES
        );
        assert_eq!(
            factory_management_algorithm(FIRMWARE_5_7_2),
            management_key::ALG_AES192
        );
        assert_eq!(
            factory_management_algorithm([5, 10, 0]),
            management_key::ALG_AES192
        );
        assert!(!has_metadata([5, 2, 7]) && has_metadata([5, 3, 0]));
        assert!(!offers_key_algorithm(FIRMWARE_5_4_3, 0x16));
        assert!(offers_key_algorithm(FIRMWARE_5_7_2, 0x16));
    }
}

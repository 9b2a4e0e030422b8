//! The two emulated YubiKey generations: 5.4.3 (3DES factory management key, no RSA 3072/4096)
//! and 5.7.2 (AES-192 factory management key, RSA 3072/4096, Ed25519, X25519), old state files,
//! and the firmware
//! gates of GET METADATA and ATTEST.

use super::tests::{cmd, get, mutual_auth, pin, pkcs1_sha256_block, send};
use super::*;
use crate::management_key::{ALG_3DES, ALG_AES192, ALG_AES256};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn card(firmware: Firmware) -> VirtualCard {
    VirtualCard::blank_with_firmware(12345678, firmware, StdRng::seed_from_u64(7))
}

fn generate(c: &mut VirtualCard, slot: u8, alg: u8) -> (Vec<u8>, u16) {
    let apdu = CommandApdu::new(0, 0x47, 0, slot)
        .with_data(tlv::encode(0xAC, &tlv::encode(0x80, &[alg])))
        .with_ne(65536)
        .to_bytes()
        .unwrap();
    send(c, &apdu)
}

#[test]
fn the_default_card_is_a_5_7_with_an_aes_192_factory_key() {
    let mut c = VirtualCard::blank(1, StdRng::seed_from_u64(1));
    assert_eq!(c.firmware(), [5, 7, 2]);
    assert_eq!(send(&mut c, &[0, 0xFD, 0, 0, 0]), (vec![5, 7, 2], 0x9000));
    let (meta, sw) = send(&mut c, &[0, 0xF7, 0, 0x9B, 0]);
    assert_eq!(sw, 0x9000);
    assert_eq!(tlv::find(&meta, 0x01), Some(&[ALG_AES192][..]));
    assert_eq!(tlv::find(&meta, 0x02), Some(&[0x00, 0x01][..]));
    assert_eq!(tlv::find(&meta, 0x05), Some(&[1u8][..]));
    let key = default_management_key();
    assert_eq!(mutual_auth(&mut c, ALG_3DES, &key), 0x6A86);
    assert_eq!(mutual_auth(&mut c, ALG_AES192, &key), 0x9000);
    // The same 24 bytes as a 3DES key are no longer the factory key of a 5.7.
    let mut set = vec![ALG_3DES, 0x9B, 24];
    set.extend_from_slice(&key);
    assert_eq!(send(&mut c, &cmd(0xFF, 0xFF, 0xFF, &set)).1, 0x9000);
    let (meta, _) = send(&mut c, &[0, 0xF7, 0, 0x9B, 0]);
    assert_eq!(tlv::find(&meta, 0x01), Some(&[ALG_3DES][..]));
    assert_eq!(tlv::find(&meta, 0x05), Some(&[0u8][..]));
}

#[test]
fn a_5_4_has_a_3des_factory_key_and_no_new_algorithms() {
    let mut c = card(firmware::FIRMWARE_5_4_3);
    assert_eq!(send(&mut c, &[0, 0xFD, 0, 0, 0]), (vec![5, 4, 3], 0x9000));
    let (meta, _) = send(&mut c, &[0, 0xF7, 0, 0x9B, 0]);
    assert_eq!(tlv::find(&meta, 0x01), Some(&[ALG_3DES][..]));
    assert_eq!(tlv::find(&meta, 0x05), Some(&[1u8][..]));
    assert_eq!(
        mutual_auth(&mut c, ALG_AES192, &default_management_key()),
        0x6A86
    );
    assert_eq!(
        mutual_auth(&mut c, ALG_3DES, &default_management_key()),
        0x9000
    );
    for alg in [
        keys::ALG_RSA3072,
        keys::ALG_RSA4096,
        keys::ALG_ED25519,
        keys::ALG_X25519,
    ] {
        assert_eq!(generate(&mut c, 0x9A, alg).1, 0x6A80, "{alg:02X}");
    }
    assert_eq!(generate(&mut c, 0x9A, keys::ALG_ECC_P256).1, 0x9000);
}

/// GENERAL AUTHENTICATE with a slot key: `field` 81 (sign) or 85 (ECDH); the 82 answer.
fn authenticate_with(c: &mut VirtualCard, alg: u8, slot: u8, field: u32, data: &[u8]) -> Vec<u8> {
    let mut inner = tlv::encode(0x82, &[]);
    tlv::push(&mut inner, field, data);
    let apdu = CommandApdu::new(0, 0x87, alg, slot)
        .with_data(tlv::encode(0x7C, &inner))
        .with_ne(65536)
        .to_bytes()
        .unwrap();
    let (answer, sw) = send(c, &apdu);
    assert_eq!(sw, 0x9000);
    tlv::find(tlv::parse_one(&answer).unwrap().0.value, 0x82)
        .unwrap()
        .to_vec()
}

#[test]
fn a_5_7_generates_and_uses_ed25519_and_x25519_keys() {
    let mut c = card(firmware::FIRMWARE_5_7_2);
    mutual_auth(&mut c, ALG_AES192, &default_management_key());
    let (answer, sw) = generate(&mut c, 0x9C, keys::ALG_ED25519);
    assert_eq!(sw, 0x9000);
    let public: [u8; 32] = tlv::find(tlv::parse_one(&answer).unwrap().0.value, 0x86)
        .unwrap()
        .try_into()
        .unwrap();
    let (answer, sw) = generate(&mut c, 0x9D, keys::ALG_X25519);
    assert_eq!(sw, 0x9000);
    let x_public: [u8; 32] = tlv::find(tlv::parse_one(&answer).unwrap().0.value, 0x86)
        .unwrap()
        .try_into()
        .unwrap();

    // Ed25519 signs the message itself; 9C wants the PIN right before.
    send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"123456")));
    let message = b"signed on the card";
    let signature = authenticate_with(&mut c, keys::ALG_ED25519, 0x9C, 0x81, message);
    let key = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
    key.verify_strict(message, &signature).unwrap();

    // X25519 agrees with a host's own key; a low-order point is refused.
    send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"123456")));
    let host = x25519_dalek::StaticSecret::from([9u8; 32]);
    let host_public = x25519_dalek::PublicKey::from(&host);
    let shared = authenticate_with(&mut c, keys::ALG_X25519, 0x9D, 0x85, host_public.as_bytes());
    let expected = host.diffie_hellman(&x25519_dalek::PublicKey::from(x_public));
    assert_eq!(shared, expected.as_bytes());
    let mut inner = tlv::encode(0x82, &[]);
    tlv::push(&mut inner, 0x85, &[0u8; 32]);
    let (_, sw) = send(
        &mut c,
        &cmd(0x87, keys::ALG_X25519, 0x9D, &tlv::encode(0x7C, &inner)),
    );
    assert_eq!(sw, 0x6A80);

    // Attested like any generated key, with the RFC 8410 public key.
    let (attestation, sw) = send(&mut c, &[0, 0xF9, 0x9C, 0, 0, 0, 0]);
    assert_eq!(sw, 0x9000);
    let mut spki = vec![
        0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    spki.extend_from_slice(&public);
    assert!(attestation
        .windows(spki.len())
        .any(|w| w == spki.as_slice()));
}

#[test]
fn a_5_7_generates_and_uses_rsa_4096_keys() {
    use rsa::traits::PublicKeyParts;
    use sha2::Digest;
    let mut c = card(firmware::FIRMWARE_5_7_2);
    mutual_auth(&mut c, ALG_AES192, &default_management_key());
    let (answer, sw) = generate(&mut c, 0x9A, keys::ALG_RSA4096);
    assert_eq!(sw, 0x9000);
    let template = tlv::parse_one(&answer).unwrap().0;
    let n = rsa::BigUint::from_bytes_be(tlv::find(template.value, 0x81).unwrap());
    let e = rsa::BigUint::from_bytes_be(tlv::find(template.value, 0x82).unwrap());
    let public = rsa::RsaPublicKey::new(n, e).unwrap();
    assert_eq!(public.n().bits(), 4096);
    let (meta, sw) = send(&mut c, &[0, 0xF7, 0, 0x9A, 0, 0, 0]);
    assert_eq!(sw, 0x9000);
    assert_eq!(tlv::find(&meta, 0x01), Some(&[keys::ALG_RSA4096][..]));

    send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"123456")));
    let hash = sha2::Sha256::digest(b"four thousand and ninety-six");
    let mut inner = tlv::encode(0x82, &[]);
    tlv::push(&mut inner, 0x81, &pkcs1_sha256_block(&hash, 512));
    let apdu = CommandApdu::new(0, 0x87, keys::ALG_RSA4096, 0x9A)
        .with_data(tlv::encode(0x7C, &inner))
        .with_ne(65536)
        .to_bytes()
        .unwrap();
    let (answer, sw) = send(&mut c, &apdu);
    assert_eq!(sw, 0x9000);
    let signature = tlv::find(tlv::parse_one(&answer).unwrap().0.value, 0x82).unwrap();
    assert_eq!(signature.len(), 512);
    public
        .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hash, signature)
        .unwrap();
}

#[test]
fn reset_restores_the_generation_s_factory_key_and_keeps_the_attestation() {
    let mut c = card(firmware::FIRMWARE_5_7_2);
    let (f9, sw) = get(&mut c, &[0x5F, 0xFF, 0x01]);
    assert_eq!(sw >> 8, 0x61);
    mutual_auth(&mut c, ALG_AES192, &default_management_key());
    let aes = [0x42u8; 32];
    let mut set = vec![ALG_AES256, 0x9B, 32];
    set.extend_from_slice(&aes);
    assert_eq!(send(&mut c, &cmd(0xFF, 0xFF, 0xFF, &set)).1, 0x9000);
    for _ in 0..3 {
        send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"000000")));
        let wrong = [pin(b"00000000"), pin(b"00000000")].concat();
        send(&mut c, &cmd(0x24, 0, 0x81, &wrong));
    }
    assert_eq!(send(&mut c, &[0, 0xFB, 0, 0]).1, 0x9000);
    assert_eq!(c.firmware(), [5, 7, 2]);
    assert_eq!(get(&mut c, &[0x5F, 0xFF, 0x01]).0, f9);
    assert_eq!(
        mutual_auth(&mut c, ALG_AES192, &default_management_key()),
        0x9000
    );
}

#[test]
fn older_firmware_has_neither_metadata_nor_attestation() {
    let mut c = card([5, 2, 7]);
    assert_eq!(send(&mut c, &[0, 0xF7, 0, 0x9B, 0]).1, 0x6D00);
    assert_eq!(send(&mut c, &[0, 0xF9, 0x9A, 0, 0]).1, 0x6A80);
    let mut c = card([4, 2, 0]);
    assert_eq!(send(&mut c, &[0, 0xF9, 0x9A, 0, 0]).1, 0x6D00);
}

#[test]
fn an_old_state_file_is_a_5_4_3_and_gets_an_attestation_key() {
    let dir = std::env::temp_dir().join(format!("tessera-piv-old-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("card.json");
    let mut c = card(firmware::FIRMWARE_5_4_3);
    mutual_auth(&mut c, ALG_3DES, &default_management_key());
    assert_eq!(generate(&mut c, 0x9E, keys::ALG_ECC_P256).1, 0x9000);
    c.save(&path).unwrap();
    // What the card wrote before it had a firmware version and an attestation key.
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let fields = json.as_object_mut().unwrap();
    assert!(fields.remove("firmware").is_some());
    assert!(fields.remove("attestation").is_some());
    fields["objects"].as_object_mut().unwrap().remove("5FFF01");
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();

    let mut back = VirtualCard::load(&path).unwrap();
    assert!(back.take_dirty(), "the new attestation key must be saved");
    assert_eq!(back.firmware(), [5, 4, 3]);
    assert_eq!(
        mutual_auth(&mut back, ALG_3DES, &default_management_key()),
        0x9000
    );
    assert_eq!(get(&mut back, &[0x5F, 0xFF, 0x01]).1 >> 8, 0x61);
    let (certificate, sw) = send(&mut back, &[0, 0xF9, 0x9E, 0, 0, 0, 0]);
    assert_eq!(sw, 0x9000);
    assert_eq!(certificate.first(), Some(&0x30));
    // Saved and loaded again, it keeps that key.
    back.save(&path).unwrap();
    let mut again = VirtualCard::load(&path).unwrap();
    assert!(!again.take_dirty());
    std::fs::remove_dir_all(&dir).unwrap();
}

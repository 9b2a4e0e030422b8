//! ATTEST and the simulated attestation chain: slot certificate under the card's F9 certificate
//! under the published simulated root, checked in Rust and, where it is installed, by openssl.

use super::tests::{get, mutual_auth, send};
use super::*;
use crate::management_key::ALG_AES192;
use der::{Decode, Encode};
use rand::rngs::StdRng;
use rand::SeedableRng;
use spki::DecodePublicKey;
use tessera_core::model::KeyAlgorithm;
use x509_cert::Certificate;

const SERIAL: u32 = 12345678;

fn card() -> VirtualCard {
    VirtualCard::blank(SERIAL, StdRng::seed_from_u64(11))
}

fn generate(c: &mut VirtualCard, slot: u8, alg: u8, pin_policy: u8) -> Vec<u8> {
    let mut template = tlv::encode(0x80, &[alg]);
    tlv::push(&mut template, 0xAA, &[pin_policy]);
    let apdu = CommandApdu::new(0, 0x47, 0, slot)
        .with_data(tlv::encode(0xAC, &template))
        .with_ne(65536)
        .to_bytes()
        .unwrap();
    let (answer, sw) = send(c, &apdu);
    assert_eq!(sw, 0x9000);
    answer
}

fn attest(c: &mut VirtualCard, slot: u8) -> (Vec<u8>, u16) {
    let apdu = CommandApdu::new(0, 0xF9, slot, 0)
        .with_ne(65536)
        .to_bytes()
        .unwrap();
    send(c, &apdu)
}

/// Whether `certificate`'s ECDSA P-256 signature verifies under `issuer`'s public key.
fn signed_by(certificate: &Certificate, issuer: &Certificate) -> bool {
    use ecdsa::signature::Verifier;
    let spki = issuer
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap();
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap();
    let tbs = certificate.tbs_certificate.to_der().unwrap();
    let Ok(signature) = p256::ecdsa::Signature::from_der(certificate.signature.raw_bytes()) else {
        return false;
    };
    key.verify(&tbs, &signature).is_ok()
}

fn extension<'a>(certificate: &'a Certificate, oid: &str) -> &'a [u8] {
    let oid = der::oid::ObjectIdentifier::new_unwrap(oid);
    certificate
        .tbs_certificate
        .extensions
        .as_ref()
        .and_then(|e| e.iter().find(|x| x.extn_id == oid))
        .map(|x| x.extn_value.as_bytes())
        .unwrap_or_else(|| panic!("no extension {oid}"))
}

#[test]
fn the_simulated_root_is_fixed_and_self_signed() {
    let der = attestation::root_certificate_der();
    assert_eq!(der, attestation::root_certificate_der());
    let root = Certificate::from_der(&der).unwrap();
    assert!(signed_by(&root, &root));
    assert_eq!(root.tbs_certificate.subject, root.tbs_certificate.issuer);
    assert!(root
        .tbs_certificate
        .subject
        .to_string()
        .contains("INSECURE"));
    let pem = attestation::root_certificate_pem();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    let (label, from_pem) = der::pem::decode_vec(pem.as_bytes()).unwrap();
    assert_eq!((label, from_pem), ("CERTIFICATE", der));
}

#[test]
fn attest_chains_a_generated_key_to_the_simulated_root() {
    let mut c = card();
    mutual_auth(&mut c, ALG_AES192, &default_management_key());
    let generated = generate(&mut c, 0x9A, keys::ALG_ECC_P256, keys::PIN_POLICY_DEFAULT);

    let (slot_der, sw) = attest(&mut c, 0x9A);
    assert_eq!(sw, 0x9000);
    // The F9 object is longer than a short answer: 61xx, then GET RESPONSE.
    let (first, sw) = get(&mut c, &[0x5F, 0xFF, 0x01]);
    assert_eq!(sw >> 8, 0x61);
    let (rest, sw) = send(&mut c, &[0, 0xC0, 0, 0, (sw & 0xFF) as u8]);
    assert_eq!(sw, 0x9000);
    let object = [first, rest].concat();
    let value = tlv::parse_one(&object).unwrap().0;
    assert_eq!(value.tag, 0x53);
    let f9_der = crate::data_objects::certificate_from_object(value.value).unwrap();

    let slot = Certificate::from_der(&slot_der).unwrap();
    let f9 = Certificate::from_der(&f9_der).unwrap();
    let root = Certificate::from_der(&attestation::root_certificate_der()).unwrap();
    assert!(signed_by(&slot, &f9));
    assert!(signed_by(&f9, &root));
    assert!(!signed_by(&slot, &root));
    assert_eq!(slot.tbs_certificate.issuer, f9.tbs_certificate.subject);
    assert_eq!(f9.tbs_certificate.issuer, root.tbs_certificate.subject);
    assert_eq!(slot.tbs_certificate.validity, f9.tbs_certificate.validity);
    assert_eq!(
        slot.tbs_certificate.subject.to_string(),
        "CN=YubiKey PIV Attestation 9a"
    );
    assert!(f9
        .tbs_certificate
        .subject
        .to_string()
        .contains(&SERIAL.to_string()));
    assert_eq!(slot.tbs_certificate.serial_number.as_bytes().len(), 16);
    // The attested key is, byte for byte, the SubjectPublicKeyInfo a host builds from GENERATE.
    let spki = crate::public_key::spki_from_template(KeyAlgorithm::EccP256, &generated).unwrap();
    assert_eq!(
        slot.tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap(),
        spki
    );
    assert_eq!(extension(&slot, "1.3.6.1.4.1.41482.3.3"), [5, 7, 2]);
    assert_eq!(
        extension(&slot, "1.3.6.1.4.1.41482.3.7"),
        SERIAL.to_der().unwrap()
    );
    // 9A's default PIN policy is once (02); no touch (01).
    assert_eq!(extension(&slot, "1.3.6.1.4.1.41482.3.8"), [0x02, 0x01]);
    assert_eq!(extension(&slot, "1.3.6.1.4.1.41482.3.9"), [0x01]);

    // Each attestation is a new certificate (random serial) for the same key.
    let (again, _) = attest(&mut c, 0x9A);
    assert_ne!(again, slot_der);

    openssl_verifies(&attestation::root_certificate_der(), &f9_der, &slot_der);
}

#[test]
fn attest_states_an_rsa_key_and_its_policy() {
    let mut c = VirtualCard::blank_with_firmware(SERIAL, [5, 4, 3], StdRng::seed_from_u64(3));
    mutual_auth(
        &mut c,
        crate::management_key::ALG_3DES,
        &default_management_key(),
    );
    let generated = generate(&mut c, 0x9C, keys::ALG_RSA2048, keys::PIN_POLICY_NEVER);
    let (der, sw) = attest(&mut c, 0x9C);
    assert_eq!(sw, 0x9000);
    let slot = Certificate::from_der(&der).unwrap();
    let spki = crate::public_key::spki_from_template(KeyAlgorithm::Rsa2048, &generated).unwrap();
    assert_eq!(
        slot.tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap(),
        spki
    );
    assert_eq!(
        slot.tbs_certificate.subject.to_string(),
        "CN=YubiKey PIV Attestation 9c"
    );
    assert_eq!(extension(&slot, "1.3.6.1.4.1.41482.3.3"), [5, 4, 3]);
    assert_eq!(extension(&slot, "1.3.6.1.4.1.41482.3.8"), [0x01, 0x01]);
}

#[test]
fn attest_refuses_empty_slots_imported_keys_and_other_references() {
    let mut c = card();
    // No key: 6A80, as a YubiKey answers.
    assert_eq!(attest(&mut c, 0x9A).1, 0x6A80);
    assert_eq!(attest(&mut c, 0xF9).1, 0x6A86);
    assert_eq!(attest(&mut c, 0x9B).1, 0x6A86);
    assert_eq!(send(&mut c, &[0, 0xF9, 0x9A, 0x01, 0]).1, 0x6A86);
    mutual_auth(&mut c, ALG_AES192, &default_management_key());
    generate(&mut c, 0x9E, keys::ALG_ECC_P384, keys::PIN_POLICY_DEFAULT);
    assert_eq!(attest(&mut c, 0x9E).1, 0x9000);
    // An imported key (the emulator has no IMPORT; a state file can say so).
    if let Some(key) = c.state.keys.get_mut("9e") {
        key.origin = keys::ORIGIN_IMPORTED;
    }
    assert_eq!(attest(&mut c, 0x9E).1, 0x6A80);
}

#[test]
fn a_replaced_f9_certificate_becomes_the_issuer() {
    let mut c = card();
    mutual_auth(&mut c, ALG_AES192, &default_management_key());
    generate(&mut c, 0x9D, keys::ALG_ECC_P256, keys::PIN_POLICY_DEFAULT);
    // Another card's F9 certificate in 5FFF01: the issuer name follows the object.
    let other = VirtualCard::blank(87654321, StdRng::seed_from_u64(5));
    let other_f9 = other.state.attestation.as_ref().unwrap().certificate();
    let object = crate::data_objects::certificate_object(&other_f9);
    assert_eq!(
        super::tests::put(&mut c, &[0x5F, 0xFF, 0x01], &object),
        0x9000
    );
    let (der, sw) = attest(&mut c, 0x9D);
    assert_eq!(sw, 0x9000);
    let slot = Certificate::from_der(&der).unwrap();
    let issuer = Certificate::from_der(&other_f9).unwrap();
    assert_eq!(slot.tbs_certificate.issuer, issuer.tbs_certificate.subject);
    // Garbage in 5FFF01: the card falls back to its own certificate.
    assert_eq!(
        super::tests::put(&mut c, &[0x5F, 0xFF, 0x01], &[0x70, 1, 0]),
        0x9000
    );
    assert_eq!(attest(&mut c, 0x9D).1, 0x9000);
}

/// `openssl verify -CAfile root.pem -untrusted f9.pem slot.pem`, when openssl is installed.
fn openssl_verifies(root: &[u8], f9: &[u8], slot: &[u8]) {
    let dir = std::env::temp_dir().join(format!("tessera-piv-attest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, der: &[u8]| {
        let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let (root, f9, slot) = (
        write("root.pem", root),
        write("f9.pem", f9),
        write("slot.pem", slot),
    );
    let output = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&root)
        .arg("-untrusted")
        .arg(&f9)
        .arg(&slot)
        .output();
    std::fs::remove_dir_all(&dir).unwrap();
    match output {
        Err(e) => eprintln!("openssl not run ({e}); the chain was checked in Rust only"),
        Ok(out) => assert!(
            out.status.success(),
            "openssl verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

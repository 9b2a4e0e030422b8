//! The verifier against real YubiKey chains (piv-go's published test data) and generated ones:
//! what is accepted, and every way a chain, a slot or a key is refused.

use super::*;
use const_oid::db::rfc5912::ECDSA_WITH_SHA_256;
use der::asn1::{BitString, OctetString};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::str::FromStr;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

/// 2024-01-01, inside every real and generated certificate's validity.
const NOW: Timestamp = Timestamp(1_704_067_200);

fn pem_der(pem: &str) -> Vec<u8> {
    pem_blocks(pem).unwrap().remove(0)
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).unwrap()
}

fn spki(key: &SigningKey) -> Vec<u8> {
    key.verifying_key().to_public_key_der().unwrap().into_vec()
}

fn yubico_extension(arc: u32, value: &[u8]) -> Extension {
    Extension {
        extn_id: ObjectIdentifierExt::yubico(arc),
        critical: false,
        extn_value: OctetString::new(value).unwrap(),
    }
}

/// basicConstraints cA=true, as an attestation key's certificate under a configured root has.
fn ca_extension() -> Extension {
    let value = x509_cert::ext::pkix::BasicConstraints {
        ca: true,
        path_len_constraint: None,
    }
    .to_der()
    .unwrap();
    Extension {
        extn_id: const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
        critical: true,
        extn_value: OctetString::new(value).unwrap(),
    }
}

struct ObjectIdentifierExt;
impl ObjectIdentifierExt {
    fn yubico(arc: u32) -> const_oid::ObjectIdentifier {
        const_oid::ObjectIdentifier::new(&format!("1.3.6.1.4.1.41482.3.{arc}")).unwrap()
    }
}

/// A certificate for `subject_key` named `subject`, issued by `issuer` and signed by `signer`,
/// valid 2020-2040 (both UTCTime).
fn certificate(
    issuer: &str,
    subject: &str,
    subject_key: &[u8],
    signer: &SigningKey,
    extensions: Vec<Extension>,
) -> Vec<u8> {
    let algorithm = AlgorithmIdentifierOwned {
        oid: ECDSA_WITH_SHA_256,
        parameters: None,
    };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[1, 2, 3]).unwrap(),
        signature: algorithm.clone(),
        issuer: Name::from_str(issuer).unwrap(),
        validity: Validity {
            not_before: crate::time::to_x509(Timestamp(1_577_836_800)).unwrap(),
            not_after: crate::time::to_x509(Timestamp(2_208_988_800)).unwrap(),
        },
        subject: Name::from_str(subject).unwrap(),
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(subject_key).unwrap(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: (!extensions.is_empty()).then_some(extensions),
    };
    let signature: DerSignature = signer.sign(&tbs.to_der().unwrap());
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(signature.as_bytes()).unwrap(),
    }
    .to_der()
    .unwrap()
}

/// Software stand-ins for a root, a card's F9 key and a slot key, with Yubico's extensions.
struct Chain {
    root: Vec<u8>,
    f9: Vec<u8>,
    attestation: Vec<u8>,
    slot_key: Vec<u8>,
}

fn chain(slot_cn: &str) -> Chain {
    let (root_key, f9_key, slot_key) = (key(1), key(2), key(3));
    let root = certificate(
        "CN=Test Root",
        "CN=Test Root",
        &spki(&root_key),
        &root_key,
        vec![],
    );
    let f9 = certificate(
        "CN=Test Root",
        "CN=Yubico PIV Attestation",
        &spki(&f9_key),
        &root_key,
        vec![ca_extension()],
    );
    let attestation = certificate(
        "CN=Yubico PIV Attestation",
        slot_cn,
        &spki(&slot_key),
        &f9_key,
        vec![
            yubico_extension(3, &[5, 7, 2]),
            yubico_extension(7, &[0x02, 0x04, 0x01, 0xC9, 0xC3, 0x80]),
            yubico_extension(8, &[4, 2]),
            yubico_extension(9, &[0x83]),
        ],
    );
    Chain {
        root,
        f9,
        attestation,
        slot_key: spki(&slot_key),
    }
}

fn trusting(root: &[u8]) -> AttestationRoots {
    AttestationRoots::empty().with_root_der(root).unwrap()
}

#[test]
fn shipped_roots_parse_and_are_self_signed() {
    for pem in YUBICO_ROOTS {
        let der = pem_der(pem);
        let root = Certificate::from_der(&der).unwrap();
        assert_eq!(root.tbs_certificate.issuer, root.tbs_certificate.subject);
        signed_by(&der, &root, &root).unwrap();
    }
    let yubico = AttestationRoots::yubico();
    assert_eq!(
        yubico.roots(),
        [
            "CN=Yubico PIV Root CA Serial 263751",
            "CN=Yubico U2F Root CA Serial 457200631",
            "CN=Yubico Attestation Root 1",
        ]
    );
    // Every shipped intermediate links up to a shipped root through the others.
    assert_eq!(yubico.intermediates.len(), YUBICO_INTERMEDIATES.len());
    for link in &yubico.intermediates {
        let subject = link.subject();
        let issuer = yubico
            .roots
            .iter()
            .chain(&yubico.intermediates)
            .find(|c| signed_by(&link.der, &link.certificate, &c.certificate).is_ok());
        assert!(issuer.is_some(), "{subject} has no shipped issuer");
    }
}

#[test]
fn a_real_yubikey_chain_verifies_against_the_shipped_root() {
    // A YubiKey's slot 9a attestation and F9 certificate, published as test data by piv-go
    // (github.com/go-piv/piv-go, piv/key_test.go, TestVerify "ValidChain"); F9 is issued by
    // Yubico PIV Root CA Serial 263751.
    let f9 = pem_der(include_str!("testdata/piv-go-2016-f9.pem"));
    let attestation = pem_der(include_str!("testdata/piv-go-2016-9a.pem"));
    let key = attested_key(&attestation).unwrap();
    let yubico = AttestationRoots::yubico();
    let facts = yubico
        .verify(Slot::PivAuthentication, &attestation, &f9, &key, NOW)
        .unwrap();
    assert_eq!(facts.root, "CN=Yubico PIV Root CA Serial 263751");
    assert_eq!(facts.firmware.as_deref(), Some("5.4.3"));
    assert_eq!(facts.serial, Some(15_732_500));
    assert_eq!(facts.pin_policy.as_deref(), Some("once"));
    assert_eq!(facts.touch_policy.as_deref(), Some("never"));
    assert_eq!(facts.form_factor.as_deref(), Some("usb_c_nano"));

    let other = chain("CN=YubiKey PIV Attestation 9a").slot_key;
    assert_eq!(
        yubico.verify(Slot::PivAuthentication, &attestation, &f9, &other, NOW),
        Err(AttestationError::KeyMismatch)
    );
    assert!(matches!(
        yubico.verify(Slot::DigitalSignature, &attestation, &f9, &key, NOW),
        Err(AttestationError::Invalid(_))
    ));
    assert!(matches!(
        AttestationRoots::empty().verify(Slot::PivAuthentication, &attestation, &f9, &key, NOW),
        Err(AttestationError::Untrusted(_))
    ));
}

#[test]
fn a_real_2018_yubikey_chains_to_the_u2f_root() {
    // piv-go's "ValidChain2018": a YubiKey 4 whose F9 certificate Yubico signed with the U2F
    // root and without basicConstraints.
    let f9 = pem_der(include_str!("testdata/piv-go-2018-u2f-f9.pem"));
    let attestation = pem_der(include_str!("testdata/piv-go-2018-u2f-9a.pem"));
    let key = attested_key(&attestation).unwrap();
    let facts = AttestationRoots::yubico()
        .verify(Slot::PivAuthentication, &attestation, &f9, &key, NOW)
        .unwrap();
    assert_eq!(facts.root, "CN=Yubico U2F Root CA Serial 457200631");
    assert_eq!(facts.firmware.as_deref(), Some("4.3.7"));
    // The two real chains do not mix: each slot certificate is signed by its own card.
    let other_f9 = pem_der(include_str!("testdata/piv-go-2016-f9.pem"));
    assert!(matches!(
        AttestationRoots::yubico().verify(
            Slot::PivAuthentication,
            &attestation,
            &other_f9,
            &key,
            NOW
        ),
        Err(AttestationError::Invalid(_))
    ));
}

#[test]
fn a_generated_chain_is_accepted_with_its_facts() {
    let c = chain("CN=YubiKey PIV Attestation 9c");
    let facts = trusting(&c.root)
        .verify(
            Slot::DigitalSignature,
            &c.attestation,
            &c.f9,
            &c.slot_key,
            NOW,
        )
        .unwrap();
    assert_eq!(
        facts,
        KeyAttestation {
            serial: Some(30_000_000),
            firmware: Some("5.7.2".into()),
            pin_policy: Some("match_once".into()),
            touch_policy: Some("always".into()),
            form_factor: Some("usb_c_keychain_fips".into()),
            root: "CN=Test Root".into(),
            evidence: [&c.attestation, &c.f9]
                .iter()
                .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
                .collect(),
        }
    );
    // Pinning the F9 certificate itself is trust too.
    assert!(trusting(&c.f9)
        .verify(
            Slot::DigitalSignature,
            &c.attestation,
            &c.f9,
            &c.slot_key,
            NOW
        )
        .is_ok());
}

#[test]
fn refusals() {
    let c = chain("CN=YubiKey PIV Attestation 9c");
    let roots = trusting(&c.root);
    let verify = |slot, attestation: &[u8], f9: &[u8], key: &[u8], now| {
        roots.verify(slot, attestation, f9, key, now)
    };
    let wrong_key = spki(&key(9));
    assert_eq!(
        verify(
            Slot::DigitalSignature,
            &c.attestation,
            &c.f9,
            &wrong_key,
            NOW
        ),
        Err(AttestationError::KeyMismatch)
    );
    assert!(matches!(
        verify(Slot::PivAuthentication, &c.attestation, &c.f9, &c.slot_key, NOW),
        Err(AttestationError::Invalid(m)) if m.contains("slot 9c, not 9a")
    ));
    // Outside the validity window (2020-2040).
    assert!(matches!(
        verify(
            Slot::DigitalSignature,
            &c.attestation,
            &c.f9,
            &c.slot_key,
            Timestamp(1_000_000_000)
        ),
        Err(AttestationError::Invalid(_))
    ));

    // F9 signed by a root nobody trusts, under another name and under the trusted name.
    let evil = key(7);
    for issuer in ["CN=Evil Root", "CN=Test Root"] {
        let f9 = certificate(
            issuer,
            "CN=Yubico PIV Attestation",
            &spki(&key(2)),
            &evil,
            vec![],
        );
        assert!(matches!(
            verify(
                Slot::DigitalSignature,
                &c.attestation,
                &f9,
                &c.slot_key,
                NOW
            ),
            Err(AttestationError::Untrusted(_))
        ));
    }

    // A flipped bit in the attestation's signature.
    let mut tampered = c.attestation.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    assert!(matches!(
        verify(Slot::DigitalSignature, &tampered, &c.f9, &c.slot_key, NOW),
        Err(AttestationError::Invalid(_))
    ));

    // Garbage and truncations never panic.
    for input in [
        &[][..],
        &[0x30, 0x80],
        &[0xFF; 64],
        &c.attestation[..c.attestation.len() / 2],
    ] {
        assert!(matches!(
            verify(Slot::DigitalSignature, input, &c.f9, &c.slot_key, NOW),
            Err(AttestationError::Invalid(_))
        ));
        assert!(matches!(
            verify(
                Slot::DigitalSignature,
                &c.attestation,
                input,
                &c.slot_key,
                NOW
            ),
            Err(AttestationError::Invalid(_))
        ));
    }
}

#[test]
fn a_slot_attestation_cannot_pose_as_the_card_s_attestation_certificate() {
    // An insider's own card, whose F9 certificate the organisation pinned: the card's genuine
    // attestation of its slot 9a key (L), and a forged "attestation" of a key of the insider's
    // choice, issued in L's name and signed with the 9a key (the card signs anything once its
    // PIN is entered), sent with L as the "F9" certificate.
    let c = chain("CN=YubiKey PIV Attestation 9a");
    let slot_key = key(3);
    let chosen = key(9);
    let forged = certificate(
        "CN=YubiKey PIV Attestation 9a",
        "CN=YubiKey PIV Attestation 9a",
        &spki(&chosen),
        &slot_key,
        vec![yubico_extension(7, &[0x02, 0x04, 0x01, 0xC9, 0xC3, 0x80])],
    );
    let pinned = trusting(&c.f9);
    let refused = pinned.verify(
        Slot::PivAuthentication,
        &forged,
        &c.attestation,
        &spki(&chosen),
        NOW,
    );
    assert!(
        matches!(refused, Err(AttestationError::Invalid(_))),
        "{refused:?}"
    );

    // The same forgery with a non-CA "F9" of another name is refused too: under a configured
    // root (here the pinned F9) an attestation key's certificate must be a CA.
    let posing = certificate(
        "CN=Yubico PIV Attestation",
        "CN=Card Attestation Key",
        &spki(&slot_key),
        &key(2),
        vec![],
    );
    let forged = certificate(
        "CN=Card Attestation Key",
        "CN=YubiKey PIV Attestation 9a",
        &spki(&chosen),
        &slot_key,
        vec![],
    );
    let refused = pinned.verify(
        Slot::PivAuthentication,
        &forged,
        &posing,
        &spki(&chosen),
        NOW,
    );
    assert!(
        matches!(refused, Err(AttestationError::Untrusted(_))),
        "{refused:?}"
    );
}

#[test]
fn malformed_extensions_are_refused() {
    let (f9_key, slot_key) = (key(2), key(3));
    for bad in [
        yubico_extension(3, &[5, 7]),
        yubico_extension(7, &[0x02, 0x01, 0xFF]),
        yubico_extension(8, &[1]),
        yubico_extension(9, &[]),
    ] {
        let c = chain("CN=YubiKey PIV Attestation 9a");
        let attestation = certificate(
            "CN=Yubico PIV Attestation",
            "CN=YubiKey PIV Attestation 9a",
            &spki(&slot_key),
            &f9_key,
            vec![bad],
        );
        assert!(matches!(
            trusting(&c.root).verify(
                Slot::PivAuthentication,
                &attestation,
                &c.f9,
                &spki(&slot_key),
                NOW
            ),
            Err(AttestationError::Invalid(_))
        ));
    }
}

#[test]
fn roots_from_pem() {
    let c = chain("CN=YubiKey PIV Attestation 9a");
    let pem =
        |der: &[u8]| der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap();
    let two = format!("{}\n{}", pem(&c.root), pem(&c.f9));
    let roots = AttestationRoots::empty().with_roots_pem(&two).unwrap();
    assert_eq!(roots.roots(), ["CN=Test Root", "CN=Yubico PIV Attestation"]);

    let error = |text: &str| {
        AttestationRoots::empty()
            .with_roots_pem(text)
            .unwrap_err()
            .to_string()
    };
    assert!(error("").contains("no CERTIFICATE block"));
    assert!(
        error(&pem(&c.root).replace("CERTIFICATE", "PRIVATE KEY")).contains("not a CERTIFICATE")
    );
    assert!(error(&pem(&c.root)[..60]).contains("no END line"));
    let garbage =
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &[1, 2, 3]).unwrap();
    assert!(error(&format!("{}{garbage}", pem(&c.root))).contains("certificate 2"));
    assert!(AttestationRoots::empty().with_root_der(&[0x30]).is_err());
}

//! The checker against objects built by hand in the test (CMS SignedData assembled byte by byte
//! and signed with a P-256 key here), so that verification is tested both ways, and against the
//! virtual card: a card personalised the way Tessera does before issue 17 (unsigned CHUID, no
//! Security Object) and a card that carries every signed object.

use super::report::Status;
use super::*;
use crate::tlv;
use crate::virtual_transport::VirtualCardTransport;
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Encode, Sequence};
use p256::ecdsa::SigningKey;
use sha2::Digest;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_core::secret::ManagementKey;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    certpolicy::PolicyInformation, crl::dp::DistributionPoint, name::DistributionPointName,
    AccessDescription, AuthorityInfoAccessSyntax, CertificatePolicies, CrlDistributionPoints,
    ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

const GUID: [u8; 16] = [
    0x5b, 0x3f, 0x0c, 0x1e, 0x7a, 0x44, 0x4d, 0x21, 0x9e, 0x0f, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
];

fn oid(s: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(s)
}

fn now() -> u64 {
    CheckOptions::now().now_unix
}

// ---------------------------------------------------------------------------------------------
// A test PKI: a root and a content signer, both P-256
// ---------------------------------------------------------------------------------------------

#[derive(Sequence)]
struct PivInterim {
    interim_indicator: bool,
}

impl der::oid::AssociatedOid for PivInterim {
    const OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.9.1");
}

impl x509_cert::ext::AsExtension for PivInterim {
    fn critical(&self, _: &Name, _: &[x509_cert::ext::Extension]) -> bool {
        false
    }
}

struct Pki {
    ca_key: SigningKey,
    ca: x509_cert::Certificate,
    signer_key: SigningKey,
    signer: x509_cert::Certificate,
}

fn spki_of(key: &SigningKey) -> spki::SubjectPublicKeyInfoOwned {
    spki::SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).unwrap()
}

impl Pki {
    fn new() -> Self {
        let ca_key = SigningKey::random(&mut rand::rngs::OsRng);
        let ca = CertificateBuilder::new(
            Profile::Root,
            SerialNumber::from(1u32),
            Validity::from_now(Duration::from_secs(86400 * 30)).unwrap(),
            Name::from_str("CN=Check Test Root,O=Tessera Tests").unwrap(),
            spki_of(&ca_key),
            &ca_key,
        )
        .unwrap()
        .build::<p256::ecdsa::DerSignature>()
        .unwrap();
        let signer_key = SigningKey::random(&mut rand::rngs::OsRng);
        let mut b = CertificateBuilder::new(
            Profile::Manual {
                issuer: Some(ca.tbs_certificate.subject.clone()),
            },
            SerialNumber::from(2u32),
            Validity::from_now(Duration::from_secs(86400 * 20)).unwrap(),
            Name::from_str("CN=Content Signer,O=Tessera Tests").unwrap(),
            spki_of(&signer_key),
            &ca_key,
        )
        .unwrap();
        b.add_extension(&KeyUsage(KeyUsages::DigitalSignature.into()))
            .unwrap();
        b.add_extension(&ExtendedKeyUsage(vec![oid("2.16.840.1.101.3.6.7")]))
            .unwrap();
        let signer = b.build::<p256::ecdsa::DerSignature>().unwrap();
        Self {
            ca_key,
            ca,
            signer_key,
            signer,
        }
    }

    /// A slot certificate with the whole PIV profile, for `spki`.
    fn slot_certificate(&self, slot: Slot, spki: spki::SubjectPublicKeyInfoOwned) -> Vec<u8> {
        let mut b = CertificateBuilder::new(
            Profile::Manual {
                issuer: Some(self.ca.tbs_certificate.subject.clone()),
            },
            SerialNumber::from(10u32 + u32::from(slot.key_reference())),
            Validity::from_now(Duration::from_secs(86400 * 10)).unwrap(),
            Name::from_str("CN=Jane Doe,O=Tessera Tests").unwrap(),
            spki,
            &self.ca_key,
        )
        .unwrap();
        let usage = match slot {
            Slot::DigitalSignature => KeyUsages::DigitalSignature | KeyUsages::NonRepudiation,
            Slot::KeyManagement => KeyUsages::KeyAgreement.into(),
            _ => KeyUsages::DigitalSignature.into(),
        };
        b.add_extension(&KeyUsage(usage)).unwrap();
        if slot == Slot::CardAuthentication {
            b.add_extension(&ExtendedKeyUsage(vec![oid("2.16.840.1.101.3.6.8")]))
                .unwrap();
        }
        let urn = format!("urn:uuid:{}", chuid::uuid_string(&GUID));
        b.add_extension(&SubjectAltName(vec![
            GeneralName::UniformResourceIdentifier(der::asn1::Ia5String::new(&urn).unwrap()),
        ]))
        .unwrap();
        let uri =
            |u: &str| GeneralName::UniformResourceIdentifier(der::asn1::Ia5String::new(u).unwrap());
        b.add_extension(&CrlDistributionPoints(vec![DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri(
                "http://pki.example/issuing.crl",
            )])),
            reasons: None,
            crl_issuer: None,
        }]))
        .unwrap();
        b.add_extension(&AuthorityInfoAccessSyntax(vec![
            AccessDescription {
                access_method: oid("1.3.6.1.5.5.7.48.2"),
                access_location: uri("http://pki.example/issuing.p7c"),
            },
            AccessDescription {
                access_method: oid("1.3.6.1.5.5.7.48.1"),
                access_location: uri("http://pki.example/ocsp"),
            },
        ]))
        .unwrap();
        b.add_extension(&CertificatePolicies(vec![PolicyInformation {
            policy_identifier: oid("1.3.6.1.4.1.99999.1.1"),
            policy_qualifiers: None,
        }]))
        .unwrap();
        if matches!(slot, Slot::PivAuthentication | Slot::CardAuthentication) {
            b.add_extension(&PivInterim {
                interim_indicator: false,
            })
            .unwrap();
        }
        b.build::<p256::ecdsa::DerSignature>()
            .unwrap()
            .to_der()
            .unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// CMS SignedData assembled by hand (RFC 5652)
// ---------------------------------------------------------------------------------------------

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv::encode(0x30, &parts.concat())
}

fn oid_der(s: &str) -> Vec<u8> {
    oid(s).to_der().unwrap()
}

fn attribute(type_oid: &str, value: Vec<u8>) -> Vec<u8> {
    seq(&[oid_der(type_oid), tlv::encode(0x31, &value)])
}

/// A ContentInfo/SignedData signed by the test signer.
fn signed_data(
    pki: &Pki,
    content_type: &str,
    content: &[u8],
    encapsulate: bool,
    include_certificate: bool,
    extra_attributes: Vec<Vec<u8>>,
) -> Vec<u8> {
    let digest = sha2::Sha256::digest(content).to_vec();
    let mut attrs = vec![
        attribute("1.2.840.113549.1.9.3", oid_der(content_type)),
        attribute(
            "1.2.840.113549.1.9.4",
            OctetString::new(digest).unwrap().to_der().unwrap(),
        ),
        attribute(
            "2.16.840.1.101.3.6.5",
            pki.signer.tbs_certificate.subject.to_der().unwrap(),
        ),
    ];
    attrs.extend(extra_attributes);
    attrs.sort(); // DER orders a SET OF by encoding.
    let attrs = attrs.concat();
    use p256::ecdsa::signature::Signer;
    let signature: p256::ecdsa::DerSignature = pki.signer_key.sign(&tlv::encode(0x31, &attrs));
    let sha256_alg = seq(&[oid_der("2.16.840.1.101.3.4.2.1")]);
    let signer_info = seq(&[
        vec![0x02, 0x01, 0x01],
        seq(&[
            pki.signer.tbs_certificate.issuer.to_der().unwrap(),
            pki.signer.tbs_certificate.serial_number.to_der().unwrap(),
        ]),
        sha256_alg.clone(),
        tlv::encode(0xA0, &attrs),
        seq(&[oid_der("1.2.840.10045.4.3.2")]),
        tlv::encode(0x04, signature.as_bytes()),
    ]);
    let mut encap = vec![oid_der(content_type)];
    if encapsulate {
        encap.push(tlv::encode(0xA0, &tlv::encode(0x04, content)));
    }
    let mut signed = vec![
        vec![0x02, 0x01, 0x03],
        tlv::encode(0x31, &sha256_alg),
        seq(&encap),
    ];
    if include_certificate {
        signed.push(tlv::encode(0xA0, &pki.signer.to_der().unwrap()));
    }
    signed.push(tlv::encode(0x31, &signer_info));
    seq(&[
        oid_der("1.2.840.113549.1.7.2"),
        tlv::encode(0xA0, &seq(&signed)),
    ])
}

// ---------------------------------------------------------------------------------------------
// Objects built by hand
// ---------------------------------------------------------------------------------------------

/// The non-federal FASC-N: SS 9999 FS 9999 FS 999999 FS 0 FS 1 FS 0000000000 3 0000 1 ES LRC.
fn fasc_n() -> Vec<u8> {
    super::fascn::encode_by_hand("9999|9999|999999|0|1|0000000000300001").to_vec()
}

fn expiry() -> String {
    let (today, _) = super::dates(now() + 86400 * 365);
    today
}

fn chuid_fields() -> Vec<u8> {
    [
        tlv::encode(0x30, &fasc_n()),
        tlv::encode(0x34, &GUID),
        tlv::encode(0x35, expiry().as_bytes()),
    ]
    .concat()
}

fn signed_chuid(pki: &Pki) -> Vec<u8> {
    let fields = chuid_fields();
    let signature = signed_data(pki, "2.16.840.1.101.3.6.1", &fields, false, true, vec![]);
    [
        fields,
        tlv::encode(0x3E, &signature),
        tlv::encode(0xFE, &[]),
    ]
    .concat()
}

fn cbeff_date(year: u16) -> Vec<u8> {
    let mut d = vec![(year / 100) as u8, (year % 100) as u8];
    d.extend_from_slice(&[1, 2, 3, 4, 5, b'Z']);
    d
}

/// A two-view INCITS 378-2004 record (synthetic minutiae).
fn fmr() -> Vec<u8> {
    let mut views = Vec::new();
    for finger in [2u8, 7] {
        views.extend_from_slice(&[finger, 0, 60, 3]);
        for m in 0..3u8 {
            views.extend_from_slice(&[0x40, 10 + m, 0, 20 + m, 30, 50]);
        }
        views.extend_from_slice(&[0, 0]);
    }
    let total = 26 + views.len();
    let mut r = b"FMR\0 20\0".to_vec();
    r.extend_from_slice(&(total as u16).to_be_bytes());
    r.extend_from_slice(&[0; 4]); // CBEFF product id
    r.extend_from_slice(&[0; 2]); // capture equipment
    r.extend_from_slice(&400u16.to_be_bytes());
    r.extend_from_slice(&500u16.to_be_bytes());
    r.extend_from_slice(&197u16.to_be_bytes());
    r.extend_from_slice(&197u16.to_be_bytes());
    r.extend_from_slice(&[2, 0]);
    r.extend_from_slice(&views);
    r
}

fn fingerprints(pki: &Pki) -> Vec<u8> {
    let bdb = fmr();
    // The SB length is in the signed header, and the (deterministic, RFC 6979) ECDSA signature's
    // DER length depends on what is signed: feed each try's length into the next until stable,
    // changing the quality byte if two lengths alternate.
    let mut guess = 0usize;
    for attempt in 0..64u8 {
        let mut h = vec![0x03, 0x0D];
        h.extend_from_slice(&(bdb.len() as u32).to_be_bytes());
        h.extend_from_slice(&(guess as u16).to_be_bytes());
        h.extend_from_slice(&[0x00, 0x1B, 0x02, 0x01]);
        h.extend(cbeff_date(2026));
        h.extend(cbeff_date(2020));
        h.extend(cbeff_date(2099));
        h.extend_from_slice(&[0x00, 0x00, 0x08, 0x20, 20 + attempt / 2]);
        let mut creator = b"Tessera test".to_vec();
        creator.resize(18, 0);
        h.extend(creator);
        h.extend(fasc_n());
        h.extend_from_slice(&[0; 4]);
        assert_eq!(h.len(), 88);
        let signed_content = [h.clone(), bdb.clone()].concat();
        let sb = signed_data(
            pki,
            "2.16.840.1.101.3.6.2",
            &signed_content,
            false,
            false,
            vec![],
        );
        if sb.len() == guess {
            return [
                tlv::encode(0xBC, &[h, bdb, sb].concat()),
                tlv::encode(0xFE, &[]),
            ]
            .concat();
        }
        guess = sb.len();
    }
    panic!("no stable signature length");
}

fn facts(pki: &Pki) -> chuid::ChuidFacts {
    let mut r = ObjectReport::new("chuid", "5FC102", true);
    let facts = chuid::check(&signed_chuid(pki), "20260101", now(), &mut r);
    assert_eq!(r.status, Status::Ok, "{:#?}", r.findings);
    facts
}

fn errors(r: &ObjectReport) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.text.clone())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Unit tests
// ---------------------------------------------------------------------------------------------

#[test]
fn a_signed_chuid_verifies_and_a_changed_byte_fails() {
    let pki = Pki::new();
    let chuid_value = signed_chuid(&pki);
    let facts = facts(&pki);
    assert!(facts.content_signer.is_some());
    assert_eq!(facts.guid, Some(GUID));

    // A GUID byte changed after signing: the message digest no longer matches.
    let mut changed = chuid_value.clone();
    let at = changed.windows(16).position(|w| w == GUID).unwrap();
    changed[at] ^= 0x01;
    let mut r = ObjectReport::new("chuid", "5FC102", true);
    let facts = chuid::check(&changed, "20260101", now(), &mut r);
    assert_eq!(r.status, Status::Failed);
    assert!(facts.content_signer.is_none());
    assert!(
        errors(&r)
            .iter()
            .any(|e| e.contains("message digest differs")),
        "{:?}",
        errors(&r)
    );

    // The signature value's last byte changed: the signature does not verify.
    let mut changed = chuid_value.clone();
    let sig_at = changed.len() - 3; // just before FE 00
    changed[sig_at] ^= 0x01;
    let mut r = ObjectReport::new("chuid", "5FC102", true);
    chuid::check(&changed, "20260101", now(), &mut r);
    assert_eq!(r.status, Status::Failed, "{:#?}", r.findings);
}

#[test]
fn an_unsigned_chuid_is_reported_unsigned() {
    let value = [
        chuid_fields(),
        tlv::encode(0x3E, &[]),
        tlv::encode(0xFE, &[]),
    ]
    .concat();
    let mut r = ObjectReport::new("chuid", "5FC102", true);
    chuid::check(&value, "20260101", now(), &mut r);
    assert_eq!(r.status, Status::Unsigned, "{:#?}", r.findings);
    assert!(!r.passes());
}

#[test]
fn a_chuid_signed_by_a_certificate_without_content_signing_fails() {
    let mut pki = Pki::new();
    pki.signer = pki.ca.clone();
    pki.signer_key = pki.ca_key.clone();
    let mut r = ObjectReport::new("chuid", "5FC102", true);
    chuid::check(&signed_chuid(&pki), "20260101", now(), &mut r);
    assert!(
        errors(&r)
            .iter()
            .any(|e| e.contains("id-PIV-content-signing")),
        "{:?}",
        errors(&r)
    );
}

#[test]
fn an_expired_chuid_and_a_bad_fasc_n_fail() {
    let mut fields = chuid_fields();
    let at = fields.windows(25).position(|w| w == fasc_n()).unwrap();
    fields[at + 2] ^= 0x10;
    let value = [fields, tlv::encode(0x3E, &[]), tlv::encode(0xFE, &[])].concat();
    let mut r = ObjectReport::new("chuid", "5FC102", true);
    chuid::check(&value, "29991231", now(), &mut r);
    let e = errors(&r);
    assert!(e.iter().any(|e| e.contains("expired")), "{e:?}");
    assert!(e.iter().any(|e| e.contains("FASC-N")), "{e:?}");
}

#[test]
fn signed_fingerprints_verify_with_the_chuid_signer_and_a_changed_minutia_fails() {
    let pki = Pki::new();
    let facts = facts(&pki);
    let value = fingerprints(&pki);
    let mut r = ObjectReport::new("fingerprints", "5FC103", true);
    biometric::check(
        Modality::Fingerprints,
        &value,
        &facts,
        "20260601000000Z",
        &mut r,
    );
    assert_eq!(r.status, Status::Ok, "{:#?}", r.findings);

    let mut changed = value.clone();
    let at = changed.windows(4).position(|w| w == b"FMR\0").unwrap();
    changed[at + 40] ^= 0x01; // inside the first view's minutiae
    let mut r = ObjectReport::new("fingerprints", "5FC103", true);
    biometric::check(
        Modality::Fingerprints,
        &changed,
        &facts,
        "20260601000000Z",
        &mut r,
    );
    assert!(
        errors(&r)
            .iter()
            .any(|e| e.contains("message digest differs")),
        "{:?}",
        errors(&r)
    );

    // Without the CHUID's signer (the SignedData does not include it) nothing verifies.
    let mut r = ObjectReport::new("fingerprints", "5FC103", true);
    biometric::check(
        Modality::Fingerprints,
        &value,
        &chuid::ChuidFacts::default(),
        "20260601000000Z",
        &mut r,
    );
    assert!(
        errors(&r)
            .iter()
            .any(|e| e.contains("no certificate matches")),
        "{:?}",
        errors(&r)
    );
}

fn lds_security_object(hashes: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let groups: Vec<Vec<u8>> = hashes
        .iter()
        .map(|(dg, h)| seq(&[vec![0x02, 0x01, *dg], tlv::encode(0x04, h)]))
        .collect();
    seq(&[
        vec![0x02, 0x01, 0x00],
        seq(&[oid_der("2.16.840.1.101.3.4.2.1")]),
        seq(&groups),
    ])
}

#[test]
fn the_security_object_hashes_are_recomputed() {
    let pki = Pki::new();
    let facts = facts(&pki);
    let chuid_value = signed_chuid(&pki);
    let chuid_raw = tlv::encode(0x53, &chuid_value);
    let fp_value = fingerprints(&pki);
    let fp_raw = tlv::encode(0x53, &fp_value);
    let lds = lds_security_object(&[
        (1, sha2::Sha256::digest(&chuid_raw).to_vec()),
        (2, sha2::Sha256::digest(&fp_raw).to_vec()),
    ]);
    let so = [
        tlv::encode(0xBA, &[0x01, 0x30, 0x00, 0x02, 0x60, 0x10]),
        tlv::encode(
            0xBB,
            &signed_data(&pki, "2.23.136.1.1.1", &lds, true, false, vec![]),
        ),
        tlv::encode(0xFE, &[]),
    ]
    .concat();
    let mut read = BTreeMap::new();
    read.insert(
        0x5FC102,
        ReadObject::Present {
            raw: chuid_raw.clone(),
            value: chuid_value.clone(),
        },
    );
    read.insert(
        0x5FC103,
        ReadObject::Present {
            raw: fp_raw,
            value: fp_value,
        },
    );
    let mut r = ObjectReport::new("security_object", "5FC106", true);
    security_object::check(&so, &facts, &read, &mut r);
    assert_eq!(r.status, Status::Ok, "{:#?}", r.findings);

    // The fingerprints not readable (no PIN): their hash is not compared, the rest passes.
    read.insert(0x5FC103, ReadObject::NeedsPin);
    let mut r = ObjectReport::new("security_object", "5FC106", true);
    security_object::check(&so, &facts, &read, &mut r);
    assert_eq!(r.status, Status::Ok, "{:#?}", r.findings);

    // A CHUID that changed after the Security Object was signed.
    let mut other = chuid_raw.clone();
    let last = other.len() - 1;
    other[last] ^= 0x01;
    read.insert(
        0x5FC102,
        ReadObject::Present {
            raw: other,
            value: chuid_value,
        },
    );
    let mut r = ObjectReport::new("security_object", "5FC106", true);
    security_object::check(&so, &facts, &read, &mut r);
    assert!(
        errors(&r)
            .iter()
            .any(|e| e.contains("data group 1 (chuid): the hash does not match")),
        "{:?}",
        errors(&r)
    );

    // A changed byte in the signed LDS object.
    let mut broken = so.clone();
    let at = broken
        .windows(lds.len())
        .position(|w| w == lds.as_slice())
        .unwrap();
    broken[at + 10] ^= 0x01;
    let mut r = ObjectReport::new("security_object", "5FC106", true);
    security_object::check(&broken, &facts, &read, &mut r);
    assert!(
        errors(&r)
            .iter()
            .any(|e| e.contains("message digest differs")),
        "{:?}",
        errors(&r)
    );
}

#[test]
fn the_fasc_n_decoder_agrees_with_the_core_encoder() {
    let core = tessera_core::fips201::FascN::non_federal()
        .encode()
        .unwrap();
    assert_eq!(core.to_vec(), fasc_n());
    let decoded = decode_fasc_n(&core).unwrap();
    assert!(decoded.is_non_federal());
    assert_eq!(decoded, tessera_core::fips201::FascN::non_federal());
}

// ---------------------------------------------------------------------------------------------
// Over the virtual card
// ---------------------------------------------------------------------------------------------

const PIN: &str = "123456";

async fn blank_card() -> PivClient {
    let serial = 20_000_000 + rand::RngCore::next_u32(&mut rand::rngs::OsRng) % 10_000_000;
    let card = crate::VirtualCard::blank_with_firmware(serial, [5, 4, 3], rand::rngs::OsRng)
        .with_rng(rand::rngs::OsRng);
    let transport = VirtualCardTransport::new(Arc::new(Mutex::new(card)), None);
    let mut client = PivClient::new(Box::new(transport));
    client.select().await.unwrap();
    client
        .authenticate(&ManagementKey::factory_default())
        .await
        .unwrap();
    client
}

fn options(pki: &Pki, pin: bool) -> CheckOptions {
    CheckOptions {
        pin: pin.then(|| Pin::new(PIN)),
        ca: vec![pki.ca.clone()],
        ..CheckOptions::now()
    }
}

async fn put_certificate(client: &mut PivClient, pki: &Pki, slot: Slot) {
    use tessera_core::model::KeyAlgorithm;
    let spki_der = client
        .generate_key(slot, KeyAlgorithm::EccP256)
        .await
        .unwrap();
    let spki = <spki::SubjectPublicKeyInfoOwned as der::Decode>::from_der(&spki_der).unwrap();
    let der = pki.slot_certificate(slot, spki);
    client.write_certificate(slot, &der).await.unwrap();
}

#[tokio::test]
async fn a_card_issued_the_old_way_is_unsigned_and_lacks_its_security_object() {
    let pki = Pki::new();
    let mut client = blank_card().await;
    put_certificate(&mut client, &pki, Slot::PivAuthentication).await;
    put_certificate(&mut client, &pki, Slot::CardAuthentication).await;
    // What Tessera wrote before issue 17: an unsigned CHUID (3E 00) and a CCC.
    let mut unsigned = chuid_fields();
    tlv::push(&mut unsigned, 0x3E, &[]);
    tlv::push(&mut unsigned, 0xFE, &[]);
    client.put_data(0x5FC102, &unsigned).await.unwrap();
    client
        .put_data(0x5FC107, &crate::data_objects::ccc([7; 14]))
        .await
        .unwrap();

    let report = check_card(&mut client, &options(&pki, true)).await.unwrap();
    let status = |name: &str| report.object(name).unwrap().status;
    assert!(!report.passed, "{}", report.to_text());
    assert_eq!(status("chuid"), Status::Unsigned, "{}", report.to_text());
    assert_eq!(status("security_object"), Status::Missing);
    assert!(report.object("security_object").unwrap().required);
    assert_eq!(status("fingerprints"), Status::Missing);
    assert_eq!(status("ccc"), Status::Ok, "{}", report.to_text());
    assert_eq!(
        status("piv_authentication_certificate"),
        Status::Ok,
        "{}",
        report.to_text()
    );
    assert_eq!(
        status("card_authentication_certificate"),
        Status::Ok,
        "{}",
        report.to_text()
    );
    assert_eq!(status("key_9a"), Status::Ok, "{}", report.to_text());
    assert_eq!(status("key_9e"), Status::Ok, "{}", report.to_text());
    assert_eq!(status("digital_signature_certificate"), Status::Missing);
    assert!(report
        .object("digital_signature_certificate")
        .unwrap()
        .passes());

    // Without the PIN the biometrics and the PIN-protected keys are skipped, 9E still proven.
    let report = check_card(&mut client, &options(&pki, false))
        .await
        .unwrap();
    assert_eq!(
        report.object("fingerprints").unwrap().status,
        Status::SkippedNeedsPin
    );
    assert_eq!(
        report.object("key_9a").unwrap().status,
        Status::SkippedNeedsPin
    );
    assert_eq!(report.object("key_9e").unwrap().status, Status::Ok);
    let text = report.to_text();
    assert!(
        text.contains("security_object (5FC106, required): missing"),
        "{text}"
    );
    assert!(text.contains("chuid (5FC102"), "{text}");
    assert!(!text.contains(PIN));
}

#[tokio::test]
async fn a_card_with_every_signed_object_passes() {
    let pki = Pki::new();
    let mut client = blank_card().await;
    for slot in Slot::ALL {
        put_certificate(&mut client, &pki, slot).await;
    }
    let chuid_value = signed_chuid(&pki);
    let fp_value = fingerprints(&pki);
    client.put_data(0x5FC102, &chuid_value).await.unwrap();
    client
        .put_data(0x5FC107, &crate::data_objects::ccc([7; 14]))
        .await
        .unwrap();
    client.put_data(0x5FC103, &fp_value).await.unwrap();
    let lds = lds_security_object(&[
        (
            1,
            sha2::Sha256::digest(tlv::encode(0x53, &chuid_value)).to_vec(),
        ),
        (
            2,
            sha2::Sha256::digest(tlv::encode(0x53, &fp_value)).to_vec(),
        ),
    ]);
    let so = [
        tlv::encode(0xBA, &[0x01, 0x30, 0x00, 0x02, 0x60, 0x10]),
        tlv::encode(
            0xBB,
            &signed_data(&pki, "2.23.136.1.1.1", &lds, true, false, vec![]),
        ),
        tlv::encode(0xFE, &[]),
    ]
    .concat();
    client.put_data(0x5FC106, &so).await.unwrap();

    let report = check_card(&mut client, &options(&pki, true)).await.unwrap();
    assert!(report.passed, "{}", report.to_text());
    for name in [
        "chuid",
        "fingerprints",
        "security_object",
        "key_9a",
        "key_9c",
        "key_9d",
        "key_9e",
    ] {
        assert_eq!(
            report.object(name).unwrap().status,
            Status::Ok,
            "{name}: {}",
            report.to_text()
        );
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["objects"][0]["status"], "ok");

    // Another card's certificate in 9C: its key is not the slot's.
    let other = SigningKey::random(&mut rand::rngs::OsRng);
    let der = pki.slot_certificate(Slot::DigitalSignature, spki_of(&other));
    client
        .write_certificate(Slot::DigitalSignature, &der)
        .await
        .unwrap();
    let report = check_card(&mut client, &options(&pki, true)).await.unwrap();
    assert!(!report.passed);
    assert_eq!(
        report.object("key_9c").unwrap().status,
        Status::Failed,
        "{}",
        report.to_text()
    );
}

#[test]
fn a_ca_file_with_blank_lines_is_read_and_a_cut_one_is_an_error() {
    let der = Pki::new().ca.to_der().unwrap();
    let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &der).unwrap();
    let file = format!("\n{pem}\n{pem}\n\n");
    assert_eq!(super::parse_ca_pem(&file).unwrap().len(), 2);
    assert!(super::parse_ca_pem("no certificate here\n").is_err());
    assert!(super::parse_ca_pem(&pem[..pem.len() - 30]).is_err());
}

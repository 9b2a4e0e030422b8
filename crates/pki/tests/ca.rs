//! The CA end to end: creation on disk, issuance for every PIV slot, checks with x509-cert and
//! with the real `openssl` binary, reload, and the sealing of the CA keys.

use der::{Decode, Encode};
use p256::pkcs8::EncodePublicKey;
use rand::RngCore;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use tessera_core::ids::UserId;
use tessera_core::model::{KeyAlgorithm, Slot, Timestamp, User, UserSource};
use tessera_core::ports::{
    CertificateAuthority, CertificateRequest, CertificateSubject, IssuedCertificate, Random, Sealer,
};
use tessera_pki::{piv_profile, AesGcmSealer, PkiError, SoftwareCa};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::Certificate;

struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf);
    }
}

const ORG: &str = "Example, Inc.";
const CARD_UUID: &str = "3F2504E0-4F89-41D3-9A0C-0305E82C3301";

fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Timestamp(secs as i64)
}

fn sealer() -> Arc<AesGcmSealer> {
    Arc::new(AesGcmSealer::new(&[0x42; 32]))
}

fn open_ca(dir: &Path, at: Timestamp) -> Result<SoftwareCa, PkiError> {
    SoftwareCa::load_or_create(dir, sealer(), ORG, at, Arc::new(OsRandom))
}

fn user() -> User {
    User {
        uid: UserId::new("jdoe"),
        given_name: "Jane".into(),
        family_name: "Doe".into(),
        display_name: "Doe, Jane".into(),
        email: "jane.doe@example.org".into(),
        upn: "jdoe@corp.example.org".into(),
        employee_id: "E-1".into(),
        department: "R&D".into(),
        title: "Engineer".into(),
        groups: vec!["staff".into()],
        source: UserSource::Local,
        attributes: Default::default(),
        has_photo: false,
        disabled: false,
        photo_digest: None,
    }
}

fn p256_public_key() -> Vec<u8> {
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    secret.public_key().to_public_key_der().unwrap().into_vec()
}

fn request(slot: Slot, public_key_der: Vec<u8>, not_before: Timestamp) -> CertificateRequest {
    CertificateRequest {
        slot,
        public_key_der,
        profile: piv_profile(slot, KeyAlgorithm::EccP256, ORG),
        subject: CertificateSubject {
            user: user(),
            card_uuid: CARD_UUID.into(),
            fasc_n: None,
        },
        not_before,
    }
}

fn openssl(args: &[&str], dir: &Path) -> String {
    let out = Command::new("/usr/bin/openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?} failed:\n{text}");
    text
}

/// Writes the chain and `leaf` next to each other and asks openssl to verify it strictly.
fn openssl_verify(ca: &SoftwareCa, leaf: &IssuedCertificate, dir: &Path) -> String {
    std::fs::write(dir.join("root.pem"), ca.root_pem()).unwrap();
    std::fs::write(dir.join("issuing.pem"), ca.issuing_pem()).unwrap();
    let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &leaf.der).unwrap();
    std::fs::write(dir.join("leaf.pem"), pem).unwrap();
    let verified = openssl(
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "issuing.pem",
            "leaf.pem",
        ],
        dir,
    );
    assert!(verified.trim_end().ends_with("leaf.pem: OK"), "{verified}");
    openssl(&["x509", "-in", "leaf.pem", "-noout", "-text"], dir)
}

fn sha1(data: &[u8]) -> Vec<u8> {
    use sha1::Digest;
    sha1::Sha1::digest(data).to_vec()
}

#[tokio::test]
async fn issues_every_piv_slot_and_openssl_verifies_them() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let issued_at = now();
    let ca = open_ca(&ca_dir, issued_at).unwrap();
    assert_eq!(
        ca.issuer(),
        r"CN=Example\, Inc. Issuing CA 1,O=Example\, Inc."
    );
    assert_eq!(
        ca.chain_pem(),
        format!("{}{}", ca.issuing_pem(), ca.root_pem())
    );
    let issuing = Certificate::from_der(ca.issuing_der()).unwrap();
    let issuing_ski = issuing
        .tbs_certificate
        .get::<SubjectKeyIdentifier>()
        .unwrap()
        .unwrap()
        .1;

    std::fs::write(work.path().join("root.pem"), ca.root_pem()).unwrap();
    std::fs::write(work.path().join("issuing.pem"), ca.issuing_pem()).unwrap();
    let chain: String = ["root.pem", "issuing.pem"]
        .iter()
        .map(|f| openssl(&["x509", "-in", f, "-noout", "-text"], work.path()))
        .collect();
    assert!(chain.contains("Example, Inc. Root CA"), "{chain}");
    assert!(chain.contains("CA:TRUE, pathlen:0"), "{chain}");
    assert!(chain.contains("Certificate Sign, CRL Sign"), "{chain}");
    assert!(chain.contains("ecdsa-with-SHA256"), "{chain}");

    for slot in Slot::ALL {
        let key = p256_public_key();
        let issued = ca
            .issue(&request(slot, key.clone(), issued_at))
            .await
            .unwrap();
        let cert = Certificate::from_der(&issued.der).unwrap();
        let tbs = &cert.tbs_certificate;

        // Serial: 20 bytes, positive, reported as lower-case hex.
        assert_eq!(tbs.serial_number.as_bytes().len(), 20);
        assert!(tbs.serial_number.as_bytes()[0] & 0x80 == 0);
        assert_eq!(issued.serial, hex::encode(tbs.serial_number.as_bytes()));
        assert_eq!(issued.serial, issued.serial.to_lowercase());

        assert_eq!(tbs.subject_public_key_info.to_der().unwrap(), key);
        assert_eq!(tbs.issuer, issuing.tbs_certificate.subject);
        assert_eq!(issued.issuer, ca.issuer());
        assert_eq!(issued.not_before, issued_at);
        assert_eq!(issued.not_after, issued_at.plus_days(1095));
        assert_eq!(
            tbs.validity.not_after.to_unix_duration().as_secs() as i64,
            issued.not_after.0
        );

        let (critical, bc) = tbs.get::<BasicConstraints>().unwrap().unwrap();
        assert!(critical && !bc.ca);
        let (critical, ku) = tbs.get::<KeyUsage>().unwrap().unwrap();
        assert!(critical);
        let (_, eku) = tbs.get::<ExtendedKeyUsage>().unwrap().unwrap();
        let eku: Vec<String> = eku.0.iter().map(|o| o.to_string()).collect();
        let (_, san) = tbs.get::<SubjectAltName>().unwrap().unwrap();
        let (_, ski) = tbs.get::<SubjectKeyIdentifier>().unwrap().unwrap();
        let spki = &tbs.subject_public_key_info.subject_public_key;
        assert_eq!(ski.0.as_bytes(), sha1(spki.raw_bytes()));
        let (_, aki) = tbs.get::<AuthorityKeyIdentifier>().unwrap().unwrap();
        assert_eq!(aki.key_identifier.unwrap(), issuing_ski.0);

        let text = openssl_verify(&ca, &issued, work.path());
        let uuid_uri = format!("URI:urn:uuid:{}", CARD_UUID.to_lowercase());
        match slot {
            Slot::PivAuthentication => {
                assert_eq!(issued.subject, r"CN=Doe\, Jane,UID=jdoe,O=Example\, Inc.");
                assert!(ku.digital_signature() && !ku.non_repudiation());
                assert_eq!(eku, ["1.3.6.1.5.5.7.3.2", "1.3.6.1.4.1.311.20.2.2"]);
                assert_eq!(san.0.len(), 2);
                match &san.0[0] {
                    GeneralName::OtherName(o) => {
                        assert_eq!(o.type_id.to_string(), "1.3.6.1.4.1.311.20.2.3");
                        assert_eq!(o.value.value(), b"jdoe@corp.example.org");
                    }
                    other => panic!("expected the UPN first, got {other:?}"),
                }
                assert!(
                    text.contains("othername: UPN::jdoe@corp.example.org"),
                    "{text}"
                );
                assert!(text.contains(&uuid_uri), "{text}");
                assert!(text.contains("TLS Web Client Authentication"), "{text}");
                assert!(text.contains("Microsoft Smartcard"), "{text}");
            }
            Slot::DigitalSignature => {
                assert!(ku.digital_signature() && ku.non_repudiation());
                assert_eq!(eku, ["1.3.6.1.5.5.7.3.4"]);
                assert!(text.contains("email:jane.doe@example.org"), "{text}");
                assert!(text.contains("E-mail Protection"), "{text}");
                assert!(text.contains("Non Repudiation"), "{text}");
            }
            Slot::KeyManagement => {
                assert!(ku.key_agreement() && !ku.digital_signature());
                assert_eq!(eku, ["1.3.6.1.5.5.7.3.4"]);
                assert!(text.contains("Key Agreement"), "{text}");
                assert!(text.contains("email:jane.doe@example.org"), "{text}");
            }
            Slot::CardAuthentication => {
                assert_eq!(
                    issued.subject,
                    format!(
                        r"CN={},OU=Card Authentication,O=Example\, Inc.",
                        CARD_UUID.to_lowercase()
                    )
                );
                assert_eq!(eku, ["2.16.840.1.101.3.6.8"]);
                assert_eq!(san.0.len(), 1);
                assert!(text.contains(&uuid_uri), "{text}");
                assert!(text.contains("2.16.840.1.101.3.6.8"), "{text}");
                assert!(!text.contains("Doe"), "{text}");
            }
        }
    }
}

#[tokio::test]
async fn reloads_the_same_ca_and_keeps_its_keys_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let first = open_ca(dir.path(), now()).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "issuing.key.sealed",
            "issuing.pem",
            "root.key.sealed",
            "root.pem"
        ]
    );

    // A later start (other organisation and time) loads the CA instead of making a new one.
    let second = SoftwareCa::load_or_create(
        dir.path(),
        sealer(),
        "Other",
        now().plus_days(30),
        Arc::new(OsRandom),
    )
    .unwrap();
    assert_eq!(first.root_pem(), second.root_pem());
    assert_eq!(first.issuing_pem(), second.issuing_pem());
    assert_eq!(first.issuer(), second.issuer());
    let issued = second
        .issue(&request(Slot::PivAuthentication, p256_public_key(), now()))
        .await
        .unwrap();
    openssl_verify(&first, &issued, work.path());

    // The key files hold no clear PKCS#8 and no private scalar.
    let sealer = sealer();
    for label in ["root", "issuing"] {
        let path = dir.path().join(format!("{label}.key.sealed"));
        let sealed = std::fs::read(&path).unwrap();
        let pkcs8 = sealer.open(&sealed).unwrap();
        let secret = p256::SecretKey::from_sec1_der(
            p256::pkcs8::PrivateKeyInfo::from_der(&pkcs8)
                .unwrap()
                .private_key,
        )
        .unwrap();
        let scalar = secret.to_bytes();
        let contains = |needle: &[u8]| sealed.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(&pkcs8), "{label}: clear PKCS#8 on disk");
        assert!(!contains(&scalar), "{label}: clear private key on disk");
        // The PKCS#8 prefix of every EC key (SEQUENCE, version 0, id-ecPublicKey).
        assert!(!contains(&[
            0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48
        ]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{label}: key file readable by others");
        }
    }

    // The issuing certificate matches the issuing key: a PEM swap is refused.
    let wrong_key = SoftwareCa::load_or_create(
        dir.path(),
        Arc::new(AesGcmSealer::new(&[0x43; 32])),
        ORG,
        now(),
        Arc::new(OsRandom),
    );
    assert!(
        matches!(wrong_key, Err(PkiError::BadKey { .. })),
        "{wrong_key:?}"
    );
    let root_pem = std::fs::read(dir.path().join("root.pem")).unwrap();
    std::fs::write(dir.path().join("issuing.pem"), &root_pem).unwrap();
    assert!(matches!(
        open_ca(dir.path(), now()),
        Err(PkiError::BadCaCertificate { .. })
    ));

    // A directory with only some of the files is not silently replaced.
    std::fs::remove_file(dir.path().join("issuing.pem")).unwrap();
    assert!(matches!(
        open_ca(dir.path(), now()),
        Err(PkiError::IncompleteCa { .. })
    ));
}

#[tokio::test]
async fn accepts_p384_and_rsa_card_keys() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let ca = open_ca(dir.path(), now()).unwrap();
    for (algorithm, options) in [
        (
            KeyAlgorithm::EccP384,
            ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        ),
        (
            KeyAlgorithm::Rsa2048,
            ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        ),
        (
            KeyAlgorithm::Rsa3072,
            ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
        ),
    ] {
        let mut args = vec!["genpkey", "-out", "card.key"];
        args.extend(options);
        openssl(&args, work.path());
        openssl(
            &[
                "pkey",
                "-in",
                "card.key",
                "-pubout",
                "-outform",
                "DER",
                "-out",
                "card.spki",
            ],
            work.path(),
        );
        let spki = std::fs::read(work.path().join("card.spki")).unwrap();
        let mut req = request(Slot::KeyManagement, spki, now());
        req.profile = piv_profile(Slot::KeyManagement, algorithm, ORG);
        let issued = ca.issue(&req).await.unwrap();
        let text = openssl_verify(&ca, &issued, work.path());
        let (usage, size) = match algorithm {
            KeyAlgorithm::Rsa2048 => ("Key Encipherment", "Public-Key: (2048 bit)"),
            KeyAlgorithm::Rsa3072 => ("Key Encipherment", "Public-Key: (3072 bit)"),
            _ => ("Key Agreement", "Public-Key: (384 bit)"),
        };
        assert!(text.contains(usage), "{text}");
        assert!(text.contains(size), "{text}");
    }
}

#[tokio::test]
async fn refuses_bad_requests_and_caps_validity() {
    let dir = tempfile::tempdir().unwrap();
    let created = Timestamp(1_767_225_600); // 2026-01-01
    let ca = open_ca(dir.path(), created).unwrap();
    assert_eq!(ca.issuing_not_after(), created.plus_days(3650));

    let late = ca.issuing_not_after().plus_days(-10);
    let issued = ca
        .issue(&request(Slot::PivAuthentication, p256_public_key(), late))
        .await
        .unwrap();
    assert_eq!(issued.not_after, ca.issuing_not_after());
    assert!(ca
        .issue(&request(
            Slot::PivAuthentication,
            p256_public_key(),
            ca.issuing_not_after()
        ))
        .await
        .is_err());

    let mut bad_key = p256_public_key();
    let last = bad_key.len() - 1;
    bad_key[last] ^= 1; // moves the point off the curve
    let err = ca
        .issue(&request(Slot::PivAuthentication, bad_key, created))
        .await
        .unwrap_err();
    assert!(err.message.contains("public key"), "{err}");
    assert!(ca
        .issue(&request(
            Slot::PivAuthentication,
            b"garbage".to_vec(),
            created
        ))
        .await
        .is_err());

    let mut no_uuid = request(Slot::CardAuthentication, p256_public_key(), created);
    no_uuid.subject.card_uuid = "not-a-uuid".into();
    assert!(ca.issue(&no_uuid).await.is_err());

    let mut bad_template = request(Slot::PivAuthentication, p256_public_key(), created);
    bad_template.profile.subject_template = "CN={{user.display_name}},XYZ=1".into();
    assert!(ca.issue(&bad_template).await.is_err());

    // Missing user data drops the attribute and the SAN entry instead of writing empty ones.
    let mut sparse = request(Slot::PivAuthentication, p256_public_key(), created);
    sparse.subject.user.uid = UserId::new("");
    sparse.subject.user.upn = String::new();
    let issued = ca.issue(&sparse).await.unwrap();
    assert_eq!(issued.subject, r"CN=Doe\, Jane,O=Example\, Inc.");
    let cert = Certificate::from_der(&issued.der).unwrap();
    let (_, san) = cert
        .tbs_certificate
        .get::<SubjectAltName>()
        .unwrap()
        .unwrap();
    assert_eq!(san.0.len(), 1);

    assert!(matches!(
        SoftwareCa::load_or_create(
            &dir.path().join("new"),
            sealer(),
            "  ",
            created,
            Arc::new(OsRandom)
        ),
        Err(PkiError::EmptyOrganisation)
    ));
}

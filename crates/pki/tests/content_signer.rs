//! The content signer and its CMS signatures, checked by other people's code: `openssl cms
//! -verify` on detached (CHUID, CBEFF) and encapsulated (Security Object) signatures made with
//! P-256, P-384 and RSA CA keys, and `openssl x509` on the content signing certificate. Then
//! renewal: when the CA opens, inside the renewal window, on demand, never beyond the issuing CA,
//! and replicas sharing the CA folder converging on the newest generation. A configured policy
//! arc replaces the derived UUID arc.
//!
//! The openssl checks skip with a message only when openssl is not installed.

use der::{Decode, Encode, EncodePem};
use rand::RngCore;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tessera_core::fips201::{ContentToSign, SignedContentType};
use tessera_core::model::Timestamp;
use tessera_core::ports::{CertificateAuthority, Clock, Random, Sealer};
use tessera_pki::config::{self, InitOptions, KeyConfig};
use tessera_pki::{AesGcmSealer, Ca, CaKeyAlgorithm};
use x509_cert::Certificate;

const ORG: &str = "Example Org";
const DAY: i64 = 86_400;

struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf);
    }
}

/// A clock the test moves.
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

impl TestClock {
    fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

fn start() -> Timestamp {
    // 2026-01-01T00:00:00Z
    Timestamp(1_767_225_600)
}

fn master() -> Arc<dyn Sealer> {
    Arc::new(AesGcmSealer::new(&[0x42; 32]))
}

/// A CA of `algorithm` in `dir`, opened as a server opens it, with `clock`.
fn ca(dir: &Path, algorithm: CaKeyAlgorithm, clock: &Arc<TestClock>) -> Ca {
    if !dir.join("ca.json").exists() {
        config::init_ca(
            dir,
            master(),
            &InitOptions {
                organisation: ORG.into(),
                algorithm,
                keys: KeyConfig::master_key(),
            },
            clock.now(),
            Arc::new(OsRandom),
        )
        .unwrap();
    }
    open(dir, clock)
}

fn open(dir: &Path, clock: &Arc<TestClock>) -> Ca {
    open_with_url(dir, clock, None)
}

/// Opens the CA as the server does: public URL and clock first, then the content signer.
fn open_with_url(dir: &Path, clock: &Arc<TestClock>, url: Option<&str>) -> Ca {
    let mut ca = config::open_ca(dir, master(), ORG, clock.now(), Arc::new(OsRandom)).unwrap();
    if let Some(url) = url {
        ca = ca.with_public_url(url).unwrap();
    }
    let ca = ca.with_clock(clock.clone());
    ca.prepare_content_signer(clock.now()).unwrap();
    ca
}

fn openssl_present() -> bool {
    let present = Command::new("openssl").arg("version").output().is_ok();
    if !present {
        eprintln!("SKIPPED: openssl is not installed");
    }
    present
}

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn pem(der: &[u8]) -> String {
    Certificate::from_der(der)
        .unwrap()
        .to_pem(der::pem::LineEnding::LF)
        .unwrap()
}

/// Signs each kind of object and has openssl verify it against the CA's chain; a changed byte
/// of the content must fail.
fn signatures_verify_with_openssl(algorithm: CaKeyAlgorithm) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(start().0)));
    let ca = ca(&dir.path().join("ca"), algorithm, &clock);
    let signer = ca.content_signer();
    let scratch = dir.path();
    std::fs::write(scratch.join("chain.pem"), ca.chain_pem()).unwrap();
    std::fs::write(
        scratch.join("signer.pem"),
        pem(&ca.content_signer_certificate().unwrap().der),
    )
    .unwrap();

    let chuid_fields = b"\x30\x19\xd4\xe7\x39\xda\x73\x9c\xed\x39\xce\x73\x9d\x83\x68\x58\x21\x08\x42\x10\x84\x21\xc8\x42\x10\xc3\xeb\x34\x10\x3f\x25\x04\xe0\x4f\x89\x41\xd3\x9a\x0c\x03\x05\xe8\x2c\x33\x01\x35\x08\x32\x30\x32\x39\x31\x32\x33\x31";
    let biometric = b"CBEFF header and biometric data block";
    let lds_security_object = [0x30, 0x03, 0x02, 0x01, 0x00];
    let cases: [(&str, SignedContentType, &[u8], bool); 3] = [
        ("chuid", SignedContentType::Chuid, chuid_fields, true),
        ("bio", SignedContentType::Biometric, biometric, false),
        (
            "so",
            SignedContentType::SecurityObject,
            &lds_security_object,
            true,
        ),
    ];
    for (name, content_type, content, include_certificate) in cases {
        let biometric = content_type == SignedContentType::Biometric;
        let der = signer
            .sign(&ContentToSign {
                content_type,
                content,
                fasc_n: biometric.then_some([0xD4; 25]),
                uuid: biometric.then_some([0x3F; 16]),
                include_certificate,
            })
            .unwrap();
        let signature = format!("{name}.p7");
        std::fs::write(scratch.join(&signature), &der).unwrap();
        std::fs::write(scratch.join(format!("{name}.bin")), content).unwrap();
        let mut args = vec![
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            &signature,
            "-CAfile",
            "chain.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ];
        let content_file = format!("{name}.bin");
        let encapsulated = content_type == SignedContentType::SecurityObject;
        if !encapsulated {
            args.extend(["-content", &content_file]);
        }
        if !include_certificate {
            args.extend(["-certfile", "signer.pem"]);
        }
        if !openssl_present() {
            return;
        }
        // The chain file holds the root too: -CAfile takes every certificate in it as trusted,
        // which is what a relying party that trusts the organisation's root does.
        let (ok, out) = openssl(scratch, &args);
        assert!(ok, "{name} ({algorithm}): {out}");
        assert!(out.contains("Verification successful"), "{out}");

        // The structure openssl printed: the PIV signed attributes are there.
        let (_, printed) = openssl(
            scratch,
            &[
                "cms", "-cmsout", "-print", "-inform", "DER", "-in", &signature,
            ],
        );
        assert!(
            printed.contains("2.16.840.1.101.3.6.5"),
            "pivSigner-DN: {printed}"
        );
        assert_eq!(
            printed.contains("2.16.840.1.101.3.6.6"),
            biometric,
            "pivFASC-N"
        );
        assert_eq!(printed.contains("1.3.6.1.1.16.4"), biometric, "entryUUID");
        assert_eq!(
            printed.contains("d.certificate:"),
            include_certificate,
            "certificates: {printed}"
        );
        if !encapsulated {
            assert!(printed.contains("eContent: <ABSENT>"), "{printed}");
            let mut changed = content.to_vec();
            changed[3] ^= 1;
            std::fs::write(scratch.join("changed.bin"), changed).unwrap();
            let mut bad = args.clone();
            let at = bad.iter().position(|a| *a == content_file).unwrap();
            bad[at] = "changed.bin";
            let (ok, out) = openssl(scratch, &bad);
            assert!(!ok, "a changed {name} verified: {out}");
        }
    }
}

#[test]
fn p256_signatures_verify_with_openssl() {
    signatures_verify_with_openssl(CaKeyAlgorithm::EcdsaP256Sha256);
}

#[test]
fn p384_signatures_verify_with_openssl() {
    signatures_verify_with_openssl(CaKeyAlgorithm::EcdsaP384Sha384);
}

#[test]
fn rsa_signatures_verify_with_openssl() {
    signatures_verify_with_openssl(CaKeyAlgorithm::Rsa2048Sha256);
}

/// The digest of SP 800-78-4 for the key: SHA-384 with P-384, SHA-256 with P-256 and RSA.
#[test]
fn the_digest_follows_the_key() {
    for (algorithm, digest_oid) in [
        (CaKeyAlgorithm::EcdsaP256Sha256, "2.16.840.1.101.3.4.2.1"),
        (CaKeyAlgorithm::EcdsaP384Sha384, "2.16.840.1.101.3.4.2.2"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(start().0)));
        let ca = ca(&dir.path().join("ca"), algorithm, &clock);
        let der = ca
            .content_signer()
            .sign(&ContentToSign {
                content_type: SignedContentType::Chuid,
                content: b"x",
                fasc_n: None,
                uuid: None,
                include_certificate: false,
            })
            .unwrap();
        let info = cms::content_info::ContentInfo::from_der(&der).unwrap();
        let signed: cms::signed_data::SignedData = info.content.decode_as().unwrap();
        assert_eq!(signed.version, cms::content_info::CmsVersion::V3);
        assert!(signed.certificates.is_none());
        let signer_info = signed.signer_infos.0.get(0).unwrap();
        assert_eq!(signer_info.digest_alg.oid.to_string(), digest_oid);
        assert!(signer_info.digest_alg.parameters.is_none());
        assert_eq!(
            signed.encap_content_info.econtent_type.to_string(),
            "2.16.840.1.101.3.6.1"
        );
    }
}

#[test]
fn the_content_signing_certificate_follows_the_piv_i_profile() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(start().0)));
    let ca_dir = dir.path().join("ca");
    drop(ca(&ca_dir, CaKeyAlgorithm::EcdsaP256Sha256, &clock));
    // The signer was made at the first opening, without a public URL: opening with one renews
    // it, so that its certificate carries the URLs too.
    let first = pems(&ca_dir);
    let ca = open_with_url(&ca_dir, &clock, Some("https://cms.example.org"));
    assert_eq!(pems(&ca_dir).len(), first.len() + 1);
    let der = ca.content_signer_certificate().unwrap().der;
    let certificate = Certificate::from_der(&der).unwrap();
    let tbs = &certificate.tbs_certificate;
    assert_eq!(
        tessera_pki::format_name(&tbs.subject),
        "CN=Example Org PIV Content Signer,O=Example Org"
    );
    let extensions = tbs.extensions.as_ref().unwrap();
    let find = |oid: &str| {
        extensions
            .iter()
            .find(|e| e.extn_id.to_string() == oid)
            .unwrap_or_else(|| panic!("no extension {oid}"))
    };
    // keyUsage digitalSignature and EKU id-PIV-content-signing, both critical.
    let ku = find("2.5.29.15");
    assert!(ku.critical);
    assert_eq!(ku.extn_value.as_bytes(), [0x03, 0x02, 0x07, 0x80]);
    let eku = find("2.5.29.37");
    assert!(eku.critical);
    assert_eq!(
        eku.extn_value.as_bytes(),
        [0x30, 0x0A, 0x06, 0x08, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x06, 0x07]
    );
    for oid in [
        "2.5.29.14",
        "2.5.29.35",
        "2.5.29.32",
        "2.5.29.31",
        "1.3.6.1.5.5.7.1.1",
    ] {
        assert!(!find(oid).critical, "{oid}");
    }
    // The content-signing policy under the organisation's arc.
    let arc = ca.policy_arc();
    assert!(arc.starts_with("2.25."), "{arc}");
    let policy = tessera_pki::policy_oids::oid_der(&format!("{arc}.1.5")).unwrap();
    assert!(find("2.5.29.32")
        .extn_value
        .as_bytes()
        .windows(policy.len())
        .any(|w| w == policy));
    // Six years, inside the issuing CA's life.
    let not_before = tbs.validity.not_before.to_unix_duration().as_secs() as i64;
    let not_after = tbs.validity.not_after.to_unix_duration().as_secs() as i64;
    assert_eq!(not_before, start().0);
    assert_eq!(not_after, start().plus_days(6 * 365).0);
    assert!(Timestamp(not_after) <= ca.issuing_not_after());

    if openssl_present() {
        let scratch = dir.path();
        std::fs::write(scratch.join("signer.pem"), pem(&der)).unwrap();
        std::fs::write(scratch.join("chain.pem"), ca.chain_pem()).unwrap();
        let (ok, out) = openssl(
            scratch,
            &[
                "verify",
                "-CAfile",
                "chain.pem",
                "-attime",
                &start().plus_days(1).0.to_string(),
                "signer.pem",
            ],
        );
        assert!(ok && out.contains("signer.pem: OK"), "{out}");
        let (_, text) = openssl(scratch, &["x509", "-noout", "-text", "-in", "signer.pem"]);
        assert!(
            text.contains("https://cms.example.org/pki/issuing.p7c"),
            "{text}"
        );
        assert!(text.contains("https://cms.example.org/pki/ocsp"), "{text}");
        assert!(
            text.contains("https://cms.example.org/pki/issuing.crl"),
            "{text}"
        );
    }
}

/// Whether the certificatePolicies of the DER certificate `der` assert `oid`.
fn asserts_policy(der: &[u8], oid: &str) -> bool {
    let certificate = Certificate::from_der(der).unwrap();
    let policy = tessera_pki::policy_oids::oid_der(oid).unwrap();
    certificate
        .tbs_certificate
        .extensions
        .unwrap()
        .iter()
        .find(|e| e.extn_id.to_string() == "2.5.29.32")
        .expect("certificatePolicies")
        .extn_value
        .as_bytes()
        .windows(policy.len())
        .any(|w| w == policy)
}

#[test]
fn a_configured_policy_arc_replaces_the_uuid_arc() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(start().0)));
    let ca_dir = dir.path().join("ca");
    let default_arc = ca(&ca_dir, CaKeyAlgorithm::EcdsaP256Sha256, &clock)
        .policy_arc()
        .to_owned();
    let reopen = || config::open_ca(&ca_dir, master(), ORG, clock.now(), Arc::new(OsRandom));
    for bad in ["1.3.6.1.4.1.x", "3.1", "1.3.6.1.4.1.032473", ""] {
        assert!(
            matches!(
                reopen().unwrap().with_policy_arc(bad),
                Err(tessera_pki::PkiError::InvalidPolicy(_))
            ),
            "{bad:?} was taken"
        );
    }
    // 32473 is the private enterprise number RFC 5612 keeps for examples.
    let ca = reopen()
        .unwrap()
        .with_policy_arc(" 1.3.6.1.4.1.32473.1 ")
        .unwrap()
        .with_clock(clock.clone());
    let before = ca.content_signing().current(clock.now()).unwrap();
    assert!(asserts_policy(
        before.certificate_der(),
        &format!("{default_arc}.1.5")
    ));
    // Opening renews the signer made under the old arc; opening again with the same
    // configuration keeps the new one.
    ca.prepare_content_signer(clock.now()).unwrap();
    assert_eq!(ca.policy_arc(), "1.3.6.1.4.1.32473.1");
    let renewed = ca.content_signing().current(clock.now()).unwrap();
    assert_eq!(renewed.number, before.number + 1);
    assert!(asserts_policy(
        renewed.certificate_der(),
        "1.3.6.1.4.1.32473.1.1.5"
    ));
    assert!(!asserts_policy(
        renewed.certificate_der(),
        &format!("{default_arc}.1.5")
    ));
    let again = reopen()
        .unwrap()
        .with_policy_arc("1.3.6.1.4.1.32473.1")
        .unwrap();
    again.prepare_content_signer(clock.now()).unwrap();
    let kept = again.content_signing().current(clock.now()).unwrap();
    assert_eq!(kept.number, renewed.number);
}

fn serial(der: &[u8]) -> Vec<u8> {
    Certificate::from_der(der)
        .unwrap()
        .tbs_certificate
        .serial_number
        .as_bytes()
        .to_vec()
}

fn pems(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.starts_with("content-signer-") && n.ends_with(".pem"))
        .collect();
    names.sort();
    names
}

#[test]
fn the_signer_is_renewed_inside_its_window_and_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let clock = Arc::new(TestClock(AtomicI64::new(start().0)));
    let ca = ca(&ca_dir, CaKeyAlgorithm::EcdsaP256Sha256, &clock);
    // Made when the CA opened.
    assert_eq!(pems(&ca_dir).len(), 1);
    let first = ca.content_signer_certificate().unwrap().der;

    // Outside the window (more than three years and thirty days left): the same signer.
    clock.set(start().plus_days(6 * 365 - (3 * 365 + 31)));
    assert_eq!(ca.content_signer_certificate().unwrap().der, first);

    // Inside it: a signature makes a new one first; the old certificate stays on disk.
    clock.set(start().plus_days(6 * 365 - (3 * 365 + 29)));
    let der = ca
        .content_signer()
        .sign(&ContentToSign {
            content_type: SignedContentType::Chuid,
            content: b"x",
            fasc_n: None,
            uuid: None,
            include_certificate: true,
        })
        .unwrap();
    let second = ca.content_signer_certificate().unwrap().der;
    assert_ne!(serial(&second), serial(&first));
    assert!(
        der.windows(second.len()).any(|w| w == second),
        "signed with the new one"
    );
    assert_eq!(pems(&ca_dir).len(), 2);

    // Another replica on the same folder adopts the newest instead of making its own.
    let replica = open(&ca_dir, &clock);
    assert_eq!(replica.content_signer_certificate().unwrap().der, second);
    assert_eq!(pems(&ca_dir).len(), 2);

    // On demand: a third, which the replica signs with once it next looks at the folder (at
    // most a minute later); until then it keeps the second, still valid.
    let third = ca.renew_content_signer().unwrap();
    assert_ne!(serial(&third.der), serial(&second));
    assert_eq!(replica.content_signer_certificate().unwrap().der, second);
    clock.set(Timestamp(clock.now().0 + 61));
    assert_eq!(replica.content_signer_certificate().unwrap().der, third.der);
    assert_eq!(pems(&ca_dir).len(), 3);
}

#[test]
fn the_signer_never_outlives_the_issuing_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let clock = Arc::new(TestClock(AtomicI64::new(start().0)));
    let ca = ca(&ca_dir, CaKeyAlgorithm::EcdsaP256Sha256, &clock);
    let end = ca.issuing_not_after();
    // A year before the issuing CA ends: the renewed certificate ends with it...
    clock.set(Timestamp(end.0 - 365 * DAY));
    let last = ca.content_signer_certificate().unwrap().der;
    let not_after = |der: &[u8]| {
        Certificate::from_der(der)
            .unwrap()
            .tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_secs() as i64
    };
    assert_eq!(not_after(&last), end.0);
    let count = pems(&ca_dir).len();
    // ...and later signatures do not pile up new ones that could not last longer.
    clock.set(Timestamp(end.0 - 300 * DAY));
    assert_eq!(ca.content_signer_certificate().unwrap().der, last);
    assert_eq!(pems(&ca_dir).len(), count);
    // After the issuing CA's end nothing is signed.
    clock.set(Timestamp(end.0 + DAY));
    assert!(ca
        .content_signer()
        .sign(&ContentToSign {
            content_type: SignedContentType::Chuid,
            content: b"x",
            fasc_n: None,
            uuid: None,
            include_certificate: true,
        })
        .is_err());
}

#[test]
fn the_p7c_holds_the_issuing_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(start().0)));
    let ca = ca(
        &dir.path().join("ca"),
        CaKeyAlgorithm::EcdsaP256Sha256,
        &clock,
    );
    let p7c = ca.issuing_p7c().to_vec();
    let info = cms::content_info::ContentInfo::from_der(&p7c).unwrap();
    assert_eq!(info.content_type.to_string(), "1.2.840.113549.1.7.2");
    let signed: cms::signed_data::SignedData = info.content.decode_as().unwrap();
    assert!(signed.signer_infos.0.is_empty() && signed.digest_algorithms.is_empty());
    assert_eq!(signed.certificates.as_ref().unwrap().0.len(), 1);
    assert_eq!(info.to_der().unwrap(), p7c);
    if openssl_present() {
        std::fs::write(dir.path().join("issuing.p7c"), &p7c).unwrap();
        let (ok, out) = openssl(
            dir.path(),
            &[
                "pkcs7",
                "-inform",
                "DER",
                "-in",
                "issuing.p7c",
                "-print_certs",
                "-noout",
            ],
        );
        assert!(ok, "{out}");
        assert_eq!(out.matches("subject=").count(), 1, "{out}");
        assert!(out.contains("CN = Example Org Issuing CA 1"), "{out}");
    }
}

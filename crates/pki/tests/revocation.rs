//! Revocation checked by openssl: the CRL parses and lists what it should with the right reasons
//! (and `openssl verify -crl_check` refuses a revoked certificate), and the OCSP responder answers
//! `openssl ocsp` good, revoked (with reason) and unknown correctly, echoing the nonce.

use p256::pkcs8::EncodePublicKey;
use rand::RngCore;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use tessera_core::ids::UserId;
use tessera_core::model::{KeyAlgorithm, Slot, Timestamp, User, UserSource};
use tessera_core::ports::{CertificateAuthority, CertificateRequest, CertificateSubject, Random};
use tessera_pki::ocsp::{respond, OcspStatus};
use tessera_pki::revocation::{build_crl, crl_reason, Revocation, RevocationSigner};
use tessera_pki::{piv_profile, AesGcmSealer, SoftwareCa};
use x509_cert::der::Decode;
use x509_cert::Certificate;

struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf);
    }
}

fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Timestamp(secs as i64)
}

fn ca(dir: &Path) -> SoftwareCa {
    SoftwareCa::load_or_create(
        dir,
        Arc::new(AesGcmSealer::new(&[7; 32])),
        "Revocation Test",
        now(),
        Arc::new(OsRandom),
    )
    .unwrap()
}

async fn leaf(ca: &SoftwareCa, slot: Slot) -> (String, Vec<u8>) {
    let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let issued = ca
        .issue(&CertificateRequest {
            slot,
            public_key_der: key.public_key().to_public_key_der().unwrap().into_vec(),
            profile: piv_profile(slot, KeyAlgorithm::EccP256, "Revocation Test"),
            subject: CertificateSubject {
                user: User {
                    uid: UserId::new("jdoe"),
                    given_name: "Jane".into(),
                    family_name: "Doe".into(),
                    display_name: "Jane Doe".into(),
                    email: "jane@example.org".into(),
                    upn: "jdoe@example.org".into(),
                    employee_id: "1".into(),
                    department: "D".into(),
                    title: "T".into(),
                    groups: vec![],
                    source: UserSource::Local,
                    attributes: Default::default(),
                    has_photo: false,
                    disabled: false,
                    photo_digest: None,
                },
                card_uuid: "3f2504e0-4f89-41d3-9a0c-0305e82c3301".into(),
                fasc_n: None,
            },
            not_before: now(),
        })
        .await
        .unwrap();
    (issued.serial, issued.der)
}

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn pem(der: &[u8], label: &str) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap()
}

#[tokio::test]
async fn crl_and_ocsp_answer_what_openssl_expects() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = ca(&dir.join("ca"));
    let issuer = Certificate::from_der(ca.issuing_der()).unwrap();
    let key = ca.issuing_key();
    let signer = RevocationSigner {
        issuer: &issuer,
        key: key.as_ref(),
    };
    let (good, good_der) = leaf(&ca, Slot::PivAuthentication).await;
    let (stolen, stolen_der) = leaf(&ca, Slot::DigitalSignature).await;
    let (held, held_der) = leaf(&ca, Slot::KeyManagement).await;
    std::fs::write(dir.join("root.pem"), ca.root_pem()).unwrap();
    std::fs::write(dir.join("issuing.pem"), ca.issuing_pem()).unwrap();
    std::fs::write(dir.join("chain.pem"), ca.chain_pem()).unwrap();
    for (name, der) in [
        ("good", &good_der),
        ("stolen", &stolen_der),
        ("held", &held_der),
    ] {
        std::fs::write(dir.join(format!("{name}.pem")), pem(der, "CERTIFICATE")).unwrap();
    }

    // --- CRL
    let revoked = vec![
        Revocation {
            serial: stolen.clone(),
            at: now(),
            reason: crl_reason("keyCompromise"),
        },
        Revocation {
            serial: held.clone(),
            at: now(),
            reason: crl_reason("certificateHold"),
        },
    ];
    let crl = build_crl(&signer, 7, now(), Timestamp(now().0 + 86_400), &revoked).unwrap();
    std::fs::write(dir.join("crl.pem"), pem(&crl, "X509 CRL")).unwrap();
    let (ok, text) = openssl(
        dir,
        &[
            "crl",
            "-in",
            "crl.pem",
            "-noout",
            "-text",
            "-CAfile",
            "chain.pem",
        ],
    );
    assert!(ok && text.contains("verify OK"), "{text}");
    assert!(
        text.contains(&stolen.to_uppercase()) && text.contains("Key Compromise"),
        "{text}"
    );
    assert!(
        text.contains(&held.to_uppercase()) && text.contains("Certificate Hold"),
        "{text}"
    );
    assert!(!text.contains(&good.to_uppercase()), "{text}");
    assert!(
        text.contains("X509v3 CRL Number") && text.contains("Next Update"),
        "{text}"
    );
    let check = |leaf: &str| {
        openssl(
            dir,
            &[
                "verify",
                "-crl_check",
                "-CRLfile",
                "crl.pem",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "issuing.pem",
                leaf,
            ],
        )
    };
    assert!(check("good.pem").0, "{}", check("good.pem").1);
    let (ok, text) = check("stolen.pem");
    assert!(!ok && text.contains("certificate revoked"), "{text}");

    // --- OCSP: good, revoked with reason, held, and unknown (another CA's certificate)
    let lookup = |serial: &str| {
        if serial == good {
            OcspStatus::Good
        } else if let Some(r) = revoked.iter().find(|r| r.serial == serial) {
            OcspStatus::Revoked(r.clone())
        } else {
            OcspStatus::Unknown
        }
    };
    let other = self::ca(&dir.join("other"));
    let (_, other_der) = leaf(&other, Slot::PivAuthentication).await;
    std::fs::write(dir.join("other.pem"), pem(&other_der, "CERTIFICATE")).unwrap();
    for (name, expected) in [
        ("good", "good.pem: good"),
        ("stolen", "stolen.pem: revoked"),
        ("held", "held.pem: revoked"),
        ("other", "other.pem: unknown"),
    ] {
        let (ok, text) = openssl(
            dir,
            &[
                "ocsp",
                "-issuer",
                "issuing.pem",
                "-cert",
                &format!("{name}.pem"),
                "-reqout",
                "req.der",
            ],
        );
        // Without a responder URL openssl only writes the request.
        assert!(
            ok || text.contains("req.der") || dir.join("req.der").exists(),
            "{text}"
        );
        let request = std::fs::read(dir.join("req.der")).unwrap();
        let response = respond(&signer, &request, now(), &lookup);
        std::fs::write(dir.join("resp.der"), &response).unwrap();
        let (ok, text) = openssl(
            dir,
            &[
                "ocsp",
                "-respin",
                "resp.der",
                "-issuer",
                "issuing.pem",
                "-cert",
                &format!("{name}.pem"),
                "-CAfile",
                "chain.pem",
                "-no_nonce",
                "-resp_text",
            ],
        );
        assert!(ok, "{text}");
        // Given the request it answers, openssl also checks that the nonce came back.
        let (nonce_ok, nonce_text) = openssl(
            dir,
            &[
                "ocsp",
                "-reqin",
                "req.der",
                "-respin",
                "resp.der",
                "-CAfile",
                "chain.pem",
                "-VAfile",
                "issuing.pem",
            ],
        );
        assert!(
            nonce_ok && !nonce_text.contains("Nonce Verify error"),
            "{nonce_text}"
        );
        assert!(text.contains("Response verify OK"), "{name}: {text}");
        assert!(text.contains(expected), "{name}: {text}");
        if name == "stolen" {
            assert!(text.contains("Reason: keyCompromise"), "{text}");
        }
        if name == "held" {
            assert!(text.contains("Reason: certificateHold"), "{text}");
        }
    }
    // Garbage gets malformedRequest, not a panic.
    let response = respond(&signer, b"not DER", now(), &lookup);
    std::fs::write(dir.join("bad.der"), &response).unwrap();
    let (_, text) = openssl(
        dir,
        &["ocsp", "-respin", "bad.der", "-resp_text", "-noverify"],
    );
    assert!(
        text.contains("malformedrequest") || text.contains("malformed"),
        "{text}"
    );
}

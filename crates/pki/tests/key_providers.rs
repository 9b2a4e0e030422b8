//! One conformance suite for `KeyProvider` / `CaKey`, run against the software provider and
//! against a PKCS#11 token (SoftHSM): generate, refuse a taken label, load again, sign, verify with
//! an independent implementation (RustCrypto), public key round trip, a clear error for a wrong
//! label. Then whole CAs on each kind of key: `ca init` on SoftHSM and under a passphrase, and
//! `ca import` of an issuing CA certified by an organisation's root made with openssl; every
//! leaf is checked with `openssl verify`.
//!
//! SoftHSM tests skip with a message when SoftHSM is not installed, and fail instead when
//! `TESSERA_REQUIRE_SOFTHSM=1` (as scripts/test.sh sets).

use der::{Decode, Encode};
use p256::pkcs8::EncodePublicKey;
use rand::RngCore;
use spki::SubjectPublicKeyInfoOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use tessera_core::ids::UserId;
use tessera_core::model::{KeyAlgorithm, Slot, Timestamp, User, UserSource};
use tessera_core::ports::{CertificateRequest, CertificateSubject, Random, Sealer};
use tessera_pki::config::{self, ImportKey, InitOptions, KeyConfig, Sealing};
use tessera_pki::pkcs11::{Pkcs11KeyProvider, Pkcs11Pin, Pkcs11Settings};
use tessera_pki::{
    piv_profile, AesGcmSealer, Ca, CaKeyAlgorithm, KeyProvider, PkiError, SoftwareKeyProvider,
};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "tessera-ca";
const PIN: &str = "123456";

struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf);
    }
}

fn random() -> Arc<dyn Random> {
    Arc::new(OsRandom)
}

fn master() -> Arc<dyn Sealer> {
    Arc::new(AesGcmSealer::new(&[0x42; 32]))
}

fn unique(prefix: &str) -> String {
    let mut b = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("{prefix}-{}", hex::encode(b))
}

// ---- SoftHSM -----------------------------------------------------------------------------------

struct SoftHsm {
    /// Holds the token folder and the PIN file for the life of the test process.
    dir: PathBuf,
}

/// The one SoftHSM token of this test process. SoftHSM reads `SOFTHSM2_CONF` once, at
/// `C_Initialize`, so every test shares the token and uses its own key labels.
fn softhsm() -> Option<&'static SoftHsm> {
    static HSM: OnceLock<Option<SoftHsm>> = OnceLock::new();
    HSM.get_or_init(|| {
        let required = std::env::var("TESSERA_REQUIRE_SOFTHSM").as_deref() == Ok("1");
        let util = Command::new("softhsm2-util").arg("--version").output();
        if !Path::new(MODULE).exists() || util.is_err() {
            assert!(
                !required,
                "TESSERA_REQUIRE_SOFTHSM=1 but SoftHSM is not installed ({MODULE}, softhsm2-util): \
                 apt-get install softhsm2"
            );
            eprintln!("SKIPPED: SoftHSM is not installed ({MODULE}); apt-get install softhsm2");
            return None;
        }
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        // Set before the first C_Initialize of this process, which happens after this returns.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        let out = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", TOKEN])
            .args(["--so-pin", "12345678", "--pin", PIN])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "softhsm2-util --init-token: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(dir.join("pin"), format!("{PIN}\n")).unwrap();
        Some(SoftHsm { dir })
    })
    .as_ref()
}

impl SoftHsm {
    fn settings(&self, labels: &[(&str, &str)]) -> Pkcs11Settings {
        Pkcs11Settings {
            module: MODULE.into(),
            token: TOKEN.into(),
            pin_file: Some(self.dir.join("pin")),
            key_labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn provider(&self) -> Pkcs11KeyProvider {
        Pkcs11KeyProvider::open(self.settings(&[]), Pkcs11Pin::new(PIN)).unwrap()
    }
}

// ---- the conformance suite ---------------------------------------------------------------------

/// Verifies with RustCrypto directly (not through tessera-pki), so a signing bug cannot hide
/// behind a matching verification bug.
fn verify_independently(algorithm: CaKeyAlgorithm, spki: &[u8], message: &[u8], signature: &[u8]) {
    use p256::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    match algorithm {
        CaKeyAlgorithm::EcdsaP256Sha256 => {
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki).unwrap();
            let sig = p256::ecdsa::Signature::from_der(signature).unwrap();
            key.verify(message, &sig).expect("P-256 signature verifies");
        }
        CaKeyAlgorithm::EcdsaP384Sha384 => {
            let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki).unwrap();
            let sig = p384::ecdsa::Signature::from_der(signature).unwrap();
            key.verify(message, &sig).expect("P-384 signature verifies");
        }
        _ => {
            let key = rsa::RsaPublicKey::from_public_key_der(spki).unwrap();
            let bits = rsa::traits::PublicKeyParts::size(&key) * 8;
            assert_eq!(Some(bits), algorithm.rsa_bits());
            let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key);
            let sig = rsa::pkcs1v15::Signature::try_from(signature).unwrap();
            verifier
                .verify(message, &sig)
                .expect("RSA signature verifies");
        }
    }
}

fn conformance(name: &str, open: &dyn Fn() -> Box<dyn KeyProvider>, algorithms: &[CaKeyAlgorithm]) {
    let provider = open();
    for &algorithm in algorithms {
        let label = unique(&format!("conf-{}", algorithm.name()));
        assert!(!provider.exists(&label), "{name}: fresh label exists");
        let generated = provider.generate(&label, algorithm).unwrap();
        assert_eq!(generated.algorithm(), algorithm, "{name}");
        assert!(provider.exists(&label), "{name}: generated key not found");
        assert!(
            matches!(
                provider.generate(&label, algorithm),
                Err(PkiError::KeyExists(_))
            ),
            "{name}: a taken label must be refused"
        );

        // Loaded again through a new provider: the same key, usable.
        let loaded = open().load(&label).unwrap();
        assert_eq!(loaded.algorithm(), algorithm, "{name}");
        assert_eq!(
            loaded.public_key_der(),
            generated.public_key_der(),
            "{name}"
        );

        // Public key round trip: canonical DER that RustCrypto reads back to the same bytes.
        let spki = SubjectPublicKeyInfoOwned::from_der(loaded.public_key_der()).unwrap();
        assert_eq!(spki.to_der().unwrap(), loaded.public_key_der(), "{name}");
        let reencoded = match algorithm {
            CaKeyAlgorithm::EcdsaP256Sha256 => {
                use p256::pkcs8::DecodePublicKey;
                p256::PublicKey::from_public_key_der(loaded.public_key_der())
                    .unwrap()
                    .to_public_key_der()
                    .unwrap()
            }
            CaKeyAlgorithm::EcdsaP384Sha384 => {
                use p384::pkcs8::DecodePublicKey;
                p384::PublicKey::from_public_key_der(loaded.public_key_der())
                    .unwrap()
                    .to_public_key_der()
                    .unwrap()
            }
            _ => {
                use rsa::pkcs8::DecodePublicKey;
                rsa::RsaPublicKey::from_public_key_der(loaded.public_key_der())
                    .unwrap()
                    .to_public_key_der()
                    .unwrap()
            }
        };
        assert_eq!(reencoded.as_bytes(), loaded.public_key_der(), "{name}");

        // Both handles sign; signatures verify independently and only over their message.
        for key in [&generated, &loaded] {
            let message = format!("tbsCertificate for {label}").into_bytes();
            let signature = key.sign(&message).unwrap();
            verify_independently(algorithm, key.public_key_der(), &message, &signature);
            tessera_pki::verify_signature(
                key.public_key_der(),
                &algorithm.signature_algorithm(),
                &message,
                &signature,
            )
            .unwrap();
            assert!(tessera_pki::verify_signature(
                key.public_key_der(),
                &algorithm.signature_algorithm(),
                b"another message",
                &signature,
            )
            .is_err());
        }
    }

    let missing = unique("no-such-key");
    assert!(!provider.exists(&missing));
    match provider.load(&missing) {
        Err(e @ PkiError::KeyNotFound { .. }) => {
            assert!(e.to_string().contains(&missing), "{name}: {e}")
        }
        Err(e) => panic!("{name}: wrong error for a missing label: {e}"),
        Ok(_) => panic!("{name}: a missing label loaded"),
    }
}

#[test]
fn software_provider_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    conformance(
        "software",
        &|| Box::new(SoftwareKeyProvider::new(&path, master(), random())),
        &CaKeyAlgorithm::ALL,
    );
    // Sealed at rest: no file holds a clear PKCS#8 key.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert_eq!(bytes[0], 1, "sealed format version");
        assert!(p256::pkcs8::PrivateKeyInfo::from_der(&bytes).is_err());
    }
    // Another master key cannot open them.
    let other =
        SoftwareKeyProvider::new(dir.path(), Arc::new(AesGcmSealer::new(&[7; 32])), random());
    let label = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .trim_end_matches(".key.sealed")
        .to_owned();
    assert!(matches!(other.load(&label), Err(PkiError::BadKey { .. })));
}

#[test]
fn softhsm_provider_conforms() {
    let Some(hsm) = softhsm() else { return };
    conformance(
        "softhsm",
        &|| Box::new(hsm.provider()),
        &[
            CaKeyAlgorithm::EcdsaP256Sha256,
            CaKeyAlgorithm::EcdsaP384Sha384,
            CaKeyAlgorithm::Rsa2048Sha256,
        ],
    );
}

#[test]
fn softhsm_keys_are_sensitive_and_errors_are_clear() {
    let Some(hsm) = softhsm() else { return };
    let label = unique("sensitive");
    hsm.provider()
        .generate(&label, CaKeyAlgorithm::EcdsaP256Sha256)
        .unwrap();
    // Checked with OpenSC's pkcs11-tool, when installed: the private key is sensitive and was
    // never extractable.
    let out = Command::new("pkcs11-tool")
        .args([
            "--module",
            MODULE,
            "--token-label",
            TOKEN,
            "--login",
            "--pin",
            PIN,
        ])
        .args(["--list-objects", "--type", "privkey", "--label", &label])
        .output();
    if let Ok(out) = out {
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            assert!(text.contains("sensitive"), "{text}");
            assert!(text.contains("never extractable"), "{text}");
        }
    }

    let wrong_token = Pkcs11KeyProvider::open(
        Pkcs11Settings {
            token: "no-such-token".into(),
            ..hsm.settings(&[])
        },
        Pkcs11Pin::new(PIN),
    )
    .expect_err("unknown token refused")
    .to_string();
    assert!(
        wrong_token.contains("no-such-token") && wrong_token.contains(TOKEN),
        "{wrong_token}"
    );
    let wrong_module = Pkcs11KeyProvider::open(
        Pkcs11Settings {
            module: "/nonexistent/libpkcs11.so".into(),
            ..hsm.settings(&[])
        },
        Pkcs11Pin::new(PIN),
    )
    .expect_err("missing module refused")
    .to_string();
    assert!(
        wrong_module.contains("/nonexistent/libpkcs11.so"),
        "{wrong_module}"
    );
}

// ---- whole CAs ---------------------------------------------------------------------------------

const ORG: &str = "Example Org";

fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Timestamp(secs as i64)
}

fn request() -> CertificateRequest {
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    CertificateRequest {
        slot: Slot::PivAuthentication,
        public_key_der: secret.public_key().to_public_key_der().unwrap().into_vec(),
        profile: piv_profile(Slot::PivAuthentication, KeyAlgorithm::EccP256, ORG),
        subject: CertificateSubject {
            user: User {
                uid: UserId::new("jdoe"),
                given_name: "Jane".into(),
                family_name: "Doe".into(),
                display_name: "Doe, Jane".into(),
                email: "jane.doe@example.org".into(),
                upn: "jdoe@example.org".into(),
                employee_id: "E-1".into(),
                department: "R&D".into(),
                title: "Engineer".into(),
                groups: vec![],
                source: UserSource::Local,
                attributes: Default::default(),
                has_photo: false,
                disabled: false,
                photo_digest: None,
            },
            card_uuid: "3F2504E0-4F89-41D3-9A0C-0305E82C3301".into(),
            fasc_n: None,
        },
        not_before: now(),
    }
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Issues a leaf and checks it with `openssl verify` against the CA's root, the certificates
/// between given as untrusted.
fn issue_and_verify(ca: &Ca, scratch: &Path) -> String {
    let leaf = ca.issue_certificate(&request()).unwrap();
    let pem = |der: &[u8]| {
        use der::EncodePem;
        x509_cert::Certificate::from_der(der)
            .unwrap()
            .to_pem(der::pem::LineEnding::LF)
            .unwrap()
    };
    std::fs::write(scratch.join("leaf.pem"), pem(&leaf.der)).unwrap();
    std::fs::write(scratch.join("root.pem"), ca.root_pem()).unwrap();
    std::fs::write(scratch.join("chain.pem"), ca.chain_pem()).unwrap();
    let out = openssl(
        scratch,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "chain.pem",
            "leaf.pem",
        ],
    );
    assert!(out.contains("leaf.pem: OK"), "{out}");
    out
}

#[test]
fn ca_on_softhsm_issues_what_openssl_verifies() {
    let Some(hsm) = softhsm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let root = unique("root");
    let issuing = unique("issuing");
    let settings = hsm.settings(&[("root", &root), ("issuing", &issuing)]);
    let options = InitOptions {
        organisation: ORG.into(),
        algorithm: CaKeyAlgorithm::EcdsaP256Sha256,
        keys: KeyConfig::Pkcs11(settings.clone()),
    };
    let ca = config::init_ca(&ca_dir, master(), &options, now(), random()).unwrap();
    assert_eq!(ca.key_algorithm(), CaKeyAlgorithm::EcdsaP256Sha256);
    issue_and_verify(&ca, dir.path());

    // ca.json names the token and the PIN file, never the PIN; no key file is in the folder.
    let json = std::fs::read_to_string(ca_dir.join("ca.json")).unwrap();
    assert!(json.contains("pkcs11") && json.contains(&issuing), "{json}");
    assert!(!json.contains(PIN), "{json}");
    assert!(!ca_dir.join("issuing.key.sealed").exists());

    // A second init is refused; a restart opens the same CA from ca.json.
    let again = config::init_ca(&ca_dir, master(), &options, now(), random());
    assert!(matches!(again, Err(PkiError::CaExists(_))));
    let reopened = config::open_ca(&ca_dir, master(), "ignored", now(), random()).unwrap();
    assert_eq!(reopened.chain_pem(), ca.chain_pem());
    issue_and_verify(&reopened, dir.path());
}

#[test]
fn ca_under_a_passphrase_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let passphrase_file = dir.path().join("passphrase");
    std::fs::write(&passphrase_file, "correct horse battery staple\n").unwrap();
    let options = InitOptions {
        organisation: ORG.into(),
        algorithm: CaKeyAlgorithm::EcdsaP384Sha384,
        keys: KeyConfig::Software {
            sealing: Sealing::Passphrase,
            passphrase_file: Some(passphrase_file.clone()),
        },
    };
    let ca = config::init_ca(&ca_dir, master(), &options, now(), random()).unwrap();
    assert_eq!(ca.key_algorithm(), CaKeyAlgorithm::EcdsaP384Sha384);
    issue_and_verify(&ca, dir.path());
    assert!(ca_dir.join("kek.json").exists());
    // The master key cannot open the CA keys...
    let with_master = SoftwareKeyProvider::new(&ca_dir, master(), random());
    assert!(with_master.load("issuing").is_err());
    // ...the passphrase can, and a wrong one is reported as such.
    config::open_ca(&ca_dir, master(), ORG, now(), random()).unwrap();
    std::fs::write(&passphrase_file, "wrong horse battery staple\n").unwrap();
    assert!(matches!(
        config::open_ca(&ca_dir, master(), ORG, now(), random()),
        Err(PkiError::WrongPassphrase)
    ));
}

/// An organisation's root and an issuing CA certificate for `public_key_pem`, made with openssl
/// (the tool an organisation's PKI team would use). Returns (issuing.pem, chain.pem).
fn organisation_certifies(dir: &Path, public_key_pem: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-nodes",
            "-keyout",
            "org-root.key",
            "-out",
            "org-root.pem",
            "-days",
            "3650",
            "-subj",
            "/O=Example Org/CN=Example Org Root",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "issuing.key",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "issuing.key",
            "-out",
            "issuing.csr",
            "-subj",
            "/O=Example Org/CN=Tessera Issuing CA",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        "issuing.csr",
        "-CA",
        "org-root.pem",
        "-CAkey",
        "org-root.key",
        "-CAcreateserial",
        "-days",
        "1825",
        "-sha384",
        "-extfile",
        "ext.cnf",
        "-out",
        "issuing.pem",
    ];
    if let Some(pem) = public_key_pem {
        std::fs::write(dir.join("token-public.pem"), pem).unwrap();
        args.extend(["-force_pubkey", "token-public.pem"]);
    }
    openssl(dir, &args);
    (
        std::fs::read(dir.join("issuing.pem")).unwrap(),
        std::fs::read(dir.join("org-root.pem")).unwrap(),
    )
}

#[test]
fn imports_an_issuing_ca_under_an_organisation_root() {
    let dir = tempfile::tempdir().unwrap();
    let (issuing, chain) = organisation_certifies(dir.path(), None);
    let pkcs8 = config::read_pkcs8_file(&dir.path().join("issuing.key")).unwrap();

    // A key that does not match the certificate is refused, and nothing is left behind.
    let ca_dir = dir.path().join("ca");
    let other = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let other = {
        use p256::pkcs8::EncodePrivateKey;
        zeroize::Zeroizing::new(other.to_pkcs8_der().unwrap().as_bytes().to_vec())
    };
    let refused = config::import_ca(
        &ca_dir,
        master(),
        &issuing,
        &chain,
        ImportKey::Software {
            pkcs8_der: other,
            keys: KeyConfig::master_key(),
        },
        random(),
    )
    .expect_err("mismatched key refused")
    .to_string();
    assert!(refused.contains("does not match"), "{refused}");
    assert!(!Ca::exists_in(&ca_dir) && !ca_dir.join("ca.json").exists());

    // The issuing certificate's own chain is required: a wrong root is refused.
    let refused = config::import_ca(
        &ca_dir,
        master(),
        &issuing,
        &issuing,
        ImportKey::Software {
            pkcs8_der: pkcs8.clone(),
            keys: KeyConfig::master_key(),
        },
        random(),
    );
    assert!(refused.is_err());

    let ca = config::import_ca(
        &ca_dir,
        master(),
        &issuing,
        &chain,
        ImportKey::Software {
            pkcs8_der: pkcs8,
            keys: KeyConfig::master_key(),
        },
        random(),
    )
    .unwrap();
    assert!(ca.root_pem().contains("BEGIN CERTIFICATE"));
    let scratch = dir.path().join("check");
    std::fs::create_dir_all(&scratch).unwrap();
    issue_and_verify(&ca, &scratch);
    // Restart: the configured CA opens without a root key.
    let reopened = config::open_ca(&ca_dir, master(), ORG, now(), random()).unwrap();
    assert_eq!(reopened.chain_pem(), ca.chain_pem());
    assert!(!ca_dir.join("root.key.sealed").exists());
}

#[test]
fn imports_an_issuing_ca_whose_key_is_on_softhsm() {
    let Some(hsm) = softhsm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let label = unique("org-issuing");
    let key = hsm
        .provider()
        .generate(&label, CaKeyAlgorithm::EcdsaP256Sha256)
        .unwrap();
    let public_pem = {
        use der::EncodePem;
        SubjectPublicKeyInfoOwned::from_der(key.public_key_der())
            .unwrap()
            .to_pem(der::pem::LineEnding::LF)
            .unwrap()
    };
    let (issuing, chain) = organisation_certifies(dir.path(), Some(&public_pem));
    let ca_dir = dir.path().join("ca");
    let ca = config::import_ca(
        &ca_dir,
        master(),
        &issuing,
        &chain,
        ImportKey::Pkcs11(hsm.settings(&[("issuing", &label)])),
        random(),
    )
    .unwrap();
    let scratch = dir.path().join("check");
    std::fs::create_dir_all(&scratch).unwrap();
    issue_and_verify(&ca, &scratch);
}

/// The content signer of a CA on SoftHSM: its key is generated on the token under its own label,
/// its CMS signatures verify with openssl against the CA, and a renewal takes the next label.
#[test]
fn content_signer_on_softhsm_signs_what_openssl_verifies() {
    use tessera_core::fips201::{ContentToSign, SignedContentType};
    use tessera_core::ports::CertificateAuthority;
    let Some(hsm) = softhsm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let settings = hsm.settings(&[("root", &unique("root")), ("issuing", &unique("issuing"))]);
    let options = InitOptions {
        organisation: ORG.into(),
        algorithm: CaKeyAlgorithm::EcdsaP256Sha256,
        keys: KeyConfig::Pkcs11(settings),
    };
    config::init_ca(&ca_dir, master(), &options, now(), random()).unwrap();
    let ca = config::open_ca(&ca_dir, master(), ORG, now(), random()).unwrap();
    ca.prepare_content_signer(now()).unwrap();
    // The key is on the token, not in the folder; only its certificate is.
    let names: Vec<String> = std::fs::read_dir(&ca_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names
        .iter()
        .any(|n| n.starts_with("content-signer-") && n.ends_with(".pem")));
    assert!(!names
        .iter()
        .any(|n| n.contains("content-signer") && n.ends_with(".sealed")));
    let generation = ca.content_signing().current(now()).unwrap();
    assert!(hsm.provider().exists(generation.label()));

    let content = b"the CHUID's fields before its signature";
    let der = ca
        .content_signer()
        .sign(&ContentToSign {
            content_type: SignedContentType::Chuid,
            content,
            fasc_n: None,
            uuid: None,
            include_certificate: true,
        })
        .unwrap();
    std::fs::write(dir.path().join("chuid.p7"), der).unwrap();
    std::fs::write(dir.path().join("chuid.bin"), content).unwrap();
    std::fs::write(dir.path().join("chain.pem"), ca.chain_pem()).unwrap();
    openssl(
        dir.path(),
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "chuid.p7",
            "-content",
            "chuid.bin",
            "-CAfile",
            "chain.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
    );

    let renewed = ca.renew_content_signer().unwrap();
    let next = ca.content_signing().current(now()).unwrap();
    assert_eq!(next.number, generation.number + 1);
    assert_eq!(next.certificate_der(), renewed.der.as_slice());
    assert!(hsm.provider().exists(next.label()));
}

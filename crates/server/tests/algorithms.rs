//! Every slot algorithm a policy can name (ECC P-256, ECC P-384, RSA 2048, RSA 3072) goes through
//! the whole issuance: keys generated on the card, certified by the CA, checked by `openssl
//! verify`, and the certificate's public key is the card's.

mod support;

use tessera_core::model::{BuiltinRole, JobStep};
use tessera_core::ports::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_is_issued_and_verifies() {
    let (dir, t) = support::open().await;
    let issuer = support::actor(BuiltinRole::Issuer);
    // The key size tells RSA 2048 from RSA 3072, which share the key type.
    for (policy, key_type, key_size) in [
        ("piv-standard", "prime256v1", "Public-Key: (256 bit)"),
        ("piv-p384", "secp384r1", "Public-Key: (384 bit)"),
        ("piv-rsa2048", "rsaEncryption", "Public-Key: (2048 bit)"),
        ("piv-rsa3072", "rsaEncryption", "Public-Key: (3072 bit)"),
    ] {
        let job = support::issue(&t, &issuer, policy, "48291637").await;
        assert_eq!(job.step, JobStep::Printed, "{policy}: {:?}", job.error);
        let certs = t
            .store
            .certificates_of_device(job.device.as_ref().unwrap())
            .await
            .unwrap();
        assert_eq!(certs.len(), 4, "{policy}");
        for c in &certs {
            support::openssl_verify(dir.path(), &t, &c.der);
            let text = std::process::Command::new("openssl")
                .args(["x509", "-noout", "-text", "-in"])
                .arg(dir.path().join("leaf.pem"))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&text.stdout);
            assert!(text.contains(key_type), "{policy} {:?}: {text}", c.slot);
            assert!(text.contains(key_size), "{policy} {:?}: {text}", c.slot);
        }
    }
}

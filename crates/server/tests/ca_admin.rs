//! `tessera ca init` / `ca import` through the server: the CA they set up is the one the server
//! opens, and a data folder's CA is never replaced.

use tessera_pki::CaKeyAlgorithm;
use tessera_server::ca_admin::{self, KeyArgs};
use tessera_server::{Options, Tessera};

#[tokio::test]
async fn the_server_opens_the_ca_that_ca_init_made() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let passphrase = dir.path().join("passphrase");
    std::fs::write(&passphrase, "a passphrase long enough\n").unwrap();
    let keys = KeyArgs {
        ca_passphrase_file: Some(passphrase.clone()),
        ..KeyArgs::default()
    };
    let summary =
        ca_admin::init(&data, CaKeyAlgorithm::EcdsaP384Sha384, Some("Acme"), &keys).unwrap();
    assert!(summary.contains("CN=Acme Issuing CA 1"), "{summary}");
    assert!(summary.contains("passphrase"), "{summary}");

    let again = ca_admin::init(
        &data,
        CaKeyAlgorithm::EcdsaP256Sha256,
        None,
        &KeyArgs::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(again.contains("already exists"), "{again}");

    let options = Options::new(data.clone());
    let (tessera, _) = Tessera::open(&options).await.unwrap();
    assert_eq!(tessera.ca.key_algorithm(), CaKeyAlgorithm::EcdsaP384Sha384);
    assert_eq!(tessera.ca.issuer(), "CN=Acme Issuing CA 1,O=Acme");
    drop(tessera);

    // Without the passphrase the server does not start, and says why.
    std::fs::write(&passphrase, "not the passphrase at all\n").unwrap();
    let error = Tessera::open(&options).await.err().unwrap().to_string();
    assert!(error.contains("passphrase is wrong"), "{error}");
}

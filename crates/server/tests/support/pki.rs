//! openssl as the relying party: the CRL the server publishes, read and checked by `openssl crl`.

use std::path::Path;
use std::process::Command;

/// `openssl ARGS` in `dir`: its standard output and error together.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The CRL the server at `base` publishes, as `openssl crl -text` prints it, its signature
/// checked against `chain.pem` in `dir`.
pub async fn crl_text(base: &str, dir: &Path) -> String {
    let der = reqwest::get(format!("{base}/pki/issuing.crl"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(dir.join("crl.der"), &der).unwrap();
    let text = openssl(
        dir,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "crl.der",
            "-noout",
            "-text",
            "-CAfile",
            "chain.pem",
        ],
    );
    assert!(text.contains("verify OK"), "{text}");
    text
}

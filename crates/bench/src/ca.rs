//! `tessera bench-ca`: how fast the certificate authority signs, on one core, beside what
//! `openssl speed` does on the same machine in the same run (the bar is 80% of OpenSSL's raw
//! signing rate). Figures: raw signatures and whole certificates (profile, encoding, signature;
//! no store) with ECDSA P-256 and RSA 2048 issuing keys, certificates issued and stored in SQLite,
//! and certificates signed through SoftHSM when it is installed.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::changes::{Change, Changes};
use tessera_core::ids::{DeviceId, UserId};
use tessera_core::model::{
    CertificateRecord, CertificateStatus, Device, KeyAlgorithm, Slot, Timestamp, User, UserSource,
};
use tessera_core::ports::{CertificateRequest, CertificateSubject, Clock, Random, Sealer, Store};
use tessera_core::{DeviceState, Reason};
use tessera_pki::pkcs11::{Pkcs11KeyProvider, Pkcs11Pin, Pkcs11Settings};
use tessera_pki::{
    piv_profile, AesGcmSealer, Ca, CaKeyAlgorithm, KeyProvider, SoftwareKeyProvider,
};
use tessera_server::platform::{OsRandom, SystemClock};

const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// One line of the table.
pub struct Row {
    pub what: String,
    pub per_second: f64,
    /// `openssl speed`'s signatures per second for the same algorithm, when measured.
    pub openssl: Option<f64>,
}

pub struct CaFigures {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl CaFigures {
    /// A Markdown table (readable in a terminal too).
    pub fn report(&self) -> String {
        let mut out = String::from(
            "| measurement (one core) | per second | openssl speed sign/s | share of openssl |\n\
             |---|---:|---:|---:|\n",
        );
        for row in &self.rows {
            let (openssl, share) = match row.openssl {
                Some(o) if o > 0.0 => (
                    format!("{o:.0}"),
                    format!("{:.0}%", 100.0 * row.per_second / o),
                ),
                _ => ("".into(), "".into()),
            };
            out.push_str(&format!(
                "| {} | {:.0} | {openssl} | {share} |\n",
                row.what, row.per_second
            ));
        }
        for note in &self.notes {
            out.push_str(&format!("\n{note}"));
        }
        out
    }
}

/// Runs `body` repeatedly for about `duration` on this thread and returns the rate per second.
fn rate(duration: Duration, mut body: impl FnMut()) -> f64 {
    // Warm up caches and lazy initialisation outside the measurement.
    for _ in 0..10 {
        body();
    }
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < duration {
        for _ in 0..10 {
            body();
        }
        n += 10;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// `openssl speed -seconds N <algorithm>`: the sign/s column of its result line.
pub fn openssl_speed(algorithm: &str, seconds: u32) -> Option<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", &seconds.to_string(), algorithm])
        .output()
        .ok()?;
    parse_openssl_speed(&String::from_utf8_lossy(&out.stdout), algorithm)
}

/// Finds the header with `sign/s` and reads that column from the result line of `algorithm`
/// (`256 bits ecdsa (nistp256) 0.0000s 0.0001s 41234.5 13000.1`, `rsa 2048 bits 0.000650s ...`).
fn parse_openssl_speed(output: &str, algorithm: &str) -> Option<f64> {
    let marker = match algorithm {
        "ecdsap256" => "(nistp256)",
        "ecdsap384" => "(nistp384)",
        "rsa2048" => "rsa 2048 bits",
        "rsa3072" => "rsa 3072 bits",
        _ => return None,
    };
    let mut column = None;
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(i) = words.iter().position(|w| *w == "sign/s") {
            // Header words are right-aligned over the figures: count from the end.
            column = Some(words.len() - i);
        } else if line.contains(marker) {
            let back = column?;
            return words.get(words.len().checked_sub(back)?)?.parse().ok();
        }
    }
    None
}

fn user() -> User {
    User {
        uid: UserId::new("bench"),
        given_name: "Bench".into(),
        family_name: "Mark".into(),
        display_name: "Mark, Bench".into(),
        email: "bench@example.org".into(),
        upn: "bench@example.org".into(),
        employee_id: "B-1".into(),
        department: "Benchmarks".into(),
        title: "Load".into(),
        groups: vec![],
        source: UserSource::Local,
        attributes: Default::default(),
        has_photo: false,
        disabled: false,
        photo_digest: None,
    }
}

/// A PIV Authentication request for `card_key` (a P-256 SubjectPublicKeyInfo).
fn request(now: Timestamp, card_key: &[u8]) -> CertificateRequest {
    CertificateRequest {
        slot: Slot::PivAuthentication,
        public_key_der: card_key.to_vec(),
        profile: piv_profile(Slot::PivAuthentication, KeyAlgorithm::EccP256, "Bench Corp"),
        subject: CertificateSubject {
            user: user(),
            card_uuid: "3F2504E0-4F89-41D3-9A0C-0305E82C3301".into(),
            fasc_n: None,
        },
        not_before: now,
    }
}

fn new_ca(dir: &Path, keys: Arc<dyn KeyProvider>, algorithm: CaKeyAlgorithm) -> Result<Ca, String> {
    Ca::create_with(
        dir,
        keys,
        "Bench Corp",
        algorithm,
        SystemClock.now(),
        Arc::new(OsRandom),
    )
    .map_err(|e| format!("cannot create the {} bench CA: {e}", algorithm.label()))
}

/// Signing and certificate rates of `ca`, with `openssl` beside both.
fn measure(
    rows: &mut Vec<Row>,
    name: &str,
    ca: &Ca,
    card_key: &[u8],
    duration: Duration,
    openssl: Option<f64>,
) {
    let request = request(SystemClock.now(), card_key);
    let sample = ca.issue_certificate(&request).expect("bench certificate");
    let key = ca.issuing_key();
    rows.push(Row {
        what: format!("{name}: raw signatures (CaKey::sign over a TBSCertificate)"),
        per_second: rate(duration, || {
            key.sign(&sample.der).expect("signature");
        }),
        openssl,
    });
    rows.push(Row {
        what: format!("{name}: certificates built and signed (profile + DER + signature)"),
        per_second: rate(duration, || {
            ca.issue_certificate(&request).expect("certificate");
        }),
        openssl,
    });
}

/// Runs every measurement in fresh folders under `dir`, `seconds` each.
pub async fn run(dir: &Path, seconds: u32) -> Result<CaFigures, String> {
    let duration = Duration::from_secs(u64::from(seconds.max(1)));
    let random: Arc<dyn Random> = Arc::new(OsRandom);
    let master: Arc<dyn Sealer> = Arc::new(AesGcmSealer::new(&{
        let mut k = [0u8; 32];
        random.fill(&mut k);
        k
    }));
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    let openssl_p256 = openssl_speed("ecdsap256", seconds);
    let openssl_rsa = openssl_speed("rsa2048", seconds);
    if openssl_p256.is_none() || openssl_rsa.is_none() {
        notes.push("openssl speed did not run or its output was not understood.".into());
    }

    let p256_dir = dir.join("p256");
    let p256 = new_ca(
        &p256_dir,
        Arc::new(SoftwareKeyProvider::new(
            &p256_dir,
            master.clone(),
            random.clone(),
        )),
        CaKeyAlgorithm::EcdsaP256Sha256,
    )?;
    // Any valid P-256 public key stands for the card's; the P-256 CA's own is at hand.
    let card_key = p256.issuing_key().public_key_der().to_vec();
    measure(
        &mut rows,
        "ECDSA P-256",
        &p256,
        &card_key,
        duration,
        openssl_p256,
    );

    let rsa_dir = dir.join("rsa2048");
    let rsa = new_ca(
        &rsa_dir,
        Arc::new(SoftwareKeyProvider::new(
            &rsa_dir,
            master.clone(),
            random.clone(),
        )),
        CaKeyAlgorithm::Rsa2048Sha256,
    )?;
    measure(
        &mut rows,
        "RSA 2048",
        &rsa,
        &card_key,
        duration,
        openssl_rsa,
    );

    rows.push(stored(dir, &p256, &card_key, duration).await?);

    match softhsm(dir) {
        Ok(Some(keys)) => {
            let hsm_dir = dir.join("softhsm-ca");
            let ca = new_ca(&hsm_dir, Arc::new(keys), CaKeyAlgorithm::EcdsaP256Sha256)?;
            let request = request(SystemClock.now(), &card_key);
            rows.push(Row {
                what: "ECDSA P-256 on SoftHSM (PKCS#11): certificates built and signed".into(),
                per_second: rate(duration, || {
                    ca.issue_certificate(&request).expect("certificate");
                }),
                openssl: openssl_p256,
            });
        }
        Ok(None) => notes.push(format!(
            "SoftHSM is not installed ({SOFTHSM_MODULE}): no PKCS#11 figure."
        )),
        Err(e) => notes.push(format!("SoftHSM could not be used: {e}")),
    }
    Ok(CaFigures { rows, notes })
}

/// Certificates issued and stored, one SQLite transaction each, as issuance stores them.
async fn stored(dir: &Path, ca: &Ca, card_key: &[u8], duration: Duration) -> Result<Row, String> {
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let store = tessera_store::SqlStore::open(&url)
        .await
        .map_err(|e| format!("cannot open the bench database: {e}"))?;
    let now = SystemClock.now();
    let device = Device {
        id: DeviceId::new("bench-card"),
        serial: "1".into(),
        atr: String::new(),
        device_type: "PIV".into(),
        state: DeviceState::Active,
        reason: Reason::None,
        user: Some(UserId::new("bench")),
        policy: None,
        layout: None,
        created_at: now,
        updated_at: now,
        activated_at: Some(now),
        expires_at: None,
        firmware: None,
        temporary_for: None,
    };
    let mut changes = Changes::new();
    changes.push(Change::InsertDevice(device.clone()));
    store
        .commit(&changes)
        .await
        .map_err(|e| format!("cannot store the bench card: {e}"))?;
    let request = request(now, card_key);
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < duration {
        let issued = ca
            .issue_certificate(&request)
            .map_err(|e| format!("bench issuance failed: {e}"))?;
        let mut changes = Changes::new();
        changes.push(Change::InsertCertificate(CertificateRecord {
            serial: issued.serial,
            device: device.id.clone(),
            user: UserId::new("bench"),
            slot: Slot::PivAuthentication,
            subject: issued.subject,
            issuer: issued.issuer,
            not_before: issued.not_before,
            not_after: issued.not_after,
            status: CertificateStatus::Valid,
            revocation_reason: None,
            der: issued.der,
            attestation: None,
        }));
        store
            .commit(&changes)
            .await
            .map_err(|e| format!("cannot store a bench certificate: {e}"))?;
        n += 1;
    }
    Ok(Row {
        what: "ECDSA P-256: certificates issued and stored (SQLite, one transaction each)".into(),
        per_second: n as f64 / started.elapsed().as_secs_f64(),
        openssl: None,
    })
}

/// A fresh SoftHSM token in `dir`, when SoftHSM is installed. SoftHSM reads `SOFTHSM2_CONF` at
/// its first initialisation in this process, which is the one below.
fn softhsm(dir: &Path) -> Result<Option<Pkcs11KeyProvider>, String> {
    if !Path::new(SOFTHSM_MODULE).exists() {
        return Ok(None);
    }
    let tokens = dir.join("softhsm-tokens");
    std::fs::create_dir_all(&tokens).map_err(|e| e.to_string())?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let pin = "123456";
    let out = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "tessera-bench"])
        .args(["--so-pin", "12345678", "--pin", pin])
        .output()
        .map_err(|e| format!("softhsm2-util: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Pkcs11KeyProvider::open(
        Pkcs11Settings {
            module: SOFTHSM_MODULE.into(),
            token: "tessera-bench".into(),
            pin_file: None,
            key_labels: Default::default(),
        },
        Pkcs11Pin::new(pin),
    )
    .map(Some)
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openssl_speed_output() {
        let ec = "                              sign    verify    sign/s verify/s\n \
                  256 bits ecdsa (nistp256)   0.0000s   0.0001s  41234.5  13000.1\n";
        assert_eq!(parse_openssl_speed(ec, "ecdsap256"), Some(41234.5));
        let rsa = "                  sign    verify    sign/s verify/s\n\
                   rsa 2048 bits 0.000650s 0.000019s   1538.5  52000.0\n";
        assert_eq!(parse_openssl_speed(rsa, "rsa2048"), Some(1538.5));
        assert_eq!(parse_openssl_speed("garbage", "rsa2048"), None);
    }
}

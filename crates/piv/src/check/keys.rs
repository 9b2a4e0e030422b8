//! That each certificate's key is the one in its slot: the card computes with the slot's private
//! key (GENERAL AUTHENTICATE, SP 800-73-4 part 2, 3.2.4) and the checker verifies the result with
//! the certificate's public key — a signature over a random challenge for 9A, 9C and 9E, and for
//! 9D an RSA decryption of a value encrypted to the certificate or an ECDH agreement with an
//! ephemeral key compared with the one computed here.

use super::crypto::{DigestAlg, PublicKey, ECDSA_SHA256, ECDSA_SHA384, SHA256_WITH_RSA};
use super::report::{ObjectReport, Status};
use crate::client::PivClient;
use rand::RngCore;
use tessera_core::model::Slot;
use tessera_core::ports::PivCard;
use tessera_core::secret::Pin;
use x509_cert::Certificate;

const SECTION: &str = "SP 800-73-4 part 2, 3.2.4";

/// The DigestInfo prefix of SHA-256 (RFC 8017, 9.2 note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// Whether the slot's key needs the PIN (SP 800-73-4 part 1, 3.1: only Card Authentication
/// works without).
pub fn needs_pin(slot: Slot) -> bool {
    slot != Slot::CardAuthentication
}

/// Proves the slot's key against `cert`, filling `report`.
pub async fn prove(
    client: &mut PivClient,
    slot: Slot,
    cert: &Certificate,
    pin: Option<&Pin>,
    report: &mut ObjectReport,
) {
    let key = match PublicKey::from_spki(&cert.tbs_certificate.subject_public_key_info) {
        Ok(key) => key,
        Err(e) => {
            report.error("SP 800-78-4, table 3-1", e);
            report.settle(Status::Ok);
            return;
        }
    };
    let Some(algorithm) = key.key_algorithm() else {
        report.error(
            "SP 800-78-4, table 3-1",
            format!("no PIV algorithm fits a {} key", key.describe()),
        );
        report.settle(Status::Ok);
        return;
    };
    if needs_pin(slot) {
        let Some(pin) = pin else {
            report.info(SECTION, "the key's test needs the PIN");
            report.status = Status::SkippedNeedsPin;
            return;
        };
        // 9C's PIN policy is "always": the PIN is verified right before each use, so do it for
        // every slot.
        if let Err(e) = client.verify_pin(pin).await {
            report.error(SECTION, format!("VERIFY failed: {e}"));
            report.settle(Status::Ok);
            return;
        }
    }
    let result = match (slot, &key) {
        (Slot::KeyManagement, PublicKey::Rsa(rsa_key)) => {
            decrypt(client, slot, algorithm, rsa_key).await
        }
        (Slot::KeyManagement, PublicKey::P256(vk)) => {
            use p256::elliptic_curve::sec1::ToEncodedPoint;
            let ephemeral = p256::ecdh::EphemeralSecret::random(&mut rand::rngs::OsRng);
            let point = ephemeral.public_key().to_encoded_point(false);
            let local = ephemeral.diffie_hellman(&p256::PublicKey::from(vk));
            let local = local.raw_secret_bytes();
            agree(client, slot, algorithm, "P-256", point.as_bytes(), local).await
        }
        (Slot::KeyManagement, PublicKey::P384(vk)) => {
            use p384::elliptic_curve::sec1::ToEncodedPoint;
            let ephemeral = p384::ecdh::EphemeralSecret::random(&mut rand::rngs::OsRng);
            let point = ephemeral.public_key().to_encoded_point(false);
            let local = ephemeral.diffie_hellman(&p384::PublicKey::from(vk));
            let local = local.raw_secret_bytes();
            agree(client, slot, algorithm, "P-384", point.as_bytes(), local).await
        }
        _ => sign(client, slot, algorithm, &key).await,
    };
    match result {
        Ok(what) => report.info(SECTION, what),
        Err(e) => report.error(SECTION, e),
    }
    report.settle(Status::Ok);
}

fn challenge() -> [u8; 32] {
    let mut c = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut c);
    c
}

async fn sign(
    client: &mut PivClient,
    slot: Slot,
    algorithm: tessera_core::model::KeyAlgorithm,
    key: &PublicKey,
) -> Result<String, String> {
    let (digest_alg, sig_alg) = match key {
        PublicKey::P256(_) => (DigestAlg::Sha256, ECDSA_SHA256),
        PublicKey::P384(_) => (DigestAlg::Sha384, ECDSA_SHA384),
        PublicKey::Rsa(_) => (DigestAlg::Sha256, SHA256_WITH_RSA),
    };
    let digest = digest_alg.digest(&challenge());
    let input = match key {
        PublicKey::Rsa(rsa_key) => {
            use rsa::traits::PublicKeyParts;
            // EMSA-PKCS1-v1_5: 00 01 FF..FF 00 DigestInfo.
            let k = rsa_key.size();
            let t_len = SHA256_DIGEST_INFO.len() + digest.len();
            let mut block = vec![0xFF; k];
            block[0] = 0x00;
            block[1] = 0x01;
            block[k - t_len - 1] = 0x00;
            block[k - t_len..k - digest.len()].copy_from_slice(&SHA256_DIGEST_INFO);
            block[k - digest.len()..].copy_from_slice(&digest);
            block
        }
        _ => digest.clone(),
    };
    let signature = client
        .sign(slot, algorithm, &input)
        .await
        .map_err(|e| format!("the card did not sign: {e}"))?;
    key.verify_digest(&sig_alg, digest_alg, &digest, &signature)
        .map_err(|e| format!("the card's signature over a random challenge does not verify with the certificate's key: {e}"))?;
    Ok(format!(
        "the card signed a random challenge with the slot's {} key and the certificate's key verifies it",
        key.describe()
    ))
}

async fn decrypt(
    client: &mut PivClient,
    slot: Slot,
    algorithm: tessera_core::model::KeyAlgorithm,
    key: &rsa::RsaPublicKey,
) -> Result<String, String> {
    let secret = challenge();
    let encrypted = key
        .encrypt(&mut rand::rngs::OsRng, rsa::Pkcs1v15Encrypt, &secret)
        .map_err(|e| e.to_string())?;
    // The card answers the raw RSA result: the padded block 00 02 PS 00 secret.
    let block = client
        .sign(slot, algorithm, &encrypted)
        .await
        .map_err(|e| format!("the card did not decrypt: {e}"))?;
    let ok = block.len() > secret.len() + 10
        && block[..2] == [0x00, 0x02]
        && block[block.len() - secret.len() - 1] == 0
        && block[block.len() - secret.len()..] == secret;
    if ok {
        Ok("the card decrypted a value encrypted to the certificate's RSA key".into())
    } else {
        Err("the card's decryption of a value encrypted to the certificate's key is wrong: the slot holds another key".into())
    }
}

/// ECDH on the card with an ephemeral key (`point`, uncompressed) and the comparison with
/// `local`, the secret the ephemeral key agrees with the certificate's key.
async fn agree(
    client: &mut PivClient,
    slot: Slot,
    algorithm: tessera_core::model::KeyAlgorithm,
    curve: &str,
    point: &[u8],
    local: &[u8],
) -> Result<String, String> {
    let card = client
        .ecdh(slot, algorithm, point)
        .await
        .map_err(|e| format!("the card did not agree a key: {e}"))?;
    if local == card.as_slice() {
        Ok(format!("ECDH with an ephemeral {curve} key: the card's shared secret is the one computed with the certificate's key"))
    } else {
        Err("ECDH with an ephemeral key: the card's shared secret differs from the one computed with the certificate's key".into())
    }
}

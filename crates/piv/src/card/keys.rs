//! Asymmetric keys held in the emulated card's slots: generation, the public-key template of
//! GENERATE ASYMMETRIC KEY PAIR (tag 7F49), signing and ECDH as GENERAL AUTHENTICATE performs them.

use crate::apdu::sw;
use crate::tlv;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::CryptoRngCore;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// PIV algorithm identifiers of slot keys (SP 800-78-5 table 6-2; 05 is also what YubiKey
/// firmware 5.7 uses for RSA 3072, 16 its RSA 4096, E0 and E1 its Ed25519 and X25519).
pub const ALG_RSA3072: u8 = 0x05;
pub const ALG_RSA2048: u8 = 0x07;
pub const ALG_ECC_P256: u8 = 0x11;
pub const ALG_ECC_P384: u8 = 0x14;
pub const ALG_RSA4096: u8 = 0x16;
/// Offered by firmware 5.7 but not implemented by the emulator: GENERATE answers 6A80.
pub const ALG_ED25519: u8 = 0xE0;
pub const ALG_X25519: u8 = 0xE1;

/// Yubico PIN policies (tag AA of GENERATE, and GET METADATA).
pub const PIN_POLICY_DEFAULT: u8 = 0x00;
pub const PIN_POLICY_NEVER: u8 = 0x01;
pub const PIN_POLICY_ONCE: u8 = 0x02;
pub const PIN_POLICY_ALWAYS: u8 = 0x03;

/// Key origin as GET METADATA reports it.
pub const ORIGIN_GENERATED: u8 = 0x01;
/// A key put on the card by Yubico's IMPORT; the emulator has no IMPORT, but a state file may say so.
pub const ORIGIN_IMPORTED: u8 = 0x02;

/// The modulus size in bits of an RSA algorithm identifier, `None` for the others.
fn rsa_bits(algorithm: u8) -> Option<usize> {
    match algorithm {
        ALG_RSA2048 => Some(2048),
        ALG_RSA3072 => Some(3072),
        ALG_RSA4096 => Some(4096),
        _ => None,
    }
}

/// A private key in a slot. The state file is the emulated card's secure element, so the key is
/// stored there in clear (hex); it is wiped from memory when dropped.
#[derive(Clone, Serialize, Deserialize)]
pub struct SlotKey {
    pub algorithm: u8,
    /// EC: the scalar; RSA: the PKCS#1 DER private key.
    private: String,
    pub pin_policy: u8,
    pub touch_policy: u8,
    pub origin: u8,
}

impl Drop for SlotKey {
    fn drop(&mut self) {
        self.private.zeroize();
    }
}

impl std::fmt::Debug for SlotKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotKey(alg {:02X}, private redacted)", self.algorithm)
    }
}

enum Private {
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    Rsa(Box<RsaPrivateKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
    X25519(Box<x25519_dalek::StaticSecret>),
}

/// The DER SubjectPublicKeyInfo of a 32-byte Ed25519 (OID 1.3.101.112) or X25519 (1.3.101.110)
/// key (RFC 8410): the algorithm has no parameters, the key is the bit string.
fn curve25519_spki(oid_last: u8, key: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![
        0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, oid_last, 0x03, 0x21, 0x00,
    ];
    out.extend_from_slice(key);
    out
}

impl SlotKey {
    /// Generates a key of `algorithm`; `Err(status word)` if the algorithm is not supported.
    pub fn generate(
        algorithm: u8,
        pin_policy: u8,
        touch_policy: u8,
        mut rng: &mut dyn CryptoRngCore,
    ) -> Result<Self, u16> {
        let private = match algorithm {
            ALG_ECC_P256 => hex::encode(p256::SecretKey::random(&mut rng).to_bytes()),
            ALG_ECC_P384 => hex::encode(p384::SecretKey::random(&mut rng).to_bytes()),
            ALG_RSA2048 | ALG_RSA3072 | ALG_RSA4096 => {
                let bits = rsa_bits(algorithm).ok_or(sw::INCORRECT_DATA)?;
                let key = RsaPrivateKey::new(rng, bits).map_err(|_| sw::MEMORY_FAILURE)?;
                let der = key.to_pkcs1_der().map_err(|_| sw::MEMORY_FAILURE)?;
                hex::encode(der.as_bytes())
            }
            // Both keep their 32-byte secret.
            ALG_ED25519 | ALG_X25519 => {
                let mut seed = zeroize::Zeroizing::new([0u8; 32]);
                rng.fill_bytes(&mut *seed);
                hex::encode(*seed)
            }
            _ => return Err(sw::INCORRECT_DATA),
        };
        Ok(Self {
            algorithm,
            private,
            pin_policy,
            touch_policy,
            origin: ORIGIN_GENERATED,
        })
    }

    fn private(&self) -> Result<Private, u16> {
        // A state file edited by hand can hold anything; treat it as a memory failure.
        let bytes =
            zeroize::Zeroizing::new(hex::decode(&self.private).map_err(|_| sw::MEMORY_FAILURE)?);
        let key = match self.algorithm {
            ALG_ECC_P256 => {
                Private::P256(p256::SecretKey::from_slice(&bytes).map_err(|_| sw::MEMORY_FAILURE)?)
            }
            ALG_ECC_P384 => {
                Private::P384(p384::SecretKey::from_slice(&bytes).map_err(|_| sw::MEMORY_FAILURE)?)
            }
            ALG_RSA2048 | ALG_RSA3072 | ALG_RSA4096 => {
                let key = RsaPrivateKey::from_pkcs1_der(&bytes).map_err(|_| sw::MEMORY_FAILURE)?;
                // A modulus of another size than the algorithm says would make signatures of the
                // wrong length; a hand-edited state file is the only way to get one.
                if Some(key.n().bits()) != rsa_bits(self.algorithm) {
                    return Err(sw::MEMORY_FAILURE);
                }
                Private::Rsa(Box::new(key))
            }
            ALG_ED25519 | ALG_X25519 => {
                let seed: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| sw::MEMORY_FAILURE)?;
                if self.algorithm == ALG_ED25519 {
                    Private::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
                } else {
                    Private::X25519(Box::new(x25519_dalek::StaticSecret::from(seed)))
                }
            }
            _ => return Err(sw::MEMORY_FAILURE),
        };
        Ok(key)
    }

    /// The contents of the 7F49 template: modulus 81 and exponent 82, or the EC point (or the
    /// Curve25519 key) 86.
    pub fn public_template(&self) -> Result<Vec<u8>, u16> {
        let mut out = Vec::new();
        match self.private()? {
            Private::P256(k) => tlv::push(
                &mut out,
                0x86,
                k.public_key().to_encoded_point(false).as_bytes(),
            ),
            Private::P384(k) => tlv::push(
                &mut out,
                0x86,
                k.public_key().to_encoded_point(false).as_bytes(),
            ),
            Private::Rsa(k) => {
                tlv::push(&mut out, 0x81, &k.n().to_bytes_be());
                tlv::push(&mut out, 0x82, &k.e().to_bytes_be());
            }
            // YubiKey 5.7 answers the 32-byte public key in tag 86, as for EC points.
            Private::Ed25519(k) => tlv::push(&mut out, 0x86, k.verifying_key().as_bytes()),
            Private::X25519(k) => tlv::push(
                &mut out,
                0x86,
                x25519_dalek::PublicKey::from(&*k).as_bytes(),
            ),
        }
        Ok(out)
    }

    /// The DER SubjectPublicKeyInfo of the key, built exactly as a host builds it from GENERATE's
    /// answer ([`crate::public_key::spki_from_template`]): id-ecPublicKey with the named curve and
    /// the uncompressed point, or rsaEncryption with NULL parameters.
    pub fn public_key_info(&self) -> Result<Vec<u8>, u16> {
        use spki::EncodePublicKey;
        let document = match self.private()? {
            Private::P256(k) => k.public_key().to_public_key_der(),
            Private::P384(k) => k.public_key().to_public_key_der(),
            Private::Rsa(k) => k.to_public_key().to_public_key_der(),
            Private::Ed25519(k) => return Ok(curve25519_spki(0x70, k.verifying_key().as_bytes())),
            Private::X25519(k) => {
                return Ok(curve25519_spki(
                    0x6E,
                    x25519_dalek::PublicKey::from(&*k).as_bytes(),
                ))
            }
        };
        document
            .map(|d| d.as_bytes().to_vec())
            .map_err(|_| sw::MEMORY_FAILURE)
    }

    /// GENERAL AUTHENTICATE's signature: ECDSA over a hash the host computed (DER
    /// `ECDSA-Sig-Value`), or the raw RSA private-key operation on a padded block.
    pub fn sign(&self, input: &[u8], rng: &mut dyn CryptoRngCore) -> Result<Vec<u8>, u16> {
        use ecdsa::signature::hazmat::PrehashSigner;
        if input.is_empty() {
            return Err(sw::INCORRECT_DATA);
        }
        match self.private()? {
            Private::P256(k) => {
                let hash = fit_hash(input, 32);
                let sig: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(k)
                    .sign_prehash(&hash)
                    .map_err(|_| sw::INCORRECT_DATA)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            Private::P384(k) => {
                let hash = fit_hash(input, 48);
                let sig: p384::ecdsa::Signature = p384::ecdsa::SigningKey::from(k)
                    .sign_prehash(&hash)
                    .map_err(|_| sw::INCORRECT_DATA)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            Private::Rsa(k) => {
                // The host sends a block exactly as long as the modulus (256 or 384 bytes).
                let size = k.size();
                if input.len() != size {
                    return Err(sw::INCORRECT_DATA);
                }
                let c = BigUint::from_bytes_be(input);
                if &c >= k.n() {
                    return Err(sw::INCORRECT_DATA);
                }
                let m = rsa::hazmat::rsa_decrypt_and_check(&*k, Some(rng), &c)
                    .map_err(|_| sw::INCORRECT_DATA)?;
                let bytes = m.to_bytes_be();
                let mut out = vec![0u8; size - bytes.len()];
                out.extend_from_slice(&bytes);
                Ok(out)
            }
            // Ed25519 signs the message itself (the card hashes it with SHA-512, RFC 8032).
            Private::Ed25519(k) => {
                use ed25519_dalek::Signer;
                Ok(k.sign(input).to_bytes().to_vec())
            }
            Private::X25519(_) => Err(sw::INCORRECT_P1_P2),
        }
    }

    /// ECDH with the slot key: the x coordinate of the shared point.
    pub fn ecdh(&self, peer_point: &[u8]) -> Result<Vec<u8>, u16> {
        match self.private()? {
            Private::P256(k) => {
                let peer =
                    p256::PublicKey::from_sec1_bytes(peer_point).map_err(|_| sw::INCORRECT_DATA)?;
                let shared = p256::ecdh::diffie_hellman(k.to_nonzero_scalar(), peer.as_affine());
                Ok(shared.raw_secret_bytes().to_vec())
            }
            Private::P384(k) => {
                let peer =
                    p384::PublicKey::from_sec1_bytes(peer_point).map_err(|_| sw::INCORRECT_DATA)?;
                let shared = p384::ecdh::diffie_hellman(k.to_nonzero_scalar(), peer.as_affine());
                Ok(shared.raw_secret_bytes().to_vec())
            }
            Private::X25519(k) => {
                let peer: [u8; 32] = peer_point.try_into().map_err(|_| sw::INCORRECT_DATA)?;
                let shared = k.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
                // An all-zero secret means a low-order peer point (RFC 7748 6.1): refuse it.
                if !shared.was_contributory() {
                    return Err(sw::INCORRECT_DATA);
                }
                Ok(shared.as_bytes().to_vec())
            }
            Private::Rsa(_) | Private::Ed25519(_) => Err(sw::INCORRECT_P1_P2),
        }
    }
}

/// ECDSA uses the leftmost bits of a longer hash; a shorter one is taken as a smaller integer.
fn fit_hash(input: &[u8], field_bytes: usize) -> Vec<u8> {
    if input.len() >= field_bytes {
        input[..field_bytes].to_vec()
    } else {
        let mut out = vec![0u8; field_bytes - input.len()];
        out.extend_from_slice(input);
        out
    }
}

/// The PIN policy a slot has when the key was generated without one (SP 800-73-4 part 1 table 4b).
pub fn default_pin_policy(slot: u8) -> u8 {
    match slot {
        0x9C => PIN_POLICY_ALWAYS,
        0x9E => PIN_POLICY_NEVER,
        _ => PIN_POLICY_ONCE,
    }
}

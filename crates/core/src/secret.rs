//! Secrets are types: zeroized on drop, redacted in `Debug`, never `Display`ed or serialised.
//! The only way to see the bytes is an explicit `expose()` call, which is easy to grep for.

use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident, $inner:ty) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
        pub struct $name($inner);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(redacted)"))
            }
        }
    };
}

secret_type!(
    /// A card holder's PIN (6 to 8 digits for PIV).
    Pin,
    String
);
secret_type!(
    /// A PIN unblocking key (8 digits for PIV).
    Puk,
    String
);
secret_type!(
    /// An operator's password, as typed.
    Password,
    String
);
secret_type!(
    /// A station's one-time enrolment token or its long-lived credential, as the station holds it.
    StationSecret,
    String
);
secret_type!(
    /// A PIV card management key (3DES 24 bytes, or AES 16/24/32 bytes).
    ManagementKey,
    Vec<u8>
);

impl StationSecret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// SHA-256 in lower-case hex: what the store keeps instead of the secret.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.0.trim().as_bytes()))
    }
}

impl Pin {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The PIN every blank PIV card (and YubiKey) ships with.
    pub fn factory_default() -> Self {
        Self::new("123456")
    }
}

impl Puk {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The PUK every blank PIV card (and YubiKey) ships with.
    pub fn factory_default() -> Self {
        Self::new("12345678")
    }
}

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Algorithm of a management key, as PIV (SP 800-78) numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagementKeyAlgorithm {
    TripleDes,
    Aes128,
    Aes192,
    Aes256,
}

impl ManagementKeyAlgorithm {
    /// The algorithms a blank card's factory key may have, most common first: 3DES (PIV cards,
    /// YubiKey 4 and 5 before 5.7), then AES-192 (YubiKey 5.7 and later).
    pub const FACTORY: [Self; 2] = [Self::TripleDes, Self::Aes192];

    /// The algorithm of a PIV algorithm identifier, if it names a management-key cipher.
    pub fn from_piv_id(id: u8) -> Option<Self> {
        match id {
            0x03 => Some(Self::TripleDes),
            0x08 => Some(Self::Aes128),
            0x0A => Some(Self::Aes192),
            0x0C => Some(Self::Aes256),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::TripleDes => "3des",
            Self::Aes128 => "aes128",
            Self::Aes192 => "aes192",
            Self::Aes256 => "aes256",
        }
    }
    /// The algorithm identifier used in GENERAL AUTHENTICATE and SET MANAGEMENT KEY.
    pub fn piv_id(self) -> u8 {
        match self {
            Self::TripleDes => 0x03,
            Self::Aes128 => 0x08,
            Self::Aes192 => 0x0A,
            Self::Aes256 => 0x0C,
        }
    }
    pub fn key_len(self) -> usize {
        match self {
            Self::TripleDes => 24,
            Self::Aes128 => 16,
            Self::Aes192 => 24,
            Self::Aes256 => 32,
        }
    }
}

impl ManagementKey {
    pub fn new(algorithm: ManagementKeyAlgorithm, bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() != algorithm.key_len() {
            return Err(format!(
                "a {algorithm:?} management key has {} bytes, not {}",
                algorithm.key_len(),
                bytes.len()
            ));
        }
        let mut v = Vec::with_capacity(1 + bytes.len());
        v.push(algorithm.piv_id());
        v.extend_from_slice(&bytes);
        Ok(Self(v))
    }
    pub fn algorithm(&self) -> ManagementKeyAlgorithm {
        ManagementKeyAlgorithm::from_piv_id(self.0[0]).unwrap_or(ManagementKeyAlgorithm::TripleDes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0[1..]
    }
    /// The key `010203040506070801020304050607080102030405060708` of blank cards, as 3DES (PIV
    /// cards and YubiKeys before firmware 5.7).
    pub fn factory_default() -> Self {
        Self::factory_default_for(ManagementKeyAlgorithm::TripleDes)
    }
    /// The factory key bytes under `algorithm`: YubiKeys from firmware 5.7 ship the same 24 bytes
    /// as an AES-192 key.
    pub fn factory_default_for(algorithm: ManagementKeyAlgorithm) -> Self {
        let bytes: Vec<u8> = (0..3).flat_map(|_| 1u8..=8).collect();
        let len = algorithm.key_len();
        Self::new(algorithm, bytes.into_iter().cycle().take(len).collect())
            .expect("the length fits the algorithm")
    }
    /// Serialises algorithm and key for sealing (encryption at rest); never store the result in clear.
    pub fn to_sealable(&self) -> Vec<u8> {
        self.0.clone()
    }
    pub fn from_sealable(bytes: Vec<u8>) -> Result<Self, String> {
        let (alg, key) = bytes.split_first().ok_or("empty management key")?;
        let alg = ManagementKeyAlgorithm::from_piv_id(*alg)
            .ok_or_else(|| format!("unknown management key algorithm {alg:#04x}"))?;
        Self::new(alg, key.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let pin = Pin::new("314159");
        assert_eq!(format!("{pin:?}"), "Pin(redacted)");
        let key = ManagementKey::factory_default();
        assert!(!format!("{key:?}").contains("01"));
    }

    #[test]
    fn management_key_round_trips_through_sealable_form() {
        let key = ManagementKey::new(ManagementKeyAlgorithm::Aes256, vec![7; 32]).unwrap();
        let back = ManagementKey::from_sealable(key.to_sealable()).unwrap();
        assert_eq!(back.algorithm(), ManagementKeyAlgorithm::Aes256);
        assert_eq!(back.expose(), &[7; 32]);
        assert!(ManagementKey::new(ManagementKeyAlgorithm::Aes128, vec![0; 5]).is_err());
    }

    #[test]
    fn both_factory_keys_are_the_same_bytes() {
        let des = ManagementKey::factory_default();
        let aes = ManagementKey::factory_default_for(ManagementKeyAlgorithm::Aes192);
        assert_eq!(des.expose(), aes.expose());
        assert_eq!(aes.algorithm(), ManagementKeyAlgorithm::Aes192);
        assert_eq!(&aes.expose()[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
    }
}

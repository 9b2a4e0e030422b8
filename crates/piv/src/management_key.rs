//! The block cipher of a card management key (SP 800-78-4: 3DES, AES-128/192/256), used one block
//! at a time by the GENERAL AUTHENTICATE challenge-response on both sides of the wire.

use cipher::{BlockDecrypt, BlockEncrypt, KeyInit};

/// PIV algorithm identifiers of management keys.
pub const ALG_3DES: u8 = 0x03;
pub const ALG_AES128: u8 = 0x08;
pub const ALG_AES192: u8 = 0x0A;
pub const ALG_AES256: u8 = 0x0C;

/// Key length of an algorithm identifier, if it names a management-key algorithm.
pub fn key_len(alg: u8) -> Option<usize> {
    match alg {
        ALG_3DES | ALG_AES192 => Some(24),
        ALG_AES128 => Some(16),
        ALG_AES256 => Some(32),
        _ => None,
    }
}

/// Cipher block length (the size of witnesses and challenges).
pub fn block_len(alg: u8) -> Option<usize> {
    match alg {
        ALG_3DES => Some(8),
        ALG_AES128 | ALG_AES192 | ALG_AES256 => Some(16),
        _ => None,
    }
}

fn run<C: KeyInit + BlockEncrypt + BlockDecrypt>(
    key: &[u8],
    block: &[u8],
    encrypt: bool,
) -> Option<Vec<u8>> {
    let cipher = C::new_from_slice(key).ok()?;
    if block.len() != C::block_size() {
        return None;
    }
    let mut b = cipher::generic_array::GenericArray::clone_from_slice(block);
    if encrypt {
        cipher.encrypt_block(&mut b);
    } else {
        cipher.decrypt_block(&mut b);
    }
    Some(b.to_vec())
}

fn crypt(alg: u8, key: &[u8], block: &[u8], encrypt: bool) -> Option<Vec<u8>> {
    if key_len(alg)? != key.len() {
        return None;
    }
    match alg {
        ALG_3DES => run::<des::TdesEde3>(key, block, encrypt),
        ALG_AES128 => run::<aes::Aes128>(key, block, encrypt),
        ALG_AES192 => run::<aes::Aes192>(key, block, encrypt),
        ALG_AES256 => run::<aes::Aes256>(key, block, encrypt),
        _ => None,
    }
}

/// Encrypts one block; `None` if the algorithm, key length or block length do not fit.
pub fn encrypt_block(alg: u8, key: &[u8], block: &[u8]) -> Option<Vec<u8>> {
    crypt(alg, key, block, true)
}

/// Decrypts one block; `None` if the algorithm, key length or block length do not fit.
pub fn decrypt_block(alg: u8, key: &[u8], block: &[u8]) -> Option<Vec<u8>> {
    crypt(alg, key, block, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_for_every_algorithm() {
        for alg in [ALG_3DES, ALG_AES128, ALG_AES192, ALG_AES256] {
            let key = vec![0x42; key_len(alg).unwrap()];
            let block = vec![7; block_len(alg).unwrap()];
            let enc = encrypt_block(alg, &key, &block).unwrap();
            assert_ne!(enc, block);
            assert_eq!(decrypt_block(alg, &key, &enc).unwrap(), block);
        }
        assert!(encrypt_block(ALG_AES128, &[0; 15], &[0; 16]).is_none());
        assert!(encrypt_block(ALG_3DES, &[0; 24], &[0; 16]).is_none());
        assert!(encrypt_block(0x07, &[0; 24], &[0; 8]).is_none());
    }

    #[test]
    fn triple_des_known_answer() {
        // With K1 = K2 = K3, 3DES-EDE equals single DES: the classic DES test vector
        // (key 133457799BBCDFF1, plaintext 0123456789ABCDEF).
        let k = hex::decode("133457799BBCDFF1").unwrap();
        let key = [k.clone(), k.clone(), k].concat();
        let pt = hex::decode("0123456789ABCDEF").unwrap();
        let ct = encrypt_block(ALG_3DES, &key, &pt).unwrap();
        assert_eq!(hex::encode_upper(ct), "85E813540F0AB405");
    }
}

//! Key attestation: `AttestationRoots::yubico().verify` on an attestation certificate and a card
//! attestation ("F9") certificate that a hostile station could send.
//!
//! Input: byte 0 picks the slot (its low two bits), bytes 1-2 are the attestation certificate's
//! length (big-endian), then the attestation certificate, then the F9 certificate. With byte 0's
//! top bit set the "reported" public key is the one the attestation states (so the extension
//! checks after the key comparison run), else a suffix of the attestation bytes (bits 2-6 pick
//! where it starts). The seeds are real YubiKey chains, so the slot, key and extension checks after
//! the chain are reached too. Besides "never panics": anything accepted names a shipped root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::model::{Slot, Timestamp};
use tessera_core::ports::AttestationVerifier;
use tessera_pki::attestation::{attested_key, AttestationRoots};

fuzz_target!(|data: &[u8]| {
    let [selector, high, low, rest @ ..] = data else {
        return;
    };
    let slot = Slot::ALL[usize::from(selector & 3)];
    let split = usize::from(u16::from_be_bytes([*high, *low])).min(rest.len());
    let (attestation, intermediate) = rest.split_at(split);
    // 2024-01-01, inside the validity of every real Yubico attestation chain.
    let now = Timestamp(1_704_067_200);
    let roots = AttestationRoots::yubico();
    let key = if selector & 0x80 != 0 {
        attested_key(attestation).unwrap_or_default()
    } else {
        attestation[attestation.len().min(usize::from((selector >> 2) & 0x1F))..].to_vec()
    };
    let result = roots.verify(slot, attestation, intermediate, &key, now);
    if let Ok(facts) = result {
        assert!(roots.roots().contains(&facts.root));
    }
});

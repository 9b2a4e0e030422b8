//! Yubico GET METADATA answers, as a card or a hostile station may send them.
//!
//! Besides "never panics": a parsed answer states at most as many tries left as in total, and
//! an answer that parses still parses with unknown fields appended (later firmware adds some).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_piv::metadata;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = metadata::parse(data) {
        if let Some((total, left)) = parsed.retries {
            assert!(left <= total);
        }
        let mut extended = data.to_vec();
        extended.extend_from_slice(&[0x7A, 0x01, 0x00]);
        assert_eq!(metadata::parse(&extended), Ok(parsed));
    }
});

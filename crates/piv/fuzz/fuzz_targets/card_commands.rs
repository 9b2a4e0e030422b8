//! The virtual card's command handler: a card with a deterministic generator is fed a sequence of
//! messages framed as vpcd frames them (a 2-byte big-endian length, then the payload; a length
//! running past the end takes what is left). A one-byte payload 00, 01 or 02 is a power cycle or
//! reset (`VirtualCard::reset`), 04 asks for the ATR, anything else is a command APDU.
//!
//! The first byte of the input chooses where the sequence starts, so the fuzzer reaches the
//! handlers behind the PIV application's access rules without having to break 3DES or AES:
//! - bit 0: SELECT the PIV application first;
//! - bit 1: authenticate with the (default) management key, which the harness knows (3DES on
//!   firmware 5.4.3, AES-192 on 5.7.2);
//! - bit 2: VERIFY the (default) PIN;
//! - bit 3: start from a card that already holds keys of every algorithm in its four slots, and
//!   objects, instead of a blank one (firmware 5.7.2; ATTEST of every slot succeeds on it);
//! - bit 4: a blank card emulates firmware 5.4.3 instead of 5.7.2 (the other generation: 3DES
//!   factory key, no RSA 3072/4096).
//!
//! Every answer must be a response APDU (at least a status word). RSA key generation takes
//! seconds, which would stall the fuzzer: GENERATE commands have their algorithm bytes 07, 05 and
//! 16 (RSA 2048, 3072, 4096) replaced by 11 (P-256); the preloaded card has an RSA key for the
//! other RSA paths.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::PathBuf;
use std::sync::OnceLock;
use tessera_piv::apdu::{CommandApdu, ResponseApdu};
use tessera_piv::{management_key, tlv, VirtualCard};

const SERIAL: u32 = 12345678;
const DEFAULT_MANAGEMENT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

fn send(card: &mut VirtualCard, apdu: CommandApdu) -> ResponseApdu {
    let answer = card.process(&apdu.to_bytes().unwrap());
    ResponseApdu::parse(&answer).expect("the card answers with a status word")
}

fn select(card: &mut VirtualCard) {
    let aid = tessera_piv::card::objects::PIV_AID.to_vec();
    let r = send(
        card,
        CommandApdu::new(0, 0xA4, 0x04, 0x00)
            .with_data(aid)
            .with_ne(256),
    );
    assert!(r.is_success());
}

/// Mutual authentication with the factory management key of the card's generation, as the client
/// performs it.
fn authenticate(card: &mut VirtualCard) {
    let alg = tessera_piv::card::firmware::factory_management_algorithm(card.firmware());
    let block = management_key::block_len(alg).unwrap();
    let step = |inner: Vec<u8>| {
        CommandApdu::new(0, 0x87, alg, 0x9B)
            .with_data(tlv::encode(0x7C, &inner))
            .with_ne(256)
    };
    let first = send(card, step(tlv::encode(0x80, &[])));
    assert!(first.is_success());
    let outer = tlv::parse_one(&first.data).unwrap().0;
    let encrypted = tlv::find(outer.value, 0x80).unwrap();
    let witness = management_key::decrypt_block(alg, &DEFAULT_MANAGEMENT_KEY, encrypted).unwrap();
    let mut inner = tlv::encode(0x80, &witness);
    tlv::push(&mut inner, 0x81, &vec![0x5A; block]);
    assert!(send(card, step(inner)).is_success());
}

fn verify_pin(card: &mut VirtualCard) {
    let pin = b"123456\xFF\xFF".to_vec();
    assert!(send(card, CommandApdu::new(0, 0x20, 0x00, 0x80).with_data(pin)).is_success());
}

/// A card state file with keys in every slot (RSA in 9D) and a few objects, made once.
fn loaded_card_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let mut card = VirtualCard::blank(SERIAL, StdRng::seed_from_u64(1));
        select(&mut card);
        authenticate(&mut card);
        for (slot, alg, pin_policy) in [
            (0x9A, 0x11, 0x00),
            (0x9C, 0x14, 0x00),
            (0x9D, 0x07, 0x02),
            (0x9E, 0x11, 0x01),
        ] {
            let mut template = tlv::encode(0x80, &[alg]);
            tlv::push(&mut template, 0xAA, &[pin_policy]);
            let apdu = CommandApdu::new(0, 0x47, 0, slot)
                .with_data(tlv::encode(0xAC, &template))
                .with_ne(65536);
            let r = send(&mut card, apdu);
            assert!(r.is_success(), "GENERATE {slot:02X}: {r:?}");
        }
        for (tag, value) in [
            (
                &[0x5F, 0xC1, 0x02][..],
                {
                    // An unsigned CHUID: the card stores what it is given.
                    let mut chuid = tlv::encode(0x30, &[0xD4; 25]);
                    tlv::push(&mut chuid, 0x34, &[7; 16]);
                    tlv::push(&mut chuid, 0x35, b"20301231");
                    tlv::push(&mut chuid, 0x3E, &[]);
                    tlv::push(&mut chuid, 0xFE, &[]);
                    chuid
                },
            ),
            (
                &[0x5F, 0xC1, 0x05][..],
                tessera_piv::data_objects::certificate_object(&[0x30, 0]),
            ),
            (&[0x5F, 0xC1, 0x09][..], tlv::encode(0x01, b"Jane Doe")),
        ] {
            let mut data = tlv::encode(0x5C, tag);
            tlv::push(&mut data, 0x53, &value);
            let apdu = CommandApdu::new(0, 0xDB, 0x3F, 0xFF).with_data(data);
            let r = send(&mut card, apdu);
            assert!(r.is_success(), "PUT DATA {tag:02X?}: {r:?}");
        }
        let path =
            std::env::temp_dir().join(format!("tessera-piv-fuzz-card-{}.json", std::process::id()));
        card.save(&path)
            .expect("the fuzz card state can be written");
        path
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut card = if flags & 0x08 != 0 {
        VirtualCard::load_with_rng(loaded_card_file(), StdRng::seed_from_u64(2))
            .expect("the fuzz card state loads")
    } else if flags & 0x10 != 0 {
        let firmware = tessera_piv::card::firmware::FIRMWARE_5_4_3;
        VirtualCard::blank_with_firmware(SERIAL, firmware, StdRng::seed_from_u64(0))
    } else {
        VirtualCard::blank(SERIAL, StdRng::seed_from_u64(0))
    };
    if flags & 0x01 != 0 {
        select(&mut card);
    }
    if flags & 0x02 != 0 {
        authenticate(&mut card);
    }
    if flags & 0x04 != 0 {
        verify_pin(&mut card);
    }

    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let take = len.min(rest.len() - 2);
        let mut message = rest[2..2 + take].to_vec();
        rest = &rest[2 + take..];
        match message.as_slice() {
            [0x00] | [0x01] | [0x02] => card.reset(),
            [0x04] => assert!(!card.atr().is_empty()),
            [] | [_] => {}
            _ => {
                if message.len() > 4 && message[1] == 0x47 {
                    for b in &mut message[4..] {
                        if matches!(*b, 0x07 | 0x05 | 0x16) {
                            *b = 0x11;
                        }
                    }
                }
                let answer = card.process(&message);
                assert!(answer.len() >= 2, "every answer ends with a status word");
            }
        }
    }
    let _ = card.take_dirty();
    let _ = card.pin_tries_left();
});

//! The emulator spoken to in raw APDUs, status word by status word.

use super::*;
use crate::management_key::{self as mk, ALG_3DES, ALG_AES256};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Most tests speak to the older generation, whose factory management key is 3DES.
pub(super) fn card() -> VirtualCard {
    VirtualCard::blank_with_firmware(12345678, firmware::FIRMWARE_5_4_3, StdRng::seed_from_u64(7))
}

pub(super) fn send(card: &mut VirtualCard, apdu: &[u8]) -> (Vec<u8>, u16) {
    let r = ResponseApdu::parse(&card.process(apdu)).unwrap();
    (r.data, r.sw)
}

pub(super) fn cmd(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    CommandApdu::new(0, ins, p1, p2)
        .with_data(data.to_vec())
        .with_ne(256)
        .to_bytes()
        .unwrap()
}

pub(super) fn pin(p: &[u8]) -> Vec<u8> {
    pad(p)
}

pub(super) fn mutual_auth(card: &mut VirtualCard, alg: u8, key: &[u8]) -> u16 {
    let (data, sw) = send(
        card,
        &cmd(0x87, alg, 0x9B, &tlv::encode(0x7C, &tlv::encode(0x80, &[]))),
    );
    if sw != sw::SUCCESS {
        return sw;
    }
    let outer = tlv::parse_one(&data).unwrap().0;
    let enc = tlv::find(outer.value, 0x80).unwrap();
    let witness = mk::decrypt_block(alg, key, enc).unwrap();
    let challenge = vec![0x5A; witness.len()];
    let mut inner = tlv::encode(0x80, &witness);
    tlv::push(&mut inner, 0x81, &challenge);
    let (data, sw) = send(card, &cmd(0x87, alg, 0x9B, &tlv::encode(0x7C, &inner)));
    if sw == sw::SUCCESS {
        let outer = tlv::parse_one(&data).unwrap().0;
        assert_eq!(
            tlv::find(outer.value, 0x82).unwrap(),
            mk::encrypt_block(alg, key, &challenge).unwrap()
        );
    }
    sw
}

pub(super) fn put(card: &mut VirtualCard, tag: &[u8], value: &[u8]) -> u16 {
    let mut data = tlv::encode(0x5C, tag);
    tlv::push(&mut data, 0x53, value);
    let bytes = CommandApdu::new(0, 0xDB, 0x3F, 0xFF)
        .with_data(data)
        .to_bytes()
        .unwrap();
    send(card, &bytes).1
}

pub(super) fn get(card: &mut VirtualCard, tag: &[u8]) -> (Vec<u8>, u16) {
    send(card, &cmd(0xCB, 0x3F, 0xFF, &tlv::encode(0x5C, tag)))
}

#[test]
fn a_blank_card_takes_any_generator() {
    // The server makes cards from a borrowed OS generator; seeded generators make test cards.
    let a = VirtualCard::blank(1, &mut rand_core::OsRng);
    assert_eq!(a.serial(), 1);
    let mut b = VirtualCard::blank(2, StdRng::seed_from_u64(1));
    let mut c = VirtualCard::blank(2, StdRng::seed_from_u64(1));
    let witness =
        |card: &mut VirtualCard| send(card, &cmd(0x87, 0x0A, 0x9B, &[0x7C, 2, 0x80, 0])).0;
    let first = witness(&mut b);
    assert_eq!(first.len(), 20);
    assert_eq!(first, witness(&mut c));
}

#[test]
fn atr_checksum_and_historical_bytes() {
    let atr = card().atr();
    assert_eq!(atr[0], 0x3B);
    assert_eq!(atr[1..].iter().fold(0u8, |a, b| a ^ b), 0, "TCK");
    let historical = &atr[3..atr.len() - 1];
    assert_eq!(historical.len(), usize::from(atr[1] & 0x0F));
    assert_eq!(historical[..2], [0x80, 0xF9]);
    assert_eq!(historical[2..], objects::PIV_AID[..9]);
}

#[test]
fn select_answers_piv_and_refuses_other_applications() {
    let mut c = card();
    let (data, sw) = send(&mut c, &cmd(0xA4, 4, 0, &objects::PIV_AID));
    assert_eq!(sw, 0x9000);
    let (apt, _) = tlv::parse_one(&data).unwrap();
    assert_eq!(apt.tag, 0x61);
    assert_eq!(tlv::find(apt.value, 0x4F), Some(&[0, 0, 0x10, 0, 1, 0][..]));
    assert!(tlv::find(apt.value, 0x79).is_some());
    assert!(tlv::find(apt.value, 0x50).is_some());
    assert_eq!(send(&mut c, &cmd(0xA4, 4, 0, &objects::PIV_RID)).1, 0x9000);
    assert_eq!(
        send(&mut c, &cmd(0xA4, 4, 0, &objects::PIV_AID[..9])).1,
        0x9000
    );
    // OpenPGP.
    assert_eq!(
        send(&mut c, &cmd(0xA4, 4, 0, &[0xD2, 0x76, 0, 1, 0x24, 1])).1,
        0x6A82
    );
    assert_eq!(send(&mut c, &cmd(0xA4, 4, 0, &[0xA0, 0, 0])).1, 0x6A82);
    assert_eq!(send(&mut c, &cmd(0xA4, 0, 0, &[0x3F, 0])).1, 0x6A86);
}

#[test]
fn discovery_version_serial_and_unknown_commands() {
    let mut c = card();
    let (data, sw) = get(&mut c, &[0x7E]);
    assert_eq!(sw, 0x9000);
    let (t, _) = tlv::parse_one(&data).unwrap();
    assert_eq!(t.tag, 0x7E);
    assert_eq!(tlv::find(t.value, 0x4F), Some(&objects::PIV_AID[..]));
    assert_eq!(send(&mut c, &[0, 0xFD, 0, 0, 0]), (vec![5, 4, 3], 0x9000));
    assert_eq!(
        send(&mut c, &[0, 0xF8, 0, 0, 0]),
        (12345678u32.to_be_bytes().to_vec(), 0x9000)
    );
    assert_eq!(send(&mut c, &[0, 0x12, 0, 0]).1, 0x6D00);
    assert_eq!(send(&mut c, &[0x80, 0xCB, 0x3F, 0xFF]).1, 0x6E00);
    assert_eq!(send(&mut c, &[0, 0xCB, 0x3F, 0xFF, 3, 0x5C]).1, 0x6700);
    assert_eq!(send(&mut c, &[0, 0xCB]).1, 0x6700);
    assert_eq!(
        send(&mut c, &cmd(0xCB, 0x3F, 0xFE, &[0x5C, 1, 0x7E])).1,
        0x6A86
    );
    assert_eq!(
        send(&mut c, &cmd(0xCB, 0x3F, 0xFF, &[0x5D, 1, 0x7E])).1,
        0x6A80
    );
    assert_eq!(
        send(&mut c, &cmd(0xCB, 0x3F, 0xFF, &[0x5C, 4, 1, 2, 3, 4])).1,
        0x6A80
    );
    assert_eq!(get(&mut c, &[0x5F, 0xC1, 0x02]).1, 0x6A82);
    assert_eq!(get(&mut c, &[0x5F, 0xC2, 0x02]).1, 0x6A82);
    assert_eq!(send(&mut c, &[0, 0xC0, 0, 0, 0]).1, 0x6985);
}

#[test]
fn put_data_needs_the_management_key() {
    let mut c = card();
    assert_eq!(put(&mut c, &[0x5F, 0xC1, 0x02], &[0x30, 0]), 0x6982);
    let wrong = [9u8; 24];
    assert_eq!(mutual_auth(&mut c, ALG_3DES, &wrong), 0x6982);
    assert_eq!(mutual_auth(&mut c, ALG_AES256, &[0; 32]), 0x6A86);
    assert_eq!(
        mutual_auth(&mut c, ALG_3DES, &default_management_key()),
        0x9000
    );
    assert_eq!(put(&mut c, &[0x5F, 0xC1, 0x02], &[0x30, 0]), 0x9000);
    assert_eq!(
        get(&mut c, &[0x5F, 0xC1, 0x02]),
        (vec![0x53, 2, 0x30, 0], 0x9000)
    );
    // Unknown object, discovery, oversize.
    assert_eq!(put(&mut c, &[0x5F, 0xC2, 0x02], &[1]), 0x6A80);
    assert_eq!(put(&mut c, &[0x5F, 0xC1, 0x05], &vec![0; 3053]), 0x6A84);
    // Empty value deletes.
    assert_eq!(put(&mut c, &[0x5F, 0xC1, 0x02], &[]), 0x9000);
    assert_eq!(get(&mut c, &[0x5F, 0xC1, 0x02]).1, 0x6A82);
    // Authentication is lost on reset.
    c.reset();
    assert_eq!(put(&mut c, &[0x5F, 0xC1, 0x02], &[0x30, 0]), 0x6982);
}

#[test]
fn external_authentication() {
    let mut c = card();
    let key = default_management_key();
    let (data, sw) = send(
        &mut c,
        &cmd(0x87, 3, 0x9B, &tlv::encode(0x7C, &tlv::encode(0x81, &[]))),
    );
    assert_eq!(sw, 0x9000);
    let challenge = tlv::find(tlv::parse_one(&data).unwrap().0.value, 0x81)
        .unwrap()
        .to_vec();
    let response = mk::encrypt_block(ALG_3DES, &key, &challenge).unwrap();
    let (data, sw) = send(
        &mut c,
        &cmd(
            0x87,
            3,
            0x9B,
            &tlv::encode(0x7C, &tlv::encode(0x82, &response)),
        ),
    );
    assert_eq!((data.len(), sw), (0, 0x9000));
    assert_eq!(put(&mut c, &[0x5F, 0xC1, 0x02], &[0x30, 0]), 0x9000);
    // Replaying the response without a fresh challenge fails.
    let (_, sw) = send(
        &mut c,
        &cmd(
            0x87,
            3,
            0x9B,
            &tlv::encode(0x7C, &tlv::encode(0x82, &response)),
        ),
    );
    assert_eq!(sw, 0x6985);
}

#[test]
fn printed_information_and_biometrics_need_the_pin() {
    // SP 800-73-4 part 1, table of data model containers: fingerprints, facial image and iris
    // images are read under "PIN", printed information and the pairing code under "PIN or OCC".
    let protected: [&[u8]; 5] = [
        &[0x5F, 0xC1, 0x09],
        &[0x5F, 0xC1, 0x08],
        &[0x5F, 0xC1, 0x03],
        &[0x5F, 0xC1, 0x21],
        &[0x5F, 0xC1, 0x23],
    ];
    let mut c = card();
    mutual_auth(&mut c, ALG_3DES, &default_management_key());
    for tag in protected {
        assert_eq!(put(&mut c, tag, &[0xBC, 0]), 0x9000);
        assert_eq!(get(&mut c, tag).1, 0x6982);
    }
    // The CHUID and Security Object are read without it.
    assert_eq!(put(&mut c, &[0x5F, 0xC1, 0x06], &[0xBA, 0]), 0x9000);
    assert_eq!(get(&mut c, &[0x5F, 0xC1, 0x06]).1, 0x9000);
    assert_eq!(send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"654321"))).1, 0x63C2);
    assert_eq!(get(&mut c, &[0x5F, 0xC1, 0x08]).1, 0x6982);
    assert_eq!(send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"123456"))).1, 0x9000);
    for tag in protected {
        assert_eq!(get(&mut c, tag), (vec![0x53, 2, 0xBC, 0], 0x9000));
    }
    // The verification belongs to the session.
    c.reset();
    assert_eq!(get(&mut c, &[0x5F, 0xC1, 0x03]).1, 0x6982);
}

#[test]
fn containers_hold_what_the_standard_sizes_them_for() {
    let mut c = card();
    mutual_auth(&mut c, ALG_3DES, &default_management_key());
    // Facial image 12710 bytes, fingerprints 4006, iris images 7106 (SP 800-73-4 appendix A);
    // every other object what a YubiKey holds, 3052.
    for (tag, size) in [
        ([0x5F, 0xC1, 0x08], 12710),
        ([0x5F, 0xC1, 0x03], 4006),
        ([0x5F, 0xC1, 0x21], 7106),
        ([0x5F, 0xC1, 0x02], 3052),
        ([0x5F, 0xC1, 0x05], 3052),
    ] {
        let value: Vec<u8> = (0..size).map(|i| i as u8).collect();
        assert_eq!(put(&mut c, &tag, &value), 0x9000, "{tag:02X?}");
        assert_eq!(put(&mut c, &tag, &vec![0; size + 1]), 0x6A84, "{tag:02X?}");
    }
    send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"123456")));
    let extended_get = CommandApdu::new(0, 0xCB, 0x3F, 0xFF)
        .with_data(tlv::encode(0x5C, &[0x5F, 0xC1, 0x08]))
        .with_ne(65536)
        .to_bytes()
        .unwrap();
    let (data, sw) = send(&mut c, &extended_get);
    assert_eq!(sw, 0x9000);
    let expected: Vec<u8> = (0..12710).map(|i| i as u8).collect();
    assert_eq!(tlv::parse_one(&data).unwrap().0.value, expected);
}

#[test]
fn chaining_and_get_response() {
    let mut c = card();
    mutual_auth(&mut c, ALG_3DES, &default_management_key());
    let value: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let mut data = tlv::encode(0x5C, &[0x5F, 0xC1, 0x05]);
    tlv::push(&mut data, 0x53, &value);
    let chunks: Vec<&[u8]> = data.chunks(255).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let cla = if i + 1 < chunks.len() { 0x10 } else { 0x00 };
        let apdu = CommandApdu::new(cla, 0xDB, 0x3F, 0xFF)
            .with_data(chunk.to_vec())
            .to_bytes()
            .unwrap();
        assert_eq!(send(&mut c, &apdu).1, 0x9000);
    }
    // Short GET DATA: 256 bytes at a time with 61xx.
    let (mut got, mut sw) = get(&mut c, &[0x5F, 0xC1, 0x05]);
    assert_eq!(got.len(), 256);
    assert_eq!(sw, 0x6100);
    while sw >> 8 == 0x61 {
        let (more, s) = send(&mut c, &[0, 0xC0, 0, 0, sw as u8]);
        got.extend(more);
        sw = s;
    }
    assert_eq!(sw, 0x9000);
    assert_eq!(got, tlv::encode(0x53, &value));
    // Extended GET DATA: everything at once.
    let apdu = CommandApdu::new(0, 0xCB, 0x3F, 0xFF)
        .with_data(tlv::encode(0x5C, &[0x5F, 0xC1, 0x05]))
        .with_ne(65536)
        .extended(true)
        .to_bytes()
        .unwrap();
    assert_eq!(send(&mut c, &apdu), (tlv::encode(0x53, &value), 0x9000));
    // A short Le smaller than the answer.
    let (part, sw) = send(&mut c, &[0, 0xFD, 0, 0, 2]);
    assert_eq!((part, sw), (vec![5, 4], 0x6101));
    assert_eq!(send(&mut c, &[0, 0xC0, 0, 0, 1]), (vec![3], 0x9000));
}

#[test]
fn a_truncated_chain_is_abandoned() {
    let mut c = card();
    mutual_auth(&mut c, ALG_3DES, &default_management_key());
    let mut data = tlv::encode(0x5C, &[0x5F, 0xC1, 0x02]);
    tlv::push(&mut data, 0x53, &[0xAA; 300]);
    let first = CommandApdu::new(0x10, 0xDB, 0x3F, 0xFF)
        .with_data(data[..255].to_vec())
        .to_bytes()
        .unwrap();
    assert_eq!(send(&mut c, &first).1, 0x9000);
    // Another command arrives instead of the rest of the chain.
    assert_eq!(send(&mut c, &[0, 0xFD, 0, 0, 0]).1, 0x9000);
    let rest = CommandApdu::new(0, 0xDB, 0x3F, 0xFF)
        .with_data(data[255..].to_vec())
        .to_bytes()
        .unwrap();
    assert_eq!(send(&mut c, &rest).1, 0x6A80);
    assert_eq!(get(&mut c, &[0x5F, 0xC1, 0x02]).1, 0x6A82);
    // A chain that never ends cannot grow without bound.
    let part = CommandApdu::new(0x10, 0xDB, 0x3F, 0xFF)
        .with_data(vec![0; 255])
        .to_bytes()
        .unwrap();
    let mut last = 0;
    for _ in 0..super::MAX_CHAIN_LEN / 255 + 1 {
        last = send(&mut c, &part).1;
    }
    assert_eq!(last, 0x6A84);
}

#[test]
fn pin_retries_blocking_and_unblocking() {
    let mut c = card();
    assert_eq!(send(&mut c, &[0, 0x20, 0, 0x80]).1, 0x63C3);
    assert_eq!(send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"000000"))).1, 0x63C2);
    assert_eq!(send(&mut c, &[0, 0x20, 0, 0x80]).1, 0x63C2);
    assert_eq!(send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"123456"))).1, 0x9000);
    assert_eq!(send(&mut c, &[0, 0x20, 0, 0x80]).1, 0x9000);
    assert_eq!(c.pin_tries_left(), 3);
    assert_eq!(send(&mut c, &[0, 0x20, 0xFF, 0x80]).1, 0x9000);
    assert_eq!(send(&mut c, &[0, 0x20, 0, 0x80]).1, 0x63C3);
    // Wrong shapes.
    assert_eq!(send(&mut c, &cmd(0x20, 0, 0x80, b"1234")).1, 0x6A80);
    assert_eq!(send(&mut c, &cmd(0x20, 0, 0x00, &pin(b"123456"))).1, 0x6A88);
    assert_eq!(send(&mut c, &cmd(0x20, 0, 0x42, &pin(b"123456"))).1, 0x6A86);
    assert_eq!(send(&mut c, &cmd(0x20, 1, 0x80, &pin(b"123456"))).1, 0x6A86);
    // Block it.
    for expected in [0x63C2, 0x63C1, 0x63C0, 0x6983] {
        assert_eq!(
            send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"999999"))).1,
            expected
        );
    }
    assert_eq!(send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"123456"))).1, 0x6983);
    assert_eq!(send(&mut c, &[0, 0x20, 0, 0x80]).1, 0x6983);
    // Unblock with the PUK; a wrong PUK costs a PUK try.
    let rrc = |puk: &[u8], new: &[u8]| cmd(0x2C, 0, 0x80, &[pin(puk), pin(new)].concat());
    assert_eq!(send(&mut c, &rrc(b"87654321", b"654321")).1, 0x63C2);
    assert_eq!(send(&mut c, &rrc(b"12345678", b"12345")).1, 0x6A80);
    assert_eq!(send(&mut c, &rrc(b"12345678", b"654321")).1, 0x9000);
    assert_eq!(send(&mut c, &[0, 0x20, 0, 0x80]).1, 0x63C3);
    assert_eq!(send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"654321"))).1, 0x9000);
}

#[test]
fn change_reference_data() {
    let mut c = card();
    let crd = |p2: u8, old: &[u8], new: &[u8]| cmd(0x24, 0, p2, &[pin(old), pin(new)].concat());
    assert_eq!(send(&mut c, &crd(0x80, b"000000", b"2468024")).1, 0x63C2);
    assert_eq!(send(&mut c, &crd(0x80, b"123456", b"12a456")).1, 0x6A80);
    assert_eq!(send(&mut c, &crd(0x80, b"123456", b"12345")).1, 0x6A80);
    assert_eq!(send(&mut c, &crd(0x80, b"123456", b"2468024")).1, 0x9000);
    assert_eq!(send(&mut c, &[0, 0x20, 0, 0x80]).1, 0x9000);
    c.reset();
    assert_eq!(send(&mut c, &[0, 0x20, 0, 0x80]).1, 0x63C3);
    assert_eq!(
        send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"2468024"))).1,
        0x9000
    );
    assert_eq!(send(&mut c, &crd(0x81, b"12345678", b"87654321")).1, 0x9000);
    assert_eq!(send(&mut c, &crd(0x81, b"12345678", b"11111111")).1, 0x63C2);
    assert_eq!(send(&mut c, &crd(0x00, b"12345678", b"11111111")).1, 0x6A88);
    assert_eq!(send(&mut c, &cmd(0x24, 0, 0x80, b"short")).1, 0x6A80);
}

#[test]
fn keys_signatures_and_pin_policies() {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let mut c = card();
    let gen = |slot: u8| {
        cmd(
            0x47,
            0,
            slot,
            &tlv::encode(0xAC, &tlv::encode(0x80, &[0x11])),
        )
    };
    assert_eq!(send(&mut c, &gen(0x9A)).1, 0x6982);
    mutual_auth(&mut c, ALG_3DES, &default_management_key());
    assert_eq!(send(&mut c, &gen(0x9B)).1, 0x6A86);
    assert_eq!(
        send(
            &mut c,
            &cmd(
                0x47,
                0,
                0x9A,
                &tlv::encode(0xAC, &tlv::encode(0x80, &[0x42]))
            )
        )
        .1,
        0x6A80
    );
    let mut publics = BTreeMap::new();
    for slot in [0x9A, 0x9C, 0x9D, 0x9E] {
        let (data, sw) = send(&mut c, &gen(slot));
        assert_eq!(sw, 0x9000);
        let (t, _) = tlv::parse_one(&data).unwrap();
        assert_eq!(t.tag, 0x7F49);
        let point = tlv::find(t.value, 0x86).unwrap();
        assert_eq!(point.len(), 65);
        publics.insert(
            slot,
            p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap(),
        );
    }
    let hash = [0x42u8; 32];
    let sign = |slot: u8, alg: u8| {
        let mut inner = tlv::encode(0x82, &[]);
        tlv::push(&mut inner, 0x81, &hash);
        cmd(0x87, alg, slot, &tlv::encode(0x7C, &inner))
    };
    // 9E needs no PIN.
    let (data, sw) = send(&mut c, &sign(0x9E, 0x11));
    assert_eq!(sw, 0x9000);
    let der = tlv::find(tlv::parse_one(&data).unwrap().0.value, 0x82).unwrap();
    let sig = p256::ecdsa::Signature::from_der(der).unwrap();
    publics[&0x9E].verify_prehash(&hash, &sig).unwrap();
    // 9A needs the PIN once; wrong algorithm and empty slot are refused.
    assert_eq!(send(&mut c, &sign(0x9A, 0x11)).1, 0x6982);
    assert_eq!(send(&mut c, &sign(0x9A, 0x14)).1, 0x6A86);
    send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"123456")));
    assert_eq!(send(&mut c, &sign(0x9A, 0x11)).1, 0x9000);
    assert_eq!(send(&mut c, &sign(0x9A, 0x11)).1, 0x9000);
    // 9C needs the PIN immediately before each signature.
    assert_eq!(send(&mut c, &sign(0x9C, 0x11)).1, 0x6982);
    send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"123456")));
    assert_eq!(send(&mut c, &sign(0x9C, 0x11)).1, 0x9000);
    assert_eq!(send(&mut c, &sign(0x9C, 0x11)).1, 0x6982);
    send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"123456")));
    send(&mut c, &[0, 0xFD, 0, 0, 0]);
    assert_eq!(send(&mut c, &sign(0x9C, 0x11)).1, 0x6982);
    // ECDH with 9D.
    let peer = p256::SecretKey::random(&mut StdRng::seed_from_u64(1));
    let peer_point = peer.public_key().to_encoded_point(false);
    let mut inner = tlv::encode(0x82, &[]);
    tlv::push(&mut inner, 0x85, peer_point.as_bytes());
    let (data, sw) = send(&mut c, &cmd(0x87, 0x11, 0x9D, &tlv::encode(0x7C, &inner)));
    assert_eq!(sw, 0x9000);
    let shared = tlv::find(tlv::parse_one(&data).unwrap().0.value, 0x82).unwrap();
    let card_public =
        p256::PublicKey::from_sec1_bytes(publics[&0x9D].to_encoded_point(false).as_bytes())
            .unwrap();
    let expected = p256::ecdh::diffie_hellman(peer.to_nonzero_scalar(), card_public.as_affine());
    assert_eq!(shared, &expected.raw_secret_bytes()[..]);
    // Metadata of a slot reports its policy and public key.
    let (meta, sw) = send(&mut c, &[0, 0xF7, 0, 0x9C, 0]);
    assert_eq!(sw, 0x9000);
    assert_eq!(tlv::find(&meta, 0x01), Some(&[0x11u8][..]));
    assert_eq!(tlv::find(&meta, 0x02), Some(&[3u8, 1][..]));
    assert_eq!(send(&mut c, &[0, 0xF7, 0, 0x82, 0]).1, 0x6A88);
    let (meta, _) = send(&mut c, &[0, 0xF7, 0, 0x80, 0]);
    assert_eq!(tlv::find(&meta, 0x06), Some(&[3u8, 3][..]));
    assert_eq!(tlv::find(&meta, 0x05), Some(&[1u8][..]));
}

#[test]
fn set_management_key_and_factory_reset() {
    let mut c = card();
    let aes = [0x77u8; 32];
    let set = |alg: u8, key: &[u8]| {
        let mut d = vec![alg, 0x9B, key.len() as u8];
        d.extend_from_slice(key);
        cmd(0xFF, 0xFF, 0xFF, &d)
    };
    assert_eq!(send(&mut c, &set(ALG_AES256, &aes)).1, 0x6982);
    mutual_auth(&mut c, ALG_3DES, &default_management_key());
    assert_eq!(send(&mut c, &set(ALG_AES256, &aes[..31])).1, 0x6A80);
    assert_eq!(send(&mut c, &set(0x07, &aes)).1, 0x6A80);
    assert_eq!(send(&mut c, &cmd(0xFF, 0xFF, 0x00, &[])).1, 0x6A86);
    assert_eq!(send(&mut c, &set(ALG_AES256, &aes)).1, 0x9000);
    c.reset();
    assert_eq!(
        mutual_auth(&mut c, ALG_3DES, &default_management_key()),
        0x6A86
    );
    assert_eq!(mutual_auth(&mut c, ALG_AES256, &aes), 0x9000);
    assert_eq!(put(&mut c, &[0x5F, 0xC1, 0x02], &[0x30, 0]), 0x9000);

    // RESET only once PIN and PUK are blocked.
    assert_eq!(send(&mut c, &[0, 0xFB, 0, 0]).1, 0x6985);
    for _ in 0..3 {
        send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"000000")));
        send(
            &mut c,
            &cmd(
                0x24,
                0,
                0x81,
                &[pin(b"00000000"), pin(b"00000000")].concat(),
            ),
        );
    }
    assert_eq!(send(&mut c, &[0, 0xFB, 0, 0]).1, 0x9000);
    assert_eq!(get(&mut c, &[0x5F, 0xC1, 0x02]).1, 0x6A82);
    assert_eq!(
        mutual_auth(&mut c, ALG_3DES, &default_management_key()),
        0x9000
    );
    assert_eq!(send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"123456"))).1, 0x9000);
    assert_eq!(c.serial(), 12345678);
}

/// The PKCS#1 v1.5 block of a SHA-256 signature (RFC 8017, 9.2), which middleware builds before
/// it asks the card for the raw RSA operation.
pub(super) fn pkcs1_sha256_block(hash: &[u8], len: usize) -> Vec<u8> {
    const DIGEST_INFO: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let mut block = vec![0x00, 0x01];
    block.resize(len - DIGEST_INFO.len() - hash.len() - 1, 0xFF);
    block.push(0x00);
    block.extend_from_slice(&DIGEST_INFO);
    block.extend_from_slice(hash);
    block
}

#[test]
fn rsa_3072_keys_over_short_and_extended_apdus() {
    use rsa::traits::PublicKeyParts;
    use sha2::Digest;
    let dir = std::env::temp_dir().join(format!("tessera-piv-rsa3072-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("card.json");
    // RSA 3072 came with firmware 5.7, and with it the AES-192 factory management key.
    let mut c = VirtualCard::blank(12345678, StdRng::seed_from_u64(7));
    assert_eq!(
        mutual_auth(&mut c, mk::ALG_AES192, &default_management_key()),
        0x9000
    );
    let generate = cmd(
        0x47,
        0,
        0x9D,
        &tlv::encode(0xAC, &tlv::encode(0x80, &[keys::ALG_RSA3072])),
    );
    // A short command: the 398-byte template comes as 256 bytes and 61 8E, then GET RESPONSE.
    let (first, sw) = send(&mut c, &generate);
    assert_eq!((first.len(), sw), (256, 0x618E));
    let (rest, sw) = send(&mut c, &[0, 0xC0, 0, 0, 0x8E]);
    assert_eq!(sw, 0x9000);
    let generated = [first, rest].concat();
    let (template, after) = tlv::parse_one(&generated).unwrap();
    assert!(after.is_empty());
    assert_eq!(template.tag, 0x7F49);
    let modulus = tlv::find(template.value, 0x81).unwrap();
    assert_eq!(modulus.len(), 384);
    let public = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(modulus),
        rsa::BigUint::from_bytes_be(tlv::find(template.value, 0x82).unwrap()),
    )
    .unwrap();
    assert_eq!(public.n().bits(), 3072);

    // GET METADATA with an extended Le answers all 407 bytes at once.
    let (meta, sw) = send(&mut c, &[0, 0xF7, 0, 0x9D, 0, 0, 0]);
    assert_eq!((meta.len(), sw), (407, 0x9000));
    assert_eq!(tlv::find(&meta, 0x01), Some(&[keys::ALG_RSA3072][..]));
    assert_eq!(tlv::find(&meta, 0x04), Some(template.value));

    let hash = sha2::Sha256::digest(b"RSA 3072");
    let block = pkcs1_sha256_block(&hash, 384);
    let request = |block: &[u8]| {
        let mut inner = tlv::encode(0x82, &[]);
        tlv::push(&mut inner, 0x81, block);
        tlv::encode(0x7C, &inner)
    };
    let data = request(&block);
    assert_eq!(data.len(), 394);
    let chained = |c: &mut VirtualCard, alg: u8| {
        let head = CommandApdu::new(0x10, 0x87, alg, 0x9D)
            .with_data(data[..255].to_vec())
            .to_bytes()
            .unwrap();
        assert_eq!(send(c, &head).1, 0x9000);
        send(c, &cmd(0x87, alg, 0x9D, &data[255..]))
    };
    // 9D wants the PIN once.
    assert_eq!(chained(&mut c, keys::ALG_RSA3072).1, 0x6982);
    assert_eq!(send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"123456"))).1, 0x9000);
    // A chain of short commands: the 392-byte answer comes as 256 bytes and 61 88.
    let (first, sw) = chained(&mut c, keys::ALG_RSA3072);
    assert_eq!((first.len(), sw), (256, 0x6188));
    let (rest, sw) = send(&mut c, &[0, 0xC0, 0, 0, 0x88]);
    assert_eq!(sw, 0x9000);
    let answer = [first, rest].concat();
    let signature = tlv::find(tlv::parse_one(&answer).unwrap().0.value, 0x82)
        .unwrap()
        .to_vec();
    assert_eq!(signature.len(), 384);
    public
        .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hash, &signature)
        .unwrap();
    // One extended command gives the same (deterministic) signature in one answer.
    let extended = CommandApdu::new(0, 0x87, keys::ALG_RSA3072, 0x9D)
        .with_data(data.clone())
        .with_ne(65536)
        .extended(true)
        .to_bytes()
        .unwrap();
    assert_eq!(send(&mut c, &extended), (answer.clone(), 0x9000));
    // The RSA 2048 identifier, a 2048-bit block and a block above the modulus are refused.
    assert_eq!(chained(&mut c, keys::ALG_RSA2048).1, 0x6A86);
    let short_block = pkcs1_sha256_block(&hash, 256);
    assert_eq!(
        send(
            &mut c,
            &cmd(0x87, keys::ALG_RSA3072, 0x9D, &request(&short_block))
        )
        .1,
        0x6A80
    );
    let too_big = CommandApdu::new(0, 0x87, keys::ALG_RSA3072, 0x9D)
        .with_data(request(&[0xFF; 384]))
        .with_ne(65536)
        .to_bytes()
        .unwrap();
    assert_eq!(send(&mut c, &too_big).1, 0x6A80);

    // The key survives a save and load and still signs the same.
    c.save(&path).unwrap();
    let mut back = VirtualCard::load(&path).unwrap();
    assert_eq!(
        send(&mut back, &cmd(0x20, 0, 0x80, &pin(b"123456"))).1,
        0x9000
    );
    assert_eq!(send(&mut back, &extended), (answer, 0x9000));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn state_persists_across_save_and_load() {
    let dir = std::env::temp_dir().join(format!("tessera-piv-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("card.json");
    let mut c = card();
    mutual_auth(&mut c, ALG_3DES, &default_management_key());
    assert_eq!(put(&mut c, &[0x5F, 0xC1, 0x02], &[0x30, 1, 2]), 0x9000);
    let (generated, _) = send(
        &mut c,
        &cmd(
            0x47,
            0,
            0x9A,
            &tlv::encode(0xAC, &tlv::encode(0x80, &[0x14])),
        ),
    );
    send(&mut c, &cmd(0x20, 0, 0x80, &pin(b"111111")));
    assert!(c.take_dirty());
    assert!(!c.take_dirty());
    c.save(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
    }

    let mut back = VirtualCard::load(&path).unwrap();
    assert_eq!(back.serial(), 12345678);
    assert_eq!(back.pin_tries_left(), 2);
    assert_eq!(get(&mut back, &[0x5F, 0xC1, 0x02]).0, [0x53, 3, 0x30, 1, 2]);
    let (meta, _) = send(&mut back, &[0, 0xF7, 0, 0x9A, 0]);
    let public = tlv::find(&meta, 0x04).unwrap();
    assert_eq!(tlv::encode(0x7F49, public), generated);
    // The security state did not survive.
    assert_eq!(put(&mut back, &[0x5F, 0xC1, 0x02], &[]), 0x6982);

    std::fs::write(&path, b"{\"format\": 1}").unwrap();
    assert!(matches!(
        VirtualCard::load(&path),
        Err(StateError::Invalid(_))
    ));
    assert!(matches!(
        VirtualCard::load(dir.join("missing.json")),
        Err(StateError::Io(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn random_and_mutated_apdus_never_panic() {
    let mut rng = StdRng::seed_from_u64(99);
    let mut c = card();
    mutual_auth(&mut c, ALG_3DES, &default_management_key());
    send(
        &mut c,
        &cmd(
            0x47,
            0,
            0x9E,
            &tlv::encode(0xAC, &tlv::encode(0x80, &[0x11])),
        ),
    );
    let seeds: Vec<Vec<u8>> = vec![
        cmd(0xA4, 4, 0, &objects::PIV_AID),
        cmd(0xCB, 0x3F, 0xFF, &[0x5C, 3, 0x5F, 0xC1, 0x02]),
        cmd(
            0xDB,
            0x3F,
            0xFF,
            &[0x5C, 3, 0x5F, 0xC1, 0x02, 0x53, 2, 0x30, 0],
        ),
        cmd(0x20, 0, 0x80, &pin(b"123456")),
        cmd(0x87, 0x03, 0x9B, &[0x7C, 2, 0x80, 0]),
        cmd(0x87, 0x11, 0x9E, &[0x7C, 6, 0x82, 0, 0x81, 2, 1, 2]),
        cmd(0x47, 0, 0x9A, &[0xAC, 3, 0x80, 1, 0x11]),
        cmd(0xFF, 0xFF, 0xFF, &[0x03, 0x9B, 0x18]),
        vec![0, 0xC0, 0, 0, 0],
    ];
    for i in 0..4000 {
        let mut apdu = if i % 3 == 0 {
            let len = rng.gen_range(0..40);
            (0..len).map(|_| rng.gen()).collect()
        } else {
            seeds[rng.gen_range(0..seeds.len())].clone()
        };
        for _ in 0..rng.gen_range(0..4) {
            if apdu.is_empty() {
                break;
            }
            let at = rng.gen_range(0..apdu.len());
            match rng.gen_range(0..3) {
                0 => apdu[at] = rng.gen(),
                1 => {
                    apdu.truncate(at);
                }
                _ => apdu.insert(at, rng.gen()),
            }
        }
        if i % 50 == 0 {
            c.reset();
            mutual_auth(&mut c, ALG_3DES, &default_management_key());
        }
        let response = c.process(&apdu);
        assert!(response.len() >= 2);
    }
}

//! The answer to Yubico's GET METADATA (INS F7, firmware 5.3 and later): a flat list of
//! BER-TLV fields describing one key reference. The host reads it to learn a management key's
//! algorithm before authenticating, and PIN/PUK retry counters without spending a try. The
//! answer comes from the card (or from a station relaying it), so every field is checked for
//! its length and an unexpected one is an error, never a panic.

use crate::tlv;

/// The fields of a GET METADATA answer; each is `None` when the card left it out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Tag 01: the key's algorithm (PIV identifier; `FF` for PIN and PUK).
    pub algorithm: Option<u8>,
    /// Tag 02: PIN policy and touch policy.
    pub policy: Option<(u8, u8)>,
    /// Tag 03: 1 generated on the card, 2 imported.
    pub origin: Option<u8>,
    /// Tag 04: the public key's template (the contents of a 7F49), for slot keys.
    pub public_key: Option<Vec<u8>>,
    /// Tag 05: whether the PIN, PUK or management key still has its factory value.
    pub is_default: Option<bool>,
    /// Tag 06: total and remaining tries of a PIN or PUK.
    pub retries: Option<(u8, u8)>,
}

/// Parses a GET METADATA answer. Unknown tags are skipped (later firmware may add fields); a
/// known tag with the wrong length, a repeated tag or broken TLV is refused with the reason.
pub fn parse(data: &[u8]) -> Result<Metadata, String> {
    let mut out = Metadata::default();
    let mut rest = data;
    while !rest.is_empty() {
        let (field, after) = tlv::parse_one(rest).map_err(|e| e.to_string())?;
        rest = after;
        let value = field.value;
        let repeated = || format!("tag {:02X} appears twice", field.tag);
        let single = || match value {
            [b] => Ok(*b),
            _ => Err(format!(
                "tag {:02X} has {} bytes, not 1",
                field.tag,
                value.len()
            )),
        };
        let pair = || match value {
            [a, b] => Ok((*a, *b)),
            _ => Err(format!(
                "tag {:02X} has {} bytes, not 2",
                field.tag,
                value.len()
            )),
        };
        match field.tag {
            0x01 if out.algorithm.is_some() => return Err(repeated()),
            0x01 => out.algorithm = Some(single()?),
            0x02 if out.policy.is_some() => return Err(repeated()),
            0x02 => out.policy = Some(pair()?),
            0x03 if out.origin.is_some() => return Err(repeated()),
            0x03 => out.origin = Some(single()?),
            0x04 if out.public_key.is_some() => return Err(repeated()),
            0x04 => out.public_key = Some(value.to_vec()),
            0x05 if out.is_default.is_some() => return Err(repeated()),
            0x05 => {
                out.is_default = Some(match single()? {
                    0 => false,
                    1 => true,
                    other => return Err(format!("tag 05 has the value {other:02X}")),
                })
            }
            0x06 if out.retries.is_some() => return Err(repeated()),
            0x06 => {
                let (total, left) = pair()?;
                if left > total {
                    return Err(format!("{left} tries left of {total}"));
                }
                out.retries = Some((total, left));
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yubikey_5_7_management_key_answer() {
        // 01 0A (AES-192), 02 FF 01 (PIN never, touch never), 05 01 (factory key).
        let m = parse(&hex::decode("01010A0202FF01050101").unwrap()).unwrap();
        assert_eq!(m.algorithm, Some(0x0A));
        assert_eq!(m.policy, Some((0xFF, 0x01)));
        assert_eq!(m.is_default, Some(true));
        assert_eq!(m.origin, None);
    }

    #[test]
    fn a_pin_answer_and_unknown_tags() {
        let m = parse(&hex::decode("0101FF050100060203020901AA").unwrap()).unwrap();
        assert_eq!(m.is_default, Some(false));
        assert_eq!(m.retries, Some((3, 2)));
    }

    #[test]
    fn wrong_lengths_repeats_and_broken_tlv_are_refused() {
        for bad in [
            "0102000A",     // algorithm of two bytes
            "01010A01010A", // algorithm twice
            "050102",       // default flag 2
            "06020305",     // five tries left of three
            "0205FF",       // length beyond the data
            "02",           // tag without length
        ] {
            assert!(parse(&hex::decode(bad).unwrap()).is_err(), "{bad}");
        }
        assert_eq!(parse(&[]).unwrap(), Metadata::default());
    }
}

//! BER-TLV as PIV uses it (SP 800-73-4 part 2 relies on ISO/IEC 8825-1): tags of one to three
//! bytes, definite lengths in short form or the long forms `81 xx`, `82 xxxx`, `83 xxxxxx`.
//!
//! Both the card emulator and the client parse bytes that came from the other side of a wire, so
//! every parser here returns an error instead of panicking, whatever it is given.

/// Nesting depth at which [`parse_tree`] gives up, so hostile input cannot exhaust the stack.
pub const MAX_DEPTH: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    #[error("the data ends inside a tag")]
    TruncatedTag,
    #[error("a tag is longer than three bytes")]
    TagTooLong,
    #[error("the data ends inside a length")]
    TruncatedLength,
    #[error("length form {0:#04x} is not supported")]
    UnsupportedLength(u8),
    #[error("a value claims {claimed} bytes but only {available} follow")]
    TruncatedValue { claimed: usize, available: usize },
    #[error("data objects are nested too deeply")]
    TooDeep,
}

/// One data object: its tag (the tag bytes read big-endian) and its value, borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u32,
    pub value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Whether the tag marks a constructed object (its value is itself a list of objects).
    pub fn is_constructed(&self) -> bool {
        is_constructed(self.tag)
    }

    /// The objects inside this one's value.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, TlvError> {
        parse_all(self.value)
    }
}

/// Whether a tag (as returned by the parser) has the constructed bit set in its first byte.
pub fn is_constructed(tag: u32) -> bool {
    let bytes = tag_len(tag);
    let first = (tag >> (8 * (bytes - 1))) as u8;
    first & 0x20 != 0
}

fn tag_len(tag: u32) -> usize {
    match tag {
        0..=0xFF => 1,
        0x100..=0xFFFF => 2,
        0x1_0000..=0xFF_FFFF => 3,
        _ => 4,
    }
}

/// Reads a tag from the front of `input`; returns it and the rest.
pub fn parse_tag(input: &[u8]) -> Result<(u32, &[u8]), TlvError> {
    let (&first, mut rest) = input.split_first().ok_or(TlvError::TruncatedTag)?;
    let mut tag = u32::from(first);
    if first & 0x1F != 0x1F {
        return Ok((tag, rest));
    }
    // Subsequent bytes carry a continuation bit; PIV never needs more than two of them.
    for count in 1.. {
        let (&b, r) = rest.split_first().ok_or(TlvError::TruncatedTag)?;
        rest = r;
        tag = (tag << 8) | u32::from(b);
        if b & 0x80 == 0 {
            break;
        }
        if count >= 2 {
            return Err(TlvError::TagTooLong);
        }
    }
    Ok((tag, rest))
}

/// Reads a definite length from the front of `input`; returns it and the rest.
pub fn parse_length(input: &[u8]) -> Result<(usize, &[u8]), TlvError> {
    let (&first, rest) = input.split_first().ok_or(TlvError::TruncatedLength)?;
    let extra = match first {
        0x00..=0x7F => return Ok((usize::from(first), rest)),
        0x81 => 1,
        0x82 => 2,
        0x83 => 3,
        other => return Err(TlvError::UnsupportedLength(other)),
    };
    if rest.len() < extra {
        return Err(TlvError::TruncatedLength);
    }
    let (len_bytes, rest) = rest.split_at(extra);
    let len = len_bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Ok((len, rest))
}

/// Reads one data object from the front of `input`; returns it and the bytes after it.
pub fn parse_one(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (tag, rest) = parse_tag(input)?;
    let (len, rest) = parse_length(rest)?;
    if rest.len() < len {
        return Err(TlvError::TruncatedValue {
            claimed: len,
            available: rest.len(),
        });
    }
    let (value, rest) = rest.split_at(len);
    Ok((Tlv { tag, value }, rest))
}

/// Reads a sequence of data objects that fills `input` exactly.
pub fn parse_all(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tlv, rest) = parse_one(input)?;
        out.push(tlv);
        input = rest;
    }
    Ok(out)
}

/// The value of the first object with `tag` among the top-level objects of `input`, if the input
/// parses and has one.
pub fn find(input: &[u8], tag: u32) -> Option<&[u8]> {
    parse_all(input)
        .ok()?
        .into_iter()
        .find(|t| t.tag == tag)
        .map(|t| t.value)
}

/// A fully parsed data object: constructed objects hold their children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Primitive { tag: u32, value: Vec<u8> },
    Constructed { tag: u32, children: Vec<Node> },
}

impl Node {
    pub fn tag(&self) -> u32 {
        match self {
            Node::Primitive { tag, .. } | Node::Constructed { tag, .. } => *tag,
        }
    }

    /// Encodes the node back to bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Node::Primitive { tag, value } => encode(*tag, value),
            Node::Constructed { tag, children } => {
                let inner: Vec<u8> = children.iter().flat_map(Node::encode).collect();
                encode(*tag, &inner)
            }
        }
    }
}

/// Parses `input` into trees, descending into constructed tags (bit 6 of the first tag byte).
pub fn parse_tree(input: &[u8]) -> Result<Vec<Node>, TlvError> {
    parse_tree_at(input, 0)
}

fn parse_tree_at(input: &[u8], depth: usize) -> Result<Vec<Node>, TlvError> {
    if depth >= MAX_DEPTH {
        return Err(TlvError::TooDeep);
    }
    parse_all(input)?
        .into_iter()
        .map(|t| {
            Ok(if t.is_constructed() {
                Node::Constructed {
                    tag: t.tag,
                    children: parse_tree_at(t.value, depth + 1)?,
                }
            } else {
                Node::Primitive {
                    tag: t.tag,
                    value: t.value.to_vec(),
                }
            })
        })
        .collect()
}

/// Appends the bytes of `tag` (one to three bytes, no leading zero bytes).
pub fn push_tag(out: &mut Vec<u8>, tag: u32) {
    let bytes = tag.to_be_bytes();
    let skip = 4 - tag_len(tag);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends a definite length in the shortest form.
///
/// # Panics
/// If `len` needs more than three bytes (16 MiB); nothing in PIV comes close.
pub fn push_length(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        0x1_0000..=0xFF_FFFF => {
            out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8])
        }
        _ => panic!("a BER-TLV value of {len} bytes is longer than PIV allows"),
    }
}

/// Encodes one data object.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    push(&mut out, tag, value);
    out
}

/// Appends one data object.
pub fn push(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    push_tag(out, tag);
    push_length(out, value.len());
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip_in_every_form() {
        for len in [0usize, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x1_0000] {
            let value = vec![0xAB; len];
            let bytes = encode(0x53, &value);
            let (tlv, rest) = parse_one(&bytes).unwrap();
            assert!(rest.is_empty());
            assert_eq!(tlv.tag, 0x53);
            assert_eq!(tlv.value.len(), len);
        }
        assert_eq!(encode(0x53, &[0; 0x80])[..3], [0x53, 0x81, 0x80]);
        assert_eq!(encode(0x53, &[0; 0x100])[..4], [0x53, 0x82, 0x01, 0x00]);
    }

    #[test]
    fn multi_byte_tags() {
        let bytes = encode(0x5FC105, &[1, 2]);
        assert_eq!(bytes, [0x5F, 0xC1, 0x05, 0x02, 1, 2]);
        let (tlv, _) = parse_one(&bytes).unwrap();
        assert_eq!(tlv.tag, 0x5FC105);
        let bytes = encode(0x7F49, &[]);
        assert_eq!(bytes, [0x7F, 0x49, 0x00]);
        assert_eq!(parse_one(&bytes).unwrap().0.tag, 0x7F49);
        assert!(is_constructed(0x7F49));
        assert!(!is_constructed(0x5FC105));
        assert!(is_constructed(0x7C));
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(parse_one(&[]), Err(TlvError::TruncatedTag));
        assert_eq!(parse_one(&[0x5F]), Err(TlvError::TruncatedTag));
        assert_eq!(parse_one(&[0x5F, 0xC1]), Err(TlvError::TruncatedTag));
        assert_eq!(
            parse_one(&[0x5F, 0x81, 0x81, 0x01, 0x00]),
            Err(TlvError::TagTooLong)
        );
        assert_eq!(parse_one(&[0x53]), Err(TlvError::TruncatedLength));
        assert_eq!(
            parse_one(&[0x53, 0x82, 0x01]),
            Err(TlvError::TruncatedLength)
        );
        assert_eq!(
            parse_one(&[0x53, 0x84, 0, 0, 0, 1]),
            Err(TlvError::UnsupportedLength(0x84))
        );
        assert_eq!(
            parse_one(&[0x53, 0x80]),
            Err(TlvError::UnsupportedLength(0x80))
        );
        assert_eq!(
            parse_one(&[0x53, 0x03, 1, 2]),
            Err(TlvError::TruncatedValue {
                claimed: 3,
                available: 2
            })
        );
        assert!(parse_one(&[0x53, 0x83, 0xFF, 0xFF, 0xFF]).is_err());
        assert!(parse_all(&[0x53, 0x01, 0x00, 0x54]).is_err());
    }

    #[test]
    fn nested_parsing() {
        let inner = [encode(0x80, &[1, 2, 3]), encode(0x81, &[])].concat();
        let outer = encode(0x7C, &inner);
        let tree = parse_tree(&outer).unwrap();
        assert_eq!(
            tree,
            vec![Node::Constructed {
                tag: 0x7C,
                children: vec![
                    Node::Primitive {
                        tag: 0x80,
                        value: vec![1, 2, 3]
                    },
                    Node::Primitive {
                        tag: 0x81,
                        value: vec![]
                    },
                ]
            }]
        );
        assert_eq!(tree[0].encode(), outer);
        assert_eq!(find(&inner, 0x80), Some(&[1u8, 2, 3][..]));
        assert_eq!(find(&inner, 0x82), None);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = encode(0x80, &[]);
        for _ in 0..40 {
            bytes = encode(0x7C, &bytes);
        }
        assert_eq!(parse_tree(&bytes), Err(TlvError::TooDeep));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x1234_5678u32;
        for _ in 0..5000 {
            let len = (seed % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    (seed >> 8) as u8
                })
                .collect();
            let _ = parse_tree(&bytes);
            let _ = parse_all(&bytes);
        }
    }
}

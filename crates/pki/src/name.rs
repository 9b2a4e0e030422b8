//! Distinguished names: parsing the RFC 4514-style strings that certificate profiles produce
//! (`CN=Jane Doe,UID=jdoe,O=Example`) into X.509 names, and printing names back the same way.

use crate::error::PkiError;
use const_oid::db::rfc4519;
use const_oid::ObjectIdentifier;
use der::asn1::{Any, Ia5StringRef, PrintableStringRef, SetOfVec, Utf8StringRef};
use der::{Encode, Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

#[derive(Clone, Copy, PartialEq, Eq)]
enum StringKind {
    Utf8,
    Printable,
    Ia5,
}

const EMAIL_ADDRESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.1");

/// Attribute names we accept and print, with the string type RFC 5280 asks for.
const ATTRIBUTES: &[(&str, ObjectIdentifier, StringKind)] = &[
    ("CN", rfc4519::CN, StringKind::Utf8),
    ("SN", rfc4519::SN, StringKind::Utf8),
    (
        "SERIALNUMBER",
        rfc4519::SERIAL_NUMBER,
        StringKind::Printable,
    ),
    ("C", rfc4519::C, StringKind::Printable),
    ("L", rfc4519::L, StringKind::Utf8),
    ("ST", rfc4519::ST, StringKind::Utf8),
    ("STREET", rfc4519::STREET, StringKind::Utf8),
    ("O", rfc4519::O, StringKind::Utf8),
    ("OU", rfc4519::OU, StringKind::Utf8),
    ("TITLE", rfc4519::TITLE, StringKind::Utf8),
    ("GN", rfc4519::GIVEN_NAME, StringKind::Utf8),
    ("UID", rfc4519::UID, StringKind::Utf8),
    ("DC", rfc4519::DC, StringKind::Ia5),
    ("EMAILADDRESS", EMAIL_ADDRESS, StringKind::Ia5),
];

const ALIASES: &[(&str, &str)] = &[
    ("COMMONNAME", "CN"),
    ("SURNAME", "SN"),
    ("GIVENNAME", "GN"),
    ("E", "EMAILADDRESS"),
    ("S", "ST"),
    ("USERID", "UID"),
];

/// Escapes a value for use inside a DN string (RFC 4514 section 2.4).
pub fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// Parses `CN=Jane Doe,UID=jdoe,O=Example` (most specific first, as RFC 4514 writes it) into a
/// Name. `\,` and the other RFC 4514 escapes (including `\2C` hex pairs) are understood, `+`
/// joins attributes into one RDN, and attributes whose value is empty are left out so that a
/// template field the user lacks does not produce an empty attribute.
pub fn parse_dn(text: &str) -> Result<Name, PkiError> {
    let mut rdns = Vec::new();
    if text.trim().is_empty() {
        return Ok(RdnSequence(rdns));
    }
    for rdn_text in split_unescaped(text, b',') {
        let mut atvs = Vec::new();
        for ava in split_unescaped(rdn_text, b'+') {
            let (key, raw) = split_once_unescaped(ava, b'=').ok_or_else(|| {
                PkiError::InvalidSubject(format!("`{}` is not of the form KEY=value", ava.trim()))
            })?;
            let value = unescape(raw)?;
            if value.is_empty() {
                continue;
            }
            let (oid, kind) = attribute(key.trim())?;
            atvs.push(AttributeTypeAndValue {
                oid,
                value: encode_value(key.trim(), &value, kind)?,
            });
        }
        if !atvs.is_empty() {
            let set = SetOfVec::try_from(atvs).map_err(|_| {
                PkiError::InvalidSubject(format!("`{}` repeats an attribute", rdn_text.trim()))
            })?;
            rdns.push(RelativeDistinguishedName(set));
        }
    }
    // The string lists the most specific RDN first; the DER sequence starts at the root.
    rdns.reverse();
    Ok(RdnSequence(rdns))
}

/// Prints a Name the way [`parse_dn`] reads it: most specific RDN first, comma-separated.
pub fn format_name(name: &Name) -> String {
    let mut out = String::new();
    for (i, rdn) in name.0.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.0.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            format_atv(atv, &mut out);
        }
    }
    out
}

fn format_atv(atv: &AttributeTypeAndValue, out: &mut String) {
    let key = ATTRIBUTES.iter().find(|(_, oid, _)| *oid == atv.oid);
    let text = match atv.value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
            std::str::from_utf8(atv.value.value()).ok()
        }
        _ => None,
    };
    match (key, text) {
        (Some((key, _, _)), Some(text)) => {
            out.push_str(key);
            out.push('=');
            out.push_str(&escape_dn_value(text));
        }
        // RFC 4514: unknown attributes as dotted OID and the hex of the value's DER.
        _ => {
            out.push_str(&atv.oid.to_string());
            out.push_str("=#");
            out.push_str(&hex::encode(atv.value.to_der().unwrap_or_default()));
        }
    }
}

fn attribute(key: &str) -> Result<(ObjectIdentifier, StringKind), PkiError> {
    let upper = key.to_ascii_uppercase();
    let canonical = ALIASES
        .iter()
        .find(|(alias, _)| *alias == upper)
        .map_or(upper.as_str(), |(_, name)| name);
    if let Some((_, oid, kind)) = ATTRIBUTES.iter().find(|(name, _, _)| *name == canonical) {
        return Ok((*oid, *kind));
    }
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        if let Ok(oid) = ObjectIdentifier::new(key) {
            return Ok((oid, StringKind::Utf8));
        }
    }
    Err(PkiError::InvalidSubject(format!(
        "unknown attribute `{key}`"
    )))
}

fn encode_value(key: &str, value: &str, kind: StringKind) -> Result<Any, PkiError> {
    let invalid = |what: &str| PkiError::InvalidSubject(format!("{key}=`{value}` {what}"));
    let (tag, ok) = match kind {
        StringKind::Utf8 => (Tag::Utf8String, Utf8StringRef::new(value).is_ok()),
        StringKind::Printable => (Tag::PrintableString, PrintableStringRef::new(value).is_ok()),
        StringKind::Ia5 => (Tag::Ia5String, Ia5StringRef::new(value).is_ok()),
    };
    if !ok {
        return Err(invalid("has characters this attribute does not allow"));
    }
    if key.eq_ignore_ascii_case("C") && value.len() != 2 {
        return Err(invalid("is not a two-letter country code"));
    }
    Any::new(tag, value.as_bytes()).map_err(|_| invalid("is too long"))
}

/// Splits at every `sep` that is not escaped with a backslash.
fn split_unescaped(text: &str, sep: u8) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == sep => {
                parts.push(&text[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    parts.push(&text[start.min(text.len())..]);
    parts
}

fn split_once_unescaped(text: &str, sep: u8) -> Option<(&str, &str)> {
    let first = split_unescaped(text, sep).into_iter().next()?;
    (first.len() < text.len()).then(|| (first, &text[first.len() + 1..]))
}

/// Resolves escapes and drops unescaped leading and trailing spaces.
fn unescape(raw: &str) -> Result<String, PkiError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    // Length of `out` up to the last character that is not an unescaped space.
    let mut keep = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 3;
                } else if let Some(&next) = bytes.get(i + 1) {
                    out.push(next);
                    i += 2;
                } else {
                    return Err(PkiError::InvalidSubject(format!(
                        "`{raw}` ends with a lone backslash"
                    )));
                }
                keep = out.len();
            }
            b' ' if out.is_empty() => i += 1,
            b => {
                out.push(b);
                i += 1;
                if b != b' ' {
                    keep = out.len();
                }
            }
        }
    }
    out.truncate(keep);
    String::from_utf8(out)
        .map_err(|_| PkiError::InvalidSubject(format!("`{raw}` is not valid UTF-8 once unescaped")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;

    #[test]
    fn parses_escapes_and_orders_rdns() {
        let name = parse_dn(r"CN=Doe\, Jane,UID=jdoe,OU=R\2BD,O=Example Ltd").unwrap();
        assert_eq!(name.0.len(), 4);
        assert_eq!(name.0[0].0.get(0).unwrap().oid, rfc4519::O);
        assert_eq!(name.0[3].0.get(0).unwrap().oid, rfc4519::CN);
        assert_eq!(name.0[3].0.get(0).unwrap().value.value(), b"Doe, Jane");
        assert_eq!(name.0[1].0.get(0).unwrap().value.value(), b"R+D");
        assert_eq!(
            format_name(&name),
            r"CN=Doe\, Jane,UID=jdoe,OU=R\+D,O=Example Ltd"
        );
        let der = name.to_der().unwrap();
        assert_eq!(Name::from_der(&der).unwrap(), name);
    }

    #[test]
    fn trims_spaces_skips_empty_values_and_rejects_garbage() {
        let name = parse_dn(r" CN = Jane ,UID=,O=\ x\ ").unwrap();
        assert_eq!(format_name(&name), r"CN=Jane,O=\ x\ ");
        assert!(parse_dn("CN=a,nonsense").is_err());
        assert!(parse_dn("XX=a").is_err());
        assert!(parse_dn("C=Germany").is_err());
        assert!(parse_dn(r"CN=a\").is_err());
        assert!(parse_dn("").unwrap().0.is_empty());
        let multi = parse_dn("CN=a+UID=b,O=c").unwrap();
        assert_eq!(multi.0[1].0.len(), 2);
        let oid = parse_dn("2.5.4.3=x,C=DE").unwrap();
        assert_eq!(format_name(&oid), "CN=x,C=DE");
        assert_eq!(oid.0[0].0.get(0).unwrap().value.tag(), Tag::PrintableString);
    }

    #[test]
    fn escape_round_trips() {
        for v in [
            "#1 a,b+c",
            " lead",
            "trail ",
            r"back\slash",
            "quote\"d",
            "semi;<>",
        ] {
            let name = parse_dn(&format!("CN={}", escape_dn_value(v))).unwrap();
            assert_eq!(
                name.0[0].0.get(0).unwrap().value.value(),
                v.as_bytes(),
                "{v}"
            );
        }
    }
}

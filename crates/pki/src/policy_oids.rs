//! The certificatePolicies of Tessera's certificates (RFC 5280 4.2.1.4; the PIV-I and Common
//! Policy profiles make the extension mandatory). A device policy may name the OIDs of each slot
//! (for instance the FBCA PIV-I OIDs an organisation is cross-certified for); without them every
//! certificate asserts the organisation's own policy for its slot.
//!
//! The organisation's own arc needs no registration: it is a UUID OID (ITU-T X.667, `2.25.<UUID
//! as an integer>`) whose UUID is derived from the root CA's key identifier, so it is the same on
//! every replica and after every restart, and differs between organisations. Below it, `.1.<n>`
//! names one policy per use: 1 PIV Authentication (9A), 2 Digital Signature (9C), 3 Key
//! Management (9D), 4 Card Authentication (9E), 5 content signing. `docs/pki.md` lists them.
//!
//! A UUID arc is larger than 32 bits, which `const-oid` cannot hold, so OIDs are encoded here
//! (X.690 8.19) and the extension is written as DER directly.

use crate::error::PkiError;
use sha2::{Digest, Sha256};
use tessera_core::model::Slot;
use x509_cert::ext::Extension;

/// id-ce-certificatePolicies.
const CERTIFICATE_POLICIES: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.32");

/// What a certificate is for, which picks its policy below the organisation's arc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyUse {
    Slot(Slot),
    ContentSigning,
}

impl PolicyUse {
    pub const ALL: [PolicyUse; 5] = [
        Self::Slot(Slot::PivAuthentication),
        Self::Slot(Slot::DigitalSignature),
        Self::Slot(Slot::KeyManagement),
        Self::Slot(Slot::CardAuthentication),
        Self::ContentSigning,
    ];

    /// What the policy covers, for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Slot(Slot::PivAuthentication) => "9A PIV Authentication",
            Self::Slot(Slot::DigitalSignature) => "9C Digital Signature",
            Self::Slot(Slot::KeyManagement) => "9D Key Management",
            Self::Slot(Slot::CardAuthentication) => "9E Card Authentication",
            Self::ContentSigning => "Content signer",
        }
    }

    fn number(self) -> u8 {
        match self {
            Self::Slot(Slot::PivAuthentication) => 1,
            Self::Slot(Slot::DigitalSignature) => 2,
            Self::Slot(Slot::KeyManagement) => 3,
            Self::Slot(Slot::CardAuthentication) => 4,
            Self::ContentSigning => 5,
        }
    }
}

/// The organisation's arc, `2.25.<n>`, from the root CA's key identifier: the first 16 bytes of
/// its SHA-256 with the version (8, RFC 9562 custom) and variant bits of a UUID set.
pub fn organisation_arc(root_key_identifier: &[u8]) -> String {
    let digest = Sha256::digest(root_key_identifier);
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&digest[..16]);
    uuid[6] = (uuid[6] & 0x0F) | 0x80;
    uuid[8] = (uuid[8] & 0x3F) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(uuid))
}

/// The organisation's default policy OID for `usage`.
pub fn default_policy(arc: &str, usage: PolicyUse) -> String {
    format!("{arc}.1.{}", usage.number())
}

/// The DER of an OBJECT IDENTIFIER (tag, length, value) from its dotted form; arcs up to 128
/// bits, as UUID OIDs need.
pub fn oid_der(dotted: &str) -> Result<Vec<u8>, PkiError> {
    let bad = || PkiError::InvalidPolicy(format!("`{dotted}` is not an object identifier"));
    let arcs: Vec<u128> = dotted
        .trim()
        .split('.')
        .map(|a| {
            // No sign, no leading zeros (X.660: arcs are written in canonical decimal).
            if a.is_empty()
                || !a.bytes().all(|b| b.is_ascii_digit())
                || (a.len() > 1 && a.starts_with('0'))
            {
                return Err(bad());
            }
            a.parse::<u128>().map_err(|_| bad())
        })
        .collect::<Result<_, _>>()?;
    let (first, second) = match arcs.as_slice() {
        [first @ 0..=1, second @ 0..=39, ..] | [first @ 2, second, ..] => (*first, *second),
        _ => return Err(bad()),
    };
    let mut value: Vec<u8> = Vec::new();
    let head = first
        .checked_mul(40)
        .and_then(|h| h.checked_add(second))
        .ok_or_else(bad)?;
    for arc in std::iter::once(head).chain(arcs[2..].iter().copied()) {
        let mut groups = vec![(arc & 0x7F) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push(((rest & 0x7F) as u8) | 0x80);
            rest >>= 7;
        }
        value.extend(groups.iter().rev());
    }
    if value.len() > 127 {
        return Err(bad());
    }
    let mut der = vec![0x06, value.len() as u8];
    der.extend(value);
    Ok(der)
}

/// A certificatePolicies extension (non-critical, as the PIV-I and Common Policy profiles have
/// it) asserting `oids`, without qualifiers.
pub(crate) fn certificate_policies(oids: &[String]) -> Result<Extension, PkiError> {
    let mut seen = Vec::new();
    let mut body = Vec::new();
    for oid in oids {
        let der = oid_der(oid)?;
        if seen.contains(&der) {
            continue;
        }
        // PolicyInformation ::= SEQUENCE { policyIdentifier CertPolicyId, ... }
        body.extend(tlv(0x30, &der));
        seen.push(der);
    }
    if seen.is_empty() {
        return Err(PkiError::InvalidPolicy("no policy OID to assert".into()));
    }
    Ok(Extension {
        extn_id: CERTIFICATE_POLICIES,
        critical: false,
        extn_value: der::asn1::OctetString::new(tlv(0x30, &body))?,
    })
}

/// A DER TLV with a definite length.
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend(&bytes[skip..]);
    }
    out.extend(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_encode_as_x690_says() {
        // id-fpki-common-authentication (2.16.840.1.101.3.2.1.3.13).
        assert_eq!(
            oid_der("2.16.840.1.101.3.2.1.3.13").unwrap(),
            [0x06, 0x0A, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x02, 0x01, 0x03, 0x0D]
        );
        // X.667's example UUID OID (checked with `openssl asn1parse -genconf`).
        assert_eq!(
            oid_der("2.25.329800735698586629295641978511506172918").unwrap(),
            [
                0x06, 0x14, 0x69, 0x83, 0xF0, 0x9D, 0xA7, 0xEB, 0xCF, 0xDE, 0xE0, 0xC7, 0xA1, 0xA7,
                0xB2, 0xC0, 0x94, 0x8C, 0xC8, 0xF9, 0xD7, 0x76
            ][..]
        );
        for bad in ["", "1", "3.1", "1.40", "2.16.01", "2.x", "2..1", "-1.2"] {
            assert!(oid_der(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_organisation_arc_is_a_uuid_oid_and_stable() {
        let arc = organisation_arc(&[1, 2, 3]);
        assert_eq!(arc, organisation_arc(&[1, 2, 3]));
        assert_ne!(arc, organisation_arc(&[1, 2, 4]));
        let n: u128 = arc.strip_prefix("2.25.").unwrap().parse().unwrap();
        assert_eq!((n >> 76) & 0xF, 8, "UUID version 8");
        assert_eq!((n >> 62) & 0x3, 2, "RFC 9562 variant");
        assert_eq!(
            default_policy(&arc, PolicyUse::Slot(Slot::CardAuthentication)),
            format!("{arc}.1.4")
        );
        assert!(oid_der(&default_policy(&arc, PolicyUse::ContentSigning)).is_ok());
    }
}

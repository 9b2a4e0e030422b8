//! The Card Holder Unique Identifier (5FC102; SP 800-73-4 part 1, 3.1.2 and appendix A, table 9):
//! FASC-N (30), GUID (34, the card's UUID), expiration date (35, `YYYYMMDD`), the optional
//! Cardholder UUID (36), the issuer asymmetric signature (3E) and the error detection code (FE,
//! always empty: SP 800-73-4 makes no use of it).
//!
//! The issuer asymmetric signature (3.1.2.1) is a CMS SignedData, content detached, content type
//! id-PIV-CHUIDSecurityObject, with the content signing certificate in `certificates`. Its
//! message digest covers the data elements that precede the signature, exactly as they are
//! written: the TLVs 30, 34, 35 (and 36), without 3E and FE. That is what pivy signs and checks
//! (`piv_chuid_tbs` in its `piv-chuid.c`). (GSA's piv-conformance appends `FE 00` to what it
//! hashes; no text of SP 800-73-4 or TIG SCEPACS puts the error detection code under the
//! signature, and the code is not data.)

use super::ObjectError;
use crate::tlv;
use tessera_core::fips201::{ContentSigner, ContentToSign, SignedContentType};

pub const FASC_N: u32 = 0x30;
pub const GUID: u32 = 0x34;
pub const EXPIRATION_DATE: u32 = 0x35;
pub const CARDHOLDER_UUID: u32 = 0x36;
pub const ISSUER_SIGNATURE: u32 = 0x3E;
pub const ERROR_DETECTION_CODE: u32 = 0xFE;

const OBJECT: &str = "CHUID";

/// The data elements of a CHUID, before it is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chuid {
    pub fasc_n: [u8; 25],
    pub guid: [u8; 16],
    /// `YYYYMMDD`, the date printed on the card.
    pub expires: String,
    /// The Cardholder UUID (tag 36), optional.
    pub cardholder_uuid: Option<[u8; 16]>,
}

impl Chuid {
    /// The bytes the issuer signs: the TLVs that precede the signature, in the order of table 9.
    pub fn signed_content(&self) -> Result<Vec<u8>, ObjectError> {
        if self.expires.len() != 8 || !self.expires.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ObjectError::new(
                OBJECT,
                format!(
                    "the expiration date {:?} is not eight digits YYYYMMDD",
                    self.expires
                ),
            ));
        }
        let mut out = tlv::encode(FASC_N, &self.fasc_n);
        tlv::push(&mut out, GUID, &self.guid);
        tlv::push(&mut out, EXPIRATION_DATE, self.expires.as_bytes());
        if let Some(uuid) = &self.cardholder_uuid {
            tlv::push(&mut out, CARDHOLDER_UUID, uuid);
        }
        Ok(out)
    }

    /// The value of the CHUID object (the content of tag 53), signed by `signer`.
    pub fn signed(&self, signer: &dyn ContentSigner) -> Result<Vec<u8>, ObjectError> {
        let content = self.signed_content()?;
        let signature = signer
            .sign(&ContentToSign {
                content_type: SignedContentType::Chuid,
                content: &content,
                fasc_n: None,
                uuid: None,
                // SP 800-73-4 part 1, 3.1.2.1: the certificate is in the CHUID's signature.
                include_certificate: true,
            })
            .map_err(|e| ObjectError::signing(OBJECT, e))?;
        Ok(assemble(content, &signature))
    }
}

/// The signed content followed by the signature (3E) and the empty error detection code (FE).
fn assemble(mut content: Vec<u8>, signature: &[u8]) -> Vec<u8> {
    tlv::push(&mut content, ISSUER_SIGNATURE, signature);
    tlv::push(&mut content, ERROR_DETECTION_CODE, &[]);
    content
}

/// A CHUID read back from a card, borrowed from its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedChuid<'a> {
    pub fasc_n: Option<&'a [u8]>,
    pub guid: Option<&'a [u8]>,
    pub expires: Option<&'a [u8]>,
    pub cardholder_uuid: Option<&'a [u8]>,
    /// The value of 3E: a DER ContentInfo, or empty for an unsigned CHUID.
    pub signature: &'a [u8],
    /// The bytes before the signature element: what its message digest covers.
    pub signed_content: &'a [u8],
    /// The tags in the order they appear.
    pub tags: Vec<u32>,
}

/// Reads a CHUID value (the content of tag 53).
pub fn parse(value: &[u8]) -> Result<ParsedChuid<'_>, ObjectError> {
    let elements = tlv::parse_all(value).map_err(|e| ObjectError::new(OBJECT, e.to_string()))?;
    let find = |tag: u32| elements.iter().find(|t| t.tag == tag).map(|t| t.value);
    // The signed content ends where the signature's tag starts.
    let mut offset = 0;
    let mut signed_end = None;
    for t in &elements {
        if t.tag == ISSUER_SIGNATURE {
            signed_end = Some(offset);
        }
        let mut header = Vec::new();
        tlv::push_tag(&mut header, t.tag);
        tlv::push_length(&mut header, t.value.len());
        offset += header.len() + t.value.len();
    }
    let signed_end =
        signed_end.ok_or_else(|| ObjectError::new(OBJECT, "it has no issuer signature (3E)"))?;
    Ok(ParsedChuid {
        fasc_n: find(FASC_N),
        guid: find(GUID),
        expires: find(EXPIRATION_DATE),
        cardholder_uuid: find(CARDHOLDER_UUID),
        signature: find(ISSUER_SIGNATURE).unwrap_or_default(),
        signed_content: &value[..signed_end],
        tags: elements.iter().map(|t| t.tag).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_objects::test_signer::RecordingSigner;
    use tessera_core::fips201::FascN;

    fn chuid() -> Chuid {
        Chuid {
            fasc_n: FascN::non_federal().encode().unwrap(),
            guid: [0x11; 16],
            expires: "20301231".into(),
            cardholder_uuid: None,
        }
    }

    #[test]
    fn signed_chuid_layout_and_signed_bytes() {
        let signer = RecordingSigner::new();
        let value = chuid().signed(&signer).unwrap();

        // The signature covers exactly 30 19 <FASC-N> 34 10 <GUID> 35 08 "20301231".
        let mut expected = vec![0x30, 0x19];
        expected.extend_from_slice(&FascN::non_federal().encode().unwrap());
        expected.extend_from_slice(&[0x34, 0x10]);
        expected.extend_from_slice(&[0x11; 16]);
        expected.extend_from_slice(b"\x35\x0820301231");
        let requests = signer.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].content, expected);
        assert_eq!(requests[0].content_type, SignedContentType::Chuid);
        assert!(requests[0].include_certificate);
        assert_eq!((requests[0].fasc_n, requests[0].uuid), (None, None));

        // Then the signature the signer returned, then FE 00.
        let signature = signer.signature_for(&expected);
        assert_eq!(value[..expected.len()], expected[..]);
        let rest = &value[expected.len()..];
        assert_eq!(rest[0], 0x3E);
        assert_eq!(&rest[rest.len() - 2..], [0xFE, 0x00]);

        let parsed = parse(&value).unwrap();
        assert_eq!(parsed.tags, [0x30, 0x34, 0x35, 0x3E, 0xFE]);
        assert_eq!(parsed.signed_content, expected);
        assert_eq!(parsed.signature, signature);
        assert_eq!(parsed.guid, Some(&[0x11u8; 16][..]));
        assert_eq!(parsed.expires, Some(&b"20301231"[..]));
    }

    #[test]
    fn cardholder_uuid_is_signed_too() {
        let signer = RecordingSigner::new();
        let mut c = chuid();
        c.cardholder_uuid = Some([0x22; 16]);
        let value = c.signed(&signer).unwrap();
        let parsed = parse(&value).unwrap();
        assert_eq!(parsed.tags, [0x30, 0x34, 0x35, 0x36, 0x3E, 0xFE]);
        assert!(signer.requests()[0].content.ends_with(&[0x22; 16]));
    }

    #[test]
    fn a_bad_expiry_is_refused_before_signing() {
        let signer = RecordingSigner::new();
        let mut c = chuid();
        c.expires = "2030-12-31".into();
        assert!(c.signed(&signer).is_err());
        assert!(signer.requests().is_empty());
    }

    #[test]
    fn a_signer_failure_is_reported() {
        let err = chuid().signed(&RecordingSigner::failing()).unwrap_err();
        assert!(err.to_string().contains("sign"), "{err}");
    }

    #[test]
    fn an_unsigned_chuid_parses_with_an_empty_signature() {
        let mut value = chuid().signed_content().unwrap();
        let len = value.len();
        value.extend_from_slice(&[0x3E, 0x00, 0xFE, 0x00]);
        let parsed = parse(&value).unwrap();
        assert!(parsed.signature.is_empty());
        assert_eq!(parsed.signed_content.len(), len);
        assert!(parse(&value[..len]).is_err());
    }
}

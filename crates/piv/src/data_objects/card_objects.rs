//! Every data object a [`CardObjects`] asks for, encoded and signed, in the order they are
//! written: CHUID, CCC, printed information, facial image, fingerprints, and last the Security
//! Object, which holds the hashes of all the others as they were encoded.
//!
//! Each value is checked against its container's size in SP 800-73-4 (appendix A), so that a
//! card that holds no more than the standard guarantees takes every object Tessera writes.

use super::{cbeff, ccc, chuid, facial, fingerprints, printed, security_object, ObjectError};
use crate::card::objects;
use tessera_core::fips201::{CardObjects, ContentSigner, WrittenObject};

/// One object ready for PUT DATA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedObject {
    pub name: &'static str,
    pub tag: u32,
    /// The content of tag 53.
    pub value: Vec<u8>,
    pub signed: bool,
}

impl EncodedObject {
    /// What the audit records of it.
    pub fn written(&self) -> WrittenObject {
        WrittenObject {
            name: self.name.into(),
            tag: format!("{:06X}", self.tag),
            length: self.value.len(),
            signed: self.signed,
        }
    }
}

/// Encodes and signs the objects `objects` asks for.
pub fn encode(
    objects: &CardObjects,
    signer: &dyn ContentSigner,
) -> Result<Vec<EncodedObject>, ObjectError> {
    let mut out = Vec::new();
    if objects.chuid {
        let value = chuid::Chuid {
            fasc_n: objects.fasc_n,
            guid: objects.guid,
            expires: objects.expires.clone(),
            cardholder_uuid: None,
        }
        .signed(signer)?;
        out.push(object("chuid", objects::CHUID, value, true)?);
    }
    if objects.ccc {
        let mut card_id = [0u8; 14];
        card_id.copy_from_slice(&objects.guid[..14]);
        out.push(object("ccc", objects::CCC, ccc::ccc(card_id), false)?);
    }
    if let Some(info) = &objects.printed_information {
        let value = printed::printed_information(info);
        out.push(object(
            "printed_information",
            objects::PRINTED_INFORMATION,
            value,
            false,
        )?);
    }
    // Both biometric records are signed by the same key with the same attributes: the second one
    // starts from the signature length of the first.
    let mut sb_len_guess = 0;
    if let Some(image) = &objects.facial_image {
        let value = facial::object(image, objects, signer, &mut sb_len_guess)?;
        out.push(object("facial_image", objects::FACIAL_IMAGE, value, true)?);
    }
    if let Some(prints) = &objects.fingerprints {
        let value = fingerprints::object(prints, objects, signer, &mut sb_len_guess)?;
        out.push(object("fingerprints", objects::FINGERPRINTS, value, true)?);
    }
    if objects.security_object {
        let covered: Vec<(u32, &[u8])> = out.iter().map(|o| (o.tag, o.value.as_slice())).collect();
        let value = security_object::object(&covered, signer)?;
        out.push(object(
            "security_object",
            objects::SECURITY_OBJECT,
            value,
            true,
        )?);
    }
    Ok(out)
}

fn object(
    name: &'static str,
    tag: u32,
    value: Vec<u8>,
    signed: bool,
) -> Result<EncodedObject, ObjectError> {
    if let Some(size) = objects::container_size(tag) {
        if value.len() > size {
            return Err(ObjectError::new(
                display_name(tag),
                format!(
                    "it is {} bytes, more than the {size} bytes of its container (SP 800-73-4)",
                    value.len()
                ),
            ));
        }
    }
    Ok(EncodedObject {
        name,
        tag,
        value,
        signed,
    })
}

fn display_name(tag: u32) -> &'static str {
    match tag {
        objects::CHUID => "CHUID",
        objects::CCC => "Card Capability Container",
        objects::PRINTED_INFORMATION => "printed information",
        objects::FACIAL_IMAGE => cbeff::Modality::FacialImage.object_name(),
        objects::FINGERPRINTS => cbeff::Modality::FingerMinutiae.object_name(),
        _ => "Security Object",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data_objects::cbeff::tests::card_objects;
    use crate::data_objects::fingerprints::tests::record;
    use crate::data_objects::test_signer::RecordingSigner;
    use crate::tlv;
    use tessera_core::fips201::{FacialImage, Fingerprints, SignedContentType};
    use tessera_core::ports::PrintedInformation;

    pub(crate) fn portrait(len: usize) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        j.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 8, 0x02, 0x30, 0x01, 0xA4, 3]);
        j.extend_from_slice(&[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02]);
        while j.len() < len - 2 {
            j.push((j.len() % 251) as u8 & 0x7F);
        }
        j.extend_from_slice(&[0xFF, 0xD9]);
        j
    }

    fn everything() -> CardObjects {
        CardObjects {
            ccc: true,
            printed_information: Some(PrintedInformation {
                name: "Jane Doe".into(),
                expiration_date: "2030DEC31".into(),
                ..Default::default()
            }),
            facial_image: Some(FacialImage {
                jpeg: portrait(9_000),
            }),
            fingerprints: Some(Fingerprints {
                incits_378: record(80, 60),
                synthetic: true,
            }),
            security_object: true,
            ..card_objects()
        }
    }

    #[test]
    fn every_object_in_order_and_the_security_object_over_them() {
        let signer = RecordingSigner::new();
        let encoded = encode(&everything(), &signer).unwrap();
        let written: Vec<_> = encoded.iter().map(EncodedObject::written).collect();
        let names: Vec<_> = written
            .iter()
            .map(|w| (w.name.as_str(), w.signed))
            .collect();
        assert_eq!(
            names,
            [
                ("chuid", true),
                ("ccc", false),
                ("printed_information", false),
                ("facial_image", true),
                ("fingerprints", true),
                ("security_object", true)
            ]
        );
        assert_eq!(written[3].tag, "5FC108");
        assert_eq!(written[3].length, encoded[3].value.len());

        // The LDS security object hashes the five values as encoded, DG 1 to 5.
        let so = &encoded[5].value;
        let mapping = security_object::parse_mapping(tlv::find(so, 0xBA).unwrap()).unwrap();
        assert_eq!(
            mapping,
            [
                (1, 0x3000),
                (2, 0xDB00),
                (3, 0x3001),
                (4, 0x6030),
                (5, 0x6010)
            ]
        );
        let hashes: Vec<(u8, [u8; 32])> = encoded[..5]
            .iter()
            .enumerate()
            .map(|(i, o)| (i as u8 + 1, security_object::hash(&o.value)))
            .collect();
        let requests = signer.requests();
        let last = requests.last().unwrap();
        assert_eq!(last.content_type, SignedContentType::SecurityObject);
        assert_eq!(last.content, security_object::lds_security_object(&hashes));

        // CHUID once, facial image twice (its SB length was unknown), fingerprints once (it
        // was), the Security Object once.
        let kinds: Vec<_> = requests.iter().map(|r| r.content_type).collect();
        use SignedContentType::*;
        assert_eq!(
            kinds,
            [Chuid, Biometric, Biometric, Biometric, SecurityObject]
        );
    }

    #[test]
    fn only_what_is_asked_for() {
        let signer = RecordingSigner::new();
        let objects = CardObjects {
            chuid: false,
            ..card_objects()
        };
        assert!(encode(&objects, &signer).unwrap().is_empty());
        assert!(signer.requests().is_empty());
    }

    #[test]
    fn an_object_larger_than_its_container_is_refused() {
        let signer = RecordingSigner::new();
        let objects = CardObjects {
            facial_image: Some(FacialImage {
                jpeg: portrait(12_600),
            }),
            ..card_objects()
        };
        let err = encode(&objects, &signer).unwrap_err();
        assert_eq!(err.object, "facial image");
        assert!(err.detail.contains("12710"), "{err}");
    }

    #[test]
    fn a_signing_failure_stops_everything() {
        let err = encode(&everything(), &RecordingSigner::failing()).unwrap_err();
        assert_eq!(err.object, "CHUID");
    }
}

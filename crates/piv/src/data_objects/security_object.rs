//! The Security Object (5FC106; SP 800-73-4 part 1, 3.1.6 and appendix A): BA, the mapping of
//! data group numbers to container IDs; BB, a CMS SignedData whose encapsulated content is an
//! ICAO 9303 LDS security object (ICAO Doc 9303 part 10, 4.6.2.3) with a hash of every object
//! the mapping names; FE, the empty error detection code.
//!
//! What is hashed: for each object, the whole data object as GET DATA returns it, tag 53 and its
//! length included (`53 LL 30 ... 3E ... FE 00` for the CHUID). SP 800-73-4 calls the hashed
//! objects the "data groups" of the mapping, and an ICAO LDS data group hash covers the whole
//! data group file, its own tag included; GSA's piv-conformance checker
//! (`SecurityObject.verifyHashes`) hashes the bytes its GET DATA returned, template included, and
//! `tessera card check` does the same. The hash is SHA-256 (SP 800-78-4), the algorithm named in
//! the LDS security object.
//!
//! The data group numbers are given in the order the objects are written, from 1; SP 800-73-4
//! leaves the numbering to the issuer and asks only that BA and the hashes agree. BB is signed by
//! the content signing key that signs the CHUID, without its certificate, which is in the CHUID.

use super::ObjectError;
use crate::card::objects;
use crate::tlv;
use sha2::{Digest, Sha256};
use tessera_core::fips201::{ContentSigner, ContentToSign, SignedContentType};

pub const TAG_MAPPING: u32 = 0xBA;
pub const TAG_SECURITY_OBJECT: u32 = 0xBB;
pub const TAG_ERROR_DETECTION_CODE: u32 = 0xFE;
/// id-sha256 (2.16.840.1.101.3.4.2.1), DER.
const SHA256_OID: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// ICAO 9303 allows data groups 1 to 16.
pub const MAX_DATA_GROUPS: usize = 16;

const OBJECT: &str = "Security Object";

/// The ContainerID of a PIV data object (SP 800-73-4 part 1, table 2), the 2 bytes BA names it by.
pub fn container_id(tag: u32) -> Option<u16> {
    Some(match tag {
        objects::CCC => 0xDB00,
        objects::CHUID => 0x3000,
        objects::PIV_AUTH_CERT => 0x0101,
        objects::FINGERPRINTS => 0x6010,
        objects::SECURITY_OBJECT => 0x9000,
        objects::FACIAL_IMAGE => 0x6030,
        objects::CARD_AUTH_CERT => 0x0500,
        objects::SIGNATURE_CERT => 0x0100,
        objects::KEY_MANAGEMENT_CERT => 0x0102,
        objects::PRINTED_INFORMATION => 0x3001,
        objects::DISCOVERY => 0x6050,
        objects::KEY_HISTORY => 0x6060,
        // Retired key management certificates 1 to 20 (5FC10D..5FC120): 1001..1014.
        0x5FC10D..=0x5FC120 => 0x1001 + (tag - 0x5FC10D) as u16,
        objects::IRIS_IMAGES => 0x1015,
        objects::BIOMETRIC_GROUP_TEMPLATE => 0x1016,
        objects::SM_CERT_SIGNER => 0x1017,
        objects::PAIRING_CODE => 0x1018,
        _ => return None,
    })
}

/// The hash the LDS security object carries for an object written with `value` (the content of
/// its tag 53): over the whole data object, `53 LL value`.
pub fn hash(value: &[u8]) -> [u8; 32] {
    Sha256::digest(tlv::encode(0x53, value)).into()
}

/// The DER LDSSecurityObject (version v0, SHA-256) over `(data group, hash)` pairs:
///
/// ```text
/// LDSSecurityObject ::= SEQUENCE {
///     version LDSSecurityObjectVersion,          -- v0
///     hashAlgorithm DigestAlgorithmIdentifier,    -- id-sha256, parameters absent
///     dataGroupHashValues SEQUENCE SIZE (2..ub-DataGroups) OF DataGroupHash }
/// DataGroupHash ::= SEQUENCE { dataGroupNumber INTEGER, dataGroupHashValue OCTET STRING }
/// ```
pub fn lds_security_object(hashes: &[(u8, [u8; 32])]) -> Vec<u8> {
    let mut groups = Vec::new();
    for (number, digest) in hashes {
        let mut group = tlv::encode(0x02, &[*number]);
        tlv::push(&mut group, 0x04, digest);
        tlv::push(&mut groups, 0x30, &group);
    }
    let mut body = tlv::encode(0x02, &[0x00]);
    tlv::push(&mut body, 0x30, &tlv::encode(0x06, &SHA256_OID));
    tlv::push(&mut body, 0x30, &groups);
    tlv::encode(0x30, &body)
}

/// The value of the Security Object over `written`: the tag and value of every object written to
/// the card, in the order written.
pub fn object(
    written: &[(u32, &[u8])],
    signer: &dyn ContentSigner,
) -> Result<Vec<u8>, ObjectError> {
    // ICAO's dataGroupHashValues needs two groups at least and allows sixteen at most.
    if !(2..=MAX_DATA_GROUPS).contains(&written.len()) {
        return Err(ObjectError::new(
            OBJECT,
            format!(
                "it covers 2 to {MAX_DATA_GROUPS} objects, and {} were written",
                written.len()
            ),
        ));
    }
    let mut mapping = Vec::new();
    let mut hashes = Vec::new();
    for (i, (tag, value)) in written.iter().enumerate() {
        let id = container_id(*tag).ok_or_else(|| {
            ObjectError::new(OBJECT, format!("object {tag:06X} has no PIV container ID"))
        })?;
        let number = i as u8 + 1;
        mapping.push(number);
        mapping.extend_from_slice(&id.to_be_bytes());
        hashes.push((number, hash(value)));
    }
    let lds = lds_security_object(&hashes);
    let signed = signer
        .sign(&ContentToSign {
            content_type: SignedContentType::SecurityObject,
            content: &lds,
            fasc_n: None,
            uuid: None,
            include_certificate: false,
        })
        .map_err(|e| ObjectError::signing(OBJECT, e))?;
    let mut out = tlv::encode(TAG_MAPPING, &mapping);
    tlv::push(&mut out, TAG_SECURITY_OBJECT, &signed);
    tlv::push(&mut out, TAG_ERROR_DETECTION_CODE, &[]);
    Ok(out)
}

/// The `(data group, container ID)` pairs of a BA mapping; `None` if it is not whole triples.
pub fn parse_mapping(mapping: &[u8]) -> Option<Vec<(u8, u16)>> {
    if !mapping.len().is_multiple_of(3) {
        return None;
    }
    Some(
        mapping
            .chunks(3)
            .map(|c| (c[0], u16::from_be_bytes([c[1], c[2]])))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_objects::test_signer::RecordingSigner;

    #[test]
    fn container_ids_of_table_2() {
        assert_eq!(container_id(objects::CHUID), Some(0x3000));
        assert_eq!(container_id(objects::FACIAL_IMAGE), Some(0x6030));
        assert_eq!(container_id(objects::FINGERPRINTS), Some(0x6010));
        assert_eq!(container_id(objects::PRINTED_INFORMATION), Some(0x3001));
        assert_eq!(container_id(objects::CCC), Some(0xDB00));
        assert_eq!(container_id(0x5FC10D), Some(0x1001));
        assert_eq!(container_id(0x5FC120), Some(0x1014));
        assert_eq!(container_id(objects::ATTESTATION_CERT), None);
    }

    #[test]
    fn lds_security_object_der() {
        let der = lds_security_object(&[(1, [0xAA; 32]), (2, [0xBB; 32])]);
        let mut expected = vec![0x30, 0x60, 0x02, 0x01, 0x00];
        expected.extend_from_slice(&[0x30, 0x0B, 0x06, 0x09]);
        expected.extend_from_slice(&SHA256_OID);
        expected.extend_from_slice(&[0x30, 0x4E]);
        for (n, b) in [(1u8, 0xAAu8), (2, 0xBB)] {
            expected.extend_from_slice(&[0x30, 0x25, 0x02, 0x01, n, 0x04, 0x20]);
            expected.extend_from_slice(&[b; 32]);
        }
        assert_eq!(der, expected);
    }

    #[test]
    fn mapping_hashes_and_signature() {
        let signer = RecordingSigner::new();
        let chuid = b"\x30\x01\x00\x3E\x00\xFE\x00".to_vec();
        let face = b"\xBC\x02\x01\x02\xFE\x00".to_vec();
        let value = object(
            &[(objects::CHUID, &chuid), (objects::FACIAL_IMAGE, &face)],
            &signer,
        )
        .unwrap();
        let fields = tlv::parse_all(&value).unwrap();
        assert_eq!(
            fields.iter().map(|t| t.tag).collect::<Vec<_>>(),
            [0xBA, 0xBB, 0xFE]
        );
        assert_eq!(fields[0].value, [1, 0x30, 0x00, 2, 0x60, 0x30]);
        assert_eq!(
            parse_mapping(fields[0].value).unwrap(),
            [(1, 0x3000), (2, 0x6030)]
        );
        let request = signer.requests().pop().unwrap();
        assert_eq!(request.content_type, SignedContentType::SecurityObject);
        assert!(!request.include_certificate);
        assert_eq!(
            request.content,
            lds_security_object(&[
                (1, Sha256::digest(tlv::encode(0x53, &chuid)).into()),
                (2, Sha256::digest(tlv::encode(0x53, &face)).into())
            ])
        );
        assert_eq!(fields[1].value, signer.signature_for(&request.content));
        assert!(fields[2].value.is_empty());
    }

    #[test]
    fn too_few_or_unknown_objects_are_refused() {
        let signer = RecordingSigner::new();
        assert!(object(&[(objects::CHUID, b"x")], &signer).is_err());
        assert!(object(&[(objects::CHUID, b"x"), (0x5FFF01, b"y")], &signer).is_err());
        assert!(signer.requests().is_empty());
        assert_eq!(parse_mapping(&[1, 2]), None);
    }
}

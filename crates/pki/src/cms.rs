//! CMS `SignedData` (RFC 5652) as the PIV data model asks for it: the CHUID's issuer asymmetric
//! signature (SP 800-73-4 part 1, 3.1.2.1), the CBEFF signature block of the biometrics
//! (SP 800-76-2, 9.2.3) and the Security Object's LDS security object (SP 800-73-4 part 1, 3.1.6,
//! ICAO 9303 part 10). One `SignerInfo` identified by issuer and serial number, signed attributes
//! contentType, messageDigest and pivSigner-DN (plus pivFASC-N and entryUUID for biometrics), the
//! digest of SP 800-78-4 for the key (SHA-256, SHA-384 for P-384), and the signature made by a
//! [`CaKey`]. Also the certs-only `SignedData` (`.p7c`) that the caIssuers access method of the
//! PIV-I profiles points to.

use crate::error::PkiError;
use crate::keys::{CaKey, CaKeyAlgorithm};
use ::cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use ::cms::content_info::{CmsVersion, ContentInfo};
use ::cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use sha2::{Digest, Sha256, Sha384};
use spki::AlgorithmIdentifierOwned;
use tessera_core::fips201::{ContentToSign, SignedContentType};
use x509_cert::attr::Attribute;
use x509_cert::Certificate;

/// id-signedData (RFC 5652, 5.1).
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-data (RFC 5652, 4): the eContentType of a certs-only `SignedData`.
pub const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// id-contentType and id-messageDigest (RFC 5652, 11.1 and 11.2).
pub const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
pub const ID_MESSAGE_DIGEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// id-PIV-CHUIDSecurityObject (SP 800-73-4 part 1, 3.1.2.1).
pub const ID_PIV_CHUID_SECURITY_OBJECT: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.1");
/// id-PIV-biometricObject (SP 800-76-2, 9.2.3).
pub const ID_PIV_BIOMETRIC_OBJECT: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.2");
/// id-icao-ldsSecurityObject (ICAO 9303 part 10).
pub const ID_ICAO_LDS_SECURITY_OBJECT: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.23.136.1.1.1");
/// pivSigner-DN (SP 800-73-4 part 1, 3.1.2.1): the signer's subject name.
pub const ID_PIV_SIGNER_DN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.5");
/// pivFASC-N (SP 800-76-2, 9.2.3): the card's FASC-N, OCTET STRING.
pub const ID_PIV_FASC_N: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.6");
/// entryUUID (RFC 4530): the card's UUID, OCTET STRING (SIZE 16).
pub const ID_ENTRY_UUID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.1.16.4");
/// id-sha256 and id-sha384 (RFC 5754; parameters absent).
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");

/// The eContentType of each signed PIV object.
pub fn content_type_oid(content_type: SignedContentType) -> ObjectIdentifier {
    match content_type {
        SignedContentType::Chuid => ID_PIV_CHUID_SECURITY_OBJECT,
        SignedContentType::Biometric => ID_PIV_BIOMETRIC_OBJECT,
        SignedContentType::SecurityObject => ID_ICAO_LDS_SECURITY_OBJECT,
    }
}

/// The digest SP 800-78-4 (table 3-2) pairs with the signing key: SHA-384 for ECDSA P-384,
/// SHA-256 otherwise. It is also the hash the key signs with, so the SignerInfo's digest and
/// signature algorithms agree.
fn digest(algorithm: CaKeyAlgorithm, data: &[u8]) -> (ObjectIdentifier, Vec<u8>) {
    match algorithm {
        CaKeyAlgorithm::EcdsaP384Sha384 => (ID_SHA384, Sha384::digest(data).to_vec()),
        _ => (ID_SHA256, Sha256::digest(data).to_vec()),
    }
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, PkiError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value])?,
    })
}

/// Signs `request` with `key`, whose certificate is `certificate`, and returns the DER
/// `ContentInfo` holding the `SignedData`.
pub fn sign(
    key: &dyn CaKey,
    certificate: &Certificate,
    request: &ContentToSign<'_>,
) -> Result<Vec<u8>, PkiError> {
    let algorithm = key.algorithm();
    let content_type = content_type_oid(request.content_type);
    let (digest_oid, message_digest) = digest(algorithm, request.content);
    let digest_algorithm = AlgorithmIdentifierOwned {
        oid: digest_oid,
        parameters: None,
    };

    let tbs = &certificate.tbs_certificate;
    let mut attributes = vec![
        attribute(ID_CONTENT_TYPE, Any::encode_from(&content_type)?)?,
        attribute(
            ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(message_digest)?)?,
        )?,
        attribute(ID_PIV_SIGNER_DN, Any::encode_from(&tbs.subject)?)?,
    ];
    if let Some(fasc_n) = &request.fasc_n {
        attributes.push(attribute(
            ID_PIV_FASC_N,
            Any::encode_from(&OctetString::new(fasc_n.as_slice())?)?,
        )?);
    }
    if let Some(uuid) = &request.uuid {
        attributes.push(attribute(
            ID_ENTRY_UUID,
            Any::encode_from(&OctetString::new(uuid.as_slice())?)?,
        )?);
    }
    // DER orders a SET OF by the encodings of its elements; the signature covers that encoding
    // with the SET OF tag (RFC 5652, 5.4), which is also what goes into the SignerInfo under [0].
    let signed_attrs = SetOfVec::try_from(attributes)?;
    let signature = key.sign(&signed_attrs.to_der()?)?;

    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer.clone(),
            serial_number: tbs.serial_number.clone(),
        }),
        digest_alg: digest_algorithm.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: algorithm.signature_algorithm(),
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let econtent = match request.content_type {
        // The Security Object carries its LDS security object; the CHUID and the CBEFF
        // signature blocks sign the bytes around them, which stay outside (detached).
        SignedContentType::SecurityObject => {
            Some(Any::encode_from(&OctetString::new(request.content)?)?)
        }
        SignedContentType::Chuid | SignedContentType::Biometric => None,
    };
    let certificates = if request.include_certificate {
        Some(CertificateSet(SetOfVec::try_from(vec![
            CertificateChoices::Certificate(certificate.clone()),
        ])?))
    } else {
        None
    };
    let signed_data = SignedData {
        // RFC 5652, 5.1: version 3 because the eContentType is not id-data.
        version: CmsVersion::V3,
        digest_algorithms: SetOfVec::try_from(vec![digest_algorithm])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: content_type,
            econtent,
        },
        certificates,
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
    };
    content_info(&signed_data)
}

/// A certs-only `SignedData` ("degenerate", RFC 5652 5.1 and RFC 5280 4.2.2.1) holding the
/// certificates `ders`, DER: the `.p7c` that the caIssuers access method points to.
pub fn certs_only(ders: &[&[u8]]) -> Result<Vec<u8>, PkiError> {
    let mut certificates = Vec::with_capacity(ders.len());
    for der in ders {
        certificates.push(CertificateChoices::Certificate(Certificate::from_der(der)?));
    }
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(SetOfVec::try_from(certificates)?)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    content_info(&signed_data)
}

fn content_info(signed_data: &SignedData) -> Result<Vec<u8>, PkiError> {
    Ok(ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(signed_data)?,
    }
    .to_der()?)
}

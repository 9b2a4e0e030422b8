//! The CMS `SignedData` of a signed PIV object (RFC 5652, with the PIV rules of SP 800-73-4 part 1
//! and SP 800-76-2): one signer, signed attributes with content type and message digest (and the
//! PIV attributes pivSigner-DN, pivFASC-N, entryUUID), the signature verified with the signer's
//! certificate, included or (for the biometrics and the Security Object) the CHUID's.

use super::crypto::{DigestAlg, PublicKey, SHA1};
use super::report::ObjectReport;
use crate::tlv;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use x509_cert::Certificate;

pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
pub const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
pub const ID_MESSAGE_DIGEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// id-PIV-CHUIDSecurityObject.
pub const ID_PIV_CHUID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.1");
/// id-PIV-biometricObject.
pub const ID_PIV_BIOMETRIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.2");
/// pivSigner-DN.
pub const ID_PIV_SIGNER_DN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.5");
/// pivFASC-N.
pub const ID_PIV_FASCN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.6");
/// entryUUID (RFC 4530).
pub const ID_ENTRY_UUID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.1.16.4");
/// id-icao-ldsSecurityObject.
pub const ID_LDS_SECURITY_OBJECT: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.136.1.1.1");

/// What the caller expects of a signature.
pub struct Expect<'a> {
    /// The eContentType the standard names.
    pub content_type: ObjectIdentifier,
    /// The signed content for a detached signature; `None` when it is encapsulated (eContent).
    pub detached: Option<&'a [u8]>,
    /// The section cited in findings.
    pub reference: &'a str,
    /// The signer's certificate when the SignedData need not include it (the CHUID's).
    pub external_signer: Option<&'a Certificate>,
    /// The standard asks for the signer's certificate inside the SignedData (the CHUID).
    pub require_certificate: bool,
}

/// What a verified (or at least parsed) signature tells the rest of the check.
#[derive(Default)]
pub struct Signed {
    /// The signature verified with the signer's certificate over the expected content.
    pub verified: bool,
    /// The certificate that signed (found in the SignedData or given).
    pub signer: Option<Certificate>,
    /// eContent of an encapsulated signature.
    pub content: Option<Vec<u8>>,
    pub digest_alg: Option<DigestAlg>,
    pub fasc_n: Option<Vec<u8>>,
    pub uuid: Option<Vec<u8>>,
}

/// Checks a DER `ContentInfo` holding a `SignedData`, adding findings to `report`.
pub fn check(der_bytes: &[u8], expect: &Expect<'_>, report: &mut ObjectReport) -> Signed {
    let r = expect.reference;
    let mut out = Signed::default();
    let raw_attrs = match raw_signed_attributes(der_bytes) {
        Ok(raw) => raw,
        Err(e) => {
            report.error(
                "RFC 5652, 5.1",
                format!("the signature is not a CMS SignedData: {e}"),
            );
            return out;
        }
    };
    let info = match ContentInfo::from_der(der_bytes) {
        Ok(info) => info,
        Err(e) => {
            report.error(
                "RFC 5652, 3",
                format!("the signature is not a DER ContentInfo: {e}"),
            );
            return out;
        }
    };
    if info.content_type != ID_SIGNED_DATA {
        report.error(
            "RFC 5652, 5.1",
            format!(
                "the ContentInfo holds {}, not SignedData",
                info.content_type
            ),
        );
        return out;
    }
    let signed: SignedData = match info.content.decode_as() {
        Ok(s) => s,
        Err(e) => {
            report.error(
                "RFC 5652, 5.1",
                format!("the SignedData does not parse: {e}"),
            );
            return out;
        }
    };
    let econtent_type = signed.encap_content_info.econtent_type;
    if econtent_type != expect.content_type {
        report.error(
            r,
            format!(
                "the eContentType is {econtent_type}, not {}",
                expect.content_type
            ),
        );
    }
    let econtent = signed.encap_content_info.econtent.as_ref().map(|any| {
        any.decode_as::<OctetString>()
            .map(|o| o.as_bytes().to_vec())
    });
    let content: Vec<u8> = match (expect.detached, econtent) {
        (Some(detached), None) => detached.to_vec(),
        (Some(detached), Some(_)) => {
            report.error(
                r,
                "the signature must be detached, but it carries its content",
            );
            detached.to_vec()
        }
        (None, Some(Ok(bytes))) => {
            out.content = Some(bytes.clone());
            bytes
        }
        (None, Some(Err(e))) => {
            report.error(
                "RFC 5652, 5.2",
                format!("the eContent is not an OCTET STRING: {e}"),
            );
            return out;
        }
        (None, None) => {
            report.error(r, "the signature carries no eContent");
            return out;
        }
    };

    let signers: Vec<&SignerInfo> = signed.signer_infos.0.iter().collect();
    let [signer_info] = signers.as_slice() else {
        report.error(
            r,
            format!("the SignedData has {} signers, not one", signers.len()),
        );
        return out;
    };

    let digest_oid = signer_info.digest_alg.oid;
    let Some(digest_alg) = DigestAlg::from_oid(&digest_oid) else {
        let why = if digest_oid == SHA1 {
            "SHA-1, which SP 800-78-4 no longer allows for signing".to_string()
        } else {
            format!("{digest_oid}, which the checker does not know")
        };
        report.error("SP 800-78-4, 3.2", format!("the digest algorithm is {why}"));
        return out;
    };
    out.digest_alg = Some(digest_alg);
    if digest_alg == DigestAlg::Sha512 {
        report.warning(
            "SP 800-78-4, table 3-3",
            "the digest is SHA-512; SP 800-78-4 names SHA-256 and SHA-384 for PIV signatures",
        );
    }

    let included: Vec<Certificate> = signed
        .certificates
        .as_ref()
        .map(|set| {
            set.0
                .iter()
                .filter_map(|choice| match choice {
                    cms::cert::CertificateChoices::Certificate(c) => Some(c.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if expect.require_certificate && included.is_empty() {
        report.error(
            r,
            "the signer's certificate is not included in the SignedData",
        );
    }
    let signer_cert = included
        .iter()
        .chain(expect.external_signer)
        .find(|c| identifies(&signer_info.sid, c))
        .cloned();
    let Some(signer_cert) = signer_cert else {
        report.error(
            r,
            "no certificate matches the signer identifier (neither included nor the CHUID's content signer)",
        );
        return out;
    };
    if !included.iter().any(|c| c == &signer_cert) {
        report.info(
            r,
            "signed by the CHUID's content signing certificate (not included here)",
        );
    }

    let Some(attrs) = signer_info.signed_attrs.as_ref() else {
        report.error(r, "the SignerInfo has no signed attributes");
        return out;
    };
    let Some(raw_attrs) = raw_attrs else {
        report.error(r, "the SignerInfo has no signed attributes");
        return out;
    };
    let mut digest_ok = false;
    let mut content_type_seen = false;
    let mut signer_dn_seen = false;
    for attr in attrs.iter() {
        let Some(value) = attr.values.iter().next() else {
            report.error(
                "RFC 5652, 5.3",
                format!("the attribute {} has no value", attr.oid),
            );
            continue;
        };
        if attr.values.len() != 1 {
            report.error(
                "RFC 5652, 11",
                format!("the attribute {} has several values", attr.oid),
            );
        }
        match attr.oid {
            ID_CONTENT_TYPE => {
                content_type_seen = true;
                match value.decode_as::<ObjectIdentifier>() {
                    Ok(oid) if oid == econtent_type => {}
                    Ok(oid) => report.error(
                        "RFC 5652, 11.1",
                        format!("the content-type attribute says {oid}, the eContentType {econtent_type}"),
                    ),
                    Err(_) => report.error("RFC 5652, 11.1", "the content-type attribute is not an OID"),
                }
            }
            ID_MESSAGE_DIGEST => match value.decode_as::<OctetString>() {
                Ok(d) if d.as_bytes() == digest_alg.digest(&content).as_slice() => digest_ok = true,
                Ok(_) => report.error(
                    r,
                    format!(
                        "the message digest differs from the {} of the signed content",
                        digest_alg.name()
                    ),
                ),
                Err(_) => report.error(
                    "RFC 5652, 11.2",
                    "the message-digest attribute is not an OCTET STRING",
                ),
            },
            ID_PIV_SIGNER_DN => {
                signer_dn_seen = true;
                let subject = signer_cert.tbs_certificate.subject.to_der().ok();
                let value_der = value.to_der().ok();
                if subject.is_none() || subject != value_der {
                    report.error(
                        r,
                        "the pivSigner-DN attribute is not the subject of the signing certificate",
                    );
                }
            }
            ID_PIV_FASCN => match value.decode_as::<OctetString>() {
                Ok(f) => out.fasc_n = Some(f.as_bytes().to_vec()),
                Err(_) => report.error(r, "the pivFASC-N attribute is not an OCTET STRING"),
            },
            ID_ENTRY_UUID => match value.decode_as::<OctetString>() {
                Ok(u) => out.uuid = Some(u.as_bytes().to_vec()),
                Err(_) => report.error(r, "the entryUUID attribute is not an OCTET STRING"),
            },
            _ => {}
        }
    }
    if !content_type_seen {
        report.error(
            "RFC 5652, 5.3",
            "the signed attributes have no content-type attribute",
        );
    }
    if !signer_dn_seen {
        report.error(r, "the signed attributes have no pivSigner-DN attribute");
    }
    if digest_ok {
        report.info(
            r,
            format!(
                "the message digest ({}) matches the signed content",
                digest_alg.name()
            ),
        );
    } else if !attrs.iter().any(|a| a.oid == ID_MESSAGE_DIGEST) {
        report.error(
            "RFC 5652, 5.3",
            "the signed attributes have no message-digest attribute",
        );
    }

    let key = match PublicKey::from_spki(&signer_cert.tbs_certificate.subject_public_key_info) {
        Ok(key) => key,
        Err(e) => {
            report.error("SP 800-78-4, 3.2", format!("the signer's key: {e}"));
            return out;
        }
    };
    let signed_bytes = tlv::encode(0x31, &raw_attrs);
    let verified = key.verify_digest(
        &signer_info.signature_algorithm.oid,
        digest_alg,
        &digest_alg.digest(&signed_bytes),
        signer_info.signature.as_bytes(),
    );
    match verified {
        Ok(()) => {
            out.verified = digest_ok;
            report.info(
                r,
                format!(
                    "the signature ({}, {}) verifies with the certificate of {}",
                    key.describe(),
                    digest_alg.name(),
                    signer_cert.tbs_certificate.subject
                ),
            );
        }
        Err(e) => report.error(r, format!("the signature: {e}")),
    }
    out.signer = Some(signer_cert);
    out
}

/// Whether `sid` names `cert`.
fn identifies(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            ias.issuer == cert.tbs_certificate.issuer
                && ias.serial_number == cert.tbs_certificate.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => cert
            .tbs_certificate
            .get::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
            .ok()
            .flatten()
            .is_some_and(|(_, own)| own.0 == ski.0),
    }
}

/// The signed attributes of the (first) SignerInfo exactly as they were encoded (the value of
/// its `[0]`), which is what the signature covers: re-encoding could reorder a SET that the
/// signer did not sort.
fn raw_signed_attributes(der_bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let (content_info, rest) = tlv::parse_one(der_bytes).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes follow the ContentInfo", rest.len()));
    }
    let children = content_info.children().map_err(|e| e.to_string())?;
    let explicit = children
        .iter()
        .find(|t| t.tag == 0xA0)
        .ok_or("the ContentInfo has no content")?;
    let (signed_data, _) = tlv::parse_one(explicit.value).map_err(|e| e.to_string())?;
    let fields = signed_data.children().map_err(|e| e.to_string())?;
    let signer_infos = fields
        .iter()
        .rev()
        .find(|t| t.tag == 0x31)
        .ok_or("the SignedData has no signerInfos")?;
    let Some(first) = signer_infos
        .children()
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    Ok(first
        .children()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|t| t.tag == 0xA0)
        .map(|t| t.value.to_vec()))
}

//! The certificate extensions the CA writes, built from the profile and the request.

use crate::error::PkiError;
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Any, Ia5String, OctetString, Utf8StringRef};
use der::flagset::FlagSet;
use der::Encode;
use tessera_core::model::{ExtendedKeyUsage as Eku, KeyUsage as Ku};
use x509_cert::ext::pkix::name::{GeneralName, OtherName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;

/// Microsoft's User Principal Name otherName (szOID_NT_PRINCIPAL_NAME).
pub(crate) const MS_UPN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.3");
/// The FASC-N otherName (FIPS 201-3 appendix B.2, pivFASC-N).
pub(crate) const PIV_FASC_N: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.6");
/// pivInterim, formerly pivNACI (FIPS 201-3 appendix B.2).
pub(crate) const PIV_INTERIM: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.9.1");

pub(crate) fn extension<T: Encode + AssociatedOid>(
    value: &T,
    critical: bool,
) -> Result<Extension, PkiError> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

pub(crate) fn basic_constraints(ca: bool, path_len: Option<u8>) -> Result<Extension, PkiError> {
    extension(
        &BasicConstraints {
            ca,
            path_len_constraint: path_len,
        },
        true,
    )
}

pub(crate) fn key_usage(flags: FlagSet<KeyUsages>) -> Result<Extension, PkiError> {
    extension(&KeyUsage(flags), true)
}

pub(crate) fn profile_key_usage(usages: &[Ku]) -> FlagSet<KeyUsages> {
    usages
        .iter()
        .map(|u| match u {
            Ku::DigitalSignature => KeyUsages::DigitalSignature,
            Ku::NonRepudiation => KeyUsages::NonRepudiation,
            Ku::KeyEncipherment => KeyUsages::KeyEncipherment,
            Ku::KeyAgreement => KeyUsages::KeyAgreement,
        })
        .fold(FlagSet::default(), |set, u| set | u)
}

pub(crate) fn extended_key_usage(usages: &[Eku]) -> Result<Extension, PkiError> {
    let mut oids = Vec::with_capacity(usages.len());
    for usage in usages {
        let oid = ObjectIdentifier::new(usage.oid())
            .map_err(|_| PkiError::Signing(format!("bad EKU OID {}", usage.oid())))?;
        if !oids.contains(&oid) {
            oids.push(oid);
        }
    }
    // Non-critical: relying parties that do not know an EKU (e.g. id-PIV-cardAuth) still accept
    // the certificate for what they understand.
    extension(&ExtendedKeyUsage(oids), false)
}

pub(crate) fn subject_key_identifier(id: &[u8]) -> Result<Extension, PkiError> {
    extension(&SubjectKeyIdentifier(OctetString::new(id)?), false)
}

pub(crate) fn authority_key_identifier(id: &[u8]) -> Result<Extension, PkiError> {
    extension(
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(id)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
        false,
    )
}

pub(crate) fn upn(upn: &str) -> Result<GeneralName, PkiError> {
    Ok(GeneralName::OtherName(OtherName {
        type_id: MS_UPN,
        value: Any::encode_from(&Utf8StringRef::new(upn)?)?,
    }))
}

pub(crate) fn email(address: &str) -> Result<GeneralName, PkiError> {
    let ia5 = Ia5String::new(address).map_err(|_| {
        PkiError::InvalidSubjectAltName(format!("the e-mail address `{address}` is not ASCII"))
    })?;
    Ok(GeneralName::Rfc822Name(ia5))
}

/// The card's FASC-N as otherName pivFASC-N: the 25 encoded bytes as OCTET STRING, as the
/// Federal Common Policy profiles ask for PIV Authentication and Card Authentication.
pub(crate) fn fasc_n(fasc_n: &[u8; 25]) -> Result<GeneralName, PkiError> {
    Ok(GeneralName::OtherName(OtherName {
        type_id: PIV_FASC_N,
        value: Any::encode_from(&OctetString::new(fasc_n.as_slice())?)?,
    }))
}

/// pivInterim with interim_indicator FALSE (`SEQUENCE { BOOLEAN FALSE }`), non-critical: the
/// holder's background investigation was completed before the card was issued.
pub(crate) fn piv_interim() -> Result<Extension, PkiError> {
    Ok(Extension {
        extn_id: PIV_INTERIM,
        critical: false,
        extn_value: OctetString::new([0x30, 0x03, 0x01, 0x01, 0x00])?,
    })
}

/// `urn:uuid:<uuid>` (RFC 4122), lower case, for the card's GUID.
pub(crate) fn card_uuid(uuid: &str) -> Result<GeneralName, PkiError> {
    let lower = uuid.trim().to_ascii_lowercase();
    let groups: Vec<&str> = lower.split('-').collect();
    let shape_ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    if !shape_ok {
        return Err(PkiError::InvalidSubjectAltName(format!(
            "the card UUID `{uuid}` is not a UUID"
        )));
    }
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(
        &format!("urn:uuid:{lower}"),
    )?))
}

/// RFC 5280 4.2.1.6: the SAN must be critical when the subject is empty.
pub(crate) fn subject_alt_name(
    names: Vec<GeneralName>,
    subject_empty: bool,
) -> Result<Extension, PkiError> {
    extension(&SubjectAltName(names), subject_empty)
}

pub(crate) fn ca_key_usage() -> FlagSet<KeyUsages> {
    KeyUsages::KeyCertSign | KeyUsages::CRLSign
}

/// Where relying parties find revocation status and the issuer: the CRL distribution point
/// (`{base}/pki/issuing.crl`) and the authority information access with the OCSP responder
/// (`{base}/pki/ocsp`) and the CA issuers as a certs-only CMS (`{base}/pki/issuing.p7c`), as the
/// PIV-I and Common Policy profiles ask.
pub(crate) fn distribution(base: &str) -> Result<Vec<Extension>, PkiError> {
    use x509_cert::ext::pkix::crl::dp::DistributionPoint;
    use x509_cert::ext::pkix::name::DistributionPointName;
    use x509_cert::ext::pkix::{
        AccessDescription, AuthorityInfoAccessSyntax, CrlDistributionPoints,
    };
    let base = base.trim_end_matches('/');
    let uri = |path: &str| -> Result<GeneralName, PkiError> {
        Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(
            &format!("{base}{path}"),
        )?))
    };
    let crl = CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(
            "/pki/issuing.crl",
        )?])),
        reasons: None,
        crl_issuer: None,
    }]);
    let aia = AuthorityInfoAccessSyntax(vec![
        AccessDescription {
            access_method: const_oid::db::rfc5280::ID_AD_OCSP,
            access_location: uri("/pki/ocsp")?,
        },
        AccessDescription {
            access_method: const_oid::db::rfc5280::ID_AD_CA_ISSUERS,
            access_location: uri("/pki/issuing.p7c")?,
        },
    ]);
    Ok(vec![extension(&crl, false)?, extension(&aia, false)?])
}

/// Whether a certificate says it is a CA (basicConstraints cA); a missing or broken extension
/// says no.
pub(crate) fn is_ca(certificate: &x509_cert::Certificate) -> bool {
    matches!(
        certificate
            .tbs_certificate
            .get::<x509_cert::ext::pkix::BasicConstraints>(),
        Ok(Some((_, bc))) if bc.ca
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DER named bit lists drop trailing zero bits (X.690 11.2.2).
    #[test]
    fn key_usage_bit_strings_are_minimal() {
        let der = |usages: &[Ku]| KeyUsage(profile_key_usage(usages)).to_der().unwrap();
        assert_eq!(der(&[Ku::DigitalSignature]), [0x03, 0x02, 0x07, 0x80]);
        assert_eq!(
            der(&[Ku::DigitalSignature, Ku::NonRepudiation]),
            [0x03, 0x02, 0x06, 0xC0]
        );
        assert_eq!(der(&[Ku::KeyAgreement]), [0x03, 0x02, 0x03, 0x08]);
        assert_eq!(der(&[Ku::KeyEncipherment]), [0x03, 0x02, 0x05, 0x20]);
        assert_eq!(
            KeyUsage(ca_key_usage()).to_der().unwrap(),
            [0x03, 0x02, 0x01, 0x06]
        );
    }

    #[test]
    fn card_uuid_must_be_a_uuid() {
        assert!(card_uuid("3F2504E0-4F89-41D3-9A0C-0305E82C3301").is_ok());
        assert!(card_uuid("").is_err());
        assert!(card_uuid("3F2504E04F8941D39A0C0305E82C3301").is_err());
        assert!(card_uuid("3F2504E0-4F89-41D3-9A0C-0305E82C330Z").is_err());
    }
}

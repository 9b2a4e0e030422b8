//! The certificate objects and the certificates in them: the container (SP 800-73-4 part 1,
//! 3.1.3, 3.1.4, 3.2), then each certificate against the PIV profiles (the Federal Common Policy
//! and PIV-I certificate profiles, FIPS 201-3 4.2.2): key usage and extended key usage per slot,
//! the UUID URN (and FASC-N) of the card in the SAN, CRL distribution point, AIA, certificate
//! policies, pivInterim, algorithms of SP 800-78-4, validity, and the chain to a given CA.

use super::chuid::{uuid_string, ChuidFacts};
use super::containers::{self, Container};
use super::crypto::{self, PublicKey};
use super::report::{ObjectReport, Status};
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use tessera_core::model::Slot;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, SubjectAltName,
};
use x509_cert::Certificate;

const PROFILE: &str = "X.509 Certificate and CRL Extensions Profile for the Common Policy / PIV-I";
const ID_PIV_CARD_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.8");
pub const ID_PIV_CONTENT_SIGNING: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.7");
const ID_CERTIFICATE_POLICIES: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.32");
const ID_PIV_INTERIM: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.9.1");
const ID_FASCN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.6");
const ID_AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
const ID_AD_CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");

/// The container of a slot's certificate.
pub fn container(slot: Slot) -> &'static Container {
    match slot {
        Slot::PivAuthentication => &containers::PIV_AUTH_CERT,
        Slot::DigitalSignature => &containers::SIGNATURE_CERT,
        Slot::KeyManagement => &containers::KEY_MANAGEMENT_CERT,
        Slot::CardAuthentication => &containers::CARD_AUTH_CERT,
    }
}

fn section(slot: Slot) -> &'static str {
    match slot {
        Slot::PivAuthentication => "SP 800-73-4 part 1, 3.1.3",
        Slot::CardAuthentication => "SP 800-73-4 part 1, 3.1.4",
        Slot::DigitalSignature | Slot::KeyManagement => "SP 800-73-4 part 1, 3.2",
    }
}

/// Checks a certificate object; returns the certificate when it parses.
pub fn check_object(
    slot: Slot,
    value: &[u8],
    chuid: &ChuidFacts,
    ca: &[Certificate],
    now_unix: u64,
    report: &mut ObjectReport,
) -> Option<Certificate> {
    let container = container(slot);
    let elements = containers::check_structure(container, value, report)?;
    let cert_info = containers::value_of(&elements, 0x71);
    if containers::value_of(&elements, 0x72).is_some() {
        report.warning(section(slot), "the MSCUID element (72) is deprecated");
    }
    let der_bytes = containers::value_of(&elements, 0x70)?;
    match cert_info {
        Some([0x00]) | None => {}
        Some([0x01]) => {
            report.warning(
                section(slot),
                "the certificate is gzip-compressed (CertInfo 01): its profile is not checked",
            );
            return None;
        }
        Some(other) => {
            report.error(
                section(slot),
                format!("CertInfo is {other:02X?}, not 00 or 01"),
            );
        }
    }
    let cert = match crypto::parse_certificate(der_bytes) {
        Ok(cert) => cert,
        Err(e) => {
            report.error(section(slot), e);
            return None;
        }
    };
    if cert.to_der().ok().as_deref() != Some(der_bytes) {
        report.warning(
            "RFC 5280, 4.1",
            "the certificate is not DER-encoded as stored",
        );
    }
    check_profile(slot, &cert, chuid, now_unix, report);
    check_chain(&cert, ca, now_unix, report);
    Some(cert)
}

/// Validity at `now_unix`, as a finding.
fn check_validity(cert: &Certificate, now_unix: u64, reference: &str, report: &mut ObjectReport) {
    let v = &cert.tbs_certificate.validity;
    let not_before = v.not_before.to_unix_duration().as_secs();
    let not_after = v.not_after.to_unix_duration().as_secs();
    if now_unix < not_before {
        report.error(
            reference,
            format!("the certificate is not valid before {}", v.not_before),
        );
    } else if now_unix > not_after {
        report.error(
            reference,
            format!("the certificate expired on {}", v.not_after),
        );
    } else {
        report.info(reference, format!("valid until {}", v.not_after));
    }
}

/// The policy identifiers of a DER certificatePolicies value (`SEQUENCE OF PolicyInformation`,
/// each a `SEQUENCE { policyIdentifier OBJECT IDENTIFIER, qualifiers OPTIONAL }`), dotted.
fn policy_oids(der: &[u8]) -> Option<Vec<String>> {
    let outer = crate::tlv::parse_all(der).ok()?;
    let [sequence] = outer.as_slice() else {
        return None;
    };
    let mut out = Vec::new();
    for info in crate::tlv::parse_all(sequence.value).ok()? {
        let fields = crate::tlv::parse_all(info.value).ok()?;
        let oid = fields
            .first()
            .filter(|f| info.tag == 0x30 && f.tag == 0x06)?;
        out.push(dotted_oid(oid.value)?);
    }
    (sequence.tag == 0x30).then_some(out)
}

/// The dotted form of an OBJECT IDENTIFIER's content octets, arcs up to 128 bits.
fn dotted_oid(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u128> = Vec::new();
    let mut value: u128 = 0;
    for (i, byte) in content.iter().enumerate() {
        if value > (u128::MAX >> 7) {
            return None;
        }
        value = (value << 7) | u128::from(byte & 0x7F);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == content.len() {
            return None;
        }
    }
    (!arcs.is_empty()).then(|| {
        arcs.iter()
            .map(u128::to_string)
            .collect::<Vec<_>>()
            .join(".")
    })
}

fn extension<'a, T: Decode<'a> + der::oid::AssociatedOid>(
    cert: &'a Certificate,
    name: &str,
    report: &mut ObjectReport,
) -> Option<(bool, T)> {
    match cert.tbs_certificate.get::<T>() {
        Ok(found) => found,
        Err(e) => {
            report.error(
                "RFC 5280, 4.2",
                format!("the {name} extension does not parse (or appears twice): {e}"),
            );
            None
        }
    }
}

fn check_profile(
    slot: Slot,
    cert: &Certificate,
    chuid: &ChuidFacts,
    now_unix: u64,
    report: &mut ObjectReport,
) {
    let tbs = &cert.tbs_certificate;
    report.info(
        PROFILE,
        format!("subject {}, issuer {}", tbs.subject, tbs.issuer),
    );
    check_validity(cert, now_unix, "RFC 5280, 4.1.2.5", report);

    match PublicKey::from_spki(&tbs.subject_public_key_info) {
        Ok(key) => {
            let allowed: &[&str] = match slot {
                Slot::PivAuthentication | Slot::CardAuthentication => &["RSA 2048", "ECC P-256"],
                Slot::DigitalSignature | Slot::KeyManagement => {
                    &["RSA 2048", "RSA 3072", "ECC P-256", "ECC P-384"]
                }
            };
            let described = key.describe();
            if allowed.contains(&described.as_str()) {
                report.info("SP 800-78-4, table 3-1", format!("key {described}"));
            } else {
                report.warning(
                    "SP 800-78-4, table 3-1",
                    format!("a {described} key is not among those SP 800-78-4 lists for this slot"),
                );
            }
        }
        Err(e) => report.error("SP 800-78-4, table 3-1", e),
    }
    let sig_alg = cert.signature_algorithm.oid;
    if crypto::digest_of_signature_alg(&sig_alg).is_none() && sig_alg != crypto::RSASSA_PSS {
        report.error(
            "SP 800-78-4, table 3-3",
            format!(
                "the certificate is signed with {sig_alg}, not an algorithm SP 800-78-4 allows"
            ),
        );
    }

    // Key usage per slot.
    match extension::<KeyUsage>(cert, "key usage", report) {
        None => report.error(PROFILE, "the certificate has no key usage extension"),
        Some((critical, ku)) => {
            if !critical {
                report.error(PROFILE, "the key usage extension is not critical");
            }
            let ok = match slot {
                Slot::PivAuthentication | Slot::CardAuthentication => ku.digital_signature(),
                Slot::DigitalSignature => ku.digital_signature() && ku.non_repudiation(),
                Slot::KeyManagement => ku.key_encipherment() || ku.key_agreement(),
            };
            let wanted = match slot {
                Slot::PivAuthentication | Slot::CardAuthentication => "digitalSignature",
                Slot::DigitalSignature => "digitalSignature and nonRepudiation",
                Slot::KeyManagement => "keyEncipherment (RSA) or keyAgreement (ECC)",
            };
            if ok {
                report.info(PROFILE, format!("key usage {wanted}"));
            } else {
                report.error(PROFILE, format!("the key usage lacks {wanted}"));
            }
            if ku.key_cert_sign() || ku.crl_sign() {
                report.error(
                    PROFILE,
                    "an end-entity certificate asserts keyCertSign or cRLSign",
                );
            }
        }
    }

    let eku = extension::<ExtendedKeyUsage>(cert, "extended key usage", report);
    if slot == Slot::CardAuthentication {
        match &eku {
            Some((_, eku)) if eku.0.contains(&ID_PIV_CARD_AUTH) => {
                report.info(PROFILE, "extended key usage id-PIV-cardAuth")
            }
            _ => report.error(
                PROFILE,
                "the Card Authentication certificate lacks the extended key usage id-PIV-cardAuth (2.16.840.1.101.3.6.8)",
            ),
        }
    }

    // Subject alternative name: the card's UUID (FIPS 201-3 asks it of 9A and 9E), and a
    // FASC-N that matches the CHUID's when present.
    let san = extension::<SubjectAltName>(cert, "subject alternative name", report);
    let names: Vec<GeneralName> = san.map(|(_, s)| s.0).unwrap_or_default();
    let uuids: Vec<String> = names
        .iter()
        .filter_map(|n| match n {
            GeneralName::UniformResourceIdentifier(u) if u.as_str().starts_with("urn:uuid:") => {
                Some(u.as_str().to_ascii_lowercase())
            }
            _ => None,
        })
        .collect();
    let needs_uuid = matches!(slot, Slot::PivAuthentication | Slot::CardAuthentication);
    match (uuids.first(), chuid.guid) {
        (None, _) if needs_uuid => report.error(
            "FIPS 201-3, 4.2.2",
            "the subject alternative name has no urn:uuid: of the card",
        ),
        (Some(urn), Some(guid)) => {
            let expected = format!("urn:uuid:{}", uuid_string(&guid));
            if *urn == expected {
                report.info("FIPS 201-3, 4.2.2", format!("SAN {urn}, the CHUID's GUID"));
            } else {
                report.error(
                    "FIPS 201-3, 4.2.2",
                    format!("the SAN's {urn} is not the CHUID's GUID ({expected})"),
                );
            }
        }
        (Some(urn), None) => report.info("FIPS 201-3, 4.2.2", format!("SAN {urn}")),
        (None, _) => {}
    }
    for name in &names {
        if let GeneralName::OtherName(other) = name {
            if other.type_id == ID_FASCN {
                let value = other.value.decode_as::<der::asn1::OctetString>().ok();
                match (value, &chuid.fasc_n) {
                    (Some(v), Some(f)) if v.as_bytes() == f.as_slice() => {
                        report.info(PROFILE, "SAN FASC-N, the CHUID's")
                    }
                    (Some(_), Some(_)) => {
                        report.error(PROFILE, "the SAN's FASC-N is not the CHUID's")
                    }
                    (None, _) => report.error(PROFILE, "the SAN's FASC-N is not an OCTET STRING"),
                    (Some(_), None) => report.info(PROFILE, "SAN FASC-N"),
                }
            }
        }
    }

    // Where relying parties find status and the issuer.
    match extension::<CrlDistributionPoints>(cert, "CRL distribution points", report) {
        Some((_, dps)) if !dps.0.is_empty() => {
            report.info(PROFILE, "CRL distribution point present")
        }
        _ => report.error(PROFILE, "the certificate has no CRL distribution point"),
    }
    match extension::<AuthorityInfoAccessSyntax>(cert, "authority information access", report) {
        None => report.error(
            PROFILE,
            "the certificate has no authority information access extension",
        ),
        Some((_, aia)) => {
            let uri = |method: ObjectIdentifier| {
                aia.0
                    .iter()
                    .find_map(|d| match (&d.access_method, &d.access_location) {
                        (m, GeneralName::UniformResourceIdentifier(u)) if *m == method => {
                            Some(u.as_str().to_string())
                        }
                        _ => None,
                    })
            };
            match uri(ID_AD_CA_ISSUERS) {
                Some(u) if u.ends_with(".p7c") => report.info(PROFILE, format!("caIssuers {u}")),
                Some(u) => report.warning(
                    PROFILE,
                    format!("caIssuers {u} is not a certs-only CMS .p7c, as the profiles ask"),
                ),
                None => report.error(PROFILE, "the AIA has no caIssuers access method"),
            }
            match uri(ID_AD_OCSP) {
                Some(u) => report.info(PROFILE, format!("OCSP {u}")),
                None => report.error(PROFILE, "the AIA has no OCSP access method"),
            }
        }
    }
    // Read by hand: a policy under 2.25 (a UUID, X.667) has a 128-bit arc that `const-oid`
    // refuses, and such an organisation's own arc is as valid a policy as any.
    let policies = tbs
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == ID_CERTIFICATE_POLICIES);
    match policies.map(|e| policy_oids(e.extn_value.as_bytes())) {
        Some(Some(oids)) if !oids.is_empty() => {
            report.info(PROFILE, format!("certificate policies {}", oids.join(", ")));
        }
        Some(_) => report.error(
            "RFC 5280, 4.2.1.4",
            "the certificatePolicies extension does not parse or names no policy",
        ),
        None => report.error(
            PROFILE,
            "the certificate has no certificatePolicies extension",
        ),
    }
    if needs_uuid {
        let interim = tbs
            .extensions
            .iter()
            .flatten()
            .any(|e| e.extn_id == ID_PIV_INTERIM);
        if interim {
            report.info(PROFILE, "pivInterim extension present");
        } else {
            report.error(
                PROFILE,
                "the certificate has no pivInterim extension (2.16.840.1.101.3.6.9.1)",
            );
        }
    }
}

/// Checks the content signing certificate of the CHUID (and so of the other signed objects).
pub fn check_content_signer(
    cert: &Certificate,
    now_unix: u64,
    card_expiration: Option<&str>,
    report: &mut ObjectReport,
) {
    check_content_signer_eku(cert, report);
    let v = &cert.tbs_certificate.validity;
    if now_unix < v.not_before.to_unix_duration().as_secs() {
        report.error(
            SIGNER,
            format!(
                "the content signing certificate is not valid before {}",
                v.not_before
            ),
        );
    }
    if let Some(expiration) = card_expiration {
        let after = v.not_after.to_date_time();
        let cert_date = format!("{:04}{:02}{:02}", after.year(), after.month(), after.day());
        if cert_date.as_str() < expiration {
            report.warning(
                SIGNER,
                format!(
                    "the content signing certificate expires ({cert_date}) before the card ({expiration})"
                ),
            );
        }
    }
}

const SIGNER: &str = "SP 800-73-4 part 1, 3.1.2; FIPS 201-3, 4.2.1";

/// That a signing certificate is a content signer (EKU id-PIV-content-signing).
pub fn check_content_signer_eku(cert: &Certificate, report: &mut ObjectReport) {
    let eku = cert
        .tbs_certificate
        .get::<ExtendedKeyUsage>()
        .ok()
        .flatten();
    match eku {
        Some((_, eku)) if eku.0.contains(&ID_PIV_CONTENT_SIGNING) => report.info(
            SIGNER,
            "the content signing certificate has the EKU id-PIV-content-signing",
        ),
        _ => report.error(
            SIGNER,
            "the signing certificate lacks the extended key usage id-PIV-content-signing (2.16.840.1.101.3.6.7)",
        ),
    }
}

/// Checks that `cert` chains to the CA certificates given (`--ca`): each link's signature and
/// validity, up to a self-signed one. Without CA certificates, says the chain was not checked.
pub fn check_chain(
    cert: &Certificate,
    ca: &[Certificate],
    now_unix: u64,
    report: &mut ObjectReport,
) {
    const CHAIN: &str = "RFC 5280, 6.1";
    if ca.is_empty() {
        report.info(CHAIN, "chain not checked (no --ca given)");
        return;
    }
    let mut current = cert.clone();
    let mut path = Vec::new();
    for _ in 0..8 {
        let issuer = ca
            .iter()
            .filter(|c| c.tbs_certificate.subject == current.tbs_certificate.issuer)
            .find(|c| crypto::verify_certificate(&current, c).is_ok());
        let Some(issuer) = issuer else {
            report.error(
                CHAIN,
                format!(
                    "no CA certificate given signs the certificate of {}",
                    current.tbs_certificate.subject
                ),
            );
            return;
        };
        let v = &issuer.tbs_certificate.validity;
        let now_ok = now_unix >= v.not_before.to_unix_duration().as_secs()
            && now_unix <= v.not_after.to_unix_duration().as_secs();
        if !now_ok {
            report.error(
                CHAIN,
                format!(
                    "the CA certificate of {} is not valid now",
                    issuer.tbs_certificate.subject
                ),
            );
        }
        path.push(issuer.tbs_certificate.subject.to_string());
        if issuer.tbs_certificate.subject == issuer.tbs_certificate.issuer {
            report.info(CHAIN, format!("chains to {}", path.join(" <- ")));
            return;
        }
        current = issuer.clone();
    }
    report.error(CHAIN, "the chain is longer than 8 certificates");
}

/// Settles a certificate object's status.
pub fn settle(report: &mut ObjectReport) {
    report.settle(Status::Ok);
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    #[test]
    fn policies_under_a_uuid_arc_are_read() {
        // 2.25.329800735698586629295641978511506172918 (a UUID OID) and 2.16.840.1.101.3.2.1.3.13.
        let uuid_arc = ObjectIdentifier::new_unwrap("2.25.1").as_bytes().to_vec();
        assert_eq!(uuid_arc, [0x69, 0x01]);
        let uuid = [
            0x69, 0x83, 0xF8, 0xA6, 0xDA, 0xB5, 0x9C, 0xE9, 0x8B, 0xC6, 0xC2, 0x9C, 0xB2, 0xC6,
            0xEF, 0xAB, 0xD7, 0xEC, 0x6E,
        ];
        let federal = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.2.1.3.13");
        let info =
            |oid: &[u8]| [&[0x30, oid.len() as u8 + 2, 0x06, oid.len() as u8][..], oid].concat();
        let body = [info(&uuid), info(federal.as_bytes())].concat();
        let der = [&[0x30, body.len() as u8][..], &body].concat();
        let oids = policy_oids(&der).unwrap();
        assert_eq!(oids[1], "2.16.840.1.101.3.2.1.3.13");
        assert!(
            oids[0].starts_with("2.25.") && oids[0].len() > 30,
            "{}",
            oids[0]
        );
        assert_eq!(dotted_oid(&[0x69, 0x01]).as_deref(), Some("2.25.1"));
        assert!(dotted_oid(&[0x69, 0x81]).is_none());
        assert!(policy_oids(&[0x31, 0x00]).is_none());
    }
}

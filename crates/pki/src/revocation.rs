//! Revocation as relying parties see it: the CRL (RFC 5280 section 5) and the reasons that go in it.
//! A certificate on hold (its card Pending or Suspended) is listed with reason certificateHold
//! and leaves the next CRL when the card is activated or resumed.

use crate::error::PkiError;
use crate::keys::CaKey;
use crate::time::to_x509;
use der::asn1::BitString;
use der::{Decode, Encode};
use tessera_core::model::Timestamp;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::CrlNumber;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;

/// One certificate that is not (or not now) valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// Serial number, hex.
    pub serial: String,
    pub at: Timestamp,
    pub reason: CrlReason,
}

/// Maps the reason names the store keeps (`keyCompromise`, `certificateHold`, ...) to RFC 5280.
pub fn crl_reason(name: &str) -> CrlReason {
    match name {
        "keyCompromise" => CrlReason::KeyCompromise,
        "cACompromise" => CrlReason::CaCompromise,
        "affiliationChanged" => CrlReason::AffiliationChanged,
        "superseded" => CrlReason::Superseded,
        "cessationOfOperation" => CrlReason::CessationOfOperation,
        "certificateHold" => CrlReason::CertificateHold,
        "privilegeWithdrawn" => CrlReason::PrivilegeWithdrawn,
        _ => CrlReason::Unspecified,
    }
}

pub(crate) fn serial_number(hex_serial: &str) -> Result<SerialNumber, PkiError> {
    let bytes = hex::decode(hex_serial)
        .map_err(|_| PkiError::Signing(format!("{hex_serial:?} is not a hex serial number")))?;
    Ok(SerialNumber::new(&bytes)?)
}

/// The issuing CA as revocation needs it: its certificate and its signing key.
pub struct RevocationSigner<'a> {
    pub issuer: &'a Certificate,
    pub key: &'a dyn CaKey,
}

impl RevocationSigner<'_> {
    /// The issuer's subject key identifier (for the CRL's authority key identifier).
    fn key_identifier(&self) -> Option<Vec<u8>> {
        let exts = self.issuer.tbs_certificate.extensions.as_ref()?;
        exts.iter()
            .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)
            .and_then(|e| der::asn1::OctetString::from_der(e.extn_value.as_bytes()).ok())
            .map(|o| o.as_bytes().to_vec())
    }
}

/// Builds and signs a CRL listing `revoked`, numbered `number`, valid from `this_update` until
/// `next_update`.
pub fn build_crl(
    signer: &RevocationSigner<'_>,
    number: u64,
    this_update: Timestamp,
    next_update: Timestamp,
    revoked: &[Revocation],
) -> Result<Vec<u8>, PkiError> {
    let issuer = signer.issuer.tbs_certificate.subject.clone();
    let mut entries = Vec::with_capacity(revoked.len());
    for r in revoked {
        let reason = r.reason.to_extension(&issuer, &[])?;
        entries.push(RevokedCert {
            serial_number: serial_number(&r.serial)?,
            revocation_date: to_x509(r.at)?,
            crl_entry_extensions: Some(vec![reason]),
        });
    }
    let mut extensions: Vec<Extension> = Vec::new();
    if let Some(id) = signer.key_identifier() {
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(der::asn1::OctetString::new(id)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        extensions.push(aki.to_extension(&issuer, &[])?);
    }
    let number = CrlNumber(der::asn1::Uint::new(&number.to_be_bytes())?);
    extensions.push(number.to_extension(&issuer, &[])?);
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: signer.key.algorithm().signature_algorithm(),
        issuer,
        this_update: to_x509(this_update)?,
        next_update: Some(to_x509(next_update)?),
        revoked_certificates: (!entries.is_empty()).then_some(entries),
        crl_extensions: Some(extensions),
    };
    let signature = signer.key.sign(&tbs.to_der()?)?;
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: signer.key.algorithm().signature_algorithm(),
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(crl.to_der()?)
}

//! The OCSP responder (RFC 6960): answers good, revoked (with time and reason; a certificate on
//! hold is revoked with reason certificateHold) or unknown for each certificate a client asks
//! about, signed by the issuing CA itself (responder id by key hash).

use crate::error::PkiError;
use crate::revocation::{Revocation, RevocationSigner};
use crate::time::to_x509;
use der::asn1::{BitString, OctetString};
use der::{Decode, Encode};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tessera_core::model::Timestamp;
use x509_cert::ext::{AsExtension, Extensions};
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    ResponderId, ResponseData, RevokedInfo, SingleResponse, Version,
};

/// What the CA knows about one serial number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OcspStatus {
    Good,
    Revoked(Revocation),
    /// Not a certificate of this CA.
    Unknown,
}

/// How long a response may be cached by clients.
const VALIDITY_SECONDS: i64 = 3600;

fn generalized(t: Timestamp) -> Result<OcspGeneralizedTime, PkiError> {
    let time = to_x509(t)?;
    Ok(OcspGeneralizedTime::from(time))
}

/// Answers a DER `OCSPRequest`. Always returns a DER `OCSPResponse`: a malformed request gets
/// `malformedRequest`, a failure to sign `internalError`.
pub fn respond(
    signer: &RevocationSigner<'_>,
    request: &[u8],
    now: Timestamp,
    lookup: &dyn Fn(&str) -> OcspStatus,
) -> Vec<u8> {
    let response = match OcspRequest::from_der(request) {
        Err(_) => OcspResponse::malformed_request(),
        Ok(req) => match answer(signer, &req, now, lookup) {
            Ok(basic) => {
                OcspResponse::successful(basic).unwrap_or_else(|_| OcspResponse::internal_error())
            }
            Err(e) => {
                tracing::error!(error = %e, "OCSP response could not be built");
                OcspResponse::internal_error()
            }
        },
    };
    response.to_der().unwrap_or_default()
}

/// The serial numbers (hex, no leading zero bytes) a DER `OCSPRequest` asks about, so the caller
/// can look them up before calling [`respond`]. A malformed request asks about nothing.
pub fn requested_serials(request: &[u8]) -> Vec<String> {
    OcspRequest::from_der(request)
        .map(|req| {
            req.tbs_request
                .request_list
                .iter()
                .map(|r| serial_hex(r.req_cert.serial_number.as_bytes()))
                .collect()
        })
        .unwrap_or_default()
}

/// Lower-case hex of a serial number without leading zero bytes.
fn serial_hex(bytes: &[u8]) -> String {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    hex::encode(&bytes[first..])
}

/// Whether `id` names a certificate of this issuer (name and key hashes, SHA-1 or SHA-256).
fn issued_here(signer: &RevocationSigner<'_>, id: &CertId) -> Result<bool, PkiError> {
    let name = signer.issuer.tbs_certificate.subject.to_der()?;
    let key = signer
        .issuer
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let (name_hash, key_hash) = match id.hash_algorithm.oid {
        const_oid::db::rfc5912::ID_SHA_1 => {
            (Sha1::digest(&name).to_vec(), Sha1::digest(key).to_vec())
        }
        const_oid::db::rfc5912::ID_SHA_256 => {
            (Sha256::digest(&name).to_vec(), Sha256::digest(key).to_vec())
        }
        _ => return Ok(false),
    };
    Ok(id.issuer_name_hash.as_bytes() == name_hash && id.issuer_key_hash.as_bytes() == key_hash)
}

fn answer(
    signer: &RevocationSigner<'_>,
    req: &OcspRequest,
    now: Timestamp,
    lookup: &dyn Fn(&str) -> OcspStatus,
) -> Result<BasicOcspResponse, PkiError> {
    let mut responses = Vec::with_capacity(req.tbs_request.request_list.len());
    for r in &req.tbs_request.request_list {
        let id = &r.req_cert;
        let serial = serial_hex(id.serial_number.as_bytes());
        let status = if issued_here(signer, id)? {
            lookup(&serial)
        } else {
            OcspStatus::Unknown
        };
        let cert_status = match status {
            OcspStatus::Good => CertStatus::good(),
            OcspStatus::Unknown => CertStatus::unknown(),
            OcspStatus::Revoked(rev) => CertStatus::revoked(RevokedInfo {
                revocation_time: generalized(rev.at)?,
                revocation_reason: Some(rev.reason),
            }),
        };
        responses.push(SingleResponse {
            cert_id: id.clone(),
            cert_status,
            this_update: generalized(now)?,
            next_update: Some(generalized(Timestamp(now.0 + VALIDITY_SECONDS))?),
            single_extensions: None,
        });
    }
    let key_hash = Sha1::digest(
        signer
            .issuer
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    );
    // A nonce in the request is echoed so the client can tell the answer is fresh.
    let response_extensions: Option<Extensions> = match req.nonce() {
        Some(nonce) => Some(vec![
            nonce.to_extension(&signer.issuer.tbs_certificate.subject, &[])?
        ]),
        None => None,
    };
    let tbs = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(OctetString::new(key_hash.to_vec())?),
        produced_at: generalized(now)?,
        responses,
        response_extensions,
    };
    let signature = signer.key.sign(&tbs.to_der()?)?;
    Ok(BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: signer.key.algorithm().signature_algorithm(),
        signature: BitString::from_bytes(&signature)?,
        certs: None,
    })
}

//! The contents of the PIV data objects an issuer writes (SP 800-73-4 part 1, appendix A), one
//! module per object: the signed CHUID, the Card Capability Container, the certificate objects,
//! the printed information, the biometric objects (a signed CBEFF record around an ISO/IEC
//! 19794-5 facial image or an INCITS 378 minutiae record) and the Security Object.
//!
//! Every builder returns the value of the object, the content of tag 53 that PUT DATA carries.

pub mod card_objects;
pub mod cbeff;
pub mod ccc;
pub mod certificate;
pub mod chuid;
pub mod facial;
pub mod fingerprints;
pub mod jpeg;
pub mod printed;
pub mod security_object;
#[cfg(test)]
pub(crate) mod test_signer;

pub use ccc::ccc;
pub use certificate::{certificate_from_object, certificate_object};
pub use printed::{parse_printed_information, printed_information};

use tessera_core::ports::PortError;

/// Why an object could not be made: its input does not fit the standard, or signing it failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {detail}")]
pub struct ObjectError {
    /// The object, as an operator knows it (`CHUID`, `facial image`, ...).
    pub object: &'static str,
    pub detail: String,
}

impl ObjectError {
    pub fn new(object: &'static str, detail: impl Into<String>) -> Self {
        Self {
            object,
            detail: detail.into(),
        }
    }

    /// The content signer refused or failed.
    pub fn signing(object: &'static str, e: PortError) -> Self {
        Self::new(
            object,
            format!("the content signer could not sign it: {}", e.message),
        )
    }
}

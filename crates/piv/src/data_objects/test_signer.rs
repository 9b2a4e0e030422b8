//! A content signer for tests: it records what it is asked to sign and answers a stand-in for a
//! CMS ContentInfo made from the content's digest, so a test can tell which bytes were signed.
//! The real signer (CMS SignedData with the content signing key) is `tessera-pki`'s.

use crate::tlv;
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use tessera_core::fips201::{ContentSigner, ContentToSign, SignedContentType};
use tessera_core::ports::PortError;

/// One request, copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub content_type: SignedContentType,
    pub content: Vec<u8>,
    pub fasc_n: Option<[u8; 25]>,
    pub uuid: Option<[u8; 16]>,
    pub include_certificate: bool,
}

#[derive(Default)]
pub struct RecordingSigner {
    requests: Mutex<Vec<Request>>,
    fail: bool,
    varying: bool,
}

impl RecordingSigner {
    pub fn new() -> Self {
        Self::default()
    }

    /// A signer whose key is not available.
    pub fn failing() -> Self {
        Self {
            fail: true,
            ..Self::default()
        }
    }

    /// Signatures whose length depends on what is signed, as DER ECDSA signatures' does.
    pub fn varying() -> Self {
        Self {
            varying: true,
            ..Self::default()
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// What [`ContentSigner::sign`] answers for `content`.
    pub fn signature_for(&self, content: &[u8]) -> Vec<u8> {
        let digest = Sha256::digest(content);
        let padding = 300
            + if self.varying {
                usize::from(digest[0] % 3)
            } else {
                0
            };
        let mut inner = tlv::encode(0x04, &digest);
        inner.resize(inner.len() + padding, 0);
        tlv::encode(0x30, &inner)
    }
}

impl ContentSigner for RecordingSigner {
    fn sign(&self, request: &ContentToSign<'_>) -> Result<Vec<u8>, PortError> {
        self.requests.lock().unwrap().push(Request {
            content_type: request.content_type,
            content: request.content.to_vec(),
            fasc_n: request.fasc_n,
            uuid: request.uuid,
            include_certificate: request.include_certificate,
        });
        if self.fail {
            return Err(PortError::new("the content signing key is not available"));
        }
        Ok(self.signature_for(request.content))
    }
}

//! Key attestation: proof that a key was generated on a card, not imported. A YubiKey answers
//! ATTEST (INS F9) with a certificate for the slot's key (`CN=YubiKey PIV Attestation 9a`),
//! signed by the card's own attestation key, whose certificate (PIV object 5FFF01, the "F9"
//! certificate, `CN=Yubico PIV Attestation`) Yubico issued at manufacture. Older cards' F9
//! certificates are signed directly by a Yubico root; from firmware 5.7.4 on they are signed by
//! `Yubico PIV Attestation {A,B} 1`, under `Yubico Attestation Intermediate {A,B} 1`, under
//! `Yubico Attestation Root 1`. Those intermediates are not on the card, so they ship here
//! (`attestation-roots/`) alongside the roots. [`AttestationRoots`] walks that chain, checks
//! every signature and date, and reads what the certificate states about the card.
//!
//! The inputs come from a station, which may be hostile: everything is parsed defensively and no
//! input makes this code panic (a fuzz target in `crates/piv/fuzz` holds it to that).

mod yubico;

#[cfg(test)]
mod tests;

use crate::error::PkiError;
use crate::extensions::is_ca;
use crate::keys::verify_signature;
use crate::time::from_x509;
use base64::Engine as _;
use der::asn1::AnyRef;
use der::{Decode, Encode};
use std::fmt;
use tessera_core::model::{Slot, Timestamp};
use tessera_core::ports::{AttestationError, AttestationVerifier, KeyAttestation};
use x509_cert::Certificate;

/// Yubico's PIV attestation roots: the one that signed F9 certificates from 2016 to firmware
/// 5.7.3, the U2F root that signed some YubiKey 4 made before mid-2017 and in 2018 (Yubico's PIV
/// attestation page says so; piv-go trusts it for that reason), and the 2024 unified root.
const YUBICO_ROOTS: [&str; 3] = [
    include_str!("../../attestation-roots/yubico-piv-root-ca-263751.pem"),
    include_str!("../../attestation-roots/yubico-u2f-root-ca-457200631.pem"),
    include_str!("../../attestation-roots/yubico-attestation-root-1.pem"),
];

/// The intermediates between `Yubico Attestation Root 1` and the F9 certificates of firmware
/// 5.7.4 and later. They are only ever used as links, never as trust anchors.
const YUBICO_INTERMEDIATES: [&str; 4] = [
    include_str!("../../attestation-roots/yubico-attestation-intermediate-a-1.pem"),
    include_str!("../../attestation-roots/yubico-attestation-intermediate-b-1.pem"),
    include_str!("../../attestation-roots/yubico-piv-attestation-a-1.pem"),
    include_str!("../../attestation-roots/yubico-piv-attestation-b-1.pem"),
];

/// Longest walk from the F9 certificate to a root; Yubico's deepest chain has two intermediates
/// above F9. The bound also ends any cycle a crafted pool could form.
const MAX_LINKS: usize = 6;

/// A trusted certificate with its encoding kept for the exact-match test.
#[derive(Clone)]
struct Known {
    der: Vec<u8>,
    certificate: Certificate,
    /// Shipped with Tessera (Yubico's). Only these may sign an F9 certificate that is not marked
    /// as a CA, as some YubiKey 4 F9 certificates are.
    yubico: bool,
}

impl Known {
    fn parse(der: &[u8], what: &str) -> Result<Self, PkiError> {
        let certificate = Certificate::from_der(der)
            .map_err(|e| PkiError::Config(format!("{what} is not a DER certificate: {e}")))?;
        Ok(Self {
            der: der.to_vec(),
            certificate,
            yubico: false,
        })
    }

    fn subject(&self) -> String {
        self.certificate.tbs_certificate.subject.to_string()
    }
}

/// The attestation roots a deployment trusts, plus the intermediates that may link a card's F9
/// certificate to them. Implements [`AttestationVerifier`].
#[derive(Clone, Default)]
pub struct AttestationRoots {
    roots: Vec<Known>,
    intermediates: Vec<Known>,
}

impl fmt::Debug for AttestationRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttestationRoots")
            .field("roots", &self.roots())
            .field("intermediates", &self.intermediates.len())
            .finish()
    }
}

impl AttestationRoots {
    /// No roots: every attestation is untrusted until roots are added.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Yubico's published PIV attestation roots and the intermediates of its 2024 PKI.
    pub fn yubico() -> Self {
        let mut roots = Self::empty();
        // The shipped PEM files are checked by a unit test; a failure here is a build defect,
        // and skipping a file only narrows what is trusted.
        for pem in YUBICO_ROOTS {
            if let Ok(with) = roots.clone().with_roots_pem(pem) {
                roots = with;
            }
        }
        for root in &mut roots.roots {
            root.yubico = true;
        }
        for pem in YUBICO_INTERMEDIATES {
            if let Ok(chain) = Certificate::load_pem_chain(pem.as_bytes()) {
                for certificate in chain {
                    if let Ok(der) = certificate.to_der() {
                        roots.intermediates.push(Known {
                            der,
                            certificate,
                            yubico: true,
                        });
                    }
                }
            }
        }
        roots
    }

    /// Adds a trusted root (or a pinned attestation CA of the organisation's own) from DER.
    pub fn with_root_der(mut self, der: &[u8]) -> Result<Self, PkiError> {
        let known = Known::parse(der, "the attestation root")?;
        if !self.roots.iter().any(|r| r.der == known.der) {
            self.roots.push(known);
        }
        Ok(self)
    }

    /// Adds every certificate of a PEM text (one or more `CERTIFICATE` blocks) as a root.
    pub fn with_roots_pem(mut self, pem: &str) -> Result<Self, PkiError> {
        let mut count = 0;
        for (index, block) in pem_blocks(pem)?.into_iter().enumerate() {
            self = self.with_root_der(&block).map_err(|e| {
                PkiError::Config(format!("certificate {} of the PEM text: {e}", index + 1))
            })?;
            count += 1;
        }
        if count == 0 {
            return Err(PkiError::Config(
                "the PEM text holds no CERTIFICATE block".into(),
            ));
        }
        Ok(self)
    }

    /// The subjects of the trusted roots, for display.
    pub fn roots(&self) -> Vec<String> {
        self.roots.iter().map(Known::subject).collect()
    }

    /// Walks from the F9 certificate up to a trusted root and returns that root's subject.
    fn anchor(
        &self,
        f9: &Certificate,
        f9_der: &[u8],
        now: Timestamp,
    ) -> Result<String, AttestationError> {
        // Pinning the F9 certificate itself (or an organisation's own attestation CA loaded into
        // slot F9) is allowed: exact DER equality is the strongest trust there is.
        if let Some(root) = self.roots.iter().find(|r| r.der == f9_der) {
            return Ok(root.subject());
        }
        let mut current = Known {
            der: f9_der.to_vec(),
            certificate: f9.clone(),
            yubico: false,
        };
        // An F9 certificate not marked as a CA (some YubiKey 4) is trusted only under Yubico's
        // own certificates. Under a configured root it must be a CA: otherwise a slot attestation
        // of one's own card, signed by a pinned F9, could pose as an F9 and vouch for any key.
        let mut signer_may_be_configured = is_ca(f9);
        let mut used: Vec<usize> = Vec::new();
        for _ in 0..MAX_LINKS {
            let issuer = &current.certificate.tbs_certificate.issuer;
            let mut named = false;
            for root in self.roots.iter() {
                if root.certificate.tbs_certificate.subject != *issuer
                    || !(root.yubico || signer_may_be_configured)
                {
                    continue;
                }
                named = true;
                if signed_by(&current.der, &current.certificate, &root.certificate).is_ok() {
                    check_dates(&root.certificate, now, "the attestation root")?;
                    return Ok(root.subject());
                }
            }
            let next = self.intermediates.iter().enumerate().find(|(i, c)| {
                !used.contains(i)
                    && c.certificate.tbs_certificate.subject == *issuer
                    && signed_by(&current.der, &current.certificate, &c.certificate).is_ok()
            });
            let Some((index, link)) = next else {
                named |= self
                    .intermediates
                    .iter()
                    .any(|c| c.certificate.tbs_certificate.subject == *issuer);
                // A known name whose key does not verify is a forgery or a tampered chain; either
                // way nothing trusted vouches for the card, so it is untrusted.
                return Err(AttestationError::Untrusted(if named {
                    format!(
                        "the signature of {issuer} does not verify with its trusted certificate"
                    )
                } else {
                    format!(
                        "{} was issued by {issuer}, which is not a trusted attestation root",
                        current.certificate.tbs_certificate.subject
                    )
                }));
            };
            check_dates(&link.certificate, now, "an attestation intermediate")?;
            used.push(index);
            current = link.clone();
            signer_may_be_configured = is_ca(&current.certificate);
        }
        Err(AttestationError::Untrusted(
            "the attestation chain is longer than any trusted chain".into(),
        ))
    }
}

impl AttestationVerifier for AttestationRoots {
    fn verify(
        &self,
        slot: Slot,
        attestation: &[u8],
        intermediate: &[u8],
        public_key_der: &[u8],
        now: Timestamp,
    ) -> Result<KeyAttestation, AttestationError> {
        let invalid = |what: &str| AttestationError::Invalid(what.to_owned());
        let leaf = Certificate::from_der(attestation)
            .map_err(|_| invalid("the attestation certificate does not parse"))?;
        let f9 = Certificate::from_der(intermediate)
            .map_err(|_| invalid("the card's attestation certificate does not parse"))?;

        if leaf.tbs_certificate.issuer != f9.tbs_certificate.subject {
            return Err(invalid(
                "the attestation certificate was not issued by the card's attestation certificate",
            ));
        }
        signed_by(attestation, &leaf, &f9).map_err(|_| {
            invalid("the attestation certificate's signature does not verify with the card's key")
        })?;
        // The card copies its F9 certificate's dates into every slot attestation (Yubico's PIV
        // attestation documentation), so both share one window. Real ones run to 2050 or 2052
        // (2016-2018 cards) or to 99991231235959Z (RFC 5280 "no expiry", firmware 5.7.4+), so a
        // strict check, as openssl verify makes in Yubico's own instructions, rejects none.
        check_dates(&leaf, now, "the attestation certificate")?;
        check_dates(&f9, now, "the card's attestation certificate")?;
        // A slot attestation is never an attestation key's certificate, whoever signed it.
        if yubico::is_slot_attestation(&f9) {
            return Err(invalid(
                "the card's attestation certificate is itself a slot attestation",
            ));
        }
        // piv-go notes that some YubiKey 4 F9 certificates lack basicConstraints, so the F9
        // certificate need not be marked as a CA when Yubico signed it (see `anchor`).
        let root = self.anchor(&f9, intermediate, now)?;

        yubico::check_slot(&leaf, slot)?;
        let spki = leaf
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|_| invalid("the attested public key does not encode"))?;
        if spki != public_key_der {
            return Err(AttestationError::KeyMismatch);
        }
        let facts = yubico::facts(&leaf)?;
        Ok(KeyAttestation {
            serial: facts.serial,
            firmware: facts.firmware,
            pin_policy: facts.pin_policy,
            touch_policy: facts.touch_policy,
            form_factor: facts.form_factor,
            root,
            evidence: [attestation, intermediate]
                .iter()
                .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
                .collect(),
        })
    }
}

/// The certificate's three parts with the TBSCertificate kept as received: the signature covers
/// those bytes, and re-encoding a parsed structure could differ from them.
#[derive(der::Sequence)]
struct RawCertificate<'a> {
    tbs: AnyRef<'a>,
    algorithm: AnyRef<'a>,
    signature: AnyRef<'a>,
}

/// Checks the signature of `child` (parsed from `child_der`) with `issuer`'s public key.
fn signed_by(child_der: &[u8], child: &Certificate, issuer: &Certificate) -> Result<(), PkiError> {
    // RFC 5280 4.1.1.2: the outer algorithm must equal the one inside the signed part.
    if child.signature_algorithm != child.tbs_certificate.signature {
        return Err(PkiError::BadSignature);
    }
    let raw = RawCertificate::from_der(child_der)?;
    let tbs = raw.tbs.to_der()?;
    let signature = child.signature.as_bytes().ok_or(PkiError::BadSignature)?;
    let key = issuer.tbs_certificate.subject_public_key_info.to_der()?;
    verify_signature(&key, &child.signature_algorithm, &tbs, signature)
}

fn check_dates(
    certificate: &Certificate,
    now: Timestamp,
    what: &str,
) -> Result<(), AttestationError> {
    let validity = &certificate.tbs_certificate.validity;
    let (from, until) = (
        from_x509(&validity.not_before),
        from_x509(&validity.not_after),
    );
    if now < from || now > until {
        return Err(AttestationError::Invalid(format!(
            "{what} is valid from {} to {}, not at {}",
            from.0, until.0, now.0
        )));
    }
    Ok(())
}

/// The DER of every `CERTIFICATE` block of a PEM text, with errors that say which block failed.
fn pem_blocks(pem: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let tail = &rest[start..];
        let number = blocks.len() + 1;
        // The block ends with the dashes that close its END line.
        let end = tail
            .find("-----END ")
            .and_then(|e| tail[e + 9..].find("-----").map(|close| e + 9 + close + 5))
            .ok_or_else(|| PkiError::Config(format!("PEM block {number} has no END line")))?;
        let block = &tail[..end];
        let (label, der) = der::pem::decode_vec(block.as_bytes())
            .map_err(|e| PkiError::Config(format!("PEM block {number} is malformed: {e}")))?;
        if label != "CERTIFICATE" {
            return Err(PkiError::Config(format!(
                "PEM block {number} is a {label}, not a CERTIFICATE"
            )));
        }
        blocks.push(der);
        rest = &tail[end..];
    }
    Ok(blocks)
}

/// The SubjectPublicKeyInfo (DER) an attestation certificate attests, if it parses. For tools
/// and the fuzz target, which need a key that matches so the checks after it run too.
pub fn attested_key(attestation: &[u8]) -> Option<Vec<u8>> {
    Certificate::from_der(attestation)
        .ok()?
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .ok()
}

//! The CA: a self-signed root and one issuing CA kept in a directory (or an issuing CA certified
//! by an organisation's own root and imported), and the issuance of leaf certificates for
//! card-generated keys. The CA keys come from any [`KeyProvider`]: software keys or a PKCS#11
//! token.

use crate::content_signer::{ContentSigning, IssuingCa};
use crate::error::PkiError;
use crate::extensions as ext;
use crate::fsutil;
use crate::keys::{verify_signature, CaKey, CaKeyAlgorithm, KeyProvider, SoftwareKeyProvider};
use crate::name::{escape_dn_value, format_name, parse_dn};
use crate::policy_oids::{self, PolicyUse};
use crate::public_key::{key_identifier, parse_card_key};
use crate::time;
use async_trait::async_trait;
use der::asn1::BitString;
use der::{Decode, DecodePem, Encode, EncodePem};
use spki::SubjectPublicKeyInfoOwned;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tessera_core::content_signing::CertificateSummary;
use tessera_core::model::Timestamp;
use tessera_core::ports::{
    CertificateAuthority, CertificateRequest, Clock, IssuedCertificate, PortError, Random, Sealer,
};
use tessera_core::template;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

const ROOT_LABEL: &str = "root";
const ISSUING_LABEL: &str = "issuing";
const ROOT_PEM: &str = "root.pem";
const ISSUING_PEM: &str = "issuing.pem";
/// The certificates above an imported issuing CA: its issuer first, the root last.
const CHAIN_PEM: &str = "chain.pem";
const ROOT_VALIDITY_DAYS: i64 = 20 * 365;
const ISSUING_VALIDITY_DAYS: i64 = 10 * 365;

/// A CA whose state lives in one directory: `root.pem` (or, for an imported issuing CA,
/// `chain.pem` with every certificate above it), `issuing.pem` and, with the software key
/// provider, the sealed keys `root.key.sealed` and `issuing.key.sealed`.
///
/// Only the issuing key is loaded; the root key stays sealed (or on its token) after creation.
/// Everything `issue` needs from the issuing certificate is computed once, at load.
pub struct Ca {
    dir: PathBuf,
    /// PEM of the certificates above the issuing CA, issuer first, root last.
    above_pem: String,
    issuing_key: Arc<dyn CaKey>,
    issuer_text: String,
    authority_key_identifier: Extension,
    issuing_not_after: Timestamp,
    root_der: Vec<u8>,
    issuing_der: Vec<u8>,
    root_pem: String,
    issuing_pem: String,
    random: Arc<dyn Random>,
    /// CRL distribution point and AIA extensions, when the server has a public URL.
    distribution: Vec<Extension>,
    /// Encoded usage extensions per (key usage, extended key usage) of the profiles seen.
    usage_cache: RwLock<HashMap<UsageKey, Vec<Extension>>>,
    /// DER of the issuer name and of the signature algorithm, the same in every certificate.
    issuer_der: Vec<u8>,
    signature_algorithm_der: Vec<u8>,
    /// The organisation's certificate policy arc (see [`policy_oids`]).
    policy_arc: String,
    /// The certs-only CMS of the issuing CA certificate, served as `/pki/issuing.p7c`.
    issuing_p7c: Vec<u8>,
    /// The content signer of the cards' signed objects.
    content: Arc<ContentSigning>,
}

/// What the fixed extensions of a certificate depend on: key usage, extended key usage, the
/// policy OIDs asserted and whether pivInterim is present.
type UsageKey = (
    Vec<tessera_core::model::KeyUsage>,
    Vec<tessera_core::model::ExtendedKeyUsage>,
    Vec<String>,
    bool,
);

/// The name the CA had when it only held software keys; every key provider works with it.
pub type SoftwareCa = Ca;

impl Ca {
    /// Opens the CA in `dir` or, when `dir` holds none, creates it with software keys sealed by
    /// `sealer`. `organisation` names a new CA and is ignored when loading.
    pub fn load_or_create(
        dir: &Path,
        sealer: Arc<dyn Sealer>,
        organisation: &str,
        now: Timestamp,
        random: Arc<dyn Random>,
    ) -> Result<Self, PkiError> {
        let keys = Arc::new(SoftwareKeyProvider::new(dir, sealer, random.clone()));
        Self::load_or_create_with(dir, keys, organisation, now, random)
    }

    /// As [`Self::load_or_create`], with the CA keys from any [`KeyProvider`]. The CA keeps the
    /// provider for its content signer's keys (see [`Self::prepare_content_signer`]).
    pub fn load_or_create_with(
        dir: &Path,
        keys: Arc<dyn KeyProvider>,
        organisation: &str,
        now: Timestamp,
        random: Arc<dyn Random>,
    ) -> Result<Self, PkiError> {
        let parts = [
            (ROOT_PEM, dir.join(ROOT_PEM).exists()),
            (ISSUING_PEM, dir.join(ISSUING_PEM).exists()),
            ("root key", keys.exists(ROOT_LABEL)),
            ("issuing key", keys.exists(ISSUING_LABEL)),
        ];
        let ca = if parts.iter().all(|(_, present)| *present) {
            Self::load(dir, keys, random)?
        } else if parts.iter().all(|(_, present)| !*present) {
            Self::create(
                dir,
                keys,
                organisation,
                CaKeyAlgorithm::EcdsaP256Sha256,
                now,
                random,
            )?
        } else {
            let missing: Vec<&str> = parts
                .iter()
                .filter(|(_, present)| !*present)
                .map(|(name, _)| *name)
                .collect();
            return Err(PkiError::IncompleteCa {
                dir: dir.to_owned(),
                detail: format!("missing {}", missing.join(", ")),
            });
        };
        Ok(ca)
    }

    /// Opens an existing CA: its certificates from `dir`, its issuing key from `keys`. Unlike
    /// [`Self::load_or_create_with`] it does not ask for the root key, which an imported CA does
    /// not have, and it leaves the content signer to [`Self::prepare_content_signer`] or the
    /// first signature.
    pub fn load(
        dir: &Path,
        keys: Arc<dyn KeyProvider>,
        random: Arc<dyn Random>,
    ) -> Result<Self, PkiError> {
        let above = if dir.join(CHAIN_PEM).exists() {
            read_certificates(&dir.join(CHAIN_PEM))?
        } else {
            vec![read_certificate(&dir.join(ROOT_PEM))?]
        };
        let issuing = read_certificate(&dir.join(ISSUING_PEM))?;
        let issuing_key = keys.load(ISSUING_LABEL)?;
        Self::from_parts(dir, &above, &issuing, issuing_key, keys, random)
    }

    /// Whether `dir` holds any part of a CA (certificates or software keys). Keys on a token are
    /// checked by the caller through its provider.
    pub fn exists_in(dir: &Path) -> bool {
        [
            ROOT_PEM,
            ISSUING_PEM,
            CHAIN_PEM,
            "root.key.sealed",
            "issuing.key.sealed",
        ]
        .iter()
        .any(|name| dir.join(name).exists())
    }

    /// Creates a new root and issuing CA with keys of `algorithm` from `keys`. Refuses when `dir`
    /// or the provider already holds a CA: a CA is never replaced.
    pub fn create_with(
        dir: &Path,
        keys: Arc<dyn KeyProvider>,
        organisation: &str,
        algorithm: CaKeyAlgorithm,
        now: Timestamp,
        random: Arc<dyn Random>,
    ) -> Result<Self, PkiError> {
        if Self::exists_in(dir) || keys.exists(ROOT_LABEL) || keys.exists(ISSUING_LABEL) {
            return Err(PkiError::CaExists(dir.to_owned()));
        }
        Self::create(dir, keys, organisation, algorithm, now, random)
    }

    /// Makes Tessera an issuing CA under an organisation's hierarchy: `issuing_pem` is the
    /// certificate of the key that `issuing_key` holds, `chain_pem` the certificates above it
    /// (its issuer first, ending with the self-signed root). Everything is checked (key matches
    /// certificate, CA certificate, each signature up to the root) before `persist_key` stores
    /// the key and the certificates are written.
    #[allow(clippy::too_many_arguments)]
    pub fn import(
        dir: &Path,
        issuing_pem: &[u8],
        chain_pem: &[u8],
        issuing_key: Arc<dyn CaKey>,
        keys: Arc<dyn KeyProvider>,
        persist_key: &dyn Fn() -> Result<(), PkiError>,
        random: Arc<dyn Random>,
    ) -> Result<Self, PkiError> {
        if Self::exists_in(dir) {
            return Err(PkiError::CaExists(dir.to_owned()));
        }
        let issuing =
            Certificate::from_pem(issuing_pem).map_err(|e| PkiError::BadCaCertificate {
                name: "the issuing certificate".into(),
                detail: e.to_string(),
            })?;
        let above = parse_certificates("the chain", chain_pem)?;
        if !crate::extensions::is_ca(&issuing) {
            return Err(PkiError::BadCaCertificate {
                name: "the issuing certificate".into(),
                detail: "it is not a CA certificate (basicConstraints cA is not set)".into(),
            });
        }
        let ca = Self::from_parts(dir, &above, &issuing, issuing_key, keys, random)?;
        persist_key()?;
        write_certificate(&dir.join(ISSUING_PEM), &issuing)?;
        let mut chain = String::new();
        for certificate in &above {
            chain.push_str(&certificate.to_pem(der::pem::LineEnding::LF)?);
        }
        fsutil::create_new(&dir.join(CHAIN_PEM), chain.as_bytes(), fsutil::PUBLIC)?;
        Ok(ca)
    }

    fn create(
        dir: &Path,
        keys: Arc<dyn KeyProvider>,
        organisation: &str,
        algorithm: CaKeyAlgorithm,
        now: Timestamp,
        random: Arc<dyn Random>,
    ) -> Result<Self, PkiError> {
        let organisation = organisation.trim();
        if organisation.is_empty() {
            return Err(PkiError::EmptyOrganisation);
        }
        let dn = |cn: String| {
            parse_dn(&format!(
                "CN={},O={}",
                escape_dn_value(&cn),
                escape_dn_value(organisation)
            ))
        };
        let root_name = dn(format!("{organisation} Root CA"))?;
        let issuing_name = dn(format!("{organisation} Issuing CA 1"))?;

        // Both keys are used as read back from the provider, not as generated: the CA is only
        // completed once its stored keys are known to be loadable.
        let generated_root = keys.generate(ROOT_LABEL, algorithm)?;
        let generated_issuing = keys.generate(ISSUING_LABEL, algorithm)?;
        let root_key = keys.load(ROOT_LABEL)?;
        let issuing_key = keys.load(ISSUING_LABEL)?;
        for (label, generated, loaded) in [
            (ROOT_LABEL, &generated_root, &root_key),
            (ISSUING_LABEL, &generated_issuing, &issuing_key),
        ] {
            if generated.public_key_der() != loaded.public_key_der() {
                return Err(PkiError::BadKey {
                    label: label.to_owned(),
                    detail: "the stored key differs from the generated one".into(),
                });
            }
        }
        drop((generated_root, generated_issuing));
        let root_spki = SubjectPublicKeyInfoOwned::from_der(root_key.public_key_der())?;
        let issuing_spki = SubjectPublicKeyInfoOwned::from_der(issuing_key.public_key_der())?;
        let root_id = key_identifier(&root_spki);

        let root_not_after = now.plus_days(ROOT_VALIDITY_DAYS);
        let root = sign_certificate(
            TbsCertificate {
                version: Version::V3,
                serial_number: random_serial(&*random)?,
                signature: root_key.algorithm().signature_algorithm(),
                issuer: root_name.clone(),
                validity: validity(now, root_not_after)?,
                subject: root_name,
                subject_public_key_info: root_spki,
                issuer_unique_id: None,
                subject_unique_id: None,
                extensions: Some(vec![
                    ext::basic_constraints(true, None)?,
                    ext::key_usage(ext::ca_key_usage())?,
                    ext::subject_key_identifier(&root_id)?,
                ]),
            },
            &*root_key,
        )?;

        let issuing_not_after = now.plus_days(ISSUING_VALIDITY_DAYS).min(root_not_after);
        let issuing = sign_certificate(
            TbsCertificate {
                version: Version::V3,
                serial_number: random_serial(&*random)?,
                signature: root_key.algorithm().signature_algorithm(),
                issuer: root.tbs_certificate.subject.clone(),
                validity: validity(now, issuing_not_after)?,
                subject: issuing_name,
                subject_public_key_info: issuing_spki.clone(),
                issuer_unique_id: None,
                subject_unique_id: None,
                extensions: Some(vec![
                    ext::basic_constraints(true, Some(0))?,
                    ext::key_usage(ext::ca_key_usage())?,
                    ext::subject_key_identifier(&key_identifier(&issuing_spki))?,
                    ext::authority_key_identifier(&root_id)?,
                ]),
            },
            &*root_key,
        )?;
        // The root key is needed again only to certify a new issuing CA.
        drop(root_key);

        write_certificate(&dir.join(ROOT_PEM), &root)?;
        write_certificate(&dir.join(ISSUING_PEM), &issuing)?;
        Self::from_parts(
            dir,
            std::slice::from_ref(&root),
            &issuing,
            issuing_key,
            keys,
            random,
        )
    }

    /// Checks that the pieces belong together (the key matches the issuing certificate, each
    /// certificate is signed by the next one up, the last is a self-signed root) and precomputes
    /// what every issuance needs.
    fn from_parts(
        dir: &Path,
        above: &[Certificate],
        issuing: &Certificate,
        issuing_key: Arc<dyn CaKey>,
        keys: Arc<dyn KeyProvider>,
        random: Arc<dyn Random>,
    ) -> Result<Self, PkiError> {
        let bad = |detail: &str| PkiError::BadCaCertificate {
            name: ISSUING_PEM.to_owned(),
            detail: detail.to_owned(),
        };
        let tbs = &issuing.tbs_certificate;
        if tbs.subject_public_key_info.to_der()? != issuing_key.public_key_der() {
            return Err(bad("it does not match the issuing CA key"));
        }
        let root = above
            .last()
            .ok_or_else(|| bad("no root CA certificate was given"))?;
        let mut child = issuing;
        for (i, parent) in above.iter().chain(std::iter::once(root)).enumerate() {
            let what = if i == 0 {
                "the issuing certificate".to_owned()
            } else if i == above.len() {
                "the root certificate".to_owned()
            } else {
                format!("chain certificate {i}")
            };
            let bad = |detail: &str| PkiError::BadCaCertificate {
                name: what.clone(),
                detail: detail.to_owned(),
            };
            if child.tbs_certificate.issuer != parent.tbs_certificate.subject {
                return Err(bad(if i == above.len() {
                    "it is not self-signed: the chain must end with the root CA"
                } else {
                    "it was not issued by the next certificate of the chain"
                }));
            }
            verify_signature(
                &parent.tbs_certificate.subject_public_key_info.to_der()?,
                &child.signature_algorithm,
                &child.tbs_certificate.to_der()?,
                child.signature.raw_bytes(),
            )
            .map_err(|_| bad("its signature does not verify with its issuer's key"))?;
            child = parent;
        }
        let mut above_pem = String::new();
        for certificate in above {
            above_pem.push_str(&certificate.to_pem(der::pem::LineEnding::LF)?);
        }

        // Prefer the identifier the certificate states, so AKIs match whatever method made it.
        let key_id = match tbs.get::<SubjectKeyIdentifier>() {
            Ok(Some((_, ski))) => ski.0.as_bytes().to_vec(),
            _ => key_identifier(&tbs.subject_public_key_info),
        };
        let root_der = root.to_der()?;
        let issuing_der = issuing.to_der()?;
        let signature_algorithm_der = issuing_key.algorithm().signature_algorithm().to_der()?;
        let root_tbs = &root.tbs_certificate;
        let root_key_id = match root_tbs.get::<SubjectKeyIdentifier>() {
            Ok(Some((_, ski))) => ski.0.as_bytes().to_vec(),
            _ => key_identifier(&root_tbs.subject_public_key_info),
        };
        let policy_arc = policy_oids::organisation_arc(&root_key_id);
        let authority_key_identifier = ext::authority_key_identifier(&key_id)?;
        let issuing_not_after = time::from_x509(&tbs.validity.not_after);
        let content = ContentSigning::new(
            dir,
            keys,
            IssuingCa {
                key: issuing_key.clone(),
                name: tbs.subject.clone(),
                authority_key_identifier: authority_key_identifier.clone(),
                not_after: issuing_not_after,
                organisation: organisation_of(&tbs.subject),
                policies: policy_oids::certificate_policies(&[policy_oids::default_policy(
                    &policy_arc,
                    PolicyUse::ContentSigning,
                )])?,
                distribution: Vec::new(),
                random: random.clone(),
                key_identifier: key_id.clone(),
            },
            Arc::new(crate::time::SystemClock),
        );
        Ok(Self {
            dir: dir.to_owned(),
            above_pem,
            issuing_key,
            issuer_text: format_name(&tbs.subject),
            authority_key_identifier,
            issuing_not_after,
            root_pem: root.to_pem(der::pem::LineEnding::LF)?,
            issuing_pem: issuing.to_pem(der::pem::LineEnding::LF)?,
            root_der,
            random,
            distribution: Vec::new(),
            usage_cache: RwLock::default(),
            issuer_der: tbs.subject.to_der()?,
            signature_algorithm_der,
            policy_arc,
            issuing_p7c: crate::cms::certs_only(&[&issuing_der])?,
            issuing_der,
            content: Arc::new(content),
        })
    }

    /// Certificates issued from now on point relying parties to `base` for the CRL, OCSP and
    /// the issuer certificate (see `docs/pki.md`).
    pub fn with_public_url(mut self, base: &str) -> Result<Self, PkiError> {
        self.distribution = ext::distribution(base)?;
        let mut issuer = self.content.issuer().clone();
        issuer.distribution = self.distribution.clone();
        self.content = Arc::new(self.content.with_issuer(issuer));
        Ok(self)
    }

    /// Certificates issued from now on assert policies under `arc` (an organisation's registered
    /// arc, such as one below its IANA private enterprise number) instead of the 2.25 UUID arc
    /// derived from the root: `<arc>.1.<n>` per slot, as `docs/pki.md` lists. A content signer
    /// made before keeps the policy it was made with until it is renewed.
    pub fn with_policy_arc(mut self, arc: &str) -> Result<Self, PkiError> {
        let arc = arc.trim();
        policy_oids::oid_der(arc)?;
        let mut issuer = self.content.issuer().clone();
        issuer.policies = policy_oids::certificate_policies(&[policy_oids::default_policy(
            arc,
            PolicyUse::ContentSigning,
        )])?;
        self.content = Arc::new(self.content.with_issuer(issuer));
        self.policy_arc = arc.to_owned();
        Ok(self)
    }

    /// The clock the content signer renews by (the system's by default).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.content = Arc::new(self.content.with_clock(clock));
        self
    }

    /// Loads the content signer, or makes or renews it as its window says (when the CA opens).
    /// A signer whose certificate lacks what this server now puts in certificates (a public URL
    /// or policy arc configured since it was made, or changed) is renewed too, so that relying
    /// parties can check it as they check the card certificates.
    pub fn prepare_content_signer(&self, now: Timestamp) -> Result<(), PkiError> {
        let generation = self.content.current(now)?;
        if self.content.outdated(&generation) {
            let renewed = self.content.renew(now)?;
            tracing::info!(
                label = %renewed.label(),
                "the content signer was renewed: its certificate's CRL, AIA or policy differed \
                 from this server's configuration"
            );
        }
        Ok(())
    }

    /// The content signer of the cards' signed objects.
    pub fn content_signing(&self) -> &Arc<ContentSigning> {
        &self.content
    }

    /// The organisation's certificate policy arc: `2.25.<n>` from the root, or the one configured
    /// (see `docs/pki.md`).
    pub fn policy_arc(&self) -> &str {
        &self.policy_arc
    }

    /// The certs-only CMS SignedData (DER) holding the issuing CA certificate: the `.p7c` of
    /// the caIssuers access method.
    pub fn issuing_p7c(&self) -> &[u8] {
        &self.issuing_p7c
    }

    /// Issues the certificate of `request`; the synchronous body of
    /// [`CertificateAuthority::issue`].
    pub fn issue_certificate(
        &self,
        request: &CertificateRequest,
    ) -> Result<IssuedCertificate, PkiError> {
        let profile = &request.profile;
        let user = &request.subject.user;
        if profile.validity_days == 0 {
            return Err(PkiError::InvalidValidity(
                "the profile's validity is 0 days".into(),
            ));
        }
        let spki = parse_card_key(&request.public_key_der)?;
        let subject = self.subject(request)?;

        let mut names = Vec::new();
        if profile.san_upn && !user.upn.trim().is_empty() {
            names.push(ext::upn(user.upn.trim())?);
        }
        if profile.san_email && !user.email.trim().is_empty() {
            names.push(ext::email(user.email.trim())?);
        }
        if profile.san_fasc_n {
            let fasc_n = request.subject.fasc_n.ok_or_else(|| {
                PkiError::InvalidSubjectAltName(
                    "the profile puts the FASC-N in the certificate and the card has none".into(),
                )
            })?;
            names.push(ext::fasc_n(&fasc_n)?);
        }
        if profile.san_card_uuid {
            names.push(ext::card_uuid(&request.subject.card_uuid)?);
        }
        if subject.is_empty() && names.is_empty() {
            return Err(PkiError::InvalidSubject(
                "the certificate would have neither a subject nor an alternative name".into(),
            ));
        }

        let not_before = request.not_before;
        if not_before >= self.issuing_not_after {
            return Err(PkiError::InvalidValidity(format!(
                "the issuing CA expires on {}",
                self.issuing_not_after.date()
            )));
        }
        let not_after = not_before
            .plus_days(i64::from(profile.validity_days))
            .min(self.issuing_not_after);

        let mut extensions = self.usage_extensions(request.slot, profile)?;
        if !names.is_empty() {
            extensions.push(ext::subject_alt_name(names, subject.is_empty())?);
        }
        extensions.push(ext::subject_key_identifier(&key_identifier(&spki))?);
        extensions.push(self.authority_key_identifier.clone());
        extensions.extend(self.distribution.iter().cloned());

        let serial_number = random_serial(&*self.random)?;
        let serial = hex::encode(serial_number.as_bytes());
        let subject_text = format_name(&subject);
        // The TBSCertificate is assembled from parts, the fixed ones encoded once at load: this
        // runs for every certificate and the CA must keep up with OpenSSL's signing rate. The
        // card's key goes in as the canonical DER `parse_card_key` checked it to be.
        let mut tbs = Vec::with_capacity(512 + request.public_key_der.len());
        tbs.extend_from_slice(&[0xA0, 0x03, 0x02, 0x01, 0x02]); // [0] version v3
        tbs.extend_from_slice(&serial_number.to_der()?);
        tbs.extend_from_slice(&self.signature_algorithm_der);
        tbs.extend_from_slice(&self.issuer_der);
        tbs.extend_from_slice(&validity(not_before, not_after)?.to_der()?);
        tbs.extend_from_slice(&subject.to_der()?);
        tbs.extend_from_slice(&request.public_key_der);
        let mut exts = Vec::with_capacity(512);
        for e in &extensions {
            exts.extend_from_slice(&e.to_der()?);
        }
        let exts = der_tlv(0x30, &exts)?;
        tbs.extend_from_slice(&der_tlv(0xA3, &exts)?);
        let der = sign_tbs_der(
            &der_tlv(0x30, &tbs)?,
            &self.signature_algorithm_der,
            &*self.issuing_key,
        )?;
        Ok(IssuedCertificate {
            serial,
            der,
            subject: subject_text,
            issuer: self.issuer_text.clone(),
            not_before,
            not_after,
        })
    }

    /// basicConstraints, keyUsage, extendedKeyUsage, certificatePolicies and pivInterim of a
    /// profile: the same for every certificate of a slot policy, so they are encoded once and
    /// kept. Without policy OIDs of its own the profile asserts the organisation's for `slot`.
    fn usage_extensions(
        &self,
        slot: tessera_core::model::Slot,
        profile: &tessera_core::model::CertificateProfile,
    ) -> Result<Vec<Extension>, PkiError> {
        let policies = if profile.policy_oids.is_empty() {
            vec![policy_oids::default_policy(
                &self.policy_arc,
                PolicyUse::Slot(slot),
            )]
        } else {
            profile.policy_oids.clone()
        };
        let key = (
            profile.key_usage.clone(),
            profile.extended_key_usage.clone(),
            policies,
            profile.piv_interim,
        );
        if let Some(found) = self
            .usage_cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(found.clone());
        }
        let mut extensions = vec![ext::basic_constraints(false, None)?];
        let usage = ext::profile_key_usage(&profile.key_usage);
        if !usage.is_empty() {
            extensions.push(ext::key_usage(usage)?);
        }
        if !profile.extended_key_usage.is_empty() {
            extensions.push(ext::extended_key_usage(&profile.extended_key_usage)?);
        }
        extensions.push(policy_oids::certificate_policies(&key.2)?);
        if profile.piv_interim {
            extensions.push(ext::piv_interim()?);
        }
        self.usage_cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, extensions.clone());
        Ok(extensions)
    }

    /// Expands the profile's subject template. User values are escaped before expansion, so a
    /// comma in a name stays part of the name instead of starting a new attribute.
    fn subject(&self, request: &CertificateRequest) -> Result<Name, PkiError> {
        let user = &request.subject.user;
        // Only the fields the template names are looked up and escaped: this runs per certificate.
        let lookup = |name: &str| {
            let value = match name {
                "device.id" | "card.uuid" => request.subject.card_uuid.trim().to_ascii_lowercase(),
                other => template::field(user, None, other)?,
            };
            Some(escape_dn_value(value.trim()))
        };
        parse_dn(&template::expand_with(
            &request.profile.subject_template,
            &lookup,
        ))
    }

    /// The root CA certificate, PEM.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// The issuing CA certificate, PEM.
    pub fn issuing_pem(&self) -> &str {
        &self.issuing_pem
    }

    /// Issuing CA certificate followed by every certificate above it up to the root, PEM.
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.issuing_pem, self.above_pem)
    }

    /// The algorithm of the issuing CA key, which signs every leaf.
    pub fn key_algorithm(&self) -> CaKeyAlgorithm {
        self.issuing_key.algorithm()
    }

    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    pub fn issuing_der(&self) -> &[u8] {
        &self.issuing_der
    }

    /// The issuing CA's subject, as leaf certificates name their issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer_text
    }

    /// When the issuing CA expires; no leaf outlives it.
    pub fn issuing_not_after(&self) -> Timestamp {
        self.issuing_not_after
    }

    pub fn directory(&self) -> &Path {
        &self.dir
    }

    /// The issuing CA's signing key, for CRLs and OCSP responses.
    pub fn issuing_key(&self) -> Arc<dyn CaKey> {
        Arc::clone(&self.issuing_key)
    }
}

#[async_trait]
impl CertificateAuthority for Ca {
    async fn issue(&self, request: &CertificateRequest) -> Result<IssuedCertificate, PortError> {
        self.issue_certificate(request).map_err(PortError::from)
    }

    fn chain_pem(&self) -> String {
        Ca::chain_pem(self)
    }

    fn content_signer(&self) -> Arc<dyn tessera_core::fips201::ContentSigner> {
        self.content.clone()
    }

    fn content_signer_certificate(&self) -> Result<CertificateSummary, PortError> {
        let generation = self.content.current(self.content.now())?;
        Ok(summarise(generation.certificate_der())?)
    }

    fn renew_content_signer(&self) -> Result<CertificateSummary, PortError> {
        let generation = self.content.renew(self.content.now())?;
        Ok(summarise(generation.certificate_der())?)
    }
}

/// Subject, issuer, serial and validity of a DER certificate, as the PKI page shows them.
pub fn summarise(der: &[u8]) -> Result<CertificateSummary, PkiError> {
    let certificate = Certificate::from_der(der)?;
    let tbs = &certificate.tbs_certificate;
    Ok(CertificateSummary {
        serial: hex::encode(tbs.serial_number.as_bytes()),
        subject: format_name(&tbs.subject),
        issuer: format_name(&tbs.issuer),
        not_before: time::from_x509(&tbs.validity.not_before),
        not_after: time::from_x509(&tbs.validity.not_after),
        der: der.to_vec(),
    })
}

/// The organisation a CA's subject names: its O, else its CN.
fn organisation_of(name: &Name) -> String {
    let value = |oid: const_oid::ObjectIdentifier| {
        name.0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .find(|atv| atv.oid == oid)
            .map(|atv| {
                der::asn1::Utf8StringRef::try_from(&atv.value)
                    .map(|s| s.as_str().to_owned())
                    .or_else(|_| {
                        der::asn1::PrintableStringRef::try_from(&atv.value)
                            .map(|s| s.as_str().to_owned())
                    })
                    .unwrap_or_default()
            })
            .filter(|v| !v.is_empty())
    };
    value(const_oid::db::rfc4519::O)
        .or_else(|| value(const_oid::db::rfc4519::CN))
        .unwrap_or_else(|| "Tessera".into())
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("dir", &self.dir)
            .field("issuer", &self.issuer_text)
            .finish_non_exhaustive()
    }
}

/// One DER TLV: `tag`, the definite length of `body`, `body`.
fn der_tlv(tag: u8, body: &[u8]) -> Result<Vec<u8>, PkiError> {
    let header = der::Header::new(der::Tag::try_from(tag)?, der::Length::try_from(body.len())?)?;
    let mut out = header.to_der()?;
    out.extend_from_slice(body);
    Ok(out)
}

/// Signs an encoded TBSCertificate and returns the certificate's DER: the signed bytes are the
/// certificate's bytes, never encoded twice.
fn sign_tbs_der(
    tbs_der: &[u8],
    algorithm_der: &[u8],
    key: &dyn CaKey,
) -> Result<Vec<u8>, PkiError> {
    let signature = BitString::from_bytes(&key.sign(tbs_der)?)?.to_der()?;
    let mut body = Vec::with_capacity(tbs_der.len() + algorithm_der.len() + signature.len());
    body.extend_from_slice(tbs_der);
    body.extend_from_slice(algorithm_der);
    body.extend_from_slice(&signature);
    der_tlv(0x30, &body)
}

pub(crate) fn sign_certificate(
    tbs: TbsCertificate,
    key: &dyn CaKey,
) -> Result<Certificate, PkiError> {
    let signature = key.sign(&tbs.to_der()?)?;
    Ok(Certificate {
        signature_algorithm: tbs.signature.clone(),
        tbs_certificate: tbs,
        signature: BitString::from_bytes(&signature)?,
    })
}

/// 20 random bytes, positive (top bit clear) and with a non-zero first byte so that every serial
/// has the full 159 bits of entropy-bearing length that CA/B-style checks expect.
pub(crate) fn random_serial(random: &dyn Random) -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 20];
    random.fill(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f).max(1);
    Ok(SerialNumber::new(&bytes)?)
}

pub(crate) fn validity(not_before: Timestamp, not_after: Timestamp) -> Result<Validity, PkiError> {
    Ok(Validity {
        not_before: time::to_x509(not_before)?,
        not_after: time::to_x509(not_after)?,
    })
}

fn read_certificate(path: &Path) -> Result<Certificate, PkiError> {
    let pem = fsutil::read(path)?;
    Certificate::from_pem(&pem).map_err(|e| PkiError::BadCaCertificate {
        name: path.display().to_string(),
        detail: e.to_string(),
    })
}

/// Every certificate of a PEM bundle, in order.
fn parse_certificates(name: &str, pem: &[u8]) -> Result<Vec<Certificate>, PkiError> {
    let bad = |detail: String| PkiError::BadCaCertificate {
        name: name.to_owned(),
        detail,
    };
    let certificates = Certificate::load_pem_chain(pem).map_err(|e| bad(e.to_string()))?;
    if certificates.is_empty() {
        return Err(bad("it holds no certificate".into()));
    }
    Ok(certificates)
}

fn read_certificates(path: &Path) -> Result<Vec<Certificate>, PkiError> {
    parse_certificates(&path.display().to_string(), &fsutil::read(path)?)
}

fn write_certificate(path: &Path, certificate: &Certificate) -> Result<(), PkiError> {
    let pem = certificate.to_pem(der::pem::LineEnding::LF)?;
    fsutil::create_new(path, pem.as_bytes(), fsutil::PUBLIC)
}

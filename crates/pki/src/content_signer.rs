//! The PIV content signer: the key and certificate (EKU id-PIV-content-signing,
//! 2.16.840.1.101.3.6.7) that sign the CHUID, the biometrics and the Security Object of every
//! card (SP 800-73-4 part 1, 3.1.2; SP 800-76-2, 9.2.3; FIPS 201-3, 4.2.1).
//!
//! The key comes from the CA's key provider (sealed software key or PKCS#11 token) under a new
//! label per generation, `content-signer-<id>-<n>`, because a provider never replaces a key
//! (`<id>`: the first four bytes of the issuing CA's key identifier, in hex, so that CAs sharing
//! a token never take each other's labels); the certificate, issued by the issuing CA, lies
//! beside the CA's as `content-signer-<id>-<n>.pem`. Old generations stay: cards signed by them
//! keep verifying.
//!
//! Validity and renewal: a certificate is valid for [`VALIDITY_DAYS`] (six years) and a new
//! generation is made once fewer than [`RENEW_BEFORE_DAYS`] (three years and thirty days) remain,
//! so a signature made today stays verifiable for at least the three years a card lives; never
//! beyond the issuing CA's notAfter. Renewal happens when the CA opens, before a signature when
//! inside that window, and on demand. Replicas that share the CA folder adopt the newest
//! generation on disk before making one, so they converge on one signer.

use crate::ca::{random_serial, sign_certificate, validity};
use crate::error::PkiError;
use crate::extensions as ext;
use crate::fsutil;
use crate::keys::{CaKey, KeyProvider};
use crate::name::{escape_dn_value, parse_dn};
use crate::public_key::key_identifier;
use crate::time;
use der::{Decode, DecodePem, Encode, EncodePem};
use spki::SubjectPublicKeyInfoOwned;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tessera_core::fips201::{ContentSigner, ContentToSign};
use tessera_core::model::Timestamp;
use tessera_core::ports::{Clock, PortError, Random};
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::Name;

/// Six years: a card signed on the last day before renewal (three years and thirty days left)
/// is still inside the certificate's validity when it expires three years later.
pub const VALIDITY_DAYS: i64 = 6 * 365;
/// A new generation is made once fewer days than this remain.
pub const RENEW_BEFORE_DAYS: i64 = 3 * 365 + 30;
/// id-PIV-content-signing (FIPS 201-3, appendix B.2).
pub const ID_PIV_CONTENT_SIGNING: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.7");
/// How many labels a renewal tries past ones taken by a crashed or racing replica.
const LABEL_ATTEMPTS: u32 = 8;

/// What the content signer's certificates take from the issuing CA.
#[derive(Clone)]
pub(crate) struct IssuingCa {
    pub key: Arc<dyn CaKey>,
    pub name: Name,
    pub authority_key_identifier: Extension,
    pub not_after: Timestamp,
    /// The organisation named in the signer's subject.
    pub organisation: String,
    /// certificatePolicies with the content-signing policy.
    pub policies: Extension,
    /// CRL distribution point and AIA, when the server has a public URL.
    pub distribution: Vec<Extension>,
    pub random: Arc<dyn Random>,
    /// The issuing CA's key identifier, which names the signer's labels.
    pub key_identifier: Vec<u8>,
}

/// One generation: a key and its certificate.
pub struct Generation {
    pub number: u32,
    label: String,
    key: Arc<dyn CaKey>,
    certificate: Certificate,
    der: Vec<u8>,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

impl Generation {
    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.der
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The key provider's label of the key.
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// The content signer of a CA: the current generation, renewed as the module header says.
pub struct ContentSigning {
    dir: PathBuf,
    /// `content-signer-<id>-`, followed by the generation's number.
    prefix: String,
    keys: Arc<dyn KeyProvider>,
    issuer: IssuingCa,
    clock: Arc<dyn Clock>,
    current: RwLock<Option<Arc<Generation>>>,
    /// One renewal at a time in this process; other processes are handled by the labels and
    /// the never-overwritten certificate files.
    renewing: Mutex<()>,
    /// When the folder was last listed for a newer generation (seconds, the signer's clock): at
    /// most once a [`DISK_CHECK_SECONDS`], not at every signature of every card.
    disk_checked: AtomicI64,
}

/// How often the folder is listed for a generation another replica made. A generation in hand
/// signs validly until it is due, so a replica may sign with it a minute longer.
const DISK_CHECK_SECONDS: i64 = 60;

impl ContentSigning {
    pub(crate) fn new(
        dir: &Path,
        keys: Arc<dyn KeyProvider>,
        issuer: IssuingCa,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let id = &issuer.key_identifier;
        Self {
            dir: dir.to_owned(),
            prefix: format!("content-signer-{}-", hex::encode(&id[..id.len().min(4)])),
            keys,
            issuer,
            clock,
            current: RwLock::new(None),
            renewing: Mutex::new(()),
            disk_checked: AtomicI64::new(i64::MIN),
        }
    }

    /// The same signer with other issuing-CA details (a public URL set after opening); the
    /// loaded generation is kept.
    pub(crate) fn with_issuer(&self, issuer: IssuingCa) -> Self {
        Self {
            dir: self.dir.clone(),
            prefix: self.prefix.clone(),
            keys: self.keys.clone(),
            issuer,
            clock: self.clock.clone(),
            current: RwLock::new(self.loaded()),
            renewing: Mutex::new(()),
            disk_checked: AtomicI64::new(i64::MIN),
        }
    }

    pub(crate) fn with_clock(&self, clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            ..self.with_issuer(self.issuer.clone())
        }
    }

    pub(crate) fn issuer(&self) -> &IssuingCa {
        &self.issuer
    }

    /// The time by the signer's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn label(&self, number: u32) -> String {
        format!("{}{number}", self.prefix)
    }

    fn certificate_file(&self, number: u32) -> PathBuf {
        self.dir.join(format!("{}.pem", self.label(number)))
    }

    fn loaded(&self) -> Option<Arc<Generation>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, generation: Arc<Generation>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(generation);
    }

    /// The generation that signs at `now`: the newest on disk, renewed first when it is inside
    /// the renewal window (or there is none yet).
    pub fn current(&self, now: Timestamp) -> Result<Arc<Generation>, PkiError> {
        let loaded = self.loaded();
        if let Some(g) = &loaded {
            let checked = self.disk_checked.load(Ordering::Relaxed);
            if now.0.saturating_sub(checked) < DISK_CHECK_SECONDS && !self.due(g, now) {
                return Ok(g.clone());
            }
        }
        let newest = self.newest_number()?;
        self.disk_checked.store(now.0, Ordering::Relaxed);
        let generation = match (&loaded, newest) {
            (Some(g), Some(n)) if g.number >= n => g.clone(),
            (_, Some(n)) => {
                let g = Arc::new(self.load(n)?);
                self.set(g.clone());
                g
            }
            (_, None) => return self.renew_if_needed(now, None),
        };
        if self.due(&generation, now) {
            return self.renew_if_needed(now, Some(generation));
        }
        Ok(generation)
    }

    /// Whether `generation`'s certificate carries other CRL distribution points, AIA or
    /// certificate policies than a new one would (the public URL or the policy arc changed since
    /// it was made).
    pub fn outdated(&self, generation: &Generation) -> bool {
        use const_oid::db::rfc5280::{
            ID_CE_CERTIFICATE_POLICIES, ID_CE_CRL_DISTRIBUTION_POINTS, ID_PE_AUTHORITY_INFO_ACCESS,
        };
        let watched = [
            ID_CE_CERTIFICATE_POLICIES,
            ID_CE_CRL_DISTRIBUTION_POINTS,
            ID_PE_AUTHORITY_INFO_ACCESS,
        ];
        let mut carried: Vec<&Extension> = generation
            .certificate
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .filter(|e| watched.contains(&e.extn_id))
            .collect();
        let mut wanted: Vec<&Extension> = self.issuer.distribution.iter().collect();
        wanted.push(&self.issuer.policies);
        carried.sort_by_key(|e| e.extn_id);
        wanted.sort_by_key(|e| e.extn_id);
        carried != wanted
    }

    /// A new generation now, whatever the current one's validity (the operator's renewal).
    pub fn renew(&self, now: Timestamp) -> Result<Arc<Generation>, PkiError> {
        let _one = self.renewing.lock().unwrap_or_else(|p| p.into_inner());
        let generation = Arc::new(self.make(now)?);
        self.set(generation.clone());
        Ok(generation)
    }

    /// Whether `generation` should be replaced at `now`: inside the window, and a new one would
    /// outlast it (near the issuing CA's end a new certificate could not, and renewing at every
    /// signature would only pile up keys).
    fn due(&self, generation: &Generation, now: Timestamp) -> bool {
        let window = generation.not_after.0 - now.0 < RENEW_BEFORE_DAYS * 86_400;
        window && self.new_not_after(now) > generation.not_after.plus_days(1)
    }

    fn new_not_after(&self, now: Timestamp) -> Timestamp {
        now.plus_days(VALIDITY_DAYS).min(self.issuer.not_after)
    }

    fn renew_if_needed(
        &self,
        now: Timestamp,
        seen: Option<Arc<Generation>>,
    ) -> Result<Arc<Generation>, PkiError> {
        let _one = self.renewing.lock().unwrap_or_else(|p| p.into_inner());
        // Another thread or replica may have renewed while this one waited.
        if let Some(n) = self.newest_number()? {
            if seen.as_ref().is_none_or(|g| n > g.number) {
                let g = Arc::new(self.load(n)?);
                self.set(g.clone());
                if !self.due(&g, now) {
                    return Ok(g);
                }
            }
        }
        match self.make(now) {
            Ok(g) => {
                let g = Arc::new(g);
                self.set(g.clone());
                tracing::info!(
                    label = %g.label(),
                    not_after = %g.not_after.date(),
                    "a new content signing certificate was issued"
                );
                Ok(g)
            }
            // The one in hand still signs validly: renewal is retried at the next signature.
            Err(e) => match seen.filter(|g| now < g.not_after) {
                Some(g) => {
                    tracing::warn!(error = %e, "the content signer could not be renewed");
                    Ok(g)
                }
                None => Err(e),
            },
        }
    }

    /// The highest generation with a certificate on disk.
    fn newest_number(&self) -> Result<Option<u32>, PkiError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(source) => {
                return Err(PkiError::Io {
                    action: "list",
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        Ok(entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix(self.prefix.as_str())?
                    .strip_suffix(".pem")?
                    .parse::<u32>()
                    .ok()
            })
            .max())
    }

    /// Generation `number` from disk and the key provider; the key must be the certificate's.
    fn load(&self, number: u32) -> Result<Generation, PkiError> {
        let path = self.certificate_file(number);
        let certificate = Certificate::from_pem(fsutil::read(&path)?).map_err(|e| {
            PkiError::BadCaCertificate {
                name: path.display().to_string(),
                detail: e.to_string(),
            }
        })?;
        let key = self.keys.load(&self.label(number))?;
        generation(number, self.label(number), key, certificate)
    }

    /// Generates a key under the first free label after the newest generation and certifies it.
    fn make(&self, now: Timestamp) -> Result<Generation, PkiError> {
        if now >= self.issuer.not_after {
            return Err(PkiError::InvalidValidity(format!(
                "the issuing CA expired on {}",
                self.issuer.not_after.date()
            )));
        }
        let first = self.newest_number()?.map_or(1, |n| n + 1);
        for number in first..first + LABEL_ATTEMPTS {
            // A key without a certificate: a crashed renewal, or another replica's in progress.
            let label = self.label(number);
            if self.keys.exists(&label) || self.certificate_file(number).exists() {
                continue;
            }
            let key = match self.keys.generate(&label, self.issuer.key.algorithm()) {
                // Used as read back from the provider, as the CA's own keys are.
                Ok(_) => self.keys.load(&label)?,
                Err(PkiError::KeyExists(_)) => continue,
                Err(e) => return Err(e),
            };
            let certificate = self.certify(&*key, now)?;
            let pem = certificate.to_pem(der::pem::LineEnding::LF)?;
            fsutil::create_new(
                &self.certificate_file(number),
                pem.as_bytes(),
                fsutil::PUBLIC,
            )?;
            return generation(number, label, key, certificate);
        }
        Err(PkiError::Signing(format!(
            "no free content signer label after {}",
            self.label(first)
        )))
    }

    /// The content signing certificate of `key` (FPKI PIV-I content-signing profile, worksheet
    /// 18): keyUsage digitalSignature and EKU id-PIV-content-signing, both critical.
    fn certify(&self, key: &dyn CaKey, now: Timestamp) -> Result<Certificate, PkiError> {
        let issuer = &self.issuer;
        let organisation = escape_dn_value(&issuer.organisation);
        let subject = parse_dn(&format!(
            "CN={organisation} PIV Content Signer,O={organisation}"
        ))?;
        let spki = SubjectPublicKeyInfoOwned::from_der(key.public_key_der())?;
        let mut extensions = vec![
            ext::key_usage(KeyUsages::DigitalSignature.into())?,
            ext::extension(&ExtendedKeyUsage(vec![ID_PIV_CONTENT_SIGNING]), true)?,
            ext::subject_key_identifier(&key_identifier(&spki))?,
            issuer.authority_key_identifier.clone(),
            issuer.policies.clone(),
        ];
        extensions.extend(issuer.distribution.iter().cloned());
        sign_certificate(
            TbsCertificate {
                version: Version::V3,
                serial_number: random_serial(&*issuer.random)?,
                signature: issuer.key.algorithm().signature_algorithm(),
                issuer: issuer.name.clone(),
                validity: validity(now, self.new_not_after(now))?,
                subject,
                subject_public_key_info: spki,
                issuer_unique_id: None,
                subject_unique_id: None,
                extensions: Some(extensions),
            },
            &*issuer.key,
        )
    }

    /// Signs through the current generation; the body of [`ContentSigner::sign`].
    pub fn sign_content(&self, request: &ContentToSign<'_>) -> Result<Vec<u8>, PkiError> {
        let now = self.clock.now();
        let generation = self.current(now)?;
        // Past the issuing CA's end no new certificate can be made, and a signature by an
        // expired one would not verify.
        if now >= generation.not_after {
            return Err(PkiError::InvalidValidity(format!(
                "the content signing certificate expired on {}, with the issuing CA",
                generation.not_after.date()
            )));
        }
        crate::cms::sign(&*generation.key, &generation.certificate, request)
    }
}

fn generation(
    number: u32,
    label: String,
    key: Arc<dyn CaKey>,
    certificate: Certificate,
) -> Result<Generation, PkiError> {
    let tbs = &certificate.tbs_certificate;
    if tbs.subject_public_key_info.to_der()? != key.public_key_der() {
        return Err(PkiError::BadKey {
            label,
            detail: "it does not match its certificate".into(),
        });
    }
    Ok(Generation {
        number,
        label,
        not_before: time::from_x509(&tbs.validity.not_before),
        not_after: time::from_x509(&tbs.validity.not_after),
        der: certificate.to_der()?,
        key,
        certificate,
    })
}

impl ContentSigner for ContentSigning {
    fn sign(&self, request: &ContentToSign<'_>) -> Result<Vec<u8>, PortError> {
        self.sign_content(request).map_err(PortError::from)
    }
}

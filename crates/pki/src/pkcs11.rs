//! CA keys on a PKCS#11 token (a network HSM, a USB HSM, SoftHSM in tests). The private keys are
//! generated on the token, marked sensitive and non-extractable, and never leave it; Tessera only
//! asks the token to sign.
//!
//! The module is loaded at run time (`cryptoki`), so nothing is linked at build time. One logged-in
//! session is kept in a small pool, so signing does not log in each time; the pool is behind a
//! mutex because a PKCS#11 session must not be used by two threads at once.
//!
//! ECDSA: the host hashes (SHA-256 or SHA-384) and the token signs with raw `CKM_ECDSA`, because
//! many tokens (SoftHSM 2.6 among them) lack `CKM_ECDSA_SHA256`; the token's `r || s` is turned
//! into the DER `Ecdsa-Sig-Value` that X.509 carries. RSA: `CKM_SHA256_RSA_PKCS`.

use crate::error::PkiError;
use crate::keys::{ec_spki, rsa_spki, CaKey, CaKeyAlgorithm, KeyProvider};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::Encode;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use zeroize::Zeroizing;

/// The environment variable that holds the token's user PIN when no PIN file is configured.
pub const PIN_ENV: &str = "TESSERA_PKCS11_PIN";
/// At most this many idle sessions are kept; more are opened under concurrent signing and closed.
const POOL_SIZE: usize = 4;

/// Where the CA keys are and how to reach them. This is what `ca.json` records; the PIN itself is
/// never stored, only where to read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pkcs11Settings {
    /// Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token label (slot ids can change when tokens are added).
    pub token: String,
    /// A file holding the user PIN; without it the PIN comes from `TESSERA_PKCS11_PIN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_file: Option<PathBuf>,
    /// The CA's key names (`root`, `issuing`) mapped to `CKA_LABEL`s on the token. A name that is
    /// not mapped is used as the label itself.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub key_labels: BTreeMap<String, String>,
}

impl Pkcs11Settings {
    /// The user PIN: the PIN file if one is configured, `TESSERA_PKCS11_PIN` otherwise. A trailing
    /// line break in the file is not part of the PIN.
    pub fn read_pin(&self) -> Result<Pkcs11Pin, PkiError> {
        let text = match &self.pin_file {
            Some(path) => Zeroizing::new(
                String::from_utf8(crate::fsutil::read(path)?)
                    .map_err(|_| PkiError::Config(format!("{} is not text", path.display())))?,
            ),
            None => Zeroizing::new(std::env::var(PIN_ENV).map_err(|_| {
                PkiError::MissingSecret(format!(
                    "the PKCS#11 user PIN: give a PIN file or set {PIN_ENV}"
                ))
            })?),
        };
        let pin = text.trim_end_matches(['\r', '\n']);
        if pin.is_empty() {
            return Err(PkiError::MissingSecret(
                "the PKCS#11 user PIN is empty".into(),
            ));
        }
        Ok(Pkcs11Pin(Zeroizing::new(pin.to_owned())))
    }

    fn token_label<'a>(&'a self, label: &'a str) -> &'a str {
        self.key_labels.get(label).map_or(label, String::as_str)
    }
}

/// A token user PIN. Zeroized on drop; no `Debug`, so it cannot end up in a log line.
pub struct Pkcs11Pin(Zeroizing<String>);

impl Pkcs11Pin {
    pub fn new(pin: &str) -> Self {
        Self(Zeroizing::new(pin.to_owned()))
    }
}

/// A logged-in token and its idle sessions.
struct Token {
    pkcs11: Pkcs11,
    slot: Slot,
    label: String,
    /// cryptoki's PIN type wipes itself on drop.
    pin: AuthPin,
    idle: Mutex<Vec<Session>>,
}

impl Token {
    fn open_session(&self) -> Result<Session, PkiError> {
        let session = self
            .pkcs11
            .open_rw_session(self.slot)
            .map_err(|e| ck(&format!("cannot open a session on token {}", self.label), e))?;
        // Login is per application, not per session: a second session finds it done.
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(PkiError::Pkcs11(format!(
                "the user PIN of token {} is wrong",
                self.label
            ))),
            Err(e) => Err(ck(&format!("cannot log in to token {}", self.label), e)),
        }
    }

    /// Runs `f` on an idle session (or a new one). A session the token has dropped (token
    /// reinserted, HSM restarted) is replaced once.
    fn with_session<T>(&self, f: impl Fn(&Session) -> Result<T, CkError>) -> Result<T, PkiError> {
        let mut last = None;
        for _ in 0..2 {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let session = match idle {
                Some(session) => session,
                None => self.open_session()?,
            };
            match f(&session) {
                Err(CkError::Pkcs11(
                    rv @ (RvError::SessionHandleInvalid
                    | RvError::SessionClosed
                    | RvError::UserNotLoggedIn
                    | RvError::DeviceRemoved
                    | RvError::TokenNotPresent),
                    function,
                )) => {
                    drop(session);
                    last = Some(CkError::Pkcs11(rv, function));
                }
                result => {
                    let mut pool = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                    if pool.len() < POOL_SIZE {
                        pool.push(session);
                    }
                    return result.map_err(|e| ck(&format!("token {}", self.label), e));
                }
            }
        }
        Err(ck(
            &format!("token {} dropped the session", self.label),
            last.unwrap_or(CkError::NotSupported),
        ))
    }
}

fn ck(context: &str, e: CkError) -> PkiError {
    PkiError::Pkcs11(format!("{context}: {e}"))
}

/// One initialised context per module per process: `C_Initialize` may only be called once.
fn context(module: &Path) -> Result<Pkcs11, PkiError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut contexts = CONTEXTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(pkcs11) = contexts.get(module) {
        return Ok(pkcs11.clone());
    }
    let pkcs11 = Pkcs11::new(module).map_err(|e| {
        PkiError::Pkcs11(format!("cannot load the module {}: {e}", module.display()))
    })?;
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(ck(&format!("cannot initialise {}", module.display()), e)),
    }
    contexts.insert(module.to_owned(), pkcs11.clone());
    Ok(pkcs11)
}

/// CA keys on a PKCS#11 token, found by `CKA_LABEL`.
pub struct Pkcs11KeyProvider {
    settings: Pkcs11Settings,
    token: Arc<Token>,
}

impl Pkcs11KeyProvider {
    /// Loads the module, finds the token by label and logs in.
    pub fn open(settings: Pkcs11Settings, pin: Pkcs11Pin) -> Result<Self, PkiError> {
        let pkcs11 = context(&settings.module)?;
        let slots = pkcs11
            .get_slots_with_token()
            .map_err(|e| ck("cannot list the slots", e))?;
        let mut labels = Vec::new();
        let mut found = None;
        for slot in slots {
            let info = pkcs11
                .get_token_info(slot)
                .map_err(|e| ck("cannot read a token", e))?;
            let label = info.label().trim_end().to_owned();
            if label == settings.token {
                found = Some(slot);
                break;
            }
            labels.push(label);
        }
        let slot = found.ok_or_else(|| {
            PkiError::Pkcs11(format!(
                "no token labelled {:?} in {} (tokens: {})",
                settings.token,
                settings.module.display(),
                if labels.is_empty() {
                    "none".to_owned()
                } else {
                    labels.join(", ")
                }
            ))
        })?;
        let token = Token {
            pkcs11,
            slot,
            label: settings.token.clone(),
            pin: AuthPin::new(pin.0.as_str().into()),
            idle: Mutex::new(Vec::new()),
        };
        // Log in now, so a wrong PIN is reported at start and not at the first issuance.
        let session = token.open_session()?;
        token
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(session);
        Ok(Self {
            settings,
            token: Arc::new(token),
        })
    }

    pub fn settings(&self) -> &Pkcs11Settings {
        &self.settings
    }

    fn find(
        session: &Session,
        class: ObjectClass,
        label: &str,
    ) -> Result<Vec<ObjectHandle>, CkError> {
        session.find_objects(&[
            Attribute::Token(true),
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
    }

    fn not_found(&self, label: &str) -> PkiError {
        PkiError::KeyNotFound {
            label: self.settings.token_label(label).to_owned(),
            place: format!("PKCS#11 token {:?}", self.settings.token),
        }
    }

    /// The public key and algorithm of the key pair labelled `token_label`.
    fn describe(
        session: &Session,
        private: ObjectHandle,
        token_label: &str,
    ) -> Result<Result<(CaKeyAlgorithm, Vec<u8>), String>, CkError> {
        let attributes = session.get_attributes(private, &[AttributeType::KeyType])?;
        let key_type = attributes.iter().find_map(|a| match a {
            Attribute::KeyType(t) => Some(*t),
            _ => None,
        });
        let public = Self::find(session, ObjectClass::PUBLIC_KEY, token_label)?;
        if key_type == Some(KeyType::EC) {
            let Some(&public) = public.first() else {
                return Ok(Err("the token has no public key with that label".into()));
            };
            let attributes = session
                .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])?;
            let (mut params, mut point) = (None, None);
            for attribute in attributes {
                match attribute {
                    Attribute::EcParams(p) => params = Some(p),
                    Attribute::EcPoint(p) => point = Some(p),
                    _ => {}
                }
            }
            let algorithm = match params.as_deref() {
                Some(p) if p == curve_params(CaKeyAlgorithm::EcdsaP256Sha256) => {
                    CaKeyAlgorithm::EcdsaP256Sha256
                }
                Some(p) if p == curve_params(CaKeyAlgorithm::EcdsaP384Sha384) => {
                    CaKeyAlgorithm::EcdsaP384Sha384
                }
                _ => return Ok(Err("the EC curve is neither P-256 nor P-384".into())),
            };
            // CKA_EC_POINT is a DER OCTET STRING around the SEC1 point; a few modules give the
            // bare point.
            let point = point.unwrap_or_default();
            let sec1 = match der::asn1::OctetString::from_der(&point) {
                Ok(octets) => octets.as_bytes().to_vec(),
                Err(_) => point,
            };
            return Ok(ec_spki(algorithm, &sec1)
                .map(|spki| (algorithm, spki))
                .map_err(|e| e.to_string()));
        }
        if key_type == Some(KeyType::RSA) {
            // The modulus and exponent are public attributes of the private key too, so a key
            // imported without its public object still loads.
            let object = public.first().copied().unwrap_or(private);
            let attributes = session.get_attributes(
                object,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )?;
            let (mut n, mut e) = (None, None);
            for attribute in attributes {
                match attribute {
                    Attribute::Modulus(v) => n = Some(v),
                    Attribute::PublicExponent(v) => e = Some(v),
                    _ => {}
                }
            }
            let (Some(n), Some(e)) = (n, e) else {
                return Ok(Err("the RSA key does not show its modulus".into()));
            };
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            let algorithm = match bits {
                2048 => CaKeyAlgorithm::Rsa2048Sha256,
                3072 => CaKeyAlgorithm::Rsa3072Sha256,
                _ => {
                    return Ok(Err(format!(
                        "an RSA CA key of {bits} bits is not supported"
                    )))
                }
            };
            return Ok(rsa_spki(&n, &e)
                .map(|spki| (algorithm, spki))
                .map_err(|e| e.to_string()));
        }
        Ok(Err("the key is neither EC nor RSA".into()))
    }
}

use der::Decode as _;

/// DER `namedCurve` OID, the value of `CKA_EC_PARAMS`.
fn curve_params(algorithm: CaKeyAlgorithm) -> Vec<u8> {
    use const_oid::db::rfc5912::{SECP_256_R_1, SECP_384_R_1};
    let oid = match algorithm {
        CaKeyAlgorithm::EcdsaP384Sha384 => SECP_384_R_1,
        _ => SECP_256_R_1,
    };
    oid.to_der().expect("an OID encodes")
}

impl KeyProvider for Pkcs11KeyProvider {
    fn exists(&self, label: &str) -> bool {
        let token_label = self.settings.token_label(label);
        self.token
            .with_session(|s| Self::find(s, ObjectClass::PRIVATE_KEY, token_label))
            .map(|found| !found.is_empty())
            .unwrap_or(false)
    }

    fn generate(&self, label: &str, algorithm: CaKeyAlgorithm) -> Result<Arc<dyn CaKey>, PkiError> {
        let token_label = self.settings.token_label(label).to_owned();
        let taken = self.token.with_session(|s| {
            Ok(
                !Self::find(s, ObjectClass::PRIVATE_KEY, &token_label)?.is_empty()
                    || !Self::find(s, ObjectClass::PUBLIC_KEY, &token_label)?.is_empty(),
            )
        })?;
        if taken {
            return Err(PkiError::KeyExists(token_label));
        }
        let name = token_label.as_bytes().to_vec();
        // CKA_ID ties the two halves together for tools (pkcs11-tool, p11-kit) that pair by id.
        let id = {
            use sha2::{Digest, Sha256};
            Sha256::digest(&name)[..8].to_vec()
        };
        let (mechanism, mut public) = match algorithm.rsa_bits() {
            Some(bits) => (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::ModulusBits((bits as u64).into()),
                    Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                ],
            ),
            None => (
                Mechanism::EccKeyPairGen,
                vec![Attribute::EcParams(curve_params(algorithm))],
            ),
        };
        public.extend([
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Label(name.clone()),
            Attribute::Id(id.clone()),
        ]);
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(name),
            Attribute::Id(id),
        ];
        self.token
            .with_session(|s| s.generate_key_pair(&mechanism, &public, &private))
            .map_err(|e| PkiError::Pkcs11(format!("cannot generate {}: {e}", algorithm.label())))?;
        self.load(label)
    }

    fn load(&self, label: &str) -> Result<Arc<dyn CaKey>, PkiError> {
        let token_label = self.settings.token_label(label).to_owned();
        let found = self.token.with_session(|s| {
            let private = Self::find(s, ObjectClass::PRIVATE_KEY, &token_label)?;
            match private.as_slice() {
                [] => Ok(None),
                [one] => Ok(Some((*one, Self::describe(s, *one, &token_label)?))),
                _ => Ok(Some((
                    private[0],
                    Err("several private keys have this label".to_owned()),
                ))),
            }
        })?;
        let (private, described) = found.ok_or_else(|| self.not_found(label))?;
        let (algorithm, public_der) = described.map_err(|detail| PkiError::BadKey {
            label: token_label,
            detail,
        })?;
        Ok(Arc::new(Pkcs11Key {
            token: self.token.clone(),
            private,
            algorithm,
            public_der,
        }))
    }
}

impl fmt::Debug for Pkcs11KeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11KeyProvider")
            .field("module", &self.settings.module)
            .field("token", &self.settings.token)
            .finish_non_exhaustive()
    }
}

/// A key pair on the token: its handle and the public half, read once.
struct Pkcs11Key {
    token: Arc<Token>,
    private: ObjectHandle,
    algorithm: CaKeyAlgorithm,
    public_der: Vec<u8>,
}

impl CaKey for Pkcs11Key {
    fn algorithm(&self) -> CaKeyAlgorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        use sha2::{Digest, Sha256, Sha384};
        let signed = |e: PkiError| PkiError::Signing(e.to_string());
        match self.algorithm {
            CaKeyAlgorithm::EcdsaP256Sha256 => {
                let digest = Sha256::digest(message);
                let raw = self
                    .token
                    .with_session(|s| s.sign(&Mechanism::Ecdsa, self.private, &digest))
                    .map_err(signed)?;
                let signature = p256::ecdsa::Signature::from_slice(&raw).map_err(|_| {
                    PkiError::Signing("the token returned a malformed P-256 signature".into())
                })?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
            CaKeyAlgorithm::EcdsaP384Sha384 => {
                let digest = Sha384::digest(message);
                let raw = self
                    .token
                    .with_session(|s| s.sign(&Mechanism::Ecdsa, self.private, &digest))
                    .map_err(signed)?;
                let signature = p384::ecdsa::Signature::from_slice(&raw).map_err(|_| {
                    PkiError::Signing("the token returned a malformed P-384 signature".into())
                })?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
            CaKeyAlgorithm::Rsa2048Sha256 | CaKeyAlgorithm::Rsa3072Sha256 => self
                .token
                .with_session(|s| s.sign(&Mechanism::Sha256RsaPkcs, self.private, message))
                .map_err(signed),
        }
    }
}

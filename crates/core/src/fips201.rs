//! The FIPS 201 data model of a card, as the core sees it: the FASC-N, the data objects a policy
//! asks for (CHUID, CCC, printed information, facial image, fingerprints, Security Object) and
//! the content signer that signs them (SP 800-73-4 part 1, SP 800-76-2, SP 800-78-4).
//!
//! The core decides *what* a card carries; `tessera-piv` encodes the objects (BER-TLV, CBEFF,
//! ISO/IEC 19794-5, the LDS Security Object) and writes them; `tessera-pki` signs them with the
//! content signing key. Both meet here.

use crate::ports::{PortError, PrintedInformation};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// FASC-N
// ---------------------------------------------------------------------------------------------

/// Who issues the cards, which decides the FASC-N (SP 800-73-4 part 1, 3.1.2, and the TIG
/// SCEPACS).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IssuerType {
    /// A non-federal (PIV-I or commercial) issuer: agency 9999, system 9999, credential 999999,
    /// the card told apart by its GUID (the UUID), as SP 800-73-4 asks of non-federal issuers.
    #[default]
    NonFederal,
    /// A federal issuer with its own agency and system codes (4 digits each) and credential
    /// number (6 digits). The person identifier is the holder's employee id (10 digits).
    Federal {
        agency_code: String,
        system_code: String,
        credential_number: String,
    },
}

/// The FIPS 201 settings of the organisation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fips201Settings {
    #[serde(default)]
    pub issuer: IssuerType,
}

/// The fields of a Federal Agency Smart Credential Number (TIG SCEPACS), all decimal digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FascN {
    pub agency_code: String,
    pub system_code: String,
    pub credential_number: String,
    pub credential_series: String,
    pub individual_credential_issue: String,
    pub person_identifier: String,
    pub organizational_category: String,
    pub organizational_identifier: String,
    pub person_association_category: String,
}

impl FascN {
    /// The FASC-N of a non-federal issuer (agency 9999, system 9999, credential 999999,
    /// organizational category 3, commercial enterprise): the one PIV-I cards carry.
    pub fn non_federal() -> Self {
        Self {
            agency_code: "9999".into(),
            system_code: "9999".into(),
            credential_number: "999999".into(),
            credential_series: "0".into(),
            individual_credential_issue: "1".into(),
            person_identifier: "0000000000".into(),
            organizational_category: "3".into(),
            organizational_identifier: "0000".into(),
            person_association_category: "1".into(),
        }
    }

    /// Agency, system and credential number all nines: the convention of non-federal (PIV-I)
    /// issuers, whose cards are told apart by their GUID.
    pub fn is_non_federal(&self) -> bool {
        self.agency_code == "9999"
            && self.system_code == "9999"
            && self.credential_number == "999999"
    }

    /// The 25-byte encoding: 40 characters of 4 data bits (least significant first) and an odd
    /// parity bit, ending with a longitudinal redundancy character.
    ///
    /// Returns `None` if a field has the wrong number of digits.
    pub fn encode(&self) -> Option<[u8; 25]> {
        const START_SENTINEL: u8 = 0x0B;
        const FIELD_SEPARATOR: u8 = 0x0D;
        const END_SENTINEL: u8 = 0x0F;
        let fields: [(&str, usize); 9] = [
            (&self.agency_code, 4),
            (&self.system_code, 4),
            (&self.credential_number, 6),
            (&self.credential_series, 1),
            (&self.individual_credential_issue, 1),
            (&self.person_identifier, 10),
            (&self.organizational_category, 1),
            (&self.organizational_identifier, 4),
            (&self.person_association_category, 1),
        ];
        let mut chars = vec![START_SENTINEL];
        for (i, (value, len)) in fields.iter().enumerate() {
            if value.len() != *len || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            chars.extend(value.bytes().map(|b| b - b'0'));
            // Separators follow the first five fields; PI, OC, OI and POA run together.
            if i < 5 {
                chars.push(FIELD_SEPARATOR);
            }
        }
        chars.push(END_SENTINEL);
        let lrc = chars.iter().fold(0u8, |acc, c| acc ^ c);
        chars.push(lrc);

        let mut out = [0u8; 25];
        let mut bit = 0usize;
        for c in chars {
            let parity = u8::from(c.count_ones() % 2 == 0);
            let five = [c & 1, (c >> 1) & 1, (c >> 2) & 1, (c >> 3) & 1, parity];
            for b in five {
                if b == 1 {
                    out[bit / 8] |= 0x80 >> (bit % 8);
                }
                bit += 1;
            }
        }
        Some(out)
    }
}

impl Fips201Settings {
    /// The FASC-N of a card issued to `employee_id`: the non-federal one, or the federal
    /// issuer's codes with the employee id's digits (the last ten, zero-padded) as the person
    /// identifier. `None` when the federal codes do not have the right number of digits.
    pub fn fasc_n(&self, employee_id: &str) -> Option<[u8; 25]> {
        match &self.issuer {
            IssuerType::NonFederal => FascN::non_federal().encode(),
            IssuerType::Federal {
                agency_code,
                system_code,
                credential_number,
            } => {
                let digits: String = employee_id.chars().filter(char::is_ascii_digit).collect();
                let tail = &digits[digits.len().saturating_sub(10)..];
                FascN {
                    agency_code: agency_code.clone(),
                    system_code: system_code.clone(),
                    credential_number: credential_number.clone(),
                    organizational_category: "1".into(), // federal government agency
                    organizational_identifier: agency_code.clone(),
                    person_identifier: format!("{tail:0>10}"),
                    ..FascN::non_federal()
                }
                .encode()
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The objects of one card
// ---------------------------------------------------------------------------------------------

/// The holder's portrait for the facial image object (5FC108): a baseline JPEG.
#[derive(Clone, PartialEq, Eq)]
pub struct FacialImage {
    pub jpeg: Vec<u8>,
}

impl std::fmt::Debug for FacialImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FacialImage({} bytes)", self.jpeg.len())
    }
}

/// The holder's fingerprints for the fingerprints object (5FC103): one INCITS 378-2004 record
/// holding the two finger views, as an enrolment system supplied it (checked on import).
#[derive(Clone, PartialEq, Eq)]
pub struct Fingerprints {
    pub incits_378: Vec<u8>,
    /// Generated by Tessera for a demonstration, not captured from a person.
    pub synthetic: bool,
}

impl std::fmt::Debug for Fingerprints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Fingerprints({} bytes, synthetic: {})",
            self.incits_378.len(),
            self.synthetic
        )
    }
}

/// Everything the issuer writes to one card besides its certificates, built by the core from the
/// policy, the person and the card; `tessera-piv` encodes, signs (through a [`ContentSigner`])
/// and writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardObjects {
    /// The card's GUID: its UUID.
    pub guid: [u8; 16],
    /// The card's expiry, `YYYYMMDD` (CHUID expiration date).
    pub expires: String,
    /// The encoded FASC-N (CHUID, pivFASC-N attribute of the biometrics).
    pub fasc_n: [u8; 25],
    /// When the objects are made, `YYYYMMDDhhmmssZ` (the CBEFF creation date).
    pub created: String,
    /// Write a signed CHUID (5FC102).
    pub chuid: bool,
    /// Write a Card Capability Container (5FC107).
    pub ccc: bool,
    pub printed_information: Option<PrintedInformation>,
    pub facial_image: Option<FacialImage>,
    pub fingerprints: Option<Fingerprints>,
    /// Write a Security Object (5FC106) over the signed objects written.
    pub security_object: bool,
}

/// One data object written to a card: what the audit event records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WrittenObject {
    /// `chuid`, `ccc`, `printed_information`, `facial_image`, `fingerprints`, `security_object`.
    pub name: String,
    /// The object's tag, e.g. `5FC102`.
    pub tag: String,
    /// Length of the object's value (the content of tag 53).
    pub length: usize,
    /// Whether the object carries a signature by the content signer.
    pub signed: bool,
}

// ---------------------------------------------------------------------------------------------
// Content signing
// ---------------------------------------------------------------------------------------------

/// The CMS content type of a signed PIV data object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedContentType {
    /// id-PIV-CHUIDSecurityObject (2.16.840.1.101.3.6.1): the CHUID's issuer signature,
    /// content detached.
    Chuid,
    /// id-PIV-biometricObject (2.16.840.1.101.3.6.2): a CBEFF signature block, content
    /// detached.
    Biometric,
    /// id-icao-ldsSecurityObject (2.23.136.1.1.1): the Security Object's LDS security object,
    /// content encapsulated.
    SecurityObject,
}

/// One signature to make.
#[derive(Clone, Debug)]
pub struct ContentToSign<'a> {
    pub content_type: SignedContentType,
    /// The signed bytes. Detached types: the message whose digest is the messageDigest
    /// attribute (the CHUID's fields before its signature; a CBEFF header and biometric data
    /// block). [`SignedContentType::SecurityObject`]: the DER LDSSecurityObject, carried as
    /// eContent.
    pub content: &'a [u8],
    /// The pivFASC-N signed attribute (biometrics).
    pub fasc_n: Option<[u8; 25]>,
    /// The entryUUID signed attribute (biometrics of a card with a UUID).
    pub uuid: Option<[u8; 16]>,
    /// Put the content signing certificate in `certificates`: the CHUID must; the other
    /// objects, signed by the same key, leave it out (SP 800-76-2) and refer to the CHUID's.
    pub include_certificate: bool,
}

/// Signs PIV data objects with the content signing key (EKU id-PIV-content-signing,
/// 2.16.840.1.101.3.6.7); supplied by `tessera-pki`.
pub trait ContentSigner: Send + Sync {
    /// A DER `ContentInfo` holding a CMS `SignedData` with one `SignerInfo` whose signed
    /// attributes are content type, message digest and pivSigner-DN (plus pivFASC-N and
    /// entryUUID when given).
    fn sign(&self, request: &ContentToSign<'_>) -> Result<Vec<u8>, PortError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_federal_fasc_n() {
        // The FASC-N of agency 9999, system 9999, credential 999999 found on PIV-I cards.
        assert_eq!(
            hex::encode_upper(FascN::non_federal().encode().unwrap()),
            "D4E739DA739CED39CE739D836858210842108421C84210C3EB"
        );
        let bad = FascN {
            agency_code: "99".into(),
            ..FascN::non_federal()
        };
        assert!(bad.encode().is_none());
    }
}

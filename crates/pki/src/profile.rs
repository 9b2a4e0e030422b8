//! Default certificate profiles for the four PIV key slots (SP 800-73-4, FIPS 201-3), the
//! starting point of a device policy.

use crate::name::escape_dn_value;
use tessera_core::model::{
    CertificateProfile, ExtendedKeyUsage as Eku, KeyAlgorithm, KeyUsage as Ku, Slot,
};

/// Three years, a common lifetime for PIV certificates (the card itself usually lives longer).
const VALIDITY_DAYS: u32 = 1095;

/// The profile of `slot` for a key of type `algorithm`, naming `organisation` in the subject.
///
/// - 9A PIV Authentication: digitalSignature; clientAuth + smartcardLogon; SAN UPN and card UUID;
///   pivInterim.
/// - 9C Digital Signature: digitalSignature + nonRepudiation; emailProtection; SAN e-mail and
///   card UUID.
/// - 9D Key Management: keyAgreement (EC) or keyEncipherment (RSA); emailProtection; SAN e-mail
///   and card UUID.
/// - 9E Card Authentication: digitalSignature; id-PIV-cardAuth; SAN card UUID; pivInterim; a
///   subject without personal data (FIPS 201 requires that of this contactless-usable key).
///
/// Every certificate carries the card's UUID URN (the PIV-I profiles ask for it in all four).
/// The policy OIDs are left empty (the organisation's own arc per slot, see `policy_oids`) and
/// the FASC-N is left out: that is the PIV-I profile; a policy chooses the federal one.
pub fn piv_profile(slot: Slot, algorithm: KeyAlgorithm, organisation: &str) -> CertificateProfile {
    let org = escape_org(organisation);
    let person = format!("CN={{{{user.display_name}}}},UID={{{{user.uid}}}},O={org}");
    let profile = |subject_template: String,
                   key_usage: Vec<Ku>,
                   extended_key_usage: Vec<Eku>,
                   (san_upn, san_email),
                   piv_interim| CertificateProfile {
        subject_template,
        key_usage,
        extended_key_usage,
        san_upn,
        san_email,
        san_card_uuid: true,
        validity_days: VALIDITY_DAYS,
        policy_oids: vec![],
        piv_interim,
        san_fasc_n: false,
    };
    match slot {
        Slot::PivAuthentication => profile(
            person,
            vec![Ku::DigitalSignature],
            vec![Eku::ClientAuth, Eku::SmartcardLogon],
            (true, false),
            true,
        ),
        Slot::DigitalSignature => profile(
            person,
            vec![Ku::DigitalSignature, Ku::NonRepudiation],
            vec![Eku::EmailProtection],
            (false, true),
            false,
        ),
        Slot::KeyManagement => {
            let usage = match algorithm {
                KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 => Ku::KeyEncipherment,
                KeyAlgorithm::EccP256 | KeyAlgorithm::EccP384 => Ku::KeyAgreement,
            };
            profile(
                person,
                vec![usage],
                vec![Eku::EmailProtection],
                (false, true),
                false,
            )
        }
        Slot::CardAuthentication => profile(
            format!("CN={{{{card.uuid}}}},OU=Card Authentication,O={org}"),
            vec![Ku::DigitalSignature],
            vec![Eku::PivCardAuth],
            (false, false),
            true,
        ),
    }
}

/// The organisation is literal text inside a template: DN specials are escaped and braces are
/// kept from opening a binding.
fn escape_org(organisation: &str) -> String {
    escape_dn_value(organisation.trim()).replace("{{", "{\\{")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_get_their_piv_defaults() {
        let a = piv_profile(Slot::PivAuthentication, KeyAlgorithm::EccP256, "Acme, Inc.");
        assert_eq!(
            a.subject_template,
            r"CN={{user.display_name}},UID={{user.uid}},O=Acme\, Inc."
        );
        assert!(a.san_upn && a.san_card_uuid && !a.san_email);
        assert_eq!(a.validity_days, 1095);
        let d_ec = piv_profile(Slot::KeyManagement, KeyAlgorithm::EccP384, "X");
        assert_eq!(d_ec.key_usage, vec![Ku::KeyAgreement]);
        let d_rsa = piv_profile(Slot::KeyManagement, KeyAlgorithm::Rsa2048, "X");
        assert_eq!(d_rsa.key_usage, vec![Ku::KeyEncipherment]);
        let d_rsa3072 = piv_profile(Slot::KeyManagement, KeyAlgorithm::Rsa3072, "X");
        assert_eq!(d_rsa3072.key_usage, vec![Ku::KeyEncipherment]);
        let e = piv_profile(Slot::CardAuthentication, KeyAlgorithm::EccP256, "X");
        assert!(!e.subject_template.contains("user."));
        assert_eq!(e.extended_key_usage, vec![Eku::PivCardAuth]);
        // pivInterim in 9A and 9E only; the UUID URN everywhere; no FASC-N (PIV-I).
        for slot in Slot::ALL {
            let p = piv_profile(slot, KeyAlgorithm::EccP256, "X");
            assert_eq!(
                p.piv_interim,
                matches!(slot, Slot::PivAuthentication | Slot::CardAuthentication),
                "{slot:?}"
            );
            assert!(p.san_card_uuid && !p.san_fasc_n && p.policy_oids.is_empty());
        }
    }
}

//! The containers of SP 800-73-4 part 1, appendix A: for each data object the BER-TLV elements it
//! holds, in their order, which are mandatory, each one's largest length, and the largest size of
//! the whole container; and the structural check of a value against its container.

use super::report::ObjectReport;
use crate::tlv;

/// Where the container table comes from.
pub const APPENDIX_A: &str = "SP 800-73-4 part 1, appendix A";

/// One element of a container.
#[derive(Clone, Copy, Debug)]
pub struct Element {
    pub tag: u32,
    pub name: &'static str,
    pub mandatory: bool,
    /// Largest value length the standard allows.
    pub max_len: usize,
}

const fn m(tag: u32, name: &'static str, max_len: usize) -> Element {
    Element {
        tag,
        name,
        mandatory: true,
        max_len,
    }
}

const fn o(tag: u32, name: &'static str, max_len: usize) -> Element {
    Element {
        tag,
        name,
        mandatory: false,
        max_len,
    }
}

/// A PIV data object: its tag, container ID, limits and elements.
#[derive(Clone, Copy, Debug)]
pub struct Container {
    /// Short name used in reports (`chuid`).
    pub name: &'static str,
    pub tag: u32,
    /// The ContainerID the Security Object's mapping refers to.
    pub container_id: u16,
    /// Largest size of the container's value (the content of tag 53).
    pub max_len: usize,
    /// Mandatory on every PIV card (SP 800-73-4 part 1, table 3).
    pub mandatory: bool,
    /// Readable only after the PIN (SP 800-73-4 part 1, table 3, access rule).
    pub needs_pin: bool,
    pub elements: &'static [Element],
}

const EDC: Element = m(0xFE, "Error Detection Code", 0);

pub const CCC: Container = Container {
    name: "ccc",
    tag: 0x5FC107,
    container_id: 0xDB00,
    max_len: 287,
    mandatory: true,
    needs_pin: false,
    elements: &[
        m(0xF0, "Card Identifier", 21),
        m(0xF1, "Capability Container version number", 1),
        m(0xF2, "Capability Grammar version number", 1),
        m(0xF3, "Applications CardURL", 128),
        m(0xF4, "PKCS#15", 1),
        m(0xF5, "Registered Data Model number", 1),
        m(0xF6, "Access Control Rule Table", 17),
        m(0xF7, "Card APDUs", 0),
        m(0xFA, "Redirection Tag", 0),
        m(0xFB, "Capability Tuples", 0),
        m(0xFC, "Status Tuples", 0),
        m(0xFD, "Next CCC", 0),
        o(0xE3, "Extended Application CardURL", 48),
        o(0xB4, "Security Object Buffer", 48),
        EDC,
    ],
};

pub const CHUID: Container = Container {
    name: "chuid",
    tag: 0x5FC102,
    container_id: 0x3000,
    max_len: 2916,
    mandatory: true,
    needs_pin: false,
    elements: &[
        o(0xEE, "Buffer Length", 2),
        m(0x30, "FASC-N", 25),
        o(0x32, "Organizational Identifier", 4),
        o(0x33, "DUNS", 9),
        m(0x34, "GUID", 16),
        m(0x35, "Expiration Date", 8),
        o(0x36, "Cardholder UUID", 16),
        m(0x3E, "Issuer Asymmetric Signature", 2816),
        EDC,
    ],
};

const CERTIFICATE_ELEMENTS: &[Element] = &[
    m(0x70, "Certificate", 1858),
    m(0x71, "CertInfo", 1),
    o(0x72, "MSCUID", 38),
    EDC,
];

const fn certificate(
    name: &'static str,
    tag: u32,
    container_id: u16,
    mandatory: bool,
) -> Container {
    Container {
        name,
        tag,
        container_id,
        max_len: 1905,
        mandatory,
        needs_pin: false,
        elements: CERTIFICATE_ELEMENTS,
    }
}

pub const PIV_AUTH_CERT: Container =
    certificate("piv_authentication_certificate", 0x5FC105, 0x0101, true);
pub const SIGNATURE_CERT: Container =
    certificate("digital_signature_certificate", 0x5FC10A, 0x0100, false);
pub const KEY_MANAGEMENT_CERT: Container =
    certificate("key_management_certificate", 0x5FC10B, 0x0102, false);
pub const CARD_AUTH_CERT: Container =
    certificate("card_authentication_certificate", 0x5FC101, 0x0500, true);

pub const FINGERPRINTS: Container = Container {
    name: "fingerprints",
    tag: 0x5FC103,
    container_id: 0x6010,
    max_len: 4006,
    mandatory: true,
    needs_pin: true,
    elements: &[m(0xBC, "Fingerprint I & II", 4000), EDC],
};

pub const SECURITY_OBJECT: Container = Container {
    name: "security_object",
    tag: 0x5FC106,
    container_id: 0x9000,
    max_len: 1336,
    mandatory: true,
    needs_pin: false,
    elements: &[
        m(0xBA, "Mapping of DG to ContainerID", 30),
        m(0xBB, "Security Object", 1298),
        EDC,
    ],
};

pub const FACIAL_IMAGE: Container = Container {
    name: "facial_image",
    tag: 0x5FC108,
    container_id: 0x6030,
    max_len: 12710,
    // Optional in SP 800-73-4 (3.3.1), though FIPS 201-3 asks issuers to store it.
    mandatory: false,
    needs_pin: true,
    elements: &[m(0xBC, "Image for Visual Verification", 12704), EDC],
};

pub const PRINTED_INFORMATION: Container = Container {
    name: "printed_information",
    tag: 0x5FC109,
    container_id: 0x3001,
    max_len: 245,
    mandatory: false,
    needs_pin: true,
    elements: &[
        m(0x01, "Name", 125),
        m(0x02, "Employee Affiliation", 20),
        m(0x04, "Expiration date", 9),
        m(0x05, "Agency Card Serial Number", 20),
        m(0x06, "Issuer Identification", 15),
        o(0x07, "Organization Affiliation (Line 1)", 20),
        o(0x08, "Organization Affiliation (Line 2)", 20),
        EDC,
    ],
};

/// The discovery object is not wrapped in tag 53: its value is the content of tag 7E.
pub const DISCOVERY: Container = Container {
    name: "discovery",
    tag: 0x7E,
    container_id: 0x6050,
    max_len: 20,
    mandatory: false,
    needs_pin: false,
    elements: &[
        m(0x4F, "PIV Card Application AID", 11),
        m(0x5F2F, "PIN Usage Policy", 2),
    ],
};

pub const KEY_HISTORY: Container = Container {
    name: "key_history",
    tag: 0x5FC10C,
    container_id: 0x6060,
    max_len: 256,
    mandatory: false,
    needs_pin: false,
    elements: &[
        m(0xC1, "keysWithOnCardCerts", 1),
        m(0xC2, "keysWithOffCardCerts", 1),
        o(0xF3, "offCardCertURL", 118),
        EDC,
    ],
};

/// Every container the checker reads, in the order it reads them.
pub const ALL: [&Container; 12] = [
    &DISCOVERY,
    &CCC,
    &CHUID,
    &PIV_AUTH_CERT,
    &SIGNATURE_CERT,
    &KEY_MANAGEMENT_CERT,
    &CARD_AUTH_CERT,
    &KEY_HISTORY,
    &PRINTED_INFORMATION,
    &FACIAL_IMAGE,
    &FINGERPRINTS,
    &SECURITY_OBJECT,
];

/// The container with a ContainerID (Security Object mapping), if the checker knows it.
pub fn by_container_id(id: u16) -> Option<&'static Container> {
    ALL.into_iter().find(|c| c.container_id == id)
}

/// Checks `value` (the content of tag 53, or of 7E for discovery) against the container: it
/// parses as BER-TLV, holds only the container's tags, in order, once each, every mandatory one,
/// none longer than allowed, and the whole is within the container's size. Returns the elements
/// when the value parses at all.
pub fn check_structure<'a>(
    container: &Container,
    value: &'a [u8],
    report: &mut ObjectReport,
) -> Option<Vec<tlv::Tlv<'a>>> {
    if value.len() > container.max_len {
        report.error(
            APPENDIX_A,
            format!(
                "the container holds {} bytes, more than the {} allowed",
                value.len(),
                container.max_len
            ),
        );
    }
    let elements = match tlv::parse_all(value) {
        Ok(elements) => elements,
        Err(e) => {
            report.error(
                "SP 800-73-4 part 1, 3 (BER-TLV)",
                format!("the value is not a BER-TLV list: {e}"),
            );
            return None;
        }
    };
    let mut last_index = None;
    let mut seen = Vec::new();
    for element in &elements {
        let Some(index) = container.elements.iter().position(|e| e.tag == element.tag) else {
            report.error(
                APPENDIX_A,
                format!("tag {:X} does not belong in this container", element.tag),
            );
            continue;
        };
        let spec = &container.elements[index];
        if seen.contains(&element.tag) {
            report.error(
                APPENDIX_A,
                format!("{} (tag {:X}) appears twice", spec.name, spec.tag),
            );
        }
        seen.push(element.tag);
        if last_index.is_some_and(|last| index < last) {
            report.error(
                APPENDIX_A,
                format!(
                    "{} (tag {:X}) is out of order: the container's elements come in the order of its table",
                    spec.name, spec.tag
                ),
            );
        }
        last_index = Some(index);
        if element.value.len() > spec.max_len {
            report.error(
                APPENDIX_A,
                format!(
                    "{} (tag {:X}) is {} bytes long, more than the {} allowed",
                    spec.name,
                    spec.tag,
                    element.value.len(),
                    spec.max_len
                ),
            );
        }
    }
    for spec in container.elements.iter().filter(|e| e.mandatory) {
        if !seen.contains(&spec.tag) {
            report.error(
                APPENDIX_A,
                format!(
                    "the mandatory {} (tag {:X}) is missing",
                    spec.name, spec.tag
                ),
            );
        }
    }
    Some(elements)
}

/// The value of the first element with `tag`.
pub fn value_of<'a>(elements: &[tlv::Tlv<'a>], tag: u32) -> Option<&'a [u8]> {
    elements.iter().find(|e| e.tag == tag).map(|e| e.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::report::Status;

    fn report() -> ObjectReport {
        ObjectReport::new("t", "0", true)
    }

    #[test]
    fn a_well_formed_key_history_passes() {
        let value = [
            tlv::encode(0xC1, &[1]),
            tlv::encode(0xC2, &[0]),
            tlv::encode(0xFE, &[]),
        ]
        .concat();
        let mut r = report();
        assert_eq!(
            check_structure(&KEY_HISTORY, &value, &mut r).unwrap().len(),
            3
        );
        r.settle(Status::Ok);
        assert_eq!(r.status, Status::Ok, "{:?}", r.findings);
    }

    #[test]
    fn order_unknown_tags_lengths_and_missing_elements_fail() {
        let value = [
            tlv::encode(0xC2, &[0]),
            tlv::encode(0xC1, &[1, 2]),
            tlv::encode(0x99, &[]),
        ]
        .concat();
        let mut r = report();
        check_structure(&KEY_HISTORY, &value, &mut r);
        let text: Vec<&str> = r.findings.iter().map(|f| f.text.as_str()).collect();
        assert!(text.iter().any(|t| t.contains("out of order")), "{text:?}");
        assert!(
            text.iter().any(|t| t.contains("more than the 1 allowed")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("tag 99 does not belong")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("Error Detection Code (tag FE) is missing")),
            "{text:?}"
        );
    }

    #[test]
    fn an_oversized_container_and_broken_tlv_fail() {
        let mut r = report();
        assert!(check_structure(&DISCOVERY, &[0x4F, 0x20, 0], &mut r).is_none());
        assert!(r.has_errors());
        let mut r = report();
        check_structure(&DISCOVERY, &[0u8; 30], &mut r);
        assert!(r.findings[0].text.contains("more than the 20 allowed"));
    }
}

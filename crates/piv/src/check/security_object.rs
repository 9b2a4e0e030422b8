//! The Security Object (SP 800-73-4 part 1, 3.1.6): the mapping of data groups to ContainerIDs
//! (BA) and an ICAO LDS security object (BB) — a CMS SignedData, eContentType
//! id-icao-ldsSecurityObject, holding one hash per data group — signed by the content signer.
//! Every hash is recomputed over the object as read from the card (the whole BER-TLV GET DATA
//! returns, tag 53 included).

use super::chuid::ChuidFacts;
use super::cms::{self, Expect};
use super::containers::{self, SECURITY_OBJECT};
use super::crypto::DigestAlg;
use super::report::{ObjectReport, Status};
use super::ReadObject;
use der::asn1::OctetString;
use der::{Decode, Sequence};
use spki::AlgorithmIdentifierOwned;
use std::collections::BTreeMap;

const SECTION: &str = "SP 800-73-4 part 1, 3.1.6";
const LDS: &str = "ICAO Doc 9303 part 10 (LDS security object)";

#[derive(Sequence)]
struct LdsSecurityObject {
    version: u8,
    hash_algorithm: AlgorithmIdentifierOwned,
    data_group_hash_values: Vec<DataGroupHash>,
    #[asn1(optional = "true")]
    lds_version_info: Option<der::Any>,
}

#[derive(Sequence)]
struct DataGroupHash {
    data_group_number: u8,
    data_group_hash_value: OctetString,
}

/// Checks the Security Object against the objects read (`read` by tag).
pub fn check(
    value: &[u8],
    chuid: &ChuidFacts,
    read: &BTreeMap<u32, ReadObject>,
    report: &mut ObjectReport,
) {
    let Some(elements) = containers::check_structure(&SECURITY_OBJECT, value, report) else {
        report.settle(Status::Ok);
        return;
    };
    let mut mapping = BTreeMap::new();
    if let Some(ba) = containers::value_of(&elements, 0xBA) {
        if ba.len() % 3 != 0 || ba.is_empty() {
            report.error(
                SECTION,
                format!(
                    "the mapping (BA) is {} bytes, not a list of 3-byte entries",
                    ba.len()
                ),
            );
        }
        for entry in ba.chunks_exact(3) {
            let dg = entry[0];
            let id = u16::from_be_bytes([entry[1], entry[2]]);
            if !(1..=16).contains(&dg) {
                report.error(SECTION, format!("data group number {dg} is outside 1..16"));
            }
            match containers::by_container_id(id) {
                Some(c) => {
                    if mapping.insert(dg, c).is_some() {
                        report.error(SECTION, format!("data group {dg} is mapped twice"));
                    }
                }
                None => report.error(
                    SECTION,
                    format!("data group {dg} maps to unknown ContainerID {id:04X}"),
                ),
            }
        }
    }
    let Some(bb) = containers::value_of(&elements, 0xBB) else {
        report.settle(Status::Ok);
        return;
    };
    if bb.is_empty() {
        report.warning(
            SECTION,
            "the LDS security object (BB) is empty: nothing is signed",
        );
        report.settle(Status::Unsigned);
        return;
    }
    let signed = cms::check(
        bb,
        &Expect {
            content_type: cms::ID_LDS_SECURITY_OBJECT,
            detached: None,
            reference: SECTION,
            external_signer: chuid.content_signer.as_ref(),
            require_certificate: false,
        },
        report,
    );
    let Some(content) = signed.content else {
        report.settle(Status::Ok);
        return;
    };
    let lds = match LdsSecurityObject::from_der(&content) {
        Ok(lds) => lds,
        Err(e) => {
            report.error(LDS, format!("the LDSSecurityObject does not parse: {e}"));
            report.settle(Status::Ok);
            return;
        }
    };
    if lds.version > 1 {
        report.error(
            LDS,
            format!(
                "the LDSSecurityObject version is {}, not 0 or 1",
                lds.version
            ),
        );
    }
    let Some(alg) = DigestAlg::from_oid(&lds.hash_algorithm.oid) else {
        report.error(
            "SP 800-78-4, table 3-3",
            format!(
                "the hash algorithm {} is not SHA-256 or SHA-384",
                lds.hash_algorithm.oid
            ),
        );
        report.settle(Status::Ok);
        return;
    };
    let mut hashed = Vec::new();
    for dgh in &lds.data_group_hash_values {
        let dg = dgh.data_group_number;
        let Some(container) = mapping.get(&dg) else {
            report.error(
                SECTION,
                format!("data group {dg} has a hash but no entry in the mapping"),
            );
            continue;
        };
        hashed.push(container.tag);
        let expected = dgh.data_group_hash_value.as_bytes();
        match read.get(&container.tag) {
            Some(ReadObject::Present { raw, value }) => {
                if alg.digest(raw).as_slice() == expected {
                    report.info(
                        SECTION,
                        format!(
                            "data group {dg} ({}): the {} matches",
                            container.name,
                            alg.name()
                        ),
                    );
                } else if alg.digest(value).as_slice() == expected {
                    report.error(
                        SECTION,
                        format!(
                            "data group {dg} ({}): the hash covers the value without its tag 53 and length, not the whole object",
                            container.name
                        ),
                    );
                } else {
                    report.error(
                        SECTION,
                        format!(
                            "data group {dg} ({}): the hash does not match the object on the card",
                            container.name
                        ),
                    );
                }
            }
            Some(ReadObject::NeedsPin) => report.info(
                SECTION,
                format!(
                    "data group {dg} ({}): not compared, the object needs the PIN",
                    container.name
                ),
            ),
            Some(ReadObject::Missing) | None => report.error(
                SECTION,
                format!(
                    "data group {dg} ({}) has a hash but the card has no such object",
                    container.name
                ),
            ),
        }
    }
    for (dg, container) in &mapping {
        if !hashed.contains(&container.tag) {
            report.error(
                SECTION,
                format!(
                    "data group {dg} ({}) is mapped but has no hash",
                    container.name
                ),
            );
        }
    }
    // Which signed or unsigned objects on the card the Security Object leaves out.
    for (tag, object) in read {
        let coverable = matches!(
            *tag,
            0x5FC102 | 0x5FC103 | 0x5FC108 | 0x5FC109 | 0x5FC107 | 0x7E | 0x5FC10C
        );
        if coverable && matches!(object, ReadObject::Present { .. }) && !hashed.contains(tag) {
            if let Some(c) = containers::ALL.iter().find(|c| c.tag == *tag) {
                report.info(
                    SECTION,
                    format!("{} is on the card but not in the Security Object", c.name),
                );
            }
        }
    }
    report.settle(Status::Ok);
}

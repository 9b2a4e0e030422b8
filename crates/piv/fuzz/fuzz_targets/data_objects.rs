//! The parsers the client runs on data objects a card returns: certificate objects, printed
//! information, the CHUID (its GUID, as `PivClient::select` reads it for cards without a serial,
//! and its signed content), CBEFF records, facial images, minutiae records, the Security Object's
//! mapping, JPEG frame headers, the SELECT answer and discovery object, and the public-key
//! template of GENERATE ASYMMETRIC KEY PAIR for every algorithm. The encoders the issuer writes
//! with are checked against those parsers on the same input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::fips201::FascN;
use tessera_core::model::KeyAlgorithm;
use tessera_core::ports::PrintedInformation;
use tessera_piv::card::objects;
use tessera_piv::{data_objects, public_key, tlv};

/// Splits `data` into up to `n` strings at 0xFF bytes (lossily decoded).
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> = data
        .splitn(n, |&b| b == 0xFF)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    out.resize(n, String::new());
    out
}

fuzz_target!(|data: &[u8]| {
    // Answers read back from a card.
    let _ = data_objects::certificate_from_object(data);
    let _ = data_objects::parse_printed_information(data);
    for algorithm in [
        KeyAlgorithm::EccP256,
        KeyAlgorithm::EccP384,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
    ] {
        let _ = public_key::spki_from_template(algorithm, data);
    }
    // CHUID: the GUID (34) and expiry (35) are looked up among its objects; the signed content
    // is what precedes the signature.
    let _ = tlv::find(data, 0x34);
    let _ = tlv::find(data, 0x35);
    if let Ok(chuid) = data_objects::chuid::parse(data) {
        assert!(data.starts_with(chuid.signed_content));
    }
    // Biometric objects and the Security Object.
    if let Ok(record) = data_objects::cbeff::parse(data) {
        assert_eq!(
            record.signed_content.len() + record.sb.len(),
            data.len(),
            "a CBEFF record splits into its parts"
        );
    }
    let _ = data_objects::facial::jpeg_from_object(data);
    let _ = data_objects::fingerprints::quality(data);
    let _ = data_objects::security_object::parse_mapping(data);
    let _ = data_objects::jpeg::baseline_frame(data);
    // SELECT answer (61 template) and GET DATA of the discovery object (7E).
    if let Ok((template, _)) = tlv::parse_one(data) {
        if let Ok(children) = template.children() {
            for child in children {
                let _ = tlv::find(child.value, 0x4F);
            }
        }
    }
    let _ = objects::selects_piv(data);
    if let Some(&reference) = data.first() {
        let _ = objects::certificate_tag(reference);
    }
    if data.len() >= 3 {
        let tag = u32::from_be_bytes([0, data[0], data[1], data[2]]);
        let _ = objects::read_access(tag);
    }

    // What the issuer writes parses back to what it wrote.
    let object = data_objects::certificate_object(data);
    assert_eq!(
        data_objects::certificate_from_object(&object).as_deref(),
        Some(data)
    );
    let f = fields(data, 7);
    let info = PrintedInformation {
        name: f[0].clone(),
        employee_affiliation: f[1].clone(),
        expiration_date: f[2].clone(),
        agency_card_serial: f[3].clone(),
        issuer_identification: f[4].clone(),
        organization_line_1: f[5].clone(),
        organization_line_2: f[6].clone(),
    };
    let value = data_objects::printed_information(&info);
    let back = data_objects::parse_printed_information(&value).expect("written info parses");
    for (written, read, max) in [
        (&info.name, &back.name, 125),
        (&info.employee_affiliation, &back.employee_affiliation, 20),
        (&info.expiration_date, &back.expiration_date, 9),
        (&info.agency_card_serial, &back.agency_card_serial, 20),
        (&info.issuer_identification, &back.issuer_identification, 15),
        (&info.organization_line_1, &back.organization_line_1, 20),
        (&info.organization_line_2, &back.organization_line_2, 20),
    ] {
        assert!(read.len() <= max, "a printed field exceeds its size");
        assert!(
            written.starts_with(read.as_str()),
            "a printed field changed"
        );
    }
    if data.len() >= 16 {
        let guid: [u8; 16] = data[..16].try_into().unwrap();
        let expires = String::from_utf8_lossy(&data[16..data.len().min(24)]).into_owned();
        let chuid = data_objects::chuid::Chuid {
            fasc_n: FascN::non_federal().encode().unwrap(),
            guid,
            expires,
            cardholder_uuid: None,
        };
        if let Ok(content) = chuid.signed_content() {
            assert_eq!(tlv::find(&content, 0x34), Some(&guid[..]));
        }
        let card_id: [u8; 14] = data[..14].try_into().unwrap();
        assert!(tlv::parse_all(&data_objects::ccc(card_id)).is_ok());
    }
    // The FASC-N encoder refuses fields that are not decimal digits of the right length.
    let digits = fields(data, 9);
    let fasc_n = FascN {
        agency_code: digits[0].clone(),
        system_code: digits[1].clone(),
        credential_number: digits[2].clone(),
        credential_series: digits[3].clone(),
        individual_credential_issue: digits[4].clone(),
        person_identifier: digits[5].clone(),
        organizational_category: digits[6].clone(),
        organizational_identifier: digits[7].clone(),
        person_association_category: digits[8].clone(),
    };
    let _ = fasc_n.encode();
});

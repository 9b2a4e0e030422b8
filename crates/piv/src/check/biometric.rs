//! The biometric objects (SP 800-76-2): the fingerprints (5FC103, two INCITS 378-2004 minutiae
//! views) and the facial image (5FC108, an ISO/IEC 19794-5 record), each wrapped in the PIV
//! patron format of CBEFF (an 88-byte header, the biometric data block, a signature block), the
//! signature block a detached CMS SignedData (id-PIV-biometricObject) over header and data block.

use super::chuid::ChuidFacts;
use super::cms::{self, Expect};
use super::containers::{self, Container};
use super::report::{ObjectReport, Status};

const CBEFF: &str = "SP 800-76-2, 9 (CBEFF header)";
const SIGNATURE: &str = "SP 800-76-2, 9 (CBEFF signature block)";
const FMR: &str = "SP 800-76-2, 4 (INCITS 378)";
const FAC: &str = "SP 800-76-2, 6 (ISO/IEC 19794-5)";
pub const HEADER_LEN: usize = 88;

/// Which biometric object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Modality {
    Fingerprints,
    FacialImage,
}

impl Modality {
    pub fn container(self) -> &'static Container {
        match self {
            Self::Fingerprints => &containers::FINGERPRINTS,
            Self::FacialImage => &containers::FACIAL_IMAGE,
        }
    }

    /// CBEFF biometric type (ISO/IEC 19785-1 / SP 800-76-2 table 8).
    fn biometric_type(self) -> u32 {
        match self {
            Self::Fingerprints => 0x000008,
            Self::FacialImage => 0x000002,
        }
    }

    /// BDB format type under the INCITS M1 owner (0x001B).
    fn format_type(self) -> u16 {
        match self {
            Self::Fingerprints => 0x0201,
            Self::FacialImage => 0x0501,
        }
    }
}

/// A CBEFF date of the PIV patron format: `YYYYMMDDhhmmssZ` with two decimal digits in each byte
/// (century, year, month, day, hour, minute, second, each a binary value 0-99) and 'Z', the way
/// GSA's PIV conformance tool reads it.
fn cbeff_date(bytes: &[u8]) -> Option<String> {
    let [c, y, mo, d, h, mi, s, z] = bytes.try_into().ok()?;
    let year = u16::from(c) * 100 + u16::from(y);
    let valid = c < 100
        && y < 100
        && (1..=12).contains(&mo)
        && (1..=31).contains(&d)
        && h < 24
        && mi < 60
        && s < 61;
    (valid && z == b'Z').then(|| format!("{year:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z"))
}

/// Checks a biometric object's value; `now` is `YYYYMMDDhhmmssZ`.
pub fn check(
    modality: Modality,
    value: &[u8],
    chuid: &ChuidFacts,
    now: &str,
    report: &mut ObjectReport,
) {
    let Some(elements) = containers::check_structure(modality.container(), value, report) else {
        report.settle(Status::Ok);
        return;
    };
    let Some(cbeff) = containers::value_of(&elements, 0xBC) else {
        report.settle(Status::Ok);
        return;
    };
    if cbeff.len() < HEADER_LEN {
        report.error(
            CBEFF,
            format!(
                "the CBEFF record is {} bytes, shorter than its 88-byte header",
                cbeff.len()
            ),
        );
        report.settle(Status::Ok);
        return;
    }
    let h = &cbeff[..HEADER_LEN];
    let bdb_len = u32::from_be_bytes([h[2], h[3], h[4], h[5]]) as usize;
    let sb_len = usize::from(u16::from_be_bytes([h[6], h[7]]));
    if HEADER_LEN + bdb_len + sb_len != cbeff.len() {
        report.error(
            CBEFF,
            format!(
                "header 88 + BDB length {bdb_len} + SB length {sb_len} is not the record's {} bytes",
                cbeff.len()
            ),
        );
        report.settle(Status::Ok);
        return;
    }
    if h[0] != 0x03 {
        report.error(
            CBEFF,
            format!("the patron header version is {:02X}, not 03", h[0]),
        );
    }
    if h[1] != 0x0D {
        report.error(
            CBEFF,
            format!(
                "the SBH security options are {:02X}, not 0D (signed, integrity)",
                h[1]
            ),
        );
    }
    let owner = u16::from_be_bytes([h[8], h[9]]);
    let format = u16::from_be_bytes([h[10], h[11]]);
    if owner != 0x001B || format != modality.format_type() {
        report.error(
            CBEFF,
            format!(
                "the BDB format is owner {owner:04X} type {format:04X}, not 001B {:04X}",
                modality.format_type()
            ),
        );
    }
    let created = cbeff_date(&h[12..20]);
    let valid_from = cbeff_date(&h[20..28]);
    let valid_to = cbeff_date(&h[28..36]);
    match (&created, &valid_from, &valid_to) {
        (Some(c), Some(from), Some(to)) => {
            if to.as_str() < now {
                report.error(CBEFF, format!("the biometric's validity period ended {to}"));
            } else if from.as_str() > now {
                report.error(
                    CBEFF,
                    format!("the biometric's validity period starts {from}"),
                );
            } else {
                report.info(CBEFF, format!("created {c}, valid {from} to {to}"));
            }
        }
        _ => report.error(
            CBEFF,
            "the creation date or validity period is not a CBEFF date (YYYY MM DD hh mm ss Z)",
        ),
    }
    let bio_type = u32::from_be_bytes([0, h[36], h[37], h[38]]);
    if bio_type != modality.biometric_type() {
        report.error(
            CBEFF,
            format!(
                "the biometric type is {bio_type:06X}, not {:06X}",
                modality.biometric_type()
            ),
        );
    }
    if !matches!(h[39] & 0xE0, 0x20 | 0x40 | 0x80) {
        report.error(
            CBEFF,
            format!(
                "the biometric data type {:02X} is neither raw, intermediate nor processed",
                h[39]
            ),
        );
    }
    let creator = &h[41..59];
    match creator.iter().position(|&b| b == 0) {
        Some(end) if creator[..end].iter().all(|b| (0x20..0x7F).contains(b)) => {
            report.info(
                CBEFF,
                format!("creator \"{}\"", String::from_utf8_lossy(&creator[..end])),
            );
        }
        _ => report.error(CBEFF, "the creator is not printable text ended by a NUL"),
    }
    let fasc_n = &h[59..84];
    match &chuid.fasc_n {
        Some(f) if f.as_slice() == fasc_n => {
            report.info(CBEFF, "the header's FASC-N is the CHUID's")
        }
        Some(_) => report.error(CBEFF, "the header's FASC-N is not the CHUID's"),
        None => {}
    }
    if h[84..88] != [0, 0, 0, 0] {
        report.warning(
            CBEFF,
            "the reserved bytes at the end of the header are not zero",
        );
    }

    let bdb = &cbeff[HEADER_LEN..HEADER_LEN + bdb_len];
    match modality {
        Modality::Fingerprints => check_fmr(bdb, report),
        Modality::FacialImage => check_fac(bdb, report),
    }

    let sb = &cbeff[HEADER_LEN + bdb_len..];
    if sb.is_empty() {
        report.warning(
            SIGNATURE,
            "the signature block is empty: the biometric is unsigned",
        );
        report.settle(Status::Unsigned);
        return;
    }
    let signed_content = &cbeff[..HEADER_LEN + bdb_len];
    let signed = cms::check(
        sb,
        &Expect {
            content_type: cms::ID_PIV_BIOMETRIC,
            detached: Some(signed_content),
            reference: SIGNATURE,
            external_signer: chuid.content_signer.as_ref(),
            require_certificate: false,
        },
        report,
    );
    if let (Some(attr), Some(f)) = (&signed.fasc_n, &chuid.fasc_n) {
        if attr != f {
            report.error(
                SIGNATURE,
                "the pivFASC-N signed attribute is not the CHUID's FASC-N",
            );
        }
    }
    if let (Some(attr), Some(g)) = (&signed.uuid, &chuid.guid) {
        if attr.as_slice() != g.as_slice() {
            report.error(
                SIGNATURE,
                "the entryUUID signed attribute is not the CHUID's GUID",
            );
        }
    }
    if let Some(signer) = &signed.signer {
        if chuid.content_signer.as_ref() != Some(signer) {
            super::certificates::check_content_signer_eku(signer, report);
        }
    }
    report.settle(Status::Ok);
}

/// An INCITS 378-2004 finger minutiae record.
fn check_fmr(bdb: &[u8], report: &mut ObjectReport) {
    if bdb.len() < 26 || &bdb[..4] != b"FMR\0" || &bdb[4..8] != b" 20\0" {
        report.error(
            FMR,
            "the data block is not an INCITS 378-2004 record (\"FMR\\0\", \" 20\\0\")",
        );
        return;
    }
    // Header: format id, version, record length (two bytes, or 0000 and four bytes for a long
    // record), CBEFF product id (4), capture equipment (2), image width and height, x and y
    // resolution (2 each), number of finger views, a reserved byte.
    let (record_len, header_len) = match u16::from_be_bytes([bdb[8], bdb[9]]) {
        0 => (
            u32::from_be_bytes([bdb[10], bdb[11], bdb[12], bdb[13]]) as usize,
            30,
        ),
        n => (usize::from(n), 26),
    };
    if record_len != bdb.len() {
        report.error(
            FMR,
            format!(
                "the record says {record_len} bytes, the data block has {}",
                bdb.len()
            ),
        );
        return;
    }
    let base = header_len - 26;
    let x_res = u16::from_be_bytes([bdb[base + 20], bdb[base + 21]]);
    let y_res = u16::from_be_bytes([bdb[base + 22], bdb[base + 23]]);
    if x_res != 197 || y_res != 197 {
        report.error(
            FMR,
            format!("the resolution is {x_res}x{y_res} px/cm, not 197 (500 ppi)"),
        );
    }
    let views = usize::from(bdb[base + 24]);
    let mut at = header_len;
    for view in 0..views {
        if at + 6 > bdb.len() {
            report.error(FMR, format!("finger view {} is cut short", view + 1));
            return;
        }
        let minutiae = usize::from(bdb[at + 3]);
        at += 4 + 6 * minutiae;
        if at + 2 > bdb.len() {
            report.error(FMR, format!("finger view {} is cut short", view + 1));
            return;
        }
        at += 2 + usize::from(u16::from_be_bytes([bdb[at], bdb[at + 1]]));
    }
    if at != bdb.len() {
        report.error(
            FMR,
            format!("the finger views end at byte {at} of {}", bdb.len()),
        );
    } else if views != 2 {
        report.error(
            FMR,
            format!("the record holds {views} finger views, not the two SP 800-76-2 asks"),
        );
    } else {
        report.info(
            FMR,
            "INCITS 378-2004 record with two finger views, 197 px/cm",
        );
    }
}

/// An ISO/IEC 19794-5:2005 facial record.
fn check_fac(bdb: &[u8], report: &mut ObjectReport) {
    if bdb.len() < 14 + 20 + 12 || &bdb[..4] != b"FAC\0" || &bdb[4..8] != b"010\0" {
        report.error(
            FAC,
            "the data block is not an ISO/IEC 19794-5 record (\"FAC\\0\", \"010\\0\")",
        );
        return;
    }
    let record_len = u32::from_be_bytes([bdb[8], bdb[9], bdb[10], bdb[11]]) as usize;
    if record_len != bdb.len() {
        report.error(
            FAC,
            format!(
                "the record says {record_len} bytes, the data block has {}",
                bdb.len()
            ),
        );
        return;
    }
    let faces = u16::from_be_bytes([bdb[12], bdb[13]]);
    if faces == 0 {
        report.error(FAC, "the record holds no facial image");
        return;
    }
    let info = &bdb[14..];
    let block_len = u32::from_be_bytes([info[0], info[1], info[2], info[3]]) as usize;
    let points = usize::from(u16::from_be_bytes([info[4], info[5]]));
    if 14 + block_len > bdb.len() || block_len < 20 + 8 * points + 12 {
        report.error(FAC, "the facial record data length does not fit the record");
        return;
    }
    let image_info = &info[20 + 8 * points..];
    let face_type = image_info[0];
    let data_type = image_info[1];
    let width = u16::from_be_bytes([image_info[2], image_info[3]]);
    let height = u16::from_be_bytes([image_info[4], image_info[5]]);
    let image = &info[20 + 8 * points + 12..block_len];
    if face_type != 1 {
        report.error(
            FAC,
            format!("the face image type is {face_type}, not 1 (full frontal)"),
        );
    }
    let format_ok = match data_type {
        0 => image.starts_with(&[0xFF, 0xD8, 0xFF]) && image.ends_with(&[0xFF, 0xD9]),
        1 => {
            image.starts_with(&[0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20])
                || image.starts_with(&[0xFF, 0x4F, 0xFF, 0x51])
        }
        _ => false,
    };
    let format_name = match data_type {
        0 => "JPEG",
        1 => "JPEG 2000",
        _ => "unknown",
    };
    if format_ok {
        report.info(
            FAC,
            format!("ISO/IEC 19794-5 full frontal image, {format_name}, {width}x{height}"),
        );
    } else {
        report.error(
            FAC,
            format!("the image data is not the {format_name} its header announces"),
        );
    }
}

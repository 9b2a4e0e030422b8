//! The cardholder facial image (5FC108; SP 800-73-4 part 1, 3.1.5 and appendix A): tag BC
//! holding a signed CBEFF record (see [`super::cbeff`]) whose BDB is an ISO/IEC 19794-5:2005 face
//! image record (INCITS 385 is the same format) with one image, then the error detection code FE.
//!
//! The record, big-endian:
//! - facial record header, 14 bytes: format identifier `FAC\0`, version `010\0`, length of the
//!   whole record (4 bytes), number of facial images (2 bytes, 1);
//! - facial information, 20 bytes: length of this block, the image information and the image
//!   (4 bytes), number of feature points (2), gender, eye colour, hair colour (1 each), property
//!   mask (3), expression (2), pose angles yaw, pitch, roll (3), their uncertainties (3); all
//!   "unspecified" here: the portrait carries no annotation of who is on it;
//! - image information, 12 bytes: face image type (1, `01` full frontal, what SP 800-76-2 asks
//!   of the card's image), image data type (1, `00` JPEG), width and height (2 each, from the
//!   JPEG's frame header), image colour space (1, `01` 24-bit RGB), source type (1, `02` static
//!   photograph from a digital still camera), device type (2, unspecified) and quality (2,
//!   unspecified);
//! - the JPEG.
//!
//! No feature points are written: Tessera does not locate eyes, and a made-up position would be
//! worse than none. GSA's piv-conformance tool reports a record without feature points.

use super::cbeff::{self, Modality};
use super::jpeg;
use super::ObjectError;
use crate::tlv;
use tessera_core::fips201::{CardObjects, ContentSigner, FacialImage};

pub const FORMAT_IDENTIFIER: [u8; 4] = *b"FAC\0";
pub const VERSION: [u8; 4] = *b"010\0";
pub const HEADER_LEN: usize = 14;
pub const FACIAL_INFORMATION_LEN: usize = 20;
pub const IMAGE_INFORMATION_LEN: usize = 12;
pub const FULL_FRONTAL: u8 = 0x01;
pub const IMAGE_DATA_JPEG: u8 = 0x00;
pub const COLOUR_SPACE_RGB24: u8 = 0x01;
pub const SOURCE_DIGITAL_STILL: u8 = 0x02;
/// The biometric data element of the object (SP 800-73-4 appendix A: "Facial Image", BC).
pub const TAG_BIOMETRIC: u32 = 0xBC;
pub const TAG_ERROR_DETECTION_CODE: u32 = 0xFE;

const OBJECT: &str = "facial image";

/// The ISO/IEC 19794-5 record of a portrait: a baseline JPEG with three components (RGB).
pub fn record(portrait: &[u8]) -> Result<Vec<u8>, ObjectError> {
    let frame = jpeg::baseline_frame(portrait)
        .map_err(|e| ObjectError::new(OBJECT, format!("the portrait cannot be used: {e}")))?;
    if frame.components != 3 {
        return Err(ObjectError::new(
            OBJECT,
            format!(
                "the portrait has {} colour components; a PIV facial image is 24-bit RGB",
                frame.components
            ),
        ));
    }
    let data_len = FACIAL_INFORMATION_LEN + IMAGE_INFORMATION_LEN + portrait.len();
    let record_len = HEADER_LEN + data_len;
    let too_long = || ObjectError::new(OBJECT, "the portrait is too large");
    let record_len_field = u32::try_from(record_len).map_err(|_| too_long())?;
    let data_len_field = u32::try_from(data_len).map_err(|_| too_long())?;

    let mut out = Vec::with_capacity(record_len);
    out.extend_from_slice(&FORMAT_IDENTIFIER);
    out.extend_from_slice(&VERSION);
    out.extend_from_slice(&record_len_field.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    // Facial information.
    out.extend_from_slice(&data_len_field.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes()); // feature points
    out.extend_from_slice(&[0, 0, 0]); // gender, eye colour, hair colour
    out.extend_from_slice(&[0, 0, 0]); // property mask
    out.extend_from_slice(&[0, 0]); // expression
    out.extend_from_slice(&[0, 0, 0]); // pose angles
    out.extend_from_slice(&[0, 0, 0]); // pose angle uncertainties
                                       // Image information.
    out.push(FULL_FRONTAL);
    out.push(IMAGE_DATA_JPEG);
    out.extend_from_slice(&frame.width.to_be_bytes());
    out.extend_from_slice(&frame.height.to_be_bytes());
    out.push(COLOUR_SPACE_RGB24);
    out.push(SOURCE_DIGITAL_STILL);
    out.extend_from_slice(&[0, 0]); // device type
    out.extend_from_slice(&[0, 0]); // quality
    out.extend_from_slice(portrait);
    debug_assert_eq!(out.len(), record_len);
    Ok(out)
}

/// The value of the facial image object: BC (the signed CBEFF record), FE.
pub fn object(
    image: &FacialImage,
    objects: &CardObjects,
    signer: &dyn ContentSigner,
    sb_len_guess: &mut u16,
) -> Result<Vec<u8>, ObjectError> {
    let bdb = record(&image.jpeg)?;
    // SP 800-76-2 gives the facial image no quality score: "not supported by the creator".
    let cbeff = cbeff::signed_record(
        Modality::FacialImage,
        &bdb,
        cbeff::QUALITY_NOT_SUPPORTED,
        objects,
        signer,
        sb_len_guess,
    )?;
    let mut out = tlv::encode(TAG_BIOMETRIC, &cbeff);
    tlv::push(&mut out, TAG_ERROR_DETECTION_CODE, &[]);
    Ok(out)
}

/// The JPEG inside a facial image object's value, if it holds one as this module writes it.
pub fn jpeg_from_object(value: &[u8]) -> Option<&[u8]> {
    let record = cbeff::parse(tlv::find(value, TAG_BIOMETRIC)?).ok()?;
    let bdb = record.bdb;
    let start = HEADER_LEN + FACIAL_INFORMATION_LEN + IMAGE_INFORMATION_LEN;
    let feature_points = usize::from(u16::from_be_bytes([*bdb.get(18)?, *bdb.get(19)?]));
    (bdb.get(..4)? == FORMAT_IDENTIFIER).then_some(())?;
    bdb.get(start + 8 * feature_points..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_objects::cbeff::tests::card_objects;
    use crate::data_objects::test_signer::RecordingSigner;
    use tessera_core::fips201::SignedContentType;

    fn portrait() -> Vec<u8> {
        // SOI, a baseline frame header of 420x560 with 3 components, a scan, EOI.
        let mut j = vec![0xFF, 0xD8];
        j.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 8, 0x02, 0x30, 0x01, 0xA4, 3]);
        j.extend_from_slice(&[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34, 0xFF, 0xD9]);
        j
    }

    #[test]
    fn record_bytes() {
        let jpeg = portrait();
        let r = record(&jpeg).unwrap();
        assert_eq!(r.len(), 14 + 20 + 12 + jpeg.len());
        assert_eq!(&r[..8], b"FAC\x00010\x00");
        assert_eq!(r[8..12], (r.len() as u32).to_be_bytes());
        assert_eq!(r[12..14], [0, 1]);
        assert_eq!(r[14..18], ((20 + 12 + jpeg.len()) as u32).to_be_bytes());
        assert_eq!(r[18..34], [0; 16]);
        // Full frontal, JPEG, 420 x 560, RGB 24, digital still camera, device and quality 0.
        assert_eq!(r[34..46], [1, 0, 0x01, 0xA4, 0x02, 0x30, 1, 2, 0, 0, 0, 0]);
        assert_eq!(r[46..], jpeg[..]);
    }

    #[test]
    fn grey_or_progressive_portraits_are_refused() {
        let mut grey = portrait();
        grey[11] = 1;
        assert!(record(&grey).unwrap_err().detail.contains("RGB"));
        let mut progressive = portrait();
        progressive[3] = 0xC2;
        assert!(record(&progressive).is_err());
    }

    #[test]
    fn object_is_a_signed_cbeff_record_in_bc() {
        let signer = RecordingSigner::new();
        let objects = card_objects();
        let image = FacialImage { jpeg: portrait() };
        let value = object(&image, &objects, &signer, &mut 0).unwrap();
        let fields = tlv::parse_all(&value).unwrap();
        assert_eq!(
            fields.iter().map(|t| t.tag).collect::<Vec<_>>(),
            [0xBC, 0xFE]
        );
        assert!(fields[1].value.is_empty());
        let parsed = cbeff::parse(fields[0].value).unwrap();
        assert_eq!(parsed.format_type, 0x0501);
        assert_eq!(parsed.bdb, record(&image.jpeg).unwrap());
        let request = signer.requests().pop().unwrap();
        assert_eq!(request.content_type, SignedContentType::Biometric);
        assert_eq!(request.content, parsed.signed_content);
        assert_eq!(jpeg_from_object(&value), Some(&image.jpeg[..]));
    }
}

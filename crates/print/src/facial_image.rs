//! The portrait a PIV card carries in its facial image object (5FC108), made from the stored
//! portrait: 420 × 560 pixels (3:4, the full frontal framing FIPS 201 cards use, wide enough for
//! the 240-pixel head width a full frontal image needs), 24-bit RGB, baseline JPEG, and small
//! enough for the object's container.
//!
//! SP 800-73-4 gives the facial image container 12,710 bytes, of which the CBEFF record (tag
//! BC) may take 12,704. Out of those, the CBEFF header takes 88, the ISO/IEC 19794-5 record's
//! headers 46, and the signature block up to about 1.3 KB (a CMS SignedData without certificate,
//! with the signer's name and an RSA 4096 signature at most): the JPEG gets
//! [`MAX_BYTES`]. SP 800-76-2 prefers JPEG 2000 on the card; the JPEG of ISO/IEC 19794-5's image
//! data type 00 is what the encoder at hand writes, at the highest quality that fits.

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{ImageFormat, ImageReader, RgbImage};
use std::io::Cursor;
use tessera_core::ports::PortError;

pub const WIDTH: u32 = 420;
pub const HEIGHT: u32 = 560;
/// The largest JPEG written to the card.
pub const MAX_BYTES: usize = 11_000;
/// Below this JPEG quality a face is no longer fit to look at.
const MIN_QUALITY: u8 = 10;
const MAX_QUALITY: u8 = 90;

fn refuse(message: impl Into<String>) -> PortError {
    PortError::new(message)
}

/// The card's facial image made from `portrait` (a stored portrait: a JPEG or PNG that
/// [`crate::photo::normalise`] made): cropped about its centre to 3:4, scaled to 420 × 560 and
/// encoded at the highest JPEG quality whose file fits [`MAX_BYTES`].
pub fn card_facial_image(portrait: &[u8]) -> Result<Vec<u8>, PortError> {
    let framed = frame(portrait)?;
    // The file shrinks as the quality drops: find the highest quality that fits.
    let (mut low, mut high) = (MIN_QUALITY, MAX_QUALITY);
    let mut best = None;
    while low <= high {
        let quality = low + (high - low) / 2;
        let jpeg = encode(&framed, quality)?;
        if jpeg.len() <= MAX_BYTES {
            best = Some(jpeg);
            low = quality + 1;
        } else {
            high = quality - 1;
        }
    }
    best.ok_or_else(|| {
        refuse(format!(
            "the portrait does not fit the card's {MAX_BYTES} bytes even at JPEG quality \
             {MIN_QUALITY}: take a photo with a plain background"
        ))
    })
}

/// The portrait decoded, cropped about its centre to the largest 3:4 rectangle and scaled.
fn frame(portrait: &[u8]) -> Result<RgbImage, PortError> {
    if portrait.len() > crate::photo::MAX_PHOTO_BYTES {
        return Err(refuse(
            "the portrait is larger than a stored portrait can be",
        ));
    }
    let format = image::guess_format(portrait)
        .ok()
        .filter(|f| matches!(f, ImageFormat::Jpeg | ImageFormat::Png))
        .ok_or_else(|| refuse("the portrait is not a JPEG or PNG image"))?;
    let mut reader = ImageReader::with_format(Cursor::new(portrait), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(crate::photo::MAX_SIDE);
    limits.max_image_height = Some(crate::photo::MAX_SIDE);
    limits.max_alloc = Some(crate::photo::MAX_PIXELS * 4 + 1024 * 1024);
    reader.limits(limits);
    let picture = reader
        .decode()
        .map_err(|e| refuse(format!("the portrait cannot be decoded: {e}")))?;
    let (width, height) = (picture.width(), picture.height());
    let (crop_w, crop_h) = if u64::from(width) * 4 > u64::from(height) * 3 {
        (height * 3 / 4, height)
    } else {
        (width, width * 4 / 3)
    };
    if crop_w == 0 || crop_h == 0 {
        return Err(refuse("the portrait has no pixels to crop"));
    }
    Ok(picture
        .crop_imm((width - crop_w) / 2, (height - crop_h) / 2, crop_w, crop_h)
        .resize_exact(WIDTH, HEIGHT, FilterType::Lanczos3)
        .to_rgb8())
}

fn encode(framed: &RgbImage, quality: u8) -> Result<Vec<u8>, PortError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(framed)
        .map_err(|e| refuse(format!("the facial image cannot be encoded: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn jpeg_of(picture: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(picture)
            .unwrap();
        out
    }

    /// A portrait-like picture: a light background and a darker oval.
    fn portrait(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            let dx = (x as f32 - width as f32 / 2.0) / (width as f32 / 3.0);
            let dy = (y as f32 - height as f32 / 2.4) / (height as f32 / 3.0);
            if dx * dx + dy * dy < 1.0 {
                Rgb([180 - (x % 40) as u8, 130, 110 + (y % 30) as u8])
            } else {
                Rgb([225, 230, 235])
            }
        })
    }

    fn baseline_size(jpeg: &[u8]) -> (u32, u32) {
        let at = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let h = u16::from_be_bytes([jpeg[at + 5], jpeg[at + 6]]);
        let w = u16::from_be_bytes([jpeg[at + 7], jpeg[at + 8]]);
        assert_eq!(jpeg[at + 9], 3, "three components");
        (u32::from(w), u32::from(h))
    }

    #[test]
    fn a_stored_portrait_becomes_a_card_facial_image() {
        for (w, h) in [(480, 600), (600, 480), (120, 150)] {
            let out = card_facial_image(&jpeg_of(&portrait(w, h))).unwrap();
            assert!(out.len() <= MAX_BYTES, "{} bytes", out.len());
            assert_eq!(baseline_size(&out), (WIDTH, HEIGHT));
            let decoded = image::load_from_memory(&out).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (WIDTH, HEIGHT));
        }
    }

    #[test]
    fn the_highest_quality_that_fits_is_taken() {
        let stored = jpeg_of(&portrait(480, 600));
        let out = card_facial_image(&stored).unwrap();
        let framed = frame(&stored).unwrap();
        let highest = (MIN_QUALITY..=MAX_QUALITY)
            .rev()
            .map(|q| encode(&framed, q).unwrap())
            .find(|jpeg| jpeg.len() <= MAX_BYTES)
            .unwrap();
        assert_eq!(out, highest);
    }

    #[test]
    fn noise_that_cannot_fit_is_refused() {
        let mut state = 0x1234_5678u32;
        let noise = RgbImage::from_fn(480, 600, |_, _| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let [a, b, c, _] = state.to_le_bytes();
            Rgb([a, b, c])
        });
        let err = card_facial_image(&jpeg_of(&noise)).unwrap_err();
        assert!(err.message.contains("does not fit"), "{}", err.message);
        assert!(card_facial_image(b"GIF89a").is_err());
    }
}

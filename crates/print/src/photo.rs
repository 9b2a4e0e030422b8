//! Portraits as people's sources give them, made safe and uniform: [`PhotoNormaliser`] accepts a
//! JPEG or PNG within size and dimension limits (checked from the header before anything is
//! decoded, so a decompression bomb is refused without being inflated), crops it, scales it down
//! to the card's portrait size and re-encodes it as a JPEG. A photo whose EXIF says it is turned
//! (as a phone's often is) is turned upright first; re-encoding then carries no metadata over:
//! EXIF (camera, location, dates) is gone.

use async_trait::async_trait;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::io::Cursor;
use tessera_core::ports::{Crop, PhotoProcessor, PortError};

/// The largest photo file accepted.
pub const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;
/// The largest photo accepted, in pixels per side and in all (a 12-megapixel camera fits).
pub const MAX_SIDE: u32 = 8_000;
pub const MAX_PIXELS: u64 = 40_000_000;
/// The smallest photo that still makes a recognisable portrait.
pub const MIN_SIDE: u32 = 60;
/// Stored portraits fit in this box (about 300 dpi over the layout's photo slot).
pub const STORED_WIDTH: u32 = 480;
pub const STORED_HEIGHT: u32 = 600;

/// The [`PhotoProcessor`] of the server.
#[derive(Clone, Copy, Debug, Default)]
pub struct PhotoNormaliser;

fn refuse(message: impl Into<String>) -> PortError {
    PortError::new(message)
}

/// The synchronous work of [`PhotoNormaliser`].
pub fn normalise(bytes: &[u8], crop: Option<Crop>) -> Result<Vec<u8>, PortError> {
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(refuse(format!(
            "the photo is {} KiB, more than the {} MiB allowed",
            bytes.len() / 1024,
            MAX_PHOTO_BYTES / (1024 * 1024)
        )));
    }
    let format = image::guess_format(bytes)
        .ok()
        .filter(|f| matches!(f, ImageFormat::Jpeg | ImageFormat::Png))
        .ok_or_else(|| refuse("the photo is not a JPEG or PNG image"))?;
    if format == ImageFormat::Jpeg && !jpeg_is_whole(bytes) {
        return Err(refuse(
            "the photo cannot be read: the JPEG file is cut short (it stops before its end); copy or export it again",
        ));
    }
    let reader = ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| refuse(format!("the photo cannot be read: {e}")))?;
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(refuse(format!(
            "the photo is {width}×{height} pixels, more than the {MAX_SIDE}×{MAX_SIDE} (40 megapixels) allowed"
        )));
    }
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(refuse(format!(
            "the photo is {width}×{height} pixels, smaller than the {MIN_SIDE}×{MIN_SIDE} a portrait needs"
        )));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 4 + 1024 * 1024);
    reader.limits(limits);
    let decoding = |e: image::ImageError| refuse(format!("the photo cannot be decoded: {e}"));
    let mut decoder = reader.into_decoder().map_err(decoding)?;
    // A phone stores its sensor's rows and says in EXIF how to turn them; the browser shows the
    // photo turned (where the operator cropped it), and the card must too. An unreadable EXIF
    // block means no turn, as in a browser.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut picture = DynamicImage::from_decoder(decoder).map_err(decoding)?;
    picture.apply_orientation(orientation);
    let (width, height) = (picture.width(), picture.height());
    if let Some(c) = crop {
        let fits = c.width >= MIN_SIDE
            && c.height >= MIN_SIDE
            && c.x.checked_add(c.width).is_some_and(|r| r <= width)
            && c.y.checked_add(c.height).is_some_and(|b| b <= height);
        if !fits {
            return Err(refuse(format!(
                "the crop {}×{} at ({}, {}) does not fit in the {width}×{height} photo or is smaller than {MIN_SIDE} pixels",
                c.width, c.height, c.x, c.y
            )));
        }
        picture = picture.crop_imm(c.x, c.y, c.width, c.height);
    }
    if picture.width() > STORED_WIDTH || picture.height() > STORED_HEIGHT {
        picture = picture.resize(
            STORED_WIDTH,
            STORED_HEIGHT,
            image::imageops::FilterType::Lanczos3,
        );
    }
    let rgb = picture.to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&rgb)
        .map_err(|e| refuse(format!("the photo cannot be encoded: {e}")))?;
    Ok(out)
}

/// Whether a JPEG ends its last scan with the end-of-image marker. The decoder fills what is
/// missing from a truncated JPEG with grey instead of failing, and a portrait cut short would be
/// printed half grey. Inside a scan a 0xFF byte is always followed by 0x00 or a restart marker,
/// so the markers found here are real ones.
fn jpeg_is_whole(bytes: &[u8]) -> bool {
    const START_OF_SCAN: [u8; 2] = [0xFF, 0xDA];
    const END_OF_IMAGE: [u8; 2] = [0xFF, 0xD9];
    bytes
        .windows(2)
        .rposition(|w| w == START_OF_SCAN)
        .is_some_and(|at| bytes[at..].windows(2).any(|w| w == END_OF_IMAGE))
}

#[async_trait]
impl PhotoProcessor for PhotoNormaliser {
    async fn normalise(&self, bytes: Vec<u8>, crop: Option<Crop>) -> Result<Vec<u8>, PortError> {
        tokio::task::spawn_blocking(move || normalise(&bytes, crop))
            .await
            .map_err(|e| refuse(format!("the photo could not be processed: {e}")))?
    }

    async fn card_facial_image(&self, portrait: Vec<u8>) -> Result<Vec<u8>, PortError> {
        tokio::task::spawn_blocking(move || crate::facial_image::card_facial_image(&portrait))
            .await
            .map_err(|e| refuse(format!("the facial image could not be made: {e}")))?
    }
}

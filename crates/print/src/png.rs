//! PNG details tiny-skia leaves out: the resolution, so that print pipelines place a 1011 x 638
//! image on exactly one card instead of guessing 72 or 96 dpi.

const SIGNATURE_LEN: usize = 8;
/// Length (4) + type (4) + 13 bytes of header + CRC (4).
const IHDR_LEN: usize = 25;

/// Inserts a `pHYs` chunk after the header. Returns the PNG unchanged if it has no plain header.
pub fn with_dpi(png: Vec<u8>, dpi: f32) -> Vec<u8> {
    let header_end = SIGNATURE_LEN + IHDR_LEN;
    if png.len() < header_end || &png[12..16] != b"IHDR" {
        return png;
    }
    let per_metre = (dpi / 0.0254).round() as u32;
    let mut chunk = Vec::with_capacity(21);
    chunk.extend_from_slice(&9u32.to_be_bytes());
    chunk.extend_from_slice(b"pHYs");
    chunk.extend_from_slice(&per_metre.to_be_bytes());
    chunk.extend_from_slice(&per_metre.to_be_bytes());
    chunk.push(1); // unit: metre
    let crc = crc32(&chunk[4..]);
    chunk.extend_from_slice(&crc.to_be_bytes());

    let mut out = Vec::with_capacity(png.len() + chunk.len());
    out.extend_from_slice(&png[..header_end]);
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&png[header_end..]);
    out
}

/// CRC-32 (ISO 3309) as PNG chunks use it; bitwise, since it runs over 13 bytes.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Width and height from a PNG header.
pub fn dimensions(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(png[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(png[20..24].try_into().ok()?);
    Some((w, h))
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc_of_a_known_chunk() {
        // The CRC of an empty IEND chunk, as every PNG ends with it.
        assert_eq!(super::crc32(b"IEND"), 0xAE42_6082);
    }
}

//! What a facial record needs to know of a JPEG (ISO/IEC 10918-1, annex B): that it is a
//! baseline JPEG and the width, height and number of components its frame header (SOF0) gives.
//! The markers are walked from SOI to the first start-of-frame; the scan data is not looked at.

/// The frame of a baseline JPEG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub width: u16,
    pub height: u16,
    pub components: u8,
}

const SOI: u8 = 0xD8;
const SOF0: u8 = 0xC0;

/// The frame of `jpeg`, or why it is not a baseline JPEG this record can carry.
pub fn baseline_frame(jpeg: &[u8]) -> Result<Frame, &'static str> {
    if jpeg.get(..2) != Some(&[0xFF, SOI][..]) {
        return Err("it is not a JPEG (no start-of-image marker)");
    }
    let mut at = 2;
    loop {
        // Markers may be preceded by fill bytes FF.
        while jpeg.get(at) == Some(&0xFF) && jpeg.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (jpeg.get(at), jpeg.get(at + 1)) else {
            return Err("the JPEG ends, or is damaged, before its frame header");
        };
        at += 2;
        match marker {
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            0xD9 | 0xDA => return Err("the JPEG has no frame header before its image data"),
            _ => {}
        }
        let len = match jpeg.get(at..at + 2) {
            Some(b) => usize::from(u16::from_be_bytes([b[0], b[1]])),
            None => return Err("the JPEG ends inside a segment"),
        };
        if len < 2 || at + len > jpeg.len() {
            return Err("a JPEG segment's length runs past the end");
        }
        let segment = &jpeg[at + 2..at + len];
        match marker {
            SOF0 => {
                // Precision, height, width, number of components.
                let [precision, h1, h0, w1, w0, components, ..] = *segment else {
                    return Err("the JPEG's frame header is too short");
                };
                if precision != 8 {
                    return Err("the JPEG does not have 8-bit samples");
                }
                let frame = Frame {
                    width: u16::from_be_bytes([w1, w0]),
                    height: u16::from_be_bytes([h1, h0]),
                    components,
                };
                if frame.width == 0 || frame.height == 0 {
                    return Err("the JPEG's frame header gives no size");
                }
                return Ok(frame);
            }
            // Every other start-of-frame (DHT C4, JPG C8 and DAC CC are not ones).
            0xC1..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                return Err("the JPEG is not baseline (progressive, lossless or arithmetic)")
            }
            _ => at += len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, an APP0 segment, a DQT-like segment and a baseline frame header of 420x560, 3
    /// components.
    pub(crate) fn tiny_jpeg(marker: u8) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xAB, 0xCD];
        j.extend_from_slice(&[0xFF, 0xFF, 0xDB, 0x00, 0x03, 0x00]);
        j.extend_from_slice(&[0xFF, marker, 0x00, 0x11, 8, 0x02, 0x30, 0x01, 0xA4, 3]);
        j.extend_from_slice(&[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9]);
        j
    }

    #[test]
    fn reads_the_baseline_frame() {
        assert_eq!(
            baseline_frame(&tiny_jpeg(0xC0)),
            Ok(Frame {
                width: 420,
                height: 560,
                components: 3
            })
        );
    }

    #[test]
    fn refuses_what_is_not_a_baseline_jpeg() {
        assert!(baseline_frame(&tiny_jpeg(0xC2)).is_err()); // progressive
        assert!(baseline_frame(b"\x89PNG\r\n").is_err());
        assert!(baseline_frame(&[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02]).is_err());
        let full = tiny_jpeg(0xC0);
        for cut in 0..full.len() - 6 {
            assert!(baseline_frame(&full[..cut]).is_err(), "cut at {cut}");
        }
    }
}

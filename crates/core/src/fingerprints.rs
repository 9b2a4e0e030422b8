//! Fingerprint enrolment data: the INCITS 378-2004 finger minutiae record an enrolment system
//! supplies for a person, read and checked field by field, and the synthetic records Tessera
//! makes for its demo people.
//!
//! A PIV card carries the two fingers of SP 800-76-2 (the primary and the secondary finger) as
//! one INCITS 378 record in the fingerprints object (5FC103); `tessera-piv` wraps it in CBEFF and
//! signs it. What is checked here is what a relying party's matcher will read: the record header
//! (`FMR\0`, version ` 20\0`, the record length, capture equipment, image size and resolution,
//! the number of finger views), each finger view (finger position, view number and impression
//! type, finger quality, the minutiae with their type, position inside the image, angle and
//! quality, the extended data block), and that every length adds up to the bytes given, no more
//! and no less. [`check_for_card`] adds what SP 800-76-2 asks of the record on a PIV card.
//!
//! The record layout (all numbers big-endian):
//!
//! ```text
//! header (26 bytes; 30 when the record length takes the 6-byte form)
//!   0  4  format identifier "FMR\0"
//!   4  4  version " 20\0"
//!   8  2  record length (0 here: the next 4 bytes hold it, for records over 65535 bytes)
//!  10  4  CBEFF product identifier (owner, type)
//!  14  2  capture equipment compliance (4 bits) and capture equipment id (12 bits)
//!  16  2  image width, 18 2 image height (pixels)
//!  20  2  horizontal, 22 2 vertical resolution (pixels per centimetre)
//!  24  1  number of finger views, 25 1 reserved (0)
//! each finger view
//!   0  1  finger position (INCITS 381: 0 unknown, 1-5 right thumb..little, 6-10 left)
//!   1  1  view number (4 bits) and impression type (4 bits)
//!   2  1  finger quality (0-100)
//!   3  1  number of minutiae
//!   then 6 bytes a minutia: type (2 bits) and x (14 bits); reserved (2 bits) and y (14 bits);
//!   angle (units of 2 degrees, 0-179); quality (0-100)
//!   then the extended data block length (2 bytes) and that many bytes of extended data areas,
//!   each a type code (2), its length counting these 4 bytes (2) and its data
//! ```

use sha2::{Digest, Sha256};

/// The format identifier that opens a record.
pub const FORMAT_ID: [u8; 4] = *b"FMR\0";
/// The version of INCITS 378-2004.
pub const VERSION: [u8; 4] = *b" 20\0";
/// The resolution of PIV fingerprint images (SP 800-76-2): 500 pixels per inch.
pub const PIV_RESOLUTION: u16 = 197;
/// The largest record taken: the short form of the record length (a PIV card's fingerprints
/// object holds a few kilobytes at most).
pub const MAX_RECORD_BYTES: usize = 65_535;

const SHORT_HEADER: usize = 26;
const LONG_HEADER: usize = 30;
const VIEW_HEADER: usize = 4;
const MINUTIA: usize = 6;

/// The kind of a minutia.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinutiaType {
    /// `00`: neither of the others.
    Other,
    /// `01`: a ridge ending.
    RidgeEnding,
    /// `10`: a ridge bifurcation.
    Bifurcation,
}

impl MinutiaType {
    fn bits(self) -> u16 {
        match self {
            Self::Other => 0,
            Self::RidgeEnding => 1,
            Self::Bifurcation => 2,
        }
    }
}

/// One minutia of a finger view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Minutia {
    pub kind: MinutiaType,
    /// Pixels from the image's left edge.
    pub x: u16,
    /// Pixels from the image's top edge.
    pub y: u16,
    /// The direction in units of 2 degrees (0-179).
    pub angle: u8,
    /// 1-100, or 0 when the extractor reports none.
    pub quality: u8,
}

/// One finger view of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FingerView {
    /// The finger (INCITS 381 codes, see [`finger_name`]).
    pub position: u8,
    /// Which view of that finger (0 for the first).
    pub view_number: u8,
    /// 0 live-scan plain, 1 live-scan rolled, 2 non-live-scan plain, 3 non-live-scan rolled.
    pub impression_type: u8,
    /// 1-100 (SP 800-76-2 gives 20, 40, 60, 80 or 100 from NFIQ), 0 when not reported.
    pub quality: u8,
    pub minutiae: Vec<Minutia>,
    /// The extended data block's areas (ridge counts, cores and deltas, vendor data), as read.
    pub extended_data: Vec<u8>,
}

/// A finger minutiae record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinutiaeRecord {
    /// CBEFF product identifier of the software that made the record: owner and type.
    pub product_owner: u16,
    pub product_type: u16,
    /// Capture equipment compliance (4 bits; `1000` says certified to the FBI's Appendix F).
    pub equipment_compliance: u8,
    /// Capture equipment id given by its vendor (12 bits; 0 when not reported).
    pub equipment_id: u16,
    pub width: u16,
    pub height: u16,
    /// Pixels per centimetre.
    pub x_resolution: u16,
    pub y_resolution: u16,
    pub views: Vec<FingerView>,
}

/// The name of an INCITS 381 finger position code.
pub fn finger_name(position: u8) -> &'static str {
    match position {
        0 => "unknown finger",
        1 => "right thumb",
        2 => "right index finger",
        3 => "right middle finger",
        4 => "right ring finger",
        5 => "right little finger",
        6 => "left thumb",
        7 => "left index finger",
        8 => "left middle finger",
        9 => "left ring finger",
        10 => "left little finger",
        _ => "no finger (an invalid position)",
    }
}

/// Reads the bytes of a record one field at a time, saying which field ran past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.bytes.len() - self.at < n {
            return Err(format!(
                "the record ends inside {what} (at byte {} of {})",
                self.at,
                self.bytes.len()
            ));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

/// Reads an INCITS 378-2004 record and checks it against the standard: identifiers, lengths,
/// value ranges, minutiae inside the image. Says in a sentence what is wrong, and where.
pub fn parse(bytes: &[u8]) -> Result<MinutiaeRecord, String> {
    if bytes.len() < SHORT_HEADER {
        return Err(format!(
            "{} bytes is shorter than the 26-byte header of an INCITS 378 record",
            bytes.len()
        ));
    }
    let mut r = Reader { bytes, at: 0 };
    if r.take(4, "the format identifier")? != FORMAT_ID {
        return Err(
            "this is not an INCITS 378 finger minutiae record: it does not begin with \"FMR\\0\""
                .into(),
        );
    }
    let version = r.take(4, "the version")?;
    if version != VERSION {
        return Err(format!(
            "the record's version is {:?}, not INCITS 378-2004's \" 20\\0\" (an ISO/IEC 19794-2 \
             record, or another version, must be converted first)",
            String::from_utf8_lossy(version)
        ));
    }
    let short = r.u16("the record length")?;
    let (length, header) = if short == 0 {
        let b = r.take(4, "the record length")?;
        (
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize,
            LONG_HEADER,
        )
    } else {
        (short as usize, SHORT_HEADER)
    };
    if length != bytes.len() {
        return Err(format!(
            "the record says it is {length} bytes long but {} bytes were given",
            bytes.len()
        ));
    }
    let product_owner = r.u16("the CBEFF product identifier")?;
    let product_type = r.u16("the CBEFF product identifier")?;
    let equipment = r.u16("the capture equipment")?;
    let width = r.u16("the image size")?;
    let height = r.u16("the image size")?;
    let x_resolution = r.u16("the image resolution")?;
    let y_resolution = r.u16("the image resolution")?;
    let view_count = r.u8("the number of finger views")?;
    let reserved = r.u8("the header's reserved byte")?;
    debug_assert_eq!(r.at, header);
    if width == 0 || height == 0 {
        return Err(format!(
            "the image size is {width} x {height} pixels: both must be above 0"
        ));
    }
    if x_resolution == 0 || y_resolution == 0 {
        return Err(format!(
            "the image resolution is {x_resolution} x {y_resolution} pixels per centimetre: both \
             must be above 0"
        ));
    }
    if reserved != 0 {
        return Err(format!("the header's reserved byte is {reserved}, not 0"));
    }
    if view_count == 0 {
        return Err("the record holds no finger view".into());
    }
    let mut views = Vec::with_capacity(view_count as usize);
    for n in 1..=view_count {
        views.push(parse_view(&mut r, n, width, height)?);
    }
    if r.at != bytes.len() {
        return Err(format!(
            "{} bytes follow the last of the {view_count} finger views the header announces",
            bytes.len() - r.at
        ));
    }
    Ok(MinutiaeRecord {
        product_owner,
        product_type,
        equipment_compliance: (equipment >> 12) as u8,
        equipment_id: equipment & 0x0FFF,
        width,
        height,
        x_resolution,
        y_resolution,
        views,
    })
}

fn parse_view(r: &mut Reader<'_>, n: u8, width: u16, height: u16) -> Result<FingerView, String> {
    let what = format!("finger view {n}");
    let position = r.u8(&what)?;
    let view_impression = r.u8(&what)?;
    let quality = r.u8(&what)?;
    let count = r.u8(&what)?;
    if position > 10 {
        return Err(format!(
            "finger view {n} has the finger position {position}; INCITS 381 codes run from 0 to 10"
        ));
    }
    if quality > 100 {
        return Err(format!(
            "finger view {n} has the finger quality {quality}; it runs from 0 to 100"
        ));
    }
    let impression_type = view_impression & 0x0F;
    if impression_type > 3 {
        return Err(format!(
            "finger view {n} has the impression type {impression_type}; INCITS 378 knows 0 to 3 \
             (plain or rolled, live-scan or not)"
        ));
    }
    let mut minutiae = Vec::with_capacity(count as usize);
    for m in 1..=count {
        let what = format!("minutia {m} of finger view {n}");
        let b = r.take(MINUTIA, &what)?;
        let type_x = u16::from_be_bytes([b[0], b[1]]);
        let reserved_y = u16::from_be_bytes([b[2], b[3]]);
        let kind = match type_x >> 14 {
            0 => MinutiaType::Other,
            1 => MinutiaType::RidgeEnding,
            2 => MinutiaType::Bifurcation,
            _ => return Err(format!("{what} has the reserved type 11")),
        };
        if reserved_y >> 14 != 0 {
            return Err(format!("{what} has its reserved bits set"));
        }
        let (x, y) = (type_x & 0x3FFF, reserved_y & 0x3FFF);
        if x >= width || y >= height {
            return Err(format!(
                "{what} lies at ({x}, {y}), outside the {width} x {height} image"
            ));
        }
        let (angle, quality) = (b[4], b[5]);
        if angle > 179 {
            return Err(format!(
                "{what} has the angle {angle}; angles are in units of 2 degrees, 0 to 179"
            ));
        }
        if quality > 100 {
            return Err(format!(
                "{what} has the quality {quality}; it runs from 0 to 100"
            ));
        }
        minutiae.push(Minutia {
            kind,
            x,
            y,
            angle,
            quality,
        });
    }
    let block = r.u16(&format!("the extended data length of finger view {n}"))? as usize;
    let extended_data = r
        .take(block, &format!("the extended data of finger view {n}"))?
        .to_vec();
    check_extended_data(&extended_data, n)?;
    Ok(FingerView {
        position,
        view_number: view_impression >> 4,
        impression_type,
        quality,
        minutiae,
        extended_data,
    })
}

/// The extended data block is a run of areas, each a type code, its length (counting its own
/// 4-byte head) and its data, which must fill the block exactly.
fn check_extended_data(block: &[u8], n: u8) -> Result<(), String> {
    let mut at = 0;
    while at < block.len() {
        if block.len() - at < 4 {
            return Err(format!(
                "the extended data of finger view {n} ends inside an area's type and length"
            ));
        }
        let code = u16::from_be_bytes([block[at], block[at + 1]]);
        let len = u16::from_be_bytes([block[at + 2], block[at + 3]]) as usize;
        if code == 0 {
            return Err(format!(
                "the extended data of finger view {n} has an area of the reserved type 0"
            ));
        }
        if len < 4 || len > block.len() - at {
            return Err(format!(
                "an extended data area of finger view {n} says it is {len} bytes long, which \
                 does not fit the {} bytes left of its block",
                block.len() - at
            ));
        }
        at += len;
    }
    Ok(())
}

/// [`parse`], then what SP 800-76-2 asks of the record a PIV card carries: two finger views, of
/// two different, named fingers (the primary and the secondary finger), each the first view of
/// its finger and a plain impression, imaged at 197 pixels per centimetre (500 ppi).
pub fn check_for_card(bytes: &[u8]) -> Result<MinutiaeRecord, String> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(format!(
            "the record is {} bytes long, more than the {MAX_RECORD_BYTES} a card's fingerprints \
             object could hold",
            bytes.len()
        ));
    }
    let record = parse(bytes)?;
    if record.views.len() != 2 {
        return Err(format!(
            "the record holds {} finger view{}; a PIV card carries exactly two, the primary and \
             the secondary finger (SP 800-76-2): have the enrolment system export both fingers \
             in one record",
            record.views.len(),
            if record.views.len() == 1 { "" } else { "s" }
        ));
    }
    if record.x_resolution != PIV_RESOLUTION || record.y_resolution != PIV_RESOLUTION {
        return Err(format!(
            "the images were read at {} x {} pixels per centimetre; SP 800-76-2 asks for 197 \
             (500 pixels per inch)",
            record.x_resolution, record.y_resolution
        ));
    }
    for (i, view) in record.views.iter().enumerate() {
        let n = i + 1;
        if view.position == 0 {
            return Err(format!(
                "finger view {n} does not say which finger it is (position 0): the card's \
                 primary and secondary fingers must be named"
            ));
        }
        if view.view_number != 0 {
            return Err(format!(
                "finger view {n} is view {} of the {}; the card carries the first view (0) of \
                 each finger",
                view.view_number,
                finger_name(view.position)
            ));
        }
        if view.impression_type != 0 && view.impression_type != 2 {
            return Err(format!(
                "finger view {n} is a rolled impression (type {}); the card carries plain \
                 impressions (type 0 or 2)",
                view.impression_type
            ));
        }
    }
    if record.views[0].position == record.views[1].position {
        return Err(format!(
            "both finger views are of the {}; the card carries two different fingers",
            finger_name(record.views[0].position)
        ));
    }
    Ok(record)
}

impl MinutiaeRecord {
    /// The record's bytes (the short form of the length up to 65535 bytes, the long form above).
    pub fn encode(&self) -> Vec<u8> {
        let body: usize = self
            .views
            .iter()
            .map(|v| VIEW_HEADER + MINUTIA * v.minutiae.len() + 2 + v.extended_data.len())
            .sum();
        let long = SHORT_HEADER + body > MAX_RECORD_BYTES;
        let total = body + if long { LONG_HEADER } else { SHORT_HEADER };
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&FORMAT_ID);
        out.extend_from_slice(&VERSION);
        if long {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(total as u32).to_be_bytes());
        } else {
            out.extend_from_slice(&(total as u16).to_be_bytes());
        }
        out.extend_from_slice(&self.product_owner.to_be_bytes());
        out.extend_from_slice(&self.product_type.to_be_bytes());
        let equipment =
            (u16::from(self.equipment_compliance & 0x0F) << 12) | (self.equipment_id & 0x0FFF);
        for v in [
            equipment,
            self.width,
            self.height,
            self.x_resolution,
            self.y_resolution,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.push(self.views.len() as u8);
        out.push(0);
        for view in &self.views {
            out.push(view.position);
            out.push((view.view_number << 4) | (view.impression_type & 0x0F));
            out.push(view.quality);
            out.push(view.minutiae.len() as u8);
            for m in &view.minutiae {
                out.extend_from_slice(&((m.kind.bits() << 14) | (m.x & 0x3FFF)).to_be_bytes());
                out.extend_from_slice(&(m.y & 0x3FFF).to_be_bytes());
                out.push(m.angle);
                out.push(m.quality);
            }
            out.extend_from_slice(&(view.extended_data.len() as u16).to_be_bytes());
            out.extend_from_slice(&view.extended_data);
        }
        out
    }

    /// `right index finger (42 minutiae), left index finger (37 minutiae)`.
    pub fn describe(&self) -> String {
        self.views
            .iter()
            .map(|v| {
                format!(
                    "{} ({} minutiae)",
                    finger_name(v.position),
                    v.minutiae.len()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A stream of pseudo-random numbers drawn from SHA-256 of a seed and a counter: the same seed
/// gives the same record on every machine and in every release.
struct Draw {
    seed: Vec<u8>,
    counter: u64,
    pool: Vec<u8>,
}

impl Draw {
    fn new(seed: &str) -> Self {
        Self {
            seed: seed.as_bytes().to_vec(),
            counter: 0,
            pool: Vec::new(),
        }
    }

    fn next_u32(&mut self) -> u32 {
        if self.pool.len() < 4 {
            let mut h = Sha256::new();
            h.update(b"tessera synthetic fingerprints\0");
            h.update(&self.seed);
            h.update(self.counter.to_be_bytes());
            self.counter += 1;
            self.pool = h.finalize().to_vec();
        }
        let b: Vec<u8> = self.pool.drain(..4).collect();
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// A number in `low..=high`.
    fn range(&mut self, low: u32, high: u32) -> u32 {
        low + self.next_u32() % (high - low + 1)
    }
}

/// A synthetic record for a demo person, made from `seed` (their uid): two plain live-scan
/// views of the right and left index fingers (SP 800-76-2's first choice of primary and
/// secondary finger) at 500 ppi, each with 25 to 55 minutiae spread over an oval fingertip
/// inside the image, no two closer than 8 pixels, as an extractor finds on a good plain
/// impression. The capture equipment and product identifier say "not reported" (0): no
/// scanner and no extractor made it. It passes [`check_for_card`]; it is nobody's finger.
pub fn synthetic(seed: &str) -> Vec<u8> {
    let mut draw = Draw::new(seed);
    let width = draw.range(380, 440) as u16;
    let height = draw.range(460, 520) as u16;
    let views = [2u8, 7]
        .into_iter()
        .map(|position| {
            let count = draw.range(25, 55) as usize;
            let quality = [60u8, 80, 100][draw.range(0, 2) as usize];
            let (cx, cy) = (f64::from(width) / 2.0, f64::from(height) / 2.0);
            let (rx, ry) = (cx - 30.0, cy - 30.0);
            let mut minutiae: Vec<Minutia> = Vec::with_capacity(count);
            while minutiae.len() < count {
                let x = draw.range(0, u32::from(width) - 1) as u16;
                let y = draw.range(0, u32::from(height) - 1) as u16;
                let (dx, dy) = ((f64::from(x) - cx) / rx, (f64::from(y) - cy) / ry);
                if dx * dx + dy * dy > 1.0 {
                    continue;
                }
                let crowded = minutiae.iter().any(|m| {
                    let (ax, ay) = (i32::from(m.x) - i32::from(x), i32::from(m.y) - i32::from(y));
                    ax * ax + ay * ay < 64
                });
                if crowded {
                    continue;
                }
                minutiae.push(Minutia {
                    kind: if draw.range(0, 1) == 0 {
                        MinutiaType::RidgeEnding
                    } else {
                        MinutiaType::Bifurcation
                    },
                    x,
                    y,
                    angle: draw.range(0, 179) as u8,
                    quality: draw.range(40, 100) as u8,
                });
            }
            FingerView {
                position,
                view_number: 0,
                impression_type: 0,
                quality,
                minutiae,
                extended_data: Vec::new(),
            }
        })
        .collect();
    MinutiaeRecord {
        product_owner: 0,
        product_type: 0,
        equipment_compliance: 0,
        equipment_id: 0,
        width,
        height,
        x_resolution: PIV_RESOLUTION,
        y_resolution: PIV_RESOLUTION,
        views,
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record written out byte by byte from the standard's layout: 300 x 400 pixels at 197
    /// ppcm, the right index finger (plain live-scan, quality 80) with two minutiae and the left
    /// index finger (plain non-live-scan, quality 60) with one minutia and a 6-byte extended
    /// data area.
    fn by_hand() -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(b"FMR\0");
        r.extend_from_slice(b" 20\0");
        r.extend_from_slice(&[0x00, 0x3E]); // 62 bytes in all
        r.extend_from_slice(&[0x00, 0x33, 0x00, 0x01]); // product: owner 0x33, type 1
        r.extend_from_slice(&[0x80, 0x05]); // compliance 1000b, equipment id 5
        r.extend_from_slice(&[0x01, 0x2C, 0x01, 0x90]); // 300 x 400
        r.extend_from_slice(&[0x00, 0xC5, 0x00, 0xC5]); // 197 x 197
        r.extend_from_slice(&[0x02, 0x00]); // two views, reserved
                                            // 26: right index (2), view 0 and impression 0, quality 80, 2 minutiae
        r.extend_from_slice(&[0x02, 0x00, 0x50, 0x02]);
        // 30: ridge ending at (100, 200), 90 degrees, quality 80
        r.extend_from_slice(&[0x40, 0x64, 0x00, 0xC8, 0x2D, 0x50]);
        // 36: bifurcation at (299, 399), 358 degrees, quality not reported
        r.extend_from_slice(&[0x81, 0x2B, 0x01, 0x8F, 0xB3, 0x00]);
        r.extend_from_slice(&[0x00, 0x00]); // 42: no extended data
                                            // 44: left index (7), view 0 and impression 2, quality 60, 1 minutia
        r.extend_from_slice(&[0x07, 0x02, 0x3C, 0x01]);
        // 48: of type "other" at (0, 0)
        r.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
        // 54: a 6-byte block holding one area: ridge counts (type 1), 6 bytes with its head
        r.extend_from_slice(&[0x00, 0x06, 0x00, 0x01, 0x00, 0x06, 0x01, 0x02]);
        assert_eq!(r.len(), 62);
        r
    }

    #[test]
    fn a_record_written_by_hand_is_read_field_by_field() {
        let record = check_for_card(&by_hand()).unwrap();
        assert_eq!((record.product_owner, record.product_type), (0x33, 1));
        assert_eq!((record.equipment_compliance, record.equipment_id), (8, 5));
        assert_eq!((record.width, record.height), (300, 400));
        assert_eq!((record.x_resolution, record.y_resolution), (197, 197));
        let [first, second] = &record.views[..] else {
            panic!("two views")
        };
        assert_eq!(
            (
                first.position,
                first.view_number,
                first.impression_type,
                first.quality
            ),
            (2, 0, 0, 80)
        );
        assert_eq!(
            first.minutiae,
            vec![
                Minutia {
                    kind: MinutiaType::RidgeEnding,
                    x: 100,
                    y: 200,
                    angle: 45,
                    quality: 80
                },
                Minutia {
                    kind: MinutiaType::Bifurcation,
                    x: 299,
                    y: 399,
                    angle: 179,
                    quality: 0
                },
            ]
        );
        assert_eq!(
            (second.position, second.impression_type, second.quality),
            (7, 2, 60)
        );
        assert_eq!(second.minutiae[0].kind, MinutiaType::Other);
        assert_eq!(
            second.extended_data,
            vec![0x00, 0x01, 0x00, 0x06, 0x01, 0x02]
        );
        assert_eq!(
            record.describe(),
            "right index finger (2 minutiae), left index finger (1 minutiae)"
        );
        // Written again, it is the same bytes.
        assert_eq!(record.encode(), by_hand());
    }

    /// `by_hand` with one byte changed.
    fn with(at: usize, value: u8) -> Vec<u8> {
        let mut r = by_hand();
        r[at] = value;
        r
    }

    #[test]
    fn each_broken_field_is_refused_with_its_reason() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (by_hand()[..20].to_vec(), "shorter than the 26-byte header"),
            (with(0, b'X'), "does not begin with \"FMR\\0\""),
            (with(5, b'3'), "not INCITS 378-2004"),
            (with(9, 0x3F), "says it is 63 bytes long but 62"),
            (with(17, 0x00), "(299, 399), outside the 256 x 400 image"),
            (with(19, 0x00), "(299, 399), outside the 300 x 256 image"),
            (with(16, 0x00), "(100, 200), outside the 44 x 400 image"),
            (with(21, 0x00), "0 x 197 pixels per centimetre"),
            (with(25, 1), "reserved byte is 1"),
            (with(24, 0), "no finger view"),
            (
                with(24, 1),
                "18 bytes follow the last of the 1 finger views",
            ),
            (with(26, 11), "finger position 11"),
            (with(27, 0x05), "impression type 5"),
            (with(28, 101), "finger quality 101"),
            (
                with(30, 0xC0),
                "minutia 1 of finger view 1 has the reserved type 11",
            ),
            (with(32, 0x40), "reserved bits set"),
            (with(30, 0x41), "(356, 200), outside the 300 x 400 image"),
            (with(34, 180), "angle 180"),
            (with(35, 101), "has the quality 101"),
            (with(47, 3), "ends inside minutia 3 of finger view 2"),
            (
                with(55, 0x08),
                "ends inside the extended data of finger view 2",
            ),
            (
                with(55, 0x00),
                "6 bytes follow the last of the 2 finger views",
            ),
            (with(57, 0x00), "reserved type 0"),
            (with(59, 0x07), "says it is 7 bytes long"),
            (with(59, 0x03), "says it is 3 bytes long"),
        ];
        for (bytes, reason) in cases {
            let e = parse(&bytes).expect_err(reason);
            assert!(e.contains(reason), "{reason:?} not in {e:?}");
        }
    }

    #[test]
    fn the_card_takes_two_plain_views_of_two_named_fingers_at_500_ppi() {
        let good = parse(&by_hand()).unwrap();
        let refused = |change: &dyn Fn(&mut MinutiaeRecord), reason: &str| {
            let mut r = good.clone();
            change(&mut r);
            let bytes = r.encode();
            parse(&bytes).expect("still a record");
            let e = check_for_card(&bytes).expect_err(reason);
            assert!(e.contains(reason), "{reason:?} not in {e:?}");
        };
        refused(&|r| r.views.truncate(1), "holds 1 finger view;");
        refused(
            &|r| r.views.push(r.views[0].clone()),
            "holds 3 finger views;",
        );
        refused(&|r| r.x_resolution = 500, "asks for 197");
        refused(&|r| r.y_resolution = 394, "asks for 197");
        refused(&|r| r.views[1].position = 0, "finger view 2 does not say");
        refused(&|r| r.views[0].view_number = 1, "view 1 of the right index");
        refused(&|r| r.views[1].impression_type = 1, "rolled impression");
        refused(&|r| r.views[1].impression_type = 3, "rolled impression");
        refused(
            &|r| r.views[1].position = 2,
            "both finger views are of the right index finger",
        );
    }

    #[test]
    fn a_record_over_65535_bytes_takes_the_long_length() {
        let mut r = parse(&by_hand()).unwrap();
        let area = |len: u16| {
            let mut a = vec![0x00, 0x02];
            a.extend_from_slice(&len.to_be_bytes());
            a.resize(len as usize, 7);
            a
        };
        r.views[0].extended_data = area(40_000);
        r.views[1].extended_data = area(40_000);
        let bytes = r.encode();
        assert_eq!(&bytes[8..10], &[0, 0]);
        assert_eq!(
            u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]) as usize,
            bytes.len()
        );
        assert_eq!(parse(&bytes).unwrap(), r);
        let e = check_for_card(&bytes).unwrap_err();
        assert!(e.contains("more than the 65535"), "{e}");
    }

    #[test]
    fn synthetic_records_are_the_same_for_a_seed_and_pass_the_card_checks() {
        let jane = synthetic("jdoe");
        assert_eq!(jane, synthetic("jdoe"));
        assert_ne!(jane, synthetic("asmith"));
        for seed in ["jdoe", "asmith", "u1", "", "ünïcødé"] {
            let record = check_for_card(&synthetic(seed)).unwrap();
            assert_eq!((record.product_owner, record.equipment_id), (0, 0));
            let positions: Vec<u8> = record.views.iter().map(|v| v.position).collect();
            assert_eq!(positions, vec![2, 7]);
            for view in &record.views {
                assert!((25..=55).contains(&view.minutiae.len()));
                assert!([60, 80, 100].contains(&view.quality));
                for (i, a) in view.minutiae.iter().enumerate() {
                    assert!(a.x >= 30 && a.x <= record.width - 30, "{a:?}");
                    assert!(a.y >= 30 && a.y <= record.height - 30, "{a:?}");
                    assert_ne!(a.kind, MinutiaType::Other);
                    for b in &view.minutiae[i + 1..] {
                        let (dx, dy) = (
                            i32::from(a.x) - i32::from(b.x),
                            i32::from(a.y) - i32::from(b.y),
                        );
                        assert!(dx * dx + dy * dy >= 64, "{a:?} and {b:?} are too close");
                    }
                }
            }
        }
    }
}

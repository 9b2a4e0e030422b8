//! PDF417 (ISO/IEC 15438): a stacked two-dimensional barcode that holds a few hundred characters
//! and survives damage thanks to Reed–Solomon error correction over the prime field GF(929).
//!
//! Encoding happens in four steps:
//! 1. **High-level encoding** turns the text into codewords (values 0 to 928). Printable ASCII uses
//!    text compaction (two characters a codeword, in four sub-modes), runs of 13 digits or more
//!    numeric compaction (about three digits a codeword), anything else byte compaction of the
//!    UTF-8 bytes (six bytes in five codewords) after the ECI 26 designator that tells a reader the
//!    bytes are UTF-8.
//! 2. The **symbol size** is chosen: columns (1 to 30) and rows (3 to 90) so that the symbol, drawn
//!    with rows three modules high, is as large as possible in the slot it is given. The first
//!    codeword (the symbol length descriptor) counts the data codewords; pad codewords (900) fill
//!    the rows.
//! 3. **Error correction** codewords are appended: 2^(level+1) of them, level 2 to 5 chosen by the
//!    amount of data as the standard recommends (Annex E).
//! 4. **Low-level encoding** draws each row: quiet zone, start pattern, left row indicator, the
//!    data codewords, right row indicator, stop pattern, quiet zone. Rows cycle through the three
//!    clusters of symbol characters (`pdf417_tables`), and the row indicators tell a reader the
//!    number of rows and columns and the error correction level.

use crate::pdf417_tables::{CLUSTER_0, CLUSTER_3, CLUSTER_6};

/// The field of the error correction arithmetic, and the number of codeword values.
const PRIME: u32 = 929;
/// Data and error correction codewords together, at most.
pub const MAX_CODEWORDS: usize = 928;
pub const MIN_ROWS: usize = 3;
pub const MAX_ROWS: usize = 90;
pub const MAX_COLUMNS: usize = 30;
/// Light modules on every side of the symbol; the standard asks for at least two.
pub const QUIET_ZONE: u32 = 2;
/// Height of a row in modules (the standard's minimum Y dimension is 3X).
pub const ROW_HEIGHT: u32 = 3;

/// Mode latches and the ECI designator.
const LATCH_TEXT: u16 = 900;
const LATCH_BYTE: u16 = 901;
const LATCH_NUMERIC: u16 = 902;
const LATCH_BYTE_SIX: u16 = 924;
const ECI: u16 = 927;
/// ECI assignment number of UTF-8.
const ECI_UTF8: u16 = 26;
/// Fills the rows after the data (it is also the text latch, which a reader ignores there).
const PAD: u16 = 900;

/// Start pattern, 17 modules: bar 8, then alternating ones, space 3 last.
const START: [u8; 8] = [8, 1, 1, 1, 1, 1, 1, 3];
/// Stop pattern, 18 modules: it ends with a one-module bar that closes the row.
const STOP: [u8; 9] = [7, 1, 1, 3, 1, 1, 1, 2, 1];

/// A digit run at least this long is worth a latch to numeric compaction and back.
const MIN_NUMERIC_RUN: usize = 13;

/// Text compaction, mixed sub-mode: values 0 to 24 (25 is the punctuation latch, 26 the space).
const MIXED: &[u8; 25] = b"0123456789&\r\t,:#-.$/+%*=^";
/// Text compaction, punctuation sub-mode: values 0 to 28 (29 latches back to alpha).
const PUNCTUATION: &[u8; 29] = b";<>@[\\]_`~!\r\t,:\n-.$/\"|*()?{}'";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Pdf417Error {
    #[error(
        "the value is too long for a PDF417 symbol: it needs {needed} codewords, at most {MAX_CODEWORDS} fit"
    )]
    TooLong { needed: usize },
    #[error("error correction level {0} does not exist (0 to 8)")]
    Level(u8),
}

/// An encoded symbol: its size, error correction level and every codeword in reading order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdf417 {
    pub rows: usize,
    pub columns: usize,
    pub level: u8,
    /// The symbol length descriptor, the data, the padding, then the error correction codewords;
    /// `rows * columns` in all, row by row.
    pub codewords: Vec<u16>,
}

impl Pdf417 {
    /// Encodes `text` for a slot `aspect` times as wide as it is high, at the recommended error
    /// correction level unless `level` names one.
    pub fn encode(text: &str, level: Option<u8>, aspect: f32) -> Result<Self, Pdf417Error> {
        let data = high_level(text);
        // The symbol length descriptor comes first.
        let with_length = data.len() + 1;
        let level = match level {
            Some(l) if l > 8 => return Err(Pdf417Error::Level(l)),
            Some(l) => l,
            None => recommended_level(with_length),
        };
        let ec = ec_count(level);
        let needed = with_length + ec;
        if needed > MAX_CODEWORDS {
            return Err(Pdf417Error::TooLong { needed });
        }
        let (columns, rows) = dimensions(needed, aspect);
        let data_count = rows * columns - ec;
        let mut codewords = Vec::with_capacity(rows * columns);
        codewords.push(data_count as u16);
        codewords.extend_from_slice(&data);
        codewords.resize(data_count, PAD);
        let correction = error_correction(&codewords, level);
        codewords.extend(correction);
        Ok(Self {
            rows,
            columns,
            level,
            codewords,
        })
    }

    /// The number of data codewords, length descriptor and padding included.
    pub fn data_count(&self) -> usize {
        usize::from(self.codewords[0])
    }

    /// The left and right row indicators of `row`: between them, every three rows carry the
    /// number of rows, the number of columns and the error correction level.
    pub fn row_indicators(&self, row: usize) -> (u16, u16) {
        let base = 30 * (row / 3);
        let rows = (self.rows - 1) / 3;
        let level = 3 * usize::from(self.level) + (self.rows - 1) % 3;
        let columns = self.columns - 1;
        let (left, right) = match row % 3 {
            0 => (rows, columns),
            1 => (level, rows),
            _ => (columns, level),
        };
        ((base + left) as u16, (base + right) as u16)
    }

    /// Alternating bar and space widths of `row` in modules, from the start pattern's first bar
    /// to the stop pattern's last (quiet zones excluded).
    pub fn row_widths(&self, row: usize) -> Vec<u8> {
        let (left, right) = self.row_indicators(row);
        let data = &self.codewords[row * self.columns..(row + 1) * self.columns];
        let mut widths = Vec::with_capacity(8 * (self.columns + 2) + START.len() + STOP.len());
        widths.extend_from_slice(&START);
        for &codeword in std::iter::once(&left).chain(data).chain([&right]) {
            widths.extend_from_slice(&pattern(row % 3, codeword));
        }
        widths.extend_from_slice(&STOP);
        widths
    }

    /// Width of a row in modules: start 17, row indicators and codewords 17 each, stop 18.
    pub fn width_modules(&self) -> u32 {
        row_modules(self.columns)
    }

    /// The bars of the whole symbol as `(x, y, width)` in modules from the top left corner of
    /// the quiet zone, each `ROW_HEIGHT` modules high.
    pub fn bars(&self) -> Vec<(u32, u32, u32)> {
        let mut bars = Vec::new();
        for row in 0..self.rows {
            let y = QUIET_ZONE + ROW_HEIGHT * row as u32;
            let mut x = QUIET_ZONE;
            for (i, w) in self.row_widths(row).into_iter().enumerate() {
                let w = u32::from(w);
                if i % 2 == 0 {
                    bars.push((x, y, w));
                }
                x += w;
            }
        }
        bars
    }

    /// The size of the whole symbol in modules, quiet zones included.
    pub fn size_modules(&self) -> (u32, u32) {
        (
            self.width_modules() + 2 * QUIET_ZONE,
            ROW_HEIGHT * self.rows as u32 + 2 * QUIET_ZONE,
        )
    }
}

fn row_modules(columns: usize) -> u32 {
    17 * (columns as u32 + 3) + 18
}

/// The bar and space widths of `codeword` in the cluster of row `row % 3` (0, 3 or 6).
fn pattern(cluster: usize, codeword: u16) -> [u8; 8] {
    let table = match cluster {
        0 => &CLUSTER_0,
        1 => &CLUSTER_3,
        _ => &CLUSTER_6,
    };
    unpack(table[usize::from(codeword)])
}

/// `31111136` to `[3, 1, 1, 1, 1, 1, 3, 6]`.
fn unpack(mut packed: u32) -> [u8; 8] {
    let mut widths = [0u8; 8];
    for w in widths.iter_mut().rev() {
        *w = (packed % 10) as u8;
        packed /= 10;
    }
    widths
}

/// Error correction codewords for a level: 2, 4, 8 ... 512.
pub fn ec_count(level: u8) -> usize {
    2 << level
}

/// The standard's recommendation (ISO/IEC 15438 Annex E) by the number of data codewords, never
/// below level 2.
pub fn recommended_level(data_codewords: usize) -> u8 {
    match data_codewords {
        0..=40 => 2,
        41..=160 => 3,
        161..=320 => 4,
        _ => 5,
    }
}

/// Columns and rows for `needed` codewords that make the largest modules in a slot `aspect` times
/// as wide as high; on a tie, the fewest pad codewords.
fn dimensions(needed: usize, aspect: f32) -> (usize, usize) {
    let aspect = if aspect.is_finite() && aspect > 0.0 {
        aspect
    } else {
        3.0
    };
    let mut best: Option<(f32, usize, usize, usize)> = None;
    for columns in 1..=MAX_COLUMNS {
        let rows = needed.div_ceil(columns).max(MIN_ROWS);
        if rows > MAX_ROWS {
            continue;
        }
        let width = (row_modules(columns) + 2 * QUIET_ZONE) as f32;
        let height = (ROW_HEIGHT * rows as u32 + 2 * QUIET_ZONE) as f32;
        // Module size with the slot 1 unit high and `aspect` units wide.
        let module = (aspect / width).min(1.0 / height);
        let cells = rows * columns;
        let better = match best {
            None => true,
            Some((m, c, _, _)) => module > m * 1.0001 || (module >= m * 0.9999 && cells < c),
        };
        if better {
            best = Some((module, cells, columns, rows));
        }
    }
    let (_, _, columns, rows) = best.expect("30 columns of 90 rows hold every symbol");
    (columns, rows)
}

/// The data codewords of `text`, without the length descriptor.
pub fn high_level(text: &str) -> Vec<u16> {
    let bytes = text.as_bytes();
    if !bytes.iter().all(|&b| is_text(b)) {
        // Names in other scripts, accents: the UTF-8 bytes, announced as UTF-8.
        let mut out = vec![ECI, ECI_UTF8];
        byte_compaction(bytes, &mut out);
        return out;
    }
    let mut out = Vec::new();
    // A symbol starts in text compaction.
    let mut in_text = true;
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if run >= MIN_NUMERIC_RUN {
            if start < i {
                if !in_text {
                    out.push(LATCH_TEXT);
                }
                text_compaction(&bytes[start..i], &mut out);
            }
            out.push(LATCH_NUMERIC);
            numeric_compaction(&bytes[i..i + run], &mut out);
            in_text = false;
            i += run;
            start = i;
        } else {
            i += run.max(1);
        }
    }
    if start < bytes.len() {
        if !in_text {
            out.push(LATCH_TEXT);
        }
        text_compaction(&bytes[start..], &mut out);
    }
    out
}

/// Printable ASCII, tab, line feed and carriage return: what text compaction can write.
fn is_text(b: u8) -> bool {
    matches!(b, b' '..=b'~' | b'\t' | b'\n' | b'\r')
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SubMode {
    Alpha,
    Lower,
    Mixed,
    Punctuation,
}

/// Values shared by several sub-modes.
const SPACE: u8 = 26;
const LATCH_LOWER: u8 = 27;
const LATCH_MIXED: u8 = 28;
const SHIFT_ALPHA: u8 = 27;
const LATCH_ALPHA_FROM_MIXED: u8 = 28;
const LATCH_PUNCTUATION: u8 = 25;
const SHIFT_PUNCTUATION: u8 = 29;
const LATCH_ALPHA_FROM_PUNCTUATION: u8 = 29;

fn alpha_value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b' ' => Some(SPACE),
        _ => None,
    }
}

fn lower_value(b: u8) -> Option<u8> {
    match b {
        b'a'..=b'z' => Some(b - b'a'),
        b' ' => Some(SPACE),
        _ => None,
    }
}

fn mixed_value(b: u8) -> Option<u8> {
    if b == b' ' {
        return Some(SPACE);
    }
    MIXED.iter().position(|&m| m == b).map(|p| p as u8)
}

fn punctuation_value(b: u8) -> Option<u8> {
    PUNCTUATION.iter().position(|&m| m == b).map(|p| p as u8)
}

/// Characters only the punctuation sub-mode has.
fn punctuation_only(b: u8) -> bool {
    punctuation_value(b).is_some()
        && alpha_value(b).is_none()
        && lower_value(b).is_none()
        && mixed_value(b).is_none()
}

/// Text compaction of printable ASCII: values 0 to 29 in four sub-modes, two values a codeword.
/// Each segment starts in the alpha sub-mode (as at the start of a symbol and after a latch to
/// text); a single character of another sub-mode is shifted to, a run latched to.
fn text_compaction(text: &[u8], out: &mut Vec<u16>) {
    let mut values: Vec<u8> = Vec::with_capacity(text.len() * 2);
    let mut mode = SubMode::Alpha;
    for (i, &b) in text.iter().enumerate() {
        let next = text.get(i + 1).copied();
        let next_punctuation_only = next.is_some_and(punctuation_only);
        loop {
            match mode {
                SubMode::Alpha => {
                    if let Some(v) = alpha_value(b) {
                        values.push(v);
                    } else if lower_value(b).is_some() {
                        values.push(LATCH_LOWER);
                        mode = SubMode::Lower;
                        continue;
                    } else if mixed_value(b).is_some() {
                        values.push(LATCH_MIXED);
                        mode = SubMode::Mixed;
                        continue;
                    } else if next_punctuation_only {
                        values.extend([LATCH_MIXED, LATCH_PUNCTUATION]);
                        mode = SubMode::Punctuation;
                        continue;
                    } else {
                        values.extend([SHIFT_PUNCTUATION, punctuation(b)]);
                    }
                }
                SubMode::Lower => {
                    if let Some(v) = lower_value(b) {
                        values.push(v);
                    } else if let Some(v) = alpha_value(b) {
                        if next.is_some_and(|n| n.is_ascii_uppercase()) {
                            // Lower has no latch to alpha: through mixed.
                            values.extend([LATCH_MIXED, LATCH_ALPHA_FROM_MIXED]);
                            mode = SubMode::Alpha;
                            continue;
                        }
                        values.extend([SHIFT_ALPHA, v]);
                    } else if mixed_value(b).is_some() {
                        values.push(LATCH_MIXED);
                        mode = SubMode::Mixed;
                        continue;
                    } else if next_punctuation_only {
                        values.extend([LATCH_MIXED, LATCH_PUNCTUATION]);
                        mode = SubMode::Punctuation;
                        continue;
                    } else {
                        values.extend([SHIFT_PUNCTUATION, punctuation(b)]);
                    }
                }
                SubMode::Mixed => {
                    if let Some(v) = mixed_value(b) {
                        values.push(v);
                    } else if alpha_value(b).is_some() {
                        values.push(LATCH_ALPHA_FROM_MIXED);
                        mode = SubMode::Alpha;
                        continue;
                    } else if lower_value(b).is_some() {
                        values.push(LATCH_LOWER);
                        mode = SubMode::Lower;
                        continue;
                    } else if next_punctuation_only {
                        values.push(LATCH_PUNCTUATION);
                        mode = SubMode::Punctuation;
                        continue;
                    } else {
                        values.extend([SHIFT_PUNCTUATION, punctuation(b)]);
                    }
                }
                SubMode::Punctuation => {
                    if let Some(v) = punctuation_value(b) {
                        values.push(v);
                    } else {
                        values.push(LATCH_ALPHA_FROM_PUNCTUATION);
                        mode = SubMode::Alpha;
                        continue;
                    }
                }
            }
            break;
        }
    }
    if values.len() % 2 == 1 {
        // An odd count is completed with a shift to punctuation that nothing follows.
        values.push(SHIFT_PUNCTUATION);
    }
    out.extend(
        values
            .chunks(2)
            .map(|pair| u16::from(pair[0]) * 30 + u16::from(pair[1])),
    );
}

fn punctuation(b: u8) -> u8 {
    punctuation_value(b).expect("every text character is in one sub-mode")
}

/// Byte compaction: six bytes, read as a 48-bit number, make five base-900 codewords; bytes left
/// over are one codeword each. Latch 924 announces a multiple of six bytes, 901 any other count.
fn byte_compaction(bytes: &[u8], out: &mut Vec<u16>) {
    out.push(if bytes.len().is_multiple_of(6) {
        LATCH_BYTE_SIX
    } else {
        LATCH_BYTE
    });
    let mut groups = bytes.chunks_exact(6);
    for group in groups.by_ref() {
        let mut n = group.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b));
        let mut five = [0u16; 5];
        for digit in five.iter_mut().rev() {
            *digit = (n % 900) as u16;
            n /= 900;
        }
        out.extend(five);
    }
    out.extend(groups.remainder().iter().map(|&b| u16::from(b)));
}

/// Numeric compaction: up to 44 digits at a time, with a leading 1 so that leading zeros survive,
/// written in base 900.
fn numeric_compaction(digits: &[u8], out: &mut Vec<u16>) {
    for chunk in digits.chunks(44) {
        let mut decimal: Vec<u32> = std::iter::once(1)
            .chain(chunk.iter().map(|d| u32::from(d - b'0')))
            .collect();
        let mut base900 = Vec::new();
        while !decimal.is_empty() {
            // Long division of the decimal digits by 900.
            let mut remainder = 0;
            let mut quotient = Vec::with_capacity(decimal.len());
            for &d in &decimal {
                let current = remainder * 10 + d;
                if !quotient.is_empty() || current >= 900 {
                    quotient.push(current / 900);
                }
                remainder = current % 900;
            }
            base900.push(remainder as u16);
            decimal = quotient;
        }
        out.extend(base900.iter().rev());
    }
}

/// The coefficients of the generator polynomial (x - 3)(x - 3^2)...(x - 3^k) over GF(929), highest
/// degree first; the leading 1 included.
pub fn generator(k: usize) -> Vec<u32> {
    let mut g = vec![1u32];
    let mut root = 1u32;
    for _ in 0..k {
        root = root * 3 % PRIME;
        // g(x) * (x - root)
        let mut next = g.clone();
        next.push(0);
        for (i, &c) in g.iter().enumerate() {
            next[i + 1] = (next[i + 1] + PRIME - c * root % PRIME) % PRIME;
        }
        g = next;
    }
    g
}

/// The error correction codewords of `data` (length descriptor and padding included) at `level`:
/// the remainder of d(x)·x^k divided by the generator, negated, highest degree first. The whole
/// codeword sequence is then a multiple of the generator: it vanishes at 3, 3^2 ... 3^k.
pub fn error_correction(data: &[u16], level: u8) -> Vec<u16> {
    let k = ec_count(level);
    let g = generator(k);
    let mut remainder = vec![0u32; k];
    for &d in data {
        let t = (u32::from(d) + remainder[0]) % PRIME;
        for j in 0..k - 1 {
            remainder[j] = (remainder[j + 1] + PRIME - t * g[j + 1] % PRIME) % PRIME;
        }
        remainder[k - 1] = (PRIME - t * g[k] % PRIME) % PRIME;
    }
    remainder
        .into_iter()
        .map(|r| ((PRIME - r) % PRIME) as u16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clusters() -> [(u32, &'static [u32; 929]); 3] {
        [(0, &CLUSTER_0), (3, &CLUSTER_3), (6, &CLUSTER_6)]
    }

    /// e2+e3 ... e6+e7: the edge-to-similar-edge distances a reader measures, without the first.
    fn distances(w: &[u8; 8]) -> [u8; 5] {
        [
            w[1] + w[2],
            w[2] + w[3],
            w[3] + w[4],
            w[4] + w[5],
            w[5] + w[6],
        ]
    }

    #[test]
    fn every_symbol_character_follows_the_rules_of_its_cluster() {
        let mut seen = std::collections::HashSet::new();
        for (cluster, table) in clusters() {
            let mut previous: Option<[u8; 5]> = None;
            for (value, &packed) in table.iter().enumerate() {
                let w = unpack(packed);
                assert!(
                    (10_000_000..100_000_000).contains(&packed),
                    "{cluster}/{value}"
                );
                assert!(w.iter().all(|&e| (1..=6).contains(&e)), "{cluster}/{value}");
                assert_eq!(w.iter().map(|&e| u32::from(e)).sum::<u32>(), 17);
                let k = (i32::from(w[0]) - i32::from(w[2]) + i32::from(w[4]) - i32::from(w[6]))
                    .rem_euclid(9);
                assert_eq!(k as u32, cluster, "codeword {value} in cluster {cluster}");
                let d = distances(&w);
                if let Some(p) = previous {
                    assert!(d > p, "cluster {cluster}: codeword {value} is out of order");
                }
                previous = Some(d);
                assert!(seen.insert(packed), "{packed} appears twice");
            }
        }
        assert_eq!(seen.len(), 3 * 929);
    }

    #[test]
    fn known_symbol_characters() {
        // ISO/IEC 15438 Annex A, first and last rows of the table.
        assert_eq!(CLUSTER_0[0], 31111136);
        assert_eq!(CLUSTER_3[0], 51111125);
        assert_eq!(CLUSTER_6[0], 21111155);
        assert_eq!(START.iter().map(|&w| u32::from(w)).sum::<u32>(), 17);
        assert_eq!(STOP.iter().map(|&w| u32::from(w)).sum::<u32>(), 18);
    }

    #[test]
    fn text_compaction_of_the_standards_example() {
        // "PDF417": P D F (alpha), latch to mixed, 4 1 7, padded: 15 3 | 5 28 | 4 1 | 7 29.
        assert_eq!(high_level("PDF417"), vec![453, 178, 121, 239]);
    }

    #[test]
    fn error_correction_of_the_standards_example() {
        // The data of "PDF417" (with its length descriptor 5) at level 1.
        let data = [5, 453, 178, 121, 239];
        assert_eq!(error_correction(&data, 1), vec![452, 327, 657, 619]);
    }

    /// c(3^i) for i = 1..=k, the codewords read as a polynomial, highest degree first.
    fn syndromes(codewords: &[u16], k: usize) -> Vec<u32> {
        let mut root = 1;
        (0..k)
            .map(|_| {
                root = root * 3 % PRIME;
                codewords
                    .iter()
                    .fold(0, |acc, &c| (acc * root + u32::from(c)) % PRIME)
            })
            .collect()
    }

    #[test]
    fn every_level_makes_a_multiple_of_the_generator() {
        let data: Vec<u16> = (0..40).map(|i| (i * 37 % 929) as u16).collect();
        for level in 0..=8 {
            let mut all = data.clone();
            all.extend(error_correction(&data, level));
            let k = ec_count(level);
            assert_eq!(all.len(), data.len() + k);
            assert!(syndromes(&all, k).iter().all(|&s| s == 0), "level {level}");
        }
        // The generator has the roots it is built from.
        let g = generator(8);
        for i in 1..=8u32 {
            let x = (0..i).fold(1, |a, _| a * 3 % PRIME);
            assert_eq!(g.iter().fold(0, |acc, &c| (acc * x + c) % PRIME), 0);
        }
    }

    #[test]
    fn byte_compaction_packs_six_bytes_in_five_codewords() {
        let mut out = Vec::new();
        byte_compaction(b"\x01\x02\x03\x04\x05\x06\xff", &mut out);
        // 0x010203040506 = 1108152157446 = 1*900^4 + 620*900^3 + 89*900^2 + 74*900 + 846.
        assert_eq!(out, vec![LATCH_BYTE, 1, 620, 89, 74, 846, 255]);
        let mut out = Vec::new();
        byte_compaction(b"abcdef", &mut out);
        assert_eq!(out[0], LATCH_BYTE_SIX);
        assert_eq!(out.len(), 6);
    }

    #[test]
    fn numeric_compaction_keeps_leading_zeros() {
        let mut out = Vec::new();
        numeric_compaction(b"000213298174000", &mut out);
        // "1000213298174000" in base 900: 1 624 434 632 282 200 (ISO/IEC 15438 example).
        assert_eq!(out, vec![1, 624, 434, 632, 282, 200]);
        assert_eq!(
            high_level("Card 1234567890123456"),
            [
                {
                    let mut t = Vec::new();
                    text_compaction(b"Card ", &mut t);
                    t
                },
                vec![LATCH_NUMERIC],
                {
                    let mut n = Vec::new();
                    numeric_compaction(b"1234567890123456", &mut n);
                    n
                },
            ]
            .concat()
        );
    }

    #[test]
    fn utf8_goes_in_bytes_after_eci_26() {
        let cw = high_level("Zoë");
        assert_eq!(&cw[..3], &[ECI, ECI_UTF8, LATCH_BYTE]);
        assert_eq!(&cw[3..], &[u16::from(b'Z'), u16::from(b'o'), 0xc3, 0xab]);
    }

    /// Reads the symbol back from its bars: every row's patterns through the tables, the row
    /// indicators, the length descriptor, the error correction.
    fn read_back(symbol: &Pdf417) -> Vec<u16> {
        let lookup: Vec<std::collections::HashMap<[u8; 8], u16>> = clusters()
            .iter()
            .map(|(_, t)| {
                t.iter()
                    .enumerate()
                    .map(|(v, &p)| (unpack(p), v as u16))
                    .collect()
            })
            .collect();
        let mut codewords = Vec::new();
        let mut rows = None;
        let mut columns = None;
        let mut level = None;
        for row in 0..symbol.rows {
            let widths = symbol.row_widths(row);
            assert_eq!(&widths[..8], &START);
            assert_eq!(&widths[widths.len() - 9..], &STOP);
            let inner = &widths[8..widths.len() - 9];
            assert_eq!(inner.len() % 8, 0);
            let values: Vec<u16> = inner
                .chunks(8)
                .map(|c| lookup[row % 3][&<[u8; 8]>::try_from(c).unwrap()])
                .collect();
            let (left, right) = (values[0], *values.last().unwrap());
            assert_eq!(usize::from(left) / 30, row / 3);
            assert_eq!(usize::from(right) / 30, row / 3);
            let (l, r) = (usize::from(left % 30), usize::from(right % 30));
            match row % 3 {
                0 => {
                    rows.get_or_insert(l);
                    columns.get_or_insert(r + 1);
                }
                1 => {
                    level.get_or_insert(l);
                    rows.get_or_insert(r);
                }
                _ => {
                    columns.get_or_insert(l + 1);
                    level.get_or_insert(r);
                }
            }
            codewords.extend_from_slice(&values[1..values.len() - 1]);
        }
        let rows_field = rows.unwrap();
        let level_field = level.unwrap();
        assert_eq!(rows_field * 3 + level_field % 3 + 1, symbol.rows);
        assert_eq!(level_field / 3, usize::from(symbol.level));
        assert_eq!(columns.unwrap(), symbol.columns);
        let k = ec_count(symbol.level);
        assert_eq!(usize::from(codewords[0]) + k, codewords.len());
        assert!(syndromes(&codewords, k).iter().all(|&s| s == 0));
        codewords[1..usize::from(codewords[0])].to_vec()
    }

    #[test]
    fn symbols_read_back_to_their_data() {
        for (text, aspect) in [
            ("E-10042", 3.0),
            (
                "Jane Doe <jane.doe@example.com>; tel. +1 (555) 010-9999 #4",
                2.0,
            ),
            ("Zoë Ångström-Łukasiewicz 山田太郎", 4.0),
            ("00012345678901234567890", 1.0),
            (&"PDF417 ".repeat(60), 2.5),
        ] {
            let symbol = Pdf417::encode(text, None, aspect).unwrap();
            assert_eq!(symbol.codewords.len(), symbol.rows * symbol.columns);
            assert!((MIN_ROWS..=MAX_ROWS).contains(&symbol.rows));
            assert!(symbol.level >= 2);
            let data = read_back(&symbol);
            let mut expected = high_level(text);
            expected.resize(data.len(), PAD);
            assert_eq!(data, expected, "{text}");
            // Every row is as wide as the others.
            assert!((0..symbol.rows).all(|r| symbol
                .row_widths(r)
                .iter()
                .map(|&w| u32::from(w))
                .sum::<u32>()
                == symbol.width_modules()));
        }
    }

    #[test]
    fn the_level_rises_with_the_data() {
        assert_eq!(Pdf417::encode("x", None, 3.0).unwrap().level, 2);
        assert_eq!(
            Pdf417::encode(&"abcdefgh".repeat(20), None, 3.0)
                .unwrap()
                .level,
            3
        );
        assert_eq!(Pdf417::encode("x", Some(6), 3.0).unwrap().level, 6);
        assert_eq!(
            Pdf417::encode("x", Some(9), 3.0),
            Err(Pdf417Error::Level(9))
        );
        assert!(matches!(
            Pdf417::encode(&"\u{e9}".repeat(700), None, 3.0),
            Err(Pdf417Error::TooLong { .. })
        ));
    }

    #[test]
    fn the_shape_follows_the_slot() {
        let text = "Information Security, Senior Security Engineer";
        let wide = Pdf417::encode(text, None, 6.0).unwrap();
        let tall = Pdf417::encode(text, None, 0.8).unwrap();
        assert!(wide.columns > tall.columns, "{wide:?} {tall:?}");
        assert!(wide.rows < tall.rows);
        // The module size the chosen shape gives is the best among all shapes.
        for (symbol, aspect) in [(&wide, 6.0f32), (&tall, 0.8)] {
            let (w, h) = symbol.size_modules();
            let module = (aspect / w as f32).min(1.0 / h as f32);
            for columns in 1..=MAX_COLUMNS {
                let rows = (high_level(text).len() + 1 + ec_count(symbol.level))
                    .div_ceil(columns)
                    .max(MIN_ROWS);
                let other = (aspect / (row_modules(columns) + 4) as f32)
                    .min(1.0 / (3 * rows as u32 + 4) as f32);
                assert!(other <= module * 1.0001);
            }
        }
    }
}

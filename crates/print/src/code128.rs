//! Code 128, code set B: printable ASCII, a modulo-103 check symbol and a quiet zone on both sides.
//! Employee numbers and badge ids are short ASCII strings, for which set B alone is enough and the
//! encoding stays easy to check by hand.

/// Bar/space widths in modules for symbol values 0..=105; each symbol is 11 modules wide.
const PATTERNS: [&[u8; 6]; 106] = [
    b"212222", b"222122", b"222221", b"121223", b"121322", b"131222", b"122213", b"122312",
    b"132212", b"221213", b"221312", b"231212", b"112232", b"122132", b"122231", b"113222",
    b"123122", b"123221", b"223211", b"221132", b"221231", b"213212", b"223112", b"312131",
    b"311222", b"321122", b"321221", b"312212", b"322112", b"322211", b"212123", b"212321",
    b"232121", b"111323", b"131123", b"131321", b"112313", b"132113", b"132311", b"211313",
    b"231113", b"231311", b"112133", b"112331", b"132131", b"113123", b"113321", b"133121",
    b"313121", b"211331", b"231131", b"213113", b"213311", b"213131", b"311123", b"311321",
    b"331121", b"312113", b"312311", b"332111", b"314111", b"221411", b"431111", b"111224",
    b"111422", b"121124", b"121421", b"141122", b"141221", b"112214", b"112412", b"122114",
    b"122411", b"142112", b"142211", b"241211", b"221114", b"413111", b"241112", b"134111",
    b"111242", b"121142", b"121241", b"114212", b"124112", b"124211", b"411212", b"421112",
    b"421211", b"212141", b"214121", b"412121", b"111143", b"111341", b"131141", b"114113",
    b"114311", b"411113", b"411311", b"113141", b"114131", b"311141", b"411131", b"211412",
    b"211214", b"211232",
];

/// The stop pattern, 13 modules (with its final bar).
const STOP: &[u8; 7] = b"2331112";
const START_B: u8 = 104;
const STOP_VALUE: u8 = 106;
/// Light modules before and after the symbol; the standard asks for at least ten.
pub const QUIET_ZONE: u32 = 10;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code128 {
    /// Start B, the data symbols, the check symbol and the stop symbol (106).
    pub symbols: Vec<u8>,
}

/// A character outside code set B (printable ASCII, space to `~`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} cannot be encoded in Code 128 set B (printable ASCII only)")]
pub struct Unencodable(pub char);

impl Code128 {
    pub fn encode(text: &str) -> Result<Self, Unencodable> {
        let mut symbols = vec![START_B];
        for c in text.chars() {
            if !(' '..='~').contains(&c) {
                return Err(Unencodable(c));
            }
            symbols.push(c as u8 - b' ');
        }
        let weighted: u32 = symbols
            .iter()
            .enumerate()
            // The start symbol is weighted 1, like the first data symbol.
            .map(|(i, &v)| u32::from(v) * (i as u32).max(1))
            .sum();
        symbols.push((weighted % 103) as u8);
        symbols.push(STOP_VALUE);
        Ok(Self { symbols })
    }

    pub fn checksum(&self) -> u8 {
        self.symbols[self.symbols.len() - 2]
    }

    /// Alternating bar and space widths in modules, starting with a bar (quiet zones excluded).
    pub fn widths(&self) -> Vec<u8> {
        self.symbols
            .iter()
            .flat_map(|&s| {
                let pattern: &[u8] = if s == STOP_VALUE {
                    STOP
                } else {
                    PATTERNS[usize::from(s)]
                };
                pattern.iter().map(|d| d - b'0')
            })
            .collect()
    }

    /// The width of the whole symbol in modules, quiet zones included.
    pub fn total_modules(&self) -> u32 {
        self.widths().iter().map(|&w| u32::from(w)).sum::<u32>() + 2 * QUIET_ZONE
    }

    /// The bars as `(start, width)` in modules from the left edge of the quiet zone.
    pub fn bars(&self) -> Vec<(u32, u32)> {
        let mut x = QUIET_ZONE;
        let mut bars = Vec::new();
        for (i, w) in self.widths().into_iter().enumerate() {
            let w = u32::from(w);
            if i % 2 == 0 {
                bars.push((x, w));
            }
            x += w;
        }
        bars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_is_eleven_modules_and_distinct() {
        for p in PATTERNS {
            assert_eq!(p.iter().map(|d| u32::from(d - b'0')).sum::<u32>(), 11);
        }
        assert_eq!(STOP.iter().map(|d| u32::from(d - b'0')).sum::<u32>(), 13);
        let mut sorted = PATTERNS.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 106);
    }

    #[test]
    fn encodes_a_known_value() {
        // Worked by hand: 104 + 48*1 + 42*2 + 42*3 + 17*4 + 18*5 + 19*6 + 35*7 = 879 = 8*103 + 55.
        let code = Code128::encode("PJJ123C").unwrap();
        assert_eq!(code.symbols, vec![104, 48, 42, 42, 17, 18, 19, 35, 55, 106]);
        assert_eq!(code.checksum(), 55);
        // Start B, 7 data symbols, check symbol: 11 modules each; stop: 13; two quiet zones.
        assert_eq!(code.total_modules(), 9 * 11 + 13 + 20);
        // The first bar of start B (211214) is two modules wide, right after the quiet zone.
        assert_eq!(code.bars()[0], (QUIET_ZONE, 2));
        // The stop symbol ends with a two-module bar that closes the symbol.
        let last = *code.bars().last().unwrap();
        assert_eq!(last.0 + last.1, code.total_modules() - QUIET_ZONE);
    }

    #[test]
    fn employee_id() {
        let code = Code128::encode("E-10042").unwrap();
        // E=37 -=13 1=17 0=16 0=16 4=20 2=18
        let sum = 104 + 37 + 13 * 2 + 17 * 3 + 16 * 4 + 16 * 5 + 20 * 6 + 18 * 7;
        assert_eq!(u32::from(code.checksum()), sum % 103);
    }

    #[test]
    fn rejects_characters_outside_set_b() {
        assert_eq!(Code128::encode("Zoë"), Err(Unencodable('ë')));
        assert_eq!(Code128::encode("a\tb"), Err(Unencodable('\t')));
    }
}

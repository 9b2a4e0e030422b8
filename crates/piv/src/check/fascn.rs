//! Decoding a FASC-N (TIG SCEPACS, as SP 800-73-4 part 1, 3.1.2 carries it in the CHUID): 40
//! characters of five bits (four data bits, least significant first, and an odd parity bit), with
//! start sentinel, field separators, end sentinel and a longitudinal redundancy character.

use tessera_core::fips201::FascN;

/// The fields, for the report.
pub(super) fn summary(f: &FascN) -> String {
    format!(
        "agency {}, system {}, credential {}, series {}, issue {}, person {}, org category {}, \
         org {}, association {}",
        f.agency_code,
        f.system_code,
        f.credential_number,
        f.credential_series,
        f.individual_credential_issue,
        f.person_identifier,
        f.organizational_category,
        f.organizational_identifier,
        f.person_association_category
    )
}

const START_SENTINEL: u8 = 0x0B;
const FIELD_SEPARATOR: u8 = 0x0D;
const END_SENTINEL: u8 = 0x0F;

/// Decodes a 25-byte FASC-N, or says what is wrong with it.
pub fn decode(bytes: &[u8]) -> Result<FascN, String> {
    if bytes.len() != 25 {
        return Err(format!("is {} bytes long, not 25", bytes.len()));
    }
    let bit = |i: usize| (bytes[i / 8] >> (7 - i % 8)) & 1;
    let mut chars = Vec::with_capacity(40);
    for c in 0..40 {
        let bits: Vec<u8> = (0..5).map(|b| bit(c * 5 + b)).collect();
        let value = bits[0] | bits[1] << 1 | bits[2] << 2 | bits[3] << 3;
        let ones = bits.iter().filter(|&&b| b == 1).count();
        if ones % 2 != 1 {
            return Err(format!("character {} has even parity", c + 1));
        }
        chars.push(value);
    }
    let lrc = chars[..39].iter().fold(0u8, |acc, c| acc ^ c);
    if lrc != chars[39] {
        return Err(format!(
            "the LRC is {:X}, the characters before it give {:X}",
            chars[39], lrc
        ));
    }
    if chars[0] != START_SENTINEL {
        return Err("does not begin with the start sentinel".into());
    }
    if chars[38] != END_SENTINEL {
        return Err("has no end sentinel before the LRC".into());
    }
    // SS AGENCY(4) FS SYSTEM(4) FS CREDENTIAL(6) FS CS(1) FS ICI(1) FS PI(10) OC(1) OI(4) POA(1) ES LRC
    let layout: [(usize, usize); 9] = [
        (1, 4),
        (6, 4),
        (11, 6),
        (18, 1),
        (20, 1),
        (22, 10),
        (32, 1),
        (33, 4),
        (37, 1),
    ];
    for separator in [5, 10, 17, 19, 21] {
        if chars[separator] != FIELD_SEPARATOR {
            return Err(format!(
                "character {} is not a field separator",
                separator + 1
            ));
        }
    }
    let mut fields = Vec::new();
    for (start, len) in layout {
        let digits = &chars[start..start + len];
        if let Some(bad) = digits.iter().find(|&&d| d > 9) {
            return Err(format!(
                "character {} is {:X} where a digit belongs",
                start + 1 + digits.iter().position(|d| d == bad).unwrap_or(0),
                bad
            ));
        }
        fields.push(
            digits
                .iter()
                .map(|d| char::from(b'0' + d))
                .collect::<String>(),
        );
    }
    let mut f = fields.into_iter();
    let mut next = || f.next().unwrap_or_default();
    Ok(FascN {
        agency_code: next(),
        system_code: next(),
        credential_number: next(),
        credential_series: next(),
        individual_credential_issue: next(),
        person_identifier: next(),
        organizational_category: next(),
        organizational_identifier: next(),
        person_association_category: next(),
    })
}

/// Encodes the characters of a FASC-N (`|` a field separator) by hand: the tests' own encoder,
/// not the issuer's.
#[cfg(test)]
pub(super) fn encode_by_hand(digits: &str) -> [u8; 25] {
    let mut chars: Vec<u8> = vec![START_SENTINEL];
    for c in digits.chars() {
        chars.push(match c {
            '|' => FIELD_SEPARATOR,
            d => d.to_digit(10).unwrap() as u8,
        });
    }
    chars.push(END_SENTINEL);
    chars.push(chars.iter().fold(0, |a, c| a ^ c));
    let mut out = [0u8; 25];
    for (i, c) in chars.iter().enumerate() {
        let parity = u8::from(c.count_ones() % 2 == 0);
        for b in 0..5 {
            let v = if b < 4 { (c >> b) & 1 } else { parity };
            let pos = i * 5 + b;
            out[pos / 8] |= v << (7 - pos % 8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_example_decodes() {
        // SP 800-73-4's example FASC-N: agency 0032, system 0001, credential 092446.
        let bytes = hex::decode("D0439458210C2C19A0846D83685A1082108CE73984108CA3FC").unwrap();
        let f = decode(&bytes).unwrap();
        assert_eq!(f.agency_code, "0032");
        assert_eq!(f.system_code, "0001");
        assert_eq!(f.credential_number, "092446");
        assert_eq!(f.person_identifier, "1112223333");
        assert!(!f.is_non_federal());
    }

    #[test]
    fn non_federal_convention_round_trips() {
        let bytes = encode_by_hand("9999|9999|999999|0|1|0000000000300001");
        let f = decode(&bytes).unwrap();
        assert!(f.is_non_federal());
        assert_eq!(f.organizational_category, "3");
        assert_eq!(f.person_association_category, "1");
    }

    #[test]
    fn parity_lrc_and_length_errors_are_found() {
        let good = encode_by_hand("9999|9999|999999|0|1|0000000000300001");
        let mut bad = good;
        bad[3] ^= 0x01;
        assert!(decode(&bad).is_err());
        assert!(decode(&good[..24]).unwrap_err().contains("24 bytes"));
        let mut wrong_lrc = encode_by_hand("9999|9999|999999|0|1|0000000000300001");
        // Flip two data bits of the LRC character (keeps its parity, breaks its value).
        let pos = 39 * 5;
        wrong_lrc[pos / 8] ^= 0x80 >> (pos % 8);
        wrong_lrc[(pos + 1) / 8] ^= 0x80 >> ((pos + 1) % 8);
        assert!(decode(&wrong_lrc).unwrap_err().contains("LRC"));
    }
}

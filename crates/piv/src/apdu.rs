//! Command and response APDUs (ISO/IEC 7816-3 and -4) and the status words PIV uses.
//!
//! Parsing accepts exactly the four ISO cases in short and extended form and returns an error for
//! anything else; it never panics, because the card emulator parses whatever a reader sends.

/// Status words (SW1 SW2) named as SP 800-73-4 part 2 and ISO/IEC 7816-4 describe them.
pub mod sw {
    pub const SUCCESS: u16 = 0x9000;
    /// `61xx`: more response data is waiting; fetch it with GET RESPONSE.
    pub const MORE_DATA: u8 = 0x61;
    /// `63Cx`: verification failed, `x` tries left.
    pub const RETRIES_LEFT: u16 = 0x63C0;
    pub const MEMORY_FAILURE: u16 = 0x6581;
    pub const WRONG_LENGTH: u16 = 0x6700;
    /// The command needs a PIN or management-key authentication that has not happened.
    pub const SECURITY_STATUS_NOT_SATISFIED: u16 = 0x6982;
    /// The PIN or PUK is blocked.
    pub const AUTH_METHOD_BLOCKED: u16 = 0x6983;
    pub const CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
    pub const COMMAND_NOT_ALLOWED: u16 = 0x6986;
    pub const INCORRECT_DATA: u16 = 0x6A80;
    pub const FUNCTION_NOT_SUPPORTED: u16 = 0x6A81;
    pub const NOT_FOUND: u16 = 0x6A82;
    pub const NOT_ENOUGH_MEMORY: u16 = 0x6A84;
    pub const INCORRECT_P1_P2: u16 = 0x6A86;
    pub const REFERENCE_NOT_FOUND: u16 = 0x6A88;
    pub const WRONG_P1_P2: u16 = 0x6B00;
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
    pub const UNKNOWN: u16 = 0x6F00;
}

/// Instruction bytes of the commands PIV and the Yubico extensions define.
pub mod ins {
    pub const VERIFY: u8 = 0x20;
    pub const CHANGE_REFERENCE_DATA: u8 = 0x24;
    pub const RESET_RETRY_COUNTER: u8 = 0x2C;
    pub const GENERATE_ASYMMETRIC_KEY_PAIR: u8 = 0x47;
    pub const GENERAL_AUTHENTICATE: u8 = 0x87;
    pub const SELECT: u8 = 0xA4;
    pub const GET_RESPONSE: u8 = 0xC0;
    pub const GET_DATA: u8 = 0xCB;
    pub const PUT_DATA: u8 = 0xDB;
    pub const GET_METADATA: u8 = 0xF7;
    pub const GET_SERIAL: u8 = 0xF8;
    /// Yubico ATTEST: P1 the slot, answers the attestation certificate of its key.
    pub const ATTEST: u8 = 0xF9;
    pub const RESET: u8 = 0xFB;
    pub const GET_VERSION: u8 = 0xFD;
    pub const SET_MANAGEMENT_KEY: u8 = 0xFF;
}

/// CLA bit that says more parts of a chained command follow.
pub const CLA_CHAINING: u8 = 0x10;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    #[error("a command APDU has at least four bytes, this one has {0}")]
    TooShort(usize),
    #[error("the length fields do not match the {0} bytes of the command")]
    BadLength(usize),
    #[error("a response APDU ends with a two-byte status word")]
    NoStatusWord,
    #[error("{0} data bytes do not fit an APDU")]
    DataTooLong(usize),
}

/// A command APDU. `ne` is the number of response bytes expected: 0 means none (no Le field);
/// 256 encodes as short Le `00`, 65536 as extended Le `00 00`.
#[derive(Clone, PartialEq, Eq)]
pub struct CommandApdu {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    pub ne: usize,
    /// Whether the command was (or is to be) encoded with extended length fields.
    pub extended: bool,
}

impl std::fmt::Debug for CommandApdu {
    // Command data can hold a PIN or a key; Debug shows the header and the data length only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CommandApdu({:02X} {:02X} {:02X} {:02X}, {} data bytes, ne {}{})",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.ne,
            if self.extended { ", extended" } else { "" }
        )
    }
}

impl CommandApdu {
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            ne: 0,
            extended: false,
        }
    }

    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }

    pub fn with_ne(mut self, ne: usize) -> Self {
        self.ne = ne;
        self
    }

    pub fn extended(mut self, extended: bool) -> Self {
        self.extended = extended;
        self
    }

    /// Whether the command is the last (or only) part of a chain.
    pub fn is_chained(&self) -> bool {
        self.cla & CLA_CHAINING != 0
    }

    /// Encodes the command; short form unless `extended` is set or the sizes need extended fields.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ApduError> {
        let n = self.data.len();
        if n > 65535 || self.ne > 65536 {
            return Err(ApduError::DataTooLong(n));
        }
        let extended = self.extended || n > 255 || self.ne > 256;
        let mut out = Vec::with_capacity(n + 9);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if extended {
            if n > 0 {
                out.extend_from_slice(&[0x00, (n >> 8) as u8, n as u8]);
                out.extend_from_slice(&self.data);
            }
            if self.ne > 0 {
                if n == 0 {
                    out.push(0x00);
                }
                let le = if self.ne == 65536 { 0 } else { self.ne };
                out.extend_from_slice(&[(le >> 8) as u8, le as u8]);
            }
        } else {
            if n > 0 {
                out.push(n as u8);
                out.extend_from_slice(&self.data);
            }
            if self.ne > 0 {
                out.push(if self.ne == 256 { 0 } else { self.ne as u8 });
            }
        }
        Ok(out)
    }

    /// Parses a command in any of the ISO cases 1, 2S, 3S, 4S, 2E, 3E, 4E.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        let [cla, ins, p1, p2, body @ ..] = bytes else {
            return Err(ApduError::TooShort(bytes.len()));
        };
        let mut apdu = CommandApdu::new(*cla, *ins, *p1, *p2);
        let bad = || ApduError::BadLength(bytes.len());
        match body {
            [] => {}
            // Case 2S.
            [le] => apdu.ne = if *le == 0 { 256 } else { usize::from(*le) },
            // Extended: a zero byte then two-byte fields.
            [0, rest @ ..] if rest.len() >= 2 => {
                apdu.extended = true;
                let first = usize::from(rest[0]) << 8 | usize::from(rest[1]);
                let rest = &rest[2..];
                if rest.is_empty() {
                    // Case 2E.
                    apdu.ne = if first == 0 { 65536 } else { first };
                } else {
                    if first == 0 {
                        return Err(bad());
                    }
                    let (data, le) = if rest.len() == first {
                        (rest, None)
                    } else if rest.len() == first + 2 {
                        (&rest[..first], Some(&rest[first..]))
                    } else {
                        return Err(bad());
                    };
                    apdu.data = data.to_vec();
                    if let Some(le) = le {
                        let le = usize::from(le[0]) << 8 | usize::from(le[1]);
                        apdu.ne = if le == 0 { 65536 } else { le };
                    }
                }
            }
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                if lc == 0 {
                    return Err(bad());
                }
                if rest.len() == lc {
                    apdu.data = rest.to_vec();
                } else if rest.len() == lc + 1 {
                    apdu.data = rest[..lc].to_vec();
                    let le = rest[lc];
                    apdu.ne = if le == 0 { 256 } else { usize::from(le) };
                } else {
                    return Err(bad());
                }
            }
        }
        Ok(apdu)
    }
}

/// A response APDU: data followed by the status word.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseApdu {
    pub data: Vec<u8>,
    pub sw: u16,
}

impl std::fmt::Debug for ResponseApdu {
    // Responses can carry key material (management-key cryptograms); Debug shows only sizes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ResponseApdu({} data bytes, SW {:04X})",
            self.data.len(),
            self.sw
        )
    }
}

impl ResponseApdu {
    pub fn new(data: Vec<u8>, sw: u16) -> Self {
        Self { data, sw }
    }

    pub fn status(sw: u16) -> Self {
        Self::new(Vec::new(), sw)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        if bytes.len() < 2 {
            return Err(ApduError::NoStatusWord);
        }
        let (data, sw) = bytes.split_at(bytes.len() - 2);
        Ok(Self {
            data: data.to_vec(),
            sw: u16::from_be_bytes([sw[0], sw[1]]),
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_be_bytes());
        out
    }

    pub fn sw1(&self) -> u8 {
        (self.sw >> 8) as u8
    }

    pub fn sw2(&self) -> u8 {
        self.sw as u8
    }

    pub fn is_success(&self) -> bool {
        self.sw == sw::SUCCESS
    }

    /// The tries left if the status is `63Cx`.
    pub fn retries_left(&self) -> Option<u8> {
        (self.sw & 0xFFF0 == sw::RETRIES_LEFT).then_some((self.sw & 0x0F) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(apdu: &CommandApdu) -> CommandApdu {
        CommandApdu::parse(&apdu.to_bytes().unwrap()).unwrap()
    }

    #[test]
    fn the_four_short_cases() {
        let c1 = CommandApdu::new(0, 0x20, 0xFF, 0x80);
        assert_eq!(c1.to_bytes().unwrap(), [0, 0x20, 0xFF, 0x80]);
        assert_eq!(round_trip(&c1), c1);

        let c2 = CommandApdu::new(0, 0xFD, 0, 0).with_ne(256);
        assert_eq!(c2.to_bytes().unwrap(), [0, 0xFD, 0, 0, 0]);
        assert_eq!(round_trip(&c2), c2);

        let c3 = CommandApdu::new(0, 0xDB, 0x3F, 0xFF).with_data(vec![1, 2, 3]);
        assert_eq!(c3.to_bytes().unwrap(), [0, 0xDB, 0x3F, 0xFF, 3, 1, 2, 3]);
        assert_eq!(round_trip(&c3), c3);

        let c4 = CommandApdu::new(0, 0xCB, 0x3F, 0xFF)
            .with_data(vec![0x5C, 1, 0x7E])
            .with_ne(256);
        assert_eq!(
            c4.to_bytes().unwrap(),
            [0, 0xCB, 0x3F, 0xFF, 3, 0x5C, 1, 0x7E, 0]
        );
        assert_eq!(round_trip(&c4), c4);
    }

    #[test]
    fn extended_cases() {
        let big = vec![0xAA; 1000];
        let c3 = CommandApdu::new(0, 0xDB, 0x3F, 0xFF).with_data(big.clone());
        let bytes = c3.to_bytes().unwrap();
        assert_eq!(bytes[4..7], [0, 0x03, 0xE8]);
        assert_eq!(bytes.len(), 7 + 1000);
        assert_eq!(round_trip(&c3), c3.clone().extended(true));

        let c4 = c3.clone().with_ne(65536);
        let bytes = c4.to_bytes().unwrap();
        assert_eq!(bytes[bytes.len() - 2..], [0, 0]);
        assert_eq!(round_trip(&c4), c4.clone().extended(true));

        let c2 = CommandApdu::new(0, 0xCB, 0x3F, 0xFF)
            .with_ne(4000)
            .extended(true);
        assert_eq!(c2.to_bytes().unwrap(), [0, 0xCB, 0x3F, 0xFF, 0, 0x0F, 0xA0]);
        assert_eq!(round_trip(&c2), c2);

        let small_ext = CommandApdu::new(0, 0x87, 0x11, 0x9A)
            .with_data(vec![1])
            .with_ne(256)
            .extended(true);
        assert_eq!(
            small_ext.to_bytes().unwrap(),
            [0, 0x87, 0x11, 0x9A, 0, 0, 1, 1, 1, 0]
        );
        assert_eq!(round_trip(&small_ext), small_ext);
    }

    #[test]
    fn malformed_lengths_are_errors() {
        assert_eq!(CommandApdu::parse(&[]), Err(ApduError::TooShort(0)));
        assert_eq!(CommandApdu::parse(&[0, 1, 2]), Err(ApduError::TooShort(3)));
        // Lc says 3, only 2 bytes follow.
        assert!(CommandApdu::parse(&[0, 0xDB, 0x3F, 0xFF, 3, 1, 2]).is_err());
        // Lc says 1, three bytes follow.
        assert!(CommandApdu::parse(&[0, 0xDB, 0x3F, 0xFF, 1, 1, 2, 3]).is_err());
        // Extended Lc of zero with data.
        assert!(CommandApdu::parse(&[0, 0xDB, 0x3F, 0xFF, 0, 0, 0, 1]).is_err());
        // Extended Lc larger than the data.
        assert!(CommandApdu::parse(&[0, 0xDB, 0x3F, 0xFF, 0, 0, 5, 1, 2]).is_err());
        // A lone extended marker with one length byte.
        assert!(CommandApdu::parse(&[0, 0xDB, 0x3F, 0xFF, 0, 1]).is_err());
        assert!(CommandApdu::new(0, 0, 0, 0)
            .with_data(vec![0; 70000])
            .to_bytes()
            .is_err());
    }

    #[test]
    fn responses() {
        assert_eq!(ResponseApdu::parse(&[]), Err(ApduError::NoStatusWord));
        assert_eq!(ResponseApdu::parse(&[0x90]), Err(ApduError::NoStatusWord));
        let r = ResponseApdu::parse(&[1, 2, 0x90, 0x00]).unwrap();
        assert_eq!(r.data, [1, 2]);
        assert!(r.is_success());
        assert_eq!(r.to_bytes(), [1, 2, 0x90, 0x00]);
        let r = ResponseApdu::parse(&[0x63, 0xC2]).unwrap();
        assert_eq!(r.retries_left(), Some(2));
        assert!(!r.is_success());
        assert_eq!(
            ResponseApdu::parse(&[0x69, 0x83]).unwrap().retries_left(),
            None
        );
        assert_eq!(
            ResponseApdu::parse(&[0x61, 0x10]).unwrap().sw1(),
            sw::MORE_DATA
        );
    }

    #[test]
    fn debug_hides_data() {
        let c = CommandApdu::new(0, 0x20, 0, 0x80).with_data(b"123456\xFF\xFF".to_vec());
        let shown = format!("{c:?}");
        assert!(!shown.contains("31"), "{shown}");
    }
}

//! APDU trace logging at `debug` level. The data of commands that carry secrets — VERIFY, CHANGE
//! REFERENCE DATA, RESET RETRY COUNTER, SET MANAGEMENT KEY and the management-key
//! challenge-response of GENERAL AUTHENTICATE (key 9B) — and of their responses is replaced by its
//! length, so a trace can be shared in a bug report without leaking a PIN, PUK or key.

use crate::apdu::ins;

/// Whether a command (by its header) carries secrets in its data or its response.
pub fn is_sensitive(command: &[u8]) -> bool {
    match command {
        [_, ins, _, p2, ..] => match *ins {
            ins::VERIFY
            | ins::CHANGE_REFERENCE_DATA
            | ins::RESET_RETRY_COUNTER
            | ins::SET_MANAGEMENT_KEY => true,
            ins::GENERAL_AUTHENTICATE => *p2 == 0x9B,
            _ => false,
        },
        // Too short to have a header: nothing to hide, and nothing to parse.
        _ => false,
    }
}

/// The text of a command as the trace shows it: header in hex, then data or its length.
pub fn format_command(command: &[u8], redact: bool) -> String {
    let split = command.len().min(4);
    let (header, body) = command.split_at(split);
    if redact && !body.is_empty() {
        format!(
            "{} [{} bytes redacted]",
            hex::encode_upper(header),
            body.len()
        )
    } else {
        format!("{} {}", hex::encode_upper(header), hex::encode_upper(body))
    }
}

/// The text of a response as the trace shows it: data (or its length) and the status word.
pub fn format_response(response: &[u8], redact: bool) -> String {
    let split = response.len().saturating_sub(2);
    let (data, status) = response.split_at(split);
    if redact && !data.is_empty() {
        format!(
            "[{} bytes redacted] {}",
            data.len(),
            hex::encode_upper(status)
        )
    } else {
        format!("{} {}", hex::encode_upper(data), hex::encode_upper(status))
    }
}

/// Logs one exchange. `redact` comes from the command that started the exchange, so a GET
/// RESPONSE that fetches the rest of a sensitive answer is redacted too.
pub fn exchange(command: &[u8], response: Option<&[u8]>, redact: bool) {
    let redact_command = redact || is_sensitive(command);
    tracing::debug!(target: "tessera_piv::apdu", "> {}", format_command(command, redact_command));
    if let Some(response) = response {
        tracing::debug!(target: "tessera_piv::apdu", "< {}", format_response(response, redact));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let verify = [
            0x00, 0x20, 0x00, 0x80, 0x08, b'3', b'1', b'4', b'1', b'5', b'9', 0xFF, 0xFF,
        ];
        assert!(is_sensitive(&verify));
        let shown = format_command(&verify, is_sensitive(&verify));
        assert_eq!(shown, "00200080 [9 bytes redacted]");
        for ins in [0x24, 0x2C, 0xFF] {
            assert!(is_sensitive(&[0, ins, 0, 0x80, 1, 0x31]));
        }
        assert!(is_sensitive(&[0, 0x87, 0x03, 0x9B, 4, 0x7C, 2, 0x80, 0]));
        assert!(!is_sensitive(&[0, 0x87, 0x11, 0x9A, 4, 0x7C, 2, 0x82, 0]));
        assert!(!is_sensitive(&[0, 0xCB, 0x3F, 0xFF]));
        assert!(!is_sensitive(&[0, 0x20]));
        assert_eq!(
            format_response(&[1, 2, 3, 0x90, 0x00], true),
            "[3 bytes redacted] 9000"
        );
        assert_eq!(format_response(&[1, 0x90, 0x00], false), "01 9000");
        assert_eq!(format_response(&[0x90], false), " 90");
    }
}

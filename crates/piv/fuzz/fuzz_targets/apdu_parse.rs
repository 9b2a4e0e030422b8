//! Command and response APDU parsing, and the trace formatting applied to every exchange.
//!
//! Besides "never panics", a parsed command re-encodes to exactly the bytes it came from (the
//! parser accepts only the ISO cases, and each has one encoding), and so does a response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_piv::apdu::{CommandApdu, ResponseApdu};
use tessera_piv::trace;

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = CommandApdu::parse(data) {
        let _ = command.is_chained();
        let _ = format!("{command:?}");
        let bytes = command
            .to_bytes()
            .expect("a parsed command can be encoded again");
        assert_eq!(bytes, data, "a parsed command re-encodes to its bytes");
        assert_eq!(CommandApdu::parse(&bytes).as_ref(), Ok(&command));
    }

    if let Ok(response) = ResponseApdu::parse(data) {
        let _ = (response.sw1(), response.sw2(), response.is_success());
        let _ = response.retries_left();
        assert_eq!(response.to_bytes(), data);
    }

    let redact = trace::is_sensitive(data);
    let _ = trace::format_command(data, redact);
    let _ = trace::format_response(data, redact);
    trace::exchange(data, Some(data), redact);
});

//! Puts a virtual PIV card into pcscd's virtual reader (vsmartcard vpcd), for checking the card
//! with OpenSC and yubico-piv-tool by hand:
//!
//! ```text
//! cargo run -p tessera-piv --example vpcd_card -- /tmp/card.json [port]
//! opensc-tool -r "Virtual PCD 00 00" -n
//! ```
//!
//! The `tessera card-sim` command is the supported way; this example keeps the protocol in view.

use std::io::{Read, Write};
use std::net::TcpStream;
use tessera_piv::VirtualCard;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: vpcd_card STATE_FILE [PORT]")?;
    let port: u16 = args.next().map(|p| p.parse()).transpose()?.unwrap_or(35963);
    let mut card = match VirtualCard::load(&path) {
        Ok(card) => card,
        Err(_) => {
            let card = VirtualCard::blank(12_345_678, rand::rngs::OsRng);
            card.save(&path)?;
            card
        }
    };
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    eprintln!("card {} inserted into vpcd on port {port}", card.serial());
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return Ok(());
        }
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut message)?;
        let reply = match message.as_slice() {
            // Power off, power on, reset: the card loses its security state; no reply.
            [0x00] | [0x01] | [0x02] => {
                card.reset();
                continue;
            }
            [0x04] => card.atr(),
            [_] => continue,
            apdu => {
                let response = card.process(apdu);
                if card.take_dirty() {
                    card.save(&path)?;
                }
                response
            }
        };
        stream.write_all(&(reply.len() as u16).to_be_bytes())?;
        stream.write_all(&reply)?;
    }
}

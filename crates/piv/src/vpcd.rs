//! The vpcd bridge: puts a [`VirtualCard`] into pcscd's virtual reader (vsmartcard's `vpcd`), so
//! that OpenSC, yubico-piv-tool and Tessera's own PC/SC transport use it like a card in a reader.
//!
//! The card is a TCP client of vpcd. Every message is a 2-byte big-endian length and a payload. A
//! one-byte payload is a control message: `00` power off, `01` power on, `02` reset (none of them
//! answered), `04` get ATR (answered with the ATR). A longer payload is a command APDU, answered
//! with the response APDU. Closing the connection removes the card; connecting inserts it.

use crate::card::VirtualCard;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// Why a session with vpcd ended.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// vpcd closed the connection (pcscd stopped or the reader was removed).
    Closed,
    /// `keep_going` said to stop: the card was removed on purpose.
    Removed,
}

/// Serves one connection: the card is in the reader until vpcd goes away or `keep_going`
/// returns false (checked between messages and every 200 ms while idle). The card's state is
/// saved to `state_file` after every command that changed it.
pub fn serve_once(
    card: &mut VirtualCard,
    state_file: &Path,
    vpcd: SocketAddr,
    keep_going: &dyn Fn() -> bool,
    before_apdu: &mut dyn FnMut() -> bool,
) -> io::Result<SessionEnd> {
    let mut stream = TcpStream::connect(vpcd)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    loop {
        let mut len = [0u8; 2];
        match read_exact_or_idle(&mut stream, &mut len, keep_going)? {
            Read2::Done => {}
            Read2::Closed => return Ok(SessionEnd::Closed),
            Read2::Stopped => return Ok(SessionEnd::Removed),
        }
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.read_exact(&mut message)?;
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        let reply = match message.as_slice() {
            // Power off, power on and reset end the card's security state; vpcd expects no reply.
            [0x00] | [0x01] | [0x02] => {
                card.reset();
                continue;
            }
            [0x04] => card.atr(),
            [_] | [] => continue,
            // The card leaves the reader as this command arrives (a test pulling the card).
            _ if !before_apdu() => return Ok(SessionEnd::Removed),
            apdu => {
                let response = card.process(apdu);
                if card.take_dirty() {
                    card.save(state_file)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                }
                response
            }
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&(reply.len() as u16).to_be_bytes());
        framed.extend_from_slice(&reply);
        stream.write_all(&framed)?;
    }
}

enum Read2 {
    Done,
    Closed,
    Stopped,
}

/// Reads exactly `buf.len()` bytes, waking up while idle to ask `keep_going`.
fn read_exact_or_idle(
    stream: &mut TcpStream,
    buf: &mut [u8],
    keep_going: &dyn Fn() -> bool,
) -> io::Result<Read2> {
    let mut filled = 0;
    while filled < buf.len() {
        if !keep_going() {
            return Ok(Read2::Stopped);
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Ok(Read2::Closed),
            Ok(n) => filled += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(Read2::Closed),
            Err(e) => return Err(e),
        }
    }
    Ok(Read2::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    fn read_frame(s: &mut TcpStream) -> Vec<u8> {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut v = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut v).unwrap();
        v
    }

    /// Plays vpcd: power on, ATR, SELECT PIV, GET VERSION; then closes (card removed).
    #[test]
    fn speaks_the_vpcd_protocol() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let dir = std::env::temp_dir().join(format!("tessera-vpcd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("card.json");
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(&frame(&[0x01])).unwrap();
            s.write_all(&frame(&[0x04])).unwrap();
            let atr = read_frame(&mut s);
            s.write_all(&frame(&[
                0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00,
                0x00,
            ]))
            .unwrap();
            let select = read_frame(&mut s);
            s.write_all(&frame(&[0x00, 0xFD, 0x00, 0x00, 0x00]))
                .unwrap();
            let version = read_frame(&mut s);
            (atr, select, version)
        });
        let mut card = VirtualCard::blank(42, rand::rngs::OsRng);
        let end = serve_once(&mut card, &state, addr, &|| true, &mut || true).unwrap();
        assert_eq!(end, SessionEnd::Closed);
        let (atr, select, version) = reader.join().unwrap();
        assert_eq!(atr, card.atr());
        assert_eq!(select[0], 0x61, "application property template");
        assert_eq!(&select[select.len() - 2..], &[0x90, 0x00]);
        assert_eq!(&version[version.len() - 2..], &[0x90, 0x00]);
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! The station protocol, version 1: every message that crosses the WebSocket between a station
//! and the server, in one place. Each WebSocket text frame holds one JSON object with a `type`
//! field. `docs/station-protocol.md` describes the exchange; this module is its definition.
//!
//! The server asks, the station answers: every [`Request`] carries an id that its [`Reply`]
//! repeats. A request is sent again with the same id after a reconnection; the station answers a
//! repeated id from its memory instead of running it twice, so an APDU never reaches a card twice.

use serde::{Deserialize, Serialize};
use tessera_core::model::PrinterConfig;
use tessera_core::ports::{CardError, PrintReceipt, PrinterInfo, ScriptCommand};

/// The protocol version this build speaks. A peer with another version is refused at `hello`.
pub const VERSION: u32 = 1;
/// The WebSocket path of the station endpoint.
pub const CONNECT_PATH: &str = "/station/v1/connect";
/// The WebSocket path where a station exchanges its enrolment token (sent as the bearer token of
/// the upgrade request) for a credential: the server answers one [`EnrolResponse`] and closes.
/// Enrolment rides the same kind of connection as the work, so it gets the same TLS checks.
pub const ENROL_PATH: &str = "/station/v1/enrol";

/// Station to server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StationMessage {
    /// First message on every connection.
    Hello {
        version: u32,
        /// `tessera-station 0.1.0`.
        agent: String,
        /// Card sessions still open from a previous connection (a dropped network, not a
        /// restarted station): the server's requests on them can go on.
        open_sessions: Vec<String>,
        /// Random per station process: a request in flight is sent again only to the same
        /// process, so that a restarted station never prints a card twice.
        #[serde(default)]
        instance: String,
    },
    /// What the station has now; sent after `hello` and whenever it changes.
    Inventory(Inventory),
    /// A card went into or out of a reader.
    CardEvent {
        reader: String,
        present: bool,
    },
    Reply(Reply),
}

/// Server to station.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to `hello`: the station is known and may work.
    Welcome {
        version: u32,
        station_id: String,
        station_name: String,
    },
    /// The connection is refused (revoked, disabled, wrong version); the socket closes after it.
    Refused {
        reason: String,
    },
    /// The printers an administrator configured for this station on the server (IPP URIs and
    /// spool folders): sent after `welcome` and again whenever they change, each time the whole
    /// list. They come on top of the printers of the station's own command line, which win a
    /// clash of names.
    Printers {
        printers: Vec<PrinterConfig>,
    },
    Request(Request),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub readers: Vec<ReaderInfo>,
    pub printers: Vec<PrinterInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaderInfo {
    pub name: String,
    /// Whether a card is in the reader, when the station can tell.
    pub card_present: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub body: RequestBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RequestBody {
    /// Report the inventory now.
    Inventory,
    /// Move a blank card into the encoder of a printer.
    FeedCard { printer: String },
    /// Move the card in the encoder of a printer out of it (an issuance cancelled).
    EjectCard { printer: String },
    /// Open a card session on a reader; the card stays exclusively ours until `disconnect`.
    Connect { reader: String },
    /// One command APDU.
    Transmit {
        session: String,
        #[serde(with = "hex_bytes")]
        apdu: Vec<u8>,
    },
    /// Commands run in order, stopping after the first unexpected status word.
    Script {
        session: String,
        commands: Vec<WireCommand>,
    },
    /// Close a card session (the card is reset).
    Disconnect { session: String },
    /// Print the card faces; answered when the printer reports the job finished.
    Print {
        printer: String,
        job_name: String,
        #[serde(with = "base64_bytes")]
        front_png: Vec<u8>,
        #[serde(with = "base64_opt")]
        back_png: Option<Vec<u8>>,
        #[serde(with = "base64_bytes")]
        pdf: Vec<u8>,
    },
}

impl RequestBody {
    /// The `op` of the request, for logs.
    pub fn op(&self) -> &'static str {
        match self {
            Self::Inventory => "inventory",
            Self::FeedCard { .. } => "feed_card",
            Self::EjectCard { .. } => "eject_card",
            Self::Connect { .. } => "connect",
            Self::Transmit { .. } => "transmit",
            Self::Script { .. } => "script",
            Self::Disconnect { .. } => "disconnect",
            Self::Print { .. } => "print",
        }
    }
}

/// A script command on the wire: hex APDU and status words as `9000` or `61XX`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireCommand {
    #[serde(with = "hex_bytes")]
    pub apdu: Vec<u8>,
    pub expect: Vec<String>,
}

impl From<&ScriptCommand> for WireCommand {
    fn from(c: &ScriptCommand) -> Self {
        Self {
            apdu: c.apdu.clone(),
            expect: c
                .expect
                .iter()
                .map(|p| {
                    if p.mask == 0xFF00 {
                        format!("{:02X}XX", p.value >> 8)
                    } else {
                        format!("{:04X}", p.value)
                    }
                })
                .collect(),
        }
    }
}

impl WireCommand {
    pub fn to_command(&self) -> Result<ScriptCommand, String> {
        let expect = self
            .expect
            .iter()
            .map(|p| {
                let p = p.to_ascii_uppercase();
                match p.strip_suffix("XX") {
                    Some(sw1) if sw1.len() == 2 => u8::from_str_radix(sw1, 16)
                        .map(tessera_core::ports::SwPattern::sw1)
                        .map_err(|_| format!("bad status word pattern {p:?}")),
                    _ if p.len() == 4 => u16::from_str_radix(&p, 16)
                        .map(tessera_core::ports::SwPattern::exact)
                        .map_err(|_| format!("bad status word pattern {p:?}")),
                    _ => Err(format!("bad status word pattern {p:?}")),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(ScriptCommand {
            apdu: self.apdu.clone(),
            expect,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub id: u64,
    #[serde(flatten)]
    pub body: ReplyBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ReplyBody {
    Inventory(Inventory),
    Fed,
    Ejected,
    Connected {
        session: String,
        #[serde(with = "hex_bytes")]
        atr: Vec<u8>,
        extended_length: bool,
    },
    Response {
        #[serde(with = "hex_bytes")]
        apdu: Vec<u8>,
    },
    /// The responses of a script, up to and including the first unexpected one.
    ScriptDone {
        #[serde(with = "hex_list")]
        responses: Vec<Vec<u8>>,
    },
    Disconnected,
    Printed(PrintReceipt),
    /// The card failed (pulled, unreachable, not PIV).
    CardFailed(CardError),
    /// Anything else that failed: a printer, an unknown session, a request the station does not
    /// understand. The message is for a person.
    Failed {
        message: String,
    },
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

mod hex_list {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(hex::encode_upper))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

mod base64_opt {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&base64::engine::general_purpose::STANDARD.encode(v)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| {
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

/// The one message of an enrolment connection.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolResponse {
    pub station_id: String,
    pub station_name: String,
    pub credential: String,
}

/// Without the credential: a debug print must not hand it out.
impl std::fmt::Debug for EnrolResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolResponse")
            .field("station_id", &self.station_id)
            .field("station_name", &self.station_name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_a_stable_shape() {
        let m = ServerMessage::Request(Request {
            id: 7,
            body: RequestBody::Script {
                session: "s1".into(),
                commands: vec![WireCommand {
                    apdu: vec![0, 0xA4, 4, 0],
                    expect: vec!["9000".into(), "61XX".into()],
                }],
            },
        });
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(
            text,
            r#"{"type":"request","id":7,"op":"script","session":"s1","commands":[{"apdu":"00A40400","expect":["9000","61XX"]}]}"#
        );
        assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), m);

        let r = StationMessage::Reply(Reply {
            id: 7,
            body: ReplyBody::CardFailed(CardError::Unreachable("card removed".into())),
        });
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"type":"reply","id":7,"result":"card_failed","kind":"unreachable","detail":"card removed"}"#
        );
        assert_eq!(serde_json::from_str::<StationMessage>(&text).unwrap(), r);

        let p = ServerMessage::Printers {
            printers: vec![tessera_core::model::PrinterConfig {
                name: "Badge Folder".into(),
                kind: tessera_core::model::PrinterKind::Spool {
                    dir: "/var/spool/cards".into(),
                },
                encoder_reader: Some("Desk Reader".into()),
            }],
        };
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(
            text,
            r#"{"type":"printers","printers":[{"name":"Badge Folder","kind":{"kind":"spool","dir":"/var/spool/cards"},"encoder_reader":"Desk Reader"}]}"#
        );
        assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), p);
    }

    #[test]
    fn status_word_patterns_round_trip() {
        let c = ScriptCommand {
            apdu: vec![1, 2],
            expect: vec![
                tessera_core::ports::SwPattern::exact(0x9000),
                tessera_core::ports::SwPattern::sw1(0x61),
            ],
        };
        let wire = WireCommand::from(&c);
        assert_eq!(wire.expect, ["9000", "61XX"]);
        assert_eq!(wire.to_command().unwrap(), c);
        assert!(WireCommand {
            apdu: vec![],
            expect: vec!["9G00".into()]
        }
        .to_command()
        .is_err());
    }

    #[test]
    fn hostile_frames_are_errors_not_panics() {
        for text in [
            "",
            "{}",
            r#"{"type":"reply"}"#,
            r#"{"type":"reply","id":1,"result":"response","apdu":"XYZ"}"#,
            r#"{"type":"hello","version":"1"}"#,
        ] {
            assert!(
                serde_json::from_str::<StationMessage>(text).is_err(),
                "{text}"
            );
        }
    }
}

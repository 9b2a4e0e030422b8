//! APDU scripts: commands whose sending does not depend on an earlier answer travel together, so
//! that a card behind a station costs one network round trip per script instead of one per
//! command. Three places use them: SELECT with GET SERIAL and GET VERSION; the key generations of
//! all slots; and the writes after them (certificates, CHUID, CCC, printed information, PIN, PUK,
//! management key), collected between `defer_writes` and `flush_writes`.
//!
//! A script stops at the first status word it does not expect, so the card never receives a
//! command after one that failed; the client then reports that command's error as if it had been
//! sent alone.

use super::*;
use tessera_core::ports::{ScriptCommand, SwPattern};

/// What a deferred write's status word means.
#[derive(Clone, Copy, Debug)]
pub(super) enum Check {
    /// PUT DATA of the object `tag` whose value is `len` bytes long.
    PutData {
        tag: u32,
        len: usize,
    },
    Pin,
    Puk,
    ManagementKey,
}

impl Check {
    pub(super) fn error(self, sw_: u16) -> CardError {
        let refused = match self {
            Check::PutData { tag, len } => match sw_ {
                sw::SECURITY_STATUS_NOT_SATISFIED => Err(CardError::ManagementKeyRejected),
                // The card is short of room, not broken: say which object and how big, since
                // cards differ (a YubiKey 5 holds at most 3052 bytes in any one object, where
                // SP 800-73-4 lets a facial image take 12,704).
                sw::NOT_ENOUGH_MEMORY => Err(CardError::DataObject {
                    object: objects::object_name(tag),
                    detail: format!(
                        "the card has no room for its {len} bytes (it answered 6A84); \
                         issue this card model with a device policy that leaves the object out"
                    ),
                }),
                other => Err(status("PUT DATA", other)),
            },
            Check::Pin => pin_result("CHANGE REFERENCE DATA", sw_),
            Check::Puk => puk_result("CHANGE REFERENCE DATA", sw_),
            Check::ManagementKey => match sw_ {
                sw::SECURITY_STATUS_NOT_SATISFIED => Err(CardError::ManagementKeyRejected),
                other => Err(status("SET MANAGEMENT KEY", other)),
            },
        };
        refused
            .err()
            .unwrap_or_else(|| status("an APDU script", sw_))
    }
}

/// One write waiting for `flush_writes`: its command parts (one, or a chain on short readers).
pub(super) struct Deferred {
    parts: Vec<Zeroizing<Vec<u8>>>,
    check: Check,
}

/// Status words after which the optional Yubico commands let the script go on: success or
/// "not supported" in its usual forms. Anything else (61xx: more data) stops it.
const OPTIONAL: [SwPattern; 6] = [
    SwPattern::exact(sw::SUCCESS),
    SwPattern::sw1(0x6D),
    SwPattern::sw1(0x6E),
    SwPattern::sw1(0x6A),
    SwPattern::sw1(0x69),
    SwPattern::sw1(0x6B),
];

impl PivClient {
    /// The wire form of a command that expects data back, as `exchange` would send it.
    pub(super) fn with_answer(&self, mut apdu: CommandApdu) -> Result<Vec<u8>, CardError> {
        if self.transport.extended_length() {
            apdu.extended = true;
            apdu.ne = 65536;
        } else {
            apdu.ne = 256;
        }
        encode(&apdu)
    }

    /// The wire form of a write: one extended command, or a chain of short ones.
    fn write_parts(&self, apdu: CommandApdu) -> Result<Vec<Zeroizing<Vec<u8>>>, CardError> {
        if self.transport.extended_length() || apdu.data.len() <= SHORT_DATA_MAX {
            let mut apdu = apdu;
            apdu.extended = self.transport.extended_length();
            return Ok(vec![Zeroizing::new(encode(&apdu)?)]);
        }
        let chunks: Vec<&[u8]> = apdu.data.chunks(SHORT_DATA_MAX).collect();
        let last = chunks.len() - 1;
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| {
                let mut part = CommandApdu::new(apdu.cla, apdu.ins, apdu.p1, apdu.p2)
                    .with_data(chunk.to_vec());
                if i < last {
                    part.cla |= CLA_CHAINING;
                }
                encode(&part).map(Zeroizing::new)
            })
            .collect()
    }

    pub(super) fn defer(&mut self, apdu: CommandApdu, check: Check) -> Result<(), CardError> {
        let parts = self.write_parts(apdu)?;
        self.deferred
            .get_or_insert_with(Vec::new)
            .push(Deferred { parts, check });
        Ok(())
    }

    /// Runs a script on the transport (or command by command when scripts are off), tracing
    /// every exchange with secrets redacted.
    pub(super) async fn run(
        &mut self,
        script: &[ScriptCommand],
    ) -> Result<Vec<Vec<u8>>, CardError> {
        let result = if self.scripts {
            self.transport.run_script(script).await
        } else {
            let mut responses = Vec::with_capacity(script.len());
            let mut outcome = Ok(());
            for command in script {
                match self.transport.transmit(&command.apdu).await {
                    Ok(response) => {
                        let go_on = command.accepts(&response);
                        responses.push(response);
                        if !go_on {
                            break;
                        }
                    }
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
            outcome.map(|()| responses)
        };
        match &result {
            Ok(responses) => {
                for (command, response) in script.iter().zip(responses) {
                    let redact = trace::is_sensitive(&command.apdu);
                    trace::exchange(&command.apdu, Some(response), redact);
                }
                if responses.len() > script.len()
                    || responses.iter().any(|r| r.len() < 2)
                    || (responses.len() < script.len()
                        && responses
                            .last()
                            .is_some_and(|r| script[responses.len() - 1].accepts(r)))
                    || (responses.is_empty() && !script.is_empty())
                {
                    return Err(malformed(
                        "an APDU script",
                        "the answers do not match the commands",
                    ));
                }
            }
            Err(e) => tracing::debug!(target: "tessera_piv::apdu", "transport error: {e}"),
        }
        result
    }

    pub(super) async fn flush(&mut self) -> Result<(), CardError> {
        let Some(deferred) = self.deferred.take() else {
            return Ok(());
        };
        let mut script = Vec::new();
        let mut owner = Vec::new();
        for (i, d) in deferred.iter().enumerate() {
            for part in &d.parts {
                script.push(ScriptCommand::ok(part.to_vec()));
                owner.push(i);
            }
        }
        if script.is_empty() {
            return Ok(());
        }
        let responses = Zeroizing::new(self.run(&script).await?);
        // The script stopped at its last answer if that one is unexpected.
        let last = responses.len() - 1;
        let sw_ = tessera_core::ports::status_word(&responses[last]).unwrap_or(0);
        if !script[last].accepts(&responses[last]) {
            return Err(deferred[owner[last]].check.error(sw_));
        }
        Ok(())
    }

    /// GENERATE ASYMMETRIC KEY PAIR for every slot, as few scripts as the reader allows: one with
    /// extended length; on a short reader a script stops where an answer needs GET RESPONSE.
    pub(super) async fn generate_all(
        &mut self,
        keys: &[(Slot, KeyAlgorithm)],
    ) -> Result<Vec<Vec<u8>>, CardError> {
        const OP: &str = "GENERATE ASYMMETRIC KEY PAIR";
        let mut out = Vec::with_capacity(keys.len());
        while out.len() < keys.len() {
            let rest = &keys[out.len()..];
            let script = rest
                .iter()
                .map(|(slot, algorithm)| {
                    let apdu = CommandApdu::new(
                        0,
                        ins::GENERATE_ASYMMETRIC_KEY_PAIR,
                        0,
                        slot.key_reference(),
                    )
                    .with_data(tlv::encode(0xAC, &tlv::encode(0x80, &[algorithm.piv_id()])));
                    self.with_answer(apdu).map(ScriptCommand::ok)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let responses = self.run(&script).await?;
            for raw in responses {
                let (_, algorithm) = keys[out.len()];
                let response =
                    ResponseApdu::parse(&raw).map_err(|e| malformed(OP, e.to_string()))?;
                let response = if response.sw1() == sw::MORE_DATA {
                    self.complete(response, false).await?
                } else {
                    response
                };
                if response.sw != sw::SUCCESS {
                    return Err(status(OP, response.sw));
                }
                out.push(
                    public_key::spki_from_template(algorithm, &response.data)
                        .map_err(|e| malformed(OP, e))?,
                );
            }
        }
        Ok(out)
    }

    /// SELECT, then GET SERIAL and GET VERSION in the same script. Returns the SELECT answer and
    /// the serial and version when the script got that far (`None`: ask again on its own).
    #[allow(clippy::type_complexity)]
    pub(super) async fn select_script(
        &mut self,
        select: CommandApdu,
    ) -> Result<(ResponseApdu, Option<Option<u32>>, Option<Option<String>>), CardError> {
        let script = vec![
            ScriptCommand::ok(self.with_answer(select)?),
            ScriptCommand {
                apdu: self.with_answer(CommandApdu::new(0, ins::GET_SERIAL, 0, 0))?,
                expect: OPTIONAL.to_vec(),
            },
            ScriptCommand {
                apdu: self.with_answer(CommandApdu::new(0, ins::GET_VERSION, 0, 0))?,
                expect: OPTIONAL.to_vec(),
            },
        ];
        let responses = self.run(&script).await?;
        let parse = |raw: &Vec<u8>| {
            ResponseApdu::parse(raw).map_err(|e| malformed("SELECT", e.to_string()))
        };
        let mut selected = parse(&responses[0])?;
        if selected.sw1() == sw::MORE_DATA {
            selected = self.complete(selected, false).await?;
        }
        let answered = |i: usize| responses.get(i).filter(|r| script[i].accepts(r));
        let serial = answered(1).map(|r| match parse(r) {
            Ok(ResponseApdu {
                sw: sw::SUCCESS,
                data,
            }) if data.len() == 4 => Some(u32::from_be_bytes([data[0], data[1], data[2], data[3]])),
            _ => None,
        });
        let version = answered(2).map(|r| match parse(r) {
            Ok(ResponseApdu {
                sw: sw::SUCCESS,
                data,
            }) if data.len() == 3 => Some(format!("{}.{}.{}", data[0], data[1], data[2])),
            _ => None,
        });
        Ok((selected, serial, version))
    }
}

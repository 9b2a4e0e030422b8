//! Tessera's station: the card printers and smart-card readers on the operator's desk, behind the
//! core's `StationPort`. This crate holds the in-process station that `tessera demo` runs, with its
//! simulated card printer (a virtual PIV card in the encoder, card faces written to a folder). The
//! virtual cards themselves come from outside through [`VirtualCards`], so this crate does not
//! depend on the card crate.

mod local;
mod simulated;

pub use local::{LocalStation, LocalStations, ReaderProvider};
pub use simulated::{Faults, SimulatedCardPrinter, VirtualCards};

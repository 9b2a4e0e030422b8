//! Tessera's station: the card printers and smart-card readers on the operator's desk, behind the
//! core's `StationPort`. This crate holds the in-process station that `tessera demo` runs, with its
//! simulated card printer (a virtual PIV card in the encoder, card faces written to a folder). The
//! virtual cards themselves come from outside through [`VirtualCards`], so this crate does not
//! depend on the card crate.
//!
//! It also holds both ends of the station protocol ([`protocol`]): the agent that
//! `tessera station` runs on a workstation ([`agent`]) and the server's link to each connected
//! station ([`link`]), through which the server drives cards and printers it cannot touch.

pub mod agent;
pub mod config;
pub mod link;
mod local;
pub mod protocol;
mod simulated;
pub mod tls;

pub use local::{LocalStation, LocalStations, ReaderProvider};
pub use simulated::{Faults, SimulatedCardPrinter, VirtualCards};

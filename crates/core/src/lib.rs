//! Tessera's domain core: the model of users, cards (devices), device policies, layouts, stations
//! and operators; the device lifecycle as one pure transition function; the issuance use case that
//! drives a card from blank to Active; and the traits (ports) through which the core reaches
//! everything outside it: the store, the certificate authority, the card, the card renderer, the
//! station with its printers and readers, the clock and the random source.
//!
//! Nothing in this crate performs I/O. Adapters in the other crates implement the ports; the server
//! wires them together.

pub mod access;
pub mod approvals;
pub mod audit;
pub mod audit_log;
pub mod card_sign_in;
pub mod changes;
pub mod content_signing;
pub mod devices;
pub mod dispatch;
pub mod enrolment;
pub mod error;
pub mod fingerprints;
pub mod fips201;
pub mod help_desk;
pub mod ids;
pub mod issuance;
pub mod jobs;
pub mod layouts;
pub mod lifecycle;
pub mod model;
pub mod operators;
pub mod passwords;
pub mod people;
pub mod pin_rules;
pub mod policies;
pub mod ports;
pub mod refusals;
pub mod secret;
pub mod services;
pub mod settings;
pub mod sign_in;
pub mod stations;
pub mod stock;
pub mod template;
pub mod throttle;
pub mod totp;
pub mod users;

pub use error::{CoreError, ErrorCode};
pub use ids::*;
pub use lifecycle::{transition, DeviceCommand, DeviceState, Reason};
pub use secret::{ManagementKey, Password, Pin, Puk};

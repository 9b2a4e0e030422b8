//! tessera-piv owns everything Tessera says to a PIV smart card (NIST SP 800-73-4): typed APDUs
//! and BER-TLV, the [`PivClient`] that implements the core's `PivCard` port over any
//! `CardTransport` (command chaining, extended length, GET RESPONSE, status words mapped to
//! `CardError`, APDU traces with secrets redacted), the contents of the data objects an issuer
//! writes (the signed CHUID, CCC, certificates, printed information, the signed CBEFF facial image
//! and fingerprints, the Security Object; signed through the core's `ContentSigner`), a faithful
//! [`VirtualCard`] with persistent state that stands in for hardware in the demo, in tests and
//! behind vpcd for OpenSC, and the [`check`] of any PIV card's data objects against the standards
//! (`tessera card check`).

pub mod apdu;
pub mod card;
pub mod check;
pub mod client;
pub mod data_objects;
pub mod management_key;
pub mod metadata;
#[cfg(feature = "pcsc")]
pub mod pcsc;
pub mod public_key;
pub mod tlv;
pub mod trace;
pub mod virtual_transport;
pub mod vpcd;

pub use apdu::{CommandApdu, ResponseApdu};
pub use card::{StateError, VirtualCard};
pub use client::{factory, factory_with, PivClient};
pub use virtual_transport::{SharedCard, VirtualCardTransport};

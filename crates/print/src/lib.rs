//! tessera-print owns the faces of Tessera's cards: the SVG layout language (field bindings,
//! photo slot, Code 128, PDF417 and QR slots, conditional elements), the checks that keep a hostile
//! layout from running code or reaching outside itself, and the rendering of a layout filled
//! with a holder's data to a 300 dpi PNG per side and a PDF with one CR80 page per side. It ships
//! its fonts (DejaVu Sans) so every machine draws the same card, the demo layout "Corporate
//! Badge", illustrated portraits for demo users, and the PIV facial image JPEG made from a stored
//! portrait ([`facial_image`]). It implements
//! [`tessera_core::ports::CardRenderer`], and drives IPP card printers ([`ipp::IppPrinter`], a
//! [`tessera_core::ports::CardPrinter`]): Print-Job, then follow the job to its end; and spool-folder
//! printers ([`spool::SpoolPrinter`]) that write each job's PDF and PNGs into a folder.

mod barcode;
pub mod chip;
pub mod code128;
mod error;
pub mod facial_image;
mod fill;
mod fonts;
pub mod ipp;
pub mod layouts;
pub mod limits;
mod pdf;
pub mod pdf417;
mod pdf417_tables;
pub mod photo;
mod png;
pub mod portrait;
mod render;
pub mod spool;

pub use chip::{ChipOverlap, MmRect, CHIP_KEEP_OUT, ISO7816_CONTACTS};
pub use error::PrintError;
pub use ipp::{IppCapabilities, IppLimits, IppPrinter};
pub use layouts::{corporate_badge, CORPORATE_BADGE_BACK, CORPORATE_BADGE_FRONT};
pub use limits::{LimitError, MAX_LAYOUT_BYTES};
pub use png::dimensions as png_dimensions;
pub use portrait::portrait_png;
pub use render::{Orientation, SvgRenderer, CR80_HEIGHT_MM, CR80_WIDTH_MM, DPI};
pub use spool::SpoolPrinter;

//! What can go wrong with a layout or a render, precise enough for a designer to fix the SVG:
//! the element and, where the parser knows it, the line.

use crate::limits::{LimitError, MAX_LAYOUT_BYTES};
use tessera_core::ports::PortError;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PrintError {
    #[error("the layout is {bytes} bytes; a side may have at most {MAX_LAYOUT_BYTES} bytes")]
    TooLarge { bytes: usize },
    #[error("the layout is not well-formed XML (line {line}, column {column}): {message}")]
    Malformed {
        line: u32,
        column: u32,
        message: String,
    },
    #[error("the layout has a DOCTYPE; DTDs and entities are not allowed in layouts")]
    Doctype,
    #[error("the layout's root element is <{element}>, expected <svg> in the SVG namespace")]
    NotSvg { element: String },
    #[error("line {line}: <{element}> is not allowed in a layout: {reason}")]
    Forbidden {
        element: String,
        line: u32,
        reason: String,
    },
    #[error("line {line}: <{element}>: {message}")]
    Slot {
        element: String,
        line: u32,
        message: String,
    },
    #[error(
        "the layout is {width_mm:.2} x {height_mm:.2} mm; a side must be CR80, 85.60 x 53.98 mm \
         (or have its proportions)"
    )]
    NotCr80 { width_mm: f32, height_mm: f32 },
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error("the holder's photo is neither PNG nor JPEG")]
    Photo,
    #[error("the layout could not be drawn: {0}")]
    Render(String),
    #[error("the PDF could not be written: {0}")]
    Pdf(String),
    #[error("{side} side: {error}")]
    OnSide {
        side: &'static str,
        error: Box<PrintError>,
    },
}

impl PrintError {
    pub(crate) fn on_side(self, side: &'static str) -> Self {
        Self::OnSide {
            side,
            error: Box::new(self),
        }
    }
}

impl From<PrintError> for PortError {
    fn from(e: PrintError) -> Self {
        PortError::new(e.to_string())
    }
}

//! Barcode and QR code slots, drawn as SVG paths fitted into the slot's rectangle.
//!
//! Each symbol is one path in module coordinates scaled onto the slot: a single fill has no
//! anti-aliasing seams between neighbouring modules, and the SVG stays small.

use crate::code128::Code128;
use crate::fill::fmt_num;
use crate::pdf417::Pdf417;
use qrcode::{Color, EcLevel, QrCode};
use std::fmt::Write;

/// Light modules around a QR code, as ISO/IEC 18004 asks.
const QR_QUIET_ZONE: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum BarcodeError {
    #[error(transparent)]
    Code128(#[from] crate::code128::Unencodable),
    #[error("the value does not fit in a QR code: {0}")]
    Qr(qrcode::types::QrError),
    #[error(transparent)]
    Pdf417(#[from] crate::pdf417::Pdf417Error),
}

/// A white ground over the whole slot (the quiet zones must be light even on a coloured band)
/// and the bars over its full height.
pub fn code128_path(value: &str, rect: Rect, color: &str) -> Result<String, BarcodeError> {
    let code = Code128::encode(value)?;
    let mut d = String::new();
    for (x, w) in code.bars() {
        let _ = write!(d, "M{x} 0h{w}v1h-{w}z");
    }
    let sx = rect.width / code.total_modules() as f32;
    Ok(format!(
        r##"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="#fff"/><path fill="{color}" shape-rendering="crispEdges" transform="matrix({sx} 0 0 {h} {x} {y})" d="{d}"/>"##,
        x = fmt_num(rect.x),
        y = fmt_num(rect.y),
        w = fmt_num(rect.width),
        h = fmt_num(rect.height),
        sx = fmt_num_precise(sx),
        color = escape_color(color),
    ))
}

/// A square QR code (error correction M) as large as fits, centred in the slot, on white.
pub fn qr_path(value: &str, rect: Rect, color: &str) -> Result<String, BarcodeError> {
    let code = QrCode::with_error_correction_level(value.as_bytes(), EcLevel::M)
        .map_err(BarcodeError::Qr)?;
    let n = code.width();
    let colors = code.to_colors();
    let mut d = String::new();
    for y in 0..n {
        let row = &colors[y * n..(y + 1) * n];
        let mut x = 0;
        while x < n {
            if row[x] == Color::Dark {
                let start = x;
                while x < n && row[x] == Color::Dark {
                    x += 1;
                }
                let run = x - start;
                let _ = write!(
                    d,
                    "M{} {}h{run}v1h-{run}z",
                    start + QR_QUIET_ZONE,
                    y + QR_QUIET_ZONE
                );
            } else {
                x += 1;
            }
        }
    }
    let side = rect.width.min(rect.height);
    let module = side / (n + 2 * QR_QUIET_ZONE) as f32;
    Ok(symbol_svg(rect, side, side, module, color, &d))
}

/// A 2-D symbol drawn in modules (`d`, one unit a module) scaled to `module`, centred in `rect`
/// on a white `w` x `h` background.
fn symbol_svg(rect: Rect, w: f32, h: f32, module: f32, color: &str, d: &str) -> String {
    let ox = rect.x + (rect.width - w) / 2.0;
    let oy = rect.y + (rect.height - h) / 2.0;
    format!(
        r##"<rect x="{ox}" y="{oy}" width="{w}" height="{h}" fill="#fff"/><path fill="{color}" shape-rendering="crispEdges" transform="matrix({m} 0 0 {m} {ox} {oy})" d="{d}"/>"##,
        ox = fmt_num(ox),
        oy = fmt_num(oy),
        w = fmt_num(w),
        h = fmt_num(h),
        m = fmt_num_precise(module),
        color = escape_color(color),
    )
}

/// A PDF417 symbol shaped for the slot (rows three modules high), as large as fits, centred, on
/// white with its quiet zone. `level` overrides the recommended error correction level.
pub fn pdf417_path(
    value: &str,
    rect: Rect,
    color: &str,
    level: Option<u8>,
) -> Result<String, BarcodeError> {
    let symbol = Pdf417::encode(value, level, rect.width / rect.height)?;
    let mut d = String::new();
    for (x, y, w) in symbol.bars() {
        let _ = write!(d, "M{x} {y}h{w}v{h}h-{w}z", h = crate::pdf417::ROW_HEIGHT);
    }
    let (wm, hm) = symbol.size_modules();
    let module = (rect.width / wm as f32).min(rect.height / hm as f32);
    let (w, h) = (module * wm as f32, module * hm as f32);
    Ok(symbol_svg(rect, w, h, module, color, &d))
}

/// Module widths are small numbers; four decimals would visibly round them over 100 modules.
fn fmt_num_precise(n: f32) -> String {
    let s = format!("{n:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The colour comes from the layout, not from user data, but it still must not break the markup.
fn escape_color(color: &str) -> String {
    color
        .chars()
        .filter(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '#' | '(' | ')' | ',' | '.' | ' ' | '%')
        })
        .collect()
}

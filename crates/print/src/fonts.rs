//! The fonts every card face is drawn with. Only the faces shipped in `fonts/` are ever loaded
//! (never the system's), so a layout renders to the same pixels on every machine.

use resvg::usvg::fontdb;
use std::sync::Arc;

/// DejaVu Sans (Bitstream Vera licence, see `fonts/LICENSE`).
pub const FAMILY: &str = "DejaVu Sans";
const REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// A font database holding only the shipped faces. Every generic family points at DejaVu Sans,
/// and usvg's selector falls back to the serif generic for names it does not know, so `Arial`,
/// `Helvetica` and any other family a designer's tool writes resolve to DejaVu Sans too.
pub fn database() -> Arc<fontdb::Database> {
    let mut db = fontdb::Database::new();
    db.load_font_data(REGULAR.to_vec());
    db.load_font_data(BOLD.to_vec());
    db.set_serif_family(FAMILY);
    db.set_sans_serif_family(FAMILY);
    db.set_cursive_family(FAMILY);
    db.set_fantasy_family(FAMILY);
    db.set_monospace_family(FAMILY);
    Arc::new(db)
}

/// The advance width of `text` in user units, without kerning: close enough to decide whether
/// a bound value fits its box, which is all `data-fit` needs.
pub fn text_width(text: &str, font_size: f32, bold: bool) -> f32 {
    let data = if bold { BOLD } else { REGULAR };
    let Ok(face) = ttf_parser::Face::parse(data, 0) else {
        return 0.0;
    };
    let units = f32::from(face.units_per_em());
    let fallback = face
        .glyph_index('n')
        .and_then(|g| face.glyph_hor_advance(g))
        .unwrap_or(0);
    let advance: u32 = text
        .chars()
        .map(|c| {
            u32::from(
                face.glyph_index(c)
                    .and_then(|g| face.glyph_hor_advance(g))
                    .unwrap_or(fallback),
            )
        })
        .sum();
    advance as f32 / units * font_size
}

//! The layouts that ship with Tessera, ready to load into a fresh installation.

use tessera_core::ids::LayoutId;
use tessera_core::model::Layout;

/// Corporate Badge, front: header band with the company name; the chip's place left clear on the
/// left, name, title and department beside it, the photo on the right, the employee id as
/// Code 128 below the chip, the expiry date in the footer.
pub const CORPORATE_BADGE_FRONT: &str = include_str!("layouts/corporate-badge-front.svg");
/// Corporate Badge, back: QR code of the user id, return-if-found notice, card serial.
pub const CORPORATE_BADGE_BACK: &str = include_str!("layouts/corporate-badge-back.svg");

/// The Corporate Badge as a layout record (id `corporate-badge`, version 1, open to everyone).
pub fn corporate_badge() -> Layout {
    Layout {
        id: LayoutId::new("corporate-badge"),
        name: "Corporate Badge".into(),
        description: "Landscape employee badge: photo, name, title, department, employee id \
                      barcode and expiry on the front; QR code of the user id and a \
                      return-if-found notice on the back."
            .into(),
        front_svg: CORPORATE_BADGE_FRONT.to_owned(),
        back_svg: Some(CORPORATE_BADGE_BACK.to_owned()),
        allowed_groups: Vec::new(),
        default_for_groups: Vec::new(),
        version: 1,
    }
}

/// Every layout that ships with Tessera. Each front leaves the contact chip clear
/// ([`crate::chip::CHIP_KEEP_OUT`]); `tests/chip_area.rs` checks every one listed here.
pub fn built_in() -> Vec<Layout> {
    vec![corporate_badge()]
}

/// A layout at every limit of [`crate::limits`] at once, on both sides: the most that a layout
/// which passes the checks can ask of the renderer. Not for cards: for the tests and `tessera
/// bench`, which measure how the server answers while it draws this.
///
/// Each side nests [`MAX_DEPTH`](crate::limits::MAX_DEPTH) deep, has nearly
/// [`MAX_ELEMENTS`](crate::limits::MAX_ELEMENTS) elements and
/// [`MAX_TEXT_CHARS`](crate::limits::MAX_TEXT_CHARS) characters, a 3000 x 3000 pixel photo over
/// the whole card, turbulence at the most octaves, the widest blur and morphology and the largest
/// convolution, [`MAX_FILTER_PRIMITIVES`](crate::limits::MAX_FILTER_PRIMITIVES) primitives in
/// all, and translucent layers that bring the work close to
/// [`MAX_DRAWING_WORK`](crate::limits::MAX_DRAWING_WORK).
pub fn at_the_limits() -> Layout {
    use crate::limits::*;
    use base64::Engine as _;
    use resvg::tiny_skia::{Color, Pixmap};
    use std::fmt::Write as _;

    let side = MAX_IMAGE_SIDE as u32;
    let mut pixmap = Pixmap::new(side, side).expect("a 3000 x 3000 bitmap can be allocated");
    pixmap.fill(Color::from_rgba8(0xee, 0xf2, 0xf7, 0xff));
    let png = pixmap
        .encode_png()
        .expect("encoding a bitmap in memory cannot fail");
    let photo = base64::engine::general_purpose::STANDARD.encode(png);

    // User units are CR80 at 10 per millimetre, 856 across the card's 1011 pixels at 300 dpi;
    // a hair under each limit.
    let px = |p: f32| p * 856.0 / 1011.0 * 0.99;
    let mut svg = String::from(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="85.6mm" height="53.98mm" viewBox="0 0 856 539.8"><defs>"#,
    );
    // 8 primitives each; every filter is applied once, 4 x 8 = MAX_FILTER_PRIMITIVES.
    let filters = [
        format!(r#"<feTurbulence baseFrequency="0.05" numOctaves="{MAX_TURBULENCE_OCTAVES}"/>"#),
        format!(r#"<feGaussianBlur stdDeviation="{}"/>"#, px(MAX_BLUR_PX)),
        format!(
            r#"<feMorphology operator="dilate" radius="{}"/>"#,
            px(MAX_MORPHOLOGY_RADIUS_PX)
        ),
        format!(
            r#"<feConvolveMatrix order="{MAX_CONVOLVE_ORDER}" kernelMatrix="{}"/>"#,
            vec!["1"; (MAX_CONVOLVE_ORDER * MAX_CONVOLVE_ORDER) as usize].join(" ")
        ),
    ];
    let per_filter = MAX_FILTER_PRIMITIVES as usize / filters.len();
    for (i, primitive) in filters.iter().enumerate() {
        let _ = write!(svg, r#"<filter id="f{i}">{primitive}"#);
        for _ in 1..per_filter {
            svg.push_str(r#"<feOffset dx="1" dy="1"/>"#);
        }
        svg.push_str("</filter>");
    }
    svg.push_str("</defs>");
    let _ = write!(
        svg,
        r#"<image width="856" height="539.8" preserveAspectRatio="none" href="data:image/png;base64,{photo}"/>"#
    );
    for i in 0..filters.len() {
        let _ = write!(
            svg,
            r##"<rect x="{}" y="40" width="150" height="100" fill="#1d4e89" filter="url(#f{i})"/>"##,
            40 + 200 * i
        );
    }
    // Translucent veils over the card, each a layer of its own, up to nearly all of the work.
    for _ in 0..10 {
        svg.push_str(r##"<rect width="856" height="539.8" fill="#13315c" opacity="0.02"/>"##);
    }
    // Text in lines of 100 characters.
    let lines = (MAX_TEXT_CHARS / 100) as usize - 1;
    for i in 0..lines {
        let _ = write!(
            svg,
            r#"<text x="10" y="{}" font-size="4">{}</text>"#,
            200 + 6 * i,
            "abcdefghij".repeat(10)
        );
    }
    // The deepest nesting the limits allow (the <svg> is the first level).
    let depth = MAX_DEPTH as usize - 2;
    svg.push_str(&"<g>".repeat(depth));
    svg.push_str(r#"<rect width="1" height="1"/>"#);
    svg.push_str(&"</g>".repeat(depth));
    // Tiny marks up to nearly the most elements (each filtered shape counts its filter's too).
    let so_far = svg.matches('<').count() - svg.matches("</").count();
    let copied = filters.len() * (per_filter + 1);
    for i in 0..(MAX_ELEMENTS as usize).saturating_sub(so_far + copied + 10) {
        let _ = write!(
            svg,
            r#"<rect x="{}" y="{}" width="2" height="2"/>"#,
            (i % 400) * 2,
            500 + (i / 400)
        );
    }
    svg.push_str("</svg>");
    Layout {
        id: LayoutId::new("at-the-limits"),
        name: "At the limits".into(),
        description: "Every layout limit at once, for tests and benchmarks.".into(),
        front_svg: svg.clone(),
        back_svg: Some(svg),
        allowed_groups: Vec::new(),
        default_for_groups: Vec::new(),
        version: 1,
    }
}

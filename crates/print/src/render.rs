//! [`SvgRenderer`]: card layouts (one SVG per side) filled with a holder's data and drawn to PNG at
//! 300 dpi and to a PDF with one CR80 page per side.
//!
//! # The layout language
//!
//! A side is an ordinary SVG document sized for a CR80 card: `width="85.6mm" height="53.98mm"`
//! with a `viewBox` in millimetres or pixels (portrait, `53.98mm` x `85.6mm`, works too; any
//! size with CR80 proportions is scaled onto the card). Designers can draw it in Inkscape and
//! then add these bindings:
//!
//! - **Text and attribute values** containing `{{ field }}` or `{{ field | filter }}` are filled
//!   with [`tessera_core::template::apply`] over [`CardData::fields`](tessera_core::ports::CardData)
//!   (`user.display_name`, `user.title`, `device.expires_on | date:%d %b %Y`, ...; unknown
//!   fields are empty). The result is XML-escaped, so user text always renders as text.
//! - **`data-if="field"`** on any element removes the element (and its children) when the field
//!   is empty, e.g. a "Title" caption for users without a title.
//! - **`<image data-bind="photo" x= y= width= height=/>`** receives the holder's photo as a
//!   `data:` URI, cropped to fill the slot (`preserveAspectRatio="xMidYMid slice"`). Without a
//!   photo the element is left out, so draw a placeholder beneath it.
//! - **`<rect data-barcode="code128" data-bind="user.employee_id" x= y= width= height=/>`** is
//!   replaced by a Code 128 (set B) barcode of the field, quiet zones included, stretched over the
//!   rectangle on a white ground. `data-color` sets the bar colour (default black).
//! - **`<rect data-barcode="pdf417" data-bind="user.display_name" x= y= width= height=/>`** is
//!   replaced by a PDF417 symbol of the field ([`crate::pdf417`]: text, numeric or UTF-8 byte
//!   compaction, error correction level by data size unless `data-ec-level` sets it), its rows and
//!   columns chosen to make the modules as large as the rectangle allows, centred on white.
//! - **`<rect data-qr="user.uid" x= y= width= height=/>`** is replaced by a QR code of the field,
//!   the largest square that fits, centred.
//! - **`<text data-fit="W" font-size="S">`** shrinks the font size (down to 60 %) and then
//!   squeezes the glyphs so that the filled text is at most `W` user units wide, for long names.
//!
//! Slot geometry (`x`, `y`, `width`, `height`) must be plain numbers in user units.
//!
//! # What a layout may not contain
//!
//! A DOCTYPE (so no entity can expand), `<script>`, `<foreignObject>`, event handler
//! attributes, `@import`, and references that leave the document: every `href` and `url(...)`
//! must be a `#fragment` or a `data:` raster image. A side may have at most 2 MB. Errors name
//! the element and its line.
//!
//! Nor may a layout ask more of the renderer than [`crate::limits`] allows: nesting depth,
//! elements and text (with `<use>` copies), embedded images, filters, and the drawing's total
//! work. Those limits are checked when a layout is saved and again before every drawing.
//!
//! # Fonts
//!
//! Text is set in DejaVu Sans (regular and bold), shipped in `fonts/` and compiled in; system
//! fonts are never loaded, so every machine draws the same card. Any `font-family` (`sans-serif`,
//! `Arial`, `Helvetica`, ...) resolves to it. In the PDF, text stays text (embedded, subset font).

use crate::error::PrintError;
use crate::fill::{self, Bindings};
use crate::fonts;
use base64::Engine as _;
use resvg::tiny_skia;
use resvg::usvg::{self, fontdb, ImageHrefResolver, ImageKind};
use std::sync::Arc;
use tessera_core::model::Layout;
use tessera_core::ports::{CardData, CardRenderer, PortError, RenderedCard};

/// ISO/IEC 7810 ID-1 (CR80).
pub const CR80_WIDTH_MM: f32 = 85.6;
pub const CR80_HEIGHT_MM: f32 = 53.98;
/// Card printers print at 300 dpi.
pub const DPI: f32 = 300.0;
const MM_PER_INCH: f32 = 25.4;
const PT_PER_INCH: f32 = 72.0;
/// usvg converts absolute units to pixels at CSS's 96 per inch.
const CSS_DPI: f32 = 96.0;
/// How far a side's proportions may stray from CR80's before it is refused.
const ASPECT_TOLERANCE: f32 = 0.01;

/// Which way a side is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orientation {
    Landscape,
    Portrait,
}

impl Orientation {
    /// Card width and height in millimetres.
    pub fn size_mm(self) -> (f32, f32) {
        match self {
            Self::Landscape => (CR80_WIDTH_MM, CR80_HEIGHT_MM),
            Self::Portrait => (CR80_HEIGHT_MM, CR80_WIDTH_MM),
        }
    }

    /// Pixel size at 300 dpi: 1011 x 638 for landscape.
    pub fn size_px(self) -> (u32, u32) {
        let (w, h) = self.size_mm();
        let px = |mm: f32| (mm / MM_PER_INCH * DPI).round() as u32;
        (px(w), px(h))
    }

    /// Page size in PDF points: 242.65 x 153.01 for landscape.
    pub fn size_pt(self) -> (f32, f32) {
        let (w, h) = self.size_mm();
        (w / MM_PER_INCH * PT_PER_INCH, h / MM_PER_INCH * PT_PER_INCH)
    }
}

/// One side, filled and parsed, ready to draw.
struct Side {
    tree: usvg::Tree,
    orientation: Orientation,
}

/// Draws card faces from SVG layouts. Cheap to share: holds only the font database.
#[derive(Clone)]
pub struct SvgRenderer {
    fontdb: Arc<fontdb::Database>,
}

impl Default for SvgRenderer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for SvgRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SvgRenderer").finish_non_exhaustive()
    }
}

impl SvgRenderer {
    pub fn new() -> Self {
        Self {
            fontdb: fonts::database(),
        }
    }

    /// Checks a layout without data, as an upload form would: both sides parse, pass the
    /// safety rules, have CR80 proportions and fill without error.
    pub fn check_layout(&self, layout: &Layout) -> Result<(), PrintError> {
        let data = CardData::default();
        self.side(&layout.front_svg, &data)
            .map_err(|e| e.on_side("front"))?;
        if let Some(back) = &layout.back_svg {
            self.side(back, &data).map_err(|e| e.on_side("back"))?;
        }
        Ok(())
    }

    /// The side's SVG with every binding filled: what is drawn, and what a browser preview can
    /// show as it is (it has passed the same checks).
    pub fn fill(&self, svg: &str, data: &CardData) -> Result<String, PrintError> {
        let photo = photo_uri(data)?;
        fill::fill(
            svg,
            &Bindings {
                fields: &data.fields,
                photo_uri: photo.as_deref(),
            },
        )
    }

    /// One side as a 300 dpi PNG (1011 x 638 landscape, 638 x 1011 portrait).
    pub fn render_png(&self, svg: &str, data: &CardData) -> Result<Vec<u8>, PrintError> {
        self.side(svg, data).and_then(|s| png(&s))
    }

    /// The elements of a side, filled with `data`, that are drawn where the contact chip sits
    /// ([`crate::chip::keep_out`]); the card's ground does not count. Empty for a side that
    /// leaves the chip clear.
    pub fn chip_overlaps(
        &self,
        svg: &str,
        data: &CardData,
    ) -> Result<Vec<crate::chip::ChipOverlap>, PrintError> {
        let side = self.side(svg, data)?;
        Ok(crate::chip::overlaps(&side.tree, side.orientation))
    }

    /// Both sides as PNGs and a PDF with one page per side, each page exactly CR80.
    pub fn render_card(
        &self,
        layout: &Layout,
        data: &CardData,
    ) -> Result<RenderedCard, PrintError> {
        let started = std::time::Instant::now();
        let front = self
            .side(&layout.front_svg, data)
            .map_err(|e| e.on_side("front"))?;
        let back = match &layout.back_svg {
            Some(svg) => Some(self.side(svg, data).map_err(|e| e.on_side("back"))?),
            None => None,
        };
        let front_png = png(&front).map_err(|e| e.on_side("front"))?;
        let back_png = match &back {
            Some(b) => Some(png(b).map_err(|e| e.on_side("back"))?),
            None => None,
        };
        let sides: Vec<&Side> = std::iter::once(&front).chain(back.as_ref()).collect();
        let pdf = crate::pdf::write(
            &sides
                .iter()
                .map(|s| (&s.tree, s.orientation))
                .collect::<Vec<_>>(),
        )?;
        tracing::debug!(
            layout = %layout.name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "rendered card"
        );
        Ok(RenderedCard {
            front_png,
            back_png,
            pdf,
        })
    }

    /// Only the PDF of a card (one CR80 page per side), for printers that take PDF alone.
    pub fn render_pdf(&self, layout: &Layout, data: &CardData) -> Result<Vec<u8>, PrintError> {
        let front = self
            .side(&layout.front_svg, data)
            .map_err(|e| e.on_side("front"))?;
        let back = match &layout.back_svg {
            Some(svg) => Some(self.side(svg, data).map_err(|e| e.on_side("back"))?),
            None => None,
        };
        let sides: Vec<(&usvg::Tree, Orientation)> = std::iter::once(&front)
            .chain(back.as_ref())
            .map(|s| (&s.tree, s.orientation))
            .collect();
        crate::pdf::write(&sides)
    }

    fn side(&self, svg: &str, data: &CardData) -> Result<Side, PrintError> {
        let filled = self.fill(svg, data)?;
        let tree = usvg::Tree::from_str(&filled, &self.options())
            .map_err(|e| PrintError::Render(e.to_string()))?;
        let orientation = orientation(tree.size())?;
        // What usvg built is what resvg will draw: measured before it is drawn.
        crate::limits::check_tree(&tree, orientation.size_px())?;
        Ok(Side { tree, orientation })
    }

    fn options(&self) -> usvg::Options<'static> {
        usvg::Options {
            resources_dir: None,
            font_family: fonts::FAMILY.to_owned(),
            fontdb: self.fontdb.clone(),
            // The checks already refused anything but inline rasters; this makes sure usvg
            // never opens a file even if a reference slipped through.
            image_href_resolver: ImageHrefResolver {
                resolve_data: Box::new(|mime, data, _| match mime {
                    "image/png" => Some(ImageKind::PNG(data)),
                    "image/jpeg" | "image/jpg" => Some(ImageKind::JPEG(data)),
                    "image/gif" => Some(ImageKind::GIF(data)),
                    "image/webp" => Some(ImageKind::WEBP(data)),
                    _ => None,
                }),
                resolve_string: Box::new(|_, _| None),
            },
            ..usvg::Options::default()
        }
    }
}

impl CardRenderer for SvgRenderer {
    fn render(&self, layout: &Layout, data: &CardData) -> Result<RenderedCard, PortError> {
        self.render_card(layout, data).map_err(|e| {
            tracing::warn!(layout = %layout.name, error = %e, "card rendering failed");
            PortError::from(e)
        })
    }

    fn check(&self, layout: &Layout) -> Result<(), PortError> {
        self.check_layout(layout).map_err(PortError::from)
    }
}

fn photo_uri(data: &CardData) -> Result<Option<String>, PrintError> {
    let Some(photo) = &data.photo else {
        return Ok(None);
    };
    let mime = if photo.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if photo.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else {
        return Err(PrintError::Photo);
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(photo);
    Ok(Some(format!("data:{mime};base64,{b64}")))
}

fn orientation(size: usvg::Size) -> Result<Orientation, PrintError> {
    let (w, h) = (size.width(), size.height());
    let aspect = w / h;
    let cr80 = CR80_WIDTH_MM / CR80_HEIGHT_MM;
    if (aspect / cr80 - 1.0).abs() <= ASPECT_TOLERANCE {
        Ok(Orientation::Landscape)
    } else if (aspect * cr80 - 1.0).abs() <= ASPECT_TOLERANCE {
        Ok(Orientation::Portrait)
    } else {
        let mm = |px: f32| px / CSS_DPI * MM_PER_INCH;
        Err(PrintError::NotCr80 {
            width_mm: mm(w),
            height_mm: mm(h),
        })
    }
}

fn png(side: &Side) -> Result<Vec<u8>, PrintError> {
    let (w, h) = side.orientation.size_px();
    let mut pixmap = tiny_skia::Pixmap::new(w, h)
        .ok_or_else(|| PrintError::Render("cannot allocate the bitmap".into()))?;
    // Card printers treat transparency as "no ink", but not every driver knows that.
    pixmap.fill(tiny_skia::Color::WHITE);
    let size = side.tree.size();
    let transform =
        tiny_skia::Transform::from_scale(w as f32 / size.width(), h as f32 / size.height());
    resvg::render(&side.tree, transform, &mut pixmap.as_mut());
    let png = pixmap
        .encode_png()
        .map_err(|e| PrintError::Render(e.to_string()))?;
    Ok(crate::png::with_dpi(png, DPI))
}

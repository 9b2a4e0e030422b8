//! How much a layout may ask of the renderer: every limit in one place, and the checks that apply
//! them. A layout is checked when it is saved and again every time it is drawn (one saved before a
//! limit existed must not hurt the server either).
//!
//! The renderer underneath (roxmltree, usvg, resvg) trusts its input. Measured before these
//! limits: 4,000 nested `<g>` overflowed a worker's stack (roxmltree's parser and usvg's converter
//! descend recursively), which aborts the whole process; one filter whose region was 200,000
//! units wide made resvg ask for a 223 GB bitmap, which aborts it too; `numOctaves="1000"` drew
//! for minutes, a thousand translucent shapes over the card for 15 s; a huge `stdDeviation`
//! overflowed resvg's box blur. So the checks run in three steps, each before the code it protects:
//!
//! 1. [`scan`] reads the raw text, before any parser: nesting depth and element count, counted
//!    without recursion.
//! 2. [`check_document`] walks the parsed document, again without recursion: elements, depth and
//!    characters of text with every `<use>` and `url(#…)` reference expanded the way usvg expands
//!    them (ten elements that each use the previous one ten times are ten billion), reference
//!    loops, embedded images (bytes and pixel size), `feTurbulence` octaves and
//!    `feConvolveMatrix` orders. Its errors name the line.
//! 3. [`check_tree`] walks the tree usvg built, which is what resvg will draw (styles, units and
//!    transforms resolved), and measures it in pixels at 300 dpi: filter regions and pattern
//!    tiles (bitmaps resvg allocates at whatever size they ask for), blur and morphology radii,
//!    filter primitives, and an estimate of the whole drawing's work.
//!
//! The limits are far above what a card face needs (a side of the Corporate Badge has 44
//! elements, nests 4 deep and needs 2 million pixel operations, about 10 ms), so that only a
//! mistake or an attack meets them; the layout at every limit at once
//! ([`crate::layouts::at_the_limits`]) draws in about a second a side. `docs/layouts.md` lists
//! them for designers.

use crate::error::PrintError;
use base64::Engine as _;
use resvg::usvg::{self, NonZeroRect, Transform};
use roxmltree::{Document, Node};
use std::collections::HashMap;

/// The most bytes one side of a layout may have. A card face is a few kilobytes of vector
/// drawing plus perhaps an embedded logo; anything larger is a mistake or an attack.
pub const MAX_LAYOUT_BYTES: usize = 2 * 1024 * 1024;
/// How deep elements may nest, `<use>` and references followed, the `<svg>` being the first
/// level. Drawings from Inkscape or Illustrator nest 5 to 10 deep; the parsers recurse once per
/// level, and the PDF writer refuses more than 28 nested graphics states (about 25 nested `<g>`).
pub const MAX_DEPTH: u64 = 24;
/// How many elements a side may draw, each `<use>` and each reference to a pattern, clip path,
/// mask, marker or filter counting the elements it copies (a marker once per vertex of the shape,
/// a reference in a `<style>` sheet as if every element made it).
pub const MAX_ELEMENTS: u64 = 10_000;
/// How many characters of text a side may have (copies by `<use>` included). A card face shows a
/// few hundred; laying out text costs more than linear time in usvg.
pub const MAX_TEXT_CHARS: u64 = 5_000;
/// The most bytes one embedded (`data:`) image may have, decoded.
pub const MAX_IMAGE_BYTES: usize = 1024 * 1024;
/// The widest and tallest an embedded image may be, in pixels: three times the card's width at
/// 300 dpi; 9 million pixels (36 MB) once decoded, which the PNG and the PDF each decode.
pub const MAX_IMAGE_SIDE: u64 = 3000;
/// The most octaves an `feTurbulence` may ask for. Each octave halves the amplitude of the last,
/// so the ninth changes a colour by less than one step in 256, and each costs as much as the first.
pub const MAX_TURBULENCE_OCTAVES: u64 = 8;
/// The largest `order` of an `feConvolveMatrix`, in either direction (every pixel reads
/// order x order pixels).
pub const MAX_CONVOLVE_ORDER: u64 = 9;
/// The widest blur (`stdDeviation` of `feGaussianBlur` or `feDropShadow`), in pixels at 300 dpi
/// (100 pixels are 8.5 mm, which blurs a name into a cloud).
pub const MAX_BLUR_PX: f32 = 100.0;
/// The largest `feMorphology` radius, in pixels at 300 dpi (0.85 mm). Every pixel reads
/// (2 x radius)² pixels.
pub const MAX_MORPHOLOGY_RADIUS_PX: f32 = 10.0;
/// How many filter primitives a side may apply, a filter counting once for every element it is
/// applied to.
pub const MAX_FILTER_PRIMITIVES: u64 = 32;
/// The most pixels of one filter region or pattern tile at 300 dpi: four times a landscape card
/// (1011 x 638). resvg allocates these bitmaps at the size asked, unbounded.
pub const MAX_BITMAP_PIXELS: u64 = 4 * 1011 * 638;
/// The most work a side may need, in pixel operations at 300 dpi (one is about 20 ns: a
/// translucent pixel painted; see [`check_tree`] for how the rest is weighed). 64 million is the
/// card covered 100 times over, about 1.3 s.
pub const MAX_DRAWING_WORK: u64 = 64_000_000;

/// A layout that asks more than the limits above allow. Each message names the limit and what
/// the layout asked for.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LimitError {
    #[error("the layout nests elements {found} deep; at most {MAX_DEPTH} levels are allowed")]
    Depth { found: u64 },
    #[error(
        "the layout nests elements {found} deep once <use> and other references are followed; \
         at most {MAX_DEPTH} levels are allowed"
    )]
    ExpandedDepth { found: u64 },
    #[error("the layout has {found} elements; at most {MAX_ELEMENTS} are allowed")]
    Elements { found: u64 },
    #[error(
        "the layout draws {found} elements once <use> and other references are expanded; at \
         most {MAX_ELEMENTS} are allowed"
    )]
    ExpandedElements { found: u64 },
    #[error(
        "the layout has {found} characters of text (copies by <use> included); at most \
         {MAX_TEXT_CHARS} are allowed"
    )]
    Text { found: u64 },
    #[error(
        "line {line}: <{element}> refers to #{target}, which contains it or refers back to it; \
         references may not go round in a loop"
    )]
    ReferenceLoop {
        element: String,
        line: u32,
        target: String,
    },
    #[error(
        "line {line}: <{element}>: the embedded image is {found} bytes; at most \
         {MAX_IMAGE_BYTES} bytes are allowed per image"
    )]
    ImageBytes {
        element: String,
        line: u32,
        found: usize,
    },
    #[error(
        "line {line}: <{element}>: the embedded image is {width} x {height} pixels; at most \
         {MAX_IMAGE_SIDE} x {MAX_IMAGE_SIDE} are allowed"
    )]
    ImageSize {
        element: String,
        line: u32,
        width: u64,
        height: u64,
    },
    #[error("line {line}: <{element}>: the embedded image cannot be read: {reason}")]
    ImageUnreadable {
        element: String,
        line: u32,
        reason: String,
    },
    #[error(
        "line {line}: <feTurbulence> asks for numOctaves=\"{found}\"; at most \
         {MAX_TURBULENCE_OCTAVES} octaves are allowed (more change nothing visible)"
    )]
    Octaves { line: u32, found: String },
    #[error(
        "line {line}: <feConvolveMatrix> has order=\"{found}\"; at most {MAX_CONVOLVE_ORDER} in \
         each direction is allowed"
    )]
    ConvolveOrder { line: u32, found: String },
    #[error(
        "filter \"{filter}\": <{primitive}> blurs by a standard deviation of {} pixels at 300 \
         dpi; at most {MAX_BLUR_PX} pixels are allowed",
        pixels(*.found)
    )]
    Blur {
        filter: String,
        primitive: &'static str,
        found: f32,
    },
    #[error(
        "filter \"{filter}\": <feMorphology> has a radius of {} pixels at 300 dpi; at most \
         {MAX_MORPHOLOGY_RADIUS_PX} pixels are allowed",
        pixels(*.found)
    )]
    MorphologyRadius { filter: String, found: f32 },
    #[error(
        "the layout applies {found} filter primitives (a filter counts once for every element it \
         is applied to); at most {MAX_FILTER_PRIMITIVES} are allowed"
    )]
    FilterPrimitives { found: u64 },
    #[error(
        "filter \"{filter}\" covers {width} x {height} pixels at 300 dpi; a filter region may \
         have at most {MAX_BITMAP_PIXELS} pixels (4 times the card)"
    )]
    FilterRegion {
        filter: String,
        width: u64,
        height: u64,
    },
    #[error(
        "pattern \"{pattern}\" is drawn as a tile of {width} x {height} pixels at 300 dpi; a \
         tile may have at most {MAX_BITMAP_PIXELS} pixels (4 times the card)"
    )]
    PatternTile {
        pattern: String,
        width: u64,
        height: u64,
    },
    #[error(
        "drawing this side takes about {:.1} million pixel operations at 300 dpi; at most {} \
         million are allowed: use fewer or smaller filters, translucent layers and images",
        *.found as f64 / 1e6,
        MAX_DRAWING_WORK / 1_000_000
    )]
    Work { found: u64 },
}

/// A size in pixels for a message: whole pixels, or "more than a million" rather than a number
/// no one can read.
fn pixels(n: f32) -> String {
    if n < 1e6 {
        format!("{}", n.ceil())
    } else {
        "more than a million".into()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The raw text
// ---------------------------------------------------------------------------------------------

/// Counts nesting depth and elements in the raw text, with a loop rather than recursion, so that
/// no parser ever sees a document deeper than [`MAX_DEPTH`] or longer than [`MAX_ELEMENTS`].
///
/// Exact for well-formed XML: comments, CDATA sections, processing instructions and quoted
/// attribute values (which may hold `>`) are skipped. At a `<!DOCTYPE` it stops, because the
/// parser refuses a DOCTYPE before it reads any element after it.
pub fn scan(svg: &str) -> Result<(), LimitError> {
    let b = svg.as_bytes();
    let find = |from: usize, what: &[u8]| {
        b[from..]
            .windows(what.len())
            .position(|w| w == what)
            .map_or(b.len(), |p| from + p + what.len())
    };
    let (mut depth, mut deepest, mut elements) = (0u64, 0u64, 0u64);
    let mut i = 0;
    while let Some(p) = b[i..].iter().position(|&c| c == b'<') {
        let at = i + p;
        let rest = &b[at..];
        if rest.starts_with(b"<!--") {
            i = find(at + 4, b"-->");
        } else if rest.starts_with(b"<![CDATA[") {
            i = find(at + 9, b"]]>");
        } else if rest.starts_with(b"<!") {
            break;
        } else if rest.starts_with(b"<?") {
            i = find(at + 2, b"?>");
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            i = at + 2;
        } else {
            let mut j = at + 1;
            let mut quote = None;
            while j < b.len() {
                match (quote, b[j]) {
                    (None, b'"' | b'\'') => quote = Some(b[j]),
                    (Some(q), c) if c == q => quote = None,
                    (None, b'>') => break,
                    _ => {}
                }
                j += 1;
            }
            elements += 1;
            if b[j - 1] != b'/' {
                depth += 1;
                deepest = deepest.max(depth);
            }
            i = (j + 1).min(b.len());
        }
    }
    if deepest > MAX_DEPTH {
        return Err(LimitError::Depth { found: deepest });
    }
    if elements > MAX_ELEMENTS {
        return Err(LimitError::Elements { found: elements });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. The parsed document
// ---------------------------------------------------------------------------------------------

/// What an element costs with everything it contains and refers to.
#[derive(Clone, Copy, Default)]
struct Totals {
    elements: u64,
    depth: u64,
    text: u64,
}

/// Elements whose content is drawn again wherever they are referenced by `url(#id)`.
const DRAWN_WHERE_REFERENCED: [&str; 5] = ["pattern", "clipPath", "mask", "filter", "marker"];
/// Elements whose `href="#id"` copies (or inherits) the target's content.
const COPIES_ITS_HREF: [&str; 7] = [
    "use",
    "feImage",
    "pattern",
    "linearGradient",
    "radialGradient",
    "filter",
    "textPath",
];

/// Checks the parsed document: the per-element limits (embedded images, turbulence octaves,
/// convolution orders), reference loops, and elements, depth and text with every reference
/// expanded. Iterative: [`scan`] bounded the depth of the document, but not of its references.
pub fn check_document(doc: &Document) -> Result<(), PrintError> {
    let root = doc.root_element();
    let mut ids = HashMap::new();
    let (mut all_elements, mut all_vertices) = (0u64, 0u64);
    for node in root.descendants().filter(Node::is_element) {
        if let Some(id) = node.attribute("id") {
            ids.entry(id).or_insert(node);
        }
        all_elements += 1;
        all_vertices += vertices(node);
        check_element(doc, node)?;
    }
    let references = |node: Node<'_, '_>| -> Vec<(Node<'_, '_>, u64)> {
        let name = node.tag_name().name();
        let mut out = Vec::new();
        // A marker is drawn at every vertex of the shape; a style sheet's reference may apply to
        // every element (or, for a marker, every vertex) of the document.
        let mut by_url = |text: &str, from_sheet: bool| {
            for id in url_fragments(text) {
                let Some(&target) = ids.get(id) else {
                    continue;
                };
                let kind = target.tag_name().name();
                if !DRAWN_WHERE_REFERENCED.contains(&kind) {
                    continue;
                }
                let copies = match (kind == "marker", from_sheet) {
                    (false, false) => 1,
                    (true, false) => vertices(node),
                    (false, true) => all_elements,
                    (true, true) => all_vertices,
                };
                out.push((target, copies));
            }
        };
        if name == "style" {
            let css: String = node.descendants().filter_map(|n| n.text()).collect();
            by_url(&css, true);
        }
        for attr in node.attributes() {
            by_url(attr.value(), false);
        }
        if COPIES_ITS_HREF.contains(&name) {
            let href = node.attributes().find(|a| a.name() == "href");
            if let Some(id) = href.and_then(|a| a.value().trim().strip_prefix('#')) {
                if let Some(&target) = ids.get(id) {
                    out.push((target, 1));
                }
            }
        }
        out
    };

    let len = doc.descendants().count();
    let mut done: Vec<Option<Totals>> = vec![None; len];
    let mut open = vec![false; len];
    let at = |n: Node| n.id().get_usize();
    // (element, its children and references are done)
    let mut stack = vec![(root, false)];
    while let Some((node, ready)) = stack.pop() {
        if done[at(node)].is_some() {
            continue;
        }
        let children = node.children().filter(Node::is_element);
        if !ready {
            open[at(node)] = true;
            stack.push((node, true));
            stack.extend(children.map(|c| (c, false)));
            for (target, _) in references(node) {
                if open[at(target)] {
                    return Err(LimitError::ReferenceLoop {
                        element: node.tag_name().name().to_owned(),
                        line: doc.text_pos_at(node.range().start).row,
                        target: target.attribute("id").unwrap_or_default().to_owned(),
                    }
                    .into());
                }
                stack.push((target, false));
            }
            continue;
        }
        let mut t = Totals {
            elements: 1,
            depth: 0,
            text: own_text(node),
        };
        let parts = children
            .map(|c| (c, 1))
            .chain(references(node))
            .map(|(n, copies)| (done[at(n)].unwrap_or_default(), copies));
        for (part, copies) in parts {
            t.elements = t
                .elements
                .saturating_add(part.elements.saturating_mul(copies));
            t.text = t.text.saturating_add(part.text.saturating_mul(copies));
            t.depth = t.depth.max(part.depth);
        }
        t.depth += 1;
        done[at(node)] = Some(t);
        open[at(node)] = false;
    }
    let t = done[at(root)].unwrap_or_default();
    if t.depth > MAX_DEPTH {
        return Err(LimitError::ExpandedDepth { found: t.depth }.into());
    }
    if t.elements > MAX_ELEMENTS {
        return Err(LimitError::ExpandedElements { found: t.elements }.into());
    }
    if t.text > MAX_TEXT_CHARS {
        return Err(LimitError::Text { found: t.text }.into());
    }
    Ok(())
}

/// The characters a text element shows itself (its `tspan`s count their own).
fn own_text(node: Node) -> u64 {
    if !matches!(node.tag_name().name(), "text" | "tspan" | "textPath") {
        return 0;
    }
    node.children()
        .filter_map(|c| c.text())
        .map(|t| t.chars().filter(|c| !c.is_whitespace()).count() as u64)
        .sum()
}

/// At most how many vertices a shape has, where a marker would be drawn: one per number in its
/// geometry (a vertex takes at least one), plus its two ends.
fn vertices(node: Node) -> u64 {
    let geometry = match node.tag_name().name() {
        "path" => node.attribute("d"),
        "polyline" | "polygon" => node.attribute("points"),
        "line" => return 2,
        _ => return 0,
    };
    count_numbers(geometry.unwrap_or_default()) + 2
}

/// Numbers in SVG path or points syntax, where `1.5.5-2` is three numbers.
fn count_numbers(s: &str) -> u64 {
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        if !(b[i].is_ascii_digit() || matches!(b[i], b'.' | b'-' | b'+')) {
            i += 1;
            continue;
        }
        n += 1;
        if matches!(b[i], b'-' | b'+') {
            i += 1;
        }
        i = digits(i);
        if i < b.len() && b[i] == b'.' {
            i = digits(i + 1);
        }
        if i < b.len() && matches!(b[i], b'e' | b'E') {
            i += 1;
            if i < b.len() && matches!(b[i], b'-' | b'+') {
                i += 1;
            }
            i = digits(i);
        }
    }
    n
}

/// The ids of every `url(#id)` in a value or style sheet.
fn url_fragments(text: &str) -> impl Iterator<Item = &str> {
    text.split("url(").skip(1).filter_map(|after| {
        let inside = &after[..after.find(')').unwrap_or(after.len())];
        inside
            .trim()
            .trim_matches(['"', '\''])
            .trim()
            .strip_prefix('#')
    })
}

/// The limits one element can break on its own: its embedded images and filter parameters.
fn check_element(doc: &Document, node: Node) -> Result<(), LimitError> {
    let line = || doc.text_pos_at(node.range().start).row;
    let name = node.tag_name().name();
    match name {
        "feTurbulence" => {
            if let Some(v) = node.attribute("numOctaves") {
                let octaves = v.trim().parse::<f64>().unwrap_or(f64::INFINITY);
                if octaves > MAX_TURBULENCE_OCTAVES as f64 {
                    return Err(LimitError::Octaves {
                        line: line(),
                        found: v.to_owned(),
                    });
                }
            }
        }
        "feConvolveMatrix" => {
            if let Some(v) = node.attribute("order") {
                let too_large = v
                    .split([' ', ',', '\t', '\n', '\r'])
                    .filter(|s| !s.is_empty())
                    .any(|n| {
                        n.parse::<f64>()
                            .map_or(true, |n| n > MAX_CONVOLVE_ORDER as f64)
                    });
                if too_large {
                    return Err(LimitError::ConvolveOrder {
                        line: line(),
                        found: v.to_owned(),
                    });
                }
            }
        }
        _ => {}
    }
    for attr in node.attributes().filter(|a| a.name() == "href") {
        let Some(bytes) = data_uri(attr.value()) else {
            continue;
        };
        let unreadable = |reason: String| LimitError::ImageUnreadable {
            element: name.to_owned(),
            line: line(),
            reason,
        };
        let bytes = bytes.map_err(unreadable)?;
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(LimitError::ImageBytes {
                element: name.to_owned(),
                line: line(),
                found: bytes.len(),
            });
        }
        let size = imagesize::blob_size(&bytes)
            .map_err(|e| unreadable(format!("{e} (PNG, JPEG, GIF or WebP expected)")))?;
        let (width, height) = (size.width as u64, size.height as u64);
        if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
            return Err(LimitError::ImageSize {
                element: name.to_owned(),
                line: line(),
                width,
                height,
            });
        }
    }
    Ok(())
}

/// The bytes of a `data:` URI (base64 or percent-encoded), `None` for anything else.
fn data_uri(value: &str) -> Option<Result<Vec<u8>, String>> {
    let v = value.trim();
    if !v.get(..5)?.eq_ignore_ascii_case("data:") {
        return None;
    }
    let Some((header, data)) = v.split_once(',') else {
        return Some(Err("the data: URI has no comma before its data".into()));
    };
    if header.to_ascii_lowercase().ends_with(";base64") {
        // Editors wrap long base64 lines, and some leave the padding out.
        let packed: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        return Some(
            lenient
                .decode(packed)
                .map_err(|e| format!("bad base64: {e}")),
        );
    }
    let mut out = Vec::with_capacity(data.len());
    let b = data.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (b[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(Ok(out))
}

// ---------------------------------------------------------------------------------------------
// 3. The tree usvg built
// ---------------------------------------------------------------------------------------------

/// Measures the drawing resvg is about to make of `tree` on a `width` x `height` pixel card, the
/// way resvg draws it, and checks the result against the limits.
///
/// Work is counted in pixel operations, one being a translucent pixel painted (about 20 ns):
/// - a shape: the pixels of its box for its fill and again for its stroke;
/// - a group drawn on its own layer (opacity, blend mode, clip path, mask, filter): the layer's
///   pixels, once more for a clip path or mask;
/// - a filter: its region's pixels times the weight of each primitive (2 for the simple ones,
///   8 for a blur, 2 + 4 per octave of turbulence, 1 + half the pixels read by a morphology or
///   convolution, 16 for lighting), measured from resvg's own timings;
/// - a pattern: its tile's pixels (it is drawn again for every shape it fills);
/// - an image: 4 per pixel decoded (once for the PNG, once for the PDF, which also compresses
///   it) and 2 per pixel drawn.
pub fn check_tree(tree: &usvg::Tree, (width, height): (u32, u32)) -> Result<(), LimitError> {
    let size = tree.size();
    let canvas = Transform::from_scale(width as f32 / size.width(), height as f32 / size.height());
    let (w, h) = (width as f64, height as f64);
    let card = Box2::new(0.0, 0.0, w, h);
    let mut m = Meter {
        // resvg clips a layer to this box around the card, and nothing else it allocates.
        layer_limit: Box2::new(-2.0 * w, -2.0 * h, 3.0 * w, 3.0 * h),
        work: 0.0,
        primitives: 0,
        todo: Vec::new(),
    };
    m.todo.push((tree.root(), canvas, card));
    while let Some((group, ts, bounds)) = m.todo.pop() {
        for node in group.children() {
            match node {
                usvg::Node::Group(g) => m.group(g, ts, bounds)?,
                usvg::Node::Text(t) => m.group(t.flattened(), ts, bounds)?,
                usvg::Node::Path(p) => m.path(p, ts, bounds)?,
                usvg::Node::Image(i) => m.image(i, ts, bounds),
            }
        }
    }
    if m.primitives > MAX_FILTER_PRIMITIVES {
        return Err(LimitError::FilterPrimitives {
            found: m.primitives,
        });
    }
    if m.work > MAX_DRAWING_WORK as f64 {
        return Err(LimitError::Work {
            found: m.work as u64,
        });
    }
    Ok(())
}

/// An axis-aligned box in pixels.
#[derive(Clone, Copy)]
struct Box2 {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Box2 {
    fn new(x0: f64, y0: f64, x1: f64, y1: f64) -> Self {
        Self { x0, y0, x1, y1 }
    }

    /// The box around `(x, y, width, height)` once transformed.
    fn of(x: f32, y: f32, width: f32, height: f32, ts: Transform) -> Self {
        let corners = [
            (x, y),
            (x + width, y),
            (x, y + height),
            (x + width, y + height),
        ];
        let mut b = Self::new(f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for (cx, cy) in corners {
            let px = (ts.sx * cx + ts.kx * cy + ts.tx) as f64;
            let py = (ts.ky * cx + ts.sy * cy + ts.ty) as f64;
            b = Self::new(b.x0.min(px), b.y0.min(py), b.x1.max(px), b.y1.max(py));
        }
        b
    }

    fn of_rect(r: NonZeroRect, ts: Transform) -> Self {
        Self::of(r.x(), r.y(), r.width(), r.height(), ts)
    }

    fn and(self, o: Self) -> Self {
        Self::new(
            self.x0.max(o.x0),
            self.y0.max(o.y0),
            self.x1.min(o.x1),
            self.y1.min(o.y1),
        )
    }

    fn width(self) -> f64 {
        (self.x1 - self.x0).max(0.0)
    }

    fn height(self) -> f64 {
        (self.y1 - self.y0).max(0.0)
    }

    fn pixels(self) -> f64 {
        self.width().ceil() * self.height().ceil()
    }
}

/// What [`check_tree`] has counted so far, and the groups it has still to visit (a stack rather
/// than recursion, like the other checks).
struct Meter<'a> {
    layer_limit: Box2,
    work: f64,
    primitives: u64,
    /// (group whose children are to be drawn, transform to pixels, box they are clipped to)
    todo: Vec<(&'a usvg::Group, Transform, Box2)>,
}

impl<'a> Meter<'a> {
    fn group(&mut self, g: &'a usvg::Group, ts: Transform, bounds: Box2) -> Result<(), LimitError> {
        let ts = ts.pre_concat(g.transform());
        if !g.should_isolate() {
            self.todo.push((g, ts, bounds));
            return Ok(());
        }
        let layer = Box2::of_rect(g.layer_bounding_box(), ts).and(self.layer_limit);
        self.work += layer.pixels();
        for filter in g.filters() {
            self.filter(filter, ts, layer)?;
        }
        let mut clip = g.clip_path();
        while let Some(c) = clip {
            self.work += layer.pixels();
            self.todo
                .push((c.root(), ts.pre_concat(c.transform()), layer));
            clip = c.clip_path();
        }
        let mut mask = g.mask();
        while let Some(m) = mask {
            self.work += 2.0 * layer.pixels();
            self.todo.push((m.root(), ts, layer));
            mask = m.mask();
        }
        self.todo.push((g, ts, layer));
        Ok(())
    }

    fn filter(
        &mut self,
        filter: &'a usvg::filter::Filter,
        ts: Transform,
        layer: Box2,
    ) -> Result<(), LimitError> {
        let region = Box2::of_rect(filter.rect(), ts);
        if region.pixels() > MAX_BITMAP_PIXELS as f64 {
            return Err(LimitError::FilterRegion {
                filter: filter.id().to_owned(),
                width: region.width().ceil() as u64,
                height: region.height().ceil() as u64,
            });
        }
        let (sx, sy) = ts.get_scale();
        let blur = |primitive, x: usvg::PositiveF32, y: usvg::PositiveF32| {
            let found = (x.get() * sx).max(y.get() * sy);
            if found > MAX_BLUR_PX {
                return Err(LimitError::Blur {
                    filter: filter.id().to_owned(),
                    primitive,
                    found,
                });
            }
            Ok(())
        };
        let mut weight = 0.0;
        for primitive in filter.primitives() {
            use usvg::filter::Kind;
            self.primitives += 1;
            weight += match primitive.kind() {
                Kind::GaussianBlur(fe) => {
                    blur("feGaussianBlur", fe.std_dev_x(), fe.std_dev_y())?;
                    8.0
                }
                Kind::DropShadow(fe) => {
                    blur("feDropShadow", fe.std_dev_x(), fe.std_dev_y())?;
                    12.0
                }
                Kind::Morphology(fe) => {
                    let (rx, ry) = (fe.radius_x().get() * sx, fe.radius_y().get() * sy);
                    if rx.max(ry) > MAX_MORPHOLOGY_RADIUS_PX {
                        return Err(LimitError::MorphologyRadius {
                            filter: filter.id().to_owned(),
                            found: rx.max(ry),
                        });
                    }
                    1.0 + (2.0 * rx.ceil() as f64) * (2.0 * ry.ceil() as f64) / 2.0
                }
                Kind::ConvolveMatrix(fe) => {
                    let m = fe.matrix();
                    1.0 + (m.columns() as f64) * (m.rows() as f64) / 2.0
                }
                Kind::Turbulence(fe) => 2.0 + 4.0 * fe.num_octaves().min(1 << 20) as f64,
                Kind::DiffuseLighting(_) | Kind::SpecularLighting(_) => 16.0,
                Kind::Image(fe) => {
                    self.todo.push((fe.root(), ts, region.and(layer)));
                    2.0
                }
                _ => 2.0,
            };
        }
        self.work += region.pixels() * weight;
        Ok(())
    }

    fn path(&mut self, p: &'a usvg::Path, ts: Transform, bounds: Box2) -> Result<(), LimitError> {
        if !p.is_visible() {
            return Ok(());
        }
        if let Some(fill) = p.fill() {
            let b = p.bounding_box();
            self.work += Box2::of(b.x(), b.y(), b.width(), b.height(), ts)
                .and(bounds)
                .pixels();
            self.paint(fill.paint(), ts)?;
        }
        if let Some(stroke) = p.stroke() {
            let b = p.stroke_bounding_box();
            self.work += Box2::of(b.x(), b.y(), b.width(), b.height(), ts)
                .and(bounds)
                .pixels();
            self.paint(stroke.paint(), ts)?;
        }
        Ok(())
    }

    /// A pattern is drawn into a tile of its own, at the scale it is shown, for every shape.
    fn paint(&mut self, paint: &'a usvg::Paint, ts: Transform) -> Result<(), LimitError> {
        let usvg::Paint::Pattern(pattern) = paint else {
            return Ok(());
        };
        let (sx, sy) = ts.pre_concat(pattern.transform()).get_scale();
        let r = pattern.rect();
        let (width, height) = (
            (r.width() * sx).round() as f64,
            (r.height() * sy).round() as f64,
        );
        if width * height > MAX_BITMAP_PIXELS as f64 {
            return Err(LimitError::PatternTile {
                pattern: pattern.id().to_owned(),
                width: width as u64,
                height: height as u64,
            });
        }
        self.work += width * height;
        self.todo.push((
            pattern.root(),
            Transform::from_scale(sx, sy),
            Box2::new(0.0, 0.0, width, height),
        ));
        Ok(())
    }

    fn image(&mut self, i: &usvg::Image, ts: Transform, bounds: Box2) {
        if !i.is_visible() {
            return;
        }
        let decoded = match i.kind() {
            usvg::ImageKind::PNG(d)
            | usvg::ImageKind::JPEG(d)
            | usvg::ImageKind::GIF(d)
            | usvg::ImageKind::WEBP(d) => imagesize::blob_size(d)
                .map(|s| s.width as f64 * s.height as f64)
                .unwrap_or(0.0),
            // Refused by the layout checks (an SVG inside would have escaped them).
            usvg::ImageKind::SVG(_) => 0.0,
        };
        let s = i.size();
        let drawn = Box2::of(0.0, 0.0, s.width(), s.height(), ts).and(bounds);
        self.work += 4.0 * decoded + 2.0 * drawn.pixels();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_counts_what_the_parser_will_see() {
        let doc = |body: &str| format!("<svg>{body}</svg>");
        assert_eq!(scan(&doc("<g><rect/></g>")), Ok(()));
        let deep = doc(&format!("{}{}", "<g>".repeat(30), "</g>".repeat(30)));
        assert_eq!(scan(&deep), Err(LimitError::Depth { found: 31 }));
        // Self-closing tags do not nest; closing tags end a level.
        assert_eq!(scan(&doc(&"<g></g><rect/>".repeat(100))), Ok(()));
        // Neither do tags inside comments, CDATA, processing instructions or quoted values.
        let hidden = "<g>".repeat(30);
        for body in [
            format!("<!--{hidden}-->"),
            format!("<![CDATA[{hidden}]]>"),
            format!("<?pi {hidden}?>"),
            format!("<g data-x=\"{}\"/>", ">".repeat(30)),
        ] {
            assert_eq!(scan(&doc(&body)), Ok(()), "{body}");
        }
        let many = doc(&"<rect/>".repeat(MAX_ELEMENTS as usize));
        assert_eq!(
            scan(&many),
            Err(LimitError::Elements {
                found: MAX_ELEMENTS + 1
            })
        );
    }

    #[test]
    fn numbers_and_references_are_found() {
        assert_eq!(count_numbers("M0 0L10,10 20-5.5.5e-3"), 7);
        assert_eq!(count_numbers(""), 0);
        assert_eq!(vertices_of("<path d='M1 2 3 4'/>"), 6);
        let ids: Vec<_> = url_fragments("fill:url(#a); stroke: url( '#b' ) url(data:x)").collect();
        assert_eq!(ids, ["a", "b"]);
    }

    fn vertices_of(xml: &str) -> u64 {
        let doc = Document::parse(xml).unwrap();
        vertices(doc.root_element())
    }

    #[test]
    fn data_uris_decode_like_usvg_decodes_them() {
        assert_eq!(data_uri("#frag"), None);
        assert_eq!(
            data_uri("data:image/png;base64,aGk="),
            Some(Ok(b"hi".to_vec()))
        );
        assert_eq!(
            data_uri("data:image/png;base64,aG\n k"),
            Some(Ok(b"hi".to_vec()))
        );
        assert_eq!(data_uri("data:image/png,h%69"), Some(Ok(b"hi".to_vec())));
        assert!(matches!(data_uri("data:image/png;base64,!!"), Some(Err(_))));
        assert!(matches!(data_uri("data:nocomma"), Some(Err(_))));
    }
}

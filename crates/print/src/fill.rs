//! Checks a layout side and fills its bindings, producing the SVG that is then drawn.
//!
//! The layout is parsed with `roxmltree` (which refuses any DOCTYPE, so no entity can expand) and
//! written out again element by element. Writing it ourselves rather than splicing strings means
//! every value that comes from a user record passes through one escaping function: a name such as
//! `<b>&"O'Brien"` becomes text on the card, never markup. Elements and attributes outside the SVG
//! and XLink namespaces (Inkscape's and Sodipodi's editor state, RDF metadata), comments and
//! processing instructions are dropped on the way.

use crate::barcode;
use crate::error::PrintError;
use crate::limits::{self, MAX_LAYOUT_BYTES};
use roxmltree::{Document, Node, ParsingOptions};
use std::collections::BTreeMap;
use tessera_core::template;

const SVG_NS: &str = "http://www.w3.org/2000/svg";
const XLINK_NS: &str = "http://www.w3.org/1999/xlink";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Below this share of the designed size a bound text is squeezed horizontally instead of shrunk
/// further, so that a very long name stays readable.
const MIN_FIT_SCALE: f32 = 0.6;

/// What the bindings of one side are filled with.
pub struct Bindings<'a> {
    pub fields: &'a BTreeMap<String, String>,
    /// The holder's photo as a `data:` URI, if there is one.
    pub photo_uri: Option<&'a str>,
}

/// Parses and checks one side of a layout: size, well-formedness, no DTD, an SVG root, nothing
/// that could run code or reach outside the document, and nothing that asks more of the renderer
/// than [`crate::limits`] allows.
pub fn check(svg: &str) -> Result<Document<'_>, PrintError> {
    if svg.len() > MAX_LAYOUT_BYTES {
        return Err(PrintError::TooLarge { bytes: svg.len() });
    }
    // Before the parser, which recurses once per level of nesting.
    limits::scan(svg)?;
    let options = ParsingOptions {
        allow_dtd: false,
        // The scan bounded the elements; this bounds text and other nodes between them.
        nodes_limit: 200_000,
    };
    let doc = Document::parse_with_options(svg, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => PrintError::Doctype,
        e => {
            let pos = e.pos();
            PrintError::Malformed {
                line: pos.row,
                column: pos.col,
                message: e.to_string(),
            }
        }
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "svg" || root.tag_name().namespace() != Some(SVG_NS) {
        return Err(PrintError::NotSvg {
            element: root.tag_name().name().to_owned(),
        });
    }
    for node in root.descendants().filter(Node::is_element) {
        check_element(&doc, node)?;
    }
    limits::check_document(&doc)?;
    Ok(doc)
}

fn check_element(doc: &Document, node: Node) -> Result<(), PrintError> {
    let name = node.tag_name().name();
    let forbidden = |reason: String| PrintError::Forbidden {
        element: name.to_owned(),
        line: line_of(doc, node),
        reason,
    };
    match name {
        "script" => return Err(forbidden("scripts never run on a card face".into())),
        "foreignObject" => {
            return Err(forbidden("foreign (HTML) content cannot be printed".into()))
        }
        "style" => {
            let css: String = node.descendants().filter_map(|n| n.text()).collect();
            if css.contains("@import") {
                return Err(forbidden("style sheets may not @import".into()));
            }
            check_urls(&css).map_err(&forbidden)?;
        }
        _ => {}
    }
    for attr in node.attributes() {
        let value = attr.value();
        if attr.name().starts_with("on") {
            return Err(forbidden(format!(
                "event handler attribute {} (scripts never run on a card face)",
                attr.name()
            )));
        }
        if attr.name() == "href" && !is_local_reference(value) {
            return Err(forbidden(format!(
                "external reference {value:?}: only data: images and #fragments are allowed"
            )));
        }
        check_urls(value).map_err(&forbidden)?;
    }
    Ok(())
}

/// `#fragment` or an inline raster image. Inline SVG images are refused too: they would be a
/// second document that escaped these checks.
fn is_local_reference(value: &str) -> bool {
    let v = value.trim();
    if v.starts_with('#') {
        return true;
    }
    let lower = v.get(..16).unwrap_or(v).to_ascii_lowercase();
    [
        "data:image/png",
        "data:image/jpeg",
        "data:image/jpg",
        "data:image/gif",
        "data:image/webp",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
}

/// Every `url(...)` in a value or style sheet must point inside the document.
fn check_urls(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(start) = rest.find("url(") {
        let after = &rest[start + 4..];
        let end = after.find(')').unwrap_or(after.len());
        let target = after[..end].trim().trim_matches(['"', '\'']).trim();
        if !is_local_reference(target) {
            return Err(format!(
                "external reference url({target}): only data: images and #fragments are allowed"
            ));
        }
        rest = &after[end..];
    }
    Ok(())
}

fn line_of(doc: &Document, node: Node) -> u32 {
    doc.text_pos_at(node.range().start).row
}

/// Checks `svg` and returns it with every binding filled.
pub fn fill(svg: &str, bindings: &Bindings) -> Result<String, PrintError> {
    let doc = check(svg)?;
    let mut w = Writer {
        doc: &doc,
        bindings,
        out: String::with_capacity(svg.len() + bindings.photo_uri.map_or(0, str::len) + 1024),
    };
    w.element(doc.root_element(), true)?;
    Ok(w.out)
}

struct Writer<'a> {
    doc: &'a Document<'a>,
    bindings: &'a Bindings<'a>,
    out: String,
}

impl Writer<'_> {
    fn expand(&self, text: &str) -> String {
        strip_controls(template::expand(text, self.bindings.fields))
    }

    fn apply(&self, expression: &str) -> String {
        strip_controls(template::apply(expression, self.bindings.fields))
    }

    fn slot_error(&self, node: Node, message: impl Into<String>) -> PrintError {
        PrintError::Slot {
            element: node.tag_name().name().to_owned(),
            line: line_of(self.doc, node),
            message: message.into(),
        }
    }

    fn element(&mut self, node: Node, root: bool) -> Result<(), PrintError> {
        if node.tag_name().namespace() != Some(SVG_NS) {
            return Ok(());
        }
        if let Some(condition) = node.attribute("data-if") {
            if self.apply(condition).trim().is_empty() {
                return Ok(());
            }
        }
        let name = node.tag_name().name();
        if name == "image" && node.attribute("data-bind") == Some("photo") {
            return self.photo(node);
        }
        if name == "rect" && node.has_attribute("data-barcode") {
            return self.barcode(node);
        }
        if name == "rect" && node.has_attribute("data-qr") {
            return self.qr(node);
        }

        self.out.push('<');
        self.out.push_str(name);
        if root {
            self.out.push_str(" xmlns=\"");
            self.out.push_str(SVG_NS);
            self.out.push_str("\" xmlns:xlink=\"");
            self.out.push_str(XLINK_NS);
            self.out.push('"');
        }
        let fitted = if name == "text" {
            self.fit(node)?
        } else {
            Vec::new()
        };
        self.attributes(node, |n| fitted.iter().any(|(f, _)| *f == n));
        for (attr, value) in &fitted {
            self.attribute(attr, value);
        }
        let mut children = node.children().filter(|c| c.is_element() || c.is_text());
        if children.clone().next().is_none() {
            self.out.push_str("/>");
            return Ok(());
        }
        self.out.push('>');
        for child in children.by_ref() {
            if child.is_text() {
                let text = self.expand(child.text().unwrap_or(""));
                escape_into(&mut self.out, &text, false);
            } else {
                self.element(child, false)?;
            }
        }
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        Ok(())
    }

    /// Writes the attributes of `node` that carry over, with bindings in their values filled.
    /// `skip` names attributes the caller writes itself.
    fn attributes(&mut self, node: Node, skip: impl Fn(&str) -> bool) {
        for attr in node.attributes() {
            let prefix = match attr.namespace() {
                None => "",
                Some(XLINK_NS) => "xlink:",
                Some(XML_NS) => "xml:",
                Some(_) => continue,
            };
            if attr.name().starts_with("data-") || skip(attr.name()) {
                continue;
            }
            let value = self.expand(attr.value());
            self.attribute(&format!("{prefix}{}", attr.name()), &value);
        }
    }

    fn attribute(&mut self, name: &str, value: &str) {
        self.out.push(' ');
        self.out.push_str(name);
        self.out.push_str("=\"");
        escape_into(&mut self.out, value, true);
        self.out.push('"');
    }

    /// `<image data-bind="photo">`: the holder's photo, cropped to fill the slot. Without a photo
    /// the element is left out, so whatever the layout draws beneath it shows.
    fn photo(&mut self, node: Node) -> Result<(), PrintError> {
        let Some(uri) = self.bindings.photo_uri else {
            return Ok(());
        };
        self.out.push_str("<image");
        self.attributes(node, |n| matches!(n, "href" | "preserveAspectRatio"));
        self.attribute("preserveAspectRatio", "xMidYMid slice");
        self.attribute("xlink:href", uri);
        self.out.push_str("/>");
        Ok(())
    }

    /// `<rect data-barcode="code128|pdf417" data-bind="...">`: Code 128 bars of the bound value,
    /// quiet zones included, stretched over the rectangle on a white ground; or a PDF417 symbol
    /// shaped for the rectangle, centred (`data-ec-level` sets its error correction level).
    fn barcode(&mut self, node: Node) -> Result<(), PrintError> {
        let kind = node.attribute("data-barcode").unwrap_or_default();
        let pdf417 = kind.eq_ignore_ascii_case("pdf417");
        if !pdf417 && !kind.eq_ignore_ascii_case("code128") {
            return Err(self.slot_error(
                node,
                format!(
                    "unknown barcode {kind:?}; this renderer draws code128 and pdf417 (and data-qr)"
                ),
            ));
        }
        let expression = node
            .attribute("data-bind")
            .ok_or_else(|| self.slot_error(node, "a barcode needs data-bind=\"field\""))?;
        let rect = self.rect(node)?;
        let level = match node.attribute("data-ec-level") {
            Some(l) if pdf417 => Some(
                l.trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= 8)
                    .ok_or_else(|| self.slot_error(node, "data-ec-level must be 0 to 8"))?,
            ),
            _ => None,
        };
        let value = self.apply(expression);
        if value.is_empty() {
            return Ok(());
        }
        let color = node.attribute("data-color").unwrap_or("#000");
        let path = if pdf417 {
            barcode::pdf417_path(&value, rect, color, level)
        } else {
            barcode::code128_path(&value, rect, color)
        }
        .map_err(|e| self.slot_error(node, e.to_string()))?;
        self.group(node, &path);
        Ok(())
    }

    /// `<rect data-qr="field">`: a QR code of the bound value, square, centred in the rectangle.
    fn qr(&mut self, node: Node) -> Result<(), PrintError> {
        let expression = node.attribute("data-qr").unwrap_or_default();
        let rect = self.rect(node)?;
        let value = self.apply(expression);
        if value.is_empty() {
            return Ok(());
        }
        let color = node.attribute("data-color").unwrap_or("#000");
        let path = barcode::qr_path(&value, rect, color)
            .map_err(|e| self.slot_error(node, e.to_string()))?;
        self.group(node, &path);
        Ok(())
    }

    /// Wraps generated drawing in a group that keeps the slot's transform and id.
    fn group(&mut self, node: Node, inner: &str) {
        self.out.push_str("<g");
        for attr in ["id", "transform", "opacity"] {
            if let Some(v) = node.attribute(attr) {
                self.attribute(attr, v);
            }
        }
        self.out.push('>');
        self.out.push_str(inner);
        self.out.push_str("</g>");
    }

    fn rect(&self, node: Node) -> Result<barcode::Rect, PrintError> {
        let number = |attr: &str, default: Option<f32>| -> Result<f32, PrintError> {
            match node.attribute(attr) {
                None => default.ok_or_else(|| self.slot_error(node, format!("{attr} is missing"))),
                Some(v) => v
                    .trim()
                    .trim_end_matches("px")
                    .parse::<f32>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| {
                        self.slot_error(
                            node,
                            format!("{attr}={v:?} must be a plain number in user units"),
                        )
                    }),
            }
        };
        let rect = barcode::Rect {
            x: number("x", Some(0.0))?,
            y: number("y", Some(0.0))?,
            width: number("width", None)?,
            height: number("height", None)?,
        };
        if rect.width <= 0.0 || rect.height <= 0.0 {
            return Err(self.slot_error(node, "width and height must be positive"));
        }
        Ok(rect)
    }

    /// `<text data-fit="W">`: if the filled text is wider than `W` user units at its font size,
    /// the size shrinks until it fits (down to `MIN_FIT_SCALE`), then the glyphs are squeezed.
    /// Returns the attributes to write instead of the layout's own.
    fn fit(&self, node: Node) -> Result<Vec<(&'static str, String)>, PrintError> {
        let Some(max) = node.attribute("data-fit") else {
            return Ok(Vec::new());
        };
        let max: f32 = max
            .trim()
            .parse()
            .ok()
            .filter(|m: &f32| *m > 0.0)
            .ok_or_else(|| self.slot_error(node, "data-fit must be a positive width"))?;
        let inherited = |attr: &str| node.ancestors().find_map(|n| n.attribute(attr));
        let Some(size) = inherited("font-size")
            .and_then(|s| s.trim().trim_end_matches("px").parse::<f32>().ok())
        else {
            return Err(self.slot_error(node, "data-fit needs a numeric font-size attribute"));
        };
        let bold = matches!(
            inherited("font-weight").map(str::trim),
            Some("bold" | "bolder" | "600" | "700" | "800" | "900")
        );
        let text: String = node
            .descendants()
            .filter(|n| n.is_text())
            .map(|n| self.expand(n.text().unwrap_or("")))
            .collect();
        let width = crate::fonts::text_width(text.trim(), size, bold);
        if width <= max {
            return Ok(Vec::new());
        }
        let scale = (max / width).max(MIN_FIT_SCALE);
        let mut attrs = vec![("font-size", fmt_num(size * scale))];
        if width * scale > max {
            attrs.push(("textLength", fmt_num(max)));
            attrs.push(("lengthAdjust", "spacingAndGlyphs".to_owned()));
        }
        Ok(attrs)
    }
}

/// XML 1.0 cannot carry most control characters; a stray one in a directory record must not make
/// the whole face unprintable.
fn strip_controls(s: String) -> String {
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        s.chars()
            .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
            .collect()
    } else {
        s
    }
}

fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// A number for SVG: at most four decimals, no trailing zeros.
pub(crate) fn fmt_num(n: f32) -> String {
    let s = format!("{n:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

//! The renderer from the outside: bindings, slots, output sizes, hostile layouts, the demo layout.

use resvg::tiny_skia::Pixmap;
use std::collections::BTreeMap;
use tessera_core::ids::LayoutId;
use tessera_core::model::Layout;
use tessera_core::ports::{CardData, CardRenderer};
use tessera_print::{
    corporate_badge, png_dimensions, portrait_png, PrintError, SvgRenderer, MAX_LAYOUT_BYTES,
};

const HEAD: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="85.6mm" height="53.98mm" viewBox="0 0 85.6 53.98">"#;

fn side(body: &str) -> String {
    format!("{HEAD}\n{body}\n</svg>")
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn jane() -> CardData {
    CardData {
        fields: fields(&[
            ("user.uid", "jdoe"),
            ("user.display_name", "Jane Doe"),
            ("user.title", "Senior Security Engineer"),
            ("user.department", "Information Security"),
            ("user.employee_id", "E-10042"),
            ("device.serial", "31337042"),
            ("device.expires_on", "2027-11-24"),
        ]),
        // The demo's Jane Doe: a woman of 41.
        photo: Some(
            tessera_print::portrait::Sitter {
                seed: 1,
                gender: tessera_print::portrait::Gender::Female,
                age: 41,
            }
            .png(),
        ),
    }
}

fn layout(front: String, back: Option<String>) -> Layout {
    Layout {
        id: LayoutId::new("test"),
        name: "Test".into(),
        description: String::new(),
        front_svg: front,
        back_svg: back,
        allowed_groups: Vec::new(),
        default_for_groups: Vec::new(),
        version: 1,
    }
}

fn text_of(svg: &str, id: &str) -> String {
    let doc = roxmltree::Document::parse(svg).expect("the filled SVG is well-formed");
    let node = doc
        .descendants()
        .find(|n| n.attribute("id") == Some(id))
        .unwrap_or_else(|| panic!("no element #{id} in {svg}"));
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

#[test]
fn bindings_are_filled_and_user_text_stays_text() {
    let nasty = r#"<b>&"O'Brien"</b>"#;
    let rtl = "מנהלת אבטחת מידע";
    let data = CardData {
        fields: fields(&[
            ("user.display_name", nasty),
            ("user.title", rtl),
            ("device.expires_on", "2027-11-24"),
        ]),
        photo: None,
    };
    let svg = side(
        r#"<text id="name" x="5" y="10" font-size="4" aria-label="Card of {{user.display_name}}">{{user.display_name}}</text>
<text id="upper" x="5" y="16" font-size="3">{{ user.display_name | upper }}</text>
<text id="title" x="5" y="22" font-size="3" direction="rtl">{{user.title}}</text>
<text id="exp" x="5" y="28" font-size="3">Expires {{device.expires_on | date:%d %b %Y}}</text>"#,
    );
    let r = SvgRenderer::new();
    let filled = r.fill(&svg, &data).unwrap();

    // Escaped in the markup...
    assert!(filled.contains("&lt;b&gt;&amp;"), "{filled}");
    assert!(!filled.contains("<b>"), "user text became markup: {filled}");
    assert!(
        filled.contains(r#"aria-label="Card of &lt;b&gt;&amp;&quot;O&apos;Brien&quot;&lt;/b&gt;""#)
    );
    // ...and read back as exactly the user's text.
    assert_eq!(text_of(&filled, "name"), nasty);
    assert_eq!(text_of(&filled, "upper"), nasty.to_uppercase());
    assert_eq!(text_of(&filled, "title"), rtl);
    assert_eq!(text_of(&filled, "exp"), "Expires 24 Nov 2027");

    // And it draws.
    let png = r.render_png(&svg, &data).unwrap();
    assert_eq!(png_dimensions(&png), Some((1011, 638)));
}

#[test]
fn control_characters_in_user_data_do_not_break_the_document() {
    let data = CardData {
        fields: fields(&[("user.display_name", "Jane\u{0}\u{1b} Doe")]),
        photo: None,
    };
    let svg = side(r#"<text id="n" x="5" y="10" font-size="4">{{user.display_name}}</text>"#);
    let filled = SvgRenderer::new().fill(&svg, &data).unwrap();
    assert_eq!(text_of(&filled, "n"), "Jane Doe");
}

#[test]
fn data_if_removes_elements_bound_to_empty_fields() {
    let svg = side(
        r#"<g id="t" data-if="user.title"><text x="5" y="10" font-size="3">Title: {{user.title}}</text></g>
<text id="d" data-if="user.department" x="5" y="20" font-size="3">{{user.department}}</text>
<text id="always" x="5" y="30" font-size="3">x</text>"#,
    );
    let r = SvgRenderer::new();
    let without = r
        .fill(
            &svg,
            &CardData {
                fields: fields(&[("user.department", "")]),
                photo: None,
            },
        )
        .unwrap();
    assert!(!without.contains(r#"id="t""#));
    assert!(!without.contains(r#"id="d""#));
    assert!(without.contains(r#"id="always""#));
    assert!(!without.contains("data-if"));

    let with = r
        .fill(
            &svg,
            &CardData {
                fields: fields(&[("user.title", "CISO"), ("user.department", "Security")]),
                photo: None,
            },
        )
        .unwrap();
    assert_eq!(text_of(&with, "t"), "Title: CISO");
    assert_eq!(text_of(&with, "d"), "Security");
}

#[test]
fn photo_slot_gets_the_photo_cropped_to_fill() {
    let svg = side(
        r##"<image id="p" data-bind="photo" x="4" y="4" width="20" height="26" href="#old"/>"##,
    );
    let r = SvgRenderer::new();
    let filled = r.fill(&svg, &jane()).unwrap();
    let doc = roxmltree::Document::parse(&filled).unwrap();
    let image = doc.descendants().find(|n| n.has_tag_name("image")).unwrap();
    assert_eq!(
        image.attribute("preserveAspectRatio"),
        Some("xMidYMid slice")
    );
    let href = image
        .attribute(("http://www.w3.org/1999/xlink", "href"))
        .unwrap();
    assert!(href.starts_with("data:image/png;base64,iVBOR"));
    assert_eq!(
        image.attribute("href"),
        None,
        "the layout's own href is replaced"
    );

    // Without a photo the slot is left out; a non-image photo is an error.
    let none = r.fill(&svg, &CardData::default()).unwrap();
    assert!(!none.contains("<image"));
    let bad = CardData {
        fields: BTreeMap::new(),
        photo: Some(b"GIF89a....".to_vec()),
    };
    assert_eq!(r.fill(&svg, &bad), Err(PrintError::Photo));
}

#[test]
fn barcode_slot_becomes_code128_bars() {
    let svg = side(
        r##"<rect id="bc" data-barcode="code128" data-bind="user.employee_id" x="10" y="20" width="40" height="10" fill="#eee"/>"##,
    );
    let r = SvgRenderer::new();
    let filled = r.fill(&svg, &jane()).unwrap();
    assert!(!filled.contains("data-barcode"));
    let doc = roxmltree::Document::parse(&filled).unwrap();
    let group = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("bc"))
        .unwrap();
    assert!(group.has_tag_name("g"));
    let path = group
        .descendants()
        .find(|n| n.has_tag_name("path"))
        .unwrap();
    // One sub-path per bar: start B, 7 characters, check symbol (3 bars each) and stop (4 bars).
    let code = tessera_print::code128::Code128::encode("E-10042").unwrap();
    let bars = path.attribute("d").unwrap().matches('M').count();
    assert_eq!(bars, 9 * 3 + 4);
    assert_eq!(bars, code.bars().len());
    // Bars are stretched over the slot: x scale = width / modules.
    let transform = path.attribute("transform").unwrap();
    let expected = 40.0 / code.total_modules() as f32;
    let scale: f32 = transform["matrix(".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((scale - expected).abs() < 1e-5, "{transform}");

    // Pixels: bars are dark in the middle of the slot, the quiet zone is white.
    let png = r.render_png(&svg, &jane()).unwrap();
    let pixmap = Pixmap::decode_png(&png).unwrap();
    let px_per_mm = 1011.0 / 85.6;
    let y = (25.0 * px_per_mm) as u32;
    let quiet = (10.3 * px_per_mm) as u32;
    assert_eq!(pixmap.pixel(quiet, y).unwrap().red(), 255);
    let dark = (((10.0 * px_per_mm) as u32)..((50.0 * px_per_mm) as u32))
        .filter(|&x| pixmap.pixel(x, y).unwrap().red() < 64)
        .count();
    assert!(dark > 100, "only {dark} dark pixels across the barcode");
}

#[test]
fn barcode_of_unencodable_value_names_the_element() {
    let svg = side(
        r#"<rect data-barcode="code128" data-bind="user.employee_id" x="10" y="20" width="40" height="10"/>"#,
    );
    let data = CardData {
        fields: fields(&[("user.employee_id", "Zoë-1")]),
        photo: None,
    };
    let err = SvgRenderer::new().fill(&svg, &data).unwrap_err();
    assert!(
        matches!(err, PrintError::Slot { ref element, line: 2, .. } if element == "rect"),
        "{err}"
    );
    assert!(err.to_string().contains("Code 128"), "{err}");
}

#[test]
fn pdf417_slot_becomes_a_symbol_shaped_for_the_slot() {
    let svg = side(
        r#"<rect id="p" data-barcode="pdf417" data-bind="user.display_name" x="10" y="30" width="60" height="20"/>"#,
    );
    let data = CardData {
        fields: fields(&[("user.display_name", "Zoë Ångström-Łukasiewicz")]),
        photo: None,
    };
    let r = SvgRenderer::new();
    let filled = r.fill(&svg, &data).unwrap();
    let doc = roxmltree::Document::parse(&filled).unwrap();
    let group = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("p"))
        .unwrap();
    let symbol =
        tessera_print::pdf417::Pdf417::encode("Zoë Ångström-Łukasiewicz", None, 3.0).unwrap();
    assert!(symbol.level >= 2);
    let (w, h) = symbol.size_modules();
    // The white ground is the symbol with its quiet zone, centred, touching two sides of the slot.
    let ground = group
        .descendants()
        .find(|n| n.has_tag_name("rect"))
        .unwrap();
    let num = |a: &str| ground.attribute(a).unwrap().parse::<f32>().unwrap();
    let module = (60.0 / w as f32).min(20.0 / h as f32);
    assert!((num("width") - module * w as f32).abs() < 1e-3);
    assert!((num("height") - module * h as f32).abs() < 1e-3);
    assert!((num("x") - (10.0 + (60.0 - num("width")) / 2.0)).abs() < 1e-3);
    assert!((num("y") - (30.0 + (20.0 - num("height")) / 2.0)).abs() < 1e-3);
    assert!(num("width") > 59.99 || num("height") > 19.99);
    let path = group
        .descendants()
        .find(|n| n.has_tag_name("path"))
        .unwrap();
    let d = path.attribute("d").unwrap();
    assert_eq!(d.matches('M').count(), symbol.bars().len());
    // The first row starts with the start pattern's 8-module bar after the 2-module quiet zone.
    assert!(d.starts_with("M2 2h8v3h-8z"), "{}", &d[..40]);

    let png = r.render_png(&svg, &data).unwrap();
    let pixmap = Pixmap::decode_png(&png).unwrap();
    let px_per_mm = 1011.0 / 85.6;
    let at = |mx: f32, my: f32| {
        let x = ((num("x") + mx * module) * px_per_mm) as u32;
        let y = ((num("y") + my * module) * px_per_mm) as u32;
        pixmap.pixel(x, y).unwrap().red()
    };
    assert!(at(1.0, 3.0) > 200, "quiet zone");
    assert!(at(6.0, 3.0) < 64, "start pattern");
    assert!(at(w as f32 - 2.5, 3.0) < 64, "stop pattern's last bar");
}

#[test]
fn pdf417_slot_options_are_checked() {
    let data = jane();
    let r = SvgRenderer::new();
    let bad_level = side(
        r#"<rect data-barcode="pdf417" data-ec-level="9" data-bind="user.uid" x="10" y="20" width="40" height="10"/>"#,
    );
    let err = r.fill(&bad_level, &data).unwrap_err();
    assert!(err.to_string().contains("data-ec-level"), "{err}");
    let level6 = side(
        r#"<rect data-barcode="PDF417" data-ec-level="6" data-bind="user.uid" x="10" y="20" width="40" height="10"/>"#,
    );
    assert!(r.fill(&level6, &data).is_ok());
    let unknown = side(
        r#"<rect data-barcode="datamatrix" data-bind="user.uid" x="10" y="20" width="40" height="10"/>"#,
    );
    let err = r.fill(&unknown, &data).unwrap_err();
    assert!(err.to_string().contains("code128 and pdf417"), "{err}");
    let too_long = CardData {
        fields: fields(&[("user.attributes.notes", &"ü".repeat(800))]),
        photo: None,
    };
    let slot = side(
        r#"<rect data-barcode="pdf417" data-bind="user.attributes.notes" x="10" y="20" width="40" height="10"/>"#,
    );
    let err = r.fill(&slot, &too_long).unwrap_err();
    assert!(err.to_string().contains("too long for a PDF417"), "{err}");
}

#[test]
fn qr_slot_becomes_a_qr_code() {
    let svg = side(r#"<rect id="qr" data-qr="user.uid" x="50" y="10" width="30" height="20"/>"#);
    let r = SvgRenderer::new();
    let filled = r.fill(&svg, &jane()).unwrap();
    let doc = roxmltree::Document::parse(&filled).unwrap();
    let group = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("qr"))
        .unwrap();
    // The square ground is centred in the 30 x 20 slot.
    let ground = group
        .descendants()
        .find(|n| n.has_tag_name("rect"))
        .unwrap();
    assert_eq!(ground.attribute("x"), Some("55"));
    assert_eq!(ground.attribute("width"), Some("20"));
    let path = group
        .descendants()
        .find(|n| n.has_tag_name("path"))
        .unwrap();
    // "jdoe" fits version 1 (21 modules): the three finder patterns start at the quiet zone.
    assert!(path.attribute("d").unwrap().starts_with("M4 4h7v1h-7z"));

    let png = r.render_png(&svg, &jane()).unwrap();
    let pixmap = Pixmap::decode_png(&png).unwrap();
    // The top-left finder pattern's outer ring is dark, the quiet zone light.
    let px_per_mm = 1011.0 / 85.6;
    let module = 20.0 / 29.0;
    let at = |mx: f32, my: f32| {
        let x = ((55.0 + mx * module) * px_per_mm) as u32;
        let y = ((10.0 + my * module) * px_per_mm) as u32;
        pixmap.pixel(x, y).unwrap().red()
    };
    assert!(at(4.5, 4.5) < 64);
    assert!(at(2.0, 2.0) > 200);
    assert!(at(7.5, 7.5) < 64, "finder centre");
}

#[test]
fn long_names_are_fitted() {
    let svg = side(
        r#"<text id="n" x="5" y="10" font-size="4.4" font-weight="bold" data-fit="40">{{user.display_name}}</text>"#,
    );
    let r = SvgRenderer::new();
    let short = r
        .fill(
            &svg,
            &CardData {
                fields: fields(&[("user.display_name", "Jo Li")]),
                photo: None,
            },
        )
        .unwrap();
    assert!(short.contains(r#"font-size="4.4""#));
    let long_name = "Maximiliane Theodora Wolkenstein-Rodenegg";
    let long = r
        .fill(
            &svg,
            &CardData {
                fields: fields(&[("user.display_name", long_name)]),
                photo: None,
            },
        )
        .unwrap();
    assert!(!long.contains(r#"font-size="4.4""#), "{long}");
    assert!(long.contains(r#"textLength="40""#), "{long}");
}

#[test]
fn png_sizes_are_300_dpi_cr80() {
    let r = SvgRenderer::new();
    let land = r.render_png(&side(""), &CardData::default()).unwrap();
    let (w, h) = png_dimensions(&land).unwrap();
    assert!(w == 1011 || w == 1012, "{w}");
    assert_eq!(h, 638);
    // pHYs: 300 dpi = 11811 pixels per metre.
    let phys = land.windows(4).position(|w| w == b"pHYs").unwrap();
    assert_eq!(&land[phys + 4..phys + 8], &11811u32.to_be_bytes());

    let portrait = r#"<svg xmlns="http://www.w3.org/2000/svg" width="53.98mm" height="85.6mm" viewBox="0 0 53.98 85.6"><rect width="10" height="10"/></svg>"#;
    let png = r.render_png(portrait, &CardData::default()).unwrap();
    assert_eq!(png_dimensions(&png), Some((638, 1011)));

    // Pixel-sized layouts with CR80 proportions are scaled onto the card.
    let px = r#"<svg xmlns="http://www.w3.org/2000/svg" width="1012" height="638"><rect width="10" height="10"/></svg>"#;
    assert_eq!(
        png_dimensions(&r.render_png(px, &CardData::default()).unwrap()),
        Some((1011, 638))
    );

    let a4 = r#"<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="297mm"/>"#;
    assert!(matches!(
        r.render_png(a4, &CardData::default()),
        Err(PrintError::NotCr80 { .. })
    ));
}

fn media_boxes(pdf: &[u8]) -> Vec<[f32; 4]> {
    let text = String::from_utf8_lossy(pdf);
    text.match_indices("/MediaBox [")
        .map(|(i, m)| {
            let rest = &text[i + m.len()..];
            let nums: Vec<f32> = rest[..rest.find(']').unwrap()]
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect();
            [nums[0], nums[1], nums[2], nums[3]]
        })
        .collect()
}

#[test]
fn pdf_has_one_cr80_page_per_side_with_text_as_text() {
    let card = SvgRenderer::new()
        .render_card(&corporate_badge(), &jane())
        .unwrap();
    assert!(card.pdf.starts_with(b"%PDF-"));
    let boxes = media_boxes(&card.pdf);
    assert_eq!(boxes.len(), 2);
    for b in boxes {
        assert_eq!(&b[..2], &[0.0, 0.0]);
        assert!((b[2] - 242.65).abs() < 0.01, "{b:?}");
        assert!((b[3] - 153.01).abs() < 0.01, "{b:?}");
    }
    let text = String::from_utf8_lossy(&card.pdf);
    assert!(text.contains("/Count 2"));
    // Text is set in an embedded font rather than drawn as outlines.
    assert!(text.contains("/FontFile2"));
    assert!(text.contains("/Subtype /Image"), "the photo is in the PDF");

    let one_side = SvgRenderer::new()
        .render_card(&layout(side(""), None), &CardData::default())
        .unwrap();
    assert_eq!(media_boxes(&one_side.pdf).len(), 1);
    assert!(one_side.back_png.is_none());
}

#[test]
fn demo_layout_renders_and_checks() {
    let r = SvgRenderer::new();
    let badge = corporate_badge();
    r.check_layout(&badge).unwrap();
    let card = r.render_card(&badge, &jane()).unwrap();
    assert_eq!(png_dimensions(&card.front_png), Some((1011, 638)));
    assert_eq!(
        png_dimensions(card.back_png.as_ref().unwrap()),
        Some((1011, 638))
    );

    let front = r.fill(&badge.front_svg, &jane()).unwrap();
    for expected in [
        "Tessera Demo Corp",
        "Jane Doe",
        "Senior Security Engineer",
        "Information Security",
        "E-10042",
        "Expires 24 Nov 2027",
        "data:image/png;base64,",
    ] {
        assert!(front.contains(expected), "front lacks {expected}");
    }
    let back = r.fill(badge.back_svg.as_ref().unwrap(), &jane()).unwrap();
    for expected in [
        "If found, please return to",
        "Security Office",
        "31337042",
        "jdoe",
    ] {
        assert!(back.contains(expected), "back lacks {expected}");
    }

    // Same input, same pixels. (The PDF is equivalent but not byte-identical: svg2pdf numbers
    // its resources in hash-map order.)
    let again = r.render_card(&badge, &jane()).unwrap();
    assert!(card.front_png == again.front_png);
    assert!(card.back_png == again.back_png);

    // A bare user record (no title, photo, id or expiry) still renders.
    let bare = CardData {
        fields: fields(&[("user.display_name", "X")]),
        photo: None,
    };
    let front = r.fill(&badge.front_svg, &bare).unwrap();
    assert!(!front.contains("EMPLOYEE ID"));
    assert!(!front.contains("Expires"));
    r.render_card(&badge, &bare).unwrap();
}

#[test]
fn renderer_trait_maps_errors_to_port_errors() {
    let renderer: &dyn CardRenderer = &SvgRenderer::new();
    let bad = layout(side("<script>alert(1)</script>"), None);
    let err = renderer.render(&bad, &CardData::default()).unwrap_err();
    assert!(err.message.contains("front side"), "{}", err.message);
    assert!(err.message.contains("<script>"), "{}", err.message);
    assert!(err.message.contains("line 2"), "{}", err.message);
}

fn rejected(svg: &str) -> PrintError {
    SvgRenderer::new()
        .fill(svg, &CardData::default())
        .expect_err("a hostile layout was accepted")
}

fn forbidden_element(err: &PrintError) -> (&str, u32) {
    match err {
        PrintError::Forbidden { element, line, .. } => (element, *line),
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

#[test]
fn hostile_layouts_are_refused() {
    // Scripts, in any form.
    let e = rejected(&side("<script>alert(1)</script>"));
    assert_eq!(forbidden_element(&e), ("script", 2));
    let e = rejected(&side(r#"<rect width="5" height="5" onclick="alert(1)"/>"#));
    assert_eq!(forbidden_element(&e), ("rect", 2));
    let e = rejected(&side(
        r#"<foreignObject width="10" height="10"><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>"#,
    ));
    assert_eq!(forbidden_element(&e).0, "foreignObject");

    // References leaving the document.
    let e = rejected(&side(
        r#"<image href="https://evil.example/x.png" width="5" height="5"/>"#,
    ));
    assert_eq!(forbidden_element(&e), ("image", 2));
    assert!(e.to_string().contains("https://evil.example/x.png"));
    let e = rejected(&side(
        r#"<image xlink:href="/etc/passwd" width="5" height="5"/>"#,
    ));
    assert_eq!(forbidden_element(&e).0, "image");
    let e = rejected(&side(r#"<use xlink:href="other.svg#a"/>"#));
    assert_eq!(forbidden_element(&e).0, "use");
    let e = rejected(&side(
        r#"<rect width="5" height="5" fill="url(http://evil.example/p)"/>"#,
    ));
    assert_eq!(forbidden_element(&e).0, "rect");
    let e = rejected(&side(
        r#"<rect width="5" height="5" style="fill:url('file:///x')"/>"#,
    ));
    assert_eq!(forbidden_element(&e).0, "rect");
    let e = rejected(&side(
        r#"<style>@import url(#x); rect { fill: red }</style>"#,
    ));
    assert_eq!(forbidden_element(&e).0, "style");
    let e = rejected(&side(
        r#"<image href="data:image/svg+xml;base64,PHN2Zy8+" width="5" height="5"/>"#,
    ));
    assert_eq!(forbidden_element(&e).0, "image");

    // Local references and inline images are fine.
    SvgRenderer::new()
        .fill(
            &side(r##"<defs><rect id="a" width="1" height="1"/></defs><use href="#a"/><rect width="5" height="5" fill="url(#a)"/>"##),
            &CardData::default(),
        )
        .unwrap();

    // DTDs, and with them entity expansion, are refused outright.
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE svg [
  <!ENTITY a "lollollollollollollollollollol">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<svg xmlns="http://www.w3.org/2000/svg" width="85.6mm" height="53.98mm"><text>&c;</text></svg>"#;
    assert_eq!(rejected(laughs), PrintError::Doctype);
    let external = r#"<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>"#;
    assert_eq!(rejected(external), PrintError::Doctype);

    // Size.
    let big = side(&format!("<!-- {} -->", "x".repeat(MAX_LAYOUT_BYTES)));
    assert!(matches!(rejected(&big), PrintError::TooLarge { .. }));

    // Malformed XML, with its position.
    let e = rejected(&format!("{HEAD}\n<g>\n<rect width=\"5\">\n</g></svg>"));
    match e {
        PrintError::Malformed { line, .. } => assert_eq!(line, 4),
        other => panic!("{other:?}"),
    }
    assert!(matches!(rejected("<html/>"), PrintError::NotSvg { .. }));
    assert!(
        matches!(rejected("<svg/>"), PrintError::NotSvg { .. }),
        "no SVG namespace"
    );
}

/// The message of a layout refused for asking too much, checked the way a save checks it.
fn refused_for(svg: &str) -> String {
    let r = SvgRenderer::new();
    let e = r
        .check_layout(&layout(svg.to_owned(), None))
        .expect_err("a layout past a limit was accepted");
    assert!(
        matches!(&e, PrintError::OnSide { error, .. } if matches!(**error, PrintError::Limit(_))),
        "{e:?}"
    );
    e.to_string()
}

/// A PNG of `width` x `height` pixels as a `data:` URI.
fn png_uri(width: u32, height: u32) -> String {
    use base64::Engine as _;
    let mut p = Pixmap::new(width, height).unwrap();
    p.fill(resvg::tiny_skia::Color::WHITE);
    let png = p.encode_png().unwrap();
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

#[test]
fn deep_nesting_is_refused_before_any_parser_recurses() {
    // 4,000 nested groups used to overflow an async worker's stack and abort the server. The
    // check is a loop over the text: it refuses 100,000 levels on a thread with a 64 KiB stack,
    // which any recursive descent would overflow (roxmltree's parser does, at 60,000).
    let deep = |levels: usize| {
        side(&format!(
            "{}{}",
            "<g>".repeat(levels),
            "</g>".repeat(levels)
        ))
    };
    let (svg, deeper) = (deep(4_000), deep(100_000));
    let (small, deeper_render) = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || {
            let r = SvgRenderer::new();
            let check = r.check_layout(&layout(deeper.clone(), None)).unwrap_err();
            let render = r.render_png(&deeper, &CardData::default()).unwrap_err();
            (check.to_string(), render.to_string())
        })
        .unwrap()
        .join()
        .expect("the checks never recurse");
    assert!(
        small.contains("nests elements 100001 deep; at most 24 levels"),
        "{small}"
    );
    assert!(deeper_render.contains("100001 deep"), "{deeper_render}");
    assert_eq!(
        refused_for(&svg),
        "front side: the layout nests elements 4001 deep; at most 24 levels are allowed"
    );
    // Rendering checks again: a layout stored before the limits existed is refused, not drawn.
    let stored = layout(svg, None);
    let err = SvgRenderer::new()
        .render(&stored, &jane())
        .expect_err("the renderer checks too");
    assert!(err.message.contains("4001 deep"), "{}", err.message);
    // Comments, CDATA and quoted `>` do not fool the count.
    let tricky = side(&format!(
        "<!-- {} --><![CDATA[{}]]><g data-x=\"a>b\" data-y='<'>{}</g>",
        "<g>".repeat(100),
        "<g>".repeat(100),
        "<g><rect/></g>".repeat(10)
    ));
    assert!(SvgRenderer::new()
        .fill(&tricky, &CardData::default())
        .is_err()); // `<` in a value
    let fine = side(&format!(
        "<!-- {} --><g data-x=\"a>b\">{}<rect/>{}</g>",
        "<g>".repeat(100),
        "<g>".repeat(20),
        "</g>".repeat(20)
    ));
    SvgRenderer::new()
        .check_layout(&layout(fine, None))
        .unwrap();
}

#[test]
fn too_many_elements_are_refused() {
    assert_eq!(
        refused_for(&side(&"<rect/>".repeat(100_000))),
        "front side: the layout has 100001 elements; at most 10000 are allowed"
    );
    // Ten groups, each using the one before ten times: ten billion rectangles for usvg.
    let mut bomb = String::from(r#"<defs><rect id="u0" width="1" height="1"/>"#);
    for i in 1..10 {
        bomb += &format!(
            "<g id='u{i}'>{}</g>",
            format!("<use href='#u{}'/>", i - 1).repeat(10)
        );
    }
    bomb += "</defs><use href='#u9'/>";
    let message = refused_for(&side(&bomb));
    assert!(
        message.contains("elements once <use> and other references are expanded; at most 10000"),
        "{message}"
    );
    // A pattern copied into every shape it fills counts once for each of them.
    let patterns = format!(
        r#"<defs><pattern id="p" width="1" height="1">{}</pattern></defs>{}"#,
        "<rect width='1' height='1'/>".repeat(1000),
        r#"<rect width="5" height="5" fill="url(#p)"/>"#.repeat(20)
    );
    assert!(refused_for(&side(&patterns)).contains("references are expanded"));
    // A marker is drawn at every vertex.
    let markers = format!(
        r#"<defs><marker id="m">{}</marker></defs><path d="M0 0{}" marker-mid="url(#m)"/>"#,
        "<circle r='1'/>".repeat(10),
        " L1 1".repeat(2000)
    );
    assert!(refused_for(&side(&markers)).contains("references are expanded"));
    // A style sheet's reference may apply to every element.
    let sheet = format!(
        r#"<defs><clipPath id="c">{}</clipPath></defs><style>rect {{ clip-path: url(#c) }}</style>{}"#,
        "<rect width='1' height='1'/>".repeat(10),
        "<rect width='1' height='1'/>".repeat(1000)
    );
    assert!(refused_for(&side(&sheet)).contains("references are expanded"));
    // References that go round in a loop.
    let looped = side(
        r##"<g id="a"><use href="#b"/></g>
<g id="b"><use href="#a"/></g>"##,
    );
    let message = refused_for(&looped);
    assert!(message.contains("line 2: <use> refers to #b"), "{message}");
    assert!(message.contains("may not go round in a loop"), "{message}");
    // Nesting by reference counts as nesting.
    let mut chain = String::from(r#"<rect id="c0" width="1" height="1"/>"#);
    for i in 1..30 {
        chain += &format!("<g id='c{i}'><use href='#c{}'/></g>", i - 1);
    }
    let message = refused_for(&side(&chain));
    assert!(
        message.contains("once <use> and other references are followed; at most 24 levels"),
        "{message}"
    );
}

#[test]
fn expensive_filters_are_refused() {
    let filtered = |primitives: &str| {
        side(&format!(
            r#"<filter id="f">{primitives}</filter><rect width="40" height="20" filter="url(#f)"/>"#
        ))
    };
    // Minutes of noise on an async worker, once.
    let message = refused_for(&filtered(
        r#"<feTurbulence baseFrequency="0.05" numOctaves="1000"/>"#,
    ));
    assert_eq!(
        message,
        "front side: line 2: <feTurbulence> asks for numOctaves=\"1000\"; at most 8 octaves are \
         allowed (more change nothing visible)"
    );
    // A blur so wide it overflowed resvg's arithmetic; and one merely far wider than a card needs.
    // User units are millimetres here: 1 is 11.8 pixels at 300 dpi.
    let message = refused_for(&filtered(r#"<feGaussianBlur stdDeviation="1e30"/>"#));
    assert!(
        message.contains(
            "filter \"f\": <feGaussianBlur> blurs by a standard deviation of more \
                          than a million pixels at 300 dpi; at most 100 pixels are allowed"
        ),
        "{message}"
    );
    let message = refused_for(&filtered(r#"<feGaussianBlur stdDeviation="10"/>"#));
    assert!(message.contains("of 119 pixels"), "{message}");
    assert!(
        refused_for(&filtered(r#"<feDropShadow stdDeviation="20"/>"#)).contains("<feDropShadow>")
    );
    let message = refused_for(&filtered(r#"<feMorphology radius="2"/>"#));
    assert!(
        message.contains("<feMorphology> has a radius of 24 pixels at 300 dpi; at most 10"),
        "{message}"
    );
    let message = refused_for(&filtered(
        r#"<feConvolveMatrix order="25" kernelMatrix="1"/>"#,
    ));
    assert!(
        message.contains("order=\"25\"; at most 9 in each direction"),
        "{message}"
    );
    // A region of 200,000 units made resvg ask for a 223 GB bitmap, which aborts the process.
    let huge = side(
        r#"<filter id="big" filterUnits="userSpaceOnUse" x="-1e5" y="-1e5" width="2e5" height="2e5"><feFlood flood-color="red"/></filter><rect width="10" height="10" filter="url(#big)"/>"#,
    );
    let message = refused_for(&huge);
    assert!(message.contains("filter \"big\" covers 236"), "{message}");
    assert!(
        message.contains("at most 2580072 pixels (4 times the card)"),
        "{message}"
    );
    // One filter on forty shapes is forty applications.
    let many = side(&format!(
        r#"<filter id="f"><feOffset dx="1"/></filter>{}"#,
        r#"<rect width="1" height="1" filter="url(#f)"/>"#.repeat(40)
    ));
    assert_eq!(
        refused_for(&many),
        "front side: the layout applies 40 filter primitives (a filter counts once for every \
         element it is applied to); at most 32 are allowed"
    );
    // Turbulence over the whole card, eight octaves, on six shapes: within every other limit,
    // but seconds of work.
    let noise = side(&format!(
        r#"<filter id="n" x="0" y="0" width="1" height="1"><feTurbulence baseFrequency="0.5" numOctaves="8"/></filter>{}"#,
        r#"<rect width="85.6" height="53.98" filter="url(#n)"/>"#.repeat(6)
    ));
    let message = refused_for(&noise);
    assert!(
        message.contains("million pixel operations at 300 dpi; at most 64 million"),
        "{message}"
    );
}

#[test]
fn large_images_and_drawings_are_refused() {
    let image = |uri: &str| side(&format!(r#"<image width="20" height="20" href="{uri}"/>"#));
    let message = refused_for(&image(&png_uri(3001, 10)));
    assert_eq!(
        message,
        "front side: line 2: <image>: the embedded image is 3001 x 10 pixels; at most 3000 x \
         3000 are allowed"
    );
    // Bytes are checked before the header is read.
    use base64::Engine as _;
    let mut noise = b"\x89PNG\r\n\x1a\n".to_vec();
    noise.extend((0..1_100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let big = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&noise)
    );
    let message = refused_for(&image(&big));
    assert!(
        message.contains("the embedded image is 1100008 bytes; at most 1048576 bytes"),
        "{message}"
    );
    let message = refused_for(&image("data:image/png;base64,AAAA"));
    assert!(
        message.contains("the embedded image cannot be read"),
        "{message}"
    );
    // Inkscape wraps base64 lines; that is an image like any other.
    let wrapped = png_uri(30, 30).replacen("base64,", "base64,\n  ", 1);
    SvgRenderer::new()
        .check_layout(&layout(image(&wrapped), None))
        .unwrap();

    // An image used many times is decoded many times.
    let reused = side(&format!(
        r#"<defs><image id="i" width="20" height="20" href="{}"/></defs>{}"#,
        png_uri(2000, 2000),
        r##"<use href="#i"/>"##.repeat(10)
    ));
    assert!(refused_for(&reused).contains("million pixel operations"));
    // A thousand translucent veils over the card: 15 s of drawing.
    let veils =
        side(&r#"<rect width="85.6" height="53.98" fill="red" fill-opacity="0.5"/>"#.repeat(1000));
    let message = refused_for(&veils);
    assert!(
        message.starts_with(
            "front side: drawing this side takes about 645.0 million pixel \
                             operations at 300 dpi; at most 64 million are allowed"
        ),
        "{message}"
    );
    // A pattern tile resvg would allocate at 2 GB.
    let tile = side(
        r#"<pattern id="p" patternUnits="userSpaceOnUse" width="2000" height="2000"><rect width="1" height="1"/></pattern><rect width="10" height="10" fill="url(#p)"/>"#,
    );
    let message = refused_for(&tile);
    assert!(
        message.contains("pattern \"p\" is drawn as a tile of 23621 x 23638 pixels"),
        "{message}"
    );
    // Text.
    let message = refused_for(&side(&format!("<text>{}</text>", "x".repeat(6000))));
    assert!(
        message.contains("6000 characters of text (copies by <use> included); at most 5000"),
        "{message}"
    );
}

/// The layout at every limit at once passes the checks and is drawn, PNG and PDF (how long that
/// takes is a benchmark: `tessera bench`).
#[test]
fn a_layout_at_every_limit_is_accepted_and_drawn() {
    let r = SvgRenderer::new();
    let worst = tessera_print::layouts::at_the_limits();
    r.check_layout(&worst).unwrap();
    let card = r.render_card(&worst, &jane()).unwrap();
    assert_eq!(png_dimensions(&card.front_png), Some((1011, 638)));
    assert_eq!(media_boxes(&card.pdf).len(), 2);
}

#[test]
fn editor_metadata_is_dropped() {
    let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd" width="85.6mm" height="53.98mm" viewBox="0 0 85.6 53.98">
<sodipodi:namedview id="nv" inkscape:zoom="2"/>
<g inkscape:label="Layer 1" inkscape:groupmode="layer"><text id="t" x="1" y="5" font-size="3" font-family="Arial">{{user.display_name}}</text></g>
</svg>"#;
    let r = SvgRenderer::new();
    let filled = r
        .fill(
            svg,
            &CardData {
                fields: fields(&[("user.display_name", "Ann")]),
                photo: None,
            },
        )
        .unwrap();
    assert!(!filled.contains("inkscape"));
    assert!(!filled.contains("namedview"));
    assert_eq!(text_of(&filled, "t"), "Ann");
    r.render_png(svg, &CardData::default()).unwrap();
}

#[test]
fn portraits_are_deterministic() {
    assert_eq!(portrait_png(1), portrait_png(1));
    assert_ne!(portrait_png(1), portrait_png(2));
    assert_eq!(png_dimensions(&portrait_png(3)), Some((300, 400)));
}

/// The worked example of docs/layouts.md is a layout that Tessera accepts and renders, clear of
/// the chip.
#[test]
fn the_documented_example_renders() {
    let doc = include_str!("../../../docs/layouts.md");
    let start = doc.find("```xml\n").expect("an xml block") + 7;
    let svg = &doc[start..start + doc[start..].find("```").unwrap()];
    let renderer = SvgRenderer::new();
    let example = layout(svg.to_owned(), None);
    renderer
        .check(&example)
        .expect("the example is a valid layout");
    let card = renderer.render(&example, &jane()).expect("renders");
    assert_eq!(png_dimensions(&card.front_png).map(|(_, h)| h), Some(638));
    let filled = renderer.fill(svg, &jane()).unwrap();
    assert!(filled.contains("JANE DOE"), "{filled}");
    // and it keeps the contact chip's area clear, as the docs say a layout should
    let over = renderer.chip_overlaps(svg, &jane()).unwrap();
    assert!(over.is_empty(), "drawn over the chip: {over:?}");
}

/// Decodes a PNG into RGBA pixels.
fn pixels(png: &[u8]) -> Pixmap {
    Pixmap::decode_png(png).expect("a PNG")
}

/// The Corporate Badge for a fixed user, compared with the image stored in `tests/golden/`: the
/// same fonts and renderer must draw the same card on every machine. A small tolerance absorbs
/// anti-aliasing differences between renderer versions; a moved or missing element does not pass.
/// `TESSERA_UPDATE_GOLDEN=1 cargo test -p tessera-print golden` rewrites the images after an
/// intended change (look at them before committing).
#[test]
fn golden_corporate_badge() {
    let renderer = SvgRenderer::new();
    let card = renderer
        .render(&tessera_print::corporate_badge(), &jane())
        .expect("renders");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for (name, png) in [
        ("corporate-badge-front.png", &card.front_png),
        ("corporate-badge-back.png", card.back_png.as_ref().unwrap()),
    ] {
        let path = dir.join(name);
        if std::env::var("TESSERA_UPDATE_GOLDEN").is_ok() {
            std::fs::write(&path, png).unwrap();
        }
        let expected = pixels(&std::fs::read(&path).expect("golden image present"));
        let actual = pixels(png);
        assert_eq!(
            (actual.width(), actual.height()),
            (expected.width(), expected.height())
        );
        let (mut differing, mut total_diff) = (0usize, 0u64);
        for (a, e) in actual.data().chunks(4).zip(expected.data().chunks(4)) {
            let d: u32 = a.iter().zip(e).map(|(x, y)| x.abs_diff(*y) as u32).sum();
            total_diff += u64::from(d);
            if d > 48 {
                differing += 1;
            }
        }
        let n = (actual.width() * actual.height()) as usize;
        let mean = total_diff as f64 / (n * 4) as f64;
        assert!(
            differing * 1000 < n * 5 && mean < 1.0,
            "{name}: {differing} of {n} pixels differ, mean channel difference {mean:.3}"
        );
    }
}

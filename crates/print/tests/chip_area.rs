//! The contact chip's place on the card stays clear on every built-in layout: measured on the
//! layout (every drawn element's box, as the renderer lays it out) and on the printed pixels.

use resvg::tiny_skia::Pixmap;
use std::collections::BTreeMap;
use tessera_core::model::Layout;
use tessera_core::ports::CardData;
use tessera_print::chip::{keep_out, ChipOverlap};
use tessera_print::portrait::{Gender, Sitter};
use tessera_print::{Orientation, SvgRenderer, CHIP_KEEP_OUT, DPI};

fn holder(pairs: &[(&str, &str)], photo: bool) -> CardData {
    let fields: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    CardData {
        fields,
        photo: photo.then(|| {
            Sitter {
                seed: 1,
                gender: Gender::Female,
                age: 41,
            }
            .png()
        }),
    }
}

/// Jane Doe, the longest holder the demo layouts are drawn for, and one with nothing but a name.
fn holders() -> Vec<(&'static str, CardData)> {
    vec![
        (
            "Jane Doe",
            holder(
                &[
                    ("user.uid", "jdoe"),
                    ("user.display_name", "Jane Doe"),
                    ("user.title", "Security Officer"),
                    ("user.department", "Security"),
                    ("user.employee_id", "107919"),
                    ("device.serial", "31337042"),
                    ("device.expires_on", "2029-11-24"),
                ],
                true,
            ),
        ),
        (
            "a long name",
            holder(
                &[
                    (
                        "user.display_name",
                        "Maximiliane Theodora von Wolkenstein-Rodenegg",
                    ),
                    ("user.title", "מנהלת אבטחת מידע"),
                    (
                        "user.department",
                        "Office of the Chief Information Security Officer, EMEA Region",
                    ),
                    ("user.employee_id", "EMP-2024-000123456"),
                    ("device.expires_on", "2029-11-24"),
                ],
                false,
            ),
        ),
        (
            "a bare record",
            holder(&[("user.display_name", "X")], false),
        ),
    ]
}

fn layout(front: &str) -> Layout {
    Layout {
        id: tessera_core::ids::LayoutId::new("t"),
        name: "t".into(),
        description: String::new(),
        front_svg: front.to_owned(),
        back_svg: None,
        allowed_groups: vec![],
        default_for_groups: vec![],
        version: 1,
    }
}

fn overlaps(svg: &str, data: &CardData) -> Vec<ChipOverlap> {
    SvgRenderer::new()
        .chip_overlaps(svg, data)
        .expect("the side renders")
}

#[test]
fn no_built_in_front_draws_over_the_chip() {
    let layouts = tessera_print::layouts::built_in();
    assert!(!layouts.is_empty());
    for l in &layouts {
        for (who, data) in holders() {
            let found = overlaps(&l.front_svg, &data);
            assert!(
                found.is_empty(),
                "{} for {who} draws over the chip: {}",
                l.name,
                found
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
}

/// The measure finds what it should: the old Corporate Badge's photo, text moved in by a
/// transform, a filtered shape whose blur reaches in, and on a portrait side the chip low down;
/// the card's ground and an element beside the area are not reported.
#[test]
fn the_measure_finds_elements_in_the_chip_area() {
    let data = &holders()[0].1;
    let landscape = |body: &str| {
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="85.6mm" height="53.98mm" viewBox="0 0 856 539.8"><rect width="856" height="539.8" fill="#f0f0f0"/>{body}</svg>"##
        )
    };
    assert_eq!(
        overlaps(&landscape(""), data),
        vec![],
        "the ground is allowed"
    );
    let beside = landscape(r##"<rect x="230" y="100" width="300" height="300" fill="#123"/>"##);
    assert_eq!(overlaps(&beside, data), vec![], "beside the area");

    let photo = landscape(r#"<image data-bind="photo" x="40" y="152" width="225" height="300"/>"#);
    let found = overlaps(&photo, data);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].element, "image");
    let b = found[0].bounds;
    assert!(
        (b.x - 4.0).abs() < 0.01 && (b.width - 22.5).abs() < 0.01,
        "{}",
        found[0]
    );

    let moved = landscape(
        r#"<g transform="translate(100 0)"><text x="0" y="250" font-size="40" transform="rotate(5)">{{user.display_name}}</text></g>"#,
    );
    let found = overlaps(&moved, data);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].element.contains("Jane Doe"), "{}", found[0]);

    let blurred = landscape(
        r##"<filter id="b" x="-1" y="-1" width="3" height="3"><feGaussianBlur stdDeviation="30"/></filter><rect x="240" y="200" width="100" height="80" fill="#000" filter="url(#b)"/>"##,
    );
    assert_eq!(overlaps(&blurred, data).len(), 1, "the blur reaches in");

    // A portrait side: the chip sits 63.1 to 78.1 mm down, 16.5 to 31.5 mm across.
    let portrait = |body: &str| {
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="53.98mm" height="85.6mm" viewBox="0 0 53.98 85.6"><rect width="53.98" height="85.6" fill="#fff"/>{body}</svg>"##
        )
    };
    let low = portrait(r#"<rect x="20" y="65" width="5" height="5"/>"#);
    let high = portrait(r#"<rect x="20" y="20" width="5" height="5"/>"#);
    assert_eq!(overlaps(&low, data).len(), 1);
    assert_eq!(overlaps(&high, data), vec![]);
    let zone = keep_out(Orientation::Portrait);
    assert!((zone.y - 63.1).abs() < 0.01, "{zone:?}");
}

/// The keep-out area of a PNG at 300 dpi, in whole pixels inside it.
fn zone_px(orientation: Orientation) -> (u32, u32, u32, u32) {
    let z = keep_out(orientation);
    let px = |mm: f32| mm / 25.4 * DPI;
    (
        px(z.x).ceil() as u32,
        px(z.y).ceil() as u32,
        px(z.right()).floor() as u32,
        px(z.bottom()).floor() as u32,
    )
}

/// Why the keep-out area of a landscape front is not plain ground, if it is not: every row one
/// colour (the ground may shade from top to bottom, never across) and no row far from another.
fn not_plain(png: &[u8]) -> Option<String> {
    let pixmap = Pixmap::decode_png(png).expect("a PNG");
    let (x0, y0, x1, y1) = zone_px(Orientation::Landscape);
    let at = |x: u32, y: u32| {
        let p = pixmap.pixel(x, y).expect("inside the card");
        [p.red(), p.green(), p.blue()]
    };
    let first = at(x0, y0);
    for y in y0..y1 {
        let row = at(x0, y);
        for x in x0..x1 {
            let p = at(x, y);
            let across = p.iter().zip(row).map(|(a, b)| a.abs_diff(b)).max().unwrap();
            let down = p
                .iter()
                .zip(first)
                .map(|(a, b)| a.abs_diff(b))
                .max()
                .unwrap();
            if across > 2 || down > 12 {
                return Some(format!("pixel ({x}, {y}) is {p:?}; its row starts {row:?}"));
            }
        }
    }
    None
}

#[test]
fn the_printed_chip_area_is_plain_ground() {
    let renderer = SvgRenderer::new();
    for l in tessera_print::layouts::built_in() {
        for (who, data) in holders() {
            let card = renderer.render_card(&l, &data).unwrap();
            assert_eq!(
                tessera_print::png_dimensions(&card.front_png),
                Some(Orientation::Landscape.size_px()),
                "built-in fronts are landscape"
            );
            if let Some(why) = not_plain(&card.front_png) {
                panic!("{} for {who}: the chip area is printed on: {why}", l.name);
            }
        }
    }
    // And the pixel check can fail: a photo where the Corporate Badge used to have it.
    let old = layout(
        &tessera_print::CORPORATE_BADGE_FRONT
            .replace(r#"x="59.1""#, r#"x="4""#)
            .replace(r#"x="58.7""#, r#"x="3.6""#),
    );
    let found: Vec<String> = overlaps(&old.front_svg, &holders()[0].1)
        .into_iter()
        .map(|o| o.element)
        .collect();
    assert_eq!(
        found,
        ["shape", "shape", "image"],
        "frame, grey ground, photo"
    );
    let card = renderer.render_card(&old, &holders()[0].1).unwrap();
    assert!(not_plain(&card.front_png).is_some());
    assert_eq!(CHIP_KEEP_OUT.x, 7.5);
}

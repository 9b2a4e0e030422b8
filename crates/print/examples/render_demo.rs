//! Renders Jane Doe's Corporate Badge and a few portraits into a folder, to look at:
//! `cargo run -p tessera-print --example render_demo -- /tmp`.

use std::collections::BTreeMap;
use std::time::Instant;
use tessera_core::ports::CardData;
use tessera_print::portrait::{Gender, Sitter};
use tessera_print::{corporate_badge, SvgRenderer};

fn main() {
    let out = std::env::args().nth(1).unwrap_or_else(|| "/tmp".into());
    let fields: BTreeMap<String, String> = [
        ("user.uid", "jdoe"),
        ("user.display_name", "Jane Doe"),
        ("user.given_name", "Jane"),
        ("user.family_name", "Doe"),
        ("user.title", "Senior Security Engineer"),
        ("user.department", "Information Security"),
        ("user.employee_id", "E-10042"),
        ("device.serial", "31 337 042"),
        ("device.expires_on", "2027-11-24"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let data = CardData {
        fields,
        photo: Some(
            Sitter {
                seed: 1,
                gender: Gender::Female,
                age: 41,
            }
            .png(),
        ),
    };
    let renderer = SvgRenderer::new();
    let layout = corporate_badge();
    let mut card = None;
    for round in 0..3 {
        let started = Instant::now();
        card = Some(renderer.render_card(&layout, &data).expect("renders"));
        println!("round {round}: card rendered in {:?}", started.elapsed());
    }
    let card = card.unwrap();
    let started = Instant::now();
    renderer.render_png(&layout.front_svg, &data).unwrap();
    let front = started.elapsed();
    let started = Instant::now();
    renderer
        .render_png(layout.back_svg.as_ref().unwrap(), &data)
        .unwrap();
    println!(
        "front PNG alone {front:?}, back PNG alone {:?}",
        started.elapsed()
    );
    std::fs::write(format!("{out}/card-front.png"), &card.front_png).unwrap();
    std::fs::write(
        format!("{out}/card-back.png"),
        card.back_png.as_ref().unwrap(),
    )
    .unwrap();
    std::fs::write(format!("{out}/card.pdf"), &card.pdf).unwrap();
    // The hard cases: a very long name and title, right-to-left text, no photo, a long id.
    let mut edge = data.clone();
    edge.photo = None;
    for (k, v) in [
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
    ] {
        edge.fields.insert(k.to_owned(), v.to_owned());
    }
    let card = renderer.render_card(&layout, &edge).expect("renders");
    std::fs::write(format!("{out}/card-edge-front.png"), &card.front_png).unwrap();

    // A contact sheet of portraits, 6 x 2 at half size: women above, men below, from 24 to 64.
    use base64::Engine as _;
    let mut sheet = String::from(
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="900" height="400">"#,
    );
    for seed in 0..12u64 {
        let png = Sitter {
            seed,
            gender: if seed < 6 {
                Gender::Female
            } else {
                Gender::Male
            },
            age: 24 + (seed % 6) as u8 * 8,
        }
        .png();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
        sheet.push_str(&format!(
            r#"<image x="{}" y="{}" width="150" height="200" xlink:href="data:image/png;base64,{b64}"/>"#,
            (seed % 6) * 150,
            (seed / 6) * 200
        ));
    }
    sheet.push_str("</svg>");
    let tree = resvg::usvg::Tree::from_str(&sheet, &resvg::usvg::Options::default()).unwrap();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(900, 400).unwrap();
    resvg::render(&tree, Default::default(), &mut pixmap.as_mut());
    pixmap.save_png(format!("{out}/portraits.png")).unwrap();
    println!("wrote {out}/card-front.png, card-back.png, card.pdf, portraits.png");
}

//! Illustrated passport-style portraits for demo users, drawn by this crate so that the demo
//! needs no photographs of real people. A [`Sitter`] says who is drawn: a seed, a gender and an
//! age. The gender picks from hair styles, clothes and features that read as a woman's or a
//! man's (long hair, a bob or a bun, earrings and lashes; short hair, a tie, a beard), the age
//! greys the hair (from the mid forties; always from 58) and draws lines in the face (from 40);
//! the seed picks everything else: background, skin tone, hair colour, eyes, brows, mouth,
//! clothes, glasses. The same sitter always gives the same PNG, byte for byte.

use resvg::tiny_skia;
use resvg::usvg;
use std::fmt::Write;

pub const PORTRAIT_WIDTH: u32 = 300;
pub const PORTRAIT_HEIGHT: u32 = 400;

/// Which way a portrait reads: the demo seeds it from the usual gender of the person's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gender {
    Female,
    Male,
}

/// Who a portrait shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sitter {
    /// Picks everything that neither gender nor age decides.
    pub seed: u64,
    pub gender: Gender,
    /// In years; drawn faces read from about 20 to about 70.
    pub age: u8,
}

impl Sitter {
    /// A sitter whose gender and age (22 to 64) come from the seed too.
    pub fn from_seed(seed: u64) -> Self {
        let mut r = Rng(seed ^ 0x5349_5454_4552_2121);
        r.next();
        let gender = if r.chance(0.5) {
            Gender::Female
        } else {
            Gender::Male
        };
        Self {
            seed,
            gender,
            age: 22 + r.below(43) as u8,
        }
    }

    /// The 300 x 400 PNG portrait.
    pub fn png(&self) -> Vec<u8> {
        let svg = self.svg();
        let tree = usvg::Tree::from_str(&svg, &usvg::Options::default())
            .expect("the portrait generator writes valid SVG");
        let mut pixmap = tiny_skia::Pixmap::new(PORTRAIT_WIDTH, PORTRAIT_HEIGHT)
            .expect("a 300 x 400 bitmap can be allocated");
        resvg::render(
            &tree,
            tiny_skia::Transform::identity(),
            &mut pixmap.as_mut(),
        );
        pixmap
            .encode_png()
            .expect("encoding a bitmap in memory cannot fail")
    }

    /// The portrait as SVG, 300 x 400 user units.
    pub fn svg(&self) -> String {
        let mut r = self.rng();
        let features = choose(&mut r, self);
        draw(&mut r, &features)
    }

    /// What the portrait shows that depends on gender and age, for the tests and the curious.
    pub fn features(&self) -> Features {
        choose(&mut self.rng(), self)
    }

    /// The same stream for [`Sitter::features`] and the drawing, so both agree.
    fn rng(&self) -> Rng {
        let mut r = Rng(self.seed ^ 0x5445_5353_4552_4121);
        // Warm up: nearby seeds start far apart.
        r.next();
        r
    }
}

/// A 300 x 400 PNG portrait for `seed`, of a sitter whose gender and age the seed picks too.
pub fn portrait_png(seed: u64) -> Vec<u8> {
    Sitter::from_seed(seed).png()
}

/// A portrait as SVG for `seed` (see [`portrait_png`]).
pub fn portrait_svg(seed: u64) -> String {
    Sitter::from_seed(seed).svg()
}

/// splitmix64: small, fast, and the same on every platform, which is all a drawing needs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// A value in `[lo, hi)`.
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (self.next() >> 40) as f32 / (1u64 << 24) as f32 * (hi - lo)
    }
    fn chance(&mut self, p: f32) -> bool {
        self.range(0.0, 1.0) < p
    }
}

const BACKGROUNDS: [(&str, &str); 6] = [
    ("#e9eef4", "#cfd9e5"),
    ("#eeebe5", "#d8d2c8"),
    ("#e3eef0", "#c6d9dd"),
    ("#ececec", "#d2d2d2"),
    ("#e8eef7", "#c9d6ea"),
    ("#f0ece9", "#dcd3cd"),
];
const SKIN: [&str; 9] = [
    "#f6d7c3", "#f1c7a5", "#e8b48f", "#d9a07a", "#c68a5e", "#a96f47", "#8d5a3b", "#6e4430",
    "#553324",
];
/// Natural colours, black to blond; grey comes with age, not from here.
const HAIR: [&str; 7] = [
    "#1c1714", "#2f221b", "#4a3225", "#6b4429", "#8e5a2f", "#b07a43", "#d1ae6c",
];
/// Salt and pepper, then silver and white.
const GREY: [&str; 3] = ["#8f8b86", "#bdbab5", "#dcdad6"];
const IRIS: [&str; 6] = [
    "#3b2a1e", "#5a3b24", "#6f5434", "#3f6a8a", "#4f7a56", "#6b7f8f",
];
const JACKETS: [&str; 6] = [
    "#1f2a3a", "#2d3440", "#3a3f47", "#24344d", "#4a4036", "#2b2b2b",
];
const SHIRTS: [&str; 4] = ["#ffffff", "#dfe9f5", "#f3f0ea", "#e8eef0"];
const TIES: [&str; 5] = ["#7a1f2b", "#1d4e89", "#2f5d3a", "#5b3a6e", "#8a6d1f"];
const TOPS: [&str; 7] = [
    "#2f6f8f", "#8f3b4a", "#4d6b3c", "#6a4c8c", "#c0703a", "#35506e", "#7b6a58",
];

/// Hair styles. Women get `Long`, `Bob`, `Bun` or `Curls`; men `Crop`, `SidePart`, `Buzz` or,
/// from 45, `Receding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hair {
    Crop,
    SidePart,
    Buzz,
    Receding,
    Long,
    Bob,
    Bun,
    Curls,
}

impl Hair {
    pub const FEMININE: [Hair; 4] = [Hair::Long, Hair::Bob, Hair::Bun, Hair::Curls];
    pub const MASCULINE: [Hair; 4] = [Hair::Crop, Hair::SidePart, Hair::Buzz, Hair::Receding];
}

/// Clothes. A suit comes with a tie (men); a jacket over an open top (women).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clothes {
    Suit,
    Jacket,
    Blouse,
    Sweater,
    Turtleneck,
}

/// What a portrait shows that its sitter's gender and age decide.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    pub hair: Hair,
    /// The hair colour, `#rrggbb`.
    pub hair_colour: &'static str,
    /// Grey, silver or white hair.
    pub grey: bool,
    pub beard: bool,
    pub clothes: Clothes,
    /// Lines in the face: 0 none, 1 from nose to mouth (40+), 2 also on the forehead and
    /// under the eyes (52+).
    pub lines: u8,
    /// Lashes and a touch of colour on the lips.
    pub lashes: bool,
    pub earrings: bool,
    pub glasses: bool,
}

fn choose(r: &mut Rng, sitter: &Sitter) -> Features {
    let (age, female) = (sitter.age, sitter.gender == Gender::Female);
    let hair = if female {
        *r.pick(&Hair::FEMININE)
    } else if age >= 45 && r.chance(0.45) {
        Hair::Receding
    } else {
        *r.pick(&[Hair::Crop, Hair::SidePart, Hair::Buzz])
    };
    // Grey from the mid forties, more often with every year; always from 58.
    let grey_chance = match age {
        0..=43 => 0.0,
        44..=57 => (f32::from(age) - 42.0) / 16.0,
        _ => 1.0,
    };
    let grey = r.chance(grey_chance);
    let hair_colour = if grey {
        GREY[usize::from(age >= 52) + usize::from(age >= 64)]
    } else {
        *r.pick(&HAIR)
    };
    let clothes = if female {
        *r.pick(&[
            Clothes::Jacket,
            Clothes::Blouse,
            Clothes::Blouse,
            Clothes::Sweater,
            Clothes::Turtleneck,
        ])
    } else {
        *r.pick(&[
            Clothes::Suit,
            Clothes::Suit,
            Clothes::Sweater,
            Clothes::Turtleneck,
        ])
    };
    let beard = !female && age >= 23 && r.chance(0.35);
    let lines = match age {
        0..=39 => 0,
        40..=51 => 1,
        _ => 2,
    };
    // Reading glasses become common after 45.
    let glasses = r.chance(if age >= 45 { 0.5 } else { 0.2 });
    let earrings = female && r.chance(0.6);
    Features {
        hair,
        hair_colour,
        grey,
        beard,
        clothes,
        lines,
        lashes: female,
        earrings,
        glasses,
    }
}

/// Draws the portrait of `f`, picking the rest from `r`.
fn draw(r: &mut Rng, f: &Features) -> String {
    let female = f.lashes;
    let (bg_top, bg_bottom) = *r.pick(&BACKGROUNDS);
    let skin = *r.pick(&SKIN);
    let skin_shadow = shade(skin, 0.86);
    let skin_deep = shade(skin, 0.72);
    let hair_style = f.hair;
    let hair = f.hair_colour;
    let hair_light = shade(hair, if f.grey { 1.08 } else { 1.25 });
    let brow = shade(hair, if f.grey { 0.7 } else { 0.9 });
    let iris = *r.pick(&IRIS);

    // Women's faces narrower with a rounder chin; men's wider with a squarer jaw.
    let face_w = if female {
        r.range(54.0, 60.0)
    } else {
        r.range(59.0, 66.0)
    }; // half width at the cheekbones
    let jaw = if female {
        r.range(0.0, 3.0)
    } else {
        r.range(5.0, 11.0)
    }; // wider jaw, squarer chin
    let eye_y = r.range(164.0, 172.0);
    let eye_dx = r.range(24.0, 28.0);
    let mouth_y = r.range(222.0, 230.0);
    let smile = r.range(2.0, 8.0);
    let mouth_w = r.range(14.0, 19.0);
    let brow_lift = r.range(-3.0, 3.0);
    let brow_width = if female { 3.0 } else { 4.8 };
    let lips = shade(skin, 0.78);
    let lips = mix(&lips, "#b85a5a", if female { 0.55 } else { 0.25 });

    let mut s = String::with_capacity(8 * 1024);
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="300" height="400" viewBox="0 0 300 400">
<defs>
<linearGradient id="bg" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="{bg_top}"/><stop offset="1" stop-color="{bg_bottom}"/></linearGradient>
<radialGradient id="face" cx="0.45" cy="0.4" r="0.7"><stop offset="0" stop-color="{face_hi}"/><stop offset="0.75" stop-color="{skin}"/><stop offset="1" stop-color="{skin_shadow}"/></radialGradient>
<linearGradient id="hairg" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="{hair_light}"/><stop offset="0.6" stop-color="{hair}"/></linearGradient>
</defs>
<rect width="300" height="400" fill="url(#bg)"/>
<g transform="translate(150 190) scale(1.14) translate(-150 -190)">
"#,
        face_hi = shade(skin, 1.06),
    );

    // Hair that falls behind the head and onto the shoulders.
    match hair_style {
        Hair::Long => {
            let len = r.range(330.0, 370.0);
            let _ = write!(
                s,
                r#"<path d="M78 175 C66 95 108 62 150 62 C192 62 234 95 222 175 C226 240 236 300 240 {len} C200 {l2} 100 {l2} 60 {len} C64 300 74 240 78 175 Z" fill="url(#hairg)"/>"#,
                l2 = len + 8.0
            );
        }
        Hair::Bob => {
            s.push_str(r#"<path d="M76 175 C66 92 108 64 150 64 C192 64 234 92 224 175 C228 215 232 245 226 262 C210 270 190 268 180 262 L120 262 C110 268 90 270 74 262 C68 245 72 215 76 175 Z" fill="url(#hairg)"/>"#);
        }
        Hair::Curls => {
            // Curls round the head down to the shoulders.
            for i in 0..18 {
                let a = std::f32::consts::PI * (0.8 + 1.4 * i as f32 / 17.0);
                let (cx, cy) = (150.0 + 80.0 * a.cos(), 165.0 + 100.0 * a.sin());
                let rr = r.range(24.0, 32.0);
                let _ = write!(
                    s,
                    r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="{rr:.1}" fill="{hair}"/>"#
                );
            }
            let _ = write!(
                s,
                r#"<path d="M70 170 C70 100 110 70 150 70 C190 70 230 100 230 170 L236 250 C210 272 90 272 64 250 Z" fill="{hair}"/>"#
            );
        }
        _ => {}
    }

    // Neck, with the chin's shadow.
    let _ = write!(
        s,
        r#"<path d="M124 215 L124 292 C135 306 165 306 176 292 L176 215 Z" fill="{skin}"/>
<path d="M124 238 C135 262 165 262 176 238 L176 222 L124 222 Z" fill="{skin_shadow}"/>"#
    );

    // Clothes.
    let shoulders = if female {
        "M34 400 C38 342 76 316 124 296 C134 306 166 306 176 296 C224 316 262 342 266 400 Z"
    } else {
        "M26 400 C30 338 70 312 122 294 C132 306 168 306 178 294 C230 312 270 338 274 400 Z"
    };
    match f.clothes {
        Clothes::Suit => {
            let jacket = *r.pick(&JACKETS);
            let shirt = *r.pick(&SHIRTS);
            let tie = *r.pick(&TIES);
            let lapel = shade(jacket, 0.75);
            let _ = write!(
                s,
                r#"<path d="{shoulders}" fill="{jacket}"/>
<path d="M120 294 L150 372 L180 294 C170 304 130 304 120 294 Z" fill="{shirt}"/>
<path d="M120 294 L134 318 L150 304 Z M180 294 L166 318 L150 304 Z" fill="{shirt_shadow}"/>
<path d="M143 310 L157 310 L154 322 L146 322 Z M146 322 L154 322 L160 372 L150 384 L140 372 Z" fill="{tie}"/>
<path d="M118 296 L104 322 L120 334 L108 346 L150 400 L150 384 L132 340 Z" fill="{lapel}"/>
<path d="M182 296 L196 322 L180 334 L192 346 L150 400 L150 384 L168 340 Z" fill="{lapel}"/>"#,
                shirt_shadow = shade(shirt, 0.9),
            );
        }
        Clothes::Jacket => {
            let jacket = *r.pick(&JACKETS);
            let top = *r.pick(&SHIRTS);
            let lapel = shade(jacket, 0.8);
            let _ = write!(
                s,
                r#"<path d="{shoulders}" fill="{jacket}"/>
<path d="M124 296 L150 360 L176 296 C166 306 134 306 124 296 Z" fill="{top}"/>
<path d="M128 300 C136 322 164 322 172 300 C162 308 138 308 128 300 Z" fill="{skin}"/>
<path d="M122 298 L108 326 L122 336 L112 348 L150 400 L150 388 L134 344 Z" fill="{lapel}"/>
<path d="M178 298 L192 326 L178 336 L188 348 L150 400 L150 388 L166 344 Z" fill="{lapel}"/>"#
            );
        }
        Clothes::Blouse => {
            let top = *r.pick(&TOPS);
            let _ = write!(
                s,
                r#"<path d="{shoulders}" fill="{top}"/>
<path d="M116 296 C126 330 174 330 184 296 C170 306 130 306 116 296 Z" fill="{skin}"/>
<path d="M116 296 C126 330 174 330 184 296" fill="none" stroke="{edge}" stroke-width="4"/>"#,
                edge = shade(top, 0.8),
            );
        }
        Clothes::Sweater => {
            let top = *r.pick(&TOPS);
            let _ = write!(
                s,
                r#"<path d="{shoulders}" fill="{top}"/>
<path d="M118 294 C130 314 170 314 182 294 L186 300 C172 324 128 324 114 300 Z" fill="{band}"/>
<path d="M70 400 C72 370 80 350 92 336 M230 400 C228 370 220 350 208 336" stroke="{band}" stroke-width="3" fill="none"/>"#,
                band = shade(top, 0.82),
            );
        }
        Clothes::Turtleneck => {
            let top = *r.pick(&TOPS);
            let fold = shade(top, 0.8);
            let _ = write!(
                s,
                r#"<path d="{shoulders}" fill="{top}"/>
<path d="M122 262 C132 270 168 270 178 262 L182 300 C170 312 130 312 118 300 Z" fill="{top}"/>
<path d="M122 276 C134 284 166 284 178 276 M121 288 C134 297 166 297 179 288" stroke="{fold}" stroke-width="2.5" fill="none"/>"#
            );
        }
    }

    // Long hair in front of the shoulders.
    if hair_style == Hair::Long {
        let _ = write!(
            s,
            r#"<path d="M84 200 C80 250 86 300 98 336 L80 330 C70 290 70 240 78 190 Z M216 200 C220 250 214 300 202 336 L220 330 C230 290 230 240 222 190 Z" fill="{hair}"/>"#
        );
    }

    // Ears (with earrings), then the face.
    let (lx, rx) = (150.0 - face_w - 1.0, 150.0 + face_w + 1.0);
    let _ = write!(
        s,
        r#"<ellipse cx="{lx:.1}" cy="178" rx="10" ry="17" fill="{skin_shadow}"/>
<ellipse cx="{rx:.1}" cy="178" rx="10" ry="17" fill="{skin_shadow}"/>
<ellipse cx="{lx:.1}" cy="178" rx="5" ry="10" fill="{skin_deep}" opacity="0.35"/>
<ellipse cx="{rx:.1}" cy="178" rx="5" ry="10" fill="{skin_deep}" opacity="0.35"/>"#,
    );
    if f.earrings {
        let metal = *r.pick(&["#d4af37", "#c0c0c0", "#e8e4dc"]);
        let _ = write!(
            s,
            r##"<circle cx="{lx:.1}" cy="197" r="3.6" fill="{metal}" stroke="#00000033" stroke-width="0.8"/>
<circle cx="{rx:.1}" cy="197" r="3.6" fill="{metal}" stroke="#00000033" stroke-width="0.8"/>"##
        );
    }
    let (l, rgt) = (150.0 - face_w, 150.0 + face_w);
    let _ = write!(
        s,
        r#"<path d="M{l:.1} 165 C{l:.1} 112 116 88 150 88 C184 88 {rgt:.1} 112 {rgt:.1} 165 C{rgt:.1} 205 {jr1:.1} 232 {jr2:.1} 246 C168 256 160 260 150 260 C140 260 132 256 {jl2:.1} 246 C{jl1:.1} 232 {l:.1} 205 {l:.1} 165 Z" fill="url(#face)"/>"#,
        jr1 = rgt - 12.0 + jaw * 0.4,
        jr2 = 178.0 + jaw,
        jl1 = l + 12.0 - jaw * 0.4,
        jl2 = 122.0 - jaw,
    );

    // Cheeks.
    let _ = write!(
        s,
        r##"<ellipse cx="{cl:.1}" cy="{cy:.1}" rx="13" ry="8" fill="#d9736b" opacity="{o}"/>
<ellipse cx="{cr:.1}" cy="{cy:.1}" rx="13" ry="8" fill="#d9736b" opacity="{o}"/>"##,
        cl = 150.0 - eye_dx - 4.0,
        cr = 150.0 + eye_dx + 4.0,
        cy = eye_y + 28.0,
        o = if female { 0.18 } else { 0.1 },
    );

    // Lines of age: from nose to mouth, then on the forehead and under the eyes.
    if f.lines >= 1 {
        let _ = write!(
            s,
            r#"<path d="M{a:.1} {y0:.1} C{b:.1} {y1:.1} {c:.1} {y2:.1} {d:.1} {y3:.1} M{e:.1} {y0:.1} C{g:.1} {y1:.1} {h:.1} {y2:.1} {k:.1} {y3:.1}" fill="none" stroke="{skin_deep}" stroke-width="1.8" stroke-linecap="round" opacity="0.55"/>"#,
            a = 150.0 - 14.0,
            b = 150.0 - 22.0,
            c = 150.0 - mouth_w - 6.0,
            d = 150.0 - mouth_w - 3.0,
            e = 150.0 + 14.0,
            g = 150.0 + 22.0,
            h = 150.0 + mouth_w + 6.0,
            k = 150.0 + mouth_w + 3.0,
            y0 = eye_y + 34.0,
            y1 = eye_y + 44.0,
            y2 = mouth_y - 8.0,
            y3 = mouth_y + 4.0,
        );
    }
    if f.lines >= 2 {
        let fy = eye_y - 36.0 + brow_lift;
        let _ = write!(
            s,
            r#"<path d="M124 {f1:.1} Q150 {q1:.1} 176 {f1:.1} M130 {f2:.1} Q150 {q2:.1} 170 {f2:.1}" fill="none" stroke="{skin_deep}" stroke-width="1.5" stroke-linecap="round" opacity="0.45"/>"#,
            f1 = fy,
            q1 = fy - 4.0,
            f2 = fy - 8.0,
            q2 = fy - 12.0,
        );
        for side in [-1.0f32, 1.0] {
            let ex = 150.0 + side * eye_dx;
            let _ = write!(
                s,
                r#"<path d="M{a:.1} {y:.1} Q{ex:.1} {q:.1} {b:.1} {y:.1}" fill="none" stroke="{skin_deep}" stroke-width="1.4" stroke-linecap="round" opacity="0.45"/>"#,
                a = ex - 9.0,
                b = ex + 9.0,
                y = eye_y + 10.0,
                q = eye_y + 14.0,
            );
        }
    }

    // Eyes: white, iris, pupil, highlight, upper lid (and lashes).
    for side in [-1.0f32, 1.0] {
        let ex = 150.0 + side * eye_dx;
        let _ = write!(
            s,
            r##"<path d="M{a:.1} {y:.1} C{b:.1} {t:.1} {c:.1} {t:.1} {d:.1} {y:.1} C{c:.1} {u:.1} {b:.1} {u:.1} {a:.1} {y:.1} Z" fill="#fbfbf8"/>
<circle cx="{ex:.1}" cy="{iy:.1}" r="5.6" fill="{iris}"/>
<circle cx="{ex:.1}" cy="{iy:.1}" r="2.6" fill="#111"/>
<circle cx="{hx:.1}" cy="{hy:.1}" r="1.4" fill="#fff"/>
<path d="M{a:.1} {y:.1} C{b:.1} {t:.1} {c:.1} {t:.1} {d:.1} {y:.1}" fill="none" stroke="{lid}" stroke-width="{lid_w}" stroke-linecap="round"/>"##,
            a = ex - 12.0,
            b = ex - 6.0,
            c = ex + 6.0,
            d = ex + 12.0,
            y = eye_y,
            t = eye_y - 8.0,
            u = eye_y + 6.0,
            iy = eye_y - 0.5,
            hx = ex + 1.8,
            hy = eye_y - 2.4,
            lid = if female {
                "#1d1714".to_owned()
            } else {
                shade(skin, 0.45)
            },
            lid_w = if female { 2.8 } else { 2.2 },
        );
        if f.lashes {
            // Three short lashes at the outer corner.
            let o = ex + side * 12.0;
            let _ = write!(
                s,
                r##"<path d="M{x0:.1} {y0:.1} l{dx1:.1} -4 M{x1:.1} {y1:.1} l{dx2:.1} -5 M{x2:.1} {y2:.1} l{dx3:.1} -5" fill="none" stroke="#1d1714" stroke-width="1.6" stroke-linecap="round"/>"##,
                x0 = o,
                y0 = eye_y - 0.5,
                dx1 = side * 4.0,
                x1 = o - side * 3.5,
                y1 = eye_y - 4.0,
                dx2 = side * 3.0,
                x2 = o - side * 7.5,
                y2 = eye_y - 6.0,
                dx3 = side * 2.0,
            );
        }
        // Brow: thicker towards the nose.
        let by = eye_y - 16.0 + brow_lift;
        let inner = ex - side * 12.0;
        let outer = ex + side * 13.0;
        let _ = write!(
            s,
            r#"<path d="M{inner:.1} {b1:.1} Q{ex:.1} {b2:.1} {outer:.1} {b3:.1}" fill="none" stroke="{brow}" stroke-width="{brow_width}" stroke-linecap="round"/>"#,
            b1 = by + 2.0,
            b2 = by - 5.0,
            b3 = by + 2.5,
        );
    }

    // Nose: a soft side shadow and the nostrils.
    let ny = eye_y + 36.0;
    let _ = write!(
        s,
        r#"<path d="M146 {n0:.1} C144 {n1:.1} 140 {n2:.1} 141 {ny:.1} C143 {n3:.1} 148 {n3:.1} 150 {n4:.1} C152 {n3:.1} 157 {n3:.1} 159 {ny:.1}" fill="none" stroke="{skin_deep}" stroke-width="2" stroke-linecap="round" opacity="0.8"/>"#,
        n0 = eye_y + 6.0,
        n1 = eye_y + 20.0,
        n2 = ny - 8.0,
        n3 = ny + 4.0,
        n4 = ny + 2.0,
    );

    // Beard under the mouth, so the lips stay visible.
    if f.beard {
        let _ = write!(
            s,
            r#"<path d="M{l:.1} 190 C{l2:.1} 225 120 258 150 262 C180 258 {r2:.1} 225 {rgt:.1} 190 C{r3:.1} 215 178 {m0:.1} 150 {m0:.1} C122 {m0:.1} {l3:.1} 215 {l:.1} 190 Z" fill="{hair}" opacity="0.92"/>"#,
            l = l + 2.0,
            rgt = rgt - 2.0,
            l2 = l + 6.0,
            r2 = rgt - 6.0,
            l3 = l + 16.0,
            r3 = rgt - 16.0,
            m0 = mouth_y - 10.0,
        );
    }

    // Mouth: lips and the line between them.
    let (ml, mr) = (150.0 - mouth_w, 150.0 + mouth_w);
    let _ = write!(
        s,
        r#"<path d="M{ml:.1} {my:.1} C{a:.1} {up:.1} 146 {up2:.1} 150 {up3:.1} C154 {up2:.1} {b:.1} {up:.1} {mr:.1} {my:.1} C{b:.1} {lo:.1} {a:.1} {lo:.1} {ml:.1} {my:.1} Z" fill="{lips}"/>
<path d="M{ml:.1} {my:.1} Q150 {mid:.1} {mr:.1} {my:.1}" fill="none" stroke="{line}" stroke-width="1.6" stroke-linecap="round"/>"#,
        my = mouth_y,
        a = ml + 5.0,
        b = mr - 5.0,
        up = mouth_y - 5.0,
        up2 = mouth_y - 6.0,
        up3 = mouth_y - 4.0,
        lo = mouth_y + 8.0 + smile * 0.4,
        mid = mouth_y + smile * 0.6,
        line = shade(&lips, 0.6),
    );

    // Hair over the forehead.
    let fringe = match hair_style {
        Hair::Crop | Hair::Bun => Some(
            "M82 172 C74 100 108 70 150 70 C192 70 226 100 218 172 C212 140 204 122 192 112 C170 124 128 122 106 110 C94 124 86 144 82 172 Z",
        ),
        Hair::SidePart => Some(
            "M82 176 C72 98 110 68 152 68 C196 68 228 100 218 176 C214 140 206 122 196 112 C176 100 150 96 128 104 C110 112 92 136 82 176 Z M128 104 C118 96 110 96 100 104 C112 100 120 102 128 104 Z",
        ),
        Hair::Long | Hair::Bob => Some(
            "M80 180 C70 98 110 66 150 66 C190 66 230 98 220 180 C214 146 208 126 196 112 C182 124 172 128 150 124 C130 120 118 112 108 110 C94 126 86 150 80 180 Z",
        ),
        Hair::Curls => None,
        Hair::Buzz => Some(
            "M88 160 C86 106 114 84 150 84 C186 84 214 106 212 160 C206 132 196 116 184 108 C164 114 136 114 116 108 C104 116 94 132 88 160 Z",
        ),
        // Hair at the sides and the back of the crown; the forehead and the top are bare.
        Hair::Receding => Some(
            "M84 176 C78 138 86 110 104 96 C100 118 96 146 94 176 Z M216 176 C222 138 214 110 196 96 C200 118 204 146 206 176 Z",
        ),
    };
    if hair_style == Hair::Bun {
        let _ = write!(s, r#"<circle cx="150" cy="62" r="24" fill="url(#hairg)"/>"#);
    }
    if let Some(d) = fringe {
        let opacity = if hair_style == Hair::Buzz { 0.85 } else { 1.0 };
        let _ = write!(
            s,
            r#"<path d="{d}" fill="url(#hairg)" opacity="{opacity}"/>"#
        );
    }
    if hair_style == Hair::Curls {
        for i in 0..7 {
            let x = 104.0 + i as f32 * 15.5;
            let y = 98.0 + (i as f32 - 3.0).abs() * 3.0;
            let _ = write!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="{rr:.1}" fill="{hair}"/>"#,
                rr = r.range(12.0, 15.0)
            );
        }
    }

    if f.glasses {
        let frame = *r.pick(&["#1f1f1f", "#5a3d2b", "#6b6f76", "#2a3b5c"]);
        let round = r.chance(0.5);
        let rx = if round { 11.0 } else { 4.0 };
        for side in [-1.0f32, 1.0] {
            let ex = 150.0 + side * eye_dx;
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{y:.1}" width="30" height="22" rx="{rx}" fill="#dfeaf5" fill-opacity="0.18" stroke="{frame}" stroke-width="3"/>"##,
                x = ex - 15.0,
                y = eye_y - 12.0,
            );
        }
        let _ = write!(
            s,
            r#"<path d="M{a:.1} {y:.1} Q150 {q:.1} {b:.1} {y:.1} M{c:.1} {y2:.1} L{l:.1} {y3:.1} M{d:.1} {y2:.1} L{rgt:.1} {y3:.1}" fill="none" stroke="{frame}" stroke-width="2.6"/>"#,
            a = 150.0 - eye_dx + 15.0,
            b = 150.0 + eye_dx - 15.0,
            y = eye_y - 3.0,
            q = eye_y - 7.0,
            c = 150.0 - eye_dx - 15.0,
            d = 150.0 + eye_dx + 15.0,
            y2 = eye_y - 4.0,
            y3 = eye_y - 6.0,
        );
    }

    s.push_str("</g></svg>");
    s
}

fn rgb(hex: &str) -> (f32, f32, f32) {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0);
    (
        ((v >> 16) & 0xFF) as f32,
        ((v >> 8) & 0xFF) as f32,
        (v & 0xFF) as f32,
    )
}

fn hex((r, g, b): (f32, f32, f32)) -> String {
    let c = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    format!("#{:02x}{:02x}{:02x}", c(r), c(g), c(b))
}

/// Darker below 1, lighter above.
fn shade(color: &str, factor: f32) -> String {
    let (r, g, b) = rgb(color);
    hex((r * factor, g * factor, b * factor))
}

fn mix(a: &str, b: &str, t: f32) -> String {
    let (a, b) = (rgb(a), rgb(b));
    hex((
        a.0 + (b.0 - a.0) * t,
        a.1 + (b.1 - a.1) * t,
        a.2 + (b.2 - a.2) * t,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_face() {
        let a = portrait_png(7);
        assert_eq!(a, portrait_png(7));
        assert_ne!(a, portrait_png(8));
        assert_eq!(
            crate::png::dimensions(&a),
            Some((PORTRAIT_WIDTH, PORTRAIT_HEIGHT))
        );
    }

    #[test]
    fn every_variant_is_valid_svg() {
        for seed in 0..64 {
            for (gender, age) in [(Gender::Female, 24), (Gender::Male, 61)] {
                let svg = Sitter { seed, gender, age }.svg();
                usvg::Tree::from_str(&svg, &usvg::Options::default())
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            }
        }
    }

    /// Whatever the seed, a woman is drawn with a woman's hair and no beard, a man with a man's
    /// hair and no lashes or earrings; grey hair and lines come with age and never before.
    #[test]
    fn gender_and_age_decide_what_they_should() {
        for seed in 0..200 {
            for age in [22u8, 35, 44, 50, 58, 66] {
                let woman = Sitter {
                    seed,
                    gender: Gender::Female,
                    age,
                }
                .features();
                assert!(Hair::FEMININE.contains(&woman.hair), "{seed} {age}");
                assert!(!woman.beard && woman.lashes && woman.clothes != Clothes::Suit);
                let man = Sitter {
                    seed,
                    gender: Gender::Male,
                    age,
                }
                .features();
                assert!(Hair::MASCULINE.contains(&man.hair), "{seed} {age}");
                assert!(!man.lashes && !man.earrings && man.clothes != Clothes::Jacket);
                assert!(man.hair != Hair::Receding || age >= 45);
                for f in [&woman, &man] {
                    assert_eq!(f.grey, GREY.contains(&f.hair_colour));
                    assert!(age >= 44 || !f.grey, "grey at {age}");
                    assert!(age < 58 || f.grey, "not grey at {age}");
                    assert_eq!(
                        f.lines,
                        [0, 1, 2][usize::from(age >= 40) + usize::from(age >= 52)]
                    );
                }
            }
        }
        // The drawing follows the features: a beard is drawn in the hair's colour.
        let bearded = (0..)
            .map(|seed| Sitter {
                seed,
                gender: Gender::Male,
                age: 30,
            })
            .find(|s| s.features().beard)
            .unwrap();
        assert!(bearded.svg().contains("opacity=\"0.92\""));
    }
}

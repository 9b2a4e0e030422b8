//! Hostile portraits for [`tessera_print::photo::normalise`]: decompression bombs (a PNG or a
//! JPEG whose header declares a huge picture) are refused from the header, without the memory a
//! decoder would take, which this binary's allocator measures; pictures that are not JPEG or PNG,
//! a truncated JPEG and a crop outside the picture are refused with a sentence; and what comes out
//! fits the stored portrait size and carries no EXIF.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use tessera_core::ports::Crop;
use tessera_print::photo::{normalise, STORED_HEIGHT, STORED_WIDTH};

/// Records the largest allocation made on each thread, so that a test can see how much memory
/// a call asked for while other tests run beside it.
struct LargestPerThread;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

unsafe impl GlobalAlloc for LargestPerThread {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestPerThread = LargestPerThread;

/// The largest allocation `f` made on this thread, and its result.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (usize, T) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (LARGEST.with(Cell::get), out)
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut typed = kind.to_vec();
    typed.extend(data);
    out.extend(&typed);
    out.extend(crc32(&typed).to_be_bytes());
}

/// A PNG whose header declares `width`×`height` RGB pixels, with a small zlib stream of zeros
/// for the pixels (a well-formed start of what would inflate to gigabytes).
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    // zlib: header, one stored block of 1024 zeros, Adler-32 of them.
    let mut idat = vec![0x78, 0x01, 0x01, 0x00, 0x04, 0xFF, 0xFB];
    idat.extend([0u8; 1024]);
    // Adler-32 of 1024 zeros: a = 1, b = 1024 × 1.
    idat.extend((1024u32 << 16 | 1).to_be_bytes());
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn picture(width: u32, height: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    })
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    picture(width, height)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    picture(width, height)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    out
}

fn refusal(bytes: &[u8], crop: Option<Crop>) -> String {
    match normalise(bytes, crop) {
        Ok(out) => panic!("the photo was taken ({} bytes out)", out.len()),
        Err(e) => e.message,
    }
}

/// The offset of the first SOF0 marker's height field (after FF C0, length, precision).
fn sof_dimensions(jpeg: &[u8]) -> usize {
    jpeg.windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline JPEG")
        + 5
}

#[test]
fn a_png_bomb_is_refused_from_its_header_without_the_memory() {
    // The measure works: a real 1000×2000 picture is decoded into one buffer of its pixels.
    let real = png(1000, 2000);
    let (largest, taken) = largest_allocation(|| normalise(&real, None));
    assert!(taken.is_ok() && largest >= 1000 * 2000 * 3, "{largest}");
    for (width, height) in [(20_000, 20_000), (7_000, 7_000)] {
        let bomb = png_bomb(width, height);
        assert!(bomb.len() < 2_000, "the bomb itself is tiny");
        let (largest, refused) = largest_allocation(|| normalise(&bomb, None));
        let message = refused.unwrap_err().message;
        assert!(
            message.contains(&format!("{width}×{height} pixels")),
            "{message}"
        );
        assert!(message.contains("40 megapixels"), "{message}");
        // Decoding would have asked for width × height × 3 bytes at once.
        assert!(largest < 1024 * 1024, "{largest} bytes allocated at once");
    }
}

#[test]
fn a_jpeg_declaring_a_huge_picture_is_refused_without_the_memory() {
    let mut huge = jpeg(64, 64);
    let at = sof_dimensions(&huge);
    huge[at..at + 4].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]); // 60000 × 60000
    let (largest, refused) = largest_allocation(|| normalise(&huge, None));
    let message = refused.unwrap_err().message;
    assert!(message.contains("60000×60000 pixels"), "{message}");
    assert!(largest < 1024 * 1024, "{largest} bytes allocated at once");
}

#[test]
fn what_is_not_a_jpeg_or_png_is_refused() {
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec();
    let mut webp = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00".to_vec();
    webp.extend([0u8; 10]);
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"800\"><rect width=\"600\" height=\"800\"/></svg>".to_vec();
    let text = b"uid,given_name\njdoe,Jane\n".to_vec();
    for (what, bytes) in [
        ("GIF", gif),
        ("WebP", webp),
        ("SVG", svg),
        ("text", text),
        ("nothing", Vec::new()),
    ] {
        assert_eq!(
            refusal(&bytes, None),
            "the photo is not a JPEG or PNG image",
            "{what}"
        );
    }
}

#[test]
fn a_truncated_picture_is_refused() {
    let (jpeg, png) = (jpeg(200, 200), png(200, 200));
    // A JPEG without its end marker, or cut in its scan (which the decoder would fill with grey);
    // a PNG cut in its pixel data.
    let cuts = [
        (&jpeg, jpeg.len() - 2),
        (&jpeg, jpeg.len() / 2),
        (&jpeg, 40),
        (&png, png.len() / 2),
        (&png, 40),
    ];
    for (whole, cut) in cuts {
        assert!(normalise(whole, None).is_ok());
        let message = refusal(&whole[..cut], None);
        assert!(
            message.starts_with("the photo cannot be"),
            "cut at {cut} of {}: {message}",
            whole.len()
        );
    }
    let message = refusal(&jpeg[..jpeg.len() / 2], None);
    assert!(message.contains("cut short"), "{message}");
}

#[test]
fn exif_does_not_survive() {
    let plain = jpeg(300, 400);
    // APP1 "Exif": a big-endian TIFF header and one IFD entry (the camera's make).
    let mut tiff = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    tiff.extend([0x01, 0x0F, 0x00, 0x02, 0, 0, 0, 6, 0, 0, 0, 0x1A]);
    tiff.extend([0, 0, 0, 0]);
    tiff.extend(b"Canon\0");
    let mut with_exif = plain[..2].to_vec();
    with_exif.extend([0xFF, 0xE1]);
    with_exif.extend(((tiff.len() + 2) as u16).to_be_bytes());
    with_exif.extend(&tiff);
    with_exif.extend(&plain[2..]);
    let has = |bytes: &[u8], what: &[u8]| bytes.windows(what.len()).any(|w| w == what);
    assert!(has(&with_exif, b"Exif") && has(&with_exif, b"Canon"));
    assert!(image::load_from_memory(&with_exif).is_ok(), "still a JPEG");

    let out = normalise(&with_exif, None).unwrap();
    assert!(!has(&out, b"Exif"), "the EXIF block is gone");
    assert!(!has(&out, b"Canon"));
    assert_eq!(image::guess_format(&out).unwrap(), image::ImageFormat::Jpeg);
}

#[test]
fn a_crop_outside_the_picture_is_refused() {
    let photo = png(200, 300);
    for crop in [
        Crop {
            x: 150,
            y: 0,
            width: 100,
            height: 100,
        },
        Crop {
            x: 0,
            y: 250,
            width: 100,
            height: 100,
        },
        Crop {
            x: u32::MAX,
            y: 0,
            width: 100,
            height: 100,
        },
        Crop {
            x: 0,
            y: 0,
            width: 10,
            height: 10,
        },
    ] {
        let message = refusal(&photo, Some(crop));
        assert!(message.contains("does not fit"), "{crop:?}: {message}");
    }
    let inside = normalise(
        &photo,
        Some(Crop {
            x: 50,
            y: 50,
            width: 120,
            height: 150,
        }),
    )
    .unwrap();
    let out = image::load_from_memory(&inside).unwrap();
    assert_eq!((out.width(), out.height()), (120, 150));
}

#[test]
fn what_comes_out_fits_the_stored_portrait() {
    for (width, height) in [(1000, 2000), (3000, 1000), (480, 600), (100, 100)] {
        let out = normalise(&png(width, height), None).unwrap();
        let out = image::load_from_memory(&out).unwrap();
        assert!(
            out.width() <= STORED_WIDTH && out.height() <= STORED_HEIGHT,
            "{width}×{height} became {}×{}",
            out.width(),
            out.height()
        );
        // The shape is kept (within a pixel of rounding).
        let before = width as f64 / height as f64;
        let after = out.width() as f64 / out.height() as f64;
        assert!((before - after).abs() < 0.02, "{before} vs {after}");
    }
    let message = refusal(&png(40, 200), None);
    assert!(message.contains("smaller than the 60×60"), "{message}");
}

/// `plain` with an EXIF block whose only entry is the orientation.
fn with_orientation(plain: &[u8], orientation: u16) -> Vec<u8> {
    // big-endian TIFF header, one IFD entry: tag 0x0112, SHORT, count 1, the value
    let mut tiff = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    tiff.extend([0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]);
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0, 0, 0, 0, 0]);
    let mut out = plain[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((tiff.len() + 2) as u16).to_be_bytes());
    out.extend(&tiff);
    out.extend(&plain[2..]);
    out
}

#[test]
fn a_photo_turned_by_its_exif_is_stored_upright() {
    // Stored as the sensor saw it: 200 wide, 100 high, the left half red, the right half blue.
    let sideways = image::RgbImage::from_fn(200, 100, |x, _| {
        if x < 100 {
            image::Rgb([220, 20, 20])
        } else {
            image::Rgb([20, 20, 220])
        }
    });
    let mut plain = Vec::new();
    sideways
        .write_to(
            &mut std::io::Cursor::new(&mut plain),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    // Orientation 6: shown turned a quarter clockwise, so the left half ends on top.
    let out = image::load_from_memory(&normalise(&with_orientation(&plain, 6), None).unwrap())
        .unwrap()
        .to_rgb8();
    assert_eq!((out.width(), out.height()), (100, 200));
    let red = |p: &image::Rgb<u8>| p[0] > 150 && p[2] < 100;
    let blue = |p: &image::Rgb<u8>| p[2] > 150 && p[0] < 100;
    assert!(
        red(out.get_pixel(50, 40)),
        "the top is red: {:?}",
        out.get_pixel(50, 40)
    );
    assert!(blue(out.get_pixel(50, 160)), "the bottom is blue");
    // A crop is in the turned picture's pixels, as the browser showed it.
    let cropped = normalise(
        &with_orientation(&plain, 6),
        Some(Crop {
            x: 0,
            y: 100,
            width: 100,
            height: 100,
        }),
    )
    .unwrap();
    let cropped = image::load_from_memory(&cropped).unwrap().to_rgb8();
    assert!(
        blue(cropped.get_pixel(50, 50)),
        "the crop took the bottom half"
    );
    // Without EXIF nothing turns.
    let same = image::load_from_memory(&normalise(&plain, None).unwrap()).unwrap();
    assert_eq!((same.width(), same.height()), (200, 100));
}

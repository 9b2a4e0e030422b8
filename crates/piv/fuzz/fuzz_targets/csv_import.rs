//! People imports: `tessera_core::people::csv_file::read` on a CSV file as anyone with the
//! import permission could send it (any bytes: broken quotes, stray carriage returns, another
//! encoding, huge fields).
//!
//! Input: byte 0 picks the column mapping (bit 0: the uid comes from a column named `id`; bit 1:
//! the email from `mail`; bit 2: groups are separated by `|`), the rest is the file. Photos named
//! in a `photo` column exist when their name starts with `p`. Besides "never panics": every person
//! and every rejected line is placed on a line of the file, the people in the order of their lines,
//! and a file that is not UTF-8 is refused whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::people::csv_file::{self, CsvMapping, PhotoFiles};

struct SomePhotos;

impl PhotoFiles for SomePhotos {
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        assert!(
            !name.contains(['/', '\\']),
            "a photo is asked for by a plain name only: {name:?}"
        );
        Ok(name.starts_with('p').then(|| name.as_bytes().to_vec()))
    }
}

fn line_of(at: &str) -> usize {
    at.strip_prefix("line ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a line: {at:?}"))
}

fuzz_target!(|data: &[u8]| {
    let [selector, file @ ..] = data else {
        return;
    };
    let mut pairs = Vec::new();
    if selector & 1 != 0 {
        pairs.push("uid=id");
    }
    if selector & 2 != 0 {
        pairs.push("email=mail");
    }
    let mut mapping = CsvMapping::default().with_pairs(pairs).expect("valid pairs");
    if selector & 4 != 0 {
        mapping.group_separator = "|".into();
    }
    let Ok(reading) = csv_file::read(file, &mapping, &SomePhotos) else {
        return;
    };
    assert!(
        std::str::from_utf8(file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(file)).is_ok(),
        "a file that is not UTF-8 was read"
    );
    // Lines end at `\n`, `\r\n` and a lone `\r`, as the reader takes them.
    let ends = file
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && file.get(i + 1) != Some(&b'\n')))
        .count();
    let lines = ends + 1;
    let mut last = 1;
    for person in &reading.people {
        let line = line_of(&person.origin);
        assert!(line > last && line <= lines, "{} of {lines}", person.origin);
        last = line;
    }
    for rejected in &reading.rejected {
        let line = line_of(&rejected.at);
        assert!(line >= 2 && line <= lines, "{} of {lines}", rejected.at);
    }
});

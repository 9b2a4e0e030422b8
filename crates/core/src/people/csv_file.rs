//! Reading an HR export: a CSV file with a header row, its columns mapped to Tessera's fields.
//!
//! The file must be UTF-8 (a byte-order mark is allowed; Excel's "CSV UTF-8" writes one). A file
//! that cannot be read at all (another encoding, too large, no header, no uid column) is refused
//! whole with the reason; a line that cannot be taken (wrong number of fields, no uid, a photo
//! that is missing) is rejected with its line number while the others go on, and the report lists
//! it. A quote left open loses only its own line: the lines it would swallow are read on their
//! own, and a rejected line still names its uid, so that a complete import disables nobody
//! because of a typo.

use super::source::{Rejected, SourcePerson, SourceReading};
use crate::error::CoreError;
use crate::ids::UserId;
use crate::model::UserSource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The largest file an import reads.
pub const MAX_FILE_BYTES: usize = 256 * 1024 * 1024;
/// The most photo bytes one import holds (a small ZIP can name one large photo on every line).
pub const MAX_PHOTO_BYTES_TOTAL: usize = 1024 * 1024 * 1024;
/// The most people one file may hold.
pub const MAX_ROWS: usize = 2_000_000;

/// The fields a column can fill.
pub const FIELDS: [&str; 13] = [
    "uid",
    "given_name",
    "family_name",
    "display_name",
    "email",
    "upn",
    "employee_id",
    "department",
    "title",
    "groups",
    "photo",
    "disabled",
    "fingerprints",
];

/// Which column fills which field. A field not named here is filled by the column of the same
/// name, if there is one (case and spaces do not matter); columns named `attr.NAME`, and those
/// listed in `attributes`, become free attributes that layouts and certificate templates bind as
/// `user.attributes.NAME`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvMapping {
    /// Field (one of [`FIELDS`]) -> column header.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Further columns kept as free attributes under their own (lower-case) name.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Separates several groups in the groups column; `;` when empty.
    #[serde(default)]
    pub group_separator: String,
}

impl CsvMapping {
    /// Parses `field=Header` pairs (from `--map` options or the import form).
    pub fn with_pairs<'a>(
        mut self,
        pairs: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, CoreError> {
        for pair in pairs {
            let (field, header) = pair.split_once('=').ok_or_else(|| {
                CoreError::Invalid(format!(
                    "the mapping {pair:?} is not of the form field=Column"
                ))
            })?;
            let field = field.trim().to_lowercase();
            if field.starts_with("attr.") {
                // Given again at every run, a column is kept once.
                let header = header.trim().to_owned();
                if !self.attributes.contains(&header) {
                    self.attributes.push(header);
                }
                continue;
            }
            if !FIELDS.contains(&field.as_str()) {
                return Err(CoreError::Invalid(format!(
                    "{field:?} is not a field a column can fill; the fields are {}",
                    FIELDS.join(", ")
                )));
            }
            let header = header.trim();
            if header.is_empty() {
                self.columns.remove(&field);
            } else {
                self.columns.insert(field, header.to_owned());
            }
        }
        Ok(self)
    }

    fn separator(&self) -> &str {
        if self.group_separator.is_empty() {
            ";"
        } else {
            &self.group_separator
        }
    }
}

/// Where the files a photo column names are found: a folder beside the file (CLI) or a ZIP
/// uploaded with it (portal).
pub trait PhotoFiles: Send + Sync {
    /// The bytes of the file `name` (a plain file name, already checked to hold no path), or
    /// `None` when there is no such file. The error is a sentence (the ZIP is corrupt, say).
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, String>;
}

/// No photo files: each line that names a photo is taken without it, with a note.
pub struct NoPhotos;

impl PhotoFiles for NoPhotos {
    fn get(&self, _name: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
}

fn normalise(header: &str) -> String {
    header
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .collect()
}

/// Where each field and attribute is in a row.
struct Columns {
    fields: BTreeMap<&'static str, usize>,
    attributes: Vec<(String, usize)>,
}

fn locate(headers: &[String], mapping: &CsvMapping) -> Result<Columns, CoreError> {
    let find = |name: &str| headers.iter().position(|h| normalise(h) == normalise(name));
    let mut fields = BTreeMap::new();
    for field in FIELDS {
        let at = match mapping.columns.get(field) {
            Some(header) => Some(find(header).ok_or_else(|| {
                CoreError::ImportRefused(format!(
                    "the file has no column {header:?} for the field {field}; its columns are {}",
                    headers.join(", ")
                ))
            })?),
            None => find(field),
        };
        if let Some(at) = at {
            fields.insert(field, at);
        }
    }
    if !fields.contains_key("uid") {
        return Err(CoreError::ImportRefused(format!(
            "the file has no uid column: name one (uid=Column); its columns are {}",
            headers.join(", ")
        )));
    }
    let mut attributes = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let h = h.trim();
        let name = if let Some(rest) = h.strip_prefix("attr.") {
            Some(rest.to_lowercase())
        } else if mapping
            .attributes
            .iter()
            .any(|a| normalise(a) == normalise(h))
        {
            Some(h.to_lowercase())
        } else {
            None
        };
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            attributes.push((name, i));
        }
    }
    Ok(Columns { fields, attributes })
}

/// How many lines end in `bytes`: at each `\n`, and at each `\r` not followed by one (files
/// saved by old Macintosh spreadsheets end lines with `\r` alone, and the reader takes those).
fn line_ends(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count()
}

/// Where the line after the first line of `text` starts, if there is one.
fn next_line(text: &[u8]) -> Option<usize> {
    let at = text.iter().position(|&b| b == b'\n' || b == b'\r')?;
    Some(if text[at..].starts_with(b"\r\n") {
        at + 2
    } else {
        at + 1
    })
}

/// The line and byte of the first byte that is not UTF-8, for the refusal.
fn first_invalid(bytes: &[u8]) -> Option<(usize, u8)> {
    let err = std::str::from_utf8(bytes).err()?;
    let at = err.valid_up_to();
    let line = line_ends(&bytes[..at]) + 1;
    Some((line, bytes[at]))
}

fn yes(value: &str) -> bool {
    matches!(
        value.trim().to_lowercase().as_str(),
        "1" | "true" | "yes" | "y" | "disabled" | "inactive"
    )
}

/// Reads a CSV file with `mapping`; photos named in the photo column come from `photos`.
pub fn read(
    bytes: &[u8],
    mapping: &CsvMapping,
    photos: &dyn PhotoFiles,
) -> Result<SourceReading, CoreError> {
    read_within(bytes, mapping, photos, MAX_FILE_BYTES, MAX_ROWS)
}

fn reader_of(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(bytes)
}

/// Counts lines as records are found: the line of a byte offset. Newlines are counted once, as offsets only move
/// forward.
struct LineCounter {
    counted_to: usize,
    line: usize,
}

impl LineCounter {
    fn line_of(&mut self, bytes: &[u8], offset: usize) -> usize {
        let offset = offset.min(bytes.len());
        if offset > self.counted_to {
            self.line += line_ends(&bytes[self.counted_to..offset]);
            self.counted_to = offset;
        }
        self.line
    }
}

/// `256 MiB`, `64 KiB`: rounded up, so that a file over a limit never reads as the limit.
fn size(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB {
        format!("{} MiB", bytes.div_ceil(MIB))
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

/// [`read`] with the limits as parameters, so that tests can reach them with small files.
fn read_within(
    bytes: &[u8],
    mapping: &CsvMapping,
    photos: &dyn PhotoFiles,
    max_bytes: usize,
    max_rows: usize,
) -> Result<SourceReading, CoreError> {
    if bytes.len() > max_bytes {
        return Err(CoreError::ImportRefused(format!(
            "the file is {}, more than the {} an import reads: split it into several files",
            size(bytes.len()),
            size(max_bytes)
        )));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Some((line, byte)) = first_invalid(bytes) {
        return Err(CoreError::ImportRefused(format!(
            "the file is not UTF-8 text (line {line} has the byte 0x{byte:02X}): save it as \"CSV UTF-8\" and import it again"
        )));
    }
    let mut reader = reader_of(bytes);
    let mut record = csv::StringRecord::new();
    let read_header = reader
        .read_record(&mut record)
        .map_err(|e| CoreError::ImportRefused(format!("the header row cannot be read: {e}")))?;
    let headers: Vec<String> = record.iter().map(str::to_owned).collect();
    if !read_header || headers.iter().all(|h| h.trim().is_empty()) {
        return Err(CoreError::ImportRefused(
            "the file is empty or its first line is not a header row".into(),
        ));
    }
    let columns = locate(&headers, mapping)?;
    let mut reading = SourceReading::new(UserSource::Csv);
    reading.has_photos = columns.fields.contains_key("photo");
    let mut lines = LineCounter {
        counted_to: 0,
        line: 1,
    };
    // The reader starts again after a line whose quote is not closed: without that, the quoted
    // field would swallow every line after it, and those people would be missing (and, in a
    // complete import, disabled).
    let mut start = reader.position().byte() as usize;
    let mut photo_bytes = 0usize;
    'segments: loop {
        let mut reader = reader_of(&bytes[start..]);
        loop {
            let read = reader.read_record(&mut record);
            let at_byte = match &read {
                Ok(_) => record.position().map(|p| p.byte() as usize),
                Err(e) => e.position().map(|p| p.byte() as usize),
            };
            let mut offset = start + at_byte.unwrap_or(0);
            let end = start + reader.position().byte() as usize;
            // The position may be that of blank lines the reader skipped before the record.
            while offset < end && matches!(bytes[offset], b'\n' | b'\r') {
                offset += 1;
            }
            let line = lines.line_of(bytes, offset);
            let at = format!("line {line}");
            match read {
                Ok(false) => break 'segments,
                Ok(true) => {}
                Err(e) => {
                    reading.rejected.push(Rejected {
                        at,
                        uid: None,
                        reason: format!("the line cannot be read as CSV: {e}"),
                    });
                    continue;
                }
            }
            if record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            if reading.people.len() + reading.rejected.len() >= max_rows {
                return Err(CoreError::ImportRefused(format!(
                    "the file has more than {max_rows} people: split it into several files"
                )));
            }
            let uid_of = |record: &csv::StringRecord| {
                columns
                    .fields
                    .get("uid")
                    .and_then(|&i| record.get(i))
                    .map(str::trim)
                    .filter(|u| !u.is_empty() && !u.contains(['\n', '\r']))
                    .map(str::to_owned)
            };
            // A record over several lines is a quoted field holding a newline: never right in a
            // field Tessera takes, and most often a quote left open.
            let text = &bytes[offset.min(end)..end];
            let spans_lines = text
                .iter()
                .rposition(|&b| b != b'\n' && b != b'\r')
                .is_some_and(|last| line_ends(&text[..last]) > 0);
            let taken = columns
                .fields
                .values()
                .chain(columns.attributes.iter().map(|(_, i)| i));
            let newline_in_taken = taken
                .filter_map(|&i| record.get(i))
                .any(|f| f.contains(['\n', '\r']));
            // A newline in a column not taken (notes, an address) is fine, unless a line inside
            // the field has as many fields as the header: a record swallowed by an open quote.
            let swallows_a_record = || {
                text.split(|&b| b == b'\n' || b == b'\r').skip(1).any(|l| {
                    let mut one = reader_of(l);
                    let mut r = csv::StringRecord::new();
                    matches!(one.read_record(&mut r), Ok(true)) && r.len() == headers.len()
                })
            };
            if spans_lines
                && (record.len() != headers.len() || newline_in_taken || swallows_a_record())
            {
                reading.rejected.push(Rejected {
                    at,
                    uid: uid_of(&record),
                    reason: "a quoted field on this line runs over the next lines (a quote not \
                             closed?): this line was not taken, and the lines after it were read \
                             on their own"
                        .into(),
                });
                start = offset.min(end) + next_line(text).unwrap_or(text.len());
                continue 'segments;
            }
            if record.len() != headers.len() {
                reading.rejected.push(Rejected {
                    at,
                    uid: uid_of(&record),
                    reason: format!(
                        "the line has {} fields where the header has {} (a quote not closed, or a separator too many?)",
                        record.len(),
                        headers.len()
                    ),
                });
                continue;
            }
            match person_of(&record, &columns, mapping, photos, &at) {
                Ok((person, photo_refused)) => {
                    reading.rejected.extend(photo_refused);
                    photo_bytes += person.photo.as_ref().map_or(0, Vec::len);
                    if photo_bytes > MAX_PHOTO_BYTES_TOTAL {
                        return Err(CoreError::ImportRefused(format!(
                            "the photos this file names add up to more than {} MiB (at {at}): import it in several parts",
                            MAX_PHOTO_BYTES_TOTAL / (1024 * 1024)
                        )));
                    }
                    reading.people.push(person)
                }
                Err(rejected) => reading.rejected.push(rejected),
            }
        }
    }
    Ok(reading)
}

/// The person of a well-formed record; the photo it names is fetched. A photo that cannot be
/// had loses only itself: the person's other fields (a `disabled` among them) still count, and
/// the note says so; fingerprints that are not a record the card can carry likewise.
fn person_of(
    record: &csv::StringRecord,
    columns: &Columns,
    mapping: &CsvMapping,
    photos: &dyn PhotoFiles,
    at: &str,
) -> Result<(SourcePerson, Vec<Rejected>), Rejected> {
    let get = |field: &str| -> String {
        columns
            .fields
            .get(field)
            .and_then(|&i| record.get(i))
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let uid = get("uid");
    let mut person = SourcePerson {
        uid: UserId::new(uid.clone()),
        given_name: get("given_name"),
        family_name: get("family_name"),
        display_name: get("display_name"),
        email: get("email"),
        upn: get("upn"),
        employee_id: get("employee_id"),
        department: get("department"),
        title: get("title"),
        groups: get("groups")
            .split(mapping.separator())
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        attributes: columns
            .attributes
            .iter()
            .filter_map(|(name, i)| {
                let v = record.get(*i)?.trim();
                (!v.is_empty()).then(|| (name.clone(), v.to_owned()))
            })
            .collect(),
        disabled: yes(&get("disabled")),
        photo: None,
        photo_missing: false,
        fingerprints: None,
        origin: at.to_owned(),
    };
    let photo = get("photo");
    let mut notes = Vec::new();
    if !photo.is_empty() {
        match photo_file(photos, &photo) {
            Ok(bytes) => person.photo = Some(bytes),
            Err(reason) => {
                person.photo_missing = true;
                notes.push(Rejected {
                    at: at.to_owned(),
                    uid: Some(uid),
                    reason: format!(
                        "{reason}; the person's other fields were taken and their stored photo stays"
                    ),
                });
            }
        }
    }
    let fingerprints = get("fingerprints");
    if !fingerprints.is_empty() {
        match fingerprints_of(&fingerprints) {
            Ok(record) => person.fingerprints = Some(record),
            Err(reason) => {
                notes.push(Rejected {
                    at: at.to_owned(),
                    uid: Some(person.uid.0.clone()),
                    reason: format!(
                        "the fingerprints were refused ({reason}); the person's other fields were \
                         taken and their stored fingerprints stay"
                    ),
                });
            }
        }
    }
    Ok((person, notes))
}

/// The fingerprints column: an INCITS 378 record in base64 (the standard alphabet, padded;
/// spaces and line breaks a spreadsheet may add are ignored), checked as the card needs it.
fn fingerprints_of(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| format!("the fingerprints column is not base64: {e}"))?;
    crate::fingerprints::check_for_card(&bytes)?;
    Ok(bytes)
}

fn photo_file(photos: &dyn PhotoFiles, name: &str) -> Result<Vec<u8>, String> {
    let plain = !name.contains(['/', '\\']) && name != "." && name != ".." && !name.contains('\0');
    if !plain {
        return Err(format!(
            "the photo {name:?} must be a plain file name, without a folder"
        ));
    }
    match photos.get(name)? {
        Some(bytes) => Ok(bytes),
        None => Err(format!("the photo file {name:?} was not found")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files(BTreeMap<String, Vec<u8>>);
    impl PhotoFiles for Files {
        fn get(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.get(name).cloned())
        }
    }

    fn read_str(text: &str) -> Result<SourceReading, CoreError> {
        read(text.as_bytes(), &CsvMapping::default(), &NoPhotos)
    }

    #[test]
    fn reads_fields_groups_and_attributes_with_their_lines() {
        let r = read_str(
            "\u{feff}UID,Given Name,family_name,Email,groups,attr.Badge Colour,disabled\n\
             jdoe,Jane,Doe,jane@example.org,staff; it ,blue,\n\
             \n\
             \"asmith\",\"Alan, Jr.\",Smith,,,,yes\n",
        )
        .unwrap();
        assert_eq!(r.people.len(), 2);
        let jane = &r.people[0];
        assert_eq!(jane.uid.as_str(), "jdoe");
        assert_eq!(jane.groups, vec!["staff", "it"]);
        assert_eq!(jane.attributes["badge colour"], "blue");
        assert!(!jane.disabled);
        assert_eq!(jane.origin, "line 2");
        assert_eq!(r.people[1].given_name, "Alan, Jr.");
        assert!(r.people[1].disabled);
        assert_eq!(r.people[1].origin, "line 4");
        assert!(!r.has_photos);
    }

    #[test]
    fn a_mapping_names_other_columns() {
        let mapping = CsvMapping::default()
            .with_pairs(["uid=Personnel No", "email=Mail", "attr.x=Cost Centre"])
            .unwrap();
        let r = read(
            b"Personnel No,Mail,Cost Centre\n0042,a@b.c,CC-7\n",
            &mapping,
            &NoPhotos,
        )
        .unwrap();
        assert_eq!(r.people[0].uid.as_str(), "0042");
        assert_eq!(r.people[0].email, "a@b.c");
        assert_eq!(r.people[0].attributes["cost centre"], "CC-7");
        assert!(CsvMapping::default().with_pairs(["colour=x"]).is_err());
        let again = mapping.clone().with_pairs(["attr.x=Cost Centre"]).unwrap();
        assert_eq!(
            again, mapping,
            "the same mapping given again changes nothing"
        );
    }

    #[test]
    fn a_file_that_cannot_be_read_is_refused_whole() {
        let latin1 = b"uid,display_name\njdoe,Jos\xe9\n";
        let e = read(latin1, &CsvMapping::default(), &NoPhotos).unwrap_err();
        assert!(matches!(e, CoreError::ImportRefused(_)));
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(read_str("name,email\nJane,j@x\n")
            .unwrap_err()
            .to_string()
            .contains("no uid column"));
        assert!(read_str("").is_err());
        let mapping = CsvMapping::default().with_pairs(["uid=Nope"]).unwrap();
        assert!(read(b"uid\nx\n", &mapping, &NoPhotos).is_err());
    }

    #[test]
    fn bad_lines_are_rejected_with_their_numbers() {
        let r = read_str("uid,display_name\nok,Fine\nshort\nx,\"unclosed,y\nz,Z\n").unwrap();
        assert_eq!(r.people[0].uid.as_str(), "ok");
        assert_eq!(r.rejected[0].at, "line 3");
        assert!(
            r.rejected[0].reason.contains("1 fields"),
            "{:?}",
            r.rejected
        );
    }

    #[test]
    fn a_quote_left_open_loses_only_its_own_line() {
        let r = read_str(
            "uid,given_name,family_name\n\
             alice,Alice,A\n\
             bob,Bob,\"Brown\n\
             carol,Carol,C\n\
             \n\
             dave,\"Dave\",D\n",
        )
        .unwrap();
        let uids: Vec<&str> = r.people.iter().map(|p| p.uid.as_str()).collect();
        assert_eq!(uids, ["alice", "carol", "dave"]);
        assert_eq!(r.people[1].origin, "line 4");
        assert_eq!(r.people[2].origin, "line 6");
        assert_eq!(r.rejected.len(), 1, "{:?}", r.rejected);
        assert_eq!(r.rejected[0].at, "line 3");
        assert_eq!(r.rejected[0].uid.as_deref(), Some("bob"), "bob is named");
        assert!(r.rejected[0].reason.contains("quote"), "{:?}", r.rejected);

        // The open quote swallows lines up to one that closes it: the field count matches, and
        // still only its first line is rejected.
        // In a column not taken, too.
        let r = read_str("uid,a,b\nx,y,\"z\np,q,r\ns,t,\"u\"\nv,w,x\n").unwrap();
        let uids: Vec<&str> = r.people.iter().map(|p| p.uid.as_str()).collect();
        assert_eq!(uids, ["p", "s", "v"], "{:?}", r.rejected);
        assert_eq!(r.rejected.len(), 1, "{:?}", r.rejected);
        assert_eq!(r.rejected[0].at, "line 2");
        assert_eq!(r.rejected[0].uid.as_deref(), Some("x"));
    }

    #[test]
    fn lines_end_in_any_of_the_three_ways() {
        for end in ["\n", "\r\n", "\r"] {
            let text = ["uid,family_name", "a,A", "b,\"B", "c,C", "", "d,D", ""].join(end);
            let r = read_str(&text).unwrap();
            let at: Vec<(&str, &str)> = r
                .people
                .iter()
                .map(|p| (p.uid.as_str(), p.origin.as_str()))
                .collect();
            assert_eq!(
                at,
                [("a", "line 2"), ("c", "line 4"), ("d", "line 6")],
                "{end:?}"
            );
            assert_eq!(r.rejected[0].at, "line 3", "{end:?}");
        }
    }

    #[test]
    fn a_newline_in_a_column_not_taken_is_allowed() {
        let r =
            read_str("uid,notes,email\njdoe,\"two\nlines\",j@x.org\nasmith,,a@x.org\n").unwrap();
        assert!(r.rejected.is_empty(), "{:?}", r.rejected);
        assert_eq!(r.people[0].email, "j@x.org");
        assert_eq!(r.people[1].origin, "line 4");
    }

    #[test]
    fn the_limits_refuse_the_whole_file() {
        let mut text = String::from("uid\n");
        for i in 0..10 {
            text.push_str(&format!("user{i}\n"));
        }
        let within = |bytes: usize, rows: usize| {
            read_within(
                text.as_bytes(),
                &CsvMapping::default(),
                &NoPhotos,
                bytes,
                rows,
            )
        };
        assert_eq!(within(1 << 20, 10).unwrap().people.len(), 10);
        let e = within(1 << 20, 9).unwrap_err();
        assert!(matches!(e, CoreError::ImportRefused(_)));
        assert!(e.to_string().contains("more than 9 people"), "{e}");
        let e = within(text.len() - 1, 100).unwrap_err();
        assert!(e.to_string().contains("more than the 1 KiB"), "{e}");
        // The real limit, as the refusal states it.
        assert_eq!(size(MAX_FILE_BYTES), "256 MiB");
        assert_eq!(size(MAX_FILE_BYTES + 1), "257 MiB");
    }

    #[test]
    fn photos_come_from_the_files_and_never_from_a_path() {
        let files = Files(BTreeMap::from([("jd.jpg".to_owned(), vec![1, 2, 3])]));
        let text = "uid,photo\njdoe,jd.jpg\nasmith,missing.jpg\nevil,../../etc/passwd\nnone,\n";
        let r = read(text.as_bytes(), &CsvMapping::default(), &files).unwrap();
        assert!(r.has_photos);
        // a photo that cannot be had loses only itself
        assert_eq!(r.people.len(), 4);
        assert_eq!(r.people[0].photo.as_deref(), Some(&[1u8, 2, 3][..]));
        assert!(!r.people[0].photo_missing);
        assert_eq!(r.people[1].photo, None);
        assert!(r.people[1].photo_missing && r.people[2].photo_missing);
        assert!(!r.people[3].photo_missing, "no photo named, none missing");
        assert_eq!(r.rejected.len(), 2);
        assert!(r.rejected[0].reason.contains("stored photo stays"));
        assert!(r.rejected[0].reason.contains("not found"));
        assert!(r.rejected[1].reason.contains("plain file name"));
    }
}

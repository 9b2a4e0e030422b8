//! `tessera users` as an administrator uses it: add and change a local person; import an HR file
//! with its photos folder (a dry run first, then for real, with a column mapping that is saved
//! for the next import); the refusals a bad file or a bad photo gets; disable with a card rule;
//! delete refused while a card lives; a photo set with a crop and removed; and the progress of a
//! long file on standard error.

mod support;

use serde_json::Value;
use std::path::Path;
use support::{tessera, text};

fn portrait(path: &Path, width: u32, height: u32) {
    image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 200) as u8, (y % 200) as u8, 120])
    })
    .save_with_format(path, image::ImageFormat::Jpeg)
    .unwrap();
}

fn json(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

fn show(data: &Path, uid: &str) -> Value {
    json(&tessera(data, &["users", "show", uid]))
}

#[test]
fn an_hr_file_is_imported_with_its_photos() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = tessera(&data, &["init"]);
    assert!(out.status.success(), "{}", text(&out));

    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    portrait(&photos.join("alice.jpg"), 400, 500);
    // Larger than a photo may be: refused from its size, without being read.
    std::fs::File::create(photos.join("huge.jpg"))
        .unwrap()
        .set_len(11 * 1024 * 1024)
        .unwrap();
    std::fs::write(dir.path().join("secret.jpg"), b"not in the folder").unwrap();
    let csv = dir.path().join("hr.csv");
    std::fs::write(
        &csv,
        "Personnel No,First,Last,Mail,Teams,Picture,attr.Cost Centre\n\
         alice,Alice,Able,alice@example.org,staff|it,alice.jpg,CC-1\n\
         bob,Bob,Brown,bob@example.org,staff,huge.jpg,CC-2\n\
         carol,Carol,Clark,carol@example.org,staff,../secret.jpg,CC-3\n\
         dave,Dave,Davis,dave@example.org,staff,,CC-4\n",
    )
    .unwrap();
    let (csv, photos) = (csv.to_str().unwrap(), photos.to_str().unwrap());
    let mapped = [
        "users",
        "import",
        csv,
        "--photos",
        photos,
        "--map",
        "uid=Personnel No",
        "--map",
        "given_name=First",
        "--map",
        "family_name=Last",
        "--map",
        "email=Mail",
        "--map",
        "groups=Teams",
        "--map",
        "photo=Picture",
        "--groups-separator",
        "|",
    ];

    // A dry run reports and writes nothing.
    let mut dry = mapped.to_vec();
    dry.extend(["--dry-run", "--json"]);
    let report = json(&tessera(&data, &dry));
    assert_eq!(report["dry_run"], true);
    // a photo refused loses only itself
    assert_eq!(
        report["created"],
        serde_json::json!(["alice", "bob", "carol", "dave"]),
        "{report}"
    );
    let out = tessera(&data, &["users", "show", "alice"]);
    assert!(!out.status.success(), "the dry run wrote nothing");
    assert!(text(&out).contains("REQ0002"), "{}", text(&out));

    let out = tessera(&data, &mapped);
    assert!(out.status.success(), "{}", text(&out));
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.contains("4 created"), "{report}");
    assert!(
        report
            .contains("line 3: the photo \"huge.jpg\" is 11264 KiB, more than the 10 MiB allowed"),
        "{report}"
    );
    assert!(
        report.contains("line 4: the photo \"../secret.jpg\" must be a plain file name"),
        "{report}"
    );
    let alice = show(&data, "alice");
    assert_eq!(alice["user"]["groups"], serde_json::json!(["it", "staff"]));
    assert_eq!(alice["user"]["has_photo"], true);
    assert_eq!(alice["user"]["attributes"]["cost centre"], "CC-1");
    assert_eq!(alice["user"]["source"], "csv");
    assert_eq!(show(&data, "carol")["user"]["has_photo"], false);

    // The mapping was saved: the next file is read with it, and the same file changes nobody.
    let out = tessera(
        &data,
        &["users", "import", csv, "--photos", photos, "--json"],
    );
    let report = json(&out);
    assert_eq!(report["unchanged"], 4, "{report}");
    assert_eq!(report["created"], serde_json::json!([]));

    // A file that is not UTF-8 is refused whole: exit status 1, the line named.
    let latin1 = dir.path().join("latin1.csv");
    std::fs::write(&latin1, b"Personnel No,First\nerin,Erin\njose,Jos\xe9\n").unwrap();
    let out = tessera(&data, &["users", "import", latin1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out);
    assert!(
        said.contains("USR0001") && said.contains("line 3"),
        "{said}"
    );
    assert!(!tessera(&data, &["users", "show", "erin"]).status.success());

    // A person from the file is changed at their source, not here.
    let out = tessera(&data, &["users", "edit", "alice", "--title", "Boss"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("USR0003"), "{}", text(&out));
}

#[test]
fn people_are_disabled_by_a_card_rule_and_deleted_once_their_cards_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = tessera(&data, &["init", "--demo"]);
    assert!(out.status.success(), "{}", text(&out));

    let out = tessera(
        &data,
        &[
            "users",
            "add",
            "zed",
            "--given-name",
            "Zed",
            "--family-name",
            "Zulu",
            "--groups",
            "staff, it",
            "--attr",
            "badge=7",
        ],
    );
    let zed = json(&out);
    assert_eq!(zed["display_name"], "Zed Zulu");
    let out = tessera(
        &data,
        &[
            "users",
            "edit",
            "zed",
            "--title",
            "Engineer",
            "--family-name",
            "Zulu-Young",
            "--attr",
            "badge=",
        ],
    );
    let zed = json(&out);
    assert_eq!(zed["title"], "Engineer");
    assert_eq!(zed["given_name"], "Zed", "fields not given stay");
    assert_eq!(
        zed["display_name"], "Zed Zulu-Young",
        "made from the names again"
    );
    assert_eq!(zed["attributes"], serde_json::json!({}));
    let list = text(&tessera(&data, &["users", "list", "zulu"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("zed                  Zed Zulu-Young ") && l.contains("local")),
        "{list}"
    );

    // A photo with a crop, then without it.
    let picture = dir.path().join("zed.jpg");
    portrait(&picture, 600, 800);
    let out = tessera(
        &data,
        &[
            "users",
            "photo",
            "zed",
            picture.to_str().unwrap(),
            "--crop",
            "700,0,100,100",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("USR0004") && text(&out).contains("does not fit"),
        "{}",
        text(&out)
    );
    let out = tessera(
        &data,
        &[
            "users",
            "photo",
            "zed",
            picture.to_str().unwrap(),
            "--crop",
            "100,100,300,400",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(show(&data, "zed")["user"]["has_photo"], true);
    assert!(tessera(&data, &["users", "photo", "zed", "--remove"])
        .status
        .success());
    assert_eq!(show(&data, "zed")["user"]["has_photo"], false);

    // Zed gets a card; disabling him terminates it when asked to.
    let issued = json(&tessera(
        &data,
        &[
            "issue",
            "--user",
            "zed",
            "--policy",
            "piv-standard",
            "--layout",
            "corporate-badge",
            "--pin",
            "246810",
        ],
    ));
    assert_eq!(issued["state"], "active");
    let out = tessera(&data, &["users", "delete", "zed"]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("USR0002") && said.contains("Terminate them first"),
        "{said}"
    );

    let moved = json(&tessera(
        &data,
        &["users", "disable", "zed", "--cards", "terminate"],
    ));
    assert_eq!(moved[0]["from"], "active");
    assert_eq!(moved[0]["to"], "terminated");
    let zed = show(&data, "zed");
    assert_eq!(zed["user"]["disabled"], true);
    assert_eq!(zed["cards"][0]["state"], "terminated");
    assert!(zed["cards"][0]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "revoked" && c["revocation_reason"] == "affiliationChanged"));
    // A disabled person gets no card.
    let out = tessera(
        &data,
        &[
            "issue",
            "--user",
            "zed",
            "--policy",
            "piv-standard",
            "--layout",
            "corporate-badge",
            "--pin",
            "246810",
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("USR0005"), "{}", text(&out));

    // Jane, disabled by the configured rule (suspend), has nothing to suspend: no card.
    let moved = json(&tessera(&data, &["users", "disable", "jdoe"]));
    assert_eq!(moved, serde_json::json!([]));
    assert!(tessera(&data, &["users", "enable", "jdoe"])
        .status
        .success());

    // Once his cards have ended, Zed can be deleted.
    assert!(tessera(&data, &["users", "delete", "zed"]).status.success());
    assert!(!tessera(&data, &["users", "show", "zed"]).status.success());
    let log = text(&tessera(&data, &["audit", "list", "--limit", "100"]));
    for event in [
        "UserCreated",
        "UserChanged",
        "UserPhotoChanged",
        "UserDisabled",
        "UserEnabled",
        "UserDeleted",
    ] {
        assert!(log.contains(event), "{event} in the audit log");
    }
}

#[test]
fn a_long_file_shows_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(tessera(&data, &["init"]).status.success());
    let mut csv = String::from("uid,given_name,family_name\n");
    for i in 0..1_200 {
        csv.push_str(&format!("user{i:04},User,Number {i}\n"));
    }
    let file = dir.path().join("many.csv");
    std::fs::write(&file, csv).unwrap();
    let out = tessera(
        &data,
        &["users", "import", file.to_str().unwrap(), "--dry-run"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let progress = String::from_utf8_lossy(&out.stderr);
    // Standard error is not a terminal here: a line every tenth, no carriage returns.
    assert!(
        progress.contains("500 of 1200 people checked (41%)"),
        "{progress}"
    );
    assert!(
        progress.contains("1200 of 1200 people checked (100%)"),
        "{progress}"
    );
    assert!(!progress.contains('\r'));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1200 created"));
}

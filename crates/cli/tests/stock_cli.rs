//! `tessera stock` as an administrator uses it on the command line: a vendor's serial list is
//! imported with model and batch, listed, imported again (the duplicates are reported and left
//! alone), a file with a bad line is refused whole, and one card's record is shown.

mod support;

use support::{tessera, text};

#[test]
fn a_vendor_list_is_imported_listed_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = tessera(&data, &["init", "--demo"]);
    assert!(out.status.success(), "{}", text(&out));

    let csv = dir.path().join("shipment.csv");
    std::fs::write(
        &csv,
        "serial,batch\n31000001,B-7\n31000002,\n\"31000003\",B-8\n",
    )
    .unwrap();
    let file = csv.to_str().unwrap();
    let out = tessera(
        &data,
        &[
            "stock",
            "import",
            file,
            "--model",
            "YubiKey 5 NFC",
            "--batch",
            "B-1",
            "--location",
            "This workstation",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["imported"], 3, "{report}");

    // The location by the station's name, as the import named it.
    let out = tessera(
        &data,
        &[
            "stock",
            "list",
            "--model",
            "YubiKey 5 NFC",
            "--location",
            "This workstation",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    for (serial, batch) in [
        ("31000001", "B-7"),
        ("31000002", "B-1"),
        ("31000003", "B-8"),
    ] {
        let line = listed
            .lines()
            .find(|l| l.contains(serial))
            .unwrap_or_else(|| panic!("{serial} is not listed:\n{listed}"));
        assert!(line.contains(batch) && line.contains("in_stock"), "{line}");
    }

    // Again: nothing new, the three reported as duplicates.
    let out = tessera(
        &data,
        &["stock", "import", file, "--model", "YubiKey 5 NFC"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["imported"], 0);
    assert_eq!(report["duplicates"].as_array().unwrap().len(), 3);

    // A bad line refuses the whole file, naming the line.
    std::fs::write(&csv, "serial\n31000009\nnot a serial!\n").unwrap();
    let out = tessera(
        &data,
        &["stock", "import", file, "--model", "YubiKey 5 NFC"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("\"line\": 3") || text(&out).contains("\"line\":3"),
        "{}",
        text(&out)
    );
    let out = tessera(&data, &["stock", "list"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("31000009"));

    let out = tessera(&data, &["stock", "show", "31000002"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(shown.to_string().contains("YubiKey 5 NFC"), "{shown}");
}

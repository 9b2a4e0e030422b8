//! The stock lifecycle table, the CSV reader against hostile input, and the import's report.

use super::*;
use StockCommand as C;
use StockState as S;

#[test]
fn transitions_follow_the_table() {
    let allowed = [
        (S::InStock, C::Issue, S::Issued),
        (S::Issued, C::Return, S::Returned),
        (S::Returned, C::Restock, S::InStock),
        (S::InStock, C::Destroy, S::Destroyed),
        (S::Issued, C::Destroy, S::Destroyed),
        (S::Returned, C::Destroy, S::Destroyed),
        (S::InStock, C::Move, S::InStock),
        (S::Returned, C::Move, S::Returned),
    ];
    for (from, command, to) in allowed {
        assert_eq!(transition(from, command), Ok(to), "{from:?} {command:?}");
    }
    // Every other pair is refused; Destroyed is final.
    for from in S::ALL {
        for command in [C::Issue, C::Return, C::Restock, C::Destroy, C::Move] {
            if allowed.iter().any(|(f, c, _)| *f == from && *c == command) {
                continue;
            }
            assert!(
                transition(from, command).is_err(),
                "{from:?} {command:?} must be refused"
            );
        }
    }
    assert_eq!(
        transition(S::Destroyed, C::Restock)
            .unwrap_err()
            .to_string(),
        "a card that is destroyed cannot be restocked"
    );
}

#[test]
fn an_administrator_never_sets_issued() {
    assert_eq!(command_for(S::Issued, S::Returned).unwrap(), C::Return);
    assert_eq!(command_for(S::InStock, S::InStock).unwrap(), C::Move);
    assert_eq!(command_for(S::Returned, S::InStock).unwrap(), C::Restock);
    assert!(command_for(S::InStock, S::Issued).is_err());
}

#[test]
fn serials_are_normalised_like_the_card_reports_them() {
    assert_eq!(normalise_serial(" 0012345678 ").unwrap(), "12345678");
    assert_eq!(normalise_serial("000").unwrap(), "0");
    assert_eq!(normalise_serial("AbCd01").unwrap(), "abcd01");
    assert!(normalise_serial("").is_err());
    assert!(normalise_serial("12 34").is_err());
    assert!(normalise_serial("1234-5").is_err());
    assert!(normalise_serial(&"1".repeat(33)).is_err());
    assert!(normalise_serial("１２３").is_err(), "full-width digits");
}

/// A record as (line, values), or a bad one as (line, reason).
type Read = Result<(usize, Vec<String>), (usize, String)>;

fn values(text: &str) -> Vec<Read> {
    csv_records(text)
        .into_iter()
        .map(|r| match r {
            Ok(r) => Ok((r.line, r.values)),
            Err(e) => Err((e.line, e.reason)),
        })
        .collect()
}

fn ok(line: usize, v: &[&str]) -> Read {
    Ok((line, v.iter().map(|s| s.to_string()).collect()))
}

#[test]
fn csv_reads_quotes_commas_and_line_ends() {
    let text = "\u{feff}serial,model\r\n1,\"YubiKey 5, NFC\"\n\n\"2\",\"say \"\"hi\"\"\"\r\n3,\"two\nlines\"\n4,";
    assert_eq!(
        values(text),
        vec![
            ok(1, &["serial", "model"]),
            ok(2, &["1", "YubiKey 5, NFC"]),
            ok(4, &["2", "say \"hi\""]),
            ok(5, &["3", "two\nlines"]),
            ok(7, &["4", ""]),
        ]
    );
    assert_eq!(values(""), vec![]);
    assert_eq!(values("\n\r\n  \n"), vec![]);
}

#[test]
fn csv_reports_bad_quoting_and_goes_on() {
    let got = values("a,b\n1,x\"y\n2,\"z\"w\n3,ok\n4,\"open");
    assert_eq!(got[0], ok(1, &["a", "b"]));
    assert!(matches!(&got[1], Err((2, r)) if r.contains("quote inside")));
    assert!(matches!(&got[2], Err((3, r)) if r.contains("follows a closing quote")));
    assert_eq!(got[3], ok(4, &["3", "ok"]));
    assert!(matches!(&got[4], Err((5, r)) if r.contains("not closed")));
    assert_eq!(got.len(), 5);
    // Hostile bytes: NUL, lone CR, a quote-only line; nothing panics.
    for text in [
        "\0,\0",
        "\r\r\r",
        "\"",
        "\"\"",
        ",,,,",
        "\"\"\"",
        "a\u{202e}b,c",
    ] {
        let _ = csv_records(text);
    }
}

fn station(id: &str, name: &str) -> Station {
    Station {
        id: StationId::new(id),
        name: name.into(),
        enabled: true,
        printers: vec![],
        access: None,
    }
}

#[test]
fn an_import_fills_missing_columns_from_the_defaults() {
    let stations = [
        station("local", "This workstation"),
        station("hq", "HQ desk"),
    ];
    let defaults = StockDefaults {
        model: Some("YubiKey 5 NFC".into()),
        batch: Some("B-7".into()),
        location: Some("this workstation".into()),
    };
    let text = "Serial,Batch,Location,Vendor note\n0012345678,,,x\n23456789,B-8,HQ desk,\n";
    let cards = parse_import(text, &defaults, &stations, Timestamp(5)).unwrap();
    assert_eq!(cards.len(), 2);
    assert_eq!(cards[0].serial, "12345678");
    assert_eq!(cards[0].model, "YubiKey 5 NFC");
    assert_eq!(cards[0].batch, "B-7");
    assert_eq!(cards[0].location, Some(StationId::new("local")));
    assert_eq!(cards[0].state, S::InStock);
    assert_eq!(cards[1].batch, "B-8");
    assert_eq!(cards[1].location, Some(StationId::new("hq")));
}

#[test]
fn an_import_reports_every_bad_line() {
    let text = "serial,model\n1,A\n,A\n12 34,A\n5\n6,\n7,\"A\n8,A";
    let errors = parse_import(text, &StockDefaults::default(), &[], Timestamp(0)).unwrap_err();
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7], "{errors:?}");
    assert!(errors[0].reason.contains("empty"));
    assert!(errors[2].reason.contains("1 values"));
    assert!(errors[3].reason.contains("no model"));

    let no_header = parse_import("", &StockDefaults::default(), &[], Timestamp(0));
    assert!(no_header.unwrap_err()[0].reason.contains("header"));
    let no_serial = parse_import("model\nA", &StockDefaults::default(), &[], Timestamp(0));
    assert!(no_serial.unwrap_err()[0]
        .reason
        .contains("no serial column"));
    let twice = parse_import(
        "serial,SERIAL\n1,2",
        &StockDefaults::default(),
        &[],
        Timestamp(0),
    );
    assert!(twice.unwrap_err()[0].reason.contains("named twice"));
    let unknown = parse_import(
        "serial,model,location\n1,A,Nowhere",
        &StockDefaults::default(),
        &[],
        Timestamp(0),
    );
    assert!(unknown.unwrap_err()[0].reason.contains("no station"));
    let long = format!("serial,model\n1,{}", "m".repeat(65));
    assert!(parse_import(&long, &StockDefaults::default(), &[], Timestamp(0)).is_err());
    let huge = "x".repeat(MAX_IMPORT_BYTES + 1);
    assert!(parse_import(&huge, &StockDefaults::default(), &[], Timestamp(0)).is_err());
}

#[test]
fn a_card_out_of_stock_is_refused_with_its_state() {
    assert_eq!(
        refusal("12345678", None).unwrap(),
        "card 12345678 is not in stock"
    );
    let mut card = StockCard {
        serial: "123".into(),
        model: "m".into(),
        batch: "b".into(),
        state: S::InStock,
        location: None,
        imported_at: Timestamp(0),
        updated_at: Timestamp(0),
    };
    assert_eq!(refusal("123", Some(&card)), None);
    card.state = S::Destroyed;
    assert_eq!(
        refusal("123", Some(&card)).unwrap(),
        "card 123 is destroyed, not in stock"
    );
    card.state = S::Returned;
    assert!(refusal("123", Some(&card)).is_some());
}

#[test]
fn the_summary_has_one_row_per_model_and_location() {
    let count = |model: &str, location: Option<&str>, state, count| StockCount {
        model: model.into(),
        location: location.map(StationId::new),
        state,
        count,
    };
    let rows = summarise(vec![
        count("B", None, S::InStock, 2),
        count("A", Some("hq"), S::InStock, 5),
        count("A", Some("hq"), S::Issued, 3),
        count("A", Some("hq"), S::Destroyed, 1),
    ]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].model, "A");
    assert_eq!(
        (rows[0].in_stock, rows[0].issued, rows[0].destroyed),
        (5, 3, 1)
    );
    assert_eq!(rows[0].total(), 9);
    assert_eq!(rows[1].in_stock, 2);
}

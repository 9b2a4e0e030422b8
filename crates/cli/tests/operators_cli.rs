//! `tessera operators` as the person who runs the server uses it: add a Help Desk operator with a
//! scope, list, change the role, disable and enable, reset the password (a new one-time
//! password each time), delete; and the refusals a mistyped command gets.

mod support;

use support::{tessera, text};

fn row(list: &str, operator: &str) -> String {
    list.lines()
        .find(|l| l.starts_with(&format!("{operator} ")))
        .unwrap_or_else(|| panic!("{operator} in {list}"))
        .to_owned()
}

#[test]
fn operators_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = tessera(&data, &["init"]);
    assert!(out.status.success(), "{}", text(&out));

    let out = tessera(
        &data,
        &[
            "operators",
            "add",
            "hana",
            "--display-name",
            "Hana Helpdesk",
            "--role",
            "help_desk",
            "--scope",
            "security, facilities",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let first = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(first.len(), 19, "a one-time password: {first}");

    let out = tessera(&data, &["operators", "list"]);
    let list = text(&out);
    let hana = row(&list, "hana");
    assert!(hana.contains("Help Desk"), "{hana}");
    assert!(hana.contains("security, facilities"), "{hana}");
    assert!(hana.contains("enabled"), "{hana}");
    assert!(row(&list, "admin").contains("All users"), "{list}");

    let out = tessera(
        &data,
        &[
            "operators",
            "set-role",
            "hana",
            "security_officer",
            "--scope",
            "",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = tessera(&data, &["operators", "disable", "hana"]);
    assert!(out.status.success(), "{}", text(&out));
    let list = text(&tessera(&data, &["operators", "list"]));
    let hana = row(&list, "hana");
    assert!(hana.contains("Security Officer"), "{hana}");
    assert!(hana.contains("All users"), "{hana}");
    assert!(hana.contains("disabled"), "{hana}");
    assert!(tessera(&data, &["operators", "enable", "hana"])
        .status
        .success());

    let out = tessera(&data, &["operators", "reset-password", "hana"]);
    assert!(out.status.success(), "{}", text(&out));
    let second = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(second.len(), 19);
    assert_ne!(second, first);

    // Refusals carry their code and say why.
    let out = tessera(&data, &["operators", "add", "zed", "--role", "wizard"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("REQ0001"), "{}", text(&out));
    assert!(text(&out).contains("no role wizard"), "{}", text(&out));
    let out = tessera(&data, &["operators", "disable", "nobody"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("REQ0002"), "{}", text(&out));
    // The only administrator cannot be disabled, even from the command line.
    let out = tessera(&data, &["operators", "disable", "admin"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no enabled operator"), "{}", text(&out));

    assert!(tessera(&data, &["operators", "delete", "hana"])
        .status
        .success());
    let list = text(&tessera(&data, &["operators", "list"]));
    assert!(!list.contains("hana"), "{list}");

    // The audit log names the command line as the operator who did it.
    let out = tessera(&data, &["audit", "list", "--limit", "50"]);
    let log = text(&out);
    for name in [
        "OperatorCreated",
        "OperatorChanged",
        "OperatorPasswordReset",
        "OperatorDeleted",
    ] {
        assert!(log.contains(name), "{name} in {log}");
    }
    assert!(!log.contains(&first) && !log.contains(&second));
}

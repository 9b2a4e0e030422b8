//! `tessera directory sync` and the schedule of `tessera serve`, against a real OpenLDAP slapd
//! (scripts/slapd.sh) named by a `[directory]` section: a dry run, a sync, the same sync again
//! (nothing to do), a failure with its code and a non-zero exit, and `serve` syncing on its own
//! right after it starts. Skipped with a printed reason without slapd, unless
//! TESSERA_REQUIRE_SLAPD=1.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{tessera, text};

fn installed(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .any(|dir| dir.join(tool).is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// slapd in `dir`, stopped when dropped; None (reason printed) when not installed nor required.
struct Slapd(PathBuf);

impl Slapd {
    fn start(dir: &Path) -> Option<(Self, u16)> {
        if !["slapd", "slapadd", "slappasswd", "ldapsearch"]
            .into_iter()
            .all(installed)
        {
            assert!(
                std::env::var("TESSERA_REQUIRE_SLAPD").as_deref() != Ok("1"),
                "TESSERA_REQUIRE_SLAPD=1 but OpenLDAP is not installed (Debian: slapd ldap-utils)"
            );
            eprintln!("skipped: OpenLDAP is not installed (Debian: slapd ldap-utils)");
            return None;
        }
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/slapd.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg(dir)
            .arg(port.to_string())
            .arg(free_port().to_string())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "scripts/slapd.sh: {}", text(&out));
        Some((Self(dir.to_owned()), port))
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.join("slapd.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn config(ldap: &Path, port: u16, ca: &str, minutes: u64) -> String {
    format!(
        "[directory]\nurl = \"ldap://127.0.0.1:{port}\"\nstart_tls = true\n\
         ca_file = \"{}\"\nbind_dn = \"cn=tessera,ou=services,dc=example,dc=org\"\n\
         bind_password_file = \"{}\"\nbase_dn = \"ou=people,dc=example,dc=org\"\n\
         group_base_dn = \"ou=groups,dc=example,dc=org\"\nsync_interval_minutes = {minutes}\n",
        ldap.join(ca).display(),
        ldap.join("bind.pw").display()
    )
}

#[test]
fn the_directory_is_synced_from_the_command_line_and_by_serve() {
    let dir = tempfile::tempdir().unwrap();
    let ldap_dir = dir.path().join("ldap");
    let Some((_slapd, port)) = Slapd::start(&ldap_dir) else {
        return;
    };
    let data = dir.path().join("data");
    let out = tessera(&data, &["init"]);
    assert!(out.status.success(), "{}", text(&out));
    let cfg = dir.path().join("tessera.toml");
    let cfg_arg = cfg.to_str().unwrap();

    // Without a [directory] section the command says what is missing.
    std::fs::write(&cfg, "").unwrap();
    let out = tessera(&data, &["directory", "sync", "--config", cfg_arg]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no [directory] section"),
        "{}",
        text(&out)
    );

    // A certificate the CA file does not vouch for: the code, the sentence, a non-zero exit.
    std::fs::write(&cfg, config(&ldap_dir, port, "other-ca.crt", 0)).unwrap();
    let out = tessera(&data, &["directory", "sync", "--config", cfg_arg]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("DIR0001")
            && said.contains("not trusted by")
            && said.contains("other-ca.crt"),
        "{said}"
    );

    std::fs::write(&cfg, config(&ldap_dir, port, "ca.crt", 0)).unwrap();
    let out = tessera(
        &data,
        &["directory", "sync", "--config", cfg_arg, "--dry-run"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(report.contains("dry run: nothing was written"), "{report}");
    assert!(
        report.contains("1 created") && report.contains("created\tseed"),
        "{report}"
    );

    // serve syncs right after it starts: the command line then finds nothing to do.
    std::fs::write(&cfg, config(&ldap_dir, port, "ca.crt", 60)).unwrap();
    let log = dir.path().join("serve.log");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .env("RUST_LOG", "info")
        .args(["serve", "--config", cfg_arg, "--listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--data")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let synced = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("directory sync:") || started.elapsed() > Duration::from_secs(30) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(synced.contains("1 created"), "{synced}");

    let out = tessera(&data, &["directory", "sync", "--config", cfg_arg, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["unchanged"], 1, "{report}");
    assert_eq!(report["created"], serde_json::json!([]), "{report}");
    assert_eq!(report["dry_run"], false);
}

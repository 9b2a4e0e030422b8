//! Directory sync against a real OpenLDAP slapd (started by scripts/slapd.sh on loopback ports,
//! changed between syncs with OpenLDAP's own ldapadd, ldapmodify and ldapdelete): people appear
//! with their fields, groups and photos, follow their changes, are disabled when disabled or
//! removed (their cards suspended), lose a removed group; 250 people come through pages of 100
//! past the server's size limit of 100; StartTLS and LDAPS check the CA file; a wrong CA, an
//! unreachable server, a refused bind, a referral or too many entries fail with a sentence and
//! change nothing; the same sync twice writes nothing the second time. The Directory page shows
//! the configuration (never the password) and runs a dry run and a sync.
//!
//! Without slapd and ldap-utils (Debian: `slapd ldap-utils`) the tests say so and pass, unless
//! TESSERA_REQUIRE_SLAPD=1 (as scripts/test.sh sets), which makes them fail instead.

mod support;

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::portal::{csrf, Portal};
use tessera_core::audit;
use tessera_core::ids::*;
use tessera_core::issuance::{self, Actor, StartRequest};
use tessera_core::lifecycle::{DeviceState, Reason};
use tessera_core::model::{BuiltinRole, UserSource};
use tessera_core::people::Report;
use tessera_core::ports::Store;
use tessera_core::{CoreError, Pin};
use tessera_server::directory::{DirectoryConfig, SyncError};
use tessera_server::{demo, Tessera};

const SUFFIX: &str = "dc=example,dc=org";
const PEOPLE: &str = "ou=people,dc=example,dc=org";
const GROUPS: &str = "ou=groups,dc=example,dc=org";

/// A slapd of scripts/slapd.sh in its own folder; stopped when dropped.
struct Slapd {
    dir: tempfile::TempDir,
    port: u16,
    tls_port: u16,
}

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

/// A real JPEG (a demo portrait, encoded by Tessera's photo normaliser).
fn jpeg(seed: u64) -> Vec<u8> {
    tessera_print::photo::normalise(&tessera_print::portrait_png(seed), None).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Slapd {
    /// Starts slapd, or None (with the reason printed) when it is not installed and not required.
    fn start(seed_photo: &[u8]) -> Option<Self> {
        let missing: Vec<&str> = ["slapd", "slapadd", "slappasswd", "ldapadd", "ldapsearch"]
            .into_iter()
            .filter(|t| !installed(t))
            .collect();
        if !missing.is_empty() {
            assert!(
                std::env::var("TESSERA_REQUIRE_SLAPD").as_deref() != Ok("1"),
                "TESSERA_REQUIRE_SLAPD=1 but {missing:?} are not installed (Debian: slapd ldap-utils)"
            );
            eprintln!(
                "skipped: OpenLDAP is not installed ({} missing; Debian: slapd ldap-utils)",
                missing.join(", ")
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("seed.jpg"), seed_photo).unwrap();
        let (port, tls_port) = (free_port(), free_port());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/slapd.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg(dir.path())
            .arg(port.to_string())
            .arg(tls_port.to_string())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/slapd.sh: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Self {
            dir,
            port,
            tls_port,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs an OpenLDAP client tool as the directory's administrator, with `ldif` on stdin.
    fn admin(&self, tool: &str, extra: &[&str], ldif: &str) {
        use std::io::Write;
        let mut child = Command::new(tool)
            .args(["-x", "-H", &format!("ldap://127.0.0.1:{}", self.port)])
            .args(["-D", &format!("cn=admin,{SUFFIX}"), "-y"])
            .arg(self.path("admin.pw"))
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn add(&self, ldif: &str) {
        self.admin("ldapadd", &[], ldif);
    }

    fn modify(&self, ldif: &str) {
        self.admin("ldapmodify", &[], ldif);
    }

    fn delete(&self, dn: &str) {
        self.admin("ldapdelete", &[], &format!("{dn}\n"));
    }

    /// StartTLS on the plain port, checked against the test CA; groups of names under ou=groups.
    fn config(&self) -> DirectoryConfig {
        DirectoryConfig {
            url: format!("ldap://127.0.0.1:{}", self.port),
            start_tls: true,
            ca_file: Some(self.path("ca.crt")),
            bind_dn: Some(format!("cn=tessera,ou=services,{SUFFIX}")),
            bind_password_file: Some(self.path("bind.pw")),
            base_dn: PEOPLE.into(),
            preset: Default::default(),
            filter: None,
            page_size: 100,
            timeout_secs: 5,
            max_entries: 2_000_000,
            sync_interval_minutes: 0,
            groups: None,
            group_base_dn: Some(GROUPS.into()),
            group_filter: None,
            group_member_attribute: None,
            disabled_attribute: Some("employeeType".into()),
            disabled_value: Some("disabled".into()),
            free_attributes: vec!["telephoneNumber".into()],
            mapping: Default::default(),
            ignore_referrals: false,
            allow_plain_bind: false,
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.path("slapd.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn admin() -> Actor {
    support::actor(BuiltinRole::Administrator)
}

async fn sync(t: &Tessera, dry_run: bool) -> Result<Report, CoreError> {
    let directory = t.directory.clone().expect("a directory is configured");
    directory
        .run(&t.services, &admin(), dry_run, "test", true)
        .await
        .map_err(|e| match e {
            SyncError::Core(e) => e,
            SyncError::Busy => panic!("busy"),
        })
}

/// The uids of a report's list, sorted (the directory gives entries in its own order).
fn uids(list: &[UserId]) -> Vec<&str> {
    let mut uids: Vec<&str> = list.iter().map(|u| u.as_str()).collect();
    uids.sort();
    uids
}

/// The people the directory keeps, with their state, as the store has them.
async fn ldap_people(t: &Tessera) -> Vec<(UserId, bool)> {
    let mut people = t.store.uids_of_source(UserSource::Ldap).await.unwrap();
    people.sort();
    people
}

/// Issues an active card to `uid` on the demo printer.
async fn issue_card(t: &Tessera, uid: &str) -> DeviceId {
    let actor = admin();
    let job = issuance::start(
        &t.services,
        &actor,
        StartRequest {
            user: UserId::new(uid),
            station: StationId::new(demo::STATION_ID),
            printer: demo::PRINTER.into(),
            reader: demo::ENCODER.into(),
            layout: LayoutId::new("corporate-badge"),
            temporary_for: None,
        },
    )
    .await
    .unwrap();
    let (_, running) = issuance::choose_policy(
        &t.runner,
        &actor,
        &job.id,
        &PolicyId::new(demo::POLICY_ID),
        Some(Pin::new("246810")),
    )
    .await
    .unwrap();
    let job = running.await.unwrap();
    let device = job.device.unwrap();
    issuance::finish(&t.services, &actor, &job.id)
        .await
        .unwrap();
    assert_eq!(
        t.store.device(&device).await.unwrap().state,
        DeviceState::Active
    );
    device
}

/// How many audit events of `kind` the log holds.
async fn events_of(t: &Tessera, kind: audit::EventKind) -> usize {
    t.store
        .audit_events(None, 10_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.code == kind.code)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_follow_the_directory() {
    let seed_photo = jpeg(7);
    let Some(ldap) = Slapd::start(&seed_photo) else {
        return;
    };
    let (_dir, t) = support::open().await;
    let t = t.with_directory(ldap.config()).unwrap();
    let photo = jpeg(11);
    std::fs::write(ldap.path("ada.jpg"), &photo).unwrap();
    ldap.add(&format!(
        "dn: uid=ada,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: ada\ncn: Ada Lovelace\n\
         givenName: Ada\nsn: Lovelace\ndisplayName: Ada King\nmail: ada@example.org\n\
         employeeNumber: E-1815\ndepartmentNumber: Analytical Engines\ntitle: Analyst\n\
         telephoneNumber: +44 20 7946 0000\njpegPhoto:< file://{}\n\n\
         dn: cn=engineering,{GROUPS}\nobjectClass: groupOfNames\ncn: engineering\n\
         member: uid=ada,{PEOPLE}\nmember: uid=seed,{PEOPLE}\n",
        ldap.path("ada.jpg").display()
    ));

    // A dry run writes nothing; the sync creates both people with fields, groups and photos.
    let dry = sync(&t, true).await.unwrap();
    assert_eq!(uids(&dry.created), ["ada", "seed"]);
    assert!(ldap_people(&t).await.is_empty(), "a dry run writes nothing");
    let report = sync(&t, false).await.unwrap();
    assert_eq!(uids(&report.created), ["ada", "seed"], "{report:?}");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let ada = t.store.user(&UserId::new("ada")).await.unwrap();
    assert_eq!(ada.source, UserSource::Ldap);
    assert_eq!(
        (
            ada.given_name.as_str(),
            ada.family_name.as_str(),
            ada.display_name.as_str()
        ),
        ("Ada", "Lovelace", "Ada King")
    );
    assert_eq!(ada.email, "ada@example.org");
    assert_eq!(ada.employee_id, "E-1815");
    assert_eq!(ada.department, "Analytical Engines");
    assert_eq!(ada.title, "Analyst");
    assert_eq!(ada.groups, ["engineering"]);
    assert_eq!(ada.attributes["telephoneNumber"], "+44 20 7946 0000");
    assert!(ada.has_photo && !ada.disabled);
    assert_eq!(ada.photo_digest.as_deref(), Some(sha256(&photo).as_str()));
    assert!(t
        .store
        .photo(&UserId::new("ada"))
        .await
        .unwrap()
        .is_some_and(|p| p.starts_with(&[0xff, 0xd8])));
    let seed = t.store.user(&UserId::new("seed")).await.unwrap();
    assert_eq!(seed.groups, ["engineering", "everyone"]);
    assert_eq!(
        seed.photo_digest.as_deref(),
        Some(sha256(&seed_photo).as_str())
    );

    // The same sync again changes nothing.
    let again = sync(&t, false).await.unwrap();
    assert!(!again.changes_anything(), "{again:?}");
    assert_eq!(again.unchanged, 2);

    // A change of title and photo is followed.
    let new_photo = jpeg(12);
    std::fs::write(ldap.path("ada2.jpg"), &new_photo).unwrap();
    ldap.modify(&format!(
        "dn: uid=ada,{PEOPLE}\nchangetype: modify\nreplace: title\ntitle: Countess\n-\n\
         replace: jpegPhoto\njpegPhoto:< file://{}\n",
        ldap.path("ada2.jpg").display()
    ));
    let report = sync(&t, false).await.unwrap();
    assert_eq!(report.updated.len(), 1, "{report:?}");
    assert_eq!(report.updated[0].uid.as_str(), "ada");
    assert_eq!(report.updated[0].fields, ["title", "photo"]);
    let ada = t.store.user(&UserId::new("ada")).await.unwrap();
    assert_eq!(ada.title, "Countess");
    assert_eq!(
        ada.photo_digest.as_deref(),
        Some(sha256(&new_photo).as_str())
    );

    // Disabled at the directory: disabled here, her active card suspended (the default rule).
    let card = issue_card(&t, "ada").await;
    ldap.modify(&format!(
        "dn: uid=ada,{PEOPLE}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n"
    ));
    let disabled_events = events_of(&t, audit::USER_DISABLED).await;
    let report = sync(&t, false).await.unwrap();
    assert_eq!(uids(&report.disabled), ["ada"]);
    assert_eq!(report.cards.len(), 1, "{report:?}");
    assert_eq!(
        (report.cards[0].from, report.cards[0].to),
        ("active", "suspended")
    );
    assert!(t.store.user(&UserId::new("ada")).await.unwrap().disabled);
    let device = t.store.device(&card).await.unwrap();
    assert_eq!(
        (device.state, device.reason),
        (DeviceState::Suspended, Reason::Left)
    );
    assert_eq!(
        events_of(&t, audit::USER_DISABLED).await,
        disabled_events + 1
    );

    // Back at the directory: enabled again, and the card offered for resuming.
    ldap.modify(&format!(
        "dn: uid=ada,{PEOPLE}\nchangetype: modify\ndelete: employeeType\n"
    ));
    let report = sync(&t, false).await.unwrap();
    assert_eq!(uids(&report.enabled), ["ada"]);
    assert_eq!(report.resumable.len(), 1);
    assert_eq!(report.resumable[0].device, card);

    // A removed group: its members lose it.
    ldap.delete(&format!("cn=engineering,{GROUPS}"));
    let report = sync(&t, false).await.unwrap();
    assert_eq!(report.updated.len(), 2, "{report:?}");
    assert!(t
        .store
        .user(&UserId::new("ada"))
        .await
        .unwrap()
        .groups
        .is_empty());
    assert_eq!(
        t.store.user(&UserId::new("seed")).await.unwrap().groups,
        ["everyone"]
    );

    // A removed person: disabled, not deleted.
    ldap.delete(&format!("uid=seed,{PEOPLE}"));
    let report = sync(&t, false).await.unwrap();
    assert_eq!(uids(&report.disabled), ["seed"]);
    let seed = t.store.user(&UserId::new("seed")).await.unwrap();
    assert!(seed.disabled);
    assert!(!sync(&t, false).await.unwrap().changes_anything());
    assert!(events_of(&t, audit::DIRECTORY_SYNCED).await >= 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_people_come_through_pages() {
    let Some(ldap) = Slapd::start(&jpeg(1)) else {
        return;
    };
    let mut ldif = String::new();
    for i in 0..250 {
        ldif.push_str(&format!(
            "dn: uid=p{i:03},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: p{i:03}\n\
             cn: Person {i}\ngivenName: Person\nsn: Number {i}\n\n"
        ));
    }
    ldif.push_str(&format!(
        "dn: cn=night shift,{GROUPS}\nobjectClass: groupOfNames\ncn: night shift\n\
         member: uid=p007,{PEOPLE}\nmember: uid=p199,{PEOPLE}\n"
    ));
    ldap.add(&ldif);
    let (_dir, t) = support::open().await;

    // More entries than the guard allows: refused, nothing written.
    let mut config = ldap.config();
    config.max_entries = 200;
    let guarded = t.clone().with_directory(config).unwrap();
    let err = sync(&guarded, false).await.unwrap_err().to_string();
    assert!(err.contains("more than 200 entries"), "{err}");
    assert!(ldap_people(&t).await.is_empty());

    // Plain LDAP, pages of 100 past the server's limit of 100 entries a search, groups from the
    // memberOf values the memberof overlay keeps.
    let mut config = ldap.config();
    config.start_tls = false;
    config.ca_file = None;
    config.groups = Some(tessera_directory::GroupMode::MemberOf);
    let t = t.with_directory(config).unwrap();
    let report = sync(&t, false).await.unwrap();
    assert_eq!(report.read, 251, "{}", report.summary());
    assert_eq!(report.created.len(), 251);
    assert_eq!(ldap_people(&t).await.len(), 251);
    assert_eq!(
        t.store.user(&UserId::new("p199")).await.unwrap().groups,
        ["night shift"]
    );
    assert!(!sync(&t, false).await.unwrap().changes_anything());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_explained_and_change_nothing() {
    let Some(ldap) = Slapd::start(&jpeg(2)) else {
        return;
    };
    let (_dir, t) = support::open().await;
    let base = t.clone().with_directory(ldap.config()).unwrap();
    sync(&base, false).await.unwrap();
    let before = ldap_people(&t).await;
    assert_eq!(before, [(UserId::new("seed"), false)]);
    // Removed from the directory, so that a reading that looked complete would disable them.
    ldap.delete(&format!("uid=seed,{PEOPLE}"));
    let failed_events = events_of(&t, audit::DIRECTORY_SYNC_FAILED).await;

    let fails = |config: DirectoryConfig| {
        let t = t.clone();
        async move {
            let t = t.with_directory(config).unwrap();
            let e = sync(&t, false).await.unwrap_err();
            assert_eq!(e.code().as_str(), "DIR0001", "{e}");
            assert_eq!(ldap_people(&t).await, [(UserId::new("seed"), false)]);
            e.to_string()
        }
    };

    let mut wrong_ca = ldap.config();
    wrong_ca.ca_file = Some(ldap.path("other-ca.crt"));
    let err = fails(wrong_ca.clone()).await;
    assert!(
        err.contains(&format!(
            "the directory's certificate is not trusted by {}",
            ldap.path("other-ca.crt").display()
        )),
        "{err}"
    );
    let mut ldaps = wrong_ca;
    ldaps.url = format!("ldaps://127.0.0.1:{}", ldap.tls_port);
    ldaps.start_tls = false;
    let err = fails(ldaps.clone()).await;
    assert!(err.contains("not trusted by"), "{err}");

    let mut unreachable = ldap.config();
    unreachable.url = format!("ldap://127.0.0.1:{}", free_port());
    let err = fails(unreachable).await;
    assert!(
        err.contains("cannot reach the directory at ldap://127.0.0.1:"),
        "{err}"
    );

    std::fs::write(ldap.path("wrong.pw"), "not the password\n").unwrap();
    let mut refused = ldap.config();
    refused.bind_password_file = Some(ldap.path("wrong.pw"));
    let err = fails(refused).await;
    assert!(
        err.contains("refused the sign-in of cn=tessera")
            && err.contains("invalid credentials (49)"),
        "{err}"
    );
    assert!(!err.contains("not the password"));

    let mut missing_base = ldap.config();
    missing_base.base_dn = format!("ou=nobody,{SUFFIX}");
    let err = fails(missing_base).await;
    assert!(err.contains("has no entry ou=nobody"), "{err}");

    // Part of the tree held elsewhere: a referral, reported and not followed.
    ldap.admin(
        "ldapadd",
        &["-M"],
        &format!(
            "dn: ou=remote,{PEOPLE}\nobjectClass: referral\nobjectClass: extensibleObject\n\
             ou: remote\nref: ldap://127.0.0.1:1/ou=remote,{SUFFIX}\n"
        ),
    );
    let err = fails(ldap.config()).await;
    assert!(
        err.contains("referred the search to ldap://127.0.0.1:1/ou=remote"),
        "{err}"
    );
    ldap.admin("ldapdelete", &["-M"], &format!("ou=remote,{PEOPLE}\n"));
    assert_eq!(
        events_of(&t, audit::DIRECTORY_SYNC_FAILED).await,
        failed_events + 6
    );

    // LDAPS with the right CA reads, and the person removed meanwhile is disabled now.
    ldaps.ca_file = Some(ldap.path("ca.crt"));
    let t = t.with_directory(ldaps).unwrap();
    let report = sync(&t, false).await.unwrap();
    assert_eq!(uids(&report.disabled), ["seed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_page_syncs_and_never_shows_the_password() {
    // Without a [directory] section the page says how to configure one.
    let (_dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;
    let (status, _, page) = portal.get("/directory").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"no-directory\""), "{page}");
    let (status, _, page) = portal
        .post("/directory/sync", &[("csrf", &csrf(&page))])
        .await;
    assert_eq!(status, 409);
    assert!(page.contains("No directory is configured"));

    let Some(ldap) = Slapd::start(&jpeg(3)) else {
        return;
    };
    let secret = std::fs::read_to_string(ldap.path("bind.pw")).unwrap();
    let t = t.with_directory(ldap.config()).unwrap();
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;
    let (status, _, page) = portal.get("/directory").await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("ldap://127.0.0.1:{}", ldap.port)));
    assert!(page.contains(PEOPLE) && page.contains("StartTLS"));
    assert!(
        page.contains("href=\"/directory\""),
        "the menu links the page"
    );
    assert!(
        !page.contains(secret.trim()),
        "the bind password is never shown"
    );
    let token = csrf(&page);

    let (status, _, page) = portal
        .post("/directory/sync", &[("csrf", &token), ("dry_run", "on")])
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Dry run") && page.contains("1 created"),
        "{page}"
    );
    assert!(ldap_people(&t).await.is_empty());

    let (status, _, page) = portal.post("/directory/sync", &[("csrf", &token)]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Sync done") && page.contains("id=\"sync-created\""));
    assert_eq!(ldap_people(&t).await, [(UserId::new("seed"), false)]);
    assert!(page.contains("id=\"last-run\""), "{page}");
    assert!(
        page.contains("DirectorySynced"),
        "the audit log's recent syncs"
    );

    // A failure is a sentence with its code; nothing changes.
    ldap.delete(&format!("uid=seed,{PEOPLE}"));
    std::fs::write(ldap.path("bind.pw"), "wrong password").unwrap();
    let (status, _, page) = portal.post("/directory/sync", &[("csrf", &token)]).await;
    assert_eq!(status, 502, "{page}");
    assert!(
        page.contains("DIR0001") && page.contains("invalid credentials"),
        "{page}"
    );
    assert_eq!(ldap_people(&t).await, [(UserId::new("seed"), false)]);
    let (_, _, page) = portal.post("/directory/sync", &[("csrf", "forged")]).await;
    assert!(!page.contains("Sync done"));
}

//! Importing people from CSV files as HR sends them, hostile ones included: bad input gets a
//! clear error and loses nothing. A file that is not UTF-8 is refused whole (nothing written); a
//! quote left open, a uid twice, a uid another source keeps or a bad field loses only its own
//! line, named in the report; a complete import disables the people it leaves out and
//! deprovisions their cards by the configured rule (suspend: certificates on hold; terminate:
//! revoked, affiliationChanged) with the audit events, but never someone whose line was
//! rejected; the same file twice changes nobody; a person who comes back finds their suspended
//! cards offered for resuming. A disabled person gets no card, and their cards are not resumed.
//!
//! Every scenario runs on SQLite, and on PostgreSQL too when `TESSERA_TEST_DATABASE_URL` names a
//! server (each run in a database of its own).

mod support;

use tessera_core::changes::{Change, Changes, UserWas};
use tessera_core::devices;
use tessera_core::ids::*;
use tessera_core::issuance::{self, Actor, StartRequest};
use tessera_core::model::{BuiltinRole, CertificateStatus, User, UserSource};
use tessera_core::people::csv_file::{CsvMapping, NoPhotos};
use tessera_core::people::local;
use tessera_core::people::{self, DeprovisionRule, ImportOptions, Report};
use tessera_core::ports::Store;
use tessera_core::{CoreError, DeviceState, ErrorCode, Pin, Reason};
use tessera_server::{demo, Options, Tessera};

/// A Tessera with the demo content, and what to drop afterwards.
struct Backend {
    name: &'static str,
    t: Tessera,
    _dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

/// SQLite always; PostgreSQL too when `TESSERA_TEST_DATABASE_URL` is set.
async fn backends() -> Vec<Backend> {
    let (dir, t) = support::open().await;
    let mut out = vec![Backend {
        name: "sqlite",
        t,
        _dir: dir,
        postgres: None,
    }];
    match std::env::var("TESSERA_TEST_DATABASE_URL") {
        Ok(base) => {
            let url = tessera_store::testing::fresh_postgres_database(&base).await;
            let dir = tempfile::tempdir().unwrap();
            let options = Options {
                database_url: Some(url.clone()),
                trust_virtual_card_attestation: true,
                ..Options::new(dir.path().join("data"))
            };
            let (t, _) = Tessera::open(&options).await.unwrap();
            out.push(Backend {
                name: "postgres",
                t,
                _dir: dir,
                postgres: Some((base, url)),
            });
        }
        Err(_) => assert!(
            std::env::var("TESSERA_REQUIRE_POSTGRES").is_err(),
            "TESSERA_REQUIRE_POSTGRES is set but TESSERA_TEST_DATABASE_URL is not"
        ),
    }
    out
}

async fn done(backend: Backend) {
    let Backend { t, postgres, .. } = backend;
    drop(t);
    if let Some((base, url)) = postgres {
        tessera_store::testing::drop_postgres_database(&base, &url).await;
    }
}

fn admin() -> Actor {
    support::actor(BuiltinRole::Administrator)
}

const REAL: ImportOptions = ImportOptions {
    dry_run: false,
    complete: false,
};
const COMPLETE: ImportOptions = ImportOptions {
    dry_run: false,
    complete: true,
};

async fn import(t: &Tessera, csv: &[u8], options: ImportOptions) -> Result<Report, CoreError> {
    import_with(t, csv, CsvMapping::default(), options).await
}

async fn import_with(
    t: &Tessera,
    csv: &[u8],
    mapping: CsvMapping,
    options: ImportOptions,
) -> Result<Report, CoreError> {
    people::import_csv(
        &t.services,
        &admin(),
        "people.csv",
        csv,
        mapping,
        &NoPhotos,
        options,
        &|_| {},
    )
    .await
}

async fn user(t: &Tessera, uid: &str) -> Option<User> {
    t.store
        .users_by_uid(&[UserId::new(uid)])
        .await
        .unwrap()
        .pop()
}

/// The audit events after `seq`, oldest first: (name, user).
async fn events_after(t: &Tessera, seq: i64) -> Vec<(String, Option<String>)> {
    let mut events: Vec<_> = t
        .store
        .audit_events(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.seq > seq)
        .collect();
    events.sort_by_key(|e| e.seq);
    events.into_iter().map(|e| (e.name, e.user)).collect()
}

async fn last_seq(t: &Tessera) -> i64 {
    t.store
        .audit_events(None, 1)
        .await
        .unwrap()
        .first()
        .map_or(0, |e| e.seq)
}

async fn statuses(t: &Tessera, d: &DeviceId) -> Vec<(CertificateStatus, Option<String>)> {
    t.store
        .certificates_of_device(d)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.status, c.revocation_reason))
        .collect()
}

/// Issues a card to `uid` on the demo printer and activates it, as the wizard does.
async fn issue_active(t: &Tessera, uid: &str) -> DeviceId {
    let actor = admin();
    let job = start(t, uid).await.unwrap();
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
    issuance::finish(&t.services, &actor, &job.id)
        .await
        .unwrap();
    job.device.unwrap()
}

async fn start(t: &Tessera, uid: &str) -> Result<tessera_core::model::IssuanceJob, CoreError> {
    issuance::start(
        &t.services,
        &admin(),
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_not_in_utf8_is_refused_whole_and_writes_nothing() {
    for b in backends().await {
        let t = &b.t;
        let users = t.store.count_users().await.unwrap();
        let seq = last_seq(t).await;
        // Latin-1, as older spreadsheets save "CSV": é is the byte 0xE9 on line 3.
        let latin1 = b"uid,given_name,family_name\nalice,Alice,Able\njose,Jos\xe9,Garc\xeda\n";
        let mapping = CsvMapping {
            group_separator: "|".into(),
            ..CsvMapping::default()
        };
        let e = import_with(t, latin1, mapping, REAL).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::ImportRefused, "{}", b.name);
        assert_eq!(e.code().as_str(), "USR0001");
        let message = e.to_string();
        assert!(
            message.contains("line 3") && message.contains("0xE9") && message.contains("UTF-8"),
            "{message}"
        );
        assert_eq!(t.store.count_users().await.unwrap(), users, "nobody added");
        assert!(user(t, "alice").await.is_none(), "not even the good line");
        assert!(events_after(t, seq).await.is_empty(), "nothing audited");
        let saved = people::saved_mapping(&t.services, &admin()).await.unwrap();
        assert_eq!(saved, CsvMapping::default(), "the mapping is not saved");
        done(b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_line_loses_only_itself_and_says_why() {
    for b in backends().await {
        let t = &b.t;
        // A person the directory keeps.
        let mut ldap = demo::users().remove(1);
        ldap.uid = UserId::new("lduser");
        ldap.source = UserSource::Ldap;
        let mut changes = Changes::new();
        changes.push(Change::PutUser {
            user: ldap.clone(),
            was: UserWas::New,
        });
        t.store.commit(&changes).await.unwrap();
        let jdoe = user(t, "jdoe").await.unwrap();

        let csv = "uid,given_name,family_name,email\n\
                   alice,Alice,Able,alice@example.org\n\
                   bob,Bob,\"Brown,bob@example.org\n\
                   carol,Carol,Clark,carol@example.org\n\
                   alice,Alicia,Able,alicia@example.org\n\
                   jdoe,Jane,Changed,jane@example.org\n\
                   lduser,Lou,Changed,lou@example.org\n\
                   dave,Dave,Davis,not-an-email\n";
        let report = import(t, csv.as_bytes(), REAL).await.unwrap();
        let created: Vec<&str> = report.created.iter().map(|u| u.as_str()).collect();
        assert_eq!(created, ["alice", "carol"], "{}: {report:#?}", b.name);
        let reason = |line: &str| -> String {
            let r = report
                .rejected
                .iter()
                .find(|r| r.at == line)
                .unwrap_or_else(|| panic!("{line} rejected: {:#?}", report.rejected));
            r.reason.clone()
        };
        assert!(reason("line 3").contains("quote"), "{}", reason("line 3"));
        assert_eq!(reason("line 5"), "the uid alice is already on line 2");
        assert!(
            reason("line 6").contains("belongs to a person from the portal (local)"),
            "{}",
            reason("line 6")
        );
        assert!(
            reason("line 7").contains("belongs to a person from the directory (LDAP)"),
            "{}",
            reason("line 7")
        );
        assert!(reason("line 8").contains("not an email address"));
        assert_eq!(report.rejected.len(), 5, "{:#?}", report.rejected);

        // The people whose line was rejected are as they were.
        assert_eq!(user(t, "jdoe").await.unwrap(), jdoe);
        assert_eq!(user(t, "lduser").await.unwrap(), ldap);
        assert_eq!(user(t, "alice").await.unwrap().given_name, "Alice");
        assert!(user(t, "bob").await.is_none() && user(t, "dave").await.is_none());
        // Another source's people cannot be changed through the local use cases either.
        let e = local::update(
            &t.services,
            &admin(),
            &UserId::new("lduser"),
            Default::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code().as_str(), "USR0003");
        done(b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_who_leave_lose_their_cards_and_find_them_again_when_back() {
    for b in backends().await {
        let t = &b.t;
        let svc = &t.services;
        let everyone = "uid,given_name,family_name,email,groups\n\
                        alice,Alice,Able,alice@example.org,staff\n\
                        bob,Bob,Brown,bob@example.org,staff\n\
                        carol,Carol,Clark,carol@example.org,staff\n\
                        dave,Dave,Davis,dave@example.org,staff\n";
        let first = import(t, everyone.as_bytes(), COMPLETE).await.unwrap();
        assert_eq!(first.created.len(), 4, "{}: {first:#?}", b.name);
        let alice_card = issue_active(t, "alice").await;
        let bob_card = issue_active(t, "bob").await;

        // The same file again changes nobody: one UsersImported event says so.
        let before: Vec<User> = t.store.users_by_uid(&first.created).await.unwrap();
        let seq = last_seq(t).await;
        let again = import(t, everyone.as_bytes(), COMPLETE).await.unwrap();
        assert_eq!(again.unchanged, 4, "{again:#?}");
        assert!(!again.changes_anything() && again.cards.is_empty());
        assert_eq!(t.store.users_by_uid(&first.created).await.unwrap(), before);
        let events = events_after(t, seq).await;
        assert_eq!(events, [("UsersImported".to_owned(), None)], "{events:?}");

        // Alice has left; Carol's line has a typo. A dry run says what would happen...
        let without_alice = "uid,given_name,family_name,email,groups\n\
                             bob,Bob,Brown,bob@example.org,staff\n\
                             carol,Carol,Clark,carol@example,org,staff\n\
                             dave,Dave,Davis,dave@example.org,staff\n";
        let seq = last_seq(t).await;
        let dry = import(
            t,
            without_alice.as_bytes(),
            ImportOptions {
                dry_run: true,
                complete: true,
            },
        )
        .await
        .unwrap();
        assert_eq!(dry.disabled, [UserId::new("alice")], "{dry:#?}");
        assert_eq!(dry.cards.len(), 1);
        assert_eq!(
            (dry.cards[0].from, dry.cards[0].to),
            ("active", "suspended")
        );
        // ... and writes nothing.
        assert!(events_after(t, seq).await.is_empty());
        assert!(!user(t, "alice").await.unwrap().disabled);
        assert_eq!(
            t.store.device(&alice_card).await.unwrap().state,
            DeviceState::Active
        );

        // The real run, under the default rule (suspend).
        let report = import(t, without_alice.as_bytes(), COMPLETE).await.unwrap();
        assert_eq!(report.disabled, [UserId::new("alice")], "{report:#?}");
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(report.rejected[0].at, "line 3");
        assert_eq!(report.rejected[0].uid.as_deref(), Some("carol"));
        assert!(
            !user(t, "carol").await.unwrap().disabled,
            "a typo disables nobody"
        );
        assert!(user(t, "alice").await.unwrap().disabled);
        let card = t.store.device(&alice_card).await.unwrap();
        assert_eq!(
            (card.state, card.reason),
            (DeviceState::Suspended, Reason::Left)
        );
        let on_hold = (
            CertificateStatus::OnHold,
            Some("certificateHold".to_owned()),
        );
        let alice_statuses = statuses(t, &alice_card).await;
        assert!(!alice_statuses.is_empty());
        assert!(
            alice_statuses.iter().all(|s| *s == on_hold),
            "{alice_statuses:?}"
        );
        assert_eq!(report.cards.len(), 1);
        assert_eq!(report.cards[0].device, alice_card);
        let events = events_after(t, seq).await;
        let alice = Some("alice".to_owned());
        assert!(
            events.contains(&("UserDisabled".to_owned(), alice.clone())),
            "{events:?}"
        );
        assert!(
            events.iter().any(|(n, _)| n == "DeviceStateChanged"),
            "{events:?}"
        );
        assert_eq!(events.last().unwrap().0, "UsersImported", "{events:?}");

        // While she is disabled, her card is not resumed and she gets no new one.
        let officer = support::actor(BuiltinRole::SecurityOfficer);
        let e = devices::resume(svc, &officer, &alice_card)
            .await
            .unwrap_err();
        assert_eq!(e.code().as_str(), "USR0005", "{e}");
        assert!(
            e.to_string().contains("Alice Able (alice) is disabled"),
            "{e}"
        );
        let e = start(t, "alice").await.unwrap_err();
        assert_eq!(e.code().as_str(), "USR0005", "{e}");
        assert!(e.to_string().contains("no card can be issued"), "{e}");
        assert_eq!(
            t.store.device(&alice_card).await.unwrap().state,
            DeviceState::Suspended
        );

        // Bob leaves under the terminate rule, and Alice comes back.
        let mut settings = t.store.settings().await.unwrap();
        settings.people.deprovision = DeprovisionRule::Terminate;
        tessera_core::settings::save(svc, &admin(), settings)
            .await
            .unwrap();
        let without_bob = "uid,given_name,family_name,email,groups\n\
                           alice,Alice,Able,alice@example.org,staff\n\
                           carol,Carol,Clark,carol@example.org,staff\n\
                           dave,Dave,Davis,dave@example.org,staff\n";
        let seq = last_seq(t).await;
        let report = import(t, without_bob.as_bytes(), COMPLETE).await.unwrap();
        assert_eq!(report.disabled, [UserId::new("bob")], "{report:#?}");
        assert_eq!(report.enabled, [UserId::new("alice")]);
        let card = t.store.device(&bob_card).await.unwrap();
        assert_eq!(
            (card.state, card.reason),
            (DeviceState::Terminated, Reason::Left)
        );
        let revoked = (
            CertificateStatus::Revoked,
            Some("affiliationChanged".to_owned()),
        );
        assert!(statuses(t, &bob_card).await.iter().all(|s| *s == revoked));
        assert_eq!(report.resumable.len(), 1, "{report:#?}");
        assert_eq!(report.resumable[0].device, alice_card);
        let events = events_after(t, seq).await;
        let bob = Some("bob".to_owned());
        assert!(
            events.contains(&("UserDisabled".to_owned(), bob)),
            "{events:?}"
        );
        assert!(
            events.contains(&("UserEnabled".to_owned(), alice)),
            "{events:?}"
        );

        // Back, Alice's card can be resumed: its certificates are valid again.
        devices::resume(svc, &officer, &alice_card).await.unwrap();
        let valid = (CertificateStatus::Valid, None);
        assert!(statuses(t, &alice_card).await.iter().all(|s| *s == valid));
        done(b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_person_gets_no_card_until_enabled() {
    for b in backends().await {
        let t = &b.t;
        let svc = &t.services;
        let jdoe = UserId::new("jdoe");
        let card = issue_active(t, "jdoe").await;
        // A wizard opened before she was disabled cannot go on to the policy step either.
        let open_wizard = start(t, "jdoe").await.unwrap();
        let (_, moved) = local::disable(svc, &admin(), &jdoe, Some(DeprovisionRule::Suspend))
            .await
            .unwrap();
        assert_eq!(moved.len(), 1, "{}", b.name);

        let e = start(t, "jdoe").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::UserDisabled);
        assert_eq!(
            e.to_string(),
            "Jane Doe (jdoe) is disabled, so no card can be issued to them: enable them first \
             (a person from a CSV file or the directory is enabled by their source, at the next \
             import or sync)"
        );
        let e = issuance::choose_policy(
            &t.runner,
            &admin(),
            &open_wizard.id,
            &PolicyId::new(demo::POLICY_ID),
            Some(Pin::new("246810")),
        )
        .await
        .map(|_| ())
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::UserDisabled, "{e}");
        let e = devices::resume(svc, &admin(), &card).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::UserDisabled);
        assert!(
            e.to_string().contains("their card cannot be resumed"),
            "{e}"
        );

        local::enable(svc, &admin(), &jdoe).await.unwrap();
        devices::resume(svc, &admin(), &card).await.unwrap();
        // The wizard opened before is still in progress: one at a time per person.
        let e = start(t, "jdoe").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::UserIssuanceInProgress, "{e}");
        issuance::cancel(svc, &admin(), &open_wizard.id, "")
            .await
            .unwrap();
        assert!(start(t, "jdoe").await.is_ok());
        done(b).await;
    }
}

/// A complete file that leaves out most of its source's people looks like a broken export, not
/// like people leaving: it is refused whole. An importer without `ManageDevices` cannot move a
/// leaver's cards, and nothing of the import is written then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_file_missing_most_people_is_refused_and_cards_need_their_permission() {
    for backend in backends().await {
        let t = &backend.t;
        let mut csv = String::from("uid,display_name\n");
        for i in 0..30 {
            csv.push_str(&format!("p{i:02},Person {i}\n"));
        }
        import(t, csv.as_bytes(), COMPLETE).await.unwrap();
        let few = "uid,display_name\np00,Person 0\np01,Person 1\n";
        let err = import(t, few.as_bytes(), COMPLETE).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ImportRefused, "{}", backend.name);
        assert!(
            err.to_string().contains("would disable 28 of the 30"),
            "{err}"
        );
        for i in 0..30 {
            let p = user(t, &format!("p{i:02}")).await.unwrap();
            assert!(!p.disabled, "{}: p{i:02} was disabled", backend.name);
        }
        // 3 of 30 is within the 10 a complete reading may disable.
        let most: String = csv.lines().take(28).map(|l| format!("{l}\n")).collect();
        let report = import(t, most.as_bytes(), COMPLETE).await.unwrap();
        assert_eq!(report.disabled.len(), 3, "{}", backend.name);

        // A custom role that manages people but not cards: a leaver without cards is fine, a
        // leaver with an Active card is refused (AUTH0001) and stays enabled.
        let mut role = support::actor(BuiltinRole::Administrator);
        role.role
            .permissions
            .retain(|p| *p != tessera_core::model::Permission::ManageDevices);
        let holder = "p00";
        local::disable(
            &t.services,
            &role,
            &UserId::new("p01"),
            Some(DeprovisionRule::Suspend),
        )
        .await
        .unwrap();
        let card = issue_active(t, holder).await;
        let err = local::disable(
            &t.services,
            &role,
            &UserId::new(holder),
            Some(DeprovisionRule::Suspend),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden, "{}", backend.name);
        assert!(!user(t, holder).await.unwrap().disabled);
        assert_eq!(
            t.store.device(&card).await.unwrap().state,
            DeviceState::Active
        );
        done(backend).await;
    }
}

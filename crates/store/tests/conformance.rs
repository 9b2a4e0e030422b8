//! One conformance suite for the `Store` trait, run against every backend: SQLite always, and
//! PostgreSQL when `TESSERA_TEST_DATABASE_URL` names a server (each run in a database of its own).
//! `./scripts/test.sh` sets `TESSERA_REQUIRE_POSTGRES=1`, so there a missing server is a failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_core::approvals::{Approval, ApprovalState, Subject, TwoPersonAction};
use tessera_core::audit;
use tessera_core::changes::{Change, Changes, LeaseChange};
use tessera_core::ids::*;
use tessera_core::model::*;
use tessera_core::ports::{NewAuditEvent, Store, StoreError, StoredSession, UserQuery};
use tessera_core::{DeviceState, Reason};
use tessera_store::SqlStore;

fn user(uid: &str, name: &str) -> User {
    User {
        uid: UserId::new(uid),
        given_name: name.split(' ').next().unwrap().into(),
        family_name: name.split(' ').nth(1).unwrap_or("").into(),
        display_name: name.into(),
        email: format!("{uid}@example.org"),
        upn: format!("{uid}@example.org"),
        employee_id: format!("E{}", uid.len()),
        department: "Security".into(),
        title: "Officer".into(),
        groups: vec!["staff".into()],
        source: UserSource::Local,
        attributes: BTreeMap::new(),
        has_photo: false,
        disabled: false,
        photo_digest: None,
    }
}

fn device(id: &str, uid: &str, at: i64) -> Device {
    Device {
        id: DeviceId::new(id),
        serial: "1234".into(),
        atr: "3B8080010101".into(),
        device_type: "PIV".into(),
        state: DeviceState::Assigned,
        reason: Reason::None,
        user: Some(UserId::new(uid)),
        policy: None,
        layout: None,
        created_at: Timestamp(at),
        updated_at: Timestamp(at),
        activated_at: None,
        expires_at: None,
        firmware: None,
        temporary_for: None,
    }
}

/// One change committed on its own.
async fn one(store: &SqlStore, change: Change) -> Result<(), StoreError> {
    let mut changes = Changes::new();
    changes.push(change);
    store.commit(&changes).await
}

fn secret(device: &DeviceId, kind: &str, sealed: &[u8]) -> Change {
    Change::PutDeviceSecret {
        device: device.clone(),
        kind: kind.into(),
        sealed: sealed.to_vec(),
    }
}

/// The status change of the test certificate `0a0b`.
fn status(
    expected: CertificateStatus,
    status: CertificateStatus,
    reason: Option<&str>,
    at: i64,
) -> Change {
    Change::SetCertificateStatus {
        serial: "0a0b".into(),
        expected,
        status,
        reason: reason.map(str::to_owned),
        at: Timestamp(at),
    }
}

async fn conformance(store: Arc<SqlStore>) {
    // users and search, including LIKE wildcards typed literally
    store.put_user(&user("jdoe", "Jane Doe")).await.unwrap();
    store.put_user(&user("asmith", "Alan Smith")).await.unwrap();
    store
        .put_user(&user("under_score", "Una Score"))
        .await
        .unwrap();
    assert_eq!(store.count_users().await.unwrap(), 3);
    assert_eq!(
        store.user(&"jdoe".into()).await.unwrap().display_name,
        "Jane Doe"
    );
    assert_eq!(
        store.user(&"nobody".into()).await,
        Err(StoreError::NotFound)
    );
    let find = |text: &str| UserQuery {
        text: text.into(),
        limit: 10,
        ..Default::default()
    };
    let found = store.find_users(&find("DOE")).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        store.find_users(&find("")).await.unwrap()[0].uid.as_str(),
        "asmith"
    );
    assert_eq!(store.find_users(&find("r_s")).await.unwrap().len(), 1);
    assert_eq!(store.find_users(&find("r%s")).await.unwrap().len(), 0);
    let mut renamed = user("jdoe", "Jane Q Doe");
    renamed.title = "Chief".into();
    store.put_user(&renamed).await.unwrap();
    assert_eq!(store.user(&"jdoe".into()).await.unwrap().title, "Chief");

    // photos are bytes, not text
    let png = vec![0x89, b'P', b'N', b'G', 0, 255, 0, 1];
    assert_eq!(store.photo(&"jdoe".into()).await.unwrap(), None);
    store.put_photo(&"jdoe".into(), &png).await.unwrap();
    assert_eq!(store.photo(&"jdoe".into()).await.unwrap(), Some(png));

    // settings default until written
    assert_eq!(store.settings().await.unwrap(), Settings::default());
    let s = Settings {
        card_printing_enabled: false,
        initial_pin_mode: PinDisplayMode::NotDisplayed,
        totp_roles: vec![RoleId::new("help_desk")],
        password_min_length: 16,
        people: Default::default(),
        default_policy: Some("piv-standard".into()),
        fips201: Default::default(),
    };
    one(&store, Change::PutSettings(s.clone())).await.unwrap();
    assert_eq!(store.settings().await.unwrap(), s);

    // stations and pairings
    let st = Station {
        id: StationId::new("ws1"),
        name: "Workstation 1".into(),
        enabled: true,
        printers: vec![PrinterConfig {
            name: "P".into(),
            kind: PrinterKind::Simulated,
            encoder_reader: Some("R".into()),
        }],
        access: Some(StationAccess {
            credential_hash: Some("ab".repeat(32)),
            enrolled_at: Some(Timestamp(1_700_000_000)),
            ..Default::default()
        }),
    };
    one(&store, Change::PutStation(st.clone())).await.unwrap();
    assert_eq!(store.stations().await.unwrap(), vec![st]);
    let op = OperatorId::new("admin");
    assert_eq!(store.pairing(&op, &"ws1".into()).await.unwrap(), None);
    let mut pairing = PrinterPairing {
        operator: op.clone(),
        station: "ws1".into(),
        printer: "P".into(),
        reader: "R".into(),
    };
    one(&store, Change::PutPairing(pairing.clone()))
        .await
        .unwrap();
    pairing.reader = "R2".into();
    one(&store, Change::PutPairing(pairing.clone()))
        .await
        .unwrap();
    assert_eq!(
        store.pairing(&op, &"ws1".into()).await.unwrap(),
        Some(pairing)
    );

    // operators and sessions (expired sessions are not returned)
    let mut operator = Operator::new(
        op.as_str(),
        "Admin",
        "$argon2id$v=19$...".into(),
        RoleId::new(BuiltinRole::Administrator.id()),
    );
    operator.scope = Scope::Groups(vec!["engineering".into()]);
    one(&store, Change::PutOperator(operator.clone()))
        .await
        .unwrap();
    assert_eq!(store.operator(&op).await.unwrap(), operator);
    assert_eq!(store.count_operators().await.unwrap(), 1);
    store
        .put_session("h1", &op, "csrf1", Timestamp(100), Some("c0ffee"))
        .await
        .unwrap();
    assert_eq!(
        store.session("h1", Timestamp(50)).await.unwrap(),
        Some(StoredSession {
            operator: op.clone(),
            csrf: "csrf1".into(),
            card: Some("c0ffee".into()),
        })
    );
    assert_eq!(store.session("h1", Timestamp(100)).await.unwrap(), None);
    store.delete_session("h1").await.unwrap();
    assert_eq!(store.session("h1", Timestamp(50)).await.unwrap(), None);

    // a second operator, listed by id; deleting them ends their sessions too
    let helper = Operator::new("zed", "Zed", "x".into(), RoleId::new("help_desk"));
    one(&store, Change::PutOperator(helper.clone()))
        .await
        .unwrap();
    let ids: Vec<_> = store
        .operators()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(ids, vec![op.clone(), helper.id.clone()]);
    store
        .put_session("h2", &helper.id, "c", Timestamp(100), None)
        .await
        .unwrap();
    store
        .put_session("h3", &helper.id, "c", Timestamp(100), None)
        .await
        .unwrap();
    one(&store, Change::DeleteSessionsOf(helper.id.clone()))
        .await
        .unwrap();
    assert_eq!(store.session("h2", Timestamp(50)).await.unwrap(), None);
    store
        .put_session("h4", &helper.id, "c", Timestamp(100), None)
        .await
        .unwrap();
    one(&store, Change::DeleteOperator(helper.id.clone()))
        .await
        .unwrap();
    assert_eq!(store.session("h4", Timestamp(50)).await.unwrap(), None);
    assert_eq!(store.operator(&helper.id).await, Err(StoreError::NotFound));

    // custom roles
    assert_eq!(store.roles().await.unwrap(), vec![]);
    let role = Role {
        id: RoleId::new("badge_printer"),
        name: "Badge printer".into(),
        permissions: vec![Permission::ViewUsers, Permission::IssueDevice],
        builtin: false,
    };
    one(&store, Change::PutRole(role.clone())).await.unwrap();
    assert_eq!(store.roles().await.unwrap(), vec![role.clone()]);
    one(&store, Change::DeleteRole(role.id.clone()))
        .await
        .unwrap();
    assert_eq!(store.roles().await.unwrap(), vec![]);

    // devices, secrets, certificates, prints
    let mut d = device("d1", "jdoe", 10);
    one(&store, Change::InsertDevice(d.clone())).await.unwrap();
    assert_eq!(
        one(&store, Change::InsertDevice(d.clone())).await,
        Err(StoreError::Conflict)
    );
    d.state = DeviceState::Pending;
    one(
        &store,
        Change::UpdateDevice {
            device: d.clone(),
            expected: DeviceState::Assigned,
        },
    )
    .await
    .unwrap();
    one(&store, Change::InsertDevice(device("d2", "jdoe", 20)))
        .await
        .unwrap();
    let mine = store.devices_of_user(&"jdoe".into()).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[0].id.as_str(), "d2", "newest first");
    assert_eq!(
        store.device(&"d1".into()).await.unwrap().state,
        DeviceState::Pending
    );
    assert_eq!(
        one(
            &store,
            Change::UpdateDevice {
                device: device("zz", "x", 0),
                expected: DeviceState::Assigned,
            }
        )
        .await,
        Err(StoreError::NotFound)
    );
    // a card's records by its serial: one per issuance attempt, newest first, any holder
    let mut other_card = device("d3", "asmith", 15);
    other_card.serial = "87654321".into();
    one(&store, Change::InsertDevice(other_card.clone()))
        .await
        .unwrap();
    let same_card: Vec<String> = store
        .devices_with_serial("1234")
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id.0)
        .collect();
    assert_eq!(same_card, ["d2", "d1"]);
    let found = store.devices_with_serial("87654321").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].state, DeviceState::Assigned);
    other_card.state = DeviceState::Failed;
    one(
        &store,
        Change::UpdateDevice {
            device: other_card.clone(),
            expected: DeviceState::Assigned,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        store.devices_with_serial("87654321").await.unwrap()[0].state,
        DeviceState::Failed
    );
    assert!(store.devices_with_serial("8765").await.unwrap().is_empty());
    one(&store, secret(&d.id, "puk", &[1, 2, 3])).await.unwrap();
    one(&store, secret(&d.id, "puk", &[4, 5])).await.unwrap();
    assert_eq!(
        store.device_secret(&d.id, "puk").await.unwrap(),
        Some(vec![4, 5])
    );
    assert_eq!(store.device_secret(&d.id, "pin").await.unwrap(), None);
    one(&store, secret(&d.id, "pin", &[9])).await.unwrap();
    one(
        &store,
        Change::DeleteDeviceSecret {
            device: d.id.clone(),
            kind: "pin".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(store.device_secret(&d.id, "pin").await.unwrap(), None);
    let cert = CertificateRecord {
        serial: "0a0b".into(),
        device: d.id.clone(),
        user: "jdoe".into(),
        slot: Slot::PivAuthentication,
        subject: "CN=Jane Doe".into(),
        issuer: "CN=CA".into(),
        not_before: Timestamp(1),
        not_after: Timestamp(2),
        status: CertificateStatus::OnHold,
        revocation_reason: Some("certificateHold".into()),
        der: vec![0x30, 0x82, 0, 0],
        attestation: None,
    };
    one(&store, Change::InsertCertificate(cert.clone()))
        .await
        .unwrap();
    one(
        &store,
        status(CertificateStatus::OnHold, CertificateStatus::Valid, None, 3),
    )
    .await
    .unwrap();
    assert!(store.revoked_or_held().await.unwrap().is_empty());
    one(
        &store,
        status(
            CertificateStatus::Valid,
            CertificateStatus::Revoked,
            Some("keyCompromise"),
            9,
        ),
    )
    .await
    .unwrap();
    let revoked = store.revoked_or_held().await.unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].reason.as_deref(), Some("keyCompromise"));
    assert_eq!(revoked[0].changed_at, Timestamp(9));
    assert_eq!(
        store
            .certificate_state("0a0b")
            .await
            .unwrap()
            .unwrap()
            .status,
        CertificateStatus::Revoked
    );
    assert_eq!(store.certificate_state("ffff").await.unwrap(), None);
    // The whole record by serial, with the status it has now (what card sign-in reads).
    let found = store.certificate("0a0b").await.unwrap().unwrap();
    assert_eq!(found.device, d.id);
    assert_eq!(found.der, cert.der);
    assert_eq!(found.status, CertificateStatus::Revoked);
    assert_eq!(found.revocation_reason.as_deref(), Some("keyCompromise"));
    assert_eq!(store.certificate("ffff").await.unwrap(), None);
    one(
        &store,
        status(
            CertificateStatus::Revoked,
            CertificateStatus::Valid,
            None,
            10,
        ),
    )
    .await
    .unwrap();
    let certs = store.certificates_of_device(&d.id).await.unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].status, CertificateStatus::Valid);
    assert_eq!(certs[0].revocation_reason, None);
    assert_eq!(certs[0].der, cert.der);
    let print = PrintRecord {
        id: "p1".into(),
        device: d.id.clone(),
        job: None,
        layout: "badge".into(),
        layout_version: 1,
        printer: "P".into(),
        printer_job: Some("7".into()),
        state: "completed".into(),
        message: String::new(),
        files: vec!["a.png".into()],
        created_at: Timestamp(5),
    };
    one(&store, Change::InsertPrint(print.clone()))
        .await
        .unwrap();
    assert_eq!(store.prints_of_device(&d.id).await.unwrap(), vec![print]);

    // jobs, found by step
    let mut job = IssuanceJob {
        id: JobId::new("j1"),
        operation: OperationId::new("op1"),
        operator: op.clone(),
        user: "jdoe".into(),
        station: "ws1".into(),
        printer: "P".into(),
        reader: "R".into(),
        layout: "badge".into(),
        policy: None,
        device: Some(d.id.clone()),
        step: JobStep::Issuing,
        progress: 10,
        message: "working".into(),
        error: None,
        created_at: Timestamp(1),
        updated_at: Timestamp(1),
        temporary_for: None,
        fed_card: Some(FedCard {
            serial: "12345678".into(),
            atr: "3BF81300".into(),
            firmware: Some("5.7.2".into()),
        }),
    };
    one(
        &store,
        Change::InsertJob {
            job: job.clone(),
            lease: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        store.jobs_in_step(JobStep::Issuing).await.unwrap(),
        vec![job.clone()]
    );
    job.step = JobStep::Printed;
    job.progress = 100;
    one(
        &store,
        Change::UpdateJob {
            job: job.clone(),
            expected: JobStep::Issuing,
            lease: LeaseChange::Unleased { now_ms: 0 },
        },
    )
    .await
    .unwrap();
    assert!(store
        .jobs_in_step(JobStep::Issuing)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.job(&job.id).await.unwrap(), job);

    // audit: numbered, chained, concurrent appends stay a chain
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            one(
                &store,
                Change::Audit(NewAuditEvent {
                    at: Timestamp(i),
                    code: audit::DEVICE_STATE_CHANGED.code,
                    name: audit::DEVICE_STATE_CHANGED.name,
                    operator: Some("admin".into()),
                    user: None,
                    device: Some("d1".into()),
                    operation: None,
                    details: serde_json::json!({"i": i}),
                }),
            )
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut events = store.audit_events(None, 100).await.unwrap();
    assert_eq!(events.len(), 12);
    events.reverse();
    let mut prev = audit::GENESIS_HASH.to_owned();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1);
        assert_eq!(e.prev_hash, prev);
        let recomputed = audit::chain_hash(
            &prev,
            &audit::canonical(
                e.seq,
                &NewAuditEvent {
                    at: e.at,
                    code: e.code,
                    name: audit::DEVICE_STATE_CHANGED.name,
                    operator: e.operator.clone().map(OperatorId),
                    user: None,
                    device: e.device.clone().map(DeviceId),
                    operation: None,
                    details: e.details.clone(),
                },
            ),
        );
        assert_eq!(e.hash, recomputed, "event {} is chained", e.seq);
        prev = e.hash.clone();
    }
    assert_eq!(store.audit_events(Some(3), 10).await.unwrap().len(), 2);

    stock(&store).await;
    approvals(&store).await;
    audit_units(store.clone()).await;
}

/// Units of work with many events, committed at once from many tasks: each unit's events land
/// together, in the unit's order, on one intact chain; a unit that fails appends none; a unit
/// longer than one `INSERT` of events chains across them; each commit is counted once.
async fn audit_units(store: Arc<SqlStore>) {
    let event = |unit: i64, n: i64| NewAuditEvent {
        at: Timestamp(1_000 + unit),
        code: audit::DEVICE_STATE_CHANGED.code,
        name: audit::DEVICE_STATE_CHANGED.name,
        operator: None,
        user: None,
        device: Some(DeviceId::new(format!("unit-{unit}"))),
        operation: None,
        details: serde_json::json!({"unit": unit, "n": n}),
    };
    let before = store.audit_events(None, 1).await.unwrap()[0].clone();
    let commits = store.committed_writes();
    // Unit u has 1 + u % 4 events; unit 0 has 150.
    let size = |u: i64| if u == 0 { 150 } else { 1 + u % 4 };
    let mut tasks = Vec::new();
    for unit in 0..10 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut changes = Changes::new();
            for n in 0..size(unit) {
                changes.audit(event(unit, n));
            }
            store.commit(&changes).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // A unit whose other change fails: none of its events is written.
    let mut failing = Changes::new();
    failing.audit(event(99, 0));
    failing.push(Change::SetCertificateStatus {
        serial: "no-such-certificate".into(),
        expected: CertificateStatus::Valid,
        status: CertificateStatus::Revoked,
        reason: None,
        at: Timestamp(0),
    });
    assert!(store.commit(&failing).await.is_err());
    assert_eq!(store.committed_writes() - commits, 10);

    let total: i64 = (0..10).map(size).sum();
    let mut events = store.audit_events(None, 1_000).await.unwrap();
    events.retain(|e| e.seq > before.seq);
    events.reverse();
    assert_eq!(events.len() as i64, total);
    let mut prev = before.hash.clone();
    let mut seen: Vec<(String, i64)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, before.seq + 1 + i as i64);
        assert_eq!(e.prev_hash, prev);
        let recomputed = audit::chain_hash(
            &prev,
            &audit::canonical(
                e.seq,
                &NewAuditEvent {
                    at: e.at,
                    code: e.code,
                    name: audit::DEVICE_STATE_CHANGED.name,
                    operator: None,
                    user: None,
                    device: e.device.clone().map(DeviceId),
                    operation: None,
                    details: e.details.clone(),
                },
            ),
        );
        assert_eq!(e.hash, recomputed, "event {} is chained", e.seq);
        prev = e.hash.clone();
        seen.push((e.device.clone().unwrap(), e.details["n"].as_i64().unwrap()));
    }
    // Each unit's events are consecutive and in its order.
    let mut at = 0;
    while at < seen.len() {
        let unit = seen[at].0.clone();
        let n = size(unit.trim_start_matches("unit-").parse().unwrap());
        let run: Vec<i64> = seen[at..at + n as usize].iter().map(|(_, n)| *n).collect();
        assert!(seen[at..at + n as usize].iter().all(|(u, _)| *u == unit));
        assert_eq!(run, (0..n).collect::<Vec<_>>(), "{unit}");
        at += n as usize;
    }
}

fn approval(id: &str, at: i64) -> Approval {
    Approval {
        id: ApprovalId::new(id),
        action: TwoPersonAction::Terminate,
        subject: Subject::Device {
            device: DeviceId::new("d1"),
            serial: "1234".into(),
            user: Some(UserId::new("jdoe")),
        },
        reason: "lost".into(),
        requested_by: OperatorId::new("alice"),
        requested_at: Timestamp(at),
        state: ApprovalState::Pending,
        decided_by: None,
        decided_at: None,
        comment: String::new(),
        used_at: None,
    }
}

/// Requests under the two-person rule: listed by state from a time on, oldest first; decided
/// and used only from the state they were read in.
async fn approvals(store: &SqlStore) {
    let put = |approval: Approval, expected| Change::PutApproval { approval, expected };
    assert_eq!(
        store.approval(&ApprovalId::new("a1")).await,
        Err(StoreError::NotFound)
    );
    let mut changes = Changes::new();
    changes.push(put(approval("a2", 200), None));
    changes.push(put(approval("a1", 100), None));
    changes.push(put(approval("a0", 10), None));
    store.commit(&changes).await.unwrap();
    assert_eq!(
        one(store, put(approval("a1", 100), None)).await,
        Err(StoreError::Conflict),
        "an insert never overwrites a request"
    );
    let pending = store
        .approvals(ApprovalState::Pending, Timestamp(50))
        .await
        .unwrap();
    assert_eq!(pending, vec![approval("a1", 100), approval("a2", 200)]);

    let mut approved = approval("a1", 100);
    approved.state = ApprovalState::Approved;
    approved.decided_by = Some(OperatorId::new("bob"));
    approved.decided_at = Some(Timestamp(150));
    approved.comment = "ok".into();
    one(store, put(approved.clone(), Some(ApprovalState::Pending)))
        .await
        .unwrap();
    assert_eq!(
        store.approval(&approved.id).await.unwrap(),
        approved.clone()
    );
    // Decided twice, or used from a state it no longer has: stale, nothing written.
    let mut rejected = approved.clone();
    rejected.state = ApprovalState::Rejected;
    assert!(matches!(
        one(store, put(rejected, Some(ApprovalState::Pending))).await,
        Err(StoreError::Stale(_))
    ));
    let mut used = approved.clone();
    used.state = ApprovalState::Used;
    used.used_at = Some(Timestamp(160));
    one(store, put(used.clone(), Some(ApprovalState::Approved)))
        .await
        .unwrap();
    assert!(matches!(
        one(store, put(used.clone(), Some(ApprovalState::Approved))).await,
        Err(StoreError::Stale(_))
    ));
    assert_eq!(
        one(store, put(approval("zz", 1), Some(ApprovalState::Pending))).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store
            .approvals(ApprovalState::Used, Timestamp(0))
            .await
            .unwrap(),
        vec![used]
    );
    assert_eq!(
        store
            .approvals(ApprovalState::Pending, Timestamp(0))
            .await
            .unwrap()
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>(),
        ["a0", "a2"]
    );
    assert!(store
        .approvals(ApprovalState::Approved, Timestamp(0))
        .await
        .unwrap()
        .is_empty());
}

fn stock_card(serial: &str, model: &str, location: Option<&str>) -> StockCard {
    StockCard {
        serial: serial.into(),
        model: model.into(),
        batch: "B1".into(),
        state: StockState::InStock,
        location: location.map(StationId::new),
        imported_at: Timestamp(10),
        updated_at: Timestamp(10),
    }
}

/// The card stock: new serials only on insert, conditional state changes, filters and counts.
async fn stock(store: &SqlStore) {
    let put = |card: StockCard, expected| Change::PutStockCard { card, expected };
    assert_eq!(store.stock_card("1").await.unwrap(), None);
    let mut changes = Changes::new();
    changes.push(put(stock_card("1", "A", Some("hq")), None));
    changes.push(put(stock_card("2", "A", Some("hq")), None));
    changes.push(put(stock_card("3", "B", None), None));
    store.commit(&changes).await.unwrap();
    assert_eq!(
        store.stock_card("1").await.unwrap(),
        Some(stock_card("1", "A", Some("hq")))
    );
    // A serial already in stock is never overwritten by an insert, and the unit fails whole.
    let mut changes = Changes::new();
    changes.push(put(stock_card("4", "A", None), None));
    changes.push(put(stock_card("1", "Other", None), None));
    assert_eq!(store.commit(&changes).await, Err(StoreError::Conflict));
    assert_eq!(store.stock_card("4").await.unwrap(), None);
    assert_eq!(store.stock_card("1").await.unwrap().unwrap().model, "A");

    let mut issued = stock_card("1", "A", Some("desk"));
    issued.state = StockState::Issued;
    issued.updated_at = Timestamp(20);
    one(store, put(issued.clone(), Some(StockState::InStock)))
        .await
        .unwrap();
    assert_eq!(store.stock_card("1").await.unwrap(), Some(issued.clone()));
    // Decided from a state it no longer has: stale.
    assert!(matches!(
        one(store, put(issued.clone(), Some(StockState::InStock))).await,
        Err(StoreError::Stale(_))
    ));
    assert_eq!(
        one(
            store,
            put(stock_card("9", "A", None), Some(StockState::InStock))
        )
        .await,
        Err(StoreError::NotFound)
    );

    let all = store.stock_cards(&StockFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.serial.as_str()).collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
    let filter = StockFilter {
        model: Some("A".into()),
        state: Some(StockState::InStock),
        location: Some(StationId::new("hq")),
        limit: 10,
    };
    let found = store.stock_cards(&filter).await.unwrap();
    assert_eq!(found, vec![stock_card("2", "A", Some("hq"))]);
    let limited = StockFilter {
        limit: 1,
        ..Default::default()
    };
    assert_eq!(store.stock_cards(&limited).await.unwrap().len(), 1);

    let mut counts = store.stock_counts().await.unwrap();
    counts.sort_by(|a, b| (&a.model, &a.location).cmp(&(&b.model, &b.location)));
    let count = |model: &str, location: Option<&str>, state, count| StockCount {
        model: model.into(),
        location: location.map(StationId::new),
        state,
        count,
    };
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.contains(&count("A", Some("desk"), StockState::Issued, 1)));
    assert!(counts.contains(&count("A", Some("hq"), StockState::InStock, 1)));
    assert!(counts.contains(&count("B", None, StockState::InStock, 1)));
}

#[tokio::test]
async fn sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = Arc::new(SqlStore::open(&url).await.unwrap());
    conformance(store.clone()).await;
    // a second open of the same file migrates nothing and keeps the data
    let again = SqlStore::open(&url).await.unwrap();
    assert_eq!(again.count_users().await.unwrap(), 3);
}

/// Several processes on one SQLite file (the CLI next to a running server): each opens it,
/// which migrates, while the others append to the audit log. Every open and every append must
/// wait its turn rather than fail with "database is locked". Separate pools stand in for the
/// processes: SQLite's file locks do not tell them apart.
#[tokio::test]
async fn sqlite_shared_by_processes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("shared.db").display()
    );
    SqlStore::open(&url).await.unwrap().close().await;
    let mut tasks = Vec::new();
    for p in 0..8i64 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let store = SqlStore::open(&url).await.expect("open while others write");
            for i in 0..10 {
                one(
                    &store,
                    Change::Audit(NewAuditEvent {
                        at: Timestamp(p * 100 + i),
                        code: audit::DEVICE_STATE_CHANGED.code,
                        name: audit::DEVICE_STATE_CHANGED.name,
                        operator: None,
                        user: None,
                        device: None,
                        operation: None,
                        details: serde_json::json!({"p": p, "i": i}),
                    }),
                )
                .await
                .expect("append while others open and write");
            }
            store.close().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let store = SqlStore::open(&url).await.unwrap();
    let events = store.audit_events(None, 1000).await.unwrap();
    assert_eq!(events.len(), 80);
    assert_eq!(events[0].seq, 80);
}

/// A database made before devices had a `serial` column: opening it adds the column and fills
/// it from the stored devices.
async fn upgrade_adds_device_serials(url: &str) {
    use sqlx::Executor;
    sqlx::any::install_default_drivers();
    let old = sqlx::AnyPool::connect(url).await.unwrap();
    old.execute(
        "CREATE TABLE devices (id TEXT PRIMARY KEY, user_id TEXT, state TEXT NOT NULL, \
         created_at BIGINT NOT NULL, data TEXT NOT NULL)",
    )
    .await
    .unwrap();
    let before = device("old1", "jdoe", 5);
    sqlx::query(
        "INSERT INTO devices (id, user_id, state, created_at, data) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind("old1")
    .bind("jdoe")
    .bind("assigned")
    .bind(5i64)
    .bind(serde_json::to_string(&before).unwrap())
    .execute(&old)
    .await
    .unwrap();
    old.close().await;

    let store = SqlStore::open(url).await.unwrap();
    let found = store.devices_with_serial("1234").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id.as_str(), "old1");
    // a card is recorded only for a person who exists
    store.put_user(&user("jdoe", "Jane Doe")).await.unwrap();
    let mut after = device("new1", "jdoe", 6);
    after.serial = "99".into();
    one(&store, Change::InsertDevice(after)).await.unwrap();
    assert_eq!(store.devices_with_serial("99").await.unwrap().len(), 1);
    store.close().await;
    // opening again finds the column there and changes nothing
    let again = SqlStore::open(url).await.unwrap();
    assert_eq!(again.devices_with_serial("1234").await.unwrap().len(), 1);
    again.close().await;
}

#[tokio::test]
async fn sqlite_upgrade_adds_device_serials() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    upgrade_adds_device_serials(&url).await;
}

#[tokio::test]
async fn postgres_upgrade_adds_device_serials() {
    let Ok(base) = std::env::var("TESSERA_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("TESSERA_REQUIRE_POSTGRES").is_err(),
            "TESSERA_REQUIRE_POSTGRES is set but TESSERA_TEST_DATABASE_URL is not"
        );
        eprintln!("postgres_upgrade_adds_device_serials: TESSERA_TEST_DATABASE_URL not set");
        return;
    };
    let url = tessera_store::testing::fresh_postgres_database(&base).await;
    upgrade_adds_device_serials(&url).await;
    tessera_store::testing::drop_postgres_database(&base, &url).await;
}

#[tokio::test]
async fn postgres_conforms() {
    let Ok(base) = std::env::var("TESSERA_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("TESSERA_REQUIRE_POSTGRES").is_err(),
            "TESSERA_REQUIRE_POSTGRES is set but TESSERA_TEST_DATABASE_URL is not"
        );
        eprintln!("postgres_conforms: TESSERA_TEST_DATABASE_URL not set, PostgreSQL not tested");
        return;
    };
    let url = tessera_store::testing::fresh_postgres_database(&base).await;
    let store = Arc::new(SqlStore::open(&url).await.unwrap());
    conformance(store.clone()).await;
    store.close().await;
    tessera_store::testing::drop_postgres_database(&base, &url).await;
}

//! The two-person rule: under a policy that names an action, the first operator's attempt is
//! refused with AUTH0005 and leaves a Pending request; only a second operator with the right
//! permissions and scope can approve it; the approved request lets the first operator do it
//! once, and the audit event names both.

mod support;

use std::sync::Arc;
use support::portal::{csrf, Portal};
use tessera_core::approvals::{self, Approval, ApprovalState, Subject, TwoPersonAction};
use tessera_core::devices;
use tessera_core::ids::*;
use tessera_core::issuance::{self, Actor};
use tessera_core::model::*;
use tessera_core::ports::{AuditRecord, Clock, Store};
use tessera_core::{policies, settings, DeviceState, ErrorCode, Pin, Reason};
use tessera_server::{demo, Tessera};

fn officer(name: &str) -> Actor {
    Actor::builtin(name, BuiltinRole::SecurityOfficer)
}

/// Puts the demo policy under the two-person rule for `actions`.
async fn two_person(t: &Tessera, actions: &[TwoPersonAction]) {
    let svc = &t.services;
    let mut policy = svc
        .store
        .policies()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.id.as_str() == demo::POLICY_ID)
        .unwrap();
    policy.two_person = actions.to_vec();
    policies::save(svc, &support::actor(BuiltinRole::Administrator), policy)
        .await
        .unwrap();
}

/// An Active card of jdoe under the demo policy.
async fn active_card(t: &Tessera) -> DeviceId {
    let issuer = support::actor(BuiltinRole::Issuer);
    let job = support::issue(t, &issuer, demo::POLICY_ID, "86420975").await;
    assert_eq!(job.step, JobStep::Printed);
    issuance::finish(&t.services, &issuer, &job.id)
        .await
        .unwrap();
    job.device.unwrap()
}

async fn requests(t: &Tessera, state: ApprovalState) -> Vec<Approval> {
    t.store.approvals(state, Timestamp(0)).await.unwrap()
}

async fn events(t: &Tessera) -> Vec<AuditRecord> {
    t.store.audit_events(None, 1000).await.unwrap()
}

fn approval_of(err: &tessera_core::CoreError) -> ApprovalId {
    match err {
        tessera_core::CoreError::ApprovalRequired { approval, .. } => approval.clone(),
        other => panic!("not held for approval: {other}"),
    }
}

#[tokio::test]
async fn terminate_needs_a_second_operator() {
    let (_dir, t) = support::open().await;
    let svc = &t.services;
    two_person(&t, &[TwoPersonAction::Terminate]).await;
    let card = active_card(&t).await;
    let (alice, bob) = (officer("alice"), officer("bob"));

    // Alice's attempt is refused with the code and leaves one pending request, however often
    // she tries; the card is untouched.
    let err = devices::terminate(svc, &alice, &card, Reason::Lost)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ApprovalRequired);
    assert_eq!(err.code().as_str(), "AUTH0005");
    assert!(err.to_string().contains("Approvals queue"), "{err}");
    let id = approval_of(&err);
    let again = devices::terminate(svc, &alice, &card, Reason::Lost)
        .await
        .unwrap_err();
    assert_eq!(approval_of(&again), id, "asking again adds no request");
    let pending = requests(&t, ApprovalState::Pending).await;
    assert_eq!(pending.len(), 1);
    let request = &pending[0];
    assert_eq!(
        (
            &request.id,
            request.action,
            request.requested_by.as_str(),
            request.reason.as_str()
        ),
        (&id, TwoPersonAction::Terminate, "alice", "lost")
    );
    assert!(matches!(&request.subject, Subject::Device { device, .. } if *device == card));
    assert_eq!(
        svc.store.device(&card).await.unwrap().state,
        DeviceState::Active
    );
    assert!(events(&t)
        .await
        .iter()
        .any(|e| e.name == "ApprovalRequested"
            && e.operator.as_deref() == Some("alice")
            && e.details["approval"] == id.as_str()));

    // Nobody approves their own request; an issuer may not approve; an approver who may not
    // terminate cards may not either; an approver out of scope does not even see it.
    let own = approvals::decide(svc, &alice, &id, true, "")
        .await
        .unwrap_err();
    assert_eq!(own.code(), ErrorCode::Forbidden, "{own}");
    let issuer = support::actor(BuiltinRole::Issuer);
    let err = approvals::decide(svc, &issuer, &id, true, "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    let approver_only = Actor {
        operator: OperatorId::new("carol"),
        role: Role {
            id: RoleId::new("approver"),
            name: "Approver".into(),
            permissions: vec![Permission::ViewUsers, Permission::ApproveRequests],
            builtin: false,
        },
        scope: Scope::All,
    };
    let err = approvals::decide(svc, &approver_only, &id, true, "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden, "{err}");
    let elsewhere = Actor {
        scope: Scope::Groups(vec!["no-such-group".into()]),
        ..officer("dave")
    };
    let err = approvals::decide(svc, &elsewhere, &id, true, "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(approvals::queue(svc, &elsewhere).await.unwrap().is_empty());
    assert!(approvals::queue(svc, &issuer).await.unwrap().is_empty());
    assert_eq!(
        requests(&t, ApprovalState::Pending).await.len(),
        1,
        "refused decisions change nothing"
    );

    // The queue: Bob may decide it, Alice sees her own.
    let queue = approvals::queue(svc, &bob).await.unwrap();
    assert_eq!(queue.len(), 1);
    assert!(queue[0].decidable && !queue[0].own);
    let queue = approvals::queue(svc, &alice).await.unwrap();
    assert!(queue[0].own && !queue[0].decidable);

    let decided = approvals::decide(svc, &bob, &id, true, "confirmed by phone")
        .await
        .unwrap();
    assert_eq!(decided.state, ApprovalState::Approved);
    assert_eq!(decided.decided_by, Some(OperatorId::new("bob")));
    let err = approvals::decide(svc, &bob, &id, false, "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Invalid, "decided once");

    // An approval is Alice's: Bob's own attempt is a request of his.
    let err = devices::terminate(svc, &bob, &card, Reason::Lost)
        .await
        .unwrap_err();
    assert_ne!(approval_of(&err), id);

    // Alice goes ahead: the card is terminated, its certificates revoked, the request used.
    let done = devices::terminate(svc, &alice, &card, Reason::Lost)
        .await
        .unwrap();
    assert_eq!(done.state, DeviceState::Terminated);
    assert!(svc
        .store
        .certificates_of_device(&card)
        .await
        .unwrap()
        .iter()
        .all(|c| c.status == CertificateStatus::Revoked));
    let used = svc.store.approval(&id).await.unwrap();
    assert_eq!(used.state, ApprovalState::Used);
    assert!(used.used_at.is_some());
    let log = events(&t).await;
    let change = log
        .iter()
        .find(|e| e.name == "DeviceStateChanged" && e.details["to"] == "terminated")
        .expect("the termination is audited");
    assert_eq!(change.operator.as_deref(), Some("alice"));
    assert_eq!(change.details["approved_by"], "bob");
    assert_eq!(change.details["approval"], id.as_str());
    let granted = log.iter().find(|e| e.name == "ApprovalGranted").unwrap();
    assert_eq!(granted.operator.as_deref(), Some("bob"));
    assert_eq!(granted.details["requested_by"], "alice");
    assert_eq!(granted.details["comment"], "confirmed by phone");
    assert!(log
        .iter()
        .any(|e| e.name == "ApprovalUsed" && e.details["approved_by"] == "bob"));

    // Used once: the next attempt needs a new request.
    let err = devices::terminate(svc, &alice, &card, Reason::Lost)
        .await
        .unwrap_err();
    assert_ne!(approval_of(&err), id);
    assert_eq!(
        svc.store.approval(&id).await.unwrap().state,
        ApprovalState::Used
    );
}

#[tokio::test]
async fn reveal_pin_needs_a_second_operator_and_a_rejection_authorises_nothing() {
    let (_dir, t) = support::open().await;
    let svc = &t.services;
    let admin = support::actor(BuiltinRole::Administrator);
    let mut s = svc.store.settings().await.unwrap();
    s.initial_pin_mode = PinDisplayMode::NotDisplayed;
    settings::save(svc, &admin, s).await.unwrap();
    two_person(&t, &[TwoPersonAction::RevealPin]).await;
    let card = active_card(&t).await;
    let (alice, bob) = (officer("alice"), officer("bob"));

    // Terminate is not under the rule here: suspend and resume go straight through too.
    devices::suspend(svc, &alice, &card, Reason::Forgotten)
        .await
        .unwrap();
    devices::resume(svc, &alice, &card).await.unwrap();

    let err = devices::reveal_initial_pin(svc, &alice, &card)
        .await
        .unwrap_err();
    let first = approval_of(&err);
    approvals::decide(svc, &bob, &first, false, "no ticket")
        .await
        .unwrap();
    // Rejected: the next attempt is refused again and opens a new request.
    let err = devices::reveal_initial_pin(svc, &alice, &card)
        .await
        .unwrap_err();
    let second = approval_of(&err);
    assert_ne!(second, first);
    assert_eq!(
        svc.store.approval(&first).await.unwrap().state,
        ApprovalState::Rejected
    );
    assert!(events(&t)
        .await
        .iter()
        .any(|e| e.name == "ApprovalRejected" && e.details["comment"] == "no ticket"));
    assert!(
        svc.store
            .device_secret(&card, "pin")
            .await
            .unwrap()
            .is_some(),
        "the PIN is still sealed"
    );

    approvals::decide(svc, &bob, &second, true, "")
        .await
        .unwrap();
    let pin = devices::reveal_initial_pin(svc, &alice, &card)
        .await
        .unwrap();
    assert!(pin.expose().chars().all(|c| c.is_ascii_digit()));
    let log = events(&t).await;
    let revealed = log.iter().find(|e| e.name == "InitialPinRevealed").unwrap();
    assert_eq!(revealed.operator.as_deref(), Some("alice"));
    assert_eq!(revealed.details["approved_by"], "bob");
    assert_eq!(revealed.details["approval"], second.as_str());
    // No request and no event holds the PIN.
    for a in [first, second] {
        let stored = serde_json::to_string(&svc.store.approval(&a).await.unwrap()).unwrap();
        assert!(!stored.contains(pin.expose()));
    }
    assert!(log
        .iter()
        .all(|e| !e.details.to_string().contains(pin.expose())));
    // Used once.
    let err = devices::reveal_initial_pin(svc, &alice, &card)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ApprovalRequired);
}

#[tokio::test]
async fn unlock_needs_a_second_operator() {
    let (_dir, t) = support::open().await;
    let svc = &t.services;
    two_person(&t, &[TwoPersonAction::Unlock]).await;
    let card = active_card(&t).await;
    let (alice, bob) = (officer("alice"), officer("bob"));
    let station = StationId::new(demo::STATION_ID);
    let unlock = |actor: Actor| {
        let station = station.clone();
        let card = card.clone();
        async move {
            devices::unlock(
                svc,
                &actor,
                &card,
                (&station, demo::ENCODER),
                (&Pin::new("13572468"), None),
                "the holder forgot the PIN (ticket 17)",
            )
            .await
            .map(|_| ())
        }
    };
    let err = unlock(alice.clone()).await.unwrap_err();
    let id = approval_of(&err);
    assert_eq!(
        svc.store.approval(&id).await.unwrap().action,
        TwoPersonAction::Unlock
    );
    // A help desk operator may unlock but not approve.
    let help_desk = support::actor(BuiltinRole::HelpDesk);
    let err = approvals::decide(svc, &help_desk, &id, true, "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    approvals::decide(svc, &bob, &id, true, "").await.unwrap();
    unlock(alice).await.unwrap();
    let log = events(&t).await;
    let unlocked = log.iter().find(|e| e.name == "DeviceUnlocked").unwrap();
    assert_eq!(unlocked.operator.as_deref(), Some("alice"));
    assert_eq!(unlocked.details["approved_by"], "bob");
    assert_eq!(
        svc.store.approval(&id).await.unwrap().state,
        ApprovalState::Used
    );
}

/// A clock fixed at a time, for the lapse of requests.
struct At(Timestamp);

impl Clock for At {
    fn now(&self) -> Timestamp {
        self.0
    }
}

#[tokio::test]
async fn issue_needs_a_second_operator_and_approvals_lapse() {
    let (_dir, t) = support::open().await;
    let svc = &t.services;
    two_person(&t, &[TwoPersonAction::Issue]).await;
    let (ivan, bob) = (support::actor(BuiltinRole::Issuer), officer("bob"));
    let start = || {
        issuance::start(
            svc,
            &ivan,
            issuance::StartRequest {
                user: UserId::new("jdoe"),
                station: StationId::new(demo::STATION_ID),
                printer: demo::PRINTER.into(),
                reader: demo::ENCODER.into(),
                layout: LayoutId::new("corporate-badge"),
                temporary_for: None,
            },
        )
    };
    let (runner, issuer) = (&t.runner, &ivan);
    let choose = |job: JobId| async move {
        issuance::choose_policy(
            runner,
            issuer,
            &job,
            &PolicyId::new(demo::POLICY_ID),
            Some(Pin::new("86420975")),
        )
        .await
    };
    let job = start().await.unwrap();
    let err = choose(job.id.clone()).await.unwrap_err();
    let id = approval_of(&err);
    assert_eq!(
        svc.store.job(&job.id).await.unwrap().step,
        JobStep::Started,
        "the wizard waits at the policy step"
    );
    let request = svc.store.approval(&id).await.unwrap();
    assert_eq!(
        request.subject,
        Subject::Issuance {
            user: UserId::new("jdoe"),
            policy: PolicyId::new(demo::POLICY_ID)
        }
    );

    // Approved but not used within 8 hours: lapsed, for the approver and for the requester.
    let mut later = svc.clone();
    later.clock = Arc::new(At(Timestamp(request.requested_at.0 + 8 * 3600)));
    let err = approvals::decide(&later, &bob, &id, true, "")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lapsed"), "{err}");
    approvals::decide(svc, &bob, &id, true, "").await.unwrap();
    let err = approvals::gate(
        &later,
        &ivan,
        TwoPersonAction::Issue,
        request.subject.clone(),
        svc.store
            .policies()
            .await
            .unwrap()
            .iter()
            .find(|p| p.id.as_str() == demo::POLICY_ID),
        "",
    )
    .await
    .unwrap_err();
    assert_ne!(
        approval_of(&err),
        id,
        "a lapsed approval authorises nothing"
    );

    // Within the time: the issuance goes on and the card is made.
    let (_, running) = choose(job.id.clone()).await.unwrap();
    let done = running.await.unwrap();
    assert_eq!(done.step, JobStep::Printed);
    assert_eq!(
        svc.store.approval(&id).await.unwrap().state,
        ApprovalState::Used
    );
    let used = events(&t)
        .await
        .into_iter()
        .find(|e| e.name == "ApprovalUsed")
        .unwrap();
    assert_eq!(used.operator.as_deref(), Some("issuer"));
    assert_eq!(used.details["approved_by"], "bob");
    assert_eq!(used.details["action"], "issue");

    // The next card for the same user and policy needs a new approval (once the printed one
    // is decided: one issuance at a time per person).
    issuance::cancel(svc, &ivan, &done.id, "").await.unwrap();
    let job = start().await.unwrap();
    let err = choose(job.id.clone()).await.unwrap_err();
    assert_ne!(approval_of(&err), id);
}

#[tokio::test]
async fn the_portal_and_the_api_show_and_decide_requests() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let svc = t.services.clone();
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;

    // The policy form puts actions under the rule.
    let (_, _, page) = portal.get("/policies/new").await;
    assert!(page.contains("name=\"two_person_terminate\""));
    let token = csrf(&page);
    let (status, _, body) = portal
        .post(
            "/policies/save",
            &[
                ("csrf", &token),
                ("id", ""),
                ("name", "Two persons"),
                ("pin_min", "6"),
                ("pin_max", "8"),
                ("pin_retries", "3"),
                ("puk_retries", "3"),
                ("card_validity_days", "365"),
                ("slot_9a", "on"),
                ("alg_9a", "ecc_p256"),
                ("subject_9a", "CN={{user.display_name}}"),
                ("validity_9a", "365"),
                ("two_person_terminate", "on"),
                ("two_person_reveal_pin", "on"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let saved = svc
        .store
        .policies()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.id.as_str() == "two-persons")
        .expect("the policy was saved");
    assert_eq!(
        saved.two_person,
        [TwoPersonAction::Terminate, TwoPersonAction::RevealPin]
    );
    let (_, _, page) = portal.get("/policies").await;
    assert!(
        page.contains("terminate a card; reveal a card&#x27;s initial PIN"),
        "{page}"
    );
    let (_, _, page) = portal.get("/policies/two-persons").await;
    assert!(page.contains("name=\"two_person_terminate\" value=\"on\" checked"));
    assert!(!page.contains("name=\"two_person_issue\" value=\"on\" checked"));

    // The administrator's termination is held: the page says so and links to the queue.
    two_person(&t, &[TwoPersonAction::Terminate]).await;
    let card = active_card(&t).await;
    let (_, _, page) = portal.get("/users/jdoe").await;
    let token = csrf(&page);
    let terminate = format!("/devices/{card}/terminate");
    let form = [("csrf", token.as_str()), ("reason", "damaged")];
    let (status, _, body) = portal.post(&terminate, &form).await;
    assert_eq!(status, 403);
    assert!(body.contains("AUTH0005"), "{body}");
    assert!(body.contains("A second operator must approve this"));
    assert!(body.contains("href=\"/approvals\""));
    let (_, _, page) = portal.get("/approvals").await;
    assert!(page.contains("id=\"nav-approvals\""));
    assert!(page.contains("waiting for a second operator"), "{page}");
    assert!(page.contains("id=\"nothing-to-decide\""));
    let mine = requests(&t, ApprovalState::Pending).await;
    assert_eq!(mine[0].requested_by.as_str(), "admin");

    // Bob approves in the core; the administrator terminates from the portal.
    approvals::decide(&svc, &officer("bob"), &mine[0].id, true, "")
        .await
        .unwrap();
    let (_, _, page) = portal.get("/approvals").await;
    assert!(page.contains("approved: do it again now"));
    let (status, url, _) = portal.post(&terminate, &form).await;
    assert_eq!((status.as_u16(), url.as_str()), (200, "/users/jdoe"));
    assert_eq!(
        svc.store.device(&card).await.unwrap().state,
        DeviceState::Terminated
    );

    // Alice's request, decided by the administrator over the API.
    let other = active_card(&t).await;
    let err = devices::terminate(&svc, &officer("alice"), &other, Reason::Lost)
        .await
        .unwrap_err();
    let id = approval_of(&err);
    let (_, _, page) = portal.get("/approvals").await;
    assert!(page.contains(&format!("id=\"request-{id}\"")));
    assert!(page.contains(&format!("action=\"/approvals/{id}/approve\"")));
    let list: serde_json::Value = portal
        .http
        .get(format!("{}/api/v1/approvals", portal.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.as_str())
        .expect("listed");
    assert_eq!(listed["decidable"], true);
    assert_eq!(listed["requested_by"], "alice");
    let post = |path: String, token: String| {
        portal
            .http
            .post(format!("{}{path}", portal.base))
            .header("x-csrf-token", token)
            .json(&serde_json::json!({"comment": "ok"}))
            .send()
    };
    let res = post(format!("/api/v1/approvals/{id}/approve"), "bad".into())
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "the CSRF token is checked");
    let res = post(format!("/api/v1/approvals/{id}/approve"), token.clone())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let decided: serde_json::Value = res.json().await.unwrap();
    assert_eq!(decided["state"], "approved");
    assert_eq!(decided["decided_by"], "admin");
    let res = post(format!("/api/v1/approvals/{id}/reject"), token.clone())
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "decided once");
}

/// A replacement ends a card as a termination does: under a policy that puts terminations under
/// the two-person rule, the help desk's permanent replacement waits for an approver too.
#[tokio::test]
async fn a_permanent_replacement_is_a_termination_under_the_rule() {
    let (_dir, t) = support::open().await;
    let svc = &t.services;
    let card = active_card(&t).await;
    two_person(&t, &[TwoPersonAction::Terminate]).await;
    let desk = support::actor(BuiltinRole::HelpDesk);
    let replace = || {
        tessera_core::help_desk::replace(
            svc,
            &desk,
            &card,
            tessera_core::Reason::Lost,
            "lost on the train",
        )
    };
    let id = approval_of(&replace().await.unwrap_err());
    assert_eq!(
        svc.store.device(&card).await.unwrap().state,
        tessera_core::DeviceState::Active
    );
    approvals::decide(svc, &officer("bob"), &id, true, "checked with the holder")
        .await
        .unwrap();
    let (d, _) = replace().await.unwrap();
    assert_eq!(d.state, tessera_core::DeviceState::Terminated);
    let replaced = events(&t)
        .await
        .into_iter()
        .find(|e| e.name == "DeviceReplaced")
        .unwrap();
    assert_eq!(replaced.details["approved_by"], "bob");
    // The approval was used once.
    assert!(replace().await.is_err());
}

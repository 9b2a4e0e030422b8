//! One issuance at a time per person and per printer: two Starts racing for one person yield one
//! job and a refusal that names it (JOB0002); a busy printer is refused (JOB0003); Cancel of a
//! job at Configure Device ejects its blank card untouched and records why; the portal shows the
//! job in progress (configure page, User page, Jobs in progress) with Resume and Cancel it, and
//! every portal page is `no-store`.

mod support;

use support::portal::{csrf, Portal};
use tessera_core::ids::*;
use tessera_core::issuance::{self, StartRequest};
use tessera_core::model::*;
use tessera_core::{CoreError, ErrorCode};
use tessera_server::{demo, Tessera};

fn request(user: &str, printer: &str, reader: &str) -> StartRequest {
    StartRequest {
        user: UserId::new(user),
        station: StationId::new(demo::STATION_ID),
        printer: printer.into(),
        reader: reader.into(),
        layout: LayoutId::new("corporate-badge"),
        temporary_for: None,
    }
}

async fn open_jobs_of(t: &Tessera, user: &str) -> Vec<IssuanceJob> {
    t.store
        .open_jobs()
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.user.as_str() == user)
        .collect()
}

use tessera_core::ports::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_starts_racing_for_one_person_make_one_job() {
    let (_dir, t) = support::open().await;
    let actor = support::actor(BuiltinRole::Administrator);
    for round in 0..5 {
        // Encode only, at two readers: nothing but the person is shared, and both Starts may
        // pass the core's check before either writes; the database keeps one.
        let (a, b) = tokio::join!(
            issuance::start(&t.services, &actor, request("jdoe", "", "Reader A")),
            issuance::start(&t.services, &actor, request("jdoe", "", "Reader B")),
        );
        let (won, refused) = match (a, b) {
            (Ok(job), Err(e)) | (Err(e), Ok(job)) => (job, e),
            (a, b) => panic!("round {round}: not exactly one job: {a:?} / {b:?}"),
        };
        assert_eq!(
            refused.code(),
            ErrorCode::UserIssuanceInProgress,
            "{refused}"
        );
        assert_eq!(refused.code().as_str(), "JOB0002");
        let CoreError::UserIssuanceInProgress { job, message } = &refused else {
            unreachable!()
        };
        assert_eq!(job.job.id, won.id, "the refusal names the job in progress");
        assert!(
            message.contains("Jane Doe already has an issuance in progress")
                && message.contains("Configure Device")
                && message.contains("started by"),
            "{message}"
        );
        let open = open_jobs_of(&t, "jdoe").await;
        assert_eq!(open.len(), 1, "round {round}");
        issuance::cancel(&t.services, &actor, &won.id, "")
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_busy_printer_is_refused_and_names_the_job_in_progress() {
    let (_dir, t) = support::open().await;
    let actor = support::actor(BuiltinRole::Administrator);
    let first = issuance::start(
        &t.services,
        &actor,
        request("jdoe", demo::PRINTER, demo::ENCODER),
    )
    .await
    .unwrap();
    let other = demo::users()[1].uid.clone();
    let e = issuance::start(
        &t.services,
        &actor,
        request(other.as_str(), demo::PRINTER, demo::ENCODER),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code().as_str(), "JOB0003", "{e}");
    let CoreError::PrinterBusy { job, message } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(job.job.id, first.id);
    assert!(job.card_fed && job.may_act);
    assert!(
        message.contains("printer Demo Card Printer is busy with the issuance for Jane Doe")
            && message.contains("a blank card was fed"),
        "{message}"
    );
    assert!(open_jobs_of(&t, other.as_str()).await.is_empty());
}

#[tokio::test]
async fn cancel_at_configure_device_ejects_the_blank_card_untouched_and_records_why() {
    let (_dir, t) = support::open().await;
    let actor = support::actor(BuiltinRole::Administrator);
    let job = issuance::start(
        &t.services,
        &actor,
        request("jdoe", demo::PRINTER, demo::ENCODER),
    )
    .await
    .unwrap();
    let card = t.demo_printer.card_in_encoder().expect("Start fed a card");
    let before = std::fs::read(&card).unwrap();
    let done = issuance::cancel(&t.services, &actor, &job.id, issuance::ABANDONED)
        .await
        .unwrap();
    assert_eq!(done.step, JobStep::Cancelled);
    assert!(
        done.message.contains("ejected untouched"),
        "{}",
        done.message
    );
    assert_eq!(t.store.job(&job.id).await.unwrap().step, JobStep::Cancelled);
    assert!(
        t.demo_printer.card_in_encoder().is_none(),
        "the card left the encoder"
    );
    assert_eq!(
        std::fs::read(&card).unwrap(),
        before,
        "nothing was written to it"
    );
    assert!(t
        .store
        .devices_of_user(&UserId::new("jdoe"))
        .await
        .unwrap()
        .is_empty());
    let events = t.store.audit_events(None, 1000).await.unwrap();
    let ejected = events
        .iter()
        .find(|e| e.name == "CardEjected")
        .expect("ejected");
    assert_eq!(ejected.details["written"], false);
    let cancelled = events
        .iter()
        .find(|e| e.name == "ActivationCancelled")
        .expect("cancelled");
    assert_eq!(cancelled.details["reason"], "abandoned");
    assert_eq!(cancelled.details["step"], "started");
    assert_eq!(cancelled.details["ejected"], true);
    assert_eq!(cancelled.operation.as_deref(), Some(job.operation.as_str()));
    // A decision on it now says it is finished, by its own code.
    let e = issuance::cancel(&t.services, &actor, &job.id, "")
        .await
        .unwrap_err();
    assert_eq!(e.code().as_str(), "JOB0004", "{e}");
    // The person and the printer are free again.
    issuance::start(
        &t.services,
        &actor,
        request("jdoe", demo::PRINTER, demo::ENCODER),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_portal_offers_the_job_in_progress_instead_of_a_second_start() {
    let (_dir, (t, password)) = support::open_with_password().await;
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(&password).await;
    let job = portal.start_wizard("jdoe", false).await;

    // Every portal page is no-store: Back asks the server again.
    let res = portal
        .http
        .get(format!("{}/users/jdoe/issue", portal.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()
            .get("cache-control")
            .unwrap()
            .to_str()
            .unwrap(),
        "no-store"
    );
    let page = res.text().await.unwrap();
    // Back from the policy step: the configure page offers the job, not Start.
    assert!(!page.contains("id=\"start-form\""), "{page}");
    assert!(
        page.contains(&format!("href=\"/issue/{job}\"")) && page.contains("Resume"),
        "{page}"
    );
    assert!(page.contains("Cancel it"), "{page}");

    // A Start posted anyway (a second tab) is refused with the job and its actions.
    let (status, _, refused) = portal
        .post(
            "/users/jdoe/issue/start",
            &[("csrf", &csrf(&page)), ("layout", "corporate-badge")],
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused.contains("JOB0002"), "{refused}");
    assert!(
        refused.contains(&format!("href=\"/issue/{job}\"")),
        "{refused}"
    );
    assert_eq!(open_jobs_of(&t, "jdoe").await.len(), 1);

    // The User page and Jobs in progress list it.
    let (_, _, user_page) = portal.get("/users/jdoe").await;
    assert!(user_page.contains("id=\"user-in-progress\""), "{user_page}");
    let (status, _, jobs) = portal.get("/jobs").await;
    assert_eq!(status, 200);
    assert!(jobs.contains(&format!("data-job=\"{job}\"")), "{jobs}");

    // Cancel it, with no reason: abandoned; back to the Jobs page, which is empty now.
    let (status, url, after) = portal
        .post(
            &format!("/issue/{job}/cancel"),
            &[("csrf", &csrf(&jobs)), ("reason", ""), ("back", "/jobs")],
        )
        .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(url, "/jobs");
    assert!(after.contains("id=\"no-jobs\""), "{after}");
    let events = t.store.audit_events(None, 1000).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.name == "ActivationCancelled" && e.details["reason"] == "abandoned"));

    // The finished job's page has no live buttons; a decision posted to it says why not.
    let (_, _, finished) = portal.get(&format!("/issue/{job}")).await;
    assert!(
        finished.contains("Cancelled") && !finished.contains("id=\"continue\""),
        "{finished}"
    );
    let (status, _, late) = portal
        .post(
            &format!("/issue/{job}/policy"),
            &[
                ("csrf", &csrf(&finished)),
                ("policy", "piv-standard"),
                ("pin", "24681357"),
                ("pin_confirm", "24681357"),
            ],
        )
        .await;
    assert_eq!(status, 409, "{late}");
    assert!(
        late.contains("JOB0004") && late.contains("already cancelled"),
        "{late}"
    );
}

//! The job runner on a real data folder: a second process (another `Tessera` on the same folder,
//! as `tessera audit check` or a second replica would open it) leaves a live issuance alone; a
//! job whose runner died is taken over only once its lease has run out, and then ends in a state
//! the system knows; the dead runner's late writes are refused.

mod support;

use std::time::Duration;
use tessera_core::changes::{Change, Changes, LeaseChange};
use tessera_core::ids::*;
use tessera_core::issuance::{self, StartRequest};
use tessera_core::jobs::JobRunner;
use tessera_core::model::*;
use tessera_core::ports::Store;
use tessera_core::{CoreError, DeviceState, Pin};
use tessera_server::{demo, Options, Tessera};

async fn second_process(dir: &std::path::Path) -> Tessera {
    let (t, _) = Tessera::open(&Options::new(dir.join("data")))
        .await
        .unwrap();
    t
}

/// A process on `dir` whose job leases last `lease`.
async fn process_with_lease(dir: &std::path::Path, lease: Duration) -> Tessera {
    let options = Options {
        job_lease: lease,
        ..Options::new(dir.join("data"))
    };
    Tessera::open(&options).await.unwrap().0
}

async fn start(t: &Tessera, actor: &issuance::Actor) -> IssuanceJob {
    issuance::start(
        &t.services,
        actor,
        StartRequest {
            user: UserId::new("jdoe"),
            station: StationId::new(demo::STATION_ID),
            printer: demo::PRINTER.into(),
            reader: demo::ENCODER.into(),
            layout: LayoutId::new("corporate-badge"),
            temporary_for: None,
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_leaves_a_live_issuance_alone() {
    // Short leases: the issuing process must renew its lease while the virtual card generates
    // four RSA 3072 keys, which takes longer than one lease (the card computes on a blocking
    // thread, so the heartbeat is never stuck behind it).
    let (dir, _) = support::open().await;
    let t = process_with_lease(dir.path(), Duration::from_secs(2)).await;
    let other = process_with_lease(dir.path(), Duration::from_secs(2)).await;
    let actor = support::actor(BuiltinRole::Administrator);
    let job = start(&t, &actor).await;
    let (_, running) = issuance::choose_policy(
        &t.runner,
        &actor,
        &job.id,
        &PolicyId::new("piv-rsa3072"),
        Some(Pin::new("24681357")),
    )
    .await
    .unwrap();
    // While it runs, the other process checks the audit log and looks for abandoned jobs, as
    // `tessera audit check` and a second `serve` do.
    let mut looked = 0;
    while !running.is_finished() {
        assert_eq!(other.runner.recover_abandoned().await.unwrap(), 0);
        tessera_core::audit_log::check_chain(&other.services, &actor)
            .await
            .unwrap();
        looked += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        looked > 0,
        "the issuance was still running when the others looked"
    );
    let job = running.await.unwrap();
    assert_eq!(job.step, JobStep::Printed, "{:?}", job.error);
    let job = issuance::finish(&t.services, &actor, &job.id)
        .await
        .unwrap();
    let device = t.store.device(job.device.as_ref().unwrap()).await.unwrap();
    assert_eq!(device.state, DeviceState::Active);
    let certs = t.store.certificates_of_device(&device.id).await.unwrap();
    assert_eq!(certs.len(), 4);
    assert!(certs.iter().all(|c| c.status == CertificateStatus::Valid));
}

/// A runner whose process "died": its leases are never renewed.
fn dead_runner(t: &Tessera) -> JobRunner {
    JobRunner::new(t.services.clone(), Duration::from_millis(300))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_job_is_taken_over_after_its_lease_and_ends_known() {
    let (dir, t) = support::open().await;
    let actor = support::actor(BuiltinRole::Administrator);
    // Personalise a card with one runner, then leave its job at `Issuing` under a lease that
    // nobody renews, as a process killed after writing the card would.
    let job = support::issue(&t, &actor, "piv-standard", "24681357").await;
    let device_id = job.device.clone().unwrap();
    let mut device = t.store.device(&device_id).await.unwrap();
    let dead = dead_runner(&t);
    let mut stuck = job.clone();
    stuck.step = JobStep::Issuing;
    let mut changes = Changes::new();
    changes.push(Change::UpdateJob {
        job: stuck.clone(),
        expected: JobStep::Printed,
        lease: LeaseChange::Claim {
            owner: dead.instance().into(),
            now_ms: t.services.clock.now_ms(),
            expires_ms: t.services.clock.now_ms() + 300,
        },
    });
    // The card as it was mid-production.
    let pending = device.clone();
    device.state = DeviceState::InProduction;
    changes.push(Change::UpdateDevice {
        device: device.clone(),
        expected: pending.state,
    });
    t.store.commit(&changes).await.unwrap();

    // The serving process takes nothing over while the lease lives.
    let server = second_process(dir.path()).await;
    assert_eq!(server.runner.recover_abandoned().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(server.runner.recover_abandoned().await.unwrap(), 1);

    let job = t.store.job(&job.id).await.unwrap();
    assert_eq!(job.step, JobStep::Failed);
    assert!(job.error.unwrap().message.contains("server stopped"));
    assert_eq!(t.store.job_lease(&job.id).await.unwrap(), None);
    let device = t.store.device(&device_id).await.unwrap();
    assert_eq!(device.state, DeviceState::Failed);
    let certs = t.store.certificates_of_device(&device_id).await.unwrap();
    assert!(certs.iter().all(|c| c.status == CertificateStatus::Revoked));
    let events = t.store.audit_events(None, 50).await.unwrap();
    let names: Vec<_> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names[0], "IssuanceFailed", "{names:?}");
    assert_eq!(names[1], "CertificateStatusChanged", "{names:?}");
    assert!(names.contains(&"DeviceStateChanged"));
    // Nothing is left to take over.
    assert_eq!(server.runner.recover_abandoned().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_that_lost_its_lease_cannot_write() {
    let (dir, t) = support::open().await;
    let actor = support::actor(BuiltinRole::Administrator);
    let job = start(&t, &actor).await;
    // The job is claimed by a runner that then stalls past its lease.
    let stalled = dead_runner(&t);
    let mut claimed = job.clone();
    claimed.step = JobStep::Issuing;
    let mut changes = Changes::new();
    changes.push(Change::UpdateJob {
        job: claimed.clone(),
        expected: JobStep::Started,
        lease: LeaseChange::Claim {
            owner: stalled.instance().into(),
            now_ms: t.services.clock.now_ms(),
            expires_ms: t.services.clock.now_ms() + 100,
        },
    });
    t.store.commit(&changes).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server = second_process(dir.path()).await;
    assert_eq!(server.runner.recover_abandoned().await.unwrap(), 1);
    // The stalled runner wakes up and tries to record progress: refused, nothing written.
    let mut late = claimed.clone();
    late.progress = 50;
    let mut changes = Changes::new();
    changes.push(Change::UpdateJob {
        job: late,
        expected: JobStep::Issuing,
        lease: LeaseChange::Hold {
            owner: stalled.instance().into(),
            expires_ms: t.services.clock.now_ms() + 1_000,
        },
    });
    let refused = t.services.commit(changes).await.unwrap_err();
    assert!(matches!(refused, CoreError::Changed(_)), "{refused}");
    assert_eq!(refused.code().as_str(), "DB0002");
    assert_eq!(t.store.job(&job.id).await.unwrap().step, JobStep::Failed);
}

#[tokio::test]
async fn a_person_cannot_decide_for_a_job_that_is_running_or_finished() {
    let (_dir, t) = support::open().await;
    let actor = support::actor(BuiltinRole::Administrator);
    let job = support::issue(&t, &actor, "piv-standard", "24681357").await;
    let done = issuance::finish(&t.services, &actor, &job.id)
        .await
        .unwrap();
    assert_eq!(done.step, JobStep::Completed);
    // A decision on a finished job (Back after Continue, a second tab) says so, by its code.
    let again = issuance::finish(&t.services, &actor, &job.id)
        .await
        .unwrap_err();
    assert_eq!(
        again.code(),
        tessera_core::ErrorCode::JobFinished,
        "{again}"
    );
    assert_eq!(again.code().as_str(), "JOB0004");
    assert!(
        again
            .to_string()
            .contains("already completed: the card is Active"),
        "{again}"
    );
    let cancel = issuance::cancel(&t.services, &actor, &job.id, "")
        .await
        .unwrap_err();
    assert_eq!(
        cancel.code(),
        tessera_core::ErrorCode::JobFinished,
        "{cancel}"
    );
}

#[tokio::test]
async fn the_job_api_shows_an_operator_only_their_own_issuances() {
    let (_dir, t) = support::open().await;
    // Ivy, an issuer, signs in to the portal; the administrator starts an issuance too.
    let mut changes = Changes::new();
    changes.push(Change::PutOperator(Operator::new(
        "ivy",
        "Ivy Issuer",
        tessera_server::auth::hash_password(&tessera_core::Password::new("ivy-password-1234")),
        RoleId::new(BuiltinRole::Issuer.id()),
    )));
    t.store.commit(&changes).await.unwrap();
    let ivy = issuance::Actor::builtin("ivy", BuiltinRole::Issuer);
    let hers = start(&t, &ivy).await;
    // Another person, encoded only (the printer is Ivy's now): one issuance per person and
    // per printer.
    let other = tessera_server::demo::users()[1].uid.clone();
    let admins = issuance::start(
        &t.services,
        &support::actor(BuiltinRole::Administrator),
        StartRequest {
            user: other,
            station: StationId::new(demo::STATION_ID),
            printer: String::new(),
            reader: "Second encoder".into(),
            layout: LayoutId::new("corporate-badge"),
            temporary_for: None,
        },
    )
    .await
    .unwrap();
    let portal = support::portal::Portal::start(t.clone()).await;
    let (_, _, page) = portal.get("/login").await;
    let token = support::portal::csrf(&page);
    let (status, _, _) = portal
        .post(
            "/login",
            &[
                ("csrf", token.as_str()),
                ("operator", "ivy"),
                ("password", "ivy-password-1234"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let api = |job: &JobId| {
        portal
            .http
            .get(format!("{}/api/v1/jobs/{job}", portal.base))
            .send()
    };
    assert_eq!(api(&hers.id).await.unwrap().status(), 200);
    let refused = api(&admins.id).await.unwrap();
    assert_eq!(
        refused.status(),
        404,
        "the API hides other operators' issuances"
    );
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "REQ0002");
    // The portal's page follows the same rule.
    let (status, _, _) = portal.get(&format!("/issue/{}", admins.id)).await;
    assert_eq!(status, 404);
}

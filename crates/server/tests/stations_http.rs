//! The Stations page and the operator's station, through the portal: an administrator creates a
//! remote station and sees its one-time token, a station agent enrols with it and connects over a
//! real WebSocket, an operator chooses that station and issues a card on its printer, and
//! disabling or revoking the station from the page cuts the agent off at once.

mod support;

use std::sync::Arc;
use std::time::Duration;
use support::portal::{csrf, Portal};
use tessera_core::ids::RoleId;
use tessera_core::ids::{OperatorId, StationId};
use tessera_core::model::{BuiltinRole, Operator};
use tessera_core::ports::Store;
use tessera_core::secret::StationSecret;
use tessera_core::Password;
use tessera_server::station_process::{self, StationArgs, SIMULATED_ENCODER, SIMULATED_PRINTER};
use tessera_server::Tessera;
use tessera_station::agent::{self, Agent, AgentOptions};
use tokio::task::JoinHandle;

const ISSUER_PASSWORD: &str = "issuer-password-1";

/// The token in the page that shows it (`<code id="enrolment-token">tse_...</code>`).
fn token_in(page: &str) -> String {
    let at = page
        .find("id=\"enrolment-token\">")
        .expect("the page shows a token")
        + 21;
    page[at..at + page[at..].find('<').unwrap()].to_owned()
}

/// The row of one station in the Stations page.
fn row_of<'a>(page: &'a str, id: &StationId) -> &'a str {
    let at = page
        .find(&format!("data-station=\"{id}\""))
        .expect("the station is listed");
    &page[at..at + page[at..].find("</tr>").unwrap()]
}

/// Another browser, with its own cookies.
fn browser(base: &str) -> Portal {
    Portal {
        base: base.to_owned(),
        http: reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap(),
    }
}

async fn sign_in(p: &Portal, operator: &str, password: &str, station: Option<&StationId>) {
    let (_, _, page) = p.get("/login").await;
    let token = csrf(&page);
    let mut form = vec![
        ("csrf", token.as_str()),
        ("operator", operator),
        ("password", password),
    ];
    if let Some(id) = station {
        assert!(
            page.contains("<select name=\"station\"") && page.contains(id.as_str()),
            "the sign-in page offers the station: {page}"
        );
        form.push(("station", id.as_str()));
    }
    let (status, url, body) = p.post("/login", &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(url, "/users");
}

async fn add_issuer(t: &Tessera) {
    let mut changes = tessera_core::changes::Changes::new();
    changes.push(tessera_core::changes::Change::PutOperator(Operator::new(
        "ivy",
        "Ivy Issuer",
        tessera_server::auth::hash_password(&Password::new(ISSUER_PASSWORD)),
        RoleId::new(BuiltinRole::Issuer.id()),
    )));
    t.store.commit(&changes).await.unwrap();
}

/// Starts the station agent with its simulated printer; its task ends with `run()`'s error.
async fn start_agent(
    t: &Tessera,
    server: &str,
    dir: &std::path::Path,
    station: &StationId,
    credential: &str,
) -> JoinHandle<Result<(), String>> {
    std::fs::create_dir_all(dir).unwrap();
    let args = StationArgs {
        server: Some(server.to_owned()),
        data_dir: dir.to_owned(),
        simulated_printer: true,
        ..Default::default()
    };
    let port = Arc::new(station_process::local_station(&args).unwrap());
    let mut options = AgentOptions::new(server, StationSecret::new(credential));
    options.min_backoff = Duration::from_millis(50);
    options.printer_setup = Some(station_process::printer_setup(&port, None));
    let agent = Agent::new(port, options);
    let handle = tokio::spawn(async move { agent.run().await.map_err(|e| e.to_string()) });
    wait_for(t, station, true).await;
    handle
}

async fn wait_for(t: &Tessera, station: &StationId, connected: bool) {
    for _ in 0..400 {
        let link = t.hub.remote(station);
        let now = link
            .as_ref()
            .is_some_and(|l| l.is_connected() && !l.inventory().printers.is_empty());
        if now == connected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the station did not become connected = {connected}");
}

async fn ends_refused(agent: JoinHandle<Result<(), String>>, word: &str) {
    let ended = tokio::time::timeout(Duration::from_secs(5), agent)
        .await
        .expect("the station is cut off within seconds")
        .unwrap();
    let error = ended.expect_err("the station was refused");
    assert!(error.contains(word), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_station_is_created_enrolled_chosen_and_revoked_from_the_portal() {
    let (dir, (t, password)) = support::open_with_password().await;
    add_issuer(&t).await;
    let admin = Portal::start(t.clone()).await;
    let server = admin.base.clone();
    admin.sign_in(&password).await;

    // The in-process station is listed with its printer.
    let (status, _, page) = admin.get("/stations").await;
    assert_eq!(status, 200, "{page}");
    let local = row_of(&page, &StationId::new("local"));
    assert!(local.contains("This workstation") && local.contains("In-process"));
    assert!(local.contains("Demo Card Printer") && local.contains("In this server"));

    // Create: the token is shown once, with the command to run on the workstation.
    let (status, url, shown) = admin
        .post(
            "/stations/create",
            &[("csrf", &csrf(&page)), ("name", "Desk 7")],
        )
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(url, "/stations/create", "the token is never in a URL");
    let token = token_in(&shown);
    assert!(token.starts_with("tse_"), "{token}");
    assert!(
        shown.contains(&format!(
            "tessera station --server {server} --token {token}"
        )),
        "{shown}"
    );
    assert!(shown.contains("expires in 24 hours"));
    let (_, _, page) = admin.get("/stations").await;
    assert!(!page.contains(&token), "the token is shown only once");
    let station = t
        .store
        .stations()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == "Desk 7")
        .unwrap()
        .id;
    let row = row_of(&page, &station);
    assert!(
        row.contains("Remote") && row.contains("Not connected"),
        "{row}"
    );
    assert!(row.contains("Not enrolled; token waiting"), "{row}");

    // An issuer chooses Desk 7 at sign-in; it is not enrolled yet, and the tile says so.
    let issuer = browser(&server);
    sign_in(&issuer, "ivy", ISSUER_PASSWORD, Some(&station)).await;
    let (_, _, wizard) = issuer.get("/users/jdoe/issue").await;
    assert!(wizard.contains("id=\"station-offline\""), "{wizard}");
    assert!(wizard.contains("The station Desk 7 is not enrolled yet"));
    assert!(wizard.contains("id=\"start\" disabled"));

    // The workstation enrols with the token and connects.
    let answer = agent::enrol(
        &server,
        &StationSecret::new(token.clone()),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(answer.station_id, station.as_str());
    let station_dir = dir.path().join("station");
    let agent = start_agent(&t, &server, &station_dir, &station, &answer.credential).await;
    let (_, _, page) = admin.get("/stations").await;
    let row = row_of(&page, &station);
    assert!(
        row.contains("Connected") && row.contains("Enrolled"),
        "{row}"
    );
    assert!(row.contains(SIMULATED_PRINTER) && row.contains(SIMULATED_ENCODER));

    // The issuer's printer tile now shows the remote station's printer and reader; the pair is
    // remembered for this operator at this station, and a card is issued and printed there.
    let (_, _, wizard) = issuer.get("/users/jdoe/issue").await;
    assert!(wizard.contains("id=\"station-name\">Desk 7<"), "{wizard}");
    assert!(wizard.contains(SIMULATED_PRINTER) && wizard.contains(SIMULATED_ENCODER));
    assert!(!wizard.contains("Demo Card Printer"));
    let form = csrf(&wizard);
    let (status, _, wizard) = issuer
        .post(
            "/users/jdoe/issue/configure",
            &[
                ("csrf", &form),
                ("printer", SIMULATED_PRINTER),
                ("reader", SIMULATED_ENCODER),
            ],
        )
        .await;
    assert_eq!(status, 200, "{wizard}");
    assert!(wizard.contains("id=\"change-reader\""), "{wizard}");
    let pairing = t
        .store
        .pairing(&OperatorId::new("ivy"), &station)
        .await
        .unwrap()
        .expect("the pair is remembered");
    assert_eq!(pairing.printer, SIMULATED_PRINTER);
    let (status, url, page) = issuer
        .post(
            "/users/jdoe/issue/start",
            &[("csrf", &form), ("layout", "corporate-badge")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let job = url.trim_start_matches("/issue/").to_owned();
    issuer.personalise_and_print(&job, &form).await;
    // Cancelled, so that Jane Doe has no issuance in progress and the wizard offers Start.
    let (status, _, page) = issuer
        .post(&format!("/issue/{job}/cancel"), &[("csrf", &form)])
        .await;
    assert_eq!(status, 200, "{page}");
    let printed = std::fs::read_dir(station_dir.join("printed"))
        .unwrap()
        .count();
    assert!(printed > 0, "the card was printed at the station");

    // A browser that chose nothing works at the in-process station; the administrator chooses
    // Desk 7 on the /station page, coming back to the wizard.
    let (_, _, wizard) = admin.get("/users/jdoe/issue").await;
    assert!(
        wizard.contains("id=\"station-name\">This workstation<"),
        "{wizard}"
    );
    let (_, _, choice) = admin.get("/station?back=/users/jdoe/issue").await;
    assert!(
        choice.contains("Desk 7") && choice.contains("(connected)"),
        "{choice}"
    );
    let (status, url, wizard) = admin
        .post(
            "/station",
            &[
                ("csrf", &csrf(&choice)),
                ("station", station.as_str()),
                ("back", "/users/jdoe/issue"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{wizard}");
    assert_eq!(url, "/users/jdoe/issue");
    assert!(wizard.contains(SIMULATED_PRINTER), "{wizard}");
    // Elsewhere than the portal is not a place to go back to.
    let (_, url, _) = admin
        .post(
            "/station",
            &[
                ("csrf", &csrf(&choice)),
                ("station", station.as_str()),
                ("back", "//example.org/"),
            ],
        )
        .await;
    assert_eq!(url, "/station");

    // The station goes away (here: its connection is cut from the server's end, which stops the
    // agent): the tile says so instead of showing nothing.
    t.hub
        .remote(&station)
        .unwrap()
        .kick("the workstation was switched off");
    ends_refused(agent, "switched off").await;
    wait_for(&t, &station, false).await;
    let (_, _, wizard) = issuer.get("/users/jdoe/issue").await;
    assert!(
        wizard.contains("The station Desk 7 is not connected. Start <code>tessera station</code>"),
        "{wizard}"
    );
    assert!(wizard.contains("id=\"start\" disabled"));

    // Disabled: the connection is cut at once and operators fall back to another station.
    let agent = start_agent(&t, &server, &station_dir, &station, &answer.credential).await;
    let (_, _, page) = admin.get("/stations").await;
    let (status, url, page) = admin
        .post(
            &format!("/stations/{station}/disable"),
            &[("csrf", &csrf(&page))],
        )
        .await;
    assert_eq!(
        (status, url.as_str()),
        (reqwest::StatusCode::OK, "/stations")
    );
    assert!(page.contains("Desk 7 is disabled"), "{page}");
    assert!(row_of(&page, &station).contains("Disabled"));
    ends_refused(agent, "disabled").await;
    let (_, _, wizard) = issuer.get("/users/jdoe/issue").await;
    assert!(
        wizard.contains("id=\"station-name\">This workstation<"),
        "{wizard}"
    );
    assert!(wizard.contains("Demo Card Printer"));
    let (status, _, page) = admin
        .post(
            &format!("/stations/{station}/enable"),
            &[("csrf", &csrf(&page))],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("Desk 7 is enabled"), "{page}");

    // Revoked after a confirmation: the agent is cut off and its credential is dead.
    let agent = start_agent(&t, &server, &station_dir, &station, &answer.credential).await;
    let (status, _, confirm) = admin.get(&format!("/stations/{station}/revoke")).await;
    assert_eq!(status, 200);
    assert!(confirm.contains("Revoke Desk 7?"), "{confirm}");
    let (status, _, page) = admin
        .post(
            &format!("/stations/{station}/revoke"),
            &[("csrf", &csrf(&confirm))],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Desk 7 is revoked"), "{page}");
    assert!(row_of(&page, &station).contains("Revoked"));
    ends_refused(agent, "revoked").await;
    let (_, _, wizard) = issuer.get("/users/jdoe/issue").await;
    assert!(
        wizard.contains("id=\"station-name\">This workstation<"),
        "{wizard}"
    );

    // A new enrolment token for the revoked station: shown once, as at creation.
    let (_, _, page) = admin.get("/stations").await;
    let (status, _, shown) = admin
        .post(
            &format!("/stations/{station}/token"),
            &[("csrf", &csrf(&page))],
        )
        .await;
    assert_eq!(status, 200, "{shown}");
    let again = token_in(&shown);
    assert_ne!(again, token);
    let (_, _, page) = admin.get("/stations").await;
    assert!(!page.contains(&again));

    let events = t.store.audit_events(None, 500).await.unwrap();
    for name in [
        "StationCreated",
        "StationEnrolled",
        "StationChanged",
        "StationRevoked",
    ] {
        assert!(events.iter().any(|e| e.name == name), "{name} audited");
    }
    // No secret reaches the audit log.
    for e in &events {
        let details = e.details.to_string();
        assert!(!details.contains(&token) && !details.contains(&again));
        assert!(!details.contains(&answer.credential));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_station_managers_reach_the_stations_page() {
    let (_dir, (t, password)) = support::open_with_password().await;
    add_issuer(&t).await;
    let admin = Portal::start(t.clone()).await;
    admin.sign_in(&password).await;
    let (_, _, page) = admin.get("/users").await;
    assert!(page.contains("href=\"/stations\""));

    let issuer = browser(&admin.base);
    // One station only: the sign-in page offers no choice.
    let (_, _, login) = issuer.get("/login").await;
    assert!(!login.contains("name=\"station\""));
    sign_in(&issuer, "ivy", ISSUER_PASSWORD, None).await;
    let (_, _, page) = issuer.get("/users").await;
    assert!(!page.contains("href=\"/stations\"") && page.contains("href=\"/station\""));
    let token = csrf(&page);
    let (status, _, _) = issuer.get("/stations").await;
    assert_eq!(status, 403);
    let (status, _, _) = issuer
        .post("/stations/create", &[("csrf", &token), ("name", "Mine")])
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = issuer
        .post("/stations/local/disable", &[("csrf", &token)])
        .await;
    assert_eq!(status, 403);
    assert!(t.store.stations().await.unwrap().iter().all(|s| s.enabled));
    assert_eq!(t.store.stations().await.unwrap().len(), 1);
    // Choosing their own station is every operator's right.
    let (status, _, page) = issuer.get("/station").await;
    assert_eq!(status, 200);
    assert!(page.contains("This workstation"));
}

/// The printers of the Printers page's row for `name`, if it is listed.
fn printer_row<'a>(page: &'a str, name: &str) -> Option<&'a str> {
    let at = page.find(&format!("data-printer=\"{name}\""))?;
    Some(&page[at..at + page[at..].find("</tr>").unwrap()])
}

async fn station_reports(t: &Tessera, station: &StationId, printer: &str, present: bool) {
    for _ in 0..400 {
        let reported = t
            .hub
            .remote(station)
            .is_some_and(|l| l.inventory().printers.iter().any(|p| p.name == printer));
        if reported == present {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the station never reported {printer} present = {present}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printers_configured_in_the_portal_reach_a_remote_station() {
    let (dir, (t, password)) = support::open_with_password().await;
    let admin = Portal::start(t.clone()).await;
    let server = admin.base.clone();
    admin.sign_in(&password).await;
    let actor = support::actor(BuiltinRole::Administrator);
    let (station, token) = tessera_core::stations::create(&t.services, &actor, "Desk 8")
        .await
        .unwrap();
    let answer = agent::enrol(&server, &token, &Default::default())
        .await
        .unwrap();
    let _agent = start_agent(
        &t,
        &server,
        &dir.path().join("station"),
        &station.id,
        &answer.credential,
    )
    .await;
    let id = station.id.as_str();

    // The page for Desk 8 shows the printer of the station's command line, not removable.
    let (status, _, page) = admin.get(&format!("/printers?station={id}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("at Desk 8"), "{page}");
    assert!(page.contains("id=\"remote-note\""), "{page}");
    let own = printer_row(&page, SIMULATED_PRINTER).expect("the command line's printer");
    assert!(
        own.contains("from the command line of the station"),
        "{own}"
    );
    assert!(!own.contains("/printers/remove"), "{own}");

    // A CA file is a path on the server: refused for a remote station.
    let form = csrf(&page);
    let (status, _, refused) = admin
        .post(
            "/printers/add",
            &[
                ("csrf", &form),
                ("station", id),
                ("name", "Secure"),
                ("uri", "ipps://printer.example/ipp/print"),
                ("ca_file", "/etc/ssl/printer.pem"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused.contains("--printer-ca-file"), "{refused}");

    // A spool folder on the workstation (this machine here), with the simulated encoder.
    let folder = dir.path().join("hot-folder");
    std::fs::create_dir(&folder).unwrap();
    let uri = format!("spool:{}", folder.display());
    let (status, url, page) = admin
        .post(
            "/printers/add",
            &[
                ("csrf", &form),
                ("station", id),
                ("name", "Badge Folder"),
                ("uri", &uri),
                ("encoder", SIMULATED_ENCODER),
            ],
        )
        .await;
    assert_eq!(
        (status.as_u16(), url.as_str()),
        (200, "/printers"),
        "{page}"
    );
    assert!(
        page.contains("Printer Badge Folder added; the station Desk 8 gets it"),
        "{page}"
    );
    station_reports(&t, &station.id, "Badge Folder", true).await;
    let (_, _, page) = admin.get(&format!("/printers?station={id}")).await;
    let row = printer_row(&page, "Badge Folder").expect("listed");
    assert!(
        row.contains("Ready") && row.contains("/printers/remove"),
        "{row}"
    );

    // The test page travels to the station and lands in its folder.
    let (status, _, page) = admin
        .post(
            "/printers/test",
            &[("csrf", &form), ("station", id), ("name", "Badge Folder")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("The test card was printed on Badge Folder"),
        "{page}"
    );
    let spooled = || std::fs::read_dir(&folder).unwrap().count();
    assert_eq!(spooled(), 3, "the test card's PDF and two PNGs");

    // A card issued at Desk 8 is personalised in the simulated printer's encoder (a blank card
    // put there first, as an operator puts one in a desk reader) and printed to the folder.
    let port = t.services.stations.station(&station.id).unwrap();
    port.feed_card(SIMULATED_PRINTER).await.unwrap();
    let at = (station.id.clone(), "Badge Folder", SIMULATED_ENCODER);
    let job = support::issue_at(&t, &actor, &at, "piv-standard", "246810").await;
    assert_eq!(
        job.step,
        tessera_core::model::JobStep::Printed,
        "{:?}",
        job.error
    );
    assert_eq!(spooled(), 6);

    // Removed: the station drops it within seconds.
    let (status, _, page) = admin
        .post(
            "/printers/remove",
            &[("csrf", &form), ("station", id), ("name", "Badge Folder")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Printer Badge Folder removed."), "{page}");
    station_reports(&t, &station.id, "Badge Folder", false).await;
    let (_, _, page) = admin.get(&format!("/printers?station={id}")).await;
    assert!(printer_row(&page, "Badge Folder").is_none(), "{page}");
    let events = t.store.audit_events(None, 200).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.code == tessera_core::audit::STATION_CHANGED.code
            && e.details["printer"] == "Badge Folder"
            && e.details["removed"] == true));
}

//! The load: N station agents (the simulated card printer, the real WebSocket protocol) and one
//! driver per station that issues cards back to back through `/api/v1/issuances` as the
//! administrator, one person per card; and the `/healthz` sampler.

use super::Budget;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_core::secret::StationSecret;
use tessera_server::station_process::{self, StationArgs, SIMULATED_ENCODER, SIMULATED_PRINTER};
use tessera_station::agent::{Agent, AgentOptions};
use tokio::task::JoinSet;

/// How often a driver asks for its job while the card is made.
const POLL: Duration = Duration::from_millis(500);
/// A card not Printed by then is given up (and counted as `TIMEOUT`).
const CARD_TIMEOUT: Duration = Duration::from_secs(300);
/// Requests at once while setting up (enrolments, people).
const SETUP_AT_ONCE: usize = 16;

/// The administrator's session on the balancer.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
    csrf: String,
}

/// Why a request did not give the JSON expected: the error code of the answer, or of the
/// transport.
fn code_of(status: reqwest::StatusCode, body: &Value) -> String {
    body["error"]["code"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP{}", status.as_u16()))
}

/// A portal page's HTML.
async fn page_text(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let res = http.get(url).send().await.map_err(|e| e.to_string())?;
    res.text().await.map_err(|e| e.to_string())
}

fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + 19;
    Some(html[at..at + html[at..].find('"')?].to_owned())
}

impl Api {
    /// Signs in as `admin` through the portal's form and keeps the session's CSRF token.
    pub async fn sign_in(base: &str, password: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .pool_max_idle_per_host(512)
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        let mut last = String::new();
        // Through a balancer the form and its answer may reach different replicas: try again.
        for _ in 0..5 {
            let page = page_text(&http, &format!("{base}/login")).await?;
            let csrf = csrf_in(&page).ok_or("the sign-in page has no CSRF field")?;
            let res = http
                .post(format!("{base}/login"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("operator", "admin"),
                    ("password", password),
                ])
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let landed = res.url().path().to_owned();
            if res.status().is_success() && landed != "/login" {
                let page = page_text(&http, &format!("{base}/account/password")).await?;
                let csrf = csrf_in(&page).ok_or("the account page has no CSRF field")?;
                return Ok(Self {
                    base: base.to_owned(),
                    http,
                    csrf,
                });
            }
            last = format!("{} on {landed}", res.status());
        }
        Err(format!("cannot sign in as admin: {last}"))
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.call_detailed(method, path, body)
            .await
            .map_err(|(code, _)| code)
    }

    /// [`Api::call`], with the error's JSON beside its code.
    async fn call_detailed(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (String, Value)> {
        let mut request = self
            .http
            .request(
                method.parse().expect("a method"),
                format!("{}/api/v1{path}", self.base),
            )
            .header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let lost = |_| ("HTTP".to_owned(), Value::Null);
        let res = request.send().await.map_err(lost)?;
        let status = res.status();
        let text = res.text().await.map_err(lost)?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            Err((code_of(status, &value), value))
        }
    }

    /// How many of the load's stations a replica holds connected (its Stations page).
    pub async fn connected_stations(&self, replica: &str) -> Result<usize, String> {
        let page = self
            .http
            .get(format!("{replica}/stations"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        Ok(page
            .split("<tr")
            .filter(|row| {
                row.contains("Load station")
                    && row.contains("station-connection\"><span class=\"badge state-active\">")
            })
            .count())
    }
}

/// The station agents, running in this process.
pub struct Stations {
    /// The station ids, one driver each.
    pub ids: Vec<String>,
    agents: Vec<tokio::task::JoinHandle<()>>,
}

impl Stations {
    pub fn stop(self) {
        for a in self.agents {
            a.abort();
        }
    }
}

/// Enrols each station with its token through the balancer and starts its agent.
pub async fn connect_stations(
    base: &str,
    dir: &Path,
    tokens: Vec<(String, StationSecret)>,
) -> Result<Stations, String> {
    let mut set = JoinSet::new();
    let mut out = Stations {
        ids: Vec::new(),
        agents: Vec::new(),
    };
    let mut pending = tokens.into_iter().enumerate();
    loop {
        while set.len() < SETUP_AT_ONCE {
            let Some((i, (_, token))) = pending.next() else {
                break;
            };
            let args = StationArgs {
                server: Some(base.to_owned()),
                token: Some(token),
                data_dir: dir.join("stations").join(format!("{i:04}")),
                simulated_printer: true,
                ..Default::default()
            };
            set.spawn(async move {
                let config = station_process::enrol_or_load(&args).await?;
                let local = station_process::local_station(&args)?;
                let agent = Agent::new(
                    Arc::new(local),
                    AgentOptions::new(args.server.clone().unwrap_or_default(), config.credential()),
                );
                let running = tokio::spawn(async move {
                    if let Err(e) = agent.run().await {
                        eprintln!("bench-load: a station stopped: {e}");
                    }
                });
                Ok::<_, String>((i, config.station_id, running))
            });
        }
        match set.join_next().await {
            Some(done) => {
                let (i, id, running) = done.map_err(|e| e.to_string())??;
                out.ids.push(format!("{i:06}{id}"));
                out.agents.push(running);
            }
            None => break,
        }
    }
    // In the order of their names, without the sort key.
    out.ids.sort();
    for id in &mut out.ids {
        *id = id.split_off(6);
    }
    Ok(out)
}

/// How many cards, or for how long.
pub struct Plan {
    seconds: Option<Duration>,
    cards: Option<usize>,
    /// People made for each station before the run.
    pub people_per_station: usize,
}

impl Plan {
    pub fn new(budget: Budget, stations: usize) -> Self {
        match budget {
            Budget::Seconds(s) => Self {
                seconds: Some(Duration::from_secs(s)),
                cards: None,
                people_per_station: 2,
            },
            Budget::Cards(n) => Self {
                seconds: None,
                cards: Some(n),
                people_per_station: n.div_ceil(stations),
            },
        }
    }
}

fn uid(station: usize, n: usize) -> String {
    format!("load-{station:04}-{n:05}")
}

/// Makes a person; a write that lost a race with another (PostgreSQL answers 500 DB0001 to two
/// people added at the same moment today, a unique-key conflict) is tried again.
async fn create_person(api: &Api, uid: &str) -> Result<(), String> {
    let mut tries = 0;
    loop {
        match create_person_once(api, uid).await {
            Err(code) if code == "DB0001" && tries < 10 => {
                tries += 1;
                let jitter = u64::from(rand::random::<u8>());
                tokio::time::sleep(Duration::from_millis(20 * tries + jitter)).await;
            }
            // Made by a try whose answer was lost?
            Err(code) if tries > 0 => {
                return match api.call("GET", &format!("/users/{uid}"), None).await {
                    Ok(_) => Ok(()),
                    Err(_) => Err(code),
                }
            }
            other => return other,
        }
    }
}

async fn create_person_once(api: &Api, uid: &str) -> Result<(), String> {
    api.call(
        "POST",
        "/users",
        Some(json!({
            "uid": uid, "given_name": "Load", "family_name": uid,
            "display_name": format!("Load {uid}"), "groups": ["staff"],
            "department": "Load", "title": "Tester",
        })),
    )
    .await
    .map(|_| ())
}

/// The people of the first cards of each station, made through `POST /api/v1/users`.
pub async fn create_people(api: &Api, stations: &[String], plan: &Plan) -> Result<(), String> {
    // One at a time: concurrent additions collide on PostgreSQL (see [`create_person`]).
    for s in 0..stations.len() {
        for n in 0..plan.people_per_station {
            create_person(api, &uid(s, n)).await?;
        }
    }
    Ok(())
}

#[derive(Default)]
pub struct Results {
    pub completed: usize,
    pub latencies: Vec<Duration>,
    pub failures: BTreeMap<String, usize>,
    /// Every job a driver started.
    pub jobs: Vec<String>,
}

/// Runs one driver per station until the plan is spent; every card's outcome. A run by time
/// starts no card after its end, and finishes the cards under way.
pub async fn run_all(api: &Api, stations: &[String], plan: &Plan) -> Results {
    let results = Arc::new(Mutex::new(Results::default()));
    let shared = Arc::new(SharedPlan {
        deadline: plan.seconds.map(|s| Instant::now() + s),
        remaining: plan.cards.map(AtomicUsize::new),
    });
    let made = plan.people_per_station;
    let mut set = JoinSet::new();
    for (i, station) in stations.iter().enumerate() {
        let (api, station, results, shared) = (
            api.clone(),
            station.clone(),
            results.clone(),
            shared.clone(),
        );
        set.spawn(async move { drive_station(&api, i, &station, made, &shared, &results).await });
    }
    while set.join_next().await.is_some() {}
    let mut out = results.lock().unwrap();
    std::mem::take(&mut *out)
}

struct SharedPlan {
    deadline: Option<Instant>,
    remaining: Option<AtomicUsize>,
}

impl SharedPlan {
    fn another(&self) -> bool {
        if let Some(deadline) = self.deadline {
            return Instant::now() < deadline;
        }
        match &self.remaining {
            Some(r) => r
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok(),
            None => false,
        }
    }
}

enum Outcome {
    Completed(Duration),
    /// The error code; whether the person may be used again (nothing was started for them).
    Failed(String, bool),
}

async fn drive_station(
    api: &Api,
    index: usize,
    station: &str,
    made: usize,
    plan: &SharedPlan,
    results: &Mutex<Results>,
) {
    let (mut next, mut made) = (0, made);
    while plan.another() {
        let person = uid(index, next);
        if next == made {
            // Beyond the people made beforehand: made now, outside the card's time.
            if let Err(code) = create_person(api, &person).await {
                results.lock().unwrap().fail(format!("user:{code}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            made += 1;
        }
        match one_card(api, station, &person, results).await {
            Outcome::Completed(took) => {
                let mut r = results.lock().unwrap();
                r.completed += 1;
                r.latencies.push(took);
                next += 1;
            }
            Outcome::Failed(code, reusable) => {
                results.lock().unwrap().fail(code);
                if !reusable {
                    next += 1;
                }
                // A refusal (a station not connected, say) is not retried in a tight loop.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

impl Results {
    fn fail(&mut self, code: String) {
        *self.failures.entry(code).or_default() += 1;
    }
}

async fn one_card(api: &Api, station: &str, person: &str, results: &Mutex<Results>) -> Outcome {
    let began = Instant::now();
    let job = match api
        .call_detailed(
            "POST",
            "/issuances",
            Some(json!({
                "user": person, "station": station, "layout": "corporate-badge",
                "printer": SIMULATED_PRINTER, "reader": SIMULATED_ENCODER,
            })),
        )
        .await
    {
        Ok(job) => job,
        Err((code, body)) => {
            // An issuance in progress holds the person or the printer (one whose Start answer
            // was lost with a killed replica, say): cancelled, as an operator would from the
            // refusal page, and the person tried again.
            if let Some(open) = body["error"]["job"].as_str() {
                cancel(api, open, "an abandoned issuance holds the printer").await;
                return Outcome::Failed(format!("start:{code}"), true);
            }
            // A transport error may hide a job that was started: that person is not used again.
            return Outcome::Failed(format!("start:{code}"), code != "HTTP");
        }
    };
    let Some(id) = job["id"].as_str().map(str::to_owned) else {
        return Outcome::Failed("start:no id".into(), false);
    };
    results.lock().unwrap().jobs.push(id.clone());
    if let Err(code) = api
        .call(
            "POST",
            &format!("/issuances/{id}/policy"),
            Some(json!({"policy": "piv-standard", "pin": "24681357", "pin_confirmation": "24681357"})),
        )
        .await
    {
        cancel(api, &id, "the policy step was refused").await;
        return Outcome::Failed(format!("policy:{code}"), false);
    }
    let deadline = Instant::now() + CARD_TIMEOUT;
    let job = loop {
        tokio::time::sleep(POLL).await;
        if Instant::now() > deadline {
            return Outcome::Failed("TIMEOUT".into(), false);
        }
        // A poll that does not get through (a replica killed under it) is asked again.
        if let Ok(job) = api.call("GET", &format!("/jobs/{id}"), None).await {
            if !matches!(job["step"].as_str(), Some("issuing" | "printing")) {
                break job;
            }
        }
    };
    match job["step"].as_str() {
        Some("printed") => {}
        Some("failed") => {
            let code = job["error"]["code"].as_str().unwrap_or("?");
            return Outcome::Failed(format!("job failed:{code}"), false);
        }
        Some("print_failed") => {
            cancel(api, &id, "the print failed").await;
            let code = job["error"]["code"].as_str().unwrap_or("?");
            return Outcome::Failed(format!("print failed:{code}"), false);
        }
        other => return Outcome::Failed(format!("job at {other:?}"), false),
    }
    for _ in 0..3 {
        match api
            .call("POST", &format!("/issuances/{id}/continue"), None)
            .await
        {
            Ok(_) => return Outcome::Completed(began.elapsed()),
            Err(code) if code == "HTTP" || code.starts_with("HTTP5") => {
                // Did it get through before the answer was lost?
                if let Ok(job) = api.call("GET", &format!("/jobs/{id}"), None).await {
                    if job["step"] == "completed" {
                        return Outcome::Completed(began.elapsed());
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(code) => return Outcome::Failed(format!("continue:{code}"), false),
        }
    }
    Outcome::Failed("continue:HTTP".into(), false)
}

async fn cancel(api: &Api, job: &str, reason: &str) {
    // Asked again while the answer is lost (a replica killed under it) or a runner still holds
    // the job (JOB0001 until its step ends).
    for _ in 0..10 {
        match api
            .call(
                "POST",
                &format!("/issuances/{job}/cancel"),
                Some(json!({ "reason": reason })),
            )
            .await
        {
            Err(code) if code == "HTTP" || code.starts_with("HTTP5") || code == "DB0002" => {
                tokio::time::sleep(Duration::from_secs(1)).await
            }
            _ => return,
        }
    }
}

/// `/healthz` through the balancer about ten times a second until `stop`: the latencies of the
/// answers, and how many failed.
pub async fn sample_healthz(base: String, stop: Arc<AtomicBool>) -> (Vec<Duration>, usize) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let (mut ok, mut failed) = (Vec::new(), 0);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        let began = Instant::now();
        match http.get(format!("{base}/healthz")).send().await {
            Ok(res) if res.status().is_success() => ok.push(began.elapsed()),
            _ => failed += 1,
        }
    }
    (ok, failed)
}

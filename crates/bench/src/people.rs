//! `tessera bench-users`: how fast people arrive and how fast the Users page finds them, at a
//! realistic size. A synthetic HR export (names drawn from lists with common and rare surnames,
//! uids, employee ids, emails, departments, a site and a few groups each) goes through the real
//! CSV import ([`tessera_core::people::import_csv`]: parsing, reconciliation, one unit of work
//! per file) on a data folder opened like the server's; then a mix of searches runs through
//! [`tessera_core::users::search`], as an Administrator (everyone) and as an operator scoped to
//! one site's group, the way the Users page calls it.
//!
//! A large population is imported as several files of [`FILE_ROWS`] people, as an HR system's
//! export in parts would be: one file of a million rows would hold the whole reading and its unit
//! of work in memory at once.

use std::time::{Duration, Instant};
use tessera_core::access::Scope;
use tessera_core::model::BuiltinRole;
use tessera_core::people::csv_file::{CsvMapping, NoPhotos};
use tessera_core::people::{import_csv, ImportOptions};
use tessera_core::ports::UserSort;
use tessera_core::services::Actor;
use tessera_core::users::{self, UserSearch};
use tessera_core::CoreError;
use tessera_server::wiring::{Options as ServerOptions, Tessera};

/// People per imported file.
pub const FILE_ROWS: usize = 100_000;
/// Users per page, as on the Users page.
const PER_PAGE: u32 = 50;

/// Which databases to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Databases {
    Sqlite,
    Postgres,
    Both,
}

impl Databases {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            "both" => Ok(Self::Both),
            other => Err(format!(
                "--database {other:?}: use sqlite, postgres or both"
            )),
        }
    }
}

pub struct Options {
    pub users: usize,
    pub databases: Databases,
    /// A PostgreSQL server (`postgres://user@host/db`): the benchmark makes a database of its own
    /// there and drops it afterwards.
    pub postgres_url: Option<String>,
    /// Searches per actor.
    pub searches: usize,
}

/// The figures of one database.
pub struct Figures {
    pub database: &'static str,
    pub users: usize,
    pub files: usize,
    pub import: Duration,
    /// Of which writing the units of work (the rest reads the files and compares).
    pub write: Duration,
    /// Per kind of search, per actor: (kind, actor, latencies).
    pub searches: Vec<(&'static str, &'static str, Vec<Duration>)>,
}

fn ms(d: &Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentiles(samples: &[Duration]) -> (usize, f64, f64, f64) {
    let mut v: Vec<f64> = samples.iter().map(ms).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        v.get(((v.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    };
    (v.len(), at(0.5), at(0.99), v.last().copied().unwrap_or(0.0))
}

impl Figures {
    pub fn report(&self) -> String {
        let mut lines = vec![
            format!(
                "{}: {} users imported through the CSV import in {} file(s) of at most {FILE_ROWS}",
                self.database, self.users, self.files
            ),
            format!(
                "  import {:.1} s, {:.0} users/s (reading and checking {:.1} s, writing {:.1} s)",
                self.import.as_secs_f64(),
                self.users as f64 / self.import.as_secs_f64(),
                (self.import - self.write).as_secs_f64(),
                self.write.as_secs_f64(),
            ),
        ];
        for actor in [ADMIN, SCOPED] {
            let all: Vec<Duration> = self
                .searches
                .iter()
                .filter(|(_, a, _)| *a == actor)
                .flat_map(|(_, _, d)| d.iter().copied())
                .collect();
            let (n, p50, p99, max) = percentiles(&all);
            lines.push(format!(
                "  search as {actor:<28} n={n:<5} p50 {p50:7.2} ms  p99 {p99:7.2} ms  max {max:7.2} ms"
            ));
            for (kind, _, samples) in self.searches.iter().filter(|(_, a, _)| *a == actor) {
                let (n, p50, p99, max) = percentiles(samples);
                lines.push(format!(
                    "    {kind:<30} n={n:<5} p50 {p50:7.2} ms  p99 {p99:7.2} ms  max {max:7.2} ms"
                ));
            }
        }
        lines.join("\n")
    }
}

const ADMIN: &str = "Administrator (everyone)";
const SCOPED: &str = "operator scoped to site-oslo";
/// The group the scoped operator sees (about one person in twenty).
const SCOPE_GROUP: &str = "site-oslo";

/// Runs the benchmark on each database asked for, in data folders under `dir`.
pub async fn run(dir: &std::path::Path, options: &Options) -> Result<Vec<Figures>, CoreError> {
    let mut figures = Vec::new();
    if options.databases != Databases::Postgres {
        let data = dir.join("sqlite");
        let result = measure("SQLite", ServerOptions::new(&data), options).await;
        let _ = std::fs::remove_dir_all(&data);
        figures.push(result?);
    }
    if options.databases != Databases::Sqlite {
        let base = options
            .postgres_url
            .clone()
            .or_else(|| std::env::var("TESSERA_TEST_DATABASE_URL").ok())
            .ok_or_else(|| {
                CoreError::Invalid(
                    "PostgreSQL needs --postgres-url or TESSERA_TEST_DATABASE_URL".into(),
                )
            })?;
        let url = tessera_store::testing::fresh_postgres_database(&base).await;
        let data = dir.join("postgres");
        let server = ServerOptions {
            database_url: Some(url.clone()),
            ..ServerOptions::new(&data)
        };
        let result = measure("PostgreSQL", server, options).await;
        tessera_store::testing::drop_postgres_database(&base, &url).await;
        let _ = std::fs::remove_dir_all(&data);
        figures.push(result?);
    }
    Ok(figures)
}

async fn measure(
    database: &'static str,
    server: ServerOptions,
    options: &Options,
) -> Result<Figures, CoreError> {
    let (t, _) = Tessera::open(&server)
        .await
        .map_err(|e| CoreError::Invalid(e.to_string()))?;
    let svc = &t.services;
    let admin = Actor::builtin("bench", BuiltinRole::Administrator);
    let people = Population::new(options.users);
    let mut import = Duration::ZERO;
    let mut write = Duration::ZERO;
    let mut files = 0;
    for start in (0..options.users).step_by(FILE_ROWS) {
        let end = (start + FILE_ROWS).min(options.users);
        let csv = people.csv(start..end);
        files += 1;
        let name = format!("hr-export-part-{files:02}.csv");
        let started = Instant::now();
        // When the import starts writing its unit of work: reading and checking come before.
        let writing = std::sync::Mutex::new(None);
        let report = import_csv(
            svc,
            &admin,
            &name,
            csv.as_bytes(),
            CsvMapping::default(),
            &NoPhotos,
            ImportOptions::default(),
            &|p| {
                if p.stage == "writing" && p.done == 0 {
                    *writing.lock().expect("not poisoned") = Some(Instant::now());
                }
            },
        )
        .await?;
        import += started.elapsed();
        if let Some(at) = *writing.lock().expect("not poisoned") {
            write += at.elapsed();
        }
        if report.created.len() != end - start {
            return Err(CoreError::Invalid(format!(
                "{name}: {} of {} people created; rejected: {:?}",
                report.created.len(),
                end - start,
                report.rejected.first()
            )));
        }
    }
    let scoped = Actor {
        scope: Scope::Groups(vec![SCOPE_GROUP.into()]),
        ..Actor::builtin("bench-scoped", BuiltinRole::Administrator)
    };
    // One unmeasured pass over the mix first: right after an import of a million people the
    // indexes are not yet in the page cache, and the first searches would measure the disk, not
    // the search (a server that has run for a minute has them in memory).
    let mut rng = Lcg(7);
    for i in 0..KINDS.len() * 5 {
        let search = people.search(KINDS[i % KINDS.len()], 1_000 + i, &mut rng);
        for actor in [&admin, &scoped] {
            std::hint::black_box(users::search(svc, actor, &search).await?);
        }
    }
    let mut searches = Vec::new();
    for (actor, name) in [(&admin, ADMIN), (&scoped, SCOPED)] {
        let mut by_kind: Vec<(&'static str, &'static str, Vec<Duration>)> =
            KINDS.iter().map(|k| (*k, name, Vec::new())).collect();
        let mut rng = Lcg(99);
        for i in 0..options.searches {
            let kind = i % KINDS.len();
            let search = people.search(KINDS[kind], i / KINDS.len(), &mut rng);
            let started = Instant::now();
            let page = users::search(svc, actor, &search).await?;
            by_kind[kind].2.push(started.elapsed());
            std::hint::black_box(page);
        }
        searches.extend(by_kind);
    }
    t.store.close().await;
    Ok(Figures {
        database,
        users: options.users,
        files,
        import,
        write,
        searches,
    })
}

/// The kinds of search in the mix, taken in turn.
const KINDS: [&str; 10] = [
    "rare surname",
    "common given name",
    "common name fragment",
    "uid, exact",
    "employee id",
    "email fragment",
    "group",
    "1-2 character prefix",
    "miss",
    "common, sorted by employee id, page 3",
];

/// A small deterministic generator: the same people on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

const GIVEN: [&str; 48] = [
    "Maria", "James", "Anna", "John", "Fatima", "Wei", "Olga", "Ahmed", "Sofia", "Lukas", "Emma",
    "Noah", "Aisha", "Carlos", "Yuki", "Ingrid", "Priya", "Mateo", "Chloe", "Omar", "Elena",
    "David", "Sara", "Hiroshi", "Amara", "Liam", "Nadia", "Pedro", "Zara", "Felix", "Hana", "Ivan",
    "Leila", "Tomas", "Mei", "Oscar", "Rosa", "Samuel", "Tara", "Viktor", "Alice", "Bruno",
    "Clara", "Dmitri", "Eva", "Goran", "Helga", "Kofi",
];

/// Family names, most common first: a person's is drawn with a bias towards the head of the
/// list, so "Smith" is common and the names at the tail are rare.
const FAMILY: [&str; 64] = [
    "Smith",
    "Johnson",
    "Garcia",
    "Müller",
    "Nguyen",
    "Kim",
    "Andersson",
    "Rossi",
    "Kowalski",
    "Novak",
    "Silva",
    "Martin",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Hall",
    "Young",
    "King",
    "Wright",
    "Lopez",
    "Hill",
    "Scott",
    "Green",
    "Adams",
    "Baker",
    "Nelson",
    "Carter",
    "Mitchell",
    "Perez",
    "Roberts",
    "Turner",
    "Phillips",
    "Campbell",
    "Parker",
    "Evans",
    "Edwards",
    "Collins",
    "Stewart",
    "Sanchez",
    "Morris",
    "Rogers",
    "Reed",
    "Cook",
    "Morgan",
    "Bell",
    "Murphy",
    "Bailey",
    "Okonkwo",
    "Vasquez",
    "Lindqvist",
    "Abernathy",
    "Quinterro",
    "Vanterpool",
];

const DEPARTMENTS: [&str; 12] = [
    "Engineering",
    "Finance",
    "Sales",
    "Marketing",
    "Security",
    "Legal",
    "Operations",
    "Support",
    "Research",
    "Facilities",
    "Human Resources",
    "Procurement",
];

const SITES: [&str; 20] = [
    "site-london",
    "site-paris",
    "site-berlin",
    "site-oslo",
    "site-madrid",
    "site-rome",
    "site-vienna",
    "site-prague",
    "site-warsaw",
    "site-dublin",
    "site-lisbon",
    "site-athens",
    "site-helsinki",
    "site-zurich",
    "site-brussels",
    "site-amsterdam",
    "site-copenhagen",
    "site-stockholm",
    "site-budapest",
    "site-riga",
];

const TITLES: [&str; 6] = [
    "Engineer",
    "Analyst",
    "Manager",
    "Officer",
    "Specialist",
    "Director",
];

/// One synthetic person; the i-th is the same on every run.
struct Person {
    uid: String,
    given: &'static str,
    family: &'static str,
    employee_id: String,
    department: &'static str,
    title: &'static str,
    groups: Vec<&'static str>,
}

struct Population {
    count: usize,
}

impl Population {
    fn new(count: usize) -> Self {
        Self { count }
    }

    fn person(&self, i: usize) -> Person {
        let mut rng = Lcg(i as u64 ^ 0x5eed_0000_0000);
        rng.next(2);
        // The product of two draws leans towards the head of the list.
        let family = FAMILY[rng.next(FAMILY.len()) * rng.next(FAMILY.len()) / FAMILY.len()];
        let given = GIVEN[rng.next(GIVEN.len())];
        let department = DEPARTMENTS[rng.next(DEPARTMENTS.len())];
        let mut groups = vec![
            SITES[rng.next(SITES.len())],
            match department {
                "Engineering" | "Research" => "engineering",
                "Finance" | "Procurement" | "Legal" => "finance",
                _ => "staff",
            },
        ];
        if rng.next(4) == 0 {
            groups.push("vpn-users");
        }
        Person {
            uid: format!(
                "{}{}{i}",
                given[..1].to_lowercase(),
                family.to_lowercase().replace('ü', "u")
            ),
            given,
            family,
            // A permutation of 0..10^7, so ids do not follow uids.
            employee_id: format!("E{:07}", (i as u64 * 7_654_321 + 1_234_567) % 10_000_000),
            department,
            title: TITLES[rng.next(TITLES.len())],
            groups,
        }
    }

    /// The HR export of people `range`, as a CSV file.
    fn csv(&self, range: std::ops::Range<usize>) -> String {
        let mut out = String::with_capacity(range.len() * 160);
        out.push_str(
            "uid,given_name,family_name,display_name,email,upn,employee_id,department,title,groups\n",
        );
        for i in range {
            let p = self.person(i);
            let email = format!(
                "{}.{}{}@example.org",
                p.given.to_lowercase(),
                p.family.to_lowercase().replace('ü', "u"),
                i % 1000
            );
            out.push_str(&format!(
                "{},{},{},{} {},{email},{email},{},{},{},{}\n",
                p.uid,
                p.given,
                p.family,
                p.given,
                p.family,
                p.employee_id,
                p.department,
                p.title,
                p.groups.join(";")
            ));
        }
        out
    }

    /// The `round`-th search of `kind`.
    fn search(&self, kind: &str, round: usize, rng: &mut Lcg) -> UserSearch {
        let someone = self.person(rng.next(self.count.max(1)));
        let (text, sort, page) = match kind {
            "rare surname" => (
                FAMILY[FAMILY.len() - 1 - round % 3].to_owned(),
                UserSort::Name,
                0,
            ),
            "common given name" => (
                ["maria", "james", "wei", "olga"][round % 4].to_owned(),
                UserSort::Name,
                0,
            ),
            "common name fragment" => (
                ["son", "mar", "an", "ell"][round % 4].to_owned(),
                UserSort::Name,
                0,
            ),
            "uid, exact" => (someone.uid, UserSort::Name, 0),
            "employee id" => (someone.employee_id, UserSort::Name, 0),
            "email fragment" => (
                format!(
                    "{}.{}",
                    someone.given.to_lowercase(),
                    &someone.family.to_lowercase()[..3]
                ),
                UserSort::Name,
                0,
            ),
            "group" => (
                ["engineering", "vpn-users", "site-riga"][round % 3].to_owned(),
                UserSort::Name,
                0,
            ),
            "1-2 character prefix" => (
                ["m", "ch", "e1", "zo"][round % 4].to_owned(),
                UserSort::Name,
                0,
            ),
            "miss" => (format!("qzx{round}"), UserSort::Name, 0),
            _ => ("smith".to_owned(), UserSort::EmployeeId, 2),
        };
        UserSearch {
            text,
            sort,
            page,
            per_page: PER_PAGE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_is_the_same_every_time_and_uids_are_unique() {
        let people = Population::new(5_000);
        assert_eq!(people.csv(0..100), people.csv(0..100));
        let uids: std::collections::HashSet<String> =
            (0..5_000).map(|i| people.person(i).uid).collect();
        assert_eq!(uids.len(), 5_000);
        let smiths = (0..5_000)
            .filter(|&i| people.person(i).family == "Smith")
            .count();
        let rare = (0..5_000)
            .filter(|&i| people.person(i).family == "Vanterpool")
            .count();
        assert!(smiths > 200 && rare < 20, "{smiths} {rare}");
    }
}

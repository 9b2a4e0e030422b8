//! The Users page's search on every backend: what it finds (name, uid, employee id, email,
//! group; short text as a prefix; wildcards taken literally), its order and pages, the scope,
//! the indexes kept in step by every write, and an upgraded database. Then an oracle: several
//! thousand people, and every answer compared with a plain filter-and-sort in Rust, so that both
//! of the search's plans (candidates from an index, or a walk of the sort index) are checked.

use std::collections::BTreeMap;
use tessera_core::changes::{Change, Changes, UserWas};
use tessera_core::ids::UserId;
use tessera_core::model::{User, UserSource};
use tessera_core::ports::{Store, StoreError, UserQuery, UserSort};
use tessera_store::SqlStore;

fn person(uid: &str, name: &str, employee_id: &str, groups: &[&str]) -> User {
    User {
        uid: UserId::new(uid),
        given_name: name.split(' ').next().unwrap_or("").into(),
        family_name: name.split(' ').nth(1).unwrap_or("").into(),
        display_name: name.into(),
        email: format!("{uid}@example.org"),
        upn: format!("{uid}@example.org"),
        employee_id: employee_id.into(),
        department: "Security".into(),
        title: "Officer".into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        source: UserSource::Csv,
        attributes: BTreeMap::new(),
        has_photo: false,
        disabled: false,
        photo_digest: None,
    }
}

/// A person written for the first time.
fn new(user: User) -> Change {
    Change::PutUser {
        user,
        was: UserWas::New,
    }
}

fn query(text: &str) -> UserQuery {
    UserQuery {
        text: text.into(),
        limit: 100,
        ..Default::default()
    }
}

async fn uids(store: &SqlStore, q: UserQuery) -> Vec<String> {
    store
        .find_users(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.uid.0)
        .collect()
}

async fn commit(store: &SqlStore, list: Vec<Change>) -> Result<(), StoreError> {
    let mut changes = Changes::new();
    for c in list {
        changes.push(c);
    }
    store.commit(&changes).await
}

async fn searches(store: &SqlStore) {
    let people = vec![
        person("jdoe", "Jane Doe", "E100", &["staff", "security"]),
        person("asmith", "Alan Smith", "E200", &["staff"]),
        person("under_score", "Una Score", "X7", &["contractors"]),
        person("bdoe", "Bob Doe", "E300", &["staff", "finance"]),
        person("zz", "Zoë Zimmer", "", &[]),
    ];
    commit(store, people.into_iter().map(new).collect())
        .await
        .unwrap();
    let s = |t: &str| uids(store, query(t));

    // substrings, any case, in name order
    assert_eq!(s("DOE").await, ["bdoe", "jdoe"]);
    assert_eq!(s("smit").await, ["asmith"]);
    assert_eq!(s("e30").await, ["bdoe"], "employee id");
    assert_eq!(s("jdoe@example").await, ["jdoe"], "email");
    assert_eq!(s("finance").await, ["bdoe"], "group");
    assert_eq!(s("zoë").await, ["zz"], "beyond ASCII");
    assert_eq!(s("nobody here").await, Vec::<String>::new());
    // a search never runs from one field into the next
    assert!(s("doe jdoe").await.is_empty());
    // wildcards are characters
    assert_eq!(s("r_s").await, ["under_score"]);
    assert!(s("r%s").await.is_empty());
    assert!(s("d_e").await.is_empty());
    // one or two characters: the start of the key sorted by (name, uid or employee id)
    let sorted_by = |text: &str, sort| UserQuery {
        sort,
        ..query(text)
    };
    assert_eq!(s("ja").await, ["jdoe"]);
    assert_eq!(s("j").await, ["jdoe"]);
    assert!(s("as").await.is_empty(), "names only, when sorted by name");
    assert_eq!(
        uids(store, sorted_by("as", UserSort::Uid)).await,
        ["asmith"]
    );
    assert_eq!(
        uids(store, sorted_by("x7", UserSort::EmployeeId)).await,
        ["under_score"]
    );
    assert!(s("oe").await.is_empty(), "not inside a word");
    assert!(s("%").await.is_empty());
    assert!(s("_").await.is_empty());
    // nothing: everyone
    assert_eq!(s("").await, ["asmith", "bdoe", "jdoe", "under_score", "zz"]);

    // sort and pages
    let sorted = |sort, offset, limit| UserQuery {
        sort,
        offset,
        limit,
        ..Default::default()
    };
    assert_eq!(
        uids(store, sorted(UserSort::Uid, 0, 10)).await,
        ["asmith", "bdoe", "jdoe", "under_score", "zz"]
    );
    assert_eq!(
        uids(store, sorted(UserSort::EmployeeId, 0, 10)).await,
        ["zz", "jdoe", "asmith", "bdoe", "under_score"]
    );
    assert_eq!(
        uids(store, sorted(UserSort::Name, 1, 2)).await,
        ["bdoe", "jdoe"]
    );
    assert_eq!(uids(store, sorted(UserSort::Name, 4, 2)).await, ["zz"]);
    assert!(uids(store, sorted(UserSort::Name, 0, 0)).await.is_empty());

    // scope: members of some groups only (exactly, case and all)
    let scoped = |text: &str, groups: &[&str]| UserQuery {
        groups: Some(groups.iter().map(|g| g.to_string()).collect()),
        ..query(text)
    };
    assert_eq!(
        uids(store, scoped("", &["staff"])).await,
        ["asmith", "bdoe", "jdoe"]
    );
    assert_eq!(uids(store, scoped("doe", &["finance"])).await, ["bdoe"]);
    assert_eq!(
        uids(store, scoped("", &["finance", "contractors"])).await,
        ["bdoe", "under_score"]
    );
    assert!(uids(store, scoped("", &["Staff"])).await.is_empty());
    assert!(uids(store, scoped("", &[])).await.is_empty());
    assert_eq!(uids(store, scoped("a", &["staff"])).await, ["asmith"]);

    // users by uid and by source
    let mut found: Vec<String> = store
        .users_by_uid(&["jdoe".into(), "nobody".into(), "zz".into()])
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.uid.0)
        .collect();
    found.sort();
    assert_eq!(found, ["jdoe", "zz"]);
    let mut local = person("loc", "Lo Cal", "L1", &[]);
    local.source = UserSource::Local;
    local.disabled = true;
    store.put_user(&local).await.unwrap();
    assert_eq!(
        store.uids_of_source(UserSource::Local).await.unwrap(),
        vec![(UserId::new("loc"), true)]
    );
    assert_eq!(
        store.uids_of_source(UserSource::Csv).await.unwrap().len(),
        5
    );
    assert!(store
        .uids_of_source(UserSource::Ldap)
        .await
        .unwrap()
        .is_empty());

    // every write keeps the indexes in step: a rename, new groups, a deletion
    let mut renamed = person("jdoe", "Jane Roe", "E101", &["finance"]);
    renamed.disabled = true;
    store.put_user(&renamed).await.unwrap();
    assert_eq!(s("jane").await, ["jdoe"]);
    assert!(s("e doe").await.is_empty(), "the old name is gone");
    assert_eq!(s("ne roe").await, ["jdoe"]);
    assert_eq!(s("e10").await, ["jdoe"]);
    assert_eq!(
        uids(store, scoped("", &["security"])).await,
        Vec::<String>::new()
    );
    assert_eq!(
        uids(store, scoped("", &["finance"])).await,
        ["bdoe", "jdoe"]
    );
    assert!(store.find_users(&query("roe")).await.unwrap()[0].disabled);
    assert_eq!(
        store.uids_of_source(UserSource::Csv).await.unwrap()[2],
        (UserId::new("jdoe"), true)
    );
    let bdoe = store.user(&UserId::new("bdoe")).await.unwrap();
    commit(
        store,
        vec![Change::DeleteUser {
            was: Box::new(bdoe),
            cards: Vec::new(),
        }],
    )
    .await
    .unwrap();
    assert!(s("bob").await.is_empty());
    assert!(uids(store, scoped("", &["finance"])).await == ["jdoe"]);
    assert!(uids(store, sorted_by("bd", UserSort::Uid)).await.is_empty());
    // the same uid twice in one unit of work: the last write wins
    commit(
        store,
        vec![
            new(person("twice", "First Try", "T1", &["a"])),
            Change::PutUser {
                user: person("twice", "Second Try", "T2", &["b"]),
                was: UserWas::Stored(Box::new(person("twice", "First Try", "T1", &["a"]))),
            },
        ],
    )
    .await
    .unwrap();
    assert!(s("first").await.is_empty());
    assert_eq!(s("second").await, ["twice"]);
    assert_eq!(uids(store, scoped("", &["b"])).await, ["twice"]);
}

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

const GIVEN: [&str; 8] = [
    "Anna", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana",
];
const FAMILY: [&str; 8] = [
    "Li", "Ng", "Okafor", "Smith", "Novak", "Garcia", "Sato", "Quist",
];
const GROUPS: [&str; 5] = ["staff", "engineering", "finance", "contractors", "vip"];

fn crowd(count: usize) -> Vec<User> {
    let mut rng = Lcg(7);
    (0..count)
        .map(|i| {
            // Half are Smiths and half are staff (more than the search's candidate limit, so
            // it walks the sort index); Quist and vip are rare, the rest in between.
            let family = match FAMILY[rng.next(FAMILY.len())] {
                _ if rng.next(2) == 0 => "Smith",
                "Quist" if rng.next(50) != 0 => "Novak",
                f => f,
            };
            let name = format!("{} {family}", GIVEN[rng.next(GIVEN.len())]);
            let mut groups = vec![GROUPS[1 + rng.next(GROUPS.len() - 2)]];
            if rng.next(2) == 0 {
                groups.push("staff");
            }
            if rng.next(200) == 0 {
                groups.push("vip");
            }
            person(
                &format!("u{i:05}"),
                &name,
                &format!("E{:05}", (i * 7919) % 100_000),
                &groups,
            )
        })
        .collect()
}

/// What the search must answer, by its rules, computed plainly.
fn expected(people: &[User], q: &UserQuery) -> Vec<String> {
    let text = q.text.trim().to_lowercase();
    let mut found: Vec<&User> = people
        .iter()
        .filter(|u| match &q.groups {
            None => true,
            Some(g) => u.groups.iter().any(|x| g.contains(x)),
        })
        .filter(|u| {
            if text.is_empty() {
                true
            } else if text.chars().count() < 3 {
                let key = match q.sort {
                    UserSort::Name => &u.display_name,
                    UserSort::Uid => u.uid.as_str(),
                    UserSort::EmployeeId => &u.employee_id,
                };
                key.to_lowercase().starts_with(&text)
            } else {
                let mut fields = vec![
                    u.uid.as_str(),
                    &u.display_name,
                    &u.email,
                    &u.employee_id,
                    &u.department,
                ];
                fields.extend(u.groups.iter().map(String::as_str));
                fields.iter().any(|f| f.to_lowercase().contains(&text))
            }
        })
        .collect();
    let key = |u: &User| match q.sort {
        UserSort::Name => u.display_name.to_lowercase(),
        UserSort::Uid => u.uid.as_str().to_lowercase(),
        UserSort::EmployeeId => u.employee_id.to_lowercase(),
    };
    found.sort_by(|a, b| (key(a), &a.uid.0).cmp(&(key(b), &b.uid.0)));
    found
        .into_iter()
        .skip(q.offset as usize)
        .take(q.limit as usize)
        .map(|u| u.uid.0.clone())
        .collect()
}

async fn oracle(store: &SqlStore) {
    let people = crowd(12_000);
    commit(store, people.iter().cloned().map(new).collect())
        .await
        .unwrap();
    let scopes: [Option<&[&str]>; 5] = [
        None,
        Some(&["finance"]),
        Some(&["staff"]),
        Some(&["vip"]),
        Some(&["engineering", "staff"]),
    ];
    // common (walks the sort index), rare (reads candidates), short, empty, a miss
    let texts = [
        "",
        "smith",
        "example.org",
        "quist",
        "novak",
        "a",
        "ok",
        "u0",
        "u0012",
        "e0",
        "nobody",
        "staff",
        " ",
    ];
    for text in texts {
        for scope in scopes {
            for sort in [UserSort::Name, UserSort::Uid, UserSort::EmployeeId] {
                // a deep page: the walk's budget runs out and the matches are sorted instead
                for (offset, limit) in [(0, 51), (100, 26), (9_990, 26)] {
                    let q = UserQuery {
                        text: text.into(),
                        sort,
                        offset,
                        limit,
                        groups: scope.map(|g| g.iter().map(|x| x.to_string()).collect()),
                    };
                    assert_eq!(uids(store, q.clone()).await, expected(&people, &q), "{q:?}");
                }
            }
        }
    }
}

/// A database of the release before versioned migrations, with users: opening it makes them
/// searchable.
async fn upgrade_keeps_users_searchable(url: &str, blob: &str) {
    use sqlx::Executor;
    sqlx::any::install_default_drivers();
    let old = sqlx::AnyPool::connect(url).await.unwrap();
    let schema = include_str!("fixtures/schema-before-migrations.sql").replace("{{BLOB}}", blob);
    for statement in schema
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
        .filter(|s| !s.trim().is_empty())
    {
        old.execute(statement).await.unwrap();
    }
    let mut before = crowd(1_200);
    before[3].source = UserSource::Ldap;
    for u in &before {
        sqlx::query("INSERT INTO users (uid, display_name, search, data) VALUES ($1, $2, $3, $4)")
            .bind(u.uid.as_str())
            .bind(&u.display_name)
            .bind(u.display_name.to_lowercase())
            .bind(serde_json::to_string(u).unwrap())
            .execute(&old)
            .await
            .unwrap();
    }
    old.close().await;

    let store = SqlStore::open(url).await.unwrap();
    for text in ["smith", "u0001", "finance", "ok"] {
        let q = UserQuery {
            groups: Some(vec!["finance".into(), "staff".into()]),
            ..query(text)
        };
        assert_eq!(
            uids(&store, q.clone()).await,
            expected(&before, &q),
            "{q:?}"
        );
    }
    assert_eq!(
        store.uids_of_source(UserSource::Ldap).await.unwrap(),
        vec![(before[3].uid.clone(), false)]
    );
    // new writes go on from there
    store
        .put_user(&person("new1", "Newt Quist", "N1", &["finance"]))
        .await
        .unwrap();
    assert!(uids(&store, query("newt")).await == ["new1"]);
    store.close().await;
}

fn sqlite_url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join(name).display())
}

#[tokio::test]
async fn sqlite_user_search() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open(&sqlite_url(&dir, "s.db")).await.unwrap();
    searches(&store).await;
    let store = SqlStore::open(&sqlite_url(&dir, "o.db")).await.unwrap();
    oracle(&store).await;
}

#[tokio::test]
async fn sqlite_upgrade_keeps_users_searchable() {
    let dir = tempfile::tempdir().unwrap();
    upgrade_keeps_users_searchable(&sqlite_url(&dir, "old.db"), "BLOB").await;
}

fn postgres_base(test: &str) -> Option<String> {
    match std::env::var("TESSERA_TEST_DATABASE_URL") {
        Ok(base) => Some(base),
        Err(_) => {
            assert!(
                std::env::var("TESSERA_REQUIRE_POSTGRES").is_err(),
                "TESSERA_REQUIRE_POSTGRES is set but TESSERA_TEST_DATABASE_URL is not"
            );
            eprintln!("{test}: TESSERA_TEST_DATABASE_URL not set, PostgreSQL not tested");
            None
        }
    }
}

#[tokio::test]
async fn postgres_user_search() {
    let Some(base) = postgres_base("postgres_user_search") else {
        return;
    };
    let url = tessera_store::testing::fresh_postgres_database(&base).await;
    let store = SqlStore::open(&url).await.unwrap();
    searches(&store).await;
    store.close().await;
    tessera_store::testing::drop_postgres_database(&base, &url).await;
    let url = tessera_store::testing::fresh_postgres_database(&base).await;
    let store = SqlStore::open(&url).await.unwrap();
    oracle(&store).await;
    store.close().await;
    tessera_store::testing::drop_postgres_database(&base, &url).await;
}

#[tokio::test]
async fn postgres_upgrade_keeps_users_searchable() {
    let Some(base) = postgres_base("postgres_upgrade_keeps_users_searchable") else {
        return;
    };
    let url = tessera_store::testing::fresh_postgres_database(&base).await;
    upgrade_keeps_users_searchable(&url, "BYTEA").await;
    tessera_store::testing::drop_postgres_database(&base, &url).await;
}

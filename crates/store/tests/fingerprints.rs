//! A person's fingerprints in the store, on every backend: written and removed through units of
//! work (with their audit events, all or nothing), read back byte for byte with their synthetic
//! flag, refused for a person who does not exist, and gone with the person.

use std::collections::BTreeMap;
use tessera_core::audit;
use tessera_core::changes::{Change, Changes, UserWas};
use tessera_core::fingerprints;
use tessera_core::fips201::Fingerprints;
use tessera_core::ids::*;
use tessera_core::model::*;
use tessera_core::ports::{NewAuditEvent, Store, StoreError};
use tessera_store::SqlStore;

fn person(uid: &str) -> User {
    User {
        uid: UserId::new(uid),
        given_name: "Jane".into(),
        family_name: "Doe".into(),
        display_name: "Jane Doe".into(),
        email: String::new(),
        upn: String::new(),
        employee_id: String::new(),
        department: String::new(),
        title: String::new(),
        groups: vec!["staff".into()],
        source: UserSource::Local,
        attributes: BTreeMap::new(),
        has_photo: false,
        disabled: false,
        photo_digest: None,
    }
}

fn event(uid: &str) -> NewAuditEvent {
    NewAuditEvent {
        at: Timestamp(1),
        code: audit::FINGERPRINTS_ENROLLED.code,
        name: audit::FINGERPRINTS_ENROLLED.name,
        operator: None,
        user: Some(UserId::new(uid)),
        device: None,
        operation: None,
        details: serde_json::json!({}),
    }
}

fn put(uid: &str, fingerprints: Fingerprints) -> Change {
    Change::PutFingerprints {
        uid: UserId::new(uid),
        fingerprints,
        at: Timestamp(1_700_000_000),
    }
}

async fn audit_count(store: &SqlStore) -> usize {
    store.audit_events(None, 10_000).await.unwrap().len()
}

async fn fingerprints_conform(store: &SqlStore) {
    let jane = UserId::new("jdoe");
    let mut changes = Changes::new();
    changes.push(Change::PutUser {
        user: person("jdoe"),
        was: UserWas::New,
    });
    store.commit(&changes).await.unwrap();
    assert_eq!(store.fingerprints(&jane).await.unwrap(), None);

    // Enrolled with its audit event, in one unit; read back byte for byte (every byte value).
    let captured: Vec<u8> = (0..=255u8).chain(fingerprints::synthetic("x")).collect();
    let mut changes = Changes::new();
    changes.push(put(
        "jdoe",
        Fingerprints {
            incits_378: captured.clone(),
            synthetic: false,
        },
    ));
    changes.audit(event("jdoe"));
    let before = audit_count(store).await;
    store.commit(&changes).await.unwrap();
    assert_eq!(audit_count(store).await, before + 1);
    let stored = store.fingerprints(&jane).await.unwrap().unwrap();
    assert_eq!(stored.incits_378, captured);
    assert!(!stored.synthetic);

    // Enrolled again: replaced, with the flag.
    let demo = Fingerprints {
        incits_378: fingerprints::synthetic("jdoe"),
        synthetic: true,
    };
    let mut changes = Changes::new();
    changes.push(put("jdoe", demo.clone()));
    store.commit(&changes).await.unwrap();
    assert_eq!(store.fingerprints(&jane).await.unwrap(), Some(demo.clone()));

    // For a person who does not exist (deleted meanwhile): stale, and the unit's event with it.
    let mut changes = Changes::new();
    changes.push(put("nobody", demo.clone()));
    changes.audit(event("nobody"));
    let before = audit_count(store).await;
    let err = store.commit(&changes).await.unwrap_err();
    assert!(matches!(err, StoreError::Stale(_)), "{err:?}");
    assert_eq!(audit_count(store).await, before);
    assert_eq!(store.fingerprints(&"nobody".into()).await.unwrap(), None);

    // Removed.
    let mut changes = Changes::new();
    changes.push(Change::DeleteFingerprints(jane.clone()));
    store.commit(&changes).await.unwrap();
    assert_eq!(store.fingerprints(&jane).await.unwrap(), None);

    // Deleting a person removes their fingerprints.
    let mut changes = Changes::new();
    changes.push(put("jdoe", demo.clone()));
    store.commit(&changes).await.unwrap();
    let was = Box::new(store.user(&jane).await.unwrap());
    let mut changes = Changes::new();
    changes.push(Change::DeleteUser { was, cards: vec![] });
    store.commit(&changes).await.unwrap();
    assert_eq!(store.fingerprints(&jane).await.unwrap(), None);
    // and a person created again under the uid starts without them
    let mut changes = Changes::new();
    changes.push(Change::PutUser {
        user: person("jdoe"),
        was: UserWas::New,
    });
    store.commit(&changes).await.unwrap();
    assert_eq!(store.fingerprints(&jane).await.unwrap(), None);
}

#[tokio::test]
async fn sqlite_keeps_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = SqlStore::open(&url).await.unwrap();
    fingerprints_conform(&store).await;
}

#[tokio::test]
async fn postgres_keeps_fingerprints() {
    let Ok(base) = std::env::var("TESSERA_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("TESSERA_REQUIRE_POSTGRES").is_err(),
            "TESSERA_REQUIRE_POSTGRES is set but TESSERA_TEST_DATABASE_URL is not"
        );
        eprintln!("postgres_keeps_fingerprints: TESSERA_TEST_DATABASE_URL not set");
        return;
    };
    let url = tessera_store::testing::fresh_postgres_database(&base).await;
    let store = SqlStore::open(&url).await.unwrap();
    fingerprints_conform(&store).await;
    store.close().await;
    tessera_store::testing::drop_postgres_database(&base, &url).await;
}

//! The Users page over HTTP: the columns, a disabled person's badge, the sort choice and the
//! Previous/Next links of a search longer than a page.

mod support;

use tessera_core::ports::Store;
use tessera_server::{Options, Tessera};

use support::portal::Portal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_page_sorts_pages_and_shows_who_is_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let (t, password) = Tessera::open(&Options::new(dir.path().join("data")))
        .await
        .unwrap();
    // The demo's 50 people and one more, who has left: 51 is one more than a page.
    let mut left = t.store.user(&"jdoe".into()).await.unwrap();
    left.uid = "zz-left".into();
    left.display_name = "Zed Left".into();
    left.employee_id = "000001".into();
    left.groups = vec!["alumni".into()];
    left.disabled = true;
    t.store.put_user(&left).await.unwrap();
    let portal = Portal::start(t.clone()).await;
    portal.sign_in(password.unwrap().expose()).await;

    let (status, _, page) = portal.get("/users").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Jane Doe") && page.contains("@tessera.example"),
        "{page}"
    );
    assert!(
        page.contains("id=\"next\""),
        "51 people need a second page: {page}"
    );
    assert!(!page.contains("id=\"previous\""));
    assert!(!page.contains("Zed Left"), "Z sorts last by name");

    let (_, _, second) = portal.get("/users?q=&sort=name&page=2").await;
    assert!(
        second.contains("Zed Left") && second.contains(">Disabled<"),
        "{second}"
    );
    assert!(second.contains("alumni"), "the groups column");
    assert!(second.contains("id=\"previous\"") && !second.contains("id=\"next\""));

    // by employee id, the one who left comes first
    let (_, _, by_id) = portal.get("/users?sort=employee_id").await;
    assert!(by_id.contains("Zed Left"), "{by_id}");
    assert!(by_id.contains("value=\"employee_id\" selected"));

    // a search: a fragment of a name, and two characters as a prefix of the sorted column
    let (_, _, found) = portal.get("/users?q=zed+le").await;
    assert!(
        found.contains("zz-left") && !found.contains("jdoe"),
        "{found}"
    );
    let (_, _, found) = portal.get("/users?q=ze").await;
    assert!(found.contains("zz-left") && !found.contains("id=\"next\""));
    let (_, _, found) = portal.get("/users?q=zz&sort=uid").await;
    assert!(
        found.contains("zz-left") && !found.contains("/users/jdoe"),
        "{found}"
    );
    let (_, _, none) = portal.get("/users?q=nobody+at+all").await;
    assert!(none.contains("No user matches"));
}

//! People through the portal's forms, as a browser sends them (CSRF token included): a local
//! person added, changed, disabled with a choice for their cards, enabled and deleted; a CSV
//! import's dry run, import and second import of the same file; photos uploaded (EXIF gone, the
//! crop applied), refused, and sent in a ZIP beside the CSV. Operators without `ManageUsers` are
//! refused, and those whose scope does not hold the person are told "not found".

mod support;

use image::{ImageEncoder, Rgb, RgbImage};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use std::io::Write;
use std::time::Duration;
use support::portal::{csrf, Portal};
use tessera_core::changes::{Change, Changes};
use tessera_core::ids::{RoleId, UserId};
use tessera_core::model::{BuiltinRole, Operator, Scope, User, UserSource};
use tessera_core::ports::Store;
use tessera_core::{DeviceState, Reason};
use tessera_server::Tessera;

/// A signed-in operator's browser.
struct Session {
    portal: Portal,
    csrf: String,
}

async fn session(
    t: &Tessera,
    base: &Portal,
    name: &str,
    role: BuiltinRole,
    scope: Scope,
) -> Session {
    let mut operator = Operator::new(
        name,
        name,
        tessera_server::auth::hash_password(&tessera_core::Password::new("people password 1")),
        RoleId::new(role.id()),
    );
    operator.scope = scope;
    let mut changes = Changes::new();
    changes.push(Change::PutOperator(operator));
    t.store.commit(&changes).await.unwrap();
    let portal = Portal {
        base: base.base.clone(),
        http: reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap(),
    };
    let (_, _, page) = portal.get("/login").await;
    let (_, url, _) = portal
        .post(
            "/login",
            &[
                ("csrf", &csrf(&page)),
                ("operator", name),
                ("password", "people password 1"),
            ],
        )
        .await;
    assert_ne!(url, "/login", "{name} signs in");
    let (_, _, page) = portal.get("/account/password").await;
    Session {
        csrf: csrf(&page),
        portal,
    }
}

impl Session {
    async fn get(&self, path: &str) -> (StatusCode, String, String) {
        self.portal.get(path).await
    }

    /// Posts a form with the session's CSRF token.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String, String) {
        let mut fields = vec![("csrf", self.csrf.as_str())];
        fields.extend_from_slice(form);
        self.portal.post(path, &fields).await
    }

    /// Posts a multipart form: the CSRF token first, then `fields`, then `files` as
    /// (field, file name, bytes).
    async fn upload(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, Vec<u8>)],
    ) -> (StatusCode, String, String) {
        let mut form = Form::new().text("csrf", self.csrf.clone());
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        for (field, name, bytes) in files {
            form = form.part(
                field.to_string(),
                Part::bytes(bytes.clone()).file_name(name.to_string()),
            );
        }
        let res = self
            .portal
            .http
            .post(format!("{}{path}", self.portal.base))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let url = res.url().path().to_owned();
        (res.status(), url, res.text().await.unwrap())
    }

    /// Waits for an import run (its page address) to end; its page then.
    async fn finish(&self, run: &str) -> String {
        assert!(run.starts_with("/users/import/"), "not a run: {run}");
        for _ in 0..1200 {
            let (status, _, body) = self.get(&format!("{run}/progress")).await;
            assert_eq!(status, 200, "{body}");
            let p: serde_json::Value = serde_json::from_str(&body).unwrap();
            if p["state"] != "running" {
                let (_, _, page) = self.get(run).await;
                return page;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the import did not end");
    }
}

async fn start() -> (tempfile::TempDir, Tessera, Portal, Session) {
    let (dir, t) = support::open().await;
    let base = Portal::start(t.clone()).await;
    let admin = session(
        &t,
        &base,
        "people-admin",
        BuiltinRole::Administrator,
        Scope::All,
    )
    .await;
    (dir, t, base, admin)
}

async fn user(t: &Tessera, uid: &str) -> Option<User> {
    t.store.user(&UserId::new(uid)).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_person_is_added_changed_disabled_enabled_and_deleted() {
    let (_dir, t, _base, admin) = start().await;

    // A refused form keeps what was typed, with the sentence beside it.
    let (status, url, page) = admin.get("/users/new").await;
    assert_eq!((status, url.as_str()), (StatusCode::OK, "/users/new"));
    assert!(page.contains("id=\"person-form\""));
    let (status, url, page) = admin
        .post(
            "/users/new",
            &[
                ("uid", "jsmith"),
                ("given_name", "John"),
                ("family_name", "Smith"),
                ("email", "not an address"),
                ("groups", "staff, it"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(url, "/users/new");
    assert!(page.contains("is not an email address"), "{page}");
    assert!(page.contains("REQ0001"));
    assert!(page.contains("value=\"jsmith\"") && page.contains("value=\"not an address\""));
    assert!(page.contains("value=\"staff, it\""));
    let (status, _, page) = admin
        .post(
            "/users/new",
            &[
                ("uid", "jsmith"),
                ("attributes", "badge colour=blue\nno equals sign"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Line 2 of the free attributes"), "{page}");
    assert!(user(&t, "jsmith").await.is_none(), "nothing was written");

    let (status, url, page) = admin
        .post(
            "/users/new",
            &[
                ("uid", "jsmith"),
                ("given_name", "John"),
                ("family_name", "Smith"),
                ("email", "john.smith@example.org"),
                ("employee_id", "E-7"),
                ("groups", "staff, it"),
                ("attributes", "Badge Colour = blue\n\ncost centre=CC-7"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(url, "/users/jsmith");
    assert!(page.contains("The person was added."));
    assert!(page.contains("John Smith") && page.contains("badge colour") && page.contains("CC-7"));
    assert!(page.contains("Tessera (added in the portal)"));
    let john = user(&t, "jsmith").await.unwrap();
    assert_eq!(john.source, UserSource::Local);
    assert_eq!(john.display_name, "John Smith");
    assert_eq!(john.groups, vec!["it", "staff"]);
    assert_eq!(john.attributes["badge colour"], "blue");
    // The same uid again is refused, on the form.
    let (status, _, page) = admin.post("/users/new", &[("uid", "jsmith")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("already a person with the uid jsmith"),
        "{page}"
    );

    // Changed: the form comes filled in; the uid stays.
    let (status, _, page) = admin.get("/users/jsmith/edit").await;
    assert_eq!(status, 200);
    assert!(page.contains("value=\"john.smith@example.org\"") && page.contains("cost centre=CC-7"));
    let (status, url, _) = admin
        .post(
            "/users/jsmith/edit",
            &[
                ("uid", "someone-else"),
                ("given_name", "John"),
                ("family_name", "Smith"),
                ("title", "Engineer"),
                ("groups", "it"),
            ],
        )
        .await;
    assert_eq!((status, url.as_str()), (StatusCode::OK, "/users/jsmith"));
    let john = user(&t, "jsmith").await.unwrap();
    assert_eq!(john.title, "Engineer");
    assert_eq!(john.groups, vec!["it"]);
    assert!(john.attributes.is_empty() && john.email.is_empty());
    assert!(user(&t, "someone-else").await.is_none());

    // Jane has an Active card. The Disable form proposes the configured rule (Terminate
    // here), lists her card, and the operator's choice (Suspend) is what happens.
    let admin_actor = support::actor(BuiltinRole::Administrator);
    let job = support::issue(&t, &admin_actor, "piv-standard", "246810").await;
    let card = job.device.unwrap();
    tessera_core::devices::activate(&t.services, &admin_actor, &card, None)
        .await
        .unwrap();
    let serial = t.store.device(&card).await.unwrap().serial;
    let (status, _, _) = admin
        .post(
            "/settings",
            &[
                ("pin_mode", "disguised"),
                ("password_min_length", "12"),
                ("deprovision", "terminate"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let (_, _, page) = admin.get("/settings").await;
    assert!(
        page.contains("value=\"terminate\" selected"),
        "the settings page shows the rule"
    );
    let (status, _, page) = admin.get("/users/jdoe/disable").await;
    assert_eq!(status, 200);
    assert!(page.contains(&serial), "the form lists her live card");
    assert!(
        page.contains("value=\"terminate\" class=\"inline-check\" checked"),
        "{page}"
    );
    let (status, url, page) = admin
        .post("/users/jdoe/disable", &[("cards", "suspend")])
        .await;
    assert_eq!(
        (status, url.as_str()),
        (StatusCode::OK, "/users/jdoe"),
        "{page}"
    );
    assert!(page.contains("id=\"disabled-badge\""));
    assert!(page.contains("suspended when Jane Doe left"), "{page}");
    assert!(
        !page.contains("id=\"add-device\""),
        "a disabled person gets no new card"
    );
    let jane = user(&t, "jdoe").await.unwrap();
    assert!(jane.disabled);
    let device = t.store.device(&card).await.unwrap();
    assert_eq!(
        (device.state, device.reason),
        (DeviceState::Suspended, Reason::Left)
    );
    let (status, _, page) = admin
        .post("/users/jdoe/disable", &[("cards", "keep")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "already disabled: {page}");
    let (status, _, _) = admin
        .post("/users/jdoe/disable", &[("cards", "shred")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Enabled again: the card stays suspended, to be resumed from her page.
    let (status, _, page) = admin.post("/users/jdoe/enable", &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("The person was enabled again.") && !page.contains("disabled-badge"));
    assert!(page.contains("suspended when Jane Doe left: it can be resumed"));
    assert!(!user(&t, "jdoe").await.unwrap().disabled);
    assert_eq!(
        t.store.device(&card).await.unwrap().state,
        DeviceState::Suspended
    );

    // Delete: Jane has a live card (USR0002); John has none.
    let (status, _, page) = admin.get("/users/jdoe/delete").await;
    assert_eq!(status, 200);
    assert!(page.contains(&serial) && page.contains("USR0002"));
    let (status, _, page) = admin.post("/users/jdoe/delete", &[]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("USR0002") && page.contains(&serial), "{page}");
    assert!(user(&t, "jdoe").await.is_some());
    let (status, _, page) = admin.get("/users/jsmith/delete").await;
    assert_eq!(status, 200);
    assert!(page.contains("No live card."));
    let (status, _, page) = admin.post("/users/jsmith/delete", &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("jsmith was deleted"));
    assert!(user(&t, "jsmith").await.is_none());
    let (status, _, _) = admin.get("/users/jsmith").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_without_the_permission_or_the_scope_are_refused() {
    let (_dir, t, base, _admin) = start().await;
    let jane = user(&t, "jdoe").await.unwrap();
    let issuer = session(&t, &base, "issuer", BuiltinRole::Issuer, Scope::All).await;
    let outsider = session(
        &t,
        &base,
        "outsider",
        BuiltinRole::Administrator,
        Scope::Groups(vec!["no-such-group".into()]),
    )
    .await;
    for (path, form) in [
        ("/users/new", vec![("uid", "x1")]),
        ("/users/jdoe/edit", vec![("given_name", "J")]),
        ("/users/jdoe/disable", vec![("cards", "keep")]),
        ("/users/jdoe/enable", vec![]),
        ("/users/jdoe/delete", vec![]),
        ("/users/jdoe/photo/remove", vec![]),
    ] {
        let (status, _, page) = issuer.post(path, &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {page}");
        if path != "/users/new" {
            let (status, _, page) = outsider.post(path, &form).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path} out of scope: {page}");
        }
    }
    for path in [
        "/users/new",
        "/users/jdoe/edit",
        "/users/jdoe/disable",
        "/users/import",
    ] {
        assert_eq!(issuer.get(path).await.0, StatusCode::FORBIDDEN, "{path}");
    }
    for path in [
        "/users/jdoe/edit",
        "/users/jdoe/disable",
        "/users/jdoe/delete",
    ] {
        assert_eq!(outsider.get(path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let photo = ("photo", "me.jpg", portrait_jpeg(200, 250));
    let (status, _, _) = issuer
        .upload("/users/jdoe/photo", &[], std::slice::from_ref(&photo))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = outsider.upload("/users/jdoe/photo", &[], &[photo]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let csv = ("csv", "p.csv", b"uid\nx1\n".to_vec());
    let (status, _, _) = issuer
        .upload("/users/import", &[("action", "import")], &[csv])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The User page offers the people actions only to those who may.
    let (_, _, page) = issuer.get("/users/jdoe").await;
    assert!(!page.contains("person-actions") && !page.contains("photo-form"));
    assert!(!page.contains("href=\"/users/import\""));
    assert_eq!(user(&t, "jdoe").await.unwrap(), jane, "nothing changed");
    assert!(user(&t, "x1").await.is_none());

    // An operator scoped to a group adds people in it, not beyond.
    let scoped = session(
        &t,
        &base,
        "it-admin",
        BuiltinRole::Administrator,
        Scope::Groups(vec!["it".into()]),
    )
    .await;
    let (status, _, page) = scoped
        .post("/users/new", &[("uid", "x2"), ("groups", "finance")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        page.contains("beyond your scope") && page.contains("value=\"finance\""),
        "{page}"
    );
    let (status, url, _) = scoped
        .post("/users/new", &[("uid", "x2"), ("groups", "it")])
        .await;
    assert_eq!((status, url.as_str()), (StatusCode::OK, "/users/x2"));
}

/// A portrait: the left 150 columns red, the rest blue.
fn portrait_jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, _| {
        if x < 150 {
            Rgb([220, 20, 20])
        } else {
            Rgb([20, 20, 220])
        }
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
        .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// `jpeg` with an APP1 Exif segment (a TIFF header and a location string) after its SOI.
fn with_exif(jpeg: &[u8]) -> Vec<u8> {
    let mut payload = b"Exif\0\0II*\0\x08\0\0\0\0\0\0\0".to_vec();
    payload.extend_from_slice(b"GPSLatitude 48.8584 N GPSLongitude 2.2945 E");
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_upload_loses_its_exif_and_a_non_image_is_refused() {
    let (_dir, t, _base, admin) = start().await;
    let jpeg = with_exif(&portrait_jpeg(400, 500));
    assert!(contains(&jpeg, b"Exif\0\0") && contains(&jpeg, b"GPSLatitude"));
    image::load_from_memory(&jpeg).expect("the test's JPEG with EXIF is a valid JPEG");

    // Cropped to the blue part, in the photo's own pixels.
    let (status, url, page) = admin
        .upload(
            "/users/jdoe/photo",
            &[
                ("crop_x", "200"),
                ("crop_y", "40"),
                ("crop_width", "160"),
                ("crop_height", "200"),
            ],
            &[("photo", "jane.jpg", jpeg.clone())],
        )
        .await;
    assert_eq!(
        (status, url.as_str()),
        (StatusCode::OK, "/users/jdoe"),
        "{page}"
    );
    assert!(page.contains("The photo was saved.") && page.contains("id=\"user-photo\""));
    let res = admin
        .portal
        .http
        .get(format!("{}/users/jdoe/photo", admin.portal.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    let stored = res.bytes().await.unwrap().to_vec();
    assert!(stored.starts_with(&[0xFF, 0xD8, 0xFF]));
    assert!(!contains(&stored, b"Exif"), "the EXIF segment is gone");
    assert!(!contains(&stored, b"GPSLatitude"), "the location is gone");
    let photo = image::load_from_memory(&stored).unwrap().to_rgb8();
    assert_eq!(photo.dimensions(), (160, 200), "the crop was applied");
    let [r, _, b] = photo.get_pixel(5, 5).0;
    assert!(
        b > 150 && r < 80,
        "the cropped part is the blue one: {:?}",
        photo.get_pixel(5, 5)
    );
    assert!(user(&t, "jdoe").await.unwrap().photo_digest.is_none());

    // Not an image: USR0004, and the photo stays.
    let (status, _, page) = admin
        .upload(
            "/users/jdoe/photo",
            &[],
            &[("photo", "notes.txt", b"these are not pixels".to_vec())],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("USR0004") && page.contains("not a JPEG or PNG"),
        "{page}"
    );
    assert_eq!(
        t.store.photo(&UserId::new("jdoe")).await.unwrap().unwrap(),
        stored
    );
    // A crop outside the photo: USR0004 too.
    let (status, _, page) = admin
        .upload(
            "/users/jdoe/photo",
            &[
                ("crop_x", "300"),
                ("crop_y", "0"),
                ("crop_width", "160"),
                ("crop_height", "200"),
            ],
            &[("photo", "jane.jpg", jpeg.clone())],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("USR0004") && page.contains("does not fit"),
        "{page}"
    );
    // Without a crop (no script in the browser) the whole photo is taken, scaled to fit.
    let (status, _, _) = admin
        .upload("/users/jdoe/photo", &[], &[("photo", "jane.jpg", jpeg)])
        .await;
    assert_eq!(status, 200);
    let whole = t.store.photo(&UserId::new("jdoe")).await.unwrap().unwrap();
    assert_eq!(
        image::load_from_memory(&whole)
            .unwrap()
            .to_rgb8()
            .dimensions(),
        (400, 500)
    );
    // Larger than a photo may be: refused before anything is read into the use case.
    let (status, _, page) = admin
        .upload(
            "/users/jdoe/photo",
            &[],
            &[("photo", "huge.jpg", vec![0xFF; 10 * 1024 * 1024 + 1])],
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(page.contains("too large"), "{page}");

    let (status, _, page) = admin.post("/users/jdoe/photo/remove", &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("The photo was removed.") && page.contains("user-photo-none"));
    assert!(!user(&t, "jdoe").await.unwrap().has_photo);
    assert_eq!(
        admin.get("/users/jdoe/photo").await.0,
        StatusCode::NOT_FOUND
    );
}

const PEOPLE_CSV: &str = "Personnel No,First,Last,Mail,Dept,Groups,attr.Badge Colour\n\
e1001,Ada,Lovelace,ada@example.org,Research,staff;research,blue\n\
e1002,Alan,Turing,alan@example.org,Research,staff,green\n\
e1003,Grace,Hopper,grace@example.org,Engineering,staff,red\n\
a line,with too few fields\n\
.e1004,Dot,Start,,,,\n\
e1001,Ada,Again,,,,\n";

fn mapping() -> Vec<(&'static str, &'static str)> {
    vec![
        ("map.uid", "Personnel No"),
        ("map.given_name", "First"),
        ("map.family_name", "Last"),
        ("map.email", "Mail"),
        ("map.department", "Dept"),
    ]
}

async fn csv_people(t: &Tessera) -> Vec<User> {
    let mut out = Vec::new();
    for uid in ["e1001", "e1002", "e1003"] {
        out.extend(user(t, uid).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_import_is_tried_dry_then_imported_once() {
    let (_dir, t, base, admin) = start().await;
    let (status, _, page) = admin.get("/users/import").await;
    assert_eq!(status, 200);
    assert!(page.contains("name=\"map.uid\" id=\"map-uid\" value=\"\""));

    let mut fields = mapping();
    fields.push(("action", "dry_run"));
    let (status, run, page) = admin
        .upload(
            "/users/import",
            &fields,
            &[("csv", "hr-export.csv", PEOPLE_CSV.as_bytes().to_vec())],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let page = admin.finish(&run).await;
    assert!(page.contains("nothing was written"), "{page}");
    assert!(page.contains("3 created, 0 updated"), "{page}");
    for (line, why) in [
        ("line 5", "has 2 fields where the header has 7"),
        ("line 6", "the uid \".e1004\" must be"),
        ("line 7", "the uid e1001 is already on line 2"),
    ] {
        let row = format!("<tr><td>{line}</td>");
        let at = page
            .find(&row)
            .unwrap_or_else(|| panic!("{line} is listed: {page}"));
        let end = at + page[at..].find("</tr>").unwrap();
        assert!(
            page[at..end].contains(&why.replace('"', "&quot;")) || page[at..end].contains(why),
            "{line}: {}",
            &page[at..end]
        );
    }
    assert!(csv_people(&t).await.is_empty(), "a dry run writes nothing");
    let (_, _, form) = admin.get("/users/import").await;
    assert!(
        !form.contains("value=\"Personnel No\""),
        "a dry run saves no mapping"
    );

    // Someone else cannot follow or apply the run.
    let other = session(
        &t,
        &base,
        "other-admin",
        BuiltinRole::Administrator,
        Scope::All,
    )
    .await;
    assert_eq!(other.get(&run).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        other.post(&format!("{run}/apply"), &[]).await.0,
        StatusCode::GONE
    );

    // The report's Import button imports the same files.
    let (status, applied, page) = admin.post(&format!("{run}/apply"), &[]).await;
    assert_eq!(status, 200, "{page}");
    assert_ne!(applied, run);
    let page = admin.finish(&applied).await;
    assert!(
        page.contains("Imported.") && page.contains("3 created"),
        "{page}"
    );
    let people = csv_people(&t).await;
    assert_eq!(people.len(), 3);
    let ada = &people[0];
    assert_eq!(ada.source, UserSource::Csv);
    assert_eq!(
        (ada.given_name.as_str(), ada.department.as_str()),
        ("Ada", "Research")
    );
    assert_eq!(ada.groups, vec!["research", "staff"]);
    assert_eq!(ada.attributes["badge colour"], "blue");
    // The dry run's files went with the import.
    assert_eq!(
        admin.post(&format!("{run}/apply"), &[]).await.0,
        StatusCode::GONE
    );
    // The mapping is offered again.
    let (_, _, form) = admin.get("/users/import").await;
    assert!(form.contains("value=\"Personnel No\""), "{form}");

    // The same file again changes nothing.
    let mut fields = mapping();
    fields.push(("action", "import"));
    let (_, run, _) = admin
        .upload(
            "/users/import",
            &fields,
            &[("csv", "hr-export.csv", PEOPLE_CSV.as_bytes().to_vec())],
        )
        .await;
    let page = admin.finish(&run).await;
    assert!(
        page.contains("0 created, 0 updated, 0 disabled, 0 enabled again, 3 unchanged"),
        "{page}"
    );
    assert_eq!(csv_people(&t).await, people);

    // A CSV person is changed at their source: no edit form, USR0003.
    let (status, _, page) = admin.get("/users/e1001/edit").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Kept by a CSV import") && !page.contains("person-form"),
        "{page}"
    );
    let (status, _, page) = admin
        .post("/users/e1001/edit", &[("given_name", "Augusta")])
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("USR0003"));
    let (_, _, page) = admin.get("/users/e1001").await;
    assert!(page.contains("a CSV import") && !page.contains("id=\"edit-person\""));

    // A complete list without Grace disables her.
    let without_grace: String = PEOPLE_CSV
        .lines()
        .filter(|l| !l.starts_with("e1003"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut fields = mapping();
    fields.extend([("action", "import"), ("complete", "on")]);
    let (_, run, _) = admin
        .upload(
            "/users/import",
            &fields,
            &[("csv", "hr.csv", without_grace.into_bytes())],
        )
        .await;
    let page = admin.finish(&run).await;
    assert!(page.contains("1 disabled"), "{page}");
    assert!(user(&t, "e1003").await.unwrap().disabled);
    assert!(!user(&t, "e1001").await.unwrap().disabled);

    // A file that cannot be read at all: USR0001, with the way back to the form.
    let (_, run, _) = admin
        .upload(
            "/users/import",
            &[("action", "dry_run")],
            &[(
                "csv",
                "latin1.csv",
                b"uid,display_name\nx,Jos\xe9\n".to_vec(),
            )],
        )
        .await;
    admin.finish(&run).await;
    let (status, _, page) = admin.get(&run).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("USR0001") && page.contains("not UTF-8") && page.contains("Import again")
    );
    // No file chosen.
    let (status, _, page) = admin
        .upload("/users/import", &[("action", "dry_run")], &[])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Choose the CSV file"));
}

fn png(width: u32, height: u32, colour: [u8; 3]) -> Vec<u8> {
    let img = RgbImage::from_pixel(width, height, Rgb(colour));
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn zip_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in files {
        w.start_file(
            *name,
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated),
        )
        .unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_come_in_a_zip_beside_the_csv() {
    let (_dir, t, _base, admin) = start().await;
    let csv = "uid,display_name,photo\n\
               p1,Pat One,p1.jpg\n\
               p2,Pat Two,p2.png\n\
               p3,Pat Three,missing.jpg\n\
               p4,Pat Four,p4.jpg\n\
               p5,Pat Five,\n";
    let zip = zip_of(&[
        ("p1.jpg", with_exif(&portrait_jpeg(240, 300))),
        ("p2.png", png(120, 150, [10, 160, 10])),
        ("folder/p4.jpg", portrait_jpeg(240, 300)),
    ]);
    let files = [
        ("csv", "people.csv", csv.as_bytes().to_vec()),
        ("photos", "photos.zip", zip),
    ];
    let (status, run, page) = admin
        .upload("/users/import", &[("action", "import")], &files)
        .await;
    assert_eq!(status, 200, "{page}");
    let page = admin.finish(&run).await;
    // p3's and p4's photos cannot be had: they lose only their photos
    assert!(page.contains("5 created"), "{page}");
    assert!(page.contains("With a ZIP of photos."));
    assert!(
        page.contains("the photo file &quot;missing.jpg&quot; was not found")
            || page.contains("the photo file \"missing.jpg\" was not found"),
        "{page}"
    );
    assert!(page.contains("inside a folder (folder/p4.jpg)"), "{page}");
    for (uid, has) in [
        ("p1", true),
        ("p2", true),
        ("p3", false),
        ("p4", false),
        ("p5", false),
    ] {
        let u = user(&t, uid).await.unwrap();
        assert_eq!(u.has_photo, has, "{uid}");
        let photo = t.store.photo(&UserId::new(uid)).await.unwrap();
        assert_eq!(photo.is_some(), has);
        if let Some(photo) = photo {
            assert!(photo.starts_with(&[0xFF, 0xD8, 0xFF]), "stored as JPEG");
            assert!(!contains(&photo, b"Exif"));
        }
    }
    let green = image::load_from_memory(&t.store.photo(&UserId::new("p2")).await.unwrap().unwrap())
        .unwrap()
        .to_rgb8();
    let [r, g, b] = green.get_pixel(60, 75).0;
    assert!(g > 120 && r < 60 && b < 60, "the PNG's pixels: {r} {g} {b}");

    // The same files again: the photos are recognised (unchanged).
    let before = (
        user(&t, "p1").await,
        t.store.photo(&UserId::new("p1")).await.unwrap(),
    );
    let (_, run, _) = admin
        .upload("/users/import", &[("action", "import")], &files)
        .await;
    let page = admin.finish(&run).await;
    assert!(
        page.contains("0 created, 0 updated") && page.contains("5 unchanged"),
        "{page}"
    );
    assert_eq!(
        before,
        (
            user(&t, "p1").await,
            t.store.photo(&UserId::new("p1")).await.unwrap()
        )
    );

    // A leaver whose photo file went missing still leaves, and keeps the stored photo.
    let leaving = "uid,display_name,photo,disabled\np1,Pat One,gone.jpg,yes\n";
    let (_, run, _) = admin
        .upload(
            "/users/import",
            &[("action", "import")],
            &[
                ("csv", "people.csv", leaving.as_bytes().to_vec()),
                ("photos", "photos.zip", files[1].2.clone()),
            ],
        )
        .await;
    let page = admin.finish(&run).await;
    assert!(page.contains("stored photo stays"), "{page}");
    let p1 = user(&t, "p1").await.unwrap();
    assert!(p1.disabled && p1.has_photo, "{p1:?}");
    assert_eq!(
        t.store.photo(&UserId::new("p1")).await.unwrap(),
        before.1,
        "the photo is the one stored before"
    );

    // A ZIP that is not one is refused before anything runs.
    let (status, _, page) = admin
        .upload(
            "/users/import",
            &[("action", "import")],
            &[
                ("csv", "people.csv", csv.as_bytes().to_vec()),
                ("photos", "photos.zip", b"PK not really".to_vec()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("photos.zip: the ZIP of photos cannot be read"),
        "{page}"
    );
}

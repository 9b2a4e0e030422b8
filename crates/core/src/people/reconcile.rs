//! Comparing a source's reading with the store and writing the difference, in one unit of work.
//!
//! Same reading twice, nothing written the second time: a person is written only when a field,
//! their state or their photo (compared by the digest of the source's bytes) differs. A person
//! whose record another source keeps is rejected, never taken over. With
//! [`ImportOptions::complete`] the reading lists everyone of its source, and the people of that
//! source it does not list are disabled; a line that was rejected still counts as listed, so a
//! typo in a file never disables anyone. Disabling someone deprovisions their cards by the
//! configured [`DeprovisionRule`](super::DeprovisionRule), in the same transaction.

use super::source::{Rejected, SourcePerson, SourceReading};
use crate::audit::{self, EventKind};
use crate::changes::{Change, Changes, UserWas};
use crate::error::CoreError;
use crate::ids::*;
use crate::lifecycle::{DeviceCommand, DeviceState, Reason};
use crate::model::*;
use crate::services::{Actor, AuditContext, Services};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};

/// How many people are looked up in the store at a time.
const BATCH: usize = 500;

#[derive(Clone, Copy, Debug, Default)]
pub struct ImportOptions {
    /// Report what would change and write nothing.
    pub dry_run: bool,
    /// The reading lists everyone its source keeps: people of that source it does not list
    /// are disabled (and their cards deprovisioned).
    pub complete: bool,
}

/// How far a long import has come, for progress bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// `checking` (people compared, photos checked) or `writing`.
    pub stage: &'static str,
    pub done: usize,
    pub total: usize,
}

/// A person changed, with the fields that changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Updated {
    pub uid: UserId,
    pub fields: Vec<&'static str>,
}

/// A card moved because its holder left.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CardChange {
    pub uid: UserId,
    pub device: DeviceId,
    pub serial: String,
    pub from: &'static str,
    pub to: &'static str,
    /// Why the card moved otherwise than the rule says, when it did.
    pub note: Option<&'static str>,
}

/// What an import or a sync did (or, in a dry run, would do).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub source: UserSource,
    /// Where the people came from: a file name, a directory's address.
    pub origin: String,
    pub dry_run: bool,
    /// People the source gave.
    pub read: usize,
    pub created: Vec<UserId>,
    pub updated: Vec<Updated>,
    pub disabled: Vec<UserId>,
    /// Enabled again: people who came back.
    pub enabled: Vec<UserId>,
    pub unchanged: usize,
    pub rejected: Vec<Rejected>,
    /// Cards deprovisioned because their holder left.
    pub cards: Vec<CardChange>,
    /// Cards suspended when their holder left, whose holder is back: an operator may resume
    /// them from the User page.
    pub resumable: Vec<CardChange>,
}

impl Report {
    fn new(source: UserSource, origin: &str, dry_run: bool, read: usize) -> Self {
        Self {
            source,
            origin: origin.to_owned(),
            dry_run,
            read,
            created: Vec::new(),
            updated: Vec::new(),
            disabled: Vec::new(),
            enabled: Vec::new(),
            unchanged: 0,
            rejected: Vec::new(),
            cards: Vec::new(),
            resumable: Vec::new(),
        }
    }

    /// Whether applying it writes anything about people.
    pub fn changes_anything(&self) -> bool {
        !(self.created.is_empty()
            && self.updated.is_empty()
            && self.disabled.is_empty()
            && self.enabled.is_empty())
    }

    /// `3 created, 1 updated, 0 disabled, 0 enabled, 12 unchanged, 2 rejected`
    pub fn summary(&self) -> String {
        format!(
            "{} created, {} updated, {} disabled, {} enabled again, {} unchanged, {} rejected, {} cards deprovisioned",
            self.created.len(),
            self.updated.len(),
            self.disabled.len(),
            self.enabled.len(),
            self.unchanged,
            self.rejected.len(),
            self.cards.len()
        )
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Uids that name pages of the portal and the API under `/users/`.
const RESERVED_UIDS: [&str; 2] = ["new", "import"];

/// Checks a person's fields; fills the display name from the names when it is empty. The
/// error is a sentence naming the field.
pub(crate) fn check_person(p: &mut SourcePerson) -> Result<(), String> {
    let uid = p.uid.as_str();
    if uid.is_empty() {
        return Err("the uid is empty".into());
    }
    // The portal's and the API's own pages sit where a person's page would (`/users/new`).
    if RESERVED_UIDS.contains(&uid) {
        return Err(format!(
            "the uid {uid:?} is a word the portal keeps for its own pages; choose another"
        ));
    }
    if uid.len() > 64
        || uid.starts_with(['.', '-'])
        || !uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
    {
        return Err(format!(
            "the uid {uid:?} must be 1 to 64 letters, digits, '.', '_', '@' or '-', not starting with '.' or '-'"
        ));
    }
    for (name, value) in [
        ("given name", &p.given_name),
        ("family name", &p.family_name),
        ("display name", &p.display_name),
        ("email", &p.email),
        ("UPN", &p.upn),
        ("employee id", &p.employee_id),
        ("department", &p.department),
        ("title", &p.title),
    ] {
        if value.chars().count() > 256 {
            return Err(format!("the {name} is longer than 256 characters"));
        }
        if value.chars().any(char::is_control) {
            return Err(format!("the {name} holds a control character"));
        }
    }
    if !p.email.is_empty() && (!p.email.contains('@') || p.email.contains(char::is_whitespace)) {
        return Err(format!("the email {:?} is not an email address", p.email));
    }
    if p.groups.len() > 200 {
        return Err("more than 200 groups".into());
    }
    for g in &p.groups {
        if g.chars().count() > 128 || g.chars().any(char::is_control) {
            return Err(format!(
                "the group {g:?} is longer than 128 characters or holds a control character"
            ));
        }
    }
    if p.attributes.len() > 50 {
        return Err("more than 50 free attributes".into());
    }
    for (k, v) in &p.attributes {
        if k.len() > 64 || v.chars().count() > 1024 || v.chars().any(char::is_control) {
            return Err(format!(
                "the attribute {k:?} is too long or holds a control character"
            ));
        }
    }
    p.groups.sort();
    p.groups.dedup();
    if p.display_name.is_empty() {
        p.display_name = format!("{} {}", p.given_name, p.family_name)
            .trim()
            .to_owned();
    }
    if p.display_name.is_empty() {
        p.display_name = p.uid.0.clone();
    }
    Ok(())
}

/// The user a source person becomes (keeping what the store knows of the photo).
fn user_of(p: &SourcePerson, source: UserSource, old: Option<&User>) -> User {
    User {
        uid: p.uid.clone(),
        given_name: p.given_name.clone(),
        family_name: p.family_name.clone(),
        display_name: p.display_name.clone(),
        email: p.email.clone(),
        upn: p.upn.clone(),
        employee_id: p.employee_id.clone(),
        department: p.department.clone(),
        title: p.title.clone(),
        groups: p.groups.clone(),
        source,
        attributes: p.attributes.clone(),
        has_photo: old.is_some_and(|u| u.has_photo),
        disabled: p.disabled,
        photo_digest: old.and_then(|u| u.photo_digest.clone()),
    }
}

/// The fields in which two records of a person differ.
pub(crate) fn differences(old: &User, new: &User) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let pairs: [(&'static str, bool); 12] = [
        ("given_name", old.given_name != new.given_name),
        ("family_name", old.family_name != new.family_name),
        ("display_name", old.display_name != new.display_name),
        ("email", old.email != new.email),
        ("upn", old.upn != new.upn),
        ("employee_id", old.employee_id != new.employee_id),
        ("department", old.department != new.department),
        ("title", old.title != new.title),
        ("groups", old.groups != new.groups),
        ("attributes", old.attributes != new.attributes),
        ("disabled", old.disabled != new.disabled),
        (
            "photo",
            old.photo_digest != new.photo_digest || old.has_photo != new.has_photo,
        ),
    ];
    for (name, differs) in pairs {
        if differs {
            fields.push(name);
        }
    }
    fields
}

/// Deprovisions `user`'s cards by `rule` into `changes`; returns what moved. Moving a card
/// needs `ManageDevices`, as it does on the User page. A card whose policy puts termination
/// under the two-person rule is suspended instead of terminated: no one approved it, and a
/// suspension can be undone; the report says so.
pub(crate) async fn deprovision_cards(
    svc: &Services,
    actor: &Actor,
    changes: &mut Changes,
    user: &UserId,
    rule: super::DeprovisionRule,
    ctx: AuditContext<'_>,
) -> Result<Vec<CardChange>, CoreError> {
    use super::DeprovisionRule as Rule;
    let mut moved = Vec::new();
    if rule == Rule::Keep {
        return Ok(moved);
    }
    let guarded: HashSet<PolicyId> = if rule == Rule::Terminate {
        svc.store
            .policies()
            .await?
            .into_iter()
            .filter(|p| {
                p.two_person
                    .contains(&crate::approvals::TwoPersonAction::Terminate)
            })
            .map(|p| p.id)
            .collect()
    } else {
        HashSet::new()
    };
    for mut device in svc.store.devices_of_user(user).await? {
        let from = device.state;
        let needs_approval = device.policy.as_ref().is_some_and(|p| guarded.contains(p));
        let command = match (rule, from) {
            (Rule::Suspend, DeviceState::Active) => DeviceCommand::Suspend(Reason::Left),
            (Rule::Terminate, DeviceState::Active) if needs_approval => {
                DeviceCommand::Suspend(Reason::Left)
            }
            (Rule::Terminate, _) if needs_approval => continue,
            (
                Rule::Terminate,
                DeviceState::Assigned
                | DeviceState::Pending
                | DeviceState::Active
                | DeviceState::Suspended,
            ) => DeviceCommand::Terminate(Reason::Left),
            _ => continue,
        };
        actor.require(
            Permission::ManageDevices,
            "suspend or terminate the cards of people who leave",
        )?;
        svc.change_state(changes, &mut device, command, ctx)?;
        crate::devices::certificates_follow(svc, changes, &device).await?;
        moved.push(CardChange {
            uid: user.clone(),
            device: device.id.clone(),
            serial: device.serial.clone(),
            from: from.as_str(),
            to: device.state.as_str(),
            note: needs_approval.then_some(
                "its policy puts termination under the two-person rule: suspended instead",
            ),
        });
    }
    Ok(moved)
}

/// The cards of `user` suspended because they left: resumable now that they are back.
async fn resumable_cards(svc: &Services, user: &UserId) -> Result<Vec<CardChange>, CoreError> {
    Ok(svc
        .store
        .devices_of_user(user)
        .await?
        .into_iter()
        .filter(|d| d.state == DeviceState::Suspended && d.reason == Reason::Left)
        .map(|d| CardChange {
            uid: user.clone(),
            device: d.id,
            serial: d.serial,
            from: "suspended",
            to: "active",
            note: None,
        })
        .collect())
}

/// An import or a sync touches everyone of its source: it needs `ManageUsers` and a scope of
/// all users. Checked before anything is read.
pub(crate) fn may_import(actor: &Actor) -> Result<(), CoreError> {
    actor.require(Permission::ManageUsers, "import people")?;
    if !matches!(actor.scope, crate::access::Scope::All) {
        return Err(CoreError::Forbidden(
            "import or sync people: that needs a scope of all users".into(),
        ));
    }
    Ok(())
}

/// A complete reading may disable at most this share of its source's enabled people (and
/// always this many): more looks like a broken export, a wrong mapping or a directory account
/// that lost its rights, not like people leaving.
const MASS_DISABLE_PERCENT: usize = 10;
const MASS_DISABLE_FLOOR: usize = 10;

/// Applies a source's reading: see the module documentation. `origin` names the file or
/// directory in the report and the audit event; `progress` hears how far the comparison came.
pub async fn reconcile(
    svc: &Services,
    actor: &Actor,
    reading: SourceReading,
    origin: &str,
    options: ImportOptions,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Report, CoreError> {
    may_import(actor)?;
    let settings = svc.store.settings().await?;
    let rule = settings.people.deprovision;
    let SourceReading {
        source,
        people,
        rejected,
        has_photos,
    } = reading;
    let mut report = Report::new(source, origin, options.dry_run, people.len());
    report.rejected = rejected;
    // Every uid the source named, taken or not: none of them is disabled as missing.
    let mut named: HashSet<UserId> = report
        .rejected
        .iter()
        .filter_map(|r| r.uid.clone().map(UserId::new))
        .collect();
    let mut first_at: HashMap<UserId, String> = HashMap::new();
    let total = people.len();
    let mut changes = Changes::new();
    let ctx = AuditContext {
        operator: Some(&actor.operator),
        ..Default::default()
    };
    let mut disabled_now: Vec<UserId> = Vec::new();
    let mut done = 0;
    let mut people = people;
    while !people.is_empty() {
        // Taken out of the reading batch by batch, so photo bytes are moved, not copied.
        let batch: Vec<SourcePerson> = people.drain(..BATCH.min(people.len())).collect();
        let batch_len = batch.len();
        let uids: Vec<UserId> = batch.iter().map(|p| p.uid.clone()).collect();
        let stored: HashMap<UserId, User> = svc
            .store
            .users_by_uid(&uids)
            .await?
            .into_iter()
            .map(|u| (u.uid.clone(), u))
            .collect();
        for mut person in batch {
            named.insert(person.uid.clone());
            let (at, uid) = (person.origin.clone(), person.uid.0.clone());
            let reject = |report: &mut Report, reason: String| {
                report.rejected.push(Rejected {
                    at: at.clone(),
                    uid: Some(uid.clone()),
                    reason,
                })
            };
            if let Some(first) = first_at.get(&person.uid) {
                reject(
                    &mut report,
                    format!("the uid {} is already on {first}", person.uid),
                );
                continue;
            }
            first_at.insert(person.uid.clone(), person.origin.clone());
            if let Err(reason) = check_person(&mut person) {
                // A record that says its person left still disables them: a bad field must
                // not keep a leaver's cards working.
                let leaver = stored
                    .get(&person.uid)
                    .filter(|o| o.source == source && person.disabled && !o.disabled);
                if let Some(old) = leaver {
                    let mut user = old.clone();
                    user.disabled = true;
                    report.disabled.push(user.uid.clone());
                    disabled_now.push(user.uid.clone());
                    changes.push(Change::PutUser {
                        user,
                        was: UserWas::from(Some(old)),
                    });
                    reject(
                        &mut report,
                        format!("{reason}; the person was disabled as the line says, nothing else changed"),
                    );
                } else {
                    reject(&mut report, reason);
                }
                continue;
            }
            let old = stored.get(&person.uid);
            if let Some(old) = old.filter(|o| o.source != source) {
                reject(
                    &mut report,
                    format!(
                        "the uid {} belongs to a person from {}, whom this source cannot change",
                        person.uid,
                        source_label(old.source)
                    ),
                );
                continue;
            }
            let mut user = user_of(&person, source, old);
            let mut photo_change = None;
            match &person.photo {
                Some(bytes) => {
                    let digest = sha256_hex(bytes);
                    if user.photo_digest.as_deref() != Some(digest.as_str()) || !user.has_photo {
                        match svc.photos.normalise(bytes.clone(), None).await {
                            Ok(jpeg) => {
                                photo_change = Some(Some(jpeg));
                                user.has_photo = true;
                                user.photo_digest = Some(digest);
                            }
                            // The rest of the record still applies; the stored photo stays.
                            Err(e) => reject(
                                &mut report,
                                format!("the photo was refused, the person's other fields were taken: {e}"),
                            ),
                        }
                    }
                }
                // The source keeps photos and has none for this person: the one it gave before
                // goes (a photo an operator uploaded, which has no digest, stays).
                None if has_photos && user.photo_digest.is_some() && !person.photo_missing => {
                    photo_change = Some(None);
                    user.has_photo = false;
                    user.photo_digest = None;
                }
                None => {}
            }
            // Fingerprints the source gives replace the stored ones when they differ; a source
            // that gives none leaves them be (an enrolment system may have sent them).
            let mut fingerprints_change = None;
            if let Some(record) = person.fingerprints.take() {
                let stored = match old {
                    Some(_) => svc.store.fingerprints(&user.uid).await?,
                    None => None,
                };
                if stored.is_none_or(|f| f.incits_378 != record || f.synthetic) {
                    fingerprints_change = Some(record);
                }
            }
            match old {
                None => {
                    report.created.push(user.uid.clone());
                    if user.disabled {
                        report.disabled.push(user.uid.clone());
                    }
                }
                Some(old) => {
                    let mut fields = differences(old, &user);
                    if fingerprints_change.is_some() {
                        fields.push("fingerprints");
                    }
                    if fields.is_empty() {
                        report.unchanged += 1;
                        continue;
                    }
                    if user.disabled && !old.disabled {
                        report.disabled.push(user.uid.clone());
                        disabled_now.push(user.uid.clone());
                    } else if !user.disabled && old.disabled {
                        report.enabled.push(user.uid.clone());
                        report
                            .resumable
                            .extend(resumable_cards(svc, &user.uid).await?);
                    }
                    report.updated.push(Updated {
                        uid: user.uid.clone(),
                        fields,
                    });
                }
            }
            // The person first: a photo row refers to its person's row.
            let uid = user.uid.clone();
            changes.push(Change::PutUser {
                user,
                was: UserWas::from(old),
            });
            if let Some(record) = fingerprints_change {
                changes.push(Change::PutFingerprints {
                    uid: uid.clone(),
                    fingerprints: crate::fips201::Fingerprints {
                        incits_378: record,
                        synthetic: false,
                    },
                    at: svc.clock.now(),
                });
            }
            match photo_change {
                Some(Some(jpeg)) => changes.push(Change::PutPhoto { uid, photo: jpeg }),
                Some(None) => changes.push(Change::DeletePhoto(uid)),
                None => &mut changes,
            };
        }
        done += batch_len;
        progress(Progress {
            stage: "checking",
            done,
            total,
        });
    }
    if options.complete {
        let known = svc.store.uids_of_source(source).await?;
        let enabled = known.iter().filter(|(_, disabled)| !disabled).count();
        let missing = known
            .iter()
            .filter(|(uid, disabled)| !disabled && !named.contains(uid))
            .count();
        let allowed = (enabled * MASS_DISABLE_PERCENT / 100).max(MASS_DISABLE_FLOOR);
        if missing > allowed {
            return Err(CoreError::ImportRefused(format!(
                "this reading would disable {missing} of the {enabled} enabled people from {}, more than the {allowed} a complete reading may: nothing was changed. Check the file, its column mapping or the directory's filter and rights; people who really left can be marked disabled at their source (a disabled column) or disabled here one by one",
                source_label(source)
            )));
        }
        for (uid, disabled) in known {
            if disabled || named.contains(&uid) {
                continue;
            }
            let mut user = svc.store.user(&uid).await?;
            let was = UserWas::from(Some(&user));
            user.disabled = true;
            report.disabled.push(uid.clone());
            report.updated.push(Updated {
                uid: uid.clone(),
                fields: vec!["disabled"],
            });
            disabled_now.push(uid);
            changes.push(Change::PutUser { user, was });
        }
    }
    for uid in &disabled_now {
        let user_ctx = AuditContext {
            user: Some(uid),
            ..ctx
        };
        changes.audit(svc.event(
            audit::USER_DISABLED,
            user_ctx,
            json!({"source": source_label(source), "origin": origin, "cards": rule.as_str()}),
        ));
        let moved = deprovision_cards(svc, actor, &mut changes, uid, rule, user_ctx).await?;
        report.cards.extend(moved);
    }
    for uid in &report.enabled {
        changes.audit(svc.event(
            audit::USER_ENABLED,
            AuditContext {
                user: Some(uid),
                ..ctx
            },
            json!({"source": source_label(source), "origin": origin}),
        ));
    }
    if options.dry_run {
        return Ok(report);
    }
    let kind: EventKind = match source {
        UserSource::Ldap => audit::DIRECTORY_SYNCED,
        _ => audit::USERS_IMPORTED,
    };
    changes.audit(svc.event(kind, ctx, summary_details(&report)));
    progress(Progress {
        stage: "writing",
        done: 0,
        total: changes.list.len(),
    });
    svc.commit(changes).await?;
    progress(Progress {
        stage: "writing",
        done: 1,
        total: 1,
    });
    Ok(report)
}

/// The audit event's details: the counts, and the people when there are few of them.
fn summary_details(report: &Report) -> serde_json::Value {
    const LISTED: usize = 100;
    let few = |uids: &[UserId]| -> Option<Vec<String>> {
        (uids.len() <= LISTED).then(|| uids.iter().map(|u| u.0.clone()).collect())
    };
    let updated: Vec<UserId> = report.updated.iter().map(|u| u.uid.clone()).collect();
    let mut counts = BTreeMap::new();
    counts.insert("read", report.read);
    counts.insert("created", report.created.len());
    counts.insert("updated", report.updated.len());
    counts.insert("disabled", report.disabled.len());
    counts.insert("enabled", report.enabled.len());
    counts.insert("unchanged", report.unchanged);
    counts.insert("rejected", report.rejected.len());
    counts.insert("cards", report.cards.len());
    json!({
        "origin": report.origin,
        "counts": counts,
        "created": few(&report.created),
        "updated": few(&updated),
        "disabled": few(&report.disabled),
    })
}

pub(crate) fn source_label(source: UserSource) -> &'static str {
    match source {
        UserSource::Local => "the portal (local)",
        UserSource::Csv => "a CSV import",
        UserSource::Ldap => "the directory (LDAP)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(uid: &str) -> SourcePerson {
        SourcePerson {
            uid: UserId::new(uid),
            given_name: "Ana".into(),
            family_name: "Lima".into(),
            groups: vec!["staff".into(), "it".into(), "staff".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_person_is_checked_and_completed() {
        let mut p = person("ana.lima");
        check_person(&mut p).unwrap();
        assert_eq!(p.display_name, "Ana Lima");
        assert_eq!(p.groups, vec!["it", "staff"]);
        for bad in [
            "",
            "new",
            "import",
            "-x",
            ".x",
            "a b",
            "a/b",
            &"x".repeat(65),
        ] {
            assert!(check_person(&mut person(bad)).is_err(), "{bad:?}");
        }
        let mut p = person("ok");
        p.email = "not an address".into();
        assert!(check_person(&mut p).unwrap_err().contains("email"));
        let mut p = person("ok");
        p.title = "a\u{7}b".into();
        assert!(check_person(&mut p).unwrap_err().contains("control"));
    }

    #[test]
    fn differences_name_the_fields() {
        let mut p = person("ana");
        check_person(&mut p).unwrap();
        let old = user_of(&p, UserSource::Csv, None);
        let mut new = old.clone();
        assert!(differences(&old, &new).is_empty());
        new.department = "Finance".into();
        new.disabled = true;
        assert_eq!(differences(&old, &new), vec!["department", "disabled"]);
    }
}

//! Whose data this is: `tessera init` creates an organisation (the database's tie to its data
//! folder, the first administrator, optionally the demo content), and every later start checks
//! that the data folder it was given (master key, CA) belongs to the database before it serves.
//!
//! The tie is one row, [`Installation`]: the SHA-256 of the CA chain and a value sealed under the
//! master key. A replica started with a fresh data folder on a shared PostgreSQL therefore stops
//! with a clear message instead of creating a second CA, and two processes initialising one
//! database at once cannot both win: the row is inserted in the same transaction as the first
//! administrator and the audit events, and the second insert fails.

use crate::auth;
use crate::demo;
use crate::wiring::{StartError, Tessera};
use sha2::{Digest, Sha256};
use tessera_core::audit;
use tessera_core::changes::{Change, Changes};
use tessera_core::ids::RoleId;
use tessera_core::issuance::AuditContext;
use tessera_core::model::*;
use tessera_core::ports::{Installation, StoreError};
use tessera_core::Password;

/// What a start does with a database that has no organisation yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartMode {
    /// `tessera demo` (and tests): creates the demo organisation on first start.
    #[default]
    Demo,
    /// `tessera serve` and every other command: the database must have been initialised.
    Existing,
}

/// What `tessera init` creates beside the organisation and its first administrator.
#[derive(Clone, Debug, Default)]
pub struct InitSpec {
    /// The demo users, policies and layout (what `tessera demo` shows).
    pub demo_content: bool,
    /// The in-process station with the simulated card printer (it issues real certificates to
    /// virtual cards: for trials, not for production).
    pub simulated_printer: bool,
    /// The first administrator's password; generated (and returned once) when absent.
    pub admin_password: Option<Password>,
    /// The first administrator's name.
    pub admin: String,
}

const MASTER_KEY_CHECK: &[u8] = b"tessera: this master key belongs to this database";

/// The tie between the database and the data folder `t` was opened with.
pub(crate) fn installation_of(t: &Tessera, kind: &str) -> Installation {
    Installation {
        organisation: crate::wiring::ORGANISATION.into(),
        ca_fingerprint: ca_fingerprint(t),
        master_key_check: hex::encode(t.services.sealer.seal(MASTER_KEY_CHECK)),
        kind: kind.into(),
        created_at: t.services.clock.now(),
    }
}

fn ca_fingerprint(t: &Tessera) -> String {
    hex::encode(Sha256::digest(t.services.ca.chain_pem().as_bytes()))
}

/// Refuses a data folder whose master key or CA is not the database's.
pub(crate) fn verify(t: &Tessera, installation: &Installation) -> Result<(), StartError> {
    let dir = t.data_dir.display();
    let opens = hex::decode(&installation.master_key_check)
        .ok()
        .and_then(|sealed| t.services.sealer.open(&sealed).ok())
        .is_some_and(|plain| plain == MASTER_KEY_CHECK);
    if !opens {
        return Err(StartError(format!(
            "the master key in {dir}/secrets does not belong to this database: start Tessera \
             with the data folder of the server that ran `tessera init` (copy it to every replica)"
        )));
    }
    if ca_fingerprint(t) != installation.ca_fingerprint {
        return Err(StartError(format!(
            "the certificate authority in {dir}/ca is not the one of this database: start \
             Tessera with the data folder of the server that ran `tessera init`"
        )));
    }
    Ok(())
}

/// Creates the organisation in one transaction: the tie, the first administrator, the demo
/// content or the simulated printer when asked for, and their audit events. Returns the
/// administrator's password when it was generated (to be shown once).
pub(crate) async fn init(t: &Tessera, spec: &InitSpec) -> Result<Option<Password>, StartError> {
    let fail = |e: String| StartError(format!("cannot initialise the organisation: {e}"));
    let store = &t.services.store;
    if spec.demo_content {
        // Users and photos are many rows outside the unit of work; they are upserts, so a
        // second attempt after a failure simply writes them again.
        for person in demo::people() {
            let user = &person.user;
            store
                .put_user(user)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let photo = person.sitter.png();
            store
                .put_photo(&user.uid, &photo)
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
    }
    let (password, generated) = match &spec.admin_password {
        Some(p) => (p.clone(), None),
        None => {
            let p = auth::one_time_password(&*t.services.random);
            (p.clone(), Some(p))
        }
    };
    let hash = t.services.passwords.hash(password.clone()).await;
    let kind = if spec.demo_content {
        "demo"
    } else {
        "production"
    };
    let svc = &t.services;
    let mut changes = Changes::new();
    changes.push(Change::InsertInstallation(installation_of(t, kind)));
    changes.push(Change::PutSettings(Settings {
        // The demo proposes PIV Standard, the everyday policy, whatever the list's order.
        default_policy: spec
            .demo_content
            .then(|| tessera_core::ids::PolicyId::new(demo::POLICY_ID)),
        ..Settings::default()
    }));
    if spec.demo_content {
        for policy in demo::policies() {
            changes.push(Change::PutPolicy(policy));
        }
        // Every demo person has synthetic fingerprints, marked as such, so that demo cards
        // carry a fingerprints object; they are nobody's fingers.
        let now = svc.clock.now();
        for user in demo::users() {
            changes.push(Change::PutFingerprints {
                fingerprints: tessera_core::enrolment::synthetic_fingerprints(&user.uid),
                uid: user.uid,
                at: now,
            });
        }
        changes.push(Change::PutLayout(tessera_print::corporate_badge()));
    }
    if spec.demo_content || spec.simulated_printer {
        changes.push(Change::PutStation(demo::demo_station()));
    }
    changes.push(Change::PutOperator(Operator::new(
        spec.admin.as_str(),
        "Administrator",
        hash,
        RoleId::new(BuiltinRole::Administrator.id()),
    )));
    changes.audit(svc.event(
        audit::SYSTEM_INITIALISED,
        AuditContext::default(),
        serde_json::json!({
            "kind": kind,
            "users": if spec.demo_content { demo::users().len() } else { 0 },
            "synthetic_fingerprints": spec.demo_content,
            "simulated_printer": spec.demo_content || spec.simulated_printer,
        }),
    ));
    changes.audit(svc.event(
        audit::OPERATOR_CREATED,
        AuditContext::default(),
        serde_json::json!({"operator": spec.admin, "role": "administrator"}),
    ));
    match store.commit(&changes).await {
        Ok(()) => Ok(generated),
        Err(StoreError::Conflict) => Err(StartError(
            "this database was initialised meanwhile by another process; start it with \
             `tessera serve` and the data folder of that process"
                .into(),
        )),
        Err(e) => Err(fail(e.to_string())),
    }
}

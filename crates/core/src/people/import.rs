//! The two ways people arrive in bulk, as the edges call them: a CSV file ([`import_csv`]) and
//! the directory ([`sync_directory`]). Each reads its source, then [`reconcile`]s.

use super::csv_file::{self, CsvMapping, PhotoFiles};
use super::reconcile::{reconcile, ImportOptions, Progress, Report};
use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::model::Permission;
use crate::ports::Directory;
use crate::services::{Actor, AuditContext, Services};
use serde_json::json;

/// The mapping an import starts from: the one the last import saved.
pub async fn saved_mapping(svc: &Services, actor: &Actor) -> Result<CsvMapping, CoreError> {
    actor.require(Permission::ManageUsers, "import people")?;
    Ok(svc.store.settings().await?.people.csv_mapping)
}

/// Imports a CSV file named `file_name` with `mapping`; photos named in it come from `photos`.
/// A real (not dry) run then saves the mapping for next time, so a failed import saves nothing.
#[allow(clippy::too_many_arguments)]
pub async fn import_csv(
    svc: &Services,
    actor: &Actor,
    file_name: &str,
    bytes: &[u8],
    mapping: CsvMapping,
    photos: &dyn PhotoFiles,
    options: ImportOptions,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Report, CoreError> {
    super::reconcile::may_import(actor)?;
    let reading = csv_file::read(bytes, &mapping, photos)?;
    let report = reconcile(svc, actor, reading, file_name, options, progress).await?;
    if !options.dry_run {
        let mut settings = svc.store.settings().await?;
        if settings.people.csv_mapping != mapping {
            settings.people.csv_mapping = mapping;
            let mut changes = Changes::new();
            changes.push(Change::PutSettings(settings));
            svc.commit(changes).await?;
        }
    }
    Ok(report)
}

/// Reads the whole directory and applies it (a complete reading: people it no longer lists are
/// disabled). When the directory cannot be read, nothing changes and the failure is audited.
pub async fn sync_directory(
    svc: &Services,
    actor: &Actor,
    directory: &dyn Directory,
    dry_run: bool,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Report, CoreError> {
    super::reconcile::may_import(actor)?;
    let origin = directory.describe();
    let reading = match directory.read().await {
        Ok(reading) => reading,
        Err(e) => {
            svc.audit(
                audit::DIRECTORY_SYNC_FAILED,
                AuditContext {
                    operator: Some(&actor.operator),
                    ..Default::default()
                },
                json!({"origin": origin, "error": e.message}),
            )
            .await?;
            return Err(CoreError::Directory(e));
        }
    };
    let options = ImportOptions {
        dry_run,
        complete: true,
    };
    reconcile(svc, actor, reading, &origin, options, progress).await
}

//! Reading the audit log: pages of events for people with the *view audit* permission, and the
//! check of its hash chain from the newest event back to the first.

use crate::audit::{self, ChainBreak, ChainCheck};
use crate::error::CoreError;
use crate::model::Permission;
use crate::ports::AuditRecord;
use crate::services::{Actor, AuditContext, Services};
use serde_json::json;

/// Events read from the store at a time while the chain is checked.
const CHECK_PAGE: u32 = 1000;

/// Events older than `before` (all when None), newest first, at most `limit`.
pub async fn page(
    svc: &Services,
    actor: &Actor,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditRecord>, CoreError> {
    actor.require(Permission::ViewAudit, "view the audit log")?;
    Ok(svc.store.audit_events(before, limit.clamp(1, 500)).await?)
}

/// What a check of the chain found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// Events checked before the end or the break.
    pub checked: u64,
    /// The newest event's hash: kept elsewhere, it shows later that nobody rewrote the chain.
    pub head: Option<String>,
    pub broken: Option<ChainBreak>,
}

/// Checks the whole chain, then audits that it was checked and what was found.
pub async fn check_chain(svc: &Services, actor: &Actor) -> Result<ChainReport, CoreError> {
    actor.require(Permission::ViewAudit, "check the audit log")?;
    let mut check = ChainCheck::default();
    let mut before = None;
    let broken = loop {
        let events = svc.store.audit_events(before, CHECK_PAGE).await?;
        let Some(oldest) = events.last() else {
            break check.finish().err();
        };
        before = Some(oldest.seq);
        if let Some(e) = events.iter().find_map(|e| check.feed(e).err()) {
            break Some(e);
        }
    };
    let report = ChainReport {
        checked: check.checked,
        head: check.head.clone(),
        broken,
    };
    svc.audit(
        audit::AUDIT_CHAIN_CHECKED,
        AuditContext {
            operator: Some(&actor.operator),
            ..Default::default()
        },
        json!({
            "checked": report.checked,
            "head": report.head,
            "intact": report.broken.is_none(),
            "broken_at": report.broken.as_ref().map(|b| b.seq),
            "reason": report.broken.as_ref().map(|b| b.reason.clone()),
        }),
    )
    .await?;
    Ok(report)
}

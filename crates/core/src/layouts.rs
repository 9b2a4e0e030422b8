//! Managing card layouts: a layout is validated as a whole before it is saved (never half-valid),
//! gets a new version on every save (print records name the version they used), and is audited.

use crate::audit;
use crate::changes::{Change, Changes};
use crate::error::CoreError;
use crate::ids::LayoutId;
use crate::model::{Layout, Permission, User};
use crate::services::{Actor, AuditContext, Services};
use serde_json::json;

/// What an administrator submits; the id is derived from the name for a new layout.
#[derive(Clone, Debug)]
pub struct LayoutInput {
    pub id: Option<LayoutId>,
    pub name: String,
    pub description: String,
    pub front_svg: String,
    pub back_svg: Option<String>,
    pub allowed_groups: Vec<String>,
    pub default_for_groups: Vec<String>,
}

/// `Corporate Badge` -> `corporate-badge`.
pub fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// Validates and saves a layout; returns it with its new version.
pub async fn save(svc: &Services, actor: &Actor, input: LayoutInput) -> Result<Layout, CoreError> {
    actor.require(Permission::ManageLayouts, "manage layouts")?;
    let name = input.name.trim().to_owned();
    if name.is_empty() {
        return Err(CoreError::Invalid("give the layout a name".into()));
    }
    let id = match input.id {
        Some(id) => id,
        None => LayoutId::new(slug(&name)),
    };
    if id.as_str().is_empty() {
        return Err(CoreError::Invalid(
            "the layout name needs at least one letter or digit".into(),
        ));
    }
    let existing = svc.store.layouts().await?.into_iter().find(|l| l.id == id);
    let layout = Layout {
        id,
        name,
        description: input.description.trim().to_owned(),
        front_svg: input.front_svg,
        back_svg: input.back_svg.filter(|b| !b.trim().is_empty()),
        allowed_groups: input.allowed_groups,
        default_for_groups: input.default_for_groups,
        version: existing.as_ref().map_or(1, |l| l.version + 1),
    };
    svc.renderer
        .check(&layout)
        .map_err(|e| CoreError::Invalid(format!("the layout was not saved: {e}")))?;
    let mut changes = Changes::new();
    changes.push(Change::PutLayout(layout.clone()));
    changes.audit(svc.event(
        audit::LAYOUT_SAVED,
        AuditContext {
            operator: Some(&actor.operator),
            ..Default::default()
        },
        json!({"layout": layout.id, "version": layout.version, "new": existing.is_none()}),
    ));
    svc.commit(changes).await?;
    Ok(layout)
}

/// The layouts `user` may get, the one proposed for their groups first.
pub fn for_user(mut layouts: Vec<Layout>, user: &User) -> Vec<Layout> {
    let in_groups = |groups: &[String]| groups.iter().any(|g| user.groups.contains(g));
    layouts.retain(|l| l.allowed_groups.is_empty() || in_groups(&l.allowed_groups));
    layouts.sort_by_key(|l| !in_groups(&l.default_for_groups));
    layouts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("Corporate Badge"), "corporate-badge");
        assert_eq!(slug("  Visitor / Temp  "), "visitor-temp");
        assert_eq!(slug("<>"), "");
    }
}

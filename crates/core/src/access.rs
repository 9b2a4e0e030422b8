//! Who may do what, and to whom: permissions, roles (five built in, more made by an
//! administrator from the permission set) and an operator's scope (the user groups they see).
//!
//! A use case asks [`crate::services::Actor::require`] for its permission and
//! [`Scope::covers`] (through [`crate::services::Services::user_in_scope`]) for the user it
//! touches; handlers only hide what the actor may not do.

use crate::ids::RoleId;
use crate::model::User;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    ViewUsers,
    /// Create, change, disable and delete people; upload photos; import CSV files and sync the
    /// directory (those two need a scope of all users).
    ManageUsers,
    IssueDevice,
    ActivateDevice,
    /// Suspend, resume and terminate cards; reveal a generated initial PIN.
    ManageDevices,
    ManagePolicies,
    ManageLayouts,
    ManageStations,
    /// Operators, their roles and scopes, and custom roles.
    ManageOperators,
    ManageSettings,
    ViewAudit,
    /// Import cards into stock, change their state and location.
    ManageStock,
    /// See the stock, its counts and each card's history.
    ViewStock,
    /// Unblock a card's PIN with the escrowed PUK and set a new one.
    UnlockDevice,
    /// Replace a lost, stolen, damaged or forgotten card; restore the original when found.
    ReplaceDevice,
    /// Erase a returned card and make it available again.
    RecycleDevice,
    /// Approve (or reject) another operator's request under the two-person rule.
    ApproveRequests,
}

impl Permission {
    pub const ALL: [Permission; 17] = [
        Self::ViewUsers,
        Self::ManageUsers,
        Self::IssueDevice,
        Self::ActivateDevice,
        Self::ManageDevices,
        Self::UnlockDevice,
        Self::ReplaceDevice,
        Self::RecycleDevice,
        Self::ApproveRequests,
        Self::ManagePolicies,
        Self::ManageLayouts,
        Self::ManageStations,
        Self::ManageOperators,
        Self::ManageSettings,
        Self::ViewAudit,
        Self::ManageStock,
        Self::ViewStock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ViewUsers => "view_users",
            Self::ManageUsers => "manage_users",
            Self::IssueDevice => "issue_device",
            Self::ActivateDevice => "activate_device",
            Self::ManageDevices => "manage_devices",
            Self::ManagePolicies => "manage_policies",
            Self::ManageLayouts => "manage_layouts",
            Self::ManageStations => "manage_stations",
            Self::ManageOperators => "manage_operators",
            Self::ManageSettings => "manage_settings",
            Self::ViewAudit => "view_audit",
            Self::ManageStock => "manage_stock",
            Self::ViewStock => "view_stock",
            Self::UnlockDevice => "unlock_device",
            Self::ReplaceDevice => "replace_device",
            Self::RecycleDevice => "recycle_device",
            Self::ApproveRequests => "approve_requests",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// What the permission lets an operator do, for the role form.
    pub fn label(self) -> &'static str {
        match self {
            Self::ViewUsers => "See users and their cards",
            Self::ManageUsers => "Add, change, disable and import people; photos; directory sync",
            Self::IssueDevice => "Issue and print cards",
            Self::ActivateDevice => "Activate cards",
            Self::ManageDevices => "Suspend, resume and terminate cards; reveal initial PINs",
            Self::ManagePolicies => "Manage device policies",
            Self::ManageLayouts => "Manage card layouts",
            Self::ManageStations => "Manage stations and printers",
            Self::ManageOperators => "Manage operators and roles",
            Self::ManageSettings => "Change settings",
            Self::ViewAudit => "Read and check the audit log",
            Self::ManageStock => "Manage the card stock",
            Self::ViewStock => "See the card stock",
            Self::UnlockDevice => "Unlock a blocked PIN",
            Self::ReplaceDevice => "Replace lost, stolen, damaged or forgotten cards",
            Self::RecycleDevice => "Recycle returned cards",
            Self::ApproveRequests => "Approve other operators' requests (two-person rule)",
        }
    }
}

/// The five roles every installation has. Their permissions are fixed; an administrator makes a
/// custom [`Role`] for anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BuiltinRole {
    Administrator,
    SecurityOfficer,
    Issuer,
    HelpDesk,
    Auditor,
}

impl BuiltinRole {
    pub const ALL: [BuiltinRole; 5] = [
        Self::Administrator,
        Self::SecurityOfficer,
        Self::Issuer,
        Self::HelpDesk,
        Self::Auditor,
    ];

    /// The id stored with an operator (the ids of the first release are kept).
    pub fn id(self) -> &'static str {
        match self {
            Self::Administrator => "administrator",
            Self::SecurityOfficer => "security_officer",
            Self::Issuer => "issuer",
            Self::HelpDesk => "help_desk",
            Self::Auditor => "auditor",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Administrator => "Administrator",
            Self::SecurityOfficer => "Security Officer",
            Self::Issuer => "Issuance Operator",
            Self::HelpDesk => "Help Desk",
            Self::Auditor => "Auditor",
        }
    }

    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Self::Administrator => &Permission::ALL,
            Self::SecurityOfficer => &[
                ViewUsers,
                ManageUsers,
                IssueDevice,
                ActivateDevice,
                ManageDevices,
                UnlockDevice,
                ReplaceDevice,
                RecycleDevice,
                ApproveRequests,
                ViewAudit,
                ManageStock,
                ViewStock,
            ],
            Self::Issuer => &[ViewUsers, IssueDevice, ActivateDevice],
            // The help desk issues the replacement of a card through the wizard, so it issues and
            // activates too; it cannot terminate a card other than by replacing it.
            Self::HelpDesk => &[
                ViewUsers,
                IssueDevice,
                ActivateDevice,
                UnlockDevice,
                ReplaceDevice,
                RecycleDevice,
            ],
            Self::Auditor => &[ViewUsers, ViewAudit, ViewStock],
        }
    }

    pub fn role(self) -> Role {
        Role {
            id: RoleId::new(self.id()),
            name: self.name().to_owned(),
            permissions: self.permissions().to_vec(),
            builtin: true,
        }
    }

    pub fn of(id: &RoleId) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.id() == id.as_str())
    }
}

/// A set of permissions with a name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub id: RoleId,
    pub name: String,
    pub permissions: Vec<Permission>,
    /// Built-in roles cannot be changed or deleted.
    #[serde(default)]
    pub builtin: bool,
}

impl Role {
    pub fn allows(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    pub fn builtins() -> Vec<Role> {
        BuiltinRole::ALL
            .into_iter()
            .map(BuiltinRole::role)
            .collect()
    }
}

impl From<BuiltinRole> for Role {
    fn from(role: BuiltinRole) -> Self {
        role.role()
    }
}

/// The users an operator sees and acts on: everyone, or the members of some groups. An operator
/// out of scope is told a user does not exist, as if it did not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    #[default]
    All,
    Groups(Vec<String>),
}

impl Scope {
    pub fn covers(&self, user: &User) -> bool {
        match self {
            Self::All => true,
            Self::Groups(groups) => user.groups.iter().any(|g| groups.contains(g)),
        }
    }

    /// "All users" or the groups, comma-separated, for pages.
    pub fn describe(&self) -> String {
        match self {
            Self::All => "All users".into(),
            Self::Groups(groups) if groups.is_empty() => "No users".into(),
            Self::Groups(groups) => groups.join(", "),
        }
    }

    /// Parses a comma-separated list of groups; empty or `*` means all users.
    pub fn parse(text: &str) -> Self {
        let groups: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect();
        if groups.is_empty() || groups.iter().any(|g| g == "*") {
            Self::All
        } else {
            Self::Groups(groups)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_round_trip_and_are_all_listed() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        let mut sorted = Permission::ALL.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), Permission::ALL.len());
    }

    #[test]
    fn builtin_roles_keep_their_first_ids() {
        for r in BuiltinRole::ALL {
            assert_eq!(BuiltinRole::of(&RoleId::new(r.id())), Some(r));
        }
        assert!(BuiltinRole::Administrator
            .role()
            .allows(Permission::ManageOperators));
        assert!(!BuiltinRole::HelpDesk
            .role()
            .allows(Permission::ManageDevices));
        assert!(BuiltinRole::HelpDesk
            .role()
            .allows(Permission::UnlockDevice));
        assert!(!BuiltinRole::Auditor.role().allows(Permission::IssueDevice));
    }

    #[test]
    fn scope_covers_members_of_its_groups() {
        let mut user: User = serde_json::from_value(serde_json::json!({
            "uid": "a", "given_name": "", "family_name": "", "display_name": "", "email": "",
            "upn": "", "employee_id": "", "department": "", "title": "",
            "groups": ["engineering"], "source": "local", "attributes": {}, "has_photo": false
        }))
        .unwrap();
        assert!(Scope::All.covers(&user));
        assert!(Scope::parse("engineering, sales").covers(&user));
        assert!(!Scope::parse("sales").covers(&user));
        user.groups.clear();
        assert!(!Scope::parse("sales").covers(&user));
        assert_eq!(Scope::parse(" , "), Scope::All);
        assert_eq!(Scope::parse("*"), Scope::All);
    }
}

//! `tessera operators`: the Operators page on the command line, for whoever runs the server (a
//! locked-out administrator included). It acts as the operator `cli`, audited like anyone else.

use crate::{open, DataArgs};
use clap::Subcommand;
use tessera_core::ids::{OperatorId, RoleId, UserId};
use tessera_core::model::Scope;
use tessera_core::operators::{self, OperatorForm};
use tessera_core::services::Actor;
use tessera_core::CoreError;

#[derive(Subcommand)]
pub enum OperatorsCommand {
    /// Create an operator; prints their one-time password (changed at first sign-in).
    Add {
        #[command(flatten)]
        data: DataArgs,
        /// The name they sign in with.
        id: String,
        #[arg(long)]
        display_name: Option<String>,
        /// administrator, security_officer, issuer, help_desk, auditor or a custom role's id.
        #[arg(long)]
        role: String,
        /// User groups, comma-separated, whose users they see [default: all users].
        #[arg(long, default_value = "")]
        scope: String,
        /// The user this operator is (their Tessera card then signs them in).
        #[arg(long)]
        user: Option<String>,
    },
    /// Every operator as a table: name, role, scope, state, second factor.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Give an operator another role (and, with --scope, another scope).
    SetRole {
        #[command(flatten)]
        data: DataArgs,
        id: String,
        role: String,
        #[arg(long)]
        scope: Option<String>,
    },
    /// Stop an operator from signing in; their sessions end.
    Disable {
        #[command(flatten)]
        data: DataArgs,
        id: String,
    },
    /// Let a disabled operator sign in again.
    Enable {
        #[command(flatten)]
        data: DataArgs,
        id: String,
    },
    /// A new one-time password for an operator (printed once); their sessions end.
    ResetPassword {
        #[command(flatten)]
        data: DataArgs,
        id: String,
    },
    /// Remove an operator's authenticator app (a lost phone).
    ResetTotp {
        #[command(flatten)]
        data: DataArgs,
        id: String,
    },
    Delete {
        #[command(flatten)]
        data: DataArgs,
        id: String,
    },
}

fn coded(e: CoreError) -> String {
    format!("{} {e}", e.code().as_str())
}

/// The form of an existing operator, to change one thing of it.
fn form_of(o: &tessera_core::model::Operator) -> OperatorForm {
    OperatorForm {
        display_name: o.display_name.clone(),
        role: o.role.clone(),
        scope: o.scope.clone(),
        enabled: o.enabled,
        user: o.user.clone(),
    }
}

pub async fn operators_command(command: OperatorsCommand) -> Result<(), String> {
    let actor = Actor::cli();
    match command {
        OperatorsCommand::Add {
            data,
            id,
            display_name,
            role,
            scope,
            user,
        } => {
            let t = open(&data).await?;
            let form = OperatorForm {
                display_name: display_name.unwrap_or_else(|| id.clone()),
                role: RoleId::new(role),
                scope: Scope::parse(&scope),
                enabled: true,
                user: user.map(UserId::new),
            };
            let password = operators::create(&t.services, &actor, &id, form)
                .await
                .map_err(coded)?;
            println!("{}", password.expose());
            eprintln!("One-time password of {id}: they choose their own at first sign-in.");
        }
        OperatorsCommand::List { data } => {
            let t = open(&data).await?;
            let roles = operators::roles(&t.services, &actor).await.map_err(coded)?;
            println!(
                "{:<20} {:<22} {:<28} {:<9} SIGN-IN",
                "OPERATOR", "ROLE", "SCOPE", "STATE"
            );
            for o in operators::list(&t.services, &actor).await.map_err(coded)? {
                let role = roles
                    .iter()
                    .find(|r| r.id == o.role)
                    .map(|r| r.name.clone())
                    .unwrap_or_else(|| o.role.0.clone());
                let second = if o.totp.as_ref().is_some_and(|t| t.confirmed) {
                    "password+totp"
                } else {
                    "password"
                };
                println!(
                    "{:<20} {:<22} {:<28} {:<9} {second}",
                    o.id,
                    role,
                    o.scope.describe(),
                    if o.enabled { "enabled" } else { "disabled" },
                );
            }
        }
        OperatorsCommand::SetRole {
            data,
            id,
            role,
            scope,
        } => {
            let t = open(&data).await?;
            let id = OperatorId::new(id);
            let o = operators::get(&t.services, &actor, &id)
                .await
                .map_err(coded)?;
            let form = OperatorForm {
                role: RoleId::new(role),
                scope: scope.map(|s| Scope::parse(&s)).unwrap_or(o.scope.clone()),
                ..form_of(&o)
            };
            operators::update(&t.services, &actor, &id, form)
                .await
                .map_err(coded)?;
        }
        OperatorsCommand::Disable { data, id } => set_enabled(&data, &actor, id, false).await?,
        OperatorsCommand::Enable { data, id } => set_enabled(&data, &actor, id, true).await?,
        OperatorsCommand::ResetPassword { data, id } => {
            let t = open(&data).await?;
            let password = operators::reset_password(&t.services, &actor, &OperatorId::new(&id))
                .await
                .map_err(coded)?;
            println!("{}", password.expose());
            eprintln!("One-time password of {id}: they choose their own at next sign-in.");
        }
        OperatorsCommand::ResetTotp { data, id } => {
            let t = open(&data).await?;
            operators::reset_totp(&t.services, &actor, &OperatorId::new(id))
                .await
                .map_err(coded)?;
        }
        OperatorsCommand::Delete { data, id } => {
            let t = open(&data).await?;
            operators::delete(&t.services, &actor, &OperatorId::new(id))
                .await
                .map_err(coded)?;
        }
    }
    Ok(())
}

async fn set_enabled(
    data: &DataArgs,
    actor: &Actor,
    id: String,
    enabled: bool,
) -> Result<(), String> {
    let t = open(data).await?;
    let id = OperatorId::new(id);
    let o = operators::get(&t.services, actor, &id)
        .await
        .map_err(coded)?;
    let form = OperatorForm {
        enabled,
        ..form_of(&o)
    };
    operators::update(&t.services, actor, &id, form)
        .await
        .map_err(coded)?;
    Ok(())
}

//! The stock lifecycle of a card: one pure transition function (see the table in `stock.rs`),
//! and the command that takes a card to the state an administrator asks for.

use crate::error::CoreError;
use crate::model::StockState;

/// What happens to a stock card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockCommand {
    Issue,
    Return,
    Restock,
    Destroy,
    /// Stay in the same state (at another location).
    Move,
}

impl StockCommand {
    /// The past participle used in messages ("cannot be restocked").
    pub fn verb(self) -> &'static str {
        match self {
            Self::Issue => "issued",
            Self::Return => "returned",
            Self::Restock => "restocked",
            Self::Destroy => "destroyed",
            Self::Move => "moved",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a card that is {state} cannot be {command}")]
pub struct StockTransitionRefused {
    pub state: StockState,
    pub command: &'static str,
}

/// The one rule of the stock lifecycle (see the module documentation).
pub fn transition(
    state: StockState,
    command: StockCommand,
) -> Result<StockState, StockTransitionRefused> {
    use StockCommand as C;
    use StockState as S;
    match (state, command) {
        (S::InStock, C::Issue) => Ok(S::Issued),
        (S::Issued, C::Return) => Ok(S::Returned),
        (S::Returned, C::Restock) => Ok(S::InStock),
        (S::InStock | S::Issued | S::Returned, C::Destroy) => Ok(S::Destroyed),
        (S::InStock | S::Returned, C::Move) => Ok(state),
        _ => Err(StockTransitionRefused {
            state,
            command: command.verb(),
        }),
    }
}

/// The command that takes a card from `from` to the state an administrator asked for; `Issued`
/// is refused (a card becomes issued by issuing it).
pub fn command_for(from: StockState, to: StockState) -> Result<StockCommand, CoreError> {
    Ok(match to {
        _ if to == from => StockCommand::Move,
        StockState::InStock => StockCommand::Restock,
        StockState::Returned => StockCommand::Return,
        StockState::Destroyed => StockCommand::Destroy,
        StockState::Issued => {
            return Err(CoreError::Invalid(
                "a card becomes issued by issuing it, not by hand".into(),
            ))
        }
    })
}

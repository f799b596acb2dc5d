//! How a step ends when it does not finish: its error, with its kind as data.

use crate::checklist::{StepOutput, StepStatus};
use crate::db::DbError;
use crate::db::runner::RunError;
use crate::engine::{ApplyError, EngineError};
use crate::script::Location;

pub(super) type StepResult = Result<(StepStatus, StepOutput), StepError>;

/// Why a step did not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepErrorKind {
    /// A guard or a check said no (nothing was changed by it).
    Refused,
    /// The work failed.
    Failed,
    /// The operator cancelled it.
    Cancelled,
}

/// A step's error: what to tell the operator, which kind of ending it is, and where in a
/// script when a script is to blame.
#[derive(Debug, Clone)]
pub(crate) struct StepError {
    pub kind: StepErrorKind,
    pub message: String,
    pub location: Option<Location>,
}

impl StepError {
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            kind: StepErrorKind::Failed,
            message: message.into(),
            location: None,
        }
    }

    pub fn cancelled(message: impl Into<String>) -> Self {
        Self {
            kind: StepErrorKind::Cancelled,
            message: message.into(),
            location: None,
        }
    }

    /// The same error, placed in a script.
    pub(super) fn at(self, location: Option<&Location>) -> Self {
        Self {
            location: location.cloned(),
            ..self
        }
    }

    pub fn is_refusal(&self) -> bool {
        self.kind == StepErrorKind::Refused
    }

    /// The same error as a refusal (the plan step only decides: whatever stops it is one).
    pub fn into_refusal(self) -> Self {
        Self {
            kind: StepErrorKind::Refused,
            ..self
        }
    }

    /// The error of a step that ended while the operator's cancellation was pending: it says
    /// so. A script stopped by the cancellation (`db::runner`) is of the kind already; the
    /// errors of `backup`, `engine::restore` and the comparison of the source still say
    /// "cancelled" in words only, and such a message is taken as it is. A refusal stays one.
    pub fn after_cancel(self) -> Self {
        let message = if self.kind == StepErrorKind::Cancelled || self.message.contains("cancelled")
        {
            self.message
        } else {
            format!("cancelled by the operator ({})", self.message)
        };
        let kind = match self.kind {
            StepErrorKind::Refused => StepErrorKind::Refused,
            _ => StepErrorKind::Cancelled,
        };
        Self {
            kind,
            message,
            location: self.location,
        }
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for StepError {
    fn from(message: String) -> Self {
        Self::failed(message)
    }
}

impl From<&str> for StepError {
    fn from(message: &str) -> Self {
        Self::failed(message)
    }
}

impl From<DbError> for StepError {
    fn from(e: DbError) -> Self {
        Self::failed(e.to_string())
    }
}

impl From<crate::faults::InjectedFault> for StepError {
    fn from(e: crate::faults::InjectedFault) -> Self {
        Self::failed(e.to_string())
    }
}

impl From<EngineError> for StepError {
    fn from(e: EngineError) -> Self {
        Self::failed(e.to_string()).at(e.location())
    }
}

impl From<ApplyError> for StepError {
    fn from(e: ApplyError) -> Self {
        let error = if e.is_cancelled() {
            Self::cancelled(e.to_string())
        } else {
            Self::failed(e.to_string())
        };
        error.at(e.location())
    }
}

impl From<RunError> for StepError {
    fn from(e: RunError) -> Self {
        ApplyError::from(e).into()
    }
}

impl From<crate::engine::plan::PlanError> for StepError {
    fn from(e: crate::engine::plan::PlanError) -> Self {
        Self::failed(e.to_string())
    }
}

/// A guard or check said no.
pub(super) fn refused(message: impl Into<String>) -> StepError {
    StepError {
        kind: StepErrorKind::Refused,
        message: message.into(),
        location: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_after_a_cancel_says_so_once_and_a_refusal_stays_one() {
        let e = StepError::failed("connection lost").after_cancel();
        assert_eq!(e.kind, StepErrorKind::Cancelled);
        assert_eq!(e.message, "cancelled by the operator (connection lost)");
        let e = StepError::failed("the restore was cancelled").after_cancel();
        assert_eq!(e.message, "the restore was cancelled");
        let e = refused("no such database").after_cancel();
        assert!(e.is_refusal());
        assert_eq!(e.message, "cancelled by the operator (no such database)");
    }
}

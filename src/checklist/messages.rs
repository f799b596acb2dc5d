//! The checklist's vocabulary: which plan, the work it asks for, the questions it asks, the
//! messages it takes, the effects it returns, where it is and how it ended.

use std::time::Duration;

use serde::Serialize;

use super::{ManualItem, SessionInfo, SourceVerdict, SpaceLine, StepId, StepOutput, StepStatus};
use crate::events::Event;
use crate::script::Location;

/// Which checklist: each is a plan in the same machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    Upgrade,
    /// The upgrade on a throw-away copy: nothing users see changes, the copy is dropped.
    Rehearsal,
    Fixup,
    Restore,
    Bootstrap,
}

impl PlanKind {
    /// The steps, in order.
    pub fn steps(self) -> &'static [StepId] {
        use StepId::*;
        match self {
            // The backup is taken from the frozen source while the clone is upgraded and
            // checked: the clone comes first (CREATE DATABASE needs the source to itself), the
            // banner after the backup's snapshot (the backup holds the source as users left
            // it), and the cut-over waits until the backup is verified.
            PlanKind::Upgrade => &[
                Plan,
                Confirmations,
                ConnectedUsers,
                DiskSpace,
                Fingerprint,
                Clone,
                Backup,
                Banner,
                CloneUpgrade,
                SanityChecks,
                CutOver,
            ],
            PlanKind::Fixup => &[
                Plan,
                Confirmations,
                ConnectedUsers,
                DiskSpace,
                Fingerprint,
                Backup,
                Banner,
                ApplyFixups,
                SanityChecks,
                CutOver,
            ],
            PlanKind::Rehearsal => &[
                Plan,
                ConnectedUsers,
                DiskSpace,
                Fingerprint,
                Clone,
                Backup,
                Banner,
                CloneUpgrade,
                SanityChecks,
                CutOver,
            ],
            PlanKind::Restore => &[Plan, DiskSpace, Restore],
            PlanKind::Bootstrap => &[Plan, Bootstrap],
        }
    }
}

/// Work for the executor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// Carry out a step.
    Step { step: StepId },
    /// The operator accepts what a step found (a fingerprint mismatch, an unmeasurable disk):
    /// record it and finish the step.
    Accept { step: StepId },
    /// Ask connected users to leave (NOTIFY), then list the sessions again.
    Notify,
    /// End these sessions (the operator consented), then list the sessions again.
    Terminate { pids: Vec<i32> },
    /// Wait for a step that went on in the background (the backup) and finish it.
    Await { step: StepId },
    /// Undo what the run changed: banner, access, clone, renames.
    FailurePath,
}

/// What the operator must decide before the checklist can go on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "question", rename_all = "snake_case")]
pub enum Question {
    /// The manual items must be ticked.
    Confirmations { items: Vec<ManualItem> },
    /// Others are connected: wait and refresh, ask them to leave, terminate them, or stop.
    Sessions { sessions: Vec<SessionInfo> },
    /// The source schema differs from the reference: proceed (recorded) or stop.
    FingerprintMismatch { diff: String },
    /// Free space cannot be measured here (remote server): confirm there is room, or stop.
    DiskUnmeasurable { lines: Vec<SpaceLine> },
    /// Everything is checked: point users at the new database now?
    CutOver,
}

/// The operator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Tick items (by index) of the confirmations; all ticked completes the step.
    Tick(Vec<usize>),
    Refresh,
    Notify,
    Terminate,
    /// Proceed despite what the step found (recorded).
    Proceed,
    /// Stop: take the failure path.
    Abort,
}

/// What the executor reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecEvent {
    StepStarted(StepId),
    /// A log line, progress or a check result from the engine.
    Engine(Event),
    /// A step finished, or (status `Running`) goes on in the background: the checklist moves
    /// on and waits for it with [`Job::Await`] before the cut-over.
    StepDone {
        step: StepId,
        status: StepStatus,
        output: StepOutput,
        elapsed: Duration,
    },
    /// `refused`: a guard or a check said no (as opposed to an error). `location`: where in a
    /// script, when a script is to blame (not in the JSON events: the error says it).
    StepFailed {
        step: StepId,
        error: String,
        elapsed: Duration,
        refused: bool,
        location: Option<Location>,
    },
    /// The failure path finished: what was undone, what the operator should do, and whether
    /// the run had changed anything at all.
    FailurePathDone {
        undone: Vec<String>,
        advice: Vec<String>,
        changed_anything: bool,
        /// Whether the source database was changed, as measured (None: the run never read a
        /// source database).
        source: Option<SourceVerdict>,
    },
    /// A step going on in the background has ended (its result is handed over when the
    /// checklist awaits it): how long it took, and whether it succeeded.
    BackgroundEnded {
        step: StepId,
        ok: bool,
        took: Duration,
    },
    /// The executor thread died (a panic): shown as a failed step, never a hang.
    Crashed(String),
}

/// A message to the checklist.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "one message per executor event or key: boxing would cost more than the copy"
)]
pub enum Msg {
    Start,
    Exec(ExecEvent),
    Answer(Answer),
    /// The operator asked to cancel (the front end already confirmed it).
    Cancel,
}

/// What the front end must do next.
#[must_use]
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    None,
    Run(Job),
    Ask(Question),
    /// Interrupt the running job (cancel the query, stop the child process).
    Interrupt,
    /// The checklist is over.
    Done(Outcome),
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[expect(
    clippy::large_enum_variant,
    reason = "one outcome per run: boxing the failure would cost more than its size"
)]
pub enum Outcome {
    Success,
    Failed {
        step: Option<StepId>,
        what: String,
        undone: Vec<String>,
        advice: Vec<String>,
        cancelled: bool,
        /// A guard or a check said no (connected users, schema drift, a failed check), as
        /// opposed to an error.
        refused: bool,
        /// Whether the run had changed anything before it stopped.
        changed_anything: bool,
        /// Whether the source database was changed, as measured; front ends print it.
        source: Option<SourceVerdict>,
        /// Where in a script the failure is, when a script is to blame (for the report; the
        /// front ends show `what`).
        #[serde(skip)]
        location: Option<Location>,
    },
}

impl Outcome {
    /// A run cancelled before it changed anything: `what` says when.
    pub fn cancelled(what: impl Into<String>) -> Outcome {
        Outcome::Failed {
            step: None,
            what: what.into(),
            undone: vec![],
            advice: vec![],
            cancelled: true,
            refused: false,
            changed_anything: false,
            source: None,
            location: None,
        }
    }

    /// The documented exit code for this outcome.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Success => crate::exit::SUCCESS,
            Outcome::Failed {
                cancelled: true, ..
            } => crate::exit::CANCELLED,
            Outcome::Failed { refused: true, .. } => crate::exit::REFUSED,
            Outcome::Failed { .. } => crate::exit::FAILED,
        }
    }
}

/// Where the checklist is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    NotStarted,
    /// The executor works on this step.
    Running(usize),
    /// Waiting for the operator on this step.
    Asking(usize, Question),
    /// The failure path runs after a failure (or cancellation) at this step.
    Undoing {
        step: Option<usize>,
        what: String,
        cancelled: bool,
        refused: bool,
        location: Option<Location>,
    },
    Finished(Outcome),
}

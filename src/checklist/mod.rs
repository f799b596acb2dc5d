//! The downtime checklist as a pure state machine: a state per step, messages in, effects out.
//!
//! No terminal and no database here: the executor does the work a [`Job`] names and reports
//! back with [`ExecEvent`]s; a front end (headless printer, wizard) answers [`Question`]s and
//! carries out [`Effect`]s. Every path — success, refusal, failure at any step, cancellation —
//! is therefore tested by feeding messages (see `tests.rs`).

pub mod model;
mod source;
mod step;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::Serialize;

pub use model::{CheckResult, SessionInfo, StepReport};
pub use source::{SourceReading, SourceVerdict, TableWrites, verdict as source_verdict};
pub use step::{
    BackupChoice, BackupOutput, ManualItem, PlanSummary, SpaceLine, StepId, StepOutput, StepStatus,
    StepView, manual_items, old_database_sentence,
};

use crate::events::Event;

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
    /// `refused`: a guard or a check said no (as opposed to an error).
    StepFailed {
        step: StepId,
        error: String,
        elapsed: Duration,
        refused: bool,
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
    },
}

impl Outcome {
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
    },
    Finished(Outcome),
}

/// The whole checklist: its steps and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Checklist {
    pub kind: PlanKind,
    pub steps: Vec<StepView>,
    pub phase: Phase,
    /// The latest progress of the running step (unit, done, total).
    pub progress: Option<(crate::events::Unit, u64, Option<u64>)>,
    pub confirmations: Vec<ManualItem>,
    cancel_requested: bool,
}

impl Checklist {
    pub fn new(kind: PlanKind) -> Self {
        Self {
            kind,
            steps: kind.steps().iter().map(|&id| StepView::new(id)).collect(),
            phase: Phase::NotStarted,
            progress: None,
            confirmations: manual_items(),
            cancel_requested: false,
        }
    }

    pub fn step(&self, id: StepId) -> Option<&StepView> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The step being worked on or asked about.
    pub fn current(&self) -> Option<usize> {
        match &self.phase {
            Phase::Running(i) | Phase::Asking(i, _) => Some(*i),
            Phase::Undoing { step, .. } => *step,
            _ => None,
        }
    }

    /// What the plan step decided, once it has run.
    pub fn plan(&self) -> Option<&PlanSummary> {
        self.step(StepId::Plan).and_then(|s| match &s.output {
            Some(StepOutput::Plan(p)) => Some(p),
            _ => None,
        })
    }

    /// Whether the operator asked to cancel (the front end escalates a second request).
    pub fn cancel_was_requested(&self) -> bool {
        self.cancel_requested
            || matches!(
                self.phase,
                Phase::Undoing {
                    cancelled: true,
                    ..
                }
            )
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished(_))
    }

    /// Feeds one message; returns what must happen next.
    pub fn update(&mut self, msg: Msg) -> Effect {
        match msg {
            Msg::Start => self.start(),
            Msg::Exec(event) => self.exec(event),
            Msg::Answer(answer) => self.answer(answer),
            Msg::Cancel => self.cancel(),
        }
    }

    fn start(&mut self) -> Effect {
        match self.phase {
            Phase::NotStarted => self.enter_next(),
            _ => Effect::None,
        }
    }

    /// A step that goes on in the background (not the one being worked on).
    fn in_background(&self) -> Option<usize> {
        self.steps.iter().enumerate().position(|(i, s)| {
            s.status == StepStatus::Running
                && !matches!(self.phase, Phase::Running(r) | Phase::Asking(r, _) if r == i)
        })
    }

    /// Begins the first pending step; before the cut-over, waits for what runs in the background.
    fn enter_next(&mut self) -> Effect {
        let next = self
            .steps
            .iter()
            .position(|s| s.status == StepStatus::Pending);
        let last = self.steps.len().saturating_sub(1);
        if next.is_none_or(|i| i == last)
            && let Some(b) = self.in_background()
        {
            self.progress = None;
            self.phase = Phase::Running(b);
            return Effect::Run(Job::Await {
                step: self.steps[b].id,
            });
        }
        match next {
            Some(i) => self.enter(i),
            None => {
                self.phase = Phase::Finished(Outcome::Success);
                Effect::Done(Outcome::Success)
            }
        }
    }

    /// Begins step `i`: the confirmations are asked here, every other step is a job.
    fn enter(&mut self, i: usize) -> Effect {
        self.progress = None;
        let view = &mut self.steps[i];
        view.status = StepStatus::Running;
        if view.id == StepId::CutOver && self.kind == PlanKind::Upgrade {
            // The one step users notice: it waits for the operator's word.
            self.phase = Phase::Asking(i, Question::CutOver);
            return Effect::Ask(Question::CutOver);
        }
        if view.id == StepId::Confirmations {
            let q = Question::Confirmations {
                items: self.confirmations.clone(),
            };
            self.phase = Phase::Asking(i, q.clone());
            return Effect::Ask(q);
        }
        self.phase = Phase::Running(i);
        Effect::Run(Job::Step { step: view.id })
    }

    fn exec(&mut self, event: ExecEvent) -> Effect {
        match event {
            ExecEvent::StepStarted(_) => Effect::None,
            ExecEvent::Engine(Event::Progress { unit, done, total }) => {
                self.progress = Some((unit, done, total));
                Effect::None
            }
            ExecEvent::Engine(_) => Effect::None,
            ExecEvent::StepDone {
                step,
                status,
                output,
                elapsed,
            } => self.step_done(step, status, output, elapsed),
            ExecEvent::StepFailed {
                step,
                error,
                elapsed,
                refused,
            } => self.step_failed(step, error, elapsed, refused),
            ExecEvent::FailurePathDone {
                undone,
                advice,
                changed_anything,
                source,
            } => self.failure_path_done(undone, advice, changed_anything, source),
            ExecEvent::BackgroundEnded { step, ok, took } => {
                if let Some(view) = self.index_of(step).and_then(|i| self.steps.get_mut(i))
                    && view.status == StepStatus::Running
                {
                    view.background_took = Some(took);
                    view.note = Some(if ok {
                        format!(
                            "finished alongside the upgrade in {}; the cut-over records it",
                            crate::format::seconds(took)
                        )
                    } else {
                        "failed alongside the upgrade: the run stops before the next step".into()
                    });
                }
                Effect::None
            }
            ExecEvent::Crashed(why) => self.crashed(why),
        }
    }

    fn index_of(&self, step: StepId) -> Option<usize> {
        self.steps.iter().position(|s| s.id == step)
    }

    fn step_done(
        &mut self,
        step: StepId,
        status: StepStatus,
        output: StepOutput,
        elapsed: Duration,
    ) -> Effect {
        let Some(i) = self.index_of(step) else {
            return Effect::None;
        };
        if self.in_background() == Some(i) && !matches!(self.phase, Phase::Running(_)) {
            // A step that went on in the background and ended before the run stopped (the
            // failure path reports a backup it keeps): recorded, nothing else changes.
            let view = &mut self.steps[i];
            view.status = status;
            view.output = Some(output);
            view.note = None;
            return Effect::None;
        }
        if !matches!(self.phase, Phase::Running(r) if r == i) {
            return Effect::None; // late news about a step that is no longer running
        }
        if self.cancel_requested {
            // The step finished before it noticed the cancellation: stop here all the same.
            return self.begin_failure_path(
                Some(i),
                "cancelled by the operator".into(),
                true,
                false,
            );
        }
        let view = &mut self.steps[i];
        view.elapsed = Some(view.elapsed.unwrap_or_default() + elapsed);
        if status == StepStatus::Running {
            // It goes on in the background: its result comes when the checklist waits for it.
            if let StepOutput::Nothing { note } = &output {
                view.note = Some(note.clone());
            }
            return self.enter_next();
        }
        view.output = Some(output.clone());
        if let Some(q) = needs_decision(&output, status) {
            self.phase = Phase::Asking(i, q.clone());
            return Effect::Ask(q);
        }
        view.status = status;
        view.note = None;
        self.enter_next()
    }

    fn step_failed(
        &mut self,
        step: StepId,
        error: String,
        elapsed: Duration,
        refused: bool,
    ) -> Effect {
        let Some(i) = self.index_of(step) else {
            return Effect::None;
        };
        if matches!(self.phase, Phase::Undoing { .. } | Phase::Finished(_)) {
            return Effect::None;
        }
        // A step in the background failed: the executor reports it instead of starting the
        // job asked for, which therefore never began.
        if let Phase::Running(r) = self.phase
            && r != i
        {
            self.steps[r].status = StepStatus::Pending;
        }
        let view = &mut self.steps[i];
        view.status = StepStatus::Failed;
        view.elapsed = Some(view.elapsed.unwrap_or_default() + elapsed);
        view.error = Some(error.clone());
        let cancelled = self.cancel_requested;
        self.begin_failure_path(Some(i), error, cancelled, refused && !cancelled)
    }

    fn begin_failure_path(
        &mut self,
        step: Option<usize>,
        what: String,
        cancelled: bool,
        refused: bool,
    ) -> Effect {
        if let Some(view) = step.and_then(|i| self.steps.get_mut(i))
            && view.status != StepStatus::Failed
        {
            view.status = StepStatus::Failed;
            view.error = Some(what.clone());
        }
        self.progress = None;
        self.phase = Phase::Undoing {
            step,
            what,
            cancelled,
            refused,
        };
        Effect::Run(Job::FailurePath)
    }

    fn failure_path_done(
        &mut self,
        undone: Vec<String>,
        advice: Vec<String>,
        changed_anything: bool,
        source: Option<SourceVerdict>,
    ) -> Effect {
        let Phase::Undoing {
            step,
            what,
            cancelled,
            refused,
        } = &self.phase
        else {
            return Effect::None;
        };
        let outcome = Outcome::Failed {
            step: step.and_then(|i| self.steps.get(i)).map(|s| s.id),
            what: what.clone(),
            undone,
            advice,
            cancelled: *cancelled,
            refused: *refused,
            changed_anything,
            source,
        };
        for view in self.steps.iter_mut() {
            match view.status {
                StepStatus::Pending => view.status = StepStatus::Skipped,
                // What went on in the background was stopped by the failure path.
                StepStatus::Running => {
                    view.status = StepStatus::Skipped;
                    view.note = Some("stopped by the failure path".into());
                }
                _ => {}
            }
        }
        self.phase = Phase::Finished(outcome.clone());
        Effect::Done(outcome)
    }

    fn crashed(&mut self, why: String) -> Effect {
        let step = self.current();
        if let Some(view) = step.and_then(|i| self.steps.get_mut(i)) {
            view.status = StepStatus::Failed;
            view.error = Some(format!("internal error: {why}"));
        }
        let outcome = Outcome::Failed {
            step: step.and_then(|i| self.steps.get(i)).map(|s| s.id),
            what: format!("pgstep's executor stopped with an internal error: {why}"),
            undone: vec![],
            advice: vec!["Run `pgstep recover` to undo what this run changed (its journal lists every change).".into()],
            cancelled: false,
            refused: false,
            changed_anything: true,
            source: None,
        };
        self.phase = Phase::Finished(outcome.clone());
        Effect::Done(outcome)
    }

    fn answer(&mut self, answer: Answer) -> Effect {
        let Phase::Asking(i, question) = self.phase.clone() else {
            return Effect::None;
        };
        match (question, answer) {
            // The operator (or the headless policy) declines to go on: a refusal, not an error.
            (_, Answer::Abort) => {
                self.begin_failure_path(Some(i), "stopped by the operator".into(), false, true)
            }
            (Question::Confirmations { .. }, Answer::Tick(items)) => self.tick(i, &items),
            (Question::Sessions { .. }, Answer::Refresh) => self.rerun(
                i,
                Job::Step {
                    step: StepId::ConnectedUsers,
                },
            ),
            (Question::Sessions { .. }, Answer::Notify) => self.rerun(i, Job::Notify),
            (Question::Sessions { sessions }, Answer::Terminate) => {
                let pids = sessions.iter().map(|s| s.pid).collect();
                self.rerun(i, Job::Terminate { pids })
            }
            (Question::FingerprintMismatch { .. }, Answer::Proceed) => self.rerun(
                i,
                Job::Accept {
                    step: StepId::Fingerprint,
                },
            ),
            (Question::DiskUnmeasurable { .. }, Answer::Proceed) => self.rerun(
                i,
                Job::Accept {
                    step: StepId::DiskSpace,
                },
            ),
            (Question::CutOver, Answer::Proceed) => self.rerun(
                i,
                Job::Step {
                    step: StepId::CutOver,
                },
            ),
            _ => Effect::None, // an answer that does not fit the question changes nothing
        }
    }

    fn tick(&mut self, i: usize, items: &[usize]) -> Effect {
        for &n in items {
            if let Some(item) = self.confirmations.get_mut(n) {
                item.ticked = true;
            }
        }
        if self.confirmations.iter().all(|c| c.ticked) {
            let view = &mut self.steps[i];
            view.status = StepStatus::Done;
            view.output = Some(StepOutput::Confirmed(self.confirmations.clone()));
            return self.enter_next();
        }
        let q = Question::Confirmations {
            items: self.confirmations.clone(),
        };
        self.phase = Phase::Asking(i, q.clone());
        Effect::Ask(q)
    }

    fn rerun(&mut self, i: usize, job: Job) -> Effect {
        self.phase = Phase::Running(i);
        Effect::Run(job)
    }

    fn cancel(&mut self) -> Effect {
        match self.phase.clone() {
            Phase::NotStarted => {
                let outcome = Outcome::Failed {
                    step: None,
                    what: "cancelled before anything was done".into(),
                    undone: vec![],
                    advice: vec![],
                    cancelled: true,
                    refused: false,
                    changed_anything: false,
                    source: None,
                };
                self.phase = Phase::Finished(outcome.clone());
                Effect::Done(outcome)
            }
            Phase::Running(_) => {
                self.cancel_requested = true;
                Effect::Interrupt
            }
            Phase::Asking(i, _) => {
                self.begin_failure_path(Some(i), "cancelled by the operator".into(), true, false)
            }
            Phase::Undoing { .. } | Phase::Finished(_) => Effect::None,
        }
    }
}

/// Whether a finished step's result needs the operator before the checklist goes on.
fn needs_decision(output: &StepOutput, status: StepStatus) -> Option<Question> {
    // A step the operator already accepted comes back as a warning: go on.
    if status == StepStatus::Warning {
        return None;
    }
    match output {
        StepOutput::Sessions { sessions, .. } if !sessions.is_empty() => Some(Question::Sessions {
            sessions: sessions.clone(),
        }),
        StepOutput::Fingerprint {
            matches: false,
            diff,
            ..
        } => Some(Question::FingerprintMismatch { diff: diff.clone() }),
        StepOutput::Disk(lines) if lines.iter().any(|l| l.available.is_none()) => {
            Some(Question::DiskUnmeasurable {
                lines: lines.clone(),
            })
        }
        _ => None,
    }
}

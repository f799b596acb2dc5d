//! The downtime checklist as a pure state machine: a state per step, messages in, effects out.
//!
//! No terminal and no database here: the executor does the work a [`Job`] names and reports
//! back with [`ExecEvent`]s; a front end (headless printer, wizard) answers [`Question`]s and
//! carries out [`Effect`]s. Every path — success, refusal, failure at any step, cancellation —
//! is therefore tested by feeding messages (see `tests.rs`).

mod messages;
pub mod model;
mod source;
mod step;
#[cfg(test)]
mod tests;
mod transitions;

pub use messages::{Answer, Effect, ExecEvent, Job, Msg, Outcome, Phase, PlanKind, Question};
pub use model::{CheckResult, SessionInfo, StepReport};
pub use source::{SourceReading, SourceVerdict, TableWrites, verdict as source_verdict};
pub use step::{
    BackupChoice, BackupOutput, ManualItem, PlanSummary, SpaceLine, StepId, StepOutput, StepStatus,
    StepView, manual_items, old_database_sentence,
};

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
}

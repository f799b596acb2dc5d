//! The checklist's transitions: what each executor event, answer and cancel request does to the
//! state, and what must happen next.

use std::time::Duration;

use crate::events::Event;
use crate::script::Location;

use super::{
    Answer, Checklist, Effect, ExecEvent, Job, Outcome, Phase, Question, SourceVerdict, StepId,
    StepOutput, StepStatus,
};

impl Checklist {
    pub(super) fn exec(&mut self, event: ExecEvent) -> Effect {
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
                location,
            } => self.step_failed(step, (error, location), elapsed, refused),
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
                ("cancelled by the operator".into(), None),
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
        (error, location): (String, Option<Location>),
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
        self.begin_failure_path(Some(i), (error, location), cancelled, refused && !cancelled)
    }

    fn begin_failure_path(
        &mut self,
        step: Option<usize>,
        (what, location): (String, Option<Location>),
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
            location,
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
            location,
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
            location: location.clone(),
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
            location: None,
        };
        self.phase = Phase::Finished(outcome.clone());
        Effect::Done(outcome)
    }

    pub(super) fn answer(&mut self, answer: Answer) -> Effect {
        let Phase::Asking(i, question) = self.phase.clone() else {
            return Effect::None;
        };
        match (question, answer) {
            // The operator (or the headless policy) declines to go on: a refusal, not an error.
            (_, Answer::Abort) => self.begin_failure_path(
                Some(i),
                ("stopped by the operator".into(), None),
                false,
                true,
            ),
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

    pub(super) fn cancel(&mut self) -> Effect {
        match self.phase.clone() {
            Phase::NotStarted => {
                let outcome = Outcome::cancelled("cancelled before anything was done");
                self.phase = Phase::Finished(outcome.clone());
                Effect::Done(outcome)
            }
            Phase::Running(_) => {
                self.cancel_requested = true;
                Effect::Interrupt
            }
            Phase::Asking(i, _) => self.begin_failure_path(
                Some(i),
                ("cancelled by the operator".into(), None),
                true,
                false,
            ),
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

//! The headless front: the session's checklist without a terminal. A [`Decider`] answers the
//! checklist's questions at once; the reporters print what happens.

use std::time::Duration;

use super::{Flow, Front, Handled, Input, Interruption, Shown, Steer, Written};
use crate::checklist::{Answer, Checklist, Effect, ExecEvent, Msg, Outcome, PlanKind, Question};

/// How often the loop looks for an operator's interrupt while it waits for the executor.
const POLL: Duration = Duration::from_millis(100);

/// Answers the checklist's questions without a person (the command line's policy).
pub trait Decider {
    /// The answer, and how it was reached in words (empty: nothing to say).
    fn answer(&mut self, question: &Question) -> (Answer, String);
}

/// The checklist run by a [`Decider`].
pub struct Headless<'d> {
    checklist: Checklist,
    decider: &'d mut dyn Decider,
    /// Why the decider stopped the run, in the operator's terms.
    abort_reason: Option<String>,
    outcome: Option<Outcome>,
    pub(super) written: Option<Written>,
}

impl<'d> Headless<'d> {
    pub fn new(kind: PlanKind, decider: &'d mut dyn Decider) -> Self {
        Self {
            checklist: Checklist::new(kind),
            decider,
            abort_reason: None,
            outcome: None,
            written: None,
        }
    }

    /// The checklist and its outcome.
    pub fn into_result(self) -> (Checklist, Outcome) {
        let outcome = self.outcome.unwrap_or_else(|| Outcome::Failed {
            step: None,
            what: "the run ended without an outcome".into(),
            undone: vec![],
            advice: vec![],
            cancelled: false,
            refused: false,
            changed_anything: false,
            source: None,
            location: None,
        });
        (self.checklist, outcome)
    }

    /// The executor's thread ended: the checklist takes it as a crash.
    pub(super) fn executor_gone(&mut self, steer: &mut Steer<'_>) {
        let event = ExecEvent::Crashed("the executor thread ended unexpectedly".into());
        let effect = self.checklist.update(Msg::Exec(event));
        self.follow(effect, steer);
    }

    /// Carries out an effect and the effects that follow from it, answering questions at once,
    /// until there is nothing left to do but wait (or the run is done).
    fn follow(&mut self, mut effect: Effect, steer: &mut Steer<'_>) {
        loop {
            effect = match steer.carry_out(effect) {
                Effect::None | Effect::Run(_) | Effect::Interrupt => return,
                Effect::Done(mut outcome) => {
                    // Say why the run stopped in the operator's terms, not "stopped by the
                    // operator".
                    if let (Outcome::Failed { what, .. }, Some(reason)) =
                        (&mut outcome, self.abort_reason.take())
                    {
                        *what = reason;
                    }
                    self.outcome = Some(outcome);
                    return;
                }
                Effect::Ask(q) => {
                    let (answer, words) = self.decider.answer(&q);
                    if answer == Answer::Abort {
                        self.abort_reason = Some(words.clone());
                    }
                    steer.show(&self.checklist, &Shown::Answered(words));
                    self.checklist.update(Msg::Answer(answer))
                }
            };
        }
    }

    fn input(&mut self, input: Input, steer: &mut Steer<'_>) {
        let effect = match input {
            Input::Exec(event) => {
                steer.show(&self.checklist, &Shown::Exec(&event));
                self.checklist.update(Msg::Exec(event))
            }
            Input::ExecutorGone => return self.executor_gone(steer),
            Input::Term(_) | Input::Wake | Input::TerminalLost => return,
        };
        self.follow(effect, steer);
    }
}

impl Front for Headless<'_> {
    fn start(&mut self, steer: &mut Steer<'_>) {
        let effect = self.checklist.update(Msg::Start);
        self.follow(effect, steer);
    }

    fn timeout(&self) -> Duration {
        POLL
    }

    fn batch(&mut self, inputs: &mut dyn Iterator<Item = Input>, steer: &mut Steer<'_>) -> Handled {
        // Once the run is done, whatever else is queued is not shown.
        while self.outcome.is_none() {
            let Some(input) = inputs.next() else { break };
            self.input(input, steer);
        }
        Handled::default()
    }

    /// The first signal stops the run at the next safe point and takes the failure path; the
    /// next (once cancelling) interrupts the running statement.
    fn interrupted(&mut self, what: Interruption, steer: &mut Steer<'_>) -> Flow {
        if !what.signals || self.outcome.is_some() {
            return Flow::Go;
        }
        let first = what.handled_before == 0 || !self.checklist.cancel_was_requested();
        if first {
            steer.show(&self.checklist, &Shown::Answered("interrupted: stopping at the next safe point, then undoing what was done (interrupt again to cancel the running statement at once)".into()));
            let effect = self.checklist.update(Msg::Cancel);
            self.follow(effect, steer);
        } else {
            steer.show(
                &self.checklist,
                &Shown::Answered("interrupted again: cancelling the running statement".into()),
            );
            steer.interrupt();
        }
        Flow::Go
    }

    fn state(&mut self) -> (&Checklist, Option<&mut Outcome>) {
        (&self.checklist, self.outcome.as_mut())
    }

    fn finished(&mut self, report: Option<&Written>) {
        self.written = report.cloned();
    }

    fn quit_after_outcome(&self) -> bool {
        true
    }
}

//! The one loop that runs a checklist, for the wizard and for headless runs alike.
//!
//! A [`Session`] owns the executor (jobs out, events in through one [`Inbox`]) and the
//! operator's interrupts; it waits on the inbox, hands each batch of inputs to its [`Front`],
//! carries out the checklist's effects, turns signals into cancellation (the first stops the
//! run at the next safe point and takes the failure path, the next interrupts what is
//! running), names the cause at the end (SIGTERM, a lost terminal), writes the run's report
//! once, and fans every event out to its [`Reporter`]s.
//!
//! The two fronts differ only in who answers the checklist's questions and what is shown:
//! [`Headless`] answers with a [`Decider`] (the command line's policy) and prints through its
//! reporters; the wizard (`crate::ui`) answers with its dialogs and draws its screens.

mod headless;
mod inbox;

use std::path::PathBuf;
use std::time::Duration;

pub use headless::{Decider, Headless};
pub use inbox::{DRAIN_BUDGET, Inbox, Input, Senders, inbox};

use crate::checklist::{Checklist, Effect, ExecEvent, Job, Outcome};
use crate::executor::{Executor, RunSpec};
use crate::run_report::ReportContext;
use crate::signals::Interrupts;

/// What the session shows its reporters.
#[derive(Debug, Clone)]
pub enum Shown<'a> {
    Exec(&'a ExecEvent),
    /// How a question (or an interrupt) was answered, in words.
    Answered(String),
}

/// Where the run's report went: its Markdown and JSON files, or why it was not written (shared:
/// the headless front keeps a copy).
pub type Written = Result<(PathBuf, PathBuf), std::sync::Arc<std::io::Error>>;

/// Follows a run: every event as it happens, then its end.
pub trait Reporter {
    /// An executor event (before the checklist takes it) or how something was answered.
    fn shown(&mut self, checklist: &Checklist, shown: &Shown<'_>);

    /// The run ended with `outcome`; `report` is where its report went (None: no report asked).
    fn finished(&mut self, _checklist: &Checklist, _outcome: &Outcome, _report: Option<&Written>) {}
}

/// A closure as a reporter (tests and `drive::run` follow the events that way).
pub struct ShowFn<'f>(pub &'f mut dyn FnMut(&Checklist, Shown<'_>));

impl Reporter for ShowFn<'_> {
    fn shown(&mut self, checklist: &Checklist, shown: &Shown<'_>) {
        (self.0)(checklist, shown.clone());
    }
}

/// Writes the run's report, once, when the checklist says the run is done.
pub struct ReportBuilder {
    ctx: ReportContext,
}

impl ReportBuilder {
    pub fn new(ctx: ReportContext) -> Self {
        Self { ctx }
    }

    fn write(&self, checklist: &Checklist, outcome: &Outcome) -> Written {
        crate::run_report::write(checklist, outcome, &self.ctx).map_err(std::sync::Arc::new)
    }
}

/// Whether the loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Flow {
    Go,
    /// The front is done: the loop ends now (the events still queued stay queued).
    Stop,
}

/// What a batch of inputs did, as far as the loop cares.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    /// The front is done: the loop ends now.
    pub stop: bool,
    /// The terminal's input failed: the terminal is gone.
    pub terminal_lost: bool,
}

/// Interrupts that arrived since the loop last looked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interruption {
    /// The terminal went away (SIGHUP, or its input failed), for the first time.
    pub hang_up: bool,
    /// New interrupting signals arrived.
    pub signals: bool,
    /// How many signals had been handled before these.
    pub handled_before: usize,
}

/// The part of the session a front acts through: the executor and the reporters.
pub struct Steer<'r> {
    executor: Executor,
    reporters: Vec<&'r mut dyn Reporter>,
}

impl Steer<'_> {
    pub fn run(&self, job: Job) {
        self.executor.send(job);
    }

    /// Escalates cancellation: stop at a safe point, then interrupt what runs.
    pub fn interrupt(&self) {
        self.executor.interrupt();
    }

    /// Carries out what the executor must do of an effect; the rest is the front's.
    pub fn carry_out(&self, effect: Effect) -> Effect {
        match effect {
            Effect::Run(job) => {
                self.run(job);
                Effect::None
            }
            Effect::Interrupt => {
                self.interrupt();
                Effect::None
            }
            other => other,
        }
    }

    /// Shows every reporter what happened.
    pub fn show(&mut self, checklist: &Checklist, shown: &Shown<'_>) {
        for r in &mut self.reporters {
            r.shown(checklist, shown);
        }
    }
}

/// Who hosts the checklist, answers its questions and shows the run: the wizard or
/// [`Headless`].
pub trait Front {
    /// Starts the checklist.
    fn start(&mut self, steer: &mut Steer<'_>);
    /// How long the loop may wait for the next input.
    fn timeout(&self) -> Duration;
    /// The loop woke up: the clock moved on.
    fn tick(&mut self) {}
    /// One batch of inputs, each one's effects carried out at once.
    fn batch(&mut self, inputs: &mut dyn Iterator<Item = Input>, steer: &mut Steer<'_>) -> Handled;
    /// An interrupting signal, or the terminal went away.
    fn interrupted(&mut self, what: Interruption, steer: &mut Steer<'_>) -> Flow;
    /// The checklist, and its outcome once it has one (the session names its cause there).
    fn state(&mut self) -> (&Checklist, Option<&mut Outcome>);
    /// The outcome was reached and named; `report` is where its report went.
    fn finished(&mut self, _report: Option<&Written>) {}
    /// Whether the loop ends as soon as the outcome is reached.
    fn quit_after_outcome(&self) -> bool;
    /// Nothing more to handle in this turn of the loop (the wizard draws).
    fn idle(&mut self) {}
}

/// One run of a checklist: the executor, the interrupts, the reporters and the report.
pub struct Session<'r> {
    steer: Steer<'r>,
    inbox: Inbox,
    interrupts: Option<&'r Interrupts>,
    signals_seen: usize,
    hung_up: bool,
    report: Option<ReportBuilder>,
    finished: bool,
}

impl<'r> Session<'r> {
    /// Spawns the executor for `spec`; its events are forwarded into the session's inbox, whose
    /// senders are returned for the terminal's input (the wizard) to join.
    pub fn spawn(
        spec: RunSpec,
        interrupts: Option<&'r Interrupts>,
        report: Option<ReportBuilder>,
        reporters: Vec<&'r mut dyn Reporter>,
    ) -> (Self, Senders) {
        let (senders, inbox) = inbox();
        let mut executor = Executor::spawn(spec);
        senders.forward_exec_events(&mut executor);
        let session = Self {
            steer: Steer {
                executor,
                reporters,
            },
            inbox,
            interrupts,
            signals_seen: interrupts.map_or(0, Interrupts::count),
            hung_up: false,
            report,
            finished: false,
        };
        (session, senders)
    }

    /// Runs the checklist until the front is done (or every sender of the inbox is gone).
    pub fn run(&mut self, front: &mut dyn Front) {
        front.start(&mut self.steer);
        loop {
            let Ok(first) = self.inbox.wait(front.timeout()) else {
                return;
            };
            front.tick();
            let handled = front.batch(&mut self.inbox.batch(first), &mut self.steer);
            if handled.stop {
                return;
            }
            if let Some(what) = self.interruption(handled.terminal_lost)
                && front.interrupted(what, &mut self.steer) == Flow::Stop
            {
                return;
            }
            if self.reached_outcome(front) && front.quit_after_outcome() {
                return;
            }
            front.idle();
        }
    }

    /// Signals (and a lost terminal) that arrived since the last look, if any.
    fn interruption(&mut self, terminal_lost: bool) -> Option<Interruption> {
        let received = self.interrupts.map_or(0, Interrupts::count);
        let hang_up =
            !self.hung_up && (terminal_lost || self.interrupts.is_some_and(Interrupts::hung_up));
        if !hang_up && received <= self.signals_seen {
            return None;
        }
        let what = Interruption {
            hang_up,
            signals: received > self.signals_seen,
            handled_before: self.signals_seen,
        };
        self.signals_seen = received;
        self.hung_up |= hang_up;
        Some(what)
    }

    /// What stopped the run when it was not the operator's Ctrl-C, in words.
    fn cause(&self) -> Option<&'static str> {
        if self.hung_up {
            Some(crate::signals::TERMINAL_GONE)
        } else {
            self.interrupts.and_then(Interrupts::cause)
        }
    }

    /// The first time the front has an outcome: names its cause, writes the report, tells the
    /// reporters. True once the outcome is there.
    fn reached_outcome(&mut self, front: &mut dyn Front) -> bool {
        if self.finished {
            return true;
        }
        let cause = self.cause();
        let (checklist, Some(outcome)) = front.state() else {
            return false;
        };
        self.finished = true;
        // A SIGTERM or a lost terminal is not the operator's Ctrl-C: say which it was.
        crate::signals::name_the_cause(outcome, cause);
        let outcome: &Outcome = outcome;
        let written = self.report.as_ref().map(|r| r.write(checklist, outcome));
        for r in &mut self.steer.reporters {
            r.finished(checklist, outcome, written.as_ref());
        }
        front.finished(written.as_ref());
        true
    }
}

/// Runs the checklist of `spec` without a terminal: `decider` answers its questions, the
/// reporters show it, and interrupting signals cancel it. Returns the checklist, its outcome
/// and where the report went (when one was asked for).
pub fn run_headless<'r>(
    spec: RunSpec,
    decider: &mut dyn Decider,
    interrupts: Option<&'r Interrupts>,
    report: Option<ReportBuilder>,
    reporters: Vec<&'r mut dyn Reporter>,
) -> (Checklist, Outcome, Option<Written>) {
    let mut front = Headless::new(spec.kind, decider);
    let (mut session, senders) = Session::spawn(spec, interrupts, report, reporters);
    // Only the executor's events come in: no terminal.
    drop(senders);
    session.run(&mut front);
    if !session.finished {
        // Every sender is gone before the outcome: the executor's thread ended.
        front.executor_gone(&mut session.steer);
        let _ = session.reached_outcome(&mut front);
    }
    let written = front.written.take();
    let (checklist, outcome) = front.into_result();
    (checklist, outcome, written)
}

/// Like [`run_headless`], with Ctrl-C, SIGTERM and a dropped SSH session (SIGHUP) taking the
/// failure path for as long as the run lasts.
pub fn run_with_signals(
    spec: RunSpec,
    decider: &mut dyn Decider,
    report: Option<ReportBuilder>,
    reporters: Vec<&mut dyn Reporter>,
) -> (Checklist, Outcome, Option<Written>) {
    let interrupts = Interrupts::install().ok();
    let reporters = reporters
        .into_iter()
        .map(|r| r as &mut dyn Reporter)
        .collect();
    let result = run_headless(spec, decider, interrupts.as_ref(), report, reporters);
    if let Some(i) = interrupts {
        i.uninstall();
    }
    result
}

//! The interactive wizard: the checklist's steps as screens — one front of the same session
//! loop ([`crate::session`]) that runs headless, answering the checklist's questions with its
//! dialogs instead of the command line's policy.
//!
//! The session's inbox carries keys, resizes and executor events into the loop; the loop drains
//! what is queued and draws at most every [`FRAME`], so that a flood of log lines never starves
//! the keyboard. The terminal is restored on every exit: normal, error, a panic in this thread (the
//! hook below), SIGTERM or SIGHUP (the run takes its failure path first). A panic in the
//! executor thread is reported as a failed step, never by restoring the terminal under a live UI.
//! A terminal that goes away (SIGHUP, or its input failing) stops the run at once: nobody is
//! left to answer a question, and the source must not stay closed to its users waiting for one.

pub mod app;
#[cfg(test)]
mod app_tests;
mod input;
mod keys;
pub mod screens;
mod terminal;
pub mod theme;
pub mod view;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::Event as TermEvent;

pub use app::{App, Command};

use crate::checklist::{Checklist, ExecEvent, Outcome};
use crate::executor::RunSpec;
use crate::run_report::ReportContext;
use crate::session::{
    Flow, Front, Handled, Input, Interruption, ReportBuilder, Session, Steer, Written,
};
use crate::signals::Interrupts;

/// At most ~30 frames a second.
pub const FRAME: Duration = Duration::from_millis(33);

/// How often the header's clock is redrawn when nothing else changes.
const CLOCK: Duration = Duration::from_secs(1);

/// How the wizard ended.
pub struct Finished {
    pub app: App,
    pub outcome: Outcome,
    pub report: Option<PathBuf>,
}

/// Runs the checklist of `spec` in the terminal until the operator leaves the final screen.
pub fn run(spec: RunSpec, report_ctx: &ReportContext) -> std::io::Result<Finished> {
    let mut app = App::new(spec.kind);
    app.no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let interrupts = Interrupts::install().ok();
    let report = ReportBuilder::new(report_ctx.clone());
    let (mut session, senders) = Session::spawn(spec, interrupts.as_ref(), Some(report), vec![]);
    let result = terminal::Terminal::enter().map(|term| {
        input::spawn(senders);
        let mut wizard = Wizard::new(&mut app, term);
        session.run(&mut wizard);
        wizard.term.leave();
    });
    drop(session);
    if let Some(i) = interrupts {
        i.uninstall();
    }
    result?;
    let outcome = app
        .outcome
        .clone()
        .unwrap_or_else(|| Outcome::cancelled("the wizard was closed"));
    let report = app.report.clone();
    Ok(Finished {
        app,
        outcome,
        report,
    })
}

/// The wizard as the session's front: the app answers the checklist's questions with its
/// dialogs, and the terminal shows it, at most every [`FRAME`].
struct Wizard<'a> {
    app: &'a mut App,
    term: terminal::Terminal,
    started: Instant,
    last_draw: Option<Instant>,
    dirty: bool,
    /// A signal or a lost terminal: the wizard ends once the run has its outcome.
    quit_after_outcome: bool,
}

impl<'a> Wizard<'a> {
    fn new(app: &'a mut App, term: terminal::Terminal) -> Self {
        Self {
            app,
            term,
            started: Instant::now(),
            last_draw: None,
            dirty: true,
            quit_after_outcome: false,
        }
    }
}

impl Front for Wizard<'_> {
    fn start(&mut self, steer: &mut Steer<'_>) {
        carry_out(self.app.start(), steer);
    }

    /// Sleep until the next frame is due — or, with nothing to draw, until the header's clock
    /// must move: a zero timeout here would spin a core while the wizard waits.
    fn timeout(&self) -> Duration {
        let since = self.last_draw.map_or(FRAME, |t| t.elapsed());
        if self.dirty {
            FRAME.saturating_sub(since)
        } else {
            CLOCK.saturating_sub(since)
        }
    }

    fn tick(&mut self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.app.tick(ms);
    }

    /// The keys waiting, then the executor's events for at most DRAIN_BUDGET, then a frame.
    fn batch(&mut self, inputs: &mut dyn Iterator<Item = Input>, steer: &mut Steer<'_>) -> Handled {
        let batch = process_batch(self.app, inputs, |commands| carry_out(commands, steer));
        if batch.resized && !batch.quit {
            self.term.autoresize();
        }
        self.dirty |= batch.events > 0;
        Handled {
            stop: batch.quit,
            terminal_lost: batch.terminal_lost,
        }
    }

    fn interrupted(&mut self, what: Interruption, steer: &mut Steer<'_>) -> Flow {
        self.quit_after_outcome = true;
        let commands = if what.hang_up {
            self.app.hang_up()
        } else {
            self.app.cancel_now()
        };
        // At the final screen (or before anything ran) the wizard simply ends.
        if carry_out(commands, steer) {
            return Flow::Stop;
        }
        self.dirty = true;
        Flow::Go
    }

    fn state(&mut self) -> (&Checklist, Option<&mut Outcome>) {
        (&self.app.checklist, self.app.outcome.as_mut())
    }

    fn finished(&mut self, report: Option<&Written>) {
        match report {
            Some(Ok((md, _))) => self.app.report = Some(md.clone()),
            Some(Err(e)) => {
                self.app.push_log(
                    crate::events::Level::Warning,
                    &format!("could not write the report: {e}"),
                );
                self.app.report = Some(PathBuf::from("(not written)"));
            }
            None => {}
        }
    }

    fn quit_after_outcome(&self) -> bool {
        self.quit_after_outcome
    }

    fn idle(&mut self) {
        let due = self.last_draw.is_none_or(|t| t.elapsed() >= FRAME);
        if self.dirty && due {
            ui_fault(self.app);
            // After SIGHUP the terminal may be gone; the run must still finish its failure path.
            let _ = self.term.draw(self.app);
            self.last_draw = Some(Instant::now());
            self.dirty = false;
        }
        // The clock in the header moves even when nothing else does.
        if self.last_draw.is_some_and(|t| t.elapsed() >= CLOCK) {
            self.dirty = true;
        }
    }
}

/// Test builds only: `PGSTEP_FAULT=ui:panic` panics in the UI thread once the confirmations
/// are shown, to prove the terminal is restored.
#[cfg(feature = "fault-injection")]
fn ui_fault(app: &App) {
    if std::env::var("PGSTEP_FAULT").is_ok_and(|f| f == "ui:panic")
        && matches!(
            app.question(),
            Some(crate::checklist::Question::Confirmations { .. })
        )
    {
        panic!("injected panic in the UI thread");
    }
}

#[cfg(not(feature = "fault-injection"))]
fn ui_fault(_app: &App) {}

/// What a batch of events did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// How many events were handled (any: the next frame is due).
    pub events: usize,
    /// The terminal was resized: the next frame must fit its new size.
    pub resized: bool,
    /// `carry_out` said the wizard ends; the events after that one stay queued.
    pub quit: bool,
    /// The terminal's input failed: the terminal is gone.
    pub terminal_lost: bool,
}

/// Feeds events to the app one by one, handing each one's commands to `carry_out` at once (an
/// Interrupt must not wait for the end of a flood), until `carry_out` says the wizard ends or
/// there are no more. The loop's drain-then-draw step, callable with any backend (the benchmark
/// drives it with a `TestBackend`).
pub fn process_batch(
    app: &mut App,
    events: impl IntoIterator<Item = Input>,
    mut carry_out: impl FnMut(Vec<Command>) -> bool,
) -> Batch {
    let mut batch = Batch::default();
    for e in events {
        batch.events += 1;
        let commands = match e {
            Input::Term(TermEvent::Key(k)) => app.on_key(k),
            Input::Term(TermEvent::Resize(..)) => {
                batch.resized = true;
                Vec::new()
            }
            Input::TerminalLost => {
                batch.terminal_lost = true;
                Vec::new()
            }
            Input::Term(_) | Input::Wake => Vec::new(),
            Input::Exec(ev) if app.outcome.is_some() && matches!(ev, ExecEvent::Crashed(_)) => {
                Vec::new()
            }
            Input::Exec(ev) => app.on_exec(ev),
            // The executor is gone: say so, as a crash if the run was not over.
            Input::ExecutorGone if app.outcome.is_some() => Vec::new(),
            Input::ExecutorGone => {
                app.on_exec(ExecEvent::Crashed("the executor thread ended".into()))
            }
        };
        if carry_out(commands) {
            batch.quit = true;
            break;
        }
    }
    batch
}

/// Hands commands to the executor; true when the wizard should end.
fn carry_out(commands: Vec<Command>, steer: &Steer<'_>) -> bool {
    let mut quit = false;
    for c in commands {
        match c {
            Command::Run(job) => steer.run(job),
            Command::Interrupt => steer.interrupt(),
            Command::Quit => quit = true,
        }
    }
    quit
}

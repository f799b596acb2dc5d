//! The interactive wizard: the checklist's steps as screens, fed by the same executor as the
//! headless runner.
//!
//! One channel carries keys, resizes and executor events into the loop; the loop drains what is
//! queued and draws at most every [`FRAME`], so that a flood of log lines never starves the
//! keyboard. The terminal is restored on every exit: normal, error, a panic in this thread (the
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
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::Event as TermEvent;

pub use app::{App, Command};

use crate::checklist::{ExecEvent, Outcome};
use crate::executor::{Executor, RunSpec};
use crate::run_report::ReportContext;
use crate::signals::Interrupts;

/// At most ~30 frames a second.
pub const FRAME: Duration = Duration::from_millis(33);

/// How long one frame may spend on the executor's events before it draws. Keys come first
/// anyway, so even a producer faster than the screen never holds them back.
pub const DRAIN_BUDGET: Duration = Duration::from_millis(16);

/// How often the header's clock is redrawn when nothing else changes.
const CLOCK: Duration = Duration::from_secs(1);

/// What arrives in the loop.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one message per executor event or key: boxing would cost more than the copy"
)]
pub enum UiEvent {
    Term(TermEvent),
    Exec(ExecEvent),
    /// A key is waiting in the terminal lane.
    Wake,
    /// The terminal's input failed: the terminal is gone.
    TerminalLost,
}

/// The loop's two lanes: the terminal's events, and everything else (executor events, and a
/// wake-up for each terminal event). Keys never queue behind a flood of log lines.
pub struct Inbox {
    terminal: Receiver<UiEvent>,
    events: Receiver<UiEvent>,
}

/// The sending ends of an [`Inbox`].
#[derive(Clone)]
pub struct Senders {
    terminal: Sender<UiEvent>,
    events: Sender<UiEvent>,
}

impl Senders {
    /// A terminal event: into its lane, and a wake-up into the other.
    pub fn terminal(&self, e: TermEvent) -> bool {
        self.terminal.send(UiEvent::Term(e)).is_ok() && self.events.send(UiEvent::Wake).is_ok()
    }

    /// The terminal's input ended: into its lane, and a wake-up into the other.
    pub fn terminal_lost(&self) -> bool {
        self.terminal.send(UiEvent::TerminalLost).is_ok() && self.events.send(UiEvent::Wake).is_ok()
    }

    pub fn exec(&self, e: ExecEvent) -> bool {
        self.events.send(UiEvent::Exec(e)).is_ok()
    }
}

pub fn inbox() -> (Senders, Inbox) {
    let (terminal_tx, terminal) = mpsc::channel();
    let (events_tx, events) = mpsc::channel();
    (
        Senders {
            terminal: terminal_tx,
            events: events_tx,
        },
        Inbox { terminal, events },
    )
}

impl Inbox {
    /// Waits until something arrives or `timeout` passes; Err when every sender is gone.
    pub fn wait(&self, timeout: Duration) -> Result<Option<UiEvent>, RecvTimeoutError> {
        match self.events.recv_timeout(timeout) {
            Ok(e) => Ok(Some(e)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One frame's events: every terminal event waiting, then the executor's events (starting
    /// with `first`) while less than [`DRAIN_BUDGET`] has passed — taken lazily, so the budget
    /// covers handling them too; the rest waits for the next frame.
    pub fn batch(&self, first: Option<UiEvent>) -> impl Iterator<Item = UiEvent> + '_ {
        let keys: Vec<UiEvent> = self.terminal.try_iter().collect();
        let started = Instant::now();
        let rest = std::iter::from_fn(move || {
            while started.elapsed() < DRAIN_BUDGET {
                match self.events.try_recv() {
                    Ok(UiEvent::Wake) => {}
                    Ok(e) => return Some(e),
                    Err(_) => return None,
                }
            }
            None
        });
        keys.into_iter()
            .chain(first.filter(|e| !matches!(e, UiEvent::Wake)))
            .chain(rest)
    }
}

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
    let (senders, inbox) = inbox();
    let mut executor = Executor::spawn(spec);
    forward_exec_events(&mut executor, senders.clone());
    let interrupts = Interrupts::install().ok();
    let mut term = terminal::Terminal::enter()?;
    input::spawn(senders);
    let result = event_loop(
        &mut term,
        &mut app,
        &executor,
        &inbox,
        interrupts.as_ref(),
        report_ctx,
    );
    term.leave();
    if let Some(i) = interrupts {
        i.uninstall();
    }
    result?;
    let outcome = app.outcome.clone().unwrap_or(Outcome::Failed {
        step: None,
        what: "the wizard was closed".into(),
        undone: vec![],
        advice: vec![],
        cancelled: true,
        refused: false,
        changed_anything: false,
        source: None,
    });
    let report = app.report.clone();
    Ok(Finished {
        app,
        outcome,
        report,
    })
}

fn forward_exec_events(executor: &mut Executor, tx: Senders) {
    let events = executor.take_events();
    std::thread::spawn(move || {
        for e in events {
            if !tx.exec(e) {
                return;
            }
        }
        // The executor is gone: say so, as a crash if the run was not over.
        let _ = tx.exec(ExecEvent::Crashed("the executor thread ended".into()));
    });
}

fn event_loop(
    term: &mut terminal::Terminal,
    app: &mut App,
    executor: &Executor,
    inbox: &Inbox,
    interrupts: Option<&Interrupts>,
    report_ctx: &ReportContext,
) -> std::io::Result<()> {
    let started = Instant::now();
    let mut signals_seen = interrupts.map_or(0, Interrupts::count);
    let mut hung_up = false;
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    let mut quit_after_outcome = false;
    carry_out(app.start(), executor);
    loop {
        // Sleep until the next frame is due — or, with nothing to draw, until the header's
        // clock must move: a zero timeout here would spin a core while the wizard waits.
        let since = last_draw.map_or(FRAME, |t| t.elapsed());
        let timeout = if dirty {
            FRAME.saturating_sub(since)
        } else {
            CLOCK.saturating_sub(since)
        };
        let Ok(first) = inbox.wait(timeout) else {
            return Ok(());
        };
        app.tick(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        // The keys waiting, then the executor's events for at most DRAIN_BUDGET, then a frame.
        let batch = process_batch(app, inbox.batch(first), |commands| {
            carry_out(commands, executor)
        });
        if batch.quit {
            return Ok(());
        }
        if batch.resized {
            term.autoresize();
        }
        dirty |= batch.events > 0;
        let received = interrupts.map_or(0, Interrupts::count);
        let hang_up =
            !hung_up && (batch.terminal_lost || interrupts.is_some_and(Interrupts::hung_up));
        if hang_up || received > signals_seen {
            signals_seen = received;
            hung_up |= hang_up;
            quit_after_outcome = true;
            let commands = if hang_up {
                app.hang_up()
            } else {
                app.cancel_now()
            };
            // At the final screen (or before anything ran) the wizard simply ends.
            if carry_out(commands, executor) {
                return Ok(());
            }
            dirty = true;
        }
        if app.outcome.is_some() {
            if app.report.is_none() {
                // A SIGTERM or a lost terminal is not the operator's Ctrl-C: say which it was.
                let cause = if hung_up {
                    Some(crate::signals::TERMINAL_GONE)
                } else {
                    interrupts.and_then(Interrupts::cause)
                };
                if let Some(outcome) = app.outcome.as_mut() {
                    crate::signals::name_the_cause(outcome, cause);
                }
                write_report(app, report_ctx);
            }
            if quit_after_outcome {
                return Ok(());
            }
        }
        let due = last_draw.is_none_or(|t| t.elapsed() >= FRAME);
        if dirty && due {
            ui_fault(app);
            // After SIGHUP the terminal may be gone; the run must still finish its failure path.
            let _ = term.draw(app);
            last_draw = Some(Instant::now());
            dirty = false;
        }
        // The clock in the header moves even when nothing else does.
        if last_draw.is_some_and(|t| t.elapsed() >= CLOCK) {
            dirty = true;
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
    events: impl IntoIterator<Item = UiEvent>,
    mut carry_out: impl FnMut(Vec<Command>) -> bool,
) -> Batch {
    let mut batch = Batch::default();
    for e in events {
        batch.events += 1;
        let commands = match e {
            UiEvent::Term(TermEvent::Key(k)) => app.on_key(k),
            UiEvent::Term(TermEvent::Resize(..)) => {
                batch.resized = true;
                Vec::new()
            }
            UiEvent::TerminalLost => {
                batch.terminal_lost = true;
                Vec::new()
            }
            UiEvent::Term(_) | UiEvent::Wake => Vec::new(),
            UiEvent::Exec(ev) if app.outcome.is_some() && matches!(ev, ExecEvent::Crashed(_)) => {
                Vec::new()
            }
            UiEvent::Exec(ev) => app.on_exec(ev),
        };
        if carry_out(commands) {
            batch.quit = true;
            break;
        }
    }
    batch
}

/// Hands commands to the executor; true when the wizard should end.
fn carry_out(commands: Vec<Command>, executor: &Executor) -> bool {
    let mut quit = false;
    for c in commands {
        match c {
            Command::Run(job) => executor.send(job),
            Command::Interrupt => {
                executor.interrupt();
            }
            Command::Quit => quit = true,
        }
    }
    quit
}

fn write_report(app: &mut App, ctx: &ReportContext) {
    let Some(outcome) = &app.outcome else { return };
    match crate::run_report::write(&app.checklist, outcome, ctx) {
        Ok((md, _)) => app.report = Some(md),
        Err(e) => {
            app.push_log(
                crate::events::Level::Warning,
                &format!("could not write the report: {e}"),
            );
            app.report = Some(PathBuf::from("(not written)"));
        }
    }
}

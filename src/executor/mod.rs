//! The one executor thread: it owns the database connections and the child processes
//! (pg_dump, pg_restore), takes [`Job`]s and streams [`ExecEvent`]s back.
//!
//! Front ends never touch PostgreSQL: they feed the events to the checklist and carry out its
//! effects. A panic in a job is reported as [`ExecEvent::Crashed`] (the run's journal lets
//! `pgstep recover` undo what it changed); the thread never leaves a front end waiting.

mod compare;
mod ctx;
mod error;
mod rehearsal_record;
mod run;
mod source_verdict;
mod spec;
mod state;
mod steps;
pub mod undo;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

pub use spec::{BackupPlan, RunSpec};

use crate::cancel::{Cancel, CancelLevel};
use crate::checklist::{ExecEvent, Job};
use crate::events::{Event, Observer};

/// A running executor thread.
pub struct Executor {
    jobs: Option<Sender<Job>>,
    events: Receiver<ExecEvent>,
    cancel: Cancel,
    handle: Option<JoinHandle<()>>,
}

impl Executor {
    /// Starts the thread for one run.
    pub fn spawn(spec: RunSpec) -> Self {
        let (job_tx, job_rx) = channel::<Job>();
        let (event_tx, event_rx) = channel::<ExecEvent>();
        let cancel = Cancel::new();
        let thread_cancel = cancel.clone();
        let handle = std::thread::Builder::new()
            .name("pgstep-executor".into())
            .spawn(move || work(spec, &job_rx, &event_tx, thread_cancel))
            .ok();
        Self {
            jobs: Some(job_tx),
            events: event_rx,
            cancel,
            handle,
        }
    }

    /// Hands a job to the thread. If the thread is gone, the next `recv` says so.
    pub fn send(&self, job: Job) {
        if let Some(tx) = &self.jobs {
            // A closed channel means the thread ended; `recv` reports it as a crash.
            let _ = tx.send(job);
        }
    }

    /// The events, for front ends that wait on them together with other sources.
    pub fn events(&self) -> &Receiver<ExecEvent> {
        &self.events
    }

    /// Takes the event receiver, for a front end that forwards it into its own channel; `recv`
    /// on this executor then reports the thread as gone.
    pub fn take_events(&mut self) -> Receiver<ExecEvent> {
        let (_, empty) = channel();
        std::mem::replace(&mut self.events, empty)
    }

    /// Blocks for the next event; a vanished thread is reported as a crash, never a hang.
    pub fn recv(&self) -> ExecEvent {
        self.events
            .recv()
            .unwrap_or_else(|_| ExecEvent::Crashed("the executor thread ended unexpectedly".into()))
    }

    /// Asks the running job to stop: the first time at the next safe point, the second time
    /// at once (the running query is cancelled, the child process stopped).
    pub fn interrupt(&self) -> CancelLevel {
        self.cancel.request()
    }

    pub fn cancel_flag(&self) -> &Cancel {
        &self.cancel
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.jobs = None; // closes the channel: the thread ends after its current job
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn work(spec: RunSpec, jobs: &Receiver<Job>, events: &Sender<ExecEvent>, cancel: Cancel) {
    let mut run = run::Run::new(spec, events.clone(), cancel);
    for job in jobs {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run.job(job))) {
            let _ = events.send(ExecEvent::Crashed(panic_text(&panic)));
            return;
        }
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Sends the engine's events to the front end (and the run's log file).
pub(crate) struct Sink {
    tx: Sender<ExecEvent>,
    log: Option<crate::journal::RunLog>,
}

impl Sink {
    pub fn new(tx: Sender<ExecEvent>) -> Self {
        Self { tx, log: None }
    }

    pub fn set_log(&mut self, log: crate::journal::RunLog) {
        self.log = Some(log);
    }

    pub fn send(&mut self, e: ExecEvent) {
        // The front end may have stopped listening (it is shutting down): nothing to do.
        let _ = self.tx.send(e);
    }

    /// An observer for the backup's own thread, writing to the same front end and log.
    pub fn background(&self) -> steps::backup::background::BackgroundSink {
        steps::backup::background::BackgroundSink {
            tx: self.tx.clone(),
            log: self.log.as_ref().and_then(|l| l.reopen().ok()),
            foreground: Default::default(),
        }
    }
}

impl Observer for Sink {
    fn event(&mut self, event: Event) {
        if let Some(log) = &mut self.log {
            write_log(log, &event);
        }
        self.send(ExecEvent::Engine(event));
    }
}

/// Writes a log line or a check result to the run's log file. The log is a convenience beside
/// the journal: a failed write must not stop a run.
pub(crate) fn write_log(log: &mut crate::journal::RunLog, event: &Event) {
    match event {
        Event::Log { level, text } => {
            let _ = log.line(*level, text);
        }
        Event::Check { name, ok, detail } => {
            let level = if *ok {
                crate::events::Level::Info
            } else {
                crate::events::Level::Warning
            };
            let _ = log.line(
                level,
                &format!(
                    "check {name}: {}: {detail}",
                    if *ok { "ok" } else { "FAILED" }
                ),
            );
        }
        _ => {}
    }
}

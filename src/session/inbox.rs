//! The session loop's one inbox: the executor's events, and — in the wizard — the terminal's
//! keys and resizes, each kind in its own lane so that keys never queue behind a flood of log
//! lines. Headless runs put nothing in the terminal lane.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::Event as TermEvent;

use crate::checklist::ExecEvent;
use crate::executor::Executor;

/// How long one batch may spend on the executor's events before the loop looks at signals and
/// draws. Keys come first anyway, so even a producer faster than the screen never holds them
/// back.
pub const DRAIN_BUDGET: Duration = Duration::from_millis(16);

/// What arrives in the loop.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one message per executor event or key: boxing would cost more than the copy"
)]
pub enum Input {
    Term(TermEvent),
    Exec(ExecEvent),
    /// A key is waiting in the terminal lane.
    Wake,
    /// The terminal's input failed: the terminal is gone.
    TerminalLost,
    /// The executor's event channel ended: its thread is gone.
    ExecutorGone,
}

/// The loop's two lanes: the terminal's events, and everything else (executor events, and a
/// wake-up for each terminal event). Keys never queue behind a flood of log lines.
pub struct Inbox {
    terminal: Receiver<Input>,
    events: Receiver<Input>,
}

/// The sending ends of an [`Inbox`].
#[derive(Clone)]
pub struct Senders {
    terminal: Sender<Input>,
    events: Sender<Input>,
}

impl Senders {
    /// A terminal event: into its lane, and a wake-up into the other.
    pub fn terminal(&self, e: TermEvent) -> bool {
        self.terminal.send(Input::Term(e)).is_ok() && self.events.send(Input::Wake).is_ok()
    }

    /// The terminal's input ended: into its lane, and a wake-up into the other.
    pub fn terminal_lost(&self) -> bool {
        self.terminal.send(Input::TerminalLost).is_ok() && self.events.send(Input::Wake).is_ok()
    }

    pub fn exec(&self, e: ExecEvent) -> bool {
        self.events.send(Input::Exec(e)).is_ok()
    }

    /// Forwards the executor's events into the inbox on a thread of their own; when the
    /// executor's channel ends, says so with [`Input::ExecutorGone`].
    pub fn forward_exec_events(&self, executor: &mut Executor) {
        let events = executor.take_events();
        let tx = self.clone();
        std::thread::spawn(move || {
            for e in events {
                if !tx.exec(e) {
                    return;
                }
            }
            let _ = tx.events.send(Input::ExecutorGone);
        });
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
    pub fn wait(&self, timeout: Duration) -> Result<Option<Input>, RecvTimeoutError> {
        match self.events.recv_timeout(timeout) {
            Ok(e) => Ok(Some(e)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One batch of inputs: every terminal event waiting, then the executor's events
    /// (starting with `first`) while less than [`DRAIN_BUDGET`] has passed — taken lazily, so
    /// the budget covers handling them too; the rest waits for the next batch.
    pub fn batch(&self, first: Option<Input>) -> impl Iterator<Item = Input> + '_ {
        let keys: Vec<Input> = self.terminal.try_iter().collect();
        let started = Instant::now();
        let rest = std::iter::from_fn(move || {
            while started.elapsed() < DRAIN_BUDGET {
                match self.events.try_recv() {
                    Ok(Input::Wake) => {}
                    Ok(e) => return Some(e),
                    Err(_) => return None,
                }
            }
            None
        });
        keys.into_iter()
            .chain(first.filter(|e| !matches!(e, Input::Wake)))
            .chain(rest)
    }
}

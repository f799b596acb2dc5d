//! The wizard's state: the checklist, the log, what the operator is looking at and any open
//! dialog. Pure: inputs (keys, executor events, clock ticks) in, [`Command`]s for the executor
//! out. The loop in `mod.rs` only carries them; key sequences are tested without a terminal.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use crate::checklist::{
    Answer, Checklist, Effect, ExecEvent, Job, Msg, Outcome, Phase, PlanKind, PlanSummary,
    Question, StepStatus,
};
use crate::events::{Event, Level, Unit};

use super::keys::{Action, action_for};

mod dialog;

pub use dialog::{Dialog, Pending};

/// How many log lines the wizard keeps (older ones are dropped: memory stays bounded however
/// many NOTICEs a script raises).
pub const LOG_CAPACITY: usize = 5_000;

/// Something for the executor (or the loop) to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Run(Job),
    /// Escalate cancellation: stop at a safe point, then interrupt what runs.
    Interrupt,
    /// Leave the wizard (only when nothing runs).
    Quit,
}

/// A line of the log pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub text: String,
}

/// Progress of the running step, for rate and time left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub unit: Unit,
    pub done: u64,
    pub total: Option<u64>,
    /// When the step's first progress arrived, and how far it was then.
    pub since_ms: u64,
    pub done_at_start: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub checklist: Checklist,
    /// Milliseconds since the wizard started (injected, so screens can be tested).
    pub now_ms: u64,
    /// When each step started (ms), for the live duration of the running one.
    pub step_started_ms: Vec<Option<u64>>,
    pub log: VecDeque<LogLine>,
    /// Lines scrolled back from the newest (0: follow the log).
    pub log_scroll: usize,
    /// The step whose screen is shown; None: follow the running step.
    pub viewing: Option<usize>,
    /// Cursor in the current screen's list (confirmations, sessions).
    pub cursor: usize,
    /// The operator's ticks on the confirmations screen; sent when Enter is pressed.
    pub ticks: Vec<bool>,
    pub dialog: Option<Dialog>,
    pub help: bool,
    pub progress: Option<Progress>,
    /// Where each unit's progress started in the running step (unit, ms, done), for rates.
    pub progress_starts: Vec<(Unit, u64, u64)>,
    pub outcome: Option<Outcome>,
    pub report: Option<PathBuf>,
    /// A short note for the key bar ("a step is running: Ctrl-C cancels").
    pub notice: Option<String>,
    pub no_color: bool,
}

impl App {
    pub fn new(kind: PlanKind) -> Self {
        let checklist = Checklist::new(kind);
        let n = checklist.steps.len();
        Self {
            checklist,
            now_ms: 0,
            step_started_ms: vec![None; n],
            log: VecDeque::new(),
            log_scroll: 0,
            viewing: None,
            cursor: 0,
            ticks: Vec::new(),
            dialog: None,
            help: false,
            progress: None,
            progress_starts: Vec::new(),
            outcome: None,
            report: None,
            notice: None,
            no_color: false,
        }
    }

    /// Starts the checklist.
    pub fn start(&mut self) -> Vec<Command> {
        let effect = self.checklist.update(Msg::Start);
        self.apply(effect)
    }

    /// The step whose screen is shown.
    pub fn shown_step(&self) -> usize {
        self.viewing
            .or_else(|| self.checklist.current())
            .unwrap_or_else(|| match &self.checklist.phase {
                Phase::Finished(_) => self.checklist.steps.len().saturating_sub(1),
                _ => 0,
            })
    }

    pub fn question(&self) -> Option<&Question> {
        match &self.checklist.phase {
            Phase::Asking(_, q) => Some(q),
            _ => None,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(
            self.checklist.phase,
            Phase::Running(_) | Phase::Undoing { .. }
        )
    }

    pub fn plan(&self) -> Option<&PlanSummary> {
        self.checklist.plan()
    }

    /// The wizard's clock moved on.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// An event from the executor.
    pub fn on_exec(&mut self, event: ExecEvent) -> Vec<Command> {
        match &event {
            ExecEvent::StepStarted(step) => {
                if let Some(i) = self.checklist.steps.iter().position(|s| s.id == *step) {
                    self.step_started_ms[i].get_or_insert(self.now_ms);
                }
                self.progress = None;
                self.progress_starts.clear();
            }
            ExecEvent::Engine(Event::Log { level, text }) => self.push_log(*level, text),
            ExecEvent::Engine(Event::Check { name, ok, detail }) => {
                let level = if *ok { Level::Info } else { Level::Warning };
                self.push_log(level, &crate::headless::check_line(name, *ok, detail));
            }
            ExecEvent::Engine(Event::Phase { name }) => {
                self.push_log(Level::Info, &format!("-- {name}"))
            }
            ExecEvent::Engine(Event::Progress { unit, done, total }) => {
                self.on_progress(*unit, *done, *total)
            }
            ExecEvent::StepFailed { error, .. } => self.push_log(Level::Error, error),
            ExecEvent::FailurePathDone { undone, .. } => {
                for u in undone {
                    self.push_log(Level::Info, &format!("undone: {u}"));
                }
            }
            ExecEvent::Crashed(why) => {
                self.push_log(Level::Error, &format!("internal error: {why}"))
            }
            ExecEvent::BackgroundEnded { .. } => {}
            ExecEvent::StepDone { .. } => {
                self.progress = None;
                self.progress_starts.clear();
            }
        }
        let effect = self.checklist.update(Msg::Exec(event));
        self.apply(effect)
    }

    fn on_progress(&mut self, unit: Unit, done: u64, total: Option<u64>) {
        // pg_dump reports tables and bytes in turn: each unit keeps its own start, so the rate
        // is not restarted every time the other unit speaks.
        let (since_ms, done_at_start) =
            match self.progress_starts.iter().find(|(u, _, _)| *u == unit) {
                Some(&(_, since, at)) => (since, at),
                None => {
                    self.progress_starts.push((unit, self.now_ms, done));
                    (self.now_ms, done)
                }
            };
        self.progress = Some(Progress {
            unit,
            done,
            total,
            since_ms,
            done_at_start,
        });
    }

    pub fn push_log(&mut self, level: Level, text: &str) {
        for line in text.lines() {
            if self.log.len() == LOG_CAPACITY {
                self.log.pop_front();
            }
            self.log.push_back(LogLine {
                level,
                text: line.to_owned(),
            });
        }
    }

    /// A key from the operator.
    pub fn on_key(&mut self, key: ratatui::crossterm::event::KeyEvent) -> Vec<Command> {
        self.notice = None;
        if let Some(dialog) = self.dialog.take() {
            return self.dialog_key(dialog, key);
        }
        let action = action_for(key);
        if self.help && action != Some(Action::Help) && action.is_some() {
            self.help = false;
            return Vec::new();
        }
        match action {
            None => Vec::new(),
            Some(a) => self.act(a),
        }
    }

    fn act(&mut self, action: Action) -> Vec<Command> {
        match action {
            Action::Help => {
                self.help = !self.help;
                Vec::new()
            }
            Action::Proceed => self.proceed(),
            Action::Tick => self.tick_item(),
            Action::Up => self.move_cursor(-1),
            Action::Down => self.move_cursor(1),
            Action::NextStep => self.view_step(1),
            Action::PrevStep => self.view_step(-1),
            Action::Refresh => self.answer_sessions(Answer::Refresh),
            Action::Notify => self.answer_sessions(Answer::Notify),
            Action::Terminate => self.ask_terminate(),
            Action::Cancel => self.ask_cancel(),
            Action::Quit => self.quit(),
            Action::LogUp => {
                self.log_scroll = (self.log_scroll + 5).min(self.log.len());
                Vec::new()
            }
            Action::LogDown => {
                self.log_scroll = self.log_scroll.saturating_sub(5);
                Vec::new()
            }
            Action::LogEnd => {
                self.log_scroll = 0;
                Vec::new()
            }
        }
    }

    /// Enter: the natural next thing on the current screen.
    fn proceed(&mut self) -> Vec<Command> {
        if self.outcome.is_some() {
            return vec![Command::Quit];
        }
        let db = self.plan().map(|p| p.source_db.clone()).unwrap_or_default();
        let new_db = self.plan().map(|p| p.target_db.clone()).unwrap_or_default();
        match self.question().cloned() {
            Some(Question::Confirmations { .. })
                if !self.ticks.is_empty() && self.ticks.iter().all(|t| *t) =>
            {
                let all = (0..self.ticks.len()).collect();
                self.answer(Answer::Tick(all))
            }
            Some(Question::Confirmations { .. }) => {
                let left = self.ticks.iter().filter(|t| !**t).count();
                self.notice = Some(format!("tick every item first ({left} left): Space ticks"));
                Vec::new()
            }
            Some(Question::Sessions { .. }) => self.answer(Answer::Refresh),
            Some(Question::FingerprintMismatch { .. }) => {
                self.dialog = Some(Dialog::TypeName {
                    title: "Proceed despite the fingerprint mismatch?".into(),
                    text: format!(
                        "The schema of \"{db}\" differs from the reference. The scripts were written for the reference and may damage another schema. The override is recorded.\nType the database's name to proceed:"
                    ),
                    expected: db,
                    typed: String::new(),
                    on_yes: Pending::Answer(Answer::Proceed),
                });
                Vec::new()
            }
            Some(Question::DiskUnmeasurable { .. }) => {
                self.dialog = Some(Dialog::Confirm {
                    title: "Free space cannot be measured".into(),
                    text: "The server is not on this machine. Is there room for the clone and the backup? (y/n)".into(),
                    on_yes: Pending::Answer(Answer::Proceed),
                });
                Vec::new()
            }
            Some(Question::CutOver) => {
                self.dialog = Some(Dialog::TypeName {
                    title: "Cut over to the new database?".into(),
                    text: format!(
                        "Every check passed. Users will use \"{new_db}\"; \"{db}\" is kept read-only and closed to users.\nType the new database's name to cut over:"
                    ),
                    expected: new_db,
                    typed: String::new(),
                    on_yes: Pending::Answer(Answer::Proceed),
                });
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// Space toggles the item under the cursor and moves on to the next one.
    fn tick_item(&mut self) -> Vec<Command> {
        if let Some(Question::Confirmations { .. }) = self.question() {
            let i = self.cursor;
            if let Some(t) = self.ticks.get_mut(i) {
                *t = !*t;
            }
            self.cursor = (i + 1).min(self.ticks.len().saturating_sub(1));
        }
        Vec::new()
    }

    fn move_cursor(&mut self, by: isize) -> Vec<Command> {
        let len = match self.question() {
            Some(Question::Confirmations { items }) => items.len(),
            Some(Question::Sessions { sessions }) => sessions.len(),
            _ => 0,
        };
        if len > 0 {
            self.cursor = self.cursor.saturating_add_signed(by).min(len - 1);
        }
        Vec::new()
    }

    fn view_step(&mut self, by: isize) -> Vec<Command> {
        let n = self.checklist.steps.len();
        if self.outcome.is_some() {
            // After the run, the final screen sits after the last step: → past the last step
            // (or from nowhere else) comes back to it.
            let from = self.viewing.unwrap_or(n);
            let at = from.saturating_add_signed(by);
            self.viewing = (at < n).then_some(at);
            return Vec::new();
        }
        let at = self.shown_step().saturating_add_signed(by).min(n - 1);
        // Back on the running (or asking) step: follow it again.
        self.viewing = if Some(at) == self.checklist.current() {
            None
        } else {
            Some(at)
        };
        Vec::new()
    }

    fn answer_sessions(&mut self, answer: Answer) -> Vec<Command> {
        match self.question() {
            Some(Question::Sessions { .. }) => self.answer(answer),
            _ => Vec::new(),
        }
    }

    fn ask_terminate(&mut self) -> Vec<Command> {
        if let Some(Question::Sessions { sessions }) = self.question() {
            let n = sessions.len();
            self.dialog = Some(Dialog::Confirm {
                title: "Terminate the connected sessions?".into(),
                text: format!(
                    "{n} session(s) will be ended now; their users lose unsaved work. (y/n)"
                ),
                on_yes: Pending::Answer(Answer::Terminate),
            });
        }
        Vec::new()
    }

    /// Esc / Ctrl-C: a dialog first; a second request while cancelling interrupts at once.
    fn ask_cancel(&mut self) -> Vec<Command> {
        if self.outcome.is_some() || matches!(self.checklist.phase, Phase::NotStarted) {
            return vec![Command::Quit];
        }
        if self.checklist.cancel_was_requested() {
            self.push_log(Level::Warning, "interrupting the running statement");
            return vec![Command::Interrupt];
        }
        if matches!(self.checklist.phase, Phase::Undoing { .. }) {
            self.notice = Some("the failure path is undoing the run's changes: please wait".into());
            return Vec::new();
        }
        self.dialog = Some(Dialog::Confirm {
            title: "Cancel the run?".into(),
            text: "pgstep stops at the next safe point and undoes what it did: banner removed, access restored, clone dropped. The source database stays as it was. (y/n)".into(),
            on_yes: Pending::Cancel,
        });
        Vec::new()
    }

    /// A terminating signal (SIGTERM, SIGHUP): cancel without asking, escalating if repeated.
    pub fn cancel_now(&mut self) -> Vec<Command> {
        self.dialog = None;
        if self.outcome.is_some() || matches!(self.checklist.phase, Phase::NotStarted) {
            return vec![Command::Quit];
        }
        if self.checklist.cancel_was_requested() {
            return vec![Command::Interrupt];
        }
        self.confirmed(Pending::Cancel)
    }

    /// The terminal is gone (SIGHUP, or its input failed): nobody can answer a question or
    /// watch a long statement any more, so the run stops at once — cancelled, and what runs
    /// interrupted — and takes its failure path; the source is open to its users again.
    pub fn hang_up(&mut self) -> Vec<Command> {
        let mut commands = self.cancel_now();
        if commands.contains(&Command::Interrupt) {
            // The second request interrupts the running statement or child process now.
            commands.push(Command::Interrupt);
        }
        commands
    }

    fn quit(&mut self) -> Vec<Command> {
        if self.outcome.is_some() || matches!(self.checklist.phase, Phase::NotStarted) {
            return vec![Command::Quit];
        }
        self.notice =
            Some("a run is in progress: Ctrl-C cancels it (its changes are undone)".into());
        Vec::new()
    }

    fn confirmed(&mut self, pending: Pending) -> Vec<Command> {
        match pending {
            Pending::Answer(a) => self.answer(a),
            Pending::Cancel => {
                self.push_log(Level::Warning, "cancelling: stopping at the next safe point, then undoing (Ctrl-C again interrupts at once)");
                let effect = self.checklist.update(Msg::Cancel);
                self.apply(effect)
            }
        }
    }

    fn answer(&mut self, answer: Answer) -> Vec<Command> {
        let effect = self.checklist.update(Msg::Answer(answer));
        self.apply(effect)
    }

    /// Turns the checklist's effect into commands and state.
    fn apply(&mut self, effect: Effect) -> Vec<Command> {
        match effect {
            Effect::None => Vec::new(),
            Effect::Run(job) => vec![Command::Run(job)],
            Effect::Interrupt => vec![Command::Interrupt],
            Effect::Ask(q) => {
                self.cursor = 0;
                self.viewing = None;
                if let Question::Confirmations { items } = &q {
                    self.ticks = items.iter().map(|i| i.ticked).collect();
                }
                Vec::new()
            }
            Effect::Done(outcome) => {
                self.viewing = None;
                self.outcome = Some(outcome);
                Vec::new()
            }
        }
    }

    /// How long a step took, or has been running.
    pub fn step_elapsed(&self, i: usize) -> Option<Duration> {
        let view = self.checklist.steps.get(i)?;
        let asking = matches!(self.checklist.phase, Phase::Asking(r, _) if r == i);
        if let Some(took) = view.background_took {
            return Some(took); // it ended in the background: how long it took in all
        }
        if view.status == StepStatus::Running && !asking {
            // Running, in the foreground or the background: the clock since it began.
            let started = self.step_started_ms.get(i).copied().flatten()?;
            return Some(Duration::from_millis(self.now_ms.saturating_sub(started)));
        }
        view.elapsed.or_else(|| {
            let running = matches!(self.checklist.phase, Phase::Running(r) if r == i);
            let started = self.step_started_ms.get(i).copied().flatten()?;
            running.then(|| Duration::from_millis(self.now_ms.saturating_sub(started)))
        })
    }

    /// A step's expected seconds, from the latest rehearsal (none without one).
    pub fn expected(&self, i: usize) -> Option<f64> {
        let step = self.checklist.steps.get(i)?;
        self.plan()?.expected_seconds(step.id)
    }

    /// Seconds of downtime still to expect, from the latest rehearsal: the steps not yet done,
    /// less what the running one has already taken.
    pub fn expected_left(&self) -> Option<f64> {
        if self.outcome.is_some() {
            return None;
        }
        self.plan()?.expected_downtime()?;
        let left = self
            .checklist
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.status, StepStatus::Pending | StepStatus::Running))
            .filter_map(|(i, s)| {
                let expected = self.expected(i)?;
                let spent = if s.status == StepStatus::Running {
                    self.step_elapsed(i).map_or(0.0, |d| d.as_secs_f64())
                } else {
                    0.0
                };
                Some((expected - spent).max(0.0))
            });
        Some(left.sum())
    }

    /// Rate per second and seconds left of the running step, when they can be told.
    pub fn rate_and_left(&self) -> Option<(f64, Option<f64>)> {
        let p = self.progress?;
        let secs = self.now_ms.saturating_sub(p.since_ms) as f64 / 1000.0;
        if secs < 0.5 || p.done <= p.done_at_start {
            return None;
        }
        let rate = (p.done - p.done_at_start) as f64 / secs;
        let left = p.total.map(|t| t.saturating_sub(p.done) as f64 / rate);
        Some((rate, left))
    }
}

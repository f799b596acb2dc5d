//! Drives a checklist without a terminal: the executor's events go to the checklist, its
//! effects to the executor, its questions are answered by the operator's flags (`--yes`,
//! `--terminate-sessions`, `--override-schema-check`), and everything is shown to an observer.
//!
//! This is how `--headless`, `--json`, scripts and the tests run the very same state machine
//! and executor that the wizard runs.

use std::time::{Duration, Instant};

use crate::checklist::{Answer, Checklist, Effect, ExecEvent, Msg, Outcome, Question};
use crate::executor::{Executor, RunSpec};

/// How the questions of the checklist are answered without a person.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Confirm the manual items and unmeasurable disk space (`--yes`).
    pub yes: bool,
    /// End the sessions still connected after the wait (`--terminate-sessions`).
    pub terminate_sessions: bool,
    /// Proceed despite a fingerprint mismatch (`--override-schema-check`, recorded).
    pub override_schema_check: bool,
    /// How long connected users may take to leave (after being asked via NOTIFY).
    pub wait_for_sessions: Duration,
}

/// What the driver tells its observer.
#[derive(Debug, Clone)]
pub enum Shown<'a> {
    Exec(&'a ExecEvent),
    /// How the driver answered a question, in words.
    Answered(String),
}

/// Runs the checklist of `spec` to its end and returns it with its outcome.
pub fn run(
    spec: RunSpec,
    policy: &Policy,
    show: &mut dyn FnMut(&Checklist, Shown<'_>),
) -> (Checklist, Outcome) {
    run_with(spec, policy, None, show)
}

/// How often the driver looks for an operator's interrupt while it waits for the executor.
const POLL: Duration = Duration::from_millis(100);

/// Like [`run`], turning interrupting signals into cancellation: the first stops the run at the
/// next safe point and takes the failure path, the next interrupts what is running.
pub fn run_with(
    spec: RunSpec,
    policy: &Policy,
    interrupts: Option<&crate::signals::Interrupts>,
    show: &mut dyn FnMut(&Checklist, Shown<'_>),
) -> (Checklist, Outcome) {
    let mut handled = interrupts.map_or(0, crate::signals::Interrupts::count);
    let mut checklist = Checklist::new(spec.kind);
    let executor = Executor::spawn(spec);
    let mut answers = Answers {
        policy,
        sessions_since: None,
        notified: false,
    };
    let mut abort_reason: Option<String> = None;
    let mut effect = checklist.update(Msg::Start);
    loop {
        effect = match effect {
            Effect::Done(mut outcome) => {
                // Say why the run stopped in the operator's terms, not "stopped by the operator".
                if let (Outcome::Failed { what, .. }, Some(reason)) = (&mut outcome, abort_reason) {
                    *what = reason;
                }
                // A SIGTERM or a lost terminal is not the operator's Ctrl-C: say which it was.
                crate::signals::name_the_cause(
                    &mut outcome,
                    interrupts.and_then(crate::signals::Interrupts::cause),
                );
                return (checklist, outcome);
            }
            Effect::Run(job) => {
                executor.send(job);
                Effect::None
            }
            Effect::Interrupt => {
                executor.interrupt();
                Effect::None
            }
            Effect::Ask(q) => {
                let (answer, words) = answers.answer(&q);
                if answer == Answer::Abort {
                    abort_reason = Some(words.clone());
                }
                show(&checklist, Shown::Answered(words));
                checklist.update(Msg::Answer(answer))
            }
            Effect::None => {
                let received = interrupts.map_or(0, crate::signals::Interrupts::count);
                if received > handled {
                    let first = handled == 0 || !checklist_cancelled(&checklist);
                    handled = received;
                    if first {
                        show(&checklist, Shown::Answered("interrupted: stopping at the next safe point, then undoing what was done (interrupt again to cancel the running statement at once)".into()));
                        checklist.update(Msg::Cancel)
                    } else {
                        show(
                            &checklist,
                            Shown::Answered(
                                "interrupted again: cancelling the running statement".into(),
                            ),
                        );
                        executor.interrupt();
                        Effect::None
                    }
                } else {
                    match executor.events().recv_timeout(POLL) {
                        Ok(event) => {
                            show(&checklist, Shown::Exec(&event));
                            checklist.update(Msg::Exec(event))
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Effect::None,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                            let event =
                                ExecEvent::Crashed("the executor thread ended unexpectedly".into());
                            checklist.update(Msg::Exec(event))
                        }
                    }
                }
            }
        };
    }
}

struct Answers<'a> {
    policy: &'a Policy,
    sessions_since: Option<Instant>,
    notified: bool,
}

impl Answers<'_> {
    fn answer(&mut self, q: &Question) -> (Answer, String) {
        match q {
            Question::Confirmations { items } if self.policy.yes => (
                Answer::Tick((0..items.len()).collect()),
                format!("--yes confirms: {}", items.iter().map(|i| i.text.as_str()).collect::<Vec<_>>().join("; ")),
            ),
            Question::Confirmations { .. } => (Answer::Abort, "the manual checklist items are not confirmed: run with --yes once users are informed, importers and backup jobs are stopped and client packages are ready".into()),
            Question::Sessions { sessions } => self.sessions(sessions),
            Question::FingerprintMismatch { .. } if self.policy.override_schema_check => (Answer::Proceed, "--override-schema-check: proceeding despite the fingerprint mismatch (recorded)".into()),
            Question::FingerprintMismatch { .. } => (Answer::Abort, "the schema differs from the reference: find out why, or proceed with --override-schema-check (recorded)".into()),
            Question::DiskUnmeasurable { .. } if self.policy.yes => (Answer::Proceed, "--yes: free space could not be measured here; proceeding on the operator's word".into()),
            Question::DiskUnmeasurable { .. } => (Answer::Abort, "free space cannot be measured on this server: check it, then confirm with --yes".into()),
            // Reached only when every check passed; --yes was needed to start at all.
            Question::CutOver => (Answer::Proceed, "every check passed: cutting over".into()),
        }
    }

    /// Ask them to leave once, wait while allowed, then terminate (with consent) or stop.
    fn sessions(&mut self, sessions: &[crate::db::sessions::SessionInfo]) -> (Answer, String) {
        let n = sessions.len();
        let since = *self.sessions_since.get_or_insert_with(Instant::now);
        if !self.notified {
            self.notified = true;
            return (
                Answer::Notify,
                format!("{n} session(s) connected: asking the clients to log off"),
            );
        }
        if since.elapsed() < self.policy.wait_for_sessions {
            // Between refreshes, give users time to leave; this is a poll, not a test's sleep.
            std::thread::sleep(Duration::from_millis(500));
            return (Answer::Refresh, String::new());
        }
        if self.policy.terminate_sessions {
            return (
                Answer::Terminate,
                format!("--terminate-sessions: ending the {n} session(s) still connected"),
            );
        }
        // Who they are, so that the sysadmin knows whom to call.
        let mut words = format!(
            "{n} session(s) are still connected: ask the users to log off, or end their sessions with --terminate-sessions"
        );
        for s in sessions {
            words.push_str(&format!("\n  {s}"));
        }
        (Answer::Abort, words)
    }
}

/// Whether the checklist was already told to cancel (so a new interrupt escalates).
fn checklist_cancelled(c: &Checklist) -> bool {
    c.cancel_was_requested()
}

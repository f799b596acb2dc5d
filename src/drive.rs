//! The command line's answers to the checklist's questions (`--yes`, `--terminate-sessions`,
//! `--override-schema-check`): the [`Decider`] of headless runs, and [`run`] / [`run_with`],
//! which run a checklist through the session loop ([`crate::session`]) with them and show
//! everything to an observer.
//!
//! This is how `--headless`, `--json`, scripts and the tests run the very same state machine,
//! executor and loop that the wizard runs.

use std::time::{Duration, Instant};

use crate::checklist::{Answer, Checklist, Outcome, Question};
use crate::executor::RunSpec;
use crate::session::{self, Decider, ShowFn, Shown};

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

/// Runs the checklist of `spec` to its end and returns it with its outcome.
pub fn run(
    spec: RunSpec,
    policy: &Policy,
    show: &mut dyn FnMut(&Checklist, Shown<'_>),
) -> (Checklist, Outcome) {
    run_with(spec, policy, None, show)
}

/// Like [`run`], turning interrupting signals into cancellation: the first stops the run at the
/// next safe point and takes the failure path, the next interrupts what is running.
pub fn run_with(
    spec: RunSpec,
    policy: &Policy,
    interrupts: Option<&crate::signals::Interrupts>,
    show: &mut dyn FnMut(&Checklist, Shown<'_>),
) -> (Checklist, Outcome) {
    let mut answers = Answers::new(policy);
    let mut reporter = ShowFn(show);
    let (checklist, outcome, _) =
        session::run_headless(spec, &mut answers, interrupts, None, vec![&mut reporter]);
    (checklist, outcome)
}

/// The command line's answers to the checklist's questions.
pub struct Answers<'a> {
    policy: &'a Policy,
    sessions_since: Option<Instant>,
    notified: bool,
}

impl<'a> Answers<'a> {
    pub fn new(policy: &'a Policy) -> Self {
        Self {
            policy,
            sessions_since: None,
            notified: false,
        }
    }
}

impl Decider for Answers<'_> {
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
}

impl Answers<'_> {
    /// Ask them to leave once, wait while allowed, then terminate (with consent) or stop.
    fn sessions(&mut self, sessions: &[crate::checklist::SessionInfo]) -> (Answer, String) {
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

//! Key sequences against the wizard's state: what each key does in each situation, and what the
//! executor is asked to do. No terminal, no database.

use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{App, Command, Dialog, LOG_CAPACITY};
use crate::checklist::SessionInfo;
use crate::checklist::{
    ExecEvent, Job, Outcome, PlanKind, PlanSummary, Question, StepId, StepOutput, StepStatus,
};
use crate::events::{Event, Level};

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn ctrl_c() -> KeyEvent {
    KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
}

fn done(step: StepId, output: StepOutput) -> ExecEvent {
    ExecEvent::StepDone {
        step,
        status: StepStatus::Done,
        output,
        elapsed: Duration::from_millis(300),
    }
}

fn nothing(step: StepId) -> ExecEvent {
    done(
        step,
        StepOutput::Nothing {
            note: String::new(),
        },
    )
}

fn plan() -> StepOutput {
    StepOutput::Plan(PlanSummary {
        application: "clinic".into(),
        server: "/run/postgresql (socket)".into(),
        source_db: "clinic_v1".into(),
        target_db: "clinic_v2".into(),
        from: crate::bundle::Version::new(1, 0),
        to: crate::bundle::Version::new(2, 0),
        lines: vec![],
        run_id: None,
        journal: None,
        expected: Vec::new(),
        rehearsal: None,
        backup: None,
    })
}

fn run(step: StepId) -> Vec<Command> {
    vec![Command::Run(Job::Step { step })]
}

/// An app at the confirmations question.
fn at_confirmations() -> App {
    let mut app = App::new(PlanKind::Upgrade);
    assert_eq!(app.start(), run(StepId::Plan));
    assert!(app.on_exec(done(StepId::Plan, plan())).is_empty());
    assert!(matches!(
        app.question(),
        Some(Question::Confirmations { .. })
    ));
    app
}

/// An app walked (with every answer positive) up to `step` running.
fn running(step: StepId) -> App {
    let mut app = at_confirmations();
    for _ in 0..4 {
        app.on_key(key(KeyCode::Char(' ')));
    }
    let mut cmds = app.on_key(key(KeyCode::Enter));
    loop {
        let Some(Command::Run(Job::Step { step: s })) = cmds.first().cloned() else {
            panic!("{cmds:?}")
        };
        if s == step {
            return app;
        }
        cmds = app.on_exec(nothing(s));
        if cmds.is_empty() && app.question() == Some(&Question::CutOver) {
            cmds = answer_cut_over(&mut app);
        }
    }
}

fn answer_cut_over(app: &mut App) -> Vec<Command> {
    assert!(app.on_key(key(KeyCode::Enter)).is_empty());
    for c in "clinic_v2".chars() {
        assert!(app.on_key(ch(c)).is_empty());
    }
    app.on_key(key(KeyCode::Enter))
}

#[test]
fn confirmations_are_ticked_with_space_and_sent_with_enter() {
    let mut app = at_confirmations();
    app.on_key(ch(' '));
    assert_eq!(app.ticks, vec![true, false, false, false]);
    assert_eq!(app.cursor, 1, "the cursor moves on");
    assert!(app.on_key(key(KeyCode::Enter)).is_empty());
    assert!(
        app.notice.as_deref().is_some_and(|n| n.contains("3 left")),
        "{:?}",
        app.notice
    );
    app.on_key(key(KeyCode::Up));
    app.on_key(ch(' '));
    assert_eq!(app.ticks, vec![false, false, false, false], "Space toggles");
    assert_eq!(app.cursor, 1);
    for _ in 0..3 {
        app.on_key(ch(' '));
    }
    assert_eq!(app.ticks, vec![false, true, true, true]);
    for _ in 0..3 {
        app.on_key(key(KeyCode::Up));
    }
    app.on_key(ch(' '));
    assert!(app.ticks.iter().all(|t| *t), "{:?}", app.ticks);
    assert_eq!(app.on_key(key(KeyCode::Enter)), run(StepId::ConnectedUsers));
}

#[test]
fn cancel_asks_first_and_a_second_ctrl_c_interrupts_at_once() {
    let mut app = running(StepId::CloneUpgrade);
    assert!(app.on_key(key(KeyCode::Esc)).is_empty());
    assert!(matches!(app.dialog, Some(Dialog::Confirm { .. })));
    assert!(app.on_key(ch('n')).is_empty(), "n closes the dialog");
    assert!(app.dialog.is_none());
    assert!(app.on_key(ctrl_c()).is_empty());
    assert_eq!(
        app.on_key(ch('y')),
        vec![Command::Interrupt],
        "confirmed: stop at the next safe point"
    );
    assert_eq!(
        app.on_key(ctrl_c()),
        vec![Command::Interrupt],
        "again: interrupt now, no dialog"
    );
    assert!(app.dialog.is_none());
}

#[test]
fn a_hang_up_interrupts_at_once_undoes_a_question_and_ends_the_final_screen() {
    let mut app = running(StepId::CloneUpgrade);
    assert_eq!(
        app.hang_up(),
        vec![Command::Interrupt, Command::Interrupt],
        "no dialog (nobody can answer it): stop, and interrupt the statement now"
    );
    assert!(app.dialog.is_none());

    let mut asking = running(StepId::SanityChecks);
    asking.on_exec(nothing(StepId::SanityChecks));
    assert_eq!(asking.question(), Some(&Question::CutOver));
    assert_eq!(
        asking.hang_up(),
        vec![Command::Run(Job::FailurePath)],
        "a question nobody can answer: the failure path"
    );

    let mut finished = running(StepId::CloneUpgrade);
    finished.on_exec(ExecEvent::StepFailed {
        step: StepId::CloneUpgrade,
        error: "boom".into(),
        elapsed: Duration::ZERO,
        refused: false,
        location: None,
    });
    finished.on_exec(ExecEvent::FailurePathDone {
        undone: vec![],
        advice: vec![],
        changed_anything: false,
        source: None,
    });
    assert!(finished.outcome.is_some());
    assert_eq!(
        finished.hang_up(),
        vec![Command::Quit],
        "the final screen ends"
    );
}

#[test]
fn quit_only_when_nothing_runs() {
    let mut app = running(StepId::Backup);
    assert!(app.on_key(ch('q')).is_empty());
    assert!(app.notice.as_deref().is_some_and(|n| n.contains("Ctrl-C")));
    let mut fresh = App::new(PlanKind::Upgrade);
    assert_eq!(fresh.on_key(ch('q')), vec![Command::Quit]);
}

#[test]
fn sessions_refresh_notify_and_terminate_after_consent() {
    let mut app = running(StepId::ConnectedUsers);
    let s = |pid| SessionInfo {
        pid,
        user: "dr_who".into(),
        application: "front-desk".into(),
        client: "10.0.0.7".into(),
        since: String::new(),
        age_seconds: 60,
        state: "idle".into(),
    };
    assert!(
        app.on_exec(done(
            StepId::ConnectedUsers,
            StepOutput::Sessions {
                sessions: vec![s(7), s(8)],
                unblockable: vec![]
            }
        ))
        .is_empty()
    );
    assert_eq!(app.on_key(ch('r')), run(StepId::ConnectedUsers));
    app.on_exec(done(
        StepId::ConnectedUsers,
        StepOutput::Sessions {
            sessions: vec![s(7), s(8)],
            unblockable: vec![],
        },
    ));
    assert_eq!(app.on_key(ch('n')), vec![Command::Run(Job::Notify)]);
    app.on_exec(done(
        StepId::ConnectedUsers,
        StepOutput::Sessions {
            sessions: vec![s(7), s(8)],
            unblockable: vec![],
        },
    ));
    assert!(app.on_key(ch('t')).is_empty());
    assert!(
        matches!(&app.dialog, Some(Dialog::Confirm { text, .. }) if text.contains("2 session(s)"))
    );
    assert_eq!(
        app.on_key(ch('y')),
        vec![Command::Run(Job::Terminate { pids: vec![7, 8] })]
    );
}

#[test]
fn proceeding_despite_a_fingerprint_mismatch_needs_the_database_name() {
    let mut app = running(StepId::Fingerprint);
    let mismatch = StepOutput::Fingerprint {
        hash: "h".into(),
        matches: false,
        reference: None,
        diff: "+ added column".into(),
    };
    app.on_exec(done(StepId::Fingerprint, mismatch));
    assert!(app.on_key(key(KeyCode::Enter)).is_empty());
    for c in "clinic_v9".chars() {
        app.on_key(ch(c));
    }
    assert!(
        app.on_key(key(KeyCode::Enter)).is_empty(),
        "a wrong name does nothing"
    );
    assert!(app.dialog.is_some());
    app.on_key(key(KeyCode::Backspace));
    app.on_key(ch('1'));
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![Command::Run(Job::Accept {
            step: StepId::Fingerprint
        })]
    );
}

#[test]
fn the_cut_over_needs_the_new_database_name_and_enter_leaves_the_final_screen() {
    let mut app = running(StepId::SanityChecks);
    assert!(app.on_exec(nothing(StepId::SanityChecks)).is_empty());
    assert_eq!(app.question(), Some(&Question::CutOver));
    assert!(app.on_key(key(KeyCode::Enter)).is_empty());
    assert!(
        app.on_key(key(KeyCode::Esc)).is_empty(),
        "Esc closes the dialog"
    );
    assert_eq!(answer_cut_over(&mut app), run(StepId::CutOver));
    assert!(app.on_exec(nothing(StepId::CutOver)).is_empty());
    assert_eq!(app.outcome, Some(Outcome::Success));
    assert_eq!(app.on_key(key(KeyCode::Enter)), vec![Command::Quit]);
}

#[test]
fn tab_and_arrows_show_other_steps_and_come_back_to_the_running_one() {
    let mut app = running(StepId::Backup);
    let backup = app.shown_step();
    app.on_key(key(KeyCode::Left));
    assert_eq!(app.viewing, Some(backup - 1));
    app.on_key(key(KeyCode::Tab));
    assert_eq!(
        app.viewing, None,
        "back on the running step: follow it again"
    );
    app.on_key(key(KeyCode::BackTab));
    app.on_key(key(KeyCode::BackTab));
    assert_eq!(app.shown_step(), backup - 2);
}

#[test]
fn help_toggles_and_any_other_key_closes_it_and_releases_are_ignored() {
    let mut app = running(StepId::Banner);
    app.on_key(ch('?'));
    assert!(app.help);
    assert!(
        app.on_key(key(KeyCode::Esc)).is_empty(),
        "closing help does not cancel"
    );
    assert!(!app.help && app.dialog.is_none());
    let mut release = key(KeyCode::Esc);
    release.kind = KeyEventKind::Release;
    assert!(app.on_key(release).is_empty());
    assert!(app.dialog.is_none());
}

#[test]
fn the_log_is_bounded_and_scrolls() {
    let mut app = running(StepId::CloneUpgrade);
    for i in 0..LOG_CAPACITY + 100 {
        app.on_exec(ExecEvent::Engine(Event::Log {
            level: Level::Notice,
            text: format!("NOTICE {i}"),
        }));
    }
    assert_eq!(app.log.len(), LOG_CAPACITY);
    assert_eq!(app.log.front().map(|l| l.text.as_str()), Some("NOTICE 100"));
    app.on_key(key(KeyCode::PageUp));
    assert_eq!(app.log_scroll, 5);
    app.on_key(key(KeyCode::End));
    assert_eq!(app.log_scroll, 0);
}

#[test]
fn a_failure_shows_the_failure_path_and_its_outcome() {
    let mut app = running(StepId::CloneUpgrade);
    let cmds = app.on_exec(ExecEvent::StepFailed {
        step: StepId::CloneUpgrade,
        error: "v1-v2/02.sql:3:1: ERROR 22012: division by zero".into(),
        elapsed: Duration::ZERO,
        refused: false,
        location: None,
    });
    assert_eq!(cmds, vec![Command::Run(Job::FailurePath)]);
    app.on_exec(ExecEvent::FailurePathDone {
        undone: vec!["dropped the unfinished database \"clinic_v2\"".into()],
        advice: vec![],
        changed_anything: true,
        source: None,
    });
    assert!(matches!(app.outcome, Some(Outcome::Failed { .. })));
    assert!(app.log.iter().any(|l| l.text.contains("undone: dropped")));
}

#[test]
fn ctrl_c_in_a_dialog_never_types_and_cancels_instead() {
    let mut app = running(StepId::SanityChecks);
    app.on_exec(nothing(StepId::SanityChecks));
    assert!(
        app.on_key(key(KeyCode::Enter)).is_empty(),
        "the type-the-name dialog opens"
    );
    app.on_key(ch('c'));
    assert!(app.on_key(ctrl_c()).is_empty());
    assert!(
        matches!(&app.dialog, Some(Dialog::Confirm { title, .. }) if title.contains("Cancel")),
        "{:?}",
        app.dialog
    );
    assert_eq!(
        app.on_key(ch('y')),
        vec![Command::Run(Job::FailurePath)],
        "asking: cancel takes the failure path at once"
    );
}

#[test]
fn destructive_confirmations_take_y_not_enter() {
    let mut app = running(StepId::ConnectedUsers);
    let s = SessionInfo {
        pid: 9,
        user: "u".into(),
        application: "a".into(),
        client: "c".into(),
        since: String::new(),
        age_seconds: 1,
        state: "idle".into(),
    };
    app.on_exec(done(
        StepId::ConnectedUsers,
        StepOutput::Sessions {
            sessions: vec![s],
            unblockable: vec![],
        },
    ));
    app.on_key(ch('t'));
    assert!(
        app.on_key(key(KeyCode::Enter)).is_empty(),
        "Enter does not terminate anyone"
    );
    assert!(app.dialog.is_some());
    assert_eq!(
        app.on_key(ch('y')),
        vec![Command::Run(Job::Terminate { pids: vec![9] })]
    );
}

#[test]
fn after_the_run_the_steps_can_be_reviewed_and_the_final_screen_comes_back() {
    let mut app = running(StepId::CutOver);
    app.on_exec(nothing(StepId::CutOver));
    assert!(app.outcome.is_some() && app.viewing.is_none());
    let last = app.checklist.steps.len() - 1;
    app.on_key(key(KeyCode::Left));
    assert_eq!(
        app.viewing,
        Some(last),
        "← from the final screen shows the last step"
    );
    app.on_key(key(KeyCode::Left));
    assert_eq!(app.viewing, Some(last - 1));
    app.on_key(key(KeyCode::Right));
    app.on_key(key(KeyCode::Right));
    assert_eq!(
        app.viewing, None,
        "→ past the last step is the final screen again"
    );
}

#[test]
fn a_rate_survives_alternating_units() {
    use crate::events::Unit;
    let mut app = running(StepId::Backup);
    let progress = |unit, done, total| ExecEvent::Engine(Event::Progress { unit, done, total });
    app.tick(1_000);
    app.on_exec(progress(Unit::Tables, 0, Some(10)));
    app.on_exec(progress(Unit::Bytes, 0, None));
    app.tick(3_000);
    app.on_exec(progress(Unit::Bytes, 2_000_000, None));
    app.on_exec(progress(Unit::Tables, 4, Some(10)));
    let (rate, left) = app.rate_and_left().expect("a rate after 2 s");
    assert!((rate - 2.0).abs() < 1e-9, "4 tables in 2 s: {rate}");
    assert!(
        left.is_some_and(|l| (l - 3.0).abs() < 1e-9),
        "6 tables left at 2/s: {left:?}"
    );
}

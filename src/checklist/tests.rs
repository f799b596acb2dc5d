//! Every path of the checklist, by feeding messages: success, each question and its answers,
//! failure at every step, cancellation in every phase, a crashed executor.

use std::time::Duration;

use super::*;
use crate::events::{Event, Unit};

const T: Duration = Duration::from_millis(10);

fn done(step: StepId, output: StepOutput) -> Msg {
    Msg::Exec(ExecEvent::StepDone {
        step,
        status: StepStatus::Done,
        output,
        elapsed: T,
    })
}

fn nothing(step: StepId) -> Msg {
    done(
        step,
        StepOutput::Nothing {
            note: String::new(),
        },
    )
}

fn failed(step: StepId, error: &str) -> Msg {
    Msg::Exec(ExecEvent::StepFailed {
        step,
        error: error.into(),
        elapsed: T,
        refused: false,
        location: None,
    })
}

fn refused(step: StepId, error: &str) -> Msg {
    Msg::Exec(ExecEvent::StepFailed {
        step,
        error: error.into(),
        elapsed: T,
        refused: true,
        location: None,
    })
}

fn undo_done(changed: bool) -> Msg {
    Msg::Exec(ExecEvent::FailurePathDone {
        undone: vec!["dropped the clone".into()],
        advice: vec![],
        changed_anything: changed,
        source: None,
    })
}

fn session(pid: i32) -> SessionInfo {
    SessionInfo {
        pid,
        user: "dr_who".into(),
        application: "front-desk".into(),
        client: "10.0.0.7".into(),
        since: "2026-11-21T08:00:00+00".into(),
        age_seconds: 3600,
        state: "idle".into(),
    }
}

fn run_job(step: StepId) -> Effect {
    Effect::Run(Job::Step { step })
}

/// Drives an upgrade up to (not including) `until`, answering everything positively.
fn upgrade_until(until: StepId) -> Checklist {
    let mut c = Checklist::new(PlanKind::Upgrade);
    let mut effect = c.update(Msg::Start);
    loop {
        if effect == Effect::Ask(Question::CutOver) {
            effect = c.update(Msg::Answer(Answer::Proceed));
        }
        let step = match &effect {
            Effect::Run(Job::Step { step }) => *step,
            Effect::Ask(Question::Confirmations { .. }) => StepId::Confirmations,
            other => panic!("unexpected {other:?}"),
        };
        if step == until {
            return c;
        }
        effect = if step == StepId::Confirmations {
            c.update(Msg::Answer(Answer::Tick(vec![0, 1, 2, 3])))
        } else {
            c.update(nothing(step))
        };
    }
}

#[test]
fn the_upgrade_walks_every_step_in_order_and_succeeds() {
    let mut c = Checklist::new(PlanKind::Upgrade);
    assert_eq!(c.update(Msg::Start), run_job(StepId::Plan));
    assert_eq!(c.steps[0].status, StepStatus::Running);
    assert!(matches!(
        c.update(nothing(StepId::Plan)),
        Effect::Ask(Question::Confirmations { .. })
    ));
    assert_eq!(
        c.update(Msg::Answer(Answer::Tick(vec![0, 1, 2, 3]))),
        run_job(StepId::ConnectedUsers)
    );
    let mut expected = vec![
        StepId::DiskSpace,
        StepId::Fingerprint,
        StepId::Clone,
        StepId::Backup,
        StepId::Banner,
        StepId::CloneUpgrade,
        StepId::SanityChecks,
        StepId::CutOver,
    ];
    let mut current = StepId::ConnectedUsers;
    for next in expected.drain(..) {
        if next == StepId::CutOver {
            // The cut-over waits for the operator's word.
            assert_eq!(c.update(nothing(current)), Effect::Ask(Question::CutOver));
            assert_eq!(c.update(Msg::Answer(Answer::Proceed)), run_job(next));
        } else {
            assert_eq!(c.update(nothing(current)), run_job(next));
        }
        current = next;
    }
    assert_eq!(
        c.update(nothing(StepId::CutOver)),
        Effect::Done(Outcome::Success)
    );
    assert!(
        c.steps.iter().all(|s| s.status == StepStatus::Done),
        "{:?}",
        c.steps
    );
    assert_eq!(
        c.steps
            .iter()
            .map(|s| s.elapsed.unwrap_or_default())
            .sum::<Duration>(),
        T * 10
    );
    assert_eq!(Outcome::Success.exit_code(), crate::exit::SUCCESS);
}

fn in_background(step: StepId) -> Msg {
    Msg::Exec(ExecEvent::StepDone {
        step,
        status: StepStatus::Running,
        output: StepOutput::Nothing {
            note: "pg_dump goes on in the background".into(),
        },
        elapsed: T,
    })
}

/// Drives an upgrade whose backup goes on in the background to the point where the checklist
/// waits for it.
fn backup_in_background_until_await() -> Checklist {
    let mut c = upgrade_until(StepId::Backup);
    assert_eq!(
        c.update(in_background(StepId::Backup)),
        run_job(StepId::Banner)
    );
    assert_eq!(
        c.step(StepId::Backup).map(|s| s.status),
        Some(StepStatus::Running)
    );
    assert_eq!(
        c.update(nothing(StepId::Banner)),
        run_job(StepId::CloneUpgrade)
    );
    assert_eq!(
        c.update(nothing(StepId::CloneUpgrade)),
        run_job(StepId::SanityChecks)
    );
    // The cut-over waits until the backup is verified: the checklist waits for it first.
    assert_eq!(
        c.update(nothing(StepId::SanityChecks)),
        Effect::Run(Job::Await {
            step: StepId::Backup
        })
    );
    assert_eq!(
        c.current(),
        c.steps.iter().position(|s| s.id == StepId::Backup)
    );
    c
}

#[test]
fn a_backup_in_the_background_is_awaited_before_the_cut_over_is_asked() {
    let mut c = backup_in_background_until_await();
    assert_eq!(
        c.update(nothing(StepId::Backup)),
        Effect::Ask(Question::CutOver)
    );
    let backup = c.step(StepId::Backup).cloned().expect("backup step");
    assert_eq!(backup.status, StepStatus::Done);
    assert_eq!(backup.elapsed, Some(T * 2), "start and wait both count");
    assert_eq!(
        c.update(Msg::Answer(Answer::Proceed)),
        run_job(StepId::CutOver)
    );
    assert_eq!(
        c.update(nothing(StepId::CutOver)),
        Effect::Done(Outcome::Success)
    );
}

#[test]
fn a_background_step_that_ends_is_marked_but_still_awaited_for_its_result() {
    let mut c = upgrade_until(StepId::Backup);
    let _ = c.update(in_background(StepId::Backup));
    let ended = Msg::Exec(ExecEvent::BackgroundEnded {
        step: StepId::Backup,
        ok: true,
        took: Duration::from_secs(76),
    });
    assert_eq!(c.update(ended), Effect::None, "the banner job goes on");
    let backup = c.step(StepId::Backup).cloned().expect("step");
    assert_eq!(
        backup.status,
        StepStatus::Running,
        "its result is not here yet"
    );
    assert_eq!(backup.background_took, Some(Duration::from_secs(76)));
    let _ = c.update(nothing(StepId::Banner));
    let _ = c.update(nothing(StepId::CloneUpgrade));
    assert_eq!(
        c.update(nothing(StepId::SanityChecks)),
        Effect::Run(Job::Await {
            step: StepId::Backup
        })
    );
}

#[test]
fn a_failed_background_backup_stops_the_run_before_the_next_job() {
    let mut c = upgrade_until(StepId::Backup);
    let _ = c.update(in_background(StepId::Backup));
    let _ = c.update(nothing(StepId::Banner));
    // Asked to upgrade, the executor reports the backup's failure instead.
    assert_eq!(
        c.update(failed(StepId::Backup, "pg_dump: No space left on device")),
        Effect::Run(Job::FailurePath)
    );
    let Effect::Done(Outcome::Failed { step, what, .. }) = c.update(undo_done(true)) else {
        panic!()
    };
    assert_eq!(step, Some(StepId::Backup));
    assert!(what.contains("No space left"));
    let upgrade = c.step(StepId::CloneUpgrade).expect("step");
    assert_eq!(upgrade.status, StepStatus::Skipped, "it never began");
}

#[test]
fn a_failure_while_the_backup_runs_in_the_background_stops_it_too() {
    let mut c = upgrade_until(StepId::Backup);
    let _ = c.update(in_background(StepId::Backup));
    let _ = c.update(nothing(StepId::Banner));
    assert_eq!(
        c.update(failed(
            StepId::CloneUpgrade,
            "01_tables.sql:12: syntax error"
        )),
        Effect::Run(Job::FailurePath)
    );
    let Effect::Done(Outcome::Failed { step, .. }) = c.update(undo_done(true)) else {
        panic!()
    };
    assert_eq!(step, Some(StepId::CloneUpgrade));
    let backup = c.step(StepId::Backup).expect("step");
    assert_eq!(backup.status, StepStatus::Skipped);
    assert_eq!(backup.note.as_deref(), Some("stopped by the failure path"));
}

#[test]
fn cancel_while_waiting_for_the_backup_interrupts_it() {
    let mut c = backup_in_background_until_await();
    assert_eq!(c.update(Msg::Cancel), Effect::Interrupt);
    assert_eq!(
        c.update(failed(StepId::Backup, "cancelled by the operator")),
        Effect::Run(Job::FailurePath)
    );
    let Effect::Done(outcome) = c.update(undo_done(true)) else {
        panic!()
    };
    assert_eq!(outcome.exit_code(), crate::exit::CANCELLED);
}

#[test]
fn confirmations_need_every_item_ticked() {
    let mut c = upgrade_until(StepId::Confirmations);
    let Effect::Ask(Question::Confirmations { items }) =
        c.update(Msg::Answer(Answer::Tick(vec![0, 2])))
    else {
        panic!()
    };
    assert_eq!(items.iter().filter(|i| i.ticked).count(), 2);
    assert_eq!(
        c.update(Msg::Answer(Answer::Tick(vec![1, 3]))),
        run_job(StepId::ConnectedUsers)
    );
    let Some(StepOutput::Confirmed(items)) =
        &c.step(StepId::Confirmations).and_then(|s| s.output.clone())
    else {
        panic!()
    };
    assert!(items.iter().all(|i| i.ticked));
}

#[test]
fn connected_users_can_be_refreshed_notified_or_terminated() {
    let mut c = upgrade_until(StepId::ConnectedUsers);
    let found = StepOutput::Sessions {
        sessions: vec![session(41), session(42)],
        unblockable: vec![],
    };
    assert!(matches!(
        c.update(done(StepId::ConnectedUsers, found.clone())),
        Effect::Ask(Question::Sessions { .. })
    ));
    assert_eq!(
        c.update(Msg::Answer(Answer::Refresh)),
        run_job(StepId::ConnectedUsers)
    );
    assert!(matches!(
        c.update(done(StepId::ConnectedUsers, found.clone())),
        Effect::Ask(_)
    ));
    assert_eq!(
        c.update(Msg::Answer(Answer::Notify)),
        Effect::Run(Job::Notify)
    );
    assert!(matches!(
        c.update(done(StepId::ConnectedUsers, found)),
        Effect::Ask(_)
    ));
    assert_eq!(
        c.update(Msg::Answer(Answer::Terminate)),
        Effect::Run(Job::Terminate { pids: vec![41, 42] })
    );
    let nobody = StepOutput::Sessions {
        sessions: vec![],
        unblockable: vec![],
    };
    assert_eq!(
        c.update(done(StepId::ConnectedUsers, nobody)),
        run_job(StepId::DiskSpace)
    );
}

#[test]
fn a_fingerprint_mismatch_asks_and_an_accepted_one_is_a_warning() {
    let mut c = upgrade_until(StepId::Fingerprint);
    let mismatch = StepOutput::Fingerprint {
        hash: "h".into(),
        matches: false,
        reference: None,
        diff: "+ added column".into(),
    };
    let Effect::Ask(Question::FingerprintMismatch { diff }) =
        c.update(done(StepId::Fingerprint, mismatch.clone()))
    else {
        panic!()
    };
    assert!(diff.contains("added column"));
    assert_eq!(
        c.update(Msg::Answer(Answer::Proceed)),
        Effect::Run(Job::Accept {
            step: StepId::Fingerprint
        })
    );
    let accepted = Msg::Exec(ExecEvent::StepDone {
        step: StepId::Fingerprint,
        status: StepStatus::Warning,
        output: mismatch,
        elapsed: T,
    });
    assert_eq!(c.update(accepted), run_job(StepId::Clone));
    assert_eq!(
        c.step(StepId::Fingerprint).map(|s| s.status),
        Some(StepStatus::Warning)
    );
}

#[test]
fn an_unmeasurable_disk_asks_for_confirmation() {
    let mut c = upgrade_until(StepId::DiskSpace);
    let lines = vec![SpaceLine {
        what: "clone".into(),
        required: 10,
        available: None,
    }];
    assert!(matches!(
        c.update(done(StepId::DiskSpace, StepOutput::Disk(lines))),
        Effect::Ask(Question::DiskUnmeasurable { .. })
    ));
    assert_eq!(
        c.update(Msg::Answer(Answer::Proceed)),
        Effect::Run(Job::Accept {
            step: StepId::DiskSpace
        })
    );
}

#[test]
fn a_failure_at_any_step_takes_the_failure_path() {
    for &step in PlanKind::Upgrade
        .steps()
        .iter()
        .filter(|s| **s != StepId::Confirmations)
    {
        let mut c = upgrade_until(step);
        assert_eq!(
            c.update(failed(step, "boom")),
            Effect::Run(Job::FailurePath),
            "{step:?}"
        );
        assert!(matches!(c.phase, Phase::Undoing { .. }));
        let Effect::Done(outcome) = c.update(undo_done(true)) else {
            panic!()
        };
        let Outcome::Failed {
            step: s,
            what,
            undone,
            cancelled,
            ..
        } = &outcome
        else {
            panic!()
        };
        assert_eq!((*s, what.as_str(), cancelled), (Some(step), "boom", &false));
        assert_eq!(undone, &vec!["dropped the clone".to_owned()]);
        assert_eq!(outcome.exit_code(), crate::exit::FAILED);
        assert_eq!(c.step(step).map(|v| v.status), Some(StepStatus::Failed));
        assert!(
            c.steps
                .iter()
                .skip_while(|v| v.id != step)
                .skip(1)
                .all(|v| v.status == StepStatus::Skipped)
        );
    }
}

#[test]
fn a_guard_or_check_saying_no_is_a_refusal_not_an_error() {
    let mut c = upgrade_until(StepId::Plan);
    let _ = c.update(refused(StepId::Plan, "database does not exist"));
    let Effect::Done(outcome) = c.update(undo_done(false)) else {
        panic!()
    };
    assert_eq!(outcome.exit_code(), crate::exit::REFUSED);
    let mut c = upgrade_until(StepId::SanityChecks);
    let _ = c.update(refused(StepId::SanityChecks, "1 sanity check failed"));
    let Effect::Done(outcome) = c.update(undo_done(true)) else {
        panic!()
    };
    assert_eq!(
        outcome.exit_code(),
        crate::exit::REFUSED,
        "checks failed, the clone was dropped: {outcome:?}"
    );
    // An operator's (or policy's) "no" to a question is a refusal too.
    let mut c = upgrade_until(StepId::Confirmations);
    let _ = c.update(Msg::Answer(Answer::Abort));
    let Effect::Done(outcome) = c.update(undo_done(false)) else {
        panic!()
    };
    assert_eq!(outcome.exit_code(), crate::exit::REFUSED);
}

#[test]
fn cancel_while_running_interrupts_then_takes_the_failure_path() {
    let mut c = upgrade_until(StepId::CloneUpgrade);
    assert_eq!(c.update(Msg::Cancel), Effect::Interrupt);
    // The job notices and fails; the machine records a cancellation.
    assert_eq!(
        c.update(failed(StepId::CloneUpgrade, "cancelled")),
        Effect::Run(Job::FailurePath)
    );
    let Effect::Done(outcome) = c.update(undo_done(true)) else {
        panic!()
    };
    assert!(matches!(
        outcome,
        Outcome::Failed {
            cancelled: true,
            ..
        }
    ));
    assert_eq!(outcome.exit_code(), crate::exit::CANCELLED);
}

#[test]
fn cancel_that_arrives_as_the_step_finishes_still_stops() {
    let mut c = upgrade_until(StepId::Backup);
    assert_eq!(c.update(Msg::Cancel), Effect::Interrupt);
    assert_eq!(
        c.update(nothing(StepId::Backup)),
        Effect::Run(Job::FailurePath)
    );
}

#[test]
fn cancel_while_asking_or_before_start() {
    let mut c = upgrade_until(StepId::Confirmations);
    assert_eq!(c.update(Msg::Cancel), Effect::Run(Job::FailurePath));
    let mut fresh = Checklist::new(PlanKind::Upgrade);
    assert!(matches!(
        fresh.update(Msg::Cancel),
        Effect::Done(Outcome::Failed {
            changed_anything: false,
            ..
        })
    ));
    let mut c = upgrade_until(StepId::ConnectedUsers);
    let _ = c.update(done(
        StepId::ConnectedUsers,
        StepOutput::Sessions {
            sessions: vec![session(7)],
            unblockable: vec![],
        },
    ));
    assert_eq!(
        c.update(Msg::Answer(Answer::Abort)),
        Effect::Run(Job::FailurePath)
    );
}

#[test]
fn cancel_during_the_failure_path_or_after_the_end_changes_nothing() {
    let mut c = upgrade_until(StepId::Banner);
    let _ = c.update(failed(StepId::Banner, "x"));
    assert_eq!(c.update(Msg::Cancel), Effect::None);
    let _ = c.update(undo_done(true));
    assert_eq!(c.update(Msg::Cancel), Effect::None);
    assert_eq!(c.update(Msg::Start), Effect::None);
}

#[test]
fn a_crashed_executor_ends_the_run_with_advice_to_recover() {
    let mut c = upgrade_until(StepId::SanityChecks);
    let Effect::Done(Outcome::Failed { what, advice, .. }) =
        c.update(Msg::Exec(ExecEvent::Crashed("index out of bounds".into())))
    else {
        panic!()
    };
    assert!(what.contains("index out of bounds"));
    assert!(advice[0].contains("pgstep recover"));
    assert_eq!(
        c.step(StepId::SanityChecks).map(|s| s.status),
        Some(StepStatus::Failed)
    );
}

#[test]
fn progress_is_kept_for_the_running_step_and_late_news_is_ignored() {
    let mut c = upgrade_until(StepId::Backup);
    let _ = c.update(Msg::Exec(ExecEvent::Engine(Event::Progress {
        unit: Unit::Tables,
        done: 3,
        total: Some(9),
    })));
    assert_eq!(c.progress, Some((Unit::Tables, 3, Some(9))));
    // A StepDone for a step that is not running does nothing.
    assert_eq!(c.update(nothing(StepId::Plan)), Effect::None);
    // Answers that do not fit the question change nothing.
    assert_eq!(c.update(Msg::Answer(Answer::Terminate)), Effect::None);
}

#[test]
fn fixup_restore_and_bootstrap_are_plans_in_the_same_machine() {
    assert!(PlanKind::Fixup.steps().contains(&StepId::ApplyFixups));
    let mut c = Checklist::new(PlanKind::Bootstrap);
    assert_eq!(c.update(Msg::Start), run_job(StepId::Plan));
    assert_eq!(c.update(nothing(StepId::Plan)), run_job(StepId::Bootstrap));
    assert_eq!(
        c.update(nothing(StepId::Bootstrap)),
        Effect::Done(Outcome::Success)
    );
    let mut r = Checklist::new(PlanKind::Restore);
    assert_eq!(r.update(Msg::Start), run_job(StepId::Plan));
    assert_eq!(r.update(nothing(StepId::Plan)), run_job(StepId::DiskSpace));
}

#[test]
fn every_step_output_serialises_for_json_output() {
    let outputs = vec![
        StepOutput::Confirmed(manual_items()),
        StepOutput::Disk(vec![SpaceLine {
            what: "clone".into(),
            required: 1,
            available: Some(2),
        }]),
        StepOutput::Sessions {
            sessions: vec![session(1)],
            unblockable: vec!["postgres".into()],
        },
        StepOutput::Upgraded(vec![]),
        StepOutput::Checks(vec![]),
        StepOutput::Backup(BackupOutput::Skipped {
            reason: "r".into(),
            bytes_read: 3,
        }),
        StepOutput::Nothing { note: "n".into() },
    ];
    for o in outputs {
        let v = serde_json::to_value(&o).unwrap_or_else(|e| panic!("{o:?}: {e}"));
        assert!(v.get("kind").is_some(), "{v}");
    }
}

#[test]
fn declining_the_cut_over_takes_the_failure_path_as_a_refusal() {
    let mut c = upgrade_until(StepId::SanityChecks);
    assert_eq!(
        c.update(nothing(StepId::SanityChecks)),
        Effect::Ask(Question::CutOver)
    );
    assert_eq!(
        c.update(Msg::Answer(Answer::Abort)),
        Effect::Run(Job::FailurePath)
    );
    let Effect::Done(outcome) = c.update(undo_done(true)) else {
        panic!()
    };
    assert_eq!(outcome.exit_code(), crate::exit::REFUSED);
}

use std::fs;
use std::path::PathBuf;

use super::units::{duration, size_text};
use super::*;
use crate::journal::Entry;

fn info() -> RunInfo {
    crate::journal::sample_info("20260501T001500Z-clinic_v1-4242", "2026-05-01T00:15:00Z")
}

fn timing(step: &str, state: &str, at: &str, seconds: f64, detail: Option<&str>) -> StepTiming {
    StepTiming {
        step: step.to_owned(),
        state: state.into(),
        started_at: at.to_owned(),
        seconds,
        detail: detail.map(str::to_owned),
    }
}

fn check(name: &str, ok: bool, detail: &str) -> CheckResult {
    CheckResult {
        name: name.to_owned(),
        ok,
        detail: detail.to_owned(),
    }
}

fn change(id: u32, change: Change, at: &str, undone: Option<(&str, &str)>) -> ChangeRecord {
    ChangeRecord {
        id,
        change,
        at: at.to_owned(),
        confirmed: true,
        undone: undone.map(|(at, how)| Undo {
            at: at.to_owned(),
            how: how.to_owned(),
        }),
    }
}

fn banner() -> Change {
    Change::BannerSet {
        db: "clinic_v1".to_owned(),
        previous: None,
    }
}

fn clone_change() -> Change {
    Change::CloneCreating {
        name: "clinic_v2".to_owned(),
        source: "clinic_v1".to_owned(),
    }
}

fn common(outcome: Outcome) -> Report {
    let mut r = Report::new(info(), outcome);
    r.pgstep_version = "0.1.0".to_owned();
    r.fingerprints.before = Some("sha256:1111".to_owned());
    r.backup = Some(BackupRecord::Taken {
        path: PathBuf::from("/var/lib/pgstep/backups/clinic_v1-v1-20260501T021530.dump"),
        size: 12_912_345,
        sha256: "ab12".to_owned(),
    });
    r.confirmations = vec![
        Confirmation {
            item: "users informed".to_owned(),
            at: "2026-05-01T00:15:10Z".to_owned(),
        },
        Confirmation {
            item: "importers and backup jobs stopped".to_owned(),
            at: "2026-05-01T00:15:12Z".to_owned(),
        },
    ];
    r
}

fn success() -> Report {
    let mut r = common(Outcome::Success);
    r.finished_at = Some("2026-05-01T00:18:12Z".to_owned());
    r.fingerprints.after = Some("sha256:2222".to_owned());
    r.steps = vec![
        timing("plan", "done", "2026-05-01T00:15:00Z", 0.21, None),
        timing(
            "backup",
            "done",
            "2026-05-01T00:15:13Z",
            47.0,
            Some("12.3 MiB"),
        ),
        timing(
            "clone and upgrade",
            "done",
            "2026-05-01T00:16:00Z",
            125.4,
            None,
        ),
        timing("cut-over", "done", "2026-05-01T00:18:10Z", 1.5, None),
    ];
    r.checks = vec![
        check("fingerprint of version 1", true, "matches the reference"),
        check("patients | row count", true, "100000 = 100000"),
    ];
    r.changes = vec![
        change(
            1,
            banner(),
            "2026-05-01T00:15:59Z",
            Some(("2026-05-01T00:18:10Z", "banner removed")),
        ),
        change(2, clone_change(), "2026-05-01T00:16:00Z", None),
        change(
            3,
            Change::CutOverDone {
                old: "clinic_v1".to_owned(),
                new: "clinic_v2".to_owned(),
            },
            "2026-05-01T00:18:11Z",
            None,
        ),
    ];
    r.next_steps = vec![
        "Point the clients at \"clinic_v2\".".to_owned(),
        "Tell the users they can work again.".to_owned(),
    ];
    r
}

fn failed() -> Report {
    let mut r = common(Outcome::Failed);
    r.finished_at = Some("2026-05-01T00:16:30Z".to_owned());
    r.failure = Some(Failure {
        step: Some("clone and upgrade".to_owned()),
        location: Some(ScriptPosition::new("002_encounters.sql", 17)),
        error: "ERROR 42703: column \"visit_ts\" does not exist\n  HINT: Perhaps you meant \"visit_at\".".to_owned(),
    });
    r.steps = vec![
        timing("plan", "done", "2026-05-01T00:15:00Z", 0.21, None),
        timing("backup", "done", "2026-05-01T00:15:13Z", 47.0, None),
        timing(
            "clone and upgrade",
            "failed",
            "2026-05-01T00:16:00Z",
            28.0,
            Some("step 1 → 2"),
        ),
    ];
    r.checks = vec![
        check("fingerprint of version 1", true, "matches the reference"),
        check("version marker after step 1 → 2", false, "still 1"),
    ];
    r.changes = vec![
        change(
            1,
            banner(),
            "2026-05-01T00:15:59Z",
            Some(("2026-05-01T00:16:29Z", "banner removed")),
        ),
        change(
            2,
            clone_change(),
            "2026-05-01T00:16:00Z",
            Some(("2026-05-01T00:16:30Z", "clone dropped")),
        ),
    ];
    r.next_steps = vec!["Users can go on working with \"clinic_v1\".".to_owned()];
    r
}

#[test]
fn report_markdown_of_a_successful_upgrade() {
    assert_eq!(success().to_markdown(), SUCCESS_MD);
}

#[test]
fn report_markdown_of_a_failed_upgrade() {
    assert_eq!(failed().to_markdown(), FAILED_MD);
}

#[test]
fn report_summary_says_what_was_not_undone() {
    let mut r = Report::new(info(), Outcome::Cancelled);
    r.failure = Some(Failure {
        step: Some("backup".to_owned()),
        location: None,
        error: "cancelled".to_owned(),
    });
    r.changes = vec![
        change(
            1,
            banner(),
            "2026-05-01T00:15:59Z",
            Some(("2026-05-01T00:16:29Z", "banner removed")),
        ),
        change(2, clone_change(), "2026-05-01T00:16:00Z", None),
    ];
    r.backup = Some(BackupRecord::NotTaken {
        reason: "--no-backup given".to_owned(),
    });
    let md = r.to_markdown();
    assert!(
        md.starts_with("# Upgrade of clinic_v1, version 1 → 2: CANCELLED\n"),
        "{md}"
    );
    assert!(
        md.contains(
            "was CANCELLED by the operator at the step \"backup\". Of the 2 changes pgstep \
             made on the server, 1 was NOT undone (see Changes)."
        ),
        "{md}"
    );
    assert!(md.contains("| NOT undone "), "{md}");
    assert!(
        md.contains("No backup was taken: --no-backup given\n"),
        "{md}"
    );

    let refused = Report::new(info(), Outcome::Refused).to_markdown();
    assert!(
        refused.contains("pgstep changed nothing on the server."),
        "{refused}"
    );
    assert!(
        refused.contains("No backup was recorded for this run."),
        "{refused}"
    );
}

#[test]
fn report_from_journal_times_steps_and_lists_changes() {
    use crate::journal::Journal;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = Journal::create_in(dir.path(), info()).expect("journal");
    let step = |name: &str, state: &str| Entry::Step {
        step: name.to_owned(),
        state: state.into(),
        detail: None,
    };
    j.append(step("backup", "started")).expect("append");
    j.append(step("backup", "done")).expect("append");
    let id = j.change(banner()).expect("change");
    j.append(Entry::Confirmed { id }).expect("append");
    j.append(step("clone", "started")).expect("append");
    j.change(clone_change()).expect("change");
    j.append(Entry::Undone {
        id,
        how: "banner removed".to_owned(),
    })
    .expect("append");
    let record = crate::journal::read_run(j.path()).expect("read");

    let r = Report::from_journal(&record, Outcome::Failed);
    let steps: Vec<(&str, &str)> = r
        .steps
        .iter()
        .map(|s| (s.step.as_str(), s.state.as_str()))
        .collect();
    assert_eq!(steps, [("backup", "done"), ("clone", "started")]);
    assert!(r.steps.iter().all(|s| s.seconds >= 0.0 && s.seconds < 60.0));
    assert_eq!(r.changes.len(), 2);
    assert!(r.changes[0].confirmed);
    assert_eq!(
        r.changes[0].undone.as_ref().map(|u| u.how.as_str()),
        Some("banner removed")
    );
    assert!(!r.changes[1].confirmed && r.changes[1].undone.is_none());
    assert_eq!(r.finished_at, None);
    assert!(r.to_markdown().contains("| did not finish |"));
}

#[test]
fn report_write_leaves_both_files_complete_and_masked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reports = dir.path().join("reports");
    let mut r = failed();
    r.failure = Some(Failure {
        step: None,
        location: None,
        error: "could not connect with password=hunter2 to postgres://a:hunter2@h/db".to_owned(),
    });
    let (md, json) = write(&r, &reports).expect("write");
    assert_eq!(md, reports.join("20260501T001500Z-clinic_v1-4242.md"));
    assert_eq!(json, reports.join("20260501T001500Z-clinic_v1-4242.json"));
    let md_text = fs::read_to_string(&md).expect("md");
    let json_text = fs::read_to_string(&json).expect("json");
    assert_eq!(md_text, r.to_markdown());
    for t in [&md_text, &json_text] {
        assert!(!t.contains("hunter2"), "{t}");
        assert!(t.contains("password=***"), "{t}");
    }
    let back: Report = serde_json::from_str(&json_text).expect("parse the JSON report");
    assert_eq!(back.changes, r.changes);
    assert_eq!(back.outcome, Outcome::Failed);
    assert_eq!(back.backup, r.backup);
    let names: Vec<_> = fs::read_dir(&reports)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
}

#[test]
fn report_durations_and_sizes_read_naturally() {
    assert_eq!(duration(0.04), "0.0 s");
    assert_eq!(duration(9.96), "10.0 s");
    assert_eq!(duration(59.4), "59 s");
    assert_eq!(duration(3599.0), "59 min 59 s");
    assert_eq!(duration(3725.0), "1 h 02 min");
    assert_eq!(duration(f64::NAN), "?");
    assert_eq!(size_text(999), "999 bytes");
    // The screens' units (decimal, as `df -H`), with the exact figure beside them.
    assert_eq!(size_text(1536), "1.5 kB (1,536 bytes)");
    assert_eq!(
        size_text(5 * 1024 * 1024 * 1024),
        "5.4 GB (5,368,709,120 bytes)"
    );
}

#[test]
fn report_script_position_is_written_as_file_and_line() {
    let at = ScriptPosition::new("v1-v2/002_encounters.sql", 17);
    let json = serde_json::to_string(&at).expect("to json");
    assert_eq!(json, "\"v1-v2/002_encounters.sql:17\"");
    assert_eq!(
        serde_json::from_str::<ScriptPosition>(&json).expect("from json"),
        at
    );
}

/// What both expected reports say of who ran them (the fixture's `info()`).
macro_rules! run_by_md {
    () => {
        r##"- Run by: alice on host db1, pid 4242
- Run id: 20260501T001500Z-clinic_v1-4242
- pgstep: 0.1.0
"##
    };
}

/// What both expected reports say of the backup and the confirmations (the fixture's
/// `common()`), and the head of their Changes table.
macro_rules! backup_to_changes_md {
    () => {
        r##"## Backup

- File: /var/lib/pgstep/backups/clinic_v1-v1-20260501T021530.dump
- Size: 12.9 MB (12,912,345 bytes)
- SHA-256: ab12

## Manual confirmations

- 00:15:10 users informed
- 00:15:12 importers and backup jobs stopped

## Changes made on the server

| # | Change                                                | At       | Result                             |
|---|-------------------------------------------------------|----------|------------------------------------|
"##
    };
}

const SUCCESS_MD: &str = concat!(
    r##"# Upgrade of clinic_v1, version 1 → 2: succeeded

The upgrade of "clinic_v1" from version 1 to 2 on db1.example:5432 succeeded. It took 3 min 12 s. pgstep made 3 changes on the server. Clients now use "clinic_v2"; "clinic_v1" was kept. See "What to do next" at the end.

- Database: clinic_v1 on db1.example:5432
- Outcome: succeeded
- Application bundle: clinic
- Versions: 1 → 2
- Started: 2026-05-01 00:15:00 UTC
- Finished: 2026-05-01 00:18:12 UTC (3 min 12 s)
"##,
    run_by_md!(),
    r##"
## Steps

| Step              | Result | Started  | Duration   | Notes    |
|-------------------|--------|----------|------------|----------|
| plan              | done   | 00:15:00 | 0.2 s      |          |
| backup            | done   | 00:15:13 | 47 s       | 12.3 MiB |
| clone and upgrade | done   | 00:16:00 | 2 min 05 s |          |
| cut-over          | done   | 00:18:10 | 1.5 s      |          |

## Checks

- ✓ fingerprint of version 1 — matches the reference
- ✓ patients | row count — 100000 = 100000

## Schema fingerprints

- Before: sha256:1111
- After: sha256:2222

"##,
    backup_to_changes_md!(),
    r##"| 1 | logon banner set on "clinic_v1"                       | 00:15:59 | undone at 00:18:10: banner removed |
| 2 | database "clinic_v2" created as a copy of "clinic_v1" | 00:16:00 | in place                           |
| 3 | cut-over from "clinic_v1" to "clinic_v2" done         | 00:18:11 | in place                           |

## What to do next

1. Point the clients at "clinic_v2".
2. Tell the users they can work again.
"##
);

const FAILED_MD: &str = concat!(
    r##"# Upgrade of clinic_v1, version 1 → 2: FAILED

The upgrade of "clinic_v1" from version 1 to 2 on db1.example:5432 FAILED at the step "clone and upgrade": 002_encounters.sql:17: ERROR 42703: column "visit_ts" does not exist. It took 1 min 30 s. Every change pgstep made on the server was undone. 1 check failed (see Checks). See "What to do next" at the end.

- Database: clinic_v1 on db1.example:5432
- Outcome: FAILED
- Application bundle: clinic
- Versions: 1 → 2
- Started: 2026-05-01 00:15:00 UTC
- Finished: 2026-05-01 00:16:30 UTC (1 min 30 s)
"##,
    run_by_md!(),
    r##"
## What failed

- Step: clone and upgrade
- Where: 002_encounters.sql:17
- Error:

      ERROR 42703: column "visit_ts" does not exist
        HINT: Perhaps you meant "visit_at".

## Steps

| Step              | Result | Started  | Duration | Notes      |
|-------------------|--------|----------|----------|------------|
| plan              | done   | 00:15:00 | 0.2 s    |            |
| backup            | done   | 00:15:13 | 47 s     |            |
| clone and upgrade | FAILED | 00:16:00 | 28 s     | step 1 → 2 |

## Checks

- ✓ fingerprint of version 1 — matches the reference
- ✗ version marker after step 1 → 2 — FAILED: still 1

## Schema fingerprints

- Before: sha256:1111
- After: (not taken)

"##,
    backup_to_changes_md!(),
    r##"| 1 | logon banner set on "clinic_v1"                       | 00:15:59 | undone at 00:16:29: banner removed |
| 2 | database "clinic_v2" created as a copy of "clinic_v1" | 00:16:00 | undone at 00:16:30: clone dropped  |

## What to do next

1. Users can go on working with "clinic_v1".
"##
);

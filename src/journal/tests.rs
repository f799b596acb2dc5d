//! The journal's writer and reader together: what a crash leaves, and what still reads.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use super::*;

fn info(run_id: &str) -> RunInfo {
    sample_info(run_id, "2026-05-01T02:15:00Z")
}

fn banner(db: &str) -> Change {
    Change::BannerSet {
        db: db.to_owned(),
        previous: None,
    }
}

fn step(step: &str, state: &str) -> Entry {
    Entry::Step {
        step: step.to_owned(),
        state: state.into(),
        detail: None,
    }
}

/// Appends raw bytes the way a crash in the middle of a write would leave them.
fn append_raw(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open journal");
    f.write_all(bytes).expect("append raw");
}

fn kinds(record: &RunRecord) -> Vec<String> {
    record
        .entries
        .iter()
        .map(|(_, e)| {
            let v = serde_json::to_value(e).expect("to_value");
            v["entry"].as_str().expect("entry tag").to_owned()
        })
        .collect()
}

#[test]
fn journal_round_trips_every_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
    j.append(step("backup", "started")).expect("append");
    let snapshot = serde_json::json!({"datallowconn": true, "limit": -1});
    let id1 = j.change(banner("clinic_v1")).expect("change");
    j.append(Entry::Confirmed { id: id1 }).expect("confirmed");
    let id2 = j
        .change(Change::AccessBlocked {
            db: "clinic_v1".to_owned(),
            snapshot: snapshot.clone(),
        })
        .expect("change");
    j.append(Entry::Undone {
        id: id2,
        how: "access restored".to_owned(),
    })
    .expect("undone");
    j.append(Entry::Finished {
        outcome: RunOutcome::Success,
        detail: Some("all good".to_owned()),
    })
    .expect("finished");
    assert_eq!((id1, id2), (1, 2));
    assert_eq!(j.path(), dir.path().join("r1.jsonl"));

    let record = read_run(j.path()).expect("read");
    assert_eq!(record.info, info("r1"));
    assert_eq!(record.finished, Some(RunOutcome::Success));
    assert!(!record.is_interrupted());
    assert!(record.warnings.is_empty());
    let entries: Vec<Entry> = record.entries.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(
        entries,
        vec![
            step("backup", "started"),
            Entry::Change {
                id: 1,
                change: banner("clinic_v1")
            },
            Entry::Confirmed { id: 1 },
            Entry::Change {
                id: 2,
                change: Change::AccessBlocked {
                    db: "clinic_v1".to_owned(),
                    snapshot
                }
            },
            Entry::Undone {
                id: 2,
                how: "access restored".to_owned()
            },
            Entry::Finished {
                outcome: RunOutcome::Success,
                detail: Some("all good".to_owned())
            },
        ]
    );
    for (at, _) in &record.entries {
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    }
    assert!(record.is_confirmed(1));
    assert!(!record.is_confirmed(2));
}

#[test]
fn journal_lines_have_the_documented_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
    j.change(Change::Renamed {
        from: "a".to_owned(),
        to: "b".to_owned(),
    })
    .expect("change");
    let text = fs::read_to_string(j.path()).expect("read");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["entry"], "started");
    assert_eq!(lines[0]["run_id"], "r1");
    assert_eq!(lines[0]["kind"], "upgrade");
    assert_eq!(lines[1]["entry"], "change");
    assert_eq!(lines[1]["id"], 1);
    assert_eq!(
        lines[1]["change"],
        serde_json::json!({"kind": "renamed", "from": "a", "to": "b"})
    );
    assert!(text.starts_with("{\"at\":\""), "{text}");
}

#[test]
fn journal_is_readable_after_a_crash_without_finish() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = {
        let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
        j.change(banner("clinic_v1")).expect("change");
        j.path().to_path_buf()
        // dropped without Finished, as if the process had been killed
    };
    let record = read_run(&path).expect("read");
    assert!(record.is_interrupted());
    assert_eq!(record.pending_changes(), vec![(1, banner("clinic_v1"))]);
}

#[test]
fn journal_torn_last_line_is_ignored_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
    j.change(banner("clinic_v1")).expect("change");
    let path = j.path().to_path_buf();
    drop(j);
    // Killed half-way through writing the next entry.
    append_raw(
        &path,
        br#"{"at":"2026-05-01T02:16:00.000Z","entry":"change","id":2,"change":{"kind":"clone_cr"#,
    );
    let record = read_run(&path).expect("a torn last line is tolerated");
    assert_eq!(record.pending_changes(), vec![(1, banner("clinic_v1"))]);
    assert_eq!(record.warnings.len(), 1);
    assert!(
        record.warnings[0].contains("line 3"),
        "{:?}",
        record.warnings
    );
    assert!(
        record.warnings[0].contains("r1.jsonl"),
        "{:?}",
        record.warnings
    );
}

#[test]
fn journal_nul_padding_after_a_crash_is_tolerated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = Journal::create_in(dir.path(), info("r1")).expect("create");
    append_raw(j.path(), &[0u8; 64]);
    let record = read_run(j.path()).expect("read");
    assert!(record.entries.is_empty());
    assert!(record.warnings.is_empty());
}

#[test]
fn journal_reopened_after_a_torn_line_cuts_it_and_keeps_appending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
    j.change(banner("clinic_v1")).expect("change");
    let path = j.path().to_path_buf();
    drop(j);
    append_raw(&path, br#"{"at":"2026-05-01T02:16:00.000Z","entry":"chan"#);

    let (mut j, warnings) = Journal::open_existing_with_warnings(&path).expect("reopen");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let id = j
        .change(Change::CloneCreating {
            name: "clinic_v2".to_owned(),
            source: "clinic_v1".to_owned(),
        })
        .expect("change");
    assert_eq!(id, 2, "ids continue after the existing ones");
    j.append(Entry::Undone {
        id: 1,
        how: "banner removed".to_owned(),
    })
    .expect("undone");

    let record = read_run(&path).expect("read after reopen");
    assert!(record.warnings.is_empty(), "{:?}", record.warnings);
    assert_eq!(kinds(&record), ["change", "change", "undone"]);
    let mut torn = path.as_os_str().to_owned();
    torn.push(".torn");
    assert_eq!(
        fs::read(&torn).expect("torn bytes kept"),
        br#"{"at":"2026-05-01T02:16:00.000Z","entry":"chan"#
    );
}

#[test]
fn journal_reopened_after_nul_padding_or_a_missing_newline_stays_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
    j.change(banner("clinic_v1")).expect("change");
    let path = j.path().to_path_buf();
    drop(j);
    // A complete entry whose newline never reached the disk, then NUL padding.
    let mut bytes = fs::read(&path).expect("read");
    bytes.pop();
    bytes.extend_from_slice(&[0u8; 32]);
    fs::write(&path, &bytes).expect("write");
    let (mut j, warnings) = Journal::open_existing_with_warnings(&path).expect("reopen");
    assert!(warnings.is_empty(), "{warnings:?}");
    j.append(Entry::Undone {
        id: 1,
        how: "banner removed".to_owned(),
    })
    .expect("undone");
    let record = read_run(&path).expect("read");
    assert_eq!(kinds(&record), ["change", "undone"]);
    assert!(record.pending_changes().is_empty());
}

#[test]
fn journal_damaged_middle_line_is_an_error_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
    j.change(banner("clinic_v1")).expect("change");
    let path = j.path().to_path_buf();
    drop(j);
    append_raw(&path, b"{\"at\":\"2026-05-01T02:16:00Z\",\"entry\":\"cha\n");
    let mut j = Journal {
        file: OpenOptions::new().append(true).open(&path).expect("open"),
        len: fs::metadata(&path).expect("meta").len(),
        path: path.clone(),
        next_id: 2,
    };
    j.append(step("clone", "started")).expect("append");

    let err = read_run(&path).expect_err("a damaged middle line is an error");
    match &err {
        JournalError::Damaged { line, .. } => assert_eq!(*line, 3),
        other => panic!("unexpected error {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("r1.jsonl"), "{message}");
    assert!(message.contains("line 3"), "{message}");
    assert!(Journal::open_existing(&path).is_err());
}

#[test]
fn journal_failed_append_leaves_no_partial_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
    let len = fs::metadata(j.path()).expect("meta").len();
    // A read-only handle makes the write fail the way a full disk would.
    j.file = File::open(j.path()).expect("open read-only");
    assert!(j.change(banner("clinic_v1")).is_err());
    assert_eq!(fs::metadata(j.path()).expect("meta").len(), len);
    assert_eq!(j.next_id, 1, "a failed change does not use up its id");
}

#[test]
fn journal_pending_changes_are_newest_first_without_undone_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
    let banner_id = j.change(banner("clinic_v1")).expect("change");
    let clone = Change::CloneCreating {
        name: "clinic_v2".to_owned(),
        source: "clinic_v1".to_owned(),
    };
    let clone_id = j.change(clone.clone()).expect("change");
    let renamed = Change::Renamed {
        from: "clinic".to_owned(),
        to: "clinic_old".to_owned(),
    };
    let renamed_id = j.change(renamed.clone()).expect("change");
    j.append(Entry::Undone {
        id: clone_id,
        how: "dropped".to_owned(),
    })
    .expect("undone");
    let record = read_run(j.path()).expect("read");
    assert_eq!(
        record.pending_changes(),
        vec![(renamed_id, renamed), (banner_id, banner("clinic_v1"))]
    );
    assert!(record.is_interrupted());
}

#[test]
fn journal_refuses_to_reuse_a_run_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = Journal::create_in(dir.path(), info("r1")).expect("create");
    let err = Journal::create_in(dir.path(), info("r1")).expect_err("second create");
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    let record = read_run(&dir.path().join("r1.jsonl")).expect("read");
    assert!(record.entries.is_empty(), "the first journal is untouched");
    let names: Vec<_> = fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["r1.jsonl"], "no temporary file left behind");
}

#[test]
fn journal_context_is_kept_and_older_journals_without_it_still_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
    let context = RunContext {
        system_identifier: Some("7300000000000000001".into()),
        source_oid: Some(16384),
        application_name: Some("pgstep h pid 1 run r1".into()),
        banner: Some(BannerSql {
            get: "SELECT 1".into(),
            set: "SELECT $1".into(),
            clear: "SELECT 2".into(),
        }),
        bundle: Some("/opt/clinic".into()),
    };
    j.append(Entry::Context(context.clone())).expect("context");
    assert_eq!(read_run(j.path()).expect("read").context(), Some(&context));
    // A context line from a pgstep that knew fewer fields.
    append_raw(
        j.path(),
        b"{\"at\":\"2026-05-01T02:16:00Z\",\"entry\":\"context\"}\n",
    );
    let record = read_run(j.path()).expect("read");
    assert_eq!(record.entries.len(), 2);
    let old = Journal::create_in(dir.path(), info("r0")).expect("create");
    assert_eq!(read_run(old.path()).expect("read").context(), None);
}

#[test]
fn journal_damaged_files_are_set_aside_and_the_others_still_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    Journal::create_in(dir.path(), info("20260501T000000Z-a-1")).expect("create");
    let bad = dir.path().join("20260502T000000Z-b-2.jsonl");
    fs::write(&bad, "garbage\n{}\n").expect("write");
    let (good, damaged) = runs_setting_aside_damaged(dir.path()).expect("runs");
    assert_eq!(good.len(), 1);
    assert_eq!(damaged.len(), 1);
    assert!(damaged[0].error.contains("line 1"), "{:?}", damaged[0]);
    assert!(!bad.exists());
    assert!(
        dir.path()
            .join("20260502T000000Z-b-2.jsonl.damaged")
            .exists()
    );
    assert!(damaged[0].describe().contains(".damaged"));
    let (good, damaged) = runs_setting_aside_damaged(dir.path()).expect("runs");
    assert_eq!((good.len(), damaged.len()), (1, 0));
}

#[test]
fn journal_without_a_start_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.jsonl");
    fs::write(
        &path,
        "{\"at\":\"2026-05-01T02:16:00Z\",\"entry\":\"confirmed\",\"id\":1}\n",
    )
    .expect("write");
    assert!(matches!(read_run(&path), Err(JournalError::NoStart { .. })));
}

#[test]
fn journal_runs_lists_newest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(
        runs(&dir.path().join("missing"))
            .expect("no dir")
            .is_empty()
    );
    for id in [
        "20260501T021500Z-clinic_v1-10",
        "20260502T021500Z-clinic_v1-11",
        "20260430T021500Z-clinic_v1-9",
    ] {
        Journal::create_in(dir.path(), info(id)).expect("create");
    }
    fs::write(dir.path().join("notes.txt"), "not a journal").expect("write");
    let ids: Vec<String> = runs(dir.path())
        .expect("runs")
        .into_iter()
        .map(|r| r.info.run_id)
        .collect();
    assert_eq!(
        ids,
        [
            "20260502T021500Z-clinic_v1-11",
            "20260501T021500Z-clinic_v1-10",
            "20260430T021500Z-clinic_v1-9"
        ]
    );
}

#[test]
fn journal_run_ids_are_sortable_sanitised_and_unique() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-05-01T02:15:07Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let first = new_run_id(at, "journal-test/db x", 77);
    assert_eq!(first, "20260501T021507Z-journal-test%2Fdb%20x-77");
    assert_eq!(
        new_run_id(at, "journal-test/db x", 77),
        "20260501T021507Z-journal-test%2Fdb%20x-77-2"
    );
    let info = RunInfo::new(RunKind::Fixup, "s", "clinic");
    assert!(
        info.run_id
            .ends_with(&format!("-clinic-{}", std::process::id()))
    );
    assert!(
        chrono::NaiveDateTime::parse_from_str(&info.run_id[..16], "%Y%m%dT%H%M%SZ").is_ok(),
        "{}",
        info.run_id
    );
    assert!(chrono::DateTime::parse_from_rfc3339(&info.started_at).is_ok());
    assert!(!info.host.is_empty() && !info.operator.is_empty());
}

#[test]
fn journal_step_states_and_outcomes_read_and_write_as_the_same_words() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = Journal::create_in(dir.path(), info("r1")).expect("create");
    let lines = [
        r#"{"at":"2026-05-01T02:16:00Z","entry":"step","step":"backup","state":"going on alongside","detail":null}"#,
        r#"{"at":"2026-05-01T02:16:01Z","entry":"step","step":"backup","state":"paused by a newer pgstep","detail":null}"#,
        r#"{"at":"2026-05-01T02:16:02Z","entry":"finished","outcome":"recovered","detail":"1 change(s) undone by pgstep recover"}"#,
    ];
    for line in lines {
        append_raw(j.path(), format!("{line}\n").as_bytes());
    }
    let record = read_run(j.path()).expect("read");
    assert_eq!(record.finished, Some(RunOutcome::Recovered));
    let states: Vec<StepState> = record
        .entries
        .iter()
        .filter_map(|(_, e)| match e {
            Entry::Step { state, .. } => Some(state.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            StepState::GoingOnAlongside,
            StepState::Other("paused by a newer pgstep".into())
        ]
    );
    for ((at, entry), line) in record.entries.iter().zip(lines) {
        let again = serde_json::to_string(&super::entry::Line {
            at: at.clone(),
            entry: entry.clone(),
        })
        .expect("encode");
        assert_eq!(again, line);
    }
}

//! The backup taken from the frozen source while the clone is upgraded and checked: it runs
//! alongside the upgrade, the cut-over waits for it, it holds the source exactly as users left
//! it (not the logon banner set after its snapshot), and when it fails the run stops with
//! everything given back.

mod common;

use common::{Recorder, run, sample_bundle, source_state, user_content, yes};
use pgstep::cancel::Cancel;
use pgstep::checklist::{
    BackupOutput, ExecEvent, Outcome, PlanKind, StepId, StepOutput, StepStatus,
};
use pgstep::session::Shown;

#[test]
fn the_backup_runs_alongside_the_upgrade_and_holds_the_source_as_users_left_it() {
    let bundle = sample_bundle();
    let pg = common::clinic_v1(&bundle, 300);
    pg.exec(
        "clinic_v1",
        "UPDATE clinic.logon_banner SET message = 'Welcome to the clinic' WHERE id = 1",
    );
    let before = user_content(&pg, "clinic_v1");

    let spec = pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), None);
    let mut seen: Vec<String> = Vec::new();
    let (checklist, outcome) = pgstep::drive::run(spec, &yes(), &mut |_, shown| {
        if let Shown::Exec(e) = shown {
            match e {
                ExecEvent::StepStarted(s) => seen.push(format!("start {}", s.key())),
                ExecEvent::StepDone { step, status, .. } => {
                    let how = if *status == StepStatus::Running {
                        "background"
                    } else {
                        "done"
                    };
                    seen.push(format!("{how} {}", step.key()));
                }
                _ => {}
            }
        }
    });
    assert_eq!(outcome, Outcome::Success, "{checklist:?}");
    let at = |what: &str| {
        seen.iter()
            .position(|s| s == what)
            .unwrap_or_else(|| panic!("{what} is missing from {seen:?}"))
    };
    // The clone first, then the backup goes on while the clone is upgraded and checked, and
    // the cut-over waits until it is verified.
    assert!(at("done clone") < at("background backup"), "{seen:?}");
    assert!(
        at("background backup") < at("start clone_upgrade"),
        "{seen:?}"
    );
    assert!(at("done sanity_checks") < at("done backup"), "{seen:?}");
    assert!(at("done backup") < at("start cut_over"), "{seen:?}");

    // The source kept the banner of the downtime; the backup did not: it was taken from a
    // snapshot made before the banner was set.
    let during: Option<String> = pg.query_one(
        "clinic_v1",
        "SELECT message FROM clinic.logon_banner WHERE id = 1",
    );
    assert!(
        during.as_deref().is_some_and(|m| m.contains("in progress")),
        "{during:?}"
    );
    let Some(StepOutput::Backup(BackupOutput::Taken { path, .. })) = checklist
        .step(StepId::Backup)
        .and_then(|s| s.output.clone())
    else {
        panic!("no backup: {checklist:?}")
    };
    pgstep::engine::restore::restore(
        &pg.settings("postgres"),
        std::path::Path::new(&path),
        "clinic_restored",
        1,
        &Cancel::new(),
        &mut Recorder::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(user_content(&pg, "clinic_restored"), before);
}

#[test]
fn a_backup_that_fails_in_the_background_stops_the_run_and_gives_everything_back() {
    let bundle = sample_bundle();
    let pg = common::clinic_v1(&bundle, 300);
    let before = source_state(&pg, "clinic_v1");
    let mut spec = pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), None);
    // The backup, on its own thread, fails once it has run.
    spec.fault = Some("backup_alongside:fail".into());
    let ran = run(spec, &yes());
    let Outcome::Failed { step, what, .. } = &ran.outcome else {
        panic!("the run cut over with a failed backup: {:?}", ran.checklist)
    };
    assert_eq!(*step, Some(StepId::Backup), "{what}");
    assert!(what.contains("injected fault"), "{what}");
    assert!(!pg.exists("clinic_v2"), "the clone is dropped");
    assert_eq!(
        source_state(&pg, "clinic_v1"),
        before,
        "the source is as it was"
    );
    let cut_over = ran.checklist.step(StepId::CutOver).map(|s| s.status);
    assert_eq!(cut_over, Some(StepStatus::Skipped));
}

#[test]
fn a_failure_while_the_backup_runs_stops_it_and_leaves_no_partial_backup() {
    let bundle = sample_bundle();
    let pg = common::clinic_v1(&bundle, 3_000);
    let before = source_state(&pg, "clinic_v1");
    let mut spec = pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), None);
    // The step that starts the backup fails just after pg_dump has begun, and the backup holds
    // before it is verified until it is stopped: it is still running when the run fails.
    spec.fault = Some("backup_written:hold,backup:fail".into());
    let ran = run(spec, &yes());
    let Outcome::Failed { step, .. } = &ran.outcome else {
        panic!("{:?}", ran.checklist)
    };
    assert_eq!(*step, Some(StepId::Backup));
    assert!(!pg.exists("clinic_v2"), "the clone is dropped");
    assert_eq!(
        source_state(&pg, "clinic_v1"),
        before,
        "the source is as it was"
    );
    let files = backup_files(&pg);
    assert!(
        !files.iter().any(|n| n.ends_with(".partial")),
        "no partial backup is left: {files:?}"
    );
    // The failure path stopped the backup and said so; nothing of it is left.
    let (_, undone, _) = ran.failure();
    assert!(
        undone.iter().any(|u| u.contains("stopped the backup")),
        "{undone:?}"
    );
    assert!(
        !matches!(
            ran.output(StepId::Backup),
            Some(StepOutput::Backup(BackupOutput::Taken { .. }))
        ),
        "a stopped backup is not reported as taken"
    );
    assert_eq!(files, Vec::<String>::new(), "nothing left of the backup");
    // A run's pg_dump carries the run's name (so that recover can find it); a session whose
    // client has closed may stay listed a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left: i64 = pg.query_one(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' \
             OR application_name LIKE 'pgstep % run %'",
        );
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pg_dump was stopped: {left} session(s) left"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_backup_that_finished_before_a_failure_is_kept_and_reported() {
    let bundle_dir = common::copy_bundle(&common::sample_dir());
    let script = bundle_dir.path().join("v1-v2/02_functions.sql");
    let text = std::fs::read_to_string(&script).expect("read");
    // The script fails, but only once the test has seen the backup end (at most a minute).
    std::fs::write(
        &script,
        format!("{text}\n{WAIT_FOR_GO_ON}\nSELECT 1 / 0;\n"),
    )
    .expect("write");
    let bundle = pgstep::bundle::load(bundle_dir.path()).expect("bundle");
    let pg = common::clinic_v1(&bundle, 300);
    let before = source_state(&pg, "clinic_v1");
    let spec = pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), None);
    let mut ended = None;
    let (checklist, outcome) = pgstep::drive::run(spec, &yes(), &mut |_, shown| {
        if let Shown::Exec(ExecEvent::BackgroundEnded { ok, .. }) = shown {
            ended = Some(*ok);
            pg.exec("postgres", "CREATE DATABASE test_go_on");
        }
    });
    assert_eq!(ended, Some(true), "the backup ended alongside, verified");
    let Outcome::Failed { step, undone, .. } = &outcome else {
        panic!("{checklist:?}")
    };
    assert_eq!(*step, Some(StepId::CloneUpgrade));
    assert!(
        !undone.iter().any(|u| u.contains("stopped the backup")),
        "{undone:?}"
    );
    let backup = checklist.step(StepId::Backup).expect("backup step");
    assert_eq!(backup.status, StepStatus::Done, "{backup:?}");
    let Some(StepOutput::Backup(BackupOutput::Taken { path, sha256, .. })) = &backup.output else {
        panic!("{backup:?}")
    };
    let bytes = std::fs::read(path).expect("the backup is kept");
    assert_eq!(&pgstep::hex::sha256(&bytes), sha256, "{path}");
    assert!(!pg.exists("clinic_v2"), "the clone is dropped");
    assert_eq!(
        source_state(&pg, "clinic_v1"),
        before,
        "the source is as it was"
    );
}

/// The files in the run's backup directory.
fn backup_files(pg: &common::Pg) -> Vec<String> {
    std::fs::read_dir(pg.data_dir().join("backups"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_old_side_of_the_plausibility_pairs_is_read_in_the_backups_snapshot_alongside() {
    let bundle_dir = common::copy_bundle(&common::sample_dir());
    // A pair that reads what pgstep itself changes on the source: the logon banner. Read in
    // the backup's snapshot it is the users' message, as in the clone; read at the end it
    // would be the downtime banner.
    let toml = bundle_dir.path().join("bundle.toml");
    let text = std::fs::read_to_string(&toml).expect("read");
    let pair = "[[plausibility]]\nname = \"banner as users left it\"\n\
                old = \"SELECT message FROM clinic.logon_banner WHERE id = 1\"\n\
                new = \"SELECT message FROM clinic.logon_banner WHERE id = 1\"\n\n";
    let at = text.find("[[plausibility]]").expect("a pair");
    std::fs::write(&toml, format!("{}{pair}{}", &text[..at], &text[at..])).expect("write");
    // The upgrade goes on only once the test has seen the backup end, so that the sanity
    // checks come after it.
    let script = bundle_dir.path().join("v1-v2/03_views_grants.sql");
    let text = std::fs::read_to_string(&script).expect("read");
    std::fs::write(&script, format!("{WAIT_FOR_GO_ON}\n{text}")).expect("write");
    let bundle = pgstep::bundle::load(bundle_dir.path()).expect("bundle");
    let pg = common::clinic_v1(&bundle, 300);
    pg.exec(
        "clinic_v1",
        "UPDATE clinic.logon_banner SET message = 'Welcome to the clinic' WHERE id = 1",
    );
    let spec = pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), None);
    let mut logs = Vec::new();
    let (checklist, outcome) = pgstep::drive::run(spec, &yes(), &mut |_, shown| match shown {
        Shown::Exec(ExecEvent::BackgroundEnded { .. }) => {
            pg.exec("postgres", "CREATE DATABASE test_go_on");
        }
        Shown::Exec(ExecEvent::Engine(pgstep::events::Event::Log { text, .. })) => {
            logs.push(text.clone());
        }
        _ => {}
    });
    let Some(StepOutput::Checks(checks)) = checklist
        .step(StepId::SanityChecks)
        .and_then(|s| s.output.clone())
    else {
        panic!("{outcome:?}: {checklist:?}")
    };
    let banner = checks
        .iter()
        .find(|c| c.name == "plausibility: banner as users left it")
        .expect("the pair was checked");
    assert!(banner.ok, "{banner:?}");
    assert!(
        banner.detail.contains("Welcome to the clinic"),
        "{banner:?}"
    );
    assert_eq!(outcome, Outcome::Success, "{checks:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("old side read alongside the upgrade")),
        "{logs:#?}"
    );
}

/// A statement that waits (at most a minute) until the test creates the database test_go_on.
const WAIT_FOR_GO_ON: &str = "DO $$ BEGIN FOR i IN 1..3000 LOOP \
    EXIT WHEN EXISTS (SELECT FROM pg_database WHERE datname = 'test_go_on'); \
    PERFORM pg_sleep(0.02); END LOOP; END $$;";

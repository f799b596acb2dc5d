//! Rehearsals: the whole plan on a throw-away copy, changing nothing users see, leaving a record
//! with the timings, the problems found and the downtime to expect.

mod common;

use common::{access_of, copy_bundle, run, sample_bundle, sample_dir, user_content, yes};
use pgstep::bundle;
use pgstep::checklist::{PlanKind, StepId, StepStatus};

#[test]
fn a_rehearsal_changes_nothing_users_see_and_predicts_the_downtime() {
    let bundle = sample_bundle();
    let pg = common::clinic_v1(&bundle, 1_000);
    let before = (user_content(&pg, "clinic_v1"), access_of(&pg, "clinic_v1"));
    let out = run(
        pg.spec(PlanKind::Rehearsal, &bundle, Some("clinic_v1"), None),
        &yes(),
    );
    assert!(out.ok(), "{}", out.explain());
    assert_eq!(
        out.checklist.step(StepId::Banner).map(|s| s.status),
        Some(StepStatus::Skipped)
    );
    assert_eq!(
        (user_content(&pg, "clinic_v1"), access_of(&pg, "clinic_v1")),
        before,
        "nothing users see changed"
    );
    assert_eq!(
        pg.databases(),
        vec!["clinic_v1".to_owned()],
        "the copy was dropped, nothing cut over"
    );
    let r =
        pgstep::rehearsal::latest(&pg.data_dir(), "clinic", "1", "2").expect("a rehearsal record");
    assert!(r.problems.is_empty() && !r.copied_from_backup, "{r:?}");
    assert!(r.database_size > 0 && r.dump_size.is_some_and(|d| d > 0));
    let dump = r.dump.as_ref().expect("the backup's time is recorded");
    assert!(
        dump.format == "custom" && dump.jobs == 1 && dump.alongside,
        "{dump:?}"
    );
    assert!(
        dump.seconds > 0.0 && dump.beside_seconds > 0.0,
        "the dump and what it ran beside were timed: {dump:?}"
    );
    // Step 1 → 2 rewrites patient and encounter (column types) and creates the allergy tables.
    let table = |name: &str| r.rewritten.iter().find(|t| t.table == name);
    assert!(
        table("clinic.encounter").is_some_and(|t| !t.created && t.rows.is_some_and(|n| n > 0)),
        "{:?}",
        r.rewritten
    );
    assert!(
        table("clinic.patient").is_some_and(|t| !t.created && t.rows == Some(1_000)),
        "{:?}",
        r.rewritten
    );
    assert!(
        table("clinic.allergy").is_some_and(|t| t.created),
        "{:?}",
        r.rewritten
    );
    assert!(
        table("clinic.staff").is_none(),
        "staff gets a row, not a new file: {:?}",
        r.rewritten
    );
    assert!(r.predicted_downtime(None) > 0.0);
    assert!(
        r.steps
            .iter()
            .any(|s| s.step == "clone_upgrade" && s.seconds > 0.0),
        "{r:?}"
    );
    assert!(
        pgstep::recover::interrupted(&pg.data_dir())
            .expect("journals")
            .is_empty()
    );
    // The real upgrade still works afterwards.
    assert!(
        run(
            pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), None),
            &yes()
        )
        .ok()
    );
}

#[test]
fn with_users_connected_the_copy_comes_from_the_backup_and_nobody_is_disturbed() {
    let bundle = sample_bundle();
    let pg = common::clinic_v1(&bundle, 300);
    let mut user = pg.client("clinic_v1");
    let out = run(
        pg.spec(PlanKind::Rehearsal, &bundle, Some("clinic_v1"), None),
        &yes(),
    );
    assert!(out.ok(), "{}", out.explain());
    user.simple_query("SELECT 1")
        .expect("the user was not disturbed");
    let r = pgstep::rehearsal::latest(&pg.data_dir(), "clinic", "1", "2").expect("record");
    assert!(r.copied_from_backup, "{r:?}");
    assert!(
        r.dump.as_ref().is_some_and(|d| !d.alongside),
        "the backup was taken before the copy, not alongside: {:?}",
        r.dump
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("restored from the backup")),
        "{r:?}"
    );
    assert_eq!(pg.databases(), vec!["clinic_v1".to_owned()]);
}

#[test]
fn a_pre_release_bundle_can_be_rehearsed_but_not_used_for_production() {
    let copy = copy_bundle(&sample_dir());
    let manifest = copy.path().join("bundle.toml");
    let text = std::fs::read_to_string(&manifest)
        .expect("read")
        .replace("pre_release = false", "pre_release = true");
    std::fs::write(&manifest, text).expect("write");
    let bundle = bundle::load(copy.path()).unwrap_or_else(|e| panic!("{e}"));
    let pg = common::clinic_v1(&bundle, 0);
    let real = run(
        pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), None),
        &yes(),
    );
    let (what, _, refused) = real.failure();
    assert!(refused && what.contains("pre-release"), "{what}");
    let rehearsal = run(
        pg.spec(PlanKind::Rehearsal, &bundle, Some("clinic_v1"), None),
        &yes(),
    );
    assert!(rehearsal.ok(), "{}", rehearsal.explain());
}

#[test]
fn a_rehearsal_that_stops_leaves_a_record_of_where_and_why_and_predicts_nothing() {
    let copy = copy_bundle(&sample_dir());
    let script = copy.path().join("v1-v2/02_functions.sql");
    let text = std::fs::read_to_string(&script).expect("read");
    std::fs::write(&script, format!("{text}\nSELECT 1 / 0;\n")).expect("write");
    let bundle = bundle::load(copy.path()).unwrap_or_else(|e| panic!("{e}"));
    let pg = common::clinic_v1(&bundle, 200);
    let before = (user_content(&pg, "clinic_v1"), access_of(&pg, "clinic_v1"));
    let out = run(
        pg.spec(PlanKind::Rehearsal, &bundle, Some("clinic_v1"), None),
        &yes(),
    );
    let (what, _, _) = out.failure();
    assert!(what.contains("division by zero"), "{what}");
    // The report names the failing statement's line, carried as data from the script runner.
    let failing = format!("{text}\nSELECT 1 / 0;\n")
        .lines()
        .position(|l| l == "SELECT 1 / 0;")
        .expect("the failing line")
        + 1;
    let report = pgstep::run_report::build(
        &out.checklist,
        &out.outcome,
        &pgstep::run_report::ReportContext {
            data_dir: pg.data_dir(),
            server: String::new(),
            database: "clinic_v1".into(),
        },
    );
    let json = serde_json::to_value(&report).expect("the report as JSON");
    assert_eq!(
        json["failure"]["location"],
        format!("v1-v2/02_functions.sql:{failing}").as_str(),
        "{json}"
    );
    assert_eq!(
        (user_content(&pg, "clinic_v1"), access_of(&pg, "clinic_v1")),
        before
    );
    assert_eq!(
        pg.databases(),
        vec!["clinic_v1".to_owned()],
        "the copy is dropped"
    );
    // The record says where it stopped; it is not used to predict a downtime.
    assert!(pgstep::rehearsal::latest(&pg.data_dir(), "clinic", "1", "2").is_none());
    let records: Vec<_> = std::fs::read_dir(pgstep::rehearsal::dir(&pg.data_dir()))
        .expect("the rehearsals' directory")
        .flatten()
        .map(|e| e.path())
        .collect();
    let md = records
        .iter()
        .find(|p| p.extension().is_some_and(|x| x == "md"))
        .expect("a Markdown record");
    let text = std::fs::read_to_string(md).expect("read");
    assert!(
        text.contains("**The rehearsal stopped.**")
            && text.contains("\nat step Upgrade the clone: ")
            && text.contains("02_functions.sql")
            && text.contains("division by zero"),
        "{text}"
    );
    let backups = pg.data_dir().join("backups");
    let left: Vec<_> = std::fs::read_dir(&backups)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "the rehearsal's backup is removed: {left:?}"
    );
}

#[test]
fn a_failed_check_in_a_rehearsal_is_a_problem_found_and_the_rehearsal_goes_on() {
    let copy = copy_bundle(&sample_dir());
    let manifest = copy.path().join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).expect("read");
    let pair =
        "\n[[plausibility]]\nname = \"never agrees\"\nold = \"SELECT 1\"\nnew = \"SELECT 2\"\n";
    let text = text.replace("\n[banner]", &format!("{pair}\n[banner]"));
    std::fs::write(&manifest, text).expect("write");
    let bundle = bundle::load(copy.path()).unwrap_or_else(|e| panic!("{e}"));
    let pg = common::clinic_v1(&bundle, 200);
    let out = run(
        pg.spec(PlanKind::Rehearsal, &bundle, Some("clinic_v1"), None),
        &yes(),
    );
    assert!(out.ok(), "{}", out.explain());
    assert_eq!(
        out.checklist.step(StepId::SanityChecks).map(|s| s.status),
        Some(StepStatus::Warning)
    );
    let r = pgstep::rehearsal::latest(&pg.data_dir(), "clinic", "1", "2").expect("record");
    assert!(
        r.problems
            .iter()
            .any(|p| p.starts_with("sanity check failed: plausibility: never agrees")),
        "{:?}",
        r.problems
    );
    assert_eq!(pg.databases(), vec!["clinic_v1".to_owned()]);
}

//! Clone-and-upgrade of the sample application against a real PostgreSQL, through the same
//! checklist and executor the CLI runs: data preserved, the source never changed, failures
//! undone, guards that refuse.

mod common;

use common::{
    Pg, Recorder, access_of, copy_bundle, run, sample_bundle, sample_dir, user_content, with_ctx,
    yes,
};
use pgstep::bundle::{self, Bundle, Version};
use pgstep::cancel::Cancel;
use pgstep::checklist::{PlanKind, StepId, StepOutput};
use pgstep::drive::Policy;
use pgstep::engine::apply_step;
use pgstep::engine::bootstrap::bootstrap;
use pgstep::exit;

const PATIENTS: u64 = 2_000;

fn v(s: &str) -> Version {
    s.parse().expect("version")
}

fn clinic_v1(bundle: &Bundle) -> Pg {
    common::clinic_v1(bundle, PATIENTS)
}

fn upgrade(pg: &Pg, bundle: &Bundle, db: Option<&str>, to: Option<&str>) -> common::Ran {
    run(pg.spec(PlanKind::Upgrade, bundle, db, to), &yes())
}

fn count(pg: &Pg, db: &str, table: &str) -> i64 {
    pg.query_one(db, &format!("SELECT count(*) FROM {table}"))
}

#[test]
fn the_sample_goes_from_1_to_2_to_3_with_its_data_and_the_source_untouched() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let v1_before = pg.content_checksum("clinic_v1", "clinic");
    let access_before = access_of(&pg, "clinic_v1");
    let patients = count(&pg, "clinic_v1", "clinic.patient");
    let encounters = count(&pg, "clinic_v1", "clinic.encounter");
    assert_eq!(patients, i64::try_from(PATIENTS).expect("fits"));

    let one = upgrade(&pg, &bundle, Some("clinic_v1"), Some("2"));
    assert!(one.ok(), "{}", one.explain());
    assert_eq!(
        one.cut_over(),
        ("clinic_v2".to_owned(), "clinic_v1".to_owned())
    );
    let checks = one.checks();
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    for name in [
        "target fingerprint",
        "version marker",
        "row counts",
        "privileges",
        "amcheck",
        "analyze",
    ] {
        assert!(
            checks.iter().any(|c| c.name == name),
            "{name} missing: {checks:?}"
        );
    }
    assert!(
        checks
            .iter()
            .filter(|c| c.name.starts_with("plausibility"))
            .count()
            >= 4
    );
    // The old database: rows exactly as before, read-only for new sessions, closed to users;
    // the new one opens to users exactly as the old one did.
    // (The old database keeps the "upgrade in progress" banner: it is closed and users moved on.)
    let rows = |text: String| {
        text.lines()
            .filter(|l| !l.starts_with("clinic.logon_banner=") && !l.starts_with("settings="))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        rows(pg.content_checksum("clinic_v1", "clinic")),
        rows(v1_before),
        "the source's rows are exactly as before"
    );
    assert_eq!(
        pg.query_one::<String>("clinic_v1", "SHOW default_transaction_read_only"),
        "on"
    );
    assert_ne!(
        access_of(&pg, "clinic_v1"),
        access_before,
        "the old database is closed to users"
    );
    assert_eq!(
        access_of(&pg, "clinic_v2"),
        access_before,
        "the new database opens as the old one did"
    );
    // The banner of the new database was reset; the old one keeps the upgrade notice.
    assert_eq!(
        pg.query_one::<Option<String>>("clinic_v2", "SELECT message FROM clinic.logon_banner"),
        None
    );
    assert!(
        pg.query_one::<Option<String>>("clinic_v1", "SELECT message FROM clinic.logon_banner")
            .is_some_and(|m| m.contains("v1 → v2"))
    );
    assert_eq!(
        pg.query_one::<String>(
            "clinic_v2",
            "SELECT major || '.' || minor FROM clinic.schema_version"
        ),
        "2.0"
    );
    assert_eq!(count(&pg, "clinic_v2", "clinic.patient"), patients);
    assert_eq!(count(&pg, "clinic_v2", "clinic.encounter"), encounters);
    assert_eq!(
        pg.query_one::<String>(
            "clinic_v2",
            "SELECT from_version || '>' || to_version FROM pgstep.history WHERE action = 'upgrade'"
        ),
        "1>2"
    );
    // A verified backup was taken first.
    let Some(StepOutput::Backup(pgstep::checklist::BackupOutput::Taken { path, .. })) =
        one.output(StepId::Backup)
    else {
        panic!("no backup")
    };
    assert!(std::path::Path::new(&path).is_file());

    // The next step finds clinic_v2 by itself (the newest database the naming gives).
    let two = upgrade(&pg, &bundle, None, None);
    assert!(two.ok(), "{}", two.explain());
    assert_eq!(two.cut_over().0, "clinic_v3");
    assert_eq!(count(&pg, "clinic_v3", "clinic.patient"), patients);
    assert_eq!(count(&pg, "clinic_v3", "clinic.encounter"), encounters);
    // Tables a step does not touch keep every row exactly.
    for table in ["clinic.patient", "clinic.allergy"] {
        assert_eq!(
            pg.table_checksum("clinic_v3", table),
            pg.table_checksum("clinic_v2", table),
            "{table} untouched by 2 → 3"
        );
    }
    // Tables dropped and recreated by the scripts keep the roles' privileges.
    assert!(pg.query_one::<bool>(
        "clinic_v3",
        "SELECT has_table_privilege('clinic_app', 'clinic.staff', 'INSERT')"
    ));
}

#[test]
fn chaining_two_steps_in_one_run_checks_the_version_between_them() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let out = upgrade(&pg, &bundle, Some("clinic_v1"), Some("3"));
    assert!(out.ok(), "{}", out.explain());
    let Some(StepOutput::Upgraded(steps)) = out.output(StepId::CloneUpgrade) else {
        panic!()
    };
    assert_eq!(steps.len(), 2);
    assert_eq!(out.cut_over().0, "clinic_v3");
    assert!(
        !pg.exists("clinic_v2"),
        "a chained upgrade works on one clone"
    );
    let markers = out
        .logs
        .iter()
        .filter(|l| l.starts_with("version marker"))
        .count();
    assert_eq!(
        markers, 4,
        "checked before and after each step: {:?}",
        out.logs
    );
}

#[test]
fn a_failure_in_the_middle_of_a_step_undoes_everything_and_leaves_no_clone() {
    let copy = copy_bundle(&sample_dir());
    let script = copy.path().join("v1-v2/02_functions.sql");
    let text = std::fs::read_to_string(&script).expect("read");
    // Fail after the step has already changed the clone: the end of the second script.
    std::fs::write(
        &script,
        format!("{text}\nSELECT 1 / 0 AS deliberate_failure;\n"),
    )
    .expect("write");
    let bundle = bundle::load(copy.path()).unwrap_or_else(|e| panic!("{e}"));
    let pg = clinic_v1(&bundle);
    let (content, access) = (user_content(&pg, "clinic_v1"), access_of(&pg, "clinic_v1"));

    let out = upgrade(&pg, &bundle, Some("clinic_v1"), None);
    let (what, undone, refused) = out.failure();
    assert!(!refused, "an error, not a refusal");
    assert_eq!(out.outcome.exit_code(), exit::FAILED);
    assert!(
        what.contains("v1-v2/02_functions.sql:") && what.contains("22012"),
        "names file and SQLSTATE: {what}"
    );
    for u in [
        "dropped the unfinished database \"clinic_v2\"",
        "removed the upgrade banner from \"clinic_v1\"",
        "allowed connections to \"clinic_v1\" again, exactly as before",
    ] {
        assert!(undone.iter().any(|x| x == u), "{u} not in {undone:?}");
    }
    assert!(!pg.exists("clinic_v2"), "no clone left behind");
    assert_eq!(
        user_content(&pg, "clinic_v1"),
        content,
        "source unchanged, banner message included"
    );
    assert_eq!(
        access_of(&pg, "clinic_v1"),
        access,
        "access restored exactly"
    );
    assert_eq!(
        pg.query_one::<String>("clinic_v1", "SHOW default_transaction_read_only"),
        "off"
    );
}

#[test]
fn keep_failed_leaves_the_clone_for_inspection() {
    let copy = copy_bundle(&sample_dir());
    let script = copy.path().join("v1-v2/03_views_grants.sql");
    let text = std::fs::read_to_string(&script).expect("read");
    std::fs::write(&script, format!("{text}\nSELECT * FROM no_such_table;\n")).expect("write");
    let bundle = bundle::load(copy.path()).unwrap_or_else(|e| panic!("{e}"));
    let pg = clinic_v1(&bundle);
    let mut spec = pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), None);
    spec.keep_failed = true;
    let out = run(spec, &yes());
    let Outcome::Failed { advice, .. } = &out.outcome else {
        panic!("{}", out.explain())
    };
    assert!(
        advice.iter().any(|a| a.contains("kept for inspection")),
        "{advice:?}"
    );
    assert!(pg.exists("clinic_v2"));
}

use pgstep::checklist::Outcome;

#[test]
fn out_of_order_and_reapplied_steps_are_refused_by_the_version_marker() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let mut rec = Recorder::default();
    // Step 2 → 3 on a version-1 database: out of order.
    let step = &bundle.steps[1];
    let err = with_ctx(&pg, &bundle, &mut rec, |ctx| {
        apply_step(ctx, step, &step.scripts, "clinic_v1", &Cancel::new())
    })
    .expect_err("refused")
    .to_string();
    assert!(
        err.contains("says 1 before step 2 → 3") && err.contains("not run"),
        "{err}"
    );
    // Step 1 → 2 on a version-2 database: re-applied.
    assert!(upgrade(&pg, &bundle, Some("clinic_v1"), Some("2")).ok());
    let before = pg.content_checksum("clinic_v2", "clinic");
    let step = &bundle.steps[0];
    let err = with_ctx(&pg, &bundle, &mut rec, |ctx| {
        apply_step(ctx, step, &step.scripts, "clinic_v2", &Cancel::new())
    })
    .expect_err("refused")
    .to_string();
    assert!(err.contains("says 2 before step 1 → 2"), "{err}");
    assert_eq!(pg.content_checksum("clinic_v2", "clinic"), before);
    // And the whole upgrade refuses to run again from the old database.
    let again = upgrade(&pg, &bundle, Some("clinic_v1"), Some("2"));
    let (what, _, refused) = again.failure();
    assert!(
        refused && what.contains("\"clinic_v2\" already exists"),
        "{what}"
    );
}

#[test]
fn a_connected_user_is_listed_and_blocks_until_terminated_with_consent() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let access = access_of(&pg, "clinic_v1");
    let mut user = pg.client("clinic_v1");
    user.batch_execute("SET application_name = 'front-desk'")
        .expect("set");

    let out = upgrade(&pg, &bundle, Some("clinic_v1"), None);
    let (what, _, refused) = out.failure();
    assert!(refused, "{}", out.explain());
    assert!(
        what.contains("still connected") && what.contains("--terminate-sessions"),
        "{what}"
    );
    let Some(StepOutput::Sessions { sessions, .. }) = out.output(StepId::ConnectedUsers) else {
        panic!()
    };
    assert_eq!(
        (
            sessions.len(),
            sessions[0].application.as_str(),
            sessions[0].user.as_str()
        ),
        (1, "front-desk", "postgres")
    );
    assert!(!pg.exists("clinic_v2"));
    assert_eq!(
        access_of(&pg, "clinic_v1"),
        access,
        "access restored after the refusal"
    );
    user.simple_query("SELECT 1")
        .expect("the user was not disconnected without consent");

    let policy = Policy {
        terminate_sessions: true,
        ..yes()
    };
    let out = run(
        pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), None),
        &policy,
    );
    assert!(out.ok(), "{}", out.explain());
    assert!(
        user.simple_query("SELECT 1").is_err(),
        "the session was terminated"
    );
}

#[test]
fn a_schema_that_drifted_is_refused_with_the_objects_and_the_override_is_recorded() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    pg.exec(
        "clinic_v1",
        "ALTER TABLE clinic.patient ADD COLUMN shoe_size int",
    );
    let out = upgrade(&pg, &bundle, Some("clinic_v1"), None);
    let (what, _, refused) = out.failure();
    assert!(
        refused && what.contains("--override-schema-check"),
        "{what}"
    );
    let Some(StepOutput::Fingerprint {
        matches: false,
        diff,
        ..
    }) = out.output(StepId::Fingerprint)
    else {
        panic!()
    };
    assert!(
        diff.contains("added    column clinic.patient.shoe_size: integer"),
        "{diff}"
    );
    assert!(!pg.exists("clinic_v2"));

    // Overridden, the upgrade proceeds — and the extra column then fails the target check, so
    // nothing is cut over and the clone is dropped.
    let policy = Policy {
        override_schema_check: true,
        ..yes()
    };
    let out = run(
        pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), None),
        &policy,
    );
    assert!(
        out.has_log("proceeding despite the fingerprint mismatch"),
        "{}",
        out.explain()
    );
    assert_eq!(
        out.checklist.step(StepId::Fingerprint).map(|s| s.status),
        Some(pgstep::checklist::StepStatus::Warning)
    );
    let (what, undone, _) = out.failure();
    assert!(what.contains("target fingerprint"), "{what}");
    assert!(
        undone
            .iter()
            .any(|u| u.contains("dropped the unfinished database"))
    );
    assert!(!pg.exists("clinic_v2"));
}

#[test]
fn fixed_naming_renames_the_old_database_aside_and_the_new_one_into_place() {
    let copy = copy_bundle(&sample_dir());
    let manifest = copy.path().join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).expect("read");
    let text = text.replace(
        "naming = \"versioned\"\nname = \"clinic_v{major}\"",
        "naming = \"fixed\"\nname = \"clinic\"\naside = \"{name}_v{major}_old\"",
    );
    std::fs::write(&manifest, text).expect("write");
    let bundle = bundle::load(copy.path()).unwrap_or_else(|e| panic!("{e}"));
    let pg = Pg::start();
    let mut rec = Recorder::default();
    with_ctx(&pg, &bundle, &mut rec, |ctx| {
        bootstrap(ctx, "clinic", Some(v("1")), false)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    pg.exec("clinic", "INSERT INTO clinic.staff (login, full_name, role) SELECT 'extra', 'Extra Person', role FROM clinic.staff LIMIT 1");
    let staff = pg.table_checksum("clinic", "clinic.staff");
    let out = upgrade(&pg, &bundle, None, None);
    assert!(out.ok(), "{}", out.explain());
    assert_eq!(
        out.cut_over(),
        ("clinic".to_owned(), "clinic_v1_old".to_owned())
    );
    assert_eq!(
        pg.query_one::<String>(
            "clinic",
            "SELECT major || '.' || minor FROM clinic.schema_version"
        ),
        "2.0"
    );
    assert_eq!(pg.table_checksum("clinic_v1_old", "clinic.staff"), staff);
    assert!(!pg.exists("clinic_v2_pgstep_new"));
}

#[test]
fn database_settings_owner_comment_and_privileges_are_carried_over_to_the_clone() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    pg.exec(
        "postgres",
        "CREATE ROLE clinic_owner NOLOGIN; CREATE ROLE auditor NOLOGIN;\
        ALTER DATABASE clinic_v1 OWNER TO clinic_owner;\
        COMMENT ON DATABASE clinic_v1 IS 'Dr Smith''s practice';\
        ALTER DATABASE clinic_v1 SET search_path = \"$user\", clinic, public;\
        ALTER DATABASE clinic_v1 SET work_mem = '32MB';\
        ALTER ROLE auditor IN DATABASE clinic_v1 SET statement_timeout = '5s';\
        REVOKE CONNECT ON DATABASE clinic_v1 FROM PUBLIC;\
        GRANT CONNECT ON DATABASE clinic_v1 TO clinic_app, auditor;\
        GRANT CREATE ON DATABASE clinic_v1 TO auditor WITH GRANT OPTION;\
        ALTER DATABASE clinic_v1 CONNECTION LIMIT 40;",
    );
    let access_before = access_of(&pg, "clinic_v1");
    let out = upgrade(&pg, &bundle, Some("clinic_v1"), Some("2"));
    assert!(out.ok(), "{}", out.explain());
    let q = |db: &str| -> (String, Option<String>, String) {
        let mut c = pg.client("postgres");
        let r = c
            .query_one(
                "SELECT pg_get_userbyid(datdba)::text, shobj_description(oid, 'pg_database'), \
                 (SELECT string_agg(coalesce(r.rolname, '*') || '=' || array_to_string(s.setconfig, ';'), ' ' ORDER BY r.rolname NULLS FIRST) \
                  FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase = d.oid) \
                 FROM pg_database d WHERE datname = $1",
                &[&db],
            )
            .expect("query");
        (r.get(0), r.get(1), r.get(2))
    };
    let (old, new) = (q("clinic_v1"), q("clinic_v2"));
    assert_eq!((&new.0, &new.1), (&old.0, &old.1));
    assert_eq!(
        new.2,
        old.2.replace(";default_transaction_read_only=on", ""),
        "settings, search_path list included"
    );
    assert!(
        new.2.contains("search_path=\"$user\", clinic, public"),
        "{}",
        new.2
    );
    assert_eq!(
        access_of(&pg, "clinic_v2"),
        access_before,
        "privileges and connection limit as the source had them"
    );
}

#[test]
fn fixups_are_applied_once_recorded_and_safe_to_reapply() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    assert!(upgrade(&pg, &bundle, Some("clinic_v1"), Some("2")).ok());
    let access = access_of(&pg, "clinic_v2");
    let fixup = |reapply: bool| {
        let mut spec = pg.spec(PlanKind::Fixup, &bundle, Some("clinic_v2"), None);
        spec.reapply = reapply;
        run(spec, &yes())
    };
    let first = fixup(false);
    assert!(first.ok(), "{}", first.explain());
    let Some(StepOutput::Fixups {
        applied, version, ..
    }) = first.output(StepId::ApplyFixups)
    else {
        panic!()
    };
    assert_eq!(
        (applied.len(), version),
        (bundle.fixups[0].scripts.len(), v("2.1"))
    );
    let Some(StepOutput::Backup(pgstep::checklist::BackupOutput::Taken { path, .. })) =
        first.output(StepId::Backup)
    else {
        panic!("a backup was taken first")
    };
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{path}.json")).expect("metadata"))
            .expect("json");
    assert_eq!(meta["database"], "clinic_v2");
    let recorded: i64 = pg.query_one(
        "clinic_v2",
        "SELECT count(*) FROM pgstep.fixup WHERE version = '2.1' AND length(sha256) = 64",
    );
    assert_eq!(recorded, i64::try_from(applied.len()).expect("fits"));
    assert_eq!(
        access_of(&pg, "clinic_v2"),
        access,
        "access restored after the fixups"
    );
    assert_eq!(
        pg.query_one::<Option<String>>("clinic_v2", "SELECT message FROM clinic.logon_banner"),
        None,
        "banner reset"
    );
    let content = user_content(&pg, "clinic_v2");

    let again = fixup(false);
    assert!(again.ok(), "{}", again.explain());
    assert_eq!(
        again.checklist.step(StepId::ApplyFixups).map(|s| s.status),
        Some(pgstep::checklist::StepStatus::Skipped),
        "nothing to do the second time"
    );
    assert!(
        again
            .output(StepId::Backup)
            .is_some_and(|o| matches!(o, StepOutput::Nothing { .. }))
    );

    let reapplied = fixup(true);
    assert!(reapplied.ok(), "{}", reapplied.explain());
    let Some(StepOutput::Fixups {
        applied: again_applied,
        ..
    }) = reapplied.output(StepId::ApplyFixups)
    else {
        panic!()
    };
    assert_eq!(again_applied.len(), applied.len());
    assert_eq!(
        user_content(&pg, "clinic_v2"),
        content,
        "idempotent: the same rows, the banner reset again"
    );
}

#[test]
fn a_precheck_that_finds_a_problem_refuses_before_anything_changes() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    pg.exec("clinic_v1", "UPDATE clinic.encounter SET weight = 'heavy' WHERE id = (SELECT min(id) FROM clinic.encounter)");
    let before = pg.content_checksum("clinic_v1", "clinic");
    let out = upgrade(&pg, &bundle, Some("clinic_v1"), None);
    let (what, undone, refused) = out.failure();
    assert!(refused, "{what}");
    assert_eq!(out.outcome.exit_code(), exit::REFUSED);
    assert!(
        what.contains("precheck \"weights readable\" found 1 problem(s)") && what.contains("heavy"),
        "{what}"
    );
    assert!(
        what.contains("prechecks/weights.sql:"),
        "names the file and line: {what}"
    );
    assert!(undone.is_empty(), "nothing was changed: {undone:?}");
    assert!(!pg.exists("clinic_v2"));
    assert_eq!(pg.content_checksum("clinic_v1", "clinic"), before);
}

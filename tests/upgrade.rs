//! Clone-and-upgrade of the sample application against a real PostgreSQL: data preserved,
//! the source never changed, failures undone, guards that refuse.

mod common;

use common::{Pg, Recorder, copy_bundle, sample_bundle, sample_dir, with_ctx};
use pgstep::bundle::{self, Version};
use pgstep::cancel::Cancel;
use pgstep::db::Session;
use pgstep::engine::bootstrap::bootstrap;
use pgstep::engine::fixup::{BackupChoice, FixupOptions, fixup};
use pgstep::engine::upgrade::{UpgradeOptions, upgrade};
use pgstep::engine::{EngineError, apply_step};

const PATIENTS: u64 = 2_000;

fn v(s: &str) -> Version {
    s.parse().expect("version")
}

/// A cluster with clinic_v1 bootstrapped and filled with sample data.
fn clinic_v1(bundle: &pgstep::bundle::Bundle) -> Pg {
    let pg = Pg::start();
    let mut rec = Recorder::default();
    with_ctx(&pg, bundle, &mut rec, |ctx| {
        bootstrap(ctx, "clinic_v1", Some(v("1")), false)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut session = Session::open(&pg.settings("clinic_v1"), &[]).expect("session");
    pgstep::sample::generate(&mut session, &bundle.root, PATIENTS, &mut rec).expect("generate");
    pg
}

fn upgrade_to(
    pg: &Pg,
    bundle: &pgstep::bundle::Bundle,
    db: Option<&str>,
    to: Option<&str>,
    rec: &mut Recorder,
) -> Result<pgstep::engine::upgrade::UpgradeOutcome, EngineError> {
    let opts = UpgradeOptions {
        database: db.map(str::to_owned),
        to: to.map(v),
        ..UpgradeOptions::default()
    };
    with_ctx(pg, bundle, rec, |ctx| upgrade(ctx, &opts))
}

fn count(pg: &Pg, db: &str, table: &str) -> i64 {
    pg.query_one(db, &format!("SELECT count(*) FROM {table}"))
}

#[test]
fn the_sample_goes_from_1_to_2_to_3_with_its_data_and_the_source_untouched() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let v1_before = pg.content_checksum("clinic_v1", "clinic");
    let patients = count(&pg, "clinic_v1", "clinic.patient");
    let encounters = count(&pg, "clinic_v1", "clinic.encounter");
    assert_eq!(patients, i64::try_from(PATIENTS).expect("fits"));

    let mut rec = Recorder::default();
    let one = upgrade_to(&pg, &bundle, Some("clinic_v1"), Some("2"), &mut rec)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (one.plan.from, one.plan.to, one.new_database.as_str()),
        (v("1"), v("2"), "clinic_v2")
    );
    assert!(one.checks.iter().all(|c| c.ok), "{:?}", one.checks);
    assert!(one.checks.iter().any(|c| c.name == "target fingerprint"));
    assert!(
        one.checks.len() > 4,
        "plausibility pairs ran: {:?}",
        one.checks
    );
    let v1_after = pg.content_checksum("clinic_v1", "clinic");
    assert_eq!(
        v1_after.replace("settings=default_transaction_read_only=on", "settings="),
        v1_before,
        "the source's rows are exactly as before"
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
    // The old database stays, read-only for new sessions.
    assert_eq!(
        pg.query_one::<String>("clinic_v1", "SHOW default_transaction_read_only"),
        "on"
    );
    // pgstep recorded the upgrade in the new database, and only there.
    assert_eq!(
        pg.query_one::<String>(
            "clinic_v2",
            "SELECT from_version || '>' || to_version FROM pgstep.history WHERE action = 'upgrade'"
        ),
        "1>2"
    );
    assert!(!pg.query_one::<bool>("clinic_v1", "SELECT to_regclass('pgstep.history') IS NOT NULL AND EXISTS (SELECT 1 FROM pgstep.history WHERE action = 'upgrade')"));

    // The next step finds clinic_v2 by itself (the newest database the naming gives).
    let two = upgrade_to(&pg, &bundle, None, None, &mut rec).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (two.plan.source_db.as_str(), two.new_database.as_str()),
        ("clinic_v2", "clinic_v3")
    );
    assert!(two.checks.iter().all(|c| c.ok), "{:?}", two.checks);
    assert_eq!(count(&pg, "clinic_v3", "clinic.patient"), patients);
    assert_eq!(count(&pg, "clinic_v3", "clinic.encounter"), encounters);
    // Tables a step does not touch keep every row exactly.
    let banner = pg.table_checksum("clinic_v1", "clinic.logon_banner");
    assert_eq!(
        pg.table_checksum("clinic_v2", "clinic.logon_banner"),
        banner
    );
    assert_eq!(
        pg.table_checksum("clinic_v3", "clinic.logon_banner"),
        banner
    );
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
    let mut rec = Recorder::default();
    let out = upgrade_to(&pg, &bundle, Some("clinic_v1"), Some("3"), &mut rec)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.steps.len(), 2);
    assert_eq!(out.new_database, "clinic_v3");
    assert!(
        !pg.exists("clinic_v2"),
        "a chained upgrade works on one clone"
    );
    let markers = rec
        .logs()
        .iter()
        .filter(|l| l.starts_with("version marker"))
        .count();
    assert_eq!(
        markers,
        4,
        "checked before and after each step: {:?}",
        rec.logs()
    );
}

#[test]
fn a_failure_in_the_middle_of_a_step_leaves_the_source_as_it_was_and_no_clone() {
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
    let before = pg.content_checksum("clinic_v1", "clinic");

    let mut rec = Recorder::default();
    let err =
        upgrade_to(&pg, &bundle, Some("clinic_v1"), None, &mut rec).expect_err("the step fails");
    let EngineError::Failed(f) = &err else {
        panic!("{err}")
    };
    let shown = err.to_string();
    assert!(
        shown.contains("v1-v2/02_functions.sql:"),
        "names the file: {shown}"
    );
    assert!(shown.contains("22012"), "names the SQLSTATE: {shown}");
    assert!(
        f.undone
            .iter()
            .any(|u| u.contains("dropped the unfinished clone \"clinic_v2\"")),
        "{shown}"
    );
    assert!(shown.contains("users can go on working with it"), "{shown}");
    assert!(!pg.exists("clinic_v2"), "no clone left behind");
    assert_eq!(
        pg.content_checksum("clinic_v1", "clinic"),
        before,
        "source unchanged, settings included"
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
    let mut rec = Recorder::default();
    let opts = UpgradeOptions {
        database: Some("clinic_v1".into()),
        keep_failed: true,
        ..UpgradeOptions::default()
    };
    let err = with_ctx(&pg, &bundle, &mut rec, |ctx| upgrade(ctx, &opts)).expect_err("fails");
    assert!(err.to_string().contains("kept for inspection"), "{err}");
    assert!(pg.exists("clinic_v2"));
}

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
    .expect_err("refused");
    assert!(
        err.contains("says 1 before step 2 → 3") && err.contains("not run"),
        "{err}"
    );
    // Step 1 → 2 on a version-2 database: re-applied.
    upgrade_to(&pg, &bundle, Some("clinic_v1"), Some("2"), &mut rec)
        .unwrap_or_else(|e| panic!("{e}"));
    let before = pg.content_checksum("clinic_v2", "clinic");
    let step = &bundle.steps[0];
    let err = with_ctx(&pg, &bundle, &mut rec, |ctx| {
        apply_step(ctx, step, &step.scripts, "clinic_v2", &Cancel::new())
    })
    .expect_err("refused");
    assert!(err.contains("says 2 before step 1 → 2"), "{err}");
    assert_eq!(pg.content_checksum("clinic_v2", "clinic"), before);
    // And the whole upgrade refuses to run again from the old database.
    let err =
        upgrade_to(&pg, &bundle, Some("clinic_v1"), Some("2"), &mut rec).expect_err("refused");
    assert!(matches!(err, EngineError::Refused(_)), "{err}");
}

#[test]
fn a_connected_user_blocks_the_upgrade_and_is_listed() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let mut user = pg.client("clinic_v1");
    user.batch_execute("SET application_name = 'front-desk'")
        .expect("set");
    let mut rec = Recorder::default();
    let err = upgrade_to(&pg, &bundle, Some("clinic_v1"), None, &mut rec).expect_err("refused");
    let shown = err.to_string();
    assert!(matches!(err, EngineError::Refused(_)), "{shown}");
    assert!(
        shown.contains("front-desk") && shown.contains("user postgres"),
        "{shown}"
    );
    assert!(!pg.exists("clinic_v2"));
    drop(user);
}

#[test]
fn a_schema_that_drifted_is_refused_with_the_objects_and_the_override_is_recorded() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    pg.exec(
        "clinic_v1",
        "ALTER TABLE clinic.patient ADD COLUMN shoe_size int",
    );
    let mut rec = Recorder::default();
    let err = upgrade_to(&pg, &bundle, Some("clinic_v1"), None, &mut rec).expect_err("refused");
    let shown = err.to_string();
    assert!(
        shown.contains("added    column clinic.patient.shoe_size: integer"),
        "{shown}"
    );
    assert!(shown.contains("--override-schema-check"), "{shown}");
    assert!(!pg.exists("clinic_v2"));

    // Overridden, the upgrade proceeds — and the extra column then fails the target check, so
    // nothing is cut over and the clone is dropped.
    let opts = UpgradeOptions {
        database: Some("clinic_v1".into()),
        override_schema_check: true,
        ..UpgradeOptions::default()
    };
    let err = with_ctx(&pg, &bundle, &mut rec, |ctx| upgrade(ctx, &opts))
        .expect_err("target check fails");
    assert!(rec.has_log("proceeding despite the fingerprint mismatch"));
    assert!(err.to_string().contains("target fingerprint"), "{err}");
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
    let before = pg.content_checksum("clinic", "clinic");
    let out = upgrade_to(&pg, &bundle, None, None, &mut rec).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (out.new_database.as_str(), out.old_database.as_str()),
        ("clinic", "clinic_v1_old")
    );
    assert_eq!(
        pg.query_one::<String>(
            "clinic",
            "SELECT major || '.' || minor FROM clinic.schema_version"
        ),
        "2.0"
    );
    assert_eq!(
        pg.content_checksum("clinic_v1_old", "clinic")
            .replace("settings=default_transaction_read_only=on", "settings="),
        before
    );
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
    let mut rec = Recorder::default();
    upgrade_to(&pg, &bundle, Some("clinic_v1"), Some("2"), &mut rec)
        .unwrap_or_else(|e| panic!("{e}"));
    let q = |db: &str| -> (String, Option<String>, String, i32, String) {
        let mut c = pg.client("postgres");
        let r = c
            .query_one(
                "SELECT pg_get_userbyid(datdba)::text, shobj_description(oid, 'pg_database'), \
                 (SELECT string_agg(grantee::regrole::text || ':' || privilege_type || ':' || is_grantable, ',' \
                  ORDER BY grantee::regrole::text, privilege_type) \
                  FROM aclexplode(datacl) WHERE grantee <> 0), datconnlimit, \
                 (SELECT string_agg(coalesce(r.rolname, '*') || '=' || array_to_string(s.setconfig, ';'), ' ' ORDER BY r.rolname NULLS FIRST) \
                  FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase = d.oid) \
                 FROM pg_database d WHERE datname = $1",
                &[&db],
            )
            .expect("query");
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
    };
    let old = q("clinic_v1");
    let new = q("clinic_v2");
    assert_eq!(
        (&new.0, &new.1, &new.2, new.3),
        (&old.0, &old.1, &old.2, old.3)
    );
    let old_settings = old.4.replace(";default_transaction_read_only=on", "");
    assert_eq!(new.4, old_settings, "settings, search_path list included");
    assert!(
        new.4.contains("search_path=\"$user\", clinic, public"),
        "{}",
        new.4
    );
}

#[test]
fn fixups_are_applied_once_recorded_and_safe_to_reapply() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let mut rec = Recorder::default();
    upgrade_to(&pg, &bundle, Some("clinic_v1"), Some("2"), &mut rec)
        .unwrap_or_else(|e| panic!("{e}"));
    let backups = tempfile::tempdir().expect("tempdir");
    let opts = |reapply| FixupOptions {
        database: "clinic_v2".into(),
        to: None,
        reapply,
        override_schema_check: false,
        backup: BackupChoice::Into(backups.path().to_path_buf()),
    };
    let first = with_ctx(&pg, &bundle, &mut rec, |ctx| fixup(ctx, &opts(false)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((first.from, first.to), (v("2"), v("2.1")));
    assert_eq!(first.applied.len(), bundle.fixups[0].scripts.len());
    let backup = first.backup.as_ref().expect("a backup was taken first");
    assert!(backup.path.is_file() && backup.metadata_path.is_file() && backup.entries > 10);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&backup.metadata_path).expect("read"))
            .expect("json");
    assert_eq!(meta["database"], "clinic_v2");
    assert_eq!(meta["sha256"], backup.sha256.as_str());
    let recorded: i64 = pg.query_one(
        "clinic_v2",
        "SELECT count(*) FROM pgstep.fixup WHERE version = '2.1' AND length(sha256) = 64",
    );
    assert_eq!(recorded, i64::try_from(first.applied.len()).expect("fits"));
    let content = pg.content_checksum("clinic_v2", "clinic");

    let again = with_ctx(&pg, &bundle, &mut rec, |ctx| fixup(ctx, &opts(false)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        again.applied.is_empty() && again.backup.is_none(),
        "nothing to do the second time"
    );

    let reapplied = with_ctx(&pg, &bundle, &mut rec, |ctx| fixup(ctx, &opts(true)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reapplied.applied.len(), first.applied.len());
    assert_eq!(
        reapplied.fingerprint, first.fingerprint,
        "idempotent: the same schema"
    );
    assert_eq!(
        pg.content_checksum("clinic_v2", "clinic"),
        content,
        "idempotent: the same rows"
    );
}

#[test]
fn a_precheck_that_finds_a_problem_refuses_before_anything_changes() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    pg.exec("clinic_v1", "UPDATE clinic.encounter SET weight = 'heavy' WHERE id = (SELECT min(id) FROM clinic.encounter)");
    let before = pg.content_checksum("clinic_v1", "clinic");
    let mut rec = Recorder::default();
    let err = upgrade_to(&pg, &bundle, Some("clinic_v1"), None, &mut rec).expect_err("refused");
    let shown = err.to_string();
    assert!(matches!(err, EngineError::Refused(_)), "{shown}");
    assert!(
        shown.contains("precheck \"weights readable\" found 1 problem(s)")
            && shown.contains("heavy"),
        "{shown}"
    );
    assert!(
        shown.contains("prechecks/weights.sql:"),
        "names the file and line: {shown}"
    );
    assert!(!pg.exists("clinic_v2"));
    assert_eq!(pg.content_checksum("clinic_v1", "clinic"), before);
}

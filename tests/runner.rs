//! The statement runner against a real PostgreSQL: each habit of real upgrade scripts works as
//! under `psql -f`, errors say where, notices reach the operator, directives decide blocks.

mod common;

use std::path::Path;

use common::{Pg, Recorder};
use pgstep::db::Session;
use pgstep::db::runner::{RunError, run_script};
use pgstep::script::{self, Placeholder, PlaceholderKind, Placeholders};

fn run(pg: &Pg, db: &str, sql: &str) -> (Result<pgstep::db::runner::RunStats, RunError>, Recorder) {
    run_with(pg, db, sql, &Placeholders::new())
}

fn run_with(
    pg: &Pg,
    db: &str,
    sql: &str,
    ph: &Placeholders,
) -> (Result<pgstep::db::runner::RunStats, RunError>, Recorder) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("script.sql"), sql).expect("write script");
    let script = script::load_script(dir.path(), Path::new("script.sql"), ph)
        .unwrap_or_else(|e| panic!("{}: {}", e.at, e.message));
    let mut session = Session::open(&pg.settings(db), &[]).expect("session");
    let mut rec = Recorder::default();
    let result = run_script(&mut session, &script, &mut rec);
    (result, rec)
}

fn setup() -> Pg {
    let pg = Pg::start();
    pg.exec("postgres", "CREATE DATABASE app");
    pg
}

#[test]
fn own_transactions_statements_outside_them_concurrently_and_pg_temp_helpers_work() {
    let pg = setup();
    let sql = r#"
\set ON_ERROR_STOP 1
CREATE TABLE t (id int PRIMARY KEY, note text);   -- before the script's own BEGIN
BEGIN;
INSERT INTO t VALUES (1, 'a;b'), (2, $q$semi;colon$q$);
CREATE FUNCTION pg_temp.double_it(x int) RETURNS int LANGUAGE plpgsql AS $fn$
BEGIN
    -- semicolons; everywhere;
    RETURN x * 2;
END;
$fn$;
COMMIT;
INSERT INTO t SELECT pg_temp.double_it(id) + 10, 'helper' FROM t;  -- after COMMIT, calls the helper
CREATE INDEX CONCURRENTLY t_note_idx ON t (note);
VACUUM t
"#;
    let (result, _) = run(&pg, "app", sql);
    let stats = result.expect("the script runs as under psql -f");
    assert_eq!(stats.statements, 8);
    assert_eq!(pg.query_one::<i64>("app", "SELECT count(*) FROM t"), 4);
    assert_eq!(pg.query_one::<i32>("app", "SELECT max(id) FROM t"), 14);
    assert!(pg.query_one::<bool>(
        "app",
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_note_idx'::regclass"
    ));
}

#[test]
fn an_error_names_file_line_column_sqlstate_and_hint() {
    let pg = setup();
    let sql =
        "CREATE TABLE ok (id int);\n\nSELECT 1;\nSELECT id,\n       missing_column\nFROM ok;\n";
    let (result, _) = run(&pg, "app", sql);
    let err = result.expect_err("the statement fails");
    let RunError::Sql(failure) = &err else {
        panic!("{err}")
    };
    let (at, sqlstate, message) = (&failure.at, &failure.sqlstate, &failure.message);
    assert_eq!(sqlstate, "42703");
    assert!(message.contains("missing_column"), "{message}");
    assert_eq!((at.line, at.column), (5, 8), "{err}");
    let shown = err.to_string();
    assert!(shown.starts_with("script.sql:5:8: ERROR 42703"), "{shown}");
    assert!(shown.contains("STATEMENT: SELECT id,"), "{shown}");
}

#[test]
fn notices_and_echo_reach_the_operator_in_order() {
    let pg = setup();
    let sql = "\\echo starting the step\nDO $$ BEGIN RAISE NOTICE 'converted % rows', 42; END $$;\nDO $$ BEGIN RAISE WARNING 'careful'; END $$;\nSELECT 'YOU HAVE SUCCESSFULLY UPGRADED' AS status;\n";
    let (result, rec) = run(&pg, "app", sql);
    result.expect("runs");
    let logs = rec.logs();
    let pos = |needle: &str| {
        logs.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {logs:?}"))
    };
    assert!(pos("starting the step") < pos("NOTICE: converted 42 rows"));
    assert!(pos("NOTICE: converted 42 rows") < pos("WARNING: careful"));
    assert!(pos("WARNING: careful") < pos("YOU HAVE SUCCESSFULLY UPGRADED"));
}

#[test]
fn a_script_that_ends_inside_its_own_transaction_is_an_error() {
    let pg = setup();
    let (result, _) = run(
        &pg,
        "app",
        "CREATE TABLE a (x int);\nBEGIN;\nINSERT INTO a VALUES (1);\n",
    );
    let err = result.expect_err("open transaction");
    assert!(
        matches!(&err, RunError::OpenTransaction { begun_at } if begun_at.line == 2),
        "{err}"
    );
    // The session rolled back what the open transaction did, as psql would have.
    assert_eq!(pg.query_one::<i64>("app", "SELECT count(*) FROM a"), 0);
}

#[test]
fn conditional_blocks_make_a_script_rerunnable() {
    let pg = setup();
    let sql = "\
-- #IfNotTable public.patient
CREATE TABLE patient (id int PRIMARY KEY, name text);
-- #EndIf
-- #IfMissingColumn patient email
ALTER TABLE patient ADD COLUMN email text;
-- #EndIf
-- #IfNotRow patient name 'Dr Who'
INSERT INTO patient VALUES ((SELECT count(*) FROM patient) + 1, 'Dr Who');
-- #EndIf
-- #IfNotColumnType patient id bigint
ALTER TABLE patient ALTER COLUMN id TYPE bigint;
-- #EndIf
-- #IfNotIndex patient patient_name_idx
CREATE INDEX patient_name_idx ON patient (name);
-- #EndIf
";
    let (first, _) = run(&pg, "app", sql);
    assert_eq!(first.expect("first run").skipped_blocks, 0);
    let (second, rec) = run(&pg, "app", sql);
    assert_eq!(
        second.expect("second run").skipped_blocks,
        5,
        "{:?}",
        rec.logs()
    );
    assert_eq!(
        pg.query_one::<i64>("app", "SELECT count(*) FROM patient"),
        1
    );
    assert!(rec.has_log("#IfNotTable"));
}

#[test]
fn directive_values_are_bound_never_spliced() {
    let pg = setup();
    pg.exec(
        "app",
        "CREATE TABLE t (v text); INSERT INTO t VALUES ('x');",
    );
    let hostile = "-- #IfNotRow t v \"x'); DROP TABLE t; --\"\nINSERT INTO t VALUES ('inserted');\n-- #EndIf\n";
    let (result, _) = run(&pg, "app", hostile);
    result.expect("runs");
    // The hostile text was compared as a value: no row equals it, so the block ran, and the table is still there.
    assert_eq!(pg.query_one::<i64>("app", "SELECT count(*) FROM t"), 2);
}

#[test]
fn placeholders_are_quoted_for_where_they_stand() {
    let pg = setup();
    pg.exec("app", "CREATE ROLE \"Front Desk\" NOLOGIN");
    let mut ph = Placeholders::new();
    ph.insert(
        "APP_ROLE".into(),
        Placeholder {
            kind: PlaceholderKind::Identifier,
            value: "Front Desk".into(),
        },
    );
    ph.insert(
        "SITE".into(),
        Placeholder {
            kind: PlaceholderKind::Literal,
            value: "O'Brien's practice".into(),
        },
    );
    let sql = "CREATE TABLE site (name text);\nINSERT INTO site VALUES (@SITE@);\nGRANT SELECT ON site TO @APP_ROLE@;\n";
    let (result, _) = run_with(&pg, "app", sql, &ph);
    result.expect("runs");
    assert_eq!(
        pg.query_one::<String>("app", "SELECT name FROM site"),
        "O'Brien's practice"
    );
    assert!(pg.query_one::<bool>(
        "app",
        "SELECT has_table_privilege('Front Desk', 'site', 'SELECT')"
    ));
}

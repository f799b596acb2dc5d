//! Issue 11, findings 1 and 11, and the measured "source not changed" claim: nothing pgstep
//! runs on the source outside an upgrade step's own scripts can write (validation refuses
//! multi-statement queries and transaction control, with file and line; at run time one
//! statement, extended protocol, READ ONLY transaction that cannot be made read-write); a
//! version query must return one row with one column; a junk reference fingerprint is refused;
//! and "the source database was not changed" is printed only when pgstep measured it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use common::{Pg, copy_bundle, pgstep_cmd, run_pgstep, sample_bundle, sample_dir, user_content};

const ENCOUNTERS: &str = "SELECT count(*) FROM clinic.encounter";

fn clinic_v1() -> Pg {
    common::clinic_v1(&sample_bundle(), 200)
}

/// A copy of the sample bundle with `extra` appended to its bundle.toml; the line `extra`
/// starts on.
fn bundle_with(extra: &str) -> (tempfile::TempDir, usize) {
    let dir = copy_bundle(&sample_dir());
    let manifest = dir.path().join("bundle.toml");
    let mut text = std::fs::read_to_string(&manifest).expect("read bundle.toml");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let first = text.lines().count() + 1;
    text.push_str(extra);
    std::fs::write(&manifest, text).expect("write bundle.toml");
    (dir, first)
}

fn upgrade(pg: &Pg, data: &Path, bundle: &Path) -> common::BinRun {
    run_pgstep(
        pg,
        data,
        &[
            "upgrade",
            "--headless",
            "--yes",
            "--bundle",
            &bundle.to_string_lossy(),
            "--database",
            "clinic_v1",
        ],
    )
}

#[test]
fn a_plausibility_pair_that_commits_and_deletes_is_refused_before_anything_connects() {
    let pg = clinic_v1();
    let encounters: i64 = pg.query_one("clinic_v1", ENCOUNTERS);
    assert!(encounters > 0);
    let (bundle, line) = bundle_with(
        "\n[[plausibility]]\nname = \"evil\"\nold = \"COMMIT; DELETE FROM clinic.encounter; SELECT 1\"\nnew = \"SELECT 1\"\n",
    );
    let data = tempfile::tempdir().expect("tempdir");
    let out = upgrade(&pg, data.path(), bundle.path());
    assert_eq!(out.code, pgstep::exit::REFUSED, "{}", out.stderr);
    // The `old = …` line: two lines after the blank line and [[plausibility]].
    let at = format!("bundle.toml:{}:", line + 3);
    assert!(out.stderr.contains(&at), "{at} in: {}", out.stderr);
    assert!(
        out.stderr.contains("is not valid")
            && out.stderr.contains("plausibility.old")
            && out.stderr.contains("3 statements"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("was not changed"), "{}", out.stderr);
    let after: i64 = pg.query_one("clinic_v1", ENCOUNTERS);
    assert_eq!(after, encounters, "every encounter is still there");
    assert!(!pg.exists("clinic_v2"));
}

#[test]
fn a_precheck_that_commits_and_deletes_is_refused_with_its_file_and_line() {
    let pg = clinic_v1();
    let encounters: i64 = pg.query_one("clinic_v1", ENCOUNTERS);
    let (bundle, _) =
        bundle_with("\n[[precheck]]\nname = \"evil\"\nscript = \"prechecks/evil.sql\"\n");
    std::fs::write(
        bundle.path().join("prechecks/evil.sql"),
        "-- looks like a check\nCOMMIT; DELETE FROM clinic.encounter; SELECT 1 WHERE false;\n",
    )
    .expect("write");
    let data = tempfile::tempdir().expect("tempdir");
    let args = [
        "precheck",
        "--bundle",
        &bundle.path().to_string_lossy(),
        "--database",
        "clinic_v1",
    ];
    let out = run_pgstep(&pg, data.path(), &args);
    assert_eq!(
        out.code,
        pgstep::exit::REFUSED,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    // Refused by the bundle's validation, before anything connects.
    assert!(
        out.stderr.contains("is not valid")
            && out.stderr.contains(
                "prechecks/evil.sql:2:1: precheck: this statement ends or controls the transaction"
            ),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("found no problem"), "{}", out.stdout);
    let out = upgrade(&pg, data.path(), bundle.path());
    assert_eq!(out.code, pgstep::exit::REFUSED, "{}", out.stderr);
    let after: i64 = pg.query_one("clinic_v1", ENCOUNTERS);
    assert_eq!(after, encounters, "every encounter is still there");
}

/// A READ ONLY transaction on `c`, as the runner starts one.
fn read_only_tx(c: &mut postgres::Client) -> postgres::Transaction<'_> {
    c.build_transaction()
        .read_only(true)
        .start()
        .expect("begin")
}

/// What slips past validation cannot write either: the runner's READ ONLY transaction has
/// taken its snapshot before the bundle's statement runs, so PostgreSQL refuses to make it
/// read-write; the extended protocol refuses more than one statement.
#[test]
fn the_read_only_runner_cannot_be_made_to_write() {
    use pgstep::db::readonly;
    let pg = clinic_v1();
    let encounters: i64 = pg.query_one("clinic_v1", ENCOUNTERS);
    pg.exec(
        "clinic_v1",
        "CREATE FUNCTION public.sneaky() RETURNS int LANGUAGE plpgsql AS $$ \
         BEGIN PERFORM set_config('transaction_read_only', 'off', false); \
         DELETE FROM clinic.encounter; RETURN 1; END $$",
    );
    let mut c = pg.client("clinic_v1");
    for sql in [
        "SELECT set_config('transaction_read_only', 'off', false)",
        "SELECT public.sneaky()",
        "WITH d AS (DELETE FROM clinic.encounter RETURNING 1) SELECT count(*) FROM d",
        "DELETE FROM clinic.encounter RETURNING id",
        "SELECT 1; DELETE FROM clinic.encounter",
    ] {
        let r = readonly::read_rows(&mut c, sql);
        assert!(r.is_err(), "{sql}: {r:?}");
    }
    // Past the lexer: a SET that would make the transaction writable, sent to the runner's
    // transaction directly. PostgreSQL allows it before the first query…
    {
        let mut tx = read_only_tx(&mut c);
        readonly::rows_as_text(&mut tx, "SET transaction_read_only = off")
            .expect("before any query PostgreSQL lets a transaction become read-write");
        tx.rollback().expect("rollback");
    }
    // … and refuses it once the snapshot is taken, which is what the runner does first.
    for (sql, refusal) in [
        (
            "SET transaction_read_only = off",
            "must be set before any query",
        ),
        (
            "SELECT 1; DELETE FROM clinic.encounter",
            "multiple commands",
        ),
    ] {
        let mut tx = read_only_tx(&mut c);
        readonly::pin_read_only(&mut tx).expect("first query");
        let e = readonly::rows_as_text(&mut tx, sql).expect_err("refused after the snapshot");
        assert!(e.to_string().contains(refusal), "{sql}: {e}");
    }
    let after: i64 = pg.query_one("clinic_v1", ENCOUNTERS);
    assert_eq!(after, encounters);
    // Values come back as psql shows them, whatever their type.
    let rows = readonly::read_rows(
        &mut c,
        "SELECT 1.50::numeric, NULL::int, 'x'::text, true, now()::date > '2000-01-01'; -- end",
    )
    .expect("read");
    let want: Vec<Option<String>> = vec![
        Some("1.50".into()),
        None,
        Some("x".into()),
        Some("t".into()),
        Some("t".into()),
    ];
    assert_eq!(rows, vec![want]);
    assert_eq!(
        readonly::read_rows(&mut c, "SHOW standard_conforming_strings").expect("show"),
        vec![vec![Some("on".to_owned())]]
    );
}

#[test]
fn a_version_query_with_two_rows_or_two_columns_is_refused_before_any_change() {
    let pg = clinic_v1();
    let before = user_content(&pg, "clinic_v1");
    for (query, what) in [
        ("SELECT x FROM (VALUES ('2'),('1')) v(x)", "2 rows"),
        (
            "SELECT major, minor FROM clinic.schema_version",
            "2 columns",
        ),
    ] {
        let bundle = copy_bundle(&sample_dir());
        let manifest = bundle.path().join("bundle.toml");
        let text = std::fs::read_to_string(&manifest).expect("read");
        let text = text.replace(
            "query = \"SELECT major || '.' || minor FROM clinic.schema_version\"",
            &format!("query = \"{query}\""),
        );
        std::fs::write(&manifest, text).expect("write");
        let data = tempfile::tempdir().expect("tempdir");
        let out = upgrade(&pg, data.path(), bundle.path());
        assert_eq!(out.code, pgstep::exit::REFUSED, "{query}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("bundle.toml's [version] query returned")
                && out.stderr.contains(what)
                && out.stderr.contains(query),
            "{query}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("--override-schema-check"),
            "{}",
            out.stderr
        );
        assert!(!pg.exists("clinic_v2"), "{query}");
        assert_eq!(user_content(&pg, "clinic_v1"), before, "{query}");
    }
}

#[test]
fn a_junk_reference_fingerprint_is_refused_naming_the_file() {
    let pg = clinic_v1();
    let bundle = copy_bundle(&sample_dir());
    std::fs::write(
        bundle.path().join("fingerprints/v1.txt"),
        "this is not a fingerprint\nat all\n",
    )
    .expect("write");
    let data = tempfile::tempdir().expect("tempdir");
    let out = upgrade(&pg, data.path(), bundle.path());
    assert_eq!(out.code, pgstep::exit::REFUSED, "{}", out.stderr);
    assert!(
        out.stderr.contains("fingerprints/v1.txt:1:1")
            && out.stderr.contains("not a pgstep fingerprint"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("objects removed"), "{}", out.stderr);
    assert!(!pg.exists("clinic_v2"));
}

#[test]
fn after_a_failure_the_source_is_said_unchanged_only_as_measured() {
    let pg = clinic_v1();
    let data = tempfile::tempdir().expect("tempdir");
    let out = pgstep_cmd(&pg, data.path())
        .env("PGSTEP_FAULT", "clone_upgrade:fail")
        .args([
            "upgrade",
            "--headless",
            "--yes",
            "--bundle",
            &sample_dir().to_string_lossy(),
            "--database",
            "clinic_v1",
        ])
        .output()
        .expect("run pgstep");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(pgstep::exit::FAILED), "{stderr}");
    assert!(
        stderr.contains(
            "The source database \"clinic_v1\" was not changed: users can go on working with it as before."
        ) && stderr.contains("Checked: no rows written, schema fingerprint unchanged."),
        "{stderr}"
    );
    // The run's report says the same, from the same measurement.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}\n{stderr}");
    let md = all
        .lines()
        .find_map(|l| l.split("report: ").nth(1))
        .and_then(|r| r.split(" (").next())
        .unwrap_or_else(|| panic!("no report path in: {all}"));
    let report = std::fs::read_to_string(md).expect("read the report");
    assert!(
        report.contains("- Source database: The source database \"clinic_v1\" was not changed"),
        "{report}"
    );
    let json = std::fs::read_to_string(Path::new(md).with_extension("json")).expect("json report");
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(json["source"]["verdict"], "unchanged", "{json}");
}

/// An upgrade that fails at the end of "Upgrade the clone", during which a superuser session
/// (the block does not keep it out) runs `sql` on the source while pgstep waits after setting
/// the banner: pgstep's exit code and everything it wrote on stderr.
fn upgrade_with_an_interloper(pg: &Pg, sql: &str) -> (Option<i32>, String) {
    let data = tempfile::tempdir().expect("tempdir");
    let gate = data.path().join("gate");
    let mut child = pgstep_cmd(pg, data.path())
        .env("PGSTEP_FAULT", "banner:wait,clone_upgrade:fail")
        .env("PGSTEP_FAULT_GATE", &gate)
        .args([
            "upgrade",
            "--headless",
            "--yes",
            "--bundle",
            &sample_dir().to_string_lossy(),
            "--database",
            "clinic_v1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pgstep");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("read") == 0 {
            panic!("pgstep ended before the fault point: {seen}");
        }
        seen.push_str(&line);
        if line.contains("fault point banner reached") {
            break;
        }
    }
    // The session ends before the gate opens.
    pg.exec("clinic_v1", sql);
    std::fs::write(&gate, "").expect("open the gate");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("read");
    let status = child.wait().expect("wait");
    seen.push_str(&rest);
    (status.code(), seen)
}

#[test]
fn a_write_by_someone_else_during_the_run_is_named_not_called_unchanged() {
    let pg = clinic_v1();
    let (code, seen) = upgrade_with_an_interloper(
        &pg,
        "UPDATE clinic.patient SET last_name = last_name || '!' WHERE id = (SELECT min(id) FROM clinic.patient)",
    );
    assert_eq!(code, Some(pgstep::exit::FAILED), "{seen}");
    assert!(!seen.contains("was not changed"), "{seen}");
    assert!(
        seen.contains(
            "the source database \"clinic_v1\" was changed during the run: 1 row(s) written (clinic.patient: 1)"
        ),
        "{seen}"
    );
    // Where to look next: the backup, if the one taken alongside had finished before the
    // injected failure (it races the upgrade), else that there is none.
    assert!(
        seen.contains("Check it before users go on; the backup this run took is")
            || seen.contains("Check it before users go on; this run took no backup."),
        "{seen}"
    );
}

/// TRUNCATE counts no rows in the statistics: the table's new file node gives it away.
#[test]
fn a_truncate_by_someone_else_during_the_run_is_named() {
    let pg = clinic_v1();
    let (code, seen) = upgrade_with_an_interloper(&pg, "TRUNCATE clinic.encounter");
    assert_eq!(code, Some(pgstep::exit::FAILED), "{seen}");
    assert!(!seen.contains("was not changed"), "{seen}");
    assert!(
        seen.contains("table(s) truncated or rewritten: clinic.encounter"),
        "{seen}"
    );
}

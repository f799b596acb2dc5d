use std::path::Path;

use super::markdown::{cell, fence_for, terminated};
use super::*;
use crate::bundle::{Step, Version};
use crate::script::{
    Change, Placeholder, PlaceholderKind, Placeholders, QualName, changes, load_script,
};

/// A bundle directory with these files, and the scripts loaded from it.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(files: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        Fixture { dir }
    }

    fn script(&self, path: &str) -> Script {
        load_script(self.dir.path(), Path::new(path), &placeholders())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The sample bundle's manifest with these steps (of no scripts: the test passes them), a
    /// description with a `|` and a recognisable checksum.
    fn bundle(&self, steps: &[(u32, bool)]) -> Bundle {
        let mut bundle = crate::bundle::load(&crate::sample::source_dir()).expect("sample bundle");
        bundle.root = self.dir.path().to_path_buf();
        bundle.description = Some("Clinic | records".into());
        bundle.sha256 = "b".repeat(64);
        bundle.steps = steps
            .iter()
            .map(|&(from, single_transaction)| Step {
                from: Version::new(from, 0),
                to: Version::new(from + 1, 0),
                scripts: vec![],
                single_transaction,
            })
            .collect();
        bundle
    }
}

/// What `pgstep plan` passes: the bundle's values and DB_NAME = the clone.
fn placeholders() -> Placeholders {
    let mut p = Placeholders::new();
    for (name, kind, value) in [
        ("APP_ROLE", PlaceholderKind::Identifier, "clinic_app"),
        ("TIME_ZONE", PlaceholderKind::Literal, "Europe/Berlin"),
        ("DB_NAME", PlaceholderKind::Identifier, "clinic_v2"),
        ("DB_USER", PlaceholderKind::Identifier, "postgres"),
    ] {
        p.insert(
            name.into(),
            Placeholder {
                kind,
                value: value.into(),
            },
        );
    }
    p
}

fn plan(steps: usize) -> UpgradePlan {
    let to = u32::try_from(steps).expect("steps") + 1;
    UpgradePlan {
        from: Version::new(1, 0),
        to: Version::new(to, 0),
        steps: (0..steps).collect(),
        source_db: "clinic_v1".into(),
        work_db: format!("clinic_v{to}"),
        final_db: format!("clinic_v{to}"),
        aside_db: None,
    }
}

fn facts() -> Facts {
    Facts {
        server: "db.example:5432".into(),
        user: "postgres".into(),
        server_version: "17.2".into(),
        pgstep_version: "0.1.0".into(),
        generated_at: DateTime::parse_from_rfc3339("2026-11-21T02:00:00Z")
            .expect("time")
            .with_timezone(&Utc),
        notes: vec![],
        downtime: "about 4.2 s".into(),
    }
}

/// A fake server: these tables exist, and nothing else does; records what was asked.
struct FakeDb {
    tables: Vec<&'static str>,
    asked: Vec<String>,
}

impl FakeDb {
    fn new(tables: &[&'static str]) -> FakeDb {
        FakeDb {
            tables: tables.to_vec(),
            asked: Vec::new(),
        }
    }

    fn decide(&mut self, c: &Condition) -> Result<bool, Undecided> {
        self.asked.push(c.describe());
        let exists = self.tables.contains(&c.table().to_string().as_str());
        match c {
            Condition::IfNotTable(_) => Ok(!exists),
            Condition::IfTable(_) => Ok(exists),
            Condition::IfNotRow(..) if c.table().name == "broken" => Err(Undecided {
                reason: "ERROR 42501: permission denied for table broken".into(),
            }),
            _ => Ok(false),
        }
    }
}

fn preview(fx: &Fixture, scripts: &[&[&str]], single: bool, db: &mut FakeDb) -> String {
    let steps: Vec<(u32, bool)> = (1..=scripts.len())
        .map(|n| (u32::try_from(n).expect("n"), single))
        .collect();
    let loaded: Vec<Vec<Script>> = scripts
        .iter()
        .map(|s| s.iter().map(|p| fx.script(p)).collect())
        .collect();
    render(
        &fx.bundle(&steps),
        &plan(scripts.len()),
        &loaded,
        &facts(),
        &mut |c| db.decide(c),
    )
}

const TABLES: &str = "\\echo clinic 1 -> 2
SET work_mem = '64MB';
BEGIN;
-- #IfNotTable clinic.allergy
CREATE TABLE clinic.allergy (id bigint);
GRANT SELECT ON clinic.allergy TO @APP_ROLE@;
-- #EndIf
-- #IfTable clinic.old_notes
DROP TABLE clinic.old_notes;
-- #EndIf
COMMIT;
CREATE INDEX CONCURRENTLY allergy_id_idx ON clinic.allergy (id);
COMMENT ON DATABASE @DB_NAME@ IS 'zone @TIME_ZONE@';
";

#[test]
fn a_block_is_shown_as_it_would_run_or_be_skipped_now() {
    let fx = Fixture::new(&[("v1-v2/01.sql", TABLES)]);
    let mut db = FakeDb::new(&["clinic.patient"]);
    let text = preview(&fx, &[&["v1-v2/01.sql"]], false, &mut db);
    assert!(
        text.contains(
            "-- v1-v2/01.sql:4\n-- #IfNotTable clinic.allergy: would run (as the database is now)\n\
             -- v1-v2/01.sql:5\nCREATE TABLE clinic.allergy (id bigint);\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "-- #IfTable clinic.old_notes: would be skipped (as the database is now)\n\
             -- v1-v2/01.sql:9 (skipped: not sent)\n-- DROP TABLE clinic.old_notes;\n"
        ),
        "the skipped body is commented out:\n{text}"
    );
    assert!(text.contains("-- #EndIf (#IfTable clinic.old_notes)"));
    assert!(
        text.contains("| 1 → 2 | 1 | 8 (3 in blocks) | 2: 1 would run, 1 would be skipped |"),
        "{text}"
    );
    assert_eq!(
        db.asked,
        ["#IfNotTable clinic.allergy", "#IfTable clinic.old_notes"]
    );
}

#[test]
fn statements_are_shown_with_placeholders_substituted() {
    let fx = Fixture::new(&[("v1-v2/01.sql", TABLES)]);
    let text = preview(&fx, &[&["v1-v2/01.sql"]], false, &mut FakeDb::new(&[]));
    assert!(text.contains("GRANT SELECT ON clinic.allergy TO \"clinic_app\";"));
    assert!(
        text.contains("COMMENT ON DATABASE \"clinic_v2\" IS 'zone ''Europe/Berlin''';"),
        "DB_NAME is the clone, literals quoted:\n{text}"
    );
    assert!(!text.contains("@APP_ROLE@") && !text.contains("@DB_NAME@ IS"));
    assert!(text.contains("-- v1-v2/01.sql:1\n-- \\echo clinic 1 -> 2\n\n"));
}

#[test]
fn every_script_has_its_checksum_and_included_files_theirs() {
    let fx = Fixture::new(&[
        ("v1-v2/01.sql", TABLES),
        ("v1-v2/02.sql", "\\ir lib/grants.sql\nSELECT 2;\n"),
        (
            "v1-v2/lib/grants.sql",
            "GRANT USAGE ON SCHEMA clinic TO @APP_ROLE@;\n",
        ),
    ]);
    let one = fx.script("v1-v2/01.sql");
    let two = fx.script("v1-v2/02.sql");
    let text = preview(
        &fx,
        &[&["v1-v2/01.sql", "v1-v2/02.sql"]],
        false,
        &mut FakeDb::new(&[]),
    );
    assert!(text.contains(&format!(
        "### 1.1 `v1-v2/01.sql`\n\n- sha256 `{}` (the file; it includes no other file)",
        one.sha256
    )));
    assert!(text.contains(&format!(
        "### 1.2 `v1-v2/02.sql`\n\n- sha256 `{}` (covers the file and the 1 file(s) it includes); the file alone: `{}`",
        two.combined_sha256(),
        two.sha256
    )));
    assert!(text.contains(&format!(
        "  - includes `v1-v2/lib/grants.sql`: sha256 `{}`",
        two.included[0].1
    )));
    assert!(
        text.contains("-- v1-v2/lib/grants.sql:1\nGRANT USAGE ON SCHEMA clinic TO \"clinic_app\";")
    );
    assert!(text.contains(&format!("| Bundle sha256 | `{}` |", "b".repeat(64))));
}

#[test]
fn statements_outside_transactions_and_transaction_control_are_flagged() {
    let fx = Fixture::new(&[("v1-v2/01.sql", TABLES)]);
    let text = preview(&fx, &[&["v1-v2/01.sql"]], false, &mut FakeDb::new(&[]));
    assert!(text.contains(
        "-- v1-v2/01.sql:12  [cannot run in a transaction block]\nCREATE INDEX CONCURRENTLY"
    ));
    assert!(text.contains("-- v1-v2/01.sql:3  [transaction control]\nBEGIN;"));
    assert!(text.contains("-- v1-v2/01.sql:11  [transaction control]\nCOMMIT;"));
    assert!(text.contains("- manages its own transaction: transaction control at line 3, line 11"));
    assert!(text.contains("- cannot run inside a transaction block: line 12"));
    assert!(text.contains("`single_transaction = false`: each script runs in its own session"));
}

#[test]
fn a_block_whose_table_an_earlier_statement_changes_is_decided_during_the_run() {
    let script = "\
CREATE TABLE clinic.allergen (code text);
-- #IfNotRow clinic.allergen code pen
INSERT INTO clinic.allergen VALUES ('pen');
-- #EndIf
-- #IfNotTable clinic.patient
CREATE TABLE clinic.patient (id int);
-- #EndIf
";
    let fx = Fixture::new(&[("v1-v2/01.sql", script)]);
    let text = preview(
        &fx,
        &[&["v1-v2/01.sql"]],
        false,
        &mut FakeDb::new(&["clinic.patient"]),
    );
    assert!(
        text.contains(
            "-- #IfNotRow clinic.allergen code pen: decided during the run: an earlier statement \
             changes clinic.allergen (v1-v2/01.sql:1)\n--   (as the database is now it would be skipped)\n\
             -- v1-v2/01.sql:3\nINSERT INTO clinic.allergen VALUES ('pen');"
        ),
        "shown as sent, not commented out:\n{text}"
    );
    assert!(
        text.contains("-- #IfNotTable clinic.patient: would be skipped (as the database is now)")
    );
}

#[test]
fn blocks_of_later_steps_in_a_chain_are_decided_during_the_run() {
    let fx = Fixture::new(&[
        ("a.sql", "SELECT 1;\n"),
        (
            "b.sql",
            "-- #IfNotTable clinic.audit\nCREATE TABLE clinic.audit (id int);\n-- #EndIf\n",
        ),
    ]);
    let text = preview(&fx, &[&["a.sql"], &["b.sql"]], true, &mut FakeDb::new(&[]));
    assert!(text.contains(
        "-- #IfNotTable clinic.audit: decided during the run: step 1 → 2 changes the database first"
    ), "{text}");
    assert!(text.contains("## Step 2: 2 → 3"));
    assert!(text.contains("pgstep sends `BEGIN` before the first script"));
    assert!(text.contains("This upgrade chains several steps"));
}

#[test]
fn a_condition_that_cannot_be_decided_says_why_and_inner_blocks_of_skipped_ones_are_not_asked() {
    let script = "\
-- #IfNotRow clinic.broken code x
SELECT 1;
-- #EndIf
-- #IfTable clinic.gone
-- #IfNotTable clinic.inner
SELECT 2;
-- #EndIf
-- #EndIf
";
    let fx = Fixture::new(&[("s.sql", script)]);
    let mut db = FakeDb::new(&[]);
    let text = preview(&fx, &[&["s.sql"]], false, &mut db);
    assert!(text.contains(
        "-- #IfNotRow clinic.broken code x: could not be decided now, so it is decided during the run: ERROR 42501: permission denied"
    ), "{text}");
    assert!(text.contains(
        "-- #IfNotTable clinic.inner: not reached (inside a block that would be skipped)"
    ));
    assert!(text.contains("-- s.sql:6 (skipped: not sent)\n-- SELECT 2;"));
    assert_eq!(
        db.asked,
        ["#IfNotRow clinic.broken code x", "#IfTable clinic.gone"]
    );
    assert!(text.contains("| 2 (2 in blocks) | 3: 1 would be skipped, 1 could not be decided now, 1 inside skipped blocks |"), "{text}");
}

#[test]
fn what_a_statement_changes_is_read_from_its_first_words() {
    let t = |schema: Option<&str>, name: &str| {
        Change::Table(QualName {
            schema: schema.map(str::to_owned),
            name: name.into(),
        })
    };
    let i = |schema: Option<&str>, name: &str| {
        Change::Index(QualName {
            schema: schema.map(str::to_owned),
            name: name.into(),
        })
    };
    let cases: Vec<(&str, Vec<Change>)> = vec![
        (
            "CREATE TABLE clinic.a (id int)",
            vec![t(Some("clinic"), "a")],
        ),
        (
            "create unlogged table if not exists \"Clinic\".\"A b\" (x int)",
            vec![t(Some("Clinic"), "A b")],
        ),
        ("CREATE TEMP TABLE w AS VALUES (1)", vec![t(None, "w")]),
        (
            "ALTER TABLE ONLY clinic.p ADD COLUMN e text",
            vec![t(Some("clinic"), "p")],
        ),
        (
            "ALTER TABLE clinic.p RENAME TO q",
            vec![t(Some("clinic"), "p"), t(Some("clinic"), "q")],
        ),
        (
            "ALTER TABLE p SET SCHEMA archive",
            vec![t(None, "p"), t(Some("archive"), "p")],
        ),
        (
            "DROP TABLE IF EXISTS a, clinic.b CASCADE",
            vec![t(None, "a"), t(Some("clinic"), "b")],
        ),
        (
            "DROP INDEX CONCURRENTLY IF EXISTS clinic.i",
            vec![i(Some("clinic"), "i")],
        ),
        (
            "CREATE UNIQUE INDEX CONCURRENTLY i ON ONLY clinic.e (x)",
            vec![i(Some("clinic"), "i")],
        ),
        ("CREATE INDEX ON clinic.e (x)", vec![t(Some("clinic"), "e")]),
        (
            "INSERT INTO clinic.a (x) VALUES ('DROP TABLE b')",
            vec![t(Some("clinic"), "a")],
        ),
        (
            "UPDATE ONLY clinic.a SET x = 1",
            vec![t(Some("clinic"), "a")],
        ),
        (
            "DELETE FROM clinic.a WHERE true",
            vec![t(Some("clinic"), "a")],
        ),
        (
            "TRUNCATE TABLE ONLY a, ONLY b",
            vec![t(None, "a"), t(None, "b")],
        ),
        (
            "/* note */ -- x\n  insert into a values (1)",
            vec![t(None, "a")],
        ),
        ("SELECT 1", vec![]),
        ("DO $$ BEGIN CREATE TABLE x (); END $$", vec![]),
        ("CREATE VIEW v AS SELECT 1", vec![]),
    ];
    for (sql, want) in cases {
        assert_eq!(changes(sql), want, "{sql}");
    }
}

#[test]
fn file_names_are_safe_and_say_what_and_when() {
    let mut p = plan(1);
    assert_eq!(
        file_name(&p, facts().generated_at),
        "clinic_v1-1-to-2-20261121T020000Z.md"
    );
    p.source_db = "../odd name".into();
    assert_eq!(
        file_name(&p, facts().generated_at),
        ".._odd_name-1-to-2-20261121T020000Z.md"
    );
}

#[test]
fn code_that_contains_backticks_cannot_end_its_fence() {
    assert_eq!(fence_for("SELECT 1"), "```");
    assert_eq!(fence_for("SELECT '````'"), "`````");
    assert_eq!(terminated("SELECT 1 -- one"), "SELECT 1 -- one\n;");
    assert_eq!(terminated("SELECT 1"), "SELECT 1;");
    assert_eq!(cell("a | b\nc"), "a \\| b c");
}

//! `pgstep plan` with the real binary against a throw-away cluster: the preview of the sample's
//! 1 → 2 step is complete and readable, writing it changes nothing on the server, and a
//! database that is not there is refused.

mod common;

use std::path::Path;

use common::{Pg, sample_dir};

fn pgstep(pg: &Pg, data_dir: &Path, args: &[&str]) -> common::BinRun {
    common::run_pgstep(pg, data_dir, args)
}

fn bundle_arg() -> String {
    sample_dir().to_string_lossy().into_owned()
}

/// The line after `heading` that starts with `prefix`, within the heading's section.
fn line_after<'a>(text: &'a str, heading: &str, prefix: &str) -> Option<&'a str> {
    let start = text.find(heading)?;
    text[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(prefix))
}

fn is_sha256_code(s: &str) -> bool {
    let hex = s.trim_start_matches('`');
    hex.len() >= 64
        && hex[..64].chars().all(|c| c.is_ascii_hexdigit())
        && hex[64..].starts_with('`')
}

#[test]
fn plan_writes_every_statement_of_the_step_and_changes_nothing() {
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let before = pg.content_checksum("clinic_v1", "clinic");
    let databases = pg.databases();
    let out = tempfile::tempdir().expect("tempdir");
    let file = out.path().join("preview.md");

    let r = pgstep(
        &pg,
        &pg.data_dir(),
        &[
            "plan",
            "--bundle",
            &bundle_arg(),
            "--output",
            &file.to_string_lossy(),
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.trim(), file.to_string_lossy(), "prints the path");
    let text = std::fs::read_to_string(&file).expect("the preview file");

    // The script with its checksum.
    let sha = line_after(&text, "`v1-v2/01_tables.sql`", "- sha256 ")
        .unwrap_or_else(|| panic!("no checksum for 01_tables.sql:\n{text}"));
    assert!(is_sha256_code(&sha["- sha256 ".len()..]), "{sha}");
    // Statements as sent, with their place and flags.
    assert!(text.contains("CREATE INDEX CONCURRENTLY encounter_patient_started_idx"));
    assert!(
        text.contains("[cannot run in a transaction block]"),
        "CONCURRENTLY and VACUUM are flagged"
    );
    assert!(text.contains("-- v1-v2/01_tables.sql:"), "file:line");
    // The block as the database is now.
    assert!(
        text.contains("-- #IfNotTable clinic.allergy: would run (as the database is now)"),
        "{text}"
    );
    // A block whose table an earlier statement of the step creates is not decided now.
    assert!(
        text.contains(
            "-- #IfNotRow2Dx2 clinic.allergen category drug code pen name Penicilin: decided during the run: an earlier statement changes clinic.allergen"
        ),
        "{text}"
    );
    // Placeholders substituted: the included lib/grants.sql's @APP_ROLE@, the literal
    // @TIME_ZONE@, and @DB_USER@.
    assert!(text.contains("TO \"clinic_app\""), "{text}");
    assert!(text.contains("AT TIME ZONE 'Europe/Berlin'"));
    assert!(text.contains("OWNER TO \"postgres\""));
    assert!(!text.contains("@APP_ROLE@ "), "no placeholder left in code");
    // The summary.
    for needle in [
        "| Source database | `clinic_v1` — version 1 now",
        "| The clone (the scripts run here) | `clinic_v2`",
        "| 1 → 2 | 3 |",
        "| Bundle sha256 | `",
        "| pgstep version | ",
        "decided when the script reaches",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }

    // Read-only: the source unchanged, no database created.
    assert_eq!(pg.content_checksum("clinic_v1", "clinic"), before);
    assert_eq!(pg.databases(), databases);
}

#[test]
fn plan_goes_to_the_data_directory_or_stdout() {
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let data = tempfile::tempdir().expect("tempdir");
    let r = pgstep(&pg, data.path(), &["plan", "--bundle", &bundle_arg()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let path = Path::new(r.stdout.trim());
    assert!(path.starts_with(data.path().join("plans")), "{}", r.stdout);
    let name = path.file_name().expect("name").to_string_lossy();
    assert!(
        name.starts_with("clinic_v1-1-to-2-") && name.ends_with("Z.md"),
        "{name}"
    );
    assert!(path.is_file());

    let r = pgstep(
        &pg,
        data.path(),
        &[
            "plan",
            "--bundle",
            &bundle_arg(),
            "--set",
            "APP_ROLE=site_app",
            "--output",
            "-",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("TO \"site_app\""), "--set is used");
    assert!(
        r.stdout
            .starts_with("# Upgrade plan preview: clinic, `clinic_v1` 1 → 2"),
        "stdout is the preview alone:\n{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("| Downtime to expect | not known yet: `pgstep rehearse` measures it"),
        "{}",
        r.stdout
    );
}

#[test]
fn plan_scales_the_latest_rehearsal_to_this_database() {
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let data = tempfile::tempdir().expect("tempdir");
    let step = |step: &str, seconds| pgstep::rehearsal::StepTime {
        step: step.into(),
        seconds,
    };
    // A rehearsal on a test server's 2 GB copy: 1 s whatever the size, 200 s that grow with it.
    let rehearsal = pgstep::rehearsal::Rehearsal {
        run_id: "r1".into(),
        bundle: "clinic".into(),
        bundle_sha256: String::new(),
        server: "testhost:5432".into(),
        database: "clinic_v1".into(),
        from: "1".into(),
        to: "2".into(),
        at: "2026-11-25T10:00:00Z".into(),
        database_size: 2_000_000_000,
        dump_size: None,
        steps: vec![
            step("plan", 30.0),
            step("connected_users", 1.0),
            step("clone_upgrade", 180.0),
            step("sanity_checks", 20.0),
        ],
        problems: vec![],
        copied_from_backup: false,
        dump: None,
        rewritten: vec![],
        stopped: None,
    };
    pgstep::rehearsal::write(data.path(), &rehearsal).expect("record");
    let size: i64 = pg
        .client("clinic_v1")
        .query_one("SELECT pg_database_size('clinic_v1')", &[])
        .expect("size")
        .get(0);
    let expected = rehearsal.predicted_downtime(Some(u64::try_from(size).expect("size")));
    let r = pgstep(
        &pg,
        data.path(),
        &["plan", "--bundle", &bundle_arg(), "--output", "-"],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let wanted = format!(
        "| Downtime to expect | about {expected:.0} s for this database ({:.2} GB), from the rehearsal of clinic_v1 on testhost:5432 (2026-11-25T10:00:00Z, 2.00 GB), scaled by size |",
        size as f64 / 1e9
    );
    assert!(r.stdout.contains(&wanted), "{wanted}\n{}", r.stdout);
}

#[test]
fn plan_of_a_missing_database_is_refused_with_exit_3() {
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let data = tempfile::tempdir().expect("tempdir");
    let r = pgstep(
        &pg,
        data.path(),
        &[
            "plan",
            "--bundle",
            &bundle_arg(),
            "--database",
            "clinic_nope",
        ],
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("database \"clinic_nope\" does not exist on"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(!data.path().join("plans").exists(), "no file written");
}

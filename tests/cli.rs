//! The real binary, headless, as a script or a sysadmin runs it: exit codes, first lines, JSON
//! events, clear refusals for bad input.

mod common;

use std::process::Command;

use common::{Pg, sample_dir};

/// Runs pgstep against the cluster with a clean environment and a data directory of its own.
fn pgstep(pg: &Pg, args: &[&str]) -> common::BinRun {
    let data = tempfile::tempdir().expect("tempdir");
    common::run_pgstep(pg, data.path(), args)
}

fn with_clinic_v1() -> Pg {
    common::clinic_v1(&common::sample_bundle(), 0)
}

fn bundle_arg() -> String {
    sample_dir().to_string_lossy().into_owned()
}

#[test]
fn fingerprint_prints_the_hash_first_and_names_the_matching_version() {
    let pg = with_clinic_v1();
    let r = pgstep(
        &pg,
        &[
            "fingerprint",
            "--database",
            "clinic_v1",
            "--bundle",
            &bundle_arg(),
            "--full",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let mut lines = r.stdout.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("sha256:") && first.len() == 7 + 64,
        "{first}"
    );
    assert!(
        lines
            .next()
            .unwrap_or_default()
            .starts_with("matches clinic version 1"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("format\tpgstep\t1\n"),
        "--full prints the text"
    );

    pg.exec(
        "clinic_v1",
        "ALTER TABLE clinic.staff ADD COLUMN pager text",
    );
    let r = pgstep(
        &pg,
        &[
            "fingerprint",
            "--database",
            "clinic_v1",
            "--bundle",
            &bundle_arg(),
        ],
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("matches no reference of clinic; against version 1 (the version marker says 1), 1 object(s) differ"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("+ added    column clinic.staff.pager: text"),
        "{}",
        r.stdout
    );
}

#[test]
fn headless_upgrade_walks_the_procedure_and_exits_zero() {
    let pg = with_clinic_v1();
    let r = pgstep(
        &pg,
        &[
            "upgrade",
            "--bundle",
            &bundle_arg(),
            "--database",
            "clinic_v1",
            "--headless",
            "--yes",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for phase in [
        "== Plan",
        "== Connected users",
        "== Disk space",
        "== Fingerprint",
        "== Clone",
        "== Backup",
        "== Banner",
        "== Upgrade the clone",
        "-- step 1 → 2",
        "== Sanity checks",
        "== Banner reset and cut-over",
    ] {
        assert!(r.stdout.contains(phase), "{phase} missing:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("[ok] target fingerprint"), "{}", r.stdout);
    // --backup-format auto (the default) says what it chose for this database and why.
    assert!(
        r.stdout
            .contains("backup: custom format (one compressed file) — ")
            && r.stdout.contains("MB of table data"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("Upgraded \"clinic_v1\" from version 1 to 2"),
        "{}",
        r.stdout
    );
    assert!(pg.exists("clinic_v2"));
}

#[test]
fn json_output_is_one_event_per_line_ending_with_the_result() {
    let pg = with_clinic_v1();
    let r = pgstep(
        &pg,
        &["upgrade", "--bundle", &bundle_arg(), "--json", "--yes"],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "step_started" && e["step"] == "clone_upgrade")
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "check" && e["ok"] == true)
    );
    let last = events.last().expect("events");
    assert_eq!(
        (
            last["event"].as_str(),
            last["ok"].as_bool(),
            last["exit_code"].as_i64()
        ),
        (Some("result"), Some(true), Some(0)),
        "{last}"
    );
    let steps = last["steps"].as_array().expect("steps");
    let cut_over = steps
        .iter()
        .find(|s| s["id"] == "cut_over")
        .expect("cut-over step");
    assert_eq!(
        cut_over["output"]["data"]["new_db"], "clinic_v2",
        "{cut_over}"
    );
}

#[test]
fn bad_input_is_refused_with_exit_3_and_a_message_that_says_what_to_do() {
    let pg = with_clinic_v1();
    let r = pgstep(
        &pg,
        &[
            "upgrade",
            "--bundle",
            &bundle_arg(),
            "--database",
            "clinic_v9",
            "--headless",
            "--yes",
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("database \"clinic_v9\" does not exist"),
        "{}",
        r.stderr
    );

    let r = pgstep(
        &pg,
        &["upgrade", "--bundle", "/nonexistent", "--headless", "--yes"],
    );
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("no bundle.toml here"), "{}", r.stderr);

    let r = pgstep(&pg, &["upgrade", "--bundle", &bundle_arg(), "--headless"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);

    let r = pgstep(
        &pg,
        &[
            "upgrade",
            "--bundle",
            &bundle_arg(),
            "--to",
            "banana",
            "--yes",
        ],
    );
    assert_eq!(
        r.code, 2,
        "a malformed version is a usage error: {}",
        r.stderr
    );
    assert!(r.stderr.contains("is not a version"), "{}", r.stderr);

    let r = pgstep(
        &pg,
        &[
            "upgrade",
            "--bundle",
            &bundle_arg(),
            "--headless",
            "--yes",
            "--backup-format",
            "custom",
            "--jobs",
            "4",
        ],
    );
    assert_eq!(r.code, 2, "parallel jobs for one file: {}", r.stderr);
    assert!(
        r.stderr.contains("--backup-format directory"),
        "{}",
        r.stderr
    );
    assert!(pg.exists("clinic_v1") && !pg.exists("clinic_v2"));

    let r = pgstep(
        &pg,
        &[
            "upgrade",
            "--bundle",
            &bundle_arg(),
            "--headless",
            "--yes",
            "--set",
            "NOPE=x",
        ],
    );
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("defines no placeholder @NOPE@"),
        "{}",
        r.stderr
    );
    assert!(!pg.exists("clinic_v2"), "nothing was changed");
}

#[test]
fn a_server_that_is_not_there_is_a_clear_refusal() {
    let pg = Pg::start();
    let socket = pg.cluster.socket_dir().to_string_lossy().into_owned();
    drop(pg); // the server is gone
    let out = Command::new(env!("CARGO_BIN_EXE_pgstep"))
        .env_clear()
        .env("HOME", "/nonexistent")
        .args([
            "-h",
            &socket,
            "-U",
            "postgres",
            "fingerprint",
            "--database",
            "x",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&socket), "names the server: {err}");
}

#[test]
fn help_lists_the_commands_and_connection_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_pgstep"))
        .arg("--help")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "demo",
        "upgrade",
        "fixup",
        "bootstrap",
        "fingerprint",
        "precheck",
        "--host",
        "--username",
        "Exit codes",
    ] {
        assert!(help.contains(word), "{word} missing from --help:\n{help}");
    }
}

/// The README's "Where each step lives" table names, for every step, files that exist: the
/// executor's and the screen's file, and the help text under the step's key.
#[test]
fn the_readme_names_the_file_of_every_step_and_they_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let start = readme
        .find("### Where each step lives")
        .expect("the step table");
    let rows: Vec<Vec<String>> = readme[start..]
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains('`'))
        .map(|l| {
            l.split('|')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 14, "one row per step: {rows:?}");
    for row in &rows {
        let (key, executor, screen) = (&row[2], &row[3], &row[4]);
        assert!(
            root.join(format!("assets/help/{key}.md")).exists(),
            "help of {key}"
        );
        let screen = screen.trim_matches('`');
        assert!(root.join("src/ui").join(screen).exists(), "{screen}");
        if let Some(path) = executor
            .split('`')
            .next()
            .filter(|p| p.starts_with("steps/"))
        {
            assert!(root.join("src/executor").join(path).exists(), "{path}");
            assert!(
                path.contains(key.as_str()),
                "{path} is named by its key {key}"
            );
        }
        assert!(
            screen.contains(key.as_str()),
            "{screen} is named by its key {key}"
        );
    }
}

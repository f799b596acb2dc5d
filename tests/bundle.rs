//! Bundles are validated completely before any database is touched, and every problem names
//! the file, the line and what is wrong. No server needed.

mod common;

use std::path::Path;

use pgstep::bundle::{self, BundleError, Naming, Version};

const MANIFEST: &str = r#"[application]
name = "tiny"
min_server_version = "13"

[database]
naming = "versioned"
name = "tiny_v{major}"
schemas = ["tiny"]

[version]
query = "SELECT v FROM tiny.version"

[baseline]
version = "1"
scripts = ["v1.sql"]

[[step]]
from = "1"
to = "2"
scripts = ["v1-v2.sql"]

[fingerprints]
"1" = "fp1.txt"
"2" = "fp2.txt"
"#;

/// A valid little bundle; `edit` changes files before it is loaded.
fn tiny(edit: impl FnOnce(&Path)) -> Result<bundle::Bundle, BundleError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    std::fs::write(p.join("bundle.toml"), MANIFEST).expect("write");
    std::fs::write(p.join("v1.sql"), "CREATE SCHEMA tiny;\nCREATE TABLE tiny.version (v text);\nINSERT INTO tiny.version VALUES ('1');\n").expect("write");
    std::fs::write(
        p.join("v1-v2.sql"),
        "BEGIN;\nCREATE TABLE tiny.t (id int);\nUPDATE tiny.version SET v = '2';\nCOMMIT;\n",
    )
    .expect("write");
    std::fs::write(p.join("fp1.txt"), "format\tpgstep\t1\nschema\ttiny\n").expect("write");
    std::fs::write(
        p.join("fp2.txt"),
        "format\tpgstep\t1\nschema\ttiny\ntable\ttiny.t\n",
    )
    .expect("write");
    edit(p);
    bundle::load(p)
}

fn replace(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{from:?} not in {file}");
    std::fs::write(path, text.replace(from, to)).expect("write");
}

/// The bundle is refused, and one problem reads `file:line:…` and contains `needle`.
fn refused(result: Result<bundle::Bundle, BundleError>, file: &str, line: u32, needle: &str) {
    let err = result.expect_err("the bundle is refused");
    let shown = err.to_string();
    assert!(shown.contains("nothing was changed"), "{shown}");
    let hit = err.problems.iter().find(|p| p.message.contains(needle));
    let p = hit.unwrap_or_else(|| panic!("no problem mentions {needle:?}:\n{shown}"));
    assert!(p.file.ends_with(file), "{p} should be in {file}");
    assert_eq!(p.line, line, "{p}");
    assert!(p.to_string().contains(&format!("{file}:{line}:")), "{p}");
}

#[test]
fn the_sample_bundle_is_valid() {
    let b = common::sample_bundle();
    assert_eq!(b.name, "clinic");
    assert_eq!(
        b.naming,
        Naming::Versioned {
            pattern: "clinic_v{major}".into()
        }
    );
    assert_eq!(b.steps.len(), 2);
    assert_eq!(b.latest_major(), Version::new(3, 0));
    assert_eq!(b.latest(), Version::new(3, 0));
    assert!(b.fixups.iter().any(|f| f.version == Version::new(2, 1)));
    for v in ["1", "2", "3"] {
        assert!(
            b.reference_for(v.parse().expect("v")).is_some(),
            "reference for {v}"
        );
    }
    assert_eq!(b.sha256.len(), 64);
}

#[test]
fn a_valid_tiny_bundle_loads() {
    let b = tiny(|_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.steps[0].from, Version::new(1, 0));
    assert_eq!(b.min_server_version, Some(130_000));
}

#[test]
fn unknown_keys_are_errors_not_silently_ignored() {
    refused(
        tiny(|p| replace(p, "bundle.toml", "min_server_version", "min_sever_version")),
        "bundle.toml",
        3,
        "min_sever_version",
    );
}

#[test]
fn toml_syntax_errors_name_their_line() {
    refused(
        tiny(|p| {
            replace(
                p,
                "bundle.toml",
                "name = \"tiny_v{major}\"",
                "name = \"tiny_v{major}",
            )
        }),
        "bundle.toml",
        7,
        "",
    );
}

#[test]
fn versions_must_be_numbers() {
    refused(
        tiny(|p| replace(p, "bundle.toml", "from = \"1\"", "from = \"v1\"")),
        "bundle.toml",
        18,
        "\"v1\" is not a version",
    );
}

#[test]
fn steps_must_not_skip_a_version() {
    refused(
        tiny(|p| replace(p, "bundle.toml", "to = \"2\"", "to = \"3\"")),
        "bundle.toml",
        17,
        "skips a version",
    );
}

#[test]
fn steps_must_be_consecutive() {
    refused(
        tiny(|p| {
            replace(
                p,
                "bundle.toml",
                "from = \"1\"\nto = \"2\"",
                "from = \"2\"\nto = \"3\"",
            )
        }),
        "bundle.toml",
        17,
        "out of order",
    );
}

#[test]
fn missing_scripts_are_named_at_their_manifest_line() {
    refused(
        tiny(|p| std::fs::remove_file(p.join("v1-v2.sql")).expect("rm")),
        "bundle.toml",
        20,
        "v1-v2.sql does not exist",
    );
}

#[test]
fn paths_may_not_leave_the_bundle() {
    refused(
        tiny(|p| replace(p, "bundle.toml", "\"v1.sql\"", "\"../v1.sql\"")),
        "bundle.toml",
        15,
        "inside the bundle directory",
    );
}

#[test]
fn a_malformed_directive_in_a_script_is_an_error_with_its_line() {
    refused(
        tiny(|p| {
            replace(
                p,
                "v1-v2.sql",
                "CREATE TABLE",
                "#IfNotTabel tiny.t\nCREATE TABLE",
            )
        }),
        "v1-v2.sql",
        2,
        "IfNotTabel",
    );
}

#[test]
fn a_block_without_endif_names_its_opening_line() {
    refused(
        tiny(|p| {
            replace(
                p,
                "v1-v2.sql",
                "CREATE TABLE",
                "-- #IfNotTable tiny.t\nCREATE TABLE",
            )
        }),
        "v1-v2.sql",
        2,
        "EndIf",
    );
}

#[test]
fn an_unsupported_backslash_command_is_refused() {
    refused(
        tiny(|p| {
            replace(
                p,
                "v1.sql",
                "CREATE SCHEMA tiny;",
                "CREATE SCHEMA tiny;\n\\connect other",
            )
        }),
        "v1.sql",
        2,
        "connect",
    );
}

#[test]
fn single_transaction_steps_may_not_manage_transactions() {
    refused(
        tiny(|p| {
            replace(
                p,
                "bundle.toml",
                "scripts = [\"v1-v2.sql\"]",
                "scripts = [\"v1-v2.sql\"]\nsingle_transaction = true",
            )
        }),
        "v1-v2.sql",
        1,
        "single_transaction",
    );
}

#[test]
fn every_major_version_needs_a_reference_fingerprint() {
    let err =
        tiny(|p| replace(p, "bundle.toml", "\"2\" = \"fp2.txt\"\n", "")).expect_err("refused");
    assert!(
        err.to_string().contains("no reference for version 2"),
        "{err}"
    );
}

#[test]
fn an_empty_reference_fingerprint_says_how_to_make_one() {
    refused(
        tiny(|p| std::fs::write(p.join("fp2.txt"), "").expect("write")),
        "bundle.toml",
        24,
        "pgstep fingerprint --full",
    );
}

#[test]
fn unknown_placeholders_in_scripts_are_errors() {
    refused(
        tiny(|p| {
            replace(
                p,
                "v1-v2.sql",
                "CREATE TABLE tiny.t (id int);",
                "CREATE TABLE tiny.t (id int);\nGRANT SELECT ON tiny.t TO @READER@;",
            )
        }),
        "v1-v2.sql",
        3,
        "READER",
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let err = tiny(|p| {
        replace(
            p,
            "bundle.toml",
            "naming = \"versioned\"",
            "naming = \"versionned\"",
        );
        replace(p, "bundle.toml", "to = \"2\"", "to = \"3\"");
    })
    .expect_err("refused");
    assert!(err.problems.len() >= 2, "{err}");
}

#[test]
fn a_directory_without_a_manifest_is_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = bundle::load(dir.path()).expect_err("refused");
    assert!(err.to_string().contains("no bundle.toml here"), "{err}");
}

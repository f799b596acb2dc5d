//! Contender "manual": the procedure as the source documents describe it (seeds 000, 001, 003),
//! strictly one command after the other as a sysadmin types them:
//!
//! 1. `pg_dump -Fc` of the source (the backup),
//! 2. `createdb -T source target` (the clone),
//! 3. `psql -v ON_ERROR_STOP=1 -f` of each script of the step on the target, in the order
//!    pgstep runs them,
//! 4. `pgstep fingerprint --database target --bundle …` (the check GNUmed's procedure ends with).
//!
//! Connection settings reach the programs through PGHOST/PGPORT/PGUSER only.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::psql::{psql_file, run_timed, substituted_copy};
use crate::workload::Workload;

/// One timed part of a contender's downtime.
pub struct Part {
    pub name: String,
    pub took: Duration,
}

pub struct Manual {
    pub parts: Vec<Part>,
    /// Wall time from the start of pg_dump to the end of the fingerprint check.
    pub total: Duration,
    pub dump_bytes: u64,
    /// What `pgstep fingerprint` said about the target ("matches clinic version 2 …").
    pub fingerprint: String,
}

/// Runs the manual procedure from `source` (at version 1) to a new database `target`.
pub fn run(w: &Workload, source: &str, target: &str) -> Manual {
    // Not timed: the sysadmin prepares the substituted scripts before the downtime.
    let bundle_dir = w.scratch().join("manual-bundle");
    substituted_copy(&w.bundle.root, &bundle_dir, &w.placeholders(target));
    let dump = w.scratch().join("manual.dump");
    let step = w.bundle.step_from(1).expect("the sample has a step 1 → 2");

    let started = Instant::now();
    let mut parts = Vec::new();
    let mut pg_dump = Command::new(w.tool("pg_dump"));
    pg_dump.args(["-Fc", "-f"]).arg(&dump).arg(source);
    parts.push(part("pg_dump -Fc", w, &mut pg_dump).0);

    let mut createdb = Command::new(w.tool("createdb"));
    createdb.args(["-T", source, target]);
    parts.push(part("createdb -T", w, &mut createdb).0);

    for script in &step.scripts {
        let mut psql = psql_file(&w.tool("psql"), &bundle_dir, target, &script.path);
        let name = format!("psql -f {}", script.path.display());
        parts.push(part(&name, w, &mut psql).0);
    }

    let mut check = Command::new(env!("CARGO_BIN_EXE_pgstep"));
    check
        .args(["fingerprint", "--database", target, "--bundle"])
        .arg(&w.bundle.root);
    let (checked, out) = part("pgstep fingerprint", w, &mut check);
    parts.push(checked);
    let total = started.elapsed();

    let fingerprint = String::from_utf8_lossy(&out.stdout)
        .trim()
        .replace('\n', "; ");
    assert!(
        fingerprint.contains("matches clinic version 2"),
        "the manual procedure did not reach the v2 schema: {fingerprint}"
    );
    let dump_bytes = std::fs::metadata(&dump).map_or(0, |m| m.len());
    std::fs::remove_file(&dump).expect("remove the manual dump");
    Manual {
        parts,
        total,
        dump_bytes,
        fingerprint,
    }
}

/// Runs one client program against the cluster and times it.
fn part(name: &str, w: &Workload, cmd: &mut Command) -> (Part, std::process::Output) {
    w.client_env(cmd);
    let (took, out) = run_timed(name, cmd);
    let part = Part {
        name: name.to_owned(),
        took,
    };
    (part, out)
}

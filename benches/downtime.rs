//! `cargo bench --bench downtime`: pgstep's downtime against the manual procedure and against
//! the physical floor, on the sample application scaled up (issue 5). Run on demand, not in CI.
//! It prints figures and the targets beside them; it asserts nothing about speed (it
//! stops only when something fails outright, e.g. an upgrade that does not reach version 2).
//!
//! Scale: `PGSTEP_BENCH_SCALE` = patients of the sample application (default 2,900,000, a
//! database of about 2.0 GB; 100,000 patients are about 75 MB). Each patient has 0 to 8
//! encounters (4 on average); step 1 → 2 rewrites the encounter table (timestamp →
//! timestamptz, text → numeric through a PL/pgSQL function).
//!
//! What it does, in one throw-away cluster (fsync off, socket only; as root the server runs as
//! `postgres`):
//! 1. builds the source at version 1 and VACUUMs it; every contender gets an identical copy
//!    (`CREATE DATABASE … TEMPLATE`, timed but not counted, followed by a CHECKPOINT);
//! 2. contender "manual" (manual.rs): pg_dump, createdb -T, psql -f of each script, fingerprint;
//! 3. contender "pgstep" (pgstep_cli.rs): `pgstep upgrade --headless --yes --json`;
//! 4. the floor (workload.rs): the source's files copied once;
//! 5. further lines (extras.rs): fingerprint of a 10,000-table schema, the statement runner
//!    against psql; the wizard has its own benchmark (`cargo bench --bench wizard`).
//!
//! The machine is whatever it runs on: other load on it shows in the figures (the header prints
//! the load average before and after).

// The parts live in benches/downtime/ (not beside this file, where Cargo would take each for a
// benchmark of its own).
#[path = "downtime/extras.rs"]
mod extras;
#[path = "downtime/manual.rs"]
mod manual;
#[path = "downtime/pgstep_cli.rs"]
mod pgstep_cli;
#[path = "downtime/psql.rs"]
mod psql;
#[path = "downtime/workload.rs"]
mod workload;

use std::time::Duration;

use extras::{FingerprintBench, RunnerBench, median};
use manual::{Manual, Part};
use pgstep_cli::PgstepRun;
use workload::{Floor, SOURCE, Workload};

/// Patients of the sample at the default scale: about 2.0 GB (pg_database_size; 2,500,000
/// patients make 1.72 GB, 250,000 make 189 MB).
const DEFAULT_PATIENTS: u64 = 2_900_000;
/// Tables of the wide schema of line (a).
const WIDE_TABLES: usize = 10_000;
/// Runs of each side of line (b), alternating which goes first (each run is a fresh copy and
/// the step 1 → 2: about a minute and a half at the default scale).
const RUNNER_RUNS: usize = 3;

// The targets of issue 5.
const TARGET_RATIO: f64 = 0.6;
const TARGET_OWN_CPU: f64 = 0.03;
const TARGET_FINGERPRINT: Duration = Duration::from_secs(1);
const TARGET_RUNNER: f64 = 0.05;

fn main() {
    let patients = scale();
    let mut w = Workload::start();
    print_header(&mut w, patients);

    println!("\nworkload");
    progress("building the source");
    let build = w.build_source(patients);
    print_source(&mut w, patients, build);
    let manual = run_manual(&mut w);
    let pgstep = run_pgstep(&mut w);
    progress("copying the files once (the floor)");
    let floor = w.floor();
    print_side_by_side(&manual, &pgstep);
    print_pgstep_details(&pgstep);
    print_floor(&floor, &manual, &pgstep);

    println!("\nfurther lines");
    progress("fingerprint of a wide schema");
    let fingerprint = extras::fingerprint_wide(&mut w, WIDE_TABLES);
    print_fingerprint(&fingerprint);
    progress("statement runner against psql -f");
    let runner = extras::runner_vs_psql(&mut w, RUNNER_RUNS);
    print_runner(&runner);
    println!("  (c) the wizard's frame time and key latency: see cargo bench --bench wizard");

    print_targets(&manual, &pgstep, &fingerprint, &runner);
    print_bound(&manual, &floor);
    println!("\nload average at the end: {}", load_average());
}

/// Contender "manual" on its own copy of the source; both databases dropped afterwards.
fn run_manual(w: &mut Workload) -> Manual {
    let copy = w.copy_source("manual_v1");
    row(
        "copy for \"manual\" (CREATE DATABASE … TEMPLATE, not counted)",
        copy,
    );
    progress("the manual procedure");
    let manual = manual::run(w, "manual_v1", "manual_v2");
    w.drop_database("manual_v1");
    w.drop_database("manual_v2");
    manual
}

/// Contender "pgstep" on its own copy of the source; both databases dropped afterwards.
fn run_pgstep(w: &mut Workload) -> PgstepRun {
    let copy = w.copy_source("pgstep_v1");
    row(
        "copy for \"pgstep\" (CREATE DATABASE … TEMPLATE, not counted)",
        copy,
    );
    progress("pgstep upgrade");
    let pgstep = pgstep_cli::run(w, "pgstep_v1");
    w.drop_database("pgstep_v1");
    let target = w.bundle.naming.name_for(2);
    w.drop_database(&target);
    pgstep
}

/// What is running now, on stderr (the figures go to stdout).
fn progress(what: &str) {
    eprintln!("[{}] {what} …", chrono::Local::now().format("%H:%M:%S"));
}

/// `PGSTEP_BENCH_SCALE` (patients), or the default.
fn scale() -> u64 {
    match std::env::var("PGSTEP_BENCH_SCALE") {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse()
            .expect("PGSTEP_BENCH_SCALE is a number of patients, e.g. 20000"),
        Err(_) => DEFAULT_PATIENTS,
    }
}

fn print_header(w: &mut Workload, patients: u64) {
    println!(
        "pgstep downtime benchmark: {} patients (PGSTEP_BENCH_SCALE; default {} ≈ 2 GB)",
        thousands(patients),
        thousands(DEFAULT_PATIENTS)
    );
    println!(
        "machine: {} CPU(s), load average {}; PostgreSQL {} in {} (fsync off, socket only)",
        std::thread::available_parallelism().map_or(1, usize::from),
        load_average(),
        w.server_version(),
        w.cluster.dir().display()
    );
}

fn print_source(w: &mut Workload, patients: u64, build: Duration) {
    let size = w.size(SOURCE);
    let encounters = w.count_rows(SOURCE, "clinic.encounter");
    row("build: bootstrap v1, generate, VACUUM (ANALYZE)", build);
    println!(
        "  source \"{SOURCE}\": {}, {} patients, {} encounters",
        bytes(size),
        thousands(patients),
        thousands(u64::try_from(encounters).unwrap_or(0))
    );
}

fn print_side_by_side(manual: &Manual, pgstep: &PgstepRun) {
    println!("\ndowntime, side by side (seconds; in brackets: pgstep's steps before the downtime)");
    let mut left: Vec<(String, String)> = vec![head("manual procedure")];
    left.extend(manual.parts.iter().map(cell));
    left.push(("downtime (all of the above)".into(), secs(manual.total)));
    let downtime = downtime_steps(&pgstep.steps);
    let mut right: Vec<(String, String)> = vec![head("pgstep upgrade --headless --yes")];
    right.extend(pgstep.steps.iter().map(|p| {
        let (name, value) = cell(p);
        if downtime.contains(&p.name.as_str()) {
            (name, value)
        } else {
            (format!("({name})"), value)
        }
    }));
    right.push(("downtime (sum of its steps)".into(), secs(pgstep.downtime)));
    two_columns(&left, &right);
    println!(
        "  ratio pgstep / manual: {:.2}   (pgstep's downtime as wall-clock span: {:.2} s)",
        ratio(pgstep.downtime, manual.total),
        pgstep.span.as_secs_f64()
    );
    if let Some(line) = pgstep
        .milestones
        .iter()
        .find(|(_, what)| what.starts_with("backup: "))
    {
        let chosen = line.1.trim_start_matches("backup: ");
        println!("  pgstep's backup (--backup-format auto): {chosen}");
    }
    if let Some(line) = pgstep
        .milestones
        .iter()
        .find(|(_, what)| what.starts_with("the backup took"))
    {
        println!("  pgstep's backup: {}", line.1);
    }
    println!(
        "  backups: manual {} (pg_dump -Fc), pgstep {}; manual's check: {}",
        bytes(manual.dump_bytes),
        bytes(pgstep.backup_bytes),
        manual.fingerprint
    );
}

/// Two lists of (name, value) beside each other, their last rows (the totals) aligned.
fn two_columns(left: &[(String, String)], right: &[(String, String)]) {
    let width = |rows: &[(String, String)]| rows.iter().map(|r| r.0.chars().count()).max();
    let (lw, rw) = (width(left).unwrap_or(0), width(right).unwrap_or(0));
    let rows = left.len().max(right.len());
    // Pad the shorter list before its total, so that both totals share the last row.
    let padded = |list: &[(String, String)]| -> Vec<(String, String)> {
        let (body, total) = list.split_at(list.len().saturating_sub(1));
        let mut out = body.to_vec();
        out.resize(rows - total.len(), Default::default());
        out.extend_from_slice(total);
        out
    };
    for (l, r) in padded(left).iter().zip(padded(right).iter()) {
        let line = format!("  {:<lw$}{:>8}   │ {:<rw$}{:>8}", l.0, l.1, r.0, r.1);
        println!("{}", line.trim_end());
    }
}

/// The steps that make up pgstep's downtime.
fn downtime_steps(steps: &[Part]) -> Vec<&str> {
    steps
        .iter()
        .map(|s| s.name.as_str())
        .skip_while(|n| *n != "connected_users")
        .collect::<Vec<_>>()
        .into_iter()
        .take_while(|n| *n != "cut_over")
        .chain(std::iter::once("cut_over"))
        .collect()
}

fn print_pgstep_details(pgstep: &PgstepRun) {
    let own = pgstep.cpu.total();
    let waiting = pgstep.wall.saturating_sub(own);
    println!(
        "  pgstep process: wall {:.2} s (plan and confirmations included); own CPU {:.2} s \
         (user {:.2}, sys {:.2}) = {:.1} %; waiting on PostgreSQL, pg_dump, pg_restore {:.2} s = {:.1} %",
        pgstep.wall.as_secs_f64(),
        own.as_secs_f64(),
        pgstep.cpu.user.as_secs_f64(),
        pgstep.cpu.sys.as_secs_f64(),
        100.0 * ratio(own, pgstep.wall),
        waiting.as_secs_f64(),
        100.0 * ratio(waiting, pgstep.wall)
    );
    println!("  pgstep's timeline (seconds since start, from its --json events):");
    for (at, what) in &pgstep.milestones {
        println!("    {:>8.2}  {what}", at.as_secs_f64());
    }
}

fn print_floor(floor: &Floor, manual: &Manual, pgstep: &PgstepRun) {
    println!(
        "\nphysical floor: the source's files ({}) copied once",
        bytes(floor.bytes)
    );
    let rate = |d: Duration| floor.bytes as f64 / d.as_secs_f64().max(1e-9) / 1e6;
    println!(
        "  CREATE DATABASE … STRATEGY = FILE_COPY (checkpoint included) {:>8.2} s  ({:.0} MB/s)",
        floor.file_copy.as_secs_f64(),
        rate(floor.file_copy)
    );
    println!(
        "  cp -r base/<oid> (for reference)                             {:>8.2} s  ({:.0} MB/s)",
        floor.cp.as_secs_f64(),
        rate(floor.cp)
    );
    println!(
        "  downtime / floor (FILE_COPY): manual {:.1}×, pgstep {:.1}×",
        ratio(manual.total, floor.file_copy),
        ratio(pgstep.downtime, floor.file_copy)
    );
}

fn print_fingerprint(fp: &FingerprintBench) {
    println!(
        "  (a) fingerprint of a {}-table schema (built in {:.1} s): pgstep (one catalog query) \
         median {:.3} s of {:?}; query per table (3 queries × {} tables) median {:.3} s of {:?}",
        thousands(fp.tables as u64),
        fp.build.as_secs_f64(),
        median(&fp.one_query).as_secs_f64(),
        secs_list(&fp.one_query),
        thousands(fp.tables as u64),
        median(&fp.per_table).as_secs_f64(),
        secs_list(&fp.per_table)
    );
}

fn print_runner(r: &RunnerBench) {
    println!(
        "  (b) step 1 → 2 on fresh copies, bundle's session settings on both: \
         pgstep's runner median {:.2} s of {:?}; psql -f median {:.2} s of {:?}; runner {:+.1} %",
        median(&r.runner).as_secs_f64(),
        secs_list(&r.runner),
        median(&r.psql).as_secs_f64(),
        secs_list(&r.psql),
        100.0 * runner_excess(r)
    );
}

/// How much slower the runner is than psql (negative: faster).
fn runner_excess(r: &RunnerBench) -> f64 {
    ratio(median(&r.runner), median(&r.psql)) - 1.0
}

fn print_targets(manual: &Manual, pgstep: &PgstepRun, fp: &FingerprintBench, r: &RunnerBench) {
    println!("\ntargets (issue 5)");
    let ratio_now = ratio(pgstep.downtime, manual.total);
    let own = ratio(pgstep.cpu.total(), pgstep.wall);
    let fp_now = median(&fp.one_query);
    let runner_now = runner_excess(r);
    let lines = [
        (
            "downtime, pgstep / manual".to_owned(),
            format!("≤ {TARGET_RATIO:.2}×"),
            format!("{ratio_now:.2}×"),
            ratio_now <= TARGET_RATIO,
        ),
        (
            "pgstep's own CPU / its wall time".to_owned(),
            format!("≤ {:.0} %", TARGET_OWN_CPU * 100.0),
            format!("{:.1} %", own * 100.0),
            own <= TARGET_OWN_CPU,
        ),
        (
            format!("fingerprint of {} tables", thousands(fp.tables as u64)),
            format!("≤ {:.0} s", TARGET_FINGERPRINT.as_secs_f64()),
            format!("{:.3} s", fp_now.as_secs_f64()),
            fp_now <= TARGET_FINGERPRINT,
        ),
        (
            "statement runner vs psql -f".to_owned(),
            format!("≤ +{:.0} %", TARGET_RUNNER * 100.0),
            format!("{:+.1} %", runner_now * 100.0),
            runner_now <= TARGET_RUNNER,
        ),
    ];
    println!("  {:<36}{:>10}{:>12}", "", "target", "measured");
    for (what, target, measured, met) in lines {
        let verdict = if met { "met" } else { "not met" };
        println!("  {what:<36}{target:>10}{measured:>12}   {verdict}");
    }
}

/// The least downtime any tool can have that runs the same scripts on a clone, whatever it
/// overlaps: the clone's files copied once, then the scripts as fast as psql runs them (no
/// checks, a backup hidden entirely). Against it, the downtime target can be read.
fn print_bound(manual: &Manual, floor: &Floor) {
    let scripts: Duration = manual
        .parts
        .iter()
        .filter(|p| p.name.starts_with("psql -f"))
        .map(|p| p.took)
        .sum();
    let bound = floor.file_copy + scripts;
    println!(
        "  bound for any tool that runs these scripts on a clone (FILE_COPY floor {:.2} s + psql -f of the scripts {:.2} s, \
         no checks, the backup hidden): {:.2} s = {:.2}× manual",
        floor.file_copy.as_secs_f64(),
        scripts.as_secs_f64(),
        bound.as_secs_f64(),
        ratio(bound, manual.total)
    );
}

// --- formatting -----------------------------------------------------------------------------

fn row(what: &str, took: Duration) {
    println!("  {what:<62} {:>8.2} s", took.as_secs_f64());
}

fn head(title: &str) -> (String, String) {
    (title.to_owned(), String::new())
}

fn cell(p: &Part) -> (String, String) {
    (p.name.clone(), secs(p.took))
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn secs_list(times: &[Duration]) -> Vec<f64> {
    times
        .iter()
        .map(|t| (t.as_secs_f64() * 1000.0).round() / 1000.0)
        .collect()
}

fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else {
        format!("{:.1} MB", n / 1e6)
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

//! Fingerprint speed, printed as figures (not a timed test): the sample application's schema,
//! and a schema of PGSTEP_BENCH_TABLES tables (default 5,000) with columns, keys, indexes and
//! checks. Run with `cargo bench --bench fingerprint`.

use std::time::{Duration, Instant};

use pgstep::cluster::Cluster;
use pgstep::fingerprint;

fn main() {
    let tables: usize = std::env::var("PGSTEP_BENCH_TABLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let cluster = Cluster::start(None).expect("start a throw-away cluster");
    let mut admin = cluster.settings("postgres").connect(None).expect("connect");

    // The sample application at version 3.
    let bundle = pgstep::bundle::load(&pgstep::sample::source_dir()).expect("sample bundle");
    let overrides = Default::default();
    let server = cluster.settings("postgres");
    let mut quiet = |_: pgstep::events::Event| {};
    let mut ctx = pgstep::engine::Context {
        bundle: &bundle,
        server: &server,
        overrides: &overrides,
        obs: &mut quiet,
    };
    pgstep::engine::bootstrap::bootstrap(&mut ctx, "clinic_v3", None, false).expect("bootstrap");
    let mut clinic = cluster
        .settings("clinic_v3")
        .connect(None)
        .expect("connect");
    report("sample (clinic v3)", &mut clinic, &bundle.schemas);

    // A wide schema.
    admin.batch_execute("CREATE DATABASE wide").expect("create");
    let mut wide = cluster.settings("wide").connect(None).expect("connect");
    let started = Instant::now();
    wide.batch_execute("CREATE SCHEMA app").expect("schema");
    // In batches: one transaction cannot hold the locks of thousands of new tables.
    for first in (1..=tables).step_by(500) {
        let last = (first + 499).min(tables);
        wide.batch_execute(&format!(
            "DO $$ BEGIN FOR i IN {first}..{last} LOOP
               EXECUTE format('CREATE TABLE app.t%s (id bigint PRIMARY KEY, name text NOT NULL DEFAULT ''x'',
                                 amount numeric(10,2) CHECK (amount >= 0), created timestamptz DEFAULT now(),
                                 ref bigint)', i);
               EXECUTE format('CREATE INDEX t%s_name_idx ON app.t%s (name)', i, i);
             END LOOP; END $$;"
        ))
        .expect("build the wide schema");
    }
    println!(
        "built {tables} tables in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    report(&format!("{tables} tables"), &mut wide, &["app".to_owned()]);
    cluster.stop().expect("stop");
}

fn report(what: &str, client: &mut postgres::Client, schemas: &[String]) {
    const RUNS: usize = 5;
    let mut times: Vec<Duration> = Vec::new();
    let mut lines = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let fp = fingerprint::compute(client, schemas).expect("fingerprint");
        times.push(t.elapsed());
        lines = fp.lines;
    }
    times.sort();
    println!(
        "fingerprint of {what}: {lines} catalog rows; median {:.1} ms, min {:.1} ms, max {:.1} ms over {RUNS} runs",
        ms(times[RUNS / 2]),
        ms(times[0]),
        ms(times[RUNS - 1])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

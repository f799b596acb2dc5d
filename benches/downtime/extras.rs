//! The further lines: (a) pgstep's one-query fingerprint of a wide schema against the naive
//! query-per-table way; (b) pgstep's statement runner against `psql -f` on the same scripts.

use std::time::{Duration, Instant};

use pgstep::events::Event;
use pgstep::script::quote_ident;
use sha2::{Digest, Sha256};

use crate::psql::{psql_file, run_timed, substituted_copy};
use crate::workload::Workload;

/// The median of some timings.
pub fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

// --- (a) fingerprint of a wide schema -------------------------------------------------------

pub struct FingerprintBench {
    pub tables: usize,
    pub build: Duration,
    /// `pgstep::fingerprint::compute` (one catalog query), each run.
    pub one_query: Vec<Duration>,
    /// Columns, constraints and indexes queried table by table, each run.
    pub per_table: Vec<Duration>,
}

/// Builds a schema of `tables` tables (each: a primary key, a NOT NULL column with a default,
/// a CHECK, a timestamptz default and an index) in a new database and times both ways of
/// fingerprinting it.
pub fn fingerprint_wide(w: &mut Workload, tables: usize) -> FingerprintBench {
    const DB: &str = "bench_wide";
    w.exec(&format!("CREATE DATABASE {}", quote_ident(DB)));
    let mut client = w
        .settings(DB)
        .connect(None)
        .expect("connect to the wide database");
    let started = Instant::now();
    build_wide_schema(&mut client, tables);
    let build = started.elapsed();
    let schemas = ["app".to_owned()];
    let one_query = (0..5)
        .map(|_| {
            let t = Instant::now();
            pgstep::fingerprint::compute(&mut client, &schemas).expect("fingerprint");
            t.elapsed()
        })
        .collect();
    let per_table = (0..3)
        .map(|_| {
            let t = Instant::now();
            fingerprint_per_table(&mut client);
            t.elapsed()
        })
        .collect();
    drop(client);
    w.drop_database(DB);
    FingerprintBench {
        tables,
        build,
        one_query,
        per_table,
    }
}

fn build_wide_schema(client: &mut postgres::Client, tables: usize) {
    client.batch_execute("CREATE SCHEMA app").expect("schema");
    // In batches: one transaction cannot hold the locks of thousands of new tables.
    for first in (1..=tables).step_by(500) {
        let last = (first + 499).min(tables);
        client
            .batch_execute(&format!(
                "DO $$ BEGIN FOR i IN {first}..{last} LOOP
                   EXECUTE format('CREATE TABLE app.t%s (id bigint PRIMARY KEY, name text NOT NULL DEFAULT ''x'',
                                     amount numeric(10,2) CHECK (amount >= 0), created timestamptz DEFAULT now(),
                                     ref bigint)', i);
                   EXECUTE format('CREATE INDEX t%s_name_idx ON app.t%s (name)', i, i);
                 END LOOP; END $$;"
            ))
            .expect("build the wide schema");
    }
}

/// The naive way: list the tables, then three catalog queries per table (prepared once), hashed.
/// It covers less than pgstep's fingerprint (no views, functions, sequences, types), so its time
/// is a lower bound for a complete query-per-object fingerprint.
fn fingerprint_per_table(client: &mut postgres::Client) -> String {
    let columns = client
        .prepare(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                    pg_get_expr(d.adbin, d.adrelid) \
               FROM pg_attribute a \
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
              WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        )
        .expect("prepare the column query");
    let constraints = client
        .prepare(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
              WHERE conrelid = $1 ORDER BY conname",
        )
        .expect("prepare the constraint query");
    let indexes = client
        .prepare(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index \
              WHERE indrelid = $1 ORDER BY indexrelid::regclass::text",
        )
        .expect("prepare the index query");
    let tables = client
        .query(
            "SELECT c.oid, c.relname::text FROM pg_class c \
              WHERE c.relnamespace = 'app'::regnamespace AND c.relkind = 'r' ORDER BY c.relname",
            &[],
        )
        .expect("list the tables");
    let mut hash = Sha256::new();
    for table in tables {
        let (oid, name): (u32, String) = (table.get(0), table.get(1));
        hash.update(name.as_bytes());
        for row in client.query(&columns, &[&oid]).expect("columns") {
            let (col, ty, not_null, default): (String, String, bool, Option<String>) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            hash.update(format!("{col} {ty} {not_null} {default:?}\n").as_bytes());
        }
        for row in client.query(&constraints, &[&oid]).expect("constraints") {
            let (con, def): (String, String) = (row.get(0), row.get(1));
            hash.update(format!("{con} {def}\n").as_bytes());
        }
        for row in client.query(&indexes, &[&oid]).expect("indexes") {
            hash.update(row.get::<_, String>(0).as_bytes());
        }
    }
    pgstep::hex::encode(&hash.finalize())
}

// --- (b) the statement runner against psql -f -----------------------------------------------

pub struct RunnerBench {
    pub runner: Vec<Duration>,
    pub psql: Vec<Duration>,
}

/// Step 1 → 2 on fresh copies of the source, `runs` times each way, alternating which goes
/// first. Both get the bundle's session settings (psql through PGOPTIONS), so that only the
/// runners differ; loading and substituting the scripts is not timed.
pub fn runner_vs_psql(w: &mut Workload, runs: usize) -> RunnerBench {
    let mut bench = RunnerBench {
        runner: Vec::new(),
        psql: Vec::new(),
    };
    for run in 0..runs {
        if run.is_multiple_of(2) {
            bench
                .runner
                .push(with_fresh_copy(w, "bench_runner", time_runner));
            bench.psql.push(with_fresh_copy(w, "bench_psql", time_psql));
        } else {
            bench.psql.push(with_fresh_copy(w, "bench_psql", time_psql));
            bench
                .runner
                .push(with_fresh_copy(w, "bench_runner", time_runner));
        }
    }
    bench
}

/// Runs `f` on a fresh copy of the source, checks that it reached version 2, drops the copy.
fn with_fresh_copy(w: &mut Workload, db: &str, f: fn(&Workload, &str) -> Duration) -> Duration {
    w.copy_source(db);
    let took = f(w, db);
    assert_eq!(w.version_of(db), "2.0", "step 1 → 2 on {db}");
    w.drop_database(db);
    took
}

/// pgstep's runner: one session per script with the bundle's settings, as the engine does.
fn time_runner(w: &Workload, db: &str) -> Duration {
    let step = w.bundle.step_from(1).expect("the sample has a step 1 → 2");
    let mut quiet = |_: Event| {};
    let scripts = w
        .context(&mut quiet)
        .reload(&step.scripts, &w.placeholders(db))
        .expect("load the step's scripts");
    let started = Instant::now();
    for script in &scripts {
        let mut session =
            pgstep::db::Session::open(&w.settings(db), &w.bundle.session).expect("open a session");
        pgstep::db::runner::run_script(&mut session, script, &mut quiet)
            .unwrap_or_else(|e| panic!("{}: {e}", script.path.display()));
    }
    started.elapsed()
}

/// `psql -f` of each substituted script, one psql per file.
fn time_psql(w: &Workload, db: &str) -> Duration {
    let step = w.bundle.step_from(1).expect("the sample has a step 1 → 2");
    let dir = w.scratch().join(format!("psql-bundle-{db}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove an old substituted bundle");
    }
    substituted_copy(&w.bundle.root, &dir, &w.placeholders(db));
    let options: Vec<String> = w
        .bundle
        .session
        .iter()
        .map(|(name, value)| format!("-c {name}={}", value.replace(' ', "\\ ")))
        .collect();
    let started = Instant::now();
    for script in &step.scripts {
        let mut psql = psql_file(&w.tool("psql"), &dir, db, &script.path);
        w.client_env(&mut psql);
        psql.env("PGOPTIONS", options.join(" "));
        run_timed("psql -f", &mut psql);
    }
    started.elapsed()
}

//! `pgstep demo`: a throw-away PostgreSQL cluster, the sample clinic application bootstrapped at
//! version 1 with data, upgraded to version 2 with the full clone-and-upgrade procedure, and
//! the result shown. Nothing outside the cluster's temporary directory is touched.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::bundle::{self, Version};
use crate::cluster::Cluster;
use crate::engine::bootstrap::bootstrap;
use crate::engine::upgrade::{UpgradeOptions, upgrade};
use crate::engine::{Context, EngineError};
use crate::headless::Printer;
use crate::{db, exit, fingerprint, sample};

pub struct DemoOptions {
    pub patients: u64,
    pub keep: bool,
}

/// Runs the demo and returns the exit code.
pub fn run(opts: &DemoOptions, printer: &mut Printer) -> i32 {
    let started = Instant::now();
    printer.say("pgstep demo: a throw-away PostgreSQL cluster with the sample \"clinic\" application at version 1, upgraded to version 2.");
    let mut cluster = match Cluster::start(None) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pgstep: {e}");
            // Missing programs or user: nothing was started or changed.
            return match e {
                crate::cluster::ClusterError::Failed { .. } => exit::FAILED,
                _ => exit::REFUSED,
            };
        }
    };
    printer.say(&format!(
        "cluster: PostgreSQL from {}, socket in {}",
        cluster.bin_dir().display(),
        cluster.socket_dir().display()
    ));
    let code = match demo(&cluster, opts, printer) {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            eprintln!("pgstep: the demo failed: {e}");
            match e {
                EngineError::Refused(_) => exit::REFUSED,
                EngineError::Failed(_) => exit::FAILED,
            }
        }
    };
    if opts.keep {
        cluster.keep();
        printer.say(&format!(
            "\nThe cluster keeps running. Connect with:\n  {}\nStop it with:\n  {}",
            cluster.psql_command("clinic_v2"),
            cluster.stop_command()
        ));
    } else if let Err(e) = cluster.stop() {
        eprintln!("pgstep: {e}");
    }
    printer.say(&format!(
        "demo finished in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    code
}

fn demo(cluster: &Cluster, opts: &DemoOptions, printer: &mut Printer) -> Result<(), EngineError> {
    let refused =
        |e: std::io::Error| EngineError::Refused(format!("cannot write the sample bundle: {e}"));
    let root = sample::write_bundle(&cluster.dir().join("bundle")).map_err(refused)?;
    let bundle = bundle::load(&root).map_err(|e| EngineError::Refused(e.to_string()))?;
    let server = cluster.settings("postgres");
    let overrides = BTreeMap::new();
    let mut ctx = Context {
        bundle: &bundle,
        server: &server,
        overrides: &overrides,
        obs: printer,
    };

    let t = Instant::now();
    bootstrap(&mut ctx, "clinic_v1", Some(Version::new(1, 0)), false)?;
    let mut session = ctx.session("clinic_v1")?;
    crate::events::phase(ctx.obs, format!("sample data: {} patients", opts.patients));
    sample::generate(&mut session, &root, opts.patients, ctx.obs)
        .map_err(|e| EngineError::Refused(e.to_string()))?;
    let size = db::clone::database_size(&mut session.client, "clinic_v1")?;
    drop(session);
    ctx.info(format!(
        "clinic_v1 ready: {} MB, in {:.1} s",
        size / 1_000_000,
        t.elapsed().as_secs_f64()
    ));

    let outcome = upgrade(
        &mut ctx,
        &UpgradeOptions {
            database: Some("clinic_v1".into()),
            to: Some(Version::new(2, 0)),
            ..UpgradeOptions::default()
        },
    )?;
    let mut lines = vec![
        String::new(),
        format!(
            "Upgraded clinic_v1 (version {}) to {} (version {}) in {:.1} s:",
            outcome.plan.from,
            outcome.new_database,
            outcome.plan.to,
            outcome.elapsed.as_secs_f64()
        ),
        format!(
            "  fingerprint before  sha256:{}",
            outcome.source_fingerprint
        ),
        format!(
            "  fingerprint after   sha256:{}",
            outcome.target_fingerprint
        ),
    ];
    for s in &outcome.steps {
        lines.push(format!(
            "  step {} → {}: {} scripts, {} statements, {:.1} s",
            s.from,
            s.to,
            s.scripts,
            s.statements,
            s.elapsed.as_secs_f64()
        ));
    }
    for c in &outcome.checks {
        lines.push(format!(
            "  [{}] {}: {}",
            if c.ok { "ok" } else { "FAILED" },
            c.name,
            c.detail.lines().next().unwrap_or_default()
        ));
    }
    lines.push(format!(
        "  carried over to the clone: {}",
        outcome.carried_over.join(", ")
    ));
    lines.push(format!(
        "  {} stays, read-only; {} is the database users use now.",
        outcome.old_database, outcome.new_database
    ));
    let mut client = server
        .with_dbname(&outcome.new_database)
        .connect(None)
        .map_err(db::DbError::Connect)?;
    let fp = fingerprint::compute(&mut client, &bundle.schemas)
        .map_err(|e| db::DbError::query("fingerprint", e))?;
    lines.push(format!(
        "  {} objects fingerprinted in schema {}",
        fp.lines,
        bundle.schemas.join(", ")
    ));
    for l in lines {
        printer_say(ctx.obs, &l);
    }
    Ok(())
}

fn printer_say(obs: &mut dyn crate::events::Observer, line: &str) {
    crate::events::log(obs, crate::events::Level::Info, line);
}

//! A new database at a chosen version: the baseline's scripts, then each step in order (GNUmed:
//! "bootstrapping a fully new database mainly consists of applying all upgrades in order").

use std::time::{Duration, Instant};

use postgres::Client;
use serde::Serialize;

use super::{
    ApplyError, Context, EngineError, Failure, StepReport, apply_step, check_server_version,
};
use crate::bundle::{Step, Version};
use crate::db::bookkeeping::{HistoryEntry, record_history};
use crate::db::clone::{database_exists, drop_database, exec_format};
use crate::db::runner::run_script;
use crate::db::version::read_version;
use crate::db::{DbError, describe};
use crate::events::{Event, Level, log, phase};
use crate::fingerprint;
use crate::script::Script;

#[derive(Debug, Clone, Serialize)]
pub struct BootstrapOutcome {
    pub database: String,
    pub version: Version,
    pub fingerprint: String,
    pub steps: Vec<StepReport>,
    #[serde(with = "super::secs")]
    pub elapsed: Duration,
}

/// Creates `db` and brings it to `to` (default: the newest major version). The database must
/// not exist; on failure it is dropped again (unless `keep_failed`).
pub fn bootstrap(
    ctx: &mut Context<'_>,
    db: &str,
    to: Option<Version>,
    keep_failed: bool,
) -> Result<BootstrapOutcome, EngineError> {
    let started = Instant::now();
    let bundle = ctx.bundle;
    phase(ctx.obs, "plan");
    let target = check_target(bundle, to)?;
    let mut maint = ctx.maintenance()?;
    check_server_version(&mut maint, bundle)?;
    if database_exists(&mut maint, db)? {
        return Err(EngineError::Refused(format!(
            "database \"{db}\" already exists: pgstep bootstrap creates a new database and never touches an existing one"
        )));
    }
    let placeholders = ctx.placeholders(db)?;
    let baseline_scripts = ctx.reload(&bundle.baseline.scripts, &placeholders)?;
    let steps: Vec<&Step> = bundle.steps.iter().filter(|s| s.to <= target).collect();
    let step_scripts = steps
        .iter()
        .map(|s| ctx.reload(&s.scripts, &placeholders))
        .collect::<Result<Vec<_>, _>>()?;

    phase(ctx.obs, "create");
    exec_format(&mut maint, "CREATE DATABASE %I", &[db])
        .map_err(|e| DbError::query(format!("create database {db}"), e))?;
    let result = (|| -> Result<(String, Vec<StepReport>), ApplyError> {
        run_baseline(ctx, db, &baseline_scripts)?;
        let mut reports = Vec::new();
        for (step, scripts) in steps.iter().zip(&step_scripts) {
            reports.push(apply_step(
                ctx,
                step,
                scripts,
                db,
                &crate::cancel::Cancel::new(),
            )?);
        }
        let fingerprint = verify(ctx, db, target)?;
        Ok((fingerprint, reports))
    })();
    match result {
        Ok((fingerprint, steps)) => Ok(BootstrapOutcome {
            database: db.to_owned(),
            version: target,
            fingerprint,
            steps,
            elapsed: started.elapsed(),
        }),
        Err(what) => Err(failed(&mut maint, db, &what, keep_failed)),
    }
}

/// The version to bootstrap: `to`, or the newest major version; refused unless it is a major
/// version the bundle can reach from its baseline.
fn check_target(
    bundle: &crate::bundle::Bundle,
    to: Option<Version>,
) -> Result<Version, EngineError> {
    let target = to.unwrap_or_else(|| bundle.latest_major());
    let baseline = bundle.baseline.version;
    if target.minor != 0 || target < baseline.major_only() || target > bundle.latest_major() {
        return Err(EngineError::Refused(format!(
            "--to {target}: bundle \"{}\" can bootstrap major versions {} to {}",
            bundle.name,
            baseline.major,
            bundle.latest_major()
        )));
    }
    Ok(target)
}

/// The baseline scripts on the new database; the version marker must then say the baseline.
fn run_baseline(ctx: &mut Context<'_>, db: &str, scripts: &[Script]) -> Result<(), ApplyError> {
    let bundle = ctx.bundle;
    let baseline = bundle.baseline.version;
    phase(ctx.obs, format!("baseline {baseline}"));
    let mut session = ctx.session(db)?;
    for script in scripts {
        log(
            ctx.obs,
            Level::Info,
            format!("running {}", script.path.display()),
        );
        run_script(&mut session, script, ctx.obs)?;
    }
    let found = read_version(&mut session.client, &bundle.version_query, db)?;
    if found.major != baseline.major {
        return Err(ApplyError::Other(format!(
            "after the baseline scripts the version marker says {found}, not {baseline}: the bundle is faulty"
        )));
    }
    Ok(())
}

/// The new database's fingerprint against the reference for `target`, and its history
/// written; returns the fingerprint's hash.
fn verify(ctx: &mut Context<'_>, db: &str, target: Version) -> Result<String, ApplyError> {
    let bundle = ctx.bundle;
    phase(ctx.obs, "verify");
    let mut session = ctx.session(db)?;
    let fp = fingerprint::compute(&mut session.client, &bundle.schemas)
        .map_err(|e| ApplyError::Other(describe(&e)))?;
    let ok = bundle
        .reference_for(target)
        .is_some_and(|(_, r)| r.hash == fp.hash);
    ctx.obs.event(Event::Check {
        name: "fingerprint".into(),
        ok,
        detail: if ok {
            format!("{} matches version {target}", fp.display_hash())
        } else {
            format!(
                "{} does not match the reference for version {target}",
                fp.display_hash()
            )
        },
    });
    if !ok {
        let diff = bundle
            .reference_for(target)
            .map(|(_, r)| fingerprint::diff(&r.text, &fp.text).to_string())
            .unwrap_or_default();
        return Err(ApplyError::Other(format!(
            "the new database's schema differs from the bundle's reference for version {target}:\n{diff}"
        )));
    }
    record_history(
        &mut session.client,
        &HistoryEntry {
            action: "bootstrap",
            to_version: target.to_string(),
            bundle: &bundle.name,
            bundle_sha256: &bundle.sha256,
            ..HistoryEntry::default()
        },
    )?;
    Ok(fp.hash)
}

/// A bootstrap that failed: the unfinished database dropped (unless kept, as asked).
fn failed(maint: &mut Client, db: &str, what: &ApplyError, keep_failed: bool) -> EngineError {
    let mut failure = Failure {
        what: format!("bootstrapping \"{db}\" failed: {what}"),
        at: what.location().cloned(),
        ..Failure::default()
    };
    if keep_failed {
        failure.advice.push(format!(
            "The unfinished database \"{db}\" was kept, as asked."
        ));
    } else {
        match drop_database(maint, db) {
            Ok(()) => failure
                .undone
                .push(format!("dropped the unfinished database \"{db}\"")),
            Err(e) => failure.advice.push(format!(
                "Could not drop the unfinished database \"{db}\": {e}"
            )),
        }
    }
    EngineError::Failed(failure)
}

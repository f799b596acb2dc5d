//! Clone-and-upgrade (GNUmed's procedure, seeds/000 and 001): the source database is cloned
//! with `CREATE DATABASE … TEMPLATE`, the bundle's steps run on the clone, the clone is verified,
//! and only then does it become the database users connect to. The source is never written to,
//! except to be made read-only (and, with fixed naming, renamed aside) after success.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::SESSION_GRACE;
use super::plan::{Mode, UpgradePlan, plan_upgrade};
use super::{
    Context, EngineError, Failure, StepReport, apply_step, check_fingerprint, check_server_version,
    find_source, run_prechecks,
};
use crate::bundle::Version;
use crate::db::bookkeeping::{HistoryEntry, record_history};
use crate::db::checks::{CheckResult, plausibility};
use crate::db::clone::{
    carry_over, create_clone, database_exists, drop_database, rename_database, set_read_only,
};
use crate::db::sessions::other_sessions_settled;
use crate::db::version::read_version;
use crate::db::{DbError, describe};
use crate::events::{Event, Level, log, phase};
use crate::fingerprint::{self, Fingerprint, diff};

/// What the operator asked for.
#[derive(Debug, Clone, Default)]
pub struct UpgradeOptions {
    /// The source database; found from the bundle's naming when absent.
    pub database: Option<String>,
    pub to: Option<Version>,
    /// Proceed although the source's fingerprint differs from the reference (recorded).
    pub override_schema_check: bool,
    /// Keep a failed clone for inspection instead of dropping it.
    pub keep_failed: bool,
    pub rehearsal: bool,
}

/// A finished upgrade.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeOutcome {
    pub plan: UpgradePlan,
    /// The database users should use now.
    pub new_database: String,
    /// The old database, read-only.
    pub old_database: String,
    pub source_fingerprint: String,
    pub target_fingerprint: String,
    pub fingerprint_overridden: bool,
    pub steps: Vec<StepReport>,
    pub checks: Vec<CheckResult>,
    pub carried_over: Vec<String>,
    #[serde(with = "super::secs")]
    pub elapsed: Duration,
}

/// Upgrades the application's database as the checklist says. On any failure after the clone
/// was made, the clone is dropped (unless kept on request) and the source is as it was.
pub fn upgrade(
    ctx: &mut Context<'_>,
    opts: &UpgradeOptions,
) -> Result<UpgradeOutcome, EngineError> {
    let started = Instant::now();
    let prepared = prepare(ctx, opts)?;
    let mut undo = Undo::default();
    match run(ctx, opts, &prepared, &mut undo) {
        Ok(mut outcome) => {
            outcome.elapsed = started.elapsed();
            Ok(outcome)
        }
        Err(what) => Err(undo.fail(ctx, opts, &prepared.plan, what)),
    }
}

/// Everything decided and checked before the first change.
struct Prepared {
    plan: UpgradePlan,
    scripts: Vec<Vec<crate::script::Script>>,
    source_fingerprint: Fingerprint,
    overridden: bool,
}

fn prepare(ctx: &mut Context<'_>, opts: &UpgradeOptions) -> Result<Prepared, EngineError> {
    let bundle = ctx.bundle;
    phase(ctx.obs, "plan");
    let mut maint = ctx.maintenance()?;
    check_server_version(&mut maint, bundle)?;
    let source = match &opts.database {
        Some(db) => db.clone(),
        None => find_source(&mut maint, bundle)?,
    };
    if !database_exists(&mut maint, &source)? {
        return Err(EngineError::Refused(format!(
            "database \"{source}\" does not exist on {}: check the name (psql -l lists them)",
            ctx.server.host_display()
        )));
    }
    let mut session = ctx.session(&source)?;
    let current = read_version(&mut session.client, &bundle.version_query, &source)?;
    let mode = if opts.rehearsal {
        Mode::Rehearsal
    } else {
        Mode::Production
    };
    let plan = plan_upgrade(bundle, &source, current, opts.to, mode)
        .map_err(|e| EngineError::Refused(e.to_string()))?;
    ctx.info(format!(
        "{} {}: database \"{source}\" is at version {current}; upgrading to {} as \"{}\"",
        bundle.name,
        ctx.server.host_display(),
        plan.to,
        plan.final_db
    ));
    for name in [
        Some(&plan.work_db),
        Some(&plan.final_db).filter(|f| **f != plan.source_db),
        plan.aside_db.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if database_exists(&mut maint, name)? {
            return Err(EngineError::Refused(format!(
                "database \"{name}\" already exists: an earlier upgrade left it, or it is in use. \
                 pgstep never overwrites a database; check what it holds, then drop or rename it"
            )));
        }
    }
    // Load every script with the real placeholder values now: a problem found here changes nothing.
    let placeholders = ctx.placeholders(&plan.work_db)?;
    let scripts = plan
        .steps
        .iter()
        .map(|&i| ctx.reload(&bundle.steps[i].scripts, &placeholders))
        .collect::<Result<Vec<_>, _>>()?;

    phase(ctx.obs, "fingerprint");
    let fp = fingerprint::compute(&mut session.client, &bundle.schemas)
        .map_err(|e| DbError::query(format!("fingerprint {source}"), e))?;
    let overridden = check_fingerprint(ctx, &fp, current, &source, opts.override_schema_check)?;

    phase(ctx.obs, "prechecks");
    run_prechecks(ctx, &mut session.client)?;

    phase(ctx.obs, "connected users");
    drop(session);
    let others = other_sessions_settled(&mut maint, &source, SESSION_GRACE)?;
    if !others.is_empty() {
        let list: Vec<String> = others.iter().map(|s| format!("  {s}")).collect();
        return Err(EngineError::Refused(format!(
            "{} other session(s) are connected to \"{source}\"; no users may be connected during the upgrade:\n{}\n\
             Ask them to log off (and stop importers and backup jobs), then run pgstep again.",
            others.len(),
            list.join("\n")
        )));
    }
    ctx.info(format!("nobody else is connected to \"{source}\""));
    Ok(Prepared {
        plan,
        scripts,
        source_fingerprint: fp,
        overridden,
    })
}

/// What has been changed so far, so that a failure can put it back.
#[derive(Default)]
struct Undo {
    clone_created: bool,
}

impl Undo {
    fn fail(
        self,
        ctx: &mut Context<'_>,
        opts: &UpgradeOptions,
        plan: &UpgradePlan,
        what: String,
    ) -> EngineError {
        let mut failure = Failure {
            what: format!("the upgrade of \"{}\" failed: {what}", plan.source_db),
            ..Failure::default()
        };
        log(ctx.obs, Level::Error, failure.what.clone());
        if self.clone_created {
            if opts.keep_failed {
                failure.advice.push(format!("The failed clone \"{}\" was kept for inspection, as asked; drop it before trying again.", plan.work_db));
            } else {
                match ctx.maintenance().map_err(|e| e.to_string()).and_then(|mut m| drop_database(&mut m, &plan.work_db).map_err(|e| e.to_string())) {
                    Ok(()) => failure.undone.push(format!("dropped the unfinished clone \"{}\"", plan.work_db)),
                    Err(e) => failure.advice.push(format!("Could not drop the unfinished clone \"{}\": {e}. Drop it by hand: DROP DATABASE \"{}\";", plan.work_db, plan.work_db)),
                }
            }
        }
        failure.advice.push(format!(
            "The source database \"{}\" was not changed: users can go on working with it as before.",
            plan.source_db
        ));
        EngineError::Failed(failure)
    }
}

fn run(
    ctx: &mut Context<'_>,
    opts: &UpgradeOptions,
    p: &Prepared,
    undo: &mut Undo,
) -> Result<UpgradeOutcome, String> {
    let plan = &p.plan;
    phase(ctx.obs, "clone");
    let mut maint = ctx.maintenance().map_err(|e| e.to_string())?;
    create_clone(&mut maint, &plan.source_db, &plan.work_db, None).map_err(|e| e.to_string())?;
    undo.clone_created = true;
    let carried =
        carry_over(&mut maint, &plan.source_db, &plan.work_db, None).map_err(|e| e.to_string())?;
    ctx.info(format!(
        "cloned \"{}\" into \"{}\" and carried over: {}",
        plan.source_db,
        plan.work_db,
        carried.actions.join(", ")
    ));

    let mut steps = Vec::new();
    for (n, &i) in plan.steps.iter().enumerate() {
        steps.push(apply_step(
            ctx,
            &ctx.bundle.steps[i],
            &p.scripts[n],
            &plan.work_db,
            &crate::cancel::Cancel::new(),
        )?);
    }

    phase(ctx.obs, "sanity checks");
    let (target_fp, checks) = verify(ctx, plan)?;
    let mut work = ctx.session(&plan.work_db).map_err(|e| e.to_string())?;
    record_history(
        &mut work.client,
        &HistoryEntry {
            action: if opts.rehearsal {
                "rehearsal"
            } else {
                "upgrade"
            },
            from_version: Some(plan.from.to_string()),
            to_version: plan.to.to_string(),
            source_database: Some(&plan.source_db),
            bundle: &ctx.bundle.name,
            bundle_sha256: &ctx.bundle.sha256,
            source_fingerprint: Some(&p.source_fingerprint.hash),
            fingerprint_override: p.overridden,
            note: None,
        },
    )
    .map_err(|e| e.to_string())?;
    drop(work);

    phase(ctx.obs, "cut-over");
    let old = cut_over(ctx, &mut maint, plan)?;
    Ok(UpgradeOutcome {
        plan: plan.clone(),
        new_database: plan.final_db.clone(),
        old_database: old,
        source_fingerprint: p.source_fingerprint.hash.clone(),
        target_fingerprint: target_fp.hash,
        fingerprint_overridden: p.overridden,
        steps,
        checks,
        carried_over: carried.actions,
        elapsed: Duration::ZERO,
    })
}

/// The clone's fingerprint against the reference of the target version, and the plausibility
/// pairs between the source and the clone. Any failed check fails the upgrade.
fn verify(
    ctx: &mut Context<'_>,
    plan: &UpgradePlan,
) -> Result<(Fingerprint, Vec<CheckResult>), String> {
    let mut work = ctx.session(&plan.work_db).map_err(|e| e.to_string())?;
    let fp =
        fingerprint::compute(&mut work.client, &ctx.bundle.schemas).map_err(|e| describe(&e))?;
    let mut checks = Vec::new();
    let fp_check = match ctx.bundle.reference_for(plan.to) {
        Some((v, r)) if r.hash == fp.hash => CheckResult {
            name: "target fingerprint".into(),
            ok: true,
            detail: format!("{} matches version {v}", fp.display_hash()),
        },
        Some((v, r)) => {
            let d = diff(&r.text, &fp.text);
            CheckResult {
                name: "target fingerprint".into(),
                ok: false,
                detail: format!(
                    "{} differs from the reference for version {v} in {} object(s):\n{d}",
                    fp.display_hash(),
                    d.len()
                ),
            }
        }
        None => CheckResult {
            name: "target fingerprint".into(),
            ok: false,
            detail: format!("the bundle has no reference for version {}", plan.to),
        },
    };
    checks.push(fp_check);
    let mut source = ctx.session(&plan.source_db).map_err(|e| e.to_string())?;
    for pair in ctx
        .bundle
        .plausibility
        .iter()
        .filter(|p| p.applies(plan.from, plan.to))
    {
        checks.push(plausibility(&mut source.client, &mut work.client, pair));
    }
    for c in &checks {
        ctx.obs.event(Event::Check {
            name: c.name.clone(),
            ok: c.ok,
            detail: c.detail.clone(),
        });
    }
    let failed: Vec<&CheckResult> = checks.iter().filter(|c| !c.ok).collect();
    if let Some(first) = failed.first() {
        return Err(format!(
            "{} sanity check(s) failed; first: {}: {}",
            failed.len(),
            first.name,
            first.detail
        ));
    }
    Ok((fp, checks))
}

/// Points users at the new database; the old one is kept, read-only. Returns the old one's name.
fn cut_over(
    ctx: &mut Context<'_>,
    maint: &mut postgres::Client,
    plan: &UpgradePlan,
) -> Result<String, String> {
    let old = match &plan.aside_db {
        None => plan.source_db.clone(),
        Some(aside) => {
            rename_database(maint, &plan.source_db, aside).map_err(|e| e.to_string())?;
            if let Err(e) = rename_database(maint, &plan.work_db, &plan.final_db) {
                // Put the source back under its name before the clone is dropped.
                let back = rename_database(maint, aside, &plan.source_db);
                return Err(format!(
                    "{e}{}",
                    back.err().map_or(String::new(), |b| format!(
                        "; renaming \"{aside}\" back also failed: {b}"
                    ))
                ));
            }
            ctx.info(format!(
                "renamed \"{}\" to \"{aside}\" and \"{}\" to \"{}\"",
                plan.source_db, plan.work_db, plan.final_db
            ));
            aside.clone()
        }
    };
    // The upgrade has succeeded at this point: a failure here is a warning, not a reason to undo.
    match set_read_only(maint, &old) {
        Ok(()) => ctx.info(format!(
            "\"{old}\" is kept, read-only for new sessions; users now use \"{}\"",
            plan.final_db
        )),
        Err(e) => log(
            ctx.obs,
            Level::Warning,
            format!(
                "the upgrade succeeded, but \"{old}\" could not be made read-only: {e}; do it by hand: ALTER DATABASE \"{old}\" SET default_transaction_read_only = on;"
            ),
        ),
    }
    Ok(old)
}

//! The plan step: it reads the server and the source and decides, changing nothing; then it
//! begins the run (lock, journal). An upgrade and a rehearsal plan the steps and load their
//! scripts; a fixup finds the fixups not yet recorded; a restore checks the backup; a
//! bootstrap the name of the new database.

use postgres::Client;

use crate::bundle::{Bundle, Version};
use crate::checklist::{PlanKind, PlanSummary, StepOutput, StepStatus};
use crate::db::bookkeeping::recorded_fixup;
use crate::db::clone::database_exists;
use crate::engine::check_server_version;
use crate::engine::plan::{Mode, UpgradePlan};
use crate::engine::run_prechecks;
use crate::events::Level;
use crate::executor::ctx::Ctx;
use crate::executor::error::{StepError, StepResult, refused};
use crate::executor::source_verdict;
use crate::executor::state::Source;
use crate::rehearsal::Rehearsal;
use crate::script::Script;
use crate::survey::{self, SurveyError};

pub(in crate::executor) fn run(ctx: &mut Ctx, source: &mut Source, mode: Mode) -> StepResult {
    match ctx.spec.kind {
        PlanKind::Upgrade | PlanKind::Rehearsal => upgrade(ctx, source, mode),
        PlanKind::Fixup => fixup(ctx, source, mode),
        PlanKind::Restore => restore(ctx, source, mode),
        PlanKind::Bootstrap => bootstrap(ctx, source, mode),
    }
}

/// A summary of the plan with nothing from a rehearsal and no backup choice yet.
fn summary(
    ctx: &Ctx,
    application: String,
    (source_db, target_db): (String, String),
    (from, to): (Version, Version),
    lines: Vec<String>,
) -> PlanSummary {
    PlanSummary {
        application,
        server: ctx.spec.server.host_display(),
        source_db,
        target_db,
        from,
        to,
        lines,
        run_id: None,
        journal: None,
        expected: Vec::new(),
        rehearsal: None,
        backup: None,
    }
}

/// A survey's error as a step error: a refusal where [`SurveyError::refuses`], else a failure.
fn survey_error(e: SurveyError) -> StepError {
    if e.refuses() {
        refused(e.to_string())
    } else {
        StepError::failed(e.to_string()).at(e.location())
    }
}

/// The server's version checked against the bundle (and kept), and the application database
/// found and measured.
fn locate(
    ctx: &mut Ctx,
    maint: &mut Client,
    bundle: &Bundle,
) -> Result<survey::Located, SurveyError> {
    let located = survey::locate(
        maint,
        bundle,
        &ctx.spec.server,
        ctx.spec.database.as_deref(),
    )?;
    ctx.server_version_num = located.server_version_num;
    Ok(located)
}

/// The upgrade of the database surveyed, to `--to`; refused where a database it would make
/// exists already.
fn plan_upgrade(
    ctx: &Ctx,
    maint: &mut Client,
    (bundle, survey): (&Bundle, &survey::Survey),
    mode: Mode,
) -> Result<UpgradePlan, StepError> {
    let request = survey::Request {
        to: ctx.spec.to,
        mode,
    };
    let plan = survey::plan_upgrade(bundle, survey, &request).map_err(survey_error)?;
    refuse_existing(maint, &plan, mode)?;
    Ok(plan)
}

fn upgrade(ctx: &mut Ctx, source: &mut Source, mode: Mode) -> StepResult {
    let bundle = ctx.bundle()?.clone();
    let mut maint = ctx.maintenance()?;
    let located = locate(ctx, &mut maint, &bundle).map_err(survey_error)?;
    source.size = located.size;
    // Before pgstep runs anything on the source: the run's last word on it is measured
    // against this.
    if ctx.spec.kind == PlanKind::Upgrade {
        source.before = Some(source_verdict::read_before(ctx, &located.source));
    }
    let mut session = ctx.session(&located.source)?;
    // A version query that fails or does not return one row with one column is a refusal:
    // nothing has been changed.
    let survey = located
        .read_version(&mut session.client, &bundle)
        .map_err(survey_error)?;
    let plan = plan_upgrade(ctx, &mut maint, (&bundle, &survey), mode)?;
    let (db, current) = (survey.source, survey.current);
    ctx.begin(
        mode,
        &db,
        Some(current.to_string()),
        Some(plan.to.to_string()),
    )?;
    source.name = Some(db.clone());
    source.current = Some(current);
    let scripts = ctx
        .with_engine(|engine, _| survey::load_scripts(engine, &plan))?
        .map_err(survey_error)?;
    ctx.with_engine(|engine, _| run_prechecks(engine, &mut session.client))??;
    let rehearsed = latest_rehearsal(ctx, &bundle.name, current, plan.to);
    let backup = super::backup::choose_format(ctx, &mut session.client, true, rehearsed.as_ref())?;
    drop(session);
    let mut summary = summary(
        ctx,
        bundle.name.clone(),
        (db.clone(), plan.final_db.clone()),
        (current, plan.to),
        step_lines(&bundle, &plan, &scripts),
    );
    summary.backup = backup;
    if mode == Mode::Production {
        expect_from_rehearsal(ctx, &mut summary, rehearsed.as_ref(), source.size);
    }
    ctx.log(
        Level::Info,
        format!(
            "{} on {}: \"{db}\" is at version {current}; upgrading to {} as \"{}\"",
            bundle.name, summary.server, plan.to, plan.final_db
        ),
    );
    source.scripts = scripts;
    source.upgrade = Some(plan);
    Ok((StepStatus::Done, StepOutput::Plan(summary)))
}

/// pgstep never overwrites a database: the names the upgrade makes must be free. A rehearsal
/// makes only its copy; the real run also makes (or renames) the others.
fn refuse_existing(maint: &mut Client, plan: &UpgradePlan, mode: Mode) -> Result<(), StepError> {
    let in_the_way =
        survey::in_the_way(maint, plan, mode == Mode::Rehearsal).map_err(survey_error)?;
    match in_the_way.first() {
        Some(name) => Err(refused(format!(
            "database \"{name}\" already exists: an earlier upgrade left it, or it is in use. pgstep never overwrites a database; check what it holds, then drop or rename it (or run pgstep recover if a run was interrupted)"
        ))),
        None => Ok(()),
    }
}

/// One line per step of the plan: its scripts and statements.
fn step_lines(bundle: &Bundle, plan: &UpgradePlan, scripts: &[Vec<Script>]) -> Vec<String> {
    plan.steps
        .iter()
        .zip(scripts)
        .map(|(&i, s)| {
            let st = &bundle.steps[i];
            format!(
                "step {} → {}: {} script(s), {} statement(s){}",
                st.from,
                st.to,
                s.len(),
                s.iter()
                    .map(|x| crate::db::runner::count_statements(&x.nodes))
                    .sum::<u64>(),
                if st.single_transaction {
                    ", in one transaction"
                } else {
                    ""
                }
            )
        })
        .collect()
}

/// The latest rehearsal of this upgrade (major versions `from` → `to`) of the bundle.
fn latest_rehearsal(ctx: &Ctx, bundle: &str, from: Version, to: Version) -> Option<Rehearsal> {
    crate::rehearsal::latest(
        &ctx.spec.data_dir,
        bundle,
        &from.major.to_string(),
        &to.major.to_string(),
    )
}

/// What the latest rehearsal says each downtime step will take, scaled to this database's
/// size (a rehearsal is its own measurement: it gets none).
fn expect_from_rehearsal(
    ctx: &mut Ctx,
    summary: &mut PlanSummary,
    rehearsed: Option<&Rehearsal>,
    size: u64,
) {
    let Some(r) = rehearsed else {
        return;
    };
    summary.expected = r
        .expected(Some(size))
        .into_iter()
        .map(|s| (s.step, s.seconds))
        .collect();
    summary.rehearsal = Some(format!("{} ({})", r.run_id, r.at));
    if let Some(total) = summary.expected_downtime() {
        ctx.log(
            Level::Info,
            format!(
                "the rehearsal of {} predicts about {total:.1} s of downtime for this database",
                r.at
            ),
        );
    }
}

fn fixup(ctx: &mut Ctx, source: &mut Source, mode: Mode) -> StepResult {
    let bundle = ctx.bundle()?.clone();
    let mut maint = ctx.maintenance()?;
    let located = locate(ctx, &mut maint, &bundle).map_err(|e| match e {
        // The fixup's own words (the upgrade adds how to check the name).
        SurveyError::Missing { database, server } => refused(format!(
            "database \"{database}\" does not exist on {server}"
        )),
        other => survey_error(other),
    })?;
    let mut session = ctx.session(&located.source)?;
    // Before anything is changed: a version query that is refused refuses the plan.
    let survey = located
        .read_version(&mut session.client, &bundle)
        .map_err(survey_error)?;
    let fixups = survey::fixups(&bundle, &survey, ctx.spec.to).map_err(survey_error)?;
    let (db, current) = (survey.source, survey.current);
    sort_fixups(ctx, source, (&mut session.client, &db), &fixups, current)?;
    let last = fixups.last().map_or(current, |f| f.version);
    // The fixup waits for its backup (it changes the database in place): nothing runs beside.
    let backup = if source.fixups.is_empty() {
        None
    } else {
        super::backup::choose_format(ctx, &mut session.client, false, None)?
    };
    drop(session);
    source.current = Some(current);
    source.name = Some(db.clone());
    let mut lines: Vec<String> = source
        .fixups
        .iter()
        .map(|(v, s)| format!("fixup {v}: {}", s.path.display()))
        .collect();
    if source.fixups.is_empty() {
        lines.push(format!("nothing to do: every fixup up to {last} is recorded with the same checksum (--reapply runs them again)"));
    } else {
        ctx.begin(mode, &db, Some(current.to_string()), Some(last.to_string()))?;
    }
    let mut summary = summary(
        ctx,
        bundle.name.clone(),
        (db.clone(), db),
        (current, last),
        lines,
    );
    summary.backup = backup;
    Ok((StepStatus::Done, StepOutput::Plan(summary)))
}

/// Each fixup's scripts, to run, or skipped when the database records them with the same
/// checksum (unless `--reapply`).
fn sort_fixups(
    ctx: &mut Ctx,
    source: &mut Source,
    (client, db): (&mut Client, &str),
    fixups: &[crate::bundle::Fixup],
    current: Version,
) -> Result<(), StepError> {
    let ph = ctx.with_engine(|engine, _| engine.placeholders(db))??;
    for f in fixups {
        let scripts = ctx.with_engine(|engine, _| engine.reload(&f.scripts, &ph))??;
        for script in scripts {
            let file = script.path.to_string_lossy().into_owned();
            let recorded = recorded_fixup(client, &file, &f.version.to_string())?;
            let done = recorded.as_deref() == Some(script.combined_sha256().as_str())
                && current >= f.version;
            if done && !ctx.spec.reapply {
                source.fixups_skipped.push(file);
            } else {
                source.fixups.push((f.version, script));
            }
        }
    }
    Ok(())
}

fn restore(ctx: &mut Ctx, source: &mut Source, mode: Mode) -> StepResult {
    let path = ctx
        .spec
        .restore_from
        .clone()
        .ok_or("name the backup to restore")?;
    let db = ctx
        .spec
        .database
        .clone()
        .ok_or("name the new database with --database")?;
    let meta = crate::backup::read_metadata(&path).map_err(|e| e.to_string())?;
    crate::backup::verify(&path, &meta).map_err(|e| e.to_string())?;
    let mut maint = ctx.maintenance()?;
    if database_exists(&mut maint, &db)? {
        return Err(refused(format!(
            "database \"{db}\" already exists: pgstep restores into a new database and never overwrites one"
        )));
    }
    ctx.begin(
        mode,
        &db,
        Some(meta.version.clone()),
        Some(meta.version.clone()),
    )?;
    source.name = Some(db.clone());
    let version = meta.version.parse().unwrap_or(Version::new(0, 0));
    let application = ctx
        .spec
        .bundle
        .as_ref()
        .map_or_else(|| meta.database.clone(), |b| b.name.clone());
    let from = format!(
        "{} (backup of \"{}\", {})",
        path.display(),
        meta.database,
        meta.created_at
    );
    let lines = vec![format!(
        "restore {} bytes (sha256 {}) with {} job(s)",
        meta.size, meta.sha256, ctx.spec.jobs
    )];
    let summary = summary(ctx, application, (from, db), (version, version), lines);
    Ok((StepStatus::Done, StepOutput::Plan(summary)))
}

fn bootstrap(ctx: &mut Ctx, source: &mut Source, mode: Mode) -> StepResult {
    let bundle = ctx.bundle()?.clone();
    let db = ctx
        .spec
        .database
        .clone()
        .ok_or("name the new database with --database")?;
    let mut maint = ctx.maintenance()?;
    check_server_version(&mut maint, &bundle)?;
    if database_exists(&mut maint, &db)? {
        return Err(refused(format!(
            "database \"{db}\" already exists: pgstep bootstrap creates a new database and never touches an existing one"
        )));
    }
    let to = ctx.spec.to.unwrap_or_else(|| bundle.latest_major());
    ctx.begin(mode, &db, None, Some(to.to_string()))?;
    source.name = Some(db.clone());
    let lines = vec![format!(
        "baseline {}, then {} step(s)",
        bundle.baseline.version,
        bundle.steps.iter().filter(|s| s.to <= to).count()
    )];
    let summary = summary(
        ctx,
        bundle.name.clone(),
        (String::new(), db),
        (bundle.baseline.version, to),
        lines,
    );
    Ok((StepStatus::Done, StepOutput::Plan(summary)))
}

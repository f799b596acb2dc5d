//! The backup step: pg_dump of the source, verified. A fixup takes it now (it changes the
//! source only after it); an upgrade and a rehearsal take it alongside, on its own thread
//! ([`background`]), while the clone is upgraded and checked, and the cut-over waits for it.

pub(crate) mod background;

use std::time::{Duration, Instant};

use postgres::Client;

use self::background::{Background, BackupJob, Ended};
use crate::backup::choice;
use crate::checklist::{BackupOutput, ExecEvent, PlanKind, StepId, StepOutput, StepStatus};
use crate::events::Level;
use crate::executor::BackupPlan;
use crate::executor::ctx::{Ctx, absolute, is_local};
use crate::executor::error::{StepError, StepResult};
use crate::executor::state::{Changes, Record, Source};
use crate::journal::Change;

pub(in crate::executor) fn run(
    ctx: &mut Ctx,
    source: &Source,
    changes: &mut Changes,
    record: &mut Record,
) -> StepResult {
    match ctx.spec.kind {
        PlanKind::Upgrade | PlanKind::Rehearsal => start_alongside(ctx, source, changes),
        _ => {
            let output = now(ctx, source, changes, record)?;
            Ok((status(&output), StepOutput::Backup(output)))
        }
    }
}

/// The step's status for a backup taken (done) or skipped (a warning).
fn status(output: &BackupOutput) -> StepStatus {
    match output {
        BackupOutput::Skipped { .. } => StepStatus::Warning,
        BackupOutput::Taken { .. } => StepStatus::Done,
    }
}

/// What the backup needs, from what the plan and fingerprint steps found.
fn job(ctx: &Ctx, source: &Source, changes: &Changes) -> Result<BackupJob, StepError> {
    Ok(BackupJob {
        server: ctx.spec.server.clone(),
        db: source.name()?,
        plan: ctx.spec.backup.clone(),
        server_version_num: ctx.server_version_num,
        version: source.current()?,
        fingerprint: changes
            .fingerprint
            .as_ref()
            .map(|f| f.hash.clone())
            .unwrap_or_default(),
        schemas: ctx.bundle().map(|b| b.schemas.clone()).unwrap_or_default(),
        snapshot: None,
        alongside: false,
        fault: ctx.spec.fault.clone(),
        path: None,
    })
}

/// The backup job with its name chosen now and written to the journal before pg_dump
/// starts: a run killed while pg_dump writes leaves a partial backup that `pgstep recover`
/// removes (and never anything under a backup's final name).
fn journalled_job(
    ctx: &mut Ctx,
    source: &Source,
    changes: &Changes,
) -> Result<BackupJob, StepError> {
    let mut job = job(ctx, source, changes)?;
    if let BackupPlan::Into { dir, format } = &job.plan {
        let path = crate::backup::new_backup_path(dir, &job.db, job.version, *format);
        ctx.journal_change(Change::BackupWriting {
            path: absolute(&path).display().to_string(),
        })?;
        job.path = Some(path);
    }
    Ok(job)
}

/// Puts the format chosen for this database on this machine (`backup::choice`) in place of
/// `BackupPlan::Auto`, and says which and why, for the plan. None: the operator gave the
/// format, or no backup is taken. `alongside`: the backup runs beside the upgrade.
pub(in crate::executor) fn choose_format(
    ctx: &mut Ctx,
    source: &mut Client,
    alongside: bool,
    rehearsed: Option<&crate::rehearsal::Rehearsal>,
) -> Result<Option<crate::checklist::BackupChoice>, StepError> {
    let BackupPlan::Auto { dir, max_jobs } = &ctx.spec.backup else {
        return Ok(None);
    };
    let facts = choice::Facts {
        cores: std::thread::available_parallelism()
            .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
        server_local: is_local(&ctx.spec.server),
        alongside,
        table_sizes: crate::backup::dumped_table_sizes(source).map_err(|e| e.to_string())?,
        max_jobs: *max_jobs,
        rehearsed: rehearsed.and_then(|r| r.dump.clone()),
    };
    let chosen = choice::choose(&facts);
    let format = chosen.format.describe();
    ctx.spec.backup = BackupPlan::Into {
        dir: dir.clone(),
        format: chosen.format,
    };
    ctx.log(Level::Info, format!("backup: {format} — {}", chosen.why));
    Ok(Some(crate::checklist::BackupChoice {
        format,
        why: chosen.why,
    }))
}

/// The backup taken now, in the foreground, and how long it took.
pub(in crate::executor) fn now(
    ctx: &mut Ctx,
    source: &Source,
    changes: &mut Changes,
    record: &mut Record,
) -> Result<BackupOutput, StepError> {
    let started = Instant::now();
    let output = journalled_job(ctx, source, changes)?.run(&ctx.cancel, &mut ctx.sink)?;
    keep(
        ctx,
        changes,
        record,
        output.clone(),
        (started.elapsed(), false),
    );
    Ok(output)
}

/// A backup that ended: noted, and its journalled partial name confirmed when it was taken.
fn keep(
    ctx: &mut Ctx,
    changes: &mut Changes,
    record: &mut Record,
    output: BackupOutput,
    took: (Duration, bool),
) {
    let taken = matches!(output, BackupOutput::Taken { .. });
    record.backup_took = Some(took);
    changes.backup = Some(output);
    if taken {
        ctx.confirm_backup_written();
    }
}

/// Starts pg_dump of the frozen source on its own thread, reading a snapshot exported
/// now, before the banner is set; the step goes on in the background.
fn start_alongside(ctx: &mut Ctx, source: &Source, changes: &mut Changes) -> StepResult {
    if let Some(taken) = changes.backup.clone() {
        // A rehearsal with users connected took it already, to restore its copy from.
        return Ok((status(&taken), StepOutput::Backup(taken)));
    }
    let mut job = journalled_job(ctx, source, changes)?;
    let (holder, snapshot) = export_snapshot(ctx, &job.db)?;
    job.snapshot = Some(snapshot);
    job.alongside = true;
    let note = match &job.plan {
        BackupPlan::Into { .. } | BackupPlan::Auto { .. } => format!(
            "pg_dump of \"{}\" goes on in the background while the clone is upgraded and checked; the cut-over waits until it is verified",
            job.db
        ),
        BackupPlan::Skip { .. } => format!(
            "reading \"{}\" once goes on in the background while the clone is upgraded and checked",
            job.db
        ),
    };
    let sink = ctx.sink.background();
    let old_queries = source
        .plausibility_pairs(ctx.spec.bundle.as_ref())
        .into_iter()
        .map(|p| p.old)
        .collect();
    changes.background = Some(Background::start(job, sink, Some(holder), old_queries));
    ctx.log(Level::Info, note.clone());
    Ok((StepStatus::Running, StepOutput::Nothing { note }))
}

/// A transaction on `db` whose snapshot pg_dump (and the comparisons) read, and the snapshot.
fn export_snapshot(ctx: &Ctx, db: &str) -> Result<(Client, String), StepError> {
    let mut holder = ctx
        .spec
        .server
        .with_dbname(db)
        .connect(None)
        .map_err(|e| e.to_string())?;
    // The snapshot must outlive a long upgrade: a server-wide idle-in-transaction timeout
    // would end it under the comparisons that read it.
    let snapshot: String = holder
        .batch_execute(
            "SET idle_in_transaction_session_timeout = 0; \
             BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )
        .and_then(|()| holder.query_one("SELECT pg_catalog.pg_export_snapshot()", &[]))
        .map(|row| row.get(0))
        .map_err(|e| {
            format!(
                "cannot export a snapshot of \"{db}\" for pg_dump: {}",
                crate::db::describe(&e)
            )
        })?;
    Ok((holder, snapshot))
}

/// Waits for the backup started in the background, and reports it.
pub(in crate::executor) fn await_alongside(
    ctx: &mut Ctx,
    changes: &mut Changes,
    record: &mut Record,
) -> StepResult {
    let Some(bg) = changes.background.take() else {
        let taken = changes.backup.clone().ok_or("no backup was started")?;
        return Ok((status(&taken), StepOutput::Backup(taken)));
    };
    ctx.log(
        Level::Info,
        "waiting for the backup to be verified before the cut-over",
    );
    let waited = Instant::now();
    let (output, took) = bg.wait(&ctx.cancel)?;
    ctx.log(
        Level::Info,
        format!(
            "the backup took {:.1} s, alongside the upgrade; the cut-over waited {:.1} s for it",
            took.as_secs_f64(),
            waited.elapsed().as_secs_f64()
        ),
    );
    keep(ctx, changes, record, output.clone(), (took, true));
    Ok((status(&output), StepOutput::Backup(output)))
}

/// Whether the backup in the background has failed; if so, it is reported as the failed
/// step (instead of the job asked for, which does not begin).
pub(in crate::executor) fn failed_alongside(
    ctx: &mut Ctx,
    changes: &mut Changes,
    record: &mut Record,
) -> bool {
    let Some(error) = changes.background.as_mut().and_then(Background::failure) else {
        return false;
    };
    changes.background = None;
    ctx.journal_step(StepId::Backup, "failed", Some(error.clone()));
    record.failed = Some(format!("at step {}: {error}", StepId::Backup.title()));
    ctx.sink.send(ExecEvent::StepFailed {
        step: StepId::Backup,
        error,
        elapsed: Duration::ZERO,
        refused: false,
        location: None,
    });
    true
}

/// How the backup taken alongside ended on the failure path, for its report.
#[derive(Default)]
pub(in crate::executor) struct EndedAlongside {
    stopped: bool,
    failed: Option<String>,
}

impl EndedAlongside {
    /// Adds what became of the backup to the failure path's report.
    pub fn tell(self, report: &mut crate::executor::undo::UndoReport) {
        if self.stopped {
            report.undone.insert(
                0,
                "stopped the backup that was being taken (its partial output removed); the source was never changed".into(),
            );
        }
        if let Some(e) = self.failed {
            report.advice.push(format!(
                "The backup taken alongside had failed as well: {e}"
            ));
        }
    }
}

/// On the failure path: stops the backup if it still runs, keeps it if it finished.
pub(in crate::executor) fn end_alongside(
    ctx: &mut Ctx,
    changes: &mut Changes,
    record: &mut Record,
) -> EndedAlongside {
    let mut ended = EndedAlongside::default();
    match changes.background.take().map(Background::end) {
        Some(Ended::Finished(Ok((output, took)))) => {
            keep_finished(ctx, changes, record, output, took);
        }
        Some(Ended::Finished(Err(e))) => ended.failed = Some(e.message),
        Some(Ended::Stopped) => ended.stopped = true,
        None => {}
    }
    ended
}

/// A backup that finished alongside before the run stopped: a verified copy of the source
/// as users left it. It is kept, journalled and reported like one the cut-over waited for.
fn keep_finished(
    ctx: &mut Ctx,
    changes: &mut Changes,
    record: &mut Record,
    output: BackupOutput,
    took: Duration,
) {
    ctx.log(
        Level::Info,
        format!(
            "the backup taken alongside had finished ({:.1} s) and is kept",
            took.as_secs_f64()
        ),
    );
    ctx.journal_step(StepId::Backup, "done", None);
    keep(ctx, changes, record, output.clone(), (took, true));
    ctx.sink.send(ExecEvent::StepDone {
        step: StepId::Backup,
        status: status(&output),
        output: StepOutput::Backup(output),
        elapsed: Duration::ZERO,
    });
}

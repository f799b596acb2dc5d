//! The cut-over step: the new database's banner reset and its history written, the names
//! swapped (fixed naming), the new database opened with the source's access from before the
//! block, and the old one retired. A fixup resets its banner and access in place; a rehearsal
//! drops its copy and writes its record instead.

use postgres::Client;

use crate::bundle::Bundle;
use crate::checklist::{PlanKind, StepId, StepOutput, StepStatus};
use crate::db::access::{self, AccessSnapshot};
use crate::db::banner;
use crate::db::bookkeeping::{HistoryEntry, record_history};
use crate::db::clone::{drop_database, rename_database};
use crate::engine::plan::{Mode, UpgradePlan};
use crate::events::Level;
use crate::executor::ctx::Ctx;
use crate::executor::error::{StepError, StepResult};
use crate::executor::rehearsal_record;
use crate::executor::state::{Changes, Record, Source};
use crate::journal::Change;

const TITLE: &str = "Banner reset and cut-over";

pub(in crate::executor) fn run(
    ctx: &mut Ctx,
    source: &Source,
    changes: &mut Changes,
    record: &mut Record,
    mode: Mode,
) -> StepResult {
    match (mode, ctx.spec.kind) {
        (Mode::Rehearsal, _) => finish_rehearsal(ctx, source, changes, record),
        (_, PlanKind::Fixup) => finish_fixup(ctx, source, changes),
        _ => cut_over(ctx, source, changes, mode),
    }
}

fn cut_over(ctx: &mut Ctx, source: &Source, changes: &Changes, mode: Mode) -> StepResult {
    let plan = source.upgrade()?;
    let bundle = ctx.bundle()?.clone();
    let started = ctx.journal_change(Change::CutOverStarted {
        old: plan.source_db.clone(),
        new: plan.final_db.clone(),
    })?;
    reset_new(ctx, changes, plan, &bundle, mode)?;
    // The new database's banner is reset; nothing is renamed yet.
    ctx.fault_point("cut_over_banner_reset", TITLE)?;
    let mut maint = ctx.maintenance()?;
    let old = swap_names(ctx, &mut maint, plan)?;
    open_new(ctx, changes, &mut maint, plan)?;
    crate::faults::at(StepId::CutOver, ctx.spec.fault.as_deref())?;
    ctx.journal_confirm(started);
    let done = ctx.journal_change(Change::CutOverDone {
        old: old.clone(),
        new: plan.final_db.clone(),
    })?;
    ctx.journal_confirm(done);
    Ok(retire_old(ctx, &mut maint, plan, old))
}

/// The new database's banner reset (users see none when they come back) and its history.
fn reset_new(
    ctx: &mut Ctx,
    changes: &Changes,
    plan: &UpgradePlan,
    bundle: &Bundle,
    mode: Mode,
) -> Result<(), StepError> {
    let mut work = ctx.session(&plan.work_db)?;
    if let (Some(b), Some(previous)) = (&bundle.banner, &changes.banner_previous) {
        banner::restore(&mut work.client, b, previous.as_deref())?;
        ctx.log(
            Level::Info,
            format!("logon banner of \"{}\" reset", plan.work_db),
        );
    }
    record_history(
        &mut work.client,
        &HistoryEntry {
            action: match mode {
                Mode::Rehearsal => "rehearsal",
                Mode::Production => "upgrade",
            },
            from_version: Some(plan.from.to_string()),
            to_version: plan.to.to_string(),
            source_database: Some(&plan.source_db),
            bundle: &bundle.name,
            bundle_sha256: &bundle.sha256,
            source_fingerprint: changes.fingerprint.as_ref().map(|f| f.hash.as_str()),
            fingerprint_override: changes.fingerprint_overridden,
            note: None,
        },
    )?;
    Ok(())
}

/// Fixed naming: the source goes aside and the new database takes its name (each rename
/// journalled first). Returns the old database's name now.
fn swap_names(ctx: &mut Ctx, maint: &mut Client, plan: &UpgradePlan) -> Result<String, StepError> {
    let Some(aside) = &plan.aside_db else {
        return Ok(plan.source_db.clone());
    };
    rename(ctx, maint, &plan.source_db, aside)?;
    // Between the renames: the source is aside, the new database not yet in place.
    ctx.fault_point("cut_over_renamed", TITLE)?;
    rename(ctx, maint, &plan.work_db, &plan.final_db)?;
    ctx.log(
        Level::Info,
        format!(
            "renamed \"{}\" to \"{aside}\" and \"{}\" to \"{}\"",
            plan.source_db, plan.work_db, plan.final_db
        ),
    );
    Ok(aside.clone())
}

fn rename(ctx: &mut Ctx, maint: &mut Client, from: &str, to: &str) -> Result<(), StepError> {
    let id = ctx.journal_change(Change::Renamed {
        from: from.to_owned(),
        to: to.to_owned(),
    })?;
    rename_database(maint, from, to)?;
    ctx.journal_confirm(id);
    Ok(())
}

/// The new database opens to users with exactly the source's access from before the block
/// (it was closed to all but pgstep while it was upgraded and checked).
fn open_new(
    ctx: &mut Ctx,
    changes: &Changes,
    maint: &mut Client,
    plan: &UpgradePlan,
) -> Result<(), StepError> {
    let Some(original) = changes.clone_access.clone() else {
        return Ok(());
    };
    let opened = AccessSnapshot {
        db: plan.final_db.clone(),
        ..original
    };
    access::restore(maint, &opened)?;
    ctx.log(
        Level::Info,
        format!(
            "\"{}\" is open to users with the access \"{}\" had before the downtime",
            plan.final_db, plan.source_db
        ),
    );
    Ok(())
}

/// The upgrade has succeeded. The old database is retired (read-only, closed) and that is
/// read back; until it is, the run is not finished: `status` lists it and `recover` retires
/// it (its journal's CutOverDone is still pending).
fn retire_old(
    ctx: &mut Ctx,
    maint: &mut Client,
    plan: &UpgradePlan,
    old: String,
) -> (StepStatus, StepOutput) {
    let old_open = crate::db::retire::retire(maint, &old)
        .err()
        .map(|e| e.to_string());
    let (level, status) = match &old_open {
        None => (Level::Info, StepStatus::Done),
        Some(_) => (Level::Warning, StepStatus::Warning),
    };
    ctx.log(
        level,
        format!(
            "users now use \"{}\" (version {}); {}",
            plan.final_db,
            plan.to,
            crate::checklist::old_database_sentence(&old, old_open.as_deref())
        ),
    );
    if old_open.is_none() {
        ctx.journal_entry(crate::journal::Entry::Finished {
            outcome: "success".into(),
            detail: Some(format!("{} is at version {}", plan.final_db, plan.to)),
        });
    }
    ctx.lock = None;
    (
        status,
        StepOutput::CutOver {
            new_db: plan.final_db.clone(),
            old_db: old,
            old_open,
        },
    )
}

/// The fixups are in: banner reset, access restored exactly, run finished.
fn finish_fixup(ctx: &mut Ctx, source: &Source, changes: &Changes) -> StepResult {
    let db = source.name()?;
    if let (Some(b), Some(previous)) = (ctx.bundle()?.banner.clone(), &changes.banner_previous) {
        let mut session = ctx.session(&db)?;
        banner::restore(&mut session.client, &b, previous.as_deref())?;
    }
    if let Some(snapshot) = &changes.access {
        let mut maint = ctx.maintenance()?;
        let how = access::restore(&mut maint, snapshot)?;
        ctx.log(
            Level::Info,
            format!("connections to \"{db}\" are allowed again, {}", how.words()),
        );
    }
    ctx.finish(None);
    Ok((
        StepStatus::Done,
        StepOutput::Nothing {
            note: format!("banner reset and access restored on \"{db}\""),
        },
    ))
}

/// The rehearsal's end: the copy dropped, the backup removed, the record written.
fn finish_rehearsal(
    ctx: &mut Ctx,
    source: &Source,
    changes: &Changes,
    record: &mut Record,
) -> StepResult {
    let plan = source.upgrade()?;
    let rewritten = rehearsal_record::rewritten_by_the_upgrade(ctx, plan)?;
    let mut maint = ctx.maintenance()?;
    drop_database(&mut maint, &plan.work_db)?;
    ctx.journal_entry(crate::journal::Entry::Step {
        step: "cut_over".into(),
        state: "rehearsal copy dropped".into(),
        detail: Some(plan.work_db.clone()),
    });
    let dump_size = rehearsal_record::discard_backup(changes);
    let rehearsal =
        rehearsal_record::record(ctx, source, record, (plan, dump_size), rewritten, None)?;
    let md = crate::rehearsal::write(&ctx.spec.data_dir, &rehearsal)
        .map_err(|e| format!("cannot write the rehearsal's record: {e}"))?;
    let note = format!(
        "rehearsal done: about {:.1} s of downtime to expect on \"{}\"; {} problem(s) found; record {}",
        rehearsal.predicted_downtime(None),
        plan.source_db,
        rehearsal.problems.len(),
        md.display()
    );
    ctx.log(Level::Info, note.clone());
    ctx.finish(Some(note.clone()));
    Ok((
        StepStatus::Done,
        StepOutput::Rehearsed {
            note,
            downtime: rehearsal.predicted_downtime(None),
            problems: rehearsal.problems.clone(),
            record: md.display().to_string(),
        },
    ))
}

//! The clone step: `CREATE DATABASE … TEMPLATE` of the frozen source, with what the template
//! copy does not carry; the clone stays closed to all but pgstep until the cut-over. In a
//! rehearsal with users connected, the copy is restored from a backup instead.

use postgres::Client;

use crate::checklist::{BackupOutput, StepOutput, StepStatus};
use crate::db::access;
use crate::db::clone::{CloneStrategy, allow_connections, carry_over, create_closed_clone};
use crate::db::sessions::other_sessions;
use crate::engine::plan::{Mode, UpgradePlan};
use crate::events::Level;
use crate::executor::ctx::Ctx;
use crate::executor::error::{StepError, StepResult};
use crate::executor::state::{Changes, Record, Source};
use crate::journal::Change;

pub(in crate::executor) fn run(
    ctx: &mut Ctx,
    source: &Source,
    changes: &mut Changes,
    record: &mut Record,
    mode: Mode,
) -> StepResult {
    let plan = source.upgrade()?.clone();
    if mode == Mode::Rehearsal && users_connected(ctx, &plan.source_db)? {
        return copy_from_backup(ctx, source, changes, record, &plan);
    }
    let mut maint = ctx.maintenance()?;
    let id = ctx.journal_change(Change::CloneCreating {
        name: plan.work_db.clone(),
        source: plan.source_db.clone(),
    })?;
    let strategy = clone_strategy(ctx.server_version_num, source.size);
    let how = say_strategy(ctx, strategy, source.size);
    // The clone is created closed to everyone and stays closed to all but pgstep until the
    // cut-over opens it with the source's access from before the block.
    create_closed_clone(&mut maint, &plan.source_db, &plan.work_db, strategy)?;
    ctx.journal_created(&mut maint, &plan.work_db);
    // The clone exists; what the template copy does not carry is not yet carried over.
    ctx.fault_point("clone_created", "Clone")?;
    let carried = carry_over_closed(ctx, changes, &mut maint, &plan)?;
    ctx.journal_confirm(id);
    ctx.log(
        Level::Info,
        format!(
            "cloned \"{}\" into \"{}\"; carried over: {}",
            plan.source_db,
            plan.work_db,
            carried.join(", ")
        ),
    );
    Ok((
        StepStatus::Done,
        StepOutput::Cloned {
            db: plan.work_db.clone(),
            source: plan.source_db.clone(),
            size: source.size,
            how: how.into(),
            carried,
        },
    ))
}

/// Says how the clone is made and why; returns the strategy's name.
fn say_strategy(ctx: &mut Ctx, strategy: Option<CloneStrategy>, size: u64) -> &'static str {
    let (how, why) = match strategy {
        Some(CloneStrategy::FileCopy) => (
            "FILE_COPY",
            "a checkpoint, then a file copy: fastest for large databases",
        ),
        Some(CloneStrategy::WalLog) => (
            "WAL_LOG",
            "block by block through the WAL: fastest for small databases",
        ),
        None => ("the server's only strategy", "PostgreSQL before 15"),
    };
    ctx.log(
        Level::Info,
        format!(
            "cloning {} MB with STRATEGY = {how} ({why})",
            size / 1_000_000
        ),
    );
    how
}

/// What the template copy does not carry, carried over with the clone's privileges closed to
/// all but pgstep; the source's access from before the block is kept for the cut-over.
fn carry_over_closed(
    ctx: &mut Ctx,
    changes: &mut Changes,
    maint: &mut Client,
    plan: &UpgradePlan,
) -> Result<Vec<String>, StepError> {
    let original = match changes.access.clone() {
        Some(before_block) => before_block,
        None => access::snapshot(maint, &plan.source_db)?,
    };
    let closed = access::closed_privileges(maint, &original, ctx.spec.server.user())?;
    let carried = carry_over(maint, &plan.source_db, &plan.work_db, Some(&closed))?;
    allow_connections(maint, &plan.work_db)?;
    changes.clone_access = Some(original);
    Ok(carried.actions)
}

/// With users connected, `CREATE DATABASE … TEMPLATE` is impossible: the copy must be
/// restored from a backup.
fn users_connected(ctx: &Ctx, db: &str) -> Result<bool, StepError> {
    let mut maint = ctx.maintenance()?;
    Ok(!other_sessions(&mut maint, db)?.is_empty())
}

/// The rehearsal's copy, restored from a backup taken now (in the foreground: the copy
/// needs it; the backup step then reports it).
fn copy_from_backup(
    ctx: &mut Ctx,
    source: &Source,
    changes: &mut Changes,
    record: &mut Record,
    plan: &UpgradePlan,
) -> StepResult {
    let (db, work) = (plan.source_db.as_str(), plan.work_db.as_str());
    ctx.log(
        Level::Info,
        format!(
            "users are connected to \"{db}\": backing it up and restoring the backup into \"{work}\" for the rehearsal"
        ),
    );
    let taken = super::backup::now(ctx, source, changes, record)?;
    let BackupOutput::Taken { path, .. } = taken else {
        return Err("users are connected, so the copy must be restored from a backup, and the rehearsal was told to take none".into());
    };
    let id = ctx.journal_change(Change::CloneCreating {
        name: work.to_owned(),
        source: db.to_owned(),
    })?;
    crate::engine::restore::restore(
        &ctx.spec.server,
        std::path::Path::new(&path),
        work,
        ctx.spec.jobs,
        &ctx.cancel,
        &mut ctx.sink,
    )?;
    // Like a real clone, the copy is for pgstep alone while it is upgraded and checked.
    let mut maint = ctx.maintenance()?;
    crate::db::access::block(&mut maint, work, ctx.spec.server.user())?;
    ctx.journal_confirm(id);
    record.copied_from_backup = true;
    record.problems.push("users were connected during the rehearsal, so its copy was restored from the backup: the real clone is faster than measured".into());
    Ok((
        StepStatus::Done,
        StepOutput::Cloned {
            db: work.to_owned(),
            source: db.to_owned(),
            size: source.size,
            how: "restored from the backup (users were connected)".into(),
            carried: Vec::new(),
        },
    ))
}

/// Above this size a file copy (after its checkpoint) beats copying block by block through the
/// WAL; below it, the checkpoint costs more than it saves (PostgreSQL's own advice for
/// CREATE DATABASE … STRATEGY).
const FILE_COPY_ABOVE: u64 = 512 * 1024 * 1024;

/// The clone strategy for a database of `size` bytes; None before PostgreSQL 15 (no choice).
fn clone_strategy(server_version_num: u32, size: u64) -> Option<CloneStrategy> {
    (server_version_num >= 150_000).then_some(if size > FILE_COPY_ABOVE {
        CloneStrategy::FileCopy
    } else {
        CloneStrategy::WalLog
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_databases_are_copied_as_files_small_ones_through_the_wal() {
        assert_eq!(
            clone_strategy(150_004, 10 * 1024 * 1024 * 1024),
            Some(CloneStrategy::FileCopy)
        );
        assert_eq!(
            clone_strategy(160_000, 50 * 1024 * 1024),
            Some(CloneStrategy::WalLog)
        );
        assert_eq!(
            clone_strategy(140_010, 10 * 1024 * 1024 * 1024),
            None,
            "PostgreSQL 14 has no choice"
        );
    }
}

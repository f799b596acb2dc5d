//! The restore step: pg_restore of a verified backup into a new database (journalled first,
//! so that a partial database is dropped by the undo).

use crate::checklist::{StepOutput, StepStatus};
use crate::executor::ctx::Ctx;
use crate::executor::error::StepResult;
use crate::executor::state::Source;
use crate::journal::Change;

pub(in crate::executor) fn run(ctx: &mut Ctx, source: &Source) -> StepResult {
    let path = ctx
        .spec
        .restore_from
        .clone()
        .ok_or("name the backup to restore")?;
    let db = source.name()?;
    let id = ctx.journal_change(Change::CloneCreating {
        name: db.clone(),
        source: path.display().to_string(),
    })?;
    let out = crate::engine::restore::restore(
        &ctx.spec.server,
        &path,
        &db,
        ctx.spec.jobs,
        &ctx.cancel,
        &mut ctx.sink,
    )?;
    ctx.journal_confirm(id);
    ctx.finish(None);
    Ok((
        StepStatus::Done,
        StepOutput::Restored {
            db,
            fingerprint_matches: out.fingerprint_matches,
        },
    ))
}

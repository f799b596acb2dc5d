//! The bootstrap step: a new database from the bundle's baseline and steps (journalled first,
//! so that a partial database is dropped by the undo).

use crate::checklist::{StepOutput, StepStatus};
use crate::executor::ctx::Ctx;
use crate::executor::error::StepResult;
use crate::executor::state::Source;
use crate::journal::Change;

pub(in crate::executor) fn run(ctx: &mut Ctx, source: &Source) -> StepResult {
    let db = source.name()?;
    let id = ctx.journal_change(Change::CloneCreating {
        name: db.clone(),
        source: "bootstrap".into(),
    })?;
    let (to, keep) = (ctx.spec.to, ctx.spec.keep_failed);
    let out =
        ctx.with_engine(|engine, _| crate::engine::bootstrap::bootstrap(engine, &db, to, keep))??;
    ctx.journal_confirm(id);
    ctx.finish(None);
    Ok((
        StepStatus::Done,
        StepOutput::Bootstrapped {
            db,
            version: out.version,
        },
    ))
}

//! The clone-upgrade step: the bundle's scripts on the clone, step by step, the version
//! marker checked around each.

use crate::checklist::{StepOutput, StepStatus};
use crate::engine::apply_step;
use crate::executor::ctx::Ctx;
use crate::executor::error::StepResult;
use crate::executor::state::Source;

pub(in crate::executor) fn run(ctx: &mut Ctx, source: &Source) -> StepResult {
    let plan = source.upgrade()?;
    let mut reports = Vec::new();
    for (n, &i) in plan.steps.iter().enumerate() {
        let report = ctx.with_engine(|engine, cancel| {
            apply_step(
                engine,
                &engine.bundle.steps[i],
                &source.scripts[n],
                &plan.work_db,
                cancel,
            )
        })??;
        reports.push(report);
    }
    Ok((StepStatus::Done, StepOutput::Upgraded(reports)))
}

//! The disk-space step: room for the clone (an upgrade) and the backup, where it can be
//! measured; the operator may confirm there is enough where it cannot.

use crate::checklist::{PlanKind, SpaceLine, StepOutput, StepStatus};
use crate::executor::ctx::{Ctx, is_local};
use crate::executor::error::{StepResult, refused};
use crate::executor::state::Source;

pub(in crate::executor) fn run(ctx: &mut Ctx, source: &Source) -> StepResult {
    if ctx.spec.kind == PlanKind::Restore {
        let note = "the restored size is known only after the restore; pg_restore stops with a clear error if the disk fills, and the partial database is dropped";
        return Ok((
            StepStatus::Skipped,
            StepOutput::Nothing { note: note.into() },
        ));
    }
    let db = source.name()?;
    let mut session = ctx.session(&db)?;
    let backup_dir = ctx.spec.backup.dir().map(std::path::Path::to_path_buf);
    let local = is_local(&ctx.spec.server);
    let clone_needed = ctx.spec.kind == PlanKind::Upgrade;
    let report = crate::diskspace::check(&mut session.client, local, &db, backup_dir.as_deref())
        .map_err(|e| e.to_string())?;
    let lines: Vec<SpaceLine> = report
        .items
        .iter()
        .filter(|i| clone_needed || !i.what.starts_with("clone"))
        .map(|i| SpaceLine {
            what: i.describe(),
            required: i.required,
            available: i.available,
        })
        .collect();
    if let Some(short) = lines.iter().find(|l| l.ok() == Some(false)) {
        return Err(refused(format!(
            "not enough disk space: {} — free space there, or choose another backup directory with --backup-dir",
            short.what
        )));
    }
    Ok((StepStatus::Done, StepOutput::Disk(lines)))
}

/// The operator's word where the space could not be measured.
pub(in crate::executor) fn accept() -> (&'static str, Option<StepOutput>) {
    (
        "the operator confirmed there is enough space where it could not be measured",
        None,
    )
}

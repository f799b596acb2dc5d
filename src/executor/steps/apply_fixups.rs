//! The apply-fixups step: each fixup script on the database in place (journalled first),
//! recorded in the database's bookkeeping; the version marker must move with each version.

use crate::bundle::Version;
use crate::checklist::{StepOutput, StepStatus};
use crate::db::Session;
use crate::db::bookkeeping::record_fixup;
use crate::db::runner::run_script_cancellable;
use crate::db::version::read_version;
use crate::events::Level;
use crate::executor::ctx::Ctx;
use crate::executor::error::{StepError, StepResult};
use crate::executor::state::Source;
use crate::journal::Change;
use crate::script::Script;

pub(in crate::executor) fn run(ctx: &mut Ctx, source: &Source) -> StepResult {
    let db = source.name()?;
    let pending = &source.fixups;
    let query = ctx.bundle()?.version_query.clone();
    let mut applied = Vec::new();
    for (i, (version, script)) in pending.iter().enumerate() {
        let (file, mut session) = apply(ctx, &db, *version, script)?;
        applied.push(file);
        let last_of_version = pending.get(i + 1).is_none_or(|(v, _)| v != version);
        if last_of_version {
            let found = read_version(&mut session.client, &query, &db)?;
            if found < *version {
                return Err(StepError::failed(format!(
                    "fixup {version} ran but the version marker says {found}: the fixup must move the marker; the bundle is faulty"
                )));
            }
        }
    }
    let mut session = ctx.session(&db)?;
    let version = read_version(&mut session.client, &query, &db)?;
    Ok((
        StepStatus::Done,
        StepOutput::Fixups {
            applied,
            skipped: source.fixups_skipped.clone(),
            version,
        },
    ))
}

/// One fixup script, journalled, run and recorded; returns its file and the session it ran in.
fn apply(
    ctx: &mut Ctx,
    db: &str,
    version: Version,
    script: &Script,
) -> Result<(String, Session), StepError> {
    let id = ctx.journal_change(Change::FixupStarted {
        db: db.to_owned(),
        version: version.to_string(),
    })?;
    ctx.log(
        Level::Info,
        format!("fixup {version}: running {}", script.path.display()),
    );
    let mut session = ctx.session(db)?;
    run_script_cancellable(&mut session, script, &mut ctx.sink, &ctx.cancel)?;
    let file = script.path.to_string_lossy().into_owned();
    record_fixup(
        &mut session.client,
        &file,
        &version.to_string(),
        &script.combined_sha256(),
    )?;
    ctx.journal_confirm(id);
    Ok((file, session))
}

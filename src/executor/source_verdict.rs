//! The measured answer to "was the source database changed?": read at the start of the plan
//! step, before pgstep runs anything on the source, and again at the end of the failure path;
//! pgstep's own banner writes are the only rows it may have written, and are subtracted.

use super::ctx::Ctx;
use super::state::{Changes, Source};
use crate::checklist::{BackupOutput, SourceReading, SourceVerdict, source_verdict};
use crate::db::source_check::ReadingError;
use crate::db::{banner, source_check};

/// The schemas the application owns (the bundle's), where the reading looks.
fn app_schemas(ctx: &Ctx) -> Vec<String> {
    ctx.spec
        .bundle
        .as_ref()
        .map(|b| b.schemas.clone())
        .unwrap_or_default()
}

/// Reads the source before anything runs on it (an upgrade's plan step).
pub(super) fn read_before(ctx: &Ctx, db: &str) -> (String, Result<SourceReading, ReadingError>) {
    let reading = source_check::read(&ctx.spec.server, db, &app_schemas(ctx));
    (db.to_owned(), reading)
}

/// Reads the source again, once the failure path has undone what it could, and compares.
/// None when the run never read a source database.
pub(super) fn verdict(ctx: &Ctx, source: &Source, changes: &Changes) -> Option<SourceVerdict> {
    let (db, before) = source.before.as_ref()?;
    let db = db.clone();
    let before = match before {
        Ok(b) => b.clone(),
        Err(why) => {
            return Some(SourceVerdict::Unknown {
                db,
                why: format!("pgstep could not read its state at the start ({why})"),
            });
        }
    };
    let after = match source_check::read(&ctx.spec.server, &db, &app_schemas(ctx)) {
        Ok(a) => a,
        Err(why) => {
            return Some(SourceVerdict::Unknown {
                db,
                why: format!("pgstep could not read its state at the end ({why})"),
            });
        }
    };
    let backup = match &changes.backup {
        Some(BackupOutput::Taken { path, .. }) => Some(path.clone()),
        _ => None,
    };
    Some(source_verdict(
        &db,
        &before,
        &after,
        &banner::rows_written(&db),
        backup,
    ))
}

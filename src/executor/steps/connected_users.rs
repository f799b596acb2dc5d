//! The connected-users step: new connections to the source are blocked (journalled first),
//! and who is still connected is listed; the operator may ask them to leave (NOTIFY) or end
//! their sessions. A rehearsal blocks nobody: it lists them, as information.

use postgres::Client;

use crate::checklist::{StepOutput, StepStatus};
use crate::db::access;
use crate::db::sessions::{other_sessions, other_sessions_settled};
use crate::engine::SESSION_GRACE;
use crate::engine::plan::Mode;
use crate::events::Level;
use crate::executor::ctx::Ctx;
use crate::executor::error::StepResult;
use crate::executor::state::{Changes, Record, Source};
use crate::journal::Change;

pub(in crate::executor) fn run(
    ctx: &mut Ctx,
    source: &Source,
    changes: &mut Changes,
    record: &mut Record,
    mode: Mode,
) -> StepResult {
    match mode {
        Mode::Rehearsal => list_for_rehearsal(ctx, source),
        Mode::Production => block_and_list(ctx, source, changes, record),
    }
}

/// Blocks new connections (journalled first, so that a crash is recoverable), then lists who
/// is still connected.
fn block_and_list(
    ctx: &mut Ctx,
    source: &Source,
    changes: &mut Changes,
    record: &mut Record,
) -> StepResult {
    let db = source.name()?;
    let mut maint = ctx.maintenance()?;
    let mut unblockable = Vec::new();
    if changes.access.is_none() {
        let snapshot = access::snapshot(&mut maint, &db)?;
        let value = serde_json::to_value(&snapshot).map_err(|e| e.to_string())?;
        let id = ctx.journal_change(Change::AccessBlocked {
            db: db.clone(),
            snapshot: value,
        })?;
        let (before, report) = access::block(&mut maint, &db, ctx.spec.server.user())?;
        ctx.journal_confirm(id);
        unblockable = report
            .can_still_connect
            .iter()
            .map(ToString::to_string)
            .collect();
        changes.access = Some(before);
        ctx.log(
            Level::Info,
            format!(
                "new connections to \"{db}\" are blocked for the downtime (except {})",
                unblockable.join(", ")
            ),
        );
    }
    list(ctx, record, &mut maint, &db, unblockable)
}

fn list(
    ctx: &mut Ctx,
    record: &mut Record,
    maint: &mut Client,
    db: &str,
    unblockable: Vec<String>,
) -> StepResult {
    // The block is made once; later listings (refresh, notify, terminate) still say who
    // can connect despite it.
    if !unblockable.is_empty() {
        record.unblockable = unblockable;
    }
    let unblockable = record.unblockable.clone();
    let sessions = other_sessions_settled(maint, db, SESSION_GRACE)?;
    if sessions.is_empty() {
        ctx.log(Level::Info, format!("nobody else is connected to \"{db}\""));
    }
    Ok((
        StepStatus::Done,
        StepOutput::Sessions {
            sessions,
            unblockable,
        },
    ))
}

/// Asks the clients listening on the bundle's channels to log off, then lists who is left.
pub(in crate::executor) fn notify(
    ctx: &mut Ctx,
    source: &Source,
    record: &mut Record,
) -> StepResult {
    let db = source.name()?;
    let channels = ctx
        .bundle()
        .map(|b| b.notify_channels.clone())
        .unwrap_or_default();
    let mut maint = ctx.maintenance()?;
    if channels.is_empty() {
        ctx.log(
            Level::Warning,
            "the bundle names no NOTIFY channel: ask users to log off by other means",
        );
    } else {
        let mut session = ctx.session(&db)?;
        let payload = source.banner_text(ctx.spec.bundle.as_ref());
        crate::db::sessions::notify(&mut session.client, &channels, &payload)?;
        ctx.log(
            Level::Info,
            format!(
                "asked the clients listening on {} to log off",
                channels.join(", ")
            ),
        );
    }
    list(ctx, record, &mut maint, &db, Vec::new())
}

/// Ends the sessions the operator chose, then lists who is left.
pub(in crate::executor) fn terminate(
    ctx: &mut Ctx,
    source: &Source,
    record: &mut Record,
    pids: &[i32],
) -> StepResult {
    let db = source.name()?;
    let mut maint = ctx.maintenance()?;
    let ended = crate::db::sessions::terminate(&mut maint, &db, pids)?;
    for (pid, ok) in ended {
        ctx.log(
            if ok { Level::Info } else { Level::Warning },
            format!(
                "session {pid}: {}",
                if ok {
                    "terminated"
                } else {
                    "could not be terminated (already gone?)"
                }
            ),
        );
    }
    list(ctx, record, &mut maint, &db, Vec::new())
}

/// Lists who is connected, as information: a rehearsal blocks nobody.
fn list_for_rehearsal(ctx: &mut Ctx, source: &Source) -> StepResult {
    let db = source.name()?;
    let mut maint = ctx.maintenance()?;
    let sessions = other_sessions(&mut maint, &db)?;
    let note = if sessions.is_empty() {
        format!("nobody is connected to \"{db}\"")
    } else {
        format!(
            "{} session(s) connected to \"{db}\"; a rehearsal blocks nobody (the real run will ask them to leave)",
            sessions.len()
        )
    };
    ctx.log(Level::Info, note.clone());
    Ok((StepStatus::Done, StepOutput::Nothing { note }))
}

//! Undoing what a run changed, from its journal: after a failure (the failure path) and after
//! a crash or kill (`pgstep recover`). Every undo is idempotent — it checks before it acts — so
//! that it is safe whether or not the journalled change was actually made, and safe twice.

use postgres::Client;

use crate::bundle::Banner;
use crate::conn::ConnSettings;
use crate::db::clone::{database_exists, drop_database_force, rename_database};
use crate::db::{Session, access, banner};
use crate::events::{Level, Observer, log};
use crate::journal::{Change, Entry, Journal, RunRecord, read_run};

/// What undoing did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UndoReport {
    pub undone: Vec<String>,
    /// What the operator must still do (undo that failed, a kept clone, an interrupted fixup).
    pub advice: Vec<String>,
    /// Whether the run had recorded any change at all.
    pub changed_anything: bool,
    /// The changes still pending after this attempt (not undone, or not verified): while one
    /// is left the run must not be marked finished, so that `pgstep status` keeps listing it.
    pub pending: Vec<String>,
}

/// How undoing one change ended.
enum Undo {
    /// Undone, and checked.
    Done(String),
    /// There was nothing to undo (the change had not been made, or was undone already).
    Nothing(String),
    /// Left in place on purpose, or not something pgstep can undo: the operator is told.
    Left(String),
    /// Not undone (or not verified): still pending.
    Pending(String),
}

/// Why an undo did not happen, or could not be verified: the advice for the operator (the
/// change stays pending).
struct NotUndone(String);

impl From<String> for NotUndone {
    fn from(advice: String) -> Self {
        Self(advice)
    }
}

/// Undoes the pending changes of the run whose journal this is, most recent first, checking
/// each undo by reading the state back. Each undo done (or found unnecessary) is journalled;
/// what is left is in [`UndoReport::pending`], with a plain sentence in the advice.
pub fn undo_run(
    server: &ConnSettings,
    banner_sql: Option<&Banner>,
    journal: &mut Journal,
    keep_clone: bool,
    obs: &mut dyn Observer,
) -> UndoReport {
    let mut report = UndoReport::default();
    let record = match read_run(journal.path()) {
        Ok(r) => r,
        Err(e) => return unreadable(journal, &e.to_string()),
    };
    report.changed_anything = record
        .entries
        .iter()
        .any(|(_, e)| matches!(e, Entry::Change { .. }));
    // The journal's own copy of the banner statements first: recovery never needs the bundle.
    let journalled_banner = record
        .context()
        .and_then(|c| c.banner.as_ref())
        .map(Banner::from);
    let banner_sql = journalled_banner.as_ref().or(banner_sql);
    let pending = record.pending_changes();
    if pending
        .iter()
        .any(|(_, c)| matches!(c, Change::CutOverDone { .. }))
    {
        return roll_forward(server, banner_sql, journal, &pending, obs, report);
    }
    let mut maint = connect(server, &mut report);
    for (id, change) in pending {
        let outcome = match (&change, maint.as_mut()) {
            // A file on this machine: no server needed.
            (Change::BackupWriting { path }, _) => {
                remove_unfinished_backup(std::path::Path::new(path))
            }
            // An undo that fails, or reads back wrong, stays pending.
            (_, Some(m)) => undo_server_change(server, m, banner_sql, &change, keep_clone, &record)
                .unwrap_or_else(|e| Undo::Pending(e.0)),
            (_, None) => Undo::Pending(still_pending(&change)),
        };
        let Some(how) = tell(outcome, &change, obs, &mut report) else {
            continue;
        };
        if let Err(e) = journal.append(Entry::Undone { id, how }) {
            let advice = format!("cannot write the journal {}: {e}", journal.path().display());
            log(obs, Level::Warning, advice.clone());
            report.advice.push(advice);
            report.pending.push(still_pending(&change));
        }
    }
    say_what_is_pending(&mut report);
    report
}

/// The maintenance connection the undo works on; without one, the report says why.
fn connect(server: &ConnSettings, report: &mut UndoReport) -> Option<Client> {
    match maintenance(server) {
        Ok(m) => Some(m),
        Err(e) => {
            report.advice.push(format!(
                "cannot connect to the server {} to undo the changes: {e}",
                server.host_display()
            ));
            None
        }
    }
}

/// A journal that cannot be read: nothing is known, so everything is pending.
fn unreadable(journal: &Journal, e: &str) -> UndoReport {
    let what = format!(
        "cannot read the journal {}: {e}; check the server by hand",
        journal.path().display()
    );
    UndoReport {
        undone: Vec::new(),
        advice: vec![what.clone()],
        changed_anything: true,
        pending: vec![what],
    }
}

/// Puts how undoing `change` ended in the report (and the log); returns what to journal as
/// undone, None when it is still pending.
fn tell(
    outcome: Undo,
    change: &Change,
    obs: &mut dyn Observer,
    report: &mut UndoReport,
) -> Option<String> {
    match outcome {
        Undo::Done(how) => {
            report.undone.push(how.clone());
            Some(how)
        }
        Undo::Nothing(how) => Some(how),
        Undo::Left(advice) => {
            log(obs, Level::Warning, advice.clone());
            report.advice.push(advice.clone());
            Some(advice)
        }
        Undo::Pending(advice) => {
            log(obs, Level::Error, advice.clone());
            // A reason of its own (an error) is advice; the bare "still pending" sentence
            // is said once, in the summary below.
            if advice != still_pending(change) {
                report.advice.push(advice);
            }
            report.pending.push(still_pending(change));
            None
        }
    }
}

/// The plain sentence for what is still pending, if anything: what to run, and that `status`
/// keeps listing the run until then.
fn say_what_is_pending(report: &mut UndoReport) {
    if !report.pending.is_empty() {
        report.advice.push(format!(
            "Not undone yet: {}. Run `pgstep recover` (with the same connection options) once \
             the server is reachable; `pgstep status` lists this run until then.",
            report.pending.join("; ")
        ));
    }
}

/// What a change still pending means for users, in the present tense.
pub fn still_pending(change: &Change) -> String {
    match change {
        Change::BannerSet { db, .. } => {
            format!("the logon banner of \"{db}\" still says an upgrade is in progress")
        }
        Change::AccessBlocked { db, .. } => {
            format!("new connections to \"{db}\" are still blocked")
        }
        Change::CloneCreating { name, .. } => {
            format!("the unfinished database \"{name}\" may still exist")
        }
        Change::Renamed { from, to } => format!("\"{from}\" may still be named \"{to}\""),
        Change::CutOverStarted { old, new } => {
            format!("the cut-over from \"{old}\" to \"{new}\" had begun")
        }
        Change::CutOverDone { old, new } => format!(
            "the cut-over to \"{new}\" was done, but \"{old}\" may still be open to users (not yet made read-only and closed)"
        ),
        Change::FixupStarted { db, version } => format!("fixup {version} of \"{db}\" had begun"),
        Change::BackupWriting { path } => {
            format!("the unfinished backup {path} may still be on disk")
        }
    }
}

/// Undoes one change on the server and reads the result back.
fn undo_server_change(
    server: &ConnSettings,
    maint: &mut Client,
    banner_sql: Option<&Banner>,
    change: &Change,
    keep_clone: bool,
    record: &RunRecord,
) -> Result<Undo, NotUndone> {
    match change {
        Change::Renamed { from, to } => rename_back(maint, from, to),
        Change::CloneCreating { name, source } => {
            if name == source || !exists(maint, name)? {
                return Ok(Undo::Nothing(format!("\"{name}\" does not exist")));
            }
            drop_unfinished(maint, name, record.created_oid(name), keep_clone)
        }
        Change::BannerSet { db, previous } => reset_banner(server, banner_sql, db, previous),
        Change::AccessBlocked { db, snapshot } => allow_again(maint, db, snapshot),
        Change::FixupStarted { db, version } => Ok(Undo::Left(format!(
            "fixup {version} of \"{db}\" was interrupted, so the database may be partly fixed. Fixups are idempotent: run pgstep fixup again, or restore the backup taken before it"
        ))),
        Change::CutOverStarted { .. } | Change::CutOverDone { .. } => {
            Ok(Undo::Nothing("nothing to undo".into()))
        }
        Change::BackupWriting { path } => Ok(remove_unfinished_backup(std::path::Path::new(path))),
    }
}

fn exists(maint: &mut Client, db: &str) -> Result<bool, NotUndone> {
    database_exists(maint, db).map_err(|e| NotUndone(e.to_string()))
}

/// A rename undone: `to` named `from` again, if only `to` exists.
fn rename_back(maint: &mut Client, from: &str, to: &str) -> Result<Undo, NotUndone> {
    let (has_from, has_to) = (exists(maint, from)?, exists(maint, to)?);
    if has_from && !has_to {
        return Ok(Undo::Nothing(format!("\"{from}\" had not been renamed")));
    }
    if !has_to || has_from {
        return Err(NotUndone(format!(
            "cannot rename \"{to}\" back to \"{from}\": {}; put them right by hand",
            if has_from {
                "both exist"
            } else {
                "neither exists"
            }
        )));
    }
    rename_database(maint, to, from).map_err(|e| format!("could not rename \"{to}\" back to \"{from}\": {e}; do it by hand: ALTER DATABASE \"{to}\" RENAME TO \"{from}\";"))?;
    if exists(maint, from)? && !exists(maint, to)? {
        Ok(Undo::Done(format!("renamed \"{to}\" back to \"{from}\"")))
    } else {
        Err(NotUndone(format!(
            "renamed \"{to}\" back to \"{from}\", but the server does not show it"
        )))
    }
}

/// The unfinished database the run created (`created`: its journalled oid) dropped, unless it
/// is another database by that name now, or the operator asked to keep it.
fn drop_unfinished(
    maint: &mut Client,
    name: &str,
    created: Option<u32>,
    keep_clone: bool,
) -> Result<Undo, NotUndone> {
    if let Some(created) = created {
        let now = database_oid(maint, name)?;
        if now != Some(created) {
            return Ok(Undo::Left(format!(
                "\"{name}\" is not the database this run created (its oid is {}, the run's was {created}): the run's copy is gone, and this one was left alone",
                now.map_or_else(|| "unknown".to_owned(), |o| o.to_string())
            )));
        }
    }
    if keep_clone {
        return Ok(Undo::Left(format!(
            "the unfinished database \"{name}\" was kept for inspection, as asked; drop it before trying again"
        )));
    }
    drop_database_force(maint, name).map_err(|e| format!("could not drop the unfinished database \"{name}\": {e}; drop it by hand: DROP DATABASE \"{name}\";"))?;
    if exists(maint, name)? {
        return Err(NotUndone(format!(
            "the unfinished database \"{name}\" is still there after DROP DATABASE"
        )));
    }
    Ok(Undo::Done(format!(
        "dropped the unfinished database \"{name}\""
    )))
}

/// The logon banner of `db` put back as it was before the run, and read back.
fn reset_banner(
    server: &ConnSettings,
    banner_sql: Option<&Banner>,
    db: &str,
    previous: &Option<String>,
) -> Result<Undo, NotUndone> {
    let Some(b) = banner_sql else {
        return Err(NotUndone(format!(
            "the logon banner of \"{db}\" was set, and this journal does not hold the bundle's banner statements: run pgstep recover with --bundle, or reset the banner in the application"
        )));
    };
    let mut session = Session::open(&server.with_dbname(db), &[])
        .map_err(|e| format!("could not reset the banner of \"{db}\": {e}"))?;
    banner::restore(&mut session.client, b, previous.as_deref())
        .map_err(|e| format!("could not reset the banner of \"{db}\": {e}"))?;
    let now = banner::get(&mut session.client, b)
        .map_err(|e| format!("could not read back the banner of \"{db}\": {e}"))?;
    if now != *previous {
        return Err(NotUndone(format!(
            "the logon banner of \"{db}\" reads {now:?} after the reset, not {previous:?}"
        )));
    }
    Ok(Undo::Done(match previous {
        None => format!("removed the upgrade banner from \"{db}\""),
        Some(_) => format!("put the previous logon banner of \"{db}\" back"),
    }))
}

/// The access to `db` from before the block (the journal's snapshot) restored, and read back.
fn allow_again(
    maint: &mut Client,
    db: &str,
    snapshot: &serde_json::Value,
) -> Result<Undo, NotUndone> {
    let snapshot: access::AccessSnapshot = serde_json::from_value(snapshot.clone())
        .map_err(|e| format!("the journal's access snapshot of \"{db}\" is unreadable: {e}"))?;
    let how = access::restore(maint, &snapshot)
        .map_err(|e| format!("could not allow connections to \"{db}\" again: {e}"))?;
    let now = access::snapshot(maint, db)
        .map_err(|e| format!("could not read back the access to \"{db}\": {e}"))?;
    let differences = snapshot.differences(&now);
    if !differences.is_empty() {
        return Err(NotUndone(format!(
            "the access to \"{db}\" differs from before the run after the restore: {}",
            differences.join("; ")
        )));
    }
    // Checked above by reading the catalog back (see `AccessSnapshot::differences`).
    Ok(Undo::Done(format!(
        "allowed connections to \"{db}\" again, {}",
        how.words()
    )))
}

/// What a backup that never finished left: pg_dump's partial output and a partial metadata
/// file. Only the partial names: a backup under its final name is complete and verified (it
/// is renamed only then), and is never removed.
fn remove_unfinished_backup(backup: &std::path::Path) -> Undo {
    let partials = [
        crate::backup::partial_path_of(backup),
        crate::backup::partial_path_of(&crate::backup::metadata_path_of(backup)),
    ];
    let mut removed = Vec::new();
    for p in partials {
        let gone = match std::fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p),
            _ => std::fs::remove_file(&p),
        };
        if let Err(e) = gone {
            return Undo::Pending(format!(
                "could not remove the unfinished backup {}: {e}; remove it by hand (it is not a usable backup)",
                p.display()
            ));
        }
        if std::fs::symlink_metadata(&p).is_ok() {
            return Undo::Pending(format!(
                "the unfinished backup {} is still there after its removal",
                p.display()
            ));
        }
        removed.push(p.display().to_string());
    }
    if removed.is_empty() {
        Undo::Nothing("no unfinished backup left".into())
    } else {
        Undo::Done(format!(
            "removed the unfinished backup {}",
            removed.join(" and ")
        ))
    }
}

/// The cut-over had finished: the upgrade succeeded. Finish its tidying instead of undoing it.
fn roll_forward(
    server: &ConnSettings,
    banner_sql: Option<&Banner>,
    journal: &mut Journal,
    pending: &[(u32, Change)],
    obs: &mut dyn Observer,
    mut report: UndoReport,
) -> UndoReport {
    let new = pending.iter().find_map(|(_, c)| match c {
        Change::CutOverDone { new, .. } => Some(new.clone()),
        _ => None,
    });
    let old = pending.iter().find_map(|(_, c)| match c {
        Change::CutOverDone { old, .. } => Some(old.clone()),
        _ => None,
    });
    report.undone.push(format!(
        "the upgrade had finished its cut-over: \"{}\" is the new database",
        new.as_deref().unwrap_or("?"),
    ));
    let old_left = old.is_some_and(|old| !retire_old(server, &old, &mut report));
    let banner_left = match (&new, banner_sql) {
        (Some(new), Some(b)) => !reset_new_banner(server, b, new, pending, &mut report),
        _ => false,
    };
    for (id, change) in pending {
        let left = match change {
            Change::BannerSet { .. } => banner_left,
            Change::CutOverDone { .. } => old_left,
            _ => false,
        };
        if left {
            report.pending.push(still_pending(change));
            continue;
        }
        let _ = journal.append(Entry::Undone {
            id: *id,
            how: "rolled forward".into(),
        });
    }
    say_what_is_pending(&mut report);
    log(
        obs,
        Level::Info,
        "the interrupted run had completed its cut-over; finished it instead of undoing it",
    );
    report
}

/// The old database retired (read-only, closed to users) and that read back; a cut-over that
/// could not do it (server gone) left it open, and the run stays pending until it is. Returns
/// whether it is retired.
fn retire_old(server: &ConnSettings, old: &str, report: &mut UndoReport) -> bool {
    match maintenance(server)
        .and_then(|mut m| crate::db::retire::retire(&mut m, old).map_err(|e| e.to_string()))
    {
        Ok(()) => {
            report.undone.push(format!(
                "\"{old}\" is kept, read-only and closed to users (read back)"
            ));
            true
        }
        Err(e) => {
            report.advice.push(format!(
                "\"{old}\" could not be made read-only and closed to users yet: {e}"
            ));
            false
        }
    }
}

/// The new database's logon banner reset to what the source had, if the run set one, and
/// read back. Returns false when it is left to the operator.
fn reset_new_banner(
    server: &ConnSettings,
    b: &Banner,
    new: &str,
    pending: &[(u32, Change)],
    report: &mut UndoReport,
) -> bool {
    let Some(previous) = pending.iter().find_map(|(_, c)| match c {
        Change::BannerSet { previous, .. } => Some(previous.clone()),
        _ => None,
    }) else {
        return true;
    };
    let reset = Session::open(&server.with_dbname(new), &[])
        .map_err(|e| e.to_string())
        .and_then(|mut s| {
            banner::restore(&mut s.client, b, previous.as_deref())
                .and_then(|()| banner::get(&mut s.client, b))
                .map_err(|e| e.to_string())
        });
    match reset {
        Ok(now) if now == previous => {
            report
                .undone
                .push(format!("reset the logon banner of \"{new}\""));
            true
        }
        Ok(now) => {
            report.advice.push(format!(
                "the logon banner of \"{new}\" reads {now:?} after the reset: reset it by hand"
            ));
            false
        }
        Err(e) => {
            report
                .advice
                .push(format!("reset the logon banner of \"{new}\" by hand: {e}"));
            false
        }
    }
}

fn database_oid(maint: &mut Client, name: &str) -> Result<Option<u32>, NotUndone> {
    maint
        .query_opt(
            "SELECT oid FROM pg_catalog.pg_database WHERE datname = $1",
            &[&name],
        )
        .map(|row| row.map(|r| r.get(0)))
        .map_err(|e| NotUndone(crate::db::describe(&e)))
}

fn maintenance(server: &ConnSettings) -> Result<Client, String> {
    crate::db::maintenance(server).map_err(|e| e.to_string())
}

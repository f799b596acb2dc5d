//! Undoing what a run changed, from its journal: after a failure (the failure path) and after
//! a crash or kill (`pgstep recover`). Every undo is idempotent — it checks before it acts — so
//! that it is safe whether or not the journalled change was actually made, and safe twice.

use postgres::Client;

use crate::bundle::Banner;
use crate::conn::ConnSettings;
use crate::db::clone::{database_exists, drop_database, rename_database};
use crate::db::{Session, access, banner};
use crate::events::{Level, Observer, log};
use crate::journal::{Change, Entry, Journal, read_run};

/// What undoing did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UndoReport {
    pub undone: Vec<String>,
    /// What the operator must still do (undo that failed, a kept clone, an interrupted fixup).
    pub advice: Vec<String>,
    /// Whether the run had recorded any change at all.
    pub changed_anything: bool,
}

/// Undoes the pending changes of the run whose journal this is, most recent first.
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
        Err(e) => {
            report.advice.push(format!(
                "cannot read the journal {}: {e}; check the server by hand",
                journal.path().display()
            ));
            report.changed_anything = true;
            return report;
        }
    };
    report.changed_anything = record
        .entries
        .iter()
        .any(|(_, e)| matches!(e, Entry::Change { .. }));
    let pending = record.pending_changes();
    if pending
        .iter()
        .any(|(_, c)| matches!(c, Change::CutOverDone { .. }))
    {
        return roll_forward(server, banner_sql, journal, &pending, obs, report);
    }
    let mut maint = match maintenance(server) {
        Ok(m) => m,
        Err(e) => {
            report.advice.push(format!("cannot connect to the server to undo the changes: {e}. Run `pgstep recover` once it is reachable."));
            return report;
        }
    };
    for (id, change) in pending {
        match undo_one(server, &mut maint, banner_sql, &change, keep_clone) {
            Ok(Some(how)) => {
                if let Err(e) = journal.append(Entry::Undone {
                    id,
                    how: how.clone(),
                }) {
                    log(
                        obs,
                        Level::Warning,
                        format!("cannot write the journal: {e}"),
                    );
                }
                report.undone.push(how);
            }
            Ok(None) => {}
            Err(advice) => {
                log(obs, Level::Error, advice.clone());
                report.advice.push(advice);
            }
        }
    }
    report
}

/// Undoes one change; Ok(None) when there was nothing to undo or it is kept on purpose.
fn undo_one(
    server: &ConnSettings,
    maint: &mut Client,
    banner_sql: Option<&Banner>,
    change: &Change,
    keep_clone: bool,
) -> Result<Option<String>, String> {
    let exists = |m: &mut Client, db: &str| database_exists(m, db).map_err(|e| e.to_string());
    match change {
        Change::Renamed { from, to } => {
            if exists(maint, to)? && !exists(maint, from)? {
                rename_database(maint, to, from).map_err(|e| format!("could not rename \"{to}\" back to \"{from}\": {e}; do it by hand: ALTER DATABASE \"{to}\" RENAME TO \"{from}\";"))?;
                return Ok(Some(format!("renamed \"{to}\" back to \"{from}\"")));
            }
            Ok(None)
        }
        Change::CloneCreating { name, source } => {
            if name == source || !exists(maint, name)? {
                return Ok(None);
            }
            if keep_clone {
                return Err(format!(
                    "the unfinished database \"{name}\" was kept for inspection, as asked; drop it before trying again"
                ));
            }
            drop_database(maint, name).map_err(|e| format!("could not drop the unfinished database \"{name}\": {e}; drop it by hand: DROP DATABASE \"{name}\";"))?;
            Ok(Some(format!("dropped the unfinished database \"{name}\"")))
        }
        Change::BannerSet { db, previous } => {
            let Some(b) = banner_sql else {
                return Err(format!(
                    "the logon banner of \"{db}\" was set; without the bundle pgstep cannot reset it: run pgstep recover with --bundle, or reset it in the application"
                ));
            };
            let mut session = Session::open(&server.with_dbname(db), &[])
                .map_err(|e| format!("could not reset the banner of \"{db}\": {e}"))?;
            banner::restore(&mut session.client, b, previous.as_deref())
                .map_err(|e| format!("could not reset the banner of \"{db}\": {e}"))?;
            Ok(Some(format!("removed the upgrade banner from \"{db}\"")))
        }
        Change::AccessBlocked { db, snapshot } => {
            let snapshot: access::AccessSnapshot = serde_json::from_value(snapshot.clone())
                .map_err(|e| {
                    format!("the journal's access snapshot of \"{db}\" is unreadable: {e}")
                })?;
            let how = access::restore(maint, &snapshot)
                .map_err(|e| format!("could not allow connections to \"{db}\" again: {e}"))?;
            Ok(Some(format!(
                "allowed connections to \"{db}\" again, {}",
                how.words()
            )))
        }
        Change::FixupStarted { db, version } => Err(format!(
            "fixup {version} of \"{db}\" was interrupted, so the database may be partly fixed. Fixups are idempotent: run pgstep fixup again, or restore the backup taken before it"
        )),
        Change::CutOverStarted { .. } | Change::CutOverDone { .. } => Ok(None),
        Change::BackupWriting { path } => remove_unfinished_backup(std::path::Path::new(path)),
    }
}

/// What a backup that never finished left: pg_dump's partial output and a partial metadata
/// file. Only the partial names: a backup under its final name is complete and verified (it
/// is renamed only then), and is never removed.
fn remove_unfinished_backup(backup: &std::path::Path) -> Result<Option<String>, String> {
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
        gone.map_err(|e| {
            format!(
                "could not remove the unfinished backup {}: {e}; remove it by hand (it is not a usable backup)",
                p.display()
            )
        })?;
        removed.push(p.display().to_string());
    }
    Ok((!removed.is_empty())
        .then(|| format!("removed the unfinished backup {}", removed.join(" and "))))
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
        "the upgrade had finished its cut-over: \"{}\" is the new database; \"{}\" stays closed",
        new.as_deref().unwrap_or("?"),
        old.as_deref().unwrap_or("?")
    ));
    if let (Some(new), Some(b)) = (&new, banner_sql) {
        let previous = pending.iter().find_map(|(_, c)| match c {
            Change::BannerSet { previous, .. } => Some(previous.clone()),
            _ => None,
        });
        if let Some(previous) = previous {
            match Session::open(&server.with_dbname(new), &[]) {
                Ok(mut s) => match banner::restore(&mut s.client, b, previous.as_deref()) {
                    Ok(()) => report
                        .undone
                        .push(format!("reset the logon banner of \"{new}\"")),
                    Err(e) => report
                        .advice
                        .push(format!("reset the logon banner of \"{new}\" by hand: {e}")),
                },
                Err(e) => report
                    .advice
                    .push(format!("reset the logon banner of \"{new}\" by hand: {e}")),
            }
        }
    }
    for (id, _) in pending {
        let _ = journal.append(Entry::Undone {
            id: *id,
            how: "rolled forward".into(),
        });
    }
    log(
        obs,
        Level::Info,
        "the interrupted run had completed its cut-over; finished it instead of undoing it",
    );
    report
}

fn maintenance(server: &ConnSettings) -> Result<Client, String> {
    crate::db::maintenance(server).map_err(|e| e.to_string())
}

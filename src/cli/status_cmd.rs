//! `pgstep status` and `pgstep recover`: interrupted runs, found by their journals, and the
//! undoing of what they left behind.

use std::path::PathBuf;

use super::{fail, resolve};
use crate::conn::ConnArgs;
use crate::exit;
use crate::headless::Printer;
use crate::journal::{self, RunRecord};

pub(super) fn status(json: bool) -> i32 {
    let dir = journal::journal_dir();
    let runs = if dir.exists() {
        match journal::runs(&dir) {
            Ok(r) => r,
            Err(e) => return fail(exit::FAILED, &e.to_string()),
        }
    } else {
        Vec::new()
    };
    let interrupted: Vec<&RunRecord> = runs.iter().filter(|r| r.is_interrupted()).collect();
    if json {
        let list: Vec<serde_json::Value> = interrupted
            .iter()
            .map(|r| serde_json::json!({ "run": r.info, "journal": r.path, "pending": r.pending_changes().iter().map(|(_, c)| describe(c)).collect::<Vec<_>>() }))
            .collect();
        outln!(
            "{}",
            serde_json::json!({ "interrupted": list, "runs": runs.len() })
        );
        return exit::SUCCESS;
    }
    if interrupted.is_empty() {
        outln!(
            "No interrupted run: every run in {} finished ({} in all).",
            journal::journal_dir().display(),
            runs.len()
        );
        return exit::SUCCESS;
    }
    for r in &interrupted {
        outln!(
            "interrupted: run {} ({:?} of \"{}\" on {}, by {} on {}, pid {}, started {})",
            r.info.run_id,
            r.info.kind,
            r.info.source_db,
            r.info.server,
            r.info.operator,
            r.info.host,
            r.info.pid,
            r.info.started_at
        );
        let pending = r.pending_changes();
        if pending.is_empty() {
            outln!("  nothing to undo");
        }
        for (_, c) in pending {
            outln!("  pending: {}", describe(&c));
        }
        outln!("  journal: {}", r.path.display());
    }
    outln!("\nRun `pgstep recover` (with the same connection options) to undo what is pending.");
    exit::SUCCESS
}

pub(super) fn recover(conn: &ConnArgs, bundle_dir: Option<PathBuf>, keep_failed: bool) -> i32 {
    let server = match resolve(conn) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut printer = Printer::new(false);
    let data_dir = crate::paths::data_dir();
    let recovered = match crate::recover::recover_all(
        &server,
        &data_dir,
        bundle_dir.as_deref(),
        keep_failed,
        &mut printer,
    ) {
        Ok(r) => r,
        Err(e) => return fail(exit::FAILED, &e.to_string()),
    };
    if recovered.is_empty() {
        outln!("No interrupted run: nothing to recover.");
        return exit::SUCCESS;
    }
    let mut code = exit::SUCCESS;
    for r in &recovered {
        outln!("run {}:", r.run_id);
        for u in &r.undone {
            outln!("  undone: {u}");
        }
        for a in &r.advice {
            outln!("  to do: {a}");
        }
        if r.clean() {
            outln!("  the server is back to a clean state");
        } else {
            code = if r.still_running {
                exit::REFUSED
            } else {
                exit::FAILED
            };
        }
    }
    code
}

fn describe(c: &journal::Change) -> String {
    use journal::Change;
    match c {
        Change::BannerSet { db, .. } => {
            format!("the logon banner of \"{db}\" says an upgrade is in progress")
        }
        Change::AccessBlocked { db, .. } => format!("new connections to \"{db}\" are blocked"),
        Change::CloneCreating { name, .. } => {
            format!("the unfinished database \"{name}\" may exist")
        }
        Change::Renamed { from, to } => format!("\"{from}\" was renamed to \"{to}\""),
        Change::CutOverStarted { old, new } => {
            format!("the cut-over from \"{old}\" to \"{new}\" had begun")
        }
        Change::CutOverDone { old, new } => {
            format!("the cut-over from \"{old}\" to \"{new}\" was done")
        }
        Change::FixupStarted { db, version } => format!("fixup {version} of \"{db}\" had begun"),
        Change::BackupWriting { path } => {
            format!("the backup {path} was being written (a partial file may be left)")
        }
    }
}

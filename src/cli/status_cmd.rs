//! `pgstep status` and `pgstep recover`: interrupted runs, found by their journals, and the
//! undoing of what they left behind.

use std::path::PathBuf;

use super::{fail, resolve};
use crate::conn::ConnArgs;
use crate::executor::undo::undo_run;
use crate::headless::Printer;
use crate::journal::{self, Entry, Journal, RunRecord};
use crate::{bundle, exit};

pub(super) fn status(json: bool) -> i32 {
    let runs = match journal::runs(&journal::journal_dir()) {
        Ok(r) => r,
        Err(e) => return fail(exit::FAILED, &e.to_string()),
    };
    let interrupted: Vec<&RunRecord> = runs.iter().filter(|r| r.is_interrupted()).collect();
    if json {
        let list: Vec<serde_json::Value> = interrupted
            .iter()
            .map(|r| serde_json::json!({ "run": r.info, "journal": r.path, "pending": r.pending_changes().iter().map(|(_, c)| describe(c)).collect::<Vec<_>>() }))
            .collect();
        println!(
            "{}",
            serde_json::json!({ "interrupted": list, "runs": runs.len() })
        );
        return exit::SUCCESS;
    }
    if interrupted.is_empty() {
        println!(
            "No interrupted run: every run in {} finished ({} in all).",
            journal::journal_dir().display(),
            runs.len()
        );
        return exit::SUCCESS;
    }
    for r in &interrupted {
        println!(
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
            println!("  nothing to undo");
        }
        for (_, c) in pending {
            println!("  pending: {}", describe(&c));
        }
        println!("  journal: {}", r.path.display());
    }
    println!("\nRun `pgstep recover` (with the same connection options) to undo what is pending.");
    exit::SUCCESS
}

pub(super) fn recover(conn: &ConnArgs, bundle_dir: Option<PathBuf>, keep_failed: bool) -> i32 {
    let server = match resolve(conn) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let runs = match journal::runs(&journal::journal_dir()) {
        Ok(r) => r,
        Err(e) => return fail(exit::FAILED, &e.to_string()),
    };
    let interrupted: Vec<RunRecord> = runs.into_iter().filter(RunRecord::is_interrupted).collect();
    if interrupted.is_empty() {
        println!("No interrupted run: nothing to recover.");
        return exit::SUCCESS;
    }
    let mut printer = Printer::new(false);
    let mut code = exit::SUCCESS;
    for record in interrupted {
        code = code.max(recover_one(
            &server,
            &record,
            bundle_dir.as_deref(),
            keep_failed,
            &mut printer,
        ));
    }
    code
}

fn recover_one(
    server: &crate::conn::ConnSettings,
    record: &RunRecord,
    bundle_dir: Option<&std::path::Path>,
    keep_failed: bool,
    printer: &mut Printer,
) -> i32 {
    let info = &record.info;
    println!(
        "run {} ({:?} of \"{}\", pid {} on {}):",
        info.run_id, info.kind, info.source_db, info.pid, info.host
    );
    // A run that still holds its lock is alive: never undo under its feet.
    let lock = match crate::lock::acquire(server, &info.source_db, info) {
        Ok(l) => l,
        Err(e) => {
            return fail(
                exit::REFUSED,
                &format!("{e}; it may still be running — not touched"),
            );
        }
    };
    let bundle_path = bundle_dir
        .map(PathBuf::from)
        .or_else(|| info.bundle.as_ref().map(PathBuf::from));
    let banner = bundle_path
        .and_then(|p| bundle::load(&p).ok())
        .and_then(|b| b.banner);
    let mut journal = match Journal::open_existing(&record.path) {
        Ok(j) => j,
        Err(e) => {
            return fail(
                exit::FAILED,
                &format!("cannot open the journal {}: {e}", record.path.display()),
            );
        }
    };
    let report = undo_run(server, banner.as_ref(), &mut journal, keep_failed, printer);
    for u in &report.undone {
        println!("  undone: {u}");
    }
    for a in &report.advice {
        println!("  to do: {a}");
    }
    let outcome = if report.advice.is_empty() {
        "recovered"
    } else {
        "recovered with problems"
    };
    if let Err(e) = journal.append(Entry::Finished {
        outcome: outcome.into(),
        detail: Some(format!("{} change(s) undone", report.undone.len())),
    }) {
        eprintln!("pgstep: warning: cannot write the journal: {e}");
    }
    drop(lock);
    if report.advice.is_empty() {
        println!("  the server is back to a clean state");
        exit::SUCCESS
    } else {
        exit::FAILED
    }
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
    }
}

//! `pgstep status` and `pgstep recover`: interrupted runs, found by their journals, and the
//! undoing of what they left behind.

use std::path::PathBuf;

use super::{fail, resolve};
use crate::conn::ConnArgs;
use crate::exit;
use crate::headless::Printer;
use crate::journal::{self, RunRecord};

pub(super) fn status(json: bool) -> i32 {
    let data_dir = crate::paths::data_dir();
    let dir = journal::journal_dir();
    let (runs, damaged) = match journal::runs_setting_aside_damaged(&dir) {
        Ok(r) => r,
        Err(e) => return fail(exit::FAILED, &e.to_string()),
    };
    let code = if damaged.is_empty() {
        exit::SUCCESS
    } else {
        exit::FAILED
    };
    let unfinished: Vec<(&RunRecord, Option<String>)> = runs
        .iter()
        .filter(|r| r.is_interrupted())
        .map(|r| (r, crate::recover::live_holder(&data_dir, r)))
        .collect();
    if json {
        print_json(&unfinished, &damaged, runs.len());
        return code;
    }
    for d in &damaged {
        outln!("damaged journal: {}", d.describe());
    }
    if unfinished.is_empty() {
        outln!(
            "No interrupted run: every run in {} finished ({} in all).",
            dir.display(),
            runs.len()
        );
        return code;
    }
    print_unfinished(&unfinished);
    code
}

type Unfinished<'a> = (&'a RunRecord, Option<String>);

fn print_json(unfinished: &[Unfinished<'_>], damaged: &[journal::SetAside], runs: usize) {
    let list: Vec<serde_json::Value> = unfinished
        .iter()
        .map(|(r, live)| {
            serde_json::json!({
                "run": r.info,
                "server": server_words(r),
                "journal": r.path,
                "running": live.is_some(),
                "holder": live,
                "pending": r.pending_changes().iter().map(|(_, c)| describe(c)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let damaged: Vec<serde_json::Value> = damaged
        .iter()
        .map(|d| serde_json::json!({ "journal": d.path, "set_aside_as": d.moved_to, "error": d.error }))
        .collect();
    outln!(
        "{}",
        serde_json::json!({ "interrupted": list, "damaged": damaged, "runs": runs })
    );
}

/// Each unfinished run: still working, or interrupted with what it left pending.
fn print_unfinished(unfinished: &[Unfinished<'_>]) {
    let mut to_recover = Vec::new();
    for (r, live) in unfinished {
        let what = format!(
            "run {} ({:?} of \"{}\" on {}, by {} on {}, pid {}, started {})",
            r.info.run_id,
            r.info.kind,
            r.info.source_db,
            server_words(r),
            r.info.operator,
            r.info.host,
            r.info.pid,
            r.info.started_at
        );
        let pending = r.pending_changes();
        match live {
            Some(holder) => {
                outln!("running: {what}");
                outln!("  it is working now ({holder}); leave it to finish");
                for (_, c) in pending {
                    outln!("  changed so far: {}", describe(&c));
                }
            }
            None => {
                outln!("interrupted: {what}");
                if pending.is_empty() {
                    outln!("  nothing to undo");
                }
                for (_, c) in pending {
                    outln!("  pending: {}", describe(&c));
                }
                if !to_recover.contains(&r.info.server) {
                    to_recover.push(r.info.server.clone());
                }
            }
        }
        outln!("  journal: {}", r.path.display());
    }
    if !to_recover.is_empty() {
        outln!(
            "\nRun `pgstep recover` with the connection options of the run's server ({}) to undo what is pending.",
            to_recover.join("; ")
        );
    }
}

/// The run's server as the run named it, with its system identifier when journalled.
fn server_words(r: &RunRecord) -> String {
    match r.context().and_then(|c| c.system_identifier.as_deref()) {
        Some(id) => format!("{} (system identifier {id})", r.info.server),
        None => r.info.server.clone(),
    }
}

pub(super) fn recover(conn: &ConnArgs, bundle_dir: Option<PathBuf>, keep_failed: bool) -> i32 {
    let server = match resolve(conn) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut printer = Printer::new(false);
    let data_dir = crate::paths::data_dir();
    let (recovered, damaged) = match crate::recover::recover_all_reporting(
        &server,
        &data_dir,
        bundle_dir.as_deref(),
        keep_failed,
        &mut printer,
    ) {
        Ok(r) => r,
        Err(e) => return fail(exit::FAILED, &e.to_string()),
    };
    let mut code = exit::SUCCESS;
    for d in &damaged {
        outln!("damaged journal: {}", d.describe());
        code = exit::FAILED;
    }
    if recovered.is_empty() {
        outln!("No interrupted run: nothing to recover.");
        return code;
    }
    for r in &recovered {
        outln!("run {}:", r.run_id);
        for u in &r.undone {
            outln!("  undone: {u}");
        }
        for a in &r.advice {
            outln!("  to do: {a}");
        }
        for p in &r.pending {
            outln!("  still pending: {p}");
        }
        if r.clean() {
            outln!("  the server is back to a clean state");
        } else if r.still_running || r.other_server {
            if code == exit::SUCCESS {
                code = exit::REFUSED;
            }
        } else {
            code = exit::FAILED;
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

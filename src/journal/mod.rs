//! The run journal: one JSON-lines file per run in `<data dir>/journal/`, written *before* each
//! change pgstep makes to a server and fsynced before the change is attempted, so that after a
//! crash or `kill -9` the file lists every change that may have happened and `pgstep recover`
//! can undo what is still pending.
//!
//! Also here: the human-readable log of a run (`<data dir>/logs/<run id>.log`) with a defensive
//! filter that masks anything resembling a password, and the small facts about this machine that
//! every run records (host name, operator).
//!
//! File format: each line is one JSON object `{"at": <RFC 3339>, "entry": <kind>, ...}`. A crash
//! can tear only the last line (each entry is written with one `write` and fsynced before the
//! next), so a reader ignores an unparsable last line and refuses one in the middle.
//!
//! The parts: `entry` (what a line says) and `states` (a step's state, a run's outcome), the
//! `writer` ([`Journal`]), the reader `read` ([`read_run`], [`RunRecord`]), `ids` (run ids and
//! this machine's facts), `run_log`, `mask` (secret masking).

mod entry;
mod ids;
mod mask;
mod read;
mod run_log;
mod states;
mod writer;

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use entry::{BannerSql, Change, Entry, RunContext};
pub use ids::{file_component, hostname, new_run_id, operator};
pub use mask::mask_secrets;
pub use read::{RunRecord, SetAside, read_run, run_paths, runs, runs_setting_aside_damaged};
pub use run_log::RunLog;
pub use states::{RunOutcome, StepState};
pub use writer::Journal;
pub(crate) use writer::sync_dir;

/// What kind of run a journal belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Upgrade,
    Fixup,
    Restore,
    Bootstrap,
    Rehearsal,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Upgrade => "upgrade",
            RunKind::Fixup => "fixup",
            RunKind::Restore => "restore",
            RunKind::Bootstrap => "bootstrap",
            RunKind::Rehearsal => "rehearsal",
        }
    }
}

/// Who runs what, where: the first entry of every journal and the head of every report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub kind: RunKind,
    /// The server as displayed (`db.example:5432`, `/run/postgresql (socket)`); never secrets.
    pub server: String,
    pub source_db: String,
    pub bundle: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The OS user running pgstep.
    pub operator: String,
    /// This machine's host name.
    pub host: String,
    pub pid: u32,
    /// RFC 3339.
    pub started_at: String,
}

impl RunInfo {
    /// A new run starting now in this process: a fresh run id, this host, operator and pid.
    /// `bundle`, `from` and `to` are left for the caller to fill in.
    pub fn new(kind: RunKind, server: impl Into<String>, source_db: &str) -> RunInfo {
        let now = chrono::Utc::now();
        RunInfo {
            run_id: new_run_id(now, source_db, std::process::id()),
            kind,
            server: server.into(),
            source_db: source_db.to_owned(),
            bundle: None,
            from: None,
            to: None,
            operator: operator(),
            host: hostname(),
            pid: std::process::id(),
            started_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read the journal {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("the journal {} is damaged at line {line}: {message}", path.display())]
    Damaged {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("the journal {} does not start with the run's description{}", path.display(), note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default())]
    NoStart { path: PathBuf, note: Option<String> },
}

/// The directory of all journals: `<data dir>/journal`.
pub fn journal_dir() -> PathBuf {
    crate::paths::data_dir().join("journal")
}

/// Alice's upgrade of clinic_v1 from version 1 to 2 on db1, started at `started_at`: the run
/// the journal's and the report's tests describe.
#[cfg(test)]
pub(crate) fn sample_info(run_id: &str, started_at: &str) -> RunInfo {
    RunInfo {
        run_id: run_id.to_owned(),
        kind: RunKind::Upgrade,
        server: "db1.example:5432".to_owned(),
        source_db: "clinic_v1".to_owned(),
        bundle: Some("clinic".to_owned()),
        from: Some("1".to_owned()),
        to: Some("2".to_owned()),
        operator: "alice".to_owned(),
        host: "db1".to_owned(),
        pid: 4242,
        started_at: started_at.to_owned(),
    }
}

#[cfg(test)]
mod tests;

//! Every run leaves a report: `<data dir>/reports/<run id>.md` for people (printed for the
//! practice's records, read by a tired sysadmin) and `.json` beside it for programs.
//!
//! The summary states only what the recorded data shows (the outcome, which changes were undone);
//! advice comes from the caller as "what to do next" lines. Every text passes through
//! [`mask_secrets`] on its way out, in both files.
//!
//! The parts: the report's data and its files (here), its Markdown (`markdown`), what a
//! journal tells of a run (`from_journal`), and how times and sizes are written (`units`).

mod from_journal;
mod markdown;
mod units;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checklist::SessionInfo;
use crate::journal::{Change, RunInfo, StepState, mask_secrets, sync_dir};

pub use from_journal::{changes_from_journal, steps_from_journal};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failed,
    Cancelled,
    /// Refused before it started (a guard or check said no).
    Refused,
}

/// What failed: the step, the script position, the server's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub step: Option<String>,
    /// Where in the scripts, when a script failed.
    pub location: Option<ScriptPosition>,
    /// The error as the operator must see it (SQLSTATE, message, DETAIL, HINT).
    pub error: String,
}

/// A line of a bundle's script: where a failing statement is. Written `file:line` in both
/// reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ScriptPosition {
    /// Relative to the bundle's root.
    pub file: String,
    /// 1-based.
    pub line: u32,
}

impl ScriptPosition {
    pub fn new(file: impl Into<String>, line: u32) -> ScriptPosition {
        ScriptPosition {
            file: file.into(),
            line,
        }
    }
}

impl From<&crate::script::Location> for ScriptPosition {
    fn from(at: &crate::script::Location) -> Self {
        ScriptPosition::new(at.file.display().to_string(), at.line)
    }
}

impl std::fmt::Display for ScriptPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

impl From<ScriptPosition> for String {
    fn from(p: ScriptPosition) -> String {
        p.to_string()
    }
}

/// A JSON report whose failure position is not `file:line`.
#[derive(Debug, thiserror::Error)]
#[error("not a script position (file:line): {0}")]
pub struct NotAPosition(String);

impl TryFrom<String> for ScriptPosition {
    type Error = NotAPosition;

    /// A JSON report read back.
    fn try_from(text: String) -> Result<Self, NotAPosition> {
        let position = text
            .rsplit_once(':')
            .and_then(|(file, line)| Some(ScriptPosition::new(file, line.parse().ok()?)));
        position.ok_or(NotAPosition(text))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    pub step: String,
    /// Stored as the journal's word: started (did not finish), done, failed, skipped, …
    pub state: StepState,
    pub started_at: String,
    pub seconds: f64,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprints {
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BackupRecord {
    Taken {
        path: PathBuf,
        size: u64,
        sha256: String,
    },
    NotTaken {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undo {
    pub at: String,
    pub how: String,
}

/// A change the run recorded in its journal, and whether it was undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub id: u32,
    pub change: Change,
    /// When it was recorded (just before it was made).
    pub at: String,
    pub confirmed: bool,
    pub undone: Option<Undo>,
}

/// A manual checklist item the operator ticked off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub item: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub info: RunInfo,
    pub outcome: Outcome,
    pub finished_at: Option<String>,
    pub failure: Option<Failure>,
    /// After a failure: whether the source database was changed, as pgstep measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::checklist::SourceVerdict>,
    pub steps: Vec<StepTiming>,
    pub fingerprints: Fingerprints,
    /// None: the run did not record anything about a backup.
    pub backup: Option<BackupRecord>,
    pub checks: Vec<CheckResult>,
    pub changes: Vec<ChangeRecord>,
    pub confirmations: Vec<Confirmation>,
    /// Who was still connected when the run stopped because of them.
    #[serde(default)]
    pub still_connected: Vec<SessionInfo>,
    pub next_steps: Vec<String>,
    pub pgstep_version: String,
}

impl Report {
    /// An empty report for a run, to be filled in as the run goes.
    pub fn new(info: RunInfo, outcome: Outcome) -> Report {
        Report {
            info,
            outcome,
            finished_at: None,
            failure: None,
            source: None,
            steps: Vec::new(),
            fingerprints: Fingerprints::default(),
            backup: None,
            checks: Vec::new(),
            changes: Vec::new(),
            confirmations: Vec::new(),
            still_connected: Vec::new(),
            next_steps: Vec::new(),
            pgstep_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// The JSON report, every string masked.
    pub fn to_json(&self) -> io::Result<String> {
        let mut value = serde_json::to_value(self).map_err(io::Error::other)?;
        mask_strings(&mut value);
        let mut text = serde_json::to_string_pretty(&value).map_err(io::Error::other)?;
        text.push('\n');
        Ok(text)
    }
}

/// `<data dir>/reports`.
pub fn reports_dir() -> PathBuf {
    crate::paths::data_dir().join("reports")
}

/// Writes `<dir>/<run id>.md` and `.json`, each complete and fsynced before it appears under
/// its name (a crash leaves the previous version or none, never half a report).
pub fn write(report: &Report, dir: &Path) -> io::Result<(PathBuf, PathBuf)> {
    crate::paths::private_dir(dir)?;
    let md = dir.join(format!("{}.md", report.info.run_id));
    let json = dir.join(format!("{}.json", report.info.run_id));
    write_synced(dir, &md, report.to_markdown().as_bytes())?;
    write_synced(dir, &json, report.to_json()?.as_bytes())?;
    sync_dir(dir)?;
    Ok((md, json))
}

fn write_synced(dir: &Path, path: &Path, content: &[u8]) -> io::Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".pgstep-report-")
        .tempfile_in(dir)?;
    tmp.write_all(content)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn mask_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => *s = mask_secrets(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_strings),
        serde_json::Value::Object(map) => map.values_mut().for_each(mask_strings),
        _ => {}
    }
}

#[cfg(test)]
mod tests;

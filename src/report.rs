//! Every run leaves a report: `<data dir>/reports/<run id>.md` for people (printed for the
//! practice's records, read by a tired sysadmin) and `.json` beside it for programs.
//!
//! The summary states only what the recorded data shows (the outcome, which changes were undone);
//! advice comes from the caller as "what to do next" lines. Every text passes through
//! [`mask_secrets`] on its way out, in both files.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::db::sessions::SessionInfo;
use crate::journal::{Change, Entry, RunInfo, RunRecord, mask_secrets, sync_dir};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failed,
    Cancelled,
    /// Refused before it started (a guard or check said no).
    Refused,
}

impl Outcome {
    fn title(self) -> &'static str {
        match self {
            Outcome::Success => "succeeded",
            Outcome::Failed => "FAILED",
            Outcome::Cancelled => "CANCELLED",
            Outcome::Refused => "REFUSED",
        }
    }
}

/// What failed: the step, the script position, the server's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub step: Option<String>,
    /// `file:line` of the failing statement, when a script failed.
    pub location: Option<String>,
    /// The error as the operator must see it (SQLSTATE, message, DETAIL, HINT).
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    pub step: String,
    /// started (did not finish) | done | failed | skipped
    pub state: String,
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

    /// A report from what a journal recorded: steps, changes and the finish time (the rest,
    /// fingerprints, backup, checks, is not journaled).
    pub fn from_journal(record: &RunRecord, outcome: Outcome) -> Report {
        let mut report = Report::new(record.info.clone(), outcome);
        report.steps = steps_from_journal(record);
        report.changes = changes_from_journal(record);
        report.finished_at = record
            .entries
            .iter()
            .rev()
            .find_map(|(at, e)| matches!(e, Entry::Finished { .. }).then(|| at.clone()));
        report
    }

    /// The Markdown report.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        self.title(&mut md);
        self.summary(&mut md);
        self.run_facts(&mut md);
        self.what_failed(&mut md);
        self.still_connected_table(&mut md);
        self.steps_table(&mut md);
        self.checks_list(&mut md);
        self.fingerprints_list(&mut md);
        self.backup_list(&mut md);
        self.confirmations_list(&mut md);
        self.changes_table(&mut md);
        self.next_steps_list(&mut md);
        let end = md.trim_end().len();
        md.truncate(end);
        md.push('\n');
        md
    }

    /// The JSON report, every string masked.
    pub fn to_json(&self) -> io::Result<String> {
        let mut value = serde_json::to_value(self).map_err(io::Error::other)?;
        mask_strings(&mut value);
        let mut text = serde_json::to_string_pretty(&value).map_err(io::Error::other)?;
        text.push('\n');
        Ok(text)
    }

    /// "upgrade of \"clinic_v1\" from version 1 to 2"
    fn what(&self) -> String {
        let i = &self.info;
        let mut s = format!("{} of \"{}\"", i.kind.as_str(), i.source_db);
        match (&i.from, &i.to) {
            (Some(from), Some(to)) => {
                let _ = write!(s, " from version {from} to {to}");
            }
            (None, Some(to)) => {
                let _ = write!(s, " to version {to}");
            }
            (Some(from), None) => {
                let _ = write!(s, " at version {from}");
            }
            (None, None) => {}
        }
        s
    }

    fn title(&self, md: &mut String) {
        let i = &self.info;
        let versions = match (&i.from, &i.to) {
            (Some(from), Some(to)) => format!(", version {from} → {to}"),
            (None, Some(to)) => format!(", version {to}"),
            (Some(from), None) => format!(", version {from}"),
            (None, None) => String::new(),
        };
        let kind = capitalised(i.kind.as_str());
        let _ = writeln!(
            md,
            "# {kind} of {}{versions}: {}\n",
            text(&i.source_db),
            self.outcome.title()
        );
    }

    fn summary(&self, md: &mut String) {
        let i = &self.info;
        let mut s = match self.outcome {
            Outcome::Success => format!("The {} on {} succeeded.", self.what(), i.server),
            Outcome::Failed => format!(
                "The {} on {} FAILED{}{}.",
                self.what(),
                i.server,
                self.at_step(),
                self.failure_brief()
            ),
            Outcome::Cancelled => match self.stopped_by() {
                // A SIGTERM or a lost terminal: say which, not "by the operator".
                Some(cause) => format!(
                    "The {} on {} was CANCELLED{}: {cause}.",
                    self.what(),
                    i.server,
                    self.at_step()
                ),
                None => format!(
                    "The {} on {} was CANCELLED by the operator{}.",
                    self.what(),
                    i.server,
                    self.at_step()
                ),
            },
            Outcome::Refused => format!(
                "pgstep REFUSED to carry out the {} on {}{}.",
                self.what(),
                i.server,
                self.failure_brief()
            ),
        };
        if let Some(took) = self.total_seconds() {
            let _ = write!(s, " It took {}.", duration(took));
        }
        s.push(' ');
        s.push_str(&self.changes_sentence());
        if self.outcome == Outcome::Success
            && let Some((old, new)) = self.cut_over()
        {
            let _ = write!(s, " Clients now use \"{new}\"; \"{old}\" was kept.");
        }
        let failed_checks = self.checks.iter().filter(|c| !c.ok).count();
        if failed_checks > 0 {
            let _ = write!(
                s,
                " {} failed (see Checks).",
                counted(failed_checks, "check")
            );
        }
        if !self.next_steps.is_empty() {
            s.push_str(" See \"What to do next\" at the end.");
        }
        let _ = writeln!(md, "{}\n", text(&s));
    }

    /// What stopped a cancelled run when it was not the operator: a signal or a lost terminal.
    fn stopped_by(&self) -> Option<&'static str> {
        let error = self.failure.as_ref().map(|f| f.error.as_str())?;
        [
            crate::signals::STOPPED_BY_SIGTERM,
            crate::signals::TERMINAL_GONE,
        ]
        .into_iter()
        .find(|cause| error.starts_with(cause))
    }

    fn at_step(&self) -> String {
        match self.failure.as_ref().and_then(|f| f.step.as_ref()) {
            Some(step) => format!(" at the step \"{step}\""),
            None => String::new(),
        }
    }

    /// ": file:line: first line of the error" (the whole error is under "What failed").
    fn failure_brief(&self) -> String {
        let Some(f) = &self.failure else {
            return String::new();
        };
        let first = f.error.lines().next().unwrap_or("").trim();
        match &f.location {
            Some(location) => format!(": {location}: {first}"),
            None => format!(": {first}"),
        }
    }

    /// What the changes say, and nothing more.
    fn changes_sentence(&self) -> String {
        let kept = self.changes.iter().filter(|c| c.undone.is_none()).count();
        match (self.changes.len(), kept, self.outcome) {
            (0, _, _) => "pgstep changed nothing on the server.".to_owned(),
            (_, 0, _) => "Every change pgstep made on the server was undone.".to_owned(),
            (n, _, Outcome::Success) => {
                format!("pgstep made {} on the server.", counted(n, "change"))
            }
            (n, kept, _) => format!(
                "Of the {} pgstep made on the server, {kept} {} NOT undone (see Changes).",
                counted(n, "change"),
                if kept == 1 { "was" } else { "were" }
            ),
        }
    }

    fn cut_over(&self) -> Option<(&str, &str)> {
        self.changes.iter().rev().find_map(|c| match &c.change {
            Change::CutOverDone { old, new } if c.undone.is_none() => {
                Some((old.as_str(), new.as_str()))
            }
            _ => None,
        })
    }

    fn total_seconds(&self) -> Option<f64> {
        let start = parse_time(&self.info.started_at)?;
        let end = parse_time(self.finished_at.as_deref()?)?;
        Some((end - start).num_milliseconds() as f64 / 1000.0)
    }

    fn run_facts(&self, md: &mut String) {
        let i = &self.info;
        let mut facts = vec![
            ("Database", format!("{} on {}", i.source_db, i.server)),
            ("Outcome", self.outcome.title().to_owned()),
        ];
        if let Some(bundle) = &i.bundle {
            facts.push(("Application bundle", bundle.clone()));
        }
        if let (Some(from), Some(to)) = (&i.from, &i.to) {
            facts.push(("Versions", format!("{from} → {to}")));
        }
        facts.push(("Started", when(&i.started_at)));
        if let Some(end) = &self.finished_at {
            let took = self
                .total_seconds()
                .map(|t| format!(" ({})", duration(t)))
                .unwrap_or_default();
            facts.push(("Finished", format!("{}{took}", when(end))));
        }
        facts.push((
            "Run by",
            format!("{} on host {}, pid {}", i.operator, i.host, i.pid),
        ));
        facts.push(("Run id", i.run_id.clone()));
        facts.push(("pgstep", self.pgstep_version.clone()));
        for (name, value) in facts {
            let _ = writeln!(md, "- {name}: {}", text(&value));
        }
        md.push('\n');
    }

    fn what_failed(&self, md: &mut String) {
        let Some(f) = &self.failure else { return };
        md.push_str("## What failed\n\n");
        if let Some(step) = &f.step {
            let _ = writeln!(md, "- Step: {}", text(step));
        }
        if let Some(location) = &f.location {
            let _ = writeln!(md, "- Where: {}", text(location));
        }
        md.push_str("- Error:\n\n");
        // A code block (indented 4 past the list item's 2) keeps the server's lines as they
        // are, rendered or printed raw.
        for line in mask_secrets(&f.error).lines() {
            let _ = writeln!(md, "      {line}");
        }
        if let Some(verdict) = &self.source {
            let _ = writeln!(
                md,
                "\n- Source database: {}",
                text(&verdict.lines().join(" "))
            );
        }
        md.push('\n');
    }

    fn still_connected_table(&self, md: &mut String) {
        if self.still_connected.is_empty() {
            return;
        }
        md.push_str("## Still connected\n\n");
        let rows: Vec<Vec<String>> = self
            .still_connected
            .iter()
            .map(|s| {
                vec![
                    s.pid.to_string(),
                    s.user.clone(),
                    s.application.clone(),
                    s.client.clone(),
                    s.since.clone(),
                    s.state.clone(),
                ]
            })
            .collect();
        table(
            md,
            &["Pid", "User", "Application", "Client", "Since", "State"],
            &rows,
        );
        md.push('\n');
    }

    fn steps_table(&self, md: &mut String) {
        if self.steps.is_empty() {
            return;
        }
        md.push_str("## Steps\n\n");
        let rows: Vec<Vec<String>> = self
            .steps
            .iter()
            .map(|s| {
                vec![
                    s.step.clone(),
                    step_state(&s.state).to_owned(),
                    clock(&s.started_at),
                    duration(s.seconds),
                    s.detail.clone().unwrap_or_default(),
                ]
            })
            .collect();
        table(
            md,
            &["Step", "Result", "Started", "Duration", "Notes"],
            &rows,
        );
        md.push('\n');
    }

    fn checks_list(&self, md: &mut String) {
        if self.checks.is_empty() {
            return;
        }
        md.push_str("## Checks\n\n");
        for c in &self.checks {
            let line = if c.ok {
                format!("- ✓ {} — {}", c.name, c.detail)
            } else {
                format!("- ✗ {} — FAILED: {}", c.name, c.detail)
            };
            let _ = writeln!(md, "{}", text(&line));
        }
        md.push('\n');
    }

    fn fingerprints_list(&self, md: &mut String) {
        let f = &self.fingerprints;
        if f.before.is_none() && f.after.is_none() {
            return;
        }
        md.push_str("## Schema fingerprints\n\n");
        for (name, value) in [("Before", &f.before), ("After", &f.after)] {
            let shown = value.as_deref().unwrap_or("(not taken)");
            let _ = writeln!(md, "- {name}: {}", text(shown));
        }
        md.push('\n');
    }

    fn backup_list(&self, md: &mut String) {
        md.push_str("## Backup\n\n");
        match &self.backup {
            Some(BackupRecord::Taken { path, size, sha256 }) => {
                let _ = writeln!(md, "- File: {}", text(&path.display().to_string()));
                let _ = writeln!(md, "- Size: {}", size_text(*size));
                let _ = writeln!(md, "- SHA-256: {sha256}");
            }
            Some(BackupRecord::NotTaken { reason }) => {
                let _ = writeln!(md, "No backup was taken: {}", text(reason));
            }
            None => md.push_str("No backup was recorded for this run.\n"),
        }
        md.push('\n');
    }

    fn confirmations_list(&self, md: &mut String) {
        if self.confirmations.is_empty() {
            return;
        }
        md.push_str("## Manual confirmations\n\n");
        for c in &self.confirmations {
            let _ = writeln!(md, "- {} {}", clock(&c.at), text(&c.item));
        }
        md.push('\n');
    }

    fn changes_table(&self, md: &mut String) {
        md.push_str("## Changes made on the server\n\n");
        if self.changes.is_empty() {
            md.push_str("None.\n\n");
            return;
        }
        let rows: Vec<Vec<String>> = self
            .changes
            .iter()
            .map(|c| {
                let result = match (&c.undone, self.outcome) {
                    (Some(u), _) => format!("undone at {}: {}", clock(&u.at), u.how),
                    (None, Outcome::Success) => self.after_success(&c.change),
                    (None, _) => "NOT undone".to_owned(),
                };
                vec![c.id.to_string(), c.change.describe(), clock(&c.at), result]
            })
            .collect();
        table(md, &["#", "Change", "At", "Result"], &rows);
        md.push('\n');
    }

    /// The name `db` has now: followed through the renames the run made (a fixed-name
    /// cut-over renames the old database aside and the new one into its name).
    fn now_named(&self, db: &str) -> String {
        let mut name = db.to_owned();
        for c in &self.changes {
            if let Change::Renamed { from, to } = &c.change
                && *from == name
                && c.undone.is_none()
            {
                name.clone_from(to);
            }
        }
        name
    }

    /// What a change kept by a successful upgrade means now, naming databases as they are
    /// called now.
    fn after_success(&self, change: &Change) -> String {
        let cut_over = self.cut_over().is_some();
        match change {
            Change::AccessBlocked { db, .. } if cut_over => {
                let now = self.now_named(db);
                if now == *db {
                    format!("in place: \"{db}\" is the old database, kept closed to users")
                } else {
                    format!(
                        "in place on the old database, now \"{now}\", kept closed to users; \
                         \"{db}\" is now the new database, open to users"
                    )
                }
            }
            Change::BannerSet { db, .. } if cut_over => {
                let now = self.now_named(db);
                if now == *db {
                    format!("in place on \"{db}\", the old database")
                } else {
                    format!("in place on the old database, now \"{now}\"")
                }
            }
            Change::CloneCreating { name, .. } => {
                let now = self.now_named(name);
                if now == *name {
                    "in place".to_owned()
                } else {
                    format!("in place: now \"{now}\", open to users")
                }
            }
            _ => "in place".to_owned(),
        }
    }

    fn next_steps_list(&self, md: &mut String) {
        if self.next_steps.is_empty() {
            return;
        }
        md.push_str("## What to do next\n\n");
        for (n, step) in self.next_steps.iter().enumerate() {
            let _ = writeln!(md, "{}. {}", n + 1, text(step));
        }
        md.push('\n');
    }
}

/// The changes a journal recorded, in the order they were made, with their undo.
pub fn changes_from_journal(record: &RunRecord) -> Vec<ChangeRecord> {
    let mut changes: Vec<ChangeRecord> = Vec::new();
    for (at, entry) in &record.entries {
        match entry {
            Entry::Change { id, change } => changes.push(ChangeRecord {
                id: *id,
                change: change.clone(),
                at: at.clone(),
                confirmed: false,
                undone: None,
            }),
            Entry::Confirmed { id } => {
                if let Some(c) = changes.iter_mut().find(|c| c.id == *id) {
                    c.confirmed = true;
                }
            }
            Entry::Undone { id, how } => {
                if let Some(c) = changes.iter_mut().find(|c| c.id == *id) {
                    c.undone = Some(Undo {
                        at: at.clone(),
                        how: how.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    changes
}

/// Step timings from the journal's `Step` entries: a step's time runs from its `started`
/// entry to the next entry of the same step; a step that never finished runs to the journal's
/// last entry and keeps the state `started`.
pub fn steps_from_journal(record: &RunRecord) -> Vec<StepTiming> {
    let mut steps: Vec<StepTiming> = Vec::new();
    let mut open: Vec<(String, usize)> = Vec::new();
    for (at, entry) in &record.entries {
        let Entry::Step {
            step,
            state,
            detail,
        } = entry
        else {
            continue;
        };
        let started = open.iter().position(|(name, _)| name == step);
        match (state.as_str(), started) {
            ("started", _) => {
                open.push((step.clone(), steps.len()));
                steps.push(StepTiming {
                    step: step.clone(),
                    state: state.clone(),
                    started_at: at.clone(),
                    seconds: 0.0,
                    detail: detail.clone(),
                });
            }
            (_, Some(k)) => {
                let (_, index) = open.remove(k);
                let timing = &mut steps[index];
                timing.state = state.clone();
                timing.seconds = seconds_between(&timing.started_at, at);
                if detail.is_some() {
                    timing.detail = detail.clone();
                }
            }
            (_, None) => steps.push(StepTiming {
                step: step.clone(),
                state: state.clone(),
                started_at: at.clone(),
                seconds: 0.0,
                detail: detail.clone(),
            }),
        }
    }
    if let Some((last, _)) = record.entries.last() {
        for (_, index) in open {
            let timing = &mut steps[index];
            timing.seconds = seconds_between(&timing.started_at, last);
        }
    }
    steps
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

/// Free text for Markdown: masked, on one line.
fn text(s: &str) -> String {
    mask_secrets(s).replace(['\r', '\n'], " ")
}

/// A Markdown table whose columns are padded, so that it also reads well printed raw.
fn table(md: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let cell = |s: &str| text(s).replace('|', "\\|");
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cell(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("| {} |", padded.join(" | ")).trim_end().to_owned()
    };
    let _ = writeln!(
        md,
        "{}",
        line(header.iter().map(|h| (*h).to_owned()).collect())
    );
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let _ = writeln!(md, "|-{}-|", rule.join("-|-"));
    for row in rows {
        let _ = writeln!(md, "{}", line(row));
    }
}

fn step_state(state: &str) -> &str {
    match state {
        "started" => "did not finish",
        "failed" => "FAILED",
        other => other,
    }
}

fn parse_time(at: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(at).ok()
}

fn seconds_between(from: &str, to: &str) -> f64 {
    match (parse_time(from), parse_time(to)) {
        (Some(a), Some(b)) => (b - a).num_milliseconds().max(0) as f64 / 1000.0,
        _ => 0.0,
    }
}

/// "2026-05-01 02:15:00 UTC" (or with its offset) from an RFC 3339 time; the text itself if it
/// does not parse.
fn when(at: &str) -> String {
    match parse_time(at) {
        Some(t) if t.offset().local_minus_utc() == 0 => {
            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        }
        Some(t) => t.format("%Y-%m-%d %H:%M:%S %:z").to_string(),
        None => at.to_owned(),
    }
}

/// The time of day of an RFC 3339 time (as recorded, in its own offset); the text itself if
/// it does not parse.
fn clock(at: &str) -> String {
    parse_time(at).map_or_else(|| at.to_owned(), |t| t.format("%H:%M:%S").to_string())
}

/// "0.4 s", "12 s", "3 min 05 s", "1 h 02 min".
fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".to_owned();
    }
    if seconds < 10.0 {
        return format!("{seconds:.1} s");
    }
    let whole = seconds.round() as u64;
    match whole {
        0..60 => format!("{whole} s"),
        60..3600 => format!("{} min {:02} s", whole / 60, whole % 60),
        _ => format!("{} h {:02} min", whole / 3600, whole % 3600 / 60),
    }
}

/// "12.3 MiB (12,912,345 bytes)".
fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut exact = String::new();
    let digits = bytes.to_string();
    for (n, ch) in digits.chars().enumerate() {
        if n > 0 && (digits.len() - n).is_multiple_of(3) {
            exact.push(',');
        }
        exact.push(ch);
    }
    if bytes < 1024 {
        return format!("{exact} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit} ({exact} bytes)")
}

/// "1 change", "3 changes".
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::RunKind;
    use std::fs;

    fn info() -> RunInfo {
        RunInfo {
            run_id: "20260501T001500Z-clinic_v1-4242".to_owned(),
            kind: RunKind::Upgrade,
            server: "db1.example:5432".to_owned(),
            source_db: "clinic_v1".to_owned(),
            bundle: Some("clinic".to_owned()),
            from: Some("1".to_owned()),
            to: Some("2".to_owned()),
            operator: "alice".to_owned(),
            host: "db1".to_owned(),
            pid: 4242,
            started_at: "2026-05-01T00:15:00Z".to_owned(),
        }
    }

    fn timing(step: &str, state: &str, at: &str, seconds: f64, detail: Option<&str>) -> StepTiming {
        StepTiming {
            step: step.to_owned(),
            state: state.to_owned(),
            started_at: at.to_owned(),
            seconds,
            detail: detail.map(str::to_owned),
        }
    }

    fn check(name: &str, ok: bool, detail: &str) -> CheckResult {
        CheckResult {
            name: name.to_owned(),
            ok,
            detail: detail.to_owned(),
        }
    }

    fn change(id: u32, change: Change, at: &str, undone: Option<(&str, &str)>) -> ChangeRecord {
        ChangeRecord {
            id,
            change,
            at: at.to_owned(),
            confirmed: true,
            undone: undone.map(|(at, how)| Undo {
                at: at.to_owned(),
                how: how.to_owned(),
            }),
        }
    }

    fn banner() -> Change {
        Change::BannerSet {
            db: "clinic_v1".to_owned(),
            previous: None,
        }
    }

    fn clone_change() -> Change {
        Change::CloneCreating {
            name: "clinic_v2".to_owned(),
            source: "clinic_v1".to_owned(),
        }
    }

    fn common(outcome: Outcome) -> Report {
        let mut r = Report::new(info(), outcome);
        r.pgstep_version = "0.1.0".to_owned();
        r.fingerprints.before = Some("sha256:1111".to_owned());
        r.backup = Some(BackupRecord::Taken {
            path: PathBuf::from("/var/lib/pgstep/backups/clinic_v1-v1-20260501T021530.dump"),
            size: 12_912_345,
            sha256: "ab12".to_owned(),
        });
        r.confirmations = vec![
            Confirmation {
                item: "users informed".to_owned(),
                at: "2026-05-01T00:15:10Z".to_owned(),
            },
            Confirmation {
                item: "importers and backup jobs stopped".to_owned(),
                at: "2026-05-01T00:15:12Z".to_owned(),
            },
        ];
        r
    }

    fn success() -> Report {
        let mut r = common(Outcome::Success);
        r.finished_at = Some("2026-05-01T00:18:12Z".to_owned());
        r.fingerprints.after = Some("sha256:2222".to_owned());
        r.steps = vec![
            timing("plan", "done", "2026-05-01T00:15:00Z", 0.21, None),
            timing(
                "backup",
                "done",
                "2026-05-01T00:15:13Z",
                47.0,
                Some("12.3 MiB"),
            ),
            timing(
                "clone and upgrade",
                "done",
                "2026-05-01T00:16:00Z",
                125.4,
                None,
            ),
            timing("cut-over", "done", "2026-05-01T00:18:10Z", 1.5, None),
        ];
        r.checks = vec![
            check("fingerprint of version 1", true, "matches the reference"),
            check("patients | row count", true, "100000 = 100000"),
        ];
        r.changes = vec![
            change(
                1,
                banner(),
                "2026-05-01T00:15:59Z",
                Some(("2026-05-01T00:18:10Z", "banner removed")),
            ),
            change(2, clone_change(), "2026-05-01T00:16:00Z", None),
            change(
                3,
                Change::CutOverDone {
                    old: "clinic_v1".to_owned(),
                    new: "clinic_v2".to_owned(),
                },
                "2026-05-01T00:18:11Z",
                None,
            ),
        ];
        r.next_steps = vec![
            "Point the clients at \"clinic_v2\".".to_owned(),
            "Tell the users they can work again.".to_owned(),
        ];
        r
    }

    fn failed() -> Report {
        let mut r = common(Outcome::Failed);
        r.finished_at = Some("2026-05-01T00:16:30Z".to_owned());
        r.failure = Some(Failure {
            step: Some("clone and upgrade".to_owned()),
            location: Some("002_encounters.sql:17".to_owned()),
            error: "ERROR 42703: column \"visit_ts\" does not exist\n  HINT: Perhaps you meant \"visit_at\".".to_owned(),
        });
        r.steps = vec![
            timing("plan", "done", "2026-05-01T00:15:00Z", 0.21, None),
            timing("backup", "done", "2026-05-01T00:15:13Z", 47.0, None),
            timing(
                "clone and upgrade",
                "failed",
                "2026-05-01T00:16:00Z",
                28.0,
                Some("step 1 → 2"),
            ),
        ];
        r.checks = vec![
            check("fingerprint of version 1", true, "matches the reference"),
            check("version marker after step 1 → 2", false, "still 1"),
        ];
        r.changes = vec![
            change(
                1,
                banner(),
                "2026-05-01T00:15:59Z",
                Some(("2026-05-01T00:16:29Z", "banner removed")),
            ),
            change(
                2,
                clone_change(),
                "2026-05-01T00:16:00Z",
                Some(("2026-05-01T00:16:30Z", "clone dropped")),
            ),
        ];
        r.next_steps = vec!["Users can go on working with \"clinic_v1\".".to_owned()];
        r
    }

    #[test]
    fn report_markdown_of_a_successful_upgrade() {
        assert_eq!(success().to_markdown(), SUCCESS_MD);
    }

    #[test]
    fn report_markdown_of_a_failed_upgrade() {
        assert_eq!(failed().to_markdown(), FAILED_MD);
    }

    #[test]
    fn report_summary_says_what_was_not_undone() {
        let mut r = Report::new(info(), Outcome::Cancelled);
        r.failure = Some(Failure {
            step: Some("backup".to_owned()),
            location: None,
            error: "cancelled".to_owned(),
        });
        r.changes = vec![
            change(
                1,
                banner(),
                "2026-05-01T00:15:59Z",
                Some(("2026-05-01T00:16:29Z", "banner removed")),
            ),
            change(2, clone_change(), "2026-05-01T00:16:00Z", None),
        ];
        r.backup = Some(BackupRecord::NotTaken {
            reason: "--no-backup given".to_owned(),
        });
        let md = r.to_markdown();
        assert!(
            md.starts_with("# Upgrade of clinic_v1, version 1 → 2: CANCELLED\n"),
            "{md}"
        );
        assert!(
            md.contains(
                "was CANCELLED by the operator at the step \"backup\". Of the 2 changes pgstep \
                 made on the server, 1 was NOT undone (see Changes)."
            ),
            "{md}"
        );
        assert!(md.contains("| NOT undone "), "{md}");
        assert!(
            md.contains("No backup was taken: --no-backup given\n"),
            "{md}"
        );

        let refused = Report::new(info(), Outcome::Refused).to_markdown();
        assert!(
            refused.contains("pgstep changed nothing on the server."),
            "{refused}"
        );
        assert!(
            refused.contains("No backup was recorded for this run."),
            "{refused}"
        );
    }

    #[test]
    fn report_from_journal_times_steps_and_lists_changes() {
        use crate::journal::Journal;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::create_in(dir.path(), info()).expect("journal");
        let step = |name: &str, state: &str| Entry::Step {
            step: name.to_owned(),
            state: state.to_owned(),
            detail: None,
        };
        j.append(step("backup", "started")).expect("append");
        j.append(step("backup", "done")).expect("append");
        let id = j.change(banner()).expect("change");
        j.append(Entry::Confirmed { id }).expect("append");
        j.append(step("clone", "started")).expect("append");
        j.change(clone_change()).expect("change");
        j.append(Entry::Undone {
            id,
            how: "banner removed".to_owned(),
        })
        .expect("append");
        let record = crate::journal::read_run(j.path()).expect("read");

        let r = Report::from_journal(&record, Outcome::Failed);
        let steps: Vec<(&str, &str)> = r
            .steps
            .iter()
            .map(|s| (s.step.as_str(), s.state.as_str()))
            .collect();
        assert_eq!(steps, [("backup", "done"), ("clone", "started")]);
        assert!(r.steps.iter().all(|s| s.seconds >= 0.0 && s.seconds < 60.0));
        assert_eq!(r.changes.len(), 2);
        assert!(r.changes[0].confirmed);
        assert_eq!(
            r.changes[0].undone.as_ref().map(|u| u.how.as_str()),
            Some("banner removed")
        );
        assert!(!r.changes[1].confirmed && r.changes[1].undone.is_none());
        assert_eq!(r.finished_at, None);
        assert!(r.to_markdown().contains("| did not finish |"));
    }

    #[test]
    fn report_write_leaves_both_files_complete_and_masked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reports = dir.path().join("reports");
        let mut r = failed();
        r.failure = Some(Failure {
            step: None,
            location: None,
            error: "could not connect with password=hunter2 to postgres://a:hunter2@h/db"
                .to_owned(),
        });
        let (md, json) = write(&r, &reports).expect("write");
        assert_eq!(md, reports.join("20260501T001500Z-clinic_v1-4242.md"));
        assert_eq!(json, reports.join("20260501T001500Z-clinic_v1-4242.json"));
        let md_text = fs::read_to_string(&md).expect("md");
        let json_text = fs::read_to_string(&json).expect("json");
        assert_eq!(md_text, r.to_markdown());
        for t in [&md_text, &json_text] {
            assert!(!t.contains("hunter2"), "{t}");
            assert!(t.contains("password=***"), "{t}");
        }
        let back: Report = serde_json::from_str(&json_text).expect("parse the JSON report");
        assert_eq!(back.changes, r.changes);
        assert_eq!(back.outcome, Outcome::Failed);
        assert_eq!(back.backup, r.backup);
        let names: Vec<_> = fs::read_dir(&reports)
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }

    #[test]
    fn report_durations_and_sizes_read_naturally() {
        assert_eq!(duration(0.04), "0.0 s");
        assert_eq!(duration(9.96), "10.0 s");
        assert_eq!(duration(59.4), "59 s");
        assert_eq!(duration(3599.0), "59 min 59 s");
        assert_eq!(duration(3725.0), "1 h 02 min");
        assert_eq!(duration(f64::NAN), "?");
        assert_eq!(size_text(999), "999 bytes");
        assert_eq!(size_text(1536), "1.5 KiB (1,536 bytes)");
        assert_eq!(
            size_text(5 * 1024 * 1024 * 1024),
            "5.0 GiB (5,368,709,120 bytes)"
        );
    }

    const SUCCESS_MD: &str = r##"# Upgrade of clinic_v1, version 1 → 2: succeeded

The upgrade of "clinic_v1" from version 1 to 2 on db1.example:5432 succeeded. It took 3 min 12 s. pgstep made 3 changes on the server. Clients now use "clinic_v2"; "clinic_v1" was kept. See "What to do next" at the end.

- Database: clinic_v1 on db1.example:5432
- Outcome: succeeded
- Application bundle: clinic
- Versions: 1 → 2
- Started: 2026-05-01 00:15:00 UTC
- Finished: 2026-05-01 00:18:12 UTC (3 min 12 s)
- Run by: alice on host db1, pid 4242
- Run id: 20260501T001500Z-clinic_v1-4242
- pgstep: 0.1.0

## Steps

| Step              | Result | Started  | Duration   | Notes    |
|-------------------|--------|----------|------------|----------|
| plan              | done   | 00:15:00 | 0.2 s      |          |
| backup            | done   | 00:15:13 | 47 s       | 12.3 MiB |
| clone and upgrade | done   | 00:16:00 | 2 min 05 s |          |
| cut-over          | done   | 00:18:10 | 1.5 s      |          |

## Checks

- ✓ fingerprint of version 1 — matches the reference
- ✓ patients | row count — 100000 = 100000

## Schema fingerprints

- Before: sha256:1111
- After: sha256:2222

## Backup

- File: /var/lib/pgstep/backups/clinic_v1-v1-20260501T021530.dump
- Size: 12.3 MiB (12,912,345 bytes)
- SHA-256: ab12

## Manual confirmations

- 00:15:10 users informed
- 00:15:12 importers and backup jobs stopped

## Changes made on the server

| # | Change                                                | At       | Result                             |
|---|-------------------------------------------------------|----------|------------------------------------|
| 1 | logon banner set on "clinic_v1"                       | 00:15:59 | undone at 00:18:10: banner removed |
| 2 | database "clinic_v2" created as a copy of "clinic_v1" | 00:16:00 | in place                           |
| 3 | cut-over from "clinic_v1" to "clinic_v2" done         | 00:18:11 | in place                           |

## What to do next

1. Point the clients at "clinic_v2".
2. Tell the users they can work again.
"##;

    const FAILED_MD: &str = r##"# Upgrade of clinic_v1, version 1 → 2: FAILED

The upgrade of "clinic_v1" from version 1 to 2 on db1.example:5432 FAILED at the step "clone and upgrade": 002_encounters.sql:17: ERROR 42703: column "visit_ts" does not exist. It took 1 min 30 s. Every change pgstep made on the server was undone. 1 check failed (see Checks). See "What to do next" at the end.

- Database: clinic_v1 on db1.example:5432
- Outcome: FAILED
- Application bundle: clinic
- Versions: 1 → 2
- Started: 2026-05-01 00:15:00 UTC
- Finished: 2026-05-01 00:16:30 UTC (1 min 30 s)
- Run by: alice on host db1, pid 4242
- Run id: 20260501T001500Z-clinic_v1-4242
- pgstep: 0.1.0

## What failed

- Step: clone and upgrade
- Where: 002_encounters.sql:17
- Error:

      ERROR 42703: column "visit_ts" does not exist
        HINT: Perhaps you meant "visit_at".

## Steps

| Step              | Result | Started  | Duration | Notes      |
|-------------------|--------|----------|----------|------------|
| plan              | done   | 00:15:00 | 0.2 s    |            |
| backup            | done   | 00:15:13 | 47 s     |            |
| clone and upgrade | FAILED | 00:16:00 | 28 s     | step 1 → 2 |

## Checks

- ✓ fingerprint of version 1 — matches the reference
- ✗ version marker after step 1 → 2 — FAILED: still 1

## Schema fingerprints

- Before: sha256:1111
- After: (not taken)

## Backup

- File: /var/lib/pgstep/backups/clinic_v1-v1-20260501T021530.dump
- Size: 12.3 MiB (12,912,345 bytes)
- SHA-256: ab12

## Manual confirmations

- 00:15:10 users informed
- 00:15:12 importers and backup jobs stopped

## Changes made on the server

| # | Change                                                | At       | Result                             |
|---|-------------------------------------------------------|----------|------------------------------------|
| 1 | logon banner set on "clinic_v1"                       | 00:15:59 | undone at 00:16:29: banner removed |
| 2 | database "clinic_v2" created as a copy of "clinic_v1" | 00:16:00 | undone at 00:16:30: clone dropped  |

## What to do next

1. Users can go on working with "clinic_v1".
"##;
}

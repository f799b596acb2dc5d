//! The Markdown report: written for people, and for the printer (tables padded so that they
//! also read well raw).

use std::fmt::Write as _;

use super::units::{clock, duration, parse_time, size_text, when};
use super::{BackupRecord, Outcome, Report};
use crate::journal::{Change, StepState, mask_secrets};

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

impl Report {
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
            let _ = writeln!(md, "- Where: {}", text(&location.to_string()));
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
                    step_result(&s.state).to_owned(),
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

/// A step's state in the Steps table.
fn step_result(state: &StepState) -> &str {
    match state {
        StepState::Started => "did not finish",
        StepState::Failed => "FAILED",
        other => other.as_str(),
    }
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

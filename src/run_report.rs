//! The report every run leaves: built from the finished checklist (what each step found) and
//! the run's journal (when things happened, what was changed and undone), written as Markdown
//! and JSON into the data directory.

use std::path::{Path, PathBuf};

use crate::checklist::SessionInfo;
use crate::checklist::{
    BackupOutput, Checklist, Outcome, PlanKind, StepId, StepOutput, StepStatus,
};
use crate::journal::{RunInfo, RunKind, StepState, read_run};
use crate::report::{
    self, BackupRecord, Confirmation, Failure, Report, ScriptPosition, StepTiming,
};
use crate::script::Location;

/// What the front end knows about the run before it starts, for a report of a run that was
/// refused before its journal existed.
#[derive(Debug, Clone)]
pub struct ReportContext {
    pub data_dir: PathBuf,
    pub server: String,
    pub database: String,
}

/// Writes the run's report; returns the Markdown and JSON paths.
pub fn write(
    c: &Checklist,
    outcome: &Outcome,
    ctx: &ReportContext,
) -> std::io::Result<(PathBuf, PathBuf)> {
    let report = build(c, outcome, ctx);
    report::write(&report, &ctx.data_dir.join("reports"))
}

pub fn build(c: &Checklist, outcome: &Outcome, ctx: &ReportContext) -> Report {
    let plan = c.plan().cloned();
    let record = plan
        .as_ref()
        .and_then(|p| p.journal.as_deref())
        .and_then(|j| read_run(Path::new(j)).ok());
    let mut report = match &record {
        Some(r) => Report::from_journal(r, report_outcome(outcome)),
        None => {
            let mut info = RunInfo::new(run_kind(c.kind), ctx.server.clone(), &ctx.database);
            if let Some(p) = &plan {
                info.from = Some(p.from.to_string());
                info.to = Some(p.to.to_string());
            }
            let mut r = Report::new(info, report_outcome(outcome));
            r.steps = steps_from_checklist(c);
            r
        }
    };
    report.finished_at =
        Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    fill_from_outputs(&mut report, c);
    if let Some(p) = &plan {
        compare_with_rehearsal(&mut report, p);
    }
    for t in &mut report.steps {
        if let Some(step) = c.steps.iter().find(|s| s.id.key() == t.step) {
            t.step = step.id.title().to_owned();
        }
    }
    if let Outcome::Failed {
        step,
        what,
        source,
        location,
        ..
    } = outcome
    {
        report.source = source.clone();
        report.failure = Some(Failure {
            step: step.map(|s| s.title().to_owned()),
            location: script_location(location.as_ref()),
            error: what.clone(),
        });
    }
    report.still_connected = still_connected(c, outcome);
    report.next_steps = next_steps(c, outcome);
    report
}

fn report_outcome(o: &Outcome) -> report::Outcome {
    match o {
        Outcome::Success => report::Outcome::Success,
        Outcome::Failed {
            cancelled: true, ..
        } => report::Outcome::Cancelled,
        Outcome::Failed { refused: true, .. } => report::Outcome::Refused,
        Outcome::Failed { .. } => report::Outcome::Failed,
    }
}

fn run_kind(k: PlanKind) -> RunKind {
    match k {
        PlanKind::Upgrade => RunKind::Upgrade,
        PlanKind::Rehearsal => RunKind::Rehearsal,
        PlanKind::Fixup => RunKind::Fixup,
        PlanKind::Restore => RunKind::Restore,
        PlanKind::Bootstrap => RunKind::Bootstrap,
    }
}

fn steps_from_checklist(c: &Checklist) -> Vec<StepTiming> {
    c.steps
        .iter()
        .filter(|s| s.status != StepStatus::Pending)
        .map(|s| StepTiming {
            step: s.id.title().to_owned(),
            state: step_state(s.status),
            started_at: String::new(),
            seconds: s.elapsed.unwrap_or_default().as_secs_f64(),
            detail: s.error.clone().or_else(|| s.note.clone()),
        })
        .collect()
}

/// A checklist step's status in the words the journal uses for a step's state.
fn step_state(status: StepStatus) -> StepState {
    match status {
        StepStatus::Pending => StepState::Pending,
        StepStatus::Running => StepState::Running,
        StepStatus::Done => StepState::Done,
        StepStatus::Warning => StepState::Warning,
        StepStatus::Failed => StepState::Failed,
        StepStatus::Skipped => StepState::Skipped,
    }
}

/// Beside each step, what the latest rehearsal expected; and the downtime, expected and actual.
fn compare_with_rehearsal(report: &mut Report, plan: &crate::checklist::PlanSummary) {
    let Some(expected_total) = plan.expected_downtime() else {
        return;
    };
    let mut actual_total = 0.0;
    for t in &mut report.steps {
        let key = t.step.clone();
        let Some((_, secs)) = plan.expected.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        actual_total += t.seconds;
        let note = format!("expected {secs:.1} s");
        t.detail = Some(match t.detail.take() {
            Some(d) => format!("{d}; {note}"),
            None => note,
        });
    }
    let rehearsal = plan.rehearsal.clone().unwrap_or_default();
    report.checks.push(report::CheckResult {
        name: "downtime against the rehearsal".into(),
        ok: true,
        detail: format!(
            "expected {expected_total:.1} s (rehearsal {rehearsal}), took {actual_total:.1} s"
        ),
    });
}

/// Fingerprints, backup, checks and confirmations, from what the steps produced.
fn fill_from_outputs(report: &mut Report, c: &Checklist) {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for step in &c.steps {
        match &step.output {
            Some(StepOutput::Fingerprint { hash, .. }) => {
                report.fingerprints.before = Some(format!("sha256:{hash}"))
            }
            Some(StepOutput::Backup(BackupOutput::Taken {
                path, size, sha256, ..
            })) => {
                report.backup = Some(BackupRecord::Taken {
                    path: PathBuf::from(path),
                    size: *size,
                    sha256: sha256.clone(),
                });
            }
            Some(StepOutput::Backup(BackupOutput::Skipped { reason, .. })) => {
                report.backup = Some(BackupRecord::NotTaken {
                    reason: reason.clone(),
                })
            }
            Some(StepOutput::Checks(checks)) => {
                for ch in checks {
                    if let (true, Some(hash)) = (ch.ok, &ch.fingerprint) {
                        report.fingerprints.after = Some(hash.clone());
                    }
                    report.checks.push(report::CheckResult {
                        name: ch.name.clone(),
                        ok: ch.ok,
                        detail: ch.detail.clone(),
                    });
                }
            }
            Some(StepOutput::Confirmed(items)) => {
                report.confirmations = items
                    .iter()
                    .filter(|i| i.ticked)
                    .map(|i| Confirmation {
                        item: i.text.clone(),
                        at: now.clone(),
                    })
                    .collect();
            }
            _ => {}
        }
    }
}

/// The sessions that were still connected when the run stopped at the connected-user check
/// (refused because of them, or cancelled while waiting for them): who they are, from that
/// step's last listing. Empty otherwise.
pub fn still_connected(c: &Checklist, outcome: &Outcome) -> Vec<SessionInfo> {
    let Outcome::Failed {
        step: Some(StepId::ConnectedUsers),
        ..
    } = outcome
    else {
        return Vec::new();
    };
    match c
        .step(StepId::ConnectedUsers)
        .and_then(|s| s.output.as_ref())
    {
        Some(StepOutput::Sessions { sessions, .. }) => sessions.clone(),
        _ => Vec::new(),
    }
}

/// `file.sql:12` from an error text, when a script failed.
///
/// The failing script's line, when a script is to blame: an error about a file as a whole
/// (line 0) names none.
fn script_location(at: Option<&Location>) -> Option<ScriptPosition> {
    at.filter(|at| at.line > 0).map(ScriptPosition::from)
}

/// GNUmed's success and failure lists, for this run.
fn next_steps(c: &Checklist, outcome: &Outcome) -> Vec<String> {
    match (outcome, c.kind) {
        (Outcome::Success, PlanKind::Upgrade) => {
            let (new, old, old_open) = match c.step(StepId::CutOver).and_then(|s| s.output.clone())
            {
                Some(StepOutput::CutOver {
                    new_db,
                    old_db,
                    old_open,
                }) => (new_db, old_db, old_open),
                _ => (
                    String::from("the new database"),
                    String::from("the old database"),
                    None,
                ),
            };
            let first =
                old_open.map(|why| crate::checklist::old_database_sentence(&old, Some(&why)));
            first.into_iter().chain([
                format!(
                    "Point clients, importers and backup jobs to \"{new}\", then restart importers and backup jobs."
                ),
                format!("Tell users to use \"{new}\"."),
                format!(
                    "Keep \"{old}\" (read-only, closed to users) for a while, perhaps until the next major version."
                ),
            ])
            .collect()
        }
        (Outcome::Success, _) => {
            vec!["Restart importers and backup jobs; tell users the database is back.".into()]
        }
        (
            Outcome::Failed {
                advice,
                changed_anything,
                source,
                ..
            },
            kind,
        ) => {
            let mut v = advice.clone();
            // Only when pgstep measured it (checklist::SourceVerdict).
            match source {
                Some(s) if !s.unchanged() => v.extend(s.lines()),
                Some(_) if *changed_anything && kind == PlanKind::Upgrade => {
                    v.push("Tell users to keep using the existing database as usual.".into());
                }
                _ => {}
            }
            v.push("Fix the problem named above, then try again (rehearse on a test server first); ask the application's maintainers for help if needed.".into());
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::script_location;
    use crate::script::Location;

    #[test]
    fn the_script_position_is_the_failing_line_unless_the_whole_file_is_to_blame() {
        let at = |line| Location {
            file: "v1-v2/02_functions.sql".into(),
            line,
            column: 5,
        };
        assert_eq!(
            script_location(Some(&at(31))).map(|p| p.to_string()),
            Some("v1-v2/02_functions.sql:31".into())
        );
        assert_eq!(script_location(Some(&at(0))), None);
        assert_eq!(script_location(None), None);
    }
}

//! What a run's journal tells for its report: when each step ran, what was changed and undone.

use super::units::seconds_between;
use super::{ChangeRecord, Outcome, Report, StepTiming, Undo};
use crate::journal::{Entry, RunRecord, StepState};

impl Report {
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
        let timing = || StepTiming {
            step: step.clone(),
            state: state.clone(),
            started_at: at.clone(),
            seconds: 0.0,
            detail: detail.clone(),
        };
        let started = open.iter().position(|(name, _)| name == step);
        match (state, started) {
            (StepState::Started, _) => {
                open.push((step.clone(), steps.len()));
                steps.push(timing());
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
            (_, None) => steps.push(timing()),
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

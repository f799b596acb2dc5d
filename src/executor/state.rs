//! The typed state a run keeps between its steps, split by concern: what the plan step found
//! of the source ([`Source`]), what the run changed and must undo or keep ([`Changes`]), and
//! what it notes for its report and a rehearsal's record ([`Record`]).

use std::time::Duration;

use super::error::StepError;
use super::steps::backup::background::Background;
use crate::bundle::{Bundle, Plausibility, Version};
use crate::checklist::{BackupOutput, SourceReading, StepId};
use crate::db::access::AccessSnapshot;
use crate::db::source_check::ReadingError;
use crate::engine::plan::UpgradePlan;
use crate::fingerprint::Fingerprint;
use crate::script::Script;

/// What the plan step found: the database, its version and size, and what will run on it.
#[derive(Default)]
pub(crate) struct Source {
    /// The application database the run works on (the source of an upgrade, the new database
    /// of a restore or bootstrap).
    pub name: Option<String>,
    pub current: Option<Version>,
    /// The source's size when the run began (bytes).
    pub size: u64,
    pub upgrade: Option<UpgradePlan>,
    /// The scripts of each upgrade step, loaded with their placeholders.
    pub scripts: Vec<Vec<Script>>,
    pub fixups: Vec<(Version, Script)>,
    pub fixups_skipped: Vec<String>,
    /// The source database and what the plan step read of it before anything else (see
    /// `source_verdict.rs`).
    pub before: Option<(String, Result<SourceReading, ReadingError>)>,
}

impl Source {
    pub fn name(&self) -> Result<String, StepError> {
        self.name.clone().ok_or_else(not_planned)
    }

    pub fn current(&self) -> Result<Version, StepError> {
        self.current.ok_or_else(not_planned)
    }

    pub fn upgrade(&self) -> Result<&UpgradePlan, StepError> {
        self.upgrade.as_ref().ok_or_else(not_planned)
    }

    /// Whether a fixup run found nothing to do (its later steps are then skipped).
    pub fn fixup_has_nothing_to_do(&self, step: StepId) -> bool {
        step != StepId::Plan && self.name.is_some() && self.fixups.is_empty()
    }

    /// The plausibility pairs that speak about this upgrade, in the bundle's order.
    pub fn plausibility_pairs(&self, bundle: Option<&Bundle>) -> Vec<Plausibility> {
        match (&self.upgrade, bundle) {
            (Some(plan), Some(bundle)) => bundle
                .plausibility
                .iter()
                .filter(|p| p.applies(plan.from, plan.to))
                .cloned()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The words of the logon banner and the NOTIFY payload.
    pub fn banner_text(&self, bundle: Option<&Bundle>) -> String {
        let app = bundle.map_or("the application", |b| b.name.as_str());
        match (self.current, self.upgrade.as_ref()) {
            (Some(from), Some(plan)) => {
                crate::db::banner::in_progress_message(app, &from, &plan.to)
            }
            (Some(from), None) => crate::db::banner::in_progress_message(app, &from, &from),
            _ => format!("{app}: maintenance in progress, please log off"),
        }
    }
}

fn not_planned() -> StepError {
    StepError::failed("the plan step has not run")
}

/// What the run changed (and must undo or keep), and what it made.
#[derive(Default)]
pub(crate) struct Changes {
    /// The source's access before the block.
    pub access: Option<AccessSnapshot>,
    /// The access the clone gets at the cut-over (the source's before the block); until then
    /// the clone is closed to all but pgstep.
    pub clone_access: Option<AccessSnapshot>,
    pub banner_previous: Option<Option<String>>,
    pub backup: Option<BackupOutput>,
    /// The backup, while it is taken on its own thread.
    pub background: Option<Background>,
    pub fingerprint: Option<Fingerprint>,
    pub fingerprint_overridden: bool,
}

/// What the run notes as it goes, for its report and a rehearsal's record.
#[derive(Default)]
pub(crate) struct Record {
    /// What a rehearsal found that would stop or slow the real run.
    pub problems: Vec<String>,
    /// How long each finished step took, for a rehearsal's record.
    pub step_times: Vec<(StepId, Duration)>,
    /// The step that failed and why, for a stopped rehearsal's record.
    pub failed: Option<String>,
    /// How long the backup took from start to verified, and whether alongside the upgrade.
    pub backup_took: Option<(Duration, bool)>,
    /// Who can still connect despite the block (superusers, the operator), for every listing.
    pub unblockable: Vec<String>,
    /// Users were connected, so a rehearsal's copy was restored from its backup instead of
    /// cloned (its clone time is not the real clone's).
    pub copied_from_backup: bool,
}

impl Record {
    /// A finished step's time; a step in parts (started, then awaited; refreshed) counts once,
    /// in all.
    pub fn step_took(&mut self, step: StepId, elapsed: Duration) {
        match self.step_times.iter_mut().find(|(s, _)| *s == step) {
            Some((_, total)) => *total += elapsed,
            None => self.step_times.push((step, elapsed)),
        }
    }
}

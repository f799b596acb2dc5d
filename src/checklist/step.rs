//! The steps of the checklists, in the words sysadmins use (GNUmed's best-practice notes,
//! seeds/001), and what each step produced.

use std::time::Duration;

use serde::Serialize;

use super::model::{CheckResult, SessionInfo, StepReport};
use crate::bundle::Version;

/// One step of a checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepId {
    Plan,
    Confirmations,
    ConnectedUsers,
    DiskSpace,
    Fingerprint,
    /// `CREATE DATABASE … TEMPLATE`, with what the template copy does not carry.
    Clone,
    Backup,
    Banner,
    /// The bundle's scripts on the clone (the key keeps its first name, `clone_upgrade`, which
    /// fault points and rehearsal records use).
    CloneUpgrade,
    SanityChecks,
    CutOver,
    /// Fixups in place (minor versions).
    ApplyFixups,
    /// pg_restore into a new database.
    Restore,
    /// Baseline and steps into a new database.
    Bootstrap,
}

impl StepId {
    /// The checklist's own words, as the sidebar shows them.
    pub fn title(self) -> &'static str {
        match self {
            StepId::Plan => "Plan",
            StepId::Confirmations => "Confirmations",
            StepId::ConnectedUsers => "Connected users",
            StepId::DiskSpace => "Disk space",
            StepId::Fingerprint => "Fingerprint",
            StepId::Clone => "Clone",
            StepId::Backup => "Backup",
            StepId::Banner => "Banner",
            StepId::CloneUpgrade => "Upgrade the clone",
            StepId::SanityChecks => "Sanity checks",
            StepId::CutOver => "Banner reset and cut-over",
            StepId::ApplyFixups => "Fixups",
            StepId::Restore => "Restore",
            StepId::Bootstrap => "Bootstrap",
        }
    }

    /// The key for help texts and fault points: `clone_upgrade`.
    pub fn key(self) -> &'static str {
        match self {
            StepId::Plan => "plan",
            StepId::Confirmations => "confirmations",
            StepId::ConnectedUsers => "connected_users",
            StepId::DiskSpace => "disk_space",
            StepId::Fingerprint => "fingerprint",
            StepId::Clone => "clone",
            StepId::Backup => "backup",
            StepId::Banner => "banner",
            StepId::CloneUpgrade => "clone_upgrade",
            StepId::SanityChecks => "sanity_checks",
            StepId::CutOver => "cut_over",
            StepId::ApplyFixups => "apply_fixups",
            StepId::Restore => "restore",
            StepId::Bootstrap => "bootstrap",
        }
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    /// Being worked on; also a step that goes on in the background (the backup, while the
    /// clone is upgraded) until the checklist waits for it.
    Running,
    Done,
    /// Done, with something the operator should know (an override, an unmeasurable disk).
    Warning,
    Failed,
    Skipped,
}

/// What the plan step decided, for the header and the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanSummary {
    pub application: String,
    pub server: String,
    pub source_db: String,
    pub target_db: String,
    pub from: Version,
    pub to: Version,
    /// What will happen, one line per step of the upgrade ("step 1 → 2: 3 scripts").
    pub lines: Vec<String>,
    /// The run's id and journal file, once the run has begun (the lock is taken).
    pub run_id: Option<String>,
    pub journal: Option<String>,
    /// Each downtime step's expected duration (step key, seconds), from the latest rehearsal of
    /// the same bundle and versions, scaled to this database's size; empty without one.
    pub expected: Vec<(String, f64)>,
    /// Which rehearsal the expectations come from (run id and time).
    pub rehearsal: Option<String>,
    /// How the backup will be written, and why (None: the operator chose, or no backup).
    pub backup: Option<BackupChoice>,
}

/// The backup format chosen for the database and the machine (`--backup-format auto`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupChoice {
    /// "custom format (one compressed file)", "directory format with 3 parallel pg_dump workers"
    pub format: String,
    pub why: String,
}

impl PlanSummary {
    /// The expected seconds of a step, if a rehearsal measured it.
    pub fn expected_seconds(&self, step: StepId) -> Option<f64> {
        self.expected
            .iter()
            .find(|(k, _)| k == step.key())
            .map(|(_, s)| *s)
    }

    /// The downtime to expect in all (seconds), if a rehearsal measured it.
    pub fn expected_downtime(&self) -> Option<f64> {
        (!self.expected.is_empty()).then(|| self.expected.iter().map(|(_, s)| s).sum())
    }
}

/// A manual item of the checklist, ticked by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManualItem {
    pub text: String,
    pub ticked: bool,
}

/// The manual parts of GNUmed's checklist.
pub fn manual_items() -> Vec<ManualItem> {
    [
        "Users were told about the downtime and asked to log off",
        "Importers and automatic scripts are stopped",
        "Backup jobs that would run during the downtime are stopped",
        "Client packages for the new version are ready",
    ]
    .into_iter()
    .map(|t| ManualItem {
        text: t.to_owned(),
        ticked: false,
    })
    .collect()
}

/// A disk-space need, as the disk-space step measured it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpaceLine {
    pub what: String,
    pub required: u64,
    /// None where it cannot be measured (remote server, unreadable path).
    pub available: Option<u64>,
}

impl SpaceLine {
    pub fn ok(&self) -> Option<bool> {
        self.available.map(|a| a >= self.required)
    }
}

/// The backup step's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackupOutput {
    Taken {
        path: String,
        size: u64,
        sha256: String,
        entries: usize,
    },
    /// No backup, by the operator's recorded choice; the database was read once instead.
    Skipped { reason: String, bytes_read: u64 },
}

/// What a finished step hands to the checklist (and the screens and the report).
/// Adjacently tagged: some variants hold lists, which an internally tagged enum cannot carry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum StepOutput {
    Plan(PlanSummary),
    Confirmed(Vec<ManualItem>),
    /// Sessions still connected after new connections were blocked (empty: nobody).
    Sessions {
        sessions: Vec<SessionInfo>,
        unblockable: Vec<String>,
    },
    Disk(Vec<SpaceLine>),
    Fingerprint {
        hash: String,
        matches: bool,
        reference: Option<Version>,
        diff: String,
    },
    /// The clone made (not yet upgraded).
    Cloned {
        db: String,
        source: String,
        /// Bytes copied (the source's size).
        size: u64,
        /// How the server copied it ("FILE_COPY", "WAL_LOG", or "restored from the backup").
        how: String,
        /// What was carried over that the template copy does not carry.
        carried: Vec<String>,
    },
    Backup(BackupOutput),
    Banner {
        message: Option<String>,
    },
    Upgraded(Vec<StepReport>),
    Checks(Vec<CheckResult>),
    CutOver {
        new_db: String,
        old_db: String,
        /// Why the old database is not (yet) read-only and closed to users, when it is not:
        /// the run stays pending until `pgstep recover` has closed it.
        old_open: Option<String>,
    },
    Fixups {
        applied: Vec<String>,
        skipped: Vec<String>,
        version: Version,
    },
    Restored {
        db: String,
        /// None: the backup records no schemas to compare (older metadata).
        fingerprint_matches: Option<bool>,
    },
    Bootstrapped {
        db: String,
        version: Version,
    },
    /// A rehearsal's end: its copy dropped, its record written.
    Rehearsed {
        /// One line: the downtime, the problems, the record.
        note: String,
        /// The downtime to expect on the rehearsed database (seconds).
        downtime: f64,
        /// What would stop or slow the real run.
        problems: Vec<String>,
        /// The record (Markdown).
        record: String,
    },
    /// A step with nothing to report.
    Nothing {
        note: String,
    },
}

/// One step as the front ends see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepView {
    pub id: StepId,
    pub status: StepStatus,
    #[serde(with = "crate::format::secs_opt")]
    pub elapsed: Option<Duration>,
    pub output: Option<StepOutput>,
    pub error: Option<String>,
    /// Why it was skipped or warned.
    pub note: Option<String>,
    /// How long it took in all, for a step that went on in the background (its `elapsed` is
    /// only what the checklist spent on it: the start and the wait).
    #[serde(with = "crate::format::secs_opt")]
    pub background_took: Option<Duration>,
}

impl StepView {
    pub fn new(id: StepId) -> Self {
        Self {
            id,
            status: StepStatus::Pending,
            elapsed: None,
            output: None,
            error: None,
            note: None,
            background_took: None,
        }
    }
}

/// What became of the old database after a cut-over, in one sentence for every front end:
/// "kept, read-only and closed" only when pgstep made it so and read it back.
pub fn old_database_sentence(old_db: &str, old_open: Option<&str>) -> String {
    match old_open {
        None => format!("\"{old_db}\" is kept, read-only and closed to users."),
        Some(why) => format!(
            "\"{old_db}\" is still open to users ({why}): run `pgstep recover` once the server is reachable to make it read-only and close it; `pgstep status` lists the run until then."
        ),
    }
}

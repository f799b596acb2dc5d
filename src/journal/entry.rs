//! What one line of a journal says: the entries and the changes they record.

use serde::{Deserialize, Serialize};

use super::{RunInfo, RunOutcome, StepState};

/// One line of the journal (its time is kept beside it, see [`RunRecord::entries`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum Entry {
    Started(RunInfo),
    Step {
        step: String,
        state: StepState,
        detail: Option<String>,
    },
    /// Written *before* the change is made: the change may or may not have happened.
    Change {
        id: u32,
        change: Change,
    },
    /// Written after the change succeeded (recovery does not depend on it).
    Confirmed {
        id: u32,
    },
    /// Written after the change was undone.
    Undone {
        id: u32,
        how: String,
    },
    /// Written only when nothing the run changed is still pending: every undo done and
    /// verified (or the run succeeded). Until then `pgstep status` lists the run.
    Finished {
        outcome: RunOutcome,
        detail: Option<String>,
    },
    /// A database the run created, with its oid, written just after `CREATE DATABASE`: undoing
    /// drops that database only, never another one that took its name since.
    Created {
        name: String,
        oid: u32,
    },
    /// Where the run works and what recovery needs beyond each change, written right after
    /// `Started` (older journals lack it: recovery then falls back on the run's description).
    Context(RunContext),
}

/// The server a run works on, and what undoing its changes needs without the bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunContext {
    /// `pg_control_system().system_identifier`: the same for every name the cluster is reached
    /// by, different for every other cluster. None when the role may not read it.
    #[serde(default)]
    pub system_identifier: Option<String>,
    /// The source database's oid on that server.
    #[serde(default)]
    pub source_oid: Option<u32>,
    /// The `application_name` of every session of the run (as the server keeps it, at most 63
    /// bytes): how recovery finds the sessions a killed run left working.
    #[serde(default)]
    pub application_name: Option<String>,
    /// The bundle's banner statements, so that recovery can reset the banner without it.
    #[serde(default)]
    pub banner: Option<BannerSql>,
    /// The bundle's absolute path (for the record; recovery does not need it).
    #[serde(default)]
    pub bundle: Option<String>,
}

/// The bundle's logon-banner statements (see `bundle::Banner`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BannerSql {
    pub get: String,
    pub set: String,
    pub clear: String,
}

impl From<&crate::bundle::Banner> for BannerSql {
    fn from(b: &crate::bundle::Banner) -> Self {
        BannerSql {
            get: b.get.clone(),
            set: b.set.clone(),
            clear: b.clear.clone(),
        }
    }
}

impl From<&BannerSql> for crate::bundle::Banner {
    fn from(b: &BannerSql) -> Self {
        crate::bundle::Banner {
            get: b.get.clone(),
            set: b.set.clone(),
            clear: b.clear.clone(),
        }
    }
}

/// Everything that must be undone if a run does not finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    BannerSet {
        db: String,
        previous: Option<String>,
    },
    AccessBlocked {
        db: String,
        /// Opaque to the journal: what the access module needs to restore access exactly.
        snapshot: serde_json::Value,
    },
    CloneCreating {
        name: String,
        source: String,
    },
    Renamed {
        from: String,
        to: String,
    },
    CutOverStarted {
        old: String,
        new: String,
    },
    CutOverDone {
        old: String,
        new: String,
    },
    FixupStarted {
        db: String,
        version: String,
    },
    /// pg_dump starts writing the backup `path` (under its partial name until it is verified).
    BackupWriting {
        path: String,
    },
}

impl Change {
    /// One line for people: the report, `pgstep status`, recovery messages.
    pub fn describe(&self) -> String {
        match self {
            Change::BannerSet { db, .. } => format!("logon banner set on \"{db}\""),
            Change::AccessBlocked { db, .. } => format!("new connections to \"{db}\" blocked"),
            Change::CloneCreating { name, source } => {
                format!("database \"{name}\" created as a copy of \"{source}\"")
            }
            Change::Renamed { from, to } => format!("database \"{from}\" renamed to \"{to}\""),
            Change::CutOverStarted { old, new } => {
                format!("cut-over from \"{old}\" to \"{new}\" started")
            }
            Change::CutOverDone { old, new } => {
                format!("cut-over from \"{old}\" to \"{new}\" done")
            }
            Change::FixupStarted { db, version } => {
                format!("fixup to version {version} started in place on \"{db}\"")
            }
            Change::BackupWriting { path } => format!("backup {path} being written"),
        }
    }
}

/// How a journal line is stored: its time, then the entry's own fields.
#[derive(Serialize, Deserialize)]
pub(super) struct Line {
    pub(super) at: String,
    #[serde(flatten)]
    pub(super) entry: Entry,
}

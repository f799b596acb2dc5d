//! What a run is asked to do: validated input, fixed before the executor starts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::backup::BackupFormat;
use crate::bundle::{Bundle, Version};
use crate::checklist::PlanKind;
use crate::conn::ConnSettings;

/// Where the backup goes, or why there is none.
#[derive(Debug, Clone)]
pub enum BackupPlan {
    Into {
        dir: PathBuf,
        format: BackupFormat,
    },
    /// Into `dir`, in the format that is fastest for this database on this machine: the plan
    /// step chooses it (`backup::choice`) and puts an `Into` in its place. `max_jobs` is the
    /// most parallel workers the operator allows (`--jobs`).
    Auto {
        dir: PathBuf,
        max_jobs: Option<u32>,
    },
    /// No backup: the reason is recorded and the database is read once instead (pg_dump to
    /// /dev/null), as GNUmed does, so that damaged pages are found before the upgrade.
    Skip {
        reason: String,
    },
}

impl BackupPlan {
    /// Where the backup goes (None: no backup).
    pub fn dir(&self) -> Option<&std::path::Path> {
        match self {
            BackupPlan::Into { dir, .. } | BackupPlan::Auto { dir, .. } => Some(dir),
            BackupPlan::Skip { .. } => None,
        }
    }
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub kind: PlanKind,
    /// The application's bundle (not needed to restore a backup).
    pub bundle: Option<Bundle>,
    pub server: ConnSettings,
    /// `--set NAME=VALUE` placeholder values.
    pub overrides: BTreeMap<String, String>,
    /// The source database (upgrade, fixup), or the new one (bootstrap, restore).
    pub database: Option<String>,
    pub to: Option<Version>,
    pub keep_failed: bool,
    pub backup: BackupPlan,
    /// Fixups: run those already recorded with the same checksum again.
    pub reapply: bool,
    /// Restore: the backup to restore and the parallel jobs of pg_restore.
    pub restore_from: Option<PathBuf>,
    pub jobs: u32,
    pub rehearsal: bool,
    /// Where the journal, log, lock file and report of the run go.
    pub data_dir: PathBuf,
    /// A fault to inject, `<step key>:fail|pause|panic` (honoured only in test builds).
    pub fault: Option<String>,
}

impl RunSpec {
    /// A rehearsal (asked for as the plan kind or by the flag), or the real run: the steps
    /// that differ are handed this, and never read the spec for it themselves.
    pub fn mode(&self) -> crate::engine::plan::Mode {
        if self.rehearsal || self.kind == PlanKind::Rehearsal {
            crate::engine::plan::Mode::Rehearsal
        } else {
            crate::engine::plan::Mode::Production
        }
    }

    /// A spec with defaults: backup into the default directory, nothing kept on failure.
    pub fn new(kind: PlanKind, bundle: Option<Bundle>, server: ConnSettings) -> Self {
        Self {
            kind,
            bundle,
            server,
            overrides: BTreeMap::new(),
            database: None,
            to: None,
            keep_failed: false,
            backup: BackupPlan::Auto {
                dir: crate::backup::default_backup_dir(),
                max_jobs: None,
            },
            reapply: false,
            restore_from: None,
            jobs: 2,
            rehearsal: false,
            data_dir: crate::paths::data_dir(),
            fault: std::env::var("PGSTEP_FAULT").ok(),
        }
    }
}

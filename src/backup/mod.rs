//! Backups with pg_dump (OMERO's `pg_dump -Fc`, seeds/003) and GNUmed's read-through check.
//!
//! This module owns everything pgstep does with pg_dump and pg_restore's `--list`: where a
//! backup goes and what it is called, running the tools with progress and cancellation, making
//! sure a backup on disk is complete, verified and described, and reading that description back.
//!
//! # Files
//! - Custom format (`-Fc`, the default): `<db>-v<version>-<time>.dump`, metadata beside it in
//!   `<db>-v<version>-<time>.dump.json`.
//! - Directory format (`-Fd -j N`): the directory `<db>-v<version>-<time>.dir/`, metadata beside
//!   it (not inside, so the directory holds exactly what pg_dump wrote) in
//!   `<db>-v<version>-<time>.dir.json`.
//!
//! pg_dump writes under a `.partial` name; the backup gets its final name only once it is
//! complete, flushed to disk, readable by `pg_restore --list` and checksummed; its metadata is
//! written last (under a temporary name, then renamed). Any failure or cancellation removes what
//! was written, so a backup under its final name with its metadata beside it is always whole.
//!
//! # Checksums
//! A custom-format backup's `sha256` is that of the file (`"checksum_of": "file"`). A directory
//! backup's (`"checksum_of": "sorted files"`) is the sha256 of, for each file of the directory in
//! byte order of the names: the name, a NUL byte, the size as 8 bytes big-endian, the contents.
//!
//! Connection settings reach the tools through their environment (a private password file),
//! never their command line.
//!
//! The parts: `dump` (a backup or a read-through with pg_dump: [`take_backup`],
//! [`read_through`]), `metadata` (the metadata file and the names of a backup's files),
//! `verify` (checks and checksums), `tool` (following a client program as it runs; finding one),
//! `output` (the files a backup leaves while it is written), `choice` (which format).

pub mod choice;
mod dump;
mod metadata;
mod output;
mod tool;
mod verify;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bundle::Version;
use crate::conn::ConnSettings;

pub use dump::{SourceError, dumped_table_sizes, read_through, take_backup};
pub use metadata::{
    BackupMetadata, archive_version_num, backup_path_of, metadata_path_of, new_backup_path,
    partial_path_of, read_metadata,
};
pub use tool::{POLL, ToolError, find_client_tool};
pub(crate) use tool::{ToolEnd, ToolRun, indent_lines, run_tool};
pub(crate) use verify::list_archive;
pub use verify::{checksum, checksum_directory, verify};

/// How pg_dump writes the backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackupFormat {
    /// One compressed file (`-Fc`); pg_restore can still restore it with parallel jobs.
    #[default]
    Custom,
    /// A directory of compressed files written by `jobs` parallel pg_dump workers (`-Fd -j N`).
    Directory { jobs: u32 },
}

impl BackupFormat {
    /// The name used in the metadata: "custom" or "directory".
    pub fn name(self) -> &'static str {
        match self {
            BackupFormat::Custom => "custom",
            BackupFormat::Directory { .. } => "directory",
        }
    }

    /// In words, for the plan and the log.
    pub fn describe(self) -> String {
        match self {
            BackupFormat::Custom => "custom format (one compressed file)".into(),
            BackupFormat::Directory { jobs } => {
                format!("directory format with {jobs} parallel pg_dump workers")
            }
        }
    }

    pub fn jobs(self) -> u32 {
        match self {
            BackupFormat::Custom => 1,
            BackupFormat::Directory { jobs } => jobs.max(1),
        }
    }

    pub(super) fn extension(self) -> &'static str {
        match self {
            BackupFormat::Custom => "dump",
            BackupFormat::Directory { .. } => "dir",
        }
    }

    pub(super) fn from_metadata(meta: &BackupMetadata) -> Option<Self> {
        match meta.format.as_str() {
            "custom" => Some(BackupFormat::Custom),
            "directory" => Some(BackupFormat::Directory { jobs: meta.jobs }),
            _ => None,
        }
    }
}

/// What to back up, where, and what to record about it.
#[derive(Debug, Clone, Copy)]
pub struct BackupRequest<'a> {
    /// Connection settings for the server; the database is `db`.
    pub server: &'a ConnSettings,
    pub db: &'a str,
    /// The directory the backup goes into (created if missing).
    pub dir: &'a Path,
    pub format: BackupFormat,
    pub server_version_num: u32,
    /// The application's version, for the file name and the metadata.
    pub version: Version,
    /// The schema fingerprint (hex) of `schemas`, recorded so a restore can be checked.
    pub fingerprint: &'a str,
    /// The schemas the fingerprint covers.
    pub schemas: &'a [String],
    /// A snapshot exported by an open transaction (`pg_export_snapshot()`): pg_dump reads the
    /// database as it was then.
    pub snapshot: Option<&'a str>,
    /// The backup is taken alongside the upgrade: pg_dump yields the CPU to it (nice 10).
    pub alongside: bool,
    /// The backup's name, when the caller chose it (with [`new_backup_path`]) and journalled
    /// its partial name first, so that `pgstep recover` can remove what a killed run left;
    /// None: a new name in `dir`.
    pub path: Option<&'a Path>,
    /// Fault points to honour (test builds only; `PGSTEP_FAULT`).
    pub fault: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The tool or something around it failed; nothing partial was left behind.
    #[error("{what} failed: {message}")]
    Failed { what: String, message: String },
    /// The operator cancelled: the tool was stopped and its partial output removed.
    #[error(
        "{what} was cancelled: pg_dump was stopped and its partial output removed; nothing else was changed"
    )]
    Cancelled { what: String },
    /// A backup on disk is unusable: missing, unreadable, modified or damaged.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl BackupError {
    pub fn is_cancelled(&self) -> bool {
        matches!(self, BackupError::Cancelled { .. })
    }

    pub(super) fn failed(what: &str, message: impl Into<String>) -> Self {
        BackupError::Failed {
            what: what.to_owned(),
            message: message.into(),
        }
    }

    pub(super) fn invalid(path: &Path, message: impl Into<String>) -> Self {
        BackupError::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// A verified backup.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    /// The `.dump` file or the `.dir` directory.
    pub path: PathBuf,
    pub metadata_path: PathBuf,
    /// "custom" or "directory".
    pub format: String,
    pub size: u64,
    pub sha256: String,
    /// Entries in the archive's table of contents (pg_restore --list).
    pub entries: usize,
    /// Tables whose rows pg_dump copied.
    pub tables: u64,
}

/// Where backups go unless `--backup-dir` says otherwise.
pub fn default_backup_dir() -> PathBuf {
    crate::paths::data_dir().join("backups")
}

#[cfg(test)]
mod tests;

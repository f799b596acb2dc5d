//! The metadata file beside a backup, and the names of a backup's files.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::output::{RemoveOnDrop, sync_dir};
use super::{BackupError, BackupFormat, BackupRequest};
use crate::bundle::Version;

/// What the metadata file beside a backup says. Fields added after the first release default
/// when missing, so older metadata still reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupMetadata {
    pub database: String,
    /// The application's version.
    pub version: String,
    /// The schema fingerprint (hex sha256) over `schemas` when the backup was taken.
    pub fingerprint: String,
    #[serde(default)]
    pub schemas: Vec<String>,
    pub server_version: String,
    /// pg_dump's `--version` line.
    pub pg_dump: String,
    pub created_at: String,
    /// "custom" or "directory".
    pub format: String,
    /// pg_dump's parallel jobs (1 for the custom format).
    #[serde(default = "one")]
    pub jobs: u32,
    /// The backup's file or directory name, relative to the metadata file's directory.
    pub file: String,
    /// Bytes: the file, or the sum of the directory's files.
    pub size: u64,
    pub sha256: String,
    /// What `sha256` is taken over: "file" or "sorted files" (see the module documentation).
    #[serde(default = "checksum_of_file")]
    pub checksum_of: String,
    /// Entries in the archive's table of contents (0: not recorded).
    #[serde(default)]
    pub entries: usize,
    #[serde(default)]
    pub pgstep_version: String,
    /// The source database's encoding and locale, which a restore gives the new database
    /// (empty: not recorded; the server's defaults are used).
    #[serde(default)]
    pub encoding: String,
    #[serde(default)]
    pub lc_collate: String,
    #[serde(default)]
    pub lc_ctype: String,
}

pub(super) fn one() -> u32 {
    1
}

pub(super) fn checksum_of_file() -> String {
    CHECKSUM_OF_FILE.to_owned()
}

pub(super) const CHECKSUM_OF_FILE: &str = "file";

pub(super) const CHECKSUM_OF_SORTED_FILES: &str = "sorted files";

/// The metadata that depends on the request and the source, not on the written backup.
pub(super) fn metadata_for(
    req: &BackupRequest,
    source: SourceFacts,
    pg_dump: String,
) -> BackupMetadata {
    BackupMetadata {
        database: req.db.to_owned(),
        version: req.version.to_string(),
        fingerprint: req.fingerprint.to_owned(),
        schemas: req.schemas.to_vec(),
        server_version: crate::engine::show_server_version(req.server_version_num),
        pg_dump,
        created_at: chrono::Local::now().to_rfc3339(),
        format: req.format.name().to_owned(),
        jobs: req.format.jobs(),
        file: String::new(),
        size: 0,
        sha256: String::new(),
        checksum_of: match req.format {
            BackupFormat::Custom => CHECKSUM_OF_FILE,
            BackupFormat::Directory { .. } => CHECKSUM_OF_SORTED_FILES,
        }
        .to_owned(),
        entries: 0,
        pgstep_version: env!("CARGO_PKG_VERSION").to_owned(),
        encoding: source.encoding,
        lc_collate: source.lc_collate,
        lc_ctype: source.lc_ctype,
    }
}

/// The metadata of a backup, given the backup (`.dump` file or `.dir` directory) or its
/// metadata file (`.json`).
pub fn read_metadata(backup: &Path) -> Result<BackupMetadata, BackupError> {
    let json_path = if backup.extension().is_some_and(|e| e == "json") {
        backup.to_path_buf()
    } else {
        metadata_path_of(backup)
    };
    let text = fs::read_to_string(&json_path).map_err(|e| {
        BackupError::invalid(
            &json_path,
            format!(
                "cannot read the backup's metadata: {e}. pgstep restores only backups it took, \
                 with their metadata file beside them (restore others with pg_restore)"
            ),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        BackupError::invalid(
            &json_path,
            format!("the backup's metadata is not valid: {e}; the file was modified or damaged"),
        )
    })
}

/// The backup a metadata file describes: `file` in the metadata file's directory.
pub fn backup_path_of(metadata_path: &Path, meta: &BackupMetadata) -> PathBuf {
    metadata_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(&meta.file)
}

/// The lowest server version number whose pg_restore can read the archive: that of the server
/// and of the pg_dump that wrote it (an archive is readable by its pg_dump's version and later).
pub fn archive_version_num(meta: &BackupMetadata) -> u32 {
    let major = |s: &str| -> u32 {
        s.split_whitespace()
            .last()
            .and_then(|v| v.split('.').next()?.parse().ok())
            .unwrap_or(0)
    };
    major(&meta.server_version).max(major(&meta.pg_dump)) * 10_000
}

/// Writes the metadata under a temporary name, flushes it, then gives it its name.
pub(super) fn write_metadata(path: &Path, meta: &BackupMetadata) -> Result<(), MetadataWriteError> {
    let tmp = with_suffix(path, ".partial");
    let mut cleanup = RemoveOnDrop::new(&tmp);
    let json = serde_json::to_string_pretty(meta).map_err(MetadataWriteError::Encode)? + "\n";
    let written = (|| -> io::Result<()> {
        crate::paths::write_private(&tmp, json)?;
        File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, path)?;
        cleanup.disarm();
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    written.map_err(|source| MetadataWriteError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Why a backup's metadata file could not be written.
#[derive(Debug, thiserror::Error)]
pub(super) enum MetadataWriteError {
    #[error("{0}")]
    Encode(serde_json::Error),
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// Where pg_dump writes a backup until it is complete and verified (then it is renamed).
pub fn partial_path_of(backup: &Path) -> PathBuf {
    with_suffix(backup, ".partial")
}

/// A name in `dir` that no backup, partial backup or metadata file has yet.
pub fn new_backup_path(dir: &Path, db: &str, version: Version, format: BackupFormat) -> PathBuf {
    let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S");
    let ext = format.extension();
    let taken =
        |p: &Path| p.exists() || partial_path_of(p).exists() || metadata_path_of(p).exists();
    let first = dir.join(format!("{db}-v{version}-{stamp}.{ext}"));
    if !taken(&first) {
        return first;
    }
    (2u32..)
        .map(|n| dir.join(format!("{db}-v{version}-{stamp}-{n}.{ext}")))
        .find(|p| !taken(p))
        .unwrap_or(first)
}

/// `x.dump` → `x.dump.json`, `x.dir` → `x.dir.json`.
pub fn metadata_path_of(backup: &Path) -> PathBuf {
    with_suffix(backup, ".json")
}

pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    // Components, not the string: "x.dir/" must give "x.dir.json", not "x.dir/.json".
    let name = file_name(path);
    path.parent()
        .unwrap_or_else(|| Path::new(""))
        .join(format!("{name}{suffix}"))
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What a backup records about its source besides the dump, read in one statement.
pub(super) struct SourceFacts {
    /// How many tables pg_dump will copy rows of: ordinary tables and partitions (partitioned
    /// parents hold no rows) outside PostgreSQL's own schemas, other than extension members. An
    /// estimate for progress; the count of lines pg_dump prints is what is reported as done.
    pub(super) tables: u64,
    pub(super) encoding: String,
    pub(super) lc_collate: String,
    pub(super) lc_ctype: String,
}

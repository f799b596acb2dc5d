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

pub mod choice;

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bundle::Version;
use crate::cancel::Cancel;
use crate::conn::ConnSettings;
use crate::events::{Event, Level, Observer, Unit, log};
use crate::hex;

/// How often the size of the output is measured and cancellation looked at while a tool runs.
pub const POLL: Duration = Duration::from_millis(200);
/// How long a tool asked to stop may take before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How many of a failed tool's last stderr lines its error message quotes (when it printed no
/// error line).
const TAIL_LINES: usize = 6;
/// How many lines, from the first error line on, a failed tool's error message quotes.
const ERROR_LINES: usize = 8;
/// What `pg_dump --verbose` prints as it starts copying a table's rows.
const DUMP_TABLE_LINE: &str = "dumping contents of table";

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

    fn extension(self) -> &'static str {
        match self {
            BackupFormat::Custom => "dump",
            BackupFormat::Directory { .. } => "dir",
        }
    }

    fn from_metadata(meta: &BackupMetadata) -> Option<Self> {
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

    fn invalid(path: &Path, message: impl Into<String>) -> Self {
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

fn one() -> u32 {
    1
}

fn checksum_of_file() -> String {
    CHECKSUM_OF_FILE.to_owned()
}

const CHECKSUM_OF_FILE: &str = "file";
const CHECKSUM_OF_SORTED_FILES: &str = "sorted files";

/// Where backups go unless `--backup-dir` says otherwise.
pub fn default_backup_dir() -> PathBuf {
    crate::paths::data_dir().join("backups")
}

/// Dumps the database into `req.dir`, then verifies, checksums and describes the result.
/// On failure or cancellation nothing is left behind in `req.dir`.
pub fn take_backup(
    req: &BackupRequest,
    cancel: &Cancel,
    obs: &mut dyn Observer,
) -> Result<Backup, BackupError> {
    let what = format!("backup of \"{}\"", req.db);
    let fail = |message: String| BackupError::Failed {
        what: what.clone(),
        message,
    };
    let pg_dump = find_client_tool("pg_dump", req.server_version_num).map_err(fail)?;
    let pg_restore = find_client_tool("pg_restore", req.server_version_num).map_err(fail)?;
    crate::paths::private_dir(req.dir).map_err(|e| {
        fail(format!(
            "cannot create the backup directory {}: {e}; choose another one with --backup-dir",
            req.dir.display()
        ))
    })?;
    let source = source_facts(req.server, req.db).map_err(fail)?;
    let tables = source.tables;
    let path = req.path.map_or_else(
        || new_backup_path(req.dir, req.db, req.version, req.format),
        Path::to_path_buf,
    );
    let partial = partial_path_of(&path);
    let mut cleanup = RemoveOnDrop::new(&partial);
    log(
        obs,
        Level::Info,
        format!(
            "pg_dump of \"{}\" ({} format, {} table(s)) into {}",
            req.db,
            req.format.name(),
            tables,
            path.display()
        ),
    );
    if req.format == BackupFormat::Custom {
        // pg_dump opens an existing file without changing its mode: it is private from its
        // first byte. (A directory-format dump is made private below.)
        crate::paths::create_private(&partial)
            .map_err(|e| fail(format!("cannot create {}: {e}", partial.display())))?;
    }
    let dumped = run_pg_dump(req, &pg_dump.0, &partial, tables, cancel, obs)?;
    crate::faults::hold_at("backup_written", req.fault, cancel);
    if cancel.requested() {
        // Stopped after pg_dump ended but before the backup was verified: never half-kept.
        return Err(BackupError::Cancelled { what });
    }
    crate::paths::make_private(&partial)
        .map_err(|e| fail(format!("cannot make {} private: {e}", partial.display())))?;
    sync_output(&partial)
        .map_err(|e| fail(format!("cannot flush {} to disk: {e}", partial.display())))?;
    let entries = verify_archive(&pg_restore.0, &partial).map_err(fail)?;
    let (size, sha256) = checksum_backup(&partial, req.format)
        .map_err(|e| fail(format!("cannot read {} back: {e}", partial.display())))?;
    fs::rename(&partial, &path).map_err(|e| {
        fail(format!(
            "cannot rename {} to {}: {e}",
            partial.display(),
            path.display()
        ))
    })?;
    cleanup.replace(&path);
    sync_dir(req.dir).map_err(|e| fail(format!("cannot flush {}: {e}", req.dir.display())))?;
    let metadata = BackupMetadata {
        file: file_name(&path),
        size,
        sha256: sha256.clone(),
        entries,
        ..metadata_for(req, source, pg_dump.1)
    };
    let metadata_path = metadata_path_of(&path);
    // Metadata without its backup would describe nothing: both go, or both stay.
    cleanup.add(&metadata_path);
    write_metadata(&metadata_path, &metadata).map_err(fail)?;
    cleanup.disarm();
    log(
        obs,
        Level::Info,
        format!(
            "backup verified: {entries} archive entries, {dumped} table(s), {size} bytes, sha256 {sha256}"
        ),
    );
    Ok(Backup {
        path,
        metadata_path,
        format: req.format.name().to_owned(),
        size,
        sha256,
        entries,
        tables: dumped,
    })
}

/// Runs pg_dump into `partial`; returns the tables it copied.
fn run_pg_dump(
    req: &BackupRequest,
    pg_dump: &Path,
    partial: &Path,
    tables: u64,
    cancel: &Cancel,
    obs: &mut dyn Observer,
) -> Result<u64, BackupError> {
    let what = format!("backup of \"{}\"", req.db);
    let fail = |message: String| BackupError::Failed {
        what: what.clone(),
        message,
    };
    let mut cmd = Command::new(pg_dump);
    cmd.args(dump_args(req.format)).arg("--file").arg(partial);
    if let Some(id) = req.snapshot {
        cmd.arg(format!("--snapshot={id}"));
    }
    let env = req
        .server
        .with_dbname(req.db)
        .child_env()
        .map_err(|e| fail(e.to_string()))?;
    env.apply(&mut cmd);
    let size = || output_size(partial);
    let run = ToolRun {
        tool: "pg_dump",
        counted: DUMP_TABLE_LINE,
        tables: Some(tables),
        bytes: &size,
        stdout_counter: None,
        yield_cpu: req.alongside,
    };
    match run_tool(cmd, &run, cancel, obs).map_err(|e| fail(e.to_string()))? {
        ToolEnd::Done { tables } => Ok(tables),
        ToolEnd::Cancelled => Err(BackupError::Cancelled { what }),
        ToolEnd::Failed { status, tail } => Err(fail(format!(
            "pg_dump ended with {status}:\n{}\nThe partial backup was removed; nothing else was changed. \
             If the disk is full, free space in {} or choose another directory with --backup-dir.",
            indent_lines(&tail),
            req.dir.display()
        ))),
    }
}

/// The metadata that depends on the request and the source, not on the written backup.
fn metadata_for(req: &BackupRequest, source: SourceFacts, pg_dump: String) -> BackupMetadata {
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

/// GNUmed's check for when the operator declines a backup: pg_dump reads every table's rows
/// once, so a damaged page is found before the upgrade rather than during it. The archive is
/// streamed uncompressed into pgstep and thrown away; the count returned is its size, about the
/// size of the data read. Indexes are not read (pg_dump never reads them).
pub fn read_through(
    server: &ConnSettings,
    db: &str,
    server_version_num: u32,
    cancel: &Cancel,
    obs: &mut dyn Observer,
) -> Result<u64, BackupError> {
    let what = format!("read-through of \"{db}\"");
    let fail = |message: String| BackupError::Failed {
        what: what.clone(),
        message,
    };
    let pg_dump = find_client_tool("pg_dump", server_version_num).map_err(fail)?;
    let tables = source_facts(server, db).map_err(fail)?.tables;
    log(
        obs,
        Level::Info,
        format!(
            "reading every table of \"{db}\" once with pg_dump ({tables} table(s)), without keeping the output"
        ),
    );
    let mut cmd = Command::new(&pg_dump.0);
    cmd.args([
        "--format=custom",
        "--compress=0",
        "--verbose",
        "--no-password",
    ])
    .stdout(Stdio::piped());
    let env = server
        .with_dbname(db)
        .child_env()
        .map_err(|e| fail(e.to_string()))?;
    env.apply(&mut cmd);
    let counter = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&counter);
    let size = move || Some(seen.load(Ordering::Relaxed));
    let run = ToolRun {
        tool: "pg_dump",
        counted: DUMP_TABLE_LINE,
        tables: Some(tables),
        bytes: &size,
        stdout_counter: Some(Arc::clone(&counter)),
        // A read-through is taken alongside the upgrade only as an upgrade's backup step, and
        // nothing waits for its speed before the cut-over: it always yields.
        yield_cpu: true,
    };
    match run_tool(cmd, &run, cancel, obs).map_err(|e| fail(e.to_string()))? {
        ToolEnd::Done { tables } => {
            let bytes = counter.load(Ordering::Relaxed);
            log(
                obs,
                Level::Info,
                format!(
                    "read every row of {tables} table(s) of \"{db}\" ({bytes} bytes): no damaged page found"
                ),
            );
            Ok(bytes)
        }
        ToolEnd::Cancelled => Err(BackupError::Cancelled { what }),
        ToolEnd::Failed { status, tail } => Err(fail(format!(
            "pg_dump ended with {status} while reading the tables:\n{}\nA damaged page shows as an error naming the table; \
             restore that table from a backup or ask for help before upgrading.",
            indent_lines(&tail)
        ))),
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

/// Checks a backup against its metadata: size, sha256, and that pg_restore reads its table of
/// contents. Returns the number of entries of the table of contents.
pub fn verify(backup: &Path, meta: &BackupMetadata) -> Result<usize, BackupError> {
    let Some(format) = BackupFormat::from_metadata(meta) else {
        return Err(BackupError::invalid(
            backup,
            format!("unknown backup format \"{}\" in the metadata", meta.format),
        ));
    };
    let (size, sha256) = checksum_backup(backup, format)
        .map_err(|e| BackupError::invalid(backup, format!("cannot read the backup: {e}")))?;
    if size != meta.size {
        return Err(BackupError::invalid(
            backup,
            format!(
                "size mismatch: the backup has {size} bytes, its metadata says {}: the backup is incomplete, \
                 was modified or damaged; use another backup",
                meta.size
            ),
        ));
    }
    if sha256 != meta.sha256 {
        return Err(BackupError::invalid(
            backup,
            "checksum mismatch: the backup was modified or damaged (its sha256 differs from the one \
             recorded when it was taken); use another backup",
        ));
    }
    let pg_restore = find_client_tool("pg_restore", archive_version_num(meta))
        .map_err(|m| BackupError::invalid(backup, m))?;
    let entries =
        verify_archive(&pg_restore.0, backup).map_err(|m| BackupError::invalid(backup, m))?;
    if meta.entries != 0 && entries != meta.entries {
        return Err(BackupError::invalid(
            backup,
            format!(
                "pg_restore lists {entries} entries, the metadata says {}: the backup was modified or damaged",
                meta.entries
            ),
        ));
    }
    Ok(entries)
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

/// `pg_restore --list` must read the whole table of contents; returns its entries.
fn verify_archive(pg_restore: &Path, path: &Path) -> Result<usize, String> {
    let listing = list_archive(pg_restore, path)?;
    Ok(listing
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .count())
}

/// The output of `pg_restore --list`.
pub(crate) fn list_archive(pg_restore: &Path, path: &Path) -> Result<String, String> {
    let out = Command::new(pg_restore)
        .arg("--list")
        .arg(path)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", pg_restore.display()))?;
    if !out.status.success() {
        return Err(format!(
            "the archive {} does not verify (pg_restore --list): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dump_args(format: BackupFormat) -> Vec<String> {
    let mut args = vec!["--verbose".to_owned(), "--no-password".to_owned()];
    match format {
        BackupFormat::Custom => args.push("--format=custom".into()),
        BackupFormat::Directory { jobs } => {
            args.push("--format=directory".into());
            args.push(format!("--jobs={}", jobs.max(1)));
        }
    }
    args
}

/// The tables whose rows pg_dump copies: ordinary tables and partitions (partitioned parents
/// hold no rows) outside PostgreSQL's own schemas, other than extension members.
const DUMPED_TABLES: &str = "FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'r' \
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') \
       AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%' \
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
                       WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                         AND d.objid = c.oid AND d.deptype = 'e')";

/// The size (bytes, TOAST included) of each table whose rows pg_dump copies, largest first:
/// what the choice of the backup's format (`choice`) weighs.
pub fn dumped_table_sizes(client: &mut postgres::Client) -> Result<Vec<u64>, String> {
    let rows = client
        .query(
            &format!(
                "SELECT pg_catalog.pg_table_size(c.oid) AS bytes {DUMPED_TABLES} ORDER BY bytes DESC"
            ),
            &[],
        )
        .map_err(|e| {
            format!(
                "cannot read the sizes of the tables to back up: {}",
                crate::db::describe(&e)
            )
        })?;
    Ok(rows
        .iter()
        .map(|r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0))
        .collect())
}

/// What a backup records about its source besides the dump, read in one statement.
struct SourceFacts {
    /// How many tables pg_dump will copy rows of: ordinary tables and partitions (partitioned
    /// parents hold no rows) outside PostgreSQL's own schemas, other than extension members. An
    /// estimate for progress; the count of lines pg_dump prints is what is reported as done.
    tables: u64,
    encoding: String,
    lc_collate: String,
    lc_ctype: String,
}

fn source_facts(server: &ConnSettings, db: &str) -> Result<SourceFacts, String> {
    let mut client = server
        .with_dbname(db)
        .connect(None)
        .map_err(|e| e.to_string())?;
    let row = client
        .query_one(
            &format!(
                "SELECT (SELECT count(*) {DUMPED_TABLES}), \
                        pg_catalog.pg_encoding_to_char(encoding)::text, datcollate::text, datctype::text \
                 FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()"
            ),
            &[],
        )
        .map_err(|e| {
            format!(
                "cannot read the tables and encoding of \"{db}\": {}",
                crate::db::describe(&e)
            )
        })?;
    Ok(SourceFacts {
        tables: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
        encoding: row.get(1),
        lc_collate: row.get(2),
        lc_ctype: row.get(3),
    })
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

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    // Components, not the string: "x.dir/" must give "x.dir.json", not "x.dir/.json".
    let name = file_name(path);
    path.parent()
        .unwrap_or_else(|| Path::new(""))
        .join(format!("{name}{suffix}"))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes the metadata under a temporary name, flushes it, then gives it its name.
fn write_metadata(path: &Path, meta: &BackupMetadata) -> Result<(), String> {
    let tmp = with_suffix(path, ".partial");
    let mut cleanup = RemoveOnDrop::new(&tmp);
    let json = serde_json::to_string_pretty(meta).map_err(|e| e.to_string())? + "\n";
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
    written.map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Removes files or directories when dropped, unless disarmed: the partial output of a failed
/// or cancelled backup.
struct RemoveOnDrop {
    paths: Vec<PathBuf>,
}

impl RemoveOnDrop {
    fn new(path: &Path) -> Self {
        Self {
            paths: vec![path.to_path_buf()],
        }
    }

    /// Watches `path` instead of what was watched so far (renamed into it).
    fn replace(&mut self, path: &Path) {
        self.paths = vec![path.to_path_buf()];
    }

    fn add(&mut self, path: &Path) {
        self.paths.push(path.to_path_buf());
    }

    fn disarm(&mut self) {
        self.paths.clear();
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in self.paths.drain(..) {
            remove_output(&path);
        }
    }
}

/// Removes a partial output. pg_dump's parallel workers may still be writing for a moment after
/// their leader was killed, so a directory that refills is removed again, for a few seconds.
fn remove_output(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let result = if path.is_dir() {
            fs::remove_dir_all(path)
        } else {
            fs::remove_file(path)
        };
        let gone = match result {
            Ok(()) => true,
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        };
        if (gone && !path.exists()) || Instant::now() > deadline {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Bytes written so far: the file, or the files of the directory.
fn output_size(path: &Path) -> Option<u64> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return Some(meta.len());
    }
    Some(
        fs::read_dir(path)
            .ok()?
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum(),
    )
}

/// Flushes the file, or every file of the directory and the directory itself, to disk.
fn sync_output(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                File::open(entry.path())?.sync_all()?;
            }
        }
        sync_dir(path)
    } else {
        File::open(path)?.sync_all()
    }
}

/// Makes the directory's entries (a rename, a new file) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Size and sha256 of a backup as the metadata defines them for its format.
fn checksum_backup(path: &Path, format: BackupFormat) -> io::Result<(u64, String)> {
    match format {
        BackupFormat::Custom => checksum(path),
        BackupFormat::Directory { .. } => checksum_directory(path),
    }
}

/// Size and sha256 of a file, streamed.
pub fn checksum(path: &Path) -> io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let size = hash_file(path, &mut h)?;
    Ok((size, hex::encode(&h.finalize())))
}

/// Total size and "sorted files" sha256 of a directory backup (see the module documentation).
pub fn checksum_directory(dir: &Path) -> io::Result<(u64, String)> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file; a pg_dump directory holds only files",
                entry.path().display()
            )));
        }
        files.push(entry.file_name());
    }
    files.sort();
    let mut h = Sha256::new();
    let mut total = 0u64;
    for name in files {
        let path = dir.join(&name);
        let size = fs::metadata(&path)?.len();
        h.update(name.as_encoded_bytes());
        h.update([0u8]);
        h.update(size.to_be_bytes());
        let read = hash_file(&path, &mut h)?;
        if read != size {
            return Err(io::Error::other(format!(
                "{} changed while it was read",
                path.display()
            )));
        }
        total += size;
    }
    Ok((total, hex::encode(&h.finalize())))
}

fn hash_file(path: &Path, h: &mut Sha256) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(size);
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
}

/// How to follow one run of pg_dump or pg_restore.
pub(crate) struct ToolRun<'a> {
    /// The program's name, prefixed to its log lines.
    pub tool: &'static str,
    /// A `--verbose` line containing this marks one more table done.
    pub counted: &'static str,
    /// Tables expected, for the progress total.
    pub tables: Option<u64>,
    /// Bytes written (or read) so far, measured every [`POLL`].
    pub bytes: &'a dyn Fn() -> Option<u64>,
    /// When set, the tool's stdout is read and thrown away, counting its bytes here.
    pub stdout_counter: Option<Arc<AtomicU64>>,
    /// Run the tool at a lower CPU priority: it works alongside the upgrade, which is what the
    /// downtime waits for.
    pub yield_cpu: bool,
}

/// How a tool run ended.
#[derive(Debug)]
pub(crate) enum ToolEnd {
    Done {
        tables: u64,
    },
    /// `tail`: the lines from the first error on, or else the last lines.
    Failed {
        status: ExitStatus,
        tail: Vec<String>,
    },
    Cancelled,
}

/// Runs the tool with stderr read line by line on a thread: each line is logged, table lines
/// are counted as progress, the output size is reported every [`POLL`], and a cancellation
/// request (soft or hard: a dump has no safe point inside) stops the tool. A cancellation
/// requested at any time before the tool was seen to succeed counts, so that the outcome does
/// not depend on timing.
pub(crate) fn run_tool(
    mut cmd: Command,
    run: &ToolRun,
    cancel: &Cancel,
    obs: &mut dyn Observer,
) -> io::Result<ToolEnd> {
    // Messages are matched in English, whatever the operator's locale.
    cmd.env("LC_ALL", "C")
        .env_remove("LANGUAGE")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    if run.stdout_counter.is_none() {
        cmd.stdout(Stdio::null());
    }
    stop_with_parent(&mut cmd, run.yield_cpu);
    let mut child = cmd.spawn()?;
    let stdout_thread = match (&run.stdout_counter, child.stdout.take()) {
        (Some(counter), Some(out)) => Some(count_stdout(out, Arc::clone(counter))),
        _ => None,
    };
    let Some(stderr) = child.stderr.take() else {
        stop_tool(&mut child);
        return Err(io::Error::other("the tool's stderr could not be read"));
    };
    let lines = read_lines(stderr);
    let mut follow = Follow::new(run);
    follow.report_tables(obs);
    let outcome = follow.until_exit(&mut child, &lines, cancel, obs);
    if let Some(t) = stdout_thread {
        // Ends when the tool (and its workers) closed stdout, which they have once stderr is closed.
        let _ = t.join();
    }
    follow.report_bytes(obs, true);
    let status = match outcome {
        Some(status) => status,
        None => return Ok(ToolEnd::Cancelled),
    };
    if cancel.requested() {
        return Ok(ToolEnd::Cancelled);
    }
    if status.success() {
        Ok(ToolEnd::Done {
            tables: follow.tables_done,
        })
    } else {
        Ok(ToolEnd::Failed {
            status,
            tail: if follow.errors.is_empty() {
                follow.tail
            } else {
                follow.errors
            },
        })
    }
}

/// The state of a tool run being followed.
struct Follow<'r, 'a> {
    run: &'r ToolRun<'a>,
    tables_done: u64,
    last_bytes: Option<u64>,
    tail: Vec<String>,
    errors: Vec<String>,
}

impl<'r, 'a> Follow<'r, 'a> {
    fn new(run: &'r ToolRun<'a>) -> Self {
        Self {
            run,
            tables_done: 0,
            last_bytes: None,
            tail: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Follows the tool until it exits (its status) or is stopped on cancellation (`None`).
    fn until_exit(
        &mut self,
        child: &mut Child,
        lines: &mpsc::Receiver<String>,
        cancel: &Cancel,
        obs: &mut dyn Observer,
    ) -> Option<ExitStatus> {
        let mut last_poll = Instant::now();
        loop {
            if cancel.requested() {
                stop_tool(child);
                // Drain until every holder of stderr (parallel workers too) has gone.
                while lines.recv_timeout(Duration::from_secs(10)).is_ok() {}
                return None;
            }
            match lines.recv_timeout(POLL) {
                Ok(line) => self.line(line, obs),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_poll.elapsed() >= POLL {
                last_poll = Instant::now();
                self.report_bytes(obs, false);
            }
        }
        match child.wait() {
            Ok(status) => Some(status),
            Err(_) => {
                stop_tool(child);
                None
            }
        }
    }

    fn line(&mut self, line: String, obs: &mut dyn Observer) {
        if line.trim().is_empty() {
            return;
        }
        let counted = line.contains(self.run.counted);
        let text = if line.starts_with(&format!("{}:", self.run.tool)) {
            line
        } else {
            format!("{}: {line}", self.run.tool)
        };
        if self.tail.len() == TAIL_LINES {
            self.tail.remove(0);
        }
        self.tail.push(text.clone());
        // The first error and what follows it ("Command was: …") say more than the last lines.
        if (!self.errors.is_empty() || text.contains("error:")) && self.errors.len() < ERROR_LINES {
            self.errors.push(text.clone());
        }
        log(obs, Level::Info, text);
        if counted {
            self.tables_done += 1;
            self.report_tables(obs);
        }
    }

    fn report_tables(&self, obs: &mut dyn Observer) {
        obs.event(Event::Progress {
            unit: Unit::Tables,
            done: self.tables_done,
            total: self.run.tables.map(|t| t.max(self.tables_done)),
        });
    }

    fn report_bytes(&mut self, obs: &mut dyn Observer, always: bool) {
        let Some(bytes) = (self.run.bytes)() else {
            return;
        };
        if always || self.last_bytes != Some(bytes) {
            self.last_bytes = Some(bytes);
            obs.event(Event::Progress {
                unit: Unit::Bytes,
                done: bytes,
                total: None,
            });
        }
    }
}

/// Stops the tool: SIGTERM first, on which pg_dump and pg_restore stop their parallel workers
/// and cancel their queries on the server (killed outright, the leader leaves its workers
/// copying to the end of their current table); SIGKILL if it has not ended within
/// [`STOP_GRACE`]. std sends only SIGKILL, so SIGTERM goes through kill(1); the child is not
/// reaped before this, so its pid cannot have been reused.
fn stop_tool(child: &mut Child) {
    let asked = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if asked {
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Has the kernel stop the tool (SIGTERM) when the thread that started it ends — pgstep killed
/// with SIGKILL included — so that no pg_dump goes on writing, or holds the source open, after
/// the run that wanted it is gone (`pgstep recover` then finds nothing running).
/// With `yield_cpu`, the tool also runs at nice 10 (its parallel workers inherit it).
#[cfg(target_os = "linux")]
fn stop_with_parent(cmd: &mut Command, yield_cpu: bool) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and calls only prctl(2) and
    // setpriority(2), which are async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(io::Error::last_os_error());
            }
            // A lower priority is a courtesy: failing to get it is no reason not to run.
            if yield_cpu {
                let _ = libc::setpriority(libc::PRIO_PROCESS, 0, 10);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn stop_with_parent(_cmd: &mut Command, _yield_cpu: bool) {}

/// The lines of a stream, sent one by one from a thread; the channel closes at end of stream.
fn read_lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Reads a stream to its end, counting its bytes.
fn count_stdout(mut stream: impl Read + Send + 'static, counter: Arc<AtomicU64>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                return;
            }
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    })
}

pub(crate) fn indent_lines(lines: &[String]) -> String {
    if lines.is_empty() {
        return "  (it printed nothing)".to_owned();
    }
    lines
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A PostgreSQL client program at least as new as the server (pg_dump refuses newer servers),
/// and its version line.
pub fn find_client_tool(name: &str, server_version_num: u32) -> Result<(PathBuf, String), String> {
    let server_major = server_version_num / 10_000;
    let mut candidates = vec![PathBuf::from(format!(
        "/usr/lib/postgresql/{server_major}/bin/{name}"
    ))];
    if let Ok(dir) = crate::cluster::find_bin_dir() {
        candidates.push(dir.join(name));
    }
    candidates.push(PathBuf::from(name));
    let mut found = Vec::new();
    for c in candidates {
        let Ok(out) = Command::new(&c)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
        else {
            continue;
        };
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let major = line
            .split_whitespace()
            .last()
            .and_then(|v| v.split('.').next()?.parse::<u32>().ok())
            .unwrap_or(0);
        if major >= server_major {
            return Ok((c, line));
        }
        found.push(line);
    }
    Err(format!(
        "no {name} for PostgreSQL {server_major} or later was found ({}); install the client programs of version {server_major} \
         (Debian/Ubuntu: apt-get install postgresql-client-{server_major})",
        if found.is_empty() {
            "none at all".to_owned()
        } else {
            format!("found only: {}", found.join(", "))
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(server: &str, pg_dump: &str) -> BackupMetadata {
        serde_json::from_value(serde_json::json!({
            "database": "clinic_v1", "version": "1", "fingerprint": "ab",
            "server_version": server, "pg_dump": pg_dump, "created_at": "now",
            "format": "custom", "file": "x.dump", "size": 1, "sha256": "cd"
        }))
        .expect("metadata without the newer fields still reads")
    }

    #[test]
    fn older_metadata_reads_with_defaults() {
        let m = meta("15.4", "pg_dump (PostgreSQL) 15.4");
        assert_eq!((m.jobs, m.checksum_of.as_str(), m.entries), (1, "file", 0));
        assert!(m.schemas.is_empty());
    }

    #[test]
    fn the_archive_needs_the_newer_of_server_and_pg_dump() {
        assert_eq!(
            archive_version_num(&meta("15.4", "pg_dump (PostgreSQL) 16.2")),
            160_000
        );
        assert_eq!(
            archive_version_num(&meta("9.6.24", "pg_dump (PostgreSQL) 9.6.24")),
            90_000
        );
    }

    #[test]
    fn metadata_sits_beside_files_and_directories() {
        assert_eq!(
            metadata_path_of(Path::new("/b/x-v1-t.dir/")),
            PathBuf::from("/b/x-v1-t.dir.json")
        );
        assert_eq!(
            metadata_path_of(Path::new("/b/x-v1-t.dump")),
            PathBuf::from("/b/x-v1-t.dump.json")
        );
    }

    #[test]
    fn directory_checksum_covers_names_sizes_and_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("toc.dat"), b"abc").expect("write");
        fs::write(dir.path().join("1.dat.gz"), b"de").expect("write");
        let (size, first) = checksum_directory(dir.path()).expect("checksum");
        assert_eq!(size, 5);
        fs::rename(dir.path().join("1.dat.gz"), dir.path().join("2.dat.gz")).expect("rename");
        let (_, renamed) = checksum_directory(dir.path()).expect("checksum");
        assert_ne!(first, renamed, "a renamed file changes the checksum");
        // Moving a byte from one file to the next changes it too (sizes are hashed).
        fs::write(dir.path().join("2.dat.gz"), b"d").expect("write");
        fs::write(dir.path().join("toc.dat"), b"eabc").expect("write");
        let (_, moved) = checksum_directory(dir.path()).expect("checksum");
        assert_ne!(renamed, moved);
    }

    #[test]
    fn a_name_in_use_gets_a_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v: Version = "1".parse().expect("version");
        let first = new_backup_path(dir.path(), "db", v, BackupFormat::Custom);
        fs::write(&first, b"x").expect("write");
        let second = new_backup_path(dir.path(), "db", v, BackupFormat::Custom);
        assert_ne!(first, second);
        assert!(!second.exists());
    }
}

//! Running pg_dump: a backup (`take_backup`) or a read-through that keeps nothing.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::metadata::{
    SourceFacts, file_name, metadata_for, metadata_path_of, new_backup_path, partial_path_of,
    write_metadata,
};
use super::output::{RemoveOnDrop, output_size, sync_dir, sync_output};
use super::tool::{ToolEnd, ToolRun, find_client_tool, indent_lines, run_tool};
use super::verify::{checksum_backup, verify_archive};
use super::{Backup, BackupError, BackupFormat, BackupMetadata, BackupRequest};
use crate::cancel::Cancel;
use crate::conn::ConnSettings;
use crate::events::{Level, Observer, log};

/// What a backup's errors call it: `backup of "clinic"`.
fn backup_of(req: &BackupRequest) -> String {
    format!("backup of \"{}\"", req.db)
}

/// What `pg_dump --verbose` prints as it starts copying a table's rows.
pub(super) const DUMP_TABLE_LINE: &str = "dumping contents of table";

/// Dumps the database into `req.dir`, then verifies, checksums and describes the result.
/// On failure or cancellation nothing is left behind in `req.dir`.
pub fn take_backup(
    req: &BackupRequest,
    cancel: &Cancel,
    obs: &mut dyn Observer,
) -> Result<Backup, BackupError> {
    let fail = |message: String| BackupError::failed(&backup_of(req), message);
    let pg_dump =
        find_client_tool("pg_dump", req.server_version_num).map_err(|e| fail(e.to_string()))?;
    let pg_restore =
        find_client_tool("pg_restore", req.server_version_num).map_err(|e| fail(e.to_string()))?;
    crate::paths::private_dir(req.dir).map_err(|e| {
        fail(format!(
            "cannot create the backup directory {}: {e}; choose another one with --backup-dir",
            req.dir.display()
        ))
    })?;
    let source = source_facts(req.server, req.db).map_err(|e| fail(e.to_string()))?;
    let path = req.path.map_or_else(
        || new_backup_path(req.dir, req.db, req.version, req.format),
        Path::to_path_buf,
    );
    let partial = partial_path_of(&path);
    let mut cleanup = RemoveOnDrop::new(&partial);
    let dumped = dump_into(req, &pg_dump.0, &partial, &path, source.tables, cancel, obs)?;
    let (entries, size, sha256) = seal(req, &pg_restore.0, &partial, &path, &mut cleanup)?;
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
    write_metadata(&metadata_path, &metadata).map_err(|e| fail(e.to_string()))?;
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

/// pg_dump writes the backup into `partial` (to become `path`); returns the tables it copied.
fn dump_into(
    req: &BackupRequest,
    pg_dump: &Path,
    partial: &Path,
    path: &Path,
    tables: u64,
    cancel: &Cancel,
    obs: &mut dyn Observer,
) -> Result<u64, BackupError> {
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
        crate::paths::create_private(partial).map_err(|e| {
            BackupError::failed(
                &backup_of(req),
                format!("cannot create {}: {e}", partial.display()),
            )
        })?;
    }
    let dumped = run_pg_dump(req, pg_dump, partial, tables, cancel, obs)?;
    crate::faults::hold_at("backup_written", req.fault, cancel);
    if cancel.requested() {
        // Stopped after pg_dump ended but before the backup was verified: never half-kept.
        return Err(BackupError::Cancelled {
            what: backup_of(req),
        });
    }
    Ok(dumped)
}

/// Makes the written backup private, durable and verified, then gives it its name `path`:
/// returns its archive entries, size and sha256.
fn seal(
    req: &BackupRequest,
    pg_restore: &Path,
    partial: &Path,
    path: &Path,
    cleanup: &mut RemoveOnDrop,
) -> Result<(usize, u64, String), BackupError> {
    let fail = |message: String| BackupError::failed(&backup_of(req), message);
    crate::paths::make_private(partial)
        .map_err(|e| fail(format!("cannot make {} private: {e}", partial.display())))?;
    sync_output(partial)
        .map_err(|e| fail(format!("cannot flush {} to disk: {e}", partial.display())))?;
    let entries = verify_archive(pg_restore, partial).map_err(|e| fail(e.to_string()))?;
    let (size, sha256) = checksum_backup(partial, req.format)
        .map_err(|e| fail(format!("cannot read {} back: {e}", partial.display())))?;
    fs::rename(partial, path).map_err(|e| {
        fail(format!(
            "cannot rename {} to {}: {e}",
            partial.display(),
            path.display()
        ))
    })?;
    cleanup.replace(path);
    sync_dir(req.dir).map_err(|e| fail(format!("cannot flush {}: {e}", req.dir.display())))?;
    Ok((entries, size, sha256))
}

/// Runs pg_dump into `partial`; returns the tables it copied.
pub(super) fn run_pg_dump(
    req: &BackupRequest,
    pg_dump: &Path,
    partial: &Path,
    tables: u64,
    cancel: &Cancel,
    obs: &mut dyn Observer,
) -> Result<u64, BackupError> {
    let fail = |message: String| BackupError::failed(&backup_of(req), message);
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
        ToolEnd::Cancelled => Err(BackupError::Cancelled {
            what: backup_of(req),
        }),
        ToolEnd::Failed { status, tail } => Err(fail(format!(
            "pg_dump ended with {status}:\n{}\nThe partial backup was removed; nothing else was changed. \
             If the disk is full, free space in {} or choose another directory with --backup-dir.",
            indent_lines(&tail),
            req.dir.display()
        ))),
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
    let fail = |message: String| BackupError::failed(&what, message);
    let pg_dump =
        find_client_tool("pg_dump", server_version_num).map_err(|e| fail(e.to_string()))?;
    let tables = source_facts(server, db)
        .map_err(|e| fail(e.to_string()))?
        .tables;
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
    let end = read_all(cmd, tables, &counter, cancel, obs).map_err(|e| fail(e.to_string()))?;
    match end {
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

/// Runs the read-through's pg_dump, counting the bytes of its output in `counter`.
fn read_all(
    cmd: Command,
    tables: u64,
    counter: &Arc<AtomicU64>,
    cancel: &Cancel,
    obs: &mut dyn Observer,
) -> std::io::Result<ToolEnd> {
    let seen = Arc::clone(counter);
    let size = move || Some(seen.load(Ordering::Relaxed));
    let run = ToolRun {
        tool: "pg_dump",
        counted: DUMP_TABLE_LINE,
        tables: Some(tables),
        bytes: &size,
        stdout_counter: Some(Arc::clone(counter)),
        // A read-through is taken alongside the upgrade only as an upgrade's backup step, and
        // nothing waits for its speed before the cut-over: it always yields.
        yield_cpu: true,
    };
    run_tool(cmd, &run, cancel, obs)
}

pub(super) fn dump_args(format: BackupFormat) -> Vec<String> {
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
pub(super) const DUMPED_TABLES: &str = "FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'r' \
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') \
       AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%' \
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
                       WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                         AND d.objid = c.oid AND d.deptype = 'e')";

/// The size (bytes, TOAST included) of each table whose rows pg_dump copies, largest first:
/// what the choice of the backup's format (`choice`) weighs.
pub fn dumped_table_sizes(client: &mut postgres::Client) -> Result<Vec<u64>, SourceError> {
    let rows = client
        .query(
            &format!(
                "SELECT pg_catalog.pg_table_size(c.oid) AS bytes {DUMPED_TABLES} ORDER BY bytes DESC"
            ),
            &[],
        )
        .map_err(SourceError::TableSizes)?;
    Ok(rows
        .iter()
        .map(|r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0))
        .collect())
}

/// What could not be read of the database to back up.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Connect(#[from] crate::conn::ConnError),
    #[error("cannot read the sizes of the tables to back up: {}", crate::db::describe(.0))]
    TableSizes(postgres::Error),
    #[error("cannot read the tables and encoding of \"{db}\": {}", crate::db::describe(.source))]
    Facts { db: String, source: postgres::Error },
}

pub(super) fn source_facts(server: &ConnSettings, db: &str) -> Result<SourceFacts, SourceError> {
    let mut client = server.with_dbname(db).connect(None)?;
    let row = client
        .query_one(
            &format!(
                "SELECT (SELECT count(*) {DUMPED_TABLES}), \
                        pg_catalog.pg_encoding_to_char(encoding)::text, datcollate::text, datctype::text \
                 FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()"
            ),
            &[],
        )
        .map_err(|source| SourceError::Facts {
            db: db.to_owned(),
            source,
        })?;
    Ok(SourceFacts {
        tables: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
        encoding: row.get(1),
        lc_collate: row.get(2),
        lc_ctype: row.get(3),
    })
}

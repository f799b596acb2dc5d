//! Restore (OMERO's backup/restore, seeds/003): a backup pgstep took, restored into a new
//! database and checked against the schema fingerprint recorded when it was taken.
//!
//! The backup is verified (size, sha256, `pg_restore --list`) before anything is changed; an
//! existing database is never restored over. The new database is created from `template0` with
//! the source's encoding and locale, then `pg_restore --exit-on-error` fills it. Objects keep
//! their owners and privileges as in the source (no `--no-owner`): the roles they name must
//! exist on this server, and a missing one is named with how to carry roles over (they are
//! cluster-wide and not in a database backup). Database-level properties (owner, comment,
//! settings, grants on the database itself) are not in the archive's restorable part and are not
//! restored: the new database belongs to the role pgstep connects as. Any failure or
//! cancellation after the database was created drops it again.

use crate::db::maintenance;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postgres::Client;
use serde::Serialize;

use super::{EngineError, Failure};
use crate::backup::{
    BackupMetadata, ToolEnd, ToolRun, archive_version_num, backup_path_of, find_client_tool,
    indent_lines, list_archive, read_metadata, run_tool, verify,
};
use crate::cancel::Cancel;
use crate::conn::ConnSettings;
use crate::db::DbError;
use crate::db::clone::{database_exists, exec_format};
use crate::events::{Event, Level, Observer, log, phase};
use crate::fingerprint;

/// What `pg_restore --verbose` prints as it starts loading a table's rows.
const RESTORE_TABLE_LINE: &str = "processing data for table";

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreOutcome {
    /// The new database.
    pub database: String,
    /// The backup's file or directory.
    pub backup: PathBuf,
    /// The database the backup was taken of, and its application version.
    pub source_database: String,
    pub version: String,
    /// The restored database's fingerprint (hex sha256) over the recorded schemas.
    pub fingerprint: String,
    /// Whether it equals the recorded one; `None` when the backup's metadata records no schemas
    /// (taken by an older pgstep), so there was nothing to compare.
    pub fingerprint_matches: Option<bool>,
    /// Tables whose rows pg_restore loaded.
    pub tables: u64,
    /// Entries in the archive's table of contents.
    pub entries: usize,
    pub jobs: u32,
    #[serde(with = "super::secs")]
    pub elapsed: Duration,
}

/// Restores `backup` (a `.dump` file, a `.dir` directory or its `.json` metadata) into the new
/// database `db` with `jobs` parallel pg_restore jobs.
pub fn restore(
    server: &ConnSettings,
    backup: &Path,
    db: &str,
    jobs: u32,
    cancel: &Cancel,
    obs: &mut dyn Observer,
) -> Result<RestoreOutcome, EngineError> {
    let started = Instant::now();
    phase(obs, "verify the backup");
    let (archive, meta, entries) = verified_backup(backup, obs)?;
    let mut maint = maintenance(server)?;
    let (server_version, pg_restore, tables) = restore_tool(&mut maint, &archive, &meta)?;
    refuse_existing(&mut maint, db, cancel)?;

    phase(obs, "create");
    create_database(&mut maint, db, &meta)?;
    log(
        obs,
        Level::Info,
        format!("created database \"{db}\" ({})", describe_encoding(&meta)),
    );
    let jobs = jobs.max(1);
    let loaded = (|| {
        phase(obs, "restore");
        let loaded = run_pg_restore(server, &pg_restore, &archive, db, jobs, tables, cancel, obs)?;
        phase(obs, "verify");
        let (fp, matches) = check_fingerprint(server, db, &meta, obs)?;
        Ok((loaded, fp, matches))
    })();
    match loaded {
        Ok((tables, fingerprint, fingerprint_matches)) => Ok(RestoreOutcome {
            database: db.to_owned(),
            backup: archive,
            source_database: meta.database,
            version: meta.version,
            fingerprint,
            fingerprint_matches,
            tables,
            entries,
            jobs,
            elapsed: started.elapsed(),
        }),
        Err(failure) => Err(undo(&mut maint, server_version, db, failure, obs)),
    }
}

/// The server's version, the pg_restore that can restore this backup there, and how many
/// tables' rows the archive holds (read with it).
fn restore_tool(
    maint: &mut Client,
    archive: &Path,
    meta: &BackupMetadata,
) -> Result<(u32, PathBuf, u64), EngineError> {
    let server_version = fingerprint::server_version_num(maint)
        .map_err(|e| DbError::query("read the server version", e))?;
    let pg_restore = find_client_tool("pg_restore", server_version.max(archive_version_num(meta)))
        .map_err(|e| EngineError::Refused(e.to_string()))?;
    let listing =
        list_archive(&pg_restore.0, archive).map_err(|e| EngineError::Refused(e.to_string()))?;
    Ok((server_version, pg_restore.0, table_data_entries(&listing)))
}

/// Refuses, changing nothing, if `db` exists already or the operator has cancelled.
fn refuse_existing(maint: &mut Client, db: &str, cancel: &Cancel) -> Result<(), EngineError> {
    if database_exists(maint, db)? {
        return Err(EngineError::Refused(format!(
            "database \"{db}\" already exists: pgstep restore creates a new database and never restores over an \
             existing one. Choose another name with --database (or drop \"{db}\" yourself if it is really not needed)"
        )));
    }
    if cancel.requested() {
        return Err(EngineError::Refused(
            "restore cancelled before anything was changed".into(),
        ));
    }
    Ok(())
}

/// Reads the metadata and verifies the backup against it; refuses, changing nothing, if it
/// does not verify. Returns the archive's path, its metadata and its table-of-contents entries.
fn verified_backup(
    backup: &Path,
    obs: &mut dyn Observer,
) -> Result<(PathBuf, BackupMetadata, usize), EngineError> {
    let refuse =
        |e: crate::backup::BackupError| EngineError::Refused(format!("{e}\nNothing was changed."));
    let meta = read_metadata(backup).map_err(refuse)?;
    let archive = if backup.extension().is_some_and(|e| e == "json") {
        backup_path_of(backup, &meta)
    } else {
        backup.to_path_buf()
    };
    let entries = verify(&archive, &meta).map_err(refuse)?;
    check(
        obs,
        "backup",
        true,
        format!(
            "{}: {} bytes, sha256 {} as recorded, {entries} archive entries; taken of \"{}\" at version {} on {}",
            archive.display(),
            meta.size,
            meta.sha256,
            meta.database,
            meta.version,
            meta.created_at
        ),
    );
    Ok((archive, meta, entries))
}

fn check(obs: &mut dyn Observer, name: &str, ok: bool, detail: String) {
    obs.event(Event::Check {
        name: name.to_owned(),
        ok,
        detail,
    });
}

/// Rows of tables in the archive: the `TABLE DATA` entries of `pg_restore --list`.
fn table_data_entries(listing: &str) -> u64 {
    let count = listing
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter(|l| l.contains(" TABLE DATA "))
        .count();
    u64::try_from(count).unwrap_or(u64::MAX)
}

/// `CREATE DATABASE` from template0 (so nothing added to template1 collides with the archive)
/// with the source's encoding and locale when the metadata records them. A failure here is a
/// refusal: the database was not created.
fn create_database(
    client: &mut Client,
    db: &str,
    meta: &BackupMetadata,
) -> Result<(), EngineError> {
    let result = if meta.encoding.is_empty() {
        exec_format(client, "CREATE DATABASE %I TEMPLATE template0", &[db])
    } else {
        exec_format(
            client,
            "CREATE DATABASE %I TEMPLATE template0 ENCODING %L LC_COLLATE %L LC_CTYPE %L",
            &[db, &meta.encoding, &meta.lc_collate, &meta.lc_ctype],
        )
    };
    result.map_err(|e| {
        EngineError::Refused(format!(
            "cannot create database \"{db}\" ({}): {}\nNothing was changed. If the locale is missing on this server, \
             install it (Debian: dpkg-reconfigure locales) and restart PostgreSQL.",
            describe_encoding(meta),
            crate::db::describe(&e)
        ))
    })
}

fn describe_encoding(meta: &BackupMetadata) -> String {
    if meta.encoding.is_empty() {
        "the server's default encoding and locale: the backup does not record its own".to_owned()
    } else {
        format!(
            "encoding {}, locale {}/{} as the source had",
            meta.encoding, meta.lc_collate, meta.lc_ctype
        )
    }
}

/// Runs pg_restore into `db`; returns the tables loaded, or why it failed.
#[allow(clippy::too_many_arguments)]
fn run_pg_restore(
    server: &ConnSettings,
    pg_restore: &Path,
    archive: &Path,
    db: &str,
    jobs: u32,
    tables: u64,
    cancel: &Cancel,
    obs: &mut dyn Observer,
) -> Result<u64, Failure> {
    let fail = |what: String| Failure {
        what,
        ..Failure::default()
    };
    let env = server
        .with_dbname(db)
        .child_env()
        .map_err(|e| fail(e.to_string()))?;
    let mut cmd = std::process::Command::new(pg_restore);
    cmd.args(["--verbose", "--exit-on-error", "--no-password"])
        .arg(format!("--jobs={jobs}"))
        // A connection string holding only the database name: the rest comes from the
        // environment, and a name that looks like a connection string stays a name.
        .arg(format!("--dbname={}", conninfo_dbname(db)))
        .arg(archive);
    env.apply(&mut cmd);
    let no_bytes = || None;
    let run = ToolRun {
        tool: "pg_restore",
        counted: RESTORE_TABLE_LINE,
        tables: Some(tables),
        bytes: &no_bytes,
        stdout_counter: None,
        yield_cpu: false,
    };
    match run_tool(cmd, &run, cancel, obs)
        .map_err(|e| fail(format!("cannot run {}: {e}", pg_restore.display())))?
    {
        ToolEnd::Done { tables } => Ok(tables),
        ToolEnd::Cancelled => Err(fail(format!(
            "the restore into \"{db}\" was cancelled: pg_restore was stopped"
        ))),
        ToolEnd::Failed { status, tail } => Err(restore_failure(db, status, &tail)),
    }
}

/// `dbname='…'` with libpq's quoting (backslash before `'` and `\`).
fn conninfo_dbname(db: &str) -> String {
    format!("dbname='{}'", db.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn restore_failure(db: &str, status: std::process::ExitStatus, tail: &[String]) -> Failure {
    let mut failure = Failure {
        what: format!(
            "pg_restore into \"{db}\" ended with {status}:\n{}",
            indent_lines(tail)
        ),
        ..Failure::default()
    };
    if let Some(role) = tail.iter().find_map(|l| missing_role(l)) {
        failure.what = format!(
            "the backup names the role \"{role}\", which does not exist on this server:\n{}",
            indent_lines(tail)
        );
        failure.advice.push(format!(
            "Roles are cluster-wide: they are not part of a database backup. Create \"{role}\" (and any other \
             role the application uses) first — on the original server `pg_dumpall --roles-only > roles.sql`, \
             here `psql -f roles.sql` (review the file first) — then run pgstep restore again."
        ));
    }
    failure
}

/// The role of a `role "x" does not exist` error line.
fn missing_role(line: &str) -> Option<String> {
    let start = line.find("role \"")? + "role \"".len();
    let rest = &line[start..];
    let end = rest.rfind("\" does not exist")?;
    Some(rest[..end].to_owned())
}

/// Fingerprints the new database over the recorded schemas and compares. A mismatch is a
/// failure: the archive verified, so the difference comes from this server (another PostgreSQL
/// version, missing extensions), and users must not work on a schema nobody recognises.
fn check_fingerprint(
    server: &ConnSettings,
    db: &str,
    meta: &BackupMetadata,
    obs: &mut dyn Observer,
) -> Result<(String, Option<bool>), Failure> {
    let fail = |what: String| Failure {
        what,
        ..Failure::default()
    };
    let mut client = server
        .with_dbname(db)
        .connect(None)
        .map_err(|e| fail(format!("cannot connect to the restored database: {e}")))?;
    if meta.schemas.is_empty() {
        return unrecorded_schemas(&mut client, obs).map(|hash| (hash, None));
    }
    let fp = fingerprint::compute(&mut client, &meta.schemas).map_err(|e| {
        fail(format!(
            "cannot fingerprint the restored database: {}",
            crate::db::describe(&e)
        ))
    })?;
    let matches = fp.hash == meta.fingerprint;
    check(
        obs,
        "restored fingerprint",
        matches,
        format!(
            "{} {} the one recorded in the backup (schemas {})",
            fp.display_hash(),
            if matches { "equals" } else { "differs from" },
            meta.schemas.join(", ")
        ),
    );
    if !matches {
        return Err(Failure {
            what: format!(
                "the restored database's schema ({}) differs from the one recorded when the backup was taken \
                 (sha256:{}), although the backup itself verified",
                fp.display_hash(),
                meta.fingerprint
            ),
            advice: vec![
                "The difference comes from this server: another PostgreSQL version, or extensions missing or at \
                 other versions. Restore on a server like the original one, or compare with \
                 `pgstep fingerprint --full` on both."
                    .into(),
            ],
            ..Failure::default()
        });
    }
    Ok((fp.hash, Some(true)))
}

/// The restored database's fingerprint over all its schemas, for a backup whose metadata
/// records none (an older pgstep took it): nothing to compare it with.
fn unrecorded_schemas(client: &mut Client, obs: &mut dyn Observer) -> Result<String, Failure> {
    let fail = |what: String| Failure {
        what,
        ..Failure::default()
    };
    log(
        obs,
        Level::Warning,
        "the backup's metadata records no schemas (an older pgstep took it): the restored schema cannot be \
         compared with the recorded fingerprint",
    );
    let schemas = fingerprint::user_schemas(client).map_err(|e| fail(crate::db::describe(&e)))?;
    let fp = fingerprint::compute(client, &schemas).map_err(|e| fail(crate::db::describe(&e)))?;
    Ok(fp.hash)
}

/// Drops the database this restore created, and says so in the failure.
fn undo(
    maint: &mut Client,
    server_version: u32,
    db: &str,
    mut failure: Failure,
    obs: &mut dyn Observer,
) -> EngineError {
    phase(obs, "undo");
    match drop_new_database(maint, server_version, db) {
        Ok(()) => failure
            .undone
            .push(format!("dropped the partly restored database \"{db}\"")),
        Err(e) => failure.advice.push(format!(
            "pgstep could not drop the partly restored database \"{db}\" ({}): drop it yourself \
             (DROP DATABASE \"{db}\"); nothing else was changed.",
            crate::db::describe(&e)
        )),
    }
    failure
        .advice
        .push("The backup itself is unchanged.".to_owned());
    EngineError::Failed(failure)
}

/// Drops the new database, ending the sessions a killed pg_restore may have left for a moment.
fn drop_new_database(
    client: &mut Client,
    server_version: u32,
    db: &str,
) -> Result<(), postgres::Error> {
    if server_version >= 130_000 {
        return exec_format(client, "DROP DATABASE IF EXISTS %I WITH (FORCE)", &[db]);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match exec_format(client, "DROP DATABASE IF EXISTS %I", &[db]) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                // Only "still in use" is worth waiting for: the killed tool's sessions end soon.
                if e.code().is_none_or(|c| c.code() != "55006") {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_role_is_found_in_pg_restore_output() {
        assert_eq!(
            missing_role(
                "pg_restore: error: could not execute query: ERROR:  role \"clinic_owner\" does not exist"
            ),
            Some("clinic_owner".to_owned())
        );
        assert_eq!(missing_role("pg_restore: error: out of memory"), None);
    }

    #[test]
    fn a_database_name_stays_a_name_for_libpq() {
        assert_eq!(conninfo_dbname("clinic_v1"), "dbname='clinic_v1'");
        assert_eq!(
            conninfo_dbname("host=evil o'k\\"),
            "dbname='host=evil o\\'k\\\\'"
        );
    }

    #[test]
    fn table_data_entries_are_counted_from_the_listing() {
        let listing = "; Archive created at 2026-01-01\n;     TOC Entries: 3\n\
                       215; 1259 16390 TABLE clinic patient postgres\n\
                       3400; 0 16390 TABLE DATA clinic patient postgres\n\
                       3401; 0 16391 TABLE DATA clinic encounter postgres\n";
        assert_eq!(table_data_entries(listing), 2);
    }
}

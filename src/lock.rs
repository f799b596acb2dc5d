//! One pgstep run per source database, held twice:
//!
//! - **in the server**: a session-level advisory lock (`pg_try_advisory_lock`) on a dedicated
//!   connection to the maintenance database, whose `application_name` says which host, process
//!   and run hold it. This is the lock that counts: it covers runs from any machine, and the
//!   server drops it by itself when the holder's connection ends (killed, crashed).
//! - **on this machine**: `<data dir>/locks/<server>-<db>.lock`, locked with `flock` and holding
//!   a JSON description of the holder, so that a refusal can name the holder exactly (and a
//!   second run on the same machine is refused before it touches the server).
//!
//! The kernel drops the file lock when its process dies; a lock file whose content names a dead
//! process is therefore only *stale*: it is taken over with a warning. Lock files are emptied,
//! never deleted, on release: deleting a locked file lets two processes lock two different files
//! under the same name.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use postgres::Client;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::conn::{ConnError, ConnSettings};
use crate::db::describe;
use crate::journal::{RunInfo, file_component, hostname};

/// PostgreSQL truncates `application_name` to NAMEDATALEN - 1 bytes.
const APPLICATION_NAME_MAX: usize = 63;
/// How often to retry when the holder let go between our attempt and our look at `pg_locks`.
const HOLDER_RETRIES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another run is working on database \"{db}\": {by}. Only one pgstep run may work on a \
         database at a time: wait for that run to finish. (A killed run's lock goes away with its \
         process; `pgstep recover` then undoes what it left pending.)"
    )]
    Held { db: String, by: String },
    #[error(
        "cannot take the run lock for database \"{db}\": no connection to the maintenance \
         database (postgres: {postgres}; template1: {template1})"
    )]
    Connect {
        db: String,
        postgres: Box<ConnError>,
        template1: Box<ConnError>,
    },
    #[error("cannot take the run lock for database \"{db}\": failed to {action}: {}", describe(.source))]
    Query {
        db: String,
        action: String,
        source: postgres::Error,
    },
    #[error("cannot take the run lock for database \"{db}\": cannot {action} {}: {source}", .path.display())]
    Io {
        db: String,
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "the run lock for database \"{db}\" was lost (its connection to the server ended): \
         another pgstep run could now start on it"
    )]
    Lost { db: String },
}

/// What a lock file says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFileContent {
    pub host: String,
    pub pid: u32,
    pub run_id: String,
    /// RFC 3339.
    pub since: String,
    #[serde(default)]
    pub server: String,
    #[serde(default)]
    pub source_db: String,
}

impl LockFileContent {
    fn holder(&self) -> String {
        format!(
            "pid {} on host {} since {}, run {}",
            self.pid, self.host, self.since, self.run_id
        )
    }
}

/// The held lock. Dropping it releases both halves (see [`RunLock::release`]).
pub struct RunLock {
    client: Client,
    maintenance_db: String,
    source_db: String,
    key: i64,
    file: File,
    file_path: PathBuf,
    warnings: Vec<String>,
    released: bool,
}

impl std::fmt::Debug for RunLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunLock")
            .field("source_db", &self.source_db)
            .field("maintenance_db", &self.maintenance_db)
            .field("key", &self.key)
            .field("file_path", &self.file_path)
            .finish_non_exhaustive()
    }
}

impl RunLock {
    /// The maintenance connection that holds the lock, for the caller to reuse. Do not run
    /// `DISCARD ALL` or `pg_advisory_unlock_all()` on it: that would drop the lock.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// `postgres`, or `template1` when `postgres` could not be used.
    pub fn maintenance_db(&self) -> &str {
        &self.maintenance_db
    }

    /// What the operator should be told: a stale lock file taken over, a fallback to template1.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn lock_file(&self) -> &Path {
        &self.file_path
    }

    /// Checks that the server still holds the lock for us (its connection can be cut by a
    /// server restart or an administrator); worth calling before each change to the server.
    pub fn verify(&mut self) -> Result<(), LockError> {
        let (hi, lo) = key_halves(self.key);
        let held = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' \
                 AND pid = pg_catalog.pg_backend_pid() AND granted AND objsubid = 1 \
                 AND classid::bigint = $1 AND objid::bigint = $2)",
                &[&hi, &lo],
            )
            .map(|row| row.get::<_, bool>(0));
        match held {
            Ok(true) => Ok(()),
            _ => Err(LockError::Lost {
                db: self.source_db.clone(),
            }),
        }
    }

    /// Releases both locks now, reporting a failure (dropping does the same, silently). The
    /// advisory lock is released by a query rather than by closing the connection, so that it
    /// is free when this returns (a closing backend lets go of its locks a moment later).
    pub fn release(mut self) -> Result<(), LockError> {
        self.unlock()
    }

    fn unlock(&mut self) -> Result<(), LockError> {
        self.released = true;
        let server = self
            .client
            .query_one("SELECT pg_catalog.pg_advisory_unlock($1)", &[&self.key])
            .map_err(|source| LockError::Query {
                db: self.source_db.clone(),
                action: "release the advisory lock".to_owned(),
                source,
            });
        // Emptied while still locked: an empty file means "released cleanly". The file lock
        // itself goes when the file is closed, with `self`.
        let local = self.file.set_len(0).map_err(|source| LockError::Io {
            db: self.source_db.clone(),
            action: "release the lock file",
            path: self.file_path.clone(),
            source,
        });
        server.and(local)
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if !self.released {
            // Best effort: whatever fails here, closing the connection and the file releases
            // both locks anyway.
            let _ = self.unlock();
        }
    }
}

/// Takes the run lock for `source_db` on `server`, with the lock file in `<data dir>/locks`.
pub fn acquire(
    server: &ConnSettings,
    source_db: &str,
    info: &RunInfo,
) -> Result<RunLock, LockError> {
    acquire_in(
        &crate::paths::data_dir().join("locks"),
        server,
        source_db,
        info,
    )
}

/// [`acquire`] with the lock files in `locks_dir`.
pub fn acquire_in(
    locks_dir: &Path,
    server: &ConnSettings,
    source_db: &str,
    info: &RunInfo,
) -> Result<RunLock, LockError> {
    let file_path = lock_file_path(locks_dir, &server.host_display(), source_db);
    let (mut file, previous) = lock_local(locks_dir, &file_path, source_db)?;
    // Ours from now on, so that a run refused meanwhile names us and not a dead predecessor.
    let content = LockFileContent {
        host: info.host.clone(),
        pid: info.pid,
        run_id: info.run_id.clone(),
        since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        server: server.host_display(),
        source_db: source_db.to_owned(),
    };
    let io_err = |action, source| LockError::Io {
        db: source_db.to_owned(),
        action,
        path: file_path.clone(),
        source,
    };
    write_content(&mut file, &content).map_err(|e| io_err("write the lock file", e))?;
    let server_lock = lock_server(server, source_db, info);
    let (client, maintenance_db, key, mut warnings) = match server_lock {
        Ok(locked) => locked,
        Err(e) => {
            // Not ours after all: leave the file empty (the holder is on another machine or
            // reached the server under another name) and let the file lock go with `file`.
            let _ = file.set_len(0);
            return Err(e);
        }
    };
    if let Some(previous) = previous {
        warnings.insert(0, stale_warning(&previous, &file_path));
    }
    Ok(RunLock {
        client,
        maintenance_db,
        source_db: source_db.to_owned(),
        key,
        file,
        file_path,
        warnings,
        released: false,
    })
}

/// The advisory lock key of a database: the first 8 bytes of sha256("pgstep:" + name), big
/// endian. It must never change: two pgstep versions must agree on it.
pub fn lock_key(source_db: &str) -> i64 {
    let digest = Sha256::digest(format!("pgstep:{source_db}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// How `pg_locks` shows a bigint advisory key: high and low 32 bits (as classid and objid).
fn key_halves(key: i64) -> (i64, i64) {
    let bits = key as u64;
    (i64::from((bits >> 32) as u32), i64::from(bits as u32))
}

/// `<dir>/<server>-<db>.lock`. Both parts are escaped reversibly, `-` included in the server
/// part, so that two (server, database) pairs never share a file; an unusually long server
/// display is shortened and made unique with a hash.
pub fn lock_file_path(dir: &Path, server_display: &str, source_db: &str) -> PathBuf {
    const SERVER_MAX: usize = 48;
    let mut server = file_component(server_display, false);
    if server.len() > SERVER_MAX {
        let hash = crate::hex::sha256(server_display.as_bytes());
        server.truncate(SERVER_MAX - 17);
        server = format!("{server}~{}", &hash[..16]);
    }
    dir.join(format!("{server}-{}.lock", file_component(source_db, true)))
}

/// `pgstep <host> pid <pid> run <run id>` (PostgreSQL keeps the first 63 bytes).
pub fn application_name(info: &RunInfo) -> String {
    format!("pgstep {} pid {} run {}", info.host, info.pid, info.run_id)
}

/// Takes the file lock; returns the file and what a previous, now dead, holder left in it.
fn lock_local(
    dir: &Path,
    path: &Path,
    db: &str,
) -> Result<(File, Option<LockFileContent>), LockError> {
    let io_err = |action, source| LockError::Io {
        db: db.to_owned(),
        action,
        path: path.to_path_buf(),
        source,
    };
    crate::paths::private_dir(dir).map_err(|e| io_err("create the directory of", e))?;
    let mut file = crate::paths::private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_err("open the lock file", e))?;
    let previous = read_content(&mut file).map_err(|e| io_err("read the lock file", e))?;
    let locked = file.try_lock();
    match locked {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            // Read again: the holder may have written its details since our first read.
            let holder = read_content(&mut file).ok().flatten().or(previous);
            return Err(LockError::Held {
                db: db.to_owned(),
                by: holder.map_or_else(
                    || {
                        format!(
                            "another pgstep process on this machine (lock file {}; it has not \
                             written its details yet)",
                            path.display()
                        )
                    },
                    |h| h.holder(),
                ),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io_err("lock the lock file", e)),
    }
    let previous = read_content(&mut file).map_err(|e| io_err("read the lock file", e))?;
    Ok((file, previous))
}

/// The holder's details; None for an empty (cleanly released) or unreadable file.
fn read_content(file: &mut File) -> io::Result<Option<LockFileContent>> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_string(&mut text)?;
    Ok(serde_json::from_str(&text).ok())
}

fn write_content(file: &mut File, content: &LockFileContent) -> io::Result<()> {
    let text = serde_json::to_string(content).map_err(io::Error::other)?;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// The warning for a lock file left behind by a run that no longer holds it.
fn stale_warning(previous: &LockFileContent, path: &Path) -> String {
    let state = if previous.host != hostname() {
        "that host shares this data directory, and the run no longer holds the lock"
    } else {
        match process_alive(previous.pid) {
            Some(false) => "that process is no longer running",
            Some(true) => {
                "a process with that pid is running but does not hold the lock (the pid was \
                 probably reused)"
            }
            None => "that process does not hold the lock any more",
        }
    };
    format!(
        "stale lock file {} from run {} (pid {} on host {} since {}): {state}, so the lock was \
         taken over. If that run was interrupted, `pgstep recover` undoes what it left pending.",
        path.display(),
        previous.run_id,
        previous.pid,
        previous.host,
        previous.since
    )
}

/// Whether a local process exists (Linux `/proc`); None where that cannot be told.
fn process_alive(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return None;
    }
    Some(proc.join(pid.to_string()).exists())
}

type ServerLock = (Client, String, i64, Vec<String>);

/// Connects to the maintenance database, names the session and takes the advisory lock.
fn lock_server(
    server: &ConnSettings,
    source_db: &str,
    info: &RunInfo,
) -> Result<ServerLock, LockError> {
    let (mut client, maintenance_db, mut warnings) = connect_maintenance(server, source_db)?;
    let query_err = |action: &str| {
        let db = source_db.to_owned();
        let action = action.to_owned();
        move |source| LockError::Query { db, action, source }
    };
    // Bound through set_config: a value is never spliced into SQL.
    client
        .execute(
            "SELECT pg_catalog.set_config('application_name', $1, false)",
            &[&application_name(info)],
        )
        .map_err(query_err("set application_name"))?;
    keep_session_alive(&mut client).map_err(query_err("disable idle_session_timeout"))?;
    let key = lock_key(source_db);
    for _ in 0..HOLDER_RETRIES {
        let locked: bool = client
            .query_one("SELECT pg_catalog.pg_try_advisory_lock($1)", &[&key])
            .map_err(query_err("take the advisory lock"))?
            .get(0);
        if locked {
            if maintenance_db != "postgres" {
                warnings.push(template1_warning(&maintenance_db));
            }
            return Ok((client, maintenance_db, key, warnings));
        }
        if let Some(by) =
            server_holder(&mut client, key).map_err(query_err("look up the holder"))?
        {
            return Err(LockError::Held {
                db: source_db.to_owned(),
                by,
            });
        }
        // The holder let go in between: try again.
    }
    Err(LockError::Held {
        db: source_db.to_owned(),
        by: "a session that could not be identified keeps taking the lock".to_owned(),
    })
}

fn connect_maintenance(
    server: &ConnSettings,
    source_db: &str,
) -> Result<(Client, String, Vec<String>), LockError> {
    let postgres = match server.with_dbname("postgres").connect(None) {
        Ok(client) => return Ok((client, "postgres".to_owned(), Vec::new())),
        Err(e) => e,
    };
    match server.with_dbname("template1").connect(None) {
        Ok(client) => Ok((
            client,
            "template1".to_owned(),
            vec![format!(
                "the maintenance database postgres could not be used ({postgres}); the run lock \
                 is held through template1 instead"
            )],
        )),
        Err(template1) => Err(LockError::Connect {
            db: source_db.to_owned(),
            postgres: Box::new(postgres),
            template1: Box::new(template1),
        }),
    }
}

fn template1_warning(db: &str) -> String {
    format!(
        "while this run holds its lock through {db}, CREATE DATABASE without an explicit \
         TEMPLATE is refused on this server (PostgreSQL copies {db} only when nobody is connected \
         to it); runs that hold their lock through postgres do not see this one"
    )
}

/// A server-wide `idle_session_timeout` (PostgreSQL 14+) would end the idle lock connection
/// and silently free the lock in the middle of a run.
fn keep_session_alive(client: &mut Client) -> Result<(), postgres::Error> {
    let version: i32 = client
        .query_one(
            "SELECT pg_catalog.current_setting('server_version_num')::int",
            &[],
        )?
        .get(0);
    if version >= 140_000 {
        client.execute(
            "SELECT pg_catalog.set_config('idle_session_timeout', '0', false)",
            &[],
        )?;
    }
    Ok(())
}

/// Who holds the advisory lock, from `pg_locks` and `pg_stat_activity`; None if nobody does
/// any more.
fn server_holder(client: &mut Client, key: i64) -> Result<Option<String>, postgres::Error> {
    let (hi, lo) = key_halves(key);
    let row = client.query_opt(
        "SELECT a.pid, a.application_name, a.usename::text, \
                to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
         FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
           AND l.classid::bigint = $1 AND l.objid::bigint = $2 \
           AND l.database = (SELECT oid FROM pg_catalog.pg_database \
                             WHERE datname = pg_catalog.current_database()) \
         LIMIT 1",
        &[&hi, &lo],
    )?;
    Ok(row.map(|r| {
        describe_holder(
            r.get(0),
            r.get::<_, Option<String>>(1).as_deref().unwrap_or(""),
            r.get(2),
            r.get(3),
        )
    }))
}

/// "pid 1234 on host db1 since …, run …" from the holder's session.
fn describe_holder(
    backend_pid: i32,
    application_name: &str,
    user: Option<String>,
    since: Option<String>,
) -> String {
    let since = since.map(|s| format!(" since {s}")).unwrap_or_default();
    let words: Vec<&str> = application_name.split(' ').collect();
    match words.as_slice() {
        ["pgstep", host, "pid", pid, "run", run, ..] => {
            // PostgreSQL cut the name at 63 bytes: the run id may be incomplete.
            let cut = if application_name.len() >= APPLICATION_NAME_MAX {
                "…"
            } else {
                ""
            };
            format!(
                "pid {pid} on host {host}{since}, run {run}{cut} (its server session is pid \
                 {backend_pid}; only if you are sure that run is gone, end the session with \
                 SELECT pg_terminate_backend({backend_pid}))"
            )
        }
        _ => format!(
            "a session that is not pgstep holds pgstep's lock: server pid {backend_pid}, \
             application \"{application_name}\", user {}{since}",
            user.as_deref().unwrap_or("(unknown)")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_key_never_changes() {
        // Fixed forever: runs of different pgstep versions must exclude each other.
        // sha256("pgstep:clinic_v1") starts with ec877f4c8fa3d7dd.
        assert_eq!(lock_key("clinic_v1"), -1_403_012_792_098_498_595);
        assert_eq!(lock_key("clinic_v1") as u64, 0xec87_7f4c_8fa3_d7dd);
        assert_ne!(lock_key("clinic_v1"), lock_key("clinic_v2"));
    }

    #[test]
    fn lock_key_halves_match_pg_locks() {
        assert_eq!(
            key_halves(0x0102_0304_0506_0708),
            (0x0102_0304, 0x0506_0708)
        );
        assert_eq!(key_halves(-1), (0xFFFF_FFFF, 0xFFFF_FFFF));
    }

    #[test]
    fn lock_file_names_are_distinct_and_bounded() {
        let dir = Path::new("/d");
        assert_eq!(
            lock_file_path(dir, "db1.example:5432", "clinic_v1"),
            Path::new("/d/db1.example%3A5432-clinic_v1.lock")
        );
        assert_ne!(
            lock_file_path(dir, "a-b", "c"),
            lock_file_path(dir, "a", "b-c")
        );
        let long = "/a/very/long/socket/directory/that/goes/on/and/on (socket)";
        let p = lock_file_path(dir, long, "clinic");
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        assert!(name.len() < 120, "{name}");
        assert_ne!(p, lock_file_path(dir, &format!("{long}x"), "clinic"));
    }

    #[test]
    fn lock_holder_is_described_from_the_application_name() {
        let by = describe_holder(
            77,
            "pgstep db1 pid 4242 run 20260501T021500Z-clinic-4242",
            Some("alice".to_owned()),
            Some("2026-05-01T02:15:00Z".to_owned()),
        );
        assert!(
            by.starts_with(
                "pid 4242 on host db1 since 2026-05-01T02:15:00Z, run 20260501T021500Z-clinic-4242 \
                 (its server session is pid 77;"
            ),
            "{by}"
        );
        let other = describe_holder(78, "psql", Some("bob".to_owned()), None);
        assert_eq!(
            other,
            "a session that is not pgstep holds pgstep's lock: server pid 78, application \
             \"psql\", user bob"
        );
    }

    #[test]
    fn lock_held_message_says_one_run_at_a_time() {
        let e = LockError::Held {
            db: "clinic".to_owned(),
            by: "pid 1 on host h since s, run r".to_owned(),
        };
        let text = e.to_string();
        assert!(
            text.contains("\"clinic\": pid 1 on host h since s, run r"),
            "{text}"
        );
        assert!(text.contains("Only one pgstep run may work on a database at a time"));
    }
}

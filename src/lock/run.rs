//! The held run lock: taken by [`acquire`], checked by [`RunLock::verify`], released on drop.

use std::fs::File;
use std::path::{Path, PathBuf};

use postgres::Client;

use super::LockError;
use super::file::{LockFileContent, lock_file_path, lock_local, stale_warning, write_content};
use super::server::{key_halves, lock_server};
use crate::conn::ConnSettings;
use crate::journal::RunInfo;

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

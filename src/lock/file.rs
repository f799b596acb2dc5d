//! The lock file on this machine: its name, its `flock`, and the holder's details inside.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::LockError;
use crate::journal::{file_component, hostname};

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

/// Takes the file lock; returns the file and what a previous, now dead, holder left in it.
pub(super) fn lock_local(
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

pub(super) fn write_content(file: &mut File, content: &LockFileContent) -> io::Result<()> {
    let text = serde_json::to_string(content).map_err(io::Error::other)?;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// The warning for a lock file left behind by a run that no longer holds it.
pub(super) fn stale_warning(previous: &LockFileContent, path: &Path) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

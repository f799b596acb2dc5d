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

mod file;
mod run;
mod server;

use std::io;
use std::path::PathBuf;

use crate::conn::ConnError;
use crate::db::describe;

pub use file::{LockFileContent, lock_file_path};
pub use run::{RunLock, acquire, acquire_in};
pub use server::{application_name, lock_key};

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

#[cfg(test)]
mod tests {
    use super::*;

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

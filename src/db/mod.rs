//! Everything pgstep does to a PostgreSQL server, one operation per function: run scripts, read
//! versions, list sessions, clone, rename, drop, compare. The engine sequences these; nothing
//! here decides what to do next.

pub mod access;
pub mod acl;
pub mod banner;
pub mod bookkeeping;
pub mod checks;
pub mod clone;
pub mod readonly;
pub mod retire;
pub mod runner;
pub mod session;
pub mod sessions;
pub mod source_check;
pub mod version;

pub use session::{DbError, Session, describe};

use crate::conn::ConnSettings;

/// The maintenance connection used to create, rename and drop databases: database `postgres`,
/// or `template1` where `postgres` is missing. The first error is the one reported.
pub fn maintenance(server: &ConnSettings) -> Result<postgres::Client, DbError> {
    server
        .with_dbname("postgres")
        .connect(None)
        .or_else(|first| {
            server
                .with_dbname("template1")
                .connect(None)
                .map_err(|_| first)
        })
        .map_err(DbError::Connect)
}

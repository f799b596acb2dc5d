//! Everything pgstep does to a PostgreSQL server, one operation per function: run scripts, read
//! versions, list sessions, clone, rename, drop, compare. The engine sequences these; nothing
//! here decides what to do next.

pub mod access;
pub mod banner;
pub mod bookkeeping;
pub mod checks;
pub mod clone;
pub mod runner;
pub mod session;
pub mod sessions;
pub mod version;

pub use session::{DbError, Session, describe};

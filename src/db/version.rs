//! Reads an application's version marker with the bundle's query, in a read-only transaction.

use postgres::{Client, SimpleQueryMessage};

use super::session::{DbError, describe};
use crate::bundle::Version;

/// The version the application's marker says, read with `query` (any one-row, one-column query).
pub fn read_version(client: &mut Client, query: &str, dbname: &str) -> Result<Version, DbError> {
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| DbError::query(format!("read the version of {dbname}"), e))?;
    let messages = tx.simple_query(query).map_err(|e| {
        DbError::Refused(format!(
            "cannot read the application's version in database \"{dbname}\": the bundle's version query failed: {}\n  \
             Is this the application's database, at a version this bundle knows?",
            describe(&e)
        ))
    })?;
    // Read-only: there is nothing to keep, and a failed commit changes nothing.
    let _ = tx.rollback();
    let first = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_owned)),
        _ => None,
    });
    let text = match first {
        None => {
            return Err(DbError::Refused(format!(
                "the version query returned no row in database \"{dbname}\": the version marker is missing"
            )));
        }
        Some(None) => {
            return Err(DbError::Refused(format!(
                "the version query returned NULL in database \"{dbname}\": the version marker is empty"
            )));
        }
        Some(Some(t)) => t,
    };
    text.parse().map_err(|e| {
        DbError::Refused(format!(
            "the version marker of database \"{dbname}\" says {e}"
        ))
    })
}

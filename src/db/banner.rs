//! The application's logon banner, with the bundle's own `get`, `set` and `clear` SQL: "upgrade
//! in progress" during the downtime, and afterwards exactly what was there before.
//!
//! Each function runs in its own transaction on a session on the application's database. A
//! change is read back with `get` before it is committed: a `set` that stores nothing (an UPDATE
//! that finds no row) or something else is an error, and is rolled back.

use postgres::{Client, SimpleQueryMessage, Transaction};

use super::session::{DbError, describe};
use crate::bundle::{Banner, Version};

/// The banner's text now: the first column of the first row of the bundle's `get` query; None
/// when it is NULL or there is no row.
pub fn get(client: &mut Client, banner: &Banner) -> Result<Option<String>, DbError> {
    let action = "read the logon banner";
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| DbError::query(action, e))?;
    let text = read(&mut tx, banner)?;
    // Read-only: nothing to keep.
    let _ = tx.rollback();
    Ok(text)
}

/// Shows `message` as the banner (the bundle's `set`, `$1` bound to the message).
pub fn set(client: &mut Client, banner: &Banner, message: &str) -> Result<(), DbError> {
    write(client, banner, Some(message))
}

/// Puts the banner back as it was: `previous` None runs the bundle's `clear`, Some sets that
/// text again.
pub fn restore(
    client: &mut Client,
    banner: &Banner,
    previous: Option<&str>,
) -> Result<(), DbError> {
    write(client, banner, previous)
}

/// What users see while pgstep upgrades their database.
pub fn in_progress_message(app: &str, from: &Version, to: &Version) -> String {
    format!("upgrade {app} v{from} → v{to} in progress: please log off; the system is back soon")
}

/// Sets (Some) or clears (None) the banner, then reads it back and commits only when it says
/// exactly that. READ WRITE explicitly: the banner of a database already made read-only for
/// new sessions (the old one, after cut-over or in recovery) must still be put back.
fn write(client: &mut Client, banner: &Banner, message: Option<&str>) -> Result<(), DbError> {
    let action = match message {
        Some(_) => "set the logon banner",
        None => "clear the logon banner",
    };
    let mut tx = client
        .build_transaction()
        .read_only(false)
        .start()
        .map_err(|e| DbError::query(action, e))?;
    let result = match message {
        Some(text) => tx.execute(banner.set.as_str(), &[&text]).map(|_| ()),
        None => tx.batch_execute(&banner.clear),
    };
    result.map_err(|e| DbError::query(action, e))?;
    let now = read(&mut tx, banner)?;
    if now.as_deref() != message {
        // Dropping the transaction rolls it back.
        return Err(DbError::Refused(format!(
            "the bundle's banner SQL did not {}: afterwards its get query returns {}; the banner \
             was left unchanged",
            match message {
                Some(m) => format!("store the banner {}", quoted(Some(m))),
                None => "clear the banner".to_owned(),
            },
            quoted(now.as_deref())
        )));
    }
    tx.commit().map_err(|e| DbError::query(action, e))
}

fn quoted(text: Option<&str>) -> String {
    match text {
        None => "NULL".to_owned(),
        Some(t) => format!("\"{t}\""),
    }
}

/// Runs the bundle's `get` query in `tx`. Simple protocol: the value comes back as text whatever
/// the column's type.
fn read(tx: &mut Transaction<'_>, banner: &Banner) -> Result<Option<String>, DbError> {
    let messages = tx.simple_query(&banner.get).map_err(|e| {
        DbError::Refused(format!(
            "cannot read the logon banner: the bundle's banner get query failed: {}",
            describe(&e)
        ))
    })?;
    Ok(messages
        .iter()
        .find_map(|m| match m {
            // try_get: a query without columns gives None rather than a panic.
            SimpleQueryMessage::Row(r) => Some(r.try_get(0).ok().flatten().map(str::to_owned)),
            _ => None,
        })
        .flatten())
}

#[cfg(test)]
mod tests {
    use super::in_progress_message;
    use crate::bundle::Version;

    #[test]
    fn the_message_names_the_application_and_both_versions() {
        assert_eq!(
            in_progress_message("clinic", &Version::new(1, 0), &Version::new(2, 0)),
            "upgrade clinic v1 → v2 in progress: please log off; the system is back soon"
        );
    }
}

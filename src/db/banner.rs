//! The application's logon banner, with the bundle's own `get`, `set` and `clear` SQL: "upgrade
//! in progress" during the downtime, and afterwards exactly what was there before.
//!
//! Each function runs in its own transaction on a session on the application's database. A
//! change is read back with `get` before it is committed: a `set` that stores nothing (an UPDATE
//! that finds no row) or something else is an error, and is rolled back.

use std::cell::RefCell;
use std::collections::BTreeMap;

use postgres::{Client, Transaction};

use super::session::DbError;
use crate::bundle::{Banner, Version};

thread_local! {
    /// Rows changed by this thread's banner writes (set and clear, committed or not: the
    /// server's statistics count attempted changes), by database name and table: the only
    /// writes pgstep makes to a source database, subtracted when it checks that nothing else
    /// wrote to it.
    static OWN_WRITES: RefCell<BTreeMap<String, BTreeMap<String, u64>>> =
        const { RefCell::new(BTreeMap::new()) };
}

/// Rows pgstep's banner writes on this thread have changed in database `db` so far, by table
/// (`schema.table`, quoted as needed).
pub fn rows_written(db: &str) -> BTreeMap<String, u64> {
    OWN_WRITES.with(|w| w.borrow().get(db).cloned().unwrap_or_default())
}

/// Records what the banner statement just run in `tx` changed: the transaction's own counts
/// by table (a trigger's writes too), or when those cannot be read, the statement's row count.
fn count_write(tx: &mut Transaction<'_>, rows: u64) {
    let Ok(db) = tx.query_one("SELECT pg_catalog.current_database()::text", &[]) else {
        return;
    };
    let db: String = db.get(0);
    let by_table: Vec<(String, u64)> = tx
        .query(
            "SELECT pg_catalog.format('%I.%I', schemaname, relname),                     (n_tup_ins + n_tup_upd + n_tup_del)::bigint                FROM pg_catalog.pg_stat_xact_user_tables               WHERE n_tup_ins + n_tup_upd + n_tup_del > 0",
            &[],
        )
        .map(|rows| {
            rows.iter()
                .map(|r| (r.get(0), u64::try_from(r.get::<_, i64>(1)).unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let by_table = if by_table.iter().map(|(_, n)| n).sum::<u64>() >= rows {
        by_table
    } else {
        vec![("(the banner's table)".to_owned(), rows)]
    };
    OWN_WRITES.with(|w| {
        let mut w = w.borrow_mut();
        let db = w.entry(db).or_default();
        for (table, n) in by_table {
            *db.entry(table).or_insert(0) += n;
        }
    });
}

/// The banner's text now: the first column of the first row of the bundle's `get` query; None
/// when it is NULL or there is no row.
pub fn get(client: &mut Client, banner: &Banner) -> Result<Option<String>, DbError> {
    let action = "read the logon banner";
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| DbError::query(action, e))?;
    super::readonly::pin_read_only(&mut tx).map_err(|e| DbError::Refused(e.to_string()))?;
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
    // One statement each (bundle validation checks it), through the extended protocol, so
    // that the number of rows it changed is known.
    let result = match message {
        Some(text) => tx.execute(banner.set.as_str(), &[&text]),
        None => tx.execute(banner.clear.as_str(), &[]),
    };
    let rows = result.map_err(|e| DbError::query(action, e))?;
    count_write(&mut tx, rows);
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

/// Runs the bundle's `get` query (one statement) in `tx`: the first column of the first row, as
/// text whatever the column's type.
fn read(tx: &mut Transaction<'_>, banner: &Banner) -> Result<Option<String>, DbError> {
    let fail = |e: super::readonly::ReadError| {
        DbError::Refused(format!(
            "cannot read the logon banner: the bundle's banner get query failed: {e}"
        ))
    };
    let statement = super::readonly::one_statement(&banner.get).map_err(fail)?;
    let rows = super::readonly::rows_as_text(tx, &statement).map_err(fail)?;
    Ok(rows
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
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

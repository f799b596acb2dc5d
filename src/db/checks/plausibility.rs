//! GNUmed's plausibility pairs: a query on the old database and one on the new must give the
//! same rows; and the read-only reads they run on (a snapshot of the source, savepoints).

use postgres::Client;

use std::fmt::Display;

use super::{CheckResult, Rows};
use crate::bundle::Plausibility;
use crate::db::readonly::ReadError;

/// Runs a pair's old query on the old database and its new query on the new one; they must
/// return the same rows (compared as text).
pub fn plausibility(old: &mut Client, new: &mut Client, pair: &Plausibility) -> CheckResult {
    let o = read_rows(old, &pair.old);
    let n = if o.is_ok() {
        read_rows(new, &pair.new)
    } else {
        Ok(Rows::new())
    };
    compare_pair(pair, o, n)
}

/// The check of a pair whose two sides were read elsewhere (over parallel connections, or the
/// old side in the backup's snapshot).
pub fn compare_pair(
    pair: &Plausibility,
    old: Result<Rows, impl Display>,
    new: Result<Rows, impl Display>,
) -> CheckResult {
    let (ok, detail) = match (old, new) {
        (Ok(o), Ok(n)) if o == n => (true, format!("both give {}", show(&o))),
        (Ok(o), Ok(n)) => (
            false,
            format!(
                "old database gives {}, new database gives {}",
                show(&o),
                show(&n)
            ),
        ),
        (Err(e), _) => (false, format!("the query failed: {e}")),
        (_, Err(e)) => (false, format!("the query failed: {e}")),
    };
    CheckResult::new(format!("plausibility: {}", pair.name), ok, detail)
}

/// Runs a query (one statement) in a READ ONLY transaction and returns its rows as text; see
/// [`crate::db::readonly`] for why it cannot write.
pub fn read_rows(client: &mut Client, sql: &str) -> Result<Rows, ReadError> {
    crate::db::readonly::read_rows(client, sql)
}

/// Starts a READ ONLY transaction on `client` that reads the snapshot `id` exported by another
/// session (`pg_export_snapshot()`), which must still have its transaction open.
pub fn begin_in_snapshot(client: &mut Client, id: &str) -> Result<(), ReadError> {
    // SET TRANSACTION SNAPSHOT takes no parameter: the id is checked, then quoted.
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(ReadError::NotASnapshot(id.to_owned()));
    }
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{id}'"
        ))
        .map_err(|e| {
            let _ = client.batch_execute("ROLLBACK");
            ReadError::Snapshot {
                id: id.to_owned(),
                source: e,
            }
        })
}

/// Runs a query inside the transaction `client` already has open (one holding an exported
/// snapshot, READ ONLY), so that it reads that snapshot; a savepoint keeps a failing query
/// from ending the transaction for the queries after it.
pub fn read_rows_in_open_transaction(client: &mut Client, sql: &str) -> Result<Rows, ReadError> {
    let statement = crate::db::readonly::one_statement(sql)?;
    in_savepoint(client, |c| crate::db::readonly::rows_as_text(c, &statement))
}

/// Runs `f` in a savepoint of the transaction `client` has open, so that its failure does not
/// end the transaction for what comes after. The savepoint's own failure is a
/// [`ReadError::Server`].
pub fn in_savepoint<T, E: From<ReadError>>(
    client: &mut Client,
    f: impl FnOnce(&mut Client) -> Result<T, E>,
) -> Result<T, E> {
    client
        .batch_execute("SAVEPOINT pgstep_read")
        .map_err(ReadError::from)?;
    match f(client) {
        Ok(v) => {
            client
                .batch_execute("RELEASE SAVEPOINT pgstep_read")
                .map_err(ReadError::from)?;
            Ok(v)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK TO SAVEPOINT pgstep_read");
            Err(e)
        }
    }
}

fn show(rows: &Rows) -> String {
    const MAX: usize = 3;
    let shown: Vec<String> = rows
        .iter()
        .take(MAX)
        .map(|r| {
            r.iter()
                .map(|v| v.as_deref().unwrap_or("NULL"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let more = rows.len().saturating_sub(MAX);
    match (rows.len(), more) {
        (0, _) => "no rows".to_owned(),
        (_, 0) => format!("[{}]", shown.join("; ")),
        _ => format!("[{}; … {more} more rows]", shown.join("; ")),
    }
}

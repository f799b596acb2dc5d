//! Schema fingerprints: a sha256 over a canonical text description of the schemas an
//! application owns (GNUmed's schema hash, seeds/002).
//!
//! `text.rs` and `diff.rs` are pure; this file reads the catalogs, in one statement whatever the
//! number of tables, so that it stays fast on schemas of thousands of tables.

mod diff;
mod text;
mod verdict;

use postgres::Client;

pub use diff::{Diff, diff};
pub use text::{FORMAT_LINE, canonical_reference, canonical_text, hash_of, reference_problem};
pub use verdict::{Verdict, verdict};

const CATALOG_QUERY: &str = include_str!("catalog.sql");

/// A database's fingerprint: the canonical text and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub text: String,
    pub hash: String,
    /// How many object lines the text holds (without the format line).
    pub lines: usize,
}

impl Fingerprint {
    pub fn display_hash(&self) -> String {
        format!("sha256:{}", self.hash)
    }
}

/// Fingerprints the given schemas of the database `client` is connected to.
///
/// Runs in its own read-only transaction with an empty search_path, so that every name comes out
/// schema-qualified the same way whatever the session's settings.
pub fn compute(client: &mut Client, schemas: &[String]) -> Result<Fingerprint, postgres::Error> {
    let sql = catalog_query(server_version_num(client)?);
    let mut tx = client.build_transaction().read_only(true).start()?;
    tx.batch_execute("SET LOCAL search_path = ''")?;
    let rows = tx.query(sql.as_str(), &[&schemas])?;
    tx.commit()?;
    let lines = rows.len();
    let text = canonical_text(rows.iter().map(|r| {
        (
            r.get::<_, Option<String>>(0).unwrap_or_default(),
            r.get::<_, Option<String>>(1).unwrap_or_default(),
            r.get::<_, Option<String>>(2).unwrap_or_default(),
        )
    }));
    let hash = hash_of(&text);
    Ok(Fingerprint { text, hash, lines })
}

/// The schemas an application could own in this database: everything but PostgreSQL's own,
/// temporary schemas and pgstep's bookkeeping. Used when no bundle names them.
pub fn user_schemas(client: &mut Client) -> Result<Vec<String>, postgres::Error> {
    let rows = client.query(
        "SELECT nspname FROM pg_catalog.pg_namespace \
         WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'pgstep') \
           AND nspname NOT LIKE 'pg\\_temp\\_%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%' \
         ORDER BY nspname COLLATE \"C\"",
        &[],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The server's version as a number (150004 for 15.4).
pub fn server_version_num(client: &mut Client) -> Result<u32, postgres::Error> {
    let row = client.query_one("SELECT current_setting('server_version_num')::int", &[])?;
    Ok(u32::try_from(row.get::<_, i32>(0)).unwrap_or(0))
}

/// SQL-standard function bodies (`BEGIN ATOMIC`) live in prosqlbody from PostgreSQL 14 on.
fn catalog_query(server_version_num: u32) -> String {
    if server_version_num >= 140_000 {
        CATALOG_QUERY.replace(
            "/*SQLBODY*/ ''",
            "CASE WHEN p.prosqlbody IS NOT NULL THEN pg_catalog.pg_get_function_sqlbody(p.oid) END",
        )
    } else {
        CATALOG_QUERY.to_owned()
    }
}

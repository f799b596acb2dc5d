//! The version marker of the new database.

use postgres::Client;

use super::CheckResult;
use crate::bundle::Version;
use crate::db::version::read_version;

/// The version marker of the new database says `expected`.
pub fn version_marker(client: &mut Client, query: &str, expected: Version) -> CheckResult {
    let dbname = client
        .query_one("SELECT pg_catalog.current_database()::text", &[])
        .map_or_else(|_| "?".to_owned(), |r| r.get(0));
    let (ok, detail) = match read_version(client, query, &dbname) {
        Ok(v) if v == expected => (true, format!("database \"{dbname}\" says {v}")),
        Ok(v) => (
            false,
            format!("database \"{dbname}\" says {v}, expected {expected}"),
        ),
        Err(e) => (false, e.to_string()),
    };
    CheckResult::new("version marker", ok, detail)
}

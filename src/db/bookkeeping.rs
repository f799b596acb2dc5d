//! pgstep's bookkeeping schema in an application database (`sql/pgstep/bookkeeping.sql`):
//! the upgrades, bootstraps and fixups applied to it, with checksums.

use postgres::Client;

use super::session::DbError;

const SCHEMA: &str = include_str!("../../sql/pgstep/bookkeeping.sql");
pub const PGSTEP_VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn ensure(client: &mut Client) -> Result<(), DbError> {
    client
        .batch_execute(SCHEMA)
        .map_err(|e| DbError::query("create pgstep's bookkeeping schema", e))
}

/// One line of pgstep.history.
#[derive(Debug, Clone, Default)]
pub struct HistoryEntry<'a> {
    pub action: &'a str,
    pub from_version: Option<String>,
    pub to_version: String,
    pub source_database: Option<&'a str>,
    pub bundle: &'a str,
    pub bundle_sha256: &'a str,
    pub source_fingerprint: Option<&'a str>,
    pub fingerprint_override: bool,
    pub note: Option<String>,
}

pub fn record_history(client: &mut Client, e: &HistoryEntry<'_>) -> Result<(), DbError> {
    ensure(client)?;
    client
        .execute(
            "INSERT INTO pgstep.history (action, from_version, to_version, source_database, bundle, \
               bundle_sha256, source_fingerprint, fingerprint_override, note, pgstep_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &e.action,
                &e.from_version,
                &e.to_version,
                &e.source_database,
                &e.bundle,
                &e.bundle_sha256,
                &e.source_fingerprint,
                &e.fingerprint_override,
                &e.note,
                &PGSTEP_VERSION,
            ],
        )
        .map_err(|err| DbError::query("record the upgrade in pgstep.history", err))?;
    Ok(())
}

/// The checksum recorded for a fixup file at a version, if it ran before.
pub fn recorded_fixup(
    client: &mut Client,
    file: &str,
    version: &str,
) -> Result<Option<String>, DbError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('pgstep.fixup') IS NOT NULL", &[])
        .map_err(|e| DbError::query("read pgstep.fixup", e))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_opt(
            "SELECT sha256 FROM pgstep.fixup WHERE file = $1 AND version = $2 ORDER BY id DESC LIMIT 1",
            &[&file, &version],
        )
        .map_err(|e| DbError::query("read pgstep.fixup", e))?;
    Ok(row.map(|r| r.get(0)))
}

pub fn record_fixup(
    client: &mut Client,
    file: &str,
    version: &str,
    sha256: &str,
) -> Result<(), DbError> {
    ensure(client)?;
    client
        .execute(
            "INSERT INTO pgstep.fixup (file, version, sha256, pgstep_version) VALUES ($1, $2, $3, $4)",
            &[&file, &version, &sha256, &PGSTEP_VERSION],
        )
        .map_err(|e| DbError::query(format!("record fixup {file} in pgstep.fixup"), e))?;
    Ok(())
}

//! amcheck's structural check of the btree indexes, leaving the database as it was.

use std::time::Instant;

use postgres::{Client, Transaction};

use super::{CheckResult, len_i64};
use crate::db::session::describe;
use crate::format::thousands;

/// Runs amcheck's `bt_index_check` on every valid btree index of the application's schemas,
/// where the server has the extension. When it is not installed in the database, it is created
/// for the check in a schema of its own, inside a transaction that is always rolled back: the
/// database is left exactly as it was, even if pgstep is killed during the check, so it may run
/// before or after the fingerprint (nothing of it is ever committed, so it never shows there).
/// Structural check only (`heapallindexed` false): it reads the indexes, not the tables.
pub fn amcheck(client: &mut Client, schemas: &[String]) -> CheckResult {
    let (ok, detail) = match run_amcheck(client, schemas) {
        Ok(Amcheck::Skipped(why)) => (true, why),
        Ok(Amcheck::Ran {
            checked,
            failures,
            seconds,
        }) if failures.is_empty() => (
            true,
            format!(
                "{} btree indexes checked in {seconds:.1} s: no corruption found",
                thousands(len_i64(checked))
            ),
        ),
        Ok(Amcheck::Ran {
            checked, failures, ..
        }) => (
            false,
            format!(
                "{} of {} btree indexes failed the check: {}",
                thousands(len_i64(failures.len())),
                thousands(len_i64(checked)),
                failures.join("; ")
            ),
        ),
        Err(e) => (false, format!("amcheck could not run: {}", describe(&e))),
    };
    CheckResult::new("amcheck", ok, detail)
}

enum Amcheck {
    Skipped(String),
    Ran {
        checked: usize,
        failures: Vec<String>,
        seconds: f64,
    },
}

/// The schema amcheck is created in when it is not installed; it never outlives the check.
const AMCHECK_SCHEMA: &str = "pgstep_amcheck";

fn run_amcheck(client: &mut Client, schemas: &[String]) -> Result<Amcheck, postgres::Error> {
    let available: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'amcheck')",
            &[],
        )
        ?
        .get(0);
    if !available {
        return Ok(Amcheck::Skipped(
            "amcheck is not installed on this server: skipped".to_owned(),
        ));
    }
    let started = Instant::now();
    let mut tx = client.transaction()?;
    let schema = match installed_amcheck_schema(&mut tx)? {
        Some(s) => s,
        None => match create_amcheck(&mut tx) {
            Ok(()) => AMCHECK_SCHEMA.to_owned(),
            // Not allowed to (a role that is not a superuser): a skipped deeper check.
            Err(e) => {
                return Ok(Amcheck::Skipped(format!(
                    "amcheck could not be created in this database ({}): skipped",
                    describe(&e)
                )));
            }
        },
    };
    let call: String = tx
        .query_one(
            "SELECT pg_catalog.format('SELECT %I.bt_index_check($1::pg_catalog.oid::pg_catalog.regclass)', $1::text)",
            &[&schema],
        )
        ?
        .get(0);
    let indexes = btree_indexes(&mut tx, schemas)?;
    let mut failures = Vec::new();
    for (name, oid) in &indexes {
        // A savepoint per index: one corrupt index must not stop the others being checked.
        let mut sp = tx.savepoint("pgstep_amcheck_index")?;
        match sp.execute(call.as_str(), &[oid]) {
            Ok(_) => sp.commit()?,
            Err(e) => {
                failures.push(format!("{name}: {}", describe(&e)));
                sp.rollback()?;
            }
        }
    }
    // Nothing to keep: the rollback also removes the extension if it was created here.
    tx.rollback()?;
    Ok(Amcheck::Ran {
        checked: indexes.len(),
        failures,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn installed_amcheck_schema(tx: &mut Transaction<'_>) -> Result<Option<String>, postgres::Error> {
    Ok(tx
        .query_opt(
            "SELECT n.nspname::text FROM pg_catalog.pg_extension e \
             JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'",
            &[],
        )?
        .map(|r| r.get(0)))
}

/// Creates amcheck in its own schema, inside the caller's transaction (in a savepoint, so that
/// a refusal leaves the transaction usable).
fn create_amcheck(tx: &mut Transaction<'_>) -> Result<(), postgres::Error> {
    let mut sp = tx.savepoint("pgstep_amcheck_create")?;
    sp.batch_execute(&format!(
        "CREATE SCHEMA {AMCHECK_SCHEMA}; CREATE EXTENSION amcheck SCHEMA {AMCHECK_SCHEMA}"
    ))?;
    sp.commit()
}

/// Valid, ready btree indexes of the schemas: (quoted name, oid), by name.
fn btree_indexes(
    tx: &mut Transaction<'_>,
    schemas: &[String],
) -> Result<Vec<(String, u32)>, postgres::Error> {
    let rows = tx
        .query(
            "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(ic.relname) AS name, \
                    ic.oid \
             FROM pg_catalog.pg_index i \
             JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
             JOIN pg_catalog.pg_am am ON am.oid = ic.relam \
             JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace \
             WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready AND ic.relkind = 'i' \
               AND ic.relpersistence <> 't' AND n.nspname::text = ANY ($1::text[]) \
             ORDER BY n.nspname COLLATE \"C\", ic.relname COLLATE \"C\"",
            &[&schemas],
        )
        ?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

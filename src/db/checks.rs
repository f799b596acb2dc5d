//! Checks that compare the old database with the new one: GNUmed's plausibility pairs, and the
//! sanity checks of the new database after an upgrade (version marker, row counts, privileges,
//! amcheck, ANALYZE).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use postgres::{Client, GenericClient, Transaction};

use super::session::{DbError, describe};
use super::version::read_version;
use crate::bundle::{Plausibility, Version};

pub use super::readonly::Rows;
pub use crate::checklist::model::CheckResult;

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
    old: Result<Rows, String>,
    new: Result<Rows, String>,
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
        (Err(e), _) | (_, Err(e)) => (false, format!("the query failed: {e}")),
    };
    CheckResult::new(format!("plausibility: {}", pair.name), ok, detail)
}

/// Runs a query (one statement) in a READ ONLY transaction and returns its rows as text; see
/// [`super::readonly`] for why it cannot write.
pub fn read_rows(client: &mut Client, sql: &str) -> Result<Rows, String> {
    super::readonly::read_rows(client, sql)
}

/// Starts a READ ONLY transaction on `client` that reads the snapshot `id` exported by another
/// session (`pg_export_snapshot()`), which must still have its transaction open.
pub fn begin_in_snapshot(client: &mut Client, id: &str) -> Result<(), String> {
    // SET TRANSACTION SNAPSHOT takes no parameter: the id is checked, then quoted.
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(format!("not a snapshot id: {id:?}"));
    }
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{id}'"
        ))
        .map_err(|e| {
            let _ = client.batch_execute("ROLLBACK");
            format!("cannot read the snapshot {id}: {}", describe(&e))
        })
}

/// Runs a query inside the transaction `client` already has open (one holding an exported
/// snapshot, READ ONLY), so that it reads that snapshot; a savepoint keeps a failing query
/// from ending the transaction for the queries after it.
pub fn read_rows_in_open_transaction(client: &mut Client, sql: &str) -> Result<Rows, String> {
    let statement = super::readonly::one_statement(sql)?;
    in_savepoint(client, |c| super::readonly::rows_as_text(c, &statement))
}

/// Runs `f` in a savepoint of the transaction `client` has open, so that its failure does not
/// end the transaction for what comes after.
pub fn in_savepoint<T>(
    client: &mut Client,
    f: impl FnOnce(&mut Client) -> Result<T, String>,
) -> Result<T, String> {
    client
        .batch_execute("SAVEPOINT pgstep_read")
        .map_err(|e| describe(&e))?;
    match f(client) {
        Ok(v) => {
            client
                .batch_execute("RELEASE SAVEPOINT pgstep_read")
                .map_err(|e| describe(&e))?;
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

/// Runs a precheck script in a READ ONLY transaction: every row a statement returns is a
/// problem to show the operator (OMERO-style checks, runnable before the downtime).
pub fn run_precheck(
    client: &mut Client,
    script: &crate::script::Script,
) -> Result<Vec<String>, String> {
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| describe(&e))?;
    super::readonly::pin_read_only(&mut tx)?;
    let mut problems = Vec::new();
    precheck_nodes(&mut tx, &script.nodes, &mut problems)?;
    // Read-only: nothing to keep.
    let _ = tx.rollback();
    Ok(problems)
}

fn precheck_nodes(
    tx: &mut postgres::Transaction<'_>,
    nodes: &[crate::script::Node],
    problems: &mut Vec<String>,
) -> Result<(), String> {
    use crate::script::Node;
    for node in nodes {
        match node {
            Node::Statement(st) => {
                if let Some(why) = crate::script::read_only_statement_problem(&st.sql) {
                    return Err(format!("{}: {why}", st.at));
                }
                let rows = super::readonly::rows_as_text(tx, &st.sql)
                    .map_err(|e| format!("{}: {e}", st.at))?;
                for r in &rows {
                    let values: Vec<&str> =
                        r.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
                    problems.push(format!("{}: {}", st.at, values.join(" | ")));
                }
            }
            Node::Block {
                condition,
                at,
                body,
            } => {
                let (sql, params) = condition.query();
                let params: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|p| p as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                let run: Option<bool> = tx
                    .query_one(sql.as_str(), &params)
                    .map_err(|e| format!("{at}: {}", describe(&e)))?
                    .get(0);
                if run.unwrap_or(false) {
                    precheck_nodes(tx, body, problems)?;
                }
            }
            Node::Echo { .. } => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sanity checks of the new database after the upgrade (checklist step 9).
//
// Each returns CheckResult values and never fails as a function: a query that fails is a failed
// check naming what could not be checked.

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

/// The tables (relkind `r`, partitions included) of the application's schemas in the old and
/// the new database, by quoted name (`clinic.patient`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSets {
    /// In both: these are compared.
    pub both: Vec<String>,
    /// Only in the old database: dropped by the upgrade.
    pub dropped: Vec<String>,
    /// Only in the new database: added by the upgrade.
    pub added: Vec<String>,
}

/// Lists the tables of `schemas` in both databases and sorts them into [`TableSets`].
pub fn table_sets(
    old: &mut Client,
    new: &mut Client,
    schemas: &[String],
) -> Result<TableSets, DbError> {
    let old_tables = list_tables(old, schemas)?;
    let new_tables = list_tables(new, schemas)?;
    Ok(TableSets {
        both: old_tables.intersection(&new_tables).cloned().collect(),
        dropped: old_tables.difference(&new_tables).cloned().collect(),
        added: new_tables.difference(&old_tables).cloned().collect(),
    })
}

/// The tables present in both databases: what [`row_counts`] compares. A caller counting on
/// several connections in parallel splits this list and calls [`count_rows`] for each.
pub fn tables_in_both(
    old: &mut Client,
    new: &mut Client,
    schemas: &[String],
) -> Result<Vec<String>, DbError> {
    Ok(table_sets(old, new, schemas)?.both)
}

fn list_tables(client: &mut Client, schemas: &[String]) -> Result<BTreeSet<String>, DbError> {
    let rows = client
        .query(
            "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname::text = ANY ($1::text[]) AND c.relkind = 'r'",
            &[&schemas],
        )
        .map_err(|e| DbError::query("list the application's tables", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The exact number of rows of `table`, a quoted, schema-qualified name as [`tables_in_both`]
/// gives. The name is looked up in the catalog first (split by the server's `parse_ident`) and
/// the query built by `format('%I.%I')` from what the catalog says: a string that is not a
/// table's name never reaches the SQL.
pub fn count_rows(client: &mut impl GenericClient, table: &str) -> Result<i64, DbError> {
    let action = || format!("count the rows of {table}");
    let sql: String = client
        .query_opt(
            "SELECT pg_catalog.format('SELECT pg_catalog.count(*) FROM %I.%I', n.nspname, c.relname) \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE ARRAY[n.nspname::text, c.relname::text] = pg_catalog.parse_ident($1) \
               AND c.relkind IN ('r', 'p', 'm')",
            &[&table],
        )
        .map_err(|e| DbError::query(action(), e))?
        .ok_or_else(|| DbError::Refused(format!("there is no table {table}")))?
        .get(0);
    let row = client
        .query_one(sql.as_str(), &[])
        .map_err(|e| DbError::query(action(), e))?;
    Ok(row.get(0))
}

/// [`count_rows`] in a READ ONLY transaction of its own (on a session that has none open): how
/// the old database is counted outside the backup's snapshot.
pub fn count_rows_read_only(client: &mut Client, table: &str) -> Result<i64, DbError> {
    let action = || format!("count the rows of {table}");
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| DbError::query(action(), e))?;
    let n = count_rows(&mut tx, table);
    // Read-only: nothing to keep.
    let _ = tx.rollback();
    n
}

/// One table's row counts in the old and the new database (or why one could not be counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: String,
    pub old: Result<i64, String>,
    pub new: Result<i64, String>,
}

/// No table present in both databases has lost rows: one result per table whose count differs,
/// then a summary, which also lists the tables the upgrade dropped or added (not failures).
///
/// Fewer rows in the new database is a failure. More rows is reported (a result with `ok`
/// true) but is not one: upgrades add rows (the sample's 1 → 2 step adds a `system` staff
/// account), and whether the new rows are right is for the bundle's plausibility pairs to say.
pub fn row_counts(old: &mut Client, new: &mut Client, schemas: &[String]) -> Vec<CheckResult> {
    let sets = match table_sets(old, new, schemas) {
        Ok(s) => s,
        Err(e) => {
            return vec![CheckResult::new("row counts", false, e.to_string())];
        }
    };
    let counts: Vec<TableCount> = sets
        .both
        .iter()
        .map(|t| TableCount {
            table: t.clone(),
            old: count_rows_read_only(old, t).map_err(|e| e.to_string()),
            new: count_rows(new, t).map_err(|e| e.to_string()),
        })
        .collect();
    row_count_results(&sets, &counts)
}

/// The results of [`row_counts`] from counts made elsewhere (on several connections in
/// parallel, say).
pub fn row_count_results(sets: &TableSets, counts: &[TableCount]) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let mut total: i64 = 0;
    let (mut failed, mut grown) = (Vec::new(), Vec::new());
    for c in counts {
        let (ok, detail) = match (&c.old, &c.new) {
            (Ok(o), Ok(n)) => {
                total = total.saturating_add(*o);
                match n.cmp(o) {
                    Ordering::Equal => continue,
                    Ordering::Greater => grown.push(format!("{} (+{})", c.table, thousands(n - o))),
                    Ordering::Less => failed.push(c.table.clone()),
                }
                (
                    n > o,
                    format!(
                        "{}: the old database has {} rows, the new one {} ({} {})",
                        c.table,
                        thousands(*o),
                        thousands(*n),
                        thousands((n - o).abs()),
                        if n > o {
                            "added by the upgrade"
                        } else {
                            "missing"
                        }
                    ),
                )
            }
            (Err(e), _) => {
                failed.push(c.table.clone());
                (false, format!("{}: old database: {e}", c.table))
            }
            (_, Err(e)) => {
                failed.push(c.table.clone());
                (false, format!("{}: new database: {e}", c.table))
            }
        };
        out.push(CheckResult::new(
            format!("row count: {}", c.table),
            ok,
            detail,
        ));
    }
    let mut detail = if failed.is_empty() {
        format!(
            "{} tables, {} rows: {}",
            thousands(len_i64(counts.len())),
            rows_words(total),
            if grown.is_empty() {
                "all equal"
            } else {
                "none lost"
            }
        )
    } else {
        format!(
            "{} of {} tables lost rows or could not be counted: {}",
            thousands(len_i64(failed.len())),
            thousands(len_i64(counts.len())),
            name_list(&failed)
        )
    };
    for (what, list) in [
        ("more rows in the new database", &grown),
        ("dropped by the upgrade", &sets.dropped),
        ("added by the upgrade", &sets.added),
    ] {
        if !list.is_empty() {
            detail.push_str(&format!("; {what}: {}", name_list(list)));
        }
    }
    out.push(CheckResult::new("row counts", failed.is_empty(), detail));
    out
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// 1234567 → "1,234,567".
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A row count as people read it: exact below a million, then "5.2 M", "1.3 bn".
fn rows_words(n: i64) -> String {
    match n {
        n if n < 1_000_000 => thousands(n),
        n if n < 1_000_000_000 => format!("{:.1} M", n as f64 / 1e6),
        n => format!("{:.1} bn", n as f64 / 1e9),
    }
}

/// Names for a message: all of them up to ten, then "… and N more".
fn name_list(names: &[String]) -> String {
    const MAX: usize = 10;
    let shown = names
        .iter()
        .take(MAX)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    match names.len().saturating_sub(MAX) {
        0 => shown,
        more => format!("{shown} … and {more} more"),
    }
}

/// Privileges on one relation: (column or None for the relation itself, grantee, privilege)
/// → grantable. Grantee `PUBLIC` or a role name.
type Grants = BTreeMap<(Option<String>, String, String), bool>;

/// A table, view, sequence, materialized view or foreign table, with its owner, columns and
/// privileges.
#[derive(Debug, Default)]
struct RelationAcl {
    owner: String,
    columns: BTreeSet<String>,
    grants: Grants,
}

/// The privileges every role has on the tables, views and sequences present in both databases
/// are unchanged: real upgrade scripts drop and recreate tables and forget to grant again.
/// Compared: the relation's privileges (`aclexplode` of its ACL, the defaults when it is NULL),
/// column privileges of columns present in both, and the owner. Every role is included, the
/// superusers and the predefined `pg_*` roles too: a grant an application made to any of them
/// and lost is a loss. Grantors are not compared. One failed result per relation that differs,
/// naming role and privilege ("clinic.staff: clinic_app lost INSERT"), then a summary.
pub fn privileges(old: &mut Client, new: &mut Client, schemas: &[String]) -> Vec<CheckResult> {
    let read = |client: &mut Client, which: &str| {
        read_relation_acls(client, schemas)
            .map_err(|e| format!("cannot read the privileges in the {which} database: {e}"))
    };
    let (old_acls, new_acls) = match read(old, "old").and_then(|o| Ok((o, read(new, "new")?))) {
        Ok(both) => both,
        Err(detail) => {
            return vec![CheckResult::new("privileges", false, detail)];
        }
    };
    let mut out = Vec::new();
    let mut compared = 0_usize;
    for (name, was) in &old_acls {
        let Some(now) = new_acls.get(name) else {
            continue; // dropped by the upgrade: the row-count summary lists tables
        };
        compared += 1;
        let changes = acl_changes(was, now);
        if !changes.is_empty() {
            out.push(CheckResult::new(
                format!("privileges: {name}"),
                false,
                format!("{name}: {}", changes.join("; ")),
            ));
        }
    }
    let changed: Vec<String> = out
        .iter()
        .filter_map(|r| r.name.strip_prefix("privileges: ").map(str::to_owned))
        .collect();
    let detail = if changed.is_empty() {
        format!(
            "{} tables, views and sequences: every role keeps its privileges",
            thousands(len_i64(compared))
        )
    } else {
        format!(
            "{} of {} tables, views and sequences lost or gained privileges: {}",
            thousands(len_i64(changed.len())),
            thousands(len_i64(compared)),
            name_list(&changed)
        )
    };
    out.push(CheckResult::new("privileges", changed.is_empty(), detail));
    out
}

/// How the privileges on one relation changed, one phrase per role and privilege.
fn acl_changes(was: &RelationAcl, now: &RelationAcl) -> Vec<String> {
    let mut out = Vec::new();
    if was.owner != now.owner {
        out.push(format!("owner changed from {} to {}", was.owner, now.owner));
    }
    // Privileges on a column the upgrade dropped went with it: not a loss.
    let kept = |column: &Option<String>| {
        column
            .as_ref()
            .is_none_or(|c| was.columns.contains(c) && now.columns.contains(c))
    };
    let on = |column: &Option<String>| match column {
        None => String::new(),
        Some(c) => format!(" on column {c}"),
    };
    for ((column, grantee, privilege), grantable) in &was.grants {
        if !kept(column) {
            continue;
        }
        let key = (column.clone(), grantee.clone(), privilege.clone());
        match now.grants.get(&key) {
            None => out.push(format!("{grantee} lost {privilege}{}", on(column))),
            Some(g) if g != grantable => out.push(format!(
                "{grantee} {} the grant option on {privilege}{}",
                if *grantable { "lost" } else { "gained" },
                on(column)
            )),
            Some(_) => {}
        }
    }
    for (column, grantee, privilege) in now.grants.keys() {
        let key = (column.clone(), grantee.clone(), privilege.clone());
        if kept(column) && !was.grants.contains_key(&key) {
            out.push(format!("{grantee} gained {privilege}{}", on(column)));
        }
    }
    out
}

/// Owner, columns and privileges of every relation in `schemas`, by quoted name.
fn read_relation_acls(
    client: &mut Client,
    schemas: &[String],
) -> Result<BTreeMap<String, RelationAcl>, String> {
    let mut acls: BTreeMap<String, RelationAcl> = BTreeMap::new();
    let relations = client
        .query(
            "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), \
                    pg_catalog.pg_get_userbyid(c.relowner)::text, \
                    ARRAY(SELECT pg_catalog.quote_ident(a.attname) FROM pg_catalog.pg_attribute a \
                          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname::text = ANY ($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')",
            &[&schemas],
        )
        .map_err(|e| describe(&e))?;
    for r in &relations {
        let columns: Vec<String> = r.get(2);
        acls.insert(
            r.get(0),
            RelationAcl {
                owner: r.get(1),
                columns: columns.into_iter().collect(),
                grants: Grants::new(),
            },
        );
    }
    let grants = client
        .query(RELATION_GRANTS, &[&schemas])
        .map_err(|e| describe(&e))?;
    for r in &grants {
        let name: String = r.get(0);
        if let Some(acl) = acls.get_mut(&name) {
            acl.grants.insert((r.get(1), r.get(2), r.get(3)), r.get(4));
        }
    }
    Ok(acls)
}

/// (relation, column or NULL, grantee, privilege, grantable) for the relations of the schemas
/// `$1`: relation ACLs with the defaults for NULL (sequences have their own), and column ACLs
/// (NULL there means no column privileges). Grantable when any grantor gave it so.
const RELATION_GRANTS: &str = "\
WITH rel AS (
  SELECT c.oid, c.relkind, c.relowner, c.relacl,
         pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS name
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname::text = ANY ($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
), grants AS (
  SELECT rel.name, NULL::text AS col, a.grantee, a.privilege_type, a.is_grantable
  FROM rel, pg_catalog.aclexplode(coalesce(rel.relacl, pg_catalog.acldefault(
         CASE WHEN rel.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", rel.relowner))) a
  UNION ALL
  SELECT rel.name, pg_catalog.quote_ident(att.attname), a.grantee, a.privilege_type, a.is_grantable
  FROM rel
  JOIN pg_catalog.pg_attribute att
    ON att.attrelid = rel.oid AND att.attnum > 0 AND NOT att.attisdropped AND att.attacl IS NOT NULL,
  pg_catalog.aclexplode(att.attacl) a
)
SELECT name, col,
       CASE WHEN grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(grantee)::text END,
       privilege_type, bool_or(is_grantable)
FROM grants
GROUP BY 1, 2, 3, 4";

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
        Err(e) => (false, format!("amcheck could not run: {e}")),
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

fn run_amcheck(client: &mut Client, schemas: &[String]) -> Result<Amcheck, String> {
    let available: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'amcheck')",
            &[],
        )
        .map_err(|e| describe(&e))?
        .get(0);
    if !available {
        return Ok(Amcheck::Skipped(
            "amcheck is not installed on this server: skipped".to_owned(),
        ));
    }
    let started = Instant::now();
    let mut tx = client.transaction().map_err(|e| describe(&e))?;
    let schema = match installed_amcheck_schema(&mut tx)? {
        Some(s) => s,
        None => match create_amcheck(&mut tx) {
            Ok(()) => AMCHECK_SCHEMA.to_owned(),
            // Not allowed to (a role that is not a superuser): a skipped deeper check.
            Err(e) => {
                return Ok(Amcheck::Skipped(format!(
                    "amcheck could not be created in this database ({e}): skipped"
                )));
            }
        },
    };
    let call: String = tx
        .query_one(
            "SELECT pg_catalog.format('SELECT %I.bt_index_check($1::pg_catalog.oid::pg_catalog.regclass)', $1::text)",
            &[&schema],
        )
        .map_err(|e| describe(&e))?
        .get(0);
    let indexes = btree_indexes(&mut tx, schemas)?;
    let mut failures = Vec::new();
    for (name, oid) in &indexes {
        // A savepoint per index: one corrupt index must not stop the others being checked.
        let mut sp = tx
            .savepoint("pgstep_amcheck_index")
            .map_err(|e| describe(&e))?;
        match sp.execute(call.as_str(), &[oid]) {
            Ok(_) => sp.commit().map_err(|e| describe(&e))?,
            Err(e) => {
                failures.push(format!("{name}: {}", describe(&e)));
                sp.rollback().map_err(|e| describe(&e))?;
            }
        }
    }
    // Nothing to keep: the rollback also removes the extension if it was created here.
    tx.rollback().map_err(|e| describe(&e))?;
    Ok(Amcheck::Ran {
        checked: indexes.len(),
        failures,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn installed_amcheck_schema(tx: &mut Transaction<'_>) -> Result<Option<String>, String> {
    Ok(tx
        .query_opt(
            "SELECT n.nspname::text FROM pg_catalog.pg_extension e \
             JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'",
            &[],
        )
        .map_err(|e| describe(&e))?
        .map(|r| r.get(0)))
}

/// Creates amcheck in its own schema, inside the caller's transaction (in a savepoint, so that
/// a refusal leaves the transaction usable).
fn create_amcheck(tx: &mut Transaction<'_>) -> Result<(), String> {
    let mut sp = tx
        .savepoint("pgstep_amcheck_create")
        .map_err(|e| describe(&e))?;
    sp.batch_execute(&format!(
        "CREATE SCHEMA {AMCHECK_SCHEMA}; CREATE EXTENSION amcheck SCHEMA {AMCHECK_SCHEMA}"
    ))
    .map_err(|e| describe(&e))?;
    sp.commit().map_err(|e| describe(&e))
}

/// Valid, ready btree indexes of the schemas: (quoted name, oid), by name.
fn btree_indexes(
    tx: &mut Transaction<'_>,
    schemas: &[String],
) -> Result<Vec<(String, u32)>, String> {
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
        .map_err(|e| describe(&e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// `ANALYZE` of the whole database: a clone's rewritten tables have no statistics, and the
/// application's first queries would be planned blind. Timed.
pub fn analyze(client: &mut Client) -> CheckResult {
    let started = Instant::now();
    let (ok, detail) = match client.batch_execute("ANALYZE") {
        Ok(()) => (
            true,
            format!(
                "statistics gathered in {}",
                crate::format::seconds(started.elapsed())
            ),
        ),
        Err(e) => (false, format!("ANALYZE failed: {}", describe(&e))),
    };
    CheckResult::new("analyze", ok, detail)
}

#[cfg(test)]
mod tests {
    use super::{TableCount, TableSets, row_count_results, rows_words, thousands};

    #[test]
    fn numbers_read_like_numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234), "1,234");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(rows_words(12_345), "12,345");
        assert_eq!(rows_words(5_234_000), "5.2 M");
        assert_eq!(rows_words(1_300_000_000), "1.3 bn");
    }

    #[test]
    fn row_count_summary_names_losses_gains_drops_and_additions() {
        let sets = TableSets {
            both: vec!["a.t".into(), "a.u".into(), "a.v".into()],
            dropped: vec!["a.old".into()],
            added: vec!["a.new".into()],
        };
        let count = |table: &str, old, new| TableCount {
            table: table.into(),
            old: Ok(old),
            new: Ok(new),
        };
        let counts = [
            count("a.t", 1_000, 1_000),
            count("a.u", 1_234, 1_233),
            count("a.v", 10, 12),
        ];
        let results = row_count_results(&sets, &counts);
        let shown: Vec<(&str, bool, &str)> = results
            .iter()
            .map(|r| (r.name.as_str(), r.ok, r.detail.as_str()))
            .collect();
        assert_eq!(
            shown,
            vec![
                (
                    "row count: a.u",
                    false,
                    "a.u: the old database has 1,234 rows, the new one 1,233 (1 missing)"
                ),
                (
                    "row count: a.v",
                    true,
                    "a.v: the old database has 10 rows, the new one 12 (2 added by the upgrade)"
                ),
                (
                    "row counts",
                    false,
                    "1 of 3 tables lost rows or could not be counted: a.u; more rows in the new \
                     database: a.v (+2); dropped by the upgrade: a.old; added by the upgrade: a.new"
                ),
            ]
        );
        let gained = row_count_results(&sets, &[count("a.t", 5, 5), count("a.v", 10, 12)]);
        assert!(gained.iter().all(|r| r.ok), "{gained:?}");
        assert_eq!(
            gained[1].detail,
            "2 tables, 15 rows: none lost; more rows in the new database: a.v (+2); \
             dropped by the upgrade: a.old; added by the upgrade: a.new"
        );
        let equal = row_count_results(&TableSets::default(), &counts[..1]);
        assert_eq!(equal.len(), 1);
        assert!(equal[0].ok);
        assert_eq!(equal[0].detail, "1 tables, 1,000 rows: all equal");
    }
}

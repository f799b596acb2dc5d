//! Row counts of the tables in both databases: none may lose rows.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use postgres::{Client, GenericClient};

use super::{CheckResult, len_i64};
use crate::db::session::DbError;
use crate::format::{name_list, rows as rows_words, thousands};

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
    let mut tally = Tally::default();
    let mut out: Vec<CheckResult> = counts.iter().filter_map(|c| tally.add(c)).collect();
    out.push(tally.summary(sets, counts.len()));
    out
}

/// What the row counts add up to: rows in the old database, tables that lost rows (or could
/// not be counted), tables that gained some.
#[derive(Default)]
struct Tally {
    total: i64,
    failed: Vec<String>,
    grown: Vec<String>,
}

impl Tally {
    /// Counts one table in; its own result when the two counts are not equal.
    fn add(&mut self, c: &TableCount) -> Option<CheckResult> {
        let (ok, detail) = match (&c.old, &c.new) {
            (Ok(o), Ok(n)) => {
                self.total = self.total.saturating_add(*o);
                match n.cmp(o) {
                    Ordering::Equal => return None,
                    Ordering::Greater => {
                        self.grown
                            .push(format!("{} (+{})", c.table, thousands(n - o)))
                    }
                    Ordering::Less => self.failed.push(c.table.clone()),
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
                self.failed.push(c.table.clone());
                (false, format!("{}: old database: {e}", c.table))
            }
            (_, Err(e)) => {
                self.failed.push(c.table.clone());
                (false, format!("{}: new database: {e}", c.table))
            }
        };
        Some(CheckResult::new(
            format!("row count: {}", c.table),
            ok,
            detail,
        ))
    }

    /// The summary line over `tables` counted tables.
    fn summary(&self, sets: &TableSets, tables: usize) -> CheckResult {
        let mut detail = if self.failed.is_empty() {
            format!(
                "{} tables, {} rows: {}",
                thousands(len_i64(tables)),
                rows_words(self.total),
                if self.grown.is_empty() {
                    "all equal"
                } else {
                    "none lost"
                }
            )
        } else {
            format!(
                "{} of {} tables lost rows or could not be counted: {}",
                thousands(len_i64(self.failed.len())),
                thousands(len_i64(tables)),
                name_list(&self.failed)
            )
        };
        for (what, list) in [
            ("more rows in the new database", &self.grown),
            ("dropped by the upgrade", &sets.dropped),
            ("added by the upgrade", &sets.added),
        ] {
            if !list.is_empty() {
                detail.push_str(&format!("; {what}: {}", name_list(list)));
            }
        }
        CheckResult::new("row counts", self.failed.is_empty(), detail)
    }
}

#[cfg(test)]
mod tests {
    use super::{TableCount, TableSets, row_count_results};

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

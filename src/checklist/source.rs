//! Whether the source database was changed during a run, as pgstep measured it: the only
//! ground for telling the operator that users can go on with it as before.
//!
//! Pure: the readings come from `db::source_check`; this compares them and words the verdict.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What pgstep read of the source database at one moment, once its own sessions to it had
/// ended (so that their statistics were flushed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceReading {
    /// `pg_stat_database`: tup_inserted + tup_updated + tup_deleted.
    pub rows_written: i64,
    /// Of those, the rows of `pg_statistic` and `pg_statistic_ext_data`: ANALYZE (autovacuum's
    /// too) rewrites planner statistics, not the application's data.
    pub statistics_rows: i64,
    /// `pg_stat_database.stats_reset`: a reset between two readings voids the comparison.
    pub stats_reset: Option<String>,
    /// The schema fingerprint (hash) of the application's schemas.
    pub fingerprint: String,
    /// Rows written (inserted + updated + deleted) in each user table, from
    /// `pg_stat_user_tables`: says where the writes went.
    pub table_writes: BTreeMap<String, i64>,
    /// Each table of the application's schemas and its file node: TRUNCATE, VACUUM FULL and
    /// CLUSTER give a table a new one without counting rows.
    pub tables: BTreeMap<String, u32>,
}

/// Rows written in one table of the source during the run, pgstep's own not counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableWrites {
    pub table: String,
    pub rows: u64,
}

/// The verdict on the source database at the end of a failed or cancelled run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum SourceVerdict {
    /// Checked: no row written (beyond pgstep's own banner writes, which it undid), the
    /// schema fingerprint and every table's storage as at the start.
    Unchanged { db: String },
    /// Something wrote to it during the run.
    Changed {
        db: String,
        /// Rows inserted, updated or deleted, pgstep's own banner writes not counted.
        rows_written: u64,
        /// Where: the tables those rows were written in, with their counts.
        tables_written: Vec<TableWrites>,
        fingerprint_changed: bool,
        /// Tables truncated, rewritten, added or dropped.
        tables_rewritten: Vec<String>,
        /// The backup this run took, if it took one.
        backup: Option<String>,
    },
    /// It could not be checked.
    Unknown { db: String, why: String },
}

/// Compares two readings; `own` are the rows pgstep's banner set and clear changed, by table.
pub fn verdict(
    db: &str,
    before: &SourceReading,
    after: &SourceReading,
    own: &BTreeMap<String, u64>,
    backup: Option<String>,
) -> SourceVerdict {
    let own_rows: u64 = own.values().sum();
    let db = db.to_owned();
    if before.stats_reset != after.stats_reset {
        return SourceVerdict::Unknown {
            db,
            why: "the server's statistics were reset during the run".into(),
        };
    }
    let all = after.rows_written - before.rows_written;
    let statistics = after.statistics_rows - before.statistics_rows;
    let own_total = i64::try_from(own_rows).unwrap_or(i64::MAX);
    let others = all - statistics - own_total;
    if all < 0 || statistics < 0 || others < 0 {
        return SourceVerdict::Unknown {
            db,
            why: format!(
                "its write counters do not add up ({all} rows written, {own_total} by pgstep's banner)"
            ),
        };
    }
    let tables_rewritten = tables_rewritten(before, after);
    let tables_written = tables_written(before, after, own);
    let fingerprint_changed = before.fingerprint != after.fingerprint;
    if others == 0 && !fingerprint_changed && tables_rewritten.is_empty() {
        SourceVerdict::Unchanged { db }
    } else {
        SourceVerdict::Changed {
            db,
            rows_written: u64::try_from(others).unwrap_or(0),
            tables_written,
            fingerprint_changed,
            tables_rewritten,
            backup,
        }
    }
}

/// Tables whose storage changed between the readings (truncated, rewritten, added) or that
/// went away: sorted.
fn tables_rewritten(before: &SourceReading, after: &SourceReading) -> Vec<String> {
    let mut rewritten: Vec<String> = after
        .tables
        .iter()
        .filter(|(t, node)| before.tables.get(*t) != Some(node))
        .map(|(t, _)| t.clone())
        .collect();
    rewritten.extend(
        before
            .tables
            .keys()
            .filter(|t| !after.tables.contains_key(*t))
            .cloned(),
    );
    rewritten.sort();
    rewritten
}

/// Rows written in each table between the readings, pgstep's own (`own`) not counted: the
/// tables where some were.
fn tables_written(
    before: &SourceReading,
    after: &SourceReading,
    own: &BTreeMap<String, u64>,
) -> Vec<TableWrites> {
    after
        .table_writes
        .iter()
        .filter_map(|(t, n)| {
            let grew = n - before.table_writes.get(t).copied().unwrap_or(0);
            let mine = i64::try_from(own.get(t).copied().unwrap_or(0)).unwrap_or(i64::MAX);
            u64::try_from(grew - mine)
                .ok()
                .filter(|d| *d > 0)
                .map(|rows| TableWrites {
                    table: t.clone(),
                    rows,
                })
        })
        .collect()
}

impl SourceVerdict {
    /// The verdict in words: the first line is the headline; the others say how it was known
    /// or what to do.
    pub fn lines(&self) -> Vec<String> {
        match self {
            SourceVerdict::Unchanged { db } => vec![
                format!(
                    "The source database \"{db}\" was not changed: users can go on working with it as before."
                ),
                "Checked: no rows written, schema fingerprint unchanged.".into(),
            ],
            SourceVerdict::Changed {
                db,
                rows_written,
                tables_written,
                fingerprint_changed,
                tables_rewritten,
                backup,
            } => {
                let mut what = Vec::new();
                if *rows_written > 0 {
                    let mut w = format!("{rows_written} row(s) written");
                    if !tables_written.is_empty() {
                        let list: Vec<String> = tables_written
                            .iter()
                            .map(|w| format!("{}: {}", w.table, w.rows))
                            .collect();
                        w.push_str(&format!(" ({})", list.join(", ")));
                    }
                    what.push(w);
                }
                if *fingerprint_changed {
                    what.push("its schema fingerprint changed".to_owned());
                }
                if !tables_rewritten.is_empty() {
                    what.push(format!(
                        "table(s) truncated or rewritten: {}",
                        tables_rewritten.join(", ")
                    ));
                }
                vec![
                    format!(
                        "WARNING: the source database \"{db}\" was changed during the run: {}.",
                        what.join("; ")
                    ),
                    match backup {
                        Some(b) => {
                            format!("Check it before users go on; the backup this run took is {b}.")
                        }
                        None => "Check it before users go on; this run took no backup.".to_owned(),
                    },
                ]
            }
            SourceVerdict::Unknown { db, why } => vec![format!(
                "Whether the source database \"{db}\" was changed could not be checked: {why}."
            )],
        }
    }

    pub fn unchanged(&self) -> bool {
        matches!(self, SourceVerdict::Unchanged { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(rows: i64, stats: i64, fp: &str) -> SourceReading {
        SourceReading {
            rows_written: rows,
            statistics_rows: stats,
            stats_reset: None,
            table_writes: BTreeMap::new(),
            fingerprint: fp.into(),
            tables: [("clinic.encounter".to_owned(), 16_400)].into(),
        }
    }

    fn own(rows: u64) -> BTreeMap<String, u64> {
        [("app.banner".to_owned(), rows)].into()
    }

    #[test]
    fn own_banner_writes_and_statistics_do_not_count() {
        let v = verdict(
            "db",
            &reading(100, 5, "a"),
            &reading(112, 15, "a"),
            &own(2),
            None,
        );
        assert_eq!(v, SourceVerdict::Unchanged { db: "db".into() });
        assert!(v.lines()[0].contains("was not changed"));
        assert_eq!(
            v.lines()[1],
            "Checked: no rows written, schema fingerprint unchanged."
        );
    }

    #[test]
    fn other_writes_a_new_schema_or_a_truncate_are_a_change() {
        let mut before = reading(100, 0, "a");
        before.table_writes = [("app.t".to_owned(), 10), ("app.banner".to_owned(), 5)].into();
        let mut after = reading(103, 0, "a");
        after.table_writes = [("app.t".to_owned(), 11), ("app.banner".to_owned(), 7)].into();
        let v = verdict("db", &before, &after, &own(2), None);
        assert!(
            v.lines()[0].contains("changed during the run: 1 row(s) written (app.t: 1)."),
            "{v:?}"
        );
        assert!(!v.lines().join(" ").contains("was not changed"));
        let v = verdict(
            "db",
            &reading(100, 0, "a"),
            &reading(100, 0, "b"),
            &own(0),
            Some("/b".into()),
        );
        assert!(v.lines()[0].contains("schema fingerprint changed"), "{v:?}");
        assert!(v.lines()[1].contains("/b"), "{v:?}");
        let mut after = reading(100, 0, "a");
        after.tables.insert("clinic.encounter".into(), 16_500);
        let v = verdict("db", &reading(100, 0, "a"), &after, &own(0), None);
        assert!(v.lines()[0].contains("clinic.encounter"), "{v:?}");
    }

    #[test]
    fn a_reset_or_counters_going_back_are_unknown() {
        let mut after = reading(0, 0, "a");
        after.stats_reset = Some("now".into());
        let v = verdict("db", &reading(100, 0, "a"), &after, &own(0), None);
        assert!(matches!(v, SourceVerdict::Unknown { .. }));
        assert!(v.lines()[0].contains("could not be checked"));
        let v = verdict(
            "db",
            &reading(100, 0, "a"),
            &reading(101, 0, "a"),
            &own(2),
            None,
        );
        assert!(matches!(v, SourceVerdict::Unknown { .. }));
    }
}

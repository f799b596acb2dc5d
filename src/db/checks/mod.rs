//! Checks that compare the old database with the new one: GNUmed's plausibility pairs, and the
//! sanity checks of the new database after an upgrade (version marker, row counts, privileges,
//! amcheck, ANALYZE); one file per check. Prechecks run before the downtime.
//!
//! Each sanity check returns CheckResult values and never fails as a function: a query that
//! fails is a failed check naming what could not be checked.

mod amcheck;
mod analyze;
mod marker;
mod plausibility;
mod prechecks;
mod privileges;
mod row_counts;

pub use amcheck::amcheck;
pub use analyze::analyze;
pub use marker::version_marker;
pub use plausibility::{
    begin_in_snapshot, compare_pair, in_savepoint, plausibility, read_rows,
    read_rows_in_open_transaction,
};
pub use prechecks::run_precheck;
pub use privileges::privileges;
pub use row_counts::{
    TableCount, TableSets, count_rows, count_rows_read_only, row_count_results, row_counts,
    table_sets, tables_in_both,
};

use crate::checklist::model::CheckResult;
pub use crate::db::readonly::Rows;

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

//! How pg_dump should write a backup on this machine: one compressed file (`-Fc`), or the
//! directory format with parallel workers (`-Fd -j N`) when that is faster here.
//!
//! Pure: the facts come from the plan step (the source's table sizes, this machine's cores,
//! the latest rehearsal), the choice and the reason for it go back to be logged and shown.
//!
//! Why these rules:
//! - pg_dump's workers share out whole tables, largest first: a database whose data sits in one
//!   table is dumped no faster by more workers. The time with N workers is estimated by that
//!   same schedule over the tables' sizes.
//! - Each worker compresses on a core of its own (and its server backend needs one too when the
//!   server is local). During an upgrade the backup runs alongside the upgrade script, which
//!   keeps one core busy: workers beyond the spare cores only take the CPU from the upgrade.
//! - Alongside an upgrade, a dump that finishes before the upgrade and its checks costs no
//!   downtime at all; the latest rehearsal says whether it did. Only a dump on the critical path
//!   is worth more workers.
//! - Below a gigabyte the whole dump takes seconds: one file is simpler to keep and check.

use super::BackupFormat;
use crate::rehearsal::DumpTime;

/// Below this much table data, one file: parallel workers would save seconds at most.
pub const MIN_PARALLEL_BYTES: u64 = 1 << 30;
/// pg_dump's workers, at most (each holds a connection and a core).
pub const MAX_JOBS: u32 = 8;
/// Parallel workers must be estimated at least this much faster than one, or one file it is.
const MIN_SPEEDUP: f64 = 1.25;
/// Fewer workers are taken when they come within this factor of the best estimate.
const GOOD_ENOUGH: f64 = 1.05;
/// A rehearsed dump that ended before this share of what it ran alongside was off the
/// critical path (with a margin for a busier night).
const OFF_CRITICAL_PATH: f64 = 0.8;

/// What the choice depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Cores of the machine pgstep (and so pg_dump) runs on.
    pub cores: u32,
    /// The server runs on this machine too: its backends share those cores.
    pub server_local: bool,
    /// The backup is taken alongside the upgrade of the clone (not before a fixup).
    pub alongside: bool,
    /// The size of each table whose rows pg_dump copies (bytes, TOAST included).
    pub table_sizes: Vec<u64>,
    /// `--jobs`: the most workers the operator allows.
    pub max_jobs: Option<u32>,
    /// How the latest rehearsal's backup of the same upgrade went (weighed only when both it
    /// and this backup run alongside the upgrade).
    pub rehearsed: Option<DumpTime>,
}

/// The format, and why, in words for the log and the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub format: BackupFormat,
    pub why: String,
}

/// Chooses how pg_dump writes the backup.
pub fn choose(facts: &Facts) -> Choice {
    let total: u64 = facts.table_sizes.iter().sum();
    let custom = |why: String| Choice {
        format: BackupFormat::Custom,
        why,
    };
    if total < MIN_PARALLEL_BYTES {
        return custom(format!(
            "{} of table data: a parallel dump would save seconds at most",
            crate::format::bytes_round(total)
        ));
    }
    let spare = spare_cores(facts);
    let most = spare.min(facts.max_jobs.unwrap_or(MAX_JOBS)).min(MAX_JOBS);
    if most < 2 {
        return custom(format!(
            "{} core(s) here{}: no core to spare for parallel pg_dump workers",
            facts.cores,
            if spare < facts.cores {
                ", one of them for the upgrade running alongside"
            } else {
                ""
            }
        ));
    }
    let best = makespan(&facts.table_sizes, most);
    let speedup = total as f64 / best.max(1) as f64;
    if speedup < MIN_SPEEDUP {
        let largest = facts.table_sizes.iter().max().copied().unwrap_or(0);
        return custom(format!(
            "one table holds {:.0} % of the {} of table data: pg_dump's workers share out whole tables, so more of them would not be faster",
            100.0 * largest as f64 / total.max(1) as f64,
            crate::format::bytes_round(total)
        ));
    }
    let rehearsed = facts
        .rehearsed
        .as_ref()
        .filter(|r| facts.alongside && r.alongside);
    if let Some(r) = rehearsed
        && r.seconds <= OFF_CRITICAL_PATH * r.beside_seconds
    {
        return custom(format!(
            "the rehearsal's backup ({}) took {:.0} s and ended before the upgrade and checks beside it ({:.0} s): it costs no downtime, and more workers would only slow the upgrade",
            rehearsed_format(r),
            r.seconds,
            r.beside_seconds
        ));
    }
    parallel(facts, total, spare, most, best, rehearsed)
}

/// The directory format with as few workers as come close to the best of `most`.
fn parallel(
    facts: &Facts,
    total: u64,
    spare: u32,
    most: u32,
    best: u64,
    rehearsed: Option<&DumpTime>,
) -> Choice {
    let jobs = (2..=most)
        .find(|&j| makespan(&facts.table_sizes, j) as f64 <= GOOD_ENOUGH * best as f64)
        .unwrap_or(most);
    let estimate = total as f64 / makespan(&facts.table_sizes, jobs).max(1) as f64;
    let evidence = match rehearsed {
        Some(r) => format!(
            "; the rehearsal's backup ({}, {:.0} s) outlasted the upgrade and checks beside it ({:.0} s)",
            rehearsed_format(r),
            r.seconds,
            r.beside_seconds
        ),
        _ => String::new(),
    };
    Choice {
        format: BackupFormat::Directory { jobs },
        why: format!(
            "{} of table data over {} tables, {spare} spare core(s): {jobs} workers estimated {estimate:.1}× as fast as one file{evidence}",
            crate::format::bytes_round(total),
            facts.table_sizes.len()
        ),
    }
}

/// Cores left for pg_dump's workers: all of this machine's, less the upgrade's backend when
/// the server runs here and the backup goes on alongside the upgrade.
fn spare_cores(facts: &Facts) -> u32 {
    let busy = u32::from(facts.alongside && facts.server_local);
    facts.cores.saturating_sub(busy)
}

/// How long `jobs` workers take over these tables, in bytes of the busiest worker: pg_dump
/// hands the largest table still waiting to the first worker that is free.
pub fn makespan(sizes: &[u64], jobs: u32) -> u64 {
    let mut sorted = sizes.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let mut load = vec![0u64; usize::try_from(jobs.max(1)).unwrap_or(1)];
    for size in sorted {
        if let Some(least) = load.iter_mut().min() {
            *least += size;
        }
    }
    load.into_iter().max().unwrap_or(0)
}

fn rehearsed_format(r: &DumpTime) -> String {
    if r.format == "directory" {
        format!("directory format, {} workers", r.jobs)
    } else {
        format!("{} format", r.format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1_000_000_000;

    fn facts(cores: u32, sizes: &[u64]) -> Facts {
        Facts {
            cores,
            server_local: true,
            alongside: true,
            table_sizes: sizes.to_vec(),
            max_jobs: None,
            rehearsed: None,
        }
    }

    fn rehearsed(seconds: f64, beside_seconds: f64) -> Option<DumpTime> {
        Some(DumpTime {
            format: "custom".into(),
            jobs: 1,
            seconds,
            alongside: true,
            beside_seconds,
        })
    }

    #[test]
    fn a_small_database_is_one_file() {
        assert_one_file(&facts(16, &[300_000_000, 200_000_000]), |why| {
            why.contains("500 MB")
        });
    }

    /// The choice for `f` is one custom-format file, for a reason that passes `says`.
    fn assert_one_file(f: &Facts, says: impl Fn(&str) -> bool) {
        let c = choose(f);
        assert_eq!(c.format, BackupFormat::Custom);
        assert!(says(&c.why), "{}", c.why);
    }

    #[test]
    fn two_cores_beside_a_local_upgrade_leave_none_to_spare() {
        assert_one_file(&facts(2, &[2 * GB, 2 * GB, 2 * GB]), |why| {
            why.contains("2 core(s) here, one of them for the upgrade running alongside")
        });
        // One core and a remote server: the upgrade runs there, not here.
        let mut f = facts(1, &[2 * GB, 2 * GB, 2 * GB]);
        f.server_local = false;
        assert_one_file(&f, |why| {
            why.ends_with("1 core(s) here: no core to spare for parallel pg_dump workers")
        });
    }

    #[test]
    fn two_cores_before_a_fixup_take_two_workers() {
        let mut f = facts(2, &[2 * GB, 2 * GB, GB]);
        f.alongside = false;
        assert_eq!(
            choose(&f).format,
            BackupFormat::Directory { jobs: 2 },
            "nothing runs beside the dump of a fixup"
        );
    }

    #[test]
    fn a_remote_server_leaves_every_core_here_to_the_workers() {
        let mut f = facts(2, &[2 * GB, 2 * GB, GB]);
        f.server_local = false;
        assert_eq!(choose(&f).format, BackupFormat::Directory { jobs: 2 });
    }

    #[test]
    fn one_dominant_table_cannot_be_shared_out() {
        let c = choose(&facts(8, &[9 * GB, GB / 2, GB / 4]));
        assert_eq!(c.format, BackupFormat::Custom);
        assert!(c.why.contains("one table holds 92 %"), "{}", c.why);
    }

    #[test]
    fn workers_stop_where_more_would_not_help() {
        // Three equal tables: a fourth worker would have nothing to do.
        let c = choose(&facts(8, &[2 * GB, 2 * GB, 2 * GB]));
        assert_eq!(c.format, BackupFormat::Directory { jobs: 3 });
        assert!(c.why.contains("estimated 3.0×"), "{}", c.why);
        // Many small tables: every spare core (7, the upgrade has one) but never more than 8.
        let many = vec![GB / 10; 200];
        assert_eq!(
            choose(&facts(8, &many)).format,
            BackupFormat::Directory { jobs: 7 }
        );
        assert_eq!(
            choose(&facts(64, &many)).format,
            BackupFormat::Directory { jobs: MAX_JOBS }
        );
    }

    #[test]
    fn the_operators_jobs_are_the_most_taken() {
        let mut f = facts(8, &vec![GB / 10; 200]);
        f.max_jobs = Some(3);
        assert_eq!(choose(&f).format, BackupFormat::Directory { jobs: 3 });
        f.max_jobs = Some(1);
        assert_eq!(choose(&f).format, BackupFormat::Custom);
    }

    #[test]
    fn a_rehearsed_dump_off_the_critical_path_stays_one_file() {
        let mut f = facts(8, &[2 * GB, 2 * GB, 2 * GB]);
        f.rehearsed = rehearsed(40.0, 90.0);
        let c = choose(&f);
        assert_eq!(c.format, BackupFormat::Custom);
        assert!(c.why.contains("costs no downtime"), "{}", c.why);
        // A rehearsal whose backup was taken before its copy (users were connected) says
        // nothing about a dump beside the upgrade.
        if let Some(r) = f.rehearsed.as_mut() {
            r.alongside = false;
        }
        assert_eq!(choose(&f).format, BackupFormat::Directory { jobs: 3 });
    }

    #[test]
    fn a_rehearsed_dump_that_outlasted_the_upgrade_gets_workers() {
        let mut f = facts(8, &[2 * GB, 2 * GB, 2 * GB]);
        f.rehearsed = rehearsed(80.0, 30.0);
        let c = choose(&f);
        assert_eq!(c.format, BackupFormat::Directory { jobs: 3 });
        assert!(c.why.contains("outlasted"), "{}", c.why);
        // Close to the upgrade's time (within the margin): still worth it.
        f.rehearsed = rehearsed(85.0, 100.0);
        assert_eq!(choose(&f).format, BackupFormat::Directory { jobs: 3 });
    }

    #[test]
    fn the_schedule_hands_the_largest_tables_out_first() {
        // 5 | 4, then 3 to the 4 (7), 3 to the 5 (8), 3 to the 7 (10)
        assert_eq!(makespan(&[5, 4, 3, 3, 3], 2), 10);
        assert_eq!(makespan(&[5, 4, 3, 3, 3], 1), 18);
        assert_eq!(makespan(&[], 4), 0);
        assert_eq!(makespan(&[7], 4), 7);
    }
}

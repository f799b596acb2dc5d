//! The sanity-checks step: the upgraded clone against the bundle's reference and against the
//! source — fingerprint, version marker, plausibility pairs, row counts, privileges, amcheck —
//! with ANALYZE alongside. A fixup checks its database in place. Any failed check stops the
//! real run; a rehearsal notes each and goes on.

use std::time::Duration;

use postgres::Client;

use crate::bundle::{Bundle, Plausibility, Version};
use crate::checklist::CheckResult;
use crate::checklist::{PlanKind, StepOutput, StepStatus};
use crate::db::checks;
use crate::db::readonly::ReadError;
use crate::db::version::read_version;
use crate::engine::plan::{Mode, UpgradePlan};
use crate::events::Level;
use crate::executor::compare;
use crate::executor::ctx::Ctx;
use crate::executor::error::{StepError, StepResult};
use crate::executor::state::{Changes, Record, Source};
use crate::fingerprint;

pub(in crate::executor) fn run(
    ctx: &mut Ctx,
    source: &Source,
    changes: &mut Changes,
    record: &mut Record,
    mode: Mode,
) -> StepResult {
    let results = match ctx.spec.kind {
        PlanKind::Fixup => fixup_checks(ctx, source)?,
        _ => clone_checks(ctx, source, changes)?,
    };
    finish(ctx, record, mode, results)
}

/// Every check of the upgraded clone, with ANALYZE alongside: ANALYZE reads every table of
/// the new database on its own connection while the other checks read the catalogs and run
/// their own queries, neither waiting for the other.
fn clone_checks(
    ctx: &mut Ctx,
    source: &Source,
    changes: &mut Changes,
) -> Result<Vec<CheckResult>, StepError> {
    let plan = source.upgrade()?.clone();
    let bundle = ctx.bundle()?.clone();
    let analyze_on = ctx.spec.server.with_dbname(&plan.work_db);
    let ctx_ref: &Ctx = ctx;
    let (checked, analyzed) = std::thread::scope(|scope| {
        let analyze = scope.spawn(move || analyze_alone(&analyze_on));
        let checked = checks_of_the_clone(ctx_ref, source, changes, &plan, &bundle);
        let analyzed = analyze.join().unwrap_or_else(|_| {
            let failed =
                CheckResult::new("analyze", false, "the ANALYZE thread stopped unexpectedly");
            (failed, Duration::ZERO)
        });
        (checked, analyzed)
    });
    let (mut results, laps) = checked?;
    results.push(analyzed.0);
    ctx.log(
        Level::Info,
        format!(
            "sanity checks took {laps}; ANALYZE alongside {:.1} s",
            analyzed.1.as_secs_f64()
        ),
    );
    Ok(results)
}

/// Every sanity check but ANALYZE, with how long each part took.
fn checks_of_the_clone(
    ctx: &Ctx,
    source: &Source,
    changes: &mut Changes,
    plan: &UpgradePlan,
    bundle: &Bundle,
) -> Result<(Vec<CheckResult>, Laps), StepError> {
    let mut work = ctx.session(&plan.work_db)?;
    let mut old = ctx.session(&plan.source_db)?;
    let mut laps = Laps::start();
    let fp = fingerprint::compute(&mut work.client, &bundle.schemas)
        .map_err(|e| crate::db::describe(&e))?;
    let mut results = vec![
        target_fingerprint(bundle, plan.to, &fp),
        checks::version_marker(&mut work.client, &bundle.version_query, plan.to),
    ];
    laps.lap("fingerprint and version");
    ctx.fault_point("sanity_checks_fingerprint", "Sanity checks")?;
    let pairs = source.plausibility_pairs(Some(bundle));
    let (pairs, read_before) = plausibility(ctx, changes, plan, &pairs);
    results.extend(pairs);
    laps.lap(if read_before {
        "plausibility pairs (old side read alongside the upgrade)"
    } else {
        "plausibility pairs"
    });
    let snapshot = changes.background.as_ref().and_then(|b| b.snapshot());
    results.extend(row_counts(
        ctx,
        (&mut old.client, snapshot),
        &mut work.client,
        plan,
        bundle,
    ));
    laps.lap("row counts");
    results.extend(checks::privileges(
        &mut old.client,
        &mut work.client,
        &bundle.schemas,
    ));
    laps.lap("privileges");
    // amcheck creates (and drops) an extension: it runs after the fingerprint.
    results.push(checks::amcheck(&mut work.client, &bundle.schemas));
    laps.lap("amcheck");
    Ok((results, laps))
}

/// The plausibility pairs, over parallel connections; the old side comes from the backup's
/// snapshot when it was read there alongside the upgrade (then true).
fn plausibility(
    ctx: &Ctx,
    changes: &mut Changes,
    plan: &UpgradePlan,
    pairs: &[Plausibility],
) -> (Vec<CheckResult>, bool) {
    let old_known = match changes.background.as_mut() {
        Some(bg) => bg.old_side(&ctx.cancel),
        None => None,
    };
    let read_before = old_known.is_some();
    let dbs = compare::Databases {
        server: &ctx.spec.server,
        old_db: &plan.source_db,
        new_db: &plan.work_db,
        old_snapshot: changes.background.as_ref().and_then(|bg| bg.snapshot()),
        cancel: &ctx.cancel,
    };
    let pairs: Vec<&Plausibility> = pairs.iter().collect();
    (compare::plausibility(&dbs, &pairs, old_known), read_before)
}

/// The rows of every table of both databases, compared; `old`: the source's connection and
/// the backup's snapshot of it while it is exported.
fn row_counts(
    ctx: &Ctx,
    (old, snapshot): (&mut Client, Option<&str>),
    work: &mut Client,
    plan: &UpgradePlan,
    bundle: &Bundle,
) -> Vec<CheckResult> {
    match checks::table_sets(old, work, &bundle.schemas) {
        Ok(sets) => {
            let counts = parallel_row_counts(
                &ctx.spec.server,
                (&plan.source_db, snapshot),
                &plan.work_db,
                &sets.both,
            );
            checks::row_count_results(&sets, &counts)
        }
        Err(e) => vec![CheckResult::new("row counts", false, e.to_string())],
    }
}

/// A fixup's checks of its database in place: fingerprint, version marker, ANALYZE.
fn fixup_checks(ctx: &mut Ctx, source: &Source) -> Result<Vec<CheckResult>, StepError> {
    let db = source.name()?;
    let bundle = ctx.bundle()?.clone();
    let mut session = ctx.session(&db)?;
    let now = read_version(&mut session.client, &bundle.version_query, &db)?;
    let fp = fingerprint::compute(&mut session.client, &bundle.schemas)
        .map_err(|e| crate::db::describe(&e))?;
    let reference = bundle.reference_for(now);
    let verdict = fingerprint::verdict(
        &fp,
        reference.map(|(v, r)| (v, r.text.as_str(), r.hash.as_str())),
    );
    let fp_check = fingerprint_check("fingerprint after the fixups", &fp, verdict, |d| {
        format!(":\n{d}")
    })
    .unwrap_or_else(|| {
        CheckResult::new(
            "fingerprint after the fixups",
            false,
            format!("no reference for version {now}"),
        )
    });
    let marker = checks::version_marker(&mut session.client, &bundle.version_query, now);
    let analyze = checks::analyze(&mut session.client);
    Ok(vec![fp_check, marker, analyze])
}

/// Reports every check; any failed check fails the step, naming the first. A rehearsal notes
/// each failed check (the real run would stop here) and goes on to its record.
fn finish(ctx: &mut Ctx, record: &mut Record, mode: Mode, results: Vec<CheckResult>) -> StepResult {
    for c in &results {
        ctx.check(&c.name, c.ok, c.detail.clone());
    }
    let failed: Vec<&CheckResult> = results.iter().filter(|c| !c.ok).collect();
    if mode == Mode::Rehearsal && !failed.is_empty() {
        for c in &failed {
            record.problems.push(format!(
                "sanity check failed: {}: {}; the real run would stop at the sanity checks",
                c.name, c.detail
            ));
        }
        ctx.log(
            Level::Warning,
            format!(
                "rehearsal: {} sanity check(s) failed; the real run would stop here",
                failed.len()
            ),
        );
        return Ok((StepStatus::Warning, StepOutput::Checks(results)));
    }
    if let Some(first) = failed.first() {
        return Err(StepError::failed(format!(
            "{} sanity check(s) failed; first: {}: {}",
            failed.len(),
            first.name,
            first.detail
        )));
    }
    Ok((StepStatus::Done, StepOutput::Checks(results)))
}

/// Connections per database for counting rows: the counts of a large schema are independent
/// scans, which PostgreSQL runs in parallel on as many backends.
const COUNT_WORKERS: usize = 4;

/// Every table's rows counted in both databases over several connections at once; the results
/// come back in the tables' order.
/// `old`: the old database, and the backup's snapshot of it while it is exported (the source as
/// users left it, before the banner).
fn parallel_row_counts(
    server: &crate::conn::ConnSettings,
    old: (&str, Option<&str>),
    new_db: &str,
    tables: &[String],
) -> Vec<checks::TableCount> {
    let workers = COUNT_WORKERS.min(tables.len()).max(1);
    let mut counts: Vec<checks::TableCount> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let mine: Vec<&String> = tables.iter().skip(w).step_by(workers).collect();
                let handle = scope.spawn({
                    let mine = mine.clone();
                    move || count_some(server, old, new_db, &mine)
                });
                (mine, handle)
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(mine, h)| {
                // A worker that died leaves its tables counted as failures, never silently out.
                h.join().unwrap_or_else(|_| {
                    let err = || Err("the counting thread stopped unexpectedly".to_owned());
                    mine.iter()
                        .map(|t| checks::TableCount {
                            table: (*t).clone(),
                            old: err(),
                            new: err(),
                        })
                        .collect()
                })
            })
            .collect()
    });
    counts.sort_by_key(|c| tables.iter().position(|t| *t == c.table));
    counts
}

/// One worker's tables, on its own pair of connections.
fn count_some(
    server: &crate::conn::ConnSettings,
    (old_db, snapshot): (&str, Option<&str>),
    new_db: &str,
    tables: &[&String],
) -> Vec<checks::TableCount> {
    let connect = |db: &str| {
        server
            .with_dbname(db)
            .connect(None)
            .map_err(|e| e.to_string())
    };
    let mut old = connect(old_db).map(|mut c| {
        let in_snapshot = snapshot.is_some_and(|id| checks::begin_in_snapshot(&mut c, id).is_ok());
        (c, in_snapshot)
    });
    let mut new = connect(new_db).map(|c| (c, false));
    let count = |c: &mut Result<(postgres::Client, bool), String>, t: &str| match c {
        // In the snapshot's transaction, a failed count must not end it for the next table.
        Ok((c, true)) => {
            checks::in_savepoint(c, |c| checks::count_rows(c, t).map_err(ReadError::from))
                .map_err(|e| e.to_string())
        }
        Ok((c, false)) => checks::count_rows_read_only(c, t).map_err(|e| e.to_string()),
        Err(e) => Err(e.clone()),
    };
    tables
        .iter()
        .map(|t| checks::TableCount {
            table: (*t).clone(),
            old: count(&mut old, t),
            new: count(&mut new, t),
        })
        .collect()
}

/// The new database's fingerprint against the bundle's reference for `to`.
fn target_fingerprint(bundle: &Bundle, to: Version, fp: &fingerprint::Fingerprint) -> CheckResult {
    let reference = bundle.reference_for(to);
    let verdict = fingerprint::verdict(
        fp,
        reference.map(|(v, r)| (v, r.text.as_str(), r.hash.as_str())),
    );
    fingerprint_check("target fingerprint", fp, verdict, |d| {
        format!(" in {} object(s):\n{d}", d.len())
    })
    .unwrap_or_else(|| {
        CheckResult::new(
            "target fingerprint",
            false,
            format!("the bundle has no reference for version {to}"),
        )
    })
}

/// A fingerprint check from its verdict, the measured hash kept as data beside the words;
/// None when there is no reference (each caller says that in its own words). `differences`
/// writes what follows "differs from the reference for version V".
fn fingerprint_check(
    name: &str,
    fp: &fingerprint::Fingerprint,
    verdict: fingerprint::Verdict<Version>,
    differences: impl FnOnce(&fingerprint::Diff) -> String,
) -> Option<CheckResult> {
    let hash = fp.display_hash();
    let (ok, detail) = match verdict {
        fingerprint::Verdict::Matches { version } => {
            (true, format!("{hash} matches version {version}"))
        }
        fingerprint::Verdict::Differs { version, diff } => (
            false,
            format!(
                "{hash} differs from the reference for version {version}{}",
                differences(&diff)
            ),
        ),
        fingerprint::Verdict::NoReference => return None,
    };
    Some(CheckResult {
        fingerprint: Some(hash),
        ..CheckResult::new(name, ok, detail)
    })
}

/// ANALYZE of the new database on a connection of its own, and how long it took.
fn analyze_alone(server: &crate::conn::ConnSettings) -> (CheckResult, Duration) {
    let started = std::time::Instant::now();
    let result = match server.connect(None) {
        Ok(mut client) => checks::analyze(&mut client),
        Err(e) => CheckResult::new("analyze", false, format!("cannot connect for ANALYZE: {e}")),
    };
    (result, started.elapsed())
}

/// How long each part of a step took, for the run's log ("plausibility pairs 3.1 s, …").
struct Laps {
    last: std::time::Instant,
    laps: Vec<(&'static str, std::time::Duration)>,
}

impl Laps {
    fn start() -> Self {
        Self {
            last: std::time::Instant::now(),
            laps: Vec::new(),
        }
    }

    fn lap(&mut self, what: &'static str) {
        let now = std::time::Instant::now();
        self.laps.push((what, now - self.last));
        self.last = now;
    }
}

impl std::fmt::Display for Laps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (what, took)) in self.laps.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{what} {:.1} s", took.as_secs_f64())?;
        }
        Ok(())
    }
}

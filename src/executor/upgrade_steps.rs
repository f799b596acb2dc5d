//! The steps of a clone-and-upgrade (GNUmed's procedure): plan, clone and upgrade, sanity
//! checks, banner reset and cut-over. The source is never written to by these steps; the old
//! database is only renamed (fixed naming), made read-only and closed after success.

use std::time::Duration;

use super::run::{Run, StepError, StepResult, refused};
use crate::bundle::{Bundle, Plausibility, Version};
use crate::checklist::{PlanSummary, StepOutput, StepStatus};
use crate::db::access::AccessSnapshot;
use crate::db::bookkeeping::{HistoryEntry, record_history};
use crate::db::checks::{self, CheckResult};
use crate::db::clone::{
    CloneStrategy, allow_connections, carry_over, create_closed_clone, database_exists,
    rename_database,
};
use crate::db::version::read_version;
use crate::db::{access, banner};
use crate::engine::plan::{Mode, UpgradePlan, plan_upgrade};
use crate::engine::{apply_step, check_server_version, find_source, run_prechecks};
use crate::events::{Level, log};
use crate::fingerprint;
use crate::journal::{Change, Entry};
use crate::rehearsal::Rehearsal;

/// A database error as a step error: what pgstep refused (a version query that fails or does
/// not return one row with one column, …) is a refusal, exit 3; the rest a failure.
pub(super) fn refusal(e: crate::db::DbError) -> StepError {
    match e {
        crate::db::DbError::Refused(m) => refused(m),
        other => Run::db_error(other).into(),
    }
}

impl Run {
    pub(super) fn plan_upgrade(&mut self) -> StepResult {
        let bundle = self.bundle()?.clone();
        let mut maint = self.maintenance()?;
        self.server_version_num =
            check_server_version(&mut maint, &bundle).map_err(Run::engine_error)?;
        let source = match &self.spec.database {
            Some(db) => db.clone(),
            None => find_source(&mut maint, &bundle).map_err(Run::engine_error)?,
        };
        if !database_exists(&mut maint, &source).map_err(Run::db_error)? {
            return Err(refused(format!(
                "database \"{source}\" does not exist on {}: check the name (psql -l lists them)",
                self.spec.server.host_display()
            )));
        }
        self.source_size = u64::try_from(
            crate::db::clone::database_size(&mut maint, &source).map_err(Run::db_error)?,
        )
        .unwrap_or(0);
        // Before pgstep runs anything on the source: the run's last word on it is measured
        // against this.
        self.read_source_before(&source);
        let mut session = self.session(&source)?;
        // A version query that fails or does not return one row with one column is a refusal:
        // nothing has been changed.
        let current =
            read_version(&mut session.client, &bundle.version_query, &source).map_err(refusal)?;
        let mode = if self.spec.rehearsal || self.spec.kind == crate::checklist::PlanKind::Rehearsal
        {
            Mode::Rehearsal
        } else {
            Mode::Production
        };
        let plan = plan_upgrade(&bundle, &source, current, self.spec.to, mode)
            .map_err(|e| e.to_string())?;
        // A rehearsal makes only its copy; the real run also makes (or renames) the others.
        let rehearsal = self.spec.kind == crate::checklist::PlanKind::Rehearsal;
        for name in [
            Some(&plan.work_db),
            Some(&plan.final_db).filter(|f| **f != plan.source_db && !rehearsal),
            plan.aside_db.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if database_exists(&mut maint, name).map_err(Run::db_error)? {
                return Err(refused(format!(
                    "database \"{name}\" already exists: an earlier upgrade left it, or it is in use. pgstep never overwrites a database; check what it holds, then drop or rename it (or run pgstep recover if a run was interrupted)"
                )));
            }
        }
        self.begin(
            &source,
            Some(current.to_string()),
            Some(plan.to.to_string()),
        )?;
        self.current = Some(current);
        let work = plan.work_db.clone();
        let steps = plan.steps.clone();
        let scripts = self.with_ctx(|ctx, _| -> Result<Vec<_>, String> {
            let ph = ctx.placeholders(&work).map_err(|e| e.to_string())?;
            steps
                .iter()
                .map(|&i| {
                    ctx.reload(&ctx.bundle.steps[i].scripts, &ph)
                        .map_err(|e| e.to_string())
                })
                .collect()
        })??;
        self.with_ctx(|ctx, _| {
            run_prechecks(ctx, &mut session.client).map_err(|e| e.to_string())
        })??;
        let rehearsed = self.latest_rehearsal(&bundle.name, current, plan.to);
        let backup_line =
            self.choose_backup_format(&mut session.client, true, rehearsed.as_ref())?;
        drop(session);
        let lines: Vec<String> = steps
            .iter()
            .zip(&scripts)
            .map(|(&i, s)| {
                let st = &bundle.steps[i];
                format!(
                    "step {} → {}: {} script(s), {} statement(s){}",
                    st.from,
                    st.to,
                    s.len(),
                    s.iter()
                        .map(|x| crate::db::runner::count_statements(&x.nodes))
                        .sum::<u64>(),
                    if st.single_transaction {
                        ", in one transaction"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        let summary = PlanSummary {
            application: bundle.name.clone(),
            server: self.spec.server.host_display(),
            source_db: source.clone(),
            target_db: plan.final_db.clone(),
            from: current,
            to: plan.to,
            lines,
            run_id: None,
            journal: None,
            expected: Vec::new(),
            rehearsal: None,
            backup: backup_line,
        };
        let summary = self.with_expectations(summary, rehearsed.as_ref());
        log(
            &mut self.sink,
            Level::Info,
            format!(
                "{} on {}: \"{source}\" is at version {current}; upgrading to {} as \"{}\"",
                bundle.name, summary.server, plan.to, plan.final_db
            ),
        );
        self.scripts = scripts;
        self.upgrade = Some(plan);
        Ok((StepStatus::Done, StepOutput::Plan(summary)))
    }

    /// `CREATE DATABASE … TEMPLATE` of the frozen source, with what the template copy does not
    /// carry. In a rehearsal with users connected, the copy is restored from a backup instead.
    pub(super) fn clone_source(&mut self) -> StepResult {
        let plan = self.upgrade.clone().ok_or("the plan step has not run")?;
        if self.spec.kind == crate::checklist::PlanKind::Rehearsal
            && self.rehearsal_must_restore(&plan.source_db)?
        {
            return self.rehearsal_copy_from_backup(&plan.source_db, &plan.work_db);
        }
        let mut maint = self.maintenance()?;
        let id = self.journal_change(Change::CloneCreating {
            name: plan.work_db.clone(),
            source: plan.source_db.clone(),
        })?;
        let strategy = clone_strategy(self.server_version_num, self.source_size);
        let (how, why) = match strategy {
            Some(CloneStrategy::FileCopy) => (
                "FILE_COPY",
                "a checkpoint, then a file copy: fastest for large databases",
            ),
            Some(CloneStrategy::WalLog) => (
                "WAL_LOG",
                "block by block through the WAL: fastest for small databases",
            ),
            None => ("the server's only strategy", "PostgreSQL before 15"),
        };
        log(
            &mut self.sink,
            Level::Info,
            format!(
                "cloning {} MB with STRATEGY = {how} ({why})",
                self.source_size / 1_000_000
            ),
        );
        // The clone is created closed to everyone and stays closed to all but pgstep until the
        // cut-over opens it with the source's access from before the block.
        create_closed_clone(&mut maint, &plan.source_db, &plan.work_db, strategy)
            .map_err(Run::db_error)?;
        self.journal_created(&mut maint, &plan.work_db);
        // The clone exists; what the template copy does not carry is not yet carried over.
        crate::faults::at_point("clone_created", "Clone", self.spec.fault.as_deref())?;
        let original = match self.access.clone() {
            Some(before_block) => before_block,
            None => access::snapshot(&mut maint, &plan.source_db).map_err(Run::db_error)?,
        };
        let closed = access::closed_privileges(&mut maint, &original, self.spec.server.user())
            .map_err(Run::db_error)?;
        let carried = carry_over(&mut maint, &plan.source_db, &plan.work_db, Some(&closed))
            .map_err(Run::db_error)?;
        allow_connections(&mut maint, &plan.work_db).map_err(Run::db_error)?;
        self.clone_access = Some(original);
        self.journal_confirm(id);
        log(
            &mut self.sink,
            Level::Info,
            format!(
                "cloned \"{}\" into \"{}\"; carried over: {}",
                plan.source_db,
                plan.work_db,
                carried.actions.join(", ")
            ),
        );
        Ok((
            StepStatus::Done,
            StepOutput::Cloned {
                db: plan.work_db.clone(),
                source: plan.source_db.clone(),
                size: self.source_size,
                how: how.into(),
                carried: carried.actions,
            },
        ))
    }

    /// The bundle's scripts on the clone, step by step, the version marker checked around each.
    pub(super) fn upgrade_clone(&mut self) -> StepResult {
        let plan = self.upgrade.clone().ok_or("the plan step has not run")?;
        let scripts = self.scripts.clone();
        let mut reports = Vec::new();
        for (n, &i) in plan.steps.iter().enumerate() {
            let work = plan.work_db.clone();
            let report = self.with_ctx(|ctx, cancel| {
                apply_step(ctx, &ctx.bundle.steps[i], &scripts[n], &work, cancel)
            })??;
            reports.push(report);
        }
        Ok((StepStatus::Done, StepOutput::Upgraded(reports)))
    }

    pub(super) fn sanity_checks(&mut self) -> StepResult {
        let plan = self.upgrade.clone().ok_or("the plan step has not run")?;
        let bundle = self.bundle()?.clone();
        // ANALYZE reads every table of the new database on its own connection while the other
        // checks read the catalogs and run their own queries: neither waits for the other.
        let analyze_on = self.spec.server.with_dbname(&plan.work_db);
        let (checked, analyzed) = std::thread::scope(|scope| {
            let analyze = scope.spawn(move || analyze_alone(&analyze_on));
            let checked = self.checks_of_the_clone(&plan, &bundle);
            let analyzed = analyze.join().unwrap_or_else(|_| {
                let failed = CheckResult {
                    name: "analyze".into(),
                    ok: false,
                    detail: "the ANALYZE thread stopped unexpectedly".into(),
                    fingerprint: None,
                };
                (failed, Duration::ZERO)
            });
            (checked, analyzed)
        });
        let (mut results, laps) = checked?;
        results.push(analyzed.0);
        log(
            &mut self.sink,
            Level::Info,
            format!(
                "sanity checks took {laps}; ANALYZE alongside {:.1} s",
                analyzed.1.as_secs_f64()
            ),
        );
        finish_checks(self, results)
    }

    /// Every sanity check but ANALYZE, with how long each part took.
    fn checks_of_the_clone(
        &mut self,
        plan: &UpgradePlan,
        bundle: &Bundle,
    ) -> Result<(Vec<CheckResult>, Laps), StepError> {
        let mut work = self.session(&plan.work_db)?;
        let mut source = self.session(&plan.source_db)?;
        let mut laps = Laps::start();
        let fp = fingerprint::compute(&mut work.client, &bundle.schemas)
            .map_err(|e| crate::db::describe(&e))?;
        let mut results = vec![
            target_fingerprint(bundle, plan.to, &fp),
            checks::version_marker(&mut work.client, &bundle.version_query, plan.to),
        ];
        laps.lap("fingerprint and version");
        crate::faults::at_point(
            "sanity_checks_fingerprint",
            "Sanity checks",
            self.spec.fault.as_deref(),
        )?;
        let (pairs, read_before) = self.plausibility_checks(plan);
        results.extend(pairs);
        laps.lap(if read_before {
            "plausibility pairs (old side read alongside the upgrade)"
        } else {
            "plausibility pairs"
        });
        results.extend(
            match checks::table_sets(&mut source.client, &mut work.client, &bundle.schemas) {
                Ok(sets) => {
                    let counts = parallel_row_counts(
                        &self.spec.server,
                        (
                            &plan.source_db,
                            self.background.as_ref().and_then(|b| b.snapshot()),
                        ),
                        &plan.work_db,
                        &sets.both,
                    );
                    checks::row_count_results(&sets, &counts)
                }
                Err(e) => vec![CheckResult {
                    name: "row counts".into(),
                    ok: false,
                    detail: e.to_string(),
                    fingerprint: None,
                }],
            },
        );
        laps.lap("row counts");
        results.extend(checks::privileges(
            &mut source.client,
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
    fn plausibility_checks(&mut self, plan: &UpgradePlan) -> (Vec<CheckResult>, bool) {
        let pairs = self.plausibility_pairs();
        let old_known = match self.background.as_mut() {
            Some(bg) => bg.old_side(&self.cancel),
            None => None,
        };
        let read_before = old_known.is_some();
        let dbs = super::compare::Databases {
            server: &self.spec.server,
            old_db: &plan.source_db,
            new_db: &plan.work_db,
            old_snapshot: self.background.as_ref().and_then(|bg| bg.snapshot()),
            cancel: &self.cancel,
        };
        let pairs: Vec<&Plausibility> = pairs.iter().collect();
        (
            super::compare::plausibility(&dbs, &pairs, old_known),
            read_before,
        )
    }

    pub(super) fn cut_over(&mut self) -> StepResult {
        let plan = self.upgrade.clone().ok_or("the plan step has not run")?;
        let bundle = self.bundle()?.clone();
        let started = self.journal_change(Change::CutOverStarted {
            old: plan.source_db.clone(),
            new: plan.final_db.clone(),
        })?;
        {
            let mut work = self.session(&plan.work_db)?;
            if let (Some(b), Some(previous)) = (&bundle.banner, &self.banner_previous) {
                banner::restore(&mut work.client, b, previous.as_deref()).map_err(Run::db_error)?;
                log(
                    &mut self.sink,
                    Level::Info,
                    format!("logon banner of \"{}\" reset", plan.work_db),
                );
            }
            record_history(
                &mut work.client,
                &HistoryEntry {
                    action: if self.spec.rehearsal {
                        "rehearsal"
                    } else {
                        "upgrade"
                    },
                    from_version: Some(plan.from.to_string()),
                    to_version: plan.to.to_string(),
                    source_database: Some(&plan.source_db),
                    bundle: &bundle.name,
                    bundle_sha256: &bundle.sha256,
                    source_fingerprint: self.fingerprint.as_ref().map(|f| f.hash.as_str()),
                    fingerprint_override: self.fingerprint_overridden,
                    note: None,
                },
            )
            .map_err(Run::db_error)?;
        }
        // The new database's banner is reset; nothing is renamed yet.
        crate::faults::at_point(
            "cut_over_banner_reset",
            "Banner reset and cut-over",
            self.spec.fault.as_deref(),
        )?;
        let mut maint = self.maintenance()?;
        let old = match &plan.aside_db {
            None => plan.source_db.clone(),
            Some(aside) => {
                let id = self.journal_change(Change::Renamed {
                    from: plan.source_db.clone(),
                    to: aside.clone(),
                })?;
                rename_database(&mut maint, &plan.source_db, aside).map_err(Run::db_error)?;
                self.journal_confirm(id);
                // Between the renames: the source is aside, the new database not yet in place.
                crate::faults::at_point(
                    "cut_over_renamed",
                    "Banner reset and cut-over",
                    self.spec.fault.as_deref(),
                )?;
                let id = self.journal_change(Change::Renamed {
                    from: plan.work_db.clone(),
                    to: plan.final_db.clone(),
                })?;
                rename_database(&mut maint, &plan.work_db, &plan.final_db)
                    .map_err(Run::db_error)?;
                self.journal_confirm(id);
                log(
                    &mut self.sink,
                    Level::Info,
                    format!(
                        "renamed \"{}\" to \"{aside}\" and \"{}\" to \"{}\"",
                        plan.source_db, plan.work_db, plan.final_db
                    ),
                );
                aside.clone()
            }
        };
        // The new database opens to users with exactly the source's access from before the
        // block (it was closed to all but pgstep while it was upgraded and checked).
        if let Some(original) = self.clone_access.clone() {
            let opened = AccessSnapshot {
                db: plan.final_db.clone(),
                ..original
            };
            access::restore(&mut maint, &opened).map_err(Run::db_error)?;
            log(
                &mut self.sink,
                Level::Info,
                format!(
                    "\"{}\" is open to users with the access \"{}\" had before the downtime",
                    plan.final_db, plan.source_db
                ),
            );
        }
        crate::faults::at(
            crate::checklist::StepId::CutOver,
            self.spec.fault.as_deref(),
        )?;
        self.journal_confirm(started);
        let done = self.journal_change(Change::CutOverDone {
            old: old.clone(),
            new: plan.final_db.clone(),
        })?;
        self.journal_confirm(done);
        // The upgrade has succeeded. The old database is retired (read-only, closed) and that
        // is read back; until it is, the run is not finished: `status` lists it and `recover`
        // retires it (its journal's CutOverDone is still pending).
        let old_open = access::retire(&mut maint, &old)
            .err()
            .map(|e| e.to_string());
        let (level, status) = match &old_open {
            None => (Level::Info, StepStatus::Done),
            Some(_) => (Level::Warning, StepStatus::Warning),
        };
        log(
            &mut self.sink,
            level,
            format!(
                "users now use \"{}\" (version {}); {}",
                plan.final_db,
                plan.to,
                crate::checklist::old_database_sentence(&old, old_open.as_deref())
            ),
        );
        if old_open.is_none() {
            self.journal_entry(Entry::Finished {
                outcome: "success".into(),
                detail: Some(format!("{} is at version {}", plan.final_db, plan.to)),
            });
        }
        self.lock = None;
        Ok((
            status,
            StepOutput::CutOver {
                new_db: plan.final_db.clone(),
                old_db: old,
                old_open,
            },
        ))
    }
}

/// Reports every check; any failed check fails the step, naming the first.
pub(super) fn finish_checks(run: &mut Run, results: Vec<CheckResult>) -> StepResult {
    for c in &results {
        run.sink_check(&c.name, c.ok, c.detail.clone());
    }
    let failed: Vec<&CheckResult> = results.iter().filter(|c| !c.ok).collect();
    if run.spec.kind == crate::checklist::PlanKind::Rehearsal && !failed.is_empty() {
        // A rehearsal notes each failed check (the real run would stop here) and goes on to
        // its record.
        for c in &failed {
            run.problems.push(format!(
                "sanity check failed: {}: {}; the real run would stop at the sanity checks",
                c.name, c.detail
            ));
        }
        log(
            &mut run.sink,
            Level::Warning,
            format!(
                "rehearsal: {} sanity check(s) failed; the real run would stop here",
                failed.len()
            ),
        );
        return Ok((StepStatus::Warning, StepOutput::Checks(results)));
    }
    if let Some(first) = failed.first() {
        return Err(StepError::from(format!(
            "{} sanity check(s) failed; first: {}: {}",
            failed.len(),
            first.name,
            first.detail
        )));
    }
    Ok((StepStatus::Done, StepOutput::Checks(results)))
}

impl Run {
    /// The latest rehearsal of this upgrade (major versions `from` → `to`) of the bundle.
    fn latest_rehearsal(&self, bundle: &str, from: Version, to: Version) -> Option<Rehearsal> {
        crate::rehearsal::latest(
            &self.spec.data_dir,
            bundle,
            &from.major.to_string(),
            &to.major.to_string(),
        )
    }

    /// What the latest rehearsal says each downtime step will take, scaled to this database's
    /// size (a rehearsal is its own measurement: it gets none).
    fn with_expectations(
        &mut self,
        mut summary: PlanSummary,
        rehearsed: Option<&Rehearsal>,
    ) -> PlanSummary {
        if self.spec.kind == crate::checklist::PlanKind::Rehearsal {
            return summary;
        }
        let Some(r) = rehearsed else {
            return summary;
        };
        summary.expected = r
            .expected(Some(self.source_size))
            .into_iter()
            .map(|s| (s.step, s.seconds))
            .collect();
        summary.rehearsal = Some(format!("{} ({})", r.run_id, r.at));
        if let Some(total) = summary.expected_downtime() {
            log(
                &mut self.sink,
                Level::Info,
                format!(
                    "the rehearsal of {} predicts about {total:.1} s of downtime for this database",
                    r.at
                ),
            );
        }
        summary
    }
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
            checks::in_savepoint(c, |c| checks::count_rows(c, t).map_err(|e| e.to_string()))
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

/// Above this size a file copy (after its checkpoint) beats copying block by block through the
/// WAL; below it, the checkpoint costs more than it saves (PostgreSQL's own advice for
/// CREATE DATABASE … STRATEGY).
const FILE_COPY_ABOVE: u64 = 512 * 1024 * 1024;

/// The clone strategy for a database of `size` bytes; None before PostgreSQL 15 (no choice).
fn clone_strategy(server_version_num: u32, size: u64) -> Option<CloneStrategy> {
    (server_version_num >= 150_000).then_some(if size > FILE_COPY_ABOVE {
        CloneStrategy::FileCopy
    } else {
        CloneStrategy::WalLog
    })
}

impl Run {
    /// The plausibility pairs that speak about this upgrade, in the bundle's order.
    pub(super) fn plausibility_pairs(&self) -> Vec<crate::bundle::Plausibility> {
        match (&self.upgrade, self.spec.bundle.as_ref()) {
            (Some(plan), Some(bundle)) => bundle
                .plausibility
                .iter()
                .filter(|p| p.applies(plan.from, plan.to))
                .cloned()
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The new database's fingerprint against the bundle's reference for `to`.
fn target_fingerprint(bundle: &Bundle, to: Version, fp: &fingerprint::Fingerprint) -> CheckResult {
    let name = "target fingerprint".to_owned();
    match bundle.reference_for(to) {
        Some((v, r)) if r.hash == fp.hash => CheckResult {
            name,
            ok: true,
            detail: format!("{} matches version {v}", fp.display_hash()),
            fingerprint: Some(fp.display_hash()),
        },
        Some((v, r)) => {
            let d = fingerprint::diff(&r.text, &fp.text);
            CheckResult {
                name,
                ok: false,
                detail: format!(
                    "{} differs from the reference for version {v} in {} object(s):\n{d}",
                    fp.display_hash(),
                    d.len()
                ),
                fingerprint: Some(fp.display_hash()),
            }
        }
        None => CheckResult {
            name,
            ok: false,
            detail: format!("the bundle has no reference for version {to}"),
            fingerprint: None,
        },
    }
}

/// ANALYZE of the new database on a connection of its own, and how long it took.
fn analyze_alone(server: &crate::conn::ConnSettings) -> (CheckResult, Duration) {
    let started = std::time::Instant::now();
    let result = match server.connect(None) {
        Ok(mut client) => checks::analyze(&mut client),
        Err(e) => CheckResult {
            name: "analyze".into(),
            ok: false,
            detail: format!("cannot connect for ANALYZE: {e}"),
            fingerprint: None,
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_databases_are_copied_as_files_small_ones_through_the_wal() {
        assert_eq!(
            clone_strategy(150_004, 10 * 1024 * 1024 * 1024),
            Some(CloneStrategy::FileCopy)
        );
        assert_eq!(
            clone_strategy(160_000, 50 * 1024 * 1024),
            Some(CloneStrategy::WalLog)
        );
        assert_eq!(
            clone_strategy(140_010, 10 * 1024 * 1024 * 1024),
            None,
            "PostgreSQL 14 has no choice"
        );
    }
}

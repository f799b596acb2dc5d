//! The commands that run a checklist: upgrade, fixup, restore, bootstrap. Each builds a
//! [`RunSpec`] from validated flags, runs it through the same state machine and executor as the
//! wizard, writes the run's report and returns the outcome's exit code.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use super::{Downtime, FormatArg, Output, Target, fail, resolve};
use crate::backup::BackupFormat;
use crate::bundle::{self, Bundle};
use crate::checklist::{
    Checklist, Outcome, PlanKind, PlanSummary, SourceVerdict, StepId, StepOutput,
};
use crate::conn::ConnArgs;
use crate::drive::{Answers, Policy};
use crate::engine::{Context, find_source, run_prechecks};
use crate::executor::{BackupPlan, RunSpec};
use crate::exit;
use crate::headless::Printer;
use crate::session::{self, ReportBuilder};

pub(super) fn upgrade(
    conn: &ConnArgs,
    target: &Target,
    downtime: &Downtime,
    keep_failed: bool,
    output: &Output,
) -> i32 {
    run_request(conn, target, PlanKind::Upgrade, output, |spec| {
        spec.keep_failed = keep_failed;
        spec.backup = backup_plan(downtime)?;
        Ok(policy(downtime, output))
    })
}

pub(super) fn fixup(
    conn: &ConnArgs,
    target: &Target,
    downtime: &Downtime,
    reapply: bool,
    output: &Output,
) -> i32 {
    run_request(conn, target, PlanKind::Fixup, output, |spec| {
        spec.reapply = reapply;
        spec.backup = backup_plan(downtime)?;
        Ok(policy(downtime, output))
    })
}

pub(super) fn rehearse(
    conn: &ConnArgs,
    target: &Target,
    backup_dir: Option<PathBuf>,
    output: &Output,
) -> i32 {
    run_request(conn, target, PlanKind::Rehearsal, output, |spec| {
        spec.rehearsal = true;
        let dir = backup_dir.unwrap_or_else(|| spec.data_dir.join("rehearsals").join("backups"));
        // The same choice of format the real run will make, so that its time is the one measured.
        spec.backup = BackupPlan::Auto {
            dir,
            max_jobs: None,
        };
        // Nothing users see changes: there is nothing to confirm.
        Ok(confirmed(true))
    })
}

pub(super) fn bootstrap(
    conn: &ConnArgs,
    target: &Target,
    keep_failed: bool,
    output: &Output,
) -> i32 {
    run_request(conn, target, PlanKind::Bootstrap, output, |spec| {
        if spec.database.is_none() {
            return Err(fail(exit::REFUSED, "name the new database with --database"));
        }
        spec.keep_failed = keep_failed;
        Ok(confirmed(true))
    })
}

pub(super) fn restore(
    conn: &ConnArgs,
    backup: PathBuf,
    database: String,
    jobs: u32,
    output: &Output,
) -> i32 {
    let server = match resolve(conn) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut spec = RunSpec::new(PlanKind::Restore, None, server);
    spec.restore_from = Some(backup);
    spec.database = Some(database);
    spec.jobs = jobs.max(1);
    run_plan(spec, &confirmed(output.yes), output)
}

/// The one path from a command's flags to a run: the bundle and connection validated
/// ([`prepare`]), then the command's own settings and policy (`finish`, which may still
/// refuse), then the run.
fn run_request(
    conn: &ConnArgs,
    target: &Target,
    kind: PlanKind,
    output: &Output,
    finish: impl FnOnce(&mut RunSpec) -> Result<Policy, i32>,
) -> i32 {
    let request = prepare(conn, target, kind).and_then(|(_, mut spec)| {
        let policy = finish(&mut spec)?;
        Ok((spec, policy))
    });
    match request {
        Ok((spec, policy)) => run_plan(spec, &policy, output),
        Err(code) => code,
    }
}

/// The policy of a command that has nothing to confirm beyond `yes`.
fn confirmed(yes: bool) -> Policy {
    Policy {
        yes,
        ..Policy::default()
    }
}

/// Read-only: runs the bundle's prechecks and nothing else.
pub(super) fn precheck(conn: &ConnArgs, target: &Target, output: &Output) -> i32 {
    let (bundle, spec) = match prepare(conn, target, PlanKind::Upgrade) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let mut printer = Printer::new(output.json);
    let mut ctx = Context {
        bundle: &bundle,
        server: &spec.server,
        overrides: &spec.overrides,
        obs: &mut printer,
    };
    let result = (|| {
        let mut maint = ctx.maintenance()?;
        let db = match &spec.database {
            Some(d) => d.clone(),
            None => find_source(&mut maint, ctx.bundle)?,
        };
        let mut session = ctx.session(&db)?;
        run_prechecks(&mut ctx, &mut session.client)?;
        Ok::<_, crate::engine::EngineError>(db)
    })();
    match result {
        Ok(db) => {
            printer.say(&format!(
                "All {} prechecks of {} found no problem in \"{db}\".",
                bundle.prechecks.len(),
                bundle.name
            ));
            exit::SUCCESS
        }
        Err(e) => fail(exit::REFUSED, &e.to_string()),
    }
}

/// The bundle (validated completely) and the connection, before anything connects.
pub(super) fn prepare(
    conn: &ConnArgs,
    target: &Target,
    kind: PlanKind,
) -> Result<(Bundle, RunSpec), i32> {
    let bundle = bundle::load(&target.bundle).map_err(|e| fail(exit::REFUSED, &e.to_string()))?;
    let server = resolve(conn)?;
    let overrides: BTreeMap<String, String> = target.set.iter().cloned().collect();
    for name in overrides.keys() {
        if !bundle.placeholders.contains_key(name) && name != "DB_NAME" && name != "DB_USER" {
            let known: Vec<&str> = bundle.placeholders.keys().map(String::as_str).collect();
            return Err(fail(
                exit::REFUSED,
                &format!(
                    "--set {name}=…: bundle \"{}\" defines no placeholder @{name}@ (it has: {})",
                    bundle.name,
                    known.join(", ")
                ),
            ));
        }
    }
    let mut spec = RunSpec::new(kind, Some(bundle.clone()), server);
    spec.database = target.database.clone();
    spec.to = target.to;
    spec.overrides = overrides;
    Ok((bundle, spec))
}

fn backup_plan(d: &Downtime) -> Result<BackupPlan, i32> {
    match (&d.no_backup, &d.backup_dir) {
        (Some(reason), None) if !reason.trim().is_empty() => Ok(BackupPlan::Skip {
            reason: reason.clone(),
        }),
        (Some(_), None) => Err(fail(
            exit::REFUSED,
            "--no-backup needs a reason, which is recorded",
        )),
        (Some(_), Some(_)) => Err(fail(
            exit::REFUSED,
            "--no-backup and --backup-dir contradict each other",
        )),
        (None, dir) => {
            let dir = dir
                .clone()
                .unwrap_or_else(crate::backup::default_backup_dir);
            let format = match d.backup_format {
                FormatArg::Auto => {
                    return Ok(BackupPlan::Auto {
                        dir,
                        max_jobs: d.jobs,
                    });
                }
                FormatArg::Custom if d.jobs.is_some_and(|j| j > 1) => {
                    return Err(fail(
                        exit::USAGE,
                        "--jobs: pg_dump's custom format is written by one process; use --backup-format directory (or auto) for parallel workers",
                    ));
                }
                FormatArg::Custom => BackupFormat::Custom,
                FormatArg::Directory => BackupFormat::Directory {
                    jobs: d.jobs.unwrap_or(2),
                },
            };
            Ok(BackupPlan::Into { dir, format })
        }
    }
}

fn policy(d: &Downtime, output: &Output) -> Policy {
    Policy {
        yes: output.yes,
        terminate_sessions: d.terminate_sessions,
        override_schema_check: d.override_schema_check,
        wait_for_sessions: Duration::from_secs(d.wait_sessions),
    }
}

/// Runs the checklist — in the wizard when a terminal is attached, headless otherwise — writes
/// the report and prints the outcome.
fn run_plan(spec: RunSpec, policy: &Policy, output: &Output) -> i32 {
    let report_ctx = crate::run_report::ReportContext {
        data_dir: spec.data_dir.clone(),
        server: spec.server.host_display(),
        database: spec.database.clone().unwrap_or_default(),
    };
    let interactive = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if !output.headless && !output.json {
        if interactive {
            // A password prompt must happen before the wizard owns the terminal; the typed
            // password is shared by every connection the run makes. (Errors are the plan
            // step's to report.)
            let _ = spec.server.with_dbname("postgres").connect(None);
            return run_wizard(spec, &report_ctx);
        }
        errln!(
            "pgstep: no terminal attached: showing progress lines (--headless silences this note)"
        );
    }
    let mut printer = Printer::new(output.json);
    // Ctrl-C, SIGTERM and a dropped SSH session (SIGHUP) go through the failure path.
    let (checklist, outcome, written) = session::run_with_signals(
        spec,
        &mut Answers::new(policy),
        Some(ReportBuilder::new(report_ctx)),
        vec![&mut printer],
    );
    match written {
        Some(Ok((md, json))) => {
            printer.say(&format!("report: {} ({})", md.display(), json.display()))
        }
        Some(Err(e)) => errln!("pgstep: warning: could not write the run's report: {e}"),
        None => {}
    }
    printer.result(&checklist, &outcome);
    if !printer.is_json() || !matches!(outcome, Outcome::Success) {
        print_outcome(&checklist, &outcome, &mut printer);
    }
    outcome.exit_code()
}

fn run_wizard(spec: RunSpec, report_ctx: &crate::run_report::ReportContext) -> i32 {
    match crate::ui::run(spec, report_ctx) {
        Ok(done) => {
            let mut printer = Printer::new(false);
            print_outcome(&done.app.checklist, &done.outcome, &mut printer);
            if let Some(r) = &done.report {
                outln!("report: {}", r.display());
            }
            done.outcome.exit_code()
        }
        Err(e) => fail(
            exit::FAILED,
            &format!("the terminal could not be used: {e}; run again with --headless"),
        ),
    }
}

/// The outcome in words: the summary on stdout after success, the failure on stderr.
fn print_outcome(checklist: &Checklist, outcome: &Outcome, printer: &mut Printer) {
    match outcome {
        Outcome::Success => printer.say(&success_summary(checklist)),
        Outcome::Failed {
            what,
            undone,
            advice,
            source,
            ..
        } => {
            let mut text = what.clone();
            if !undone.is_empty() {
                text.push_str("\nWhat pgstep undid:");
                for u in undone {
                    text.push_str(&format!("\n  - {u}"));
                }
            }
            for a in advice {
                text.push_str(&format!("\n{a}"));
            }
            // Only what pgstep measured (checklist::SourceVerdict), never an assumption.
            // Users can go on only when the source is unchanged *and* everything was undone;
            // advice means something is still pending (e.g. the source still blocked).
            match source {
                Some(SourceVerdict::Unchanged { db }) if !advice.is_empty() => text.push_str(&format!(
                    "\nThe source database \"{db}\" itself was not changed (checked: no rows written, schema fingerprint unchanged); before users go on, see above for what is still to do."
                )),
                Some(verdict) => {
                    for line in verdict.lines() {
                        text.push_str(&format!("\n{line}"));
                    }
                }
                None => {}
            }
            errln!("pgstep: {text}");
        }
    }
}

fn success_summary(c: &Checklist) -> String {
    let total: f64 = c
        .steps
        .iter()
        .filter_map(|s| s.elapsed)
        .map(|d| d.as_secs_f64())
        .sum();
    let Some(p) = c.plan() else {
        return String::from("\nDone.");
    };
    let output_of = |id| c.step(id).and_then(|s| s.output.clone());
    let said = match c.kind {
        PlanKind::Upgrade => upgraded(p, output_of(StepId::CutOver), total),
        PlanKind::Fixup => Some(fixed_up(p, output_of(StepId::ApplyFixups))),
        PlanKind::Rehearsal => Some(rehearsed(p, output_of(StepId::CutOver))),
        PlanKind::Bootstrap => Some(format!(
            "Created \"{}\" at version {} in {total:.1} s.",
            p.target_db, p.to
        )),
        PlanKind::Restore => Some(format!(
            "Restored {} into \"{}\" in {total:.1} s; its fingerprint matches the backup's.",
            p.source_db, p.target_db
        )),
    };
    format!("\n{}", said.unwrap_or_else(|| "Done.".into()))
}

/// After an upgrade: where users are now, and what became of the old database.
fn upgraded(p: &PlanSummary, cut_over: Option<StepOutput>, total: f64) -> Option<String> {
    let Some(StepOutput::CutOver {
        new_db,
        old_db,
        old_open,
    }) = cut_over
    else {
        return None;
    };
    Some(format!(
        "Upgraded \"{}\" from version {} to {} in {total:.1} s. Users now use \"{new_db}\"; {}",
        p.source_db,
        p.from,
        p.to,
        crate::checklist::old_database_sentence(&old_db, old_open.as_deref())
    ))
}

fn fixed_up(p: &PlanSummary, fixups: Option<StepOutput>) -> String {
    match fixups {
        Some(StepOutput::Fixups {
            applied,
            skipped,
            version,
        }) => format!(
            "\"{}\" is at version {version} (was {}); applied {} file(s), {} already recorded.",
            p.source_db,
            p.from,
            applied.len(),
            skipped.len()
        ),
        _ => format!(
            "\"{}\" is at version {}: nothing to do.",
            p.source_db, p.from
        ),
    }
}

fn rehearsed(p: &PlanSummary, cut_over: Option<StepOutput>) -> String {
    let note = match cut_over {
        Some(StepOutput::Rehearsed { note, .. }) => note,
        _ => String::new(),
    };
    format!(
        "Rehearsed \"{}\" {} → {}: {note}",
        p.source_db, p.from, p.to
    )
}

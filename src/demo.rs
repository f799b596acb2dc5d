//! `pgstep demo`: a throw-away PostgreSQL cluster, the sample clinic application bootstrapped at
//! version 1 with data, upgraded to version 2 with the full clone-and-upgrade procedure, and
//! the result shown. Nothing outside the cluster's temporary directory is touched.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::bundle::{self, Bundle, Version};
use crate::checklist::{Checklist, Outcome, PlanKind};
use crate::cluster::Cluster;
use crate::conn::ConnSettings;
use crate::drive::{Answers, Policy};
use crate::engine::bootstrap::bootstrap;
use crate::engine::{Context, EngineError};
use crate::executor::{BackupPlan, RunSpec};
use crate::headless::{Printer, check_line};
use crate::session::{self, ReportBuilder};
use crate::{db, exit, sample};

pub struct DemoOptions {
    pub patients: u64,
    pub keep: bool,
    /// Open the wizard for the upgrade (a terminal is attached and no headless output asked).
    pub interactive: bool,
}

/// Runs the demo and returns the exit code.
pub fn run(opts: &DemoOptions, printer: &mut Printer) -> i32 {
    let started = Instant::now();
    printer.say("pgstep demo: a throw-away PostgreSQL cluster with the sample \"clinic\" application at version 1, upgraded to version 2.");
    let mut cluster = match Cluster::start(None) {
        Ok(c) => c,
        Err(e) => {
            errln!("pgstep: {e}");
            // Missing programs or user: nothing was started or changed.
            return match e {
                crate::cluster::ClusterError::Failed { .. } => exit::FAILED,
                _ => exit::REFUSED,
            };
        }
    };
    printer.say(&format!(
        "cluster: PostgreSQL from {}, socket in {}",
        cluster.bin_dir().display(),
        cluster.socket_dir().display()
    ));
    let code = match demo(&cluster, opts, printer) {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            errln!("pgstep: the demo failed: {e}");
            match e {
                EngineError::Refused(_) | EngineError::Script { .. } => exit::REFUSED,
                EngineError::Failed(_) => exit::FAILED,
            }
        }
    };
    if opts.keep {
        cluster.keep();
        printer.say(&format!(
            "\nThe cluster keeps running. Connect with:\n  {}\nStop it with:\n  {}",
            cluster.psql_command("clinic_v2"),
            cluster.stop_command()
        ));
    } else if let Err(e) = cluster.stop() {
        errln!("pgstep: {e}");
    }
    printer.say(&format!(
        "demo finished in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    code
}

fn demo(cluster: &Cluster, opts: &DemoOptions, printer: &mut Printer) -> Result<(), EngineError> {
    let (bundle, server) = sample_database(cluster, opts, printer)?;
    let spec = upgrade_spec(cluster, bundle, server);
    let (checklist, outcome, report) = upgrade(spec, opts.interactive, printer)?;
    if let Outcome::Failed { what, .. } = &outcome {
        return Err(EngineError::Failed(crate::engine::Failure {
            what: what.clone(),
            ..Default::default()
        }));
    }
    summary(&checklist, printer, report);
    Ok(())
}

/// The sample bundle written into the cluster's directory, and "clinic_v1" bootstrapped at
/// version 1 with its sample data.
fn sample_database(
    cluster: &Cluster,
    opts: &DemoOptions,
    printer: &mut Printer,
) -> Result<(Bundle, ConnSettings), EngineError> {
    let refused =
        |e: std::io::Error| EngineError::Refused(format!("cannot write the sample bundle: {e}"));
    let root = sample::write_bundle(&cluster.dir().join("bundle")).map_err(refused)?;
    let bundle = bundle::load(&root).map_err(|e| EngineError::Refused(e.to_string()))?;
    let server = cluster.settings("postgres");
    let overrides = BTreeMap::new();
    let mut ctx = Context {
        bundle: &bundle,
        server: &server,
        overrides: &overrides,
        obs: printer,
    };

    let t = Instant::now();
    bootstrap(&mut ctx, "clinic_v1", Some(Version::new(1, 0)), false)?;
    let mut session = ctx.session("clinic_v1")?;
    crate::events::phase(ctx.obs, format!("sample data: {} patients", opts.patients));
    sample::generate(&mut session, &root, opts.patients, ctx.obs)
        .map_err(|e| EngineError::Refused(e.to_string()))?;
    let size = db::clone::database_size(&mut session.client, "clinic_v1")?;
    drop(session);
    ctx.info(format!(
        "clinic_v1 ready: {} MB, in {:.1} s",
        size / 1_000_000,
        t.elapsed().as_secs_f64()
    ));
    Ok((bundle, server))
}

/// The upgrade of "clinic_v1" to version 2, its backup beside the throw-away cluster.
fn upgrade_spec(cluster: &Cluster, bundle: Bundle, server: ConnSettings) -> RunSpec {
    let mut spec = RunSpec::new(PlanKind::Upgrade, Some(bundle), server);
    spec.database = Some("clinic_v1".into());
    spec.to = Some(Version::new(2, 0));
    // The report outlives the throw-away cluster; demo runs stay apart from real ones.
    spec.data_dir = crate::paths::data_dir().join("demo");
    spec.backup = BackupPlan::Auto {
        dir: cluster.dir().join("backups"),
        max_jobs: None,
    };
    spec
}

/// The run's report: its Markdown and JSON files.
type ReportFiles = Option<(PathBuf, PathBuf)>;

/// Runs the upgrade in the wizard or headless (with the same signal handling as
/// `pgstep upgrade --headless`).
fn upgrade(
    spec: RunSpec,
    interactive: bool,
    printer: &mut Printer,
) -> Result<(Checklist, Outcome, ReportFiles), EngineError> {
    let report_ctx = crate::run_report::ReportContext {
        data_dir: spec.data_dir.clone(),
        server: spec.server.host_display(),
        database: "clinic_v1".into(),
    };
    if interactive {
        let done = crate::ui::run(spec, &report_ctx).map_err(|e| {
            EngineError::Refused(format!(
                "the terminal could not be used: {e}; run again with --headless"
            ))
        })?;
        let report = done.report.map(|p| (p.clone(), p));
        return Ok((done.app.checklist, done.outcome, report));
    }
    let policy = Policy {
        yes: true,
        ..Policy::default()
    };
    let (checklist, outcome, written) = session::run_with_signals(
        spec,
        &mut Answers::new(&policy),
        Some(ReportBuilder::new(report_ctx)),
        vec![printer],
    );
    Ok((checklist, outcome, written.and_then(Result::ok)))
}

/// What the demo shows at the end: versions, fingerprints, checks, timings, where things are.
fn summary(c: &Checklist, printer: &mut Printer, report: ReportFiles) {
    let mut lines = vec![String::new(), "Summary".to_owned()];
    for s in &c.steps {
        lines.push(format!(
            "  {:<28} {:>7.2} s  {:?}",
            s.id.title(),
            s.elapsed.unwrap_or_default().as_secs_f64(),
            s.status
        ));
    }
    lines.extend(outputs(c));
    if let Some((md, _)) = report {
        lines.push(format!("  report: {}", md.display()));
    }
    for l in lines {
        printer.say(&l);
    }
}

/// What the steps found and made: fingerprint, backup, sanity checks, cut-over.
fn outputs(c: &Checklist) -> Vec<String> {
    use crate::checklist::{BackupOutput, StepId, StepOutput};
    let mut lines = Vec::new();
    let out = |id| c.step(id).and_then(|s| s.output.clone());
    if let Some(StepOutput::Fingerprint {
        hash, reference, ..
    }) = out(StepId::Fingerprint)
    {
        lines.push(format!(
            "  fingerprint before: sha256:{hash} (version {})",
            reference.map_or_else(String::new, |v| v.to_string())
        ));
    }
    if let Some(StepOutput::Backup(BackupOutput::Taken { size, sha256, .. })) = out(StepId::Backup)
    {
        // The backup lives in the throw-away cluster's directory and goes with it (unless --keep).
        lines.push(format!(
            "  backup: verified, {} MB, sha256 {sha256} (kept only with --keep, beside the cluster)",
            size / 1_000_000
        ));
    }
    if let Some(StepOutput::Checks(checks)) = out(StepId::SanityChecks) {
        lines.extend(check_lines(&checks));
    }
    if let Some(StepOutput::CutOver {
        new_db,
        old_db,
        old_open,
    }) = out(StepId::CutOver)
    {
        lines.push(format!(
            "  users now use \"{new_db}\"; {}",
            crate::checklist::old_database_sentence(&old_db, old_open.as_deref())
        ));
    }
    lines
}

/// How many sanity checks passed, and the fingerprint and plausibility ones in full.
fn check_lines(checks: &[crate::checklist::CheckResult]) -> Vec<String> {
    let failed = checks.iter().filter(|c| !c.ok).count();
    let mut lines = vec![format!(
        "  sanity checks: {} passed, {failed} failed",
        checks.len() - failed
    )];
    for ch in checks
        .iter()
        .filter(|c| c.name.contains("fingerprint") || c.name.starts_with("plausibility"))
    {
        let detail = ch.detail.lines().next().unwrap_or_default();
        lines.push(format!("    {}", check_line(&ch.name, ch.ok, detail)));
    }
    lines
}

//! One run on the executor thread: the state the steps share (plan, lock, journal, what was
//! changed) and the dispatch of jobs to steps. Every change to the server is written to the
//! journal before it is made.

use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use postgres::Client;

use super::background::{Background, BackupJob, Ended};
use super::spec::{BackupPlan, RunSpec};
use super::{Sink, undo};
use crate::backup::choice;
use crate::bundle::{Bundle, Version};
use crate::cancel::Cancel;
use crate::checklist::{
    BackupOutput, ExecEvent, Job, PlanKind, SourceReading, SpaceLine, StepId, StepOutput,
    StepStatus,
};
use crate::db::access::{self, AccessSnapshot};
use crate::db::sessions::other_sessions_settled;
use crate::db::{DbError, Session, banner};
use crate::engine::{Context, EngineError, SESSION_GRACE};
use crate::events::{Level, log};
use crate::faults;
use crate::fingerprint::{self, Fingerprint};
use crate::journal::{Change, Entry, Journal, RunInfo};
use crate::lock::RunLock;
use crate::script::Script;

pub(super) type StepResult = Result<(StepStatus, StepOutput), StepError>;

/// Why a step did not finish: an error, or a refusal (a guard or a check said no).
#[derive(Debug, Clone)]
pub(crate) struct StepError {
    pub message: String,
    pub refused: bool,
}

impl From<String> for StepError {
    fn from(message: String) -> Self {
        Self {
            message,
            refused: false,
        }
    }
}

impl From<&str> for StepError {
    fn from(message: &str) -> Self {
        Self {
            message: message.to_owned(),
            refused: false,
        }
    }
}

/// A guard or check said no.
pub(super) fn refused(message: impl Into<String>) -> StepError {
    StepError {
        message: message.into(),
        refused: true,
    }
}

/// What the steps of one run share.
pub(crate) struct Run {
    pub spec: RunSpec,
    pub sink: Sink,
    pub cancel: Cancel,
    pub journal: Option<Journal>,
    pub lock: Option<RunLock>,
    pub server_version_num: u32,
    /// The application database the run works on (the source of an upgrade).
    pub source: Option<String>,
    pub current: Option<Version>,
    pub upgrade: Option<crate::engine::plan::UpgradePlan>,
    pub scripts: Vec<Vec<Script>>,
    pub fingerprint: Option<Fingerprint>,
    pub fingerprint_overridden: bool,
    pub access: Option<AccessSnapshot>,
    /// The access the clone gets at the cut-over (the source's before the block); until then
    /// the clone is closed to all but pgstep.
    pub clone_access: Option<AccessSnapshot>,
    pub banner_previous: Option<Option<String>>,
    pub backup: Option<BackupOutput>,
    pub fixups: Vec<(Version, Script)>,
    pub fixups_skipped: Vec<String>,
    /// What a rehearsal found that would stop or slow the real run.
    pub problems: Vec<String>,
    /// Who can still connect despite the block (superusers, the operator), for every listing.
    pub unblockable: Vec<String>,
    /// The source's size when the run began (bytes).
    pub source_size: u64,
    /// How long each finished step took, for a rehearsal's record.
    pub step_times: Vec<(StepId, Duration)>,
    /// The run's id and journal, once the plan step began the run.
    pub run_id: Option<(String, std::path::PathBuf)>,
    /// The backup, while it is taken on its own thread.
    pub background: Option<Background>,
    /// How long the backup took from start to verified, and whether alongside the upgrade.
    pub backup_took: Option<(Duration, bool)>,
    /// The step that failed and why, for a stopped rehearsal's record.
    pub failed: Option<String>,
    /// The source database and what the plan step read of it before anything else (see
    /// `source_verdict.rs`).
    pub source_before: Option<(String, Result<SourceReading, String>)>,
}

impl Run {
    pub fn new(spec: RunSpec, tx: Sender<ExecEvent>, cancel: Cancel) -> Self {
        Self {
            spec,
            sink: Sink::new(tx),
            cancel,
            journal: None,
            lock: None,
            server_version_num: 0,
            source: None,
            current: None,
            upgrade: None,
            scripts: Vec::new(),
            fingerprint: None,
            fingerprint_overridden: false,
            access: None,
            clone_access: None,
            banner_previous: None,
            backup: None,
            fixups: Vec::new(),
            fixups_skipped: Vec::new(),
            problems: Vec::new(),
            unblockable: Vec::new(),
            source_size: 0,
            step_times: Vec::new(),
            run_id: None,
            background: None,
            backup_took: None,
            failed: None,
            source_before: None,
        }
    }

    pub fn job(&mut self, job: Job) {
        match job {
            Job::Step { step } => self.timed(step, |run| run.step(step)),
            Job::Accept { step } => self.timed(step, |run| run.accept(step)),
            Job::Notify => self.timed(StepId::ConnectedUsers, Run::notify_and_list),
            Job::Terminate { pids } => {
                self.timed(StepId::ConnectedUsers, |run| run.terminate_and_list(&pids))
            }
            Job::Await { step } => self.timed(step, Run::await_backup),
            Job::FailurePath => self.failure_path(),
        }
    }

    /// Runs a step's work, with its fault point, and reports how it ended and how long it took.
    fn timed(&mut self, step: StepId, f: impl FnOnce(&mut Run) -> StepResult) {
        if self.background_failed() {
            return; // reported instead of starting this step
        }
        self.sink.send(ExecEvent::StepStarted(step));
        self.journal_entry(Entry::Step {
            step: step.key().into(),
            state: "started".into(),
            detail: None,
        });
        let started = Instant::now();
        let result = if self.cancel.requested() {
            Err(StepError::from("cancelled by the operator"))
        } else {
            f(self).and_then(|ok| self.fault_at(step).map(|()| ok))
        };
        let elapsed = started.elapsed();
        match result {
            Ok((status, mut output)) => {
                if let (StepOutput::Plan(p), Some((id, path))) = (&mut output, &self.run_id) {
                    p.run_id = Some(id.clone());
                    p.journal = Some(path.display().to_string());
                }
                // A step going on in the background is recorded as such; its wait, later, as done.
                let state = if status == StepStatus::Running {
                    "going on alongside"
                } else {
                    "done"
                };
                self.journal_entry(Entry::Step {
                    step: step.key().into(),
                    state: state.into(),
                    detail: None,
                });
                match self.step_times.iter_mut().find(|(s, _)| *s == step) {
                    // A step in parts (started, then awaited; refreshed) counts once, in all.
                    Some((_, total)) => *total += elapsed,
                    None => self.step_times.push((step, elapsed)),
                }
                self.sink.send(ExecEvent::StepDone {
                    step,
                    status,
                    output,
                    elapsed,
                });
            }
            Err(StepError { message, refused }) => {
                let error = if self.cancel.requested() && !message.contains("cancelled") {
                    format!("cancelled by the operator ({message})")
                } else {
                    message
                };
                self.journal_entry(Entry::Step {
                    step: step.key().into(),
                    state: "failed".into(),
                    detail: Some(error.clone()),
                });
                self.failed = Some(format!("at step {}: {error}", step.title()));
                self.sink.send(ExecEvent::StepFailed {
                    step,
                    error,
                    elapsed,
                    refused,
                });
            }
        }
    }

    /// This server's system identifier, when it can be read: the same for every name the
    /// cluster is reached by (`localhost`, `127.0.0.1`, its socket).
    fn system_identifier(&self) -> Option<String> {
        let mut maint = self.maintenance().ok()?;
        crate::recover::server_identity(&mut maint, "").0
    }

    fn step(&mut self, step: StepId) -> StepResult {
        // Before anything is decided: a leftover of an unfinished run (a blocked source, a
        // half-upgraded clone) must not be taken for the application's database.
        if step == StepId::Plan
            && let Some(why) = crate::recover::pending_on_server(
                &self.spec.data_dir,
                &self.spec.server.host_display(),
                self.system_identifier().as_deref(),
            )
        {
            return Err(refused(why));
        }
        if self.spec.kind == PlanKind::Fixup && self.fixup_has_nothing_to_do(step) {
            return Ok((
                StepStatus::Skipped,
                StepOutput::Nothing {
                    note: "nothing to do".into(),
                },
            ));
        }
        // The plan step only decides: whatever stops it is a refusal (nothing was changed).
        let as_refusal = |e: StepError| StepError { refused: true, ..e };
        match (self.spec.kind, step) {
            (PlanKind::Upgrade | PlanKind::Rehearsal, StepId::Plan) => {
                self.plan_upgrade().map_err(as_refusal)
            }
            (PlanKind::Rehearsal, StepId::ConnectedUsers) => self.rehearsal_sessions(),
            (PlanKind::Rehearsal, StepId::Banner) => Ok((
                StepStatus::Skipped,
                StepOutput::Nothing {
                    note: "rehearsal: no banner, users see nothing".into(),
                },
            )),
            (PlanKind::Rehearsal, StepId::CutOver) => self.finish_rehearsal(),
            (PlanKind::Fixup, StepId::Plan) => self.plan_fixup().map_err(as_refusal),
            (PlanKind::Restore, StepId::Plan) => self.plan_restore().map_err(as_refusal),
            (PlanKind::Bootstrap, StepId::Plan) => self.plan_bootstrap().map_err(as_refusal),
            (_, StepId::ConnectedUsers) => self.block_and_list(),
            (PlanKind::Restore, StepId::DiskSpace) => self.restore_disk_space(),
            (_, StepId::DiskSpace) => self.disk_space(),
            (_, StepId::Fingerprint) => self.source_fingerprint(),
            (_, StepId::Clone) => self.clone_source(),
            (PlanKind::Upgrade | PlanKind::Rehearsal, StepId::Backup) => self.start_backup(),
            (_, StepId::Backup) => self.backup(),
            (_, StepId::Banner) => self.set_banner(),
            (_, StepId::CloneUpgrade) => self.upgrade_clone(),
            (PlanKind::Fixup, StepId::SanityChecks) => self.fixup_checks(),
            (_, StepId::SanityChecks) => self.sanity_checks(),
            (PlanKind::Fixup, StepId::CutOver) => self.fixup_finish(),
            (_, StepId::CutOver) => self.cut_over(),
            (_, StepId::ApplyFixups) => self.apply_fixups(),
            (_, StepId::Restore) => self.restore(),
            (_, StepId::Bootstrap) => self.bootstrap(),
            (_, StepId::Confirmations) => Ok((
                StepStatus::Done,
                StepOutput::Nothing {
                    note: String::new(),
                },
            )),
        }
    }

    /// The operator accepted what a step found: record it and finish the step as a warning.
    fn accept(&mut self, step: StepId) -> StepResult {
        let detail = match step {
            StepId::Fingerprint => {
                self.fingerprint_overridden = true;
                "the operator proceeded despite the fingerprint mismatch"
            }
            StepId::DiskSpace => {
                "the operator confirmed there is enough space where it could not be measured"
            }
            _ => "accepted by the operator",
        };
        log(&mut self.sink, Level::Warning, detail);
        self.journal_entry(Entry::Step {
            step: step.key().into(),
            state: "accepted".into(),
            detail: Some(detail.into()),
        });
        let output = self.last_output(step).unwrap_or(StepOutput::Nothing {
            note: detail.into(),
        });
        Ok((StepStatus::Warning, output))
    }

    fn last_output(&self, step: StepId) -> Option<StepOutput> {
        match step {
            StepId::Fingerprint => self.fingerprint.as_ref().map(|fp| StepOutput::Fingerprint {
                hash: fp.hash.clone(),
                matches: false,
                reference: None,
                diff: "accepted".into(),
            }),
            _ => None,
        }
    }

    /// The fault point at the end of a step (tests only). The cut-over has its own, before it
    /// declares itself done.
    pub fn fault_at(&self, step: StepId) -> Result<(), StepError> {
        if step == StepId::CutOver {
            return Ok(());
        }
        faults::at(step, self.spec.fault.as_deref()).map_err(StepError::from)
    }

    // --- helpers shared by the steps ---

    pub fn bundle(&self) -> Result<&Bundle, String> {
        self.spec
            .bundle
            .as_ref()
            .ok_or_else(|| "this run needs a bundle".to_owned())
    }

    pub fn source(&self) -> Result<String, String> {
        self.source
            .clone()
            .ok_or_else(|| "the plan step has not run".to_owned())
    }

    pub fn maintenance(&self) -> Result<Client, String> {
        crate::db::maintenance(&self.spec.server).map_err(|e| e.to_string())
    }

    pub fn session(&self, db: &str) -> Result<Session, String> {
        let settings = self
            .spec
            .bundle
            .as_ref()
            .map(|b| b.session.clone())
            .unwrap_or_default();
        Session::open(&self.spec.server.with_dbname(db), &settings).map_err(|e| e.to_string())
    }

    /// Runs `f` with an engine context over this run's bundle and event sink.
    pub fn with_ctx<T>(
        &mut self,
        f: impl FnOnce(&mut Context<'_>, &Cancel) -> T,
    ) -> Result<T, String> {
        let bundle = self.spec.bundle.as_ref().ok_or("this run needs a bundle")?;
        let mut ctx = Context {
            bundle,
            server: &self.spec.server,
            overrides: &self.spec.overrides,
            obs: &mut self.sink,
        };
        Ok(f(&mut ctx, &self.cancel))
    }

    /// Writes a change to the journal before it is made. Without a journal entry, no change.
    pub fn journal_change(&mut self, change: Change) -> Result<u32, String> {
        let journal = self
            .journal
            .as_mut()
            .ok_or("no journal: the plan step has not run")?;
        journal.change(change).map_err(|e| {
            format!(
                "cannot write the journal {}: {e}; nothing was changed",
                journal.path().display()
            )
        })
    }

    /// Records in the journal that change `id` was made (`changes[].confirmed` in the report).
    pub fn journal_confirm(&mut self, id: u32) {
        self.journal_entry(Entry::Confirmed { id });
    }

    /// Confirms the journal's `BackupWriting` changes once the backup is complete and verified.
    fn confirm_backup_written(&mut self) {
        let ids: Vec<u32> = self
            .journal
            .as_ref()
            .and_then(|j| crate::journal::read_run(j.path()).ok())
            .map(|r| {
                r.entries
                    .iter()
                    .filter_map(|(_, e)| match e {
                        Entry::Change {
                            id,
                            change: Change::BackupWriting { .. },
                        } => Some(*id),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        for id in ids {
            self.journal_confirm(id);
        }
    }

    pub fn journal_entry(&mut self, entry: Entry) {
        if let Some(j) = self.journal.as_mut()
            && let Err(e) = j.append(entry)
        {
            log(
                &mut self.sink,
                Level::Warning,
                format!("cannot write the journal {}: {e}", j.path().display()),
            );
        }
    }

    /// Journals the oid of a database the run has just created, so that an undo drops that
    /// database and never another that took its name since.
    pub fn journal_created(&mut self, maint: &mut Client, name: &str) {
        let oid = maint
            .query_opt(
                "SELECT oid FROM pg_catalog.pg_database WHERE datname = $1",
                &[&name],
            )
            .ok()
            .flatten()
            .map(|r| r.get::<_, u32>(0));
        if let Some(oid) = oid {
            self.journal_entry(Entry::Created {
                name: name.to_owned(),
                oid,
            });
        }
    }

    /// Takes the run lock and opens the journal and log file: from here on, changes are recorded.
    pub fn begin(
        &mut self,
        source: &str,
        from: Option<String>,
        to: Option<String>,
    ) -> Result<(), String> {
        let mut info = RunInfo::new(self.run_kind(), self.spec.server.host_display(), source);
        // Absolute: `pgstep recover` may run from another directory.
        info.bundle = self
            .spec
            .bundle
            .as_ref()
            .map(|b| absolute(&b.root).display().to_string());
        info.from = from;
        info.to = to;
        let dir = self.spec.data_dir.clone();
        // What the run writes there (journal, log, report, backups) may hold patient data.
        crate::paths::private_dir(&dir).map_err(|e| {
            format!(
                "cannot create pgstep's data directory {}: {e}",
                dir.display()
            )
        })?;
        let lock = crate::lock::acquire_in(&dir.join("locks"), &self.spec.server, source, &info)
            .map_err(|e| e.to_string())?;
        for w in lock.warnings() {
            log(&mut self.sink, Level::Warning, w.clone());
        }
        let mut lock = lock;
        let mut journal = Journal::create_in(&dir.join("journal"), info.clone())
            .map_err(|e| format!("cannot create the run journal in {}: {e}", dir.display()))?;
        // Every session of the run carries the run's name, so that `pgstep recover` can find
        // and end the ones a killed run left working.
        let application_name =
            crate::recover::server_kept_application_name(&crate::lock::application_name(&info));
        self.spec.server.application_name = Some(application_name.clone());
        let (system_identifier, source_oid) =
            crate::recover::server_identity(lock.client(), source);
        let context = crate::journal::RunContext {
            system_identifier,
            source_oid,
            application_name: Some(application_name),
            banner: self
                .spec
                .bundle
                .as_ref()
                .and_then(|b| b.banner.as_ref())
                .map(crate::journal::BannerSql::from),
            bundle: info.bundle.clone(),
        };
        journal.append(Entry::Context(context)).map_err(|e| {
            format!(
                "cannot write the run journal {}: {e}",
                journal.path().display()
            )
        })?;
        if let Ok(runlog) = crate::journal::RunLog::create_in(&dir.join("logs"), &info.run_id) {
            self.sink.set_log(runlog);
        }
        log(
            &mut self.sink,
            Level::Info,
            format!("run {} — journal {}", info.run_id, journal.path().display()),
        );
        self.run_id = Some((info.run_id.clone(), journal.path().to_path_buf()));
        self.lock = Some(lock);
        self.journal = Some(journal);
        self.source = Some(source.to_owned());
        Ok(())
    }

    fn run_kind(&self) -> crate::journal::RunKind {
        use crate::journal::RunKind;
        match (self.spec.kind, self.spec.rehearsal) {
            (PlanKind::Rehearsal, _) | (_, true) => RunKind::Rehearsal,
            (PlanKind::Upgrade, _) => RunKind::Upgrade,
            (PlanKind::Fixup, _) => RunKind::Fixup,
            (PlanKind::Restore, _) => RunKind::Restore,
            (PlanKind::Bootstrap, _) => RunKind::Bootstrap,
        }
    }

    // --- steps shared by upgrade and fixup ---

    /// Blocks new connections (journalled first, so that a crash is recoverable), then lists who
    /// is still connected.
    fn block_and_list(&mut self) -> StepResult {
        let source = self.source()?;
        let mut maint = self.maintenance()?;
        let mut unblockable = Vec::new();
        if self.access.is_none() {
            let snapshot = access::snapshot(&mut maint, &source).map_err(|e| e.to_string())?;
            let value = serde_json::to_value(&snapshot).map_err(|e| e.to_string())?;
            let id = self.journal_change(Change::AccessBlocked {
                db: source.clone(),
                snapshot: value,
            })?;
            let (before, report) = access::block(&mut maint, &source, self.spec.server.user())
                .map_err(|e| e.to_string())?;
            self.journal_confirm(id);
            unblockable = report
                .can_still_connect
                .iter()
                .map(ToString::to_string)
                .collect();
            self.access = Some(before);
            log(
                &mut self.sink,
                Level::Info,
                format!(
                    "new connections to \"{source}\" are blocked for the downtime (except {})",
                    unblockable.join(", ")
                ),
            );
        }
        self.list_sessions(&mut maint, &source, unblockable)
    }

    fn list_sessions(
        &mut self,
        maint: &mut Client,
        db: &str,
        unblockable: Vec<String>,
    ) -> StepResult {
        // The block is made once; later listings (refresh, notify, terminate) still say who
        // can connect despite it.
        if !unblockable.is_empty() {
            self.unblockable = unblockable;
        }
        let unblockable = self.unblockable.clone();
        let sessions =
            other_sessions_settled(maint, db, SESSION_GRACE).map_err(|e| e.to_string())?;
        if sessions.is_empty() {
            log(
                &mut self.sink,
                Level::Info,
                format!("nobody else is connected to \"{db}\""),
            );
        }
        Ok((
            StepStatus::Done,
            StepOutput::Sessions {
                sessions,
                unblockable,
            },
        ))
    }

    fn notify_and_list(&mut self) -> StepResult {
        let source = self.source()?;
        let channels = self
            .bundle()
            .map(|b| b.notify_channels.clone())
            .unwrap_or_default();
        let mut maint = self.maintenance()?;
        if channels.is_empty() {
            log(
                &mut self.sink,
                Level::Warning,
                "the bundle names no NOTIFY channel: ask users to log off by other means",
            );
        } else {
            let mut session = self.session(&source)?;
            let payload = self.banner_text();
            access::notify(&mut session.client, &channels, &payload).map_err(|e| e.to_string())?;
            log(
                &mut self.sink,
                Level::Info,
                format!(
                    "asked the clients listening on {} to log off",
                    channels.join(", ")
                ),
            );
        }
        self.list_sessions(&mut maint, &source, Vec::new())
    }

    fn terminate_and_list(&mut self, pids: &[i32]) -> StepResult {
        let source = self.source()?;
        let mut maint = self.maintenance()?;
        let ended = access::terminate(&mut maint, &source, pids).map_err(|e| e.to_string())?;
        for (pid, ok) in ended {
            log(
                &mut self.sink,
                if ok { Level::Info } else { Level::Warning },
                format!(
                    "session {pid}: {}",
                    if ok {
                        "terminated"
                    } else {
                        "could not be terminated (already gone?)"
                    }
                ),
            );
        }
        self.list_sessions(&mut maint, &source, Vec::new())
    }

    pub fn banner_text(&self) -> String {
        let app = self
            .spec
            .bundle
            .as_ref()
            .map_or("the application", |b| b.name.as_str());
        match (self.current, self.upgrade.as_ref()) {
            (Some(from), Some(plan)) => banner::in_progress_message(app, &from, &plan.to),
            (Some(from), None) => banner::in_progress_message(app, &from, &from),
            _ => format!("{app}: maintenance in progress, please log off"),
        }
    }

    fn disk_space(&mut self) -> StepResult {
        let source = self.source()?;
        let mut session = self.session(&source)?;
        let backup_dir = self.spec.backup.dir().map(std::path::Path::to_path_buf);
        let local = is_local(&self.spec.server);
        let clone_needed = self.spec.kind == PlanKind::Upgrade;
        let report =
            crate::diskspace::check(&mut session.client, local, &source, backup_dir.as_deref())
                .map_err(|e| e.to_string())?;
        let lines: Vec<SpaceLine> = report
            .items
            .iter()
            .filter(|i| clone_needed || !i.what.starts_with("clone"))
            .map(|i| SpaceLine {
                what: i.describe(),
                required: i.required,
                available: i.available,
            })
            .collect();
        if let Some(short) = lines.iter().find(|l| l.ok() == Some(false)) {
            return Err(refused(format!(
                "not enough disk space: {} — free space there, or choose another backup directory with --backup-dir",
                short.what
            )));
        }
        Ok((StepStatus::Done, StepOutput::Disk(lines)))
    }

    fn source_fingerprint(&mut self) -> StepResult {
        let source = self.source()?;
        let current = self.current.ok_or("the plan step has not run")?;
        let bundle = self.bundle()?;
        let schemas = bundle.schemas.clone();
        let reference = bundle
            .reference_for(current)
            .map(|(v, r)| (v, r.text.clone(), r.hash.clone()));
        let mut session = self.session(&source)?;
        let fp = fingerprint::compute(&mut session.client, &schemas)
            .map_err(|e| crate::db::describe(&e))?;
        let Some((version, text, hash)) = reference else {
            return Err(refused(format!(
                "the bundle has no reference fingerprint for version {current}"
            )));
        };
        let matches = fp.hash == hash;
        let diff = if matches {
            String::new()
        } else {
            fingerprint::diff(&text, &fp.text).to_string()
        };
        if !matches && self.spec.kind == PlanKind::Rehearsal {
            // A rehearsal notes the drift (the real run would stop here) and goes on.
            self.problems.push(format!("the schema differs from the reference for version {version}; the real run would stop at the fingerprint step:\n{diff}"));
            log(
                &mut self.sink,
                Level::Warning,
                "rehearsal: the schema differs from the reference; the real run would stop here",
            );
            let output = StepOutput::Fingerprint {
                hash: fp.hash.clone(),
                matches,
                reference: Some(version),
                diff,
            };
            self.fingerprint = Some(fp);
            return Ok((StepStatus::Warning, output));
        }
        self.sink_check(
            "source fingerprint",
            matches,
            if matches {
                format!("{} matches version {version}", fp.display_hash())
            } else {
                format!(
                    "{} differs from the reference for version {version}:\n{diff}",
                    fp.display_hash()
                )
            },
        );
        let output = StepOutput::Fingerprint {
            hash: fp.hash.clone(),
            matches,
            reference: Some(version),
            diff,
        };
        self.fingerprint = Some(fp);
        Ok((StepStatus::Done, output))
    }

    pub fn sink_check(&mut self, name: &str, ok: bool, detail: String) {
        use crate::events::Observer;
        self.sink.event(crate::events::Event::Check {
            name: name.into(),
            ok,
            detail,
        });
    }

    /// What the backup needs, from what the plan and fingerprint steps found.
    pub fn backup_job(&self) -> Result<BackupJob, String> {
        Ok(BackupJob {
            server: self.spec.server.clone(),
            db: self.source()?,
            plan: self.spec.backup.clone(),
            server_version_num: self.server_version_num,
            version: self.current.ok_or("the plan step has not run")?,
            fingerprint: self
                .fingerprint
                .as_ref()
                .map(|f| f.hash.clone())
                .unwrap_or_default(),
            schemas: self.bundle().map(|b| b.schemas.clone()).unwrap_or_default(),
            snapshot: None,
            alongside: false,
            fault: self.spec.fault.clone(),
            path: None,
        })
    }

    /// The backup job with its name chosen now and written to the journal before pg_dump
    /// starts: a run killed while pg_dump writes leaves a partial backup that `pgstep recover`
    /// removes (and never anything under a backup's final name).
    fn journalled_backup_job(&mut self) -> Result<BackupJob, String> {
        let mut job = self.backup_job()?;
        if let BackupPlan::Into { dir, format } = &job.plan {
            let path = crate::backup::new_backup_path(dir, &job.db, job.version, *format);
            self.journal_change(Change::BackupWriting {
                path: absolute(&path).display().to_string(),
            })?;
            job.path = Some(path);
        }
        Ok(job)
    }

    /// Puts the format chosen for this database on this machine (`backup::choice`) in place of
    /// `BackupPlan::Auto`, and says which and why, for the plan. None: the operator gave the
    /// format, or no backup is taken. `alongside`: the backup runs beside the upgrade.
    pub fn choose_backup_format(
        &mut self,
        source: &mut Client,
        alongside: bool,
        rehearsed: Option<&crate::rehearsal::Rehearsal>,
    ) -> Result<Option<crate::checklist::BackupChoice>, String> {
        let BackupPlan::Auto { dir, max_jobs } = &self.spec.backup else {
            return Ok(None);
        };
        let facts = choice::Facts {
            cores: std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
            server_local: is_local(&self.spec.server),
            alongside,
            table_sizes: crate::backup::dumped_table_sizes(source).map_err(|e| e.to_string())?,
            max_jobs: *max_jobs,
            rehearsed: rehearsed.and_then(|r| r.dump.clone()),
        };
        let chosen = choice::choose(&facts);
        let format = chosen.format.describe();
        log(
            &mut self.sink,
            Level::Info,
            format!("backup: {format} — {}", chosen.why),
        );
        self.spec.backup = BackupPlan::Into {
            dir: dir.clone(),
            format: chosen.format,
        };
        Ok(Some(crate::checklist::BackupChoice {
            format,
            why: chosen.why,
        }))
    }

    /// The backup, taken now (a fixup changes the source only after it).
    fn backup(&mut self) -> StepResult {
        let output = self.backup_now()?;
        Ok((backup_status(&output), StepOutput::Backup(output)))
    }

    /// The backup taken now, in the foreground, and how long it took.
    pub(super) fn backup_now(&mut self) -> Result<BackupOutput, String> {
        let started = Instant::now();
        let output = self
            .journalled_backup_job()?
            .run(&self.cancel, &mut self.sink)?;
        self.backup_took = Some((started.elapsed(), false));
        self.backup = Some(output.clone());
        if matches!(output, BackupOutput::Taken { .. }) {
            self.confirm_backup_written();
        }
        Ok(output)
    }

    /// Starts pg_dump of the frozen source on its own thread, reading a snapshot exported
    /// now, before the banner is set; the step goes on in the background.
    fn start_backup(&mut self) -> StepResult {
        if let Some(taken) = self.backup.clone() {
            // A rehearsal with users connected took it already, to restore its copy from.
            return Ok((backup_status(&taken), StepOutput::Backup(taken)));
        }
        let mut job = self.journalled_backup_job()?;
        let mut holder = self
            .spec
            .server
            .with_dbname(&job.db)
            .connect(None)
            .map_err(|e| e.to_string())?;
        // The snapshot must outlive a long upgrade: a server-wide idle-in-transaction timeout
        // would end it under the comparisons that read it.
        let snapshot: String = holder
            .batch_execute(
                "SET idle_in_transaction_session_timeout = 0; \
                 BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            )
            .and_then(|()| holder.query_one("SELECT pg_catalog.pg_export_snapshot()", &[]))
            .map(|row| row.get(0))
            .map_err(|e| {
                format!(
                    "cannot export a snapshot of \"{}\" for pg_dump: {}",
                    job.db,
                    crate::db::describe(&e)
                )
            })?;
        job.snapshot = Some(snapshot);
        job.alongside = true;
        let note = match &job.plan {
            BackupPlan::Into { .. } | BackupPlan::Auto { .. } => format!(
                "pg_dump of \"{}\" goes on in the background while the clone is upgraded and checked; the cut-over waits until it is verified",
                job.db
            ),
            BackupPlan::Skip { .. } => format!(
                "reading \"{}\" once goes on in the background while the clone is upgraded and checked",
                job.db
            ),
        };
        let sink = self.sink.background();
        let old_queries = self
            .plausibility_pairs()
            .into_iter()
            .map(|p| p.old)
            .collect();
        self.background = Some(Background::start(job, sink, Some(holder), old_queries));
        log(&mut self.sink, Level::Info, note.clone());
        Ok((StepStatus::Running, StepOutput::Nothing { note }))
    }

    /// Waits for the backup started in the background, and reports it.
    fn await_backup(&mut self) -> StepResult {
        let Some(bg) = self.background.take() else {
            let taken = self.backup.clone().ok_or("no backup was started")?;
            return Ok((backup_status(&taken), StepOutput::Backup(taken)));
        };
        log(
            &mut self.sink,
            Level::Info,
            "waiting for the backup to be verified before the cut-over",
        );
        let waited = Instant::now();
        let (output, took) = bg.wait(&self.cancel)?;
        log(
            &mut self.sink,
            Level::Info,
            format!(
                "the backup took {:.1} s, alongside the upgrade; the cut-over waited {:.1} s for it",
                took.as_secs_f64(),
                waited.elapsed().as_secs_f64()
            ),
        );
        self.backup_took = Some((took, true));
        self.backup = Some(output.clone());
        if matches!(output, BackupOutput::Taken { .. }) {
            self.confirm_backup_written();
        }
        Ok((backup_status(&output), StepOutput::Backup(output)))
    }

    /// Whether the backup in the background has failed; if so, it is reported as the failed
    /// step (instead of the job asked for, which does not begin).
    fn background_failed(&mut self) -> bool {
        let Some(error) = self.background.as_mut().and_then(Background::failure) else {
            return false;
        };
        self.background = None;
        self.journal_entry(Entry::Step {
            step: StepId::Backup.key().into(),
            state: "failed".into(),
            detail: Some(error.clone()),
        });
        self.failed = Some(format!("at step {}: {error}", StepId::Backup.title()));
        self.sink.send(ExecEvent::StepFailed {
            step: StepId::Backup,
            error,
            elapsed: Duration::ZERO,
            refused: false,
        });
        true
    }

    fn set_banner(&mut self) -> StepResult {
        let source = self.source()?;
        let Some(b) = self.bundle()?.banner.clone() else {
            let note = "the bundle defines no logon banner: tell users by other means (mail, phone, a note at the front desk)";
            log(&mut self.sink, Level::Warning, note);
            return Ok((
                StepStatus::Skipped,
                StepOutput::Nothing { note: note.into() },
            ));
        };
        let message = self.banner_text();
        let mut session = self.session(&source)?;
        let previous = banner::get(&mut session.client, &b).map_err(|e| e.to_string())?;
        let id = self.journal_change(Change::BannerSet {
            db: source.clone(),
            previous: previous.clone(),
        })?;
        banner::set(&mut session.client, &b, &message).map_err(|e| e.to_string())?;
        self.journal_confirm(id);
        self.banner_previous = Some(previous);
        log(
            &mut self.sink,
            Level::Info,
            format!("logon banner of \"{source}\": {message}"),
        );
        Ok((
            StepStatus::Done,
            StepOutput::Banner {
                message: Some(message),
            },
        ))
    }

    /// Undoes what the journal says is pending, reports it, and ends the run.
    fn failure_path(&mut self) {
        // First the backup, if it still runs: it reads the source the undo gives back.
        let mut stopped_backup = false;
        let mut backup_failed = None;
        match self.background.take().map(Background::end) {
            Some(Ended::Finished(Ok((output, took)))) => self.keep_background_backup(output, took),
            Some(Ended::Finished(Err(e))) => backup_failed = Some(e),
            Some(Ended::Stopped) => stopped_backup = true,
            None => {}
        }
        let mut report = match self.journal.as_mut() {
            None => undo::UndoReport::default(),
            Some(journal) => {
                let banner = self.spec.bundle.as_ref().and_then(|b| b.banner.clone());
                undo::undo_run(
                    &self.spec.server,
                    banner.as_ref(),
                    journal,
                    self.spec.keep_failed,
                    &mut self.sink,
                )
            }
        };
        // Finished only when nothing is left: otherwise `pgstep status` must go on listing it.
        if report.pending.is_empty() {
            self.journal_entry(Entry::Finished {
                outcome: if self.cancel.requested() {
                    "cancelled".into()
                } else {
                    "failed".into()
                },
                detail: None,
            });
        }
        if stopped_backup {
            report.undone.insert(
                0,
                "stopped the backup that was being taken (its partial output removed); the source was never changed".into(),
            );
        }
        if let Some(e) = backup_failed {
            report.advice.push(format!(
                "The backup taken alongside had failed as well: {e}"
            ));
        }
        if self.spec.kind == PlanKind::Rehearsal {
            let why = self
                .failed
                .clone()
                .unwrap_or_else(|| "cancelled by the operator".into());
            if let Some(md) = self.record_stopped_rehearsal(&why) {
                report
                    .advice
                    .push(format!("The rehearsal's record: {}", md.display()));
            }
        }
        self.lock = None;
        let source = self.source_verdict();
        self.sink.send(ExecEvent::FailurePathDone {
            undone: report.undone,
            advice: report.advice,
            changed_anything: report.changed_anything,
            source,
        });
    }

    /// A backup that finished alongside before the run stopped: a verified copy of the source
    /// as users left it. It is kept, journalled and reported like one the cut-over waited for.
    fn keep_background_backup(&mut self, output: BackupOutput, took: Duration) {
        log(
            &mut self.sink,
            Level::Info,
            format!(
                "the backup taken alongside had finished ({:.1} s) and is kept",
                took.as_secs_f64()
            ),
        );
        self.journal_entry(Entry::Step {
            step: StepId::Backup.key().into(),
            state: "done".into(),
            detail: None,
        });
        self.backup_took = Some((took, true));
        self.backup = Some(output.clone());
        if matches!(output, BackupOutput::Taken { .. }) {
            self.confirm_backup_written();
        }
        self.sink.send(ExecEvent::StepDone {
            step: StepId::Backup,
            status: backup_status(&output),
            output: StepOutput::Backup(output),
            elapsed: Duration::ZERO,
        });
    }

    pub fn engine_error(e: EngineError) -> String {
        e.to_string()
    }

    pub fn db_error(e: DbError) -> String {
        e.to_string()
    }
}

/// `path` made absolute against the current directory (as it is, when that fails).
fn absolute(path: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Whether the server runs on this machine: a Unix socket or a loopback address.
fn backup_status(output: &BackupOutput) -> StepStatus {
    match output {
        BackupOutput::Skipped { .. } => StepStatus::Warning,
        BackupOutput::Taken { .. } => StepStatus::Done,
    }
}

pub fn is_local(server: &crate::conn::ConnSettings) -> bool {
    use crate::conn::HostAddr;
    server.targets().iter().all(|t| match &t.host {
        HostAddr::Socket(_) => true,
        HostAddr::Tcp(h) => matches!(h.as_str(), "localhost" | "127.0.0.1" | "::1"),
    })
}

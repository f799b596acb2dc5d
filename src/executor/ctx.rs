//! What every step uses to talk to the server, the journal and the screen.

use postgres::Client;

use super::Sink;
use super::error::StepError;
use super::spec::RunSpec;
use crate::bundle::Bundle;
use crate::cancel::Cancel;
use crate::checklist::{PlanKind, StepId};
use crate::db::Session;
use crate::engine::Context;
use crate::engine::plan::Mode;
use crate::events::{Level, log};
use crate::journal::{Change, Entry, Journal, RunInfo};
use crate::lock::RunLock;

/// The run's spec, its event sink, the operator's cancellation, and the journal and lock the
/// plan step opens.
pub(crate) struct Ctx {
    pub spec: RunSpec,
    pub sink: Sink,
    pub cancel: Cancel,
    pub journal: Option<Journal>,
    pub lock: Option<RunLock>,
    /// The run's id and journal, once the plan step began the run.
    pub run_id: Option<(String, std::path::PathBuf)>,
    pub server_version_num: u32,
}

impl Ctx {
    pub fn new(spec: RunSpec, sink: Sink, cancel: Cancel) -> Self {
        Self {
            spec,
            sink,
            cancel,
            journal: None,
            lock: None,
            run_id: None,
            server_version_num: 0,
        }
    }

    pub fn bundle(&self) -> Result<&Bundle, StepError> {
        self.spec
            .bundle
            .as_ref()
            .ok_or_else(|| StepError::failed("this run needs a bundle"))
    }

    pub fn maintenance(&self) -> Result<Client, StepError> {
        crate::db::maintenance(&self.spec.server).map_err(StepError::from)
    }

    pub fn session(&self, db: &str) -> Result<Session, StepError> {
        let settings = self
            .spec
            .bundle
            .as_ref()
            .map(|b| b.session.clone())
            .unwrap_or_default();
        Session::open(&self.spec.server.with_dbname(db), &settings).map_err(StepError::from)
    }

    /// Runs `f` with an engine context over this run's bundle and event sink.
    pub fn with_engine<T>(
        &mut self,
        f: impl FnOnce(&mut Context<'_>, &Cancel) -> T,
    ) -> Result<T, StepError> {
        let bundle = self.spec.bundle.as_ref().ok_or("this run needs a bundle")?;
        let mut ctx = Context {
            bundle,
            server: &self.spec.server,
            overrides: &self.spec.overrides,
            obs: &mut self.sink,
        };
        Ok(f(&mut ctx, &self.cancel))
    }

    pub fn log(&mut self, level: Level, text: impl Into<String>) {
        log(&mut self.sink, level, text);
    }

    pub fn check(&mut self, name: &str, ok: bool, detail: String) {
        use crate::events::Observer;
        self.sink.event(crate::events::Event::Check {
            name: name.into(),
            ok,
            detail,
        });
    }

    /// The fault point at the end of a step (tests only). The cut-over has its own, before it
    /// declares itself done.
    pub fn fault_at(&self, step: StepId) -> Result<(), StepError> {
        if step == StepId::CutOver {
            return Ok(());
        }
        crate::faults::at(step, self.spec.fault.as_deref()).map_err(StepError::from)
    }

    /// A named fault point inside a step (tests only).
    pub fn fault_point(&self, point: &str, title: &str) -> Result<(), StepError> {
        crate::faults::at_point(point, title, self.spec.fault.as_deref()).map_err(StepError::from)
    }

    /// Writes a change to the journal before it is made. Without a journal entry, no change.
    pub fn journal_change(&mut self, change: Change) -> Result<u32, StepError> {
        let journal = self
            .journal
            .as_mut()
            .ok_or("no journal: the plan step has not run")?;
        journal.change(change).map_err(|e| {
            StepError::failed(format!(
                "cannot write the journal {}: {e}; nothing was changed",
                journal.path().display()
            ))
        })
    }

    /// Records in the journal that change `id` was made (`changes[].confirmed` in the report).
    pub fn journal_confirm(&mut self, id: u32) {
        self.journal_entry(Entry::Confirmed { id });
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

    /// A step's state in the journal ("started", "done", "failed", …).
    pub fn journal_step(&mut self, step: StepId, state: &str, detail: Option<String>) {
        self.journal_entry(Entry::Step {
            step: step.key().into(),
            state: state.into(),
            detail,
        });
    }

    /// The run ended well: journalled as finished, the lock released.
    pub fn finish(&mut self, detail: Option<String>) {
        self.journal_entry(Entry::Finished {
            outcome: "success".into(),
            detail,
        });
        self.lock = None;
    }

    /// Confirms the journal's `BackupWriting` changes once the backup is complete and verified.
    pub fn confirm_backup_written(&mut self) {
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

    /// This server's system identifier, when it can be read: the same for every name the
    /// cluster is reached by (`localhost`, `127.0.0.1`, its socket).
    pub fn system_identifier(&self) -> Option<String> {
        let mut maint = self.maintenance().ok()?;
        crate::recover::server_identity(&mut maint, "").0
    }

    /// Takes the run lock and opens the journal and log file: from here on, changes are recorded.
    pub fn begin(
        &mut self,
        mode: Mode,
        source: &str,
        from: Option<String>,
        to: Option<String>,
    ) -> Result<(), StepError> {
        let mut info = RunInfo::new(
            run_kind(self.spec.kind, mode),
            self.spec.server.host_display(),
            source,
        );
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
        let mut lock =
            crate::lock::acquire_in(&dir.join("locks"), &self.spec.server, source, &info)
                .map_err(|e| e.to_string())?;
        for w in lock.warnings() {
            log(&mut self.sink, Level::Warning, w.clone());
        }
        let mut journal = Journal::create_in(&dir.join("journal"), info.clone())
            .map_err(|e| format!("cannot create the run journal in {}: {e}", dir.display()))?;
        let context = self.run_context(&info, &mut lock, source);
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
        Ok(())
    }

    /// What `pgstep recover` needs to know of the server, beside the journal's changes. Every
    /// session of the run carries the run's name from here on, so that `pgstep recover` can
    /// find and end the ones a killed run left working.
    fn run_context(
        &mut self,
        info: &RunInfo,
        lock: &mut RunLock,
        source: &str,
    ) -> crate::journal::RunContext {
        let application_name =
            crate::recover::server_kept_application_name(&crate::lock::application_name(info));
        self.spec.server.application_name = Some(application_name.clone());
        let (system_identifier, source_oid) =
            crate::recover::server_identity(lock.client(), source);
        crate::journal::RunContext {
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
        }
    }
}

fn run_kind(kind: PlanKind, mode: Mode) -> crate::journal::RunKind {
    use crate::journal::RunKind;
    match (kind, mode) {
        (PlanKind::Rehearsal, _) | (_, Mode::Rehearsal) => RunKind::Rehearsal,
        (PlanKind::Upgrade, _) => RunKind::Upgrade,
        (PlanKind::Fixup, _) => RunKind::Fixup,
        (PlanKind::Restore, _) => RunKind::Restore,
        (PlanKind::Bootstrap, _) => RunKind::Bootstrap,
    }
}

/// `path` made absolute against the current directory (as it is, when that fails).
pub(super) fn absolute(path: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Whether the server runs on this machine: a Unix socket or a loopback address.
pub fn is_local(server: &crate::conn::ConnSettings) -> bool {
    use crate::conn::HostAddr;
    server.targets().iter().all(|t| match &t.host {
        HostAddr::Socket(_) => true,
        HostAddr::Tcp(h) => matches!(h.as_str(), "localhost" | "127.0.0.1" | "::1"),
    })
}

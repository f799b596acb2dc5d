//! The steps of the other plans: fixups in place, restore of a backup, bootstrap of a new
//! database. They share the upgrade's steps where the checklist is the same (users, disk,
//! fingerprint, backup, banner).

use super::run::{Run, StepError, StepResult, refused};
use super::upgrade_steps::finish_checks;
use crate::checklist::{PlanSummary, StepId, StepOutput, StepStatus};
use crate::db::bookkeeping::{record_fixup, recorded_fixup};
use crate::db::checks::{self, CheckResult};
use crate::db::clone::database_exists;
use crate::db::runner::run_script_cancellable;
use crate::db::version::read_version;
use crate::db::{access, banner};
use crate::engine::{check_server_version, find_source};
use crate::events::{Level, log};
use crate::fingerprint;
use crate::journal::{Change, Entry};

impl Run {
    pub(super) fn plan_fixup(&mut self) -> StepResult {
        let bundle = self.bundle()?.clone();
        let mut maint = self.maintenance()?;
        self.server_version_num =
            check_server_version(&mut maint, &bundle).map_err(Run::engine_error)?;
        let db = match &self.spec.database {
            Some(d) => d.clone(),
            None => find_source(&mut maint, &bundle).map_err(Run::engine_error)?,
        };
        if !database_exists(&mut maint, &db).map_err(Run::db_error)? {
            return Err(refused(format!(
                "database \"{db}\" does not exist on {}",
                self.spec.server.host_display()
            )));
        }
        let mut session = self.session(&db)?;
        // Before anything is changed: a version query that is refused refuses the plan.
        let current = read_version(&mut session.client, &bundle.version_query, &db)
            .map_err(super::upgrade_steps::refusal)?;
        if let Some(to) = self.spec.to
            && (to.major != current.major || to < current)
        {
            return Err(refused(format!(
                "--to {to}: \"{db}\" is at {current}; fixups go forward within major version {} (major versions come by pgstep upgrade)",
                current.major
            )));
        }
        let fixups: Vec<_> = bundle
            .fixups_of(current.major)
            .filter(|f| self.spec.to.is_none_or(|t| f.version <= t))
            .cloned()
            .collect();
        if fixups.is_empty() {
            return Err(refused(format!(
                "bundle \"{}\" has no fixups for version {}: nothing to do",
                bundle.name, current.major
            )));
        }
        let ph = self.with_ctx(|ctx, _| ctx.placeholders(&db).map_err(|e| e.to_string()))??;
        for f in &fixups {
            let scripts =
                self.with_ctx(|ctx, _| ctx.reload(&f.scripts, &ph).map_err(|e| e.to_string()))??;
            for script in scripts {
                let file = script.path.to_string_lossy().into_owned();
                let recorded = recorded_fixup(&mut session.client, &file, &f.version.to_string())
                    .map_err(Run::db_error)?;
                let done = recorded.as_deref() == Some(script.combined_sha256().as_str())
                    && current >= f.version;
                if done && !self.spec.reapply {
                    self.fixups_skipped.push(file);
                } else {
                    self.fixups.push((f.version, script));
                }
            }
        }
        let last = fixups.last().map_or(current, |f| f.version);
        // The fixup waits for its backup (it changes the database in place): nothing runs beside.
        let backup_line = if self.fixups.is_empty() {
            None
        } else {
            self.choose_backup_format(&mut session.client, false, None)?
        };
        drop(session);
        self.current = Some(current);
        self.source = Some(db.clone());
        let mut lines: Vec<String> = self
            .fixups
            .iter()
            .map(|(v, s)| format!("fixup {v}: {}", s.path.display()))
            .collect();
        if self.fixups.is_empty() {
            lines.push(format!("nothing to do: every fixup up to {last} is recorded with the same checksum (--reapply runs them again)"));
        } else {
            self.begin(&db, Some(current.to_string()), Some(last.to_string()))?;
        }
        let summary = PlanSummary {
            application: bundle.name.clone(),
            server: self.spec.server.host_display(),
            source_db: db.clone(),
            target_db: db,
            from: current,
            to: last,
            lines,
            run_id: None,
            journal: None,
            expected: Vec::new(),
            rehearsal: None,
            backup: backup_line,
        };
        Ok((StepStatus::Done, StepOutput::Plan(summary)))
    }

    /// Whether a fixup run found nothing to do (its later steps are then skipped).
    pub(super) fn fixup_has_nothing_to_do(&self, step: StepId) -> bool {
        step != StepId::Plan && self.source.is_some() && self.fixups.is_empty()
    }

    pub(super) fn apply_fixups(&mut self) -> StepResult {
        let db = self.source()?;
        let pending = self.fixups.clone();
        let query = self.bundle()?.version_query.clone();
        let mut applied = Vec::new();
        for (i, (version, script)) in pending.iter().enumerate() {
            let id = self.journal_change(Change::FixupStarted {
                db: db.clone(),
                version: version.to_string(),
            })?;
            log(
                &mut self.sink,
                Level::Info,
                format!("fixup {version}: running {}", script.path.display()),
            );
            let mut session = self.session(&db)?;
            run_script_cancellable(&mut session, script, &mut self.sink, &self.cancel)
                .map_err(|e| e.to_string())?;
            let file = script.path.to_string_lossy().into_owned();
            record_fixup(
                &mut session.client,
                &file,
                &version.to_string(),
                &script.combined_sha256(),
            )
            .map_err(Run::db_error)?;
            self.journal_confirm(id);
            applied.push(file);
            let last_of_version = pending.get(i + 1).is_none_or(|(v, _)| v != version);
            if last_of_version {
                let found =
                    read_version(&mut session.client, &query, &db).map_err(Run::db_error)?;
                if found < *version {
                    return Err(StepError::from(format!(
                        "fixup {version} ran but the version marker says {found}: the fixup must move the marker; the bundle is faulty"
                    )));
                }
            }
        }
        let mut session = self.session(&db)?;
        let version = read_version(&mut session.client, &query, &db).map_err(Run::db_error)?;
        Ok((
            StepStatus::Done,
            StepOutput::Fixups {
                applied,
                skipped: self.fixups_skipped.clone(),
                version,
            },
        ))
    }

    pub(super) fn fixup_checks(&mut self) -> StepResult {
        let db = self.source()?;
        let bundle = self.bundle()?.clone();
        let mut session = self.session(&db)?;
        let now =
            read_version(&mut session.client, &bundle.version_query, &db).map_err(Run::db_error)?;
        let fp = fingerprint::compute(&mut session.client, &bundle.schemas)
            .map_err(|e| crate::db::describe(&e))?;
        let reference = bundle.reference_for(now);
        let fp_check = match reference {
            Some((v, r)) if r.hash == fp.hash => CheckResult {
                name: "fingerprint after the fixups".into(),
                ok: true,
                detail: format!("{} matches version {v}", fp.display_hash()),
                fingerprint: Some(fp.display_hash()),
            },
            Some((v, r)) => CheckResult {
                name: "fingerprint after the fixups".into(),
                ok: false,
                detail: format!(
                    "{} differs from the reference for version {v}:\n{}",
                    fp.display_hash(),
                    fingerprint::diff(&r.text, &fp.text)
                ),
                fingerprint: Some(fp.display_hash()),
            },
            None => CheckResult {
                name: "fingerprint after the fixups".into(),
                ok: false,
                detail: format!("no reference for version {now}"),
                fingerprint: None,
            },
        };
        let marker = checks::version_marker(&mut session.client, &bundle.version_query, now);
        let analyze = checks::analyze(&mut session.client);
        finish_checks(self, vec![fp_check, marker, analyze])
    }

    /// The fixups are in: banner reset, access restored exactly, run finished.
    pub(super) fn fixup_finish(&mut self) -> StepResult {
        let db = self.source()?;
        if let (Some(b), Some(previous)) =
            (self.bundle()?.banner.clone(), self.banner_previous.clone())
        {
            let mut session = self.session(&db)?;
            banner::restore(&mut session.client, &b, previous.as_deref()).map_err(Run::db_error)?;
        }
        if let Some(snapshot) = self.access.clone() {
            let mut maint = self.maintenance()?;
            let how = access::restore(&mut maint, &snapshot).map_err(Run::db_error)?;
            log(
                &mut self.sink,
                Level::Info,
                format!("connections to \"{db}\" are allowed again, {}", how.words()),
            );
        }
        self.journal_entry(Entry::Finished {
            outcome: "success".into(),
            detail: None,
        });
        self.lock = None;
        Ok((
            StepStatus::Done,
            StepOutput::Nothing {
                note: format!("banner reset and access restored on \"{db}\""),
            },
        ))
    }

    pub(super) fn plan_restore(&mut self) -> StepResult {
        let path = self
            .spec
            .restore_from
            .clone()
            .ok_or("name the backup to restore")?;
        let db = self
            .spec
            .database
            .clone()
            .ok_or("name the new database with --database")?;
        let meta = crate::backup::read_metadata(&path).map_err(|e| e.to_string())?;
        crate::backup::verify(&path, &meta).map_err(|e| e.to_string())?;
        let mut maint = self.maintenance()?;
        if database_exists(&mut maint, &db).map_err(Run::db_error)? {
            return Err(refused(format!(
                "database \"{db}\" already exists: pgstep restores into a new database and never overwrites one"
            )));
        }
        self.begin(&db, Some(meta.version.clone()), Some(meta.version.clone()))?;
        let version = meta
            .version
            .parse()
            .unwrap_or(crate::bundle::Version::new(0, 0));
        let summary = PlanSummary {
            application: self
                .spec
                .bundle
                .as_ref()
                .map_or_else(|| meta.database.clone(), |b| b.name.clone()),
            server: self.spec.server.host_display(),
            source_db: format!(
                "{} (backup of \"{}\", {})",
                path.display(),
                meta.database,
                meta.created_at
            ),
            target_db: db,
            from: version,
            to: version,
            lines: vec![format!(
                "restore {} bytes (sha256 {}) with {} job(s)",
                meta.size, meta.sha256, self.spec.jobs
            )],
            run_id: None,
            journal: None,
            expected: Vec::new(),
            rehearsal: None,
            backup: None,
        };
        Ok((StepStatus::Done, StepOutput::Plan(summary)))
    }

    pub(super) fn restore_disk_space(&mut self) -> StepResult {
        let note = "the restored size is known only after the restore; pg_restore stops with a clear error if the disk fills, and the partial database is dropped";
        Ok((
            StepStatus::Skipped,
            StepOutput::Nothing { note: note.into() },
        ))
    }

    pub(super) fn restore(&mut self) -> StepResult {
        let path = self
            .spec
            .restore_from
            .clone()
            .ok_or("name the backup to restore")?;
        let db = self.source()?;
        let id = self.journal_change(Change::CloneCreating {
            name: db.clone(),
            source: path.display().to_string(),
        })?;
        let out = crate::engine::restore::restore(
            &self.spec.server,
            &path,
            &db,
            self.spec.jobs,
            &self.cancel,
            &mut self.sink,
        )
        .map_err(Run::engine_error)?;
        self.journal_confirm(id);
        self.journal_entry(Entry::Finished {
            outcome: "success".into(),
            detail: None,
        });
        self.lock = None;
        Ok((
            StepStatus::Done,
            StepOutput::Restored {
                db,
                fingerprint_matches: out.fingerprint_matches,
            },
        ))
    }

    pub(super) fn plan_bootstrap(&mut self) -> StepResult {
        let bundle = self.bundle()?.clone();
        let db = self
            .spec
            .database
            .clone()
            .ok_or("name the new database with --database")?;
        let mut maint = self.maintenance()?;
        check_server_version(&mut maint, &bundle).map_err(Run::engine_error)?;
        if database_exists(&mut maint, &db).map_err(Run::db_error)? {
            return Err(refused(format!(
                "database \"{db}\" already exists: pgstep bootstrap creates a new database and never touches an existing one"
            )));
        }
        let to = self.spec.to.unwrap_or_else(|| bundle.latest_major());
        self.begin(&db, None, Some(to.to_string()))?;
        let summary = PlanSummary {
            application: bundle.name.clone(),
            server: self.spec.server.host_display(),
            source_db: String::new(),
            target_db: db,
            from: bundle.baseline.version,
            to,
            lines: vec![format!(
                "baseline {}, then {} step(s)",
                bundle.baseline.version,
                bundle.steps.iter().filter(|s| s.to <= to).count()
            )],
            run_id: None,
            journal: None,
            expected: Vec::new(),
            rehearsal: None,
            backup: None,
        };
        Ok((StepStatus::Done, StepOutput::Plan(summary)))
    }

    pub(super) fn bootstrap(&mut self) -> StepResult {
        let db = self.source()?;
        let id = self.journal_change(Change::CloneCreating {
            name: db.clone(),
            source: "bootstrap".into(),
        })?;
        let (to, keep) = (self.spec.to, self.spec.keep_failed);
        let out = self
            .with_ctx(|ctx, _| crate::engine::bootstrap::bootstrap(ctx, &db, to, keep))?
            .map_err(Run::engine_error)?;
        self.journal_confirm(id);
        self.journal_entry(Entry::Finished {
            outcome: "success".into(),
            detail: None,
        });
        self.lock = None;
        Ok((
            StepStatus::Done,
            StepOutput::Bootstrapped {
                db,
                version: out.version,
            },
        ))
    }
}

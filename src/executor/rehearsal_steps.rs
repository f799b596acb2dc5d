//! The steps where a rehearsal differs from the real run: nobody is blocked or told, the copy is
//! made even while users work (from the backup, when they are connected), and at the end the copy
//! is dropped and the rehearsal's record written instead of cutting over.

use super::run::{Run, StepResult};
use super::spec::BackupPlan;
use crate::checklist::StepId;
use crate::checklist::{BackupOutput, StepOutput, StepStatus};
use crate::db::clone::{TableFile, drop_database, table_files};
use crate::db::sessions::other_sessions;
use crate::engine::plan::UpgradePlan;
use crate::events::{Level, log};
use crate::journal::{Change, Entry};
use crate::rehearsal::{DumpTime, Rehearsal, Rewritten, StepTime};

impl Run {
    /// Lists who is connected, as information: a rehearsal blocks nobody.
    pub(super) fn rehearsal_sessions(&mut self) -> StepResult {
        let source = self.source()?;
        let mut maint = self.maintenance()?;
        let sessions = other_sessions(&mut maint, &source).map_err(|e| e.to_string())?;
        let note = if sessions.is_empty() {
            format!("nobody is connected to \"{source}\"")
        } else {
            format!(
                "{} session(s) connected to \"{source}\"; a rehearsal blocks nobody (the real run will ask them to leave)",
                sessions.len()
            )
        };
        log(&mut self.sink, Level::Info, note.clone());
        Ok((StepStatus::Done, StepOutput::Nothing { note }))
    }

    /// With users connected, `CREATE DATABASE … TEMPLATE` is impossible: the copy must be
    /// restored from a backup.
    pub(super) fn rehearsal_must_restore(&mut self, source: &str) -> Result<bool, String> {
        let mut maint = self.maintenance()?;
        Ok(!other_sessions(&mut maint, source)
            .map_err(|e| e.to_string())?
            .is_empty())
    }

    /// The rehearsal's copy, restored from a backup taken now (in the foreground: the copy
    /// needs it; the backup step then reports it).
    pub(super) fn rehearsal_copy_from_backup(&mut self, source: &str, work: &str) -> StepResult {
        log(
            &mut self.sink,
            Level::Info,
            format!(
                "users are connected to \"{source}\": backing it up and restoring the backup into \"{work}\" for the rehearsal"
            ),
        );
        let taken = self.backup_now()?;
        let BackupOutput::Taken { path, .. } = taken else {
            return Err("users are connected, so the copy must be restored from a backup, and the rehearsal was told to take none".into());
        };
        let id = self.journal_change(Change::CloneCreating {
            name: work.to_owned(),
            source: source.to_owned(),
        })?;
        crate::engine::restore::restore(
            &self.spec.server,
            std::path::Path::new(&path),
            work,
            self.spec.jobs,
            &self.cancel,
            &mut self.sink,
        )
        .map_err(|e| e.to_string())?;
        // Like a real clone, the copy is for pgstep alone while it is upgraded and checked.
        let mut maint = self.maintenance()?;
        crate::db::access::block(&mut maint, work, self.spec.server.user())
            .map_err(|e| e.to_string())?;
        self.journal_confirm(id);
        self.problems.push("users were connected during the rehearsal, so its copy was restored from the backup: the real clone is faster than measured".into());
        Ok((
            StepStatus::Done,
            StepOutput::Cloned {
                db: work.to_owned(),
                source: source.to_owned(),
                size: self.source_size,
                how: "restored from the backup (users were connected)".into(),
                carried: Vec::new(),
            },
        ))
    }

    /// The tables the upgrade rewrote or created in the copy, from the catalogs of both.
    fn rewritten_by_the_upgrade(
        &mut self,
        source: &str,
        copy: &str,
    ) -> Result<Vec<Rewritten>, String> {
        let schemas = self.bundle()?.schemas.clone();
        let before =
            table_files(&mut self.session(source)?.client, &schemas).map_err(|e| e.to_string())?;
        let after =
            table_files(&mut self.session(copy)?.client, &schemas).map_err(|e| e.to_string())?;
        let found = rewritten(&before, &after);
        if !found.is_empty() {
            let words: Vec<String> = found
                .iter()
                .map(|t| {
                    format!(
                        "{} ({}{} MB)",
                        t.table,
                        t.rows.map_or_else(String::new, |n| format!("{n} rows, ")),
                        t.bytes / 1_000_000
                    )
                })
                .collect();
            log(
                &mut self.sink,
                Level::Info,
                format!("the upgrade rewrote or created: {}", words.join(", ")),
            );
        }
        Ok(found)
    }

    /// The record of this rehearsal; `stopped`: where and why it stopped, if it did.
    fn rehearsal_record(
        &self,
        plan: &UpgradePlan,
        dump_size: Option<u64>,
        rewritten: Vec<Rewritten>,
        stopped: Option<String>,
    ) -> Result<Rehearsal, String> {
        let bundle = self.bundle()?;
        Ok(Rehearsal {
            run_id: self
                .run_id
                .as_ref()
                .map(|(id, _)| id.clone())
                .unwrap_or_default(),
            bundle: bundle.name.clone(),
            bundle_sha256: bundle.sha256.clone(),
            server: self.spec.server.host_display(),
            database: plan.source_db.clone(),
            // Matched on major versions: a rehearsal of 1.2 → 2 predicts an upgrade of 1.3 → 2.
            from: plan.from.major.to_string(),
            to: plan.to.major.to_string(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            database_size: self.source_size,
            dump_size,
            steps: self
                .step_times
                .iter()
                .map(|(s, d)| StepTime {
                    step: s.key().to_owned(),
                    seconds: d.as_secs_f64(),
                })
                .collect(),
            problems: self.problems.clone(),
            copied_from_backup: self
                .problems
                .iter()
                .any(|p| p.contains("restored from the backup")),
            dump: self.dump_time(),
            rewritten,
            stopped,
        })
    }

    /// Removes the rehearsal's backup — it was only for measuring; the real run takes its
    /// own — and returns its size.
    fn discard_rehearsal_backup(&self) -> Option<u64> {
        let Some(BackupOutput::Taken { path, size, .. }) = &self.backup else {
            return None;
        };
        let path = std::path::Path::new(path);
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        let _ = std::fs::remove_file(crate::backup::metadata_path_of(path));
        Some(*size)
    }

    /// After a rehearsal stopped (the failure path has undone what it made): its record, with
    /// where it stopped, so that the problem is in the rehearsal's report like any other.
    /// Returns the report's path.
    pub(super) fn record_stopped_rehearsal(&mut self, why: &str) -> Option<std::path::PathBuf> {
        let plan = self.upgrade.clone()?;
        self.problems.push(format!(
            "the rehearsal stopped: {why}; the real run would stop there too"
        ));
        let dump_size = self.discard_rehearsal_backup();
        let record = self
            .rehearsal_record(&plan, dump_size, Vec::new(), Some(why.to_owned()))
            .ok()?;
        match crate::rehearsal::write(&self.spec.data_dir, &record) {
            Ok(md) => Some(md),
            Err(e) => {
                log(
                    &mut self.sink,
                    Level::Warning,
                    format!("cannot write the rehearsal's record: {e}"),
                );
                None
            }
        }
    }

    /// How the backup went: its format, its duration, and the steps it ran beside.
    fn dump_time(&self) -> Option<DumpTime> {
        let (took, alongside) = self.backup_took?;
        let BackupPlan::Into { format, .. } = &self.spec.backup else {
            return None;
        };
        let beside = self
            .step_times
            .iter()
            .filter(|(s, _)| {
                matches!(
                    s,
                    StepId::Banner | StepId::CloneUpgrade | StepId::SanityChecks
                )
            })
            .map(|(_, d)| d.as_secs_f64())
            .sum();
        Some(DumpTime {
            format: format.name().into(),
            jobs: format.jobs(),
            seconds: took.as_secs_f64(),
            alongside,
            beside_seconds: if alongside { beside } else { 0.0 },
        })
    }

    /// The rehearsal's end: the copy dropped, the backup removed, the record written.
    pub(super) fn finish_rehearsal(&mut self) -> StepResult {
        let plan = self.upgrade.clone().ok_or("the plan step has not run")?;
        let rewritten = self.rewritten_by_the_upgrade(&plan.source_db, &plan.work_db)?;
        let mut maint = self.maintenance()?;
        drop_database(&mut maint, &plan.work_db).map_err(|e| e.to_string())?;
        self.journal_entry(Entry::Step {
            step: "cut_over".into(),
            state: "rehearsal copy dropped".into(),
            detail: Some(plan.work_db.clone()),
        });
        let dump_size = self.discard_rehearsal_backup();
        let record = self.rehearsal_record(&plan, dump_size, rewritten, None)?;
        let md = crate::rehearsal::write(&self.spec.data_dir, &record)
            .map_err(|e| format!("cannot write the rehearsal's record: {e}"))?;
        let note = format!(
            "rehearsal done: about {:.1} s of downtime to expect on \"{}\"; {} problem(s) found; record {}",
            record.predicted_downtime(None),
            plan.source_db,
            record.problems.len(),
            md.display()
        );
        log(&mut self.sink, Level::Info, note.clone());
        self.journal_entry(Entry::Finished {
            outcome: "success".into(),
            detail: Some(note.clone()),
        });
        self.lock = None;
        Ok((
            StepStatus::Done,
            StepOutput::Rehearsed {
                note,
                downtime: record.predicted_downtime(None),
                problems: record.problems.clone(),
                record: md.display().to_string(),
            },
        ))
    }
}

/// The tables of `after` (the upgraded copy) with a file `before` (the source) did not have:
/// the same OID with a new file was rewritten, a new OID was created.
fn rewritten(before: &[TableFile], after: &[TableFile]) -> Vec<Rewritten> {
    after
        .iter()
        .filter_map(|t| {
            let was = before.iter().find(|b| b.oid == t.oid);
            if was.is_some_and(|b| b.filenode == t.filenode) {
                return None;
            }
            Some(Rewritten {
                table: t.name.clone(),
                rows: (t.rows >= 0.0).then(|| t.rows.round() as u64),
                bytes: t.bytes,
                created: was.is_none(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(oid: u32, name: &str, filenode: u32, rows: f64) -> TableFile {
        TableFile {
            oid,
            name: name.into(),
            filenode,
            rows,
            bytes: 8192,
        }
    }

    #[test]
    fn a_new_file_is_a_rewrite_a_new_oid_a_creation() {
        let before = [
            file(1, "app.big", 10, 1e6),
            file(2, "app.same", 20, 5.0),
            file(3, "app.dropped", 30, 1.0),
        ];
        let after = [
            file(1, "app.big", 11, 1e6),
            file(2, "app.same", 20, 5.0),
            file(4, "app.new", 40, -1.0),
        ];
        let found = rewritten(&before, &after);
        assert_eq!(
            found,
            vec![
                Rewritten {
                    table: "app.big".into(),
                    rows: Some(1_000_000),
                    bytes: 8192,
                    created: false
                },
                Rewritten {
                    table: "app.new".into(),
                    rows: None,
                    bytes: 8192,
                    created: true
                },
            ]
        );
    }
}

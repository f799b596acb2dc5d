//! One run on the executor thread: its parts (the context every step talks through, what the
//! plan found, what was changed, what is noted) and the dispatch of jobs to the checklist's
//! steps. Every change to the server is written to the journal before it is made.

use std::sync::mpsc::Sender;
use std::time::Instant;

use super::ctx::Ctx;
use super::state::{Changes, Record, Source};
use super::{Sink, rehearsal_record, source_verdict, steps, undo};
use crate::cancel::Cancel;
use crate::checklist::{ExecEvent, Job, PlanKind, StepId, StepOutput, StepStatus};
use crate::engine::plan::Mode;
use crate::events::Level;
use crate::journal::Entry;

use super::error::{StepError, StepResult, refused};

/// The parts of one run; each step borrows the ones it needs.
pub(crate) struct Run {
    pub ctx: Ctx,
    pub source: Source,
    pub changes: Changes,
    pub record: Record,
    /// A rehearsal, or the real run: handed to the steps that differ.
    pub mode: Mode,
}

impl Run {
    pub fn new(spec: super::RunSpec, tx: Sender<ExecEvent>, cancel: Cancel) -> Self {
        let mode = spec.mode();
        Self {
            ctx: Ctx::new(spec, Sink::new(tx), cancel),
            source: Source::default(),
            changes: Changes::default(),
            record: Record::default(),
            mode,
        }
    }

    pub fn job(&mut self, job: Job) {
        match job {
            Job::Step { step } => self.timed(step, |run| run.step(step)),
            Job::Accept { step } => self.timed(step, |run| run.accept(step)),
            Job::Notify => self.timed(StepId::ConnectedUsers, |run| {
                steps::connected_users::notify(&mut run.ctx, &run.source, &mut run.record)
            }),
            Job::Terminate { pids } => self.timed(StepId::ConnectedUsers, |run| {
                steps::connected_users::terminate(&mut run.ctx, &run.source, &mut run.record, &pids)
            }),
            Job::Await { step } => self.timed(step, |run| {
                steps::backup::await_alongside(&mut run.ctx, &mut run.changes, &mut run.record)
            }),
            Job::FailurePath => self.failure_path(),
        }
    }

    /// The checklist's steps, each to its own module under `steps/`.
    fn step(&mut self, step: StepId) -> StepResult {
        // Before anything is decided: a leftover of an unfinished run (a blocked source, a
        // half-upgraded clone) must not be taken for the application's database.
        if step == StepId::Plan
            && let Some(why) = crate::recover::pending_on_server(
                &self.ctx.spec.data_dir,
                &self.ctx.spec.server.host_display(),
                self.ctx.system_identifier().as_deref(),
            )
        {
            return Err(refused(why));
        }
        if self.ctx.spec.kind == PlanKind::Fixup && self.source.fixup_has_nothing_to_do(step) {
            return Ok((
                StepStatus::Skipped,
                StepOutput::Nothing {
                    note: "nothing to do".into(),
                },
            ));
        }
        let Run {
            ctx,
            source,
            changes,
            record,
            mode,
        } = self;
        let mode = *mode;
        match step {
            // The plan step only decides: whatever stops it is a refusal (nothing was changed).
            StepId::Plan => steps::plan::run(ctx, source, mode).map_err(StepError::into_refusal),
            StepId::Confirmations => Ok((
                StepStatus::Done,
                StepOutput::Nothing {
                    note: String::new(),
                },
            )),
            StepId::ConnectedUsers => {
                steps::connected_users::run(ctx, source, changes, record, mode)
            }
            StepId::DiskSpace => steps::disk_space::run(ctx, source),
            StepId::Fingerprint => steps::fingerprint::run(ctx, source, changes, record, mode),
            StepId::Clone => steps::clone::run(ctx, source, changes, record, mode),
            StepId::Backup => steps::backup::run(ctx, source, changes, record),
            StepId::Banner => steps::banner::run(ctx, source, changes, mode),
            StepId::CloneUpgrade => steps::clone_upgrade::run(ctx, source),
            StepId::SanityChecks => steps::sanity_checks::run(ctx, source, changes, record, mode),
            StepId::CutOver => steps::cut_over::run(ctx, source, changes, record, mode),
            StepId::ApplyFixups => steps::apply_fixups::run(ctx, source),
            StepId::Restore => steps::restore::run(ctx, source),
            StepId::Bootstrap => steps::bootstrap::run(ctx, source),
        }
    }

    /// The operator accepted what a step found: record it and finish the step as a warning.
    fn accept(&mut self, step: StepId) -> StepResult {
        let (detail, output) = match step {
            StepId::Fingerprint => steps::fingerprint::accept(&mut self.changes),
            StepId::DiskSpace => steps::disk_space::accept(),
            _ => ("accepted by the operator", None),
        };
        self.ctx.log(Level::Warning, detail);
        self.ctx.journal_step(step, "accepted", Some(detail.into()));
        let output = output.unwrap_or(StepOutput::Nothing {
            note: detail.into(),
        });
        Ok((StepStatus::Warning, output))
    }

    /// Runs a step's work, with its fault point, and reports how it ended and how long it took.
    fn timed(&mut self, step: StepId, f: impl FnOnce(&mut Run) -> StepResult) {
        if steps::backup::failed_alongside(&mut self.ctx, &mut self.changes, &mut self.record) {
            return; // reported instead of starting this step
        }
        self.ctx.sink.send(ExecEvent::StepStarted(step));
        self.ctx.journal_step(step, "started", None);
        let started = Instant::now();
        let result = if self.ctx.cancel.requested() {
            Err(StepError::cancelled("cancelled by the operator"))
        } else {
            f(self).and_then(|ok| self.ctx.fault_at(step).map(|()| ok))
        };
        let elapsed = started.elapsed();
        match result {
            Ok((status, output)) => self.done(step, status, output, elapsed),
            Err(e) => self.failed(step, e, elapsed),
        }
    }

    fn done(
        &mut self,
        step: StepId,
        status: StepStatus,
        mut output: StepOutput,
        elapsed: std::time::Duration,
    ) {
        if let (StepOutput::Plan(p), Some((id, path))) = (&mut output, &self.ctx.run_id) {
            p.run_id = Some(id.clone());
            p.journal = Some(path.display().to_string());
        }
        // A step going on in the background is recorded as such; its wait, later, as done.
        let state = if status == StepStatus::Running {
            "going on alongside"
        } else {
            "done"
        };
        self.ctx.journal_step(step, state, None);
        self.record.step_took(step, elapsed);
        self.ctx.sink.send(ExecEvent::StepDone {
            step,
            status,
            output,
            elapsed,
        });
    }

    fn failed(&mut self, step: StepId, e: StepError, elapsed: std::time::Duration) {
        let e = if self.ctx.cancel.requested() {
            e.after_cancel()
        } else {
            e
        };
        let refused = e.is_refusal();
        let (error, location) = (e.message, e.location);
        self.ctx.journal_step(step, "failed", Some(error.clone()));
        self.record.failed = Some(format!("at step {}: {error}", step.title()));
        self.ctx.sink.send(ExecEvent::StepFailed {
            step,
            error,
            elapsed,
            refused,
            location,
        });
    }

    /// Undoes what the journal says is pending, reports it, and ends the run.
    fn failure_path(&mut self) {
        // First the backup, if it still runs: it reads the source the undo gives back.
        let backup =
            steps::backup::end_alongside(&mut self.ctx, &mut self.changes, &mut self.record);
        let mut report = self.undo();
        // Finished only when nothing is left: otherwise `pgstep status` must go on listing it.
        if report.pending.is_empty() {
            let outcome = if self.ctx.cancel.requested() {
                "cancelled"
            } else {
                "failed"
            };
            self.ctx.journal_entry(Entry::Finished {
                outcome: outcome.into(),
                detail: None,
            });
        }
        backup.tell(&mut report);
        if self.mode == Mode::Rehearsal {
            let why = self
                .record
                .failed
                .clone()
                .unwrap_or_else(|| "cancelled by the operator".into());
            if let Some(md) = rehearsal_record::record_stopped(
                &mut self.ctx,
                &self.source,
                &self.changes,
                &mut self.record,
                &why,
            ) {
                report
                    .advice
                    .push(format!("The rehearsal's record: {}", md.display()));
            }
        }
        self.ctx.lock = None;
        let source = source_verdict::verdict(&self.ctx, &self.source, &self.changes);
        self.ctx.sink.send(ExecEvent::FailurePathDone {
            undone: report.undone,
            advice: report.advice,
            changed_anything: report.changed_anything,
            source,
        });
    }

    /// Undoes the journal's pending changes (nothing without a journal).
    fn undo(&mut self) -> undo::UndoReport {
        let ctx = &mut self.ctx;
        let Some(journal) = ctx.journal.as_mut() else {
            return undo::UndoReport::default();
        };
        let banner = ctx.spec.bundle.as_ref().and_then(|b| b.banner.clone());
        undo::undo_run(
            &ctx.spec.server,
            banner.as_ref(),
            journal,
            ctx.spec.keep_failed,
            &mut ctx.sink,
        )
    }
}

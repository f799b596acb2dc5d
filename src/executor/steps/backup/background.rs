//! The backup taken from the frozen source while the clone is upgraded and checked.
//!
//! The manual procedure is sequential: dump, clone, upgrade, check. Here the clone comes first
//! (`CREATE DATABASE … TEMPLATE` needs the source to itself), then pg_dump reads the source on
//! its own thread while the executor upgrades and checks the clone. Users are blocked and the
//! source is never written by an upgrade, so the dump holds exactly what the clone was made
//! from; pg_dump reads a snapshot exported before the logon banner is set, so the backup holds
//! the source as users left it. The cut-over waits until the backup is verified
//! ([`Background::wait`]); the failure path ends it ([`Background::end`]): a backup still
//! running is stopped, one already verified is kept and reported.
//!
//! Once the dump has ended, the same thread reads the old side of the plausibility pairs in
//! the same snapshot — on the core the dump leaves free while the clone is still being
//! upgraded — so that the sanity checks only have the new side left to read
//! ([`Background::old_side`]). The snapshot stays exported until the backup is awaited or
//! stopped, so that the sanity checks can read the source in it too
//! ([`Background::snapshot`]): every comparison sees the source as users left it, never the
//! banner pgstep set afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postgres::Client;

use crate::bundle::Version;
use crate::cancel::Cancel;
use crate::checklist::{BackupOutput, ExecEvent};
use crate::conn::ConnSettings;
use crate::db::checks::{Rows, begin_in_snapshot, read_rows_in_open_transaction};
use crate::events::{Event, Level, Observer, log};
use crate::executor::BackupPlan;
use crate::executor::error::StepError;
use crate::journal::RunLog;

/// Everything a backup needs, owned, so that it can run on its own thread.
#[derive(Debug, Clone)]
pub(crate) struct BackupJob {
    pub server: ConnSettings,
    pub db: String,
    pub plan: BackupPlan,
    pub server_version_num: u32,
    pub version: Version,
    pub fingerprint: String,
    pub schemas: Vec<String>,
    /// A snapshot exported by a transaction that stays open until pg_dump has finished.
    pub snapshot: Option<String>,
    /// Taken alongside the upgrade (pg_dump then yields the CPU to it).
    pub alongside: bool,
    /// A fault to inject (test builds only), see `faults`.
    pub fault: Option<String>,
    /// The backup's name, chosen (and its partial name journalled) before pg_dump starts.
    pub path: Option<std::path::PathBuf>,
}

impl BackupJob {
    /// Takes the backup (or, without one, reads the database once) and reports it.
    pub fn run(&self, cancel: &Cancel, obs: &mut dyn Observer) -> Result<BackupOutput, StepError> {
        let output = self.take(cancel, obs)?;
        if self.alongside {
            crate::faults::at_point("backup_alongside", "Backup", self.fault.as_deref())?;
        }
        Ok(output)
    }

    fn take(&self, cancel: &Cancel, obs: &mut dyn Observer) -> Result<BackupOutput, StepError> {
        match &self.plan {
            BackupPlan::Into { dir, format } => self.dump(dir, *format, cancel, obs),
            // The plan step puts its choice in place of Auto; a run whose plan did not choose
            // takes the format that suits any database.
            BackupPlan::Auto { dir, .. } => {
                self.dump(dir, crate::backup::BackupFormat::Custom, cancel, obs)
            }
            BackupPlan::Skip { reason } => {
                log(
                    obs,
                    Level::Warning,
                    format!(
                        "no backup, because: {reason}; reading the whole database once instead"
                    ),
                );
                let bytes = crate::backup::read_through(
                    &self.server,
                    &self.db,
                    self.server_version_num,
                    cancel,
                    obs,
                )
                .map_err(|e| e.to_string())?;
                Ok(BackupOutput::Skipped {
                    reason: reason.clone(),
                    bytes_read: bytes,
                })
            }
        }
    }

    fn dump(
        &self,
        dir: &std::path::Path,
        format: crate::backup::BackupFormat,
        cancel: &Cancel,
        obs: &mut dyn Observer,
    ) -> Result<BackupOutput, StepError> {
        let req = crate::backup::BackupRequest {
            server: &self.server,
            db: &self.db,
            dir,
            format,
            server_version_num: self.server_version_num,
            version: self.version,
            fingerprint: &self.fingerprint,
            schemas: &self.schemas,
            snapshot: self.snapshot.as_deref(),
            alongside: self.alongside,
            path: self.path.as_deref(),
            fault: self.fault.as_deref(),
        };
        let b = crate::backup::take_backup(&req, cancel, obs).map_err(|e| e.to_string())?;
        Ok(BackupOutput::Taken {
            path: b.path.display().to_string(),
            size: b.size,
            sha256: b.sha256,
            entries: b.entries,
        })
    }
}

/// How the backup ended, and how long it took.
type Outcome = (Result<BackupOutput, StepError>, Duration);

/// What the sanity checks will compare, read from the backup's snapshot after the dump.
type OldSide = Vec<Result<Rows, String>>;

/// Where the reading of the old side stands (see [`Background::old_side`]).
const DUMPING: u8 = 0;
const READING: u8 = 1;
/// The sanity checks came first and read the old side themselves.
const DECLINED: u8 = 2;

/// A backup running on its own thread.
pub(crate) struct Background {
    done: Receiver<Outcome>,
    /// The result, once it has been received.
    result: Option<Outcome>,
    handle: Option<JoinHandle<()>>,
    /// Its own cancellation: the operator's first Ctrl-C stops the step in the foreground,
    /// and the failure path then stops this one.
    cancel: Cancel,
    /// Whether the checklist waits for it: its progress then drives the gauge.
    foreground: Arc<AtomicBool>,
    old_side: Receiver<OldSide>,
    phase: Arc<AtomicU8>,
    /// The transaction whose snapshot pg_dump (and the comparisons) read; closed when the
    /// backup is awaited or stopped.
    snapshot_holder: Option<Client>,
    snapshot: Option<String>,
}

impl Background {
    /// Starts the backup; `snapshot_holder` is the open transaction whose snapshot pg_dump
    /// reads (it stays open until the thread ends), and `old_queries` the plausibility pairs'
    /// old sides to read in that snapshot once the dump has ended.
    pub fn start(
        job: BackupJob,
        mut obs: BackgroundSink,
        snapshot_holder: Option<Client>,
        old_queries: Vec<String>,
    ) -> Self {
        let (tx, done) = channel();
        let (old_tx, old_side) = channel();
        let cancel = Cancel::new();
        let thread_cancel = cancel.clone();
        let foreground = Arc::clone(&obs.foreground);
        let phase = Arc::new(AtomicU8::new(DUMPING));
        let snapshot = job.snapshot.clone();
        let thread_phase = Arc::clone(&phase);
        let handle = std::thread::Builder::new()
            .name("pgstep-backup".into())
            .spawn(move || {
                let started = Instant::now();
                let result = job.run(&thread_cancel, &mut obs);
                let took = started.elapsed();
                let ok = result.is_ok();
                // Claimed before anyone hears of the end, so that the sanity checks, coming
                // after, wait for this reading instead of doing it again.
                let read_old = ok
                    && job.snapshot.is_some()
                    && !old_queries.is_empty()
                    && thread_phase
                        .compare_exchange(DUMPING, READING, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok();
                // The front end learns at once; the result waits for the executor. Either may
                // have stopped listening (the run ended): nothing to do then.
                let _ = obs.tx.send(ExecEvent::BackgroundEnded {
                    step: crate::checklist::StepId::Backup,
                    ok,
                    took,
                });
                let _ = tx.send((result, took));
                if read_old {
                    let _ = old_tx.send(read_old_side(&job, &old_queries, &thread_cancel));
                }
            })
            .ok();
        Self {
            done,
            // No thread: its failure is the result.
            result: handle.is_none().then(|| {
                let error = "the backup thread could not be started".into();
                (Err(error), Duration::ZERO)
            }),
            handle,
            cancel,
            foreground,
            old_side,
            phase,
            snapshot_holder,
            snapshot,
        }
    }

    /// The snapshot the backup reads, exported until the backup is awaited or stopped.
    pub fn snapshot(&self) -> Option<&str> {
        self.snapshot_holder.as_ref().and(self.snapshot.as_deref())
    }

    /// The old side of the plausibility pairs as read in the backup's snapshot: waited for if
    /// the reading is under way; None if the dump still runs (the reading is then called off,
    /// and the caller reads the old side itself), or if it could not be read.
    pub fn old_side(&mut self, cancel: &Cancel) -> Option<OldSide> {
        if self
            .phase
            .compare_exchange(DUMPING, DECLINED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return None;
        }
        loop {
            match self.old_side.recv_timeout(Duration::from_millis(100)) {
                Ok(read) => return Some(read),
                Err(RecvTimeoutError::Timeout) if !cancel.requested() => {}
                Err(_) => return None,
            }
        }
    }

    /// The backup's error, if it has already failed (without waiting).
    pub fn failure(&mut self) -> Option<String> {
        if self.result.is_none() {
            self.result = self.done.try_recv().ok();
        }
        match &self.result {
            Some((Err(e), _)) => Some(e.message.clone()),
            _ => None,
        }
    }

    /// Waits for the backup to end; the operator's cancellation (`cancel`) stops it. Returns
    /// the backup and how long it took in all.
    pub fn wait(mut self, cancel: &Cancel) -> Result<(BackupOutput, Duration), StepError> {
        self.foreground.store(true, Ordering::SeqCst);
        let result = loop {
            if let Some((r, took)) = self.result.take() {
                break r.map(|b| (b, took));
            }
            if cancel.requested() {
                self.stop();
                break Err(StepError::cancelled(
                    "cancelled by the operator: the backup was stopped and its partial output removed",
                ));
            }
            match self.done.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => self.result = Some(r),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    break Err("the backup thread ended without a result".into());
                }
            }
        };
        self.finish();
        result
    }

    /// For the failure path: stops the backup if it still runs (pg_dump is stopped, its
    /// partial output removed), or hands over how it ended — a verified backup is the
    /// source's as users left it, and is kept.
    pub fn end(mut self) -> Ended {
        let stopped = self.stop();
        // A backup that ended between the look and the stop has sent its result by now.
        let result = self.result.take().or_else(|| self.done.try_recv().ok());
        match result {
            Some((Ok(backup), took)) => Ended::Finished(Ok((backup, took))),
            _ if stopped => Ended::Stopped,
            Some((Err(e), _)) => Ended::Finished(Err(e)),
            None => Ended::Finished(Err("the backup thread ended without a result".into())),
        }
    }

    /// Stops the backup if it still runs (pg_dump is stopped, its partial output removed) and
    /// waits for its thread. Returns whether it was still running.
    pub fn stop(&mut self) -> bool {
        if self.result.is_none() {
            self.result = self.done.try_recv().ok();
        }
        let running = self.handle.is_some() && self.result.is_none();
        if self.handle.as_ref().is_some_and(|h| !h.is_finished()) {
            // Twice: a dump has no safe point, it is stopped at once (and so is a read of the
            // old side after it).
            self.cancel.request();
            self.cancel.request();
        }
        self.finish();
        running
    }

    fn finish(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        // Nothing reads the snapshot any more: its transaction may close.
        self.snapshot_holder = None;
    }
}

/// Reads each query in the backup's snapshot, on a connection of its own; the failure path's
/// stop cancels the running one.
fn read_old_side(job: &BackupJob, queries: &[String], cancel: &Cancel) -> OldSide {
    let mut client = match open_in_snapshot(job) {
        Ok(c) => c,
        Err(e) => return queries.iter().map(|_| Err(e.clone())).collect(),
    };
    let token = client.cancel_token();
    cancel.set_interrupt(Some(Box::new(move || {
        let _ = token.cancel_query(postgres::NoTls);
    })));
    let read = queries
        .iter()
        .map(|sql| {
            if cancel.requested() {
                Err("stopped".into())
            } else {
                read_rows_in_open_transaction(&mut client, sql).map_err(|e| e.to_string())
            }
        })
        .collect();
    cancel.set_interrupt(None);
    read
}

fn open_in_snapshot(job: &BackupJob) -> Result<Client, String> {
    let snapshot = job.snapshot.as_deref().ok_or("no snapshot")?;
    let mut client = job
        .server
        .with_dbname(&job.db)
        .connect(None)
        .map_err(|e| e.to_string())?;
    begin_in_snapshot(&mut client, snapshot).map_err(|e| e.to_string())?;
    // Alongside the upgrade, on the core the dump leaves free: one backend, no parallel
    // workers taking the upgrade's core (the setting ends with the transaction).
    let _ = client.batch_execute("SET LOCAL max_parallel_workers_per_gather = 0");
    Ok(client)
}

/// How a background backup ended when the run stopped early.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It was still running: stopped, its partial output removed.
    Stopped,
    /// It had ended on its own: verified (kept), or failed.
    Finished(Result<(BackupOutput, Duration), StepError>),
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The background thread's observer: log lines go to the front end and the run's log at
/// once; progress only while the checklist waits for the backup (before that, the gauge is
/// the upgrade's).
pub(crate) struct BackgroundSink {
    pub tx: Sender<ExecEvent>,
    pub log: Option<RunLog>,
    pub foreground: Arc<AtomicBool>,
}

impl Observer for BackgroundSink {
    fn event(&mut self, event: Event) {
        if matches!(event, Event::Progress { .. }) && !self.foreground.load(Ordering::SeqCst) {
            return;
        }
        if let Some(log) = &mut self.log {
            crate::executor::write_log(log, &event);
        }
        if !worth_showing(&event) {
            return;
        }
        let _ = self.tx.send(ExecEvent::Engine(event));
    }
}

/// Whether a line from the background reaches the screen: pg_dump's catalogue chatter ("reading
/// user-defined operators") would bury the upgrade's own lines, so only the tables it copies,
/// its errors and warnings, and pgstep's own lines are shown; the run's log keeps them all.
fn worth_showing(event: &Event) -> bool {
    match event {
        Event::Log { text, .. } => match text.strip_prefix("pg_dump: ") {
            Some(rest) => {
                rest.starts_with("dumping contents of table")
                    || rest.starts_with("error")
                    || rest.starts_with("warning")
                    || rest.starts_with("detail")
                    || rest.starts_with("hint")
            }
            None => true,
        },
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Event {
        Event::Log {
            level: Level::Info,
            text: text.into(),
        }
    }

    #[test]
    fn only_the_tables_errors_and_pgsteps_own_lines_reach_the_screen() {
        assert!(worth_showing(&line(
            "pg_dump: dumping contents of table \"clinic.encounter\""
        )));
        assert!(worth_showing(&line(
            "pg_dump: error: could not write to output file: No space left on device"
        )));
        assert!(worth_showing(&line("backup verified: 66 archive entries")));
        assert!(!worth_showing(&line(
            "pg_dump: reading user-defined operators"
        )));
    }
}

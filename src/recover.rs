//! Interrupted runs — killed, crashed, cut off — found by their journals, and the undoing of
//! what they left behind (`pgstep status`, `pgstep recover`).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::bundle;
use crate::conn::ConnSettings;
use crate::events::Observer;
use crate::executor::undo::undo_run;
use crate::journal::{self, Entry, Journal, RunRecord};
use crate::lock::LockError;

/// How long a killed run's server session may take to end (and free its lock).
const LOCK_GRACE: Duration = Duration::from_secs(5);

/// The runs in `data_dir` that never finished, newest first.
pub fn interrupted(data_dir: &Path) -> Result<Vec<RunRecord>, journal::JournalError> {
    let dir = data_dir.join("journal");
    if !dir.exists() {
        return Ok(Vec::new());
    }
    Ok(journal::runs(&dir)?
        .into_iter()
        .filter(RunRecord::is_interrupted)
        .collect())
}

/// What recovering one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub run_id: String,
    pub undone: Vec<String>,
    /// What could not be undone, or why the run was not touched.
    pub advice: Vec<String>,
    /// The run still holds its lock: it is alive, and was left alone.
    pub still_running: bool,
}

impl Recovered {
    pub fn clean(&self) -> bool {
        self.advice.is_empty() && !self.still_running
    }
}

/// Undoes what every interrupted run in `data_dir` left pending, idempotently.
pub fn recover_all(
    server: &ConnSettings,
    data_dir: &Path,
    bundle_dir: Option<&Path>,
    keep_failed: bool,
    obs: &mut dyn Observer,
) -> Result<Vec<Recovered>, journal::JournalError> {
    Ok(interrupted(data_dir)?
        .iter()
        .map(|r| recover_run(server, data_dir, r, bundle_dir, keep_failed, obs))
        .collect())
}

fn recover_run(
    server: &ConnSettings,
    data_dir: &Path,
    record: &RunRecord,
    bundle_dir: Option<&Path>,
    keep_failed: bool,
    obs: &mut dyn Observer,
) -> Recovered {
    let info = &record.info;
    let mut out = Recovered {
        run_id: info.run_id.clone(),
        undone: vec![],
        advice: vec![],
        still_running: false,
    };
    // A run that still holds its lock is alive: never undo under its feet.
    let lock = match acquire_settled(server, data_dir, record) {
        Ok(l) => l,
        Err(LockError::Held { by, .. }) => {
            out.still_running = true;
            out.advice.push(format!(
                "the run is still working ({by}); it was not touched"
            ));
            return out;
        }
        Err(e) => {
            out.advice.push(e.to_string());
            return out;
        }
    };
    let bundle_path = bundle_dir
        .map(Path::to_path_buf)
        .or_else(|| info.bundle.as_ref().map(std::path::PathBuf::from));
    let banner = bundle_path
        .and_then(|p| bundle::load(&p).ok())
        .and_then(|b| b.banner);
    let mut journal = match Journal::open_existing(&record.path) {
        Ok(j) => j,
        Err(e) => {
            out.advice.push(format!(
                "cannot open the journal {}: {e}",
                record.path.display()
            ));
            return out;
        }
    };
    let report = undo_run(server, banner.as_ref(), &mut journal, keep_failed, obs);
    out.undone = report.undone;
    out.advice = report.advice;
    let outcome = if out.advice.is_empty() {
        "recovered"
    } else {
        "recovered with problems"
    };
    let detail = format!("{} change(s) undone by pgstep recover", out.undone.len());
    // Without this line the run would be listed as interrupted again (undoing again is safe).
    let _ = journal.append(Entry::Finished {
        outcome: outcome.into(),
        detail: Some(detail),
    });
    drop(lock);
    out
}

/// Takes the dead run's lock, giving its server session a moment to end.
fn acquire_settled(
    server: &ConnSettings,
    data_dir: &Path,
    record: &RunRecord,
) -> Result<crate::lock::RunLock, LockError> {
    let deadline = Instant::now() + LOCK_GRACE;
    loop {
        match crate::lock::acquire_in(
            &data_dir.join("locks"),
            server,
            &record.info.source_db,
            &record.info,
        ) {
            Err(LockError::Held { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            other => return other,
        }
    }
}

//! Reading journals back: one run, or every run in a directory, tolerating what a crash leaves.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::entry::Line;
use super::writer::sync_dir;
use super::{Change, Entry, JournalError, RunContext, RunInfo, RunOutcome};

/// An interrupted or finished run, as its journal tells it.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub path: PathBuf,
    pub info: RunInfo,
    /// Every entry after `Started`, with its time.
    pub entries: Vec<(String, Entry)>,
    /// The outcome of the `Finished` entry, if the run got that far.
    pub finished: Option<RunOutcome>,
    /// What the reader had to overlook (a torn last line).
    pub warnings: Vec<String>,
}

impl RunRecord {
    /// Changes recorded and not undone, the most recent first (the order to undo them in).
    ///
    /// For an interrupted run these are what recovery must undo; each may or may not have
    /// happened (see [`RunRecord::is_confirmed`]). For a finished run they are what the run
    /// left in place.
    pub fn pending_changes(&self) -> Vec<(u32, Change)> {
        let undone: HashSet<u32> = self
            .entries
            .iter()
            .filter_map(|(_, e)| match e {
                Entry::Undone { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        let mut pending: Vec<(u32, Change)> = self
            .entries
            .iter()
            .filter_map(|(_, e)| match e {
                Entry::Change { id, change } if !undone.contains(id) => Some((*id, change.clone())),
                _ => None,
            })
            .collect();
        pending.reverse();
        pending
    }

    /// No `Finished` entry: the run was killed, crashed, or is still running (only the run lock
    /// tells the last two apart).
    pub fn is_interrupted(&self) -> bool {
        self.finished.is_none()
    }

    /// The run's [`RunContext`], when its journal has one.
    pub fn context(&self) -> Option<&RunContext> {
        self.entries.iter().find_map(|(_, e)| match e {
            Entry::Context(c) => Some(c),
            _ => None,
        })
    }

    /// The oid of the database `name` as the run created it, when journalled.
    pub fn created_oid(&self, name: &str) -> Option<u32> {
        self.entries.iter().rev().find_map(|(_, e)| match e {
            Entry::Created { name: n, oid } if n == name => Some(*oid),
            _ => None,
        })
    }

    /// Whether the change with this id was confirmed as made.
    pub fn is_confirmed(&self, id: u32) -> bool {
        self.entries
            .iter()
            .any(|(_, e)| matches!(e, Entry::Confirmed { id: c } if *c == id))
    }
}

/// Reads one journal. An unparsable *last* line (a crash while it was written) is ignored with a
/// warning in [`RunRecord::warnings`]; an unparsable line before it is an error.
pub fn read_run(path: &Path) -> Result<RunRecord, JournalError> {
    let bytes = fs::read(path).map_err(|source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let parsed = parse_lines(path, &bytes)?;
    let mut lines = parsed.lines.into_iter();
    let info = match lines.next() {
        Some((_, Entry::Started(info))) => info,
        _ => {
            return Err(JournalError::NoStart {
                path: path.to_path_buf(),
                note: parsed.torn.map(|t| t.warning),
            });
        }
    };
    let entries: Vec<(String, Entry)> = lines.collect();
    let finished = entries.iter().rev().find_map(|(_, e)| match e {
        Entry::Finished { outcome, .. } => Some(outcome.clone()),
        _ => None,
    });
    Ok(RunRecord {
        path: path.to_path_buf(),
        info,
        entries,
        finished,
        warnings: parsed.torn.map(|t| t.warning).into_iter().collect(),
    })
}

/// Every run journal in `dir`, newest first. A missing directory means no runs; one damaged
/// journal makes the whole listing an error (see [`run_paths`] to read them one by one).
pub fn runs(dir: &Path) -> Result<Vec<RunRecord>, JournalError> {
    run_paths(dir)?.iter().map(|p| read_run(p)).collect()
}

/// A journal that could not be read, set aside so that it blocks no other run.
#[derive(Debug, Clone)]
pub struct SetAside {
    pub path: PathBuf,
    /// Where it was moved (`<name>.damaged`), None when it could not be moved.
    pub moved_to: Option<PathBuf>,
    pub error: String,
}

impl SetAside {
    /// One sentence for the operator.
    pub fn describe(&self) -> String {
        match &self.moved_to {
            Some(to) => format!(
                "{}; it was set aside as {} for you to look at (the run it belongs to may have \
                 left changes on its server: check them by hand)",
                self.error,
                to.display()
            ),
            None => format!("{} (and it could not be set aside)", self.error),
        }
    }
}

/// Every readable run journal in `dir`, newest first, and the journals that could not be read:
/// each of those is renamed `<name>.damaged` (kept, never deleted) and reported, so that one
/// damaged file never keeps the other runs from being listed and recovered.
pub fn runs_setting_aside_damaged(
    dir: &Path,
) -> Result<(Vec<RunRecord>, Vec<SetAside>), JournalError> {
    let mut good = Vec::new();
    let mut damaged = Vec::new();
    for path in run_paths(dir)? {
        match read_run(&path) {
            Ok(r) => good.push(r),
            Err(e @ JournalError::Io { .. }) => damaged.push(SetAside {
                path,
                moved_to: None,
                error: e.to_string(),
            }),
            Err(e) => {
                let mut to = path.as_os_str().to_owned();
                to.push(".damaged");
                let to = PathBuf::from(to);
                let moved = !to.exists() && fs::rename(&path, &to).is_ok();
                if moved {
                    let _ = sync_dir(dir);
                }
                damaged.push(SetAside {
                    path,
                    moved_to: moved.then_some(to),
                    error: e.to_string(),
                });
            }
        }
    }
    Ok((good, damaged))
}

/// The journal files in `dir`, newest first (run ids begin with their UTC start time, so
/// names sort in time order). Hidden files (a journal being created) are left out.
pub fn run_paths(dir: &Path) -> Result<Vec<PathBuf>, JournalError> {
    let io_err = |source| JournalError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(e)),
    };
    let mut paths = Vec::new();
    for item in listing {
        let path = item.map_err(io_err)?.path();
        let is_journal = path.extension().is_some_and(|e| e == "jsonl")
            && path
                .file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'));
        if is_journal {
            paths.push(path);
        }
    }
    paths.sort();
    paths.reverse();
    Ok(paths)
}

/// The unparsable tail of a journal.
pub(super) struct Torn {
    /// Byte offset where the torn line starts.
    pub(super) offset: usize,
    pub(super) warning: String,
}

pub(super) struct Parsed {
    pub(super) lines: Vec<(String, Entry)>,
    pub(super) torn: Option<Torn>,
    /// Byte offset just after the last complete entry's JSON (before its newline).
    pub(super) content_end: usize,
}

pub(super) fn parse_lines(path: &Path, bytes: &[u8]) -> Result<Parsed, JournalError> {
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            spans.push((start, i));
            start = i + 1;
        }
    }
    if start < bytes.len() {
        spans.push((start, bytes.len()));
    }
    // Blank lines carry nothing (and the NUL padding a crash can leave counts as blank).
    let is_blank = |s: &[u8]| s.iter().all(|b| b.is_ascii_whitespace() || *b == 0);
    let last_content = spans.iter().rposition(|(s, e)| !is_blank(&bytes[*s..*e]));
    let mut parsed = Parsed {
        lines: Vec::new(),
        torn: None,
        content_end: 0,
    };
    for (n, (s, e)) in spans.iter().enumerate() {
        // Trailing NULs and spaces are padding, not content.
        let mut end = *e;
        while end > *s && (bytes[end - 1] == 0 || bytes[end - 1].is_ascii_whitespace()) {
            end -= 1;
        }
        let text = &bytes[*s..end];
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Line>(text) {
            Ok(line) => {
                parsed.lines.push((line.at, line.entry));
                parsed.content_end = end;
            }
            Err(err) if Some(n) == last_content => {
                parsed.torn = Some(Torn {
                    offset: *s,
                    warning: format!(
                        "ignored the unfinished last line {} of the journal {} (pgstep was \
                         probably stopped while writing it; that change was not started): {err}",
                        n + 1,
                        path.display()
                    ),
                });
            }
            Err(err) => {
                return Err(JournalError::Damaged {
                    path: path.to_path_buf(),
                    line: n + 1,
                    message: err.to_string(),
                });
            }
        }
    }
    Ok(parsed)
}

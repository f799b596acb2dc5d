//! The run journal: one JSON-lines file per run in `<data dir>/journal/`, written *before* each
//! change pgstep makes to a server and fsynced before the change is attempted, so that after a
//! crash or `kill -9` the file lists every change that may have happened and `pgstep recover`
//! can undo what is still pending.
//!
//! Also here: the human-readable log of a run (`<data dir>/logs/<run id>.log`) with a defensive
//! filter that masks anything resembling a password, and the small facts about this machine that
//! every run records (host name, operator).
//!
//! File format: each line is one JSON object `{"at": <RFC 3339>, "entry": <kind>, ...}`. A crash
//! can tear only the last line (each entry is written with one `write` and fsynced before the
//! next), so a reader ignores an unparsable last line and refuses one in the middle.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::events::Level;

/// What kind of run a journal belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Upgrade,
    Fixup,
    Restore,
    Bootstrap,
    Rehearsal,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Upgrade => "upgrade",
            RunKind::Fixup => "fixup",
            RunKind::Restore => "restore",
            RunKind::Bootstrap => "bootstrap",
            RunKind::Rehearsal => "rehearsal",
        }
    }
}

/// Who runs what, where: the first entry of every journal and the head of every report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub kind: RunKind,
    /// The server as displayed (`db.example:5432`, `/run/postgresql (socket)`); never secrets.
    pub server: String,
    pub source_db: String,
    pub bundle: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The OS user running pgstep.
    pub operator: String,
    /// This machine's host name.
    pub host: String,
    pub pid: u32,
    /// RFC 3339.
    pub started_at: String,
}

impl RunInfo {
    /// A new run starting now in this process: a fresh run id, this host, operator and pid.
    /// `bundle`, `from` and `to` are left for the caller to fill in.
    pub fn new(kind: RunKind, server: impl Into<String>, source_db: &str) -> RunInfo {
        let now = chrono::Utc::now();
        RunInfo {
            run_id: new_run_id(now, source_db, std::process::id()),
            kind,
            server: server.into(),
            source_db: source_db.to_owned(),
            bundle: None,
            from: None,
            to: None,
            operator: operator(),
            host: hostname(),
            pid: std::process::id(),
            started_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

/// One line of the journal (its time is kept beside it, see [`RunRecord::entries`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum Entry {
    Started(RunInfo),
    Step {
        step: String,
        /// started | done | failed | skipped
        state: String,
        detail: Option<String>,
    },
    /// Written *before* the change is made: the change may or may not have happened.
    Change {
        id: u32,
        change: Change,
    },
    /// Written after the change succeeded (recovery does not depend on it).
    Confirmed {
        id: u32,
    },
    /// Written after the change was undone.
    Undone {
        id: u32,
        how: String,
    },
    /// Written only when nothing the run changed is still pending: every undo done and
    /// verified (or the run succeeded). Until then `pgstep status` lists the run.
    Finished {
        /// success | failed | cancelled | recovered
        outcome: String,
        detail: Option<String>,
    },
    /// A database the run created, with its oid, written just after `CREATE DATABASE`: undoing
    /// drops that database only, never another one that took its name since.
    Created {
        name: String,
        oid: u32,
    },
    /// Where the run works and what recovery needs beyond each change, written right after
    /// `Started` (older journals lack it: recovery then falls back on the run's description).
    Context(RunContext),
}

/// The server a run works on, and what undoing its changes needs without the bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunContext {
    /// `pg_control_system().system_identifier`: the same for every name the cluster is reached
    /// by, different for every other cluster. None when the role may not read it.
    #[serde(default)]
    pub system_identifier: Option<String>,
    /// The source database's oid on that server.
    #[serde(default)]
    pub source_oid: Option<u32>,
    /// The `application_name` of every session of the run (as the server keeps it, at most 63
    /// bytes): how recovery finds the sessions a killed run left working.
    #[serde(default)]
    pub application_name: Option<String>,
    /// The bundle's banner statements, so that recovery can reset the banner without it.
    #[serde(default)]
    pub banner: Option<BannerSql>,
    /// The bundle's absolute path (for the record; recovery does not need it).
    #[serde(default)]
    pub bundle: Option<String>,
}

/// The bundle's logon-banner statements (see `bundle::Banner`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BannerSql {
    pub get: String,
    pub set: String,
    pub clear: String,
}

impl From<&crate::bundle::Banner> for BannerSql {
    fn from(b: &crate::bundle::Banner) -> Self {
        BannerSql {
            get: b.get.clone(),
            set: b.set.clone(),
            clear: b.clear.clone(),
        }
    }
}

impl From<&BannerSql> for crate::bundle::Banner {
    fn from(b: &BannerSql) -> Self {
        crate::bundle::Banner {
            get: b.get.clone(),
            set: b.set.clone(),
            clear: b.clear.clone(),
        }
    }
}

/// Everything that must be undone if a run does not finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    BannerSet {
        db: String,
        previous: Option<String>,
    },
    AccessBlocked {
        db: String,
        /// Opaque to the journal: what the access module needs to restore access exactly.
        snapshot: serde_json::Value,
    },
    CloneCreating {
        name: String,
        source: String,
    },
    Renamed {
        from: String,
        to: String,
    },
    CutOverStarted {
        old: String,
        new: String,
    },
    CutOverDone {
        old: String,
        new: String,
    },
    FixupStarted {
        db: String,
        version: String,
    },
    /// pg_dump starts writing the backup `path` (under its partial name until it is verified).
    BackupWriting {
        path: String,
    },
}

impl Change {
    /// One line for people: the report, `pgstep status`, recovery messages.
    pub fn describe(&self) -> String {
        match self {
            Change::BannerSet { db, .. } => format!("logon banner set on \"{db}\""),
            Change::AccessBlocked { db, .. } => format!("new connections to \"{db}\" blocked"),
            Change::CloneCreating { name, source } => {
                format!("database \"{name}\" created as a copy of \"{source}\"")
            }
            Change::Renamed { from, to } => format!("database \"{from}\" renamed to \"{to}\""),
            Change::CutOverStarted { old, new } => {
                format!("cut-over from \"{old}\" to \"{new}\" started")
            }
            Change::CutOverDone { old, new } => {
                format!("cut-over from \"{old}\" to \"{new}\" done")
            }
            Change::FixupStarted { db, version } => {
                format!("fixup to version {version} started in place on \"{db}\"")
            }
            Change::BackupWriting { path } => format!("backup {path} being written"),
        }
    }
}

/// How a journal line is stored: its time, then the entry's own fields.
#[derive(Serialize, Deserialize)]
struct Line {
    at: String,
    #[serde(flatten)]
    entry: Entry,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read the journal {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("the journal {} is damaged at line {line}: {message}", path.display())]
    Damaged {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("the journal {} does not start with the run's description{}", path.display(), note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default())]
    NoStart { path: PathBuf, note: Option<String> },
}

/// The directory of all journals: `<data dir>/journal`.
pub fn journal_dir() -> PathBuf {
    crate::paths::data_dir().join("journal")
}

/// An open journal, appended to by one run.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Length of the file after the last complete entry: a failed write is cut back to it, so
    /// that a half-written line never ends up in the middle of the file.
    len: u64,
    next_id: u32,
}

impl Journal {
    /// Creates `<journal dir>/<run id>.jsonl` with the `Started` entry.
    pub fn create(info: RunInfo) -> io::Result<Journal> {
        Journal::create_in(&journal_dir(), info)
    }

    /// [`Journal::create`] in a given directory (tests, or a `--data-dir`).
    pub fn create_in(dir: &Path, info: RunInfo) -> io::Result<Journal> {
        create_dir_synced(dir)?;
        let path = dir.join(format!("{}.jsonl", info.run_id));
        let first = encode_line(&Entry::Started(info))?;
        publish_new_file(dir, &path, first.as_bytes())?;
        let file = OpenOptions::new().append(true).open(&path)?;
        let len = file.metadata()?.len();
        Ok(Journal {
            path,
            file,
            len,
            next_id: 1,
        })
    }

    /// Opens an interrupted run's journal to append to it (recovery). Whatever follows the last
    /// complete entry (a torn line, the NUL padding a crash can leave) is cut off first, and a
    /// torn line is kept in `<file>.torn`, so that new entries never follow garbage.
    pub fn open_existing(path: &Path) -> io::Result<Journal> {
        Journal::open_existing_with_warnings(path).map(|(journal, _)| journal)
    }

    /// [`Journal::open_existing`], also returning the warnings for the operator.
    pub fn open_existing_with_warnings(path: &Path) -> io::Result<(Journal, Vec<String>)> {
        let mut warnings = Vec::new();
        let mut file = OpenOptions::new().read(true).append(true).open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let parsed = parse_lines(path, &bytes).map_err(io::Error::other)?;
        if let Some(torn) = &parsed.torn {
            keep_torn_bytes(path, &bytes[torn.offset..])?;
            warnings.push(format!(
                "{}; it was moved to {}.torn",
                torn.warning,
                path.display()
            ));
        }
        let clean_end = parsed.content_end + 1;
        if bytes.len() != clean_end || bytes.get(parsed.content_end) != Some(&b'\n') {
            // Cut whatever follows the last complete entry and end that entry's line (the
            // crash may have come just before its newline).
            file.set_len(parsed.content_end as u64)?;
            if parsed.content_end > 0 {
                file.write_all(b"\n")?;
            }
        }
        file.sync_all()?;
        let next_id = parsed
            .lines
            .iter()
            .filter_map(|(_, entry)| match entry {
                Entry::Change { id, .. } => Some(*id),
                _ => None,
            })
            .max()
            .unwrap_or(0)
            + 1;
        let len = file.metadata()?.len();
        let journal = Journal {
            path: path.to_path_buf(),
            file,
            len,
            next_id,
        };
        Ok((journal, warnings))
    }

    /// Appends one entry and fsyncs the file before returning: once this returns `Ok`, the entry
    /// survives a crash. On an error nothing of the entry is left in the file (as far as the
    /// system lets us), and the caller must not make the change it was about to make.
    pub fn append(&mut self, entry: Entry) -> io::Result<()> {
        let line = encode_line(&entry)?;
        let written = self
            .file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Best effort: a partial line in the middle would make the journal unreadable.
                let _ = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_data());
                Err(e)
            }
        }
    }

    /// Records a change about to be made; returns its id for `Confirmed`/`Undone`.
    pub fn change(&mut self, change: Change) -> io::Result<u32> {
        let id = self.next_id;
        self.append(Entry::Change { id, change })?;
        self.next_id += 1;
        Ok(id)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One entry as one line, newline included.
fn encode_line(entry: &Entry) -> io::Result<String> {
    let line = Line {
        at: now_rfc3339(),
        entry: entry.clone(),
    };
    let mut text = serde_json::to_string(&line).map_err(io::Error::other)?;
    text.push('\n');
    Ok(text)
}

/// Creates `dir` (and its parents) and fsyncs it and its parent, so that the new directory
/// entries themselves survive a crash.
fn create_dir_synced(dir: &Path) -> io::Result<()> {
    crate::paths::private_dir(dir)?;
    sync_dir(dir)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Makes `path` appear with `content` already complete and on disk, failing if it exists.
///
/// The content goes to a hidden temporary file, is fsynced, and is then hard-linked to its
/// name: the link fails if the name is taken (two runs never share a journal) and a crash
/// leaves either no journal or one with its complete first line, never an empty one.
fn publish_new_file(dir: &Path, path: &Path, content: &[u8]) -> io::Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".pgstep-new-")
        .tempfile_in(dir)?;
    tmp.write_all(content)?;
    tmp.as_file().sync_all()?;
    match fs::hard_link(tmp.path(), path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
        // File systems without hard links: exclusive create, then write and fsync.
        Err(_) => {
            let mut file = crate::paths::private_options()
                .write(true)
                .create_new(true)
                .open(path)?;
            file.write_all(content)?;
            file.sync_all()?;
        }
    }
    drop(tmp); // removes the temporary name
    sync_dir(dir)
}

/// Saves the bytes cut from a journal next to it rather than destroying them.
fn keep_torn_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut name = path.as_os_str().to_owned();
    name.push(".torn");
    let mut file = crate::paths::private_options()
        .append(true)
        .create(true)
        .open(&name)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// An interrupted or finished run, as its journal tells it.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub path: PathBuf,
    pub info: RunInfo,
    /// Every entry after `Started`, with its time.
    pub entries: Vec<(String, Entry)>,
    /// The outcome of the `Finished` entry, if the run got that far.
    pub finished: Option<String>,
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
struct Torn {
    /// Byte offset where the torn line starts.
    offset: usize,
    warning: String,
}

struct Parsed {
    lines: Vec<(String, Entry)>,
    torn: Option<Torn>,
    /// Byte offset just after the last complete entry's JSON (before its newline).
    content_end: usize,
}

fn parse_lines(path: &Path, bytes: &[u8]) -> Result<Parsed, JournalError> {
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

/// Run ids handed out by this process, so that two runs started in the same second on the same
/// database by one process still get different ids.
static ISSUED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// `YYYYmmddTHHMMSSZ-<db>-<pid>`: sortable by start time, unique per process and second
/// (a `-2`, `-3`… suffix when this process already used the id).
pub fn new_run_id(now: chrono::DateTime<chrono::Utc>, source_db: &str, pid: u32) -> String {
    let base = format!(
        "{}-{}-{pid}",
        now.format("%Y%m%dT%H%M%SZ"),
        file_component(source_db, true)
    );
    let mut issued = ISSUED.lock().unwrap_or_else(PoisonError::into_inner);
    let mut id = base.clone();
    let mut n = 1;
    while issued.contains(&id) {
        n += 1;
        id = format!("{base}-{n}");
    }
    issued.push(id.clone());
    id
}

/// A name made safe for a file name, and reversible: ASCII letters, digits, `_` and `.` stay
/// (and `-` when `keep_dash`), every other byte becomes `%XX`. Reversible matters for lock
/// files: two different databases must never share one.
pub fn file_component(name: &str, keep_dash: bool) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        let keep = b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || (keep_dash && b == b'-');
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// This machine's host name, from the kernel (or `/etc/hostname`).
pub fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// The OS user running pgstep: the owner of this process (not `$USER`, which `su`/`sudo` may
/// leave stale), with the invoking user when run through sudo.
pub fn operator() -> String {
    let name = process_user().or_else(|| {
        ["USER", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
    });
    let name = name.unwrap_or_else(|| "unknown-user".to_owned());
    match std::env::var("SUDO_USER") {
        Ok(by) if !by.is_empty() && by != name => format!("{name} (sudo by {by})"),
        _ => name,
    }
}

/// The name of the effective user of this process, from `/proc/self` and `/etc/passwd`.
fn process_user() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = fs::metadata("/proc/self").ok()?.uid();
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let entry_uid: u32 = fields.nth(1)?.parse().ok()?;
        (entry_uid == uid).then(|| name.to_owned())
    })
}

/// The human-readable log of one run: timestamped lines, each written through at once (no
/// buffering) so that a killed run's log ends where it stopped. Every line passes through
/// [`mask_secrets`].
#[derive(Debug)]
pub struct RunLog {
    path: PathBuf,
    file: File,
}

impl RunLog {
    /// Opens `<data dir>/logs/<run id>.log` for appending.
    pub fn create(run_id: &str) -> io::Result<RunLog> {
        RunLog::create_in(&crate::paths::data_dir().join("logs"), run_id)
    }

    pub fn create_in(dir: &Path, run_id: &str) -> io::Result<RunLog> {
        crate::paths::private_dir(dir)?;
        let path = dir.join(format!("{run_id}.log"));
        let file = crate::paths::private_options()
            .append(true)
            .create(true)
            .open(&path)?;
        Ok(RunLog { path, file })
    }

    /// Writes `text` (masked) as one timestamped line; continuation lines are indented.
    pub fn line(&mut self, level: Level, text: &str) -> io::Result<()> {
        let stamp = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        let masked = mask_secrets(text);
        let mut out = format!("{stamp} {:<7} ", level_name(level));
        let mut lines = masked.lines();
        out.push_str(lines.next().unwrap_or(""));
        out.push('\n');
        for more in lines {
            out.push_str("    ");
            out.push_str(more);
            out.push('\n');
        }
        self.file.write_all(out.as_bytes())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second handle on the same log (appending), for another thread.
    pub fn reopen(&self) -> io::Result<RunLog> {
        let file = OpenOptions::new().append(true).open(&self.path)?;
        Ok(RunLog {
            path: self.path.clone(),
            file,
        })
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Info => "INFO",
        Level::Notice => "NOTICE",
        Level::Warning => "WARNING",
        Level::Error => "ERROR",
    }
}

const MASK: &str = "***";

/// Masks what looks like a password in free text: `password=…` / `PGPASSWORD=…` /
/// `sslpassword = '…'` / `"password": "…"` (any case, quoted or not) and the password of a URI's
/// `user:password@`. Defensive only — callers never pass passwords — so it errs towards masking
/// too much.
pub fn mask_secrets(text: &str) -> String {
    mask_uri_passwords(&mask_password_keys(text))
}

/// `…password<sep>value` → `…password<sep>***`, where sep is `=` or `:` with optional spaces and
/// a closing quote of the key, and value is quoted (up to its closing quote, honouring `\`
/// escapes) or bare (up to whitespace).
fn mask_password_keys(text: &str) -> String {
    const KEY: &str = "password";
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find(KEY) {
        let key_end = search + found + KEY.len();
        search = key_end;
        let Some(value_start) = separator_end(bytes, key_end) else {
            continue;
        };
        let value_end = value_end(bytes, value_start);
        if value_end == value_start {
            continue;
        }
        let (open, close) = quoted_span(bytes, value_start, value_end);
        out.push_str(&text[copied..open]);
        out.push_str(MASK);
        copied = close;
        search = value_end;
    }
    out.push_str(&text[copied..]);
    out
}

/// After a key: an optional closing quote, spaces, `=` or `:`, spaces. Returns where the value
/// starts, or None when no separator follows.
fn separator_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    if matches!(bytes.get(i), Some(b'"' | b'\'')) {
        i += 1;
    }
    while bytes.get(i).is_some_and(|b| *b == b' ' || *b == b'\t') {
        i += 1;
    }
    if !matches!(bytes.get(i), Some(b'=' | b':')) {
        return None;
    }
    i += 1;
    while bytes.get(i).is_some_and(|b| *b == b' ' || *b == b'\t') {
        i += 1;
    }
    Some(i)
}

/// Where a value starting at `i` ends: after its closing quote, or at whitespace.
fn value_end(bytes: &[u8], i: usize) -> usize {
    match bytes.get(i) {
        Some(q @ (b'"' | b'\'')) => {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != *q {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(bytes.len())
        }
        _ => {
            let mut j = i;
            while j < bytes.len() && !bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            j
        }
    }
}

/// The part of a value to replace: inside the quotes when quoted (the quotes stay).
fn quoted_span(bytes: &[u8], start: usize, end: usize) -> (usize, usize) {
    let quoted = matches!(bytes.get(start), Some(b'"' | b'\''))
        && end >= start + 2
        && bytes.get(end - 1) == bytes.get(start);
    if quoted {
        (start + 1, end - 1)
    } else {
        (start, end)
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`. The user part runs from `://` to
/// the last `@` before whitespace, so a password containing `/` or `@` is masked whole.
fn mask_uri_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let after = pos + 3;
        out.push_str(&rest[..after]);
        rest = &rest[after..];
        let token_end = rest
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '<' || c == '>')
            .unwrap_or(rest.len());
        let token = &rest[..token_end];
        match token
            .rfind('@')
            .and_then(|at| Some((token[..at].find(':')?, at)))
        {
            Some((colon, at)) if at > colon + 1 => {
                out.push_str(&token[..=colon]);
                out.push_str(MASK);
                out.push_str(&token[at..]);
            }
            _ => out.push_str(token),
        }
        rest = &rest[token_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(run_id: &str) -> RunInfo {
        RunInfo {
            run_id: run_id.to_owned(),
            kind: RunKind::Upgrade,
            server: "db1.example:5432".to_owned(),
            source_db: "clinic_v1".to_owned(),
            bundle: Some("clinic".to_owned()),
            from: Some("1".to_owned()),
            to: Some("2".to_owned()),
            operator: "alice".to_owned(),
            host: "db1".to_owned(),
            pid: 4242,
            started_at: "2026-05-01T02:15:00Z".to_owned(),
        }
    }

    fn banner(db: &str) -> Change {
        Change::BannerSet {
            db: db.to_owned(),
            previous: None,
        }
    }

    fn step(step: &str, state: &str) -> Entry {
        Entry::Step {
            step: step.to_owned(),
            state: state.to_owned(),
            detail: None,
        }
    }

    /// Appends raw bytes the way a crash in the middle of a write would leave them.
    fn append_raw(path: &Path, bytes: &[u8]) {
        let mut f = OpenOptions::new()
            .append(true)
            .open(path)
            .expect("open journal");
        f.write_all(bytes).expect("append raw");
    }

    fn kinds(record: &RunRecord) -> Vec<String> {
        record
            .entries
            .iter()
            .map(|(_, e)| {
                let v = serde_json::to_value(e).expect("to_value");
                v["entry"].as_str().expect("entry tag").to_owned()
            })
            .collect()
    }

    #[test]
    fn journal_round_trips_every_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
        j.append(step("backup", "started")).expect("append");
        let snapshot = serde_json::json!({"datallowconn": true, "limit": -1});
        let id1 = j.change(banner("clinic_v1")).expect("change");
        j.append(Entry::Confirmed { id: id1 }).expect("confirmed");
        let id2 = j
            .change(Change::AccessBlocked {
                db: "clinic_v1".to_owned(),
                snapshot: snapshot.clone(),
            })
            .expect("change");
        j.append(Entry::Undone {
            id: id2,
            how: "access restored".to_owned(),
        })
        .expect("undone");
        j.append(Entry::Finished {
            outcome: "success".to_owned(),
            detail: Some("all good".to_owned()),
        })
        .expect("finished");
        assert_eq!((id1, id2), (1, 2));
        assert_eq!(j.path(), dir.path().join("r1.jsonl"));

        let record = read_run(j.path()).expect("read");
        assert_eq!(record.info, info("r1"));
        assert_eq!(record.finished.as_deref(), Some("success"));
        assert!(!record.is_interrupted());
        assert!(record.warnings.is_empty());
        let entries: Vec<Entry> = record.entries.iter().map(|(_, e)| e.clone()).collect();
        assert_eq!(
            entries,
            vec![
                step("backup", "started"),
                Entry::Change {
                    id: 1,
                    change: banner("clinic_v1")
                },
                Entry::Confirmed { id: 1 },
                Entry::Change {
                    id: 2,
                    change: Change::AccessBlocked {
                        db: "clinic_v1".to_owned(),
                        snapshot
                    }
                },
                Entry::Undone {
                    id: 2,
                    how: "access restored".to_owned()
                },
                Entry::Finished {
                    outcome: "success".to_owned(),
                    detail: Some("all good".to_owned())
                },
            ]
        );
        for (at, _) in &record.entries {
            assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
        }
        assert!(record.is_confirmed(1));
        assert!(!record.is_confirmed(2));
    }

    #[test]
    fn journal_lines_have_the_documented_shape() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
        j.change(Change::Renamed {
            from: "a".to_owned(),
            to: "b".to_owned(),
        })
        .expect("change");
        let text = fs::read_to_string(j.path()).expect("read");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["entry"], "started");
        assert_eq!(lines[0]["run_id"], "r1");
        assert_eq!(lines[0]["kind"], "upgrade");
        assert_eq!(lines[1]["entry"], "change");
        assert_eq!(lines[1]["id"], 1);
        assert_eq!(
            lines[1]["change"],
            serde_json::json!({"kind": "renamed", "from": "a", "to": "b"})
        );
        assert!(text.starts_with("{\"at\":\""), "{text}");
    }

    #[test]
    fn journal_is_readable_after_a_crash_without_finish() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = {
            let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
            j.change(banner("clinic_v1")).expect("change");
            j.path().to_path_buf()
            // dropped without Finished, as if the process had been killed
        };
        let record = read_run(&path).expect("read");
        assert!(record.is_interrupted());
        assert_eq!(record.pending_changes(), vec![(1, banner("clinic_v1"))]);
    }

    #[test]
    fn journal_torn_last_line_is_ignored_with_a_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
        j.change(banner("clinic_v1")).expect("change");
        let path = j.path().to_path_buf();
        drop(j);
        // Killed half-way through writing the next entry.
        append_raw(
            &path,
            br#"{"at":"2026-05-01T02:16:00.000Z","entry":"change","id":2,"change":{"kind":"clone_cr"#,
        );
        let record = read_run(&path).expect("a torn last line is tolerated");
        assert_eq!(record.pending_changes(), vec![(1, banner("clinic_v1"))]);
        assert_eq!(record.warnings.len(), 1);
        assert!(
            record.warnings[0].contains("line 3"),
            "{:?}",
            record.warnings
        );
        assert!(
            record.warnings[0].contains("r1.jsonl"),
            "{:?}",
            record.warnings
        );
    }

    #[test]
    fn journal_nul_padding_after_a_crash_is_tolerated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::create_in(dir.path(), info("r1")).expect("create");
        append_raw(j.path(), &[0u8; 64]);
        let record = read_run(j.path()).expect("read");
        assert!(record.entries.is_empty());
        assert!(record.warnings.is_empty());
    }

    #[test]
    fn journal_reopened_after_a_torn_line_cuts_it_and_keeps_appending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
        j.change(banner("clinic_v1")).expect("change");
        let path = j.path().to_path_buf();
        drop(j);
        append_raw(&path, br#"{"at":"2026-05-01T02:16:00.000Z","entry":"chan"#);

        let (mut j, warnings) = Journal::open_existing_with_warnings(&path).expect("reopen");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let id = j
            .change(Change::CloneCreating {
                name: "clinic_v2".to_owned(),
                source: "clinic_v1".to_owned(),
            })
            .expect("change");
        assert_eq!(id, 2, "ids continue after the existing ones");
        j.append(Entry::Undone {
            id: 1,
            how: "banner removed".to_owned(),
        })
        .expect("undone");

        let record = read_run(&path).expect("read after reopen");
        assert!(record.warnings.is_empty(), "{:?}", record.warnings);
        assert_eq!(kinds(&record), ["change", "change", "undone"]);
        let mut torn = path.as_os_str().to_owned();
        torn.push(".torn");
        assert_eq!(
            fs::read(&torn).expect("torn bytes kept"),
            br#"{"at":"2026-05-01T02:16:00.000Z","entry":"chan"#
        );
    }

    #[test]
    fn journal_reopened_after_nul_padding_or_a_missing_newline_stays_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
        j.change(banner("clinic_v1")).expect("change");
        let path = j.path().to_path_buf();
        drop(j);
        // A complete entry whose newline never reached the disk, then NUL padding.
        let mut bytes = fs::read(&path).expect("read");
        bytes.pop();
        bytes.extend_from_slice(&[0u8; 32]);
        fs::write(&path, &bytes).expect("write");
        let (mut j, warnings) = Journal::open_existing_with_warnings(&path).expect("reopen");
        assert!(warnings.is_empty(), "{warnings:?}");
        j.append(Entry::Undone {
            id: 1,
            how: "banner removed".to_owned(),
        })
        .expect("undone");
        let record = read_run(&path).expect("read");
        assert_eq!(kinds(&record), ["change", "undone"]);
        assert!(record.pending_changes().is_empty());
    }

    #[test]
    fn journal_damaged_middle_line_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
        j.change(banner("clinic_v1")).expect("change");
        let path = j.path().to_path_buf();
        drop(j);
        append_raw(&path, b"{\"at\":\"2026-05-01T02:16:00Z\",\"entry\":\"cha\n");
        let mut j = Journal {
            file: OpenOptions::new().append(true).open(&path).expect("open"),
            len: fs::metadata(&path).expect("meta").len(),
            path: path.clone(),
            next_id: 2,
        };
        j.append(step("clone", "started")).expect("append");

        let err = read_run(&path).expect_err("a damaged middle line is an error");
        match &err {
            JournalError::Damaged { line, .. } => assert_eq!(*line, 3),
            other => panic!("unexpected error {other:?}"),
        }
        let message = err.to_string();
        assert!(message.contains("r1.jsonl"), "{message}");
        assert!(message.contains("line 3"), "{message}");
        assert!(Journal::open_existing(&path).is_err());
    }

    #[test]
    fn journal_failed_append_leaves_no_partial_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
        let len = fs::metadata(j.path()).expect("meta").len();
        // A read-only handle makes the write fail the way a full disk would.
        j.file = File::open(j.path()).expect("open read-only");
        assert!(j.change(banner("clinic_v1")).is_err());
        assert_eq!(fs::metadata(j.path()).expect("meta").len(), len);
        assert_eq!(j.next_id, 1, "a failed change does not use up its id");
    }

    #[test]
    fn journal_pending_changes_are_newest_first_without_undone_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
        let banner_id = j.change(banner("clinic_v1")).expect("change");
        let clone = Change::CloneCreating {
            name: "clinic_v2".to_owned(),
            source: "clinic_v1".to_owned(),
        };
        let clone_id = j.change(clone.clone()).expect("change");
        let renamed = Change::Renamed {
            from: "clinic".to_owned(),
            to: "clinic_old".to_owned(),
        };
        let renamed_id = j.change(renamed.clone()).expect("change");
        j.append(Entry::Undone {
            id: clone_id,
            how: "dropped".to_owned(),
        })
        .expect("undone");
        let record = read_run(j.path()).expect("read");
        assert_eq!(
            record.pending_changes(),
            vec![(renamed_id, renamed), (banner_id, banner("clinic_v1"))]
        );
        assert!(record.is_interrupted());
    }

    #[test]
    fn journal_refuses_to_reuse_a_run_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = Journal::create_in(dir.path(), info("r1")).expect("create");
        let err = Journal::create_in(dir.path(), info("r1")).expect_err("second create");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        let record = read_run(&dir.path().join("r1.jsonl")).expect("read");
        assert!(record.entries.is_empty(), "the first journal is untouched");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["r1.jsonl"], "no temporary file left behind");
    }

    #[test]
    fn journal_context_is_kept_and_older_journals_without_it_still_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::create_in(dir.path(), info("r1")).expect("create");
        let context = RunContext {
            system_identifier: Some("7300000000000000001".into()),
            source_oid: Some(16384),
            application_name: Some("pgstep h pid 1 run r1".into()),
            banner: Some(BannerSql {
                get: "SELECT 1".into(),
                set: "SELECT $1".into(),
                clear: "SELECT 2".into(),
            }),
            bundle: Some("/opt/clinic".into()),
        };
        j.append(Entry::Context(context.clone())).expect("context");
        assert_eq!(read_run(j.path()).expect("read").context(), Some(&context));
        // A context line from a pgstep that knew fewer fields.
        append_raw(
            j.path(),
            b"{\"at\":\"2026-05-01T02:16:00Z\",\"entry\":\"context\"}\n",
        );
        let record = read_run(j.path()).expect("read");
        assert_eq!(record.entries.len(), 2);
        let old = Journal::create_in(dir.path(), info("r0")).expect("create");
        assert_eq!(read_run(old.path()).expect("read").context(), None);
    }

    #[test]
    fn journal_damaged_files_are_set_aside_and_the_others_still_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        Journal::create_in(dir.path(), info("20260501T000000Z-a-1")).expect("create");
        let bad = dir.path().join("20260502T000000Z-b-2.jsonl");
        fs::write(&bad, "garbage\n{}\n").expect("write");
        let (good, damaged) = runs_setting_aside_damaged(dir.path()).expect("runs");
        assert_eq!(good.len(), 1);
        assert_eq!(damaged.len(), 1);
        assert!(damaged[0].error.contains("line 1"), "{:?}", damaged[0]);
        assert!(!bad.exists());
        assert!(
            dir.path()
                .join("20260502T000000Z-b-2.jsonl.damaged")
                .exists()
        );
        assert!(damaged[0].describe().contains(".damaged"));
        let (good, damaged) = runs_setting_aside_damaged(dir.path()).expect("runs");
        assert_eq!((good.len(), damaged.len()), (1, 0));
    }

    #[test]
    fn journal_without_a_start_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.jsonl");
        fs::write(
            &path,
            "{\"at\":\"2026-05-01T02:16:00Z\",\"entry\":\"confirmed\",\"id\":1}\n",
        )
        .expect("write");
        assert!(matches!(read_run(&path), Err(JournalError::NoStart { .. })));
    }

    #[test]
    fn journal_runs_lists_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            runs(&dir.path().join("missing"))
                .expect("no dir")
                .is_empty()
        );
        for id in [
            "20260501T021500Z-clinic_v1-10",
            "20260502T021500Z-clinic_v1-11",
            "20260430T021500Z-clinic_v1-9",
        ] {
            Journal::create_in(dir.path(), info(id)).expect("create");
        }
        fs::write(dir.path().join("notes.txt"), "not a journal").expect("write");
        let ids: Vec<String> = runs(dir.path())
            .expect("runs")
            .into_iter()
            .map(|r| r.info.run_id)
            .collect();
        assert_eq!(
            ids,
            [
                "20260502T021500Z-clinic_v1-11",
                "20260501T021500Z-clinic_v1-10",
                "20260430T021500Z-clinic_v1-9"
            ]
        );
    }

    #[test]
    fn journal_run_ids_are_sortable_sanitised_and_unique() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-05-01T02:15:07Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        let first = new_run_id(at, "journal-test/db x", 77);
        assert_eq!(first, "20260501T021507Z-journal-test%2Fdb%20x-77");
        assert_eq!(
            new_run_id(at, "journal-test/db x", 77),
            "20260501T021507Z-journal-test%2Fdb%20x-77-2"
        );
        let info = RunInfo::new(RunKind::Fixup, "s", "clinic");
        assert!(
            info.run_id
                .ends_with(&format!("-clinic-{}", std::process::id()))
        );
        assert!(
            chrono::NaiveDateTime::parse_from_str(&info.run_id[..16], "%Y%m%dT%H%M%SZ").is_ok(),
            "{}",
            info.run_id
        );
        assert!(chrono::DateTime::parse_from_rfc3339(&info.started_at).is_ok());
        assert!(!info.host.is_empty() && !info.operator.is_empty());
    }

    #[test]
    fn journal_file_component_is_reversible() {
        assert_eq!(file_component("clinic_v1", true), "clinic_v1");
        assert_eq!(file_component("a-b", false), "a%2Db");
        assert_eq!(file_component("a%2Db", false), "a%252Db");
        assert_eq!(file_component("../x", true), "..%2Fx");
        assert_eq!(file_component("é", true), "%C3%A9");
    }

    #[test]
    fn journal_mask_hides_keyword_passwords() {
        let cases = [
            (
                "host=db password=s3cret user=x",
                "host=db password=*** user=x",
            ),
            ("PGPASSWORD=s3cret pg_dump", "PGPASSWORD=*** pg_dump"),
            (
                "password = 'a b\\' c' dbname=x",
                "password = '***' dbname=x",
            ),
            ("sslpassword=k", "sslpassword=***"),
            (
                r#"{"password":"hunter2","user":"x"}"#,
                r#"{"password":"***","user":"x"}"#,
            ),
            ("Password: hunter2", "Password: ***"),
            (
                "password authentication failed for user \"x\"",
                "password authentication failed for user \"x\"",
            ),
            ("no password", "no password"),
            ("password=", "password="),
            ("é password=ü€ é", "é password=*** é"),
        ];
        for (input, expected) in cases {
            assert_eq!(mask_secrets(input), expected, "{input}");
        }
    }

    #[test]
    fn journal_mask_hides_uri_passwords() {
        let cases = [
            (
                "postgres://alice:s3cret@db:5432/clinic",
                "postgres://alice:***@db:5432/clinic",
            ),
            (
                "connect to postgresql://u:p%40ss@h/db now",
                "connect to postgresql://u:***@h/db now",
            ),
            ("postgres://u:pa/ss@host/db", "postgres://u:***@host/db"),
            ("postgres://u:p@ss@host/db", "postgres://u:***@host/db"),
            ("postgres://alice@db/clinic", "postgres://alice@db/clinic"),
            ("http://db:8080/x", "http://db:8080/x"),
            (
                "'postgres://a:b@h' and postgres://c:d@h",
                "'postgres://a:***@h' and postgres://c:***@h",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(mask_secrets(input), expected, "{input}");
        }
    }

    #[test]
    fn journal_run_log_writes_masked_timestamped_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = RunLog::create_in(&dir.path().join("logs"), "r1").expect("log");
        log.line(Level::Info, "connecting with password=hunter2")
            .expect("line");
        log.line(Level::Warning, "two\nlines postgres://a:b@h")
            .expect("line");
        let mut text = String::new();
        File::open(log.path())
            .expect("open")
            .read_to_string(&mut text)
            .expect("read");
        assert!(!text.contains("hunter2") && !text.contains(":b@"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let (stamp, rest) = lines[0].split_once(' ').expect("stamp");
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
        assert_eq!(rest, "INFO    connecting with password=***");
        assert!(lines[1].ends_with("WARNING two"), "{}", lines[1]);
        assert_eq!(lines[2], "    lines postgres://a:***@h");
    }
}

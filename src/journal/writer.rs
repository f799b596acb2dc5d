//! Writing a journal: each entry one line, fsynced before the change it announces is made.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::entry::Line;
use super::read::parse_lines;
use super::{Change, Entry, RunInfo, journal_dir};

/// An open journal, appended to by one run.
#[derive(Debug)]
pub struct Journal {
    pub(super) path: PathBuf,
    pub(super) file: File,
    /// Length of the file after the last complete entry: a failed write is cut back to it, so
    /// that a half-written line never ends up in the middle of the file.
    pub(super) len: u64,
    pub(super) next_id: u32,
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

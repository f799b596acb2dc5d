//! The files a backup leaves while it is written: removed if it fails, flushed when it is done.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// Removes files or directories when dropped, unless disarmed: the partial output of a failed
/// or cancelled backup.
pub(super) struct RemoveOnDrop {
    paths: Vec<PathBuf>,
}

impl RemoveOnDrop {
    pub(super) fn new(path: &Path) -> Self {
        Self {
            paths: vec![path.to_path_buf()],
        }
    }

    /// Watches `path` instead of what was watched so far (renamed into it).
    pub(super) fn replace(&mut self, path: &Path) {
        self.paths = vec![path.to_path_buf()];
    }

    pub(super) fn add(&mut self, path: &Path) {
        self.paths.push(path.to_path_buf());
    }

    pub(super) fn disarm(&mut self) {
        self.paths.clear();
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in self.paths.drain(..) {
            remove_output(&path);
        }
    }
}

/// Removes a partial output. pg_dump's parallel workers may still be writing for a moment after
/// their leader was killed, so a directory that refills is removed again, for a few seconds.
pub(super) fn remove_output(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let result = if path.is_dir() {
            fs::remove_dir_all(path)
        } else {
            fs::remove_file(path)
        };
        let gone = match result {
            Ok(()) => true,
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        };
        if (gone && !path.exists()) || Instant::now() > deadline {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Bytes written so far: the file, or the files of the directory.
pub(super) fn output_size(path: &Path) -> Option<u64> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return Some(meta.len());
    }
    Some(
        fs::read_dir(path)
            .ok()?
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum(),
    )
}

/// Flushes the file, or every file of the directory and the directory itself, to disk.
pub(super) fn sync_output(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                File::open(entry.path())?.sync_all()?;
            }
        }
        sync_dir(path)
    } else {
        File::open(path)?.sync_all()
    }
}

/// Makes the directory's entries (a rename, a new file) durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

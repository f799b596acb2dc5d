//! Making sure a backup on disk is whole: its size and sha256, and pg_restore reading its table
//! of contents.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use super::metadata::archive_version_num;
use super::tool::{ToolError, find_client_tool};
use super::{BackupError, BackupFormat, BackupMetadata};
use crate::hex;

/// Checks a backup against its metadata: size, sha256, and that pg_restore reads its table of
/// contents. Returns the number of entries of the table of contents.
pub fn verify(backup: &Path, meta: &BackupMetadata) -> Result<usize, BackupError> {
    let Some(format) = BackupFormat::from_metadata(meta) else {
        return Err(BackupError::invalid(
            backup,
            format!("unknown backup format \"{}\" in the metadata", meta.format),
        ));
    };
    let (size, sha256) = checksum_backup(backup, format)
        .map_err(|e| BackupError::invalid(backup, format!("cannot read the backup: {e}")))?;
    if size != meta.size {
        return Err(BackupError::invalid(
            backup,
            format!(
                "size mismatch: the backup has {size} bytes, its metadata says {}: the backup is incomplete, \
                 was modified or damaged; use another backup",
                meta.size
            ),
        ));
    }
    if sha256 != meta.sha256 {
        return Err(BackupError::invalid(
            backup,
            "checksum mismatch: the backup was modified or damaged (its sha256 differs from the one \
             recorded when it was taken); use another backup",
        ));
    }
    let pg_restore = find_client_tool("pg_restore", archive_version_num(meta))
        .map_err(|e| BackupError::invalid(backup, e.to_string()))?;
    let entries = verify_archive(&pg_restore.0, backup)
        .map_err(|e| BackupError::invalid(backup, e.to_string()))?;
    if meta.entries != 0 && entries != meta.entries {
        return Err(BackupError::invalid(
            backup,
            format!(
                "pg_restore lists {entries} entries, the metadata says {}: the backup was modified or damaged",
                meta.entries
            ),
        ));
    }
    Ok(entries)
}

/// `pg_restore --list` must read the whole table of contents; returns its entries.
pub(super) fn verify_archive(pg_restore: &Path, path: &Path) -> Result<usize, ToolError> {
    let listing = list_archive(pg_restore, path)?;
    Ok(listing
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .count())
}

/// The output of `pg_restore --list`.
pub(crate) fn list_archive(pg_restore: &Path, path: &Path) -> Result<String, ToolError> {
    let out = Command::new(pg_restore)
        .arg("--list")
        .arg(path)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ToolError::CannotRun {
            tool: pg_restore.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(ToolError::ArchiveUnreadable {
            path: path.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Size and sha256 of a backup as the metadata defines them for its format.
pub(super) fn checksum_backup(path: &Path, format: BackupFormat) -> io::Result<(u64, String)> {
    match format {
        BackupFormat::Custom => checksum(path),
        BackupFormat::Directory { .. } => checksum_directory(path),
    }
}

/// Size and sha256 of a file, streamed.
pub fn checksum(path: &Path) -> io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let size = hash_file(path, &mut h)?;
    Ok((size, hex::encode(&h.finalize())))
}

/// Total size and "sorted files" sha256 of a directory backup (see the module documentation).
pub fn checksum_directory(dir: &Path) -> io::Result<(u64, String)> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file; a pg_dump directory holds only files",
                entry.path().display()
            )));
        }
        files.push(entry.file_name());
    }
    files.sort();
    let mut h = Sha256::new();
    let mut total = 0u64;
    for name in files {
        let path = dir.join(&name);
        let size = fs::metadata(&path)?.len();
        h.update(name.as_encoded_bytes());
        h.update([0u8]);
        h.update(size.to_be_bytes());
        let read = hash_file(&path, &mut h)?;
        if read != size {
            return Err(io::Error::other(format!(
                "{} changed while it was read",
                path.display()
            )));
        }
        total += size;
    }
    Ok((total, hex::encode(&h.finalize())))
}

pub(super) fn hash_file(path: &Path, h: &mut Sha256) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(size);
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
}

//! Backups with pg_dump (OMERO's `pg_dump -Fc`, seeds/003): written under a temporary name and
//! renamed only once complete, verified with `pg_restore --list`, checksummed, and described by
//! a JSON metadata file beside it. Connection settings reach pg_dump through its environment
//! (a private password file), never its command line.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bundle::Version;
use crate::conn::ConnSettings;
use crate::events::{Level, Observer, log};
use crate::hex;

#[derive(Debug, thiserror::Error)]
#[error("backup of \"{db}\" failed: {message}")]
pub struct BackupError {
    pub db: String,
    pub message: String,
}

/// A verified backup.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    pub path: PathBuf,
    pub metadata_path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// Entries in the archive's table of contents (pg_restore --list).
    pub entries: usize,
}

/// What the metadata file beside a backup says.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BackupMetadata {
    pub database: String,
    pub version: String,
    pub fingerprint: String,
    pub server_version: String,
    pub pg_dump: String,
    pub created_at: String,
    pub format: String,
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

/// Where backups go unless `--backup-dir` says otherwise.
pub fn default_backup_dir() -> PathBuf {
    crate::paths::data_dir().join("backups")
}

/// Dumps `db` into `dir` and verifies the result.
pub fn take_backup(
    server: &ConnSettings,
    db: &str,
    dir: &Path,
    server_version_num: u32,
    version: Version,
    fingerprint: &str,
    obs: &mut dyn Observer,
) -> Result<Backup, BackupError> {
    let err = |message: String| BackupError {
        db: db.to_owned(),
        message,
    };
    let pg_dump = find_client_tool("pg_dump", server_version_num).map_err(err)?;
    let pg_restore = find_client_tool("pg_restore", server_version_num).map_err(err)?;
    fs::create_dir_all(dir).map_err(|e| {
        err(format!(
            "cannot create the backup directory {}: {e}",
            dir.display()
        ))
    })?;
    let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S");
    let path = dir.join(format!("{db}-v{version}-{stamp}.dump"));
    let partial = path.with_extension("dump.partial");
    log(
        obs,
        Level::Info,
        format!("pg_dump of \"{db}\" into {}", path.display()),
    );

    let env = server
        .with_dbname(db)
        .child_env()
        .map_err(|e| err(e.to_string()))?;
    let mut cmd = Command::new(&pg_dump.0);
    cmd.args(["--format=custom", "--no-password", "--file"])
        .arg(&partial)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    env.apply(&mut cmd);
    let output = cmd
        .output()
        .map_err(|e| err(format!("cannot run {}: {e}", pg_dump.0.display())))?;
    if !output.status.success() {
        let _ = fs::remove_file(&partial);
        return Err(err(format!(
            "pg_dump failed ({}): {}\nNothing was changed. If the disk is full, free space in {} or choose another directory with --backup-dir.",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            dir.display()
        )));
    }
    File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| err(format!("cannot flush {}: {e}", partial.display())))?;
    fs::rename(&partial, &path)
        .map_err(|e| err(format!("cannot rename {}: {e}", partial.display())))?;

    let entries = verify_archive(&pg_restore.0, &path).map_err(err)?;
    let (size, sha256) =
        checksum(&path).map_err(|e| err(format!("cannot read {} back: {e}", path.display())))?;
    let metadata = BackupMetadata {
        database: db.to_owned(),
        version: version.to_string(),
        fingerprint: fingerprint.to_owned(),
        server_version: super::engine::show_server_version(server_version_num),
        pg_dump: pg_dump.1,
        created_at: chrono::Local::now().to_rfc3339(),
        format: "custom".into(),
        file: path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size,
        sha256: sha256.clone(),
    };
    let metadata_path = path.with_extension("dump.json");
    let json = serde_json::to_string_pretty(&metadata).map_err(|e| err(e.to_string()))?;
    fs::write(&metadata_path, json + "\n")
        .map_err(|e| err(format!("cannot write {}: {e}", metadata_path.display())))?;
    log(
        obs,
        Level::Info,
        format!("backup verified: {entries} archive entries, {size} bytes, sha256 {sha256}"),
    );
    Ok(Backup {
        path,
        metadata_path,
        size,
        sha256,
        entries,
    })
}

/// `pg_restore --list` must read the whole table of contents.
fn verify_archive(pg_restore: &Path, path: &Path) -> Result<usize, String> {
    let out = Command::new(pg_restore)
        .arg("--list")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", pg_restore.display()))?;
    if !out.status.success() {
        return Err(format!(
            "the archive {} does not verify: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(BufReader::new(out.stdout.as_slice())
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .count())
}

/// Size and sha256 of a file, streamed.
pub fn checksum(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((size, hex::encode(&h.finalize())))
}

/// A PostgreSQL client program at least as new as the server (pg_dump refuses newer servers),
/// and its version line.
pub fn find_client_tool(name: &str, server_version_num: u32) -> Result<(PathBuf, String), String> {
    let server_major = server_version_num / 10_000;
    let mut candidates = vec![PathBuf::from(format!(
        "/usr/lib/postgresql/{server_major}/bin/{name}"
    ))];
    if let Ok(dir) = crate::cluster::find_bin_dir() {
        candidates.push(dir.join(name));
    }
    candidates.push(PathBuf::from(name));
    let mut found = Vec::new();
    for c in candidates {
        let Ok(out) = Command::new(&c)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
        else {
            continue;
        };
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let major = line
            .split_whitespace()
            .last()
            .and_then(|v| v.split('.').next()?.parse::<u32>().ok())
            .unwrap_or(0);
        if major >= server_major {
            return Ok((c, line));
        }
        found.push(line);
    }
    Err(format!(
        "no {name} for PostgreSQL {server_major} or later was found ({}); install the client programs of version {server_major} \
         (Debian/Ubuntu: apt-get install postgresql-client-{server_major})",
        if found.is_empty() {
            "none at all".to_owned()
        } else {
            format!("found only: {}", found.join(", "))
        }
    ))
}

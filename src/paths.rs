//! Where pgstep keeps its files: backups, logs, journals and reports.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `PGSTEP_DATA_DIR` when set, else the platform's data directory for pgstep
/// (`~/.local/share/pgstep` on Linux).
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PGSTEP_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    directories::ProjectDirs::from("", "", "pgstep")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| std::env::temp_dir().join("pgstep"))
}

// --- private files: what pgstep writes may hold patient data ---
//
// Everything pgstep writes under its data and backup directories is readable by its own user
// only: files 0600, directories 0700. These helpers are the one way it creates them.

/// Mode of every file pgstep writes.
pub const PRIVATE_FILE: u32 = 0o600;
/// Mode of every directory pgstep creates.
pub const PRIVATE_DIR: u32 = 0o700;

/// Creates `dir` and its missing parents 0700, and makes `dir` itself 0700 when it already
/// existed with a wider mode (a directory pgstep does not own is left as it is: its files
/// are private anyway).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode != PRIVATE_DIR {
        match fs::set_permissions(dir, Permissions::from_mode(PRIVATE_DIR)) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
            other => other?,
        }
    }
    Ok(())
}

/// Options that create a file 0600 (an existing file keeps its mode: see [`make_private`]).
pub fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(PRIVATE_FILE);
    options
}

/// Creates (or truncates) `path`, 0600, for writing.
pub fn create_private(path: &Path) -> io::Result<File> {
    let file = private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    make_private(path)?;
    Ok(file)
}

/// `fs::write`, 0600.
pub fn write_private(path: &Path, content: impl AsRef<[u8]>) -> io::Result<()> {
    use std::io::Write;
    create_private(path)?.write_all(content.as_ref())
}

/// Makes `path` private: 0600 for a file, 0700 for a directory and everything in it (what a
/// tool such as pg_dump wrote with its own umask).
pub fn make_private(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        fs::set_permissions(path, Permissions::from_mode(PRIVATE_DIR))?;
        for entry in fs::read_dir(path)? {
            make_private(&entry?.path())?;
        }
    } else if meta.is_file() && meta.permissions().mode() & 0o777 != PRIVATE_FILE {
        fs::set_permissions(path, Permissions::from_mode(PRIVATE_FILE))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn private_dirs_and_files_are_for_their_owner_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wide = tmp.path().join("wide");
        fs::create_dir(&wide).expect("mkdir");
        fs::set_permissions(&wide, Permissions::from_mode(0o755)).expect("chmod");
        let deep = wide.join("a/b");
        private_dir(&deep).expect("private_dir");
        private_dir(&wide).expect("private_dir");
        assert_eq!(mode(&wide), 0o700);
        assert_eq!(mode(&wide.join("a")), 0o700);
        assert_eq!(mode(&deep), 0o700);
        let file = deep.join("f");
        write_private(&file, "x").expect("write");
        assert_eq!(mode(&file), 0o600);
        fs::set_permissions(&file, Permissions::from_mode(0o644)).expect("chmod");
        make_private(&wide).expect("make_private");
        assert_eq!(mode(&file), 0o600);
    }
}

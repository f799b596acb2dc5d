//! Where pgstep keeps its files: backups, logs, journals and reports.

use std::path::PathBuf;

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

//! The sample application, "clinic" (sql/clinic): a small but realistic records system with
//! three major versions and a fixup, embedded in the binary for `pgstep demo`, and its data
//! generator.

use std::io;
use std::path::{Path, PathBuf};

use crate::db::Session;
use crate::db::runner::{RunError, run_script};
use crate::events::Observer;
use crate::script::{self, Placeholders};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/sample_files.rs"));
}

/// The default size of the sample: about 100,000 patients.
pub const DEFAULT_PATIENTS: u64 = 100_000;

/// The sample bundle in the source tree (for tests and benchmarks).
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sql")
        .join("clinic")
}

/// Writes the embedded sample bundle into `dir/clinic` and returns that directory.
pub fn write_bundle(dir: &Path) -> io::Result<PathBuf> {
    let root = dir.join("clinic");
    for (rel, bytes) in embedded::FILES {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)?;
    }
    Ok(root)
}

/// Fills a database at version 1 with `patients` patients and their encounters
/// (`generate.sql` of the bundle in `bundle_root`).
pub fn generate(
    session: &mut Session,
    bundle_root: &Path,
    patients: u64,
    obs: &mut dyn Observer,
) -> Result<(), GenerateError> {
    let script = script::load_script(bundle_root, Path::new("generate.sql"), &Placeholders::new())
        .map_err(|e| GenerateError(format!("{}: {}", e.at, e.message)))?;
    session
        .client
        .execute(
            "SELECT pg_catalog.set_config('pgstep.patients', $1, false)",
            &[&patients.to_string()],
        )
        .map_err(|e| GenerateError(crate::db::describe(&e)))?;
    run_script(session, &script, obs).map_err(|e: RunError| GenerateError(e.to_string()))?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[error("failed to generate the sample data: {0}")]
pub struct GenerateError(pub String);

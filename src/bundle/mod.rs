//! Upgrade bundles: what an application ships so that pgstep can upgrade its database.
//!
//! A bundle is loaded and validated completely — manifest, every script, every directive, every
//! reference fingerprint — before any database is touched (docs/bundle.md is the format's
//! documentation). The result is plain data: no terminal, no database.

mod manifest;
mod validate;
pub mod version;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::script::{Placeholders, Script};
pub use validate::load;
pub use version::Version;

/// A validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub root: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub pre_release: bool,
    /// The lowest PostgreSQL major version the scripts support.
    pub min_server_version: Option<u32>,
    pub naming: Naming,
    pub schemas: Vec<String>,
    pub version_query: String,
    pub baseline: Baseline,
    pub steps: Vec<Step>,
    pub fixups: Vec<Fixup>,
    pub fingerprints: BTreeMap<Version, Reference>,
    pub prechecks: Vec<Precheck>,
    pub plausibility: Vec<Plausibility>,
    pub banner: Option<Banner>,
    pub notify_channels: Vec<String>,
    /// The manifest's placeholders (pgstep adds DB_NAME and DB_USER when it runs a script).
    pub placeholders: Placeholders,
    /// Settings applied in every session on the application's database, in name order.
    pub session: Vec<(String, String)>,
    /// sha256 over the manifest and every file it names: identifies this exact bundle.
    pub sha256: String,
}

/// How the application names its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Naming {
    /// A new database per major version: the pattern contains `{major}`.
    Versioned { pattern: String },
    /// One name that stays; the old database is renamed aside at cut-over.
    Fixed { name: String, aside: String },
}

impl Naming {
    /// The database that holds a major version: for fixed naming always the one name.
    pub fn name_for(&self, major: u32) -> String {
        match self {
            Naming::Versioned { pattern } => pattern.replace("{major}", &major.to_string()),
            Naming::Fixed { name, .. } => name.clone(),
        }
    }

    /// Where the old database goes at cut-over (fixed naming only).
    pub fn aside_for(&self, major: u32) -> Option<String> {
        match self {
            Naming::Versioned { .. } => None,
            Naming::Fixed { name, aside } => Some(
                aside
                    .replace("{name}", name)
                    .replace("{major}", &major.to_string()),
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Baseline {
    pub version: Version,
    pub scripts: Vec<Script>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub from: Version,
    pub to: Version,
    pub scripts: Vec<Script>,
    pub single_transaction: bool,
}

#[derive(Debug, Clone)]
pub struct Fixup {
    pub version: Version,
    pub scripts: Vec<Script>,
}

/// A reference fingerprint: the canonical schema text of one version.
#[derive(Debug, Clone)]
pub struct Reference {
    pub path: PathBuf,
    pub text: String,
    pub hash: String,
}

#[derive(Debug, Clone)]
pub struct Precheck {
    pub name: String,
    pub script: Script,
}

#[derive(Debug, Clone)]
pub struct Plausibility {
    pub name: String,
    pub old: String,
    pub new: String,
    pub from: Option<Version>,
    pub to: Option<Version>,
}

impl Plausibility {
    /// Whether this pair speaks about an upgrade from `from` to `to` (major versions).
    pub fn applies(&self, from: Version, to: Version) -> bool {
        self.from.is_none_or(|f| f.major == from.major)
            && self.to.is_none_or(|t| t.major == to.major)
    }
}

#[derive(Debug, Clone)]
pub struct Banner {
    pub get: String,
    pub set: String,
    pub clear: String,
}

impl Bundle {
    /// The newest version the steps reach (the baseline's when there are no steps).
    pub fn latest_major(&self) -> Version {
        self.steps
            .last()
            .map_or(self.baseline.version.major_only(), |s| s.to)
    }

    /// The newest version including fixups of the latest major.
    pub fn latest(&self) -> Version {
        let major = self.latest_major();
        self.fixups
            .iter()
            .map(|f| f.version)
            .filter(|v| v.major == major.major)
            .max()
            .unwrap_or(major)
    }

    /// The reference for a version: its own, or its major version's.
    pub fn reference_for(&self, version: Version) -> Option<(Version, &Reference)> {
        self.fingerprints
            .get(&version)
            .map(|r| (version, r))
            .or_else(|| {
                let major = version.major_only();
                self.fingerprints.get(&major).map(|r| (major, r))
            })
    }

    /// The step that starts at this major version.
    pub fn step_from(&self, major: u32) -> Option<&Step> {
        self.steps.iter().find(|s| s.from.major == major)
    }

    /// Fixups of one major version, in order.
    pub fn fixups_of(&self, major: u32) -> impl Iterator<Item = &Fixup> {
        self.fixups.iter().filter(move |f| f.version.major == major)
    }

    /// Which reference versions a fingerprint hash matches.
    pub fn versions_with_hash(&self, hash: &str) -> Vec<Version> {
        self.fingerprints
            .iter()
            .filter(|(_, r)| r.hash == hash)
            .map(|(v, _)| *v)
            .collect()
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.root.join("bundle.toml")
    }
}

/// One problem found in a bundle, at a place in one of its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleProblem {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for BundleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// Everything wrong with a bundle; it is refused as a whole.
#[derive(Debug, Clone)]
pub struct BundleError {
    pub root: PathBuf,
    pub problems: Vec<BundleProblem>,
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "the bundle in {} is not valid ({n} problem{}); nothing was changed",
            self.root.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BundleError {}

/// A path as shown in messages: relative to the working directory when it can be.
pub fn display_path(root: &Path, rel: &Path) -> PathBuf {
    let full = root.join(rel);
    std::env::current_dir()
        .ok()
        .and_then(|cwd| full.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or(full)
}

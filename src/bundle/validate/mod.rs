//! Turns a raw manifest into a [`Bundle`], collecting every problem with its file and line.
//!
//! Validation continues past the first problem so that a bundle author sees all of them at once;
//! the bundle is refused if there is any.
mod fields;
mod files;
mod fingerprints;
mod naming;
mod sql;
mod steps;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use toml::Spanned;

use super::manifest::RawManifest;
use super::{Baseline, Bundle, BundleError, BundleProblem};
use crate::hex;
use crate::script::{self, Node, Placeholder, PlaceholderKind, Placeholders};

const MANIFEST: &str = "bundle.toml";
/// PostgreSQL truncates identifiers longer than this many bytes.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// Loads and validates the bundle in `root`.
pub fn load(root: &Path) -> Result<Bundle, BundleError> {
    let manifest_path = root.join(MANIFEST);
    let fail = |message: String| BundleError {
        root: root.to_path_buf(),
        problems: vec![BundleProblem {
            file: super::display_path(root, Path::new(MANIFEST)),
            line: 0,
            column: 0,
            message,
        }],
    };
    let text = match std::fs::read_to_string(&manifest_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(format!(
                "no bundle.toml here: is {} an upgrade bundle directory?",
                root.display()
            )));
        }
        Err(e) => return Err(fail(format!("cannot read it: {e}"))),
    };
    let mut v = Validator::new(root, &text);
    let raw: RawManifest = match toml::from_str(&text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            v.problem_at(&span, e.message().trim().to_owned());
            return Err(v.into_error());
        }
    };
    let bundle = v.bundle(raw, &text);
    match bundle {
        Some(b) if v.problems.is_empty() => Ok(b),
        _ => Err(v.into_error()),
    }
}

struct Validator<'a> {
    root: &'a Path,
    text: &'a str,
    problems: Vec<BundleProblem>,
    /// Every file the bundle names, for the bundle's checksum.
    files: BTreeMap<PathBuf, String>,
}

impl<'a> Validator<'a> {
    fn new(root: &'a Path, text: &'a str) -> Self {
        Self {
            root,
            text,
            problems: Vec::new(),
            files: BTreeMap::new(),
        }
    }

    fn into_error(self) -> BundleError {
        BundleError {
            root: self.root.to_path_buf(),
            problems: self.problems,
        }
    }

    fn problem_at(&mut self, span: &Range<usize>, message: String) {
        let (line, column) = line_col(self.text, span.start);
        self.problems.push(BundleProblem {
            file: super::display_path(self.root, Path::new(MANIFEST)),
            line,
            column,
            message,
        });
    }

    fn problem<T>(&mut self, at: &Spanned<T>, message: String) {
        self.problem_at(&at.span(), message);
    }

    fn bundle(&mut self, raw: RawManifest, text: &str) -> Option<Bundle> {
        let app = raw.application.get_ref();
        let name = self.non_empty(&app.name, "application.name");
        let min_server_version = app
            .min_server_version
            .as_ref()
            .and_then(|t| self.server_version(t));
        let naming = self.naming(&raw);
        let schemas = self.schemas(&raw);
        let version_query = self.non_empty(&raw.version.get_ref().query, "version.query");
        if version_query.is_some() {
            self.one_statement(&raw.version.get_ref().query, "the [version] query");
        }
        let placeholders = self.placeholders(&raw);

        let baseline_version = self.version(&raw.baseline.get_ref().version);
        let baseline_scripts = self.scripts(&raw.baseline.get_ref().scripts, &placeholders);
        let steps = self.steps(&raw, baseline_version, &placeholders);
        let last_major = steps.last().map(|s| s.to).or(baseline_version);
        let fixups = self.fixups(&raw, baseline_version, last_major, &placeholders);
        let fingerprints = self.fingerprints(&raw, baseline_version, last_major);
        let prechecks = self.prechecks(&raw, &placeholders);
        let plausibility = self.plausibility(&raw);
        let banner = raw.banner.as_ref().map(|b| self.banner(b));
        let notify_channels = self.notify(&raw);
        let session = self.session(&raw);

        self.files
            .insert(PathBuf::from(MANIFEST), hex::sha256(text.as_bytes()));
        let sha256 = self.bundle_checksum();
        Some(Bundle {
            root: self.root.to_path_buf(),
            name: name?,
            description: app.description.as_ref().map(|d| d.get_ref().clone()),
            pre_release: app.pre_release,
            min_server_version,
            naming: naming?,
            schemas,
            version_query: version_query?,
            baseline: Baseline {
                version: baseline_version?,
                scripts: baseline_scripts,
            },
            steps,
            fixups,
            fingerprints,
            prechecks,
            plausibility,
            banner: banner.flatten(),
            notify_channels,
            placeholders,
            session,
            sha256,
        })
    }

    fn bundle_checksum(&self) -> String {
        let mut h = Sha256::new();
        for (path, sum) in &self.files {
            h.update(path.to_string_lossy().as_bytes());
            h.update([0]);
            h.update(sum.as_bytes());
            h.update([b'\n']);
        }
        hex::encode(&h.finalize())
    }
}

/// Placeholders with stand-ins for those pgstep defines at run time, so that scripts can be
/// checked completely before any database is known.
pub(crate) fn validation_placeholders(manifest: &Placeholders) -> Placeholders {
    let mut all = manifest.clone();
    for name in ["DB_NAME", "DB_USER"] {
        all.insert(
            name.to_owned(),
            Placeholder {
                kind: PlaceholderKind::Identifier,
                value: name.to_ascii_lowercase(),
            },
        );
    }
    all
}

/// Calls `f` for every statement, inside conditional blocks too.
pub(crate) fn walk_statements<'s>(nodes: &'s [Node], f: &mut impl FnMut(&'s script::Statement)) {
    for node in nodes {
        match node {
            Node::Statement(s) => f(s),
            Node::Block { body, .. } => walk_statements(body, f),
            Node::Echo { .. } => {}
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn line_col_counts_characters() {
        let t = "a = 1\nnäme = \"x\"\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        let at_eq = t.find('=').map(|_| t.rfind('=').unwrap_or(0)).unwrap_or(0);
        assert_eq!(line_col(t, at_eq), (2, 6));
    }
}

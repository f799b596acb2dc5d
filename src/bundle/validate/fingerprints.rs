//! `[fingerprints]`: one reference fingerprint per major version the bundle reaches.

use std::collections::BTreeMap;

use toml::Spanned;

use super::Validator;
use crate::bundle::manifest::{RawManifest, Text};
use crate::bundle::{BundleProblem, Reference, Version};
use crate::fingerprint::{canonical_reference, reference_problem};

impl Validator<'_> {
    pub(super) fn fingerprints(
        &mut self,
        raw: &RawManifest,
        first: Option<Version>,
        last: Option<Version>,
    ) -> BTreeMap<Version, Reference> {
        let mut out = BTreeMap::new();
        for (key, path) in &raw.fingerprints {
            if let Some((version, reference)) = self.reference(key, path) {
                out.insert(version, reference);
            }
        }
        if let (Some(first), Some(last)) = (first, last) {
            self.check_every_major(raw, first, last, &out);
        }
        out
    }

    /// One `"version" = "file"` entry: the version, and the file read and canonicalised.
    fn reference(&mut self, key: &str, path: &Text) -> Option<(Version, Reference)> {
        let version = match key.parse::<Version>() {
            Ok(v) => v,
            Err(e) => {
                self.problem(path, format!("fingerprints key: {e}"));
                return None;
            }
        };
        let rel = self.bundle_file(path)?;
        let text = match std::fs::read_to_string(self.root.join(&rel)) {
            Ok(text) => text,
            Err(e) => {
                self.problem(path, format!("cannot read {}: {e}", rel.display()));
                return None;
            }
        };
        if let Some((line, message)) = reference_problem(&text) {
            self.problems.push(BundleProblem {
                file: crate::bundle::display_path(self.root, &rel),
                line,
                column: 1,
                message: format!("reference fingerprint for version {version}: {message}; regenerate it with `pgstep fingerprint --full --database DB` on a database at that version"),
            });
            return None;
        }
        let (text, hash) = canonical_reference(&text);
        if text.is_empty() {
            self.problem(path, format!("reference fingerprint {} is empty: fill it with the text `pgstep fingerprint --full --database DB` prints for a database at version {version}", rel.display()));
            return None;
        }
        self.files.insert(rel.clone(), hash.clone());
        Some((
            version,
            Reference {
                path: rel,
                text,
                hash,
            },
        ))
    }

    /// Every major version from the baseline to the last step needs a reference.
    fn check_every_major(
        &mut self,
        raw: &RawManifest,
        first: Version,
        last: Version,
        found: &BTreeMap<Version, Reference>,
    ) {
        for major in first.major..=last.major {
            if !found.contains_key(&Version::new(major, 0)) {
                let span = raw.database.span();
                let span = if raw.fingerprints.is_empty() {
                    span
                } else {
                    raw.fingerprints.values().next().map_or(span, Spanned::span)
                };
                self.problem_at(&span, format!("[fingerprints] has no reference for version {major}: every major version needs one (generate it with `pgstep fingerprint --full`)"));
            }
        }
    }
}

//! Files the manifest names: placeholders for them, the scripts, paths inside the bundle.

use std::path::{Component, PathBuf};

use toml::Spanned;

use super::{Validator, validation_placeholders};
use crate::bundle::BundleProblem;
use crate::bundle::manifest::{RawManifest, Text};
use crate::script::{self, Placeholder, PlaceholderKind, Placeholders, Script};

impl Validator<'_> {
    pub(super) fn placeholders(&mut self, raw: &RawManifest) -> Placeholders {
        let mut out = Placeholders::new();
        for (name, p) in &raw.placeholders {
            let raw_p = p.get_ref();
            if !script::is_placeholder_name(name) {
                self.problem(p, format!("placeholder name \"{name}\" must be an upper-case letter, then upper-case letters, digits and _ (used as @{name}@)"));
                continue;
            }
            if name == "DB_NAME" || name == "DB_USER" {
                self.problem(
                    p,
                    format!("@{name}@ is defined by pgstep itself and cannot be set in the bundle"),
                );
                continue;
            }
            let kind = match raw_p.kind.get_ref().as_str() {
                "identifier" => PlaceholderKind::Identifier,
                "literal" => PlaceholderKind::Literal,
                other => {
                    self.problem(&raw_p.kind, format!("placeholder kind \"{other}\" is not known: use \"identifier\" or \"literal\""));
                    continue;
                }
            };
            let placeholder = Placeholder {
                kind,
                value: raw_p.value.get_ref().clone(),
            };
            if let Err(why) = script::validate_placeholder(name, &placeholder) {
                self.problem(&raw_p.value, format!("placeholder {name}: {why}"));
                continue;
            }
            out.insert(name.clone(), placeholder);
        }
        out
    }

    /// Loads the scripts of a list, reporting missing files at the manifest line.
    pub(super) fn scripts(
        &mut self,
        list: &Spanned<Vec<Text>>,
        placeholders: &Placeholders,
    ) -> Vec<Script> {
        if list.get_ref().is_empty() {
            self.problem(list, "the list of scripts is empty".into());
        }
        list.get_ref()
            .iter()
            .filter_map(|t| self.script(t, placeholders))
            .collect()
    }

    pub(super) fn script(&mut self, t: &Text, placeholders: &Placeholders) -> Option<Script> {
        let rel = self.bundle_file(t)?;
        let with_builtins = validation_placeholders(placeholders);
        match script::load_script(self.root, &rel, &with_builtins) {
            Ok(s) => {
                self.files.insert(s.path.clone(), s.sha256.clone());
                for (p, sum) in &s.included {
                    self.files.insert(p.clone(), sum.clone());
                }
                Some(s)
            }
            Err(e) => {
                self.problems.push(BundleProblem {
                    file: crate::bundle::display_path(self.root, &e.at.file),
                    line: e.at.line,
                    column: e.at.column,
                    message: e.message,
                });
                None
            }
        }
    }

    /// A path named by the manifest: relative, inside the bundle, an existing file.
    pub(super) fn bundle_file(&mut self, t: &Text) -> Option<PathBuf> {
        let rel = PathBuf::from(t.get_ref());
        let escapes = rel.is_absolute()
            || rel
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)));
        if t.get_ref().is_empty() || escapes {
            self.problem(
                t,
                format!(
                    "\"{}\" must be a path inside the bundle directory, relative to it",
                    t.get_ref()
                ),
            );
            return None;
        }
        if !self.root.join(&rel).is_file() {
            self.problem(
                t,
                format!(
                    "file {} does not exist",
                    crate::bundle::display_path(self.root, &rel).display()
                ),
            );
            return None;
        }
        Some(rel)
    }
}

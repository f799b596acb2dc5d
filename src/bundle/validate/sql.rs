//! SQL the manifest holds or names for pgstep to run itself: prechecks, plausibility pairs,
//! the banner, and the one-statement rule for them.

use std::path::Path;

use toml::Spanned;

use super::{MANIFEST, Validator, line_col, walk_statements};
use crate::bundle::manifest::{RawBanner, RawManifest, Text};
use crate::bundle::{Banner, BundleProblem, Plausibility, Precheck};
use crate::script::{self, Placeholders, Script};

impl Validator<'_> {
    pub(super) fn prechecks(&mut self, raw: &RawManifest, ph: &Placeholders) -> Vec<Precheck> {
        let mut out = Vec::new();
        for p in &raw.precheck {
            let rp = p.get_ref();
            let name = self.non_empty(&rp.name, "precheck.name");
            let script = self.script(&rp.script, ph);
            if let Some(s) = &script {
                self.read_only_script(s);
            }
            if let (Some(name), Some(script)) = (name, script) {
                out.push(Precheck { name, script });
            }
        }
        out
    }

    pub(super) fn plausibility(&mut self, raw: &RawManifest) -> Vec<Plausibility> {
        let mut out = Vec::new();
        for p in &raw.plausibility {
            let rp = p.get_ref();
            let name = self.non_empty(&rp.name, "plausibility.name");
            let old = self.non_empty(&rp.old, "plausibility.old");
            let new = self.non_empty(&rp.new, "plausibility.new");
            if old.is_some() {
                self.one_statement(&rp.old, "plausibility.old");
            }
            if new.is_some() {
                self.one_statement(&rp.new, "plausibility.new");
            }
            let from = rp.from.as_ref().map(|t| self.version(t));
            let to = rp.to.as_ref().map(|t| self.version(t));
            if from.is_some_and(|v| v.is_none()) || to.is_some_and(|v| v.is_none()) {
                continue;
            }
            if let (Some(name), Some(old), Some(new)) = (name, old, new) {
                out.push(Plausibility {
                    name,
                    old,
                    new,
                    from: from.flatten(),
                    to: to.flatten(),
                });
            }
        }
        out
    }

    /// SQL of the manifest that pgstep sends on its own (version query, banner, plausibility
    /// pairs): exactly one statement, no transaction control; the problem at its line.
    pub(super) fn one_statement(&mut self, t: &Text, what: &str) {
        let Err(e) = script::single_read_query(t.get_ref()) else {
            return;
        };
        let span = t.span();
        let (line, column) = line_col(self.text, span.start);
        // A multi-line string (''' or """) drops the line break right after its opening quotes.
        let opening = self.text.get(span.start..).unwrap_or("");
        let skipped = u32::from(
            ["'''\n", "'''\r\n", "\"\"\"\n", "\"\"\"\r\n"]
                .iter()
                .any(|q| opening.starts_with(q)),
        );
        let (line, column) = if e.at.line <= 1 && skipped == 0 {
            (line, column)
        } else {
            (line + e.at.line - 1 + skipped, e.at.column)
        };
        self.problems.push(BundleProblem {
            file: crate::bundle::display_path(self.root, Path::new(MANIFEST)),
            line,
            column,
            message: format!("{what}: {}", e.message),
        });
    }

    /// A precheck runs in a READ ONLY transaction, statement by statement: none of its
    /// statements may end that transaction or make it writable.
    pub(super) fn read_only_script(&mut self, script: &Script) {
        walk_statements(&script.nodes, &mut |st| {
            if let Some(message) = script::read_only_statement_problem(&st.sql) {
                self.problems.push(BundleProblem {
                    file: crate::bundle::display_path(self.root, &st.at.file),
                    line: st.at.line,
                    column: st.at.column,
                    message: format!("precheck: {message}"),
                });
            }
        });
    }

    pub(super) fn banner(&mut self, b: &Spanned<RawBanner>) -> Option<Banner> {
        let rb = b.get_ref();
        let get = self.non_empty(&rb.get, "banner.get");
        let set = self.non_empty(&rb.set, "banner.set");
        let clear = self.non_empty(&rb.clear, "banner.clear");
        for (t, v, what) in [
            (&rb.get, &get, "banner.get"),
            (&rb.set, &set, "banner.set"),
            (&rb.clear, &clear, "banner.clear"),
        ] {
            if v.is_some() {
                self.one_statement(t, what);
            }
        }
        if let Some(s) = &set
            && !s.contains("$1")
        {
            self.problem(
                &rb.set,
                "banner.set must take the message as the bound parameter $1".into(),
            );
        }
        Some(Banner {
            get: get?,
            set: set?,
            clear: clear?,
        })
    }
}

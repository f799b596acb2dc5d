//! The baseline's successors: steps between major versions and fixups within them.

use super::{Validator, walk_statements};
use crate::bundle::manifest::RawManifest;
use crate::bundle::{BundleProblem, Fixup, Step, Version};
use crate::script::{Placeholders, Script, StatementKind};

impl Validator<'_> {
    pub(super) fn steps(
        &mut self,
        raw: &RawManifest,
        baseline: Option<Version>,
        ph: &Placeholders,
    ) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut expected_from = baseline.map(Version::major_only);
        for s in &raw.step {
            let rs = s.get_ref();
            let (from, to) = (self.version(&rs.from), self.version(&rs.to));
            let scripts = self.scripts(&rs.scripts, ph);
            let (Some(from), Some(to)) = (from, to) else {
                continue;
            };
            if from.minor != 0 || to.minor != 0 {
                self.problem(s, format!("step {from} → {to}: steps go between major versions (fixups handle minor ones)"));
            } else if Some(to) != from.next_major() {
                self.problem(
                    s,
                    format!("step {from} → {to} skips a version: each step goes from N to N+1"),
                );
            } else if expected_from.is_some_and(|e| e != from) {
                let e = expected_from.map_or_else(String::new, |e| e.to_string());
                self.problem(s, format!("step {from} → {to} is out of order: the previous step (or the baseline) ends at version {e}; steps must be consecutive and in order"));
            }
            expected_from = Some(to);
            if rs.single_transaction {
                self.check_single_transaction(&scripts);
            }
            steps.push(Step {
                from,
                to,
                scripts,
                single_transaction: rs.single_transaction,
            });
        }
        steps
    }

    pub(super) fn check_single_transaction(&mut self, scripts: &[Script]) {
        for script in scripts {
            walk_statements(&script.nodes, &mut |st| {
                let why = match st.kind {
                    StatementKind::TransactionControl => "manages its own transaction",
                    StatementKind::NoTransactionBlock => "cannot run inside a transaction block",
                    StatementKind::Other => return,
                };
                self.problems.push(BundleProblem {
                    file: crate::bundle::display_path(self.root, &st.at.file),
                    line: st.at.line,
                    column: st.at.column,
                    message: format!("this statement {why}, but its step is declared single_transaction = true: remove single_transaction or the statement"),
                });
            });
        }
    }

    pub(super) fn fixups(
        &mut self,
        raw: &RawManifest,
        first: Option<Version>,
        last: Option<Version>,
        ph: &Placeholders,
    ) -> Vec<Fixup> {
        let mut out: Vec<Fixup> = Vec::new();
        for f in &raw.fixup {
            let rf = f.get_ref();
            let scripts = self.scripts(&rf.scripts, ph);
            let Some(version) = self.version(&rf.version) else {
                continue;
            };
            if version.minor == 0 {
                self.problem(&rf.version, format!("fixup version {version} has no minor part: fixups bring N.x to N.y (e.g. 2.1)"));
                continue;
            }
            let in_range = first.is_none_or(|b| version.major >= b.major)
                && last.is_none_or(|l| version.major <= l.major);
            if !in_range {
                self.problem(&rf.version, format!("fixup {version} belongs to no major version that the baseline and steps reach"));
            }
            if let Some(prev) = out.last().filter(|p| p.version >= version) {
                self.problem(&rf.version, format!("fixup {version} comes after fixup {}: list fixups in increasing version order, each once", prev.version));
            }
            out.push(Fixup { version, scripts });
        }
        out
    }
}

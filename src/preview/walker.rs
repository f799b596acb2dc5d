//! One step of the preview: every script's statements in order, as sent, and each conditional
//! block's decision ("would run", "would be skipped", "decided during the run", …).

use std::fmt::Write as _;

use super::markdown::{code, comment, fence_for, place, places, terminated};
use super::{Decide, Undecided};
use crate::bundle::Step;
use crate::script::{Change, Condition, Location, Node, Script, Statement, StatementKind, changes};

/// Counts for the summary table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Tally {
    pub(super) scripts: usize,
    pub(super) statements: usize,
    pub(super) in_blocks: usize,
    pub(super) blocks: usize,
    pub(super) would_run: usize,
    pub(super) skipped: usize,
    pub(super) during_run: usize,
    pub(super) undecided: usize,
    pub(super) not_reached: usize,
}

impl Tally {
    pub(super) fn blocks_text(&self) -> String {
        if self.blocks == 0 {
            return "none".into();
        }
        let parts: Vec<String> = [
            (self.would_run, "would run"),
            (self.skipped, "would be skipped"),
            (self.during_run, "decided during the run"),
            (self.undecided, "could not be decided now"),
            (self.not_reached, "inside skipped blocks"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        format!("{}: {}", self.blocks, parts.join(", "))
    }
}

pub(super) fn render_step(
    number: usize,
    step: &Step,
    scripts: &[Script],
    earlier_steps: Option<&str>,
    decide: &mut Decide<'_>,
) -> (String, Tally) {
    let mut out = format!("## Step {number}: {} → {}\n\n", step.from, step.to);
    if step.single_transaction {
        out.push_str(
            "`single_transaction = true`: all scripts of this step run in one session inside \
             one transaction; pgstep sends `BEGIN` before the first script and `COMMIT` after \
             the last, so temporary objects live from one file to the next.\n\n",
        );
    } else {
        out.push_str(
            "`single_transaction = false`: each script runs in its own session, as `psql -f` \
             would run it; a script's own `BEGIN`/`COMMIT` apply, and everything else commits \
             statement by statement.\n\n",
        );
    }
    let mut walker = Walker {
        decide,
        earlier_steps: earlier_steps.map(str::to_owned),
        touched: Vec::new(),
        tally: Tally {
            scripts: scripts.len(),
            ..Tally::default()
        },
        script: ScriptNotes::default(),
        code: String::new(),
        depth: 0,
    };
    for (n, script) in scripts.iter().enumerate() {
        out.push_str(&walker.script(number, n + 1, script));
    }
    (out, walker.tally)
}

/// What the list above a script's code says about it.
#[derive(Debug, Default)]
struct ScriptNotes {
    statements: usize,
    blocks: usize,
    transaction_control: Vec<Location>,
    no_transaction_block: Vec<Location>,
}

/// How a block is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Runs,
    Skipped,
    /// The decision made now is no more than a hint: `reason` says why.
    DuringRun {
        reason: String,
        now: Result<bool, Undecided>,
    },
    /// The query failed (and nothing earlier touches the table).
    Undecided(Undecided),
    /// Inside a block that would be skipped: the run never asks.
    NotReached,
}

impl Decision {
    /// Whether the body may be sent (and its statements may change what later blocks see).
    fn may_run(&self) -> bool {
        !matches!(self, Decision::Skipped | Decision::NotReached)
    }
}

struct Walker<'d, 'e> {
    decide: &'d mut Decide<'e>,
    /// Set for the second and later steps of a chain: what runs before this step.
    earlier_steps: Option<String>,
    /// What the statements so far in this step may change, and where.
    touched: Vec<(Change, Location)>,
    tally: Tally,
    script: ScriptNotes,
    code: String,
    /// How many blocks enclose the node being shown.
    depth: usize,
}

impl Walker<'_, '_> {
    fn script(&mut self, step: usize, number: usize, script: &Script) -> String {
        self.script = ScriptNotes::default();
        self.code.clear();
        self.nodes(&script.nodes, true);
        let mut out = format!(
            "### {step}.{number} {}\n\n",
            code(&script.path.display().to_string())
        );
        out.push_str(&self.script_list(script));
        let fence = fence_for(&self.code);
        let _ = write!(out, "{fence}sql\n{}{fence}\n\n", self.code);
        out
    }

    fn script_list(&self, script: &Script) -> String {
        let notes = &self.script;
        // A file on its own gets its own sha256 (what `sha256sum` prints); one with includes,
        // a hash over it and them, with the file's own beside it.
        let shown = if script.included.is_empty() {
            script.sha256.clone()
        } else {
            script.combined_sha256()
        };
        let mut out = format!("- sha256 {}", code(&shown));
        if script.included.is_empty() {
            out.push_str(" (the file; it includes no other file)\n");
        } else {
            let _ = writeln!(
                out,
                " (covers the file and the {} file(s) it includes); the file alone: {}",
                script.included.len(),
                code(&script.sha256)
            );
            for (path, sha) in &script.included {
                let _ = writeln!(
                    out,
                    "  - includes {}: sha256 {}",
                    code(&path.display().to_string()),
                    code(sha)
                );
            }
        }
        let _ = writeln!(
            out,
            "- {} statement(s), {} conditional block(s)",
            notes.statements, notes.blocks
        );
        if !notes.transaction_control.is_empty() {
            let _ = writeln!(
                out,
                "- manages its own transaction: transaction control at {}",
                places(&notes.transaction_control, &script.path)
            );
        }
        if !notes.no_transaction_block.is_empty() {
            let _ = writeln!(
                out,
                "- cannot run inside a transaction block: {}",
                places(&notes.no_transaction_block, &script.path)
            );
        }
        for w in &script.warnings {
            let _ = writeln!(out, "- warning: {}", w.to_string().replace('\n', " "));
        }
        out.push('\n');
        out
    }

    fn nodes(&mut self, nodes: &[Node], sent: bool) {
        for node in nodes {
            match node {
                Node::Statement(st) => self.statement(st, sent),
                Node::Echo { text, at } => {
                    let skipped = if sent { "" } else { " (skipped)" };
                    let _ = writeln!(self.code, "-- {}{skipped}", place(at));
                    comment(&mut self.code, &format!("\\echo {text}"));
                    self.code.push_str("\n\n");
                }
                Node::Block {
                    condition,
                    at,
                    body,
                } => self.block(condition, at, body, sent),
            }
        }
    }

    fn statement(&mut self, st: &Statement, sent: bool) {
        self.script.statements += 1;
        self.tally.statements += 1;
        if self.depth > 0 {
            self.tally.in_blocks += 1;
        }
        let mut flags = String::new();
        match st.kind {
            StatementKind::TransactionControl => {
                self.script.transaction_control.push(st.at.clone());
                flags.push_str("  [transaction control]");
            }
            StatementKind::NoTransactionBlock => {
                self.script.no_transaction_block.push(st.at.clone());
                flags.push_str("  [cannot run in a transaction block]");
            }
            StatementKind::Other => {}
        }
        let text = terminated(&st.sql);
        if sent {
            let _ = writeln!(self.code, "-- {}{flags}", place(&st.at));
            self.code.push_str(&text);
            for t in changes(&st.sql) {
                self.touched.push((t, st.at.clone()));
            }
        } else {
            let _ = writeln!(self.code, "-- {}{flags} (skipped: not sent)", place(&st.at));
            comment(&mut self.code, &text);
        }
        self.code.push_str("\n\n");
    }

    fn block(&mut self, condition: &Condition, at: &Location, body: &[Node], sent: bool) {
        self.script.blocks += 1;
        self.tally.blocks += 1;
        let decision = if sent {
            self.decision(condition)
        } else {
            Decision::NotReached
        };
        self.count(&decision);
        let _ = writeln!(self.code, "-- {}", place(at));
        comment(
            &mut self.code,
            &format!("{}: {}", condition.describe(), decision_text(&decision)),
        );
        self.code.push('\n');
        self.depth += 1;
        self.nodes(body, decision.may_run());
        self.depth -= 1;
        let _ = writeln!(self.code, "-- #EndIf ({})\n", condition.describe());
    }

    fn decision(&mut self, condition: &Condition) -> Decision {
        let now = (self.decide)(condition);
        if let Some(steps) = &self.earlier_steps {
            return Decision::DuringRun {
                reason: format!("{steps} changes the database first"),
                now,
            };
        }
        if let Some(reason) = self.touched_by(condition) {
            return Decision::DuringRun { reason, now };
        }
        match now {
            Ok(true) => Decision::Runs,
            Ok(false) => Decision::Skipped,
            Err(e) => Decision::Undecided(e),
        }
    }

    /// The latest earlier statement of this step that changes what `condition` looks at.
    fn touched_by(&self, condition: &Condition) -> Option<String> {
        let table = condition.table();
        let index = match condition {
            Condition::IfIndex(_, i) | Condition::IfNotIndex(_, i) => Some(i.as_str()),
            _ => None,
        };
        self.touched.iter().rev().find_map(|(change, at)| {
            let hit = match change {
                Change::Table(name) => name.may_be(table.schema.as_deref(), &table.name),
                Change::Index(name) => {
                    index.is_some_and(|i| name.may_be(table.schema.as_deref(), i))
                }
            };
            hit.then(|| {
                let what = match change {
                    Change::Table(_) => table.to_string(),
                    Change::Index(n) => format!("index {n}"),
                };
                format!("an earlier statement changes {what} ({})", place(at))
            })
        })
    }

    fn count(&mut self, d: &Decision) {
        let t = &mut self.tally;
        match d {
            Decision::Runs => t.would_run += 1,
            Decision::Skipped => t.skipped += 1,
            Decision::DuringRun { .. } => t.during_run += 1,
            Decision::Undecided(_) => t.undecided += 1,
            Decision::NotReached => t.not_reached += 1,
        }
    }
}

fn decision_text(d: &Decision) -> String {
    let now = |r: &Result<bool, Undecided>| match r {
        Ok(true) => "as the database is now it would run".to_string(),
        Ok(false) => "as the database is now it would be skipped".to_string(),
        Err(e) => format!("it could not be decided now: {e}"),
    };
    match d {
        Decision::Runs => "would run (as the database is now)".into(),
        Decision::Skipped => "would be skipped (as the database is now)".into(),
        Decision::DuringRun { reason, now: n } => {
            format!("decided during the run: {reason}\n  ({})", now(n))
        }
        Decision::Undecided(e) => {
            format!("could not be decided now, so it is decided during the run: {e}")
        }
        Decision::NotReached => "not reached (inside a block that would be skipped)".into(),
    }
}

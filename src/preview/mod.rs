//! The plan preview: a Markdown file a DBA reads (or prints) before the night, with every
//! statement each step of an upgrade will send, in order, exactly as it will be sent
//! (placeholders substituted), with its `file:line`, the scripts' checksums and how each
//! conditional block looks as the database is now.
//!
//! This module only builds text: it never connects. Whoever calls [`render`] decides the
//! conditions (`pgstep plan` does it read-only against the source database) and passes the
//! decisions in through a closure, so that everything here is unit-tested without a server.
//!
//! A block is really decided when the script reaches it, against the clone as the earlier
//! statements left it; a decision made now is only an indication where an earlier statement of
//! the same step changes the block's table. The obvious cases are found by reading the first
//! words of every earlier statement (`CREATE TABLE x`, `ALTER TABLE x`, `INSERT INTO x`, …) and
//! such blocks are marked "decided during the run". Changes made inside `DO` blocks or functions
//! cannot be seen this way; the file's header says so.

//!
//! The parts: `header.rs` (the top of the file: the table of facts, the steps table, how to
//! read it), `walker.rs` (one step: every script's statements and each block's decision),
//! `markdown.rs` (small text helpers). What a statement changes is read by
//! [`crate::script::changes`], with the scripts' own lexer.

mod header;
mod markdown;
mod walker;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

use crate::bundle::Bundle;
use crate::engine::plan::UpgradePlan;
use crate::script::{Condition, Script};

/// What the preview states that neither the bundle nor the plan knows.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Where the server is, without secrets (`ConnSettings::host_display`).
    pub server: String,
    /// The role pgstep connects as.
    pub user: String,
    /// `17.2`; empty when unknown.
    pub server_version: String,
    pub pgstep_version: String,
    pub generated_at: DateTime<Utc>,
    /// Things the reader must know before the night (a database in the way, …).
    pub notes: Vec<String>,
    /// The downtime to expect, from the latest rehearsal scaled to this database (or how to
    /// learn it).
    pub downtime: String,
}

/// Decides one block's condition as the database is now: `Ok(true)` when it would run.
pub type Decide<'a> = dyn FnMut(&Condition) -> Result<bool, Undecided> + 'a;

/// Why a block's condition could not be decided now: its query's failure, as the server gave
/// it (the run decides it then).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Undecided {
    pub reason: String,
}

impl From<postgres::Error> for Undecided {
    fn from(e: postgres::Error) -> Self {
        Self {
            reason: crate::db::describe(&e),
        }
    }
}

/// The default file name: `<db>-<from>-to-<to>-<UTC time>.md`, safe on any file system.
pub fn file_name(plan: &UpgradePlan, at: DateTime<Utc>) -> String {
    let db: String = plan
        .source_db
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{db}-{}-to-{}-{}.md",
        plan.from,
        plan.to,
        at.format("%Y%m%dT%H%M%SZ")
    )
}

/// The whole preview. `scripts[i]` are the scripts of the plan's i-th step, loaded with the
/// placeholder values of the real run.
pub fn render(
    bundle: &Bundle,
    plan: &UpgradePlan,
    scripts: &[Vec<Script>],
    facts: &Facts,
    decide: &mut Decide<'_>,
) -> String {
    // The steps are rendered first: the summary at the top counts their decisions.
    let mut steps_text = String::new();
    let mut tallies = Vec::new();
    let mut earlier: Option<String> = None;
    for (n, (&index, step_scripts)) in plan.steps.iter().zip(scripts).enumerate() {
        let Some(step) = bundle.steps.get(index) else {
            continue;
        };
        let (text, tally) =
            walker::render_step(n + 1, step, step_scripts, earlier.as_deref(), decide);
        steps_text.push_str(&text);
        tallies.push((step, tally));
        earlier = Some(match earlier {
            None => format!("step {} → {}", step.from, step.to),
            Some(e) => format!("{e} and step {} → {}", step.from, step.to),
        });
    }
    let mut out = header::header(bundle, plan, facts);
    out.push_str(&header::steps_table(&tallies));
    out.push_str(&header::reading_notes(plan, &facts.notes));
    out.push_str(&steps_text);
    out
}

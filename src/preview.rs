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

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::bundle::{Bundle, Naming, Step};
use crate::engine::plan::UpgradePlan;
use crate::script::{Condition, Location, Node, QualName, Script, Statement, StatementKind};

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
pub type Decide<'a> = dyn FnMut(&Condition) -> Result<bool, String> + 'a;

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
        let (text, tally) = render_step(n + 1, step, step_scripts, earlier.as_deref(), decide);
        steps_text.push_str(&text);
        tallies.push((step, tally));
        earlier = Some(match earlier {
            None => format!("step {} → {}", step.from, step.to),
            Some(e) => format!("{e} and step {} → {}", step.from, step.to),
        });
    }
    let mut out = header(bundle, plan, facts);
    out.push_str(&steps_table(&tallies));
    out.push_str(&reading_notes(plan, &facts.notes));
    out.push_str(&steps_text);
    out
}

// --- the top of the file ---------------------------------------------------------------------

fn header(bundle: &Bundle, plan: &UpgradePlan, facts: &Facts) -> String {
    let mut out = format!(
        "# Upgrade plan preview: {}, {} {} → {}\n\n",
        bundle.name,
        code(&plan.source_db),
        plan.from,
        plan.to
    );
    out.push_str(
        "Written by `pgstep plan` for review before the upgrade. pgstep connected read-only \
         and changed nothing; reading this file runs nothing (the upgrade is `pgstep upgrade`).\n\n",
    );
    let application = match &bundle.description {
        Some(d) => format!("{} — {d}", bundle.name),
        None => bundle.name.clone(),
    };
    let server = if facts.server_version.is_empty() {
        facts.server.clone()
    } else {
        format!("{}, PostgreSQL {}", facts.server, facts.server_version)
    };
    let rows = [
        ("Application", application),
        ("Server", server),
        ("Connected as", code(&facts.user)),
        (
            "Source database",
            format!(
                "{} — version {} now; never modified by the upgrade",
                code(&plan.source_db),
                plan.from
            ),
        ),
        ("Target version", plan.to.to_string()),
        (
            "The clone (the scripts run here)",
            format!(
                "{}, made from {} with `CREATE DATABASE … TEMPLATE`; `@DB_NAME@` is this name",
                code(&plan.work_db),
                code(&plan.source_db)
            ),
        ),
        ("Downtime to expect", facts.downtime.clone()),
        ("After the cut-over", cut_over_text(bundle, plan)),
        ("Bundle", bundle.root.display().to_string()),
        ("Bundle sha256", code(&bundle.sha256)),
        ("pgstep version", facts.pgstep_version.clone()),
        (
            "Generated at",
            facts
                .generated_at
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
        ),
    ];
    out.push_str("| Upgrade | |\n|---|---|\n");
    for (name, value) in rows {
        let _ = writeln!(out, "| {name} | {} |", cell(&value));
    }
    out.push('\n');
    out
}

fn cut_over_text(bundle: &Bundle, plan: &UpgradePlan) -> String {
    match (&bundle.naming, &plan.aside_db) {
        (Naming::Fixed { .. }, Some(aside)) => format!(
            "{} is renamed {}, the clone is renamed {}; the old database is kept read-only, closed to users",
            code(&plan.source_db),
            code(aside),
            code(&plan.final_db)
        ),
        _ => format!(
            "users connect to {}; {} is kept read-only, closed to users",
            code(&plan.final_db),
            code(&plan.source_db)
        ),
    }
}

fn steps_table(tallies: &[(&Step, Tally)]) -> String {
    let mut out = String::from(
        "## Steps\n\n| Step | Scripts | Statements | Conditional blocks | Transactions |\n\
         |---|---|---|---|---|\n",
    );
    for (step, t) in tallies {
        let _ = writeln!(
            out,
            "| {} → {} | {} | {} ({} in blocks) | {} | {} |",
            step.from,
            step.to,
            t.scripts,
            t.statements,
            t.in_blocks,
            cell(&t.blocks_text()),
            if step.single_transaction {
                "`single_transaction = true`: all scripts in one transaction"
            } else {
                "`single_transaction = false`: each script in its own session"
            }
        );
    }
    out.push('\n');
    out
}

fn reading_notes(plan: &UpgradePlan, notes: &[String]) -> String {
    let mut out = String::new();
    if !notes.is_empty() {
        out.push_str("## Attention\n\n");
        for n in notes {
            let _ = writeln!(out, "- **{}**", n.replace('\n', " "));
        }
        out.push('\n');
    }
    out.push_str("## How to read this preview\n\n");
    out.push_str(&format!(
        "- Every statement is shown exactly as pgstep will send it, after placeholder \
         substitution (`@DB_NAME@` is the clone, {}), preceded by the `file:line` it comes \
         from. The `;` that ends each one is not sent.\n",
        code(&plan.work_db)
    ));
    out.push_str(
        "- Before each step pgstep checks that the version marker says the step's `from` \
         version, and after it that it says its `to` version.\n\
         - **Conditional blocks** (`#If…` … `#EndIf`) are decided when the script reaches \
         them during the real run, in the script's own session, against the clone as the \
         earlier statements left it. This preview decided them against the source database \
         **as it is now** (read-only, all in one snapshot). That is what the run will find \
         where nothing before the block changes what it tests; for a block that depends on \
         earlier statements of the same step it is an indication only. Where an earlier \
         statement of the same step creates, alters or fills the block's table, the block is \
         marked **decided during the run**, and either outcome must be expected. Changes \
         made inside `DO` blocks or functions are not detected, and the data may \
         change before the night.\n\
         - The statements of a block that would be skipped are shown commented out (`-- `); \
         they are not sent.\n\
         - `[transaction control]` marks a script's own `BEGIN`/`COMMIT`/`ROLLBACK`; \
         `[cannot run in a transaction block]` marks a statement PostgreSQL refuses inside \
         one (`CREATE INDEX CONCURRENTLY`, `VACUUM`, …), which pgstep sends on its own. \
         `\\echo` lines are shown as comments: pgstep logs their text.\n",
    );
    if plan.steps.len() > 1 {
        out.push_str(
            "- This upgrade chains several steps: every block of the second and later steps \
             is decided during the run, against the database the earlier steps left.\n",
        );
    }
    out.push('\n');
    out
}

// --- one step ------------------------------------------------------------------------------

/// Counts for the summary table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    scripts: usize,
    statements: usize,
    in_blocks: usize,
    blocks: usize,
    would_run: usize,
    skipped: usize,
    during_run: usize,
    undecided: usize,
    not_reached: usize,
}

impl Tally {
    fn blocks_text(&self) -> String {
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

fn render_step(
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
        now: Result<bool, String>,
    },
    /// The query failed (and nothing earlier touches the table).
    Undecided(String),
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
    touched: Vec<(Touch, Location)>,
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
            for t in touches(&st.sql) {
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
        self.touched.iter().rev().find_map(|(touch, at)| {
            let hit = match touch {
                Touch::Table(name) => name.may_be(table.schema.as_deref(), &table.name),
                Touch::Index(name) => {
                    index.is_some_and(|i| name.may_be(table.schema.as_deref(), i))
                }
            };
            hit.then(|| {
                let what = match touch {
                    Touch::Table(_) => table.to_string(),
                    Touch::Index(n) => format!("index {}", n.display()),
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
    let now = |r: &Result<bool, String>| match r {
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

// --- what a statement changes ----------------------------------------------------------------

/// A table or index an earlier statement may change.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Touch {
    Table(Name),
    Index(Name),
}

/// A name as written in a statement: unquoted parts folded to lower case, as PostgreSQL does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Name {
    schema: Option<String>,
    name: String,
}

impl Name {
    /// Whether this may be the object `schema.name`. Without a schema on either side the
    /// search_path decides, which the preview cannot know: it counts as a match (the cautious
    /// answer is "decided during the run").
    fn may_be(&self, schema: Option<&str>, name: &str) -> bool {
        self.name == name
            && match (self.schema.as_deref(), schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    fn display(&self) -> String {
        let q = QualName {
            schema: self.schema.clone(),
            name: self.name.clone(),
        };
        q.to_string()
    }
}

/// One token at the start of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An unquoted word, lower-cased.
    Word(String),
    /// A "quoted identifier", exact.
    Quoted(String),
    Dot,
    Comma,
    Other,
}

/// The tables and indexes a statement changes, read from its first words. Only the plain forms
/// are recognised; anything else (a `DO` block, a function call) changes nothing as far as the
/// preview can tell.
fn touches(sql: &str) -> Vec<Touch> {
    let t = head_tokens(sql, 64);
    let kw = |i: usize, w: &str| matches!(t.get(i), Some(Token::Word(x)) if x == w);
    // The names from `i` on: all of a comma-separated list, or just the first.
    let tables = |i: usize| name_list(&t, i).into_iter().map(Touch::Table).collect();
    let table = |i: usize| {
        name_list(&t, i)
            .into_iter()
            .take(1)
            .map(Touch::Table)
            .collect()
    };
    let Some(Token::Word(first)) = t.first() else {
        return Vec::new();
    };
    match first.as_str() {
        "create" => created(&t),
        "alter" if kw(1, "table") => altered_table(&t),
        "alter" if kw(1, "index") => {
            let i = skip_words(&t, 2, &[&["if", "exists"]]);
            name_list(&t, i)
                .into_iter()
                .take(1)
                .map(Touch::Index)
                .collect()
        }
        "drop" if kw(1, "table") => tables(skip_words(&t, 2, &[&["if", "exists"]])),
        "drop" if kw(1, "index") => {
            let i = skip_words(&t, 2, &[&["concurrently"], &["if", "exists"]]);
            name_list(&t, i).into_iter().map(Touch::Index).collect()
        }
        "insert" | "merge" if kw(1, "into") => table(2),
        "update" => table(1),
        "delete" if kw(1, "from") => table(2),
        "truncate" => tables(skip_words(&t, 1, &[&["table"]])),
        "copy" => table(1),
        _ => Vec::new(),
    }
}

/// `CREATE [OR REPLACE] [GLOBAL|LOCAL] [TEMP|TEMPORARY|UNLOGGED] TABLE [IF NOT EXISTS] name`
/// and `CREATE [UNIQUE] INDEX … ON [ONLY] table`.
fn created(t: &[Token]) -> Vec<Touch> {
    let i = skip_words(
        t,
        1,
        &[
            &["or", "replace"],
            &["global"],
            &["local"],
            &["temp"],
            &["temporary"],
            &["unlogged"],
            &["unique"],
        ],
    );
    match t.get(i) {
        Some(Token::Word(w)) if w == "table" => {
            let i = skip_words(t, i + 1, &[&["if", "not", "exists"]]);
            name_at(t, i)
                .map(|(n, _)| vec![Touch::Table(n)])
                .unwrap_or_default()
        }
        Some(Token::Word(w)) if w == "index" => created_index(t, i + 1),
        _ => Vec::new(),
    }
}

/// `CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] [name] ON [ONLY] table`, from after
/// `INDEX`: the index, in its table's schema (where indexes live); an unnamed one gets a name
/// only the server knows, so then the table counts as changed.
fn created_index(t: &[Token], i: usize) -> Vec<Touch> {
    let i = skip_words(t, i, &[&["concurrently"], &["if", "not", "exists"]]);
    let named = match t.get(i) {
        Some(Token::Word(w)) if w == "on" => None,
        _ => name_at(t, i),
    };
    let on = named.as_ref().map_or(i, |(_, next)| *next);
    if !matches!(t.get(on), Some(Token::Word(w)) if w == "on") {
        return Vec::new();
    }
    let Some((table, _)) = name_at(t, skip_words(t, on + 1, &[&["only"]])) else {
        return Vec::new();
    };
    match named {
        Some((index, _)) => vec![Touch::Index(Name {
            schema: table.schema,
            name: index.name,
        })],
        None => vec![Touch::Table(table)],
    }
}

/// `ALTER TABLE [IF EXISTS] [ONLY] name …`, and the new name after `RENAME TO` or the new
/// schema after `SET SCHEMA` (a later `#IfTable new_name` depends on them too).
fn altered_table(t: &[Token]) -> Vec<Touch> {
    let i = skip_words(t, 2, &[&["if", "exists"], &["only"]]);
    let Some((name, next)) = name_at(t, i) else {
        return Vec::new();
    };
    let mut out = vec![Touch::Table(name.clone())];
    let word = |k: usize, w: &str| matches!(t.get(k), Some(Token::Word(x)) if x == w);
    if word(next, "rename")
        && word(next + 1, "to")
        && let Some((new, _)) = name_at(t, next + 2)
    {
        out.push(Touch::Table(Name {
            schema: name.schema.clone(),
            name: new.name,
        }));
    }
    if word(next, "set")
        && word(next + 1, "schema")
        && let Some((schema, _)) = name_at(t, next + 2)
    {
        out.push(Touch::Table(Name {
            schema: Some(schema.name),
            name: name.name,
        }));
    }
    out
}

/// Skips any of the optional word sequences, in any order, from `i`.
fn skip_words(t: &[Token], mut i: usize, optional: &[&[&str]]) -> usize {
    'again: loop {
        for seq in optional {
            let matches = seq
                .iter()
                .enumerate()
                .all(|(k, w)| matches!(t.get(i + k), Some(Token::Word(x)) if x == w));
            if matches {
                i += seq.len();
                continue 'again;
            }
        }
        return i;
    }
}

/// A possibly qualified name at `i` (`a`, `a.b`, `db.a.b`), and the index after it.
fn name_at(t: &[Token], i: usize) -> Option<(Name, usize)> {
    let part = |k: usize| match t.get(k) {
        Some(Token::Word(w) | Token::Quoted(w)) => Some(w.clone()),
        _ => None,
    };
    let mut parts = vec![part(i)?];
    let mut k = i + 1;
    while t.get(k) == Some(&Token::Dot) {
        parts.push(part(k + 1)?);
        k += 2;
    }
    let name = parts.pop()?;
    Some((
        Name {
            schema: parts.pop(),
            name,
        },
        k,
    ))
}

/// Comma-separated names from `i` (`DROP TABLE a, b`), each possibly preceded by `ONLY`.
fn name_list(t: &[Token], mut i: usize) -> Vec<Name> {
    let mut out = Vec::new();
    while let Some((name, next)) = name_at(t, skip_words(t, i, &[&["only"]])) {
        out.push(name);
        if t.get(next) != Some(&Token::Comma) {
            break;
        }
        i = next + 1;
    }
    out
}

/// The first `max` tokens of a statement, up to its first string or dollar quote (the names
/// that matter come before any). Comments are skipped.
fn head_tokens(sql: &str, max: usize) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() && out.len() < max {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => i = skip_block_comment(&chars, i),
            '\'' | '$' => break,
            '"' => {
                let (name, next) = quoted_ident(&chars, i);
                out.push(Token::Quoted(name));
                i = next;
            }
            '.' => {
                out.push(Token::Dot);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                // E'…', B'…', X'…', U&'…' strings start with a letter: stop there too.
                let unicode = word.eq_ignore_ascii_case("u") && chars.get(i) == Some(&'&');
                if chars.get(i) == Some(&'\'') || unicode {
                    break;
                }
                out.push(Token::Word(word.to_lowercase()));
            }
            _ => {
                out.push(Token::Other);
                i += 1;
            }
        }
    }
    out
}

/// The index after a (nested) `/* … */` comment starting at `i`.
fn skip_block_comment(chars: &[char], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < chars.len() {
        if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// A "quoted identifier" starting at `i` (`""` is a quote), and the index after it.
fn quoted_ident(chars: &[char], mut i: usize) -> (String, usize) {
    let mut name = String::new();
    i += 1;
    while i < chars.len() {
        if chars[i] == '"' {
            if chars.get(i + 1) == Some(&'"') {
                name.push('"');
                i += 2;
                continue;
            }
            return (name, i + 1);
        }
        name.push(chars[i]);
        i += 1;
    }
    (name, i)
}

// --- small text helpers ------------------------------------------------------------------------

/// `file:line`, the form editors and `grep -n` understand.
fn place(at: &Location) -> String {
    format!("{}:{}", at.file.display(), at.line)
}

/// Locations in one script: `line 53` for the script itself, `file:line` for included files.
fn places(list: &[Location], script: &Path) -> String {
    list.iter()
        .map(|at| {
            if at.file == script {
                format!("line {}", at.line)
            } else {
                place(at)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statement with its `;`, on a line of its own when the last line ends in a `--` comment
/// (which would swallow it).
fn terminated(sql: &str) -> String {
    let last = sql.rsplit('\n').next().unwrap_or(sql);
    if last.contains("--") {
        format!("{sql}\n;")
    } else {
        format!("{sql};")
    }
}

/// Every line of `text` as an SQL comment.
fn comment(out: &mut String, text: &str) {
    for line in text.split('\n') {
        if line.is_empty() {
            out.push_str("--\n");
        } else {
            let _ = writeln!(out, "-- {line}");
        }
    }
    // The caller adds what follows; drop the final newline so that it controls spacing.
    if out.ends_with('\n') {
        out.pop();
    }
}

/// A fence longer than any run of backticks in the code, so that no statement can end it.
fn fence_for(code: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in code.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat((longest + 1).max(3))
}

/// Inline code that no backtick in `s` can end.
fn code(s: &str) -> String {
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

/// Text for a table cell: no line breaks, no column separators.
fn cell(s: &str) -> String {
    s.replace('\n', " ").replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::bundle::{Baseline, Version};
    use crate::script::{Placeholder, PlaceholderKind, Placeholders, load_script};

    /// A bundle directory with these files, and the scripts loaded from it.
    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new(files: &[(&str, &str)]) -> Fixture {
            let dir = tempfile::tempdir().expect("tempdir");
            for (path, text) in files {
                let p = dir.path().join(path);
                std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                std::fs::write(p, text).expect("write");
            }
            Fixture { dir }
        }

        fn script(&self, path: &str) -> Script {
            load_script(self.dir.path(), Path::new(path), &placeholders())
                .unwrap_or_else(|e| panic!("{e}"))
        }

        fn bundle(&self, steps: &[(u32, bool)]) -> Bundle {
            Bundle {
                root: self.dir.path().to_path_buf(),
                name: "clinic".into(),
                description: Some("Clinic | records".into()),
                pre_release: false,
                min_server_version: None,
                naming: Naming::Versioned {
                    pattern: "clinic_v{major}".into(),
                },
                schemas: vec!["clinic".into()],
                version_query: "SELECT 1".into(),
                baseline: Baseline {
                    version: Version::new(1, 0),
                    scripts: vec![],
                },
                steps: steps
                    .iter()
                    .map(|&(from, single_transaction)| Step {
                        from: Version::new(from, 0),
                        to: Version::new(from + 1, 0),
                        scripts: vec![],
                        single_transaction,
                    })
                    .collect(),
                fixups: vec![],
                fingerprints: BTreeMap::new(),
                prechecks: vec![],
                plausibility: vec![],
                banner: None,
                notify_channels: vec![],
                placeholders: BTreeMap::new(),
                session: vec![],
                sha256: "b".repeat(64),
            }
        }
    }

    /// What `pgstep plan` passes: the bundle's values and DB_NAME = the clone.
    fn placeholders() -> Placeholders {
        let mut p = Placeholders::new();
        for (name, kind, value) in [
            ("APP_ROLE", PlaceholderKind::Identifier, "clinic_app"),
            ("TIME_ZONE", PlaceholderKind::Literal, "Europe/Berlin"),
            ("DB_NAME", PlaceholderKind::Identifier, "clinic_v2"),
            ("DB_USER", PlaceholderKind::Identifier, "postgres"),
        ] {
            p.insert(
                name.into(),
                Placeholder {
                    kind,
                    value: value.into(),
                },
            );
        }
        p
    }

    fn plan(steps: usize) -> UpgradePlan {
        let to = u32::try_from(steps).expect("steps") + 1;
        UpgradePlan {
            from: Version::new(1, 0),
            to: Version::new(to, 0),
            steps: (0..steps).collect(),
            source_db: "clinic_v1".into(),
            work_db: format!("clinic_v{to}"),
            final_db: format!("clinic_v{to}"),
            aside_db: None,
        }
    }

    fn facts() -> Facts {
        Facts {
            server: "db.example:5432".into(),
            user: "postgres".into(),
            server_version: "17.2".into(),
            pgstep_version: "0.1.0".into(),
            generated_at: DateTime::parse_from_rfc3339("2026-11-21T02:00:00Z")
                .expect("time")
                .with_timezone(&Utc),
            notes: vec![],
            downtime: "about 4.2 s".into(),
        }
    }

    /// A fake server: these tables exist, and nothing else does; records what was asked.
    struct FakeDb {
        tables: Vec<&'static str>,
        asked: Vec<String>,
    }

    impl FakeDb {
        fn new(tables: &[&'static str]) -> FakeDb {
            FakeDb {
                tables: tables.to_vec(),
                asked: Vec::new(),
            }
        }

        fn decide(&mut self, c: &Condition) -> Result<bool, String> {
            self.asked.push(c.describe());
            let exists = self.tables.contains(&c.table().to_string().as_str());
            match c {
                Condition::IfNotTable(_) => Ok(!exists),
                Condition::IfTable(_) => Ok(exists),
                Condition::IfNotRow(..) if c.table().name == "broken" => {
                    Err("ERROR 42501: permission denied for table broken".into())
                }
                _ => Ok(false),
            }
        }
    }

    fn preview(fx: &Fixture, scripts: &[&[&str]], single: bool, db: &mut FakeDb) -> String {
        let steps: Vec<(u32, bool)> = (1..=scripts.len())
            .map(|n| (u32::try_from(n).expect("n"), single))
            .collect();
        let loaded: Vec<Vec<Script>> = scripts
            .iter()
            .map(|s| s.iter().map(|p| fx.script(p)).collect())
            .collect();
        render(
            &fx.bundle(&steps),
            &plan(scripts.len()),
            &loaded,
            &facts(),
            &mut |c| db.decide(c),
        )
    }

    const TABLES: &str = "\\echo clinic 1 -> 2
SET work_mem = '64MB';
BEGIN;
-- #IfNotTable clinic.allergy
CREATE TABLE clinic.allergy (id bigint);
GRANT SELECT ON clinic.allergy TO @APP_ROLE@;
-- #EndIf
-- #IfTable clinic.old_notes
DROP TABLE clinic.old_notes;
-- #EndIf
COMMIT;
CREATE INDEX CONCURRENTLY allergy_id_idx ON clinic.allergy (id);
COMMENT ON DATABASE @DB_NAME@ IS 'zone @TIME_ZONE@';
";

    #[test]
    fn a_block_is_shown_as_it_would_run_or_be_skipped_now() {
        let fx = Fixture::new(&[("v1-v2/01.sql", TABLES)]);
        let mut db = FakeDb::new(&["clinic.patient"]);
        let text = preview(&fx, &[&["v1-v2/01.sql"]], false, &mut db);
        assert!(
            text.contains(
                "-- v1-v2/01.sql:4\n-- #IfNotTable clinic.allergy: would run (as the database is now)\n\
                 -- v1-v2/01.sql:5\nCREATE TABLE clinic.allergy (id bigint);\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "-- #IfTable clinic.old_notes: would be skipped (as the database is now)\n\
                 -- v1-v2/01.sql:9 (skipped: not sent)\n-- DROP TABLE clinic.old_notes;\n"
            ),
            "the skipped body is commented out:\n{text}"
        );
        assert!(text.contains("-- #EndIf (#IfTable clinic.old_notes)"));
        assert!(
            text.contains("| 1 → 2 | 1 | 8 (3 in blocks) | 2: 1 would run, 1 would be skipped |"),
            "{text}"
        );
        assert_eq!(
            db.asked,
            ["#IfNotTable clinic.allergy", "#IfTable clinic.old_notes"]
        );
    }

    #[test]
    fn statements_are_shown_with_placeholders_substituted() {
        let fx = Fixture::new(&[("v1-v2/01.sql", TABLES)]);
        let text = preview(&fx, &[&["v1-v2/01.sql"]], false, &mut FakeDb::new(&[]));
        assert!(text.contains("GRANT SELECT ON clinic.allergy TO \"clinic_app\";"));
        assert!(
            text.contains("COMMENT ON DATABASE \"clinic_v2\" IS 'zone ''Europe/Berlin''';"),
            "DB_NAME is the clone, literals quoted:\n{text}"
        );
        assert!(!text.contains("@APP_ROLE@") && !text.contains("@DB_NAME@ IS"));
        assert!(text.contains("-- v1-v2/01.sql:1\n-- \\echo clinic 1 -> 2\n\n"));
    }

    #[test]
    fn every_script_has_its_checksum_and_included_files_theirs() {
        let fx = Fixture::new(&[
            ("v1-v2/01.sql", TABLES),
            ("v1-v2/02.sql", "\\ir lib/grants.sql\nSELECT 2;\n"),
            (
                "v1-v2/lib/grants.sql",
                "GRANT USAGE ON SCHEMA clinic TO @APP_ROLE@;\n",
            ),
        ]);
        let one = fx.script("v1-v2/01.sql");
        let two = fx.script("v1-v2/02.sql");
        let text = preview(
            &fx,
            &[&["v1-v2/01.sql", "v1-v2/02.sql"]],
            false,
            &mut FakeDb::new(&[]),
        );
        assert!(text.contains(&format!(
            "### 1.1 `v1-v2/01.sql`\n\n- sha256 `{}` (the file; it includes no other file)",
            one.sha256
        )));
        assert!(text.contains(&format!(
            "### 1.2 `v1-v2/02.sql`\n\n- sha256 `{}` (covers the file and the 1 file(s) it includes); the file alone: `{}`",
            two.combined_sha256(),
            two.sha256
        )));
        assert!(text.contains(&format!(
            "  - includes `v1-v2/lib/grants.sql`: sha256 `{}`",
            two.included[0].1
        )));
        assert!(text.contains(
            "-- v1-v2/lib/grants.sql:1\nGRANT USAGE ON SCHEMA clinic TO \"clinic_app\";"
        ));
        assert!(text.contains(&format!("| Bundle sha256 | `{}` |", "b".repeat(64))));
    }

    #[test]
    fn statements_outside_transactions_and_transaction_control_are_flagged() {
        let fx = Fixture::new(&[("v1-v2/01.sql", TABLES)]);
        let text = preview(&fx, &[&["v1-v2/01.sql"]], false, &mut FakeDb::new(&[]));
        assert!(text.contains(
            "-- v1-v2/01.sql:12  [cannot run in a transaction block]\nCREATE INDEX CONCURRENTLY"
        ));
        assert!(text.contains("-- v1-v2/01.sql:3  [transaction control]\nBEGIN;"));
        assert!(text.contains("-- v1-v2/01.sql:11  [transaction control]\nCOMMIT;"));
        assert!(
            text.contains("- manages its own transaction: transaction control at line 3, line 11")
        );
        assert!(text.contains("- cannot run inside a transaction block: line 12"));
        assert!(text.contains("`single_transaction = false`: each script runs in its own session"));
    }

    #[test]
    fn a_block_whose_table_an_earlier_statement_changes_is_decided_during_the_run() {
        let script = "\
CREATE TABLE clinic.allergen (code text);
-- #IfNotRow clinic.allergen code pen
INSERT INTO clinic.allergen VALUES ('pen');
-- #EndIf
-- #IfNotTable clinic.patient
CREATE TABLE clinic.patient (id int);
-- #EndIf
";
        let fx = Fixture::new(&[("v1-v2/01.sql", script)]);
        let text = preview(
            &fx,
            &[&["v1-v2/01.sql"]],
            false,
            &mut FakeDb::new(&["clinic.patient"]),
        );
        assert!(
            text.contains(
                "-- #IfNotRow clinic.allergen code pen: decided during the run: an earlier statement \
                 changes clinic.allergen (v1-v2/01.sql:1)\n--   (as the database is now it would be skipped)\n\
                 -- v1-v2/01.sql:3\nINSERT INTO clinic.allergen VALUES ('pen');"
            ),
            "shown as sent, not commented out:\n{text}"
        );
        assert!(
            text.contains(
                "-- #IfNotTable clinic.patient: would be skipped (as the database is now)"
            )
        );
    }

    #[test]
    fn blocks_of_later_steps_in_a_chain_are_decided_during_the_run() {
        let fx = Fixture::new(&[
            ("a.sql", "SELECT 1;\n"),
            (
                "b.sql",
                "-- #IfNotTable clinic.audit\nCREATE TABLE clinic.audit (id int);\n-- #EndIf\n",
            ),
        ]);
        let text = preview(&fx, &[&["a.sql"], &["b.sql"]], true, &mut FakeDb::new(&[]));
        assert!(text.contains(
            "-- #IfNotTable clinic.audit: decided during the run: step 1 → 2 changes the database first"
        ), "{text}");
        assert!(text.contains("## Step 2: 2 → 3"));
        assert!(text.contains("pgstep sends `BEGIN` before the first script"));
        assert!(text.contains("This upgrade chains several steps"));
    }

    #[test]
    fn a_condition_that_cannot_be_decided_says_why_and_inner_blocks_of_skipped_ones_are_not_asked()
    {
        let script = "\
-- #IfNotRow clinic.broken code x
SELECT 1;
-- #EndIf
-- #IfTable clinic.gone
-- #IfNotTable clinic.inner
SELECT 2;
-- #EndIf
-- #EndIf
";
        let fx = Fixture::new(&[("s.sql", script)]);
        let mut db = FakeDb::new(&[]);
        let text = preview(&fx, &[&["s.sql"]], false, &mut db);
        assert!(text.contains(
            "-- #IfNotRow clinic.broken code x: could not be decided now, so it is decided during the run: ERROR 42501: permission denied"
        ), "{text}");
        assert!(text.contains(
            "-- #IfNotTable clinic.inner: not reached (inside a block that would be skipped)"
        ));
        assert!(text.contains("-- s.sql:6 (skipped: not sent)\n-- SELECT 2;"));
        assert_eq!(
            db.asked,
            ["#IfNotRow clinic.broken code x", "#IfTable clinic.gone"]
        );
        assert!(text.contains("| 2 (2 in blocks) | 3: 1 would be skipped, 1 could not be decided now, 1 inside skipped blocks |"), "{text}");
    }

    #[test]
    fn what_a_statement_changes_is_read_from_its_first_words() {
        let t = |schema: Option<&str>, name: &str| {
            Touch::Table(Name {
                schema: schema.map(str::to_owned),
                name: name.into(),
            })
        };
        let i = |schema: Option<&str>, name: &str| {
            Touch::Index(Name {
                schema: schema.map(str::to_owned),
                name: name.into(),
            })
        };
        let cases: Vec<(&str, Vec<Touch>)> = vec![
            (
                "CREATE TABLE clinic.a (id int)",
                vec![t(Some("clinic"), "a")],
            ),
            (
                "create unlogged table if not exists \"Clinic\".\"A b\" (x int)",
                vec![t(Some("Clinic"), "A b")],
            ),
            ("CREATE TEMP TABLE w AS VALUES (1)", vec![t(None, "w")]),
            (
                "ALTER TABLE ONLY clinic.p ADD COLUMN e text",
                vec![t(Some("clinic"), "p")],
            ),
            (
                "ALTER TABLE clinic.p RENAME TO q",
                vec![t(Some("clinic"), "p"), t(Some("clinic"), "q")],
            ),
            (
                "ALTER TABLE p SET SCHEMA archive",
                vec![t(None, "p"), t(Some("archive"), "p")],
            ),
            (
                "DROP TABLE IF EXISTS a, clinic.b CASCADE",
                vec![t(None, "a"), t(Some("clinic"), "b")],
            ),
            (
                "DROP INDEX CONCURRENTLY IF EXISTS clinic.i",
                vec![i(Some("clinic"), "i")],
            ),
            (
                "CREATE UNIQUE INDEX CONCURRENTLY i ON ONLY clinic.e (x)",
                vec![i(Some("clinic"), "i")],
            ),
            ("CREATE INDEX ON clinic.e (x)", vec![t(Some("clinic"), "e")]),
            (
                "INSERT INTO clinic.a (x) VALUES ('DROP TABLE b')",
                vec![t(Some("clinic"), "a")],
            ),
            (
                "UPDATE ONLY clinic.a SET x = 1",
                vec![t(Some("clinic"), "a")],
            ),
            (
                "DELETE FROM clinic.a WHERE true",
                vec![t(Some("clinic"), "a")],
            ),
            (
                "TRUNCATE TABLE ONLY a, ONLY b",
                vec![t(None, "a"), t(None, "b")],
            ),
            (
                "/* note */ -- x\n  insert into a values (1)",
                vec![t(None, "a")],
            ),
            ("SELECT 1", vec![]),
            ("DO $$ BEGIN CREATE TABLE x (); END $$", vec![]),
            ("CREATE VIEW v AS SELECT 1", vec![]),
        ];
        for (sql, want) in cases {
            assert_eq!(touches(sql), want, "{sql}");
        }
    }

    #[test]
    fn file_names_are_safe_and_say_what_and_when() {
        let mut p = plan(1);
        assert_eq!(
            file_name(&p, facts().generated_at),
            "clinic_v1-1-to-2-20261121T020000Z.md"
        );
        p.source_db = "../odd name".into();
        assert_eq!(
            file_name(&p, facts().generated_at),
            ".._odd_name-1-to-2-20261121T020000Z.md"
        );
    }

    #[test]
    fn code_that_contains_backticks_cannot_end_its_fence() {
        assert_eq!(fence_for("SELECT 1"), "```");
        assert_eq!(fence_for("SELECT '````'"), "`````");
        assert_eq!(terminated("SELECT 1 -- one"), "SELECT 1 -- one\n;");
        assert_eq!(terminated("SELECT 1"), "SELECT 1;");
        assert_eq!(cell("a | b\nc"), "a \\| b c");
    }
}

//! The top of the preview: the table of facts, the steps table and how to read the rest.

use std::fmt::Write as _;

use super::Facts;
use super::markdown::{cell, code};
use super::walker::Tally;
use crate::bundle::{Bundle, Naming, Step};
use crate::engine::plan::UpgradePlan;

/// The title, what the file is, and the table of facts about the upgrade.
pub(super) fn header(bundle: &Bundle, plan: &UpgradePlan, facts: &Facts) -> String {
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
    out.push_str("| Upgrade | |\n|---|---|\n");
    for (name, value) in facts_rows(bundle, plan, facts) {
        let _ = writeln!(out, "| {name} | {} |", cell(&value));
    }
    out.push('\n');
    out
}

/// The rows of the header's table, in order.
fn facts_rows(bundle: &Bundle, plan: &UpgradePlan, facts: &Facts) -> [(&'static str, String); 12] {
    let application = match &bundle.description {
        Some(d) => format!("{} — {d}", bundle.name),
        None => bundle.name.clone(),
    };
    let server = if facts.server_version.is_empty() {
        facts.server.clone()
    } else {
        format!("{}, PostgreSQL {}", facts.server, facts.server_version)
    };
    let source = format!(
        "{} — version {} now; never modified by the upgrade",
        code(&plan.source_db),
        plan.from
    );
    let clone = format!(
        "{}, made from {} with `CREATE DATABASE … TEMPLATE`; `@DB_NAME@` is this name",
        code(&plan.work_db),
        code(&plan.source_db)
    );
    [
        ("Application", application),
        ("Server", server),
        ("Connected as", code(&facts.user)),
        ("Source database", source),
        ("Target version", plan.to.to_string()),
        ("The clone (the scripts run here)", clone),
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
    ]
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

pub(super) fn steps_table(tallies: &[(&Step, Tally)]) -> String {
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

pub(super) fn reading_notes(plan: &UpgradePlan, notes: &[String]) -> String {
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

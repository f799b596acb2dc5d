//! Checks that compare the old database with the new one: GNUmed's plausibility pairs.

use postgres::{Client, SimpleQueryMessage};

use super::session::describe;
use crate::bundle::Plausibility;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckResult {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

type Rows = Vec<Vec<Option<String>>>;

/// Runs a pair's old query on the old database and its new query on the new one; they must
/// return the same rows (compared as text).
pub fn plausibility(old: &mut Client, new: &mut Client, pair: &Plausibility) -> CheckResult {
    let result = read_rows(old, &pair.old).and_then(|o| Ok((o, read_rows(new, &pair.new)?)));
    let (ok, detail) = match result {
        Ok((o, n)) if o == n => (true, format!("both give {}", show(&o))),
        Ok((o, n)) => (
            false,
            format!(
                "old database gives {}, new database gives {}",
                show(&o),
                show(&n)
            ),
        ),
        Err(e) => (false, format!("the query failed: {e}")),
    };
    CheckResult {
        name: format!("plausibility: {}", pair.name),
        ok,
        detail,
    }
}

/// Runs a query in a read-only transaction and returns its rows as text.
pub fn read_rows(client: &mut Client, sql: &str) -> Result<Rows, String> {
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| describe(&e))?;
    let messages = tx.simple_query(sql).map_err(|e| describe(&e))?;
    // Nothing to keep from a read-only transaction.
    let _ = tx.rollback();
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect())
}

fn show(rows: &Rows) -> String {
    const MAX: usize = 3;
    let shown: Vec<String> = rows
        .iter()
        .take(MAX)
        .map(|r| {
            r.iter()
                .map(|v| v.as_deref().unwrap_or("NULL"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let more = rows.len().saturating_sub(MAX);
    match (rows.len(), more) {
        (0, _) => "no rows".to_owned(),
        (_, 0) => format!("[{}]", shown.join("; ")),
        _ => format!("[{}; … {more} more rows]", shown.join("; ")),
    }
}

/// Runs a precheck script in a READ ONLY transaction: every row a statement returns is a
/// problem to show the operator (OMERO-style checks, runnable before the downtime).
pub fn run_precheck(
    client: &mut Client,
    script: &crate::script::Script,
) -> Result<Vec<String>, String> {
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| describe(&e))?;
    let mut problems = Vec::new();
    precheck_nodes(&mut tx, &script.nodes, &mut problems)?;
    // Read-only: nothing to keep.
    let _ = tx.rollback();
    Ok(problems)
}

fn precheck_nodes(
    tx: &mut postgres::Transaction<'_>,
    nodes: &[crate::script::Node],
    problems: &mut Vec<String>,
) -> Result<(), String> {
    use crate::script::Node;
    for node in nodes {
        match node {
            Node::Statement(st) => {
                let messages = tx
                    .simple_query(&st.sql)
                    .map_err(|e| format!("{}: {}", st.at, describe(&e)))?;
                for m in &messages {
                    if let SimpleQueryMessage::Row(r) = m {
                        let values: Vec<&str> =
                            (0..r.len()).map(|i| r.get(i).unwrap_or("NULL")).collect();
                        problems.push(format!("{}: {}", st.at, values.join(" | ")));
                    }
                }
            }
            Node::Block {
                condition,
                at,
                body,
            } => {
                let (sql, params) = condition.query();
                let params: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|p| p as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                let run: Option<bool> = tx
                    .query_one(sql.as_str(), &params)
                    .map_err(|e| format!("{at}: {}", describe(&e)))?
                    .get(0);
                if run.unwrap_or(false) {
                    precheck_nodes(tx, body, problems)?;
                }
            }
            Node::Echo { .. } => {}
        }
    }
    Ok(())
}

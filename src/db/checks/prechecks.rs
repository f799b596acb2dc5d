//! Prechecks: a bundle's read-only scripts whose every returned row is a problem to show the
//! operator before the downtime (OMERO-style).

use postgres::Client;

use crate::db::session::describe;

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
    crate::db::readonly::pin_read_only(&mut tx)?;
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
                if let Some(why) = crate::script::read_only_statement_problem(&st.sql) {
                    return Err(format!("{}: {why}", st.at));
                }
                let rows = crate::db::readonly::rows_as_text(tx, &st.sql)
                    .map_err(|e| format!("{}: {e}", st.at))?;
                for r in &rows {
                    let values: Vec<&str> =
                        r.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
                    problems.push(format!("{}: {}", st.at, values.join(" | ")));
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

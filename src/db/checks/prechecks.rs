//! Prechecks: a bundle's read-only scripts whose every returned row is a problem to show the
//! operator before the downtime (OMERO-style).

use postgres::Client;

use crate::db::readonly::ReadError;
use crate::script::Location;

/// Why a precheck could not run (not: a problem it found).
#[derive(Debug, thiserror::Error)]
pub enum PrecheckError {
    /// Its transaction could not be started or made read-only.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A statement that could write (a precheck only reads).
    #[error("{at}: {why}")]
    NotReadOnly { at: Location, why: String },
    /// A statement or a block's condition failed.
    #[error("{at}: {cause}")]
    Statement { at: Location, cause: ReadError },
}

/// Runs a precheck script in a READ ONLY transaction: every row a statement returns is a
/// problem to show the operator (OMERO-style checks, runnable before the downtime).
pub fn run_precheck(
    client: &mut Client,
    script: &crate::script::Script,
) -> Result<Vec<String>, PrecheckError> {
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(ReadError::from)?;
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
) -> Result<(), PrecheckError> {
    use crate::script::Node;
    for node in nodes {
        match node {
            Node::Statement(st) => {
                if let Some(why) = crate::script::read_only_statement_problem(&st.sql) {
                    return Err(PrecheckError::NotReadOnly {
                        at: st.at.clone(),
                        why,
                    });
                }
                let rows = crate::db::readonly::rows_as_text(tx, &st.sql).map_err(|cause| {
                    PrecheckError::Statement {
                        at: st.at.clone(),
                        cause,
                    }
                })?;
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
                    .map_err(|e| PrecheckError::Statement {
                        at: at.clone(),
                        cause: e.into(),
                    })?
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

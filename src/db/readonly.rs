//! Bundle SQL run against a database pgstep must not change (the version query, the banner's
//! `get`, the sides of plausibility pairs, prechecks), made unable to write:
//!
//! * one statement, checked with pgstep's own lexer (bundle validation refuses more, and
//!   transaction control, before anything connects; checked again here);
//! * sent through the extended protocol (Parse/Bind/Execute), which PostgreSQL refuses for more
//!   than one statement ("cannot insert multiple commands into a prepared statement");
//! * inside a READ ONLY transaction whose snapshot is taken first by a harmless `SELECT`, after
//!   which PostgreSQL refuses to make it read-write (`set_config('transaction_read_only', 'off',
//!   …)` fails with "transaction read-write mode must be set before any query").
//!
//! Values come back as text, as `psql` shows them: each column is written by its type's output
//! function (`format('%s', …)`) by wrapping the statement in `SELECT … FROM (…) AS q(c1, …)`;
//! a statement that cannot be a subquery (SHOW, EXPLAIN) is read directly, for common types.

use postgres::types::Type;
use postgres::{Client, GenericClient, Row};

use super::session::{DbError, describe};

/// A query's rows, every value as text (NULL as None).
pub type Rows = Vec<Vec<Option<String>>>;

/// Why a read-only read gave no rows: pgstep refused the statement, the server failed it, or
/// a value could not be read as text.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not exactly one statement pgstep may send (its own lexer says so).
    #[error("refused to run it (line {line} of the query): {message}")]
    NotOneStatement { line: u32, message: String },
    /// The server refused or failed a query (or the connection was lost).
    #[error("{}", describe(.0))]
    Server(#[from] postgres::Error),
    /// A value the driver could not decode as the column's type.
    #[error("{0}")]
    Decode(postgres::Error),
    /// A column of a type pgstep cannot read as text outside a subquery.
    #[error(
        "column {column} is of type {ty}, which pgstep cannot read as text outside a SELECT: \
         write the query as a SELECT"
    )]
    NotText { column: usize, ty: Type },
    /// A snapshot id that is not one (it is quoted into `SET TRANSACTION SNAPSHOT`).
    #[error("not a snapshot id: {0:?}")]
    NotASnapshot(String),
    /// The exported snapshot could not be taken (its holder is gone, …).
    #[error("cannot read the snapshot {id}: {}", describe(.source))]
    Snapshot { id: String, source: postgres::Error },
    /// A read made by one of pgstep's own database operations.
    #[error(transparent)]
    Db(Box<DbError>),
}

impl From<DbError> for ReadError {
    fn from(e: DbError) -> Self {
        Self::Db(Box::new(e))
    }
}

/// Runs the one statement `sql` in a READ ONLY transaction of its own and returns its rows as
/// text.
pub fn read_rows(client: &mut Client, sql: &str) -> Result<Rows, ReadError> {
    let statement = one_statement(sql)?;
    let mut tx = client.build_transaction().read_only(true).start()?;
    pin_read_only(&mut tx)?;
    let rows = rows_as_text(&mut tx, &statement);
    // Read-only: nothing to keep.
    let _ = tx.rollback();
    rows
}

/// The statement `sql` holds, or why it is not exactly one statement pgstep may send.
pub fn one_statement(sql: &str) -> Result<String, ReadError> {
    crate::script::single_read_query(sql).map_err(|e| ReadError::NotOneStatement {
        line: e.at.line,
        message: e.message,
    })
}

/// Takes the snapshot of the transaction `c` is in with a harmless first query: from then on the
/// server refuses to make a READ ONLY transaction read-write.
pub fn pin_read_only(c: &mut impl GenericClient) -> Result<(), ReadError> {
    c.query_one("SELECT 1", &[])?;
    Ok(())
}

/// Runs one statement through the extended protocol in the transaction `c` is in and returns
/// its rows as text; a statement that returns no columns (SET) gives no rows.
pub fn rows_as_text(c: &mut impl GenericClient, sql: &str) -> Result<Rows, ReadError> {
    let statement = c.prepare(sql)?;
    let n = statement.columns().len();
    if n == 0 {
        c.execute(&statement, &[])?;
        return Ok(Rows::new());
    }
    let names: Vec<String> = (1..=n).map(|i| format!("c{i}")).collect();
    // format('%s') writes a value with its type's output function, as psql shows it (a cast
    // to text may differ: true::text is 'true', psql shows 't').
    let casts: Vec<String> = names
        .iter()
        .map(|c| {
            format!("CASE WHEN q.{c} IS NULL THEN NULL ELSE pg_catalog.format('%s', q.{c}) END")
        })
        .collect();
    // On lines of their own: a statement may end with a `--` comment.
    let wrapped = format!(
        "SELECT {} FROM (\n{sql}\n) AS q ({})",
        casts.join(", "),
        names.join(", ")
    );
    // The wrapped form is tried in a savepoint: a statement that cannot be a subquery must not
    // end the transaction for the direct read.
    c.batch_execute("SAVEPOINT pgstep_text")?;
    match c.prepare(&wrapped) {
        Ok(w) => {
            let rows = c.query(&w, &[])?;
            c.batch_execute("RELEASE SAVEPOINT pgstep_text")?;
            Ok(rows
                .iter()
                .map(|r| (0..n).map(|i| r.get::<_, Option<String>>(i)).collect())
                .collect())
        }
        Err(_) => {
            c.batch_execute("ROLLBACK TO SAVEPOINT pgstep_text")?;
            let rows = c.query(&statement, &[])?;
            rows.iter()
                .map(|r| (0..n).map(|i| text_of(r, i)).collect())
                .collect()
        }
    }
}

/// One value of a common type as PostgreSQL's text output gives it.
fn text_of(row: &Row, i: usize) -> Result<Option<String>, ReadError> {
    let ty = row.columns()[i].type_().clone();
    let text = match ty {
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR | Type::UNKNOWN => row
            .try_get::<_, Option<String>>(i)
            .map_err(ReadError::Decode)?,
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map_err(ReadError::Decode)?
            .map(|v| v.to_string()),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(ReadError::Decode)?
            .map(|v| v.to_string()),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map_err(ReadError::Decode)?
            .map(|v| v.to_string()),
        Type::OID => row
            .try_get::<_, Option<u32>>(i)
            .map_err(ReadError::Decode)?
            .map(|v| v.to_string()),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map_err(ReadError::Decode)?
            .map(|v| if v { "t" } else { "f" }.to_owned()),
        ty => return Err(ReadError::NotText { column: i + 1, ty }),
    };
    Ok(text)
}

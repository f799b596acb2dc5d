//! Runs a loaded script statement by statement in one session, as `psql -f` would: the script's
//! own BEGIN/COMMIT, statements outside transactions, CONCURRENTLY, pg_temp helpers all behave as
//! they do there. Conditional blocks are decided when they are reached, against the database as
//! the earlier statements left it.

use std::fmt;
use std::time::{Duration, Instant};

use postgres::SimpleQueryMessage;

use super::session::Session;
use crate::cancel::Cancel;
use crate::events::{Event, Level, Observer, Unit, log};
use crate::script::{Location, Node, Script, Statement, StatementKind};

/// How many rows of a statement's result are shown as log lines.
const SHOWN_ROWS: usize = 10;

/// What running a script did.
#[derive(Debug, Default, Clone)]
pub struct RunStats {
    pub statements: u64,
    pub skipped_blocks: u64,
    pub elapsed: Duration,
}

/// A statement the server refused: everything the operator needs to find and fix it.
#[derive(Debug, Clone)]
pub struct SqlFailure {
    /// Where the server says the error is: the position it names, else the statement's start.
    pub at: Location,
    /// Where the failing statement starts.
    pub statement_at: Location,
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub context: Option<String>,
    pub statement: String,
}

/// A script that failed, with where and why.
#[derive(Debug, Clone)]
pub enum RunError {
    /// The server refused a statement.
    Sql(Box<SqlFailure>),
    /// The connection failed or was lost.
    Connection { at: Location, message: String },
    /// The script ended inside a transaction it opened (psql would silently roll it back).
    OpenTransaction { begun_at: Location },
    /// The operator cancelled before this statement.
    Cancelled { before: Location },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Sql(failure) => {
                let SqlFailure {
                    at,
                    statement_at: _,
                    sqlstate,
                    message,
                    detail,
                    hint,
                    context,
                    statement,
                } = failure.as_ref();
                write!(f, "{at}: ERROR {sqlstate}: {message}")?;
                if let Some(d) = detail {
                    write!(f, "\n  DETAIL: {d}")?;
                }
                if let Some(h) = hint {
                    write!(f, "\n  HINT: {h}")?;
                }
                if let Some(c) = context {
                    write!(f, "\n  CONTEXT: {}", c.replace('\n', "\n           "))?;
                }
                write!(f, "\n  STATEMENT: {}", excerpt(statement))
            }
            RunError::Connection { at, message } => write!(f, "{at}: {message}"),
            RunError::Cancelled { before } => write!(
                f,
                "cancelled by the operator before the statement at {before}"
            ),
            RunError::OpenTransaction { begun_at } => write!(
                f,
                "{begun_at}: the script opens a transaction here and ends without COMMIT \
                 (psql would silently roll it back): add COMMIT at the end of the script"
            ),
        }
    }
}

impl std::error::Error for RunError {}

impl RunError {
    /// Where in the script it happened, as data: the failing statement's position, the
    /// statement that was not run, the BEGIN left open.
    pub fn location(&self) -> &Location {
        match self {
            RunError::Sql(failure) => &failure.at,
            RunError::Connection { at, .. } => at,
            RunError::OpenTransaction { begun_at } => begun_at,
            RunError::Cancelled { before } => before,
        }
    }
}

/// Runs every statement of `script` in `session`, reporting progress and the server's notices.
pub fn run_script(
    session: &mut Session,
    script: &Script,
    obs: &mut dyn Observer,
) -> Result<RunStats, RunError> {
    run_script_cancellable(session, script, obs, &Cancel::new())
}

/// Like [`run_script`], stopping between statements when cancellation is requested, and
/// cancelling the running statement when it is requested a second time.
pub fn run_script_cancellable(
    session: &mut Session,
    script: &Script,
    obs: &mut dyn Observer,
    cancel: &Cancel,
) -> Result<RunStats, RunError> {
    let started = Instant::now();
    let mut run = Run {
        session,
        obs,
        cancel,
        stats: RunStats::default(),
        total: count_statements(&script.nodes),
        open_transaction: None,
    };
    run.nodes(&script.nodes)?;
    if let Some(begun_at) = run.open_transaction.take() {
        return Err(RunError::OpenTransaction { begun_at });
    }
    run.stats.elapsed = started.elapsed();
    Ok(run.stats)
}

/// Statements in a script, counting those inside conditional blocks.
pub fn count_statements(nodes: &[Node]) -> u64 {
    nodes
        .iter()
        .map(|n| match n {
            Node::Statement(_) => 1,
            Node::Block { body, .. } => count_statements(body),
            Node::Echo { .. } => 0,
        })
        .sum()
}

struct Run<'a> {
    session: &'a mut Session,
    obs: &'a mut dyn Observer,
    cancel: &'a Cancel,
    stats: RunStats,
    total: u64,
    open_transaction: Option<Location>,
}

impl Run<'_> {
    fn nodes(&mut self, nodes: &[Node]) -> Result<(), RunError> {
        for node in nodes {
            match node {
                Node::Statement(st) => self.statement(st)?,
                Node::Echo { text, .. } => log(self.obs, Level::Info, text.clone()),
                Node::Block {
                    condition,
                    at,
                    body,
                } => {
                    if self.condition(condition, at)? {
                        self.nodes(body)?;
                    } else {
                        self.stats.skipped_blocks += 1;
                        self.stats.statements += count_statements(body);
                        log(
                            self.obs,
                            Level::Info,
                            format!("{at}: {}: block skipped", condition.describe()),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    fn condition(
        &mut self,
        condition: &crate::script::Condition,
        at: &Location,
    ) -> Result<bool, RunError> {
        let (sql, params) = condition.query();
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn postgres::types::ToSql + Sync))
            .collect();
        let row = self
            .session
            .client
            .query_one(sql.as_str(), &params)
            .map_err(|e| to_run_error(&e, at.clone(), &condition.describe(), None))?;
        Ok(row.get::<_, Option<bool>>(0).unwrap_or(false))
    }

    fn statement(&mut self, st: &Statement) -> Result<(), RunError> {
        if self.cancel.requested() {
            return Err(RunError::Cancelled {
                before: st.at.clone(),
            });
        }
        let token = self.session.client.cancel_token();
        self.cancel.set_interrupt(Some(Box::new(move || {
            // Best effort: if the statement already finished, there is nothing to cancel.
            let _ = token.cancel_query(postgres::NoTls);
        })));
        let result = self.session.client.simple_query(&st.sql);
        self.cancel.set_interrupt(None);
        self.session.drain_notices(self.obs);
        let messages = result.map_err(|e| to_run_error(&e, st.at.clone(), &st.sql, Some(st)))?;
        self.show_rows(&messages);
        self.track_transaction(st);
        self.stats.statements += 1;
        if self.stats.statements == 3 {
            // Between two statements of a script (the third and the fourth).
            crate::faults::hold_at_env("upgrade_statement", self.cancel);
        }
        self.obs.event(Event::Progress {
            unit: Unit::Statements,
            done: self.stats.statements,
            total: Some(self.total),
        });
        Ok(())
    }

    /// Statements that return rows (OMERO's "YOU HAVE SUCCESSFULLY UPGRADED") are shown.
    fn show_rows(&mut self, messages: &[SimpleQueryMessage]) {
        let rows: Vec<_> = messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .collect();
        for row in rows.iter().take(SHOWN_ROWS) {
            let values: Vec<&str> = (0..row.len())
                .map(|i| row.get(i).unwrap_or("NULL").trim())
                .collect();
            log(self.obs, Level::Info, values.join(" | "));
        }
        if rows.len() > SHOWN_ROWS {
            log(
                self.obs,
                Level::Info,
                format!("… {} more rows", rows.len() - SHOWN_ROWS),
            );
        }
    }

    fn track_transaction(&mut self, st: &Statement) {
        if st.kind != StatementKind::TransactionControl {
            return;
        }
        let first = st
            .sql
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let second = st
            .sql
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_ascii_lowercase();
        match first.trim_end_matches(';') {
            "begin" | "start" => self.open_transaction = Some(st.at.clone()),
            // PREPARE TRANSACTION hands the transaction over; COMMIT/ROLLBACK PREPARED act on
            // another one and leave this session's state alone.
            "commit" | "rollback" if second.starts_with("prepared") => {}
            "commit" | "end" | "rollback" | "abort" | "prepare" => self.open_transaction = None,
            _ => {}
        }
    }
}

fn to_run_error(e: &postgres::Error, at: Location, sql: &str, st: Option<&Statement>) -> RunError {
    let Some(db) = e.as_db_error() else {
        let message = if e.is_closed() {
            "the connection to the server was lost while this statement ran (did the server stop or restart?)".to_owned()
        } else {
            e.to_string()
        };
        return RunError::Connection { at, message };
    };
    let statement_at = at.clone();
    let at = match (db.position(), st) {
        (Some(postgres::error::ErrorPosition::Original(pos)), Some(st)) => st.location_of(*pos),
        _ => at,
    };
    RunError::Sql(Box::new(SqlFailure {
        at,
        statement_at,
        sqlstate: db.code().code().to_owned(),
        message: db.message().to_owned(),
        detail: db.detail().map(str::to_owned),
        hint: db.hint().map(str::to_owned),
        context: db.where_().map(str::to_owned),
        statement: sql.to_owned(),
    }))
}

/// The first lines of a statement, for error messages.
fn excerpt(sql: &str) -> String {
    const MAX_LINES: usize = 4;
    let lines: Vec<&str> = sql.lines().collect();
    let mut s = lines
        .iter()
        .take(MAX_LINES)
        .copied()
        .collect::<Vec<_>>()
        .join("\n             ");
    if lines.len() > MAX_LINES {
        s.push_str(" …");
    }
    s
}

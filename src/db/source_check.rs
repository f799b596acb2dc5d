//! Reads what `checklist::SourceReading` holds of the source database — its write counters,
//! schema fingerprint and tables' file nodes — so that pgstep can say whether a run changed it
//! from a measurement, never from an assumption.
//!
//! PostgreSQL 15 and later keep the counters in shared memory: a backend adds its own at the
//! end of a transaction (at most once a second) and when it exits. So the reading waits until
//! pgstep's own sessions to the source (same `application_name`) have left `pg_stat_activity`,
//! then calls `pg_stat_clear_snapshot()` so that it sees the counters as they are now.

use std::time::{Duration, Instant};

use postgres::Client;

use super::session::{DbError, describe};
use crate::checklist::SourceReading;
use crate::conn::{ConnError, ConnSettings};

/// How long pgstep's own sessions to the source are given to end before a reading.
const SETTLE: Duration = Duration::from_secs(15);

/// Why the source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadingError {
    /// No maintenance connection to the server.
    #[error(transparent)]
    Maintenance(DbError),
    /// No connection to the source database.
    #[error(transparent)]
    Connect(ConnError),
    /// A query of the reading failed.
    #[error("{}", describe(.0))]
    Server(#[from] postgres::Error),
    /// A part of the reading that failed: `what` pgstep could not do (take its schema
    /// fingerprint, read its statistics, …).
    #[error("cannot {what}: {}", describe(.source))]
    Part {
        what: &'static str,
        source: postgres::Error,
    },
    /// pgstep's own sessions to the source were still connected after [`SETTLE`].
    #[error(
        "pgstep's own session(s) to it (pid {}) had not ended after {} s",
        pids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        SETTLE.as_secs()
    )]
    OwnSessions { pids: Vec<i32> },
}

/// The error of the part `what` of the reading.
fn part(what: &'static str) -> impl FnOnce(postgres::Error) -> ReadingError {
    move |source| ReadingError::Part { what, source }
}

/// Reads the source database `db` once pgstep's own sessions to it have ended.
pub fn read(
    server: &ConnSettings,
    db: &str,
    schemas: &[String],
) -> Result<SourceReading, ReadingError> {
    let mut maint = super::maintenance(server).map_err(ReadingError::Maintenance)?;
    own_sessions_ended(&mut maint, db, server.application_name())?;
    // Before PostgreSQL 15 a statistics collector process receives the counters a little
    // later (it writes what readers see every half second or so).
    if crate::fingerprint::server_version_num(&mut maint).is_ok_and(|v| v < 150_000) {
        std::thread::sleep(Duration::from_millis(1200));
    }
    drop(maint);
    let mut client = server
        .with_dbname(db)
        .connect(None)
        .map_err(ReadingError::Connect)?;
    read_in(&mut client, schemas)
}

/// The reading, in a session on the source database (it only reads).
pub fn read_in(client: &mut Client, schemas: &[String]) -> Result<SourceReading, ReadingError> {
    let fingerprint = crate::fingerprint::compute(client, schemas)
        .map_err(part("take its schema fingerprint"))?;
    let mut tx = client.build_transaction().read_only(true).start()?;
    tx.query_one("SELECT pg_catalog.pg_stat_clear_snapshot()::text", &[])?;
    let row = tx
        .query_one(
            "SELECT coalesce((SELECT (d.tup_inserted + d.tup_updated + d.tup_deleted)::bigint \
                                FROM pg_catalog.pg_stat_database d \
                               WHERE d.datname = pg_catalog.current_database()), 0), \
                    (SELECT d.stats_reset::text FROM pg_catalog.pg_stat_database d \
                      WHERE d.datname = pg_catalog.current_database()), \
                    coalesce((SELECT sum(t.n_tup_ins + t.n_tup_upd + t.n_tup_del)::bigint \
                                FROM pg_catalog.pg_stat_sys_tables t \
                               WHERE t.schemaname = 'pg_catalog' \
                                 AND t.relname IN ('pg_statistic', 'pg_statistic_ext_data')), 0)",
            &[],
        )
        .map_err(part("read its statistics"))?;
    let table_writes = tx
        .query(
            "SELECT pg_catalog.format('%I.%I', schemaname, relname), \
                    (n_tup_ins + n_tup_upd + n_tup_del)::bigint \
               FROM pg_catalog.pg_stat_user_tables",
            &[],
        )
        .map_err(part("read its tables' statistics"))?;
    let tables = tx
        .query(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), \
                    pg_catalog.pg_relation_filenode(c.oid) \
               FROM pg_catalog.pg_class c \
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname::text = ANY ($1::text[]) AND c.relkind IN ('r', 'm')",
            &[&schemas],
        )
        .map_err(part("list its tables"))?;
    let _ = tx.rollback();
    Ok(SourceReading {
        rows_written: row.get(0),
        stats_reset: row.get(1),
        statistics_rows: row.get(2),
        table_writes: table_writes.iter().map(|r| (r.get(0), r.get(1))).collect(),
        fingerprint: fingerprint.hash,
        tables: tables
            .iter()
            .map(|r| (r.get(0), r.get::<_, Option<u32>>(1).unwrap_or(0)))
            .collect(),
    })
}

/// Waits until no session named `application_name` (pgstep's) is connected to `db`, so that
/// their statistics have been added.
fn own_sessions_ended(
    maint: &mut Client,
    db: &str,
    application_name: &str,
) -> Result<(), ReadingError> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let pids: Vec<i32> = maint
            .query(
                "SELECT pid FROM pg_catalog.pg_stat_activity \
                  WHERE datname = $1 AND application_name = $2 AND pid <> pg_backend_pid() \
                  ORDER BY pid",
                &[&db, &application_name],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ReadingError::OwnSessions { pids });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

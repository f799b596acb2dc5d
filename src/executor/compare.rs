//! GNUmed's plausibility pairs read over parallel connections.
//!
//! Each pair is two independent queries, one on the old database and one on the new; in a real
//! bundle the old side is often the expensive one (it recomputes from raw data what the upgrade
//! converted). They run as a queue of jobs taken by a few workers, each with its own connection
//! to each database, so the sanity step lasts about as long as its longest query instead of the
//! sum of all. The old side may already be known: read in the backup's snapshot while the clone
//! was still being upgraded (see `background`); if not, it is read here in that same snapshot
//! while it is still exported — the source as users left it, not with the banner pgstep set.

use std::fmt::Display;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use postgres::{CancelToken, Client};

use crate::bundle::Plausibility;
use crate::cancel::Cancel;
use crate::checklist::CheckResult;
use crate::conn::{ConnError, ConnSettings};
use crate::db::checks::{self, Rows};
use crate::db::readonly::ReadError;

/// Connections per database for the comparisons: enough to keep a few cores busy, few enough
/// not to crowd a server that also serves the backup.
pub(super) const WORKERS: usize = 4;

/// Which side of a pair a job reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Old,
    New,
}

type Read = Result<Rows, Unread>;

/// Why one side of a pair has no rows.
#[derive(Debug, thiserror::Error)]
enum Unread {
    /// The query failed or was refused.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The worker could not connect to the database (every job it took on it fails so).
    #[error("{0}")]
    Connect(Arc<ConnError>),
    #[error("cancelled by the operator")]
    Cancelled,
    /// No worker finished the job (one died).
    #[error("not read")]
    NotRead,
    /// The old side read alongside the backup, which failed there.
    #[error("{0}")]
    Alongside(String),
}

/// The databases the workers connect to, and what interrupts them.
pub(super) struct Databases<'a> {
    pub server: &'a ConnSettings,
    pub old_db: &'a str,
    pub new_db: &'a str,
    /// The backup's snapshot of the old database, while it is exported.
    pub old_snapshot: Option<&'a str>,
    pub cancel: &'a Cancel,
}

/// A worker's connection to one database; `in_snapshot` when it reads the backup's snapshot
/// in an open transaction.
struct Conn {
    client: Client,
    in_snapshot: bool,
}

impl Conn {
    fn read(&mut self, sql: &str) -> Result<Rows, ReadError> {
        if self.in_snapshot {
            checks::read_rows_in_open_transaction(&mut self.client, sql)
        } else {
            checks::read_rows(&mut self.client, sql)
        }
    }
}

/// Every pair checked: the old sides not in `old_known` and all the new sides read over up to
/// [`WORKERS`] connections per database. The results come in the pairs' order.
pub(super) fn plausibility<E: Display>(
    dbs: &Databases<'_>,
    pairs: &[&Plausibility],
    old_known: Option<Vec<Result<Rows, E>>>,
) -> Vec<CheckResult> {
    let known: Option<Vec<Read>> = old_known.filter(|k| k.len() == pairs.len()).map(|k| {
        k.into_iter()
            .map(|r| r.map_err(|e| Unread::Alongside(e.to_string())))
            .collect()
    });
    // The old sides first: they are usually the long ones, and should not start last.
    let mut jobs: Vec<(usize, Side)> = Vec::new();
    if known.is_none() {
        jobs.extend((0..pairs.len()).map(|i| (i, Side::Old)));
    }
    jobs.extend((0..pairs.len()).map(|i| (i, Side::New)));
    let mut reads = read_all(dbs, pairs, &jobs);
    let mut old = known.unwrap_or_default().into_iter();
    pairs
        .iter()
        .enumerate()
        .map(|(i, pair)| {
            let o = old
                .next()
                .or_else(|| take(&mut reads, i, Side::Old))
                .unwrap_or(Err(Unread::NotRead));
            let n = take(&mut reads, i, Side::New).unwrap_or(Err(Unread::NotRead));
            checks::compare_pair(pair, o, n)
        })
        .collect()
}

fn take(reads: &mut Vec<((usize, Side), Read)>, pair: usize, side: Side) -> Option<Read> {
    let at = reads.iter().position(|(job, _)| *job == (pair, side))?;
    Some(reads.swap_remove(at).1)
}

/// Runs the jobs over the workers; a Ctrl-C that interrupts cancels every running query.
fn read_all(
    dbs: &Databases<'_>,
    pairs: &[&Plausibility],
    jobs: &[(usize, Side)],
) -> Vec<((usize, Side), Read)> {
    let next = AtomicUsize::new(0);
    let tokens: Arc<Mutex<Vec<CancelToken>>> = Arc::default();
    let interrupt_all = Arc::clone(&tokens);
    dbs.cancel.set_interrupt(Some(Box::new(move || {
        if let Ok(tokens) = interrupt_all.lock() {
            for t in tokens.iter() {
                // Best effort: a query that already ended has nothing to cancel.
                let _ = t.cancel_query(postgres::NoTls);
            }
        }
    })));
    let workers = WORKERS.min(jobs.len());
    let reads = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| scope.spawn(|| worker(dbs, pairs, jobs, &next, &tokens)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    dbs.cancel.set_interrupt(None);
    reads
}

/// Takes jobs until none is left, connecting to each database when first needed. A job a
/// worker could not finish (it died) stays unread and is reported as such.
fn worker(
    dbs: &Databases<'_>,
    pairs: &[&Plausibility],
    jobs: &[(usize, Side)],
    next: &AtomicUsize,
    tokens: &Mutex<Vec<CancelToken>>,
) -> Vec<((usize, Side), Read)> {
    let mut old: Option<Result<Conn, Arc<ConnError>>> = None;
    let mut new: Option<Result<Conn, Arc<ConnError>>> = None;
    let mut done = Vec::new();
    while let Some(&(pair, side)) = jobs.get(next.fetch_add(1, Ordering::SeqCst)) {
        let read = if dbs.cancel.requested() {
            Err(Unread::Cancelled)
        } else {
            let (slot, db, snapshot, sql) = match side {
                Side::Old => (&mut old, dbs.old_db, dbs.old_snapshot, &pairs[pair].old),
                Side::New => (&mut new, dbs.new_db, None, &pairs[pair].new),
            };
            match slot.get_or_insert_with(|| connect(dbs.server, db, snapshot, tokens)) {
                Ok(conn) => conn.read(sql).map_err(Unread::from),
                Err(e) => Err(Unread::Connect(Arc::clone(e))),
            }
        };
        done.push(((pair, side), read));
    }
    done
}

/// Connects to `db`, in `snapshot` if given and still exported (else the database as it is
/// now: the snapshot's holder can only have gone with an error on the server).
fn connect(
    server: &ConnSettings,
    db: &str,
    snapshot: Option<&str>,
    tokens: &Mutex<Vec<CancelToken>>,
) -> Result<Conn, Arc<ConnError>> {
    let mut client = server.with_dbname(db).connect(None).map_err(Arc::new)?;
    if let Ok(mut t) = tokens.lock() {
        t.push(client.cancel_token());
    }
    let in_snapshot = snapshot.is_some_and(|id| checks::begin_in_snapshot(&mut client, id).is_ok());
    Ok(Conn {
        client,
        in_snapshot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Cluster;

    fn pair(name: &str, old: &str, new: &str) -> Plausibility {
        Plausibility {
            name: name.into(),
            old: old.into(),
            new: new.into(),
            from: None,
            to: None,
        }
    }

    /// Against a real throw-away cluster: the old side read in an exported snapshot sees the
    /// database as it was when the snapshot was taken, not a change made after it; without
    /// the snapshot it sees the change. A failing query fails its own pair only.
    #[test]
    fn the_old_side_is_read_in_the_exported_snapshot_over_parallel_connections() {
        let cluster = Cluster::start(None).expect("a throw-away cluster");
        let server = cluster.settings("postgres");
        let mut admin = server.connect(None).expect("connect");
        for db in ["old_db", "new_db"] {
            admin
                .batch_execute(&format!("CREATE DATABASE {db}"))
                .expect("database");
        }
        let mut old = server.with_dbname("old_db").connect(None).expect("old");
        old.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)")
            .expect("old table");
        let mut new = server.with_dbname("new_db").connect(None).expect("new");
        new.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)")
            .expect("new table");
        let mut holder = server.with_dbname("old_db").connect(None).expect("holder");
        let id: String = holder
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .and_then(|()| holder.query_one("SELECT pg_export_snapshot()", &[]))
            .map(|r| r.get(0))
            .expect("export");
        // What pgstep does to the source after the snapshot: the banner.
        old.batch_execute("INSERT INTO t VALUES (3)")
            .expect("change");

        let pairs = [
            pair("rows", "SELECT count(*) FROM t", "SELECT count(*) FROM t"),
            pair("broken", "SELECT nonsense FROM t", "SELECT 1"),
            pair("sum", "SELECT sum(x) FROM t", "SELECT sum(x) FROM t"),
        ];
        let pairs: Vec<&Plausibility> = pairs.iter().collect();
        let cancel = Cancel::new();
        let dbs = |snapshot| Databases {
            server: &server,
            old_db: "old_db",
            new_db: "new_db",
            old_snapshot: snapshot,
            cancel: &cancel,
        };
        let in_snapshot = plausibility(
            &dbs(Some(id.as_str())),
            &pairs,
            None::<Vec<Result<Rows, &str>>>,
        );
        let ok: Vec<(String, bool)> = in_snapshot.iter().map(|c| (c.name.clone(), c.ok)).collect();
        assert_eq!(
            ok,
            [
                ("plausibility: rows".to_owned(), true),
                ("plausibility: broken".to_owned(), false),
                ("plausibility: sum".to_owned(), true),
            ],
            "{in_snapshot:#?}"
        );
        assert!(
            in_snapshot[1].detail.contains("nonsense"),
            "{in_snapshot:#?}"
        );

        let now = plausibility(&dbs(None), &pairs, None::<Vec<Result<Rows, &str>>>);
        assert!(
            !now[0].ok && now[0].detail.contains("old database gives [3]"),
            "{now:#?}"
        );

        // An old side already read is used as it is.
        let known = vec![Ok(vec![vec![Some("2".to_owned())]]), Err("x"), Ok(vec![])];
        let given = plausibility(&dbs(None), &pairs, Some(known));
        assert!(given[0].ok, "{given:#?}");
        assert!(!given[2].ok, "{given:#?}");
        drop(holder);
    }
}

//! The advisory lock in the server: its key, the maintenance connection that holds it, and
//! who holds it when it is taken.

use postgres::Client;
use sha2::{Digest, Sha256};

use super::LockError;
use crate::conn::ConnSettings;
use crate::journal::RunInfo;

/// PostgreSQL truncates `application_name` to NAMEDATALEN - 1 bytes.
const APPLICATION_NAME_MAX: usize = 63;
/// How often to retry when the holder let go between our attempt and our look at `pg_locks`.
const HOLDER_RETRIES: usize = 5;

/// The advisory lock key of a database: the first 8 bytes of sha256("pgstep:" + name), big
/// endian. It must never change: two pgstep versions must agree on it.
pub fn lock_key(source_db: &str) -> i64 {
    let digest = Sha256::digest(format!("pgstep:{source_db}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// How `pg_locks` shows a bigint advisory key: high and low 32 bits (as classid and objid).
pub(super) fn key_halves(key: i64) -> (i64, i64) {
    let bits = key as u64;
    (i64::from((bits >> 32) as u32), i64::from(bits as u32))
}

/// `pgstep <host> pid <pid> run <run id>` (PostgreSQL keeps the first 63 bytes).
pub fn application_name(info: &RunInfo) -> String {
    format!("pgstep {} pid {} run {}", info.host, info.pid, info.run_id)
}

type ServerLock = (Client, String, i64, Vec<String>);

/// Connects to the maintenance database, names the session and takes the advisory lock.
pub(super) fn lock_server(
    server: &ConnSettings,
    source_db: &str,
    info: &RunInfo,
) -> Result<ServerLock, LockError> {
    let (mut client, maintenance_db, mut warnings) = connect_maintenance(server, source_db)?;
    let query_err = |action: &str| {
        let db = source_db.to_owned();
        let action = action.to_owned();
        move |source| LockError::Query { db, action, source }
    };
    // Bound through set_config: a value is never spliced into SQL.
    client
        .execute(
            "SELECT pg_catalog.set_config('application_name', $1, false)",
            &[&application_name(info)],
        )
        .map_err(query_err("set application_name"))?;
    keep_session_alive(&mut client).map_err(query_err("disable idle_session_timeout"))?;
    let key = lock_key(source_db);
    for _ in 0..HOLDER_RETRIES {
        let locked: bool = client
            .query_one("SELECT pg_catalog.pg_try_advisory_lock($1)", &[&key])
            .map_err(query_err("take the advisory lock"))?
            .get(0);
        if locked {
            if maintenance_db != "postgres" {
                warnings.push(template1_warning(&maintenance_db));
            }
            return Ok((client, maintenance_db, key, warnings));
        }
        if let Some(by) =
            server_holder(&mut client, key).map_err(query_err("look up the holder"))?
        {
            return Err(LockError::Held {
                db: source_db.to_owned(),
                by,
            });
        }
        // The holder let go in between: try again.
    }
    Err(LockError::Held {
        db: source_db.to_owned(),
        by: "a session that could not be identified keeps taking the lock".to_owned(),
    })
}

fn connect_maintenance(
    server: &ConnSettings,
    source_db: &str,
) -> Result<(Client, String, Vec<String>), LockError> {
    let postgres = match server.with_dbname("postgres").connect(None) {
        Ok(client) => return Ok((client, "postgres".to_owned(), Vec::new())),
        Err(e) => e,
    };
    match server.with_dbname("template1").connect(None) {
        Ok(client) => Ok((
            client,
            "template1".to_owned(),
            vec![format!(
                "the maintenance database postgres could not be used ({postgres}); the run lock \
                 is held through template1 instead"
            )],
        )),
        Err(template1) => Err(LockError::Connect {
            db: source_db.to_owned(),
            postgres: Box::new(postgres),
            template1: Box::new(template1),
        }),
    }
}

fn template1_warning(db: &str) -> String {
    format!(
        "while this run holds its lock through {db}, CREATE DATABASE without an explicit \
         TEMPLATE is refused on this server (PostgreSQL copies {db} only when nobody is connected \
         to it); runs that hold their lock through postgres do not see this one"
    )
}

/// A server-wide `idle_session_timeout` (PostgreSQL 14+) would end the idle lock connection
/// and silently free the lock in the middle of a run.
fn keep_session_alive(client: &mut Client) -> Result<(), postgres::Error> {
    let version: i32 = client
        .query_one(
            "SELECT pg_catalog.current_setting('server_version_num')::int",
            &[],
        )?
        .get(0);
    if version >= 140_000 {
        client.execute(
            "SELECT pg_catalog.set_config('idle_session_timeout', '0', false)",
            &[],
        )?;
    }
    Ok(())
}

/// Who holds the advisory lock, from `pg_locks` and `pg_stat_activity`; None if nobody does
/// any more.
fn server_holder(client: &mut Client, key: i64) -> Result<Option<String>, postgres::Error> {
    let (hi, lo) = key_halves(key);
    let row = client.query_opt(
        "SELECT a.pid, a.application_name, a.usename::text, \
                to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
         FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
           AND l.classid::bigint = $1 AND l.objid::bigint = $2 \
           AND l.database = (SELECT oid FROM pg_catalog.pg_database \
                             WHERE datname = pg_catalog.current_database()) \
         LIMIT 1",
        &[&hi, &lo],
    )?;
    Ok(row.map(|r| {
        describe_holder(
            r.get(0),
            r.get::<_, Option<String>>(1).as_deref().unwrap_or(""),
            r.get(2),
            r.get(3),
        )
    }))
}

/// "pid 1234 on host db1 since …, run …" from the holder's session.
fn describe_holder(
    backend_pid: i32,
    application_name: &str,
    user: Option<String>,
    since: Option<String>,
) -> String {
    let since = since.map(|s| format!(" since {s}")).unwrap_or_default();
    let words: Vec<&str> = application_name.split(' ').collect();
    match words.as_slice() {
        ["pgstep", host, "pid", pid, "run", run, ..] => {
            // PostgreSQL cut the name at 63 bytes: the run id may be incomplete.
            let cut = if application_name.len() >= APPLICATION_NAME_MAX {
                "…"
            } else {
                ""
            };
            format!(
                "pid {pid} on host {host}{since}, run {run}{cut} (its server session is pid \
                 {backend_pid}; only if you are sure that run is gone, end the session with \
                 SELECT pg_terminate_backend({backend_pid}))"
            )
        }
        _ => format!(
            "a session that is not pgstep holds pgstep's lock: server pid {backend_pid}, \
             application \"{application_name}\", user {}{since}",
            user.as_deref().unwrap_or("(unknown)")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_key_never_changes() {
        // Fixed forever: runs of different pgstep versions must exclude each other.
        // sha256("pgstep:clinic_v1") starts with ec877f4c8fa3d7dd.
        assert_eq!(lock_key("clinic_v1"), -1_403_012_792_098_498_595);
        assert_eq!(lock_key("clinic_v1") as u64, 0xec87_7f4c_8fa3_d7dd);
        assert_ne!(lock_key("clinic_v1"), lock_key("clinic_v2"));
    }

    #[test]
    fn lock_key_halves_match_pg_locks() {
        assert_eq!(
            key_halves(0x0102_0304_0506_0708),
            (0x0102_0304, 0x0506_0708)
        );
        assert_eq!(key_halves(-1), (0xFFFF_FFFF, 0xFFFF_FFFF));
    }

    #[test]
    fn lock_holder_is_described_from_the_application_name() {
        let by = describe_holder(
            77,
            "pgstep db1 pid 4242 run 20260501T021500Z-clinic-4242",
            Some("alice".to_owned()),
            Some("2026-05-01T02:15:00Z".to_owned()),
        );
        assert!(
            by.starts_with(
                "pid 4242 on host db1 since 2026-05-01T02:15:00Z, run 20260501T021500Z-clinic-4242 \
                 (its server session is pid 77;"
            ),
            "{by}"
        );
        let other = describe_holder(78, "psql", Some("bob".to_owned()), None);
        assert_eq!(
            other,
            "a session that is not pgstep holds pgstep's lock: server pid 78, application \
             \"psql\", user bob"
        );
    }
}

//! Who else is connected to a database (pg_stat_activity): list them, ask them to leave
//! (NOTIFY), end them.

use postgres::Client;

use super::session::DbError;

use crate::checklist::model::SessionInfo;

/// Sessions connected to `dbname`, other than the caller's own.
pub fn other_sessions(client: &mut Client, dbname: &str) -> Result<Vec<SessionInfo>, DbError> {
    let rows = client
        .query(
            "SELECT pid, coalesce(usename::text, '?'), coalesce(application_name, ''), \
                    coalesce(host(client_addr), CASE WHEN client_port = -1 THEN 'local socket' ELSE '?' END), \
                    coalesce(to_char(backend_start, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'), '?'), \
                    coalesce(extract(epoch FROM now() - backend_start)::bigint, 0), \
                    coalesce(state, '?') \
             FROM pg_catalog.pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend' \
             ORDER BY backend_start, pid",
            &[&dbname],
        )
        .map_err(|e| DbError::query(format!("list the sessions connected to {dbname}"), e))?;
    Ok(rows
        .iter()
        .map(|r| SessionInfo {
            pid: r.get(0),
            user: r.get(1),
            application: r.get(2),
            client: r.get(3),
            since: r.get(4),
            age_seconds: r.get(5),
            state: r.get(6),
        })
        .collect())
}

/// Like [`other_sessions`], but gives sessions that are just ending (a client that closed its
/// connection leaves its backend listed for a moment) up to `grace` to go, as PostgreSQL's own
/// CREATE DATABASE does. Sessions of users who stay connected are returned after the grace.
pub fn other_sessions_settled(
    client: &mut Client,
    dbname: &str,
    grace: std::time::Duration,
) -> Result<Vec<SessionInfo>, DbError> {
    let deadline = std::time::Instant::now() + grace;
    loop {
        let sessions = other_sessions(client, dbname)?;
        if sessions.is_empty() || std::time::Instant::now() >= deadline {
            return Ok(sessions);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Ends the sessions `pids` with `pg_terminate_backend`, but only those that really are client
/// sessions on `db` (never one on another database, nor pgstep's own). Returns, for each pid,
/// whether it was signalled: false for a pid not on `db` (already gone, or elsewhere). The
/// session may linger for a moment after the signal: wait with
/// [`other_sessions_settled`].
pub fn terminate(client: &mut Client, db: &str, pids: &[i32]) -> Result<Vec<(i32, bool)>, DbError> {
    let mut done = Vec::with_capacity(pids.len());
    for &pid in pids {
        // One statement checks and signals, so the check holds for the pid it signals.
        let row = client
            .query_opt(
                "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity \
                 WHERE pid = $1 AND datname = $2 AND pid <> pg_catalog.pg_backend_pid() \
                   AND backend_type = 'client backend'",
                &[&pid, &db],
            )
            .map_err(|e| {
                DbError::query(
                    format!(
                        "terminate session {pid} on \"{db}\" (terminated before it: {})",
                        terminated_list(&done)
                    ),
                    e,
                )
            })?;
        done.push((pid, row.is_some_and(|r| r.get::<_, bool>(0))));
    }
    Ok(done)
}

fn terminated_list(done: &[(i32, bool)]) -> String {
    let pids: Vec<String> = done
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(p, _)| p.to_string())
        .collect();
    if pids.is_empty() {
        "none".to_owned()
    } else {
        pids.join(", ")
    }
}

/// Sends `payload` on every channel the application's clients LISTEN on (`pg_notify`, bound).
/// Notifications stay in their database: call it on a session on the application's database.
pub fn notify(client: &mut Client, channels: &[String], payload: &str) -> Result<(), DbError> {
    for channel in channels {
        client
            .execute("SELECT pg_catalog.pg_notify($1, $2)", &[channel, &payload])
            .map_err(|e| DbError::query(format!("notify channel \"{channel}\""), e))?;
    }
    Ok(())
}

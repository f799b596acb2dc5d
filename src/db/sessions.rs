//! Who else is connected to a database (pg_stat_activity).

use postgres::Client;

use super::session::DbError;

pub use crate::checklist::model::SessionInfo;

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

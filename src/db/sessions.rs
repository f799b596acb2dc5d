//! Who else is connected to a database (pg_stat_activity).

use std::fmt;

use postgres::Client;
use serde::{Deserialize, Serialize};

use super::session::DbError;

/// Another session on a database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub pid: i32,
    pub user: String,
    pub application: String,
    /// Client address, or "local socket".
    pub client: String,
    /// When the session began, as the server says it (ISO 8601).
    pub since: String,
    /// Seconds since the session began.
    pub age_seconds: i64,
    pub state: String,
}

impl fmt::Display for SessionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} user {} application \"{}\" from {} since {} ({}), {}",
            self.pid,
            self.user,
            self.application,
            self.client,
            self.since,
            human_age(self.age_seconds),
            self.state
        )
    }
}

fn human_age(s: i64) -> String {
    match s {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s => format!("{} h ago", s / 3600),
    }
}

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

//! ANALYZE of the new database.

use std::time::Instant;

use postgres::Client;

use super::CheckResult;
use crate::db::session::describe;

/// `ANALYZE` of the whole database: a clone's rewritten tables have no statistics, and the
/// application's first queries would be planned blind. Timed.
pub fn analyze(client: &mut Client) -> CheckResult {
    let started = Instant::now();
    let (ok, detail) = match client.batch_execute("ANALYZE") {
        Ok(()) => (
            true,
            format!(
                "statistics gathered in {}",
                crate::format::seconds(started.elapsed())
            ),
        ),
        Err(e) => (false, format!("ANALYZE failed: {}", describe(&e))),
    };
    CheckResult::new("analyze", ok, detail)
}

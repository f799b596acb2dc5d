//! What the checklist shows of the work done elsewhere: a check's result, another session on the
//! database, what one upgrade step did. Plain data: the database code and the engine fill them
//! in, the checklist, the screens and the reports read them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bundle::Version;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// The fingerprint the check measured ("sha256:…", as `detail` begins), for a check of a
    /// database's fingerprint against a reference; `None` for every other check. Not in the
    /// JSON: `detail` already says it.
    #[serde(skip)]
    pub fingerprint: Option<String>,
}

impl CheckResult {
    /// A check without a typed payload.
    pub fn new(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> CheckResult {
        CheckResult {
            name: name.into(),
            ok,
            detail: detail.into(),
            fingerprint: None,
        }
    }
}

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
            crate::format::age(self.age_seconds),
            self.state
        )
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    pub from: Version,
    pub to: Version,
    pub scripts: usize,
    pub statements: u64,
    pub skipped_blocks: u64,
    #[serde(with = "crate::format::secs")]
    pub elapsed: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_typed_fingerprint_stays_out_of_the_json() {
        let mut c = CheckResult::new("target fingerprint", true, "sha256:ab matches version 2");
        c.fingerprint = Some("sha256:ab".into());
        assert_eq!(
            serde_json::to_string(&c).unwrap_or_default(),
            r#"{"name":"target fingerprint","ok":true,"detail":"sha256:ab matches version 2"}"#
        );
    }
}

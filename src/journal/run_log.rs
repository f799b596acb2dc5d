//! The human-readable log of a run, every line masked.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::mask_secrets;
use crate::events::Level;

/// The human-readable log of one run: timestamped lines, each written through at once (no
/// buffering) so that a killed run's log ends where it stopped. Every line passes through
/// [`mask_secrets`].
#[derive(Debug)]
pub struct RunLog {
    path: PathBuf,
    file: File,
}

impl RunLog {
    /// Opens `<data dir>/logs/<run id>.log` for appending.
    pub fn create(run_id: &str) -> io::Result<RunLog> {
        RunLog::create_in(&crate::paths::data_dir().join("logs"), run_id)
    }

    pub fn create_in(dir: &Path, run_id: &str) -> io::Result<RunLog> {
        crate::paths::private_dir(dir)?;
        let path = dir.join(format!("{run_id}.log"));
        let file = crate::paths::private_options()
            .append(true)
            .create(true)
            .open(&path)?;
        Ok(RunLog { path, file })
    }

    /// Writes `text` (masked) as one timestamped line; continuation lines are indented.
    pub fn line(&mut self, level: Level, text: &str) -> io::Result<()> {
        let stamp = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        let masked = mask_secrets(text);
        let mut out = format!("{stamp} {:<7} ", level_name(level));
        let mut lines = masked.lines();
        out.push_str(lines.next().unwrap_or(""));
        out.push('\n');
        for more in lines {
            out.push_str("    ");
            out.push_str(more);
            out.push('\n');
        }
        self.file.write_all(out.as_bytes())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second handle on the same log (appending), for another thread.
    pub fn reopen(&self) -> io::Result<RunLog> {
        let file = OpenOptions::new().append(true).open(&self.path)?;
        Ok(RunLog {
            path: self.path.clone(),
            file,
        })
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Info => "INFO",
        Level::Notice => "NOTICE",
        Level::Warning => "WARNING",
        Level::Error => "ERROR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn journal_run_log_writes_masked_timestamped_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = RunLog::create_in(&dir.path().join("logs"), "r1").expect("log");
        log.line(Level::Info, "connecting with password=hunter2")
            .expect("line");
        log.line(Level::Warning, "two\nlines postgres://a:b@h")
            .expect("line");
        let mut text = String::new();
        File::open(log.path())
            .expect("open")
            .read_to_string(&mut text)
            .expect("read");
        assert!(!text.contains("hunter2") && !text.contains(":b@"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let (stamp, rest) = lines[0].split_once(' ').expect("stamp");
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
        assert_eq!(rest, "INFO    connecting with password=***");
        assert!(lines[1].ends_with("WARNING two"), "{}", lines[1]);
        assert_eq!(lines[2], "    lines postgres://a:***@h");
    }
}

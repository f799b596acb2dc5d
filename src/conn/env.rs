//! The outside world that resolution reads: environment variables, the home
//! directory and the OS user name ([`Env`], [`ProcessEnv`]), and [`Secret`],
//! the wrapper that keeps passwords out of logs and messages.

use std::fmt;
use std::path::PathBuf;

/// What resolution needs from the process environment. Tests supply a map.
pub trait Env {
    /// An environment variable. `Some("")` (set but empty) is kept distinct
    /// from `None` because libpq treats a set-but-empty variable as set.
    fn var(&self, name: &str) -> Option<String>;
    /// The home directory (libpq: `$HOME`, else the passwd entry of the
    /// effective user).
    fn home(&self) -> Option<PathBuf>;
    /// The OS user name (libpq: the passwd entry of the effective user).
    fn os_user(&self) -> Option<String>;
}

/// [`Env`] backed by the real process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        // A non-UTF-8 value is converted lossily rather than ignored: ignoring
        // it would silently fall back to another source.
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    }

    fn home(&self) -> Option<PathBuf> {
        // Same order as libpq's pqGetHomeDirectory: $HOME when non-empty.
        match std::env::var_os("HOME") {
            Some(h) if !h.is_empty() => Some(PathBuf::from(h)),
            _ => passwd_entry_for_euid().map(|e| PathBuf::from(e.home)),
        }
    }

    fn os_user(&self) -> Option<String> {
        // libpq uses getpwuid(geteuid()), not $USER; $USER/$LOGNAME are only a
        // fallback for users that are not in /etc/passwd (LDAP/NSS).
        passwd_entry_for_euid()
            .map(|e| e.name)
            .or_else(|| non_empty_var("USER"))
            .or_else(|| non_empty_var("LOGNAME"))
    }
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

struct PasswdEntry {
    name: String,
    home: String,
}

/// The effective uid, read from /proc (no libc dependency needed).
pub(crate) fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    // "Uid:\treal\teffective\tsaved\tfs"
    line.split_whitespace().nth(2)?.parse().ok()
}

fn passwd_entry_for_euid() -> Option<PasswdEntry> {
    let uid = effective_uid()?;
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid) {
            Some(PasswdEntry {
                name: f[0].to_string(),
                home: f[5].to_string(),
            })
        } else {
            None
        }
    })
}

/// A password. Its `Debug` and `Display` print `***`, so it cannot leak into
/// messages or logs by accident; [`Secret::expose`] is the one way out.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The password itself. Call only where it is handed to the server or
    /// written to a 0600 password file.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A map-backed [`Env`] for tests.
#[cfg(test)]
#[derive(Debug, Default, Clone)]
pub(crate) struct TestEnv {
    pub vars: std::collections::HashMap<String, String>,
    pub home: Option<PathBuf>,
    pub user: Option<String>,
}

#[cfg(test)]
impl TestEnv {
    /// An environment with no variables, the given home and user "alice".
    pub fn new(home: &std::path::Path) -> TestEnv {
        TestEnv {
            vars: Default::default(),
            home: Some(home.to_path_buf()),
            user: Some("alice".into()),
        }
    }

    pub fn set(mut self, name: &str, value: &str) -> TestEnv {
        self.vars.insert(name.into(), value.into());
        self
    }
}

#[cfg(test)]
impl Env for TestEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn home(&self) -> Option<PathBuf> {
        self.home.clone()
    }
    fn os_user(&self) -> Option<String> {
        self.user.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn process_env_finds_a_user_and_uid() {
        // The test runs as some user; both lookups must produce something.
        assert!(effective_uid().is_some());
        assert!(ProcessEnv.os_user().is_some_and(|u| !u.is_empty()));
    }
}

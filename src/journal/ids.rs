//! Run ids and the facts about this machine every run records (host name, operator).

use std::fs;
use std::sync::{Mutex, PoisonError};

/// Run ids handed out by this process, so that two runs started in the same second on the same
/// database by one process still get different ids.
static ISSUED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// `YYYYmmddTHHMMSSZ-<db>-<pid>`: sortable by start time, unique per process and second
/// (a `-2`, `-3`… suffix when this process already used the id).
pub fn new_run_id(now: chrono::DateTime<chrono::Utc>, source_db: &str, pid: u32) -> String {
    let base = format!(
        "{}-{}-{pid}",
        now.format("%Y%m%dT%H%M%SZ"),
        file_component(source_db, true)
    );
    let mut issued = ISSUED.lock().unwrap_or_else(PoisonError::into_inner);
    let mut id = base.clone();
    let mut n = 1;
    while issued.contains(&id) {
        n += 1;
        id = format!("{base}-{n}");
    }
    issued.push(id.clone());
    id
}

/// A name made safe for a file name, and reversible: ASCII letters, digits, `_` and `.` stay
/// (and `-` when `keep_dash`), every other byte becomes `%XX`. Reversible matters for lock
/// files: two different databases must never share one.
pub fn file_component(name: &str, keep_dash: bool) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        let keep = b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || (keep_dash && b == b'-');
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// This machine's host name, from the kernel (or `/etc/hostname`).
pub fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// The OS user running pgstep: the owner of this process (not `$USER`, which `su`/`sudo` may
/// leave stale), with the invoking user when run through sudo.
pub fn operator() -> String {
    let name = process_user().or_else(|| {
        ["USER", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
    });
    let name = name.unwrap_or_else(|| "unknown-user".to_owned());
    match std::env::var("SUDO_USER") {
        Ok(by) if !by.is_empty() && by != name => format!("{name} (sudo by {by})"),
        _ => name,
    }
}

/// The name of the effective user of this process, from `/proc/self` and `/etc/passwd`.
fn process_user() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = fs::metadata("/proc/self").ok()?.uid();
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let entry_uid: u32 = fields.nth(1)?.parse().ok()?;
        (entry_uid == uid).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_file_component_is_reversible() {
        assert_eq!(file_component("clinic_v1", true), "clinic_v1");
        assert_eq!(file_component("a-b", false), "a%2Db");
        assert_eq!(file_component("a%2Db", false), "a%252Db");
        assert_eq!(file_component("../x", true), "..%2Fx");
        assert_eq!(file_component("é", true), "%C3%A9");
    }
}

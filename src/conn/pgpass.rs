//! The password file (`~/.pgpass`, `PGPASSFILE`, `passfile=`): lookup, a port
//! of libpq's `passwordFromFile`/`pwdfMatchesString`, and writing lines for
//! the temporary file handed to child processes.
//!
//! Lines are `hostname:port:database:username:password`; `*` alone matches
//! any value; `\` escapes `:` and `\`; lines starting with `#` are comments;
//! the first matching line wins. The host key of a connection to the
//! *default* socket directory is `localhost`; another socket directory is
//! matched by its path. An empty port matches as 5432. A file that is not a
//! plain file, or has any group/other permission bit, is ignored with a
//! warning (libpq prints the warning to stderr; we return it to the caller).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::env::Secret;
use super::resolve::{DEFAULT_SOCKET_DIR, HostAddr};

/// The hostname libpq compares against the first field.
pub(crate) fn host_key(host: &HostAddr) -> String {
    match host {
        HostAddr::Socket(dir) if dir == Path::new(DEFAULT_SOCKET_DIR) => "localhost".to_string(),
        HostAddr::Socket(dir) => dir.to_string_lossy().into_owned(),
        HostAddr::Tcp(name) => name.clone(),
    }
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    Found(Secret),
    NotFound,
    /// The file was ignored; the string is the warning for the user.
    Ignored(String),
}

/// Looks up the password for one host/port/database/user.
pub(crate) fn lookup(path: &Path, host: &str, port: u16, dbname: &str, user: &str) -> Lookup {
    if dbname.is_empty() || user.is_empty() {
        return Lookup::NotFound;
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => return Lookup::NotFound, // no file: nothing to say (libpq is silent too)
    };
    let shown = path.display();
    if !meta.is_file() {
        return Lookup::Ignored(format!(
            "WARNING: password file {shown} is not a plain file; it was ignored"
        ));
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Lookup::Ignored(format!(
            "WARNING: password file {shown} has group or world access (mode {:04o}); it was ignored — fix it with: chmod 0600 {shown}",
            mode & 0o7777
        ));
    }
    match std::fs::read(path) {
        Ok(bytes) => match find(&bytes, host, &port.to_string(), dbname, user) {
            Some(Ok(pw)) => Lookup::Found(pw),
            Some(Err(line)) => Lookup::Ignored(format!(
                "WARNING: the password on line {line} of {shown} is not valid UTF-8; it was ignored"
            )),
            None => Lookup::NotFound,
        },
        Err(e) => Lookup::Ignored(format!(
            "WARNING: could not read password file {shown}: {e}; it was ignored"
        )),
    }
}

/// The first matching line's password, or `Err(line number)` if that
/// password is not UTF-8.
fn find(
    file: &[u8],
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Option<Result<Secret, usize>> {
    for (idx, raw) in file.split(|&b| b == b'\n').enumerate() {
        if raw.first() == Some(&b'#') {
            continue;
        }
        let mut line = raw;
        while let [rest @ .., b'\r' | b'\n'] = line {
            line = rest;
        }
        if line.is_empty() {
            continue;
        }
        let rest = [host, port, dbname, user]
            .iter()
            .try_fold(line, |rest, token| match_field(rest, token.as_bytes()));
        if let Some(rest) = rest {
            return Some(
                String::from_utf8(unescape_password(rest))
                    .map(Secret::new)
                    .map_err(|_| idx + 1),
            );
        }
    }
    None
}

/// libpq's pwdfMatchesString: returns what follows the field if it matches.
fn match_field<'a>(buf: &'a [u8], token: &[u8]) -> Option<&'a [u8]> {
    if buf.starts_with(b"*:") {
        return Some(&buf[2..]);
    }
    let (mut i, mut t) = (0, 0);
    while i < buf.len() {
        let mut escaped = false;
        if buf[i] == b'\\' {
            i += 1;
            escaped = true;
            if i == buf.len() {
                return None;
            }
        }
        if buf[i] == b':' && !escaped && t == token.len() {
            return Some(&buf[i + 1..]);
        }
        if t == token.len() || buf[i] != token[t] {
            return None;
        }
        i += 1;
        t += 1;
    }
    None
}

/// The password field runs to the first unescaped `:` or the end of line.
fn unescape_password(rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rest.len());
    let mut i = 0;
    while i < rest.len() && rest[i] != b':' {
        if rest[i] == b'\\' && i + 1 < rest.len() {
            i += 1;
        }
        out.push(rest[i]);
        i += 1;
    }
    out
}

/// Escapes one field for writing; a literal `*` is escaped so that it is
/// not read back as a wildcard.
pub(crate) fn escape_field(s: &str) -> String {
    if s == "*" {
        return "\\*".to_string();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ':' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One password-file line (the database field is a wildcard).
pub(crate) fn line(host: &str, port: u16, user: &str, password: &Secret) -> String {
    format!(
        "{}:{port}:*:{}:{}\n",
        escape_field(host),
        escape_field(user),
        escape_field(password.expose())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(file: &str, host: &str, port: &str, db: &str, user: &str) -> Option<String> {
        find(file.as_bytes(), host, port, db, user).map(|r| r.expect("utf-8").expose().to_string())
    }

    #[test]
    fn matching_rules() {
        let file = "\
# host:port:db:user:password
db1:5432:clinic:alice:exact
*:5432:clinic:alice:anyhost
db1:*:*:bob:wild
h\\:x:5432:*:*:escaped-host
db2:5432:*:*:p\\:a\\\\ss:ignored-extra
\\*:5432:*:*:literal-star
";
        let cases = [
            (("db1", "5432", "clinic", "alice"), Some("exact")),
            (("db9", "5432", "clinic", "alice"), Some("anyhost")), // wildcard host
            (("db1", "6000", "other", "bob"), Some("wild")),
            (("db1", "6000", "other", "carol"), None),
            (("h:x", "5432", "d", "u"), Some("escaped-host")),
            (("db2", "5432", "d", "u"), Some("p:a\\ss")), // escapes in the password
            (("*", "5432", "d", "u"), Some("literal-star")),
            (("db3", "5432", "d", "u"), None),
            (("db1", "543", "clinic", "alice"), None), // a prefix is no match
        ];
        for ((h, p, d, u), want) in cases {
            assert_eq!(pw(file, h, p, d, u).as_deref(), want, "{h}:{p}:{d}:{u}");
        }
    }

    #[test]
    fn first_match_wins_and_comments_and_crlf() {
        let file = "#db:5432:d:u:commented\r\n\r\ndb:5432:d:u:first\r\ndb:5432:d:u:second\r\n";
        assert_eq!(pw(file, "db", "5432", "d", "u").as_deref(), Some("first"));
    }

    #[test]
    fn a_line_with_too_few_fields_never_matches() {
        assert_eq!(pw("db:5432:d:u\n", "db", "5432", "d", "u"), None);
        assert_eq!(
            pw("db:5432:d:u:\n", "db", "5432", "d", "u").as_deref(),
            Some("")
        );
    }

    #[test]
    fn host_keys_for_sockets() {
        assert_eq!(
            host_key(&HostAddr::Socket(DEFAULT_SOCKET_DIR.into())),
            "localhost"
        );
        assert_eq!(host_key(&HostAddr::Socket("/tmp".into())), "/tmp");
        assert_eq!(host_key(&HostAddr::Tcp("db.example".into())), "db.example");
    }

    #[test]
    fn escaping_round_trips() {
        for secret in ["plain", "a:b", "back\\slash", "\\:", "*", "trailing\\"] {
            let l = line("h:1", 5432, "u:*", &Secret::new(secret));
            assert_eq!(
                pw(&l, "h:1", "5432", "any", "u:*").as_deref(),
                Some(secret),
                "{l}"
            );
        }
    }

    #[test]
    fn file_permissions_and_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pgpass");
        assert_eq!(lookup(&path, "h", 5432, "d", "u"), Lookup::NotFound);
        std::fs::write(&path, "h:5432:d:u:pw\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(
            lookup(&path, "h", 5432, "d", "u"),
            Lookup::Found(Secret::new("pw"))
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert_eq!(
            lookup(&path, "h", 5432, "d", "u"),
            Lookup::Ignored(format!(
                "WARNING: password file {0} has group or world access (mode 0640); it was ignored — fix it with: chmod 0600 {0}",
                path.display()
            ))
        );
        let Lookup::Ignored(w) = lookup(dir.path(), "h", 5432, "d", "u") else {
            panic!("a directory is not a password file");
        };
        assert!(w.contains("is not a plain file"), "{w}");
    }
}

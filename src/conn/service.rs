//! The connection service file (`pg_service.conf`), a port of libpq's
//! `parseServiceInfo`/`parseServiceFile`.
//!
//! Search order (libpq): the per-user file — `PGSERVICEFILE` if set (it must
//! then exist), else `~/.pg_service.conf` if it exists — and, only when the
//! service is not defined there, the system file
//! `$PGSYSCONFDIR/pg_service.conf`, where the compiled-in default of
//! Debian's libpq is `/etc/postgresql-common` (`pg_config --sysconfdir`).
//! libpq reads no other file (in particular not `/etc/pg_service.conf`).
//! Definitions are not merged: the first file that has the section wins.

use std::path::{Path, PathBuf};

use super::conninfo::{Pairs, is_c_space, keyword};
use super::env::Env;
use super::error::{ConnError, Origin};

/// Debian's libpq is built with `--sysconfdir=/etc/postgresql-common`.
pub(crate) const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// The parameters of one service section and where they were found.
#[derive(Debug)]
pub(crate) struct Service {
    pub name: String,
    pub file: PathBuf,
    pub pairs: Pairs,
}

impl Service {
    pub fn origin(&self) -> Origin {
        Origin::Service {
            name: self.name.clone(),
            file: self.file.clone(),
        }
    }
}

/// Finds service `name` in the files libpq would search.
pub(crate) fn lookup(name: &str, env: &dyn Env) -> Result<Service, ConnError> {
    let mut searched = Vec::new();
    let user_file = match env.var("PGSERVICEFILE") {
        Some(f) => Some((PathBuf::from(f), true)),
        None => env.home().map(|h| (h.join(".pg_service.conf"), false)),
    };
    if let Some((path, explicit)) = user_file {
        if explicit || path.exists() {
            let text = read(&path, explicit)?;
            if let Some(pairs) = parse_group(&text, &path, name)? {
                return Ok(found(name, path, pairs));
            }
        }
        searched.push(path);
    }
    let dir = env
        .var("PGSYSCONFDIR")
        .unwrap_or_else(|| DEFAULT_SYSCONFDIR.to_string());
    let system = Path::new(&dir).join("pg_service.conf");
    if system.exists() {
        let text = read(&system, false)?;
        if let Some(pairs) = parse_group(&text, &system, name)? {
            return Ok(found(name, system, pairs));
        }
    }
    searched.push(system);
    Err(ConnError::ServiceNotFound {
        name: name.to_string(),
        searched: describe(&searched),
    })
}

fn found(name: &str, file: PathBuf, pairs: Pairs) -> Service {
    Service {
        name: name.to_string(),
        file,
        pairs,
    }
}

/// "a or b (missing)": which files were looked at, and which do not exist.
fn describe(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| {
            let missing = if p.exists() { "" } else { " (missing)" };
            format!("{}{missing}", p.display())
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

fn read(path: &Path, explicit: bool) -> Result<String, ConnError> {
    std::fs::read_to_string(path).map_err(|source| {
        if explicit && source.kind() == std::io::ErrorKind::NotFound {
            ConnError::ServiceFileMissing {
                path: path.to_path_buf(),
                origin: Origin::Env("PGSERVICEFILE"),
            }
        } else {
            ConnError::ReadFile {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// The `key=value` lines of section `[name]`, or `None` if the file has no
/// such section. Like libpq: blanks around a line are ignored, `#` starts a
/// comment line, there is no trimming around `=` (so `host = x` is an
/// error), the first value of a key wins, and `service=` inside a section is
/// refused.
pub(crate) fn parse_group(text: &str, file: &Path, name: &str) -> Result<Option<Pairs>, ConnError> {
    let syntax = |line: usize, reason: String| ConnError::ServiceFileSyntax {
        file: file.to_path_buf(),
        line,
        reason,
    };
    let mut in_group = false;
    let mut found = false;
    let mut pairs = Pairs::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            if in_group {
                break; // end of the wanted section
            }
            // libpq compares the name and checks for ']' right after it.
            in_group = section
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(']'));
            found |= in_group;
            continue;
        }
        if !in_group {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| syntax(idx + 1, format!("expected keyword=value, found \"{line}\"")))?;
        if key == "service" {
            return Err(syntax(
                idx + 1,
                "nested service specifications are not supported".to_string(),
            ));
        }
        let Some(k) = keyword(key) else {
            return Err(syntax(
                idx + 1,
                format!(
                    "\"{key}\" is not a connection parameter (no blanks are allowed around \"=\")"
                ),
            ));
        };
        if !pairs.iter().any(|(existing, _)| *existing == k) {
            pairs.push((k, value.to_string()));
        }
    }
    Ok(found.then_some(pairs))
}

#[cfg(test)]
mod tests {
    use super::super::env::TestEnv;
    use super::*;

    const FILE: &str = "\
# comment
[other]
host=elsewhere

  [prod]  
host=db.example
port=5433
  # indented comment
dbname=clinic
port=9999
[prod2]
host=wrong
";

    fn group(text: &str, name: &str) -> Result<Option<Pairs>, ConnError> {
        parse_group(text, Path::new("/f"), name)
    }

    #[test]
    fn reads_the_named_section_only_first_value_wins() {
        let pairs = group(FILE, "prod").expect("parses").expect("found");
        assert_eq!(
            pairs,
            vec![
                ("host", "db.example".to_string()),
                ("port", "5433".to_string()),
                ("dbname", "clinic".to_string())
            ]
        );
        assert_eq!(
            group(FILE, "prod2").expect("parses").expect("found").len(),
            1
        );
        assert!(group(FILE, "pro").expect("parses").is_none());
        assert!(group(FILE, "missing").expect("parses").is_none());
    }

    #[test]
    fn empty_section_is_found() {
        assert_eq!(group("[a]\n[b]\nhost=x\n", "a").expect("ok"), Some(vec![]));
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let e = group("[s]\nhost = x\n", "s").expect_err("blank before =");
        assert_eq!(
            e.to_string(),
            "syntax error in service file /f, line 2: \"host \" is not a connection parameter (no blanks are allowed around \"=\")"
        );
        let e = group("[s]\nhost\n", "s").expect_err("no =");
        assert!(
            e.to_string().contains("line 2: expected keyword=value"),
            "{e}"
        );
        let e = group("[s]\nservice=t\n", "s").expect_err("nested");
        assert!(e.to_string().contains("nested service"), "{e}");
        // Errors in other sections are not looked at, as in libpq.
        assert!(group("[t]\nbogus\n[s]\nhost=x\n", "s").is_ok());
    }

    #[test]
    fn user_file_then_system_file() {
        let home = tempfile::tempdir().expect("tempdir");
        let sys = tempfile::tempdir().expect("tempdir");
        std::fs::write(home.path().join(".pg_service.conf"), "[a]\nhost=user-a\n").expect("write");
        std::fs::write(
            sys.path().join("pg_service.conf"),
            "[a]\nhost=sys-a\n[b]\nhost=sys-b\n",
        )
        .expect("write");
        let env = TestEnv::new(home.path()).set("PGSYSCONFDIR", &sys.path().to_string_lossy());

        let a = lookup("a", &env).expect("a");
        assert_eq!(a.pairs, vec![("host", "user-a".to_string())]);
        assert_eq!(a.file, home.path().join(".pg_service.conf"));
        let b = lookup("b", &env).expect("b");
        assert_eq!(b.pairs, vec![("host", "sys-b".to_string())]);
        assert_eq!(b.file, sys.path().join("pg_service.conf"));
    }

    #[test]
    fn unknown_service_names_the_files_searched() {
        let home = tempfile::tempdir().expect("tempdir");
        std::fs::write(home.path().join(".pg_service.conf"), "[a]\nhost=x\n").expect("write");
        let env = TestEnv::new(home.path()).set("PGSYSCONFDIR", "/nonexistent-sysconf");
        let e = lookup("prod", &env).expect_err("unknown");
        assert_eq!(
            e.to_string(),
            format!(
                "service \"prod\" not found in {}/.pg_service.conf or /nonexistent-sysconf/pg_service.conf (missing)",
                home.path().display()
            )
        );
    }

    #[test]
    fn default_sysconfdir_is_debians() {
        let home = tempfile::tempdir().expect("tempdir");
        let e = lookup("nope-pgstep-test", &TestEnv::new(home.path())).expect_err("unknown");
        assert!(
            e.to_string()
                .contains("/etc/postgresql-common/pg_service.conf"),
            "{e}"
        );
    }

    #[test]
    fn missing_pgservicefile_is_an_error() {
        let home = tempfile::tempdir().expect("tempdir");
        let env = TestEnv::new(home.path()).set("PGSERVICEFILE", "/nonexistent/svc.conf");
        let e = lookup("a", &env).expect_err("missing");
        assert_eq!(
            e.to_string(),
            "service file /nonexistent/svc.conf (from PGSERVICEFILE) not found"
        );
    }
}

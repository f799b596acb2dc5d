//! What a sysadmin needs to run a bundle's scripts with plain psql: a copy of the bundle with
//! every `@NAME@` placeholder already replaced, and a way to run PostgreSQL's client programs.
//!
//! psql cannot substitute pgstep's placeholders, so the copy is made first (not timed). A value
//! is quoted for where it stands, exactly as pgstep quotes it: `"clinic_app"` in code,
//! `''Europe/Berlin''` inside a string literal (a plain `sed` would break that literal). Where
//! each placeholder stands is found with pgstep's own lexer ([`pgstep::script::split`]); the
//! files are otherwise copied byte for byte, so `\ir` includes and `\set ON_ERROR_STOP 1` keep
//! working, and the `-- #If…` directives stay comments (psql runs every block, as pgstep does on
//! a fresh upgrade).

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pgstep::script::{
    PlaceholderContext, PlaceholderKind, Placeholders, RawPiece, quote_ident, quote_literal,
};

/// Copies the bundle at `from` into `to`, substituting `values` in every `.sql` file.
pub fn substituted_copy(from: &Path, to: &Path, values: &Placeholders) {
    fs::create_dir_all(to).expect("create the substituted bundle directory");
    for entry in fs::read_dir(from)
        .expect("read the bundle directory")
        .flatten()
    {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            substituted_copy(&src, &dst, values);
        } else if src.extension().is_some_and(|e| e == "sql") {
            let text = fs::read_to_string(&src).expect("read a script");
            let done = substitute(&text, values)
                .unwrap_or_else(|e| panic!("substitute in {}: {e}", src.display()));
            fs::write(&dst, done).expect("write a substituted script");
        } else {
            fs::copy(&src, &dst).expect("copy a bundle file");
        }
    }
}

/// `text` with every placeholder outside comments replaced by its value, quoted for its context.
fn substitute(text: &str, values: &Placeholders) -> Result<String, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let pieces = pgstep::script::split(text).map_err(|e| format!("{:?}", e))?;
    let starts = line_starts(text);
    let mut chars: Vec<char> = text.chars().collect();
    // Collected first, replaced from the end so that earlier offsets stay valid.
    let mut uses = Vec::new();
    for piece in &pieces {
        if let RawPiece::Statement(st) = piece {
            uses.extend(st.uses.iter());
        }
    }
    uses.sort_by_key(|u| std::cmp::Reverse(u.at));
    for u in uses {
        let start = starts[u.at.line as usize - 1] + u.at.column as usize - 1;
        let found: String = chars[start..start + u.len].iter().collect();
        if found != format!("@{}@", u.name) {
            return Err(format!(
                "expected @{}@ at {:?}, found {found:?}",
                u.name, u.at
            ));
        }
        let value = values
            .get(&u.name)
            .ok_or_else(|| format!("no value for @{}@", u.name))?;
        let replacement = quoted_for(&value_text(value.kind, &value.value), &u.context)?;
        chars.splice(start..start + u.len, replacement.chars());
    }
    Ok(chars.into_iter().collect())
}

/// The placeholder's value in its quoted form, as pgstep writes it in code.
fn value_text(kind: PlaceholderKind, value: &str) -> String {
    match kind {
        PlaceholderKind::Identifier => quote_ident(value),
        PlaceholderKind::Literal => quote_literal(value),
    }
}

/// The quoted form as it must be written where the placeholder stands.
fn quoted_for(quoted: &str, context: &PlaceholderContext) -> Result<String, String> {
    match context {
        PlaceholderContext::Code | PlaceholderContext::DollarQuoted { .. } => Ok(quoted.into()),
        PlaceholderContext::String {
            backslash_escapes: false,
        } => Ok(quoted.replace('\'', "''")),
        PlaceholderContext::String {
            backslash_escapes: true,
        } => Ok(quoted.replace('\\', "\\\\").replace('\'', "''")),
        other => Err(format!("placeholder in {other:?}: not supported here")),
    }
}

/// The character offset at which each line starts; lines end at `\n`, `\r\n` or a lone `\r`,
/// as pgstep's lexer counts them.
fn line_starts(text: &str) -> Vec<usize> {
    let chars: Vec<char> = text.chars().collect();
    let mut starts = vec![0];
    for (i, &c) in chars.iter().enumerate() {
        let ends_line = c == '\n' || (c == '\r' && chars.get(i + 1) != Some(&'\n'));
        if ends_line {
            starts.push(i + 1);
        }
    }
    starts
}

/// `psql -X -q -v ON_ERROR_STOP=1 -d db -f script`, run from `dir` (the substituted bundle), so
/// that relative paths resolve as they do for a sysadmin in the bundle directory.
pub fn psql_file(psql: &Path, dir: &Path, db: &str, script: &Path) -> Command {
    let mut cmd = Command::new(psql);
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f"])
        .arg(script)
        .current_dir(dir);
    cmd
}

/// Runs a prepared command to its end and returns how long it took and what it printed; a
/// failure stops the benchmark with the program's own error output.
pub fn run_timed(what: &str, cmd: &mut Command) -> (Duration, Output) {
    let started = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let took = started.elapsed();
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (took, out)
}

//! Small text helpers: places in scripts, SQL comments, Markdown fences, code and cells.

use std::fmt::Write as _;
use std::path::Path;

use crate::script::Location;

/// `file:line`, the form editors and `grep -n` understand.
pub(super) fn place(at: &Location) -> String {
    format!("{}:{}", at.file.display(), at.line)
}

/// Locations in one script: `line 53` for the script itself, `file:line` for included files.
pub(super) fn places(list: &[Location], script: &Path) -> String {
    list.iter()
        .map(|at| {
            if at.file == script {
                format!("line {}", at.line)
            } else {
                place(at)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statement with its `;`, on a line of its own when the last line ends in a `--` comment
/// (which would swallow it).
pub(super) fn terminated(sql: &str) -> String {
    let last = sql.rsplit('\n').next().unwrap_or(sql);
    if last.contains("--") {
        format!("{sql}\n;")
    } else {
        format!("{sql};")
    }
}

/// Every line of `text` as an SQL comment.
pub(super) fn comment(out: &mut String, text: &str) {
    for line in text.split('\n') {
        if line.is_empty() {
            out.push_str("--\n");
        } else {
            let _ = writeln!(out, "-- {line}");
        }
    }
    // The caller adds what follows; drop the final newline so that it controls spacing.
    if out.ends_with('\n') {
        out.pop();
    }
}

/// A fence longer than any run of backticks in the code, so that no statement can end it.
pub(super) fn fence_for(code: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in code.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat((longest + 1).max(3))
}

/// Inline code that no backtick in `s` can end.
pub(super) fn code(s: &str) -> String {
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

/// Text for a table cell: no line breaks, no column separators.
pub(super) fn cell(s: &str) -> String {
    s.replace('\n', " ").replace('|', "\\|")
}

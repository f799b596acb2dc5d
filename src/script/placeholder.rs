//! Replacing `@NAME@` by its value, quoted for where it stands, and remembering where every
//! character of the result came from.
//!
//! | context                | defined name                                   | undefined name |
//! |------------------------|------------------------------------------------|----------------|
//! | code                   | quoted form (`"ident"`, `'literal'`)           | error          |
//! | `'…'`, `B'…'`, `N'…'`  | quoted form with `'` doubled                   | kept, warning  |
//! | `E'…'`                 | quoted form with `\` and `'` doubled           | kept, warning  |
//! | `$tag$…$tag$`          | quoted form; error if it contains `$tag$`      | kept, warning  |
//! | `U&'…'`                | error (its escape character is configurable)   | kept, warning  |
//! | `"…"`                  | error: write the placeholder outside the quotes | error         |
//! | comments               | left alone                                     | left alone     |
//!
//! Undefined names inside strings and bodies are kept because such text is often data (a letter
//! template with `@PATIENT_NAME@` markers); the warning lets the operator see a misspelt one.

use super::Placeholders;
use super::lexer::{PlaceholderContext, PlaceholderUse, Pos, RawStatement};
use super::quote::{quoted_form, validate_placeholder};

/// Maps character offsets of a statement's SQL back to file positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineMap {
    segments: Vec<Segment>,
}

/// A run of the SQL starting at `sql_start` (0-based, in characters): copied from the file
/// starting at `line:column`, or, when `substituted`, a placeholder's value, all of whose
/// characters map to the placeholder's `@`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    sql_start: usize,
    line: u32,
    column: u32,
    substituted: bool,
}

impl LineMap {
    /// `(line, column)` of the 1-based character offset in `sql` (offset 0 counts as 1).
    pub fn locate(&self, sql: &str, char_offset_1based: u32) -> (u32, u32) {
        let target = usize::try_from(char_offset_1based.saturating_sub(1)).unwrap_or(usize::MAX);
        let idx = self
            .segments
            .partition_point(|s| s.sql_start <= target)
            .saturating_sub(1);
        let Some(seg) = self.segments.get(idx) else {
            return (1, 1);
        };
        if seg.substituted {
            return (seg.line, seg.column);
        }
        let (mut line, mut column) = (seg.line, seg.column);
        let mut chars = sql.chars().skip(seg.sql_start).peekable();
        let mut at = seg.sql_start;
        // Line breaks are counted as the lexer counts them: \n, \r\n, lone \r.
        while at < target {
            let Some(c) = chars.next() else { break };
            let breaks = c == '\n' || (c == '\r' && chars.peek() != Some(&'\n'));
            if breaks {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
            at += 1;
        }
        (line, column)
    }
}

#[derive(Debug)]
pub(crate) struct Substituted {
    pub sql: String,
    pub line_map: LineMap,
    /// Undefined names left in strings or bodies.
    pub warnings: Vec<(Pos, String)>,
}

/// Substitutes every placeholder of `raw`. `Err` is the position of the offending placeholder
/// and the message.
pub(crate) fn substitute(
    raw: &RawStatement,
    placeholders: &Placeholders,
) -> Result<Substituted, (Pos, String)> {
    let chars: Vec<char> = raw.text.chars().collect();
    let mut sql = String::with_capacity(raw.text.len());
    let mut sql_len = 0usize; // in characters
    let mut segments = vec![Segment {
        sql_start: 0,
        line: raw.at.line,
        column: raw.at.column,
        substituted: false,
    }];
    let mut warnings = Vec::new();
    let mut copied = 0usize; // characters of `raw.text` already handled
    for u in &raw.uses {
        let Some(mut replacement) = replacement(u, placeholders, &mut warnings)? else {
            continue;
        };
        let verbatim = &chars[copied..u.offset];
        sql.extend(verbatim);
        sql_len += verbatim.len();
        if u.context == PlaceholderContext::Code {
            keep_apart(&sql, chars.get(u.offset + u.len).copied(), &mut replacement);
        }
        segments.push(Segment {
            sql_start: sql_len,
            line: u.at.line,
            column: u.at.column,
            substituted: true,
        });
        sql.push_str(&replacement);
        sql_len += replacement.chars().count();
        copied = u.offset + u.len;
        // A placeholder never spans a line break, so the text after it starts on its line.
        segments.push(Segment {
            sql_start: sql_len,
            line: u.at.line,
            column: u.at.column + u32::try_from(u.len).unwrap_or(0),
            substituted: false,
        });
    }
    sql.extend(&chars[copied..]);
    Ok(Substituted {
        sql,
        line_map: LineMap { segments },
        warnings,
    })
}

/// Spaces around a value substituted in code, between the SQL before it and the character
/// after it (`next`), so that it stays a token of its own.
fn keep_apart(sql: &str, next: Option<char>, replacement: &mut String) {
    // A quoted value must stay a token of its own: `'a'` right after a quote, a name or
    // `U&` would be read as part of it (`'x''a'` is one string, `x'a'` a bit string),
    // and a quote right after it would continue it.
    if sql.chars().last().is_some_and(|c| {
        c == '\''
            || c == '"'
            || c == '&'
            || c == '_'
            || c == '$'
            || c.is_ascii_alphanumeric()
            || !c.is_ascii()
    }) {
        replacement.insert(0, ' ');
    }
    if next.is_some_and(|c| c == '\'' || c == '"') {
        replacement.push(' ');
    }
}

/// The text that replaces `u`, or `None` to keep it as written.
fn replacement(
    u: &PlaceholderUse,
    placeholders: &Placeholders,
    warnings: &mut Vec<(Pos, String)>,
) -> Result<Option<String>, (Pos, String)> {
    let name = &u.name;
    let fail = |m: String| (u.at, m);
    let Some(p) = placeholders.get(name) else {
        return undefined(u, placeholders, warnings);
    };
    validate_placeholder(name, p).map_err(|e| fail(e.to_string()))?;
    let quoted = quoted_form(p);
    let text = match &u.context {
        PlaceholderContext::Code => quoted,
        PlaceholderContext::String { backslash_escapes } => {
            let mut s = String::with_capacity(quoted.len() + 4);
            for c in quoted.chars() {
                if c == '\'' || (*backslash_escapes && c == '\\') {
                    s.push(c);
                }
                s.push(c);
            }
            s
        }
        PlaceholderContext::DollarQuoted { delimiter } => {
            if quoted.contains(delimiter.as_str()) {
                return Err(fail(format!(
                    "the value of @{name}@ contains {delimiter}, which would end the \
                     dollar-quoted body it stands in; use another tag for the body \
                     (e.g. $body$ … $body$)"
                )));
            }
            quoted
        }
        PlaceholderContext::UnicodeString => {
            return Err(fail(format!(
                "placeholder @{name}@ inside a U&'…' string is not supported (its escape \
                 character can be changed with UESCAPE, so pgstep cannot quote the value safely); \
                 write the string without U& or put @{name}@ outside it"
            )));
        }
        PlaceholderContext::QuotedIdentifier => return Err(fail(in_quoted_identifier(name))),
    };
    Ok(Some(text))
}

/// `u` names no placeholder: an error in code or a quoted identifier, a warning (and the text
/// left as written) in a string or a dollar-quoted body.
fn undefined(
    u: &PlaceholderUse,
    placeholders: &Placeholders,
    warnings: &mut Vec<(Pos, String)>,
) -> Result<Option<String>, (Pos, String)> {
    let name = &u.name;
    let fail = |m: String| (u.at, m);
    match u.context {
        PlaceholderContext::Code => {
            let known: Vec<&str> = placeholders.keys().map(String::as_str).collect();
            Err(fail(format!(
                "unknown placeholder @{name}@ (defined: {}); define it in the manifest's \
                 [placeholders] or with --set {name}=VALUE",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )))
        }
        PlaceholderContext::QuotedIdentifier => Err(fail(in_quoted_identifier(name))),
        PlaceholderContext::DollarQuoted { .. } => {
            warnings.push((u.at, left_as_written(name, "a dollar-quoted body")));
            Ok(None)
        }
        PlaceholderContext::String { .. } | PlaceholderContext::UnicodeString => {
            warnings.push((u.at, left_as_written(name, "a string")));
            Ok(None)
        }
    }
}

fn in_quoted_identifier(name: &str) -> String {
    format!(
        "placeholder @{name}@ inside a quoted identifier cannot be substituted; write @{name}@ \
         without the double quotes (an identifier placeholder is quoted for you)"
    )
}

fn left_as_written(name: &str, place: &str) -> String {
    format!(
        "@{name}@ inside {place} is not a defined placeholder and is left as written; if it was \
         meant as one, define it or fix its spelling"
    )
}

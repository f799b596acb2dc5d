//! Quoting identifiers and literals the way PostgreSQL's `quote_ident`/`quote_literal` do, and
//! the rules placeholder names and values must follow.

use super::{Placeholder, PlaceholderKind};

/// Placeholders that are always defined; the caller supplies their values.
pub const BUILTIN_PLACEHOLDERS: [&str; 2] = ["DB_NAME", "DB_USER"];

/// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1 bytes).
pub(crate) const MAX_IDENTIFIER_BYTES: usize = 63;

/// `"name"`, always quoted (even when PostgreSQL would not need it), with `"` doubled. Quoting
/// always keeps the exact spelling: `Patient` stays `Patient` instead of being folded to lower
/// case.
pub fn quote_ident(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `'text'` with `'` doubled. A value containing a backslash is written `E'…'` with the
/// backslashes doubled too, so that it means the same whatever `standard_conforming_strings`
/// says (this is what PostgreSQL's own `quote_literal` does).
pub fn quote_literal(s: &str) -> String {
    let has_backslash = s.contains('\\');
    let mut out = String::with_capacity(s.len() + 3);
    if has_backslash {
        out.push('E');
    }
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Whether `name` can be used as `@name@`: an upper-case ASCII letter, then upper-case letters,
/// digits and `_`. Only this shape is recognised in scripts, so that `@` operators, `@>` and
/// e-mail addresses are never mistaken for placeholders.
pub fn is_placeholder_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('A'..='Z'))
        && chars.all(|c| matches!(c, 'A'..='Z' | '0'..='9' | '_'))
}

/// Why a placeholder's name or value is refused; the caller adds the location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    #[error(
        "placeholder name {name:?} cannot be used in scripts: write it in upper case \
         letters, digits and _, starting with a letter (e.g. DB_OWNER)"
    )]
    Name { name: String },
    #[error(
        "the value of placeholder {name} contains a NUL character, which PostgreSQL cannot store"
    )]
    Nul { name: String },
    #[error("placeholder {name} is an identifier but its value is empty")]
    EmptyIdentifier { name: String },
    #[error(
        "the value of identifier placeholder {name} is {bytes} bytes long; PostgreSQL would \
         silently cut it to {max} bytes, so use a shorter name",
        max = MAX_IDENTIFIER_BYTES
    )]
    LongIdentifier { name: String, bytes: usize },
}

/// Checks a placeholder's name and value; the manifest loader should call it for every entry so
/// that a bad one is reported where it is defined.
pub fn validate_placeholder(name: &str, p: &Placeholder) -> Result<(), PlaceholderError> {
    let name_owned = || name.to_owned();
    if !is_placeholder_name(name) {
        return Err(PlaceholderError::Name { name: name_owned() });
    }
    if p.value.contains('\0') {
        return Err(PlaceholderError::Nul { name: name_owned() });
    }
    if p.kind == PlaceholderKind::Identifier {
        if p.value.is_empty() {
            return Err(PlaceholderError::EmptyIdentifier { name: name_owned() });
        }
        if p.value.len() > MAX_IDENTIFIER_BYTES {
            return Err(PlaceholderError::LongIdentifier {
                name: name_owned(),
                bytes: p.value.len(),
            });
        }
    }
    Ok(())
}

/// The placeholder's value quoted for SQL code.
pub(crate) fn quoted_form(p: &Placeholder) -> String {
    match p.kind {
        PlaceholderKind::Identifier => quote_ident(&p.value),
        PlaceholderKind::Literal => quote_literal(&p.value),
    }
}

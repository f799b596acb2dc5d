//! Loading SQL upgrade scripts: everything pgstep does to a `.sql` file before a database is
//! involved.
//!
//! A script is read the way `psql -f` reads it ([`split`], a port of the statement-ending rules of
//! PostgreSQL's `psqlscan.l`), then:
//!
//! * the few psql meta-commands pgstep can honour (`\set ON_ERROR_STOP 1`, `\echo`, `\i`, `\ir`)
//!   are applied and every other one is refused (`meta.rs`);
//! * OpenEMR-style directives (`#IfNotTable …` / `#EndIf`) become [`Node::Block`]s whose
//!   [`Condition`] knows the catalog query that decides them (`directive.rs`, `condition.rs`);
//! * `@NAME@` placeholders are replaced by their quoted value, quoted for the lexical context they
//!   stand in (`placeholder.rs`), and every statement keeps a map back to the file so that
//!   PostgreSQL's error position can be shown as `file:line:column`;
//! * each statement is classified ([`StatementKind`]) so that the executor knows which ones
//!   manage transactions or cannot run inside one; [`changes`] reads which tables and indexes
//!   it changes (for the plan preview).
//!
//! Nothing here touches a database or a terminal: the result is a tree of [`Node`]s.

mod changes;
mod classify;
mod condition;
mod directive;
mod lexer;
mod load;
mod meta;
mod placeholder;
mod query;
mod quote;

#[cfg(test)]
mod tests_condition;
#[cfg(test)]
mod tests_directive;
#[cfg(test)]
mod tests_lexer;
#[cfg(test)]
mod tests_load;
#[cfg(test)]
mod tests_placeholder;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use changes::{Change, changes};
pub use classify::HeadToken;
pub use condition::{Condition, QualName};
pub use lexer::{
    PlaceholderContext, PlaceholderUse, Pos, RawPiece, RawStatement, SplitError, split,
    statement_head,
};
pub use load::load_script;
pub use placeholder::LineMap;
pub use query::{read_only_statement_problem, single_read_query};
pub use quote::{
    BUILTIN_PLACEHOLDERS, PlaceholderError, is_placeholder_name, quote_ident, quote_literal,
    validate_placeholder,
};

/// A place in a script file, for messages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Path relative to the bundle root.
    pub file: PathBuf,
    /// 1-based; 0 only for errors about a whole file (it cannot be read, …).
    pub line: u32,
    /// 1-based, counted in characters (not bytes).
    pub column: u32,
}

impl Location {
    pub(crate) fn new(file: &std::path::Path, at: Pos) -> Location {
        Location {
            file: file.to_path_buf(),
            line: at.line,
            column: at.column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // An error about the file as a whole: a made-up "1:1" would send the reader
            // looking for a problem on the first line.
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
        }
    }
}

/// How a placeholder's value is quoted where it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceholderKind {
    /// Replaced by the quoted identifier: `"clinic_owner"`.
    Identifier,
    /// Replaced by the quoted string literal: `'Main practice'`.
    Literal,
}

/// The value of one `@NAME@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub kind: PlaceholderKind,
    pub value: String,
}

/// Placeholder values by name (without the `@`s). The caller includes the built-in `DB_NAME` and
/// `DB_USER` ([`BUILTIN_PLACEHOLDERS`]).
pub type Placeholders = BTreeMap<String, Placeholder>;

/// A script with its includes resolved, ready to be executed node by node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The path as given to [`load_script`] (relative to the bundle root).
    pub path: PathBuf,
    /// Lower-case hex sha256 of the top file's bytes.
    pub sha256: String,
    /// Every file pulled in by `\i`/`\ir`, directly or not, once each, in order of first
    /// inclusion, with its sha256.
    pub included: Vec<(PathBuf, String)>,
    pub nodes: Vec<Node>,
    /// Things that are allowed but look like mistakes (an undefined `@NAME@` inside a string).
    pub warnings: Vec<ScriptWarning>,
}

impl Script {
    /// One checksum for the top file and everything it includes: the sha256 of the top file's
    /// hash followed by `path\0hash\n` for each included file. Use it where "has this script
    /// changed?" must notice a change in an included file too (the top file's own hash does not).
    pub fn combined_sha256(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.sha256.as_bytes());
        h.update(b"\n");
        for (path, sha) in &self.included {
            h.update(path.to_string_lossy().as_bytes());
            h.update(b"\0");
            h.update(sha.as_bytes());
            h.update(b"\n");
        }
        hex(&h.finalize())
    }

    /// Every statement, depth first, whatever the conditions (for checks made before running).
    pub fn statements(&self) -> Vec<&Statement> {
        fn walk<'a>(nodes: &'a [Node], out: &mut Vec<&'a Statement>) {
            for n in nodes {
                match n {
                    Node::Statement(s) => out.push(s),
                    Node::Echo { .. } => {}
                    Node::Block { body, .. } => walk(body, out),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.nodes, &mut out);
        out
    }
}

/// Something allowed that may well be a mistake; worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptWarning {
    pub at: Location,
    pub message: String,
}

impl fmt::Display for ScriptWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// One step of a script, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Statement(Statement),
    /// `\echo text`: show `text` as a log line.
    Echo {
        text: String,
        at: Location,
    },
    /// `#If… ` … `#EndIf`: run `body` only when `condition` holds.
    Block {
        condition: Condition,
        at: Location,
        body: Vec<Node>,
    },
}

/// One SQL statement, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// After placeholder substitution; without the terminating `;`; starting at the first token
    /// (leading comments and blank lines dropped) and without trailing whitespace.
    pub sql: String,
    /// Where the first token is.
    pub at: Location,
    pub kind: StatementKind,
    /// Maps character offsets in `sql` back to the file; see [`Statement::location_of`].
    pub line_map: LineMap,
}

impl Statement {
    /// The file location of a 1-based character offset in `sql`, as PostgreSQL reports it in an
    /// error's position. Inside a substituted placeholder value it is the placeholder's `@`; past
    /// the end ("at end of input") it is just after the last character.
    pub fn location_of(&self, char_offset_1based: u32) -> Location {
        let (line, column) = self.line_map.locate(&self.sql, char_offset_1based);
        Location {
            file: self.at.file.clone(),
            line,
            column,
        }
    }
}

/// What the executor must know about a statement's relation to transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK (not ROLLBACK TO SAVEPOINT), ABORT,
    /// PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED.
    TransactionControl,
    /// Refused by PostgreSQL inside a transaction block (VACUUM, CREATE INDEX CONCURRENTLY, …;
    /// the list is in `classify.rs`).
    NoTransactionBlock,
    Other,
}

/// A script cannot be used; the message says what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct ScriptError {
    pub at: Location,
    pub message: String,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Entry points for the property tests of `tests/fuzz.rs` into what is otherwise private to
/// this module (the directive parser, the placeholder substitution). Test builds only; not an
/// API.
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub mod fuzz {
    use super::{Condition, LineMap, Placeholders, Pos, RawStatement};

    /// Parses one directive line (`name` without the `#`): `Ok(None)` is `#EndIf`.
    pub fn parse_directive(
        name: &str,
        args: &str,
        at: Pos,
        args_at: Pos,
    ) -> Result<Option<Condition>, (Pos, String)> {
        match super::directive::parse(name, args, at, args_at)? {
            super::directive::Directive::If(c) => Ok(Some(c)),
            super::directive::Directive::EndIf => Ok(None),
        }
    }

    /// The substituted SQL, its line map and the warnings.
    #[allow(clippy::type_complexity)]
    pub fn substitute(
        raw: &RawStatement,
        placeholders: &Placeholders,
    ) -> Result<(String, LineMap, Vec<(Pos, String)>), (Pos, String)> {
        let s = super::placeholder::substitute(raw, placeholders)?;
        Ok((s.sql, s.line_map, s.warnings))
    }
}

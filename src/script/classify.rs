//! What a statement means for transactions, decided from its first keywords.
//!
//! The lexer records the first top-level tokens of each statement ([`HeadToken`]): keywords
//! upper-cased, each top-level parenthesised group as one token carrying its first words (enough
//! for `REINDEX (CONCURRENTLY) …` and `COPY t (a, b, …) FROM STDIN`), quoted identifiers, dots
//! and commas as their own tokens (for [`super::changes`]). Strings, numbers, other operators and
//! placeholders are [`HeadToken::Other`], so a keyword inside a string, a quoted identifier or a
//! comment never counts.
//!
//! Statements PostgreSQL (13 to 18) refuses inside a transaction block
//! (`PreventInTransactionBlock` in its source):
//! VACUUM; CREATE/DROP DATABASE; ALTER DATABASE … SET TABLESPACE; CREATE/DROP TABLESPACE;
//! ALTER SYSTEM; CREATE [UNIQUE] INDEX CONCURRENTLY; DROP INDEX CONCURRENTLY; REINDEX …
//! CONCURRENTLY and REINDEX SCHEMA|SYSTEM|DATABASE; CLUSTER without a table;
//! ALTER TABLE … DETACH PARTITION … CONCURRENTLY; DISCARD ALL; CREATE SUBSCRIPTION and DROP
//! SUBSCRIPTION (only when they create or drop a replication slot, which is their default, so
//! they are counted). Allowed in a transaction and therefore [`StatementKind::Other`]: REFRESH
//! MATERIALIZED VIEW CONCURRENTLY, ALTER TYPE … ADD VALUE (since PostgreSQL 12), ANALYZE.
//! Cases only the server can know (CLUSTER or REINDEX TABLE of a partitioned table, a DO block or
//! procedure that commits) are left to it: they fail loudly, never silently.
//!
//! [`unsupported`] names the statements pgstep refuses outright: `COPY … FROM STDIN` /
//! `TO STDOUT` (no data stream) and `SET standard_conforming_strings` to anything but `on` (the
//! whole file is split beforehand assuming `on`).

use super::StatementKind;

/// One top-level token at the start of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadToken {
    /// A keyword or unquoted identifier, upper-cased (ASCII letters only, as PostgreSQL folds
    /// names in a UTF-8 database).
    Word(String),
    /// A `"quoted identifier"`, resolved (`""` read as `"`). `U&"…"` is [`HeadToken::Other`].
    Quoted(String),
    /// `.` (between the parts of a qualified name).
    Dot,
    /// `,` (between the names of a list).
    Comma,
    /// A parenthesised group, with the first (upper-cased) words found inside it.
    Group(Vec<String>),
    /// Anything else: strings, numbers, operators, placeholders.
    Other,
}

fn word(t: Option<&HeadToken>) -> Option<&str> {
    match t {
        Some(HeadToken::Word(w)) => Some(w),
        _ => None,
    }
}

fn has_word(head: &[HeadToken], w: &str) -> bool {
    head.iter().any(|t| match t {
        HeadToken::Word(x) => x == w,
        HeadToken::Group(words) => words.iter().any(|x| x == w),
        HeadToken::Quoted(_) | HeadToken::Dot | HeadToken::Comma | HeadToken::Other => false,
    })
}

fn has_pair(head: &[HeadToken], a: &str, b: &str) -> bool {
    head.windows(2)
        .any(|p| word(Some(&p[0])) == Some(a) && word(Some(&p[1])) == Some(b))
}

/// The tokens after the first, without option groups and `VERBOSE` (REINDEX, CLUSTER).
fn without_options(head: &[HeadToken]) -> Vec<&HeadToken> {
    head.iter()
        .skip(1)
        .filter(|t| !matches!(t, HeadToken::Group(_)) && word(Some(t)) != Some("VERBOSE"))
        .collect()
}

pub(crate) fn classify(head: &[HeadToken]) -> StatementKind {
    use StatementKind::{NoTransactionBlock as NoTx, Other, TransactionControl as Tc};
    let w = |i: usize| word(head.get(i));
    let Some(first) = w(0) else { return Other };
    match first {
        "BEGIN" | "COMMIT" | "END" | "ABORT" => Tc,
        "START" if w(1) == Some("TRANSACTION") => Tc,
        "PREPARE" if w(1) == Some("TRANSACTION") => Tc,
        "ROLLBACK" => {
            let mut i = 1;
            if matches!(w(i), Some("WORK" | "TRANSACTION")) {
                i += 1;
            }
            // ROLLBACK TO SAVEPOINT undoes part of a transaction and leaves it open.
            if w(i) == Some("TO") { Other } else { Tc }
        }
        "VACUUM" => NoTx,
        "CREATE" | "DROP" => {
            let i = if w(1) == Some("UNIQUE") { 2 } else { 1 };
            match (w(i), w(i + 1)) {
                (Some("INDEX"), Some("CONCURRENTLY")) => NoTx,
                (Some("DATABASE" | "TABLESPACE" | "SUBSCRIPTION"), _) if i == 1 => NoTx,
                _ => Other,
            }
        }
        "REINDEX" => {
            let target = without_options(head).first().and_then(|t| word(Some(t)));
            if has_word(head, "CONCURRENTLY")
                || matches!(target, Some("SCHEMA" | "SYSTEM" | "DATABASE"))
            {
                NoTx
            } else {
                Other
            }
        }
        "CLUSTER" if without_options(head).is_empty() => NoTx,
        "ALTER" => match w(1) {
            Some("SYSTEM") => NoTx,
            Some("DATABASE") if has_pair(head, "SET", "TABLESPACE") => NoTx,
            Some("TABLE") if has_word(head, "DETACH") && has_word(head, "CONCURRENTLY") => NoTx,
            _ => Other,
        },
        "DISCARD" if w(1) == Some("ALL") => NoTx,
        _ => Other,
    }
}

/// Statements pgstep cannot run at all, found while splitting (so that the message names the
/// statement rather than a line of its inline data, or a later statement split wrongly).
pub(crate) fn unsupported(head: &[HeadToken]) -> Option<String> {
    match word(head.first()) {
        Some("COPY") => copy_problem(head),
        Some("SET") => {
            // psql follows the server's setting while it reads; pgstep splits the whole file
            // beforehand, assuming `on`, so a script must not turn it off.
            let mut rest = head.iter().skip(1).map(|t| word(Some(t)));
            let mut name = rest.next().flatten();
            if matches!(name, Some("SESSION" | "LOCAL")) {
                name = rest.next().flatten();
            }
            if name != Some("STANDARD_CONFORMING_STRINGS") {
                return None;
            }
            let value: Vec<Option<&str>> = rest.collect();
            let on = matches!(
                value.as_slice(),
                [None, Some("ON" | "TRUE" | "DEFAULT")]
                    | [Some("TO"), Some("ON" | "TRUE" | "DEFAULT")]
            );
            (!on).then(|| {
                "pgstep reads scripts with standard_conforming_strings on (the default); this SET \
                 would change how the rest of the file is read; remove it or write \
                 SET standard_conforming_strings = on"
                    .to_string()
            })
        }
        _ => None,
    }
}

fn copy_problem(head: &[HeadToken]) -> Option<String> {
    if has_pair(head, "FROM", "STDIN") {
        return Some(
            "COPY … FROM STDIN with inline data is not supported: pgstep sends one statement at a \
             time and has no data stream to give it; load the rows with INSERT … VALUES instead"
                .into(),
        );
    }
    if has_pair(head, "TO", "STDOUT") {
        return Some(
            "COPY … TO STDOUT is not supported: pgstep has nowhere to send the rows; use a SELECT \
             in a precheck, or COPY … TO a server-side file"
                .into(),
        );
    }
    None
}

//! SQL that pgstep runs against a database it must not change — the bundle's version query,
//! banner `get`, the sides of plausibility pairs, the statements of prechecks — is checked here
//! before anything connects: one statement each, and nothing that ends the transaction pgstep
//! runs it in or makes that transaction writable.
//!
//! This is the first of three guards; the others are at run time (`db::readonly`): the
//! statement goes through the extended protocol (which refuses more than one statement) inside a
//! READ ONLY transaction whose snapshot is taken first, so that it cannot be made read-write.

use super::classify::HeadToken;
use super::lexer::{Pos, RawPiece, SplitError, split};

/// What to do, appended to every refusal.
const ADVICE: &str = "pgstep runs it as one statement in a transaction of its own, READ ONLY \
                      (except the banner's set and clear, whose change it checks before it \
                      commits): remove this statement";

/// The one statement of a query that bundle.toml gives (trailing `;` and whitespace dropped),
/// or why it is refused, at a position in `sql`.
pub fn single_read_query(sql: &str) -> Result<String, SplitError> {
    let pieces = split(sql)?;
    let mut statements = Vec::new();
    for piece in pieces {
        match piece {
            RawPiece::Statement(s) => statements.push(s),
            RawPiece::Meta { name, at, .. } => {
                return Err(SplitError {
                    at,
                    message: format!(
                        "\\{name}: psql meta-commands have no place in a query of bundle.toml"
                    ),
                });
            }
            RawPiece::Directive { name, at, .. } => {
                return Err(SplitError {
                    at,
                    message: format!("#{name}: directives have no place in a query of bundle.toml"),
                });
            }
        }
    }
    let count = statements.len();
    let mut it = statements.into_iter();
    let Some(first) = it.next() else {
        return Err(SplitError {
            at: Pos { line: 1, column: 1 },
            message: "the query holds no statement".into(),
        });
    };
    if let Some(second) = it.next() {
        return Err(SplitError {
            at: second.at,
            message: format!(
                "this query holds {count} statements; pgstep sends exactly one, in a READ ONLY \
                 transaction: keep the one query that returns the answer and remove the others"
            ),
        });
    }
    if let Some(why) = read_only_breach(&first.head) {
        return Err(SplitError {
            at: first.at,
            message: format!("this statement {why}; {ADVICE}"),
        });
    }
    Ok(first.text)
}

/// Why one statement of a precheck script cannot run in pgstep's READ ONLY transaction, if it
/// cannot. `sql` is the statement's text (one statement).
pub fn read_only_statement_problem(sql: &str) -> Option<String> {
    let pieces = split(sql).ok()?;
    pieces.iter().find_map(|p| match p {
        RawPiece::Statement(s) => {
            read_only_breach(&s.head).map(|why| format!("this statement {why}; {ADVICE}"))
        }
        _ => None,
    })
}

fn word(t: Option<&HeadToken>) -> Option<&str> {
    match t {
        Some(HeadToken::Word(w)) => Some(w),
        _ => None,
    }
}

/// Transaction control, and every way of making the transaction (or the session's next ones)
/// read-write, from a statement's first tokens.
pub(crate) fn read_only_breach(head: &[HeadToken]) -> Option<&'static str> {
    let w = |i: usize| word(head.get(i));
    const CONTROL: &str = "ends or controls the transaction pgstep runs it in";
    const MODE: &str = "changes the transaction's read-only mode";
    match w(0)? {
        "BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE" => {
            Some(CONTROL)
        }
        "START" | "PREPARE" if w(1) == Some("TRANSACTION") => Some(CONTROL),
        "SET" | "RESET" => {
            let at = if matches!(w(1), Some("SESSION" | "LOCAL")) {
                2
            } else {
                1
            };
            match head.get(at) {
                Some(HeadToken::Word(name)) => match name.as_str() {
                    "TRANSACTION" | "CHARACTERISTICS" => Some(MODE),
                    "TRANSACTION_READ_ONLY" | "DEFAULT_TRANSACTION_READ_ONLY" => Some(MODE),
                    _ => None,
                },
                // A quoted setting name: it could be any of them.
                Some(_) => Some("sets a setting given by a quoted name (write it unquoted)"),
                None => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str) -> String {
        match single_read_query(sql) {
            Ok(s) => panic!("accepted: {s}"),
            Err(e) => format!("{}:{}: {}", e.at.line, e.at.column, e.message),
        }
    }

    #[test]
    fn one_select_is_accepted_without_its_semicolon() {
        assert_eq!(
            single_read_query("SELECT count(*) FROM t; -- done\n").expect("one statement"),
            "SELECT count(*) FROM t"
        );
        assert_eq!(
            single_read_query("SELECT ';' AS x").expect("one statement"),
            "SELECT ';' AS x"
        );
    }

    #[test]
    fn more_than_one_statement_is_refused_at_the_second() {
        let e = refused("COMMIT; DELETE FROM clinic.encounter; SELECT 1");
        assert!(e.starts_with("1:9: this query holds 3 statements"), "{e}");
    }

    #[test]
    fn transaction_control_and_read_write_modes_are_refused() {
        for sql in [
            "COMMIT",
            "begin",
            "START TRANSACTION READ WRITE",
            "END",
            "ROLLBACK",
            "ROLLBACK PREPARED 'x'",
            "COMMIT PREPARED 'x'",
            "ABORT",
            "SAVEPOINT a",
            "RELEASE a",
            "PREPARE TRANSACTION 'x'",
            "SET TRANSACTION READ WRITE",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
            "SET transaction_read_only = off",
            "set local transaction_read_only to off",
            "SET default_transaction_read_only = off",
            "RESET transaction_read_only",
            "SET \"transaction_read_only\" = off",
        ] {
            let e = refused(sql);
            assert!(e.contains("READ ONLY"), "{sql}: {e}");
        }
    }

    #[test]
    fn harmless_statements_pass() {
        for sql in [
            "SELECT 'COMMIT'",
            "SET search_path = clinic",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "VALUES (1)",
        ] {
            assert!(single_read_query(sql).is_ok(), "{sql}");
        }
        assert_eq!(read_only_statement_problem("SELECT 1"), None);
        assert!(read_only_statement_problem("COMMIT").is_some());
    }
}

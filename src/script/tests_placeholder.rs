//! Tests of placeholder substitution and of the map back to the file.

use std::path::PathBuf;

use super::placeholder::substitute;
use super::*;

fn placeholders() -> Placeholders {
    let mut p = Placeholders::new();
    let mut add = |n: &str, kind, v: &str| {
        p.insert(
            n.to_string(),
            Placeholder {
                kind,
                value: v.to_string(),
            },
        );
    };
    add("OWNER", PlaceholderKind::Identifier, "clinic \"owner\"");
    add("SITE", PlaceholderKind::Literal, "Dr O'Brien's");
    add("PATH", PlaceholderKind::Literal, "C:\\data");
    add("DOLLAR", PlaceholderKind::Literal, "costs $$5");
    add("DB_NAME", PlaceholderKind::Identifier, "clinic_v2");
    p
}

/// Substitutes the first statement of `text`.
fn subst(text: &str) -> Result<Statement, (Pos, String)> {
    let pieces = split(text).map_err(|e| (e.at, e.message))?;
    let Some(RawPiece::Statement(raw)) = pieces.into_iter().next() else {
        panic!("no statement in {text:?}");
    };
    let done = substitute(&raw, &placeholders())?;
    Ok(Statement {
        sql: done.sql,
        at: Location::new(&PathBuf::from("f.sql"), raw.at),
        kind: StatementKind::Other,
        line_map: done.line_map,
    })
}

fn sql(text: &str) -> String {
    match subst(text) {
        Ok(s) => s.sql,
        Err((at, m)) => panic!("{text}: {at:?} {m}"),
    }
}

fn refused(text: &str) -> (Pos, String) {
    match subst(text) {
        Ok(s) => panic!("{text}: expected an error, got {}", s.sql),
        Err(e) => e,
    }
}

#[test]
fn in_code_the_quoted_form() {
    assert_eq!(
        sql("GRANT SELECT ON t TO @OWNER@;"),
        "GRANT SELECT ON t TO \"clinic \"\"owner\"\"\""
    );
    assert_eq!(
        sql("SELECT @SITE@, @PATH@"),
        "SELECT 'Dr O''Brien''s', E'C:\\\\data'"
    );
}

#[test]
fn in_strings_the_quoted_form_with_quotes_doubled() {
    assert_eq!(
        sql("SELECT 'GRANT x TO @OWNER@ AT @SITE@'"),
        "SELECT 'GRANT x TO \"clinic \"\"owner\"\"\" AT ''Dr O''''Brien''''s'''"
    );
    // In E'' strings backslashes are doubled as well.
    assert_eq!(sql("SELECT E'@PATH@'"), "SELECT E'E''C:\\\\\\\\data'''");
    assert_eq!(
        sql("SELECT 'x'\n'@SITE@'"),
        "SELECT 'x'\n'''Dr O''''Brien''''s'''"
    );
}

#[test]
fn in_dollar_bodies_the_quoted_form_unless_it_contains_the_tag() {
    assert_eq!(
        sql("DO $$BEGIN EXECUTE 'GRANT ALL ON t TO ' || quote_ident(@DB_NAME@::text); END$$"),
        "DO $$BEGIN EXECUTE 'GRANT ALL ON t TO ' || quote_ident(\"clinic_v2\"::text); END$$"
    );
    assert_eq!(sql("SELECT $b$@DOLLAR@$b$"), "SELECT $b$'costs $$5'$b$");
    let (at, m) = refused("SELECT $$ @DOLLAR@ $$");
    assert_eq!(
        at,
        Pos {
            line: 1,
            column: 11
        }
    );
    assert!(m.contains("$$"), "{m}");
}

#[test]
fn in_comments_left_alone() {
    assert_eq!(
        sql("SELECT 1 /* @OWNER@ @NOPE@ */ -- @NOPE@\n+ 1"),
        "SELECT 1 /* @OWNER@ @NOPE@ */ -- @NOPE@\n+ 1"
    );
}

#[test]
fn refused_contexts_and_unknown_names() {
    let (at, m) = refused("SELECT \"x@OWNER@\"");
    assert_eq!(
        at,
        Pos {
            line: 1,
            column: 10
        }
    );
    assert!(m.contains("quoted identifier"), "{m}");
    let (_, m) = refused("SELECT U&'@SITE@'");
    assert!(m.contains("U&"), "{m}");
    let (at, m) = refused("SELECT 1,\n  @NOPE@");
    assert_eq!(at, Pos { line: 2, column: 3 });
    assert!(
        m.contains("unknown placeholder @NOPE@") && m.contains("DB_NAME, DOLLAR, OWNER"),
        "{m}"
    );
}

#[test]
fn things_that_are_not_placeholders() {
    for s in [
        "SELECT @ -5",
        "SELECT a @> b, a <@ b, x @@ q, @-@ l",
        "SELECT 'a@b.c', 'mail@EXAMPLE.org'",
        "SELECT @lower@",
        "SELECT E'\\@SITE@'",
    ] {
        assert_eq!(sql(s), s);
    }
    // An undefined upper-case name in a string is data (e.g. a letter template): kept.
    let pieces = split("SELECT 'Dear @PATIENT@'").map_err(|e| e.message);
    let Ok([RawPiece::Statement(raw)]) = pieces.as_deref() else {
        panic!("{pieces:?}")
    };
    let done = substitute(raw, &placeholders()).map_err(|e| e.1);
    let Ok(done) = done else { panic!("{done:?}") };
    assert_eq!(done.sql, "SELECT 'Dear @PATIENT@'");
    assert_eq!(done.warnings.len(), 1);
    assert_eq!(
        done.warnings[0].0,
        Pos {
            line: 1,
            column: 14
        }
    );
}

#[test]
fn invalid_values_are_refused_where_used() {
    let mut p = placeholders();
    p.insert(
        "EMPTY".into(),
        Placeholder {
            kind: PlaceholderKind::Identifier,
            value: String::new(),
        },
    );
    let pieces = split("SELECT 1, @EMPTY@").map_err(|e| e.message);
    let Ok([RawPiece::Statement(raw)]) = pieces.as_deref() else {
        panic!("{pieces:?}")
    };
    let Err((at, m)) = substitute(raw, &p).map(|s| s.sql) else {
        panic!("accepted")
    };
    assert_eq!(
        at,
        Pos {
            line: 1,
            column: 11
        }
    );
    assert!(m.contains("empty"), "{m}");
}

#[test]
fn location_of_maps_across_substitutions() {
    // Line 3:  GRANT ALL ON t TO @OWNER@, bad_role;
    let s = match subst("-- comment\n\n  GRANT ALL ON t\n TO @OWNER@, @SITE@ + ü, bad_role") {
        Ok(s) => s,
        Err(e) => panic!("{e:?}"),
    };
    assert_eq!(s.at.line, 3);
    let find = |needle: &str| {
        let byte = s
            .sql
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} not in {}", s.sql));
        u32::try_from(s.sql[..byte].chars().count() + 1).unwrap_or(0)
    };
    let loc = |off: u32| {
        let l = s.location_of(off);
        (l.line, l.column)
    };
    assert_eq!(loc(1), (3, 3));
    assert_eq!(loc(find("TO")), (4, 2));
    // Anywhere inside a substituted value: the placeholder's @.
    assert_eq!(loc(find("\"clinic")), (4, 5));
    assert_eq!(loc(find("owner")), (4, 5));
    assert_eq!(loc(find("Brien")), (4, 14));
    // After substitutions that changed the length, back in step with the file.
    assert_eq!(loc(find(", 'Dr")), (4, 12));
    assert_eq!(loc(find("+ ü")), (4, 21));
    assert_eq!(loc(find("bad_role")), (4, 26));
    // Past the end ("syntax error at end of input").
    let len = u32::try_from(s.sql.chars().count()).unwrap_or(0);
    assert_eq!(loc(len + 1), (4, 34));
    assert_eq!(loc(0), (3, 3));
    assert_eq!(loc(u32::MAX), (4, 34));
    assert_eq!(s.location_of(find("bad_role")).to_string(), "f.sql:4:26");
}

#[test]
fn location_of_with_crlf() {
    let s = match subst("SELECT\r\n  @SITE@,\r\n\r\n  oops") {
        Ok(s) => s,
        Err(e) => panic!("{e:?}"),
    };
    let off = u32::try_from(s.sql.chars().count() - 3).unwrap_or(0);
    assert_eq!(s.location_of(off).to_string(), "f.sql:4:3");
}

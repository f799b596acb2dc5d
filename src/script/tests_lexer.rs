//! Tests of the statement splitter.

use super::classify::classify;
use super::*;

fn pieces(text: &str) -> Vec<RawPiece> {
    match split(text) {
        Ok(p) => p,
        Err(e) => panic!("split failed at {:?}: {}\n{text}", e.at, e.message),
    }
}

fn stmts(text: &str) -> Vec<String> {
    pieces(text)
        .into_iter()
        .filter_map(|p| match p {
            RawPiece::Statement(s) => Some(s.text),
            _ => None,
        })
        .collect()
}

fn raw(text: &str) -> Vec<RawStatement> {
    pieces(text)
        .into_iter()
        .filter_map(|p| match p {
            RawPiece::Statement(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn err(text: &str) -> SplitError {
    match split(text) {
        Ok(p) => panic!("expected an error for {text:?}, got {p:?}"),
        Err(e) => e,
    }
}

fn pos(line: u32, column: u32) -> Pos {
    Pos { line, column }
}

#[test]
fn splits_simple_statements_and_a_final_one_without_semicolon() {
    let r = raw("SELECT 1;\nSELECT 2 ;  \n\n  SELECT 3");
    let texts: Vec<&str> = r.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, ["SELECT 1", "SELECT 2", "SELECT 3"]);
    assert_eq!(r[2].at, pos(4, 3));
    assert!(r[0].terminated && r[1].terminated && !r[2].terminated);
}

#[test]
fn empty_statements_and_comment_only_tails_produce_nothing() {
    assert!(stmts(";;\n ; -- nothing\n/* still nothing */\n").is_empty());
    assert_eq!(stmts("SELECT 1; -- trailing\n"), ["SELECT 1"]);
}

#[test]
fn leading_comments_are_trimmed_and_at_points_at_the_first_token() {
    let r = raw("-- header\n\n/* block\n comment */  SELECT /* kept */ 1 -- kept too\n;");
    assert_eq!(r[0].text, "SELECT /* kept */ 1 -- kept too");
    assert_eq!(r[0].at, pos(4, 14));
}

#[test]
fn semicolons_inside_quotes_comments_and_parentheses_do_not_split() {
    let cases = [
        "SELECT 'a;b'",
        "SELECT 'it''s;'",
        "SELECT E'\\';'",
        "SELECT E'\\\\', ';'",
        "SELECT e'\\x3b;'",
        "SELECT U&'a;\\0041'",
        "SELECT u&\"a;b\"",
        "SELECT B'0;1', X'3;B', N'n;'",
        "SELECT \"a;b\"",
        "SELECT \"a\"\";b\"",
        "SELECT 1 -- ; comment\n+ 1",
        "SELECT 1 /* ; /* nested ; */ still ; */ + 1",
        "SELECT 1 /*/ ; */",
        "SELECT $$;$$",
        "SELECT $f$ a; $$ b; $$ c; $f$",
        "SELECT $tag$ $ta$; $tagx$; $tag $tag$",
        "SELECT $_x1$ ; $_x1$",
        "SELECT (1; 2)",
        "SELECT ((;));",
        "SELECT 'a'\n'b;'",
    ];
    for c in cases {
        let text = format!("{c};\nSELECT 2;");
        let got = stmts(&text);
        assert_eq!(got, [c.trim_end_matches(';'), "SELECT 2"], "input: {c:?}");
    }
}

#[test]
fn a_continued_escape_string_keeps_its_backslash_rules() {
    // SQL continues 'x' across a line break; the continuation is still an E'' string, so \' is
    // an escaped quote and the ; after it is inside the string.
    let s = "SELECT E'x'\n'\\';';\nSELECT 2;";
    assert_eq!(stmts(s), ["SELECT E'x'\n'\\';'", "SELECT 2"]);
    // With a comment between the parts too.
    let s = "SELECT E'x' -- c\n -- d\n '\\';';SELECT 2;";
    assert_eq!(stmts(s).len(), 2);
    // No line break: not a continuation, so '\' is a complete standard string.
    assert_eq!(stmts("SELECT E'x' '\\';SELECT 2;").len(), 2);
}

#[test]
fn dollar_signs_that_are_not_dollar_quotes() {
    assert_eq!(stmts("SELECT $1; SELECT $2;"), ["SELECT $1", "SELECT $2"]);
    assert_eq!(
        stmts("SELECT x$y$ FROM t; SELECT 2"),
        ["SELECT x$y$ FROM t", "SELECT 2"]
    );
    assert_eq!(stmts("SELECT $a ; SELECT 2"), ["SELECT $a", "SELECT 2"]);
    assert_eq!(stmts("SELECT 1$$;$$;"), ["SELECT 1$$;$$"]);
}

#[test]
fn letters_glued_to_a_number_are_not_a_string_prefix() {
    // 1e'…' is the number 1e followed by a standard string, so \' does not escape.
    assert_eq!(stmts("SELECT 1e'\\';SELECT 2;").len(), 2);
    assert_eq!(stmts("SELECT coalesce('x;');"), ["SELECT coalesce('x;')"]);
}

#[test]
fn sql_standard_function_bodies_keep_their_semicolons() {
    let f = "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  \
             SELECT CASE WHEN x > 0 THEN 1 ELSE 2 END;\nEND";
    assert_eq!(stmts(&format!("{f};\nSELECT 2;")), [f, "SELECT 2"]);
    let p = "create or replace procedure p() begin atomic insert into t values (1); end";
    assert_eq!(stmts(&format!("{p}; SELECT 2")), [p, "SELECT 2"]);
    // A transaction block is not a function body.
    assert_eq!(
        stmts("BEGIN; SELECT 1; END; COMMIT;"),
        ["BEGIN", "SELECT 1", "END", "COMMIT"]
    );
    // RETURN CASE … END outside any BEGIN does not open a block.
    let r = "CREATE FUNCTION g() RETURNS int RETURN CASE WHEN true THEN 1 END";
    assert_eq!(stmts(&format!("{r}; SELECT 2")), [r, "SELECT 2"]);
    // BEGIN inside parentheses does not count.
    let q = "CREATE FUNCTION h(begin int) RETURNS int RETURN 1";
    assert_eq!(stmts(&format!("{q}; SELECT 2")), [q, "SELECT 2"]);
}

#[test]
fn unterminated_constructs_report_where_they_open() {
    let cases = [
        (
            "SELECT 1;\nSELECT 'abc;\n",
            pos(2, 8),
            "unterminated quoted string",
        ),
        ("SELECT E'abc\\';", pos(1, 8), "unterminated quoted string"),
        ("SELECT U&'abc", pos(1, 8), "unterminated quoted string"),
        ("SELECT 1;\n  /* a /* b */ ;", pos(2, 3), "unterminated /*"),
        ("SELECT $x$ abc $y$;", pos(1, 8), "no closing $x$"),
        ("SELECT \"abc;", pos(1, 8), "unterminated quoted identifier"),
        (
            "SELECT (1;\nSELECT 2;",
            pos(1, 8),
            "parenthesis is never closed",
        ),
        (
            "CREATE PROCEDURE p() BEGIN ATOMIC SELECT 1;",
            pos(1, 22),
            "no matching END",
        ),
    ];
    for (text, at, msg) in cases {
        let e = err(text);
        assert_eq!(e.at, at, "{text:?}: {}", e.message);
        assert!(e.message.contains(msg), "{text:?}: {}", e.message);
    }
}

#[test]
fn columns_count_characters_not_bytes() {
    let e = err("SELECT 'é', ünï, \"€\", 'x");
    assert_eq!(e.at, pos(1, 23));
    let r = raw("SELECT 'ü';  SELECT 2;");
    assert_eq!(r[1].at, pos(1, 14));
}

#[test]
fn crlf_and_lone_cr_line_endings() {
    let r = raw("SELECT 1;\r\nSELECT 'a\r\nb';\r\n\r\n  SELECT 3;\rSELECT 4;");
    assert_eq!(r[1].text, "SELECT 'a\r\nb'");
    assert_eq!(r[1].at, pos(2, 1));
    assert_eq!(r[2].at, pos(5, 3));
    assert_eq!(r[3].at, pos(6, 1));
    match &pieces("#EndIf  \r\nSELECT 1;")[0] {
        RawPiece::Directive { name, args, .. } => {
            assert_eq!(name, "EndIf");
            assert_eq!(args.trim(), "");
        }
        p => panic!("{p:?}"),
    }
    let p = pieces("\\echo hi\r\n-- #EndIf\r\n");
    assert!(matches!(&p[0], RawPiece::Meta { args, .. } if args == "hi"));
    assert!(matches!(&p[1], RawPiece::Directive { at, .. } if *at == pos(2, 4)));
}

#[test]
fn a_bom_is_skipped() {
    let r = raw("\u{feff}SELECT 1;");
    assert_eq!(r[0].text, "SELECT 1");
    assert_eq!(r[0].at, pos(1, 1));
    assert!(matches!(
        &pieces("\u{feff}#EndIf")[0],
        RawPiece::Directive { .. }
    ));
}

#[test]
fn nul_characters_are_refused() {
    assert_eq!(err("SELECT 1;\nSELECT '\0';").at, pos(2, 9));
}

#[test]
fn meta_commands_between_statements() {
    let p = pieces("SELECT 1;\n  \\echo hello world \n\\i  'a b.sql'\nSELECT 2;");
    assert!(
        matches!(&p[1], RawPiece::Meta { name, args, at } if name == "echo" && args == "hello world" && *at == pos(2, 3))
    );
    assert!(
        matches!(&p[2], RawPiece::Meta { name, args, .. } if name == "i" && args == "'a b.sql'")
    );
    assert_eq!(p.len(), 4);
}

#[test]
fn backslashes_where_psql_would_run_a_command_mid_statement() {
    let e = err("SELECT 1\n\\echo x\n;");
    assert_eq!(e.at, pos(2, 1));
    assert!(
        e.message
            .contains("unterminated statement started at line 1"),
        "{}",
        e.message
    );
    let e = err("SELECT 1 \\gset");
    assert_eq!(e.at, pos(1, 10));
    assert!(e.message.contains("\\gset"), "{}", e.message);
    let e = err("SELECT 1; \\echo x");
    assert!(e.message.contains("middle of a line"), "{}", e.message);
    assert!(err("SELECT 1 \\; SELECT 2;").message.contains("\\;"));
    assert!(err("\\ foo").message.contains("lone backslash"));
    // Backslashes inside strings, identifiers, bodies and comments are text.
    assert_eq!(stmts("SELECT '\\', \"\\\", $$\\$$ -- \\x\n;").len(), 1);
}

#[test]
fn directive_lines_in_both_forms() {
    let p = pieces("#IfNotTable foo\n  -- #IfColumn t c\n--#EndIf\n#EndIf -- done\n");
    let names: Vec<(String, String, Pos)> = p
        .into_iter()
        .map(|p| match p {
            RawPiece::Directive { name, args, at, .. } => (name, args, at),
            p => panic!("{p:?}"),
        })
        .collect();
    assert_eq!(names[0], ("IfNotTable".into(), " foo".into(), pos(1, 1)));
    assert_eq!(names[1], ("IfColumn".into(), " t c".into(), pos(2, 6)));
    assert_eq!(names[2].0, "EndIf");
    assert_eq!(names[2].2, pos(3, 3));
    assert_eq!(names[3].1, " -- done");
}

#[test]
fn comments_that_are_not_directives() {
    let p = pieces("-- #foo\n-- # IfNotTable\n-- #include x\n/* #EndIf */\nSELECT '\n#EndIf\n';");
    assert_eq!(p.len(), 1);
    assert!(matches!(&p[0], RawPiece::Statement(_)));
    // In the `--` form, a wrong-case name still counts, so that it is reported, not ignored.
    assert!(
        matches!(&pieces("-- #endif\n")[0], RawPiece::Directive { name, .. } if name == "endif")
    );
    assert!(
        matches!(&pieces("-- #EndIf;\n")[0], RawPiece::Directive { name, .. } if name == "EndIf;")
    );
    assert_eq!(pieces("-- #EndIfs are nice\n-- #Include x\n").len(), 0);
    // In the bare form, every `#` line between statements is a directive (to be validated).
    assert!(
        matches!(&pieces("#Whatever x\n")[0], RawPiece::Directive { name, .. } if name == "Whatever")
    );
}

#[test]
fn directives_inside_an_unterminated_statement_are_errors() {
    for text in [
        "SELECT 1\n#EndIf\n;",
        "SELECT 1\n  -- #EndIf\n;",
        "SELECT 1\n#IfTable t\n;",
    ] {
        let e = err(text);
        assert_eq!(e.at.line, 2, "{text:?}");
        assert!(e.message.contains("started at line 1"), "{}", e.message);
    }
    // `#` starting a continuation line is the XOR operator.
    assert_eq!(stmts("SELECT 5\n# 3;"), ["SELECT 5\n# 3"]);
}

#[test]
fn directives_not_alone_on_their_line_are_errors() {
    let e = err("SELECT 1; -- #EndIf");
    assert_eq!(e.at, pos(1, 14));
    assert!(e.message.contains("own line"), "{}", e.message);
    assert!(err("SELECT 1; #EndIf").message.contains("own line"));
    assert!(err("/* x */ #IfTable t").message.contains("own line"));
    assert!(
        err("SELECT 1; # 3")
            .message
            .contains("cannot start with '#'")
    );
}

#[test]
fn copy_with_inline_data_is_refused_at_the_copy() {
    let e = err("SELECT 1;\nCOPY t (a, b) FROM stdin;\n1\t'x\n\\.\n");
    assert_eq!(e.at, pos(2, 1));
    assert!(e.message.contains("FROM STDIN"), "{}", e.message);
    assert!(
        err("COPY (SELECT 1) TO STDOUT;")
            .message
            .contains("TO STDOUT")
    );
    assert_eq!(stmts("COPY t FROM '/srv/x.csv';").len(), 1);
}

#[test]
fn turning_standard_conforming_strings_off_is_refused() {
    for ok in [
        "SET standard_conforming_strings = on;",
        "set session standard_conforming_strings to on;",
        "SET standard_conforming_strings TO DEFAULT;",
        "SET search_path = clinic;",
    ] {
        assert_eq!(stmts(ok).len(), 1, "{ok}");
    }
    for bad in [
        "SET standard_conforming_strings = off;",
        "SET LOCAL standard_conforming_strings TO 'off';",
        "SET standard_conforming_strings = 0;",
    ] {
        assert!(
            err(bad).message.contains("standard_conforming_strings on"),
            "{bad}"
        );
    }
}

#[test]
fn placeholder_uses_and_their_contexts() {
    let r = raw(
        "SELECT @A@, '@B@', E'@C@ \\@X@', $q$@D@$q$, \"@E@\", U&'@F@', @lower@, 'a@b.c', \
         1 @> 2 -- @G@\n/* @H@ */;",
    );
    let uses: Vec<(&str, &PlaceholderContext)> = r[0]
        .uses
        .iter()
        .map(|u| (u.name.as_str(), &u.context))
        .collect();
    use PlaceholderContext as C;
    assert_eq!(
        uses,
        [
            ("A", &C::Code),
            (
                "B",
                &C::String {
                    backslash_escapes: false
                }
            ),
            (
                "C",
                &C::String {
                    backslash_escapes: true
                }
            ),
            (
                "D",
                &C::DollarQuoted {
                    delimiter: "$q$".into()
                }
            ),
            ("E", &C::QuotedIdentifier),
            ("F", &C::UnicodeString),
        ]
    );
    let a = &r[0].uses[0];
    assert_eq!((a.offset, a.len, a.at), (7, 3, pos(1, 8)));
}

#[test]
fn statement_classification() {
    use StatementKind::{NoTransactionBlock as NoTx, Other, TransactionControl as Tc};
    let cases = [
        ("BEGIN", Tc),
        ("begin isolation level serializable", Tc),
        ("START TRANSACTION", Tc),
        ("COMMIT", Tc),
        ("commit and chain", Tc),
        ("END", Tc),
        ("ROLLBACK", Tc),
        ("ROLLBACK WORK", Tc),
        ("ROLLBACK TO SAVEPOINT a", Other),
        ("ROLLBACK TRANSACTION TO a", Other),
        ("ABORT", Tc),
        ("PREPARE TRANSACTION 'x'", Tc),
        ("COMMIT PREPARED 'x'", Tc),
        ("ROLLBACK PREPARED 'x'", Tc),
        ("PREPARE q AS SELECT 1", Other),
        ("SAVEPOINT a", Other),
        ("/* c */ -- c\n vacuum analyze t", NoTx),
        ("CREATE INDEX CONCURRENTLY i ON t (a)", NoTx),
        (
            "create unique index concurrently if not exists i on t (a)",
            NoTx,
        ),
        ("CREATE INDEX i ON t (a)", Other),
        ("DROP INDEX CONCURRENTLY i", NoTx),
        ("DROP INDEX i", Other),
        ("REINDEX INDEX CONCURRENTLY i", NoTx),
        ("REINDEX (VERBOSE, CONCURRENTLY) TABLE t", NoTx),
        ("REINDEX TABLE t", Other),
        ("REINDEX (VERBOSE) SCHEMA s", NoTx),
        ("REINDEX DATABASE d", NoTx),
        ("CLUSTER", NoTx),
        ("CLUSTER VERBOSE", NoTx),
        ("CLUSTER (VERBOSE)", NoTx),
        ("CLUSTER t USING i", Other),
        ("CREATE DATABASE d", NoTx),
        ("DROP DATABASE d", NoTx),
        ("ALTER DATABASE d SET TABLESPACE s", NoTx),
        ("ALTER DATABASE d SET work_mem = '1MB'", Other),
        ("CREATE TABLESPACE s LOCATION '/x'", NoTx),
        ("ALTER SYSTEM SET work_mem = '1MB'", NoTx),
        ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", NoTx),
        ("ALTER TABLE p DETACH PARTITION c", Other),
        ("ALTER TYPE e ADD VALUE 'x'", Other),
        ("REFRESH MATERIALIZED VIEW CONCURRENTLY v", Other),
        ("DISCARD ALL", NoTx),
        ("DISCARD TEMP", Other),
        ("CREATE SUBSCRIPTION s CONNECTION 'c' PUBLICATION p", NoTx),
        ("SELECT 'VACUUM'", Other),
        ("\"vacuum\"", Other),
        ("ANALYZE t", Other),
        ("CREATE TABLE vacuum_log (a int)", Other),
    ];
    for (sql, kind) in cases {
        let r = raw(sql);
        assert_eq!(classify(&r[0].head), kind, "{sql}");
    }
}

/// Tiny deterministic generator for the property test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % 1_000_003).unwrap_or(0)
    }
}

#[test]
fn random_concatenations_split_back_into_the_same_statements() {
    let corpus = [
        "SELECT 1",
        "SELECT 'a;b', 'it''s', E'\\';\\\\'",
        "SELECT \"we;ird\"\"name\" FROM t",
        "SELECT $$ ; $$, $f$ $$ ; $$ $f$",
        "SELECT ((1); (2))",
        "SELECT 1 /* ; /* ; */ ; */ + 2",
        "SELECT 1 -- ;\n + 2",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END",
        "CREATE PROCEDURE p() LANGUAGE plpgsql AS $body$BEGIN PERFORM 1; END$body$",
        "INSERT INTO t VALUES ('ü;€', U&'\\00e9;')",
        "SELECT $1, $2::text",
        "SELECT 'a'\n  'b;'",
        "BEGIN",
        "COMMIT",
        "SELECT 5\n# 3",
        "SELECT x$y$z FROM t",
    ];
    let separators = [
        ";",
        ";\n",
        " ;\r\n",
        ";\n\n-- c ;\n",
        "; /* ; */\n",
        ";\t",
        ";;\n",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let n = 1 + rng.next() % 8;
        let chosen: Vec<&str> = (0..n).map(|_| corpus[rng.next() % corpus.len()]).collect();
        let mut text = String::new();
        for (k, s) in chosen.iter().enumerate() {
            if rng.next().is_multiple_of(3) {
                text.push_str("\n-- leading ; comment\n");
            }
            text.push_str(s);
            if k + 1 < chosen.len() || rng.next().is_multiple_of(2) {
                text.push_str(separators[rng.next() % separators.len()]);
            }
        }
        assert_eq!(stmts(&text), chosen, "text:\n{text}");
    }
}

#[test]
fn a_statements_head_keeps_quoted_names_dots_and_commas() {
    use super::{HeadToken as T, statement_head};
    let w = |s: &str| T::Word(s.into());
    assert_eq!(
        statement_head("drop table /* x */ \"A\"\"b\".c, d (x) 'e'"),
        [
            w("DROP"),
            w("TABLE"),
            T::Quoted("A\"b".into()),
            T::Dot,
            w("C"),
            T::Comma,
            w("D"),
            T::Group(vec!["X".into()]),
            T::Other,
        ]
    );
    // A text that cannot be read to its end gives the tokens before the problem (`=`, then
    // the string that never closes).
    assert_eq!(
        statement_head("UPDATE t SET x = 'open"),
        [w("UPDATE"), w("T"), w("SET"), w("X"), T::Other, T::Other]
    );
    assert_eq!(statement_head(""), []);
}

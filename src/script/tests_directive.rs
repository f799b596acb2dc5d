//! Tests of directive parsing.

use super::directive::{self, Directive, check_type_spelling, edit_distance};
use super::*;

/// Parses the single directive line `line`.
fn parse(line: &str) -> Result<Option<Condition>, (Pos, String)> {
    let p = split(line).map_err(|e| (e.at, e.message))?;
    match p.as_slice() {
        [
            RawPiece::Directive {
                name,
                args,
                at,
                args_at,
            },
        ] => directive::parse(name, args, *at, *args_at).map(|d| match d {
            Directive::If(c) => Some(c),
            Directive::EndIf => None,
        }),
        other => panic!("not one directive: {other:?}"),
    }
}

fn ok(line: &str) -> Condition {
    match parse(line) {
        Ok(Some(c)) => c,
        Ok(None) => panic!("{line}: #EndIf"),
        Err((at, m)) => panic!("{line}: {at:?} {m}"),
    }
}

fn bad(line: &str) -> (Pos, String) {
    match parse(line) {
        Ok(c) => panic!("{line}: expected an error, got {c:?}"),
        Err(e) => e,
    }
}

fn t(schema: Option<&str>, name: &str) -> QualName {
    QualName {
        schema: schema.map(str::to_string),
        name: name.to_string(),
    }
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn every_directive_parses() {
    use Condition as C;
    let cases = [
        ("#IfNotTable patient", C::IfNotTable(t(None, "patient"))),
        (
            "-- #IfTable clinic.Patient",
            C::IfTable(t(Some("clinic"), "patient")),
        ),
        (
            "#IfColumn \"My Schema\".\"T\" \"Col\"",
            C::IfColumn(t(Some("My Schema"), "T"), "Col".into()),
        ),
        (
            "#IfMissingColumn t c",
            C::IfMissingColumn(t(None, "t"), "c".into()),
        ),
        (
            "#IfNotColumnType t c 'character varying(255)'",
            C::IfNotColumnType(t(None, "t"), "c".into(), "character varying(255)".into()),
        ),
        (
            "#IfIndex t t_pkey",
            C::IfIndex(t(None, "t"), "t_pkey".into()),
        ),
        (
            "#IfNotIndex s.t \"Idx\"",
            C::IfNotIndex(t(Some("s"), "t"), "Idx".into()),
        ),
        ("#IfRow t c v", C::IfRow(t(None, "t"), pairs(&[("c", "v")]))),
        (
            "#IfRow2D t a 1 b 2",
            C::IfRow(t(None, "t"), pairs(&[("a", "1"), ("b", "2")])),
        ),
        (
            "#IfRow3D t a 1 b 2 c 3",
            C::IfRow(t(None, "t"), pairs(&[("a", "1"), ("b", "2"), ("c", "3")])),
        ),
        (
            "#IfNotRow t title 'Dr Who'",
            C::IfNotRow(t(None, "t"), pairs(&[("title", "Dr Who")])),
        ),
        (
            "#IfNotRow2D t a \"x y\" b ''",
            C::IfNotRow(t(None, "t"), pairs(&[("a", "x y"), ("b", "")])),
        ),
        (
            "#IfNotRow3D t a 1 b 2 c 'it''s'",
            C::IfNotRow(
                t(None, "t"),
                pairs(&[("a", "1"), ("b", "2"), ("c", "it's")]),
            ),
        ),
        (
            "#IfNotRow4D t a 1 b 2 c 3 d 4",
            C::IfNotRow(
                t(None, "t"),
                pairs(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]),
            ),
        ),
        (
            "#IfNotRow2Dx2 list_options list_id lists option_id X title 'The X'",
            C::IfNotRow2Dx2 {
                table: t(None, "list_options"),
                column: "list_id".into(),
                value: "lists".into(),
                column2: "option_id".into(),
                value2: "X".into(),
                column3: "title".into(),
                value3: "The X".into(),
            },
        ),
    ];
    for (line, want) in cases {
        assert_eq!(ok(line), want, "{line}");
        // describe() writes a directive that reads back the same.
        let again = ok(&want.describe());
        assert_eq!(again, want, "{line} → {}", want.describe());
    }
    assert_eq!(parse("#EndIf").map_err(|e| e.1), Ok(None));
    assert_eq!(
        parse("-- #EndIf -- end of the patient block").map_err(|e| e.1),
        Ok(None)
    );
}

#[test]
fn values_are_exact_and_names_fold_like_sql() {
    let c = ok("#IfRow Clinic.\"Patient\" Name 'MiXeD  case ' -- comment");
    assert_eq!(
        c,
        Condition::IfRow(
            t(Some("clinic"), "Patient"),
            pairs(&[("name", "MiXeD  case ")])
        )
    );
    // Non-ASCII letters are not folded, as in PostgreSQL.
    assert_eq!(ok("#IfTable Ärzte"), Condition::IfTable(t(None, "Ärzte")));
    // A dot inside double quotes is part of the name.
    assert_eq!(ok("#IfTable \"a.b\""), Condition::IfTable(t(None, "a.b")));
    // A value may contain what would be a comment or a quote of the other kind.
    assert_eq!(
        ok("#IfRow t c '-- not a comment \"'"),
        Condition::IfRow(t(None, "t"), pairs(&[("c", "-- not a comment \"")]))
    );
}

#[test]
fn malformed_directives_are_refused_with_their_position() {
    let cases: [(&str, Pos, &str); 17] = [
        (
            "#IfNotTable",
            Pos { line: 1, column: 1 },
            "missing argument (usage: #IfNotTable table)",
        ),
        (
            "#IfNotRow t c",
            Pos { line: 1, column: 1 },
            "usage: #IfNotRow table column value",
        ),
        (
            "#IfNotRow t title Dr Who",
            Pos {
                line: 1,
                column: 22,
            },
            "unexpected argument",
        ),
        (
            "#EndIf x",
            Pos { line: 1, column: 8 },
            "#EndIf takes no arguments",
        ),
        (
            "#IfNotTabel t",
            Pos { line: 1, column: 1 },
            "did you mean #IfNotTable?",
        ),
        (
            "-- #ifnottable t",
            Pos { line: 1, column: 4 },
            "case-sensitive, write #IfNotTable",
        ),
        (
            "#Frobnicate",
            Pos { line: 1, column: 1 },
            "known: #IfNotTable",
        ),
        (
            "#IfRow t c 'unterminated",
            Pos {
                line: 1,
                column: 12,
            },
            "unterminated '",
        ),
        (
            "#IfRow t c O'Brien",
            Pos {
                line: 1,
                column: 13,
            },
            "unterminated '",
        ),
        (
            "#IfRow t c 'a'b",
            Pos {
                line: 1,
                column: 12,
            },
            "entirely in quotes",
        ),
        (
            "#IfTable 'patient'",
            Pos {
                line: 1,
                column: 10,
            },
            "not in single quotes",
        ),
        (
            "#IfTable a.b.c",
            Pos {
                line: 1,
                column: 10,
            },
            "schema.table",
        ),
        (
            "#IfTable a.",
            Pos {
                line: 1,
                column: 10,
            },
            "cannot end with a dot",
        ),
        (
            "#IfTable foo;",
            Pos {
                line: 1,
                column: 10,
            },
            "not a valid unquoted name",
        ),
        (
            "#IfColumn t s.c",
            Pos {
                line: 1,
                column: 13,
            },
            "cannot be qualified",
        ),
        (
            "#IfTable \"\"",
            Pos {
                line: 1,
                column: 10,
            },
            "empty quoted name",
        ),
        (
            "#IfNotColumnType t c varchar(255)",
            Pos {
                line: 1,
                column: 22,
            },
            "\"character varying(255)\"",
        ),
    ];
    for (line, at, msg) in cases {
        let (got_at, got) = bad(line);
        assert!(got.contains(msg), "{line}: {got}");
        assert_eq!(got_at, at, "{line}: {got}");
    }
    let long = "a".repeat(64);
    assert!(
        bad(&format!("#IfTable {long}"))
            .1
            .contains("longer than 63 bytes")
    );
}

#[test]
fn type_spellings_that_format_type_never_produces() {
    for ok_type in [
        "integer",
        "character varying(255)",
        "character varying",
        "timestamp with time zone",
        "timestamp(3) without time zone",
        "numeric(10,2)",
        "integer[]",
        "\"MyType\"",
        "clinic.\"Mood\"",
        "bpchar",
        "\"char\"",
        "text",
    ] {
        assert_eq!(check_type_spelling(ok_type), Ok(()), "{ok_type}");
    }
    for (bad_type, canonical) in [
        ("int", "integer"),
        ("int4[]", "integer[]"),
        ("varchar(20)", "character varying(20)"),
        ("VARCHAR(20)", "varchar(20)"),
        ("timestamptz", "timestamp with time zone"),
        ("timestamp(6)", "timestamp(6) without time zone"),
        ("bool", "boolean"),
        ("numeric(10, 2)", "numeric(10,2)"),
        ("character  varying", "character varying"),
        ("char(3)", "character(3)"),
        ("float8", "double precision"),
    ] {
        let e = check_type_spelling(bad_type)
            .expect_err(bad_type)
            .to_string();
        assert!(e.contains(&format!("{canonical:?}")), "{bad_type}: {e}");
    }
}

#[test]
fn edit_distance_counts_characters() {
    assert_eq!(edit_distance("ifnottabel", "ifnottable"), 2);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("äb", "ab"), 1);
}

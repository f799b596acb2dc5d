//! Tests of condition queries and of quoting.

use super::*;

const HOSTILE: [&str; 6] = [
    "x'); DROP TABLE t; --",
    "\"; DROP TABLE t; --",
    "a\\'b",
    "$$ $x$ %I %L %s",
    "ü€ \n\t",
    "",
];

fn qn(schema: Option<&str>, name: &str) -> QualName {
    QualName {
        schema: schema.map(str::to_string),
        name: name.to_string(),
    }
}

fn all_conditions(v: &str) -> Vec<Condition> {
    let table = qn(Some(v), v);
    let pair = || (v.to_string(), v.to_string());
    vec![
        Condition::IfNotTable(table.clone()),
        Condition::IfTable(qn(None, v)),
        Condition::IfColumn(table.clone(), v.into()),
        Condition::IfMissingColumn(table.clone(), v.into()),
        Condition::IfNotColumnType(table.clone(), v.into(), v.into()),
        Condition::IfIndex(table.clone(), v.into()),
        Condition::IfNotIndex(table.clone(), v.into()),
        Condition::IfRow(table.clone(), vec![pair(), pair(), pair()]),
        Condition::IfNotRow(table.clone(), vec![pair(), pair(), pair(), pair()]),
        Condition::IfNotRow2Dx2 {
            table,
            column: v.into(),
            value: v.into(),
            column2: v.into(),
            value2: v.into(),
            column3: v.into(),
            value3: v.into(),
        },
    ]
}

#[test]
fn queries_never_contain_directive_text() {
    for v in HOSTILE.iter().filter(|v| v.len() > 3) {
        for c in all_conditions(v) {
            let (sql, params) = c.query();
            assert!(!sql.contains(v), "{c:?} leaked into\n{sql}");
            assert!(params.iter().any(|p| p == v), "{c:?}: {params:?}");
            // Every parameter is used, each as a text parameter.
            for n in 1..=params.len() {
                assert!(
                    sql.contains(&format!("${n}::text")),
                    "${n} unused in\n{sql}"
                );
            }
            assert!(!sql.contains(&format!("${}", params.len() + 1)));
        }
    }
}

#[test]
fn query_shapes() {
    let (sql, params) = Condition::IfNotTable(qn(Some("clinic"), "patient")).query();
    assert_eq!(params, ["clinic", "patient"]);
    assert!(sql.contains("pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text))"));
    assert!(sql.contains("relkind IN ('r', 'p')"));
    assert!(sql.starts_with("SELECT t.oid IS NULL AS run FROM"), "{sql}");

    let (sql, params) = Condition::IfTable(qn(None, "patient")).query();
    assert_eq!(params, ["patient"]);
    assert!(sql.contains("pg_catalog.format('%I', $1::text)"));

    let (sql, params) =
        Condition::IfNotColumnType(qn(None, "t"), "c".into(), "integer".into()).query();
    assert_eq!(params, ["t", "c", "integer"]);
    assert!(sql.contains("a.attname = $2::text"));
    assert!(sql.contains("format_type(a.atttypid, a.atttypmod) <> $3::text"));

    let (sql, _) = Condition::IfNotIndex(qn(None, "t"), "i".into()).query();
    assert!(sql.contains("t.oid IS NOT NULL AND NOT EXISTS"), "{sql}");

    let (sql, params) = Condition::IfNotRow(
        qn(None, "t"),
        vec![("a".into(), "1".into()), ("b".into(), "2".into())],
    )
    .query();
    assert_eq!(params, ["t", "a", "1", "b", "2"]);
    assert!(
        sql.contains("CASE WHEN t.oid IS NULL THEN false ELSE NOT (pg_catalog.query_to_xml("),
        "{sql}"
    );
    assert!(sql.contains("'SELECT 1 AS found FROM %s WHERE %I::text = %L AND %I::text = %L LIMIT 1', t.oid::pg_catalog.regclass, $2::text, $3::text, $4::text, $5::text"), "{sql}");
}

#[test]
fn describe_for_logs() {
    assert_eq!(
        Condition::IfNotTable(qn(Some("clinic"), "patient")).describe(),
        "#IfNotTable clinic.patient"
    );
    assert_eq!(
        Condition::IfRow(
            qn(None, "Odd Name"),
            vec![("c".into(), "Dr Who".into()), ("d".into(), "x".into())]
        )
        .to_string(),
        "#IfRow2D \"Odd Name\" c 'Dr Who' d x"
    );
    assert_eq!(
        Condition::IfNotRow(qn(None, "t"), vec![("c".into(), "it's".into())]).describe(),
        "#IfNotRow t c 'it''s'"
    );
}

#[test]
fn quote_ident_always_quotes_and_doubles() {
    assert_eq!(quote_ident("a"), "\"a\"");
    assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    assert_eq!(quote_ident(""), "\"\"");
    assert_eq!(quote_ident("\"\""), "\"\"\"\"\"\"");
    assert_eq!(quote_ident("Ünï code"), "\"Ünï code\"");
}

#[test]
fn quote_literal_doubles_quotes_and_escapes_backslashes() {
    assert_eq!(quote_literal("it's"), "'it''s'");
    assert_eq!(quote_literal(""), "''");
    assert_eq!(quote_literal("''"), "''''''");
    assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
    assert_eq!(quote_literal("\\'"), "E'\\\\'''");
    assert_eq!(quote_literal("é\n"), "'é\n'");
}

#[test]
fn placeholder_names_and_values() {
    for good in ["DB_NAME", "A", "X1_2"] {
        assert!(is_placeholder_name(good), "{good}");
    }
    for bad in ["", "db_name", "_A", "1A", "A-B", "Ä"] {
        assert!(!is_placeholder_name(bad), "{bad}");
    }
    let id = |v: &str| Placeholder {
        kind: PlaceholderKind::Identifier,
        value: v.into(),
    };
    let lit = |v: &str| Placeholder {
        kind: PlaceholderKind::Literal,
        value: v.into(),
    };
    assert!(validate_placeholder("OWNER", &id("clinic_owner")).is_ok());
    assert!(validate_placeholder("OWNER", &id("")).is_err());
    assert!(validate_placeholder("OWNER", &id(&"x".repeat(64))).is_err());
    assert!(validate_placeholder("OWNER", &id(&"é".repeat(31))).is_ok());
    assert!(validate_placeholder("OWNER", &id(&"é".repeat(32))).is_err());
    assert!(validate_placeholder("SITE", &lit("")).is_ok());
    assert!(validate_placeholder("SITE", &lit("a\0b")).is_err());
    assert!(validate_placeholder("site", &lit("x")).is_err());
}

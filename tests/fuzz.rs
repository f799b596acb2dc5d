//! Property-based fuzzing (proptest) of everything pgstep reads from a bundle before a database
//! is involved: the SQL lexer, the directive parser, the placeholder substitution and the
//! manifest validator. Each must answer any input with a result or an error, never a panic, and
//! keep the invariants below.
//!
//! By default each target runs a short, seeded (deterministic) batch: `cargo test --test fuzz`.
//! A long run loops over fresh seeds until the time is up and prints how many cases ran:
//! `PGSTEP_FUZZ_SECS=600 cargo test --release --test fuzz -- --nocapture --test-threads 1`
//! (`PGSTEP_FUZZ_SEED=<u64>` replays one batch of a long run, as printed on a failure).

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::Path;
use std::time::{Duration, Instant};

use pgstep::script::{
    self, Condition, Placeholder, PlaceholderKind, Placeholders, Pos, QualName, RawPiece,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// Cases per target in the default (CI) run, and per batch of a long run.
const CI_CASES: u32 = 1500;
const BATCH: u32 = 2000;

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, chunk) in b.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(
            &(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes(),
        );
    }
    b
}

fn runner(cases: u32, seed: u64) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed)),
    )
}

/// Runs one target: a seeded batch, or fresh seeds for `PGSTEP_FUZZ_SECS` seconds.
fn fuzz<S>(target: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let fail = |seed: u64, e: proptest::test_runner::TestError<S::Value>| -> ! {
        panic!("fuzz target {target} failed (PGSTEP_FUZZ_SEED={seed}): {e}")
    };
    let secs: Option<u64> = std::env::var("PGSTEP_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok());
    if let Some(seed) = std::env::var("PGSTEP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        if let Err(e) = runner(BATCH, seed).run(&strategy, &test) {
            fail(seed, e);
        }
        return;
    }
    let Some(secs) = secs else {
        let seed = 0x7067_7374_6570; // "pgstep"
        if let Err(e) = runner(CI_CASES, seed).run(&strategy, &test) {
            fail(seed, e);
        }
        return;
    };
    let start = Instant::now();
    let mut base: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let (mut cases, mut batches) = (0u64, 0u64);
    while start.elapsed() < Duration::from_secs(secs) {
        base = base.wrapping_add(0x9e37_79b9_7f4a_7c15);
        if let Err(e) = runner(BATCH, base).run(&strategy, &test) {
            eprintln!("fuzz {target}: FAILED after {cases} cases");
            fail(base, e);
        }
        cases += u64::from(BATCH);
        batches += 1;
    }
    println!(
        "fuzz {target}: {cases} cases in {batches} batches, {:.0} s, 0 failures",
        start.elapsed().as_secs_f64()
    );
}

// --- generators --------------------------------------------------------------------------

/// Characters that matter to the lexer, weighted far above their share of arbitrary text.
fn sql_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::sample::select(vec![
            '\'', '"', '$', ';', '-', '/', '*', '\n', '\r', '\\', '#', '@', '(', ')', 'E', 'e',
            'U', 'u', '&', 'B', 'X', 'N', ' ', '\t', 'a', 'Z', '_', '1', '.', ':', '[', ']',
            '\u{feff}', 'é', '\x0c',
        ]),
        1 => any::<char>(),
    ]
}

fn sql_soup_chars() -> impl Strategy<Value = String> {
    prop::collection::vec(sql_char(), 0..300).prop_map(|v| v.into_iter().collect())
}

/// Pieces of near-valid scripts: openers and closers of every lexical context, directive and
/// meta-command lines, placeholders, the words of `BEGIN ATOMIC` bodies.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec![
            "'", "''", "E'", "e'", "U&'", "u&'", "B'", "X'", "N'", "\"", "\"\"", "U&\"", "$$",
            "$a$", "$body$", "$1", "$", "--", "-- #IfNotTable t", "-- #EndIf", "/*", "*/",
            ";", "\n", "\r\n", "\r", " ", "\t", "#IfNotTable clinic.patient", "#EndIf",
            "#ifnottable x", "#IfRow t c 'v'", "\\set ON_ERROR_STOP 1", "\\echo hi", "\\i x.sql",
            "\\", "\\'", "@", "@APP_ROLE@", "@DB_NAME@", "@X@", "@lower@", "@@", "BEGIN",
            "ATOMIC", "END", "CASE", "CREATE FUNCTION f() RETURNS int LANGUAGE sql",
            "CREATE PROCEDURE p()", "(", ")", "SELECT", "x", "1", "1.5e3", "::", "@>", "é",
            "\u{feff}", "UESCAPE", "COPY t FROM stdin", "\\.", "VACUUM", "COMMIT",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z;'\"$ \n]{0,6}",
    ]
}

fn sql_soup_fragments() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|v| v.concat())
}

/// One complete token that can stand anywhere inside a statement (never first: comments are
/// not part of a statement's text).
fn token() -> impl Strategy<Value = String> {
    let plain_text = "[a-z;\n \\-*/$#@.]{0,8}";
    prop_oneof![
        4 => prop::sample::select(vec![
            "SELECT", "x", "tbl_1", "ünï", "FROM", "WHERE", "42", "1.5e3", "+", "=", "<>",
            "@>", "::", ",", "*", "now()", "a.b", "$1",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z;\n '$\\-*/.#@]{0,8}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        1 => "[a-z;\n '$\\-*/.#@]{0,8}".prop_map(|s| format!(
            "E'{}'",
            s.replace('\\', "\\\\").replace('\'', "\\'")
        )),
        1 => "[a-z;\n \"$\\-*/.#@]{1,8}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        1 => "[a-z;\n '\"\\-*/.#@]{0,8}".prop_map(|s| format!("$${s}$$")),
        1 => "[a-z;\n '\"\\-*/.#@]{0,8}".prop_map(|s| format!("$body${s}$body$")),
        1 => "[a-z; '\"$]{0,8}".prop_map(|s| format!("/* {s} /* {s} */ */")),
        1 => "[a-z; '\"$]{0,8}".prop_map(|s| format!("-- {s}\n")),
        1 => plain_text.prop_map(|s| format!("('{}'; x)", s.replace('\'', "''"))),
        1 => prop::sample::select(vec!["@APP_ROLE@", "@DB_NAME@", "@TIME_ZONE@"])
            .prop_map(str::to_owned),
    ]
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![" ", "  ", "\n", "\t", "\r\n", "\r", "\n  "])
}

/// A statement: a word, then tokens, then a word (a line comment cannot end a statement that a
/// `;` ends), as written.
fn statement() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "SELECT", "UPDATE", "insert", "ALTER", "x", "DO", "GRANT",
        ]),
        prop::collection::vec((separator(), token()), 0..8),
        separator(),
    )
        .prop_map(|(first, rest, last)| {
            let mut s = first.to_owned();
            for (sep, t) in rest {
                s.push_str(sep);
                s.push_str(&t);
            }
            s.push_str(last);
            s.push_str("end_word");
            s
        })
}

/// Statements and what is written between them (whitespace, comments).
fn script_of_statements() -> impl Strategy<Value = (Vec<String>, String)> {
    let between = prop_oneof![
        3 => separator().prop_map(str::to_owned),
        1 => Just("\n-- a comment; with 'quotes'\n".to_owned()),
        1 => Just("\n/* ; */ ".to_owned()),
        1 => Just(" ".to_owned()),
    ];
    prop::collection::vec((statement(), between), 1..6).prop_map(|v| {
        let mut text = String::new();
        let mut stmts = Vec::new();
        for (s, b) in v {
            text.push_str(&s);
            text.push(';');
            text.push_str(&b);
            stmts.push(s);
        }
        (stmts, text)
    })
}

// --- checks --------------------------------------------------------------------------------

/// The index of every line's first character, with the lexer's line breaks.
fn line_starts(c: &[char]) -> Vec<usize> {
    let mut v = vec![0];
    for (i, &ch) in c.iter().enumerate() {
        if ch == '\n' || (ch == '\r' && c.get(i + 1) != Some(&'\n')) {
            v.push(i + 1);
        }
    }
    v
}

/// The character index of a position, checking that it lies within the text (or just after
/// its last character).
fn index_of(c: &[char], starts: &[usize], at: Pos, what: &str) -> Result<usize, TestCaseError> {
    let line = at.line as usize;
    prop_assert!(
        line >= 1 && line <= starts.len(),
        "{what}: line {} of {}",
        at.line,
        starts.len()
    );
    prop_assert!(at.column >= 1, "{what}: column 0");
    let idx = starts[line - 1] + at.column as usize - 1;
    let line_end = starts.get(line).copied().unwrap_or(c.len());
    prop_assert!(
        idx <= line_end && idx <= c.len(),
        "{what}: column {} past its line",
        at.column
    );
    Ok(idx)
}

/// Everything `split` returns must be where it says it is, in order, without overlap.
fn check_split(input: &str) -> Result<Option<Vec<RawPiece>>, TestCaseError> {
    let body = input.strip_prefix('\u{feff}').unwrap_or(input);
    let c: Vec<char> = body.chars().collect();
    let starts = line_starts(&c);
    let pieces = match script::split(input) {
        Ok(p) => p,
        Err(e) => {
            index_of(&c, &starts, e.at, "the error")?;
            prop_assert!(!e.message.is_empty());
            return Ok(None);
        }
    };
    let mut after = 0usize; // pieces are in order and do not overlap
    for p in &pieces {
        match p {
            RawPiece::Statement(s) => {
                let idx = index_of(&c, &starts, s.at, "a statement")?;
                prop_assert!(idx >= after, "statements overlap or are out of order");
                let text: Vec<char> = s.text.chars().collect();
                prop_assert!(!text.is_empty(), "an empty statement");
                prop_assert!(
                    c.get(idx..idx + text.len()) == Some(&text[..]),
                    "the statement's text is not the input at its position: {:?} at {:?}",
                    s.text,
                    s.at
                );
                prop_assert_eq!(
                    s.text.trim_end_matches([' ', '\t', '\n', '\r', '\x0c']),
                    s.text.as_str()
                );
                for u in &s.uses {
                    let spelled: String = text
                        .get(u.offset..u.offset + u.len)
                        .map(|t| t.iter().collect())
                        .unwrap_or_default();
                    prop_assert_eq!(spelled, format!("@{}@", u.name));
                    let at = index_of(&c, &starts, u.at, "a placeholder")?;
                    prop_assert_eq!(at, idx + u.offset, "the placeholder's position");
                }
                after = idx + text.len();
            }
            RawPiece::Meta { at, .. } => {
                let idx = index_of(&c, &starts, *at, "a meta-command")?;
                prop_assert!(idx >= after, "pieces out of order");
                prop_assert_eq!(c.get(idx), Some(&'\\'));
                after = idx + 1;
            }
            RawPiece::Directive { at, args_at, .. } => {
                let idx = index_of(&c, &starts, *at, "a directive")?;
                prop_assert!(idx >= after, "pieces out of order");
                prop_assert_eq!(c.get(idx), Some(&'#'));
                let args = index_of(&c, &starts, *args_at, "a directive's arguments")?;
                prop_assert!(args > idx);
                after = idx + 1;
            }
        }
    }
    Ok(Some(pieces))
}

fn statements(pieces: &[RawPiece]) -> Vec<&script::RawStatement> {
    pieces
        .iter()
        .filter_map(|p| match p {
            RawPiece::Statement(s) => Some(s),
            _ => None,
        })
        .collect()
}

// --- the lexer -----------------------------------------------------------------------------

#[test]
fn fuzz_lexer() {
    let input = prop_oneof![
        any::<String>(),
        sql_soup_chars(),
        sql_soup_fragments(),
        script_of_statements().prop_map(|(_, t)| t),
    ];
    fuzz("lexer", input, |text| check_split(&text).map(|_| ()));
}

/// Statements built from complete tokens (strings, dollar quotes, comments and parentheses
/// with `;` inside, placeholders) and separated by `;`: the lexer finds exactly them.
#[test]
fn fuzz_lexer_statements_round_trip() {
    fuzz(
        "lexer_statements",
        script_of_statements(),
        |(stmts, text)| {
            let Some(pieces) = check_split(&text)? else {
                return Err(TestCaseError::fail(format!(
                    "refused: {:?}",
                    script::split(&text)
                )));
            };
            let found: Vec<&str> = statements(&pieces)
                .iter()
                .map(|s| s.text.as_str())
                .collect();
            prop_assert_eq!(found, stmts.iter().map(String::as_str).collect::<Vec<_>>());
            prop_assert!(statements(&pieces).iter().all(|s| s.terminated));
            prop_assert_eq!(statements(&pieces).len(), pieces.len(), "only statements");
            Ok(())
        },
    );
}

// --- the directive parser --------------------------------------------------------------------

const DIRECTIVES: [&str; 16] = [
    "IfNotTable",
    "IfTable",
    "IfColumn",
    "IfMissingColumn",
    "IfNotColumnType",
    "IfIndex",
    "IfNotIndex",
    "IfRow",
    "IfRow2D",
    "IfRow3D",
    "IfNotRow",
    "IfNotRow2D",
    "IfNotRow3D",
    "IfNotRow4D",
    "IfNotRow2Dx2",
    "EndIf",
];

fn directive_arg() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z_][a-zA-Z0-9_$]{0,10}",
        1 => "[a-zA-Z_]{1,5}\\.[a-zA-Z_]{1,5}",
        1 => "[a-z .'\"-]{0,8}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        1 => "[a-z .'\"-]{0,8}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        1 => prop::sample::select(vec![
            "--", "-- comment", "'", "\"", "a.", ".a", "a..b", "\"a\"b", "a\"b\"", "'a'b",
            "integer", "varchar(20)", "int", "timestamp(3) with time zone", "\"\"", "''",
            "é", "a$b", "x[]", "ä.ö",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Any name and arguments: a directive or an error whose position is on the directive's line,
/// between its `#` and the end of its arguments.
#[test]
fn fuzz_directive_parser() {
    let name = prop_oneof![
        4 => prop::sample::select(DIRECTIVES.to_vec()).prop_map(str::to_owned),
        1 => "[A-Za-z0-9]{0,14}",
        1 => any::<String>(),
    ];
    let args = prop_oneof![
        4 => prop::collection::vec((directive_arg(), separator()), 0..9)
            .prop_map(|v| v.into_iter().map(|(a, s)| format!("{a}{s}")).collect::<String>()),
        1 => any::<String>(),
    ];
    fuzz(
        "directive",
        (name, args, 1u32..1000, 1u32..50),
        |(name, args, line, col)| {
            let at = Pos { line, column: col };
            let name_len = u32::try_from(name.chars().count()).unwrap_or(u32::MAX);
            let args_at = Pos {
                line,
                column: col.saturating_add(1).saturating_add(name_len),
            };
            match script::fuzz::parse_directive(&name, &args, at, args_at) {
                Ok(_) => {}
                Err((pos, message)) => {
                    prop_assert!(!message.is_empty());
                    prop_assert_eq!(pos.line, line, "the error is on the directive's line");
                    let end = u64::from(args_at.column) + args.chars().count() as u64;
                    prop_assert!(
                        pos.column >= col && u64::from(pos.column) <= end,
                        "the error's column {} is outside {}..={}",
                        pos.column,
                        col,
                        end
                    );
                }
            }
            Ok(())
        },
    );
}

fn quoted_value(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// A name as written and as PostgreSQL reads it.
fn name_written() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_]{0,20}".prop_map(|s| (s.clone(), s.to_ascii_lowercase())),
        "[A-Za-z0-9 _.'-]{1,20}".prop_map(|s| (format!("\"{s}\""), s)),
    ]
}

/// Well-formed directives parse to the condition they spell: names folded as SQL folds them,
/// quoted values taken exactly (a doubled quote stands for itself).
#[test]
fn fuzz_directive_parser_well_formed() {
    let values = prop::collection::vec("[^\u{0}]{0,12}", 4);
    let names = prop::collection::vec(name_written(), 5);
    let kind = 0usize..6;
    let schema = prop::option::of(name_written());
    fuzz(
        "directive_well_formed",
        (kind, schema, names, values),
        |(kind, schema, n, v)| {
            let (table_w, table) = match &schema {
                Some((sw, s)) => (
                    format!("{sw}.{}", n[0].0),
                    QualName {
                        schema: Some(s.clone()),
                        name: n[0].1.clone(),
                    },
                ),
                None => (
                    n[0].0.clone(),
                    QualName {
                        schema: None,
                        name: n[0].1.clone(),
                    },
                ),
            };
            let (name, args, expected) = match kind {
                0 => (
                    "IfNotTable",
                    table_w.clone(),
                    Some(Condition::IfNotTable(table)),
                ),
                1 => (
                    "IfColumn",
                    format!("{table_w} {}", n[1].0),
                    Some(Condition::IfColumn(table, n[1].1.clone())),
                ),
                2 => (
                    "IfNotIndex",
                    format!("{table_w}\t{}   -- a trailing comment", n[1].0),
                    Some(Condition::IfNotIndex(table, n[1].1.clone())),
                ),
                3 => (
                    "IfNotRow",
                    format!("{table_w} {} {}", n[1].0, quoted_value(&v[0])),
                    Some(Condition::IfNotRow(
                        table,
                        vec![(n[1].1.clone(), v[0].clone())],
                    )),
                ),
                4 => (
                    "IfRow2D",
                    format!(
                        "{table_w} {} {} {} {}",
                        n[1].0,
                        quoted_value(&v[0]),
                        n[2].0,
                        quoted_value(&v[1])
                    ),
                    Some(Condition::IfRow(
                        table,
                        vec![
                            (n[1].1.clone(), v[0].clone()),
                            (n[2].1.clone(), v[1].clone()),
                        ],
                    )),
                ),
                _ => ("EndIf", "  -- closes the block".to_owned(), None),
            };
            let at = Pos { line: 7, column: 1 };
            let args_at = Pos {
                line: 7,
                column: 2 + name.len() as u32,
            };
            let got = script::fuzz::parse_directive(name, &format!(" {args}"), at, args_at);
            prop_assert_eq!(got, Ok(expected), "#{} {}", name, args);
            Ok(())
        },
    );
}

// --- the placeholder substitution ------------------------------------------------------------

fn placeholder_values() -> impl Strategy<Value = Placeholders> {
    let value = prop_oneof![
        "[a-zA-Z0-9_ ]{1,12}",
        "[a-z'\";$\\\\\n@#-]{0,12}",
        any::<String>(),
    ];
    let kind = prop::sample::select(vec![PlaceholderKind::Identifier, PlaceholderKind::Literal]);
    (prop::collection::vec((kind, value), 3), prop::bool::ANY).prop_map(|(v, partial)| {
        let names = ["APP_ROLE", "DB_NAME", "TIME_ZONE"];
        let mut p = BTreeMap::new();
        for (i, (kind, value)) in v.into_iter().enumerate() {
            if partial && i == 2 {
                continue; // TIME_ZONE undefined
            }
            p.insert(names[i].to_owned(), Placeholder { kind, value });
        }
        p
    })
}

/// Substitution never panics; without a placeholder to replace it is the identity and its line
/// map gives back the lexer's positions; a substituted statement is still exactly one
/// statement (a value can never end a string or a statement early), and every offset of the
/// result maps to a line of the statement.
#[test]
fn fuzz_placeholder_substitution() {
    let script = prop_oneof![
        3 => script_of_statements().prop_map(|(_, t)| t),
        1 => sql_soup_fragments(),
    ];
    fuzz(
        "placeholder",
        (script, placeholder_values()),
        |(text, placeholders)| {
            let Ok(pieces) = script::split(&text) else {
                return Ok(());
            };
            let empty = Placeholders::new();
            for s in statements(&pieces) {
                let last_line =
                    s.at.line + s.text.chars().filter(|&c| c == '\n' || c == '\r').count() as u32;
                // No placeholders defined and none in code: the identity.
                if s.uses
                    .iter()
                    .all(|u| u.context != script::PlaceholderContext::Code)
                {
                    match script::fuzz::substitute(s, &empty) {
                        Ok((sql, map, _)) => {
                            prop_assert_eq!(&sql, &s.text, "identity");
                            let c: Vec<char> = s.text.chars().collect();
                            let (mut line, mut col) = (s.at.line, s.at.column);
                            for k in 0..c.len() {
                                prop_assert_eq!(
                                    map.locate(&sql, k as u32 + 1),
                                    (line, col),
                                    "offset {}",
                                    k
                                );
                                if c[k] == '\n' || (c[k] == '\r' && c.get(k + 1) != Some(&'\n')) {
                                    line += 1;
                                    col = 1;
                                } else {
                                    col += 1;
                                }
                            }
                        }
                        Err((at, _)) => {
                            // U&'…' and "…" refuse even undefined names; the error is at a use.
                            prop_assert!(s.uses.iter().any(|u| u.at == at), "error not at a use");
                        }
                    }
                }
                match script::fuzz::substitute(s, &placeholders) {
                    Ok((sql, map, _)) => {
                        // (a space first: a byte-order mark is only skipped at the very start of a file)
                        let again = script::split(&format!(" {sql}\n;"));
                        let again = match again {
                            Ok(p) => p,
                            Err(e) => {
                                return Err(TestCaseError::fail(format!(
                                    "the substituted statement no longer splits: {e:?}\n{sql}"
                                )));
                            }
                        };
                        prop_assert_eq!(
                            statements(&again).len(),
                            1,
                            "a value changed the statement's shape: {}",
                            sql
                        );
                        for k in 0..=sql.chars().count() as u32 + 1 {
                            let (line, col) = map.locate(&sql, k);
                            prop_assert!(
                                line >= s.at.line && line <= last_line && col >= 1,
                                "offset {} maps to {}:{} outside the statement",
                                k,
                                line,
                                col
                            );
                        }
                    }
                    Err((at, message)) => {
                        prop_assert!(!message.is_empty());
                        prop_assert!(s.uses.iter().any(|u| u.at == at), "error not at a use");
                    }
                }
            }
            Ok(())
        },
    );
}

// --- the manifest validator ------------------------------------------------------------------

const SAMPLE_MANIFEST: &str = include_str!("../sql/clinic/bundle.toml");

/// TOML lines with the bundle's keys and values of the right and the wrong shapes.
fn manifest_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "name",
        "description",
        "pre_release",
        "min_server_version",
        "naming",
        "schemas",
        "query",
        "version",
        "scripts",
        "from",
        "to",
        "single_transaction",
        "script",
        "old",
        "new",
        "get",
        "set",
        "clear",
        "channels",
        "lock_timeout",
        "statement_timeout",
        "APP_ROLE",
        "\"1\"",
        "\"2\"",
        "\"2.1\"",
        "kind",
        "value",
        "unknown_key",
    ]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "\"clinic\"",
            "\"\"",
            "\"1\"",
            "\"2\"",
            "\"2.1\"",
            "\"0\"",
            "\"99999999999\"",
            "\"1.2.3\"",
            "\"-1\"",
            "\"v1\"",
            "\"13\"",
            "\"versioned\"",
            "\"fixed\"",
            "\"clinic_v{major}\"",
            "\"{major}\"",
            "true",
            "false",
            "1",
            "-5",
            "1.5",
            "[\"clinic\"]",
            "[]",
            "[\"v1/schema.sql\"]",
            "[\"../../etc/passwd\"]",
            "[\"/etc/passwd\"]",
            "[\"v1/missing.sql\"]",
            "\"fingerprints/v1.txt\"",
            "\"prechecks/weights.sql\"",
            "\"SELECT 1\"",
            "\"COMMIT; SELECT 1\"",
            "{ kind = \"identifier\", value = \"x\" }",
            "{ kind = \"literal\", value = \"\" }",
            "{ kind = \"bogus\" }",
            "\"30s\"",
            "\"\\u0000\"",
            "'''\nmulti\n'''",
            "[\"pg_catalog\"]",
            "\"é\"",
        ])
        .prop_map(str::to_owned),
        "\"[a-z0-9 ./{}_-]{0,12}\"",
    ];
    prop_oneof![
        4 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => prop::sample::select(vec![
            "[application]", "[database]", "[version]", "[baseline]", "[[step]]", "[[fixup]]",
            "[fingerprints]", "[[precheck]]", "[[plausibility]]", "[banner]", "[notify]",
            "[placeholders]", "[session]", "[step]", "[[application]]", "# comment", "",
            "[", "= 1", "\"", "'''",
        ])
        .prop_map(str::to_owned),
    ]
}

/// The sample manifest edited: lines deleted, duplicated, replaced or inserted.
fn edited_manifest() -> impl Strategy<Value = String> {
    let lines: Vec<String> = SAMPLE_MANIFEST.lines().map(str::to_owned).collect();
    let n = lines.len();
    prop::collection::vec((0..n, 0u8..4, manifest_line()), 0..5).prop_map(move |edits| {
        let mut l = lines.clone();
        for (i, op, new) in edits {
            let i = i % l.len().max(1);
            match op {
                0 if !l.is_empty() => {
                    l.remove(i);
                }
                1 if !l.is_empty() => {
                    let dup = l[i].clone();
                    l.insert(i, dup);
                }
                2 if !l.is_empty() => l[i] = new,
                _ => l.insert(i, new),
            }
        }
        l.join("\n")
    })
}

/// Any text as bundle.toml: a bundle or an error, never a panic; every problem reported in the
/// manifest names a line of it; the sample itself is valid.
#[test]
fn fuzz_manifest_validator() {
    let dir = common::copy_bundle(&common::sample_dir());
    let root = dir.path().to_path_buf();
    let manifest = root.join("bundle.toml");
    std::fs::write(&manifest, SAMPLE_MANIFEST).expect("write");
    pgstep::bundle::load(&root).unwrap_or_else(|e| panic!("the sample must be valid: {e}"));
    let text = prop_oneof![
        3 => edited_manifest(),
        1 => prop::collection::vec(manifest_line(), 0..30).prop_map(|v| v.join("\n")),
        1 => any::<String>(),
    ];
    fuzz("manifest", text, |text| {
        std::fs::write(&manifest, &text).expect("write bundle.toml");
        check_manifest(&root, &text)
    });
}

fn check_manifest(root: &Path, text: &str) -> Result<(), TestCaseError> {
    let lines = text.split('\n').count() as u32;
    match pgstep::bundle::load(root) {
        Ok(b) => {
            prop_assert!(!b.name.is_empty());
        }
        Err(e) => {
            prop_assert!(!e.problems.is_empty(), "an error without a problem");
            for p in &e.problems {
                prop_assert!(!p.message.is_empty());
                if p.file.ends_with("bundle.toml") {
                    prop_assert!(
                        p.line <= lines,
                        "problem at line {} of a {}-line manifest: {}",
                        p.line,
                        lines,
                        p.message
                    );
                }
            }
        }
    }
    Ok(())
}

/// Found by the long run of `fuzz_placeholder_substitution` (seed 2145221085581002166): a
/// literal value written right before a string (`@DB_NAME@'\'`) ran into it — `E'\\''\'` is
/// one unterminated string — and a value right after a quote or a name merged with it
/// (`'x''v'` is one string, `b'v'` a bit string). A substituted value stays a token of its own.
#[test]
fn regression_a_placeholder_next_to_a_quote_or_a_name_stays_a_token_of_its_own() {
    let mut placeholders = Placeholders::new();
    placeholders.insert(
        "DB_NAME".into(),
        Placeholder {
            kind: PlaceholderKind::Literal,
            value: "\\".into(),
        },
    );
    placeholders.insert(
        "APP_ROLE".into(),
        Placeholder {
            kind: PlaceholderKind::Identifier,
            value: "a".into(),
        },
    );
    for text in [
        "$1*/\"\"@DB_NAME@'\\'",
        "SELECT 'x'@DB_NAME@",
        "SELECT b@DB_NAME@",
        "SELECT @DB_NAME@@DB_NAME@",
        "SELECT \"x\"@APP_ROLE@\"y\"",
    ] {
        let pieces = script::split(text).expect("split");
        let s = statements(&pieces)[0];
        let (sql, _, _) = script::fuzz::substitute(s, &placeholders).expect("substitute");
        let again = script::split(&format!(" {sql}\n;")).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        assert_eq!(statements(&again).len(), 1, "{text} became {sql}");
        let uses_before = s.uses.len();
        assert!(uses_before > 0, "{text}");
    }
}

//! Parsing directive lines (`#IfNotTable clinic.patient`, `-- #IfNotRow t col 'Dr Who'`,
//! `#EndIf`) into [`Condition`]s.
//!
//! Names are case-sensitive, as in OpenEMR (`preg_match('/^#IfNotTable…/')`); a name that differs
//! only in case is reported with the right spelling rather than ignored. Arguments are separated
//! by whitespace; `'…'` or `"…"` quote an argument (a doubled quote inside stands for itself). An
//! unquoted argument starting with `--` begins a trailing comment.
//!
//! Table, column and index names are read as SQL reads them: unquoted names are folded to lower
//! case (ASCII letters only, as PostgreSQL does), `"Quoted"` ones are kept exactly; tables may
//! be `schema.table`. Values and types are taken exactly as written.

use super::condition::{Condition, QualName};
use super::lexer::Pos;
use super::quote::MAX_IDENTIFIER_BYTES;

pub(crate) enum Directive {
    If(Condition),
    EndIf,
}

#[derive(Clone, Copy)]
enum Shape {
    Table,
    TableColumn,
    TableColumnType,
    TableIndex,
    /// `#IfRow…` (false) or `#IfNotRow…` (true) with that many column/value pairs.
    Rows(bool, usize),
    Rows2Dx2,
    EndIf,
}

const KNOWN: &[(&str, Shape)] = &[
    ("IfNotTable", Shape::Table),
    ("IfTable", Shape::Table),
    ("IfColumn", Shape::TableColumn),
    ("IfMissingColumn", Shape::TableColumn),
    ("IfNotColumnType", Shape::TableColumnType),
    ("IfIndex", Shape::TableIndex),
    ("IfNotIndex", Shape::TableIndex),
    ("IfRow", Shape::Rows(false, 1)),
    ("IfRow2D", Shape::Rows(false, 2)),
    ("IfRow3D", Shape::Rows(false, 3)),
    ("IfNotRow", Shape::Rows(true, 1)),
    ("IfNotRow2D", Shape::Rows(true, 2)),
    ("IfNotRow3D", Shape::Rows(true, 3)),
    ("IfNotRow4D", Shape::Rows(true, 4)),
    ("IfNotRow2Dx2", Shape::Rows2Dx2),
    ("EndIf", Shape::EndIf),
];

impl Shape {
    fn arguments(self) -> usize {
        match self {
            Shape::Table => 1,
            Shape::TableColumn | Shape::TableIndex => 2,
            Shape::TableColumnType => 3,
            Shape::Rows(_, pairs) => 1 + 2 * pairs,
            Shape::Rows2Dx2 => 7,
            Shape::EndIf => 0,
        }
    }

    fn usage(self, name: &str) -> String {
        let args = match self {
            Shape::Table => "table".to_string(),
            Shape::TableColumn => "table column".to_string(),
            Shape::TableColumnType => "table column type".to_string(),
            Shape::TableIndex => "table index".to_string(),
            Shape::Rows(_, pairs) => (2..=pairs).fold("table column value".to_string(), |s, n| {
                format!("{s} column{n} value{n}")
            }),
            Shape::Rows2Dx2 => "table column value column2 value2 column3 value3".to_string(),
            Shape::EndIf => return format!("usage: #{name}"),
        };
        format!("usage: #{name} {args}")
    }
}

type Failure = (Pos, String);

/// Whether `word` is a directive name, ignoring case.
pub(crate) fn is_known_ignoring_case(word: &str) -> bool {
    KNOWN.iter().any(|k| k.0.eq_ignore_ascii_case(word))
}

/// Parses one directive line: `name` without the `#`, `args` the rest of the line starting at
/// `args_at`; `at` is the `#`.
pub(crate) fn parse(name: &str, args: &str, at: Pos, args_at: Pos) -> Result<Directive, Failure> {
    let Some(&(name, shape)) = KNOWN.iter().find(|k| k.0 == name) else {
        return Err((at, unknown(name)));
    };
    let usage = shape.usage(name);
    let tokens = tokenize(args, args_at)?;
    let expected = shape.arguments();
    if tokens.len() < expected {
        return Err((at, format!("#{name}: missing argument ({usage})")));
    }
    if let Some(extra) = tokens.get(expected) {
        let hint = if expected == 0 {
            "#EndIf takes no arguments".to_string()
        } else {
            format!("{usage}; quote an argument that contains spaces, e.g. 'Dr Who'")
        };
        return Err((extra.at, format!("#{name}: unexpected argument ({hint})")));
    }
    if let Shape::EndIf = shape {
        return Ok(Directive::EndIf);
    }
    let table = qual_name(&tokens[0])?;
    let ident = |i: usize| single_name(&tokens[i]);
    let val = |i: usize| value(&tokens[i]);
    let condition = match (name, shape) {
        ("IfNotTable", _) => Condition::IfNotTable(table),
        ("IfTable", _) => Condition::IfTable(table),
        ("IfColumn", _) => Condition::IfColumn(table, ident(1)?),
        ("IfMissingColumn", _) => Condition::IfMissingColumn(table, ident(1)?),
        ("IfNotColumnType", _) => {
            let ty = val(2)?;
            check_type_spelling(&ty).map_err(|e| (tokens[2].at, e.to_string()))?;
            Condition::IfNotColumnType(table, ident(1)?, ty)
        }
        ("IfIndex", _) => Condition::IfIndex(table, ident(1)?),
        ("IfNotIndex", _) => Condition::IfNotIndex(table, ident(1)?),
        (_, Shape::Rows(negated, pairs)) => {
            let mut list = Vec::with_capacity(pairs);
            for n in 0..pairs {
                list.push((ident(1 + 2 * n)?, val(2 + 2 * n)?));
            }
            if negated {
                Condition::IfNotRow(table, list)
            } else {
                Condition::IfRow(table, list)
            }
        }
        _ => Condition::IfNotRow2Dx2 {
            table,
            column: ident(1)?,
            value: val(2)?,
            column2: ident(3)?,
            value2: val(4)?,
            column3: ident(5)?,
            value3: val(6)?,
        },
    };
    Ok(Directive::If(condition))
}

fn unknown(name: &str) -> String {
    if let Some(k) = KNOWN.iter().find(|k| k.0.eq_ignore_ascii_case(name)) {
        return format!(
            "unknown directive #{name}: directive names are case-sensitive, write #{}",
            k.0
        );
    }
    let lower = name.to_ascii_lowercase();
    let best = KNOWN
        .iter()
        .map(|k| (edit_distance(&lower, &k.0.to_ascii_lowercase()), k.0))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, k)) if d <= 3 => format!("unknown directive #{name} (did you mean #{k}?)"),
        _ => format!(
            "unknown directive #{name} (known: {}); a comment is written --",
            KNOWN
                .iter()
                .map(|k| format!("#{}", k.0))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Levenshtein distance, in characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[derive(Debug)]
enum Piece {
    Bare(String),
    Quoted(char, String),
}

struct Token {
    pieces: Vec<Piece>,
    at: Pos,
}

fn tokenize(args: &str, start: Pos) -> Result<Vec<Token>, Failure> {
    let chars: Vec<char> = args.chars().collect();
    let col = |k: usize| Pos {
        line: start.line,
        column: start.column + u32::try_from(k).unwrap_or(0),
    };
    let mut tokens = Vec::new();
    let mut k = 0;
    loop {
        while k < chars.len() && chars[k].is_whitespace() {
            k += 1;
        }
        if k >= chars.len() || (chars[k] == '-' && chars.get(k + 1) == Some(&'-')) {
            return Ok(tokens);
        }
        let token_start = k;
        let mut pieces = Vec::new();
        while k < chars.len() && !chars[k].is_whitespace() {
            let (piece, next) = if chars[k] == '\'' || chars[k] == '"' {
                quoted_piece(&chars, k, col(k))?
            } else {
                bare_piece(&chars, k)
            };
            pieces.push(piece);
            k = next;
        }
        tokens.push(Token {
            pieces,
            at: col(token_start),
        });
    }
}

/// The quoted piece whose opening quote is at `open` (at `at` in the file), and the index after
/// its closing quote.
fn quoted_piece(chars: &[char], open: usize, at: Pos) -> Result<(Piece, usize), Failure> {
    let q = chars[open];
    let mut s = String::new();
    let mut k = open + 1;
    loop {
        match chars.get(k) {
            None => {
                return Err((
                    at,
                    format!(
                        "unterminated {q}: close the quoted argument with {q} (a {q} \
                         inside it is written {q}{q}, e.g. 'O''Brien')"
                    ),
                ));
            }
            Some(&c) if c == q && chars.get(k + 1) == Some(&q) => {
                s.push(q);
                k += 2;
            }
            Some(&c) if c == q => return Ok((Piece::Quoted(q, s), k + 1)),
            Some(&c) => {
                s.push(c);
                k += 1;
            }
        }
    }
}

/// The unquoted piece that starts at `from`, up to whitespace or a quote, and the index after it.
fn bare_piece(chars: &[char], from: usize) -> (Piece, usize) {
    let mut s = String::new();
    let mut k = from;
    while k < chars.len() && !chars[k].is_whitespace() && chars[k] != '\'' && chars[k] != '"' {
        s.push(chars[k]);
        k += 1;
    }
    (Piece::Bare(s), k)
}

/// A value: bare, or entirely in one pair of quotes.
fn value(t: &Token) -> Result<String, Failure> {
    match t.pieces.as_slice() {
        [Piece::Bare(s)] | [Piece::Quoted(_, s)] => Ok(s.clone()),
        _ => Err((
            t.at,
            "a value is either written bare or entirely in quotes; to put a quote in a value, \
             quote the whole value and double the quote: 'O''Brien'"
                .into(),
        )),
    }
}

enum Part {
    Folded(String),
    Exact(String),
}

fn failure<T>(t: &Token, m: &str) -> Result<T, Failure> {
    Err((t.at, m.to_string()))
}

/// `name`, `"Name"`, `schema.name`, `"My Schema"."My Table"` → parts, folded and checked.
fn name_parts(t: &Token) -> Result<Vec<String>, Failure> {
    let mut parts = Vec::new();
    let mut cur: Option<Part> = None;
    for piece in &t.pieces {
        match piece {
            Piece::Quoted('"', s) => {
                if cur.is_some() {
                    return failure(
                        t,
                        "a double-quoted name must be a whole name part (write \"a b\".c, not a\"b\")",
                    );
                }
                cur = Some(Part::Exact(s.clone()));
            }
            Piece::Quoted(_, _) => {
                return failure(
                    t,
                    "names are written bare or in double quotes, not in single quotes",
                );
            }
            Piece::Bare(s) => {
                for c in s.chars() {
                    if c == '.' {
                        match cur.take() {
                            Some(p) => parts.push(p),
                            None => {
                                return failure(
                                    t,
                                    "empty name part: a dot must separate two names",
                                );
                            }
                        }
                        continue;
                    }
                    match &mut cur {
                        Some(Part::Folded(b)) => b.push(c),
                        Some(Part::Exact(_)) => {
                            return failure(
                                t,
                                "text right after a double-quoted name; separate parts with a dot",
                            );
                        }
                        None => cur = Some(Part::Folded(c.to_string())),
                    }
                }
            }
        }
    }
    match cur {
        Some(p) => parts.push(p),
        None => return failure(t, "empty name part: a name cannot end with a dot"),
    }
    parts.into_iter().map(|p| checked_part(t, p)).collect()
}

fn checked_part(t: &Token, p: Part) -> Result<String, Failure> {
    let s = match p {
        Part::Exact(s) if s.is_empty() => return failure(t, "empty quoted name \"\""),
        Part::Exact(s) => s,
        Part::Folded(s) => {
            let mut chars = s.chars();
            let ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$');
            if !ok {
                return failure(
                    t,
                    &format!("{s:?} is not a valid unquoted name; put it in double quotes"),
                );
            }
            // PostgreSQL folds only ASCII letters (in UTF-8 databases).
            s.to_ascii_lowercase()
        }
    };
    if s.len() > MAX_IDENTIFIER_BYTES {
        return failure(
            t,
            &format!(
                "name {s:?} is longer than {MAX_IDENTIFIER_BYTES} bytes; PostgreSQL truncates \
                 such names, so this one can never match"
            ),
        );
    }
    Ok(s)
}

fn qual_name(t: &Token) -> Result<QualName, Failure> {
    let mut parts = name_parts(t)?;
    match parts.len() {
        1 => Ok(QualName {
            schema: None,
            name: parts.remove(0),
        }),
        2 => {
            let name = parts.remove(1);
            Ok(QualName {
                schema: Some(parts.remove(0)),
                name,
            })
        }
        _ => Err((
            t.at,
            "a table is written table or schema.table (a database name cannot be given)".into(),
        )),
    }
}

fn single_name(t: &Token) -> Result<String, Failure> {
    let mut parts = name_parts(t)?;
    if parts.len() != 1 {
        return Err((
            t.at,
            "a column or index name cannot be qualified; put a name containing a dot in double \
             quotes"
                .into(),
        ));
    }
    Ok(parts.remove(0))
}

/// Why a `#IfNotColumnType` type is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TypeSpellingError {
    #[error("the type is empty")]
    Empty,
    #[error(
        "type {ty:?} is compared with PostgreSQL's own spelling (format_type()), which \
         would be {canonical:?}"
    )]
    NotCanonical { ty: String, canonical: String },
}

/// Refuses spellings that `format_type()` never produces, since such a `#IfNotColumnType` would
/// always run its block.
pub(crate) fn check_type_spelling(ty: &str) -> Result<(), TypeSpellingError> {
    let say = |canonical: String| {
        Err(TypeSpellingError::NotCanonical {
            ty: ty.to_owned(),
            canonical,
        })
    };
    if ty.is_empty() {
        return Err(TypeSpellingError::Empty);
    }
    if ty.trim() != ty || ty.contains("  ") || ty.contains(", ") || ty.contains(" (") {
        let normal = ty.split_whitespace().collect::<Vec<_>>().join(" ");
        return say(normal.replace(", ", ",").replace(" (", "("));
    }
    let mut quoted = false;
    if ty.chars().any(|c| {
        if c == '"' {
            quoted = !quoted;
        }
        !quoted && c.is_ascii_uppercase()
    }) {
        return say(ty.to_lowercase());
    }
    let (base, array) = match ty.find("[]") {
        Some(i) => (&ty[..i], &ty[i..]),
        None => (ty, ""),
    };
    let (name, modifier) = match base.find('(') {
        // Only a plain `name(…)`: `timestamp(3) with time zone` is already canonical.
        Some(i) if base.ends_with(')') => (&base[..i], &base[i..]),
        Some(_) => return Ok(()),
        None => (base, ""),
    };
    let canonical = match (name, modifier) {
        ("int" | "int4" | "serial" | "serial4", "") => "integer".to_string(),
        ("int2" | "smallserial" | "serial2", "") => "smallint".to_string(),
        ("int8" | "bigserial" | "serial8", "") => "bigint".to_string(),
        ("float8" | "float", "") => "double precision".to_string(),
        ("float4", "") => "real".to_string(),
        ("bool", "") => "boolean".to_string(),
        ("varchar", m) => format!("character varying{m}"),
        ("char", "") => "character(1)".to_string(),
        ("char", m) => format!("character{m}"),
        ("decimal", m) => format!("numeric{m}"),
        ("varbit", m) => format!("bit varying{m}"),
        ("timestamptz", m) => format!("timestamp{m} with time zone"),
        ("timestamp", m) => format!("timestamp{m} without time zone"),
        ("timetz", m) => format!("time{m} with time zone"),
        ("time", m) => format!("time{m} without time zone"),
        _ => return Ok(()),
    };
    say(format!("{canonical}{array}"))
}

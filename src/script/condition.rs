//! The conditions of OpenEMR-style blocks and the catalog queries that decide them.
//!
//! Semantics follow OpenEMR's `sql_upgrade_fx.php`, where every condition but `#IfNotTable` and
//! `#IfTable` also requires the table to exist (a block guarding a column, index or row of a
//! missing table is skipped). `#IfNotColumnType` runs only when the column exists with another
//! type (OpenEMR deems a missing column to have the type).
//!
//! A "table" is an ordinary or partitioned table (`relkind` `r` or `p`). A view, materialized
//! view, foreign table, sequence or index of that name does not count: the blocks guard DDL such
//! as `CREATE TABLE` and `ALTER TABLE … ADD COLUMN`, and mistaking a view for the table would
//! silently skip them, whereas not counting it makes the guarded DDL fail loudly.
//!
//! No text from a directive is ever part of the SQL: names and values are bound parameters
//! (`$1::text`, …), turned into quoted identifiers by the server's own `format('%I')`. Row
//! conditions must read a table that may not exist, which one static statement cannot do without
//! failing at parse time; they run their probe through `query_to_xml()`, whose query text is
//! built by `format()` with `%I`/`%L` on the server and which runs read-only, only once the table
//! is known to exist.

use std::fmt;

use super::quote::quote_ident;

/// A possibly schema-qualified table name, exactly as stored in the catalogs (unquoted names in
/// a directive have already been folded to lower case, as PostgreSQL folds them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualName {
    /// `None`: looked up through the session's `search_path`.
    pub schema: Option<String>,
    pub name: String,
}

impl fmt::Display for QualName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.schema {
            write!(f, "{}.", display_ident(s))?;
        }
        write!(f, "{}", display_ident(&self.name))
    }
}

/// A name as it would be written in a directive: bare when that reads back the same.
pub(crate) fn display_ident(s: &str) -> String {
    let mut chars = s.chars();
    let simple = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if simple {
        s.to_string()
    } else {
        quote_ident(s)
    }
}

/// A value as it would be written in a directive.
fn display_value(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with("--")
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '"');
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// When a `#If…` block runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The table does not exist.
    IfNotTable(QualName),
    /// The table exists.
    IfTable(QualName),
    /// The table has the column.
    IfColumn(QualName, String),
    /// The table exists without the column.
    IfMissingColumn(QualName, String),
    /// The table has the column, and `format_type()` of its type is not exactly the given text.
    IfNotColumnType(QualName, String, String),
    /// The table has an index of that name.
    IfIndex(QualName, String),
    /// The table exists and has no index of that name.
    IfNotIndex(QualName, String),
    /// The table exists and a row has every `column::text = value` (1 to 3 pairs: `#IfRow`,
    /// `#IfRow2D`, `#IfRow3D`).
    IfRow(QualName, Vec<(String, String)>),
    /// The table exists and no row has every `column::text = value` (1 to 4 pairs: `#IfNotRow`
    /// … `#IfNotRow4D`).
    IfNotRow(QualName, Vec<(String, String)>),
    /// The table exists, no row has (column, column2) = (value, value2) and no row has
    /// (column, column3) = (value, value3).
    IfNotRow2Dx2 {
        table: QualName,
        column: String,
        value: String,
        column2: String,
        value2: String,
        column3: String,
        value3: String,
    },
}

/// Collects bound parameters.
struct Params(Vec<String>);

impl Params {
    fn bind(&mut self, v: &str) -> String {
        self.0.push(v.to_string());
        format!("${}::text", self.0.len())
    }
}

fn rows_directive(negated: bool, pairs: usize) -> String {
    let base = if negated { "#IfNotRow" } else { "#IfRow" };
    if pairs <= 1 {
        base.to_string()
    } else {
        format!("{base}{pairs}D")
    }
}

impl Condition {
    /// The table every condition is about.
    pub fn table(&self) -> &QualName {
        match self {
            Condition::IfNotTable(t)
            | Condition::IfTable(t)
            | Condition::IfColumn(t, _)
            | Condition::IfMissingColumn(t, _)
            | Condition::IfNotColumnType(t, _, _)
            | Condition::IfIndex(t, _)
            | Condition::IfNotIndex(t, _)
            | Condition::IfRow(t, _)
            | Condition::IfNotRow(t, _) => t,
            Condition::IfNotRow2Dx2 { table, .. } => table,
        }
    }

    /// The SQL that decides the block: one row with one boolean column, `run`, true when the
    /// block must run; and its text parameters (`$1`, `$2`, …). It only reads the catalogs (and,
    /// for row conditions, the table).
    pub fn query(&self) -> (String, Vec<String>) {
        let mut p = Params(Vec::new());
        let table = self.table();
        let name = match &table.schema {
            Some(s) => {
                let s = p.bind(s);
                format!("pg_catalog.format('%I.%I', {s}, {})", p.bind(&table.name))
            }
            None => format!("pg_catalog.format('%I', {})", p.bind(&table.name)),
        };
        let oid = format!(
            "(SELECT c.oid FROM pg_catalog.pg_class AS c WHERE c.oid = \
             pg_catalog.to_regclass({name}) AND c.relkind IN ('r', 'p'))"
        );
        let expr = match self {
            Condition::IfNotTable(_) => "t.oid IS NULL".to_string(),
            Condition::IfTable(_) => "t.oid IS NOT NULL".to_string(),
            Condition::IfColumn(_, col) => column_exists(&mut p, col, None),
            Condition::IfMissingColumn(_, col) => {
                format!(
                    "t.oid IS NOT NULL AND NOT {}",
                    column_exists(&mut p, col, None)
                )
            }
            Condition::IfNotColumnType(_, col, ty) => column_exists(&mut p, col, Some(ty)),
            Condition::IfIndex(_, index) => index_exists(&mut p, index),
            Condition::IfNotIndex(_, index) => {
                format!("t.oid IS NOT NULL AND NOT {}", index_exists(&mut p, index))
            }
            Condition::IfRow(_, pairs) => guarded(row_exists(&mut p, pairs)),
            Condition::IfNotRow(_, pairs) => guarded(format!("NOT {}", row_exists(&mut p, pairs))),
            Condition::IfNotRow2Dx2 { .. } => {
                let [shared, second, third] = self.rows_2dx2_pairs();
                let first = [shared.clone(), second];
                let second = [shared, third];
                let a = row_exists(&mut p, &first);
                let b = row_exists(&mut p, &second);
                guarded(format!("NOT {a} AND NOT {b}"))
            }
        };
        let sql = format!("SELECT {expr} AS run FROM (SELECT {oid} AS oid) AS t");
        (sql, p.0)
    }

    /// The directive as it could be written, for logs: `#IfNotTable clinic.patient`.
    pub fn describe(&self) -> String {
        let t = self.table();
        let id = |s: &str| display_ident(s);
        let pairs_text = |pairs: &[(String, String)]| {
            pairs
                .iter()
                .map(|(c, v)| format!(" {} {}", id(c), display_value(v)))
                .collect::<String>()
        };
        match self {
            Condition::IfNotTable(_) => format!("#IfNotTable {t}"),
            Condition::IfTable(_) => format!("#IfTable {t}"),
            Condition::IfColumn(_, c) => format!("#IfColumn {t} {}", id(c)),
            Condition::IfMissingColumn(_, c) => format!("#IfMissingColumn {t} {}", id(c)),
            Condition::IfNotColumnType(_, c, ty) => {
                format!("#IfNotColumnType {t} {} {}", id(c), display_value(ty))
            }
            Condition::IfIndex(_, i) => format!("#IfIndex {t} {}", id(i)),
            Condition::IfNotIndex(_, i) => format!("#IfNotIndex {t} {}", id(i)),
            Condition::IfRow(_, pairs) => {
                format!(
                    "{} {t}{}",
                    rows_directive(false, pairs.len()),
                    pairs_text(pairs)
                )
            }
            Condition::IfNotRow(_, pairs) => {
                format!(
                    "{} {t}{}",
                    rows_directive(true, pairs.len()),
                    pairs_text(pairs)
                )
            }
            Condition::IfNotRow2Dx2 { .. } => {
                let [(c1, v1), (c2, v2), (c3, v3)] = self.rows_2dx2_pairs();
                format!(
                    "#IfNotRow2Dx2 {t} {} {} {} {} {} {}",
                    id(&c1),
                    display_value(&v1),
                    id(&c2),
                    display_value(&v2),
                    id(&c3),
                    display_value(&v3)
                )
            }
        }
    }

    /// The three (column, value) pairs of `#IfNotRow2Dx2`: the one both rows share, then the
    /// second pair of each row. Empty for any other condition.
    fn rows_2dx2_pairs(&self) -> [(String, String); 3] {
        match self {
            Condition::IfNotRow2Dx2 {
                column,
                value,
                column2,
                value2,
                column3,
                value3,
                ..
            } => [
                (column.clone(), value.clone()),
                (column2.clone(), value2.clone()),
                (column3.clone(), value3.clone()),
            ],
            _ => Default::default(),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A live column of table `t.oid` (false when the table is missing: `attrelid = NULL` matches
/// nothing), optionally of a type other than `ty`.
fn column_exists(p: &mut Params, col: &str, other_type: Option<&str>) -> String {
    let col = p.bind(col);
    let type_test = match other_type {
        Some(ty) => format!(
            " AND pg_catalog.format_type(a.atttypid, a.atttypmod) <> {}",
            p.bind(ty)
        ),
        None => String::new(),
    };
    format!(
        "EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = t.oid \
         AND a.attname = {col} AND a.attnum > 0 AND NOT a.attisdropped{type_test})"
    )
}

/// An index of table `t.oid` with that exact name (indexes live in their table's schema).
fn index_exists(p: &mut Params, index: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM pg_catalog.pg_index AS i JOIN pg_catalog.pg_class AS ic \
         ON ic.oid = i.indexrelid WHERE i.indrelid = t.oid AND ic.relname = {})",
        p.bind(index)
    )
}

/// Whether a row of table `t.oid` matches every pair, by text comparison. Only valid where the
/// table is known to exist (see [`guarded`]).
fn row_exists(p: &mut Params, pairs: &[(String, String)]) -> String {
    let mut fmt = String::from("SELECT 1 AS found FROM %s WHERE ");
    let mut args = vec!["t.oid::pg_catalog.regclass".to_string()];
    for (n, (col, value)) in pairs.iter().enumerate() {
        if n > 0 {
            fmt.push_str(" AND ");
        }
        fmt.push_str("%I::text = %L");
        args.push(p.bind(col));
        args.push(p.bind(value));
    }
    fmt.push_str(" LIMIT 1");
    // query_to_xml(…, tableforest => true) returns '' for no rows.
    format!(
        "(pg_catalog.query_to_xml(pg_catalog.format('{fmt}', {}), false, true, '')::text <> '')",
        args.join(", ")
    )
}

/// `CASE` evaluates its branches lazily, so the probe never runs on a missing table.
fn guarded(expr: String) -> String {
    format!("CASE WHEN t.oid IS NULL THEN false ELSE {expr} END")
}

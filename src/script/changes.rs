//! What a statement changes, read from its first tokens ([`HeadToken`]s, as the lexer records
//! them): the tables and indexes of the plain forms (`CREATE TABLE x`, `ALTER TABLE x`,
//! `INSERT INTO x`, `DROP INDEX i`, …). Anything else (a `DO` block, a function call) changes
//! nothing as far as this can tell. The plan preview uses it to mark a conditional block whose
//! table an earlier statement changes as "decided during the run".

use super::classify::HeadToken;
use super::condition::QualName;
use super::lexer::statement_head;

/// A table or index a statement may change, named as written: unquoted parts folded to lower
/// case, as PostgreSQL folds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Table(QualName),
    Index(QualName),
}

impl QualName {
    /// Whether this name, as written in a statement, may be the object `schema.name`. Without a
    /// schema on either side the search_path decides, which cannot be known here: it counts as a
    /// match (the cautious answer).
    pub fn may_be(&self, schema: Option<&str>, name: &str) -> bool {
        self.name == name
            && match (self.schema.as_deref(), schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// The tables and indexes the statement `sql` (one statement, as sent) changes.
pub fn changes(sql: &str) -> Vec<Change> {
    let t = statement_head(sql);
    let kw = |i: usize, w: &str| is_word(&t, i, w);
    // The names from `i` on: all of a comma-separated list, or just the first.
    let tables = |i: usize| name_list(&t, i).into_iter().map(Change::Table).collect();
    let table = |i: usize| {
        name_list(&t, i)
            .into_iter()
            .take(1)
            .map(Change::Table)
            .collect()
    };
    let Some(HeadToken::Word(first)) = t.first() else {
        return Vec::new();
    };
    match first.as_str() {
        "CREATE" => created(&t),
        "ALTER" if kw(1, "TABLE") => altered_table(&t),
        "ALTER" if kw(1, "INDEX") => {
            let i = skip_words(&t, 2, &[&["IF", "EXISTS"]]);
            name_list(&t, i)
                .into_iter()
                .take(1)
                .map(Change::Index)
                .collect()
        }
        "DROP" if kw(1, "TABLE") => tables(skip_words(&t, 2, &[&["IF", "EXISTS"]])),
        "DROP" if kw(1, "INDEX") => {
            let i = skip_words(&t, 2, &[&["CONCURRENTLY"], &["IF", "EXISTS"]]);
            name_list(&t, i).into_iter().map(Change::Index).collect()
        }
        "INSERT" | "MERGE" if kw(1, "INTO") => table(2),
        "UPDATE" => table(1),
        "DELETE" if kw(1, "FROM") => table(2),
        "TRUNCATE" => tables(skip_words(&t, 1, &[&["TABLE"]])),
        "COPY" => table(1),
        _ => Vec::new(),
    }
}

fn is_word(t: &[HeadToken], i: usize, w: &str) -> bool {
    matches!(t.get(i), Some(HeadToken::Word(x)) if x == w)
}

/// `CREATE [OR REPLACE] [GLOBAL|LOCAL] [TEMP|TEMPORARY|UNLOGGED] TABLE [IF NOT EXISTS] name`
/// and `CREATE [UNIQUE] INDEX … ON [ONLY] table`.
fn created(t: &[HeadToken]) -> Vec<Change> {
    let i = skip_words(
        t,
        1,
        &[
            &["OR", "REPLACE"],
            &["GLOBAL"],
            &["LOCAL"],
            &["TEMP"],
            &["TEMPORARY"],
            &["UNLOGGED"],
            &["UNIQUE"],
        ],
    );
    if is_word(t, i, "TABLE") {
        let i = skip_words(t, i + 1, &[&["IF", "NOT", "EXISTS"]]);
        name_at(t, i)
            .map(|(n, _)| vec![Change::Table(n)])
            .unwrap_or_default()
    } else if is_word(t, i, "INDEX") {
        created_index(t, i + 1)
    } else {
        Vec::new()
    }
}

/// `CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] [name] ON [ONLY] table`, from after
/// `INDEX`: the index, in its table's schema (where indexes live); an unnamed one gets a name
/// only the server knows, so then the table counts as changed.
fn created_index(t: &[HeadToken], i: usize) -> Vec<Change> {
    let i = skip_words(t, i, &[&["CONCURRENTLY"], &["IF", "NOT", "EXISTS"]]);
    let named = if is_word(t, i, "ON") {
        None
    } else {
        name_at(t, i)
    };
    let on = named.as_ref().map_or(i, |(_, next)| *next);
    if !is_word(t, on, "ON") {
        return Vec::new();
    }
    let Some((table, _)) = name_at(t, skip_words(t, on + 1, &[&["ONLY"]])) else {
        return Vec::new();
    };
    match named {
        Some((index, _)) => vec![Change::Index(QualName {
            schema: table.schema,
            name: index.name,
        })],
        None => vec![Change::Table(table)],
    }
}

/// `ALTER TABLE [IF EXISTS] [ONLY] name …`, and the new name after `RENAME TO` or the new
/// schema after `SET SCHEMA` (a later `#IfTable new_name` depends on them too).
fn altered_table(t: &[HeadToken]) -> Vec<Change> {
    let i = skip_words(t, 2, &[&["IF", "EXISTS"], &["ONLY"]]);
    let Some((name, next)) = name_at(t, i) else {
        return Vec::new();
    };
    let mut out = vec![Change::Table(name.clone())];
    if is_word(t, next, "RENAME")
        && is_word(t, next + 1, "TO")
        && let Some((new, _)) = name_at(t, next + 2)
    {
        out.push(Change::Table(QualName {
            schema: name.schema.clone(),
            name: new.name,
        }));
    }
    if is_word(t, next, "SET")
        && is_word(t, next + 1, "SCHEMA")
        && let Some((schema, _)) = name_at(t, next + 2)
    {
        out.push(Change::Table(QualName {
            schema: Some(schema.name),
            name: name.name,
        }));
    }
    out
}

/// Skips any of the optional word sequences, in any order, from `i`.
fn skip_words(t: &[HeadToken], mut i: usize, optional: &[&[&str]]) -> usize {
    'again: loop {
        for seq in optional {
            if seq.iter().enumerate().all(|(k, w)| is_word(t, i + k, w)) {
                i += seq.len();
                continue 'again;
            }
        }
        return i;
    }
}

/// A possibly qualified name at `i` (`a`, `a.b`, `db.a.b`), and the index after it.
fn name_at(t: &[HeadToken], i: usize) -> Option<(QualName, usize)> {
    let part = |k: usize| match t.get(k) {
        Some(HeadToken::Word(w)) => Some(w.to_ascii_lowercase()),
        Some(HeadToken::Quoted(q)) => Some(q.clone()),
        _ => None,
    };
    let mut parts = vec![part(i)?];
    let mut k = i + 1;
    while t.get(k) == Some(&HeadToken::Dot) {
        parts.push(part(k + 1)?);
        k += 2;
    }
    let name = parts.pop()?;
    Some((
        QualName {
            schema: parts.pop(),
            name,
        },
        k,
    ))
}

/// Comma-separated names from `i` (`DROP TABLE a, b`), each possibly preceded by `ONLY`.
fn name_list(t: &[HeadToken], mut i: usize) -> Vec<QualName> {
    let mut out = Vec::new();
    while let Some((name, next)) = name_at(t, skip_words(t, i, &[&["ONLY"]])) {
        out.push(name);
        if t.get(next) != Some(&HeadToken::Comma) {
            break;
        }
        i = next + 1;
    }
    out
}

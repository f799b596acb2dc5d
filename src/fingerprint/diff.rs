//! Which objects differ between two fingerprint texts: added, removed or changed.
//! Pure: compares texts, knows nothing of databases.

use std::collections::BTreeMap;
use std::fmt;

/// The object-level difference between an expected and an actual fingerprint text.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diff {
    /// In the database, not in the reference.
    pub added: Vec<String>,
    /// In the reference, not in the database.
    pub removed: Vec<String>,
    /// In both, with different definitions: (object, expected, actual).
    pub changed: Vec<(String, String, String)>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    pub fn len(&self) -> usize {
        self.added.len() + self.removed.len() + self.changed.len()
    }
}

/// Compares two canonical texts object by object.
pub fn diff(expected: &str, actual: &str) -> Diff {
    let want = objects(expected);
    let have = objects(actual);
    let mut d = Diff::default();
    for (key, details) in &have {
        match want.get(key) {
            None => d.added.push(describe(key, details)),
            Some(w) if w != details => {
                d.changed
                    .push((key.clone(), (*w).to_owned(), (*details).to_owned()))
            }
            Some(_) => {}
        }
    }
    d.removed = want
        .iter()
        .filter(|(k, _)| !have.contains_key(*k))
        .map(|(k, v)| describe(k, v))
        .collect();
    d
}

/// `kind identity` → details. A line is `kind\tidentity[\tdetails]`.
fn objects(text: &str) -> BTreeMap<String, &str> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut parts = line.splitn(3, '\t');
            let kind = parts.next().unwrap_or_default();
            let identity = parts.next().unwrap_or_default();
            (
                format!("{kind} {identity}"),
                parts.next().unwrap_or_default(),
            )
        })
        .collect()
}

fn describe(key: &str, details: &str) -> String {
    if details.is_empty() {
        key.to_owned()
    } else {
        format!("{key}: {details}")
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.added {
            writeln!(f, "  + added    {a}")?;
        }
        for r in &self.removed {
            writeln!(f, "  - removed  {r}")?;
        }
        for (key, want, have) in &self.changed {
            writeln!(f, "  ~ changed  {key}")?;
            writeln!(f, "      expected: {want}")?;
            writeln!(f, "      found:    {have}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_added_removed_and_changed_objects() {
        let want = "format\tpgstep\t1\ncolumn\ts.t.a\tinteger\ncolumn\ts.t.b\ttext\ntable\ts.t\n";
        let have = "format\tpgstep\t1\ncolumn\ts.t.a\tbigint\ncolumn\ts.t.c\ttext\ntable\ts.t\n";
        let d = diff(want, have);
        assert_eq!(d.added, vec!["column s.t.c: text"]);
        assert_eq!(d.removed, vec!["column s.t.b: text"]);
        assert_eq!(
            d.changed,
            vec![("column s.t.a".into(), "integer".into(), "bigint".into())]
        );
        assert_eq!(d.len(), 3);
        assert!(diff(want, want).is_empty());
    }
}

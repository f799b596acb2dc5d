//! Reads an application's version marker with the bundle's query: one statement, in a READ
//! ONLY transaction (`super::readonly`), which must return exactly one row with one column.

use postgres::Client;

use super::session::DbError;
use crate::bundle::Version;

/// The version the application's marker says, read with `query` (bundle.toml's `[version]
/// query`: one row, one column).
pub fn read_version(client: &mut Client, query: &str, dbname: &str) -> Result<Version, DbError> {
    let rows = super::readonly::read_rows(client, query).map_err(|e| {
        DbError::Refused(format!(
            "cannot read the application's version in database \"{dbname}\": the bundle's version query failed: {e}\n  \
             Is this the application's database, at a version this bundle knows?"
        ))
    })?;
    let text = one_value(&rows).map_err(|what| {
        DbError::Refused(format!(
            "bundle.toml's [version] query returned {what} in database \"{dbname}\"; it must \
             return exactly one row with one column, the version. Nothing was changed. The \
             query: {}",
            query.trim()
        ))
    })?;
    let text = match text {
        None => {
            return Err(DbError::Refused(format!(
                "the version query returned NULL in database \"{dbname}\": the version marker is empty"
            )));
        }
        Some(t) => t,
    };
    text.parse().map_err(|e| {
        DbError::Refused(format!(
            "the version marker of database \"{dbname}\" says {e}"
        ))
    })
}

/// What a version query returned instead of one row with one column.
#[derive(Debug, PartialEq, Eq)]
enum NotOneValue {
    NoRow,
    /// One row with `n` columns (not one), the first rows shown.
    Columns {
        n: usize,
        shown: String,
    },
    /// `n` rows, the first ones shown.
    Rows {
        n: usize,
        shown: String,
    },
}

impl std::fmt::Display for NotOneValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoRow => f.write_str("no row (the version marker is missing)"),
            Self::Columns { n, shown } => write!(f, "{n} columns: {shown}"),
            Self::Rows { n, shown } => write!(f, "{n} rows: {shown}"),
        }
    }
}

/// The one value of a one-row, one-column result, or what the result was instead.
fn one_value(rows: &super::readonly::Rows) -> Result<Option<String>, NotOneValue> {
    let shown = |rows: &super::readonly::Rows| {
        rows.iter()
            .take(3)
            .map(|r| {
                let cells: Vec<&str> = r.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
                format!("({})", cells.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match rows.as_slice() {
        [] => Err(NotOneValue::NoRow),
        [row] if row.len() == 1 => Ok(row[0].clone()),
        [row] => Err(NotOneValue::Columns {
            n: row.len(),
            shown: shown(rows),
        }),
        _ => Err(NotOneValue::Rows {
            n: rows.len(),
            shown: shown(rows),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::one_value;

    fn v(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn exactly_one_row_with_one_column() {
        assert_eq!(one_value(&vec![vec![v("2")]]), Ok(v("2")));
        assert_eq!(one_value(&vec![vec![None]]), Ok(None));
        let two_rows = one_value(&vec![vec![v("2")], vec![v("1")]]).expect_err("refused");
        assert_eq!(two_rows.to_string(), "2 rows: (2), (1)");
        let two_cols = one_value(&vec![vec![v("1"), v("0")]]).expect_err("refused");
        assert_eq!(two_cols.to_string(), "2 columns: (1, 0)");
        assert!(
            one_value(&vec![])
                .expect_err("refused")
                .to_string()
                .starts_with("no row")
        );
    }
}

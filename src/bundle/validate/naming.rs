//! `[database] name / naming / aside`: how the database of each version is named.

use super::{MAX_IDENTIFIER_BYTES, Validator};
use crate::bundle::Naming;
use crate::bundle::manifest::{RawDatabase, RawManifest};

impl Validator<'_> {
    pub(super) fn naming(&mut self, raw: &RawManifest) -> Option<Naming> {
        let db = raw.database.get_ref();
        let name = db.name.get_ref().trim().to_owned();
        let naming = match db.naming.get_ref().as_str() {
            "versioned" => self.versioned_naming(db, &name)?,
            "fixed" => self.fixed_naming(db, &name)?,
            other => {
                self.problem(
                    &db.naming,
                    format!(
                        "database.naming \"{other}\" is not known: use \"versioned\" or \"fixed\""
                    ),
                );
                return None;
            }
        };
        self.check_name_length(db, &name, &naming);
        Some(naming)
    }

    /// `naming = "versioned"`: one name pattern with `{major}`, no aside.
    fn versioned_naming(&mut self, db: &RawDatabase, name: &str) -> Option<Naming> {
        if !name.contains("{major}") {
            self.problem(
                &db.name,
                format!("database.name \"{name}\" must contain {{major}} with naming = \"versioned\" (e.g. \"clinic_v{{major}}\")"),
            );
            return None;
        }
        if let Some(aside) = &db.aside {
            self.problem(
                aside,
                "database.aside only applies to naming = \"fixed\"".into(),
            );
        }
        Some(Naming::Versioned {
            pattern: name.to_owned(),
        })
    }

    /// `naming = "fixed"`: one fixed name, and an aside pattern with `{major}` for old versions.
    fn fixed_naming(&mut self, db: &RawDatabase, name: &str) -> Option<Naming> {
        if name.contains('{') {
            self.problem(
                &db.name,
                format!("database.name \"{name}\" is the one fixed name with naming = \"fixed\": it cannot contain a {{…}} pattern"),
            );
            return None;
        }
        let aside = db
            .aside
            .as_ref()
            .map_or_else(|| "{name}_v{major}".to_owned(), |a| a.get_ref().clone());
        if !aside.contains("{major}") {
            if let Some(a) = &db.aside {
                self.problem(a, format!("database.aside \"{aside}\" must contain {{major}} so that each old version gets its own name"));
            }
            return None;
        }
        Some(Naming::Fixed {
            name: name.to_owned(),
            aside,
        })
    }

    /// The longest name the naming produces must still fit a PostgreSQL identifier.
    fn check_name_length(&mut self, db: &RawDatabase, name: &str, naming: &Naming) {
        let sample = naming
            .aside_for(99_999)
            .unwrap_or_else(|| naming.name_for(99_999));
        if name.is_empty() || sample.len() > MAX_IDENTIFIER_BYTES {
            self.problem(
                &db.name,
                format!("database name \"{name}\" is empty or longer than {MAX_IDENTIFIER_BYTES} bytes once the version is filled in"),
            );
        }
    }
}

//! The measured answer to "was the source database changed?": read at the start of the plan
//! step, before pgstep runs anything on the source, and again at the end of the failure path;
//! pgstep's own banner writes are the only rows it may have written, and are subtracted.

use super::run::Run;
use crate::checklist::{BackupOutput, PlanKind, SourceVerdict, source_verdict};
use crate::db::{banner, source_check};

impl Run {
    /// The schemas the application owns (the bundle's), where the reading looks.
    fn app_schemas(&self) -> Vec<String> {
        self.spec
            .bundle
            .as_ref()
            .map(|b| b.schemas.clone())
            .unwrap_or_default()
    }

    /// Reads the source before anything runs on it (an upgrade's plan step).
    pub(super) fn read_source_before(&mut self, db: &str) {
        if self.spec.kind != PlanKind::Upgrade {
            return;
        }
        let schemas = self.app_schemas();
        let reading = source_check::read(&self.spec.server, db, &schemas);
        self.source_before = Some((db.to_owned(), reading));
    }

    /// Reads the source again, once the failure path has undone what it could, and compares.
    /// None when the run never read a source database.
    pub(super) fn source_verdict(&mut self) -> Option<SourceVerdict> {
        let (db, before) = self.source_before.as_ref()?;
        let db = db.clone();
        let before = match before {
            Ok(b) => b.clone(),
            Err(why) => {
                return Some(SourceVerdict::Unknown {
                    db,
                    why: format!("pgstep could not read its state at the start ({why})"),
                });
            }
        };
        let schemas = self.app_schemas();
        let after = match source_check::read(&self.spec.server, &db, &schemas) {
            Ok(a) => a,
            Err(why) => {
                return Some(SourceVerdict::Unknown {
                    db,
                    why: format!("pgstep could not read its state at the end ({why})"),
                });
            }
        };
        let backup = match &self.backup {
            Some(BackupOutput::Taken { path, .. }) => Some(path.clone()),
            _ => None,
        };
        Some(source_verdict(
            &db,
            &before,
            &after,
            &banner::rows_written(&db),
            backup,
        ))
    }
}

//! The first look at the server that every plan starts with — `pgstep plan`, and the plan steps
//! of `pgstep upgrade`, `rehearse` and `fixup`: the server's version checked against the bundle,
//! the application database found (named, or the newest the bundle's naming finds), its size,
//! and the version it is at. Then, without the server, what to do from there.
//!
//! The read comes in two parts because the upgrade does something between them (it reads the
//! source's state before it opens a session there, so that the run's last word on the source is
//! measured against a state nothing of pgstep's has touched): [`locate`], on the maintenance
//! connection, then [`Located::read_version`], in a session on the database found. Both take
//! the caller's connections: the executor opens them its way, `pgstep plan` read-only.
//!
//! The plan functions ([`plan_upgrade`], [`fixups`], [`to_create`]) are pure; [`in_the_way`]
//! and [`load_scripts`] read what the plan names.

use postgres::Client;

use crate::bundle::{Bundle, Fixup, Version};
use crate::conn::ConnSettings;
use crate::db::DbError;
use crate::db::clone::{database_exists, database_size};
use crate::db::version::read_version;
use crate::engine::plan::{self, Mode, PlanError, UpgradePlan};
use crate::engine::{Context, EngineError, check_server_version, find_source, show_server_version};
use crate::script::Script;

/// The server and the application database, as found before a plan is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    /// `server_version_num`, e.g. 170002.
    pub server_version_num: u32,
    /// The application database (the source of an upgrade, the database a fixup changes).
    pub source: String,
    /// Its size in bytes (0 if the server reports a negative one).
    pub size: u64,
    /// The version its version query reports.
    pub current: Version,
}

impl Survey {
    /// The server's version as people write it: `17.2`, `9.6.24`.
    pub fn server_version(&self) -> String {
        show_server_version(self.server_version_num)
    }
}

/// The first part of a [`Survey`]: everything but the application's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub server_version_num: u32,
    pub source: String,
    pub size: u64,
}

/// What the plan is asked for (beyond the database, which [`locate`] takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// `--to`; `None`: the latest the bundle reaches.
    pub to: Option<Version>,
    pub mode: Mode,
}

/// Why no survey or plan could be made. [`SurveyError::refuses`] tells a refusal (nothing was
/// wrong with the server; the operator must change something) from a failure.
#[derive(Debug, thiserror::Error)]
pub enum SurveyError {
    /// The server is too old for the bundle, no database of the application was found, or the
    /// server could not be asked.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A connection or a catalog query failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The database named (or found) does not exist.
    #[error(
        "database \"{database}\" does not exist on {server}: check the name (psql -l lists them)"
    )]
    Missing { database: String, server: String },
    /// The bundle's version query failed or returned no version ([`DbError::Refused`]), or the
    /// session it ran in failed.
    #[error(transparent)]
    Version(DbError),
    /// No upgrade from the version found (or to the one asked for).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// `--to` of a fixup outside the database's major version, or behind it.
    #[error(
        "--to {to}: \"{database}\" is at {current}; fixups go forward within major version {} (major versions come by pgstep upgrade)",
        current.major
    )]
    FixupTarget {
        to: Version,
        database: String,
        current: Version,
    },
    /// The bundle has no fixup for the database's major version.
    #[error("bundle \"{bundle}\" has no fixups for version {major}: nothing to do")]
    NoFixups { bundle: String, major: u32 },
}

impl SurveyError {
    /// Whether this is a refusal (the executor's `refused`) rather than a failure: a missing
    /// database, a version query that is refused, a fixup target or bundle without fixups. A
    /// server too old, or a plan that cannot be made, count as failures there (as they did).
    pub fn refuses(&self) -> bool {
        matches!(
            self,
            SurveyError::Missing { .. }
                | SurveyError::Version(DbError::Refused(_))
                | SurveyError::FixupTarget { .. }
                | SurveyError::NoFixups { .. }
        )
    }

    /// Where in a script, when a script is to blame (one that cannot be loaded with the run's
    /// placeholder values).
    pub fn location(&self) -> Option<&crate::script::Location> {
        match self {
            SurveyError::Engine(e) => e.location(),
            _ => None,
        }
    }
}

/// On the maintenance connection: checks the server's version against the bundle, finds the
/// application database (`database`, or the newest the bundle's naming finds), checks that it
/// exists and measures it.
pub fn locate(
    maint: &mut Client,
    bundle: &Bundle,
    server: &ConnSettings,
    database: Option<&str>,
) -> Result<Located, SurveyError> {
    let server_version_num = check_server_version(maint, bundle)?;
    let source = match database {
        Some(d) => d.to_owned(),
        None => find_source(maint, bundle)?,
    };
    if !database_exists(maint, &source)? {
        return Err(SurveyError::Missing {
            database: source,
            server: server.host_display(),
        });
    }
    let size = u64::try_from(database_size(maint, &source)?).unwrap_or(0);
    Ok(Located {
        server_version_num,
        source,
        size,
    })
}

impl Located {
    /// In a session on the database found: the version the bundle's version query reports.
    pub fn read_version(
        self,
        session: &mut Client,
        bundle: &Bundle,
    ) -> Result<Survey, SurveyError> {
        let current = read_version(session, &bundle.version_query, &self.source)
            .map_err(SurveyError::Version)?;
        Ok(Survey {
            server_version_num: self.server_version_num,
            source: self.source,
            size: self.size,
            current,
        })
    }
}

/// The upgrade of the database surveyed: its steps and the databases involved.
pub fn plan_upgrade(
    bundle: &Bundle,
    survey: &Survey,
    request: &Request,
) -> Result<UpgradePlan, SurveyError> {
    Ok(plan::plan_upgrade(
        bundle,
        &survey.source,
        survey.current,
        request.to,
        request.mode,
    )?)
}

/// The databases an upgrade creates or renames into, each once: the clone, the final name
/// (unless it is the source's, or the clone's; a rehearsal never makes it) and the name the
/// source is put aside under. `pgstep upgrade` refuses to start where one exists.
pub fn to_create(plan: &UpgradePlan, rehearsal: bool) -> Vec<&str> {
    let final_db =
        Some(&plan.final_db).filter(|f| **f != plan.source_db && **f != plan.work_db && !rehearsal);
    [Some(&plan.work_db), final_db, plan.aside_db.as_ref()]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect()
}

/// Those of [`to_create`] that exist already, in that order.
pub fn in_the_way(
    maint: &mut Client,
    plan: &UpgradePlan,
    rehearsal: bool,
) -> Result<Vec<String>, SurveyError> {
    let mut found = Vec::new();
    for name in to_create(plan, rehearsal) {
        if database_exists(maint, name)? {
            found.push(name.to_owned());
        }
    }
    Ok(found)
}

/// Every script of every step of `plan`, loaded (once) with the values of the real run:
/// `@DB_NAME@` is the clone, where the scripts run. `scripts[i]` are those of `plan.steps[i]`.
pub fn load_scripts(
    ctx: &Context<'_>,
    plan: &UpgradePlan,
) -> Result<Vec<Vec<Script>>, SurveyError> {
    let placeholders = ctx.placeholders(&plan.work_db)?;
    let scripts = plan
        .steps
        .iter()
        .map(|&i| ctx.reload(&ctx.bundle.steps[i].scripts, &placeholders))
        .collect::<Result<_, _>>()?;
    Ok(scripts)
}

/// The fixups of the database surveyed, up to `to`: those of its major version, in order.
pub fn fixups(
    bundle: &Bundle,
    survey: &Survey,
    to: Option<Version>,
) -> Result<Vec<Fixup>, SurveyError> {
    let current = survey.current;
    if let Some(to) = to
        && (to.major != current.major || to < current)
    {
        return Err(SurveyError::FixupTarget {
            to,
            database: survey.source.clone(),
            current,
        });
    }
    let fixups: Vec<Fixup> = bundle
        .fixups_of(current.major)
        .filter(|f| to.is_none_or(|t| f.version <= t))
        .cloned()
        .collect();
    if fixups.is_empty() {
        return Err(SurveyError::NoFixups {
            bundle: bundle.name.clone(),
            major: current.major,
        });
    }
    Ok(fixups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(final_db: &str, aside: Option<&str>) -> UpgradePlan {
        UpgradePlan {
            from: Version::new(1, 0),
            to: Version::new(2, 0),
            steps: vec![0],
            source_db: "clinic".into(),
            work_db: "clinic_v2".into(),
            final_db: final_db.into(),
            aside_db: aside.map(str::to_owned),
        }
    }

    #[test]
    fn an_upgrade_creates_the_clone_then_the_final_and_aside_names_each_once() {
        assert_eq!(to_create(&plan("clinic_v2", None), false), ["clinic_v2"]);
        assert_eq!(
            to_create(&plan("clinic", Some("clinic_1")), false),
            ["clinic_v2", "clinic_1"]
        );
        assert_eq!(
            to_create(&plan("clinic_new", None), false),
            ["clinic_v2", "clinic_new"]
        );
        assert_eq!(to_create(&plan("clinic_new", None), true), ["clinic_v2"]);
    }

    fn survey(current: Version) -> Survey {
        Survey {
            server_version_num: 170_002,
            source: "clinic_v2".into(),
            size: 0,
            current,
        }
    }

    #[test]
    fn a_fixup_goes_forward_within_the_major_version() {
        let bundle = crate::bundle::load(&crate::sample::source_dir()).expect("sample bundle");
        let found = fixups(&bundle, &survey(Version::new(2, 0)), None).expect("fixups");
        assert_eq!(
            found.iter().map(|f| f.version).collect::<Vec<_>>(),
            [Version::new(2, 1)]
        );
        let back = fixups(
            &bundle,
            &survey(Version::new(2, 1)),
            Some(Version::new(2, 0)),
        )
        .expect_err("backwards");
        assert!(back.refuses());
        assert_eq!(
            back.to_string(),
            "--to 2: \"clinic_v2\" is at 2.1; fixups go forward within major version 2 (major versions come by pgstep upgrade)"
        );
        let none = fixups(&bundle, &survey(Version::new(1, 0)), None).expect_err("none");
        assert_eq!(
            none.to_string(),
            "bundle \"clinic\" has no fixups for version 1: nothing to do"
        );
        assert_eq!(survey(Version::new(1, 0)).server_version(), "17.2");
    }
}

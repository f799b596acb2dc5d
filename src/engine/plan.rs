//! What an upgrade will do, decided from the bundle and the detected version alone: which steps,
//! which database names. Pure, so every refusal is unit-tested without a server.

use serde::Serialize;

use crate::bundle::{Bundle, Naming, Version};

/// Where the upgrade runs: production refuses pre-release bundles, a rehearsal does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Production,
    Rehearsal,
}

/// An upgrade decided: from, to, the steps in order and the databases involved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpgradePlan {
    pub from: Version,
    pub to: Version,
    /// Indices into `bundle.steps`, in the order they run.
    pub steps: Vec<usize>,
    /// The database users have now; never modified by the upgrade.
    pub source_db: String,
    /// The clone the steps are applied to.
    pub work_db: String,
    /// The name users connect to afterwards.
    pub final_db: String,
    /// Fixed naming: where the old database goes at cut-over.
    pub aside_db: Option<String>,
}

/// Why an upgrade is refused before anything is done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "bundle \"{0}\" is marked pre-release: upgrading a production database with it is refused, because \
         a database upgraded by a release candidate has no official way to the final release. \
         Rehearse it instead (pgstep rehearse), or use the released bundle"
    )]
    PreRelease(String),
    #[error(
        "--to {0}: upgrades go to a major version (minor versions are reached with pgstep fixup)"
    )]
    MinorTarget(Version),
    #[error(
        "database \"{db}\" is at version {current}, already at or past {target}: there is nothing to upgrade"
    )]
    NothingToDo {
        db: String,
        current: Version,
        target: Version,
    },
    #[error(
        "version {current} of database \"{db}\" is older than this bundle's baseline {baseline}: this bundle cannot upgrade it"
    )]
    TooOld {
        db: String,
        current: Version,
        baseline: Version,
    },
    #[error(
        "version {current} of database \"{db}\" is newer than anything bundle \"{bundle}\" knows ({latest}): use a newer bundle"
    )]
    TooNew {
        db: String,
        current: Version,
        latest: Version,
        bundle: String,
    },
    #[error(
        "bundle \"{bundle}\" has no step from version {from}: it reaches {latest} at most, and major steps are never skipped"
    )]
    NoStep {
        bundle: String,
        from: u32,
        latest: Version,
    },
    #[error(
        "database \"{db}\" holds version {current}, but version {target} is to be named \"{db}\" too: \
         the database seems misnamed; rename it to \"{expected}\" or name the source with --database"
    )]
    NameClash {
        db: String,
        current: Version,
        target: Version,
        expected: String,
    },
}

/// Plans the upgrade of `source_db`, found at `current`, to `to` (default: the next major
/// version, N → N+1; a chain N → N+k is asked for explicitly).
pub fn plan_upgrade(
    bundle: &Bundle,
    source_db: &str,
    current: Version,
    to: Option<Version>,
    mode: Mode,
) -> Result<UpgradePlan, PlanError> {
    if bundle.pre_release && mode == Mode::Production {
        return Err(PlanError::PreRelease(bundle.name.clone()));
    }
    let latest = bundle.latest_major();
    let target = match to {
        Some(t) => t,
        None => current
            .next_major()
            .filter(|next| *next <= latest)
            .unwrap_or(latest),
    };
    if target.minor != 0 {
        return Err(PlanError::MinorTarget(target));
    }
    let db = source_db.to_owned();
    check_range(bundle, &db, current, target)?;
    let steps = step_chain(bundle, current, target)?;
    let (mut work_db, final_db, mut aside_db) = names(&bundle.naming, current, target);
    if mode == Mode::Rehearsal {
        // A copy of its own, named for what it is; nothing is renamed in a rehearsal.
        work_db = format!("{final_db}_pgstep_rehearsal");
        truncate_identifier(&mut work_db);
        aside_db = None;
    }
    if mode == Mode::Production
        && matches!(bundle.naming, Naming::Versioned { .. })
        && final_db == source_db
    {
        let expected = bundle.naming.name_for(current.major);
        return Err(PlanError::NameClash {
            db,
            current,
            target,
            expected,
        });
    }
    Ok(UpgradePlan {
        from: current,
        to: target,
        steps,
        source_db: source_db.to_owned(),
        work_db,
        final_db,
        aside_db,
    })
}

/// Refused unless `current` is within the bundle (from its baseline to its latest major
/// version) and below `target`.
fn check_range(
    bundle: &Bundle,
    db: &str,
    current: Version,
    target: Version,
) -> Result<(), PlanError> {
    let db = db.to_owned();
    if current.major < bundle.baseline.version.major {
        return Err(PlanError::TooOld {
            db,
            current,
            baseline: bundle.baseline.version,
        });
    }
    if current.major > bundle.latest_major().major {
        return Err(PlanError::TooNew {
            db,
            current,
            latest: bundle.latest(),
            bundle: bundle.name.clone(),
        });
    }
    if current.major >= target.major {
        return Err(PlanError::NothingToDo {
            db,
            current,
            target,
        });
    }
    Ok(())
}

/// The bundle's steps from `current` to `target`, one per major version (indices into
/// `bundle.steps`); major steps are never skipped.
fn step_chain(bundle: &Bundle, current: Version, target: Version) -> Result<Vec<usize>, PlanError> {
    (current.major..target.major)
        .map(|major| {
            bundle
                .steps
                .iter()
                .position(|s| s.from.major == major)
                .ok_or_else(|| PlanError::NoStep {
                    bundle: bundle.name.clone(),
                    from: major,
                    latest: bundle.latest_major(),
                })
        })
        .collect()
}

/// (clone, final name, aside name). With fixed naming the clone needs a name of its own until
/// cut-over; it says what it is, so that a sysadmin who finds it knows.
fn names(naming: &Naming, current: Version, target: Version) -> (String, String, Option<String>) {
    let final_db = naming.name_for(target.major);
    match naming {
        Naming::Versioned { .. } => (final_db.clone(), final_db, None),
        Naming::Fixed { name, .. } => {
            let mut work = format!("{name}_v{}_pgstep_new", target.major);
            truncate_identifier(&mut work);
            (work, final_db, naming.aside_for(current.major))
        }
    }
}

fn truncate_identifier(s: &mut String) {
    const MAX: usize = 63;
    while s.len() > MAX {
        s.pop();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::bundle::{Baseline, Step};

    fn v(s: &str) -> Version {
        s.parse().expect("version")
    }

    fn bundle(naming: Naming, steps: &[(u32, u32)]) -> Bundle {
        Bundle {
            root: "/b".into(),
            name: "clinic".into(),
            description: None,
            pre_release: false,
            min_server_version: None,
            naming,
            schemas: vec!["clinic".into()],
            version_query: "SELECT 1".into(),
            baseline: Baseline {
                version: v("1"),
                scripts: vec![],
            },
            steps: steps
                .iter()
                .map(|(f, t)| Step {
                    from: Version::new(*f, 0),
                    to: Version::new(*t, 0),
                    scripts: vec![],
                    single_transaction: false,
                })
                .collect(),
            fixups: vec![],
            fingerprints: BTreeMap::new(),
            prechecks: vec![],
            plausibility: vec![],
            banner: None,
            notify_channels: vec![],
            placeholders: BTreeMap::new(),
            session: vec![],
            sha256: String::new(),
        }
    }

    fn versioned() -> Naming {
        Naming::Versioned {
            pattern: "clinic_v{major}".into(),
        }
    }

    #[test]
    fn plans_one_step_to_the_next_major_by_default_from_any_minor() {
        let b3 = bundle(versioned(), &[(1, 2), (2, 3)]);
        let p = plan_upgrade(&b3, "clinic_v1", v("1.3"), None, Mode::Production).expect("plan");
        assert_eq!((p.from, p.to, p.steps.clone()), (v("1.3"), v("2"), vec![0]));
        assert_eq!(
            (p.work_db.as_str(), p.final_db.as_str(), p.aside_db),
            ("clinic_v2", "clinic_v2", None)
        );
    }

    #[test]
    fn chains_consecutive_steps_one_at_a_time() {
        let b = bundle(versioned(), &[(1, 2), (2, 3), (3, 4)]);
        let p =
            plan_upgrade(&b, "clinic_v2", v("2"), Some(v("4")), Mode::Production).expect("plan");
        assert_eq!(p.steps, vec![1, 2]);
        assert_eq!(p.final_db, "clinic_v4");
    }

    #[test]
    fn fixed_naming_works_on_a_clone_and_puts_the_old_database_aside() {
        let b = bundle(
            Naming::Fixed {
                name: "omero".into(),
                aside: "{name}_v{major}".into(),
            },
            &[(1, 2)],
        );
        let p = plan_upgrade(&b, "omero", v("1"), None, Mode::Production).expect("plan");
        assert_eq!(p.work_db, "omero_v2_pgstep_new");
        assert_eq!(p.final_db, "omero");
        assert_eq!(p.aside_db.as_deref(), Some("omero_v1"));
    }

    #[test]
    fn refusals() {
        let b = bundle(versioned(), &[(1, 2), (2, 3)]);
        let plan = |db: &str, cur: &str, to: Option<&str>| {
            plan_upgrade(&b, db, v(cur), to.map(v), Mode::Production)
        };
        assert!(matches!(
            plan("clinic_v3", "3", None),
            Err(PlanError::NothingToDo { .. })
        ));
        assert!(matches!(
            plan("clinic_v2", "2", Some("2")),
            Err(PlanError::NothingToDo { .. })
        ));
        assert!(matches!(
            plan("clinic_v4", "4", None),
            Err(PlanError::TooNew { .. })
        ));
        assert!(matches!(
            plan("clinic_v0", "0", None),
            Err(PlanError::TooOld { .. })
        ));
        assert!(matches!(
            plan("clinic_v1", "1", Some("2.1")),
            Err(PlanError::MinorTarget(_))
        ));
        assert!(matches!(
            plan("clinic_v1", "1", Some("5")),
            Err(PlanError::NoStep { from: 3, .. })
        ));
        assert!(matches!(
            plan("clinic_v2", "1", Some("2")),
            Err(PlanError::NameClash { .. })
        ));
    }

    #[test]
    fn pre_release_bundles_are_for_rehearsals_only() {
        let mut b = bundle(versioned(), &[(1, 2)]);
        b.pre_release = true;
        let err =
            plan_upgrade(&b, "clinic_v1", v("1"), None, Mode::Production).expect_err("refused");
        assert!(err.to_string().contains("pre-release"), "{err}");
        assert!(plan_upgrade(&b, "clinic_v1", v("1"), None, Mode::Rehearsal).is_ok());
    }
}

//! The engine: upgrade, fixup and bootstrap, sequenced from the operations in `db`.
//!
//! Callable as a library; reports through an [`Observer`]; never prints, never reads the
//! terminal. Every refusal happens before anything is changed; every failure after a change
//! undoes what it can and says what it undid.

pub mod bootstrap;
pub mod plan;
pub mod restore;

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use postgres::Client;

use crate::bundle::{Bundle, Naming, Step, Version};
use crate::conn::ConnSettings;
use crate::db::clone::database_exists;
use crate::db::runner::{RunError, RunStats, run_script_cancellable};
use crate::db::version::read_version;
use crate::db::{DbError, Session};
use crate::events::{Event, Level, Observer, log, phase};
use crate::script::{self, Location, Placeholder, PlaceholderKind, Placeholders, Script};

/// How long sessions that are just ending may take to go before they count as connected users.
pub const SESSION_GRACE: Duration = Duration::from_secs(3);

/// Why the engine stopped.
#[derive(Debug)]
pub enum EngineError {
    /// Refused before anything was changed (a guard, a check, bad input).
    Refused(String),
    /// Failed after changes began; `undone` says what was put back.
    Failed(Failure),
    /// A script could not be loaded with the run's placeholder values (nothing was changed).
    Script { at: Location, message: String },
}

#[derive(Debug, Default)]
pub struct Failure {
    pub what: String,
    pub undone: Vec<String>,
    pub advice: Vec<String>,
    /// Where in a script, when a script stopped.
    pub at: Option<Location>,
}

impl EngineError {
    /// Where in a script it happened, as data, when a script is to blame.
    pub fn location(&self) -> Option<&Location> {
        match self {
            EngineError::Refused(_) => None,
            EngineError::Failed(f) => f.at.as_ref(),
            EngineError::Script { at, .. } => Some(at),
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Refused(m) => write!(f, "{m}"),
            EngineError::Script { at, message } => write!(f, "{at}: {message}"),
            EngineError::Failed(fail) => {
                write!(f, "{}", fail.what)?;
                if !fail.undone.is_empty() {
                    write!(f, "\nWhat pgstep undid:")?;
                    for u in &fail.undone {
                        write!(f, "\n  - {u}")?;
                    }
                }
                for a in &fail.advice {
                    write!(f, "\n{a}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for EngineError {}

impl From<DbError> for EngineError {
    fn from(e: DbError) -> Self {
        EngineError::Refused(e.to_string())
    }
}

/// What every engine operation needs: the bundle, where the server is, the operator's
/// placeholder values, and who to tell.
pub struct Context<'a> {
    pub bundle: &'a Bundle,
    /// Connection settings for the server; the database name is chosen per operation.
    pub server: &'a ConnSettings,
    /// `--set NAME=VALUE` from the command line.
    pub overrides: &'a BTreeMap<String, String>,
    pub obs: &'a mut dyn Observer,
}

impl Context<'_> {
    /// A session on an application database, with the bundle's session settings.
    pub fn session(&self, db: &str) -> Result<Session, DbError> {
        Session::open(&self.server.with_dbname(db), &self.bundle.session)
    }

    /// The maintenance connection (database `postgres`, or `template1` where that is missing)
    /// used to create, rename and drop databases.
    pub fn maintenance(&self) -> Result<Client, DbError> {
        crate::db::maintenance(self.server)
    }

    /// The bundle's placeholders, pgstep's own (`DB_NAME`, `DB_USER`) and the operator's values.
    pub fn placeholders(&self, db: &str) -> Result<Placeholders, EngineError> {
        let mut all = self.bundle.placeholders.clone();
        for (name, value) in [("DB_NAME", db), ("DB_USER", self.server.user())] {
            all.insert(
                name.to_owned(),
                Placeholder {
                    kind: PlaceholderKind::Identifier,
                    value: value.to_owned(),
                },
            );
        }
        for (name, value) in self.overrides {
            let Some(p) = all.get_mut(name) else {
                return Err(EngineError::Refused(format!(
                    "--set {name}=…: bundle \"{}\" defines no placeholder @{name}@ (it has: {})",
                    self.bundle.name,
                    self.bundle
                        .placeholders
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            p.value.clone_from(value);
        }
        Ok(all)
    }

    /// Scripts loaded again with the real placeholder values, before anything is changed.
    pub fn reload(
        &self,
        scripts: &[Script],
        placeholders: &Placeholders,
    ) -> Result<Vec<Script>, EngineError> {
        scripts
            .iter()
            .map(|s| {
                script::load_script(&self.bundle.root, &s.path, placeholders).map_err(|e| {
                    EngineError::Script {
                        at: e.at,
                        message: e.message,
                    }
                })
            })
            .collect()
    }

    pub fn info(&mut self, text: impl Into<String>) {
        log(self.obs, Level::Info, text);
    }
}

/// With versioned naming and no --database: the newest existing database the bundle names.
pub fn find_source(maint: &mut postgres::Client, bundle: &Bundle) -> Result<String, EngineError> {
    if let Naming::Fixed { name, .. } = &bundle.naming {
        return Ok(name.clone());
    }
    let last = bundle.latest_major().major;
    for major in (bundle.baseline.version.major..=last).rev() {
        let name = bundle.naming.name_for(major);
        if database_exists(maint, &name)? {
            return Ok(name);
        }
    }
    Err(EngineError::Refused(format!(
        "no database of {} found (looked for {} … {}): name it with --database",
        bundle.name,
        bundle.naming.name_for(bundle.baseline.version.major),
        bundle.naming.name_for(last)
    )))
}

/// Refuses a server older than the bundle supports.
pub fn check_server_version(client: &mut Client, bundle: &Bundle) -> Result<u32, EngineError> {
    let num = crate::fingerprint::server_version_num(client)
        .map_err(|e| DbError::query("read the server version", e))?;
    if let Some(min) = bundle.min_server_version
        && num < min
    {
        return Err(EngineError::Refused(format!(
            "bundle \"{}\" needs PostgreSQL {} or later; this server runs {}",
            bundle.name,
            show_server_version(min),
            show_server_version(num)
        )));
    }
    Ok(num)
}

pub fn show_server_version(num: u32) -> String {
    if num >= 100_000 {
        format!("{}.{}", num / 10_000, num % 10_000)
    } else {
        format!("{}.{}.{}", num / 10_000, num / 100 % 100, num % 100)
    }
}

/// Runs the bundle's read-only prechecks; any problem they find refuses the operation, listed.
pub fn run_prechecks(ctx: &mut Context<'_>, client: &mut Client) -> Result<(), EngineError> {
    const SHOWN: usize = 10;
    let mut report = Vec::new();
    for check in &ctx.bundle.prechecks {
        let problems = crate::db::checks::run_precheck(client, &check.script).map_err(|e| {
            EngineError::Refused(format!("precheck \"{}\" could not run: {e}", check.name))
        })?;
        let detail = match problems.len() {
            0 => "no problem found".to_owned(),
            n => format!(
                "{n} problem(s):\n{}{}",
                problems
                    .iter()
                    .take(SHOWN)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n"),
                if n > SHOWN { "\n…" } else { "" }
            ),
        };
        ctx.obs.event(Event::Check {
            name: format!("precheck: {}", check.name),
            ok: problems.is_empty(),
            detail: detail.clone(),
        });
        if !problems.is_empty() {
            report.push(format!("precheck \"{}\" found {detail}", check.name));
        }
    }
    if report.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Refused(format!(
            "{}\nCorrect these in the application's data, then run pgstep again (pgstep precheck runs only the checks).",
            report.join("\n")
        )))
    }
}

use crate::checklist::model::StepReport;

/// Why scripts did not apply (a step's, the baseline's) or their result is not what it must
/// be: the words for the operator, and where in a script when a script stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A script stopped: the server refused a statement, the connection was lost, the operator
    /// cancelled, a transaction was left open.
    #[error(transparent)]
    Script(#[from] RunError),
    /// A session could not be opened, or a query of pgstep's own failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The version marker is not where it must be, the single transaction did not commit, the
    /// schema is not the reference's.
    #[error("{0}")]
    Other(String),
}

impl ApplyError {
    /// Where in the script, when a script stopped.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ApplyError::Script(e) => Some(e.location()),
            ApplyError::Db(_) | ApplyError::Other(_) => None,
        }
    }

    /// Whether the operator's cancellation stopped the script (between two statements).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ApplyError::Script(RunError::Cancelled { .. }))
    }
}

/// Applies one major step to `db`, which must be at `step.from` before and at `step.to` after:
/// an out-of-order or re-applied step is refused, a script that forgets the marker is caught.
pub fn apply_step(
    ctx: &mut Context<'_>,
    step: &Step,
    scripts: &[Script],
    db: &str,
    cancel: &crate::cancel::Cancel,
) -> Result<StepReport, ApplyError> {
    let started = Instant::now();
    phase(ctx.obs, format!("step {} → {}", step.from, step.to));
    expect_major(ctx, db, step.from, "before")?;
    let mut total = RunStats::default();
    let mut shared = if step.single_transaction {
        let mut s = ctx.session(db)?;
        s.client
            .batch_execute("BEGIN")
            .map_err(|e| ApplyError::Other(crate::db::describe(&e)))?;
        Some(s)
    } else {
        None
    };
    for script in scripts {
        log(
            ctx.obs,
            Level::Info,
            format!("running {}", script.path.display()),
        );
        let stats = match shared.as_mut() {
            Some(s) => run_script_cancellable(s, script, ctx.obs, cancel),
            None => {
                // One session per file, as `psql -f` has: pg_temp objects live for the file.
                let mut s = ctx.session(db)?;
                run_script_cancellable(&mut s, script, ctx.obs, cancel)
            }
        }?;
        total.statements += stats.statements;
        total.skipped_blocks += stats.skipped_blocks;
    }
    if let Some(mut s) = shared {
        s.client.batch_execute("COMMIT").map_err(|e| {
            ApplyError::Other(format!(
                "COMMIT of the single-transaction step failed: {}",
                crate::db::describe(&e)
            ))
        })?;
    }
    expect_major(ctx, db, step.to, "after")?;
    Ok(StepReport {
        from: step.from,
        to: step.to,
        scripts: scripts.len(),
        statements: total.statements,
        skipped_blocks: total.skipped_blocks,
        elapsed: started.elapsed(),
    })
}

fn expect_major(
    ctx: &mut Context<'_>,
    db: &str,
    want: Version,
    when: &str,
) -> Result<Version, ApplyError> {
    let mut s = ctx.session(db)?;
    let found = read_version(&mut s.client, &ctx.bundle.version_query, db)?;
    if found.major != want.major {
        return Err(ApplyError::Other(format!(
            "the version marker of \"{db}\" says {found} {when} step {} but should say {want}: \
             {}",
            if when == "before" {
                format!("{want} → {}", want.major + 1)
            } else {
                format!("{} → {want}", want.major.saturating_sub(1))
            },
            if when == "before" {
                "the step is out of order or was applied already, so it was not run"
            } else {
                "the step's scripts did not move the marker; the bundle is faulty"
            }
        )));
    }
    log(
        ctx.obs,
        Level::Info,
        format!("version marker {when} the step: {found}"),
    );
    Ok(found)
}

// Durations as seconds in JSON: now in crate::format.
pub(crate) use crate::format::secs;

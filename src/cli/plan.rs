//! `pgstep plan`: the plan preview (see [`crate::preview`]), written for review before the night,
//! from a [`crate::survey`] of the server.
//!
//! Everything it does on the server is a read, and the server enforces it: every connection is
//! opened with `default_transaction_read_only` on (a startup option, so it holds from the first
//! query), the version is read in a `READ ONLY` transaction, and the blocks' conditions are all
//! decided in one `READ ONLY`, `REPEATABLE READ` transaction, so that they see one snapshot. It
//! takes no lock file and writes no journal: there is nothing to undo.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use postgres::types::ToSql;
use postgres::{Client, IsolationLevel, Transaction};

use super::plan_cmd::prepare;
use super::{Target, fail};
use crate::bundle::Bundle;
use crate::checklist::PlanKind;
use crate::conn::{ConnArgs, ConnSettings};
use crate::db::{DbError, describe};
use crate::engine::Context;
use crate::engine::plan::{Mode, UpgradePlan};
use crate::events::Event;
use crate::exit;
use crate::preview::{self, Facts, Undecided};
use crate::script::{Condition, Script};
use crate::survey::{self, Request, SurveyError};

/// The preview and what the caller says about it.
struct Built {
    text: String,
    file_name: String,
    /// Conditions whose query failed (shown in the file as "could not be decided now").
    undecided: usize,
}

pub(super) fn plan(conn: &ConnArgs, target: &Target, output: Option<&Path>) -> i32 {
    let (bundle, spec) = match prepare(conn, target, PlanKind::Upgrade) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let server = read_only(&spec.server);
    let built = match build(
        &bundle,
        &server,
        &spec.overrides,
        spec.database.as_deref(),
        spec.to,
        &spec.data_dir,
    ) {
        Ok(b) => b,
        Err(e) => return fail(exit::REFUSED, &e.to_string()),
    };
    if built.undecided > 0 {
        errln!(
            "pgstep: warning: {} conditional block(s) could not be decided now; the preview says why",
            built.undecided
        );
    }
    let default_path = spec.data_dir.join("plans").join(&built.file_name);
    match write(&built.text, output, &default_path) {
        Ok(Some(path)) => {
            outln!("{}", path.display());
            exit::SUCCESS
        }
        Ok(None) => exit::SUCCESS,
        Err(e) => fail(
            exit::FAILED,
            &format!("could not write the plan preview: {e}"),
        ),
    }
}

/// The same server with every transaction read-only unless it says otherwise: appended to the
/// startup options, after the operator's own (the last `-c` of a setting wins).
fn read_only(server: &ConnSettings) -> ConnSettings {
    let mut s = server.clone();
    let ours = "-c default_transaction_read_only=on";
    s.options = Some(match s.options.take().filter(|o| !o.trim().is_empty()) {
        Some(theirs) => format!("{theirs} {ours}"),
        None => ours.to_owned(),
    });
    s
}

/// Why `pgstep plan` wrote no preview (every case is a refusal: nothing was changed).
#[derive(Debug, thiserror::Error)]
enum PlanFailure {
    #[error(transparent)]
    Survey(#[from] SurveyError),
    /// A statement of the read-only session failed.
    #[error("{0}")]
    Server(String),
}

impl From<DbError> for PlanFailure {
    fn from(e: DbError) -> Self {
        PlanFailure::Survey(e.into())
    }
}

impl From<postgres::Error> for PlanFailure {
    fn from(e: postgres::Error) -> Self {
        PlanFailure::Server(describe(&e))
    }
}

/// Everything read from the server, then the text built from it.
fn build(
    bundle: &Bundle,
    server: &ConnSettings,
    overrides: &std::collections::BTreeMap<String, String>,
    database: Option<&str>,
    to: Option<crate::bundle::Version>,
    data_dir: &Path,
) -> Result<Built, PlanFailure> {
    // Nothing here reports progress: loading and deciding is quick, and with `--output -`
    // stdout must carry the preview alone.
    let mut quiet = |_: Event| {};
    let ctx = Context {
        bundle,
        server,
        overrides,
        obs: &mut quiet,
    };
    let mut maint = ctx.maintenance()?;
    let located = survey::locate(&mut maint, bundle, server, database)?;
    let mut session = ctx.session(&located.source)?;
    // The bundle's [session] settings were applied after the startup options: make sure none
    // of them turned read-only off.
    session
        .client
        .batch_execute("SET default_transaction_read_only = on")?;
    let survey = located.read_version(&mut session.client, bundle)?;
    let request = Request {
        to,
        mode: Mode::Production,
    };
    let plan = survey::plan_upgrade(bundle, &survey, &request)?;
    let notes = survey::in_the_way(&mut maint, &plan, false)?
        .iter()
        .map(|name| in_the_way_note(name))
        .collect();
    let downtime = expected_downtime(data_dir, bundle, &plan, survey.size);
    drop(maint);
    let scripts = survey::load_scripts(&ctx, &plan)?;
    let facts = Facts {
        server: server.host_display(),
        user: server.user().to_owned(),
        server_version: survey.server_version(),
        pgstep_version: env!("CARGO_PKG_VERSION").to_owned(),
        generated_at: chrono::Utc::now(),
        notes,
        downtime,
    };
    let (text, undecided) = render_deciding(&mut session.client, bundle, &plan, &scripts, &facts)?;
    Ok(Built {
        text,
        file_name: preview::file_name(&plan, facts.generated_at),
        undecided,
    })
}

/// What the latest rehearsal of this upgrade predicts for a database of `size` bytes, in words.
fn expected_downtime(data_dir: &Path, bundle: &Bundle, plan: &UpgradePlan, size: u64) -> String {
    let latest = crate::rehearsal::latest(
        data_dir,
        &bundle.name,
        &plan.from.major.to_string(),
        &plan.to.major.to_string(),
    );
    match latest {
        Some(r) => format!(
            "about {:.0} s for this database ({:.2} GB), from the rehearsal of {} on {} ({}, {:.2} GB), scaled by size",
            r.predicted_downtime(Some(size)),
            size as f64 / 1e9,
            r.database,
            r.server,
            r.at,
            r.database_size as f64 / 1e9
        ),
        None => "not known yet: `pgstep rehearse` measures it (on a test server, or on a throw-away copy here)".into(),
    }
}

/// A database the upgrade would create or rename into exists already: the real run refuses
/// to start then, and the reader should know before the night.
fn in_the_way_note(name: &str) -> String {
    format!(
        "database \"{name}\" already exists: `pgstep upgrade` will refuse to start until \
         it is dropped or renamed (pgstep never overwrites a database)"
    )
}

/// Renders the preview, deciding every condition in one read-only snapshot of the source.
fn render_deciding(
    client: &mut Client,
    bundle: &Bundle,
    plan: &UpgradePlan,
    scripts: &[Vec<Script>],
    facts: &Facts,
) -> Result<(String, usize), PlanFailure> {
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()?;
    let mut undecided = 0;
    let text = preview::render(bundle, plan, scripts, facts, &mut |c| {
        let decided = decide(&mut tx, c);
        if decided.is_err() {
            undecided += 1;
        }
        decided
    });
    // Read-only: nothing to keep.
    let _ = tx.rollback();
    Ok((text, undecided))
}

/// One condition, by the same query the run uses, in a savepoint of its own: a query that
/// fails does not abort the snapshot the other conditions are decided in.
fn decide(tx: &mut Transaction<'_>, condition: &Condition) -> Result<bool, Undecided> {
    let (sql, params) = condition.query();
    let params: Vec<&(dyn ToSql + Sync)> =
        params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let mut savepoint = tx.transaction()?;
    let row = savepoint.query_one(sql.as_str(), &params);
    let _ = savepoint.rollback();
    let row = row?;
    // NULL counts as false, as in the run (db::runner).
    Ok(row.get::<_, Option<bool>>(0).unwrap_or(false))
}

/// Writes the preview: to stdout for `-` (returns `None`), else to `output` or the default
/// path, through a temporary file renamed into place so that a reader never sees half a file.
fn write(
    text: &str,
    output: Option<&Path>,
    default_path: &Path,
) -> std::io::Result<Option<PathBuf>> {
    let path = match output {
        Some(p) if p == Path::new("-") => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            return Ok(None);
        }
        Some(p) => p.to_path_buf(),
        None => default_path.to_path_buf(),
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if output.is_none() {
        // pgstep's own plans directory: private, like everything under the data directory.
        if let Some(data_dir) = dir.parent() {
            crate::paths::private_dir(data_dir)?;
        }
        crate::paths::private_dir(&dir)?;
    } else {
        std::fs::create_dir_all(&dir)?;
    }
    // tempfile creates the file 0600; it keeps that mode under its final name.
    let mut tmp = tempfile::Builder::new()
        .prefix(".pgstep-plan-")
        .tempfile_in(&dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No variables, no home files: the machine's PG* settings must not leak into the test.
    struct NoEnv;

    impl crate::conn::Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
        fn home(&self) -> Option<PathBuf> {
            None
        }
        fn os_user(&self) -> Option<String> {
            Some("alice".into())
        }
    }

    fn settings(options: Option<&str>) -> ConnSettings {
        let args = ConnArgs {
            host: Some("/tmp".into()),
            port: Some("5432".into()),
            user: Some("postgres".into()),
            dbname: Some("postgres".into()),
        };
        let (mut s, _) = ConnSettings::resolve(&args, &NoEnv).expect("settings");
        s.options = options.map(str::to_owned);
        s
    }

    #[test]
    fn preview_connections_are_read_only_after_the_operators_own_options() {
        let s = read_only(&settings(None));
        assert_eq!(
            s.options.as_deref(),
            Some("-c default_transaction_read_only=on")
        );
        let s = read_only(&settings(Some("-c search_path=clinic")));
        assert_eq!(
            s.options.as_deref(),
            Some("-c search_path=clinic -c default_transaction_read_only=on")
        );
        // Kept for every database the command connects to.
        assert_eq!(s.with_dbname("clinic_v1").options, s.options);
    }

    #[test]
    fn preview_is_written_whole_to_the_file_or_stdout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let default = dir.path().join("plans").join("x.md");
        let written = write("# hello\n", None, &default).expect("write");
        assert_eq!(written.as_deref(), Some(default.as_path()));
        assert_eq!(
            std::fs::read_to_string(&default).expect("read"),
            "# hello\n"
        );
        let named = dir.path().join("mine.md");
        let written = write("# again\n", Some(&named), &default).expect("write");
        assert_eq!(written.as_deref(), Some(named.as_path()));
        assert_eq!(
            write("", Some(Path::new("-")), &default).expect("stdout"),
            None
        );
    }
}

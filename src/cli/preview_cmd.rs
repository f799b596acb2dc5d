//! `pgstep plan`: the plan preview (see [`crate::preview`]), written for review before the night.
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
use crate::db::clone::database_exists;
use crate::db::describe;
use crate::db::version::read_version;
use crate::engine::plan::{Mode, UpgradePlan, plan_upgrade};
use crate::engine::{Context, check_server_version, find_source, show_server_version};
use crate::events::Event;
use crate::exit;
use crate::preview::{self, Facts};
use crate::script::{Condition, Script};

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
        Err(message) => return fail(exit::REFUSED, &message),
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

/// Everything read from the server, then the text built from it.
fn build(
    bundle: &Bundle,
    server: &ConnSettings,
    overrides: &std::collections::BTreeMap<String, String>,
    database: Option<&str>,
    to: Option<crate::bundle::Version>,
    data_dir: &Path,
) -> Result<Built, String> {
    // Nothing here reports progress: loading and deciding is quick, and with `--output -`
    // stdout must carry the preview alone.
    let mut quiet = |_: Event| {};
    let ctx = Context {
        bundle,
        server,
        overrides,
        obs: &mut quiet,
    };
    let mut maint = ctx.maintenance().map_err(|e| e.to_string())?;
    let version_num = check_server_version(&mut maint, bundle).map_err(|e| e.to_string())?;
    let source = match database {
        Some(d) => d.to_owned(),
        None => find_source(&mut maint, bundle).map_err(|e| e.to_string())?,
    };
    if !database_exists(&mut maint, &source).map_err(|e| e.to_string())? {
        return Err(format!(
            "database \"{source}\" does not exist on {}: check the name (psql -l lists them)",
            server.host_display()
        ));
    }
    let mut session = ctx.session(&source).map_err(|e| e.to_string())?;
    // The bundle's [session] settings were applied after the startup options: make sure none
    // of them turned read-only off.
    session
        .client
        .batch_execute("SET default_transaction_read_only = on")
        .map_err(|e| describe(&e))?;
    let current = read_version(&mut session.client, &bundle.version_query, &source)
        .map_err(|e| e.to_string())?;
    let plan =
        plan_upgrade(bundle, &source, current, to, Mode::Production).map_err(|e| e.to_string())?;
    let notes = in_the_way(&mut maint, &plan)?;
    let size = crate::db::clone::database_size(&mut maint, &source).map_err(|e| e.to_string())?;
    let downtime = expected_downtime(data_dir, bundle, &plan, u64::try_from(size).unwrap_or(0));
    drop(maint);
    let scripts = load_scripts(&ctx, &plan)?;
    let facts = Facts {
        server: server.host_display(),
        user: server.user().to_owned(),
        server_version: show_server_version(version_num),
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

/// Every script of every step, loaded with the values of the real run: `@DB_NAME@` is the
/// clone, where the scripts run.
fn load_scripts(ctx: &Context<'_>, plan: &UpgradePlan) -> Result<Vec<Vec<Script>>, String> {
    let placeholders = ctx.placeholders(&plan.work_db).map_err(|e| e.to_string())?;
    plan.steps
        .iter()
        .map(|&i| {
            ctx.reload(&ctx.bundle.steps[i].scripts, &placeholders)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// The databases the upgrade would create or rename into, where one exists already: the real
/// run refuses to start then, and the reader should know before the night.
fn in_the_way(maint: &mut Client, plan: &UpgradePlan) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    let names = [
        Some(&plan.work_db),
        Some(&plan.final_db).filter(|f| **f != plan.source_db && **f != plan.work_db),
        plan.aside_db.as_ref(),
    ];
    for name in names.into_iter().flatten() {
        if database_exists(maint, name).map_err(|e| e.to_string())? {
            notes.push(format!(
                "database \"{name}\" already exists: `pgstep upgrade` will refuse to start until \
                 it is dropped or renamed (pgstep never overwrites a database)"
            ));
        }
    }
    Ok(notes)
}

/// Renders the preview, deciding every condition in one read-only snapshot of the source.
fn render_deciding(
    client: &mut Client,
    bundle: &Bundle,
    plan: &UpgradePlan,
    scripts: &[Vec<Script>],
    facts: &Facts,
) -> Result<(String, usize), String> {
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .map_err(|e| describe(&e))?;
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
fn decide(tx: &mut Transaction<'_>, condition: &Condition) -> Result<bool, String> {
    let (sql, params) = condition.query();
    let params: Vec<&(dyn ToSql + Sync)> =
        params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let mut savepoint = tx.transaction().map_err(|e| describe(&e))?;
    let row = savepoint.query_one(sql.as_str(), &params);
    let _ = savepoint.rollback();
    let row = row.map_err(|e| describe(&e))?;
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

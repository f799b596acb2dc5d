//! The command line: raw flags (clap) turned into validated requests before anything connects.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::bundle::{self, Bundle, Version};
use crate::cancel::Cancel;
use crate::conn::{ConnArgs, ConnSettings, ProcessEnv};
use crate::engine::bootstrap::bootstrap;
use crate::engine::fixup::{BackupChoice, FixupOptions, fixup};
use crate::engine::restore::restore;
use crate::engine::upgrade::{UpgradeOptions, upgrade};
use crate::engine::{Context, EngineError, find_source, run_prechecks};
use crate::headless::Printer;
use crate::{demo, exit, fingerprint};

const AFTER_HELP: &str = "\
Connection options follow libpq (psql): -h -p -U -d, a postgres:// URI or key=value string in -d,
the PG* environment variables, ~/.pgpass and service= entries. Passwords are never taken on the
command line: use ~/.pgpass, PGPASSFILE or PGPASSWORD, or answer the prompt.

Exit codes: 0 success; 1 failed (what was changed was undone, the source is unchanged);
2 bad command line; 3 refused before anything was changed; 130 cancelled.";

#[derive(Debug, Parser)]
#[command(
    name = "pgstep",
    version,
    about = "Upgrade a PostgreSQL application database from version N to N+1, safely",
    after_help = AFTER_HELP,
    disable_help_flag = true
)]
pub struct Cli {
    /// Print help (-h is the host, as in psql)
    #[arg(long, action = ArgAction::Help, global = true)]
    help: Option<bool>,
    #[command(flatten)]
    conn: ConnOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct ConnOpts {
    /// Server host name or socket directory
    #[arg(short = 'h', long = "host", global = true, value_name = "HOST")]
    host: Option<String>,
    /// Server port
    #[arg(short = 'p', long = "port", global = true, value_name = "PORT")]
    port: Option<String>,
    /// User name to connect as
    #[arg(short = 'U', long = "username", global = true, value_name = "USER")]
    user: Option<String>,
    /// Database to connect to, or a postgres:// URI or key=value connection string
    #[arg(short = 'd', long = "dbname", global = true, value_name = "DBNAME|URI")]
    dbname: Option<String>,
}

#[derive(Debug, Args)]
struct Output {
    /// Print readable progress lines instead of opening the wizard
    #[arg(long)]
    headless: bool,
    /// Print one JSON event per line (implies --headless)
    #[arg(long)]
    json: bool,
    /// Confirm the manual checklist items (users informed, importers and backup jobs stopped,
    /// client packages ready)
    #[arg(long)]
    yes: bool,
}

/// Output options of commands that have no manual checklist to confirm.
#[derive(Debug, Args)]
struct HeadlessOutput {
    /// Print readable progress lines
    #[arg(long)]
    headless: bool,
    /// Print one JSON event per line (implies --headless)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a throw-away PostgreSQL cluster, load the sample clinic application at version 1 with
    /// data, upgrade it to version 2 and show the result
    Demo {
        /// Patients in the sample data
        #[arg(long, default_value_t = crate::sample::DEFAULT_PATIENTS)]
        patients: u64,
        /// Leave the cluster running afterwards and say how to connect
        #[arg(long)]
        keep: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Upgrade an application database to the next major version(s) by clone-and-upgrade
    Upgrade {
        #[command(flatten)]
        target: Target,
        /// Proceed although the source's schema fingerprint differs from the reference (recorded)
        #[arg(long)]
        override_schema_check: bool,
        /// Keep a failed clone for inspection instead of dropping it
        #[arg(long)]
        keep_failed: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Apply the bundle's fixups (minor versions) in place, after a verified backup
    Fixup {
        #[command(flatten)]
        target: Target,
        /// Run fixups already recorded with the same checksum again (they are idempotent)
        #[arg(long)]
        reapply: bool,
        /// Proceed although the schema fingerprint differs from the reference
        #[arg(long)]
        override_schema_check: bool,
        /// Directory for the backup taken before the fixups
        #[arg(long, value_name = "DIR")]
        backup_dir: Option<PathBuf>,
        /// Skip the backup; the reason is required and recorded
        #[arg(long, value_name = "REASON")]
        no_backup: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Run the bundle's read-only prechecks against the database (safe before the downtime)
    Precheck {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        output: Output,
    },
    /// Create a new database at a version by applying the bundle's baseline and steps
    Bootstrap {
        #[command(flatten)]
        target: Target,
        /// Keep the database if bootstrapping fails
        #[arg(long)]
        keep_failed: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Restore a backup pgstep took into a new database, verified against its recorded
    /// checksum and schema fingerprint
    Restore {
        /// The backup: a .dump file, a .dir directory, or its .json metadata file
        #[arg(value_name = "BACKUP")]
        backup: PathBuf,
        /// The new database to restore into (must not exist)
        #[arg(long, value_name = "NAME")]
        database: String,
        /// Parallel pg_restore jobs
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        jobs: u32,
        #[command(flatten)]
        output: HeadlessOutput,
    },
    /// Print a database's schema fingerprint; compare it with a bundle's references
    Fingerprint {
        /// The database (default: the one -d names)
        #[arg(long, value_name = "NAME")]
        database: Option<String>,
        /// Print the canonical schema text after the hash
        #[arg(long)]
        full: bool,
        /// Fingerprint the bundle's schemas and name the version whose reference matches
        #[arg(long, value_name = "DIR")]
        bundle: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct Target {
    /// The application's upgrade bundle (a directory with bundle.toml)
    #[arg(long, value_name = "DIR")]
    bundle: PathBuf,
    /// The application database (default: found from the bundle's naming)
    #[arg(long, value_name = "NAME")]
    database: Option<String>,
    /// The version to reach (upgrade: the next major version; bootstrap: the newest)
    #[arg(long, value_name = "VERSION")]
    to: Option<Version>,
    /// A placeholder's value for the scripts, overriding the bundle's (repeatable)
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    set: Vec<(String, String)>,
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(n, v)| (n.trim_matches('@').to_owned(), v.to_owned()))
        .ok_or_else(|| format!("\"{s}\" is not NAME=VALUE"))
}

/// Parses the command line, runs the command and returns the exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
        }
    };
    let conn = ConnArgs {
        host: cli.conn.host,
        port: cli.conn.port,
        user: cli.conn.user,
        dbname: cli.conn.dbname,
    };
    match cli.command {
        Command::Demo {
            patients,
            keep,
            output,
        } => {
            let mut printer = Printer::new(output.json);
            demo::run(&demo::DemoOptions { patients, keep }, &mut printer)
        }
        Command::Fingerprint {
            database,
            full,
            bundle,
        } => fingerprint_command(&conn, database, full, bundle),
        Command::Restore {
            backup,
            database,
            jobs,
            output,
        } => restore_command(&conn, &backup, &database, jobs, &output),
        Command::Upgrade {
            target,
            override_schema_check,
            keep_failed,
            output,
        } => with_target(&conn, &target, &output, true, |ctx| {
            let opts = UpgradeOptions {
                database: target.database.clone(),
                to: target.to,
                override_schema_check,
                keep_failed,
                rehearsal: false,
            };
            let outcome = upgrade(ctx, &opts)?;
            let summary = format!(
                "\nUpgraded \"{}\" from version {} to {} in {:.1} s. Users now use \"{}\"; \"{}\" is kept read-only.",
                outcome.plan.source_db,
                outcome.plan.from,
                outcome.plan.to,
                outcome.elapsed.as_secs_f64(),
                outcome.new_database,
                outcome.old_database
            );
            Ok((to_json(&outcome), summary))
        }),
        Command::Fixup {
            target,
            reapply,
            override_schema_check,
            backup_dir,
            no_backup,
            output,
        } => with_target(&conn, &target, &output, true, |ctx| {
            let database = match &target.database {
                Some(d) => d.clone(),
                None => find_source(&mut ctx.maintenance()?, ctx.bundle)?,
            };
            let backup = match (no_backup, backup_dir) {
                (Some(reason), None) if !reason.trim().is_empty() => BackupChoice::Skip { reason },
                (Some(_), None) => {
                    return Err(EngineError::Refused(
                        "--no-backup needs a reason, which is recorded".into(),
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(EngineError::Refused(
                        "--no-backup and --backup-dir contradict each other".into(),
                    ));
                }
                (None, dir) => {
                    BackupChoice::Into(dir.unwrap_or_else(crate::backup::default_backup_dir))
                }
            };
            let opts = FixupOptions {
                database,
                to: target.to,
                reapply,
                override_schema_check,
                backup,
            };
            let outcome = fixup(ctx, &opts)?;
            let summary = format!(
                "\n\"{}\" is at version {} (was {}); applied {} file(s), {} already recorded.",
                outcome.database,
                outcome.to,
                outcome.from,
                outcome.applied.len(),
                outcome.skipped.len()
            );
            Ok((to_json(&outcome), summary))
        }),
        Command::Precheck { target, output } => {
            with_target(&conn, &target, &output, false, |ctx| {
                let mut maint = ctx.maintenance()?;
                let db = match &target.database {
                    Some(d) => d.clone(),
                    None => find_source(&mut maint, ctx.bundle)?,
                };
                let mut session = ctx.session(&db)?;
                run_prechecks(ctx, &mut session.client)?;
                let summary = format!(
                    "\nAll {} prechecks of {} found no problem in \"{db}\".",
                    ctx.bundle.prechecks.len(),
                    ctx.bundle.name
                );
                Ok((
                    serde_json::json!({ "database": db, "problems": 0 }),
                    summary,
                ))
            })
        }
        Command::Bootstrap {
            target,
            keep_failed,
            output,
        } => with_target(&conn, &target, &output, false, |ctx| {
            let Some(db) = target.database.clone() else {
                return Err(EngineError::Refused(
                    "name the new database with --database".into(),
                ));
            };
            let outcome = bootstrap(ctx, &db, target.to, keep_failed)?;
            let summary = format!(
                "\nCreated \"{}\" at version {} (sha256:{}) in {:.1} s.",
                outcome.database,
                outcome.version,
                outcome.fingerprint,
                outcome.elapsed.as_secs_f64()
            );
            Ok((to_json(&outcome), summary))
        }),
    }
}

/// `pgstep restore`: no bundle is needed; the backup's metadata says what it holds.
fn restore_command(
    conn: &ConnArgs,
    backup: &std::path::Path,
    database: &str,
    jobs: u32,
    output: &HeadlessOutput,
) -> i32 {
    let server = match resolve(conn) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut printer = Printer::new(output.json);
    // Nothing requests cancellation yet (no signal handling); the flag is what the front ends set.
    let cancel = Cancel::new();
    let result = restore(&server, backup, database, jobs, &cancel, &mut printer).map(|outcome| {
        let summary = format!(
            "\nRestored {} (\"{}\" at version {}) into \"{}\": {} table(s) in {:.1} s; {}.",
            outcome.backup.display(),
            outcome.source_database,
            outcome.version,
            outcome.database,
            outcome.tables,
            outcome.elapsed.as_secs_f64(),
            match outcome.fingerprint_matches {
                Some(true) => "the schema fingerprint equals the recorded one",
                _ => "the backup records no fingerprint to compare with",
            }
        );
        (to_json(&outcome), summary)
    });
    let code = report(result, &mut printer);
    if code != exit::SUCCESS && cancel.requested() {
        exit::CANCELLED
    } else {
        code
    }
}

/// Loads the bundle and the connection, then runs `f` with a printer, mapping errors to exit codes.
fn with_target(
    conn: &ConnArgs,
    target: &Target,
    output: &Output,
    needs_confirmation: bool,
    f: impl FnOnce(&mut Context<'_>) -> Result<(serde_json::Value, String), EngineError>,
) -> i32 {
    let bundle = match bundle::load(&target.bundle) {
        Ok(b) => b,
        Err(e) => return fail(exit::REFUSED, &e.to_string()),
    };
    let server = match resolve(conn) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if needs_confirmation && !output.yes {
        return fail(
            exit::REFUSED,
            "confirm the manual checklist items with --yes: users informed of the downtime, importers and backup jobs stopped, \
             client packages for the new version ready. (The interactive wizard, which asks for them one by one, is not built yet.)",
        );
    }
    let mut printer = Printer::new(output.json);
    let overrides: BTreeMap<String, String> = target.set.iter().cloned().collect();
    let mut ctx = Context {
        bundle: &bundle,
        server: &server,
        overrides: &overrides,
        obs: &mut printer,
    };
    let result = f(&mut ctx);
    report(result, &mut printer)
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn report(result: Result<(serde_json::Value, String), EngineError>, printer: &mut Printer) -> i32 {
    match result {
        Ok((outcome, summary)) => {
            if printer.is_json() {
                printer.result(true, &outcome);
            } else {
                printer.say(&summary);
            }
            exit::SUCCESS
        }
        Err(e) => {
            let code = match &e {
                EngineError::Refused(_) => exit::REFUSED,
                EngineError::Failed(_) => exit::FAILED,
            };
            if printer.is_json() {
                printer.result(
                    false,
                    &serde_json::json!({ "error": e.to_string(), "exit_code": code }),
                );
            }
            fail(code, &e.to_string())
        }
    }
}

fn resolve(conn: &ConnArgs) -> Result<ConnSettings, i32> {
    match ConnSettings::resolve(conn, &ProcessEnv) {
        Ok((settings, warnings)) => {
            for w in warnings {
                eprintln!("pgstep: warning: {w}");
            }
            Ok(settings)
        }
        Err(e) => Err(fail(exit::REFUSED, &e.to_string())),
    }
}

fn fail(code: i32, message: &str) -> i32 {
    eprintln!("pgstep: {message}");
    code
}

fn fingerprint_command(
    conn: &ConnArgs,
    database: Option<String>,
    full: bool,
    bundle_dir: Option<PathBuf>,
) -> i32 {
    let bundle = match bundle_dir.as_deref().map(bundle::load).transpose() {
        Ok(b) => b,
        Err(e) => return fail(exit::REFUSED, &e.to_string()),
    };
    let server = match resolve(conn) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let settings = match &database {
        Some(db) => server.with_dbname(db),
        None => server,
    };
    let db = settings.dbname().to_owned();
    let mut client = match settings.connect(None) {
        Ok(c) => c,
        Err(e) => return fail(exit::REFUSED, &e.to_string()),
    };
    let schemas = match &bundle {
        Some(b) => b.schemas.clone(),
        None => match fingerprint::user_schemas(&mut client) {
            Ok(s) => s,
            Err(e) => return fail(exit::FAILED, &crate::db::describe(&e)),
        },
    };
    let fp = match fingerprint::compute(&mut client, &schemas) {
        Ok(fp) => fp,
        Err(e) => {
            return fail(
                exit::FAILED,
                &format!(
                    "failed to fingerprint \"{db}\": {}",
                    crate::db::describe(&e)
                ),
            );
        }
    };
    println!("{}", fp.display_hash());
    let code = match &bundle {
        Some(b) => compare_with_bundle(&mut client, b, &fp, &db),
        None => exit::SUCCESS,
    };
    if full {
        print!("{}", fp.text);
    }
    code
}

/// Names the version whose reference matches, or shows the differences from the expected one.
fn compare_with_bundle(
    client: &mut postgres::Client,
    bundle: &Bundle,
    fp: &fingerprint::Fingerprint,
    db: &str,
) -> i32 {
    let matching = bundle.versions_with_hash(&fp.hash);
    if let Some(v) = matching.last() {
        println!(
            "matches {} version {v} ({} objects in schemas {})",
            bundle.name,
            fp.lines,
            bundle.schemas.join(", ")
        );
        return exit::SUCCESS;
    }
    let marker = crate::db::version::read_version(client, &bundle.version_query, db).ok();
    let expected = marker.and_then(|v| bundle.reference_for(v)).or_else(|| {
        bundle
            .fingerprints
            .iter()
            .min_by_key(|(_, r)| fingerprint::diff(&r.text, &fp.text).len())
            .map(|(v, r)| (*v, r))
    });
    match expected {
        Some((v, r)) => {
            let d = fingerprint::diff(&r.text, &fp.text);
            let why = if marker.is_some() {
                format!(
                    "the version marker says {}",
                    marker.map_or_else(String::new, |m| m.to_string())
                )
            } else {
                "the closest reference".to_owned()
            };
            println!(
                "matches no reference of {}; against version {v} ({why}), {} object(s) differ:",
                bundle.name,
                d.len()
            );
            print!("{d}");
        }
        None => println!("matches no reference of {}", bundle.name),
    }
    exit::REFUSED
}

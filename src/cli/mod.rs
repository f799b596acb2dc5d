//! The command line: raw flags (clap) turned into validated requests before anything connects.

mod fingerprint_cmd;
mod plan;
mod plan_cmd;
mod status_cmd;

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::bundle::Version;
use crate::conn::{ConnArgs, ConnSettings, ProcessEnv};
use crate::{demo, exit};

const AFTER_HELP: &str = "\
Connection options follow libpq (psql): -h -p -U -d, a postgres:// URI or key=value string in -d,
the PG* environment variables, ~/.pgpass and service= entries. Passwords are never taken on the
command line: use ~/.pgpass, PGPASSFILE or PGPASSWORD, or answer the prompt.

Every run keeps a journal, a log and a report in pgstep's data directory (~/.local/share/pgstep,
or PGSTEP_DATA_DIR). An interrupted run is listed by `pgstep status` and undone by `pgstep recover`.

Exit codes: 0 success; 1 failed, or a sanity check of the upgraded clone failed (what was
changed was undone as reported; whether the source is unchanged is checked, then said);
2 bad command line; 3 refused before the upgrade began (bad input, users still connected,
schema drift; anything changed was undone); 130 cancelled.";

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
    /// Database to connect to first, or a postgres:// URI or key=value connection string
    #[arg(short = 'd', long = "dbname", global = true, value_name = "DBNAME|URI")]
    dbname: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct Output {
    /// Print readable progress lines instead of opening the wizard
    #[arg(long)]
    pub headless: bool,
    /// Print one JSON event per line (implies --headless)
    #[arg(long)]
    pub json: bool,
    /// Confirm the manual checklist items (users informed, importers and backup jobs stopped,
    /// client packages ready) and free space that cannot be measured
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum FormatArg {
    /// Chosen for the database and this machine: the directory format with parallel workers
    /// where they would be faster (a large database over several tables, cores to spare, a
    /// dump that outlasted the upgrade in the latest rehearsal), else the custom format
    Auto,
    /// pg_dump's custom format: one compressed file
    Custom,
    /// pg_dump's directory format, dumped with parallel jobs
    Directory,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct Downtime {
    /// End the sessions still connected once users were asked to leave (they lose unsaved work)
    #[arg(long)]
    pub terminate_sessions: bool,
    /// Seconds connected users get to log off after being asked
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub wait_sessions: u64,
    /// Proceed although the schema fingerprint differs from the reference (recorded)
    #[arg(long)]
    pub override_schema_check: bool,
    /// Directory for the backup (default: pgstep's data directory)
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Backup format
    #[arg(long, value_enum, default_value = "auto")]
    pub backup_format: FormatArg,
    /// Parallel pg_dump workers: for the directory format (default 2), or the most that
    /// `auto` may choose
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: Option<u32>,
    /// Skip the backup; the reason is required and recorded, and the database is read once instead
    #[arg(long, value_name = "REASON")]
    pub no_backup: Option<String>,
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
    /// Upgrade an application database to the next major version by clone-and-upgrade
    Upgrade {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        downtime: Downtime,
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
        #[command(flatten)]
        downtime: Downtime,
        /// Run fixups already recorded with the same checksum again (they are idempotent)
        #[arg(long)]
        reapply: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Rehearse the upgrade on a throw-away copy: nothing users see changes; the timings, the
    /// problems found and the downtime to expect go into a rehearsal report
    Rehearse {
        #[command(flatten)]
        target: Target,
        /// Directory for the rehearsal's backup (removed after it was measured)
        #[arg(long, value_name = "DIR")]
        backup_dir: Option<PathBuf>,
        #[command(flatten)]
        output: Output,
    },
    /// Restore a backup taken by pgstep into a new database and verify its fingerprint
    Restore {
        /// The backup file (or directory) beside which its .json metadata lies
        backup: PathBuf,
        /// The new database
        #[arg(long, value_name = "NAME")]
        database: String,
        /// Parallel jobs for pg_restore
        #[arg(long, value_name = "N", default_value_t = 2)]
        jobs: u32,
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
    /// Write the upgrade's plan for review before the night: every statement each step will
    /// send, placeholders substituted, with the scripts' checksums and how each conditional
    /// block looks as the database is now (read-only: changes nothing)
    Plan {
        #[command(flatten)]
        target: Target,
        /// Where to write it (default: <data dir>/plans/<db>-<from>-to-<to>-<time>.md; - for stdout)
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
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
    /// List runs that were interrupted (killed, crashed) and what they left to undo
    Status {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Undo what interrupted runs left behind: banner, blocked access, unfinished clones
    Recover {
        /// The bundle of the interrupted run (when it moved since; needed to reset its banner)
        #[arg(long, value_name = "DIR")]
        bundle: Option<PathBuf>,
        /// Keep unfinished clones for inspection instead of dropping them
        #[arg(long)]
        keep_failed: bool,
    },
}

#[derive(Debug, Args, Clone)]
pub(crate) struct Target {
    /// The application's upgrade bundle (a directory with bundle.toml)
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// The application database (default: found from the bundle's naming)
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,
    /// The version to reach (upgrade: the next major version; bootstrap: the newest)
    #[arg(long, value_name = "VERSION")]
    pub to: Option<Version>,
    /// A placeholder's value for the scripts, overriding the bundle's (repeatable)
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
}

/// A `--set` value that is not `NAME=VALUE`.
#[derive(Debug, thiserror::Error)]
#[error("\"{0}\" is not NAME=VALUE")]
struct NotNameValue(String);

fn parse_set(s: &str) -> Result<(String, String), NotNameValue> {
    s.split_once('=')
        .map(|(n, v)| (n.trim_matches('@').to_owned(), v.to_owned()))
        .ok_or_else(|| NotNameValue(s.to_owned()))
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
    dispatch(cli.command, &conn)
}

/// Hands each command's flags to the command.
fn dispatch(command: Command, conn: &ConnArgs) -> i32 {
    match command {
        Command::Demo {
            patients,
            keep,
            output,
        } => demo_command(patients, keep, &output),
        Command::Fingerprint {
            database,
            full,
            bundle,
        } => fingerprint_cmd::fingerprint_command(conn, database, full, bundle),
        Command::Upgrade {
            target,
            downtime,
            keep_failed,
            output,
        } => plan_cmd::upgrade(conn, &target, &downtime, keep_failed, &output),
        Command::Fixup {
            target,
            downtime,
            reapply,
            output,
        } => plan_cmd::fixup(conn, &target, &downtime, reapply, &output),
        Command::Rehearse {
            target,
            backup_dir,
            output,
        } => plan_cmd::rehearse(conn, &target, backup_dir, &output),
        Command::Restore {
            backup,
            database,
            jobs,
            output,
        } => plan_cmd::restore(conn, backup, database, jobs, &output),
        Command::Bootstrap {
            target,
            keep_failed,
            output,
        } => plan_cmd::bootstrap(conn, &target, keep_failed, &output),
        Command::Precheck { target, output } => plan_cmd::precheck(conn, &target, &output),
        Command::Plan { target, output } => plan::plan(conn, &target, output.as_deref()),
        Command::Status { json } => status_cmd::status(json),
        Command::Recover {
            bundle,
            keep_failed,
        } => status_cmd::recover(conn, bundle, keep_failed),
    }
}

/// `pgstep demo`: in the wizard when a terminal is attached and no headless output is asked.
fn demo_command(patients: u64, keep: bool, output: &Output) -> i32 {
    let mut printer = crate::headless::Printer::new(output.json);
    let interactive = !output.headless
        && !output.json
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::io::IsTerminal::is_terminal(&std::io::stdin());
    demo::run(
        &demo::DemoOptions {
            patients,
            keep,
            interactive,
        },
        &mut printer,
    )
}

pub(crate) fn resolve(conn: &ConnArgs) -> Result<ConnSettings, i32> {
    match ConnSettings::resolve(conn, &ProcessEnv) {
        Ok((settings, warnings)) => {
            for w in warnings {
                errln!("pgstep: warning: {w}");
            }
            Ok(settings)
        }
        Err(e) => Err(fail(exit::REFUSED, &e.to_string())),
    }
}

pub(crate) fn fail(code: i32, message: &str) -> i32 {
    errln!("pgstep: {message}");
    code
}

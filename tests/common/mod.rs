//! Test harness: a throw-away PostgreSQL cluster per test (socket only, in a temp dir, fsync
//! off; as root the server runs as `postgres`), and helpers to look at what a test changed.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pgstep::bundle::{self, Bundle};
use pgstep::cluster::Cluster;
use pgstep::conn::ConnSettings;
use pgstep::engine::Context;
use pgstep::events::Event;
use postgres::Client;

pub struct Pg {
    pub cluster: Cluster,
}

impl Pg {
    pub fn start() -> Self {
        let cluster = Cluster::start(None).expect("start a throw-away PostgreSQL cluster");
        Self { cluster }
    }

    pub fn settings(&self, db: &str) -> ConnSettings {
        self.cluster.settings(db)
    }

    pub fn client(&self, db: &str) -> Client {
        self.settings(db)
            .connect(None)
            .unwrap_or_else(|e| panic!("connect to {db}: {e}"))
    }

    pub fn exec(&self, db: &str, sql: &str) {
        self.client(db)
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub fn query_one<T: for<'a> postgres::types::FromSql<'a>>(&self, db: &str, sql: &str) -> T {
        self.client(db)
            .query_one(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    /// Row count and md5 of every row of one table, in a stable order.
    pub fn table_checksum(&self, db: &str, table: &str) -> String {
        let sql = format!(
            "SELECT count(*)::text || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM {table} x"
        );
        self.query_one(db, &sql)
    }

    pub fn databases(&self) -> Vec<String> {
        self.client("postgres")
            .query("SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1", &[])
            .expect("list databases")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    pub fn exists(&self, db: &str) -> bool {
        self.databases().iter().any(|d| d == db)
    }

    /// A checksum of every row of every table in the schema, and the database's own settings:
    /// equal before and after means nothing in it changed.
    pub fn content_checksum(&self, db: &str, schema: &str) -> String {
        let mut c = self.client(db);
        let tables: Vec<String> = c
            .query(
                "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1",
                &[&schema],
            )
            .expect("tables")
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut all = String::new();
        for t in tables {
            let sql = format!(
                "SELECT count(*)::text || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM {t} x"
            );
            let sum: String = c.query_one(sql.as_str(), &[]).expect("checksum").get(0);
            all.push_str(&format!("{t}={sum}\n"));
        }
        let settings: Option<String> = c
            .query_one(
                "SELECT string_agg(array_to_string(setconfig, ','), ';' ORDER BY setrole) FROM pg_db_role_setting s \
                 JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = $1",
                &[&db],
            )
            .expect("settings")
            .get(0);
        all.push_str(&format!("settings={}\n", settings.unwrap_or_default()));
        all
    }
}

pub fn sample_dir() -> PathBuf {
    pgstep::sample::source_dir()
}

pub fn sample_bundle() -> Bundle {
    bundle::load(&sample_dir()).unwrap_or_else(|e| panic!("{e}"))
}

/// Records every event, for assertions on what the operator would have seen.
#[derive(Default)]
pub struct Recorder {
    pub events: Vec<Event>,
}

impl pgstep::events::Observer for Recorder {
    fn event(&mut self, event: Event) {
        self.events.push(event);
    }
}

impl Recorder {
    pub fn logs(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Log { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn has_log(&self, needle: &str) -> bool {
        self.logs().iter().any(|l| l.contains(needle))
    }
}

/// Runs `f` with an engine context on the cluster.
pub fn with_ctx<T>(
    pg: &Pg,
    bundle: &Bundle,
    rec: &mut Recorder,
    f: impl FnOnce(&mut Context<'_>) -> T,
) -> T {
    let server = pg.settings("postgres");
    let overrides = BTreeMap::new();
    let mut ctx = Context {
        bundle,
        server: &server,
        overrides: &overrides,
        obs: rec,
    };
    f(&mut ctx)
}

/// A copy of a bundle directory that a test may edit.
pub fn copy_bundle(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(from, dir.path());
    dir
}

/// A copy of a bundle directory at `to`.
pub fn copy_bundle_into(from: &Path, to: &Path) {
    copy_dir(from, to);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

// --- running checklists (upgrade, fixup, …) the way the CLI does, through the driver ---

use pgstep::checklist::CheckResult;
use pgstep::checklist::{Checklist, Outcome, PlanKind, StepId, StepOutput};
use pgstep::drive::{self, Policy};
use pgstep::executor::{BackupPlan, RunSpec};
use pgstep::session::Shown;

impl Pg {
    /// pgstep's data directory for this cluster's runs (journal, locks, reports, backups).
    pub fn data_dir(&self) -> PathBuf {
        self.cluster.dir().join("pgstep-data")
    }

    /// A run spec against this cluster, its files kept beside the cluster.
    pub fn spec(
        &self,
        kind: PlanKind,
        bundle: &Bundle,
        db: Option<&str>,
        to: Option<&str>,
    ) -> RunSpec {
        let mut spec = RunSpec::new(kind, Some(bundle.clone()), self.settings("postgres"));
        spec.database = db.map(str::to_owned);
        spec.to = to.map(|v| v.parse().expect("version"));
        spec.data_dir = self.data_dir();
        spec.backup = BackupPlan::Into {
            dir: self.data_dir().join("backups"),
            format: pgstep::backup::BackupFormat::Custom,
        };
        spec.fault = None;
        spec
    }
}

/// The operator's answers for an unattended run: everything confirmed, nothing overridden.
pub fn yes() -> Policy {
    Policy {
        yes: true,
        ..Policy::default()
    }
}

/// A finished run: the checklist, its outcome and everything it logged.
pub struct Ran {
    pub checklist: Checklist,
    pub outcome: Outcome,
    pub logs: Vec<String>,
}

pub fn run(spec: RunSpec, policy: &Policy) -> Ran {
    let mut logs = Vec::new();
    let (checklist, outcome) = drive::run(spec, policy, &mut |_, shown| match shown {
        Shown::Exec(pgstep::checklist::ExecEvent::Engine(Event::Log { text, .. })) => {
            logs.push(text.clone())
        }
        Shown::Exec(pgstep::checklist::ExecEvent::StepFailed { error, .. }) => {
            logs.push(error.clone())
        }
        Shown::Answered(words) => logs.push(words),
        _ => {}
    });
    Ran {
        checklist,
        outcome,
        logs,
    }
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.outcome == Outcome::Success
    }

    pub fn output(&self, step: StepId) -> Option<StepOutput> {
        self.checklist.step(step).and_then(|s| s.output.clone())
    }

    pub fn checks(&self) -> Vec<CheckResult> {
        match self.output(StepId::SanityChecks) {
            Some(StepOutput::Checks(c)) => c,
            _ => Vec::new(),
        }
    }

    /// (new database, old database) after a cut-over.
    pub fn cut_over(&self) -> (String, String) {
        match self.output(StepId::CutOver) {
            Some(StepOutput::CutOver {
                new_db,
                old_db,
                old_open: None,
            }) => (new_db, old_db),
            other => panic!(
                "no cut-over, or the old database left open: {other:?}\n{}",
                self.explain()
            ),
        }
    }

    pub fn failure(&self) -> (String, Vec<String>, bool) {
        match &self.outcome {
            Outcome::Failed {
                what,
                undone,
                refused,
                ..
            } => (what.clone(), undone.clone(), *refused),
            Outcome::Success => panic!("the run succeeded"),
        }
    }

    pub fn explain(&self) -> String {
        format!("{:?}\n{}", self.outcome, self.logs.join("\n"))
    }

    pub fn has_log(&self, needle: &str) -> bool {
        self.logs.iter().any(|l| l.contains(needle))
    }
}

/// Who may connect to a database, and how many at once: equal before and after means access
/// was restored exactly.
pub fn access_of(pg: &Pg, db: &str) -> String {
    pg.query_one(
        "postgres",
        &format!(
            "SELECT coalesce(string_agg(a.grantee::regrole::text || ':' || a.privilege_type || ':' || a.is_grantable, ',' \
               ORDER BY a.grantee::regrole::text, a.privilege_type), '') || ' limit ' || max(d.datconnlimit) \
             FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a WHERE d.datname = '{db}'"
        ),
    )
}

/// The source's content as users see it: every table's rows, except the banner's own
/// timestamp (the application's trigger stamps every change of the banner, and setting and
/// resetting it is part of the procedure), whose message is compared instead.
pub fn user_content(pg: &Pg, db: &str) -> String {
    let all = pg.content_checksum(db, "clinic");
    let banner: Option<String> =
        pg.query_one(db, "SELECT message FROM clinic.logon_banner WHERE id = 1");
    let rest: Vec<&str> = all
        .lines()
        .filter(|l| !l.starts_with("clinic.logon_banner="))
        .collect();
    format!("{}\nbanner={banner:?}", rest.join("\n"))
}

/// What users and the next run depend on: the database's content, who may connect, and
/// whether it is read-only. Equal before and after a failed run means nothing was lost.
pub fn source_state(pg: &Pg, db: &str) -> (String, String, String) {
    (
        user_content(pg, db),
        access_of(pg, db),
        pg.query_one(db, "SHOW default_transaction_read_only"),
    )
}

/// A cluster with the sample's clinic_v1 bootstrapped from `bundle` and filled with `patients`
/// patients (0: the baseline's rows only).
pub fn clinic_v1(bundle: &Bundle, patients: u64) -> Pg {
    let pg = Pg::start();
    let mut rec = Recorder::default();
    with_ctx(&pg, bundle, &mut rec, |ctx| {
        pgstep::engine::bootstrap::bootstrap(
            ctx,
            "clinic_v1",
            Some(pgstep::bundle::Version::new(1, 0)),
            false,
        )
    })
    .unwrap_or_else(|e| panic!("{e}"));
    if patients > 0 {
        let mut session =
            pgstep::db::Session::open(&pg.settings("clinic_v1"), &[]).expect("session");
        pgstep::sample::generate(&mut session, &bundle.root, patients, &mut rec).expect("generate");
    }
    pg
}

// --- the real binary ---

/// The real binary against this cluster with a clean environment — no PG* variables, no
/// ~/.pgpass, no service file — and pgstep's files in `data_dir`.
pub fn pgstep_cmd(pg: &Pg, data_dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pgstep"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", data_dir)
        .env("PGSTEP_DATA_DIR", data_dir)
        .env("RUST_BACKTRACE", "0")
        .args([
            "-h",
            &pg.cluster.socket_dir().to_string_lossy(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ]);
    cmd
}

/// What a finished run of the binary said.
pub struct BinRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary with `args` and waits for it.
pub fn run_pgstep(pg: &Pg, data_dir: &Path, args: &[&str]) -> BinRun {
    let out = pgstep_cmd(pg, data_dir)
        .args(args)
        .output()
        .expect("run pgstep");
    BinRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

//! The reference workload: a throw-away cluster holding the sample application ("clinic") at
//! version 1, filled to the chosen number of patients, and identical copies of it for each
//! contender.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pgstep::bundle::{Bundle, Version};
use pgstep::cluster::{Cluster, SUPERUSER};
use pgstep::conn::ConnSettings;
use pgstep::engine::Context;
use pgstep::events::Event;
use pgstep::script::{Placeholders, quote_ident};

/// The database every contender's copy is made from.
pub const SOURCE: &str = "bench_src";

/// The cluster, the sample bundle, a maintenance connection and a scratch directory for dumps,
/// copies of the bundle and pgstep's data directory.
pub struct Workload {
    pub cluster: Cluster,
    pub bundle: Bundle,
    /// Connection settings for the server, as pgstep's engine wants them.
    server: ConnSettings,
    /// No `--set NAME=VALUE`: the bundle's own placeholder values.
    overrides: BTreeMap<String, String>,
    admin: postgres::Client,
    scratch: tempfile::TempDir,
}

impl Workload {
    /// Starts a throw-away cluster (socket only, fsync off; as root the server runs as
    /// `postgres`) and loads the sample bundle from the source tree.
    pub fn start() -> Self {
        let cluster = Cluster::start(None).expect("start a throw-away PostgreSQL cluster");
        let bundle = pgstep::bundle::load(&pgstep::sample::source_dir()).expect("sample bundle");
        let admin = cluster
            .settings("postgres")
            .connect(None)
            .expect("connect to the maintenance database");
        // Beside the cluster (same file system), so that copies measure the same disk.
        let scratch = tempfile::Builder::new()
            .prefix("pgstep-bench-")
            .tempdir()
            .expect("create a scratch directory");
        Self {
            server: cluster.settings("postgres"),
            overrides: BTreeMap::new(),
            cluster,
            bundle,
            admin,
            scratch,
        }
    }

    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    pub fn settings(&self, db: &str) -> ConnSettings {
        self.cluster.settings(db)
    }

    /// One of PostgreSQL's client programs, of the server's own version.
    pub fn tool(&self, name: &str) -> PathBuf {
        self.cluster.bin_dir().join(name)
    }

    /// Points a client program (psql, pg_dump, createdb, pgstep) at the cluster through the
    /// environment, never through arguments; the caller's own PG* settings are removed.
    pub fn client_env(&self, cmd: &mut Command) {
        for var in [
            "PGDATABASE",
            "PGPASSWORD",
            "PGPASSFILE",
            "PGSERVICE",
            "PGSERVICEFILE",
            "PGOPTIONS",
            "PGSSLMODE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("PGHOST", self.cluster.socket_dir())
            .env("PGPORT", self.cluster.port().to_string())
            .env("PGUSER", SUPERUSER);
    }

    /// The server's version, e.g. "15.8 (Debian 15.8-0+deb12u1)".
    pub fn server_version(&mut self) -> String {
        self.query_string("SELECT current_setting('server_version')")
    }

    pub fn server_version_num(&mut self) -> u32 {
        self.query_string("SELECT current_setting('server_version_num')")
            .parse()
            .expect("server_version_num is a number")
    }

    /// Creates [`SOURCE`] at version 1, fills it with `patients` patients, then VACUUMs it so
    /// that every copy starts with hint bits and visibility map set, as a production database
    /// that autovacuum looks after would. Returns how long that took.
    pub fn build_source(&mut self, patients: u64) -> Duration {
        let started = Instant::now();
        let mut quiet = |_: Event| {};
        let mut ctx = self.context(&mut quiet);
        pgstep::engine::bootstrap::bootstrap(&mut ctx, SOURCE, Some(Version::new(1, 0)), false)
            .expect("bootstrap the sample at version 1");
        let mut session = pgstep::db::Session::open(&self.settings(SOURCE), &[])
            .expect("open a session on the source");
        pgstep::sample::generate(&mut session, &self.bundle.root, patients, &mut quiet)
            .expect("generate the sample data");
        session
            .client
            .batch_execute("VACUUM (ANALYZE)")
            .expect("vacuum the source");
        started.elapsed()
    }

    /// An engine context on this cluster, reporting to `obs`.
    pub fn context<'a>(&'a self, obs: &'a mut dyn pgstep::events::Observer) -> Context<'a> {
        Context {
            bundle: &self.bundle,
            server: &self.server,
            overrides: &self.overrides,
            obs,
        }
    }

    /// pgstep's values of the bundle's placeholders for scripts run on `db`.
    pub fn placeholders(&self, db: &str) -> Placeholders {
        let mut quiet = |_: Event| {};
        self.context(&mut quiet)
            .placeholders(db)
            .expect("the sample's placeholders")
    }

    /// `CREATE DATABASE copy TEMPLATE SOURCE`, then a CHECKPOINT so that the next contender
    /// does not pay for writing the copy's dirty buffers. Returns the copy's time (without the
    /// checkpoint).
    pub fn copy_source(&mut self, copy: &str) -> Duration {
        let started = Instant::now();
        self.exec(&format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(copy),
            quote_ident(SOURCE)
        ));
        let took = started.elapsed();
        self.checkpoint();
        took
    }

    pub fn checkpoint(&mut self) {
        self.exec("CHECKPOINT");
    }

    pub fn drop_database(&mut self, db: &str) {
        self.exec(&format!("DROP DATABASE IF EXISTS {}", quote_ident(db)));
    }

    /// The database's size on disk, in bytes.
    pub fn size(&mut self, db: &str) -> u64 {
        let bytes: i64 = self
            .admin
            .query_one("SELECT pg_database_size($1)", &[&db])
            .expect("database size")
            .get(0);
        u64::try_from(bytes).unwrap_or(0)
    }

    /// Where the database's files are: `base/<oid>` under the data directory.
    pub fn files_of(&mut self, db: &str) -> PathBuf {
        let oid: u32 = self
            .admin
            .query_one("SELECT oid FROM pg_database WHERE datname = $1", &[&db])
            .expect("database oid")
            .get(0);
        self.cluster.data_dir().join("base").join(oid.to_string())
    }

    /// Rows in one of the sample's tables (`table` is a constant of this program).
    pub fn count_rows(&self, db: &str, table: &str) -> i64 {
        let mut client = self.settings(db).connect(None).expect("connect");
        client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .expect("count rows")
            .get(0)
    }

    /// The version marker of a clinic database ("2.0" after the step 1 → 2).
    pub fn version_of(&self, db: &str) -> String {
        let mut client = self.settings(db).connect(None).expect("connect");
        client
            .query_one(self.bundle.version_query.as_str(), &[])
            .expect("read the version marker")
            .get(0)
    }

    pub fn exec(&mut self, sql: &str) {
        self.admin
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn query_string(&mut self, sql: &str) -> String {
        self.admin
            .query_one(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }
}

/// The physical floor: the source's files copied once.
pub struct Floor {
    /// `CREATE DATABASE … TEMPLATE … STRATEGY = FILE_COPY`, with the checkpoint it makes.
    pub file_copy: Duration,
    /// `cp -r base/<oid>` into the scratch directory.
    pub cp: Duration,
    pub bytes: u64,
}

impl Workload {
    /// Copies [`SOURCE`] once with FILE_COPY and once with `cp -r`, after a checkpoint.
    pub fn floor(&mut self) -> Floor {
        const COPY: &str = "bench_floor";
        // Before PostgreSQL 15 every CREATE DATABASE copies files; STRATEGY does not exist.
        let strategy = if self.server_version_num() >= 150_000 {
            " STRATEGY = FILE_COPY"
        } else {
            ""
        };
        self.checkpoint();
        let started = Instant::now();
        self.exec(&format!(
            "CREATE DATABASE {} TEMPLATE {}{strategy}",
            quote_ident(COPY),
            quote_ident(SOURCE)
        ));
        let file_copy = started.elapsed();
        self.drop_database(COPY);

        let files = self.files_of(SOURCE);
        let into = self.scratch().join("floor-copy");
        let mut cp = Command::new("cp");
        cp.arg("-r").arg(&files).arg(&into);
        let (cp_took, _) = crate::psql::run_timed("cp -r", &mut cp);
        std::fs::remove_dir_all(&into).expect("remove the floor copy");
        Floor {
            file_copy,
            cp: cp_took,
            bytes: self.size(SOURCE),
        }
    }
}

//! A throw-away PostgreSQL cluster in a directory of its own, reachable only through a Unix
//! socket in that directory: what `pgstep demo` and the tests run against, never a server that
//! happens to be running on the machine.
//!
//! PostgreSQL refuses to run as root; when pgstep runs as root the server runs as the `postgres`
//! OS user (through `runuser`) and the directory is handed to that user.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::conn::{ConnArgs, ConnSettings, Env};

/// The superuser of every throw-away cluster.
pub const SUPERUSER: &str = "postgres";
const PORT: u16 = 5432;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL's server programs (initdb, pg_ctl, postgres) were not found: install them \
         (Debian/Ubuntu: apt-get install postgresql; Fedora/RHEL: dnf install postgresql-server) \
         or set PGSTEP_PG_BINDIR to the directory that holds them"
    )]
    NoServerBinaries,
    #[error(
        "PostgreSQL refuses to run as root and there is no `postgres` OS user to run it as: \
         run pgstep as an ordinary user, or create that user"
    )]
    NoPostgresUser,
    #[error("failed to {action}: {detail}")]
    Failed { action: String, detail: String },
}

fn failed(action: impl Into<String>, detail: impl ToString) -> ClusterError {
    ClusterError::Failed {
        action: action.into(),
        detail: detail.to_string(),
    }
}

/// A running throw-away cluster. Stopped (and its directory removed) when dropped, unless kept.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    run_as: Option<OsUser>,
    keep: bool,
    stopped: bool,
}

#[derive(Debug, Clone)]
struct OsUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl Cluster {
    /// Creates and starts a cluster in a new directory under `parent` (the system's temporary
    /// directory when `None`).
    pub fn start(parent: Option<&Path>) -> Result<Self, ClusterError> {
        let bin = find_bin_dir()?;
        let run_as = if running_as_root() {
            Some(os_user("postgres").ok_or(ClusterError::NoPostgresUser)?)
        } else {
            None
        };
        let base = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        fs::create_dir_all(&base).map_err(|e| failed(format!("create {}", base.display()), e))?;
        let dir = tempfile::Builder::new()
            .prefix("pgstep-cluster-")
            .tempdir_in(&base)
            .map_err(|e| failed(format!("create a directory in {}", base.display()), e))?
            .keep();
        let mut cluster = Self {
            dir,
            bin,
            run_as,
            keep: false,
            stopped: true,
        };
        cluster.init()?;
        cluster.run_pg_ctl("start the server", &["-w", "-t", "60", "start"])?;
        cluster.stopped = false;
        Ok(cluster)
    }

    fn init(&self) -> Result<(), ClusterError> {
        fs::create_dir_all(self.socket_dir())
            .map_err(|e| failed("create the socket directory", e))?;
        if let Some(user) = &self.run_as {
            for p in [&self.dir, &self.socket_dir()] {
                std::os::unix::fs::chown(p, Some(user.uid), Some(user.gid))
                    .map_err(|e| failed(format!("hand {} to the postgres user", p.display()), e))?;
            }
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| failed("protect the cluster directory", e))?;
        }
        let data = self.data_dir();
        let data = data.to_string_lossy();
        self.run(
            "initialise the cluster (initdb)",
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                SUPERUSER,
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )?;
        let conf = format!(
            "\n# pgstep throw-away cluster: socket only, durability off (nothing here is kept)\n\
             listen_addresses = ''\nport = {PORT}\nunix_socket_directories = '{}'\n\
             fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n\
             max_connections = 50\nlogging_collector = off\n",
            self.socket_dir().to_string_lossy().replace('\'', "''")
        );
        fs::OpenOptions::new()
            .append(true)
            .open(self.data_dir().join("postgresql.conf"))
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(|e| failed("configure the cluster", e))
    }

    fn run_pg_ctl(&self, action: &str, args: &[&str]) -> Result<(), ClusterError> {
        let data = self.data_dir().to_string_lossy().into_owned();
        let log = self.log_file().to_string_lossy().into_owned();
        let mut all = vec!["-D", data.as_str(), "-l", log.as_str()];
        all.extend_from_slice(args);
        self.run(action, "pg_ctl", &all)
            .map(|_| ())
            .map_err(|e| match e {
                ClusterError::Failed { action, detail } => ClusterError::Failed {
                    action,
                    detail: format!(
                        "{detail}\nserver log ({}):\n{}",
                        self.log_file().display(),
                        self.log_tail()
                    ),
                },
                other => other,
            })
    }

    /// Runs one of the server's programs, as the postgres OS user when we are root.
    fn run(&self, action: &str, program: &str, args: &[&str]) -> Result<Output, ClusterError> {
        let exe = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", &user.name, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args)
            .current_dir(&self.dir)
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        for var in [
            "PGDATA",
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
            "PGOPTIONS",
        ] {
            cmd.env_remove(var);
        }
        let out = cmd
            .output()
            .map_err(|e| failed(action, format!("{}: {e}", exe.display())))?;
        if out.status.success() {
            Ok(out)
        } else {
            let text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            Err(failed(
                action,
                if text.is_empty() {
                    out.status.to_string()
                } else {
                    text
                },
            ))
        }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("socket")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    pub fn port(&self) -> u16 {
        PORT
    }

    /// Connection settings for a database of this cluster, as its superuser. The caller's PG*
    /// environment and password files are ignored: they describe other servers.
    pub fn settings(&self, dbname: &str) -> ConnSettings {
        let args = ConnArgs {
            host: Some(self.socket_dir().to_string_lossy().into_owned()),
            port: Some(PORT.to_string()),
            user: Some(SUPERUSER.to_owned()),
            dbname: Some(dbname.to_owned()),
        };
        match ConnSettings::resolve(&args, &IsolatedEnv) {
            Ok((settings, _)) => settings,
            // Socket path, port and user are all given: resolution cannot fail.
            Err(e) => unreachable!("cluster connection settings: {e}"),
        }
    }

    /// The command a person runs to connect, for messages.
    pub fn psql_command(&self, dbname: &str) -> String {
        format!(
            "psql -h {} -p {PORT} -U {SUPERUSER} {dbname}",
            self.socket_dir().display()
        )
    }

    /// The command that stops the cluster by hand, for messages.
    pub fn stop_command(&self) -> String {
        let prefix = self
            .run_as
            .as_ref()
            .map_or(String::new(), |u| format!("runuser -u {} -- ", u.name));
        format!(
            "{prefix}{} -D {} stop",
            self.bin.join("pg_ctl").display(),
            self.data_dir().display()
        )
    }

    /// Stops the server (`pg_ctl stop -m <mode>`: `fast`, `immediate`…), keeping its files, so
    /// that a test can take it away under a run and [`Cluster::start_again`] it later.
    pub fn stop_server(&self, mode: &str) -> Result<(), ClusterError> {
        self.run_pg_ctl("stop the server", &["-m", mode, "-w", "stop"])
    }

    /// Starts the server again after [`Cluster::stop_server`].
    pub fn start_again(&self) -> Result<(), ClusterError> {
        self.run_pg_ctl("start the server", &["-w", "-t", "60", "start"])
    }

    /// Leaves the cluster running (and its directory in place) when this value is dropped.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Stops the server at once and removes the directory.
    pub fn stop(mut self) -> Result<(), ClusterError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ClusterError> {
        if !self.stopped {
            self.stopped = true;
            self.run_pg_ctl("stop the server", &["-m", "immediate", "-w", "stop"])?;
        }
        fs::remove_dir_all(&self.dir)
            .map_err(|e| failed(format!("remove {}", self.dir.display()), e))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.keep {
            // Nothing useful can be done with an error while dropping; the directory is temporary.
            let _ = self.shutdown();
        }
    }
}

/// An environment with no PG* variables, no home directory (so no ~/.pgpass) and the
/// cluster's superuser as the OS user.
struct IsolatedEnv;

impl Env for IsolatedEnv {
    fn var(&self, _name: &str) -> Option<String> {
        None
    }
    fn home(&self) -> Option<PathBuf> {
        None
    }
    fn os_user(&self) -> Option<String> {
        Some(SUPERUSER.to_owned())
    }
}

/// Where the server programs are: PGSTEP_PG_BINDIR, `pg_config --bindir`, or the newest
/// /usr/lib/postgresql/*/bin (Debian) or /usr/pgsql-*/bin (RHEL).
pub fn find_bin_dir() -> Result<PathBuf, ClusterError> {
    let has_server = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PGSTEP_PG_BINDIR").map(PathBuf::from) {
        return if has_server(&dir) {
            Ok(dir)
        } else {
            Err(ClusterError::NoServerBinaries)
        };
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(out) = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        && out.status.success()
    {
        candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    let mut versioned: Vec<(u32, PathBuf)> = Vec::new();
    for (parent, prefix) in [("/usr/lib/postgresql", ""), ("/usr", "pgsql-")] {
        let Ok(entries) = fs::read_dir(parent) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(v) = name
                .strip_prefix(prefix)
                .and_then(|v| v.split('.').next()?.parse().ok())
            {
                versioned.push((v, e.path().join("bin")));
            }
        }
    }
    versioned.sort_by_key(|v| std::cmp::Reverse(v.0));
    candidates.extend(versioned.into_iter().map(|(_, p)| p));
    candidates.push(PathBuf::from("/usr/local/pgsql/bin"));
    candidates
        .into_iter()
        .find(|d| has_server(d))
        .ok_or(ClusterError::NoServerBinaries)
}

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn os_user(name: &str) -> Option<OsUser> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == name {
            Some(OsUser {
                name: name.to_owned(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            })
        } else {
            None
        }
    })
}

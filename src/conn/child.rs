//! [`ChildEnv`]: the environment for pg_dump / pg_restore / psql so that they
//! connect exactly where pgstep resolved, with the same password.
//!
//! The password travels in a temporary password file (mode 0600, removed
//! when the `ChildEnv` is dropped) named by PGPASSFILE — never PGPASSWORD
//! (visible in /proc/PID/environ to the same user and in crash reports) and
//! never a command-line argument (visible to every user in `ps`). Variables
//! that could make the child resolve differently (PGSERVICE, PGPASSWORD,
//! PGHOSTADDR, ...) are removed. The caller must not pass `-d` with a
//! connection string or `-h/-p/-U` to the child: those would override this.
//! The child must run as the same OS user (the file is readable only by it).

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use tempfile::NamedTempFile;

use super::error::ConnError;
use super::pgpass;
use super::resolve::{ConnSettings, HostAddr};

/// Variables that always go: they would re-route or re-authenticate the child.
const ALWAYS_REMOVE: &[&str] = &[
    "PGPASSWORD",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGREQUIRESSL",
    "PGHOSTADDR",
    "PGSSLCRL",
    "PGSSLCRLDIR",
    "PGREQUIREPEER",
    "PGREQUIREAUTH",
    "PGSSLNEGOTIATION",
    "PGGSSENCMODE",
    "PGLOADBALANCEHOSTS",
];

/// Environment changes for a child process; keeps the temporary password
/// file alive as long as it lives.
pub struct ChildEnv {
    set: Vec<(String, String)>,
    remove: Vec<String>,
    _passfile: Option<NamedTempFile>,
}

impl std::fmt::Debug for ChildEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only names and paths: the password is in the file, not here.
        f.debug_struct("ChildEnv")
            .field("set", &self.set)
            .field("remove", &self.remove)
            .finish()
    }
}

impl ChildEnv {
    /// Removes, then sets, the variables on `cmd`.
    pub fn apply(&self, cmd: &mut Command) {
        for name in &self.remove {
            cmd.env_remove(name);
        }
        for (name, value) in &self.set {
            cmd.env(name, value);
        }
    }

    pub fn vars(&self) -> &[(String, String)] {
        &self.set
    }

    pub fn removed(&self) -> &[String] {
        &self.remove
    }

    /// The value this sets for `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.set
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A variable for the child: its value, or None to remove it.
type Var = (&'static str, Option<String>);

impl ConnSettings {
    /// The environment for pg_dump, pg_restore or psql.
    pub fn child_env(&self) -> Result<ChildEnv, ConnError> {
        let mut set = Vec::new();
        let mut remove: Vec<String> = ALWAYS_REMOVE.iter().map(|s| s.to_string()).collect();
        let (passfile_var, passfile) = self.child_passfile()?;
        let vars = self.server_vars().into_iter().chain(self.tls_vars());
        let vars = vars.chain(self.session_vars()).chain([passfile_var]);
        for (name, value) in vars {
            match value {
                Some(v) => set.push((name.to_string(), v)),
                None => remove.push(name.to_string()),
            }
        }
        Ok(ChildEnv {
            set,
            remove,
            _passfile: passfile,
        })
    }

    /// Where to connect and as whom.
    fn server_vars(&self) -> [Var; 4] {
        let hosts: Vec<String> = self.targets.iter().map(|t| host_string(&t.host)).collect();
        let ports: Vec<String> = self.targets.iter().map(|t| t.port.to_string()).collect();
        [
            ("PGHOST", Some(hosts.join(","))),
            ("PGPORT", Some(ports.join(","))),
            ("PGUSER", Some(self.user.0.clone())),
            ("PGDATABASE", Some(self.dbname.0.clone())),
        ]
    }

    /// The TLS settings.
    fn tls_vars(&self) -> [Var; 8] {
        let tls = &self.tls;
        let value = |v: &Option<(String, _)>| v.as_ref().map(|(v, _)| v.clone());
        [
            ("PGSSLMODE", Some(tls.mode.as_str().to_string())),
            ("PGSSLROOTCERT", value(&tls.rootcert)),
            ("PGSSLCERT", value(&tls.cert)),
            ("PGSSLKEY", value(&tls.key)),
            (
                "PGSSLCERTMODE",
                (!tls.send_client_cert).then(|| "disable".to_string()),
            ),
            (
                "PGSSLSNI",
                Some(if tls.sni { "1" } else { "0" }.to_string()),
            ),
            (
                "PGSSLMINPROTOCOLVERSION",
                tls.min_protocol.as_ref().map(|(v, _)| v.clone()),
            ),
            (
                "PGSSLMAXPROTOCOLVERSION",
                tls.max_protocol.as_ref().map(|(v, _)| v.clone()),
            ),
        ]
    }

    /// The remaining session settings.
    fn session_vars(&self) -> [Var; 5] {
        [
            ("PGAPPNAME", self.application_name.clone()),
            (
                "PGCONNECT_TIMEOUT",
                self.connect_timeout.as_ref().map(|(s, _)| s.to_string()),
            ),
            ("PGOPTIONS", self.options.clone()),
            ("PGCHANNELBINDING", self.channel_binding.clone()),
            ("PGTARGETSESSIONATTRS", self.target_session_attrs.clone()),
        ]
    }

    /// PGPASSFILE, and the temporary file to keep alive: the known passwords
    /// in a new file, or else the password file pgstep itself reads.
    fn child_passfile(&self) -> Result<(Var, Option<NamedTempFile>), ConnError> {
        let lines: String = self
            .targets
            .iter()
            .filter_map(|t| {
                let (secret, _) = self.password_for(t)?;
                Some(pgpass::line(
                    &pgpass::host_key(&t.host),
                    t.port,
                    &self.user.0,
                    &secret,
                ))
            })
            .collect();
        if lines.is_empty() {
            // No password known: let the child read the same password file.
            let path = self.passfile.as_ref();
            let var = path.map(|p| p.to_string_lossy().into_owned());
            return Ok((("PGPASSFILE", var), None));
        }
        let file = write_passfile(&lines).map_err(ConnError::ChildPassfile)?;
        let var = Some(file.path().to_string_lossy().into_owned());
        Ok((("PGPASSFILE", var), Some(file)))
    }
}

/// libpq's `host` value: socket directories and names as they are, IPv6
/// literals without brackets.
fn host_string(host: &HostAddr) -> String {
    match host {
        HostAddr::Socket(dir) => dir.to_string_lossy().into_owned(),
        HostAddr::Tcp(name) => name.clone(),
    }
}

fn write_passfile(lines: &str) -> std::io::Result<NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix("pgstep-pgpass-")
        .tempfile()?;
    // tempfile creates files 0600 already; set it explicitly because libpq
    // ignores a password file with any group/other bit.
    std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o600))?;
    file.write_all(lines.as_bytes())?;
    file.flush()?;
    Ok(file)
}

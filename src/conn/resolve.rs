//! [`ConnSettings::resolve`]: turns the command line and the environment into
//! one resolved set of connection settings, layering the sources exactly as
//! libpq's `conninfo_array_parse` + `conninfo_add_defaults` +
//! `pqConnectOptions2` do for psql (see the precedence table in `mod.rs`).
//! Which keywords are refused or ignored, and the TLS values, are checked in
//! `validate.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use super::conninfo::{KEYWORDS, is_c_space, is_conn_string, parse_conn_string};
use super::env::{Env, Secret};
use super::error::{ConnError, Origin};
use super::pgpass::{self, Lookup};
use super::service;
use super::tls::{SslMode, TlsSettings};
use super::validate::{build_tls, check_keywords};

/// Debian's libpq default socket directory (DEFAULT_PGSOCKET_DIR).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
pub const DEFAULT_PORT: u16 = 5432;
/// Sent as fallback_application_name unless the connection string has one.
pub const FALLBACK_APPLICATION_NAME: &str = "pgstep";

/// Raw command-line values. `dbname` may be a URI or `key=value` string,
/// which is then expanded as psql does.
#[derive(Clone, Debug, Default)]
pub struct ConnArgs {
    pub host: Option<String>,
    pub port: Option<String>,
    pub user: Option<String>,
    pub dbname: Option<String>,
}

/// Where to connect: a socket directory or a TCP host name/address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostAddr {
    Socket(PathBuf),
    Tcp(String),
}

/// One server of the (usually one-element) host list.
#[derive(Clone, Debug)]
pub struct Target {
    pub host: HostAddr,
    pub port: u16,
    /// The password-file entry for this host, looked up at resolve time.
    pub(crate) passfile_password: Option<Secret>,
}

impl Target {
    /// `/var/run/postgresql (socket)`, `db.example:5432`, `[::1]:5432`.
    pub fn display(&self) -> String {
        match &self.host {
            HostAddr::Socket(dir) if self.port == DEFAULT_PORT => {
                format!("{} (socket)", dir.display())
            }
            HostAddr::Socket(dir) => format!("{} (socket, port {})", dir.display(), self.port),
            HostAddr::Tcp(h) if h.contains(':') => format!("[{h}]:{}", self.port),
            HostAddr::Tcp(h) => format!("{h}:{}", self.port),
        }
    }
}

/// The resolved connection settings.
#[derive(Clone, Debug)]
pub struct ConnSettings {
    pub(crate) targets: Vec<Target>,
    pub(crate) host_origin: Origin,
    pub(crate) port_origin: Origin,
    pub(crate) user: (String, Origin),
    pub(crate) dbname: (String, Origin),
    /// From the connection string, the service file or PGPASSWORD.
    pub(crate) password: Option<(Secret, Origin)>,
    pub(crate) passfile: Option<PathBuf>,
    pub(crate) tls: TlsSettings,
    pub(crate) options: Option<String>,
    pub(crate) application_name: Option<String>,
    pub(crate) fallback_application_name: String,
    /// Seconds (already raised to libpq's minimum of 2), with its origin.
    pub(crate) connect_timeout: Option<(u64, Origin)>,
    pub(crate) channel_binding: Option<String>,
    pub(crate) target_session_attrs: Option<String>,
    /// A password typed at the prompt that the server accepted; shared with
    /// copies made by `with_dbname` (same server, same user).
    pub(crate) prompted: Arc<Mutex<Option<Secret>>>,
}

#[derive(Clone, Debug)]
pub(super) struct Val {
    pub value: String,
    pub origin: Origin,
}

/// Keyword → value and origin, filled layer by layer.
pub(super) type Params = BTreeMap<&'static str, Val>;

const FLAG_HOST: &str = "-h/--host";
const FLAG_PORT: &str = "-p/--port";
const FLAG_USER: &str = "-U/--username";
const FLAG_DBNAME: &str = "-d/--dbname";

impl ConnSettings {
    /// Resolves the settings. Returns warnings (ignored password file,
    /// ignored parameters, a flag overridden by the connection string) for
    /// the caller to show; nothing is printed here.
    pub fn resolve(
        args: &ConnArgs,
        env: &dyn Env,
    ) -> Result<(ConnSettings, Vec<String>), ConnError> {
        let mut warnings = Vec::new();
        let mut params = Params::new();
        apply_command_line(args, &mut params, &mut warnings)?;
        apply_service(&mut params, env)?;
        apply_env(&mut params, env);
        check_keywords(&params, &mut warnings)?;
        let settings = build(&params, env, &mut warnings)?;
        Ok((settings, warnings))
    }

    /// The same server and user, another database. The password-file lookup
    /// is redone for the new name (entries may be per database).
    pub fn with_dbname(&self, dbname: &str) -> ConnSettings {
        let mut s = self.clone();
        s.dbname = (dbname.to_string(), Origin::Program);
        s.lookup_passfile();
        s
    }

    pub fn dbname(&self) -> &str {
        &self.dbname.0
    }

    pub fn user(&self) -> &str {
        &self.user.0
    }

    /// All servers, comma-separated: `/tmp/x (socket)` or `db.example:5432`.
    pub fn host_display(&self) -> String {
        let all: Vec<String> = self.targets.iter().map(Target::display).collect();
        all.join(", ")
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    pub fn sslmode(&self) -> SslMode {
        self.tls.mode
    }

    pub fn application_name(&self) -> &str {
        self.application_name
            .as_deref()
            .unwrap_or(&self.fallback_application_name)
    }

    /// Where each main value came from, for a "connection details" display:
    /// `(name, value, origin)`; the password shows as `***` or `(none)`.
    pub fn explain(&self) -> Vec<(&'static str, String, Origin)> {
        let ports: Vec<String> = self.targets.iter().map(|t| t.port.to_string()).collect();
        let known = self.targets.first().and_then(|t| self.password_for(t));
        let (pw, pw_origin) = match known {
            Some((_, origin)) => ("***".to_string(), origin),
            None => ("(none)".to_string(), Origin::Default),
        };
        vec![
            ("host", self.host_display(), self.host_origin.clone()),
            ("port", ports.join(","), self.port_origin.clone()),
            ("user", self.user.0.clone(), self.user.1.clone()),
            ("dbname", self.dbname.0.clone(), self.dbname.1.clone()),
            (
                "sslmode",
                self.tls.mode.as_str().to_string(),
                self.tls.mode_origin.clone(),
            ),
            ("password", pw, pw_origin),
        ]
    }

    /// The password to send to `target`: one typed at the prompt and
    /// accepted wins (it is known good), then an explicit one, then the
    /// password file's entry for this host.
    pub(crate) fn password_for(&self, target: &Target) -> Option<(Secret, Origin)> {
        let prompted = self
            .prompted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(p) = prompted {
            return Some((p, Origin::Prompt));
        }
        if let Some(p) = &self.password {
            return Some(p.clone());
        }
        let file = self.passfile.clone()?;
        target
            .passfile_password
            .clone()
            .map(|p| (p, Origin::PasswordFile(file)))
    }

    pub(crate) fn remember_prompted(&self, secret: Secret) {
        *self.prompted.lock().unwrap_or_else(PoisonError::into_inner) = Some(secret);
    }

    /// Fills each target's password-file entry; returns the warnings.
    fn lookup_passfile(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        for t in &mut self.targets {
            t.passfile_password = None;
            let (Some(file), None) = (&self.passfile, &self.password) else {
                continue; // libpq reads the file only when no password is given
            };
            let key = pgpass::host_key(&t.host);
            match pgpass::lookup(file, &key, t.port, &self.dbname.0, &self.user.0) {
                Lookup::Found(p) => t.passfile_password = Some(p),
                Lookup::NotFound => {}
                Lookup::Ignored(w) if !warnings.contains(&w) => warnings.push(w),
                Lookup::Ignored(_) => {}
            }
        }
        warnings
    }
}

/// Flags first, then the expanded `-d` connection string over them: psql
/// passes host, port, user, then dbname to PQconnectdbParams with
/// expand_dbname, and libpq lets the expanded string override earlier
/// entries (verified with psql 15: `psql -h /a -d "host=/b"` uses /b).
fn apply_command_line(
    args: &ConnArgs,
    params: &mut Params,
    warnings: &mut Vec<String>,
) -> Result<(), ConnError> {
    let flags = [
        ("host", FLAG_HOST, &args.host),
        ("port", FLAG_PORT, &args.port),
        ("user", FLAG_USER, &args.user),
    ];
    for (key, flag, value) in flags {
        // libpq skips empty array values, so `-h ""` does not block PGHOST.
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            params.insert(
                key,
                Val {
                    value: v.clone(),
                    origin: Origin::Flag(flag),
                },
            );
        }
    }
    let Some(d) = args.dbname.as_ref().filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    if !is_conn_string(d) {
        params.insert(
            "dbname",
            Val {
                value: d.clone(),
                origin: Origin::Flag(FLAG_DBNAME),
            },
        );
        return Ok(());
    }
    let pairs = parse_conn_string(d).map_err(|reason| ConnError::ConnString {
        origin: Origin::Flag(FLAG_DBNAME),
        reason,
    })?;
    for (key, value) in pairs {
        if let Some(Val {
            value: old,
            origin: Origin::Flag(flag),
        }) = params.get(key)
            && *old != value
        {
            warnings.push(format!(
                "{flag} \"{old}\" is overridden by {key} \"{value}\" from the connection string given to {FLAG_DBNAME} (psql does the same)"
            ));
        }
        params.insert(
            key,
            Val {
                value,
                origin: Origin::ConnString,
            },
        );
    }
    Ok(())
}

/// The service (from `service=` or PGSERVICE) fills what is still unset.
fn apply_service(params: &mut Params, env: &dyn Env) -> Result<(), ConnError> {
    let name = match params.get("service") {
        Some(v) => v.value.clone(),
        None => match env.var("PGSERVICE") {
            Some(name) => name,
            None => return Ok(()),
        },
    };
    let svc = service::lookup(&name, env)?;
    let origin = svc.origin();
    for (key, value) in svc.pairs {
        params.entry(key).or_insert(Val {
            value,
            origin: origin.clone(),
        });
    }
    Ok(())
}

/// Environment variables fill what is still unset. As in libpq a variable
/// that is set but empty counts as set (and then means "the default").
fn apply_env(params: &mut Params, env: &dyn Env) {
    for kw in KEYWORDS {
        let Some(var) = kw.env.filter(|_| kw.name != "service") else {
            continue;
        };
        if params.contains_key(kw.name) {
            continue;
        }
        if let Some(value) = env.var(var) {
            params.insert(
                kw.name,
                Val {
                    value,
                    origin: Origin::Env(var),
                },
            );
        } else if kw.name == "sslmode"
            && env.var("PGREQUIRESSL").is_some_and(|v| v.starts_with('1'))
        {
            params.insert(
                kw.name,
                Val {
                    value: "require".into(),
                    origin: Origin::Env("PGREQUIRESSL"),
                },
            );
        }
    }
}

/// C's strtol as libpq uses it: surrounding blanks allowed, nothing else.
pub(super) fn parse_c_int(s: &str) -> Option<i64> {
    s.trim_matches(|c: char| c.is_ascii() && is_c_space(c as u8))
        .parse()
        .ok()
}

fn build(
    params: &Params,
    env: &dyn Env,
    warnings: &mut Vec<String>,
) -> Result<ConnSettings, ConnError> {
    let get = |k: &str| params.get(k).filter(|v| !v.value.is_empty());
    let origin_of = |k: &str| get(k).map_or(Origin::Default, |v| v.origin.clone());

    let hosts = parse_hosts(get("host"))?;
    let ports = parse_ports(get("port"), hosts.len())?;
    let user = match get("user") {
        Some(v) => (v.value.clone(), v.origin.clone()),
        None => (
            env.os_user()
                .filter(|u| !u.is_empty())
                .ok_or(ConnError::NoUser)?,
            Origin::Default,
        ),
    };
    let dbname = match get("dbname") {
        Some(v) => (v.value.clone(), v.origin.clone()),
        None => (user.0.clone(), Origin::Default), // libpq: dbname defaults to the user name
    };
    let password = get("password").map(|v| (Secret::new(v.value.clone()), v.origin.clone()));
    let passfile = match get("passfile") {
        Some(v) => Some(PathBuf::from(&v.value)),
        None => env.home().map(|h| h.join(".pgpass")),
    };
    let tls = build_tls(params, env, &hosts, warnings)?;
    let connect_timeout = parse_connect_timeout(get("connect_timeout"))?;
    let mut settings = ConnSettings {
        targets: hosts
            .into_iter()
            .zip(ports)
            .map(|(host, port)| Target {
                host,
                port,
                passfile_password: None,
            })
            .collect(),
        host_origin: origin_of("host"),
        port_origin: origin_of("port"),
        user,
        dbname,
        password,
        passfile,
        tls,
        options: get("options").map(|v| v.value.clone()),
        application_name: get("application_name").map(|v| v.value.clone()),
        fallback_application_name: get("fallback_application_name")
            .map_or(FALLBACK_APPLICATION_NAME.to_string(), |v| v.value.clone()),
        connect_timeout,
        channel_binding: get("channel_binding").map(|v| v.value.clone()),
        target_session_attrs: get("target_session_attrs").map(|v| v.value.clone()),
        prompted: Arc::new(Mutex::new(None)),
    };
    warnings.extend(settings.lookup_passfile());
    Ok(settings)
}

/// The host list; none means the default socket directory.
fn parse_hosts(v: Option<&Val>) -> Result<Vec<HostAddr>, ConnError> {
    match v {
        Some(v) => v
            .value
            .split(',')
            .map(|h| parse_host(h, &v.origin))
            .collect(),
        None => Ok(vec![HostAddr::Socket(DEFAULT_SOCKET_DIR.into())]),
    }
}

/// connect_timeout in seconds, as libpq reads it: zero or negative waits
/// forever (None); the minimum is 2 seconds.
fn parse_connect_timeout(v: Option<&Val>) -> Result<Option<(u64, Origin)>, ConnError> {
    let Some(v) = v else {
        return Ok(None);
    };
    match parse_c_int(&v.value) {
        Some(n) if n <= 0 => Ok(None),
        Some(n) => Ok(Some((n.max(2) as u64, v.origin.clone()))),
        None => Err(ConnError::invalid("connect_timeout", &v.value, &v.origin)
            .with_hint(": give a number of seconds")),
    }
}

fn parse_host(item: &str, origin: &Origin) -> Result<HostAddr, ConnError> {
    if item.is_empty() {
        Ok(HostAddr::Socket(DEFAULT_SOCKET_DIR.into())) // an empty list element means the default
    } else if item.starts_with('/') {
        Ok(HostAddr::Socket(item.into()))
    } else if item.starts_with('@') {
        Err(ConnError::invalid("host", item, origin)
            .with_hint(": abstract Unix sockets are not supported"))
    } else {
        Ok(HostAddr::Tcp(item.to_string()))
    }
}

/// One port for all hosts, or one per host (libpq's rule); empty = 5432.
fn parse_ports(v: Option<&Val>, hosts: usize) -> Result<Vec<u16>, ConnError> {
    let Some(v) = v else {
        return Ok(vec![DEFAULT_PORT; hosts]);
    };
    let items: Vec<&str> = v.value.split(',').collect();
    if items.len() != 1 && items.len() != hosts {
        return Err(ConnError::HostPortMismatch {
            hosts,
            ports: items.len(),
            origin: v.origin.clone(),
        });
    }
    let ports = items
        .iter()
        .map(|p| match p.is_empty() {
            true => Ok(DEFAULT_PORT),
            false => parse_c_int(p)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    ConnError::invalid("port", p, &v.origin)
                        .with_hint(": use a number from 1 to 65535")
                }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if ports.len() == 1 {
        vec![ports[0]; hosts]
    } else {
        ports
    })
}

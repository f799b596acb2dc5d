//! [`ConnSettings::connect`]: opens a `postgres::Client` from resolved
//! settings — tries the hosts in order, applies sslmode (including libpq's
//! allow/prefer fallbacks), asks for a password when the server wants one
//! (through a pluggable [`PasswordPrompt`]), and turns driver errors into
//! messages that name the server, the user and what to do.
//!
//! Host-list rule (libpq docs, "Specifying Multiple Hosts"): a host that
//! cannot be reached is skipped; once a server answers and rejects the
//! connection (authentication, missing database, ...), the rest are not tried.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use postgres::Client;
use postgres::config::{ChannelBinding, SslMode as PgSslMode, TargetSessionAttrs};
use postgres::error::{DbError, SqlState};
use postgres_native_tls::MakeTlsConnector;

use super::env::Secret;
use super::error::{ConnError, Origin};
use super::resolve::{ConnSettings, HostAddr, Target};
use super::tls::SslMode;

/// A NOTICE/WARNING/INFO message from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeLine {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl From<&DbError> for NoticeLine {
    fn from(db: &DbError) -> NoticeLine {
        NoticeLine {
            severity: db.severity().to_string(),
            code: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
        }
    }
}

/// Receives the server's notices.
pub type NoticeFn = Box<dyn Fn(NoticeLine) + Send + Sync>;

/// Why a password is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptReason {
    /// The server wants a password and none is known.
    Missing,
    /// The known password (from the given source) was rejected.
    Rejected(Origin),
}

#[derive(Clone, Debug)]
pub struct PasswordRequest {
    pub user: String,
    /// e.g. `db.example:5432`.
    pub server: String,
    pub reason: PromptReason,
}

/// Supplies a password interactively. `Ok(None)` means "cannot ask" (no
/// terminal) or "the user gave none"; connecting then fails with advice.
/// Any `Fn(&PasswordRequest) -> Result<Option<Secret>, ConnError>` works.
pub trait PasswordPrompt {
    fn ask(&self, request: &PasswordRequest) -> Result<Option<Secret>, ConnError>;
}

impl<F> PasswordPrompt for F
where
    F: Fn(&PasswordRequest) -> Result<Option<Secret>, ConnError>,
{
    fn ask(&self, request: &PasswordRequest) -> Result<Option<Secret>, ConnError> {
        self(request)
    }
}

/// Asks on the controlling terminal (`/dev/tty`) without echo, like psql.
/// Without a controlling terminal (cron, CI, `ssh host cmd`) it does not ask.
#[derive(Clone, Copy, Debug, Default)]
pub struct TtyPrompt;

impl PasswordPrompt for TtyPrompt {
    fn ask(&self, request: &PasswordRequest) -> Result<Option<Secret>, ConnError> {
        use std::io::Write as _;
        let Ok(mut tty) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
        else {
            return Ok(None);
        };
        if let PromptReason::Rejected(origin) = &request.reason {
            writeln!(
                tty,
                "The server at {} rejected the password from {origin}.",
                request.server
            )
            .map_err(ConnError::Prompt)?;
        }
        let typed = rpassword::prompt_password(format!("Password for user {}: ", request.user))
            .map_err(ConnError::Prompt)?;
        Ok(Some(Secret::new(typed)).filter(|s| !s.expose().is_empty()))
    }
}

/// Never asks (headless runs, `--no-password`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPrompt;

impl PasswordPrompt for NoPrompt {
    fn ask(&self, _: &PasswordRequest) -> Result<Option<Secret>, ConnError> {
        Ok(None)
    }
}

/// How one attempt failed.
enum Failure {
    /// The server asked for a password and none was configured.
    NeedPassword,
    /// The server answered with an error (stop: libpq does not try further hosts).
    Server(Box<DbError>),
    /// The TLS handshake failed (prefer falls back to plain text).
    TlsHandshake(String),
    /// Could not reach the server (try the next host).
    Network(String),
    /// Local setup problem (TLS files): stop.
    Setup(ConnError),
}

/// How trying one host ended, when it did not end the whole connect.
enum HostOutcome {
    Connected(Box<Client>),
    /// Could not reach it (why, with a hint): try the next host.
    Unreachable(String),
}

type SharedNotice = Option<Arc<dyn Fn(NoticeLine) + Send + Sync>>;

impl ConnSettings {
    /// Connects, asking on the terminal for a password if needed.
    pub fn connect(&self, on_notice: Option<NoticeFn>) -> Result<Client, ConnError> {
        self.connect_with(on_notice, &TtyPrompt)
    }

    /// Connects with a caller-supplied prompt (at most one prompt per call).
    pub fn connect_with(
        &self,
        on_notice: Option<NoticeFn>,
        prompt: &dyn PasswordPrompt,
    ) -> Result<Client, ConnError> {
        let notice: SharedNotice = on_notice.map(Arc::from);
        let mut tls = None;
        let mut prompted = false;
        let mut unreachable = Vec::new();
        for target in &self.targets {
            match self.connect_host(target, &notice, &mut tls, prompt, &mut prompted)? {
                HostOutcome::Connected(client) => return Ok(*client),
                HostOutcome::Unreachable(why) => unreachable.push((target, why)),
            }
        }
        Err(self.unreachable_error(&unreachable))
    }

    /// Tries one host, asking for a password when the server wants one and
    /// `prompted` says none was asked for yet. An `Err` ends the whole
    /// connect; an unreachable host lets the caller try the next one.
    fn connect_host(
        &self,
        target: &Target,
        notice: &SharedNotice,
        tls: &mut Option<MakeTlsConnector>,
        prompt: &dyn PasswordPrompt,
        prompted: &mut bool,
    ) -> Result<HostOutcome, ConnError> {
        let mut password = self.password_for(target);
        loop {
            let secret = password.as_ref().map(|(s, _)| s);
            let failure = match self.attempt(target, secret, notice, tls) {
                Ok(client) => {
                    if let Some((s, Origin::Prompt)) = password {
                        self.remember_prompted(s);
                    }
                    return Ok(HostOutcome::Connected(Box::new(client)));
                }
                Err(f) => f,
            };
            let origin = password.as_ref().map(|(_, o)| o);
            if let Some(reason) = prompt_reason(&failure, origin, *prompted) {
                *prompted = true;
                let request = PasswordRequest {
                    user: self.user.0.clone(),
                    server: target.display(),
                    reason,
                };
                if let Some(s) = prompt.ask(&request)? {
                    password = Some((s, Origin::Prompt));
                    continue;
                }
            }
            return match failure {
                Failure::NeedPassword => Err(ConnError::PasswordRequired {
                    target: target.display(),
                    user: self.user.0.clone(),
                }),
                Failure::Server(db) => {
                    let origin = password.as_ref().map(|(_, o)| o);
                    Err(self.connect_error(target, describe_server(&db, self, origin)))
                }
                Failure::Setup(e) => Err(e),
                Failure::TlsHandshake(why) => {
                    Ok(HostOutcome::Unreachable(self.describe_tls(target, &why)))
                }
                Failure::Network(why) => Ok(HostOutcome::Unreachable(why)),
            };
        }
    }

    /// The error when no host could be reached: the one host's reason, or
    /// every host's.
    fn unreachable_error(&self, unreachable: &[(&Target, String)]) -> ConnError {
        match unreachable {
            [(target, why)] => self.connect_error(target, why.clone()),
            all => ConnError::Connect {
                target: format!("any of the {} servers", all.len()),
                user: self.user.0.clone(),
                reason: all
                    .iter()
                    .map(|(t, why)| format!("{}: {why}", t.display()))
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        }
    }

    fn connect_error(&self, target: &Target, reason: String) -> ConnError {
        ConnError::Connect {
            target: format!("server at {}", target.display()),
            user: self.user.0.clone(),
            reason,
        }
    }

    /// One host, with libpq's sslmode behaviour. Unix sockets never use TLS.
    fn attempt(
        &self,
        target: &Target,
        password: Option<&Secret>,
        notice: &SharedNotice,
        tls: &mut Option<MakeTlsConnector>,
    ) -> Result<Client, Failure> {
        let socket = matches!(target.host, HostAddr::Socket(_));
        let mode = if socket {
            SslMode::Disable
        } else {
            self.tls.mode
        };
        let plain = || self.try_once(target, password, notice, None);
        match mode {
            SslMode::Disable => plain(),
            // allow: plain text first; TLS only if the server refuses that.
            SslMode::Allow => match plain() {
                Err(Failure::Server(_)) => self.try_once(
                    target,
                    password,
                    notice,
                    Some((self.connector(tls)?, PgSslMode::Require)),
                ),
                other => other,
            },
            // prefer: TLS if the server offers it; plain text if the handshake fails.
            SslMode::Prefer => match self.try_once(
                target,
                password,
                notice,
                Some((self.connector(tls)?, PgSslMode::Prefer)),
            ) {
                Err(Failure::TlsHandshake(_)) => plain(),
                other => other,
            },
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => self.try_once(
                target,
                password,
                notice,
                Some((self.connector(tls)?, PgSslMode::Require)),
            ),
        }
    }

    fn connector(&self, cache: &mut Option<MakeTlsConnector>) -> Result<MakeTlsConnector, Failure> {
        if let Some(c) = cache {
            return Ok(c.clone());
        }
        let made = MakeTlsConnector::new(self.tls.connector().map_err(Failure::Setup)?);
        *cache = Some(made.clone());
        Ok(made)
    }

    fn try_once(
        &self,
        target: &Target,
        password: Option<&Secret>,
        notice: &SharedNotice,
        tls: Option<(MakeTlsConnector, PgSslMode)>,
    ) -> Result<Client, Failure> {
        let mut c = postgres::Config::new();
        match &target.host {
            HostAddr::Socket(dir) => c.host_path(dir),
            HostAddr::Tcp(name) => c.host(name),
        };
        c.port(target.port)
            .user(&self.user.0)
            .dbname(&self.dbname.0)
            .application_name(self.application_name());
        if let Some(p) = password {
            c.password(p.expose());
        }
        if let Some((secs, _)) = &self.connect_timeout {
            c.connect_timeout(Duration::from_secs(*secs));
        }
        if let Some(o) = &self.options {
            c.options(o);
        }
        match self.channel_binding.as_deref() {
            Some("disable") => c.channel_binding(ChannelBinding::Disable),
            Some("require") => c.channel_binding(ChannelBinding::Require),
            _ => c.channel_binding(ChannelBinding::Prefer),
        };
        if self.target_session_attrs.as_deref() == Some("read-write") {
            c.target_session_attrs(TargetSessionAttrs::ReadWrite);
        }
        if let Some(n) = notice {
            let n = Arc::clone(n);
            c.notice_callback(move |db| n(NoticeLine::from(&db)));
        }
        let result = match tls {
            Some((connector, mode)) => c.ssl_mode(mode).connect(connector),
            None => c.ssl_mode(PgSslMode::Disable).connect(postgres::NoTls),
        };
        result.map_err(|e| self.classify(target, e))
    }

    fn classify(&self, target: &Target, e: postgres::Error) -> Failure {
        if e.as_db_error().is_some() {
            return match e.into_source().and_then(|s| s.downcast::<DbError>().ok()) {
                Some(db) => Failure::Server(db),
                None => Failure::Network("the server sent an unreadable error".into()),
            };
        }
        let head = e.to_string();
        let cause = e.source().map(ToString::to_string).unwrap_or_default();
        match (head.as_str(), cause.as_str()) {
            ("invalid configuration", "password missing") => Failure::NeedPassword,
            ("error performing TLS handshake", "server does not support TLS") => {
                Failure::Network(format!(
                    "the server does not accept TLS connections, but sslmode is {} (from {})",
                    self.tls.mode.as_str(),
                    self.tls.mode_origin
                ))
            }
            ("error performing TLS handshake", _) => Failure::TlsHandshake(cause),
            ("timeout waiting for server", _) => Failure::Network(match &self.connect_timeout {
                Some((secs, origin)) => {
                    format!("no answer within {secs} s (connect_timeout from {origin})")
                }
                None => "timeout waiting for the server".into(),
            }),
            _ => match e.source().and_then(|s| s.downcast_ref::<std::io::Error>()) {
                Some(io) => Failure::Network(describe_io(io, target)),
                None if cause.is_empty() => Failure::Network(head),
                None => Failure::Network(format!("{head}: {cause}")),
            },
        }
    }

    fn describe_tls(&self, target: &Target, why: &str) -> String {
        let mode = self.tls.mode;
        let check = match mode {
            SslMode::VerifyFull => {
                format!(" and be issued for the host name {}", host_name(target))
            }
            _ => String::new(),
        };
        let roots = match self.tls.roots() {
            super::tls::Roots::File(p) => p.display().to_string(),
            super::tls::Roots::System => "the system certificate store".into(),
            super::tls::Roots::Missing(_) => return format!("TLS handshake failed: {why}"),
        };
        format!(
            "TLS handshake failed: {why} — with sslmode {} (from {}) the server certificate must be signed by a CA in {roots}{check}",
            mode.as_str(),
            self.tls.mode_origin
        )
    }
}

/// Why to ask for a password after `failure`, if at all: the server wants
/// one and none was given, or rejected the one from `password`; never twice
/// in one connect.
fn prompt_reason(
    failure: &Failure,
    password: Option<&Origin>,
    prompted: bool,
) -> Option<PromptReason> {
    match failure {
        Failure::NeedPassword | Failure::Server(_) if prompted => None,
        Failure::NeedPassword => Some(PromptReason::Missing),
        Failure::Server(db) if *db.code() == SqlState::INVALID_PASSWORD => {
            password.map(|o| PromptReason::Rejected(o.clone()))
        }
        _ => None,
    }
}

fn host_name(target: &Target) -> String {
    match &target.host {
        HostAddr::Tcp(h) => h.clone(),
        HostAddr::Socket(d) => d.display().to_string(),
    }
}

fn describe_io(io: &std::io::Error, target: &Target) -> String {
    let text = io.to_string();
    // tokio-postgres reports a read-only server (target_session_attrs) and
    // name-resolution failures as I/O errors: the generic hint would mislead.
    if text == "database does not allow writes" {
        return "the server accepts only read-only sessions (a standby?), and target_session_attrs is read-write".into();
    }
    match &target.host {
        HostAddr::Tcp(h) if text.contains("lookup address") => {
            format!("{text} — check the host name \"{h}\"")
        }
        HostAddr::Socket(dir) => format!(
            "{text} on socket {}/.s.PGSQL.{} — is PostgreSQL running and listening there? (check with: pg_lsclusters)",
            dir.display(),
            target.port
        ),
        HostAddr::Tcp(h) => format!(
            "{text} — is the server running on {h} and accepting TCP/IP connections on port {}?",
            target.port
        ),
    }
}

/// The server's message plus what to do about it.
fn describe_server(db: &DbError, s: &ConnSettings, password: Option<&Origin>) -> String {
    let mut text = db.message().to_string();
    if let Some(d) = db.detail() {
        text.push_str(&format!(" ({d})"));
    }
    let code = db.code();
    let hint = if *code == SqlState::INVALID_CATALOG_NAME {
        Some("check the name with: psql -l".to_string())
    } else if *code == SqlState::INVALID_PASSWORD {
        Some(match password {
            Some(Origin::Prompt) => "the password typed at the prompt is wrong".to_string(),
            Some(o) => format!("the password came from {o}; correct it there"),
            None => "no password was sent".to_string(),
        })
    } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        && db.message().contains("pg_hba.conf")
    {
        Some("the server's pg_hba.conf does not allow this host/user/database/encryption combination; ask its administrator, or try another sslmode".to_string())
    } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        && db.message().starts_with("role ")
    {
        Some(format!("check the user name (from {})", s.user.1))
    } else if *code == SqlState::CANNOT_CONNECT_NOW {
        Some(
            "the server is starting up, shutting down or recovering; try again shortly".to_string(),
        )
    } else if *code == SqlState::TOO_MANY_CONNECTIONS {
        Some("all connection slots are in use; try again later".to_string())
    } else {
        db.hint().map(str::to_string)
    };
    if let Some(h) = hint {
        text.push_str(" — ");
        text.push_str(&h);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::ConnArgs;
    use super::super::test_support::{Home, args, resolve};
    use super::*;

    /// The error of connecting with `a` (no password file, no prompt).
    fn connect_error(a: &ConnArgs, home: &Home) -> Option<String> {
        let (s, _) = resolve(a, &home.env(&[]));
        s.connect_with(None, &NoPrompt).err().map(|e| e.to_string())
    }

    #[test]
    fn unreachable_hosts_are_all_reported() {
        let home = Home::new();
        let a = args(
            None,
            None,
            None,
            Some("host=/nonexistent-a,127.0.0.1 port=5432,1"),
        );
        let e = connect_error(&a, &home);
        assert_eq!(
            e.as_deref(),
            Some(
                "could not connect to any of the 2 servers as user \"alice\": \
                 /nonexistent-a (socket): No such file or directory (os error 2) on socket /nonexistent-a/.s.PGSQL.5432 — is PostgreSQL running and listening there? (check with: pg_lsclusters); \
                 127.0.0.1:1: Connection refused (os error 111) — is the server running on 127.0.0.1 and accepting TCP/IP connections on port 1?"
            )
        );
    }

    #[test]
    fn tls_setup_problems_stop_before_connecting() {
        let home = Home::new();
        let a = args(
            Some("127.0.0.1"),
            Some("1"),
            None,
            Some("sslmode=verify-full"),
        );
        let e = connect_error(&a, &home);
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("root certificate file")),
            "{e:?}"
        );
        // Sockets never use TLS, so the same settings do not need the file.
        let a = args(
            Some("/nonexistent-a"),
            None,
            None,
            Some("sslmode=verify-full"),
        );
        let e = connect_error(&a, &home);
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("on socket /nonexistent-a/.s.PGSQL.5432")),
            "{e:?}"
        );
    }
}

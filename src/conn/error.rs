//! [`ConnError`], every way resolution or connecting can fail, and
//! [`Origin`], where a setting came from (so each message can name it).
//!
//! Rule for every message here: name the object (file, variable, server,
//! user, database), say what to do, never include a password.

use std::fmt;
use std::path::PathBuf;

/// Where a resolved value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A command-line option, e.g. `-p/--port`.
    Flag(&'static str),
    /// The connection string (URI or `key=value`) given to `-d/--dbname`.
    ConnString,
    /// A section of a connection service file.
    Service { name: String, file: PathBuf },
    /// An environment variable, e.g. `PGPORT`.
    Env(&'static str),
    /// libpq's built-in default.
    Default,
    /// A password file (`~/.pgpass`, PGPASSFILE or `passfile=`).
    PasswordFile(PathBuf),
    /// Typed at the password prompt.
    Prompt,
    /// Chosen by the program through [`super::ConnSettings::with_dbname`].
    Program,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => f.write_str(flag),
            Origin::ConnString => f.write_str("the connection string"),
            Origin::Service { name, file } => {
                write!(f, "service \"{name}\" in {}", file.display())
            }
            Origin::Env(var) => f.write_str(var),
            Origin::Default => f.write_str("the default"),
            Origin::PasswordFile(path) => write!(f, "password file {}", path.display()),
            Origin::Prompt => f.write_str("the password prompt"),
            Origin::Program => f.write_str("pgstep"),
        }
    }
}

/// Everything that can go wrong while resolving or connecting.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// A `-d/--dbname` value that looks like a connection string but is not one.
    #[error("invalid connection string (from {origin}): {reason}")]
    ConnString {
        origin: Origin,
        reason: ConnStringSyntax,
    },

    /// A value that libpq would reject, e.g. `invalid port "abc" (from PGPORT)`.
    #[error("invalid {what} \"{value}\" (from {origin}){hint}")]
    InvalidValue {
        what: &'static str,
        value: String,
        origin: Origin,
        /// Empty, or starting with ": " or " — ".
        hint: String,
    },

    /// A libpq parameter that pgstep cannot honour safely.
    #[error("{keyword} (from {origin}) is not supported by pgstep: {reason}")]
    Unsupported {
        keyword: &'static str,
        origin: Origin,
        reason: &'static str,
    },

    #[error("could not match {ports} port numbers to {hosts} hosts (from {origin})")]
    HostPortMismatch {
        hosts: usize,
        ports: usize,
        origin: Origin,
    },

    #[error(
        "could not determine the user name: no passwd entry for this process and USER is not set — give one with -U/--username or PGUSER"
    )]
    NoUser,

    #[error("service \"{name}\" not found in {searched}")]
    ServiceNotFound { name: String, searched: String },

    #[error("service file {} (from {origin}) not found", path.display())]
    ServiceFileMissing { path: PathBuf, origin: Origin },

    #[error("syntax error in service file {}, line {line}: {reason}", file.display())]
    ServiceFileSyntax {
        file: PathBuf,
        line: usize,
        reason: String,
    },

    #[error("could not read {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },

    /// TLS settings that cannot be applied (missing root certificate, key
    /// format or permissions, ...).
    #[error("{0}")]
    Tls(String),

    /// The server (or every server of a host list) could not be reached or
    /// refused the connection. `reason` already carries a hint.
    #[error("could not connect to {target} as user \"{user}\": {reason}")]
    Connect {
        target: String,
        user: String,
        reason: String,
    },

    #[error(
        "server at {target} asks for a password for user \"{user}\", and pgstep has none (none is configured and none was typed: no terminal to ask on, or an empty answer) — put it in ~/.pgpass (chmod 0600) or set PGPASSWORD"
    )]
    PasswordRequired { target: String, user: String },

    #[error("reading the password from the terminal failed: {0}")]
    Prompt(std::io::Error),

    #[error("could not write the temporary password file for child processes: {0}")]
    ChildPassfile(std::io::Error),
}

/// Why a connection string (a `postgresql://` URI or `key=value ...`) could
/// not be parsed, in libpq's words. `part` names a part of a URI (never its
/// value: it may be a password).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnStringSyntax {
    #[error("not a connection URI")]
    NotAUri,
    #[error("end of string reached when looking for matching \"]\" in IPv6 host address in URI")]
    UnterminatedIpv6,
    #[error("IPv6 host address may not be empty in URI")]
    EmptyIpv6,
    #[error(
        "unexpected character \"{0}\" after IPv6 host address in URI (expected \":\" or \"/\")"
    )]
    AfterIpv6(char),
    #[error("missing key/value separator \"=\" in URI query parameter: \"{0}\"")]
    MissingQuerySeparator(String),
    #[error("extra key/value separator \"=\" in URI query parameter: \"{0}\"")]
    ExtraQuerySeparator(String),
    #[error("invalid URI query parameter: \"{0}\"")]
    InvalidQueryParameter(String),
    #[error("invalid percent-encoded token in the {0}")]
    BadPercentToken(&'static str),
    #[error("forbidden value %00 in the {0}")]
    PercentZero(&'static str),
    #[error("the percent-decoded {0} is not valid UTF-8")]
    DecodedNotUtf8(&'static str),
    #[error("invalid connection option \"{0}\"")]
    InvalidOption(String),
    #[error("missing \"=\" after \"{0}\" in connection info string")]
    MissingEquals(String),
    #[error("unterminated quoted string in connection info string")]
    UnterminatedQuote,
    #[error("value of \"{0}\" is not valid UTF-8")]
    ValueNotUtf8(String),
    /// Any of the above in a string that may hold a password: the details
    /// could echo it, so they are withheld.
    #[error(
        "it could not be parsed (details withheld because it contains a password) — check the quoting: in key=value form quote values that contain blanks or quotes (password='a b', with \\' and \\\\ escapes); in a URI percent-encode special characters (%40 for @, %3A for :, %2F for /)"
    )]
    DetailsWithheld,
}

impl ConnError {
    pub(crate) fn invalid(what: &'static str, value: &str, origin: &Origin) -> ConnError {
        ConnError::InvalidValue {
            what,
            value: value.to_string(),
            origin: origin.clone(),
            hint: String::new(),
        }
    }

    pub(crate) fn with_hint(mut self, text: &str) -> ConnError {
        if let ConnError::InvalidValue { hint, .. } = &mut self {
            *hint = text.to_string();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_origin() {
        let e = ConnError::invalid("port", "abc", &Origin::Env("PGPORT"));
        assert_eq!(e.to_string(), "invalid port \"abc\" (from PGPORT)");
        let e = ConnError::invalid("sslmode", "requir", &Origin::ConnString)
            .with_hint(": use disable, allow, prefer, require, verify-ca or verify-full");
        assert_eq!(
            e.to_string(),
            "invalid sslmode \"requir\" (from the connection string): use disable, allow, prefer, require, verify-ca or verify-full"
        );
        let o = Origin::Service {
            name: "prod".into(),
            file: "/etc/pg_service.conf".into(),
        };
        assert_eq!(o.to_string(), "service \"prod\" in /etc/pg_service.conf");
    }
}

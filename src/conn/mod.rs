//! Connection resolution following libpq's conventions.
//!
//! The `postgres` crate reads no environment variable, no password file and
//! no service file, and has no default host. This module does what libpq
//! (and so psql, pg_dump, pg_restore) does, so that `pgstep` connects where
//! a sysadmin's `psql` would, and hands the same settings to child tools.
//!
//! # Precedence (per parameter, first source that has a value wins)
//!
//! 1. The connection string given to `-d/--dbname` (a `postgresql://` URI or
//!    `key=value ...`), which *overrides* `-h/-p/-U`. psql passes host, port,
//!    user, then dbname to `PQconnectdbParams` with `expand_dbname`, and
//!    libpq's `conninfo_array_parse` lets the expanded string override
//!    earlier array entries. Checked with psql 15: `psql -h /a -d "host=/b"`
//!    connects to `/b`. pgstep warns when this happens.
//! 2. `-h/--host`, `-p/--port`, `-U/--username`, and `-d` holding a plain
//!    database name. An empty flag value is skipped (libpq skips empty array
//!    values), so `-h ""` leaves PGHOST in charge.
//! 3. The service section named by `service=` (from 1.) or else `PGSERVICE`,
//!    from `PGSERVICEFILE` or `~/.pg_service.conf`, else from
//!    `$PGSYSCONFDIR/pg_service.conf` (Debian default
//!    `/etc/postgresql-common`). Service values beat the environment:
//!    libpq's `conninfo_add_defaults` applies the service first, then
//!    environment variables, then compiled-in defaults (checked with psql:
//!    PGHOST loses to the service's host).
//! 4. Environment variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`,
//!    `PGSSLMODE`, `PGAPPNAME`, `PGCONNECT_TIMEOUT`, ...; `PGREQUIRESSL=1`
//!    only when PGSSLMODE is unset). A variable set to "" counts as set.
//! 5. Defaults: host = the socket directory `/var/run/postgresql`, port
//!    5432, user = the effective user's passwd name, dbname = user, sslmode
//!    prefer (verify-full when `sslrootcert=system`), application name
//!    `pgstep` (fallback_application_name).
//!
//! A value that is present but empty at levels 1, 3 or 4 blocks the lower
//! levels and then means "the default" (libpq; `host=` ⇒ default socket).
//!
//! **Password:** `password=` (levels 1, 3) or `PGPASSWORD`; otherwise the
//! password file (`passfile=`, `PGPASSFILE`, `~/.pgpass`), looked up per host
//! with the final host/port/database/user (libpq's `pqConnectOptions2`);
//! otherwise, when the server asks, a prompt (at most once per connect).
//! A prompted password that the server accepted is reused for later
//! connections and for child processes.
//!
//! Specification: libpq documentation — "Parameter Key Words", "Connection
//! URIs", "Environment Variables", "The Password File", "The Connection
//! Service File", "SSL Support" — and `src/interfaces/libpq/fe-connect.c`.
//!
//! # Files
//! - `env.rs`: [`Env`] / [`ProcessEnv`] (environment, home, OS user), [`Secret`].
//! - `error.rs`: [`ConnError`] and [`Origin`] (where a value came from).
//! - `conninfo.rs`: libpq's keyword list and the `key=value` parser.
//! - `uri.rs`: the `postgresql://` URI parser.
//! - `service.rs`: `pg_service.conf` lookup.
//! - `pgpass.rs`: password-file lookup and writing.
//! - `resolve.rs`: [`ConnSettings::resolve`], the layering above.
//! - `validate.rs`: refused / ignored keywords, TLS keyword validation.
//! - `tls.rs`: [`SslMode`] and the native-tls connector (certificate rules).
//! - `connect.rs`: [`ConnSettings::connect`], prompts, error messages.
//! - `child.rs`: [`ChildEnv`] for pg_dump / pg_restore / psql.
//! - Tests: `tests_resolve.rs` (precedence, validation), `tests_password.rs`
//!   (password file, prompts, child environment), `tests_server.rs` (a
//!   throw-away PostgreSQL 15 cluster: scram over a socket, TLS over
//!   127.0.0.1 with every sslmode, client certificates, real psql as a
//!   child), `test_support.rs`; each parser file tests itself.
//!
//! # Multiple hosts
//! `host=a,b` (and URI host lists) are parsed and tried in order, with one
//! port for all or one per host; an unreachable host is skipped, a server
//! that answers with an error ends the attempt (as libpq). Child processes
//! get the same list.
//!
//! # Not supported (refused with a message naming the source)
//! `hostaddr`, `requirepeer`, `require_auth`, `sslcrl`/`sslcrldir` (native-tls
//! cannot check revocation lists), `sslpassword` (encrypted keys),
//! `replication`, `gssencmode=require`, `sslnegotiation=direct`,
//! `sslcertmode=require`, `target_session_attrs` other than any/read-write,
//! abstract Unix sockets (`@name`), client keys that are not PKCS#8 PEM.
//! Ignored with a warning (unless set in the environment): client_encoding
//! (the driver always uses UTF8), keepalives*, tcp_user_timeout,
//! sslcompression, krbsrvname, gsslib, gssdelegation,
//! load_balance_hosts=random (hosts are tried in order). GSSAPI/SSPI
//! authentication and LDAP service lookups are not available.
//! sslmode `allow` tries plain text first and TLS only if the server
//! rejects that; `prefer` falls back to plain text if the TLS handshake fails.

mod child;
mod connect;
mod conninfo;
mod env;
mod error;
mod pgpass;
mod resolve;
mod service;
mod tls;
mod uri;
mod validate;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests_password;
#[cfg(test)]
mod tests_resolve;
#[cfg(test)]
mod tests_server;

pub use child::ChildEnv;
pub use connect::{
    NoPrompt, NoticeFn, NoticeLine, PasswordPrompt, PasswordRequest, PromptReason, TtyPrompt,
};
pub use env::{Env, ProcessEnv, Secret};
pub use error::{ConnError, ConnStringSyntax, Origin};
pub use resolve::{
    ConnArgs, ConnSettings, DEFAULT_PORT, DEFAULT_SOCKET_DIR, FALLBACK_APPLICATION_NAME, HostAddr,
    Target,
};
pub use tls::SslMode;

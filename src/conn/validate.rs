//! Checks on keyword values after layering: which libpq keywords pgstep
//! refuses (they would change where or how securely it connects) or ignores
//! (harmless), and validation of the TLS keywords into [`TlsSettings`].

use std::path::Path;

use super::env::Env;
use super::error::{ConnError, Origin};
use super::resolve::{HostAddr, Params};
use super::tls::{SslMode, TlsSettings, parse_protocol, protocol_rank};

/// Keywords refused whatever their value, with the reason.
const REFUSED: &[(&str, &str)] = &[
    (
        "hostaddr",
        "put the server's name or address in host (-h) instead",
    ),
    (
        "requirepeer",
        "peer-credential checks are not implemented; remove it",
    ),
    (
        "require_auth",
        "the driver cannot restrict authentication methods; remove it",
    ),
    (
        "sslcrl",
        "certificate revocation lists cannot be checked by pgstep's TLS library; remove it",
    ),
    (
        "sslcrldir",
        "certificate revocation lists cannot be checked by pgstep's TLS library; remove it",
    ),
    (
        "sslpassword",
        "encrypted client keys are not supported; decrypt the key (openssl pkcs8) and keep it mode 0600",
    ),
    ("replication", "pgstep needs a normal connection; remove it"),
];

/// A keyword with a fixed set of values: the ones pgstep accepts, the valid
/// ones it refuses (with the reason), and the choices named when the value
/// is none of them.
struct Choice {
    keyword: &'static str,
    accepted: &'static [&'static str],
    refused: &'static [&'static str],
    reason: &'static str,
    choices: &'static str,
}

const CHOICES: &[Choice] = &[
    Choice {
        keyword: "gssencmode",
        // No GSSAPI encryption: what libpq does without credentials.
        accepted: &["disable", "prefer"],
        refused: &["require"],
        reason: "GSSAPI encryption is not supported; use sslmode to encrypt",
        choices: "disable, prefer or require",
    },
    Choice {
        keyword: "sslnegotiation",
        accepted: &["postgres"],
        refused: &["direct"],
        reason: "direct TLS negotiation is not supported; use sslnegotiation=postgres",
        choices: "postgres or direct",
    },
    Choice {
        keyword: "sslcertmode",
        accepted: &["allow", "disable"],
        refused: &["require"],
        reason: "pgstep cannot tell whether the server asked for the certificate; use allow",
        choices: "disable, allow or require",
    },
    Choice {
        keyword: "target_session_attrs",
        accepted: &["any", "read-write"],
        refused: &["read-only", "primary", "standby", "prefer-standby"],
        reason: "pgstep supports only any and read-write (an upgrade must write)",
        choices: "any, read-write, read-only, primary, standby or prefer-standby",
    },
    Choice {
        keyword: "channel_binding",
        accepted: &["disable", "prefer", "require"],
        refused: &[],
        reason: "",
        choices: "disable, prefer or require",
    },
    Choice {
        keyword: "load_balance_hosts",
        // random: accepted with a warning (the hosts are tried in order).
        accepted: &["disable", "random"],
        refused: &[],
        reason: "",
        choices: "disable or random",
    },
];

/// Harmless keywords pgstep ignores.
const IGNORED: &[&str] = &[
    "client_encoding",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslcompression",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
];

/// Keywords pgstep honours are checked while building; this refuses the ones
/// that would change where or how securely we connect, and warns about
/// harmless ones it ignores (not when they come from the environment, where
/// they are ambient settings meant for every program).
pub(super) fn check_keywords(params: &Params, warnings: &mut Vec<String>) -> Result<(), ConnError> {
    for (&key, v) in params.iter().filter(|(_, v)| !v.value.is_empty()) {
        let refuse = |reason: &'static str| ConnError::Unsupported {
            keyword: key,
            origin: v.origin.clone(),
            reason,
        };
        if let Some(&(_, reason)) = REFUSED.iter().find(|(k, _)| *k == key) {
            return Err(refuse(reason));
        }
        if let Some(choice) = CHOICES.iter().find(|c| c.keyword == key) {
            let value = v.value.as_str();
            if choice.refused.contains(&value) {
                return Err(refuse(choice.reason));
            }
            if !choice.accepted.contains(&value) {
                return Err(ConnError::invalid(key, value, &v.origin)
                    .with_hint(&format!(": use {}", choice.choices)));
            }
        }
        if key == "load_balance_hosts" && v.value == "random" {
            warnings.push(format!("load_balance_hosts=random (from {}) is ignored: pgstep tries the hosts in the listed order", v.origin));
        }
        if IGNORED.contains(&key) && !matches!(v.origin, Origin::Env(_)) {
            warnings.push(format!("{key} (from {}) is ignored by pgstep", v.origin));
        }
    }
    Ok(())
}

/// A protocol version keyword: its text and its parsed value.
type Protocol = Option<(String, native_tls::Protocol)>;

pub(super) fn build_tls(
    params: &Params,
    env: &dyn Env,
    hosts: &[HostAddr],
    warnings: &mut Vec<String>,
) -> Result<TlsSettings, ConnError> {
    let get = |k: &str| params.get(k).filter(|v| !v.value.is_empty());
    let pair = |k: &str| get(k).map(|v| (v.value.clone(), v.origin.clone()));
    let rootcert = pair("sslrootcert");
    let (mode, mode_origin) = ssl_mode(params, rootcert.as_ref())?;
    let (min_protocol, max_protocol) = protocol_range(params)?;
    let cert = pair("sslcert");
    if let Some((path, origin)) = &cert
        && !Path::new(path).exists()
    {
        warnings.push(format!("client certificate {path} (from {origin}) does not exist; no client certificate will be sent"));
    }
    let any_socket = hosts.iter().any(|h| matches!(h, HostAddr::Socket(_)));
    if any_socket && mode_origin != Origin::Default && mode >= SslMode::Require {
        warnings.push(format!(
            "sslmode={} (from {mode_origin}) does not apply to Unix-socket connections, which never use TLS",
            mode.as_str()
        ));
    }
    Ok(TlsSettings {
        mode,
        mode_origin,
        rootcert,
        cert,
        key: pair("sslkey"),
        sni: get("sslsni").is_none_or(|v| v.value.starts_with('1')),
        send_client_cert: get("sslcertmode").is_none_or(|v| v.value != "disable"),
        min_protocol,
        max_protocol,
        home: env.home(),
    })
}

/// The sslmode and where it came from; `sslrootcert=system` makes the
/// default verify-full and allows no other mode (as libpq).
fn ssl_mode(
    params: &Params,
    rootcert: Option<&(String, Origin)>,
) -> Result<(SslMode, Origin), ConnError> {
    let system_roots = rootcert.is_some_and(|(r, _)| r == "system");
    let (mode, mode_origin) = match params.get("sslmode").filter(|v| !v.value.is_empty()) {
        Some(v) => match SslMode::parse(&v.value) {
            Some(m) => (m, v.origin.clone()),
            None => {
                return Err(ConnError::invalid("sslmode", &v.value, &v.origin)
                    .with_hint(&format!(": {}", SslMode::CHOICES)));
            }
        },
        // libpq strengthens the default when the system store is asked for.
        None if system_roots => (SslMode::VerifyFull, Origin::Default),
        None => (SslMode::Prefer, Origin::Default),
    };
    if system_roots && mode != SslMode::VerifyFull {
        return Err(ConnError::invalid("sslmode", mode.as_str(), &mode_origin)
            .with_hint(": sslrootcert=system may only be used with sslmode=verify-full"));
    }
    Ok((mode, mode_origin))
}

/// ssl_min_protocol_version and ssl_max_protocol_version, checked to be
/// versions and in order.
fn protocol_range(params: &Params) -> Result<(Protocol, Protocol), ConnError> {
    let protocol = |k: &'static str| match params.get(k).filter(|v| !v.value.is_empty()) {
        None => Ok(None),
        Some(v) => parse_protocol(&v.value)
            .map(|p| Some((v.value.clone(), p)))
            .ok_or_else(|| {
                ConnError::invalid(k, &v.value, &v.origin)
                    .with_hint(": use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3")
            }),
    };
    let min_protocol = protocol("ssl_min_protocol_version")?;
    let max_protocol = protocol("ssl_max_protocol_version")?;
    if let (Some((min, lo)), Some((_, hi))) = (&min_protocol, &max_protocol)
        && protocol_rank(*lo) > protocol_rank(*hi)
    {
        return Err(ConnError::invalid(
            "SSL protocol version range",
            min,
            &origin(params, "ssl_max_protocol_version"),
        )
        .with_hint(": ssl_min_protocol_version is above ssl_max_protocol_version"));
    }
    Ok((min_protocol, max_protocol))
}

fn origin(params: &Params, key: &str) -> Origin {
    params
        .get(key)
        .map_or(Origin::Default, |v| v.origin.clone())
}

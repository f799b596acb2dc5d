//! Checks on keyword values after layering: which libpq keywords pgstep
//! refuses (they would change where or how securely it connects) or ignores
//! (harmless), and validation of the TLS keywords into [`TlsSettings`].

use std::path::Path;

use super::env::Env;
use super::error::{ConnError, Origin};
use super::resolve::{HostAddr, Params};
use super::tls::{SslMode, TlsSettings, parse_protocol, protocol_rank};

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
        let bad_value = |choices: &str| {
            ConnError::invalid(key, &v.value, &v.origin).with_hint(&format!(": use {choices}"))
        };
        let value = v.value.as_str();
        let ignored = match key {
            "hostaddr" => {
                return Err(refuse(
                    "put the server's name or address in host (-h) instead",
                ));
            }
            "requirepeer" => {
                return Err(refuse(
                    "peer-credential checks are not implemented; remove it",
                ));
            }
            "require_auth" => {
                return Err(refuse(
                    "the driver cannot restrict authentication methods; remove it",
                ));
            }
            "sslcrl" | "sslcrldir" => {
                return Err(refuse(
                    "certificate revocation lists cannot be checked by pgstep's TLS library; remove it",
                ));
            }
            "sslpassword" => {
                return Err(refuse(
                    "encrypted client keys are not supported; decrypt the key (openssl pkcs8) and keep it mode 0600",
                ));
            }
            "replication" => return Err(refuse("pgstep needs a normal connection; remove it")),
            "gssencmode" => match value {
                "disable" | "prefer" => false, // no GSSAPI encryption: what libpq does without credentials
                "require" => {
                    return Err(refuse(
                        "GSSAPI encryption is not supported; use sslmode to encrypt",
                    ));
                }
                _ => return Err(bad_value("disable, prefer or require")),
            },
            "sslnegotiation" => match value {
                "postgres" => false,
                "direct" => {
                    return Err(refuse(
                        "direct TLS negotiation is not supported; use sslnegotiation=postgres",
                    ));
                }
                _ => return Err(bad_value("postgres or direct")),
            },
            "sslcertmode" => match value {
                "allow" | "disable" => false,
                "require" => {
                    return Err(refuse(
                        "pgstep cannot tell whether the server asked for the certificate; use allow",
                    ));
                }
                _ => return Err(bad_value("disable, allow or require")),
            },
            "target_session_attrs" => match value {
                "any" | "read-write" => false,
                "read-only" | "primary" | "standby" | "prefer-standby" => {
                    return Err(refuse(
                        "pgstep supports only any and read-write (an upgrade must write)",
                    ));
                }
                _ => {
                    return Err(bad_value(
                        "any, read-write, read-only, primary, standby or prefer-standby",
                    ));
                }
            },
            "channel_binding" => match value {
                "disable" | "prefer" | "require" => false,
                _ => return Err(bad_value("disable, prefer or require")),
            },
            "load_balance_hosts" => match value {
                "disable" => false,
                "random" => {
                    warnings.push(format!("load_balance_hosts=random (from {}) is ignored: pgstep tries the hosts in the listed order", v.origin));
                    false
                }
                _ => return Err(bad_value("disable or random")),
            },
            "client_encoding"
            | "keepalives"
            | "keepalives_idle"
            | "keepalives_interval"
            | "keepalives_count"
            | "tcp_user_timeout"
            | "sslcompression"
            | "krbsrvname"
            | "gsslib"
            | "gssdelegation" => true,
            _ => false, // honoured: validated in build()
        };
        if ignored && !matches!(v.origin, Origin::Env(_)) {
            warnings.push(format!("{key} (from {}) is ignored by pgstep", v.origin));
        }
    }
    Ok(())
}

pub(super) fn build_tls(
    params: &Params,
    env: &dyn Env,
    hosts: &[HostAddr],
    warnings: &mut Vec<String>,
) -> Result<TlsSettings, ConnError> {
    let get = |k: &str| params.get(k).filter(|v| !v.value.is_empty());
    let pair = |k: &str| get(k).map(|v| (v.value.clone(), v.origin.clone()));
    let rootcert = pair("sslrootcert");
    let system_roots = rootcert.as_ref().is_some_and(|(r, _)| r == "system");
    let (mode, mode_origin) = match get("sslmode") {
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
    let protocol = |k: &'static str| match get(k) {
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

fn origin(params: &Params, key: &str) -> Origin {
    params
        .get(key)
        .map_or(Origin::Default, |v| v.origin.clone())
}

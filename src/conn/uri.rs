//! `postgresql://` / `postgres://` connection URIs, a port of libpq's
//! `conninfo_uri_parse_options` and `conninfo_uri_parse_params`:
//! `postgresql://[user[:password]@][host][:port][,host[:port]...][/dbname][?key=value&...]`
//! with percent-decoding everywhere, `[v6]` literals, percent-encoded socket
//! paths as hosts, and query parameters that may set any keyword.

use super::conninfo::{Pairs, store};

const PREFIXES: [&str; 2] = ["postgresql://", "postgres://"];

pub(crate) fn has_prefix(s: &str) -> bool {
    PREFIXES.iter().any(|p| s.starts_with(p))
}

/// Parses a connection URI into keyword pairs (no defaults applied).
pub(crate) fn parse(uri: &str) -> Result<Pairs, String> {
    let rest = PREFIXES
        .iter()
        .find_map(|p| uri.strip_prefix(p))
        .ok_or_else(|| "not a connection URI".to_string())?;
    let mut pairs = Pairs::new();

    // Credentials: only when an '@' comes before the first '/'.
    let cred_end = rest.find(['@', '/']);
    let mut p = match cred_end {
        Some(at) if rest.as_bytes()[at] == b'@' => {
            let cred = &rest[..at];
            let (user, password) = match cred.split_once(':') {
                Some((u, pw)) => (u, Some(pw)),
                None => (cred, None),
            };
            if !user.is_empty() {
                store(&mut pairs, "user", decode(user, "user name")?)?;
            }
            if let Some(pw) = password.filter(|pw| !pw.is_empty()) {
                store(&mut pairs, "password", decode(pw, "password")?)?;
            }
            &rest[at + 1..]
        }
        _ => rest,
    };

    // One or more netloc[:port], separated by commas.
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    let terminator = loop {
        let host;
        if let Some(after) = p.strip_prefix('[') {
            let close = after.find(']').ok_or_else(|| {
                "end of string reached when looking for matching \"]\" in IPv6 host address in URI".to_string()
            })?;
            if close == 0 {
                return Err("IPv6 host address may not be empty in URI".to_string());
            }
            host = &after[..close];
            p = &after[close + 1..];
            if let Some(c) = p
                .chars()
                .next()
                .filter(|c| !matches!(c, ':' | '/' | '?' | ','))
            {
                return Err(format!(
                    "unexpected character \"{c}\" after IPv6 host address in URI (expected \":\" or \"/\")"
                ));
            }
        } else {
            let end = p.find([':', '/', '?', ',']).unwrap_or(p.len());
            host = &p[..end];
            p = &p[end..];
        }
        hosts.push(host);
        let mut port = "";
        if let Some(after) = p.strip_prefix(':') {
            let end = after.find(['/', '?', ',']).unwrap_or(after.len());
            port = &after[..end];
            p = &after[end..];
        }
        ports.push(port);
        match p.chars().next() {
            Some(',') => p = &p[1..],
            other => break other,
        }
    };
    // libpq joins the lists first and decodes afterwards (so "%2C" splits a host).
    let host_list = hosts.join(",");
    if !host_list.is_empty() {
        store(&mut pairs, "host", decode(&host_list, "host")?)?;
    }
    let port_list = ports.join(",");
    // Like libpq, "a,b" stores port "," (two empty ports), which blocks PGPORT.
    if !port_list.is_empty() {
        store(&mut pairs, "port", decode(&port_list, "port")?)?;
    }

    let mut query = None;
    match terminator {
        Some('/') => {
            let path = &p[1..];
            let (dbname, q) = match path.split_once('?') {
                Some((d, q)) => (d, Some(q)),
                None => (path, None),
            };
            // An empty path leaves dbname unset (so PGDATABASE still applies).
            if !dbname.is_empty() {
                store(&mut pairs, "dbname", decode(dbname, "database name")?)?;
            }
            query = q;
        }
        Some('?') => query = Some(&p[1..]),
        _ => {}
    }
    if let Some(q) = query {
        parse_params(q, &mut pairs)?;
    }
    Ok(pairs)
}

fn parse_params(query: &str, pairs: &mut Pairs) -> Result<(), String> {
    if query.is_empty() {
        return Ok(());
    }
    for param in query.split('&') {
        let (key, value) = param.split_once('=').ok_or_else(|| {
            format!("missing key/value separator \"=\" in URI query parameter: \"{param}\"")
        })?;
        if value.contains('=') {
            return Err(format!(
                "extra key/value separator \"=\" in URI query parameter: \"{key}\""
            ));
        }
        let (key, value) = (
            decode(key, "query parameter name")?,
            decode(value, "query parameter value")?,
        );
        // JDBC compatibility, as in libpq.
        let (key, value) = if key == "ssl" && value == "true" {
            ("sslmode".to_string(), "require".to_string())
        } else {
            (key, value)
        };
        store(pairs, &key, value).map_err(|_| format!("invalid URI query parameter: \"{key}\""))?;
    }
    Ok(())
}

/// Percent-decoding as libpq does it: `%xy` with hex digits, `%00` refused.
/// Errors name the part of the URI, never its value (it may be a password).
pub(crate) fn decode(s: &str, part: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
        let (Some(hi), Some(lo)) = (hex(b.get(i + 1)), hex(b.get(i + 2))) else {
            return Err(format!("invalid percent-encoded token in the {part}"));
        };
        let byte = (hi * 16 + lo) as u8;
        if byte == 0 {
            return Err(format!("forbidden value %00 in the {part}"));
        }
        out.push(byte);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| format!("the percent-decoded {part} is not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Vec<(String, String)> {
        parse(s)
            .expect("valid URI")
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn full_uri() {
        assert_eq!(
            uri(
                "postgresql://alice:s%3Acr%40t@db.example:5433/clinic%20a?sslmode=verify-full&application_name=x"
            ),
            pairs(&[
                ("user", "alice"),
                ("password", "s:cr@t"),
                ("host", "db.example"),
                ("port", "5433"),
                ("dbname", "clinic a"),
                ("sslmode", "verify-full"),
                ("application_name", "x"),
            ])
        );
    }

    #[test]
    fn short_scheme_and_empty_parts() {
        assert_eq!(uri("postgres://"), pairs(&[]));
        assert_eq!(uri("postgresql:///"), pairs(&[]));
        assert_eq!(uri("postgresql://h"), pairs(&[("host", "h")]));
        assert_eq!(uri("postgresql://@h/"), pairs(&[("host", "h")]));
        assert_eq!(
            uri("postgresql://u:@h"),
            pairs(&[("user", "u"), ("host", "h")])
        );
        assert_eq!(
            uri("postgresql://a,b"),
            pairs(&[("host", "a,b"), ("port", ",")])
        );
    }

    #[test]
    fn socket_path_host_percent_encoded() {
        assert_eq!(
            uri("postgresql://%2Fvar%2Frun%2Fpostgresql/db"),
            pairs(&[("host", "/var/run/postgresql"), ("dbname", "db")])
        );
    }

    #[test]
    fn host_in_query_overrides_netloc() {
        assert_eq!(
            uri("postgresql:///db?host=/tmp/sock&port=6000"),
            pairs(&[("dbname", "db"), ("host", "/tmp/sock"), ("port", "6000")])
        );
        assert_eq!(
            uri("postgresql://h1/db?host=h2"),
            pairs(&[("dbname", "db"), ("host", "h2")])
        );
    }

    #[test]
    fn ipv6_and_host_lists() {
        assert_eq!(
            uri("postgresql://[::1]:5433/db"),
            pairs(&[("host", "::1"), ("port", "5433"), ("dbname", "db")])
        );
        assert_eq!(
            uri("postgresql://a,[fe80::2]:6,b:7?connect_timeout=3"),
            pairs(&[
                ("host", "a,fe80::2,b"),
                ("port", ",6,7"),
                ("connect_timeout", "3")
            ])
        );
    }

    #[test]
    fn jdbc_ssl_true() {
        assert_eq!(
            uri("postgresql://h?ssl=true"),
            pairs(&[("host", "h"), ("sslmode", "require")])
        );
    }

    #[test]
    fn errors() {
        let cases = [
            ("postgresql://[::1/db", "end of string reached"),
            ("postgresql://[]/db", "IPv6 host address may not be empty"),
            ("postgresql://[::1]x/db", "unexpected character \"x\""),
            ("postgresql://h/db?sslmode", "missing key/value separator"),
            ("postgresql://h/db?a=b=c", "extra key/value separator"),
            (
                "postgresql://h/db?colour=blue",
                "invalid URI query parameter: \"colour\"",
            ),
            (
                "postgresql://h/d%zz",
                "invalid percent-encoded token in the database name",
            ),
            (
                "postgresql://h/d%00",
                "forbidden value %00 in the database name",
            ),
            (
                "postgresql://u:p%zz@h/d",
                "invalid percent-encoded token in the password",
            ),
            (
                "postgresql://h/d%ff",
                "the percent-decoded database name is not valid UTF-8",
            ),
        ];
        for (input, want) in cases {
            let err = parse(input).expect_err(input);
            assert!(err.contains(want), "{input}: {err}");
        }
    }
}

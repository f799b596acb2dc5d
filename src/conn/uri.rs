//! `postgresql://` / `postgres://` connection URIs, a port of libpq's
//! `conninfo_uri_parse_options` and `conninfo_uri_parse_params`:
//! `postgresql://[user[:password]@][host][:port][,host[:port]...][/dbname][?key=value&...]`
//! with percent-decoding everywhere, `[v6]` literals, percent-encoded socket
//! paths as hosts, and query parameters that may set any keyword.

use super::conninfo::{Pairs, store};
use super::error::ConnStringSyntax;

const PREFIXES: [&str; 2] = ["postgresql://", "postgres://"];

pub(crate) fn has_prefix(s: &str) -> bool {
    PREFIXES.iter().any(|p| s.starts_with(p))
}

/// Parses a connection URI into keyword pairs (no defaults applied).
pub(crate) fn parse(uri: &str) -> Result<Pairs, ConnStringSyntax> {
    let rest = PREFIXES
        .iter()
        .find_map(|p| uri.strip_prefix(p))
        .ok_or(ConnStringSyntax::NotAUri)?;
    let mut pairs = Pairs::new();
    let rest = parse_credentials(rest, &mut pairs)?;
    let (hosts, ports, terminator, rest) = split_netlocs(rest)?;
    store_hosts_and_ports(&hosts, &ports, &mut pairs)?;
    let query = match terminator {
        Some('/') => parse_path(&rest[1..], &mut pairs)?,
        Some('?') => Some(&rest[1..]),
        _ => None,
    };
    if let Some(q) = query {
        parse_params(q, &mut pairs)?;
    }
    Ok(pairs)
}

/// Stores `user[:password]` when an '@' comes before the first '/'; returns
/// what follows the credentials.
fn parse_credentials<'a>(rest: &'a str, pairs: &mut Pairs) -> Result<&'a str, ConnStringSyntax> {
    let Some(at) = rest
        .find(['@', '/'])
        .filter(|&at| rest.as_bytes()[at] == b'@')
    else {
        return Ok(rest);
    };
    let cred = &rest[..at];
    let (user, password) = match cred.split_once(':') {
        Some((u, pw)) => (u, Some(pw)),
        None => (cred, None),
    };
    if !user.is_empty() {
        store(pairs, "user", decode(user, "user name")?)?;
    }
    if let Some(pw) = password.filter(|pw| !pw.is_empty()) {
        store(pairs, "password", decode(pw, "password")?)?;
    }
    Ok(&rest[at + 1..])
}

/// The raw (still percent-encoded) hosts and ports of one or more
/// `netloc[:port]` separated by commas, the character that ended the list
/// ('/', '?' or none), and the rest of the URI from that character on.
type Netlocs<'a> = (Vec<&'a str>, Vec<&'a str>, Option<char>, &'a str);

fn split_netlocs(mut p: &str) -> Result<Netlocs<'_>, ConnStringSyntax> {
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    loop {
        let (host, after_host) = split_host(p)?;
        hosts.push(host);
        p = after_host;
        let mut port = "";
        if let Some(after) = p.strip_prefix(':') {
            let end = after.find(['/', '?', ',']).unwrap_or(after.len());
            port = &after[..end];
            p = &after[end..];
        }
        ports.push(port);
        match p.chars().next() {
            Some(',') => p = &p[1..],
            other => return Ok((hosts, ports, other, p)),
        }
    }
}

/// One host, a `[v6]` literal or a name up to ':', '/', '?' or ','; and what
/// follows it.
fn split_host(p: &str) -> Result<(&str, &str), ConnStringSyntax> {
    let Some(after) = p.strip_prefix('[') else {
        let end = p.find([':', '/', '?', ',']).unwrap_or(p.len());
        return Ok((&p[..end], &p[end..]));
    };
    let close = after.find(']').ok_or(ConnStringSyntax::UnterminatedIpv6)?;
    if close == 0 {
        return Err(ConnStringSyntax::EmptyIpv6);
    }
    let rest = &after[close + 1..];
    if let Some(c) = rest
        .chars()
        .next()
        .filter(|c| !matches!(c, ':' | '/' | '?' | ','))
    {
        return Err(ConnStringSyntax::AfterIpv6(c));
    }
    Ok((&after[..close], rest))
}

/// libpq joins the lists first and decodes afterwards (so "%2C" splits a host).
fn store_hosts_and_ports(
    hosts: &[&str],
    ports: &[&str],
    pairs: &mut Pairs,
) -> Result<(), ConnStringSyntax> {
    let host_list = hosts.join(",");
    if !host_list.is_empty() {
        store(pairs, "host", decode(&host_list, "host")?)?;
    }
    let port_list = ports.join(",");
    // Like libpq, "a,b" stores port "," (two empty ports), which blocks PGPORT.
    if !port_list.is_empty() {
        store(pairs, "port", decode(&port_list, "port")?)?;
    }
    Ok(())
}

/// Stores the database name of `dbname[?query]`; returns the query.
fn parse_path<'a>(path: &'a str, pairs: &mut Pairs) -> Result<Option<&'a str>, ConnStringSyntax> {
    let (dbname, query) = match path.split_once('?') {
        Some((d, q)) => (d, Some(q)),
        None => (path, None),
    };
    // An empty path leaves dbname unset (so PGDATABASE still applies).
    if !dbname.is_empty() {
        store(pairs, "dbname", decode(dbname, "database name")?)?;
    }
    Ok(query)
}

fn parse_params(query: &str, pairs: &mut Pairs) -> Result<(), ConnStringSyntax> {
    if query.is_empty() {
        return Ok(());
    }
    for param in query.split('&') {
        let (key, value) = param
            .split_once('=')
            .ok_or_else(|| ConnStringSyntax::MissingQuerySeparator(param.to_string()))?;
        if value.contains('=') {
            return Err(ConnStringSyntax::ExtraQuerySeparator(key.to_string()));
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
        store(pairs, &key, value).map_err(|_| ConnStringSyntax::InvalidQueryParameter(key))?;
    }
    Ok(())
}

/// Percent-decoding as libpq does it: `%xy` with hex digits, `%00` refused.
/// Errors name the part of the URI, never its value (it may be a password).
pub(crate) fn decode(s: &str, part: &'static str) -> Result<String, ConnStringSyntax> {
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
            return Err(ConnStringSyntax::BadPercentToken(part));
        };
        let byte = (hi * 16 + lo) as u8;
        if byte == 0 {
            return Err(ConnStringSyntax::PercentZero(part));
        }
        out.push(byte);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| ConnStringSyntax::DecodedNotUtf8(part))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::test_support::{owned_pairs, pairs};

    fn uri(s: &str) -> Vec<(String, String)> {
        owned_pairs(parse(s).expect("valid URI"))
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
            let err = parse(input).expect_err(input).to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
    }
}

//! libpq's list of connection keywords (with their environment variables)
//! and the `key=value ...` connection-string parser, a port of libpq's
//! `conninfo_parse` (fe-connect.c), quirks included. Also decides whether a
//! `-d/--dbname` value is a connection string at all (libpq's
//! `recognized_connection_string`) and dispatches to the URI parser.

use super::error::ConnStringSyntax;
use super::uri;

/// One libpq connection keyword.
#[derive(Debug)]
pub(crate) struct Keyword {
    pub name: &'static str,
    /// The environment variable libpq reads when the keyword is not given.
    pub env: Option<&'static str>,
}

const fn kw(name: &'static str, env: &'static str) -> Keyword {
    Keyword {
        name,
        env: Some(env),
    }
}

/// Every keyword libpq 17 accepts (PQconninfoOptions in fe-connect.c), in its
/// order. Parsing accepts all of them so that any valid libpq string parses;
/// `resolve.rs` then decides which ones pgstep honours, ignores or refuses.
pub(crate) const KEYWORDS: &[Keyword] = &[
    kw("service", "PGSERVICE"),
    kw("user", "PGUSER"),
    kw("password", "PGPASSWORD"),
    kw("passfile", "PGPASSFILE"),
    kw("channel_binding", "PGCHANNELBINDING"),
    kw("connect_timeout", "PGCONNECT_TIMEOUT"),
    kw("dbname", "PGDATABASE"),
    kw("host", "PGHOST"),
    kw("hostaddr", "PGHOSTADDR"),
    kw("port", "PGPORT"),
    kw("client_encoding", "PGCLIENTENCODING"),
    kw("options", "PGOPTIONS"),
    kw("application_name", "PGAPPNAME"),
    Keyword {
        name: "fallback_application_name",
        env: None,
    },
    Keyword {
        name: "keepalives",
        env: None,
    },
    Keyword {
        name: "keepalives_idle",
        env: None,
    },
    Keyword {
        name: "keepalives_interval",
        env: None,
    },
    Keyword {
        name: "keepalives_count",
        env: None,
    },
    Keyword {
        name: "tcp_user_timeout",
        env: None,
    },
    kw("sslmode", "PGSSLMODE"),
    kw("sslnegotiation", "PGSSLNEGOTIATION"),
    kw("sslcompression", "PGSSLCOMPRESSION"),
    kw("sslcert", "PGSSLCERT"),
    kw("sslkey", "PGSSLKEY"),
    kw("sslcertmode", "PGSSLCERTMODE"),
    Keyword {
        name: "sslpassword",
        env: None,
    },
    kw("sslrootcert", "PGSSLROOTCERT"),
    kw("sslcrl", "PGSSLCRL"),
    kw("sslcrldir", "PGSSLCRLDIR"),
    kw("sslsni", "PGSSLSNI"),
    kw("requirepeer", "PGREQUIREPEER"),
    kw("require_auth", "PGREQUIREAUTH"),
    kw("ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION"),
    kw("ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION"),
    kw("gssencmode", "PGGSSENCMODE"),
    kw("krbsrvname", "PGKRBSRVNAME"),
    kw("gsslib", "PGGSSLIB"),
    kw("gssdelegation", "PGGSSDELEGATION"),
    Keyword {
        name: "replication",
        env: None,
    },
    kw("target_session_attrs", "PGTARGETSESSIONATTRS"),
    kw("load_balance_hosts", "PGLOADBALANCEHOSTS"),
];

/// The canonical keyword for `name`, exactly as libpq spells it.
pub(crate) fn keyword(name: &str) -> Option<&'static str> {
    KEYWORDS.iter().find(|k| k.name == name).map(|k| k.name)
}

/// Parsed `(keyword, value)` pairs in input order; a later pair for the same
/// keyword overrides an earlier one, as in libpq.
pub(crate) type Pairs = Vec<(&'static str, String)>;

/// Stores a pair the way libpq's `conninfo_storeval` does: the obsolete
/// `requiressl` becomes `sslmode`, unknown keywords are an error.
pub(crate) fn store(pairs: &mut Pairs, name: &str, value: String) -> Result<(), ConnStringSyntax> {
    let (name, value) = if name == "requiressl" {
        let mode = if value.starts_with('1') {
            "require"
        } else {
            "prefer"
        };
        ("sslmode", mode.to_string())
    } else {
        (name, value)
    };
    match keyword(name) {
        Some(k) => {
            pairs.retain(|(existing, _)| *existing != k);
            pairs.push((k, value));
            Ok(())
        }
        None => Err(ConnStringSyntax::InvalidOption(name.to_string())),
    }
}

/// Whether libpq would treat a dbname value as a connection string: it starts
/// with a URI scheme or contains `=`.
pub(crate) fn is_conn_string(s: &str) -> bool {
    uri::has_prefix(s) || s.contains('=')
}

/// Parses a URI or a `key=value` string (no defaults applied).
///
/// libpq's messages echo words of the string; when the string may hold a
/// password, a misquoted password could be echoed (`password=a b` fails on
/// the word `b`), so the details are withheld then.
pub(crate) fn parse_conn_string(s: &str) -> Result<Pairs, ConnStringSyntax> {
    let result = if uri::has_prefix(s) {
        uri::parse(s)
    } else {
        parse_key_values(s)
    };
    result.map_err(|reason| {
        if may_hold_password(s) {
            ConnStringSyntax::DetailsWithheld
        } else {
            reason
        }
    })
}

/// True for strings with a `password` keyword or URI user info with a `:`.
fn may_hold_password(s: &str) -> bool {
    if s.contains("password") {
        return true;
    }
    uri::has_prefix(s) && {
        let rest = s.split_once("//").map_or("", |(_, r)| r);
        let netloc = rest.split('/').next().unwrap_or("");
        netloc
            .split_once('@')
            .is_some_and(|(cred, _)| cred.contains(':'))
    }
}

/// C's isspace() in the "C" locale (Rust's is_ascii_whitespace lacks \v).
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Port of libpq's conninfo_parse. Note its quirks, kept on purpose so that
/// pgstep reads a string exactly as psql would: blanks after `=` are
/// skipped (so `host= dbname=x` sets host to `dbname=x`), a backslash escapes
/// the next character both inside and outside quotes.
pub(crate) fn parse_key_values(input: &str) -> Result<Pairs, ConnStringSyntax> {
    let b = input.as_bytes();
    let mut pairs = Pairs::new();
    let mut i = skip_spaces(b, 0);
    while i < b.len() {
        // The parameter name runs to '=' or whitespace.
        let start = i;
        while i < b.len() && b[i] != b'=' && !is_c_space(b[i]) {
            i += 1;
        }
        let name = &input[start..i];
        i = skip_spaces(b, i);
        if i >= b.len() || b[i] != b'=' {
            return Err(ConnStringSyntax::MissingEquals(name.to_string()));
        }
        i = skip_spaces(b, i + 1);
        let (value, end) = if b.get(i) == Some(&b'\'') {
            quoted_value(b, i + 1)?
        } else {
            unquoted_value(b, i)
        };
        i = end;
        // Only whole UTF-8 sequences are ever split off (the delimiters are
        // ASCII), so this cannot fail on &str input; map it anyway.
        let value = String::from_utf8(value)
            .map_err(|_| ConnStringSyntax::ValueNotUtf8(name.to_string()))?;
        store(&mut pairs, name, value)?;
        i = skip_spaces(b, i);
    }
    Ok(pairs)
}

/// The index of the first byte at or after `i` that is not a blank.
fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_c_space(b[i]) {
        i += 1;
    }
    i
}

/// A value in single quotes starting after the opening quote, with
/// backslash escapes; returns it and the index after the closing quote.
fn quoted_value(b: &[u8], mut i: usize) -> Result<(Vec<u8>, usize), ConnStringSyntax> {
    let mut value = Vec::new();
    loop {
        match b.get(i) {
            None => return Err(ConnStringSyntax::UnterminatedQuote),
            Some(b'\\') => {
                if let Some(&c) = b.get(i + 1) {
                    value.push(c);
                }
                i += 2;
            }
            Some(b'\'') => return Ok((value, i + 1)),
            Some(&c) => {
                value.push(c);
                i += 1;
            }
        }
    }
}

/// A value up to the next blank, with backslash escapes; returns it and the
/// index where it ends.
fn unquoted_value(b: &[u8], mut i: usize) -> (Vec<u8>, usize) {
    let mut value = Vec::new();
    while i < b.len() && !is_c_space(b[i]) {
        if b[i] == b'\\' {
            if let Some(&c) = b.get(i + 1) {
                value.push(c);
            }
            i += 2;
        } else {
            value.push(b[i]);
            i += 1;
        }
    }
    (value, i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::test_support::{owned_pairs, pairs};

    fn kv(s: &str) -> Vec<(String, String)> {
        owned_pairs(parse_key_values(s).expect("valid conninfo"))
    }

    #[test]
    fn plain_pairs_and_spaces_around_equals() {
        assert_eq!(
            kv("host=db1 port = 5433\tdbname=app"),
            pairs(&[("host", "db1"), ("port", "5433"), ("dbname", "app")])
        );
    }

    #[test]
    fn quoted_values_with_escapes() {
        assert_eq!(
            kv(r"password='it\'s a \\secret' user='' dbname='my db'"),
            pairs(&[
                ("password", r"it's a \secret"),
                ("user", ""),
                ("dbname", "my db")
            ])
        );
    }

    #[test]
    fn unquoted_backslash_escapes_a_space() {
        assert_eq!(kv(r"dbname=my\ db"), pairs(&[("dbname", "my db")]));
    }

    #[test]
    fn blank_after_equals_is_skipped_like_libpq() {
        // libpq reads "host= dbname=x" as host = "dbname=x" (checked with psql).
        assert_eq!(kv("host= dbname=x"), pairs(&[("host", "dbname=x")]));
        assert_eq!(kv("host="), pairs(&[("host", "")]));
    }

    #[test]
    fn later_value_wins_and_requiressl_maps_to_sslmode() {
        assert_eq!(kv("port=1 port=2"), pairs(&[("port", "2")]));
        assert_eq!(kv("requiressl=1"), pairs(&[("sslmode", "require")]));
        assert_eq!(kv("requiressl=0"), pairs(&[("sslmode", "prefer")]));
    }

    #[test]
    fn errors_are_libpqs() {
        let cases = [
            (
                "host",
                "missing \"=\" after \"host\" in connection info string",
            ),
            (
                "host db=x",
                "missing \"=\" after \"host\" in connection info string",
            ),
            (
                "password='abc",
                "unterminated quoted string in connection info string",
            ),
            ("colour=blue", "invalid connection option \"colour\""),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_key_values(input).expect_err(input).to_string(),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn errors_never_echo_a_password() {
        for input in [
            "host=h password=a b",
            "password=s3cret host",
            "postgresql://u:s3cret@h/db?b",
            "postgresql://u:s%zzret@h/db",
        ] {
            let err = parse_conn_string(input).expect_err(input).to_string();
            assert!(err.contains("details withheld"), "{input}: {err}");
            assert!(!err.contains("s3cret"), "{input}: {err}");
        }
        // Without a password, libpq's message is kept.
        assert_eq!(
            parse_conn_string("host=h colour=x")
                .expect_err("bad")
                .to_string(),
            "invalid connection option \"colour\""
        );
    }

    #[test]
    fn recognizes_connection_strings() {
        assert!(is_conn_string("postgresql://h/db"));
        assert!(is_conn_string("postgres://h"));
        assert!(is_conn_string("dbname=x"));
        assert!(!is_conn_string("patients"));
        assert!(!is_conn_string("postgresql:/x"));
    }
}

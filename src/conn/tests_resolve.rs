//! Tests of `ConnSettings::resolve`: precedence (one row per rule), value
//! validation, warnings and host lists.

use super::test_support::{Home, args, err, get, resolve};
use super::*;

const SERVICE: &str = "[prod]\nhost=svc.host\nport=5999\n";

#[test]
fn precedence_rules() {
    let env_all = [
        ("PGHOST", "env.host"),
        ("PGPORT", "6000"),
        ("PGUSER", "bob"),
        ("PGDATABASE", "envdb"),
    ];
    let svc = Origin::Service {
        name: "prod".into(),
        file: Default::default(),
    };
    type Row<'a> = (
        &'a str,
        ConnArgs,
        Vec<(&'a str, &'a str)>,
        [(&'a str, &'a str, Origin); 2],
    );
    let rows: Vec<Row> = vec![
        (
            "defaults",
            args(None, None, None, None),
            vec![],
            [
                ("host", "/var/run/postgresql (socket)", Origin::Default),
                ("dbname", "alice", Origin::Default),
            ],
        ),
        (
            "environment over defaults",
            args(None, None, None, None),
            env_all.to_vec(),
            [
                ("host", "env.host:6000", Origin::Env("PGHOST")),
                ("user", "bob", Origin::Env("PGUSER")),
            ],
        ),
        (
            "flags over environment",
            args(
                Some("flag.host"),
                Some("7000"),
                Some("carol"),
                Some("flagdb"),
            ),
            env_all.to_vec(),
            [
                ("host", "flag.host:7000", Origin::Flag("-h/--host")),
                ("dbname", "flagdb", Origin::Flag("-d/--dbname")),
            ],
        ),
        (
            "-d connection string over flags (psql's expand_dbname)",
            args(
                Some("flag.host"),
                None,
                Some("carol"),
                Some("host=ci.host dbname=cidb"),
            ),
            env_all.to_vec(),
            [
                ("host", "ci.host:6000", Origin::ConnString),
                ("user", "carol", Origin::Flag("-U/--username")),
            ],
        ),
        (
            "-d URI over flags",
            args(
                None,
                None,
                Some("carol"),
                Some("postgresql://dave@uri.host:7777/uridb"),
            ),
            env_all.to_vec(),
            [
                ("user", "dave", Origin::ConnString),
                ("host", "uri.host:7777", Origin::ConnString),
            ],
        ),
        (
            "service over environment",
            args(None, None, None, None),
            vec![
                ("PGSERVICE", "prod"),
                ("PGHOST", "env.host"),
                ("PGUSER", "bob"),
            ],
            [
                ("host", "svc.host:5999", svc.clone()),
                ("user", "bob", Origin::Env("PGUSER")),
            ],
        ),
        (
            "flags over service",
            args(Some("flag.host"), None, None, None),
            vec![("PGSERVICE", "prod")],
            [
                ("host", "flag.host:5999", Origin::Flag("-h/--host")),
                ("port", "5999", svc.clone()),
            ],
        ),
        (
            "service= in the connection string",
            args(None, None, None, Some("service=prod dbname=x")),
            vec![],
            [
                ("host", "svc.host:5999", svc.clone()),
                ("dbname", "x", Origin::ConnString),
            ],
        ),
        (
            "an empty value in the connection string blocks the service and means the default",
            args(None, None, None, Some("service=prod host=''")),
            vec![("PGHOST", "env.host")],
            [
                (
                    "host",
                    "/var/run/postgresql (socket, port 5999)",
                    Origin::Default,
                ),
                ("port", "5999", svc.clone()),
            ],
        ),
        (
            "a set-but-empty environment variable means the default",
            args(None, None, None, None),
            vec![("PGHOST", ""), ("PGPORT", "")],
            [
                ("host", "/var/run/postgresql (socket)", Origin::Default),
                ("port", "5432", Origin::Default),
            ],
        ),
        (
            "an empty flag is skipped",
            args(Some(""), None, None, None),
            vec![("PGHOST", "env.host")],
            [
                ("host", "env.host:5432", Origin::Env("PGHOST")),
                ("port", "5432", Origin::Default),
            ],
        ),
        (
            "dbname defaults to the user",
            args(None, None, Some("carol"), None),
            vec![],
            [
                ("dbname", "carol", Origin::Default),
                ("user", "carol", Origin::Flag("-U/--username")),
            ],
        ),
        (
            "a socket directory as host",
            args(Some("/tmp/pg"), Some("5433"), None, None),
            vec![],
            [
                (
                    "host",
                    "/tmp/pg (socket, port 5433)",
                    Origin::Flag("-h/--host"),
                ),
                ("port", "5433", Origin::Flag("-p/--port")),
            ],
        ),
    ];
    for (name, a, vars, wants) in rows {
        let home = Home::new();
        home.write(".pg_service.conf", SERVICE, 0o644);
        let (s, _) = resolve(&a, &home.env(&vars));
        for (field, value, origin) in wants {
            let (got, got_origin) = get(&s, field);
            let origin = match origin {
                Origin::Service { name, .. } => Origin::Service {
                    name,
                    file: home.path().join(".pg_service.conf"),
                },
                o => o,
            };
            assert_eq!(
                (got.as_str(), got_origin),
                (value, origin),
                "{name}: {field}"
            );
        }
    }
}

#[test]
fn overriding_a_flag_from_the_connection_string_warns() {
    let home = Home::new();
    let (_, warnings) = resolve(
        &args(Some("a.host"), None, None, Some("host=b.host")),
        &home.env(&[]),
    );
    assert_eq!(
        warnings,
        vec![
            "-h/--host \"a.host\" is overridden by host \"b.host\" from the connection string given to -d/--dbname (psql does the same)"
        ]
    );
}

#[test]
fn sslmode_sources_and_defaults() {
    let home = Home::new();
    let mode = |d: Option<&str>, vars: &[(&str, &str)]| {
        resolve(&args(None, None, None, d), &home.env(vars))
            .0
            .sslmode()
    };
    assert_eq!(mode(None, &[]), SslMode::Prefer);
    assert_eq!(mode(None, &[("PGSSLMODE", "verify-ca")]), SslMode::VerifyCa);
    assert_eq!(mode(None, &[("PGREQUIRESSL", "1")]), SslMode::Require);
    assert_eq!(
        mode(None, &[("PGREQUIRESSL", "1"), ("PGSSLMODE", "disable")]),
        SslMode::Disable
    );
    assert_eq!(
        mode(Some("sslmode=allow"), &[("PGSSLMODE", "require")]),
        SslMode::Allow
    );
    assert_eq!(mode(Some("sslrootcert=system"), &[]), SslMode::VerifyFull);
    assert_eq!(
        mode(Some("postgresql://h/d?ssl=true"), &[]),
        SslMode::Require
    );
}

#[test]
fn invalid_values_are_refused_with_their_origin() {
    let home = Home::new();
    type Case<'a> = (ConnArgs, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            args(None, None, None, None),
            vec![("PGPORT", "abc")],
            "invalid port \"abc\" (from PGPORT): use a number from 1 to 65535",
        ),
        (
            args(None, Some("0"), None, None),
            vec![],
            "invalid port \"0\" (from -p/--port): use a number from 1 to 65535",
        ),
        (
            args(None, None, None, Some("port=65536")),
            vec![],
            "invalid port \"65536\" (from the connection string): use a number from 1 to 65535",
        ),
        (
            args(None, None, None, Some("sslmode=requir")),
            vec![],
            "invalid sslmode \"requir\" (from the connection string): use disable, allow, prefer, require, verify-ca or verify-full",
        ),
        (
            args(None, None, None, Some("sslrootcert=system sslmode=require")),
            vec![],
            "invalid sslmode \"require\" (from the connection string): sslrootcert=system may only be used with sslmode=verify-full",
        ),
        (
            args(None, None, None, Some("host=a,b port=1,2,3")),
            vec![],
            "could not match 3 port numbers to 2 hosts (from the connection string)",
        ),
        (
            args(None, None, None, None),
            vec![("PGCONNECT_TIMEOUT", "soon")],
            "invalid connect_timeout \"soon\" (from PGCONNECT_TIMEOUT): give a number of seconds",
        ),
        (
            args(None, None, None, None),
            vec![("PGHOSTADDR", "10.0.0.1")],
            "hostaddr (from PGHOSTADDR) is not supported by pgstep: put the server's name or address in host (-h) instead",
        ),
        (
            args(None, None, None, Some("target_session_attrs=standby")),
            vec![],
            "target_session_attrs (from the connection string) is not supported by pgstep: pgstep supports only any and read-write (an upgrade must write)",
        ),
        (
            args(None, None, None, Some("channel_binding=maybe")),
            vec![],
            "invalid channel_binding \"maybe\" (from the connection string): use disable, prefer or require",
        ),
        (
            args(None, None, None, Some("host=@abstract")),
            vec![],
            "invalid host \"@abstract\" (from the connection string): abstract Unix sockets are not supported",
        ),
        (
            args(None, None, None, Some("host=h oops")),
            vec![],
            "invalid connection string (from -d/--dbname): missing \"=\" after \"oops\" in connection info string",
        ),
        (
            args(None, None, None, None),
            vec![("PGSERVICE", "nope")],
            "service \"nope\" not found in",
        ),
    ];
    for (a, vars, want) in cases {
        let got = err(&a, &home.env(&vars));
        assert!(got.starts_with(want), "got: {got}\nwant: {want}");
    }
    let mut no_user = home.env(&[]);
    no_user.user = None;
    assert!(
        err(&args(None, None, None, None), &no_user)
            .starts_with("could not determine the user name")
    );
}

#[test]
fn connect_timeout_follows_libpq() {
    let home = Home::new();
    for (value, want) in [
        ("10", Some(10)),
        (" 7 ", Some(7)),
        ("1", Some(2)),
        ("0", None),
        ("-3", None),
    ] {
        let (s, _) = resolve(
            &args(None, None, None, None),
            &home.env(&[("PGCONNECT_TIMEOUT", value)]),
        );
        assert_eq!(s.connect_timeout.map(|(t, _)| t), want, "{value}");
    }
}

#[test]
fn ignored_keywords_warn_unless_from_the_environment() {
    let home = Home::new();
    let (_, w) = resolve(
        &args(
            None,
            None,
            None,
            Some("keepalives=1 client_encoding=LATIN1"),
        ),
        &home.env(&[]),
    );
    assert_eq!(
        w,
        vec![
            "client_encoding (from the connection string) is ignored by pgstep",
            "keepalives (from the connection string) is ignored by pgstep"
        ]
    );
    let (_, w) = resolve(
        &args(None, None, None, None),
        &home.env(&[("PGCLIENTENCODING", "LATIN1")]),
    );
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn host_lists() {
    let home = Home::new();
    let (s, _) = resolve(
        &args(None, None, None, Some("host=a,,/tmp,::1 port=5")),
        &home.env(&[]),
    );
    assert_eq!(
        s.host_display(),
        "a:5, /var/run/postgresql (socket, port 5), /tmp (socket, port 5), [::1]:5"
    );
    let (s, _) = resolve(
        &args(None, None, None, Some("postgresql://a:1,b/db")),
        &home.env(&[]),
    );
    let ports: Vec<u16> = s.targets().iter().map(|t| t.port).collect();
    assert_eq!(ports, vec![1, 5432]);
}

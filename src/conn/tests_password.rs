//! Tests of passwords through resolution: the password file (per host,
//! loose permissions, `with_dbname`), prompted passwords, and `child_env`.

use std::os::unix::fs::PermissionsExt;

use super::test_support::{Home, args, get, resolve};
use super::*;

#[test]
fn password_file_lookup() {
    let home = Home::new();
    home.write(
        ".pgpass",
        "localhost:5432:*:alice:sock-pw\n/tmp:*:*:alice:tmp-pw\ndb.example:*:*:*:tcp-pw\n",
        0o600,
    );
    let pw = |a: &ConnArgs, vars: &[(&str, &str)]| {
        let (s, w) = resolve(a, &home.env(vars));
        let found = s.targets().first().and_then(|t| s.password_for(t));
        (found.map(|(p, o)| (p.expose().to_string(), o)), w)
    };
    let file = Origin::PasswordFile(home.path().join(".pgpass"));
    // The default socket directory matches "localhost".
    assert_eq!(
        pw(&args(None, None, None, None), &[]).0,
        Some(("sock-pw".into(), file.clone()))
    );
    // Another socket directory matches its path.
    assert_eq!(
        pw(&args(Some("/tmp"), None, None, None), &[]).0,
        Some(("tmp-pw".into(), file.clone()))
    );
    assert_eq!(
        pw(&args(Some("db.example"), None, None, None), &[]).0,
        Some(("tcp-pw".into(), file.clone()))
    );
    // An explicit password wins; the file is then not read.
    assert_eq!(
        pw(&args(None, None, None, None), &[("PGPASSWORD", "env-pw")]).0,
        Some(("env-pw".into(), Origin::Env("PGPASSWORD")))
    );
    // passfile= beats PGPASSFILE; a missing file is no error.
    assert_eq!(
        pw(&args(None, None, None, Some("passfile=/nonexistent")), &[]).0,
        None
    );
    assert_eq!(
        pw(
            &args(None, None, None, None),
            &[("PGPASSFILE", "/nonexistent")]
        )
        .0,
        None
    );
}

#[test]
fn loose_password_file_is_ignored_with_one_warning() {
    let home = Home::new();
    home.write(".pgpass", "*:*:*:*:pw\n", 0o644);
    let (s, w) = resolve(&args(None, None, None, Some("host=/a,/b")), &home.env(&[]));
    assert!(s.targets().iter().all(|t| s.password_for(t).is_none()));
    let path = home.path().join(".pgpass");
    assert_eq!(
        w,
        vec![format!(
            "WARNING: password file {0} has group or world access (mode 0644); it was ignored — fix it with: chmod 0600 {0}",
            path.display()
        )]
    );
}

#[test]
fn with_dbname_redoes_the_password_file_lookup() {
    let home = Home::new();
    home.write(
        ".pgpass",
        "localhost:5432:db1:alice:one\nlocalhost:5432:db2:alice:two\n",
        0o600,
    );
    let (s, _) = resolve(&args(None, None, None, Some("db1")), &home.env(&[]));
    let pw = |s: &ConnSettings| {
        s.password_for(&s.targets()[0])
            .map(|(p, _)| p.expose().to_string())
    };
    assert_eq!(pw(&s), Some("one".into()));
    let s2 = s.with_dbname("db2");
    assert_eq!((s2.dbname(), pw(&s2)), ("db2", Some("two".into())));
    assert_eq!(pw(&s.with_dbname("db3")), None);
    assert_eq!(get(&s2, "dbname").1, Origin::Program);
    assert_eq!((s2.user(), s2.host_display()), ("alice", s.host_display()));
}

#[test]
fn child_env_carries_the_password_in_a_private_file() {
    let home = Home::new();
    let secret = "pa:ss\\XYZ";
    let a = args(
        Some("db.example"),
        Some("5433"),
        Some("bob"),
        Some("clinic"),
    );
    let (s, _) = resolve(&a, &home.env(&[("PGPASSWORD", secret)]));
    let child = s.child_env().expect("child env");
    for (name, want) in [
        ("PGHOST", "db.example"),
        ("PGPORT", "5433"),
        ("PGUSER", "bob"),
        ("PGDATABASE", "clinic"),
        ("PGSSLMODE", "prefer"),
    ] {
        assert_eq!(child.get(name), Some(want), "{name}");
    }
    assert_eq!(child.get("PGPASSWORD"), None);
    for gone in [
        "PGPASSWORD",
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGHOSTADDR",
        "PGAPPNAME",
    ] {
        assert!(
            child.removed().iter().any(|r| r == gone),
            "{gone} must be removed"
        );
    }
    let file = std::path::PathBuf::from(child.get("PGPASSFILE").expect("PGPASSFILE"));
    let mode = std::fs::metadata(&file)
        .expect("exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        "db.example:5433:*:bob:pa\\:ss\\\\XYZ\n"
    );
    for debug in [format!("{s:?}"), format!("{child:?}")] {
        assert!(
            !debug.contains("pa:ss") && !debug.contains("XYZ"),
            "password leaked: {debug}"
        );
    }
    let mut cmd = std::process::Command::new("true");
    child.apply(&mut cmd);
    let envs: Vec<_> = cmd
        .get_envs()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.is_some()))
        .collect();
    assert!(
        envs.contains(&("PGPASSWORD".into(), false)) && envs.contains(&("PGHOST".into(), true))
    );
    drop(child);
    assert!(
        !file.exists(),
        "the temporary password file is removed with the ChildEnv"
    );
}

#[test]
fn child_env_without_a_password_points_at_the_resolved_password_file() {
    let home = Home::new();
    let (s, _) = resolve(
        &args(None, None, None, Some("passfile=/etc/pgstep.pgpass")),
        &home.env(&[]),
    );
    let child = s.child_env().expect("child env");
    assert_eq!(child.get("PGPASSFILE"), Some("/etc/pgstep.pgpass"));
    assert_eq!(child.get("PGHOST"), Some("/var/run/postgresql"));
}

#[test]
fn a_prompted_password_reaches_children_and_copies() {
    let home = Home::new();
    let (s, _) = resolve(
        &args(None, None, None, None),
        &home.env(&[("PGPASSWORD", "stale")]),
    );
    let copy = s.with_dbname("other");
    s.remember_prompted(Secret::new("typed"));
    assert_eq!(
        copy.password_for(&copy.targets()[0])
            .map(|(p, o)| (p.expose().to_string(), o)),
        Some(("typed".into(), Origin::Prompt))
    );
    let child = copy.child_env().expect("child env");
    let text = std::fs::read_to_string(child.get("PGPASSFILE").expect("file")).expect("read");
    assert_eq!(text, "localhost:5432:*:alice:typed\n");
}

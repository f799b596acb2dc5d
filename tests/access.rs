//! Blocking and restoring access to a database against a real PostgreSQL: real connection
//! attempts by real login roles (the test cluster trusts every role on its socket).

mod common;

use std::time::Duration;

use common::Pg;
use pgstep::db::access::{self, AccessSnapshot, Why};
use pgstep::db::sessions::other_sessions_settled;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};

/// Connects to `db` as `role`, as a user's client would.
fn connect_as(pg: &Pg, role: &str, db: &str) -> Result<Client, postgres::Error> {
    postgres::Config::new()
        .host_path(pg.cluster.socket_dir())
        .port(pg.cluster.port())
        .user(role)
        .dbname(db)
        .connect(NoTls)
}

fn can_connect(pg: &Pg, role: &str, db: &str) -> bool {
    connect_as(pg, role, db).is_ok()
}

/// The server's refusal when `role` tries to connect to `db`.
fn refusal(pg: &Pg, role: &str, db: &str) -> String {
    match connect_as(pg, role, db) {
        Ok(_) => panic!("{role} could connect to {db}"),
        Err(e) => e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
    }
}

fn assert_blocked(pg: &Pg, role: &str, db: &str) {
    let why = refusal(pg, role, db);
    assert!(
        why.contains("permission denied for database"),
        "{role} on {db}: {why}"
    );
}

/// A cluster with database `app` (default privileges) and login role `nurse`.
fn cluster() -> Pg {
    let pg = Pg::start();
    // CREATE DATABASE cannot share a multi-statement string.
    pg.exec("postgres", "CREATE DATABASE app");
    pg.exec(
        "postgres",
        "CREATE ROLE nurse LOGIN; CREATE ROLE clerk LOGIN; CREATE ROLE doctor LOGIN",
    );
    pg
}

fn snapshot(pg: &Pg, db: &str) -> AccessSnapshot {
    access::snapshot(&mut pg.client("postgres"), db).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_role_blocked_cannot_connect_and_can_again_after_restore() {
    let pg = cluster();
    assert!(can_connect(&pg, "nurse", "app"));
    let before = snapshot(&pg, "app");
    assert!(before.acl_was_null);

    let mut admin = pg.client("postgres");
    let (saved, report) = access::block(&mut admin, "app", "postgres").expect("block");
    assert_eq!(saved, before);
    assert_eq!(report.revoked_from, vec!["PUBLIC"]);
    assert!(!report.granted_to_operator, "a superuser needs no grant");
    assert_blocked(&pg, "nurse", "app");
    assert!(
        can_connect(&pg, "postgres", "app"),
        "the operator still can"
    );

    access::restore(&mut admin, &saved).expect("restore");
    assert!(can_connect(&pg, "nurse", "app"));
    let after = snapshot(&pg, "app");
    // The catalog value itself is back: a NULL ACL, which follows a later change of owner.
    assert!(after.acl_was_null);
    assert_eq!(datacl(&pg, "app"), None);
    assert_eq!(after.effective, before.effective);
    assert!(before.differences(&after).is_empty());
}

#[test]
fn explicit_grants_grant_options_and_a_connection_limit_come_back_exactly() {
    let pg = cluster();
    pg.exec(
        "postgres",
        "REVOKE ALL ON DATABASE app FROM PUBLIC; \
         GRANT CONNECT ON DATABASE app TO nurse WITH GRANT OPTION; \
         GRANT TEMPORARY ON DATABASE app TO doctor; GRANT CONNECT ON DATABASE app TO doctor; \
         ALTER DATABASE app CONNECTION LIMIT 7; \
         SET ROLE nurse; GRANT CONNECT ON DATABASE app TO clerk; RESET ROLE",
    );
    let before = snapshot(&pg, "app");
    assert!(!before.acl_was_null);
    assert_eq!(before.connlimit, 7);
    assert!(
        before
            .effective
            .contains(&("nurse".into(), "CONNECT".into(), true))
    );
    assert!(
        before
            .effective
            .contains(&("clerk".into(), "CONNECT".into(), false)),
        "granted by nurse: {:?}",
        before.effective
    );

    let mut admin = pg.client("postgres");
    let (saved, report) = access::block(&mut admin, "app", "postgres").expect("block");
    assert_eq!(report.revoked_from, vec!["clerk", "doctor", "nurse"]);
    for role in ["nurse", "clerk", "doctor"] {
        assert_blocked(&pg, role, "app");
    }
    // Only CONNECT was taken: the connection limit is untouched until restored.
    assert_eq!(snapshot(&pg, "app").connlimit, 7);

    access::restore(&mut admin, &saved).expect("restore");
    assert_eq!(snapshot(&pg, "app"), before, "exactly as before");
    for role in ["nurse", "clerk", "doctor"] {
        assert!(can_connect(&pg, role, "app"), "{role}");
    }
}

#[test]
fn a_connection_limit_changed_meanwhile_is_restored() {
    let pg = cluster();
    pg.exec("postgres", "ALTER DATABASE app CONNECTION LIMIT 3");
    let mut admin = pg.client("postgres");
    let (saved, _) = access::block(&mut admin, "app", "postgres").expect("block");
    pg.exec("postgres", "ALTER DATABASE app CONNECTION LIMIT 0");
    access::restore(&mut admin, &saved).expect("restore");
    let after = snapshot(&pg, "app");
    assert_eq!(after.connlimit, 3);
    assert!(saved.differences(&after).is_empty());
}

#[test]
fn restore_is_idempotent_and_safe_without_a_block() {
    let pg = cluster();
    let mut admin = pg.client("postgres");
    let before = snapshot(&pg, "app");

    // Recovery after a crash before the block: nothing to do, and nothing is done.
    access::restore(&mut admin, &before).expect("restore without block");
    assert_eq!(snapshot(&pg, "app"), before, "the ACL is even still NULL");

    let (saved, _) = access::block(&mut admin, "app", "postgres").expect("block");
    access::restore(&mut admin, &saved).expect("restore");
    let once = snapshot(&pg, "app");
    access::restore(&mut admin, &saved).expect("restore again");
    assert_eq!(snapshot(&pg, "app"), once);
    assert!(before.differences(&once).is_empty());
    assert!(can_connect(&pg, "nurse", "app"));
}

#[test]
fn a_restore_that_cannot_be_made_equal_names_the_difference_and_changes_nothing() {
    let pg = cluster();
    let mut admin = pg.client("postgres");
    let (mut saved, _) = access::block(&mut admin, "app", "postgres").expect("block");
    let blocked = snapshot(&pg, "app");
    // A journal naming a role that no longer exists.
    saved
        .effective
        .push(("gone".into(), "CONNECT".into(), false));
    let err = access::restore(&mut admin, &saved)
        .expect_err("cannot grant to a missing role")
        .to_string();
    assert!(err.contains("gone"), "{err}");
    assert_eq!(snapshot(&pg, "app"), blocked, "all or nothing");

    // A damaged journal never reaches the SQL.
    saved.effective = vec![("PUBLIC".into(), "CONNECT; DROP DATABASE app".into(), false)];
    let err = access::restore(&mut admin, &saved)
        .expect_err("unknown privilege")
        .to_string();
    assert!(err.contains("unknown privilege"), "{err}");
    assert!(pg.exists("app"));
}

#[test]
fn a_non_superuser_operator_keeps_connecting_and_who_still_can_is_listed() {
    let pg = cluster();
    // The operator owns the database but had CONNECT only through PUBLIC; a member of its role
    // inherits its privileges; another superuser cannot be blocked.
    pg.exec(
        "postgres",
        "CREATE ROLE dba LOGIN CREATEDB; ALTER DATABASE app OWNER TO dba; \
         REVOKE CONNECT ON DATABASE app FROM dba; \
         CREATE ROLE helper LOGIN IN ROLE dba; CREATE ROLE admin LOGIN SUPERUSER; \
         CREATE ROLE nologin_super SUPERUSER",
    );
    let mut operator = connect_as(&pg, "dba", "postgres").expect("dba connects");
    let (saved, report) = access::block(&mut operator, "app", "dba").expect("block");
    assert!(report.granted_to_operator);
    assert_blocked(&pg, "nurse", "app");
    assert!(can_connect(&pg, "dba", "app"), "the operator still can");
    assert!(
        can_connect(&pg, "admin", "app"),
        "superusers bypass privileges"
    );

    let listed: Vec<(&str, Why)> = report
        .can_still_connect
        .iter()
        .map(|s| (s.role.as_str(), s.why))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("admin", Why::Superuser),
            ("dba", Why::Operator),
            ("helper", Why::MemberOfOperator),
            ("postgres", Why::Superuser),
        ]
    );
    assert!(
        report.can_still_connect[0]
            .to_string()
            .contains("superuser")
    );

    access::restore(&mut operator, &saved).expect("restore");
    assert!(saved.differences(&snapshot(&pg, "app")).is_empty());
    assert!(
        !snapshot(&pg, "app")
            .effective
            .iter()
            .any(|(g, p, _)| g == "dba" && p == "CONNECT"),
        "the operator's own grant went with the restore"
    );
}

#[test]
fn the_old_database_closed_for_good_lets_only_its_owner_in() {
    let pg = cluster();
    pg.exec(
        "postgres",
        "CREATE ROLE keeper LOGIN; ALTER DATABASE app OWNER TO keeper; \
         GRANT CONNECT ON DATABASE app TO nurse",
    );
    let before = snapshot(&pg, "app");
    let mut admin = pg.client("postgres");
    let (saved, _) = access::block(&mut admin, "app", "postgres").expect("block");
    assert_blocked(&pg, "keeper", "app");

    // As after a successful upgrade: read-only first, and pgstep's session on that database.
    pg.exec(
        "postgres",
        "ALTER DATABASE app SET default_transaction_read_only = on",
    );
    let mut on_app = pg.client("app");
    access::close_for_good(&mut on_app, "app").expect("close");
    assert!(can_connect(&pg, "keeper", "app"), "the owner can");
    assert_blocked(&pg, "nurse", "app");
    assert_blocked(&pg, "clerk", "app");
    access::close_for_good(&mut admin, "app").expect("closing twice is fine");

    // Reopened with the snapshot the journal kept.
    access::restore(&mut on_app, &saved).expect("reopen");
    assert!(before.differences(&snapshot(&pg, "app")).is_empty());
    assert!(can_connect(&pg, "nurse", "app"));
}

#[test]
fn terminate_ends_a_session_on_the_database_and_refuses_one_elsewhere() {
    let pg = cluster();
    pg.exec("postgres", "CREATE DATABASE other");
    let pid_of = |c: &mut Client| -> i32 {
        c.query_one("SELECT pg_backend_pid()", &[])
            .expect("pid")
            .get(0)
    };
    let mut victim = connect_as(&pg, "nurse", "app").expect("nurse on app");
    let mut bystander = connect_as(&pg, "nurse", "other").expect("nurse on other");
    let (victim_pid, bystander_pid) = (pid_of(&mut victim), pid_of(&mut bystander));

    let mut admin = pg.client("postgres");
    let done = access::terminate(&mut admin, "app", &[victim_pid, bystander_pid, 999_999])
        .expect("terminate");
    assert_eq!(
        done,
        vec![(victim_pid, true), (bystander_pid, false), (999_999, false)]
    );

    let left = other_sessions_settled(&mut admin, "app", Duration::from_secs(30)).expect("list");
    assert!(left.is_empty(), "{left:?}");
    assert!(
        victim.simple_query("SELECT 1").is_err(),
        "the session ended"
    );
    assert!(
        bystander.simple_query("SELECT 1").is_ok(),
        "the session on the other database goes on"
    );
}

#[test]
fn notify_reaches_the_clients_listening_on_every_channel() {
    let pg = cluster();
    let mut listener = connect_as(&pg, "nurse", "app").expect("listener");
    listener
        .batch_execute("LISTEN clinic_admin; LISTEN \"Other Channel\"")
        .expect("listen");
    let mut app = pg.client("app");
    let payload = "upgrade in progress: it's 'quoted'";
    access::notify(
        &mut app,
        &["clinic_admin".to_owned(), "Other Channel".to_owned()],
        payload,
    )
    .expect("notify");

    let mut notifications = listener.notifications();
    let got: Vec<(String, String)> = notifications
        .timeout_iter(Duration::from_secs(30))
        .take(2)
        .map(|n| Ok((n.channel().to_owned(), n.payload().to_owned())))
        .collect()
        .expect("notifications");
    assert_eq!(
        got,
        vec![
            ("clinic_admin".to_owned(), payload.to_owned()),
            ("Other Channel".to_owned(), payload.to_owned()),
        ]
    );
}

#[test]
fn a_snapshot_survives_the_journal() {
    let pg = cluster();
    let before = snapshot(&pg, "app");
    let text = serde_json::to_string(&before).expect("serialise");
    let back: AccessSnapshot = serde_json::from_str(&text).expect("deserialise");
    assert_eq!(back, before);
}

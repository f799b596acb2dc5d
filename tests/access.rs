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
    pgstep::db::retire::close_for_good(&mut on_app, "app").expect("close");
    assert!(can_connect(&pg, "keeper", "app"), "the owner can");
    assert_blocked(&pg, "nurse", "app");
    assert_blocked(&pg, "clerk", "app");
    pgstep::db::retire::close_for_good(&mut admin, "app").expect("closing twice is fine");

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
    let done =
        pgstep::db::sessions::terminate(&mut admin, "app", &[victim_pid, bystander_pid, 999_999])
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
    pgstep::db::sessions::notify(
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

// --- the whole procedure, through the real binary ---

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

/// The raw catalog value of a database's ACL: None when it is NULL (the defaults).
fn datacl(pg: &Pg, db: &str) -> Option<String> {
    pg.client("postgres")
        .query_one(
            "SELECT datacl::text FROM pg_database WHERE datname = $1",
            &[&db],
        )
        .expect("datacl")
        .get(0)
}

fn sample_arg() -> String {
    common::sample_dir().to_string_lossy().into_owned()
}

/// A run of the binary in the background, its stdout and stderr read line by line as they come.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pgstep");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let tx_out = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx_out.send(line);
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (with a deadline) for an output line containing `needle`.
    fn wait_for(&mut self, needle: &str) {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(e) => {
                    let _ = self.child.kill();
                    panic!("no line with {needle:?} ({e}):\n{}", self.seen.join("\n"));
                }
            }
        }
    }

    /// Waits for the end; returns the exit code and all of its output.
    fn finish(mut self) -> (i32, String) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(180)) {
            self.seen.push(line);
        }
        let code = self.child.wait().expect("wait").code().unwrap_or(-1);
        (code, self.seen.join("\n"))
    }

    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill");
    }
}

/// An upgrade of clinic_v1 by the binary, headless, holding at the end of `step` until the
/// gate file in `data` exists.
fn upgrade_waiting_at(pg: &Pg, data: &Path, step: &str) -> (Running, PathBuf) {
    let gate = data.join("gate");
    let mut cmd = common::pgstep_cmd(pg, data);
    cmd.env("PGSTEP_FAULT", format!("{step}:wait"))
        .env("PGSTEP_FAULT_GATE", &gate)
        .args([
            "upgrade",
            "--bundle",
            &sample_arg(),
            "--database",
            "clinic_v1",
            "--headless",
            "--yes",
        ]);
    let mut run = Running::start(cmd);
    run.wait_for(&format!("fault point {step} reached"));
    (run, gate)
}

/// A whole headless upgrade by the binary with `bundle`, confirmed with --yes.
fn upgrade_headless(pg: &Pg, data: &Path, bundle: &str) -> common::BinRun {
    common::run_pgstep(
        pg,
        data,
        &["upgrade", "--bundle", bundle, "--headless", "--yes"],
    )
}

fn open_gate(gate: &Path) {
    std::fs::write(gate, "").expect("open the gate");
}

/// The newest report JSON and Markdown in `data`.
fn report_of(data: &Path) -> (serde_json::Value, String) {
    let dir = data.join("reports");
    let mut jsons: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("reports")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    jsons.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let json = jsons.pop().expect("a report");
    let value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("read")).expect("report json");
    let md = std::fs::read_to_string(json.with_extension("md")).expect("report md");
    (value, md)
}

/// Finding 4: the application's login role cannot connect to the clone while it is upgraded;
/// after the cut-over it can, with exactly the source's access from before the downtime.
#[test]
fn the_clone_is_closed_during_the_upgrade_and_opened_with_the_source_access_at_the_cut_over() {
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    // The sample's application role, made a login role as a site runs it, with its own grant
    // and a connection limit on the database; and a role that connects through PUBLIC.
    pg.exec(
        "postgres",
        "ALTER ROLE clinic_app LOGIN; CREATE ROLE walk_in LOGIN; \
         GRANT CONNECT ON DATABASE clinic_v1 TO clinic_app; \
         ALTER DATABASE clinic_v1 CONNECTION LIMIT 40",
    );
    let before = common::access_of(&pg, "clinic_v1");
    assert!(can_connect(&pg, "clinic_app", "clinic_v1"));
    let data = tempfile::tempdir().expect("tempdir");

    let (run, gate) = upgrade_waiting_at(&pg, data.path(), "clone_upgrade");
    assert!(pg.exists("clinic_v2"), "the clone is being upgraded");
    for role in ["clinic_app", "walk_in"] {
        assert_blocked(&pg, role, "clinic_v2");
    }
    open_gate(&gate);
    let (code, err) = run.finish();
    assert_eq!(code, 0, "{err}");

    assert!(can_connect(&pg, "clinic_app", "clinic_v2"));
    assert!(can_connect(&pg, "walk_in", "clinic_v2"));
    assert_eq!(common::access_of(&pg, "clinic_v2"), before);
}

/// Finding 6: a NULL ACL is NULL again after the failure path and after `recover`, and a
/// successful cut-over gives the new database a NULL ACL too.
#[test]
fn a_null_acl_is_null_again_after_the_failure_path_and_after_recover() {
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    assert_eq!(datacl(&pg, "clinic_v1"), None);
    let data = tempfile::tempdir().expect("tempdir");

    // The failure path.
    let mut cmd = common::pgstep_cmd(&pg, data.path());
    cmd.env("PGSTEP_FAULT", "sanity_checks:fail");
    let out = cmd
        .args(["upgrade", "--bundle", &sample_arg(), "--headless", "--yes"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(datacl(&pg, "clinic_v1"), None, "after the failure path");

    // Killed with SIGKILL while the clone is upgraded, then recovered.
    let (run, _gate) = upgrade_waiting_at(&pg, data.path(), "clone_upgrade");
    assert!(datacl(&pg, "clinic_v1").is_some(), "blocked meanwhile");
    run.signal(libc::SIGKILL);
    let _ = run.finish();
    let out = common::run_pgstep(&pg, data.path(), &["recover"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(datacl(&pg, "clinic_v1"), None, "after recover");

    // And a successful run: the new database's ACL is the source's, NULL.
    let out = upgrade_headless(&pg, data.path(), &sample_arg());
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(datacl(&pg, "clinic_v2"), None, "the new database");
}

/// Finding 5: a refusal because users are still connected names them, in the headless output,
/// the JSON result and the report.
#[test]
fn a_refusal_for_connected_users_names_them_everywhere() {
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let mut user = pg.client("clinic_v1");
    user.batch_execute("SET application_name = 'front-desk'")
        .expect("set");
    let data = tempfile::tempdir().expect("tempdir");
    let upgrade = [
        "upgrade",
        "--bundle",
        &sample_arg(),
        "--database",
        "clinic_v1",
        "--yes",
    ];

    let mut args = upgrade.to_vec();
    args.push("--headless");
    let out = common::run_pgstep(&pg, data.path(), &args);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    let named = out
        .stderr
        .lines()
        .find(|l| l.contains("application \"front-desk\""))
        .unwrap_or_else(|| panic!("the session is not named:\n{}", out.stderr));
    assert!(
        named.contains("user postgres")
            && named.contains("from local socket")
            && named.contains("since ")
            && named.contains("idle"),
        "{named}"
    );
    let (report, md) = report_of(data.path());
    let listed = &report["still_connected"][0];
    assert_eq!(listed["application"], "front-desk", "{report}");
    assert!(
        md.contains("## Still connected") && md.contains("front-desk"),
        "{md}"
    );

    let mut args = upgrade.to_vec();
    args.push("--json");
    let out = common::run_pgstep(&pg, data.path(), &args);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    let last: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().expect("events")).expect("json");
    let s = &last["still_connected"][0];
    assert_eq!(
        (
            s["user"].as_str(),
            s["application"].as_str(),
            s["client"].as_str(),
            s["state"].as_str()
        ),
        (
            Some("postgres"),
            Some("front-desk"),
            Some("local socket"),
            Some("idle")
        ),
        "{last}"
    );
    assert!(s["since"].as_str().is_some_and(|t| !t.is_empty()), "{s}");
    user.simple_query("SELECT 1").expect("still connected");
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// Every file under `dir` is 0600 and every directory 0700; returns the wrong ones.
fn not_private(dir: &Path) -> Vec<String> {
    let mut wrong = Vec::new();
    let want = if dir.is_dir() { 0o700 } else { 0o600 };
    if mode(dir) != want {
        wrong.push(format!("{} {:o}", dir.display(), mode(dir)));
    }
    if dir.is_dir() {
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            wrong.extend(not_private(&e.path()));
        }
    }
    wrong
}

/// Finding 9: backups (both formats, metadata), logs, reports, journals, locks and plans are
/// readable by pgstep's user only.
#[test]
fn everything_pgstep_writes_is_private_to_its_user() {
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let data = tempfile::tempdir().expect("tempdir");
    let backups = tempfile::tempdir().expect("tempdir");
    // A data and a backup directory that exist with the usual mode: pgstep makes them private.
    for dir in [data.path(), backups.path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let backup_dir = backups.path().to_string_lossy().into_owned();
    let out = common::run_pgstep(
        &pg,
        data.path(),
        &["plan", "--bundle", &sample_arg(), "--database", "clinic_v1"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    for (db, format) in [("clinic_v1", "custom"), ("clinic_v2", "directory")] {
        let out = common::run_pgstep(
            &pg,
            data.path(),
            &[
                "upgrade",
                "--bundle",
                &sample_arg(),
                "--database",
                db,
                "--headless",
                "--yes",
                "--backup-dir",
                &backup_dir,
                "--backup-format",
                format,
            ],
        );
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    }
    for sub in ["journal", "logs", "reports", "plans"] {
        assert!(data.path().join(sub).is_dir(), "{sub} written");
    }
    let backup_entries = std::fs::read_dir(backups.path()).expect("backups").count();
    assert!(backup_entries >= 4, "two backups and their metadata");
    let mut wrong = not_private(data.path());
    wrong.extend(not_private(backups.path()));
    assert!(wrong.is_empty(), "not private:\n{}", wrong.join("\n"));
}

// --- finding 12: truthful records ---

/// (a) `pgstep plan` prints each file's own sha256, what `sha256sum` prints.
#[test]
fn the_plan_prints_each_files_real_sha256() {
    use sha2::{Digest, Sha256};
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let data = tempfile::tempdir().expect("tempdir");
    let out = common::run_pgstep(
        &pg,
        data.path(),
        &[
            "plan",
            "--bundle",
            &sample_arg(),
            "--database",
            "clinic_v1",
            "--output",
            "-",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let mut compared = 0;
    for (i, line) in lines.iter().enumerate() {
        // "### 1.1 `v1-v2/01_x.sql`" then "- sha256 `…` (the file; it includes no other file)"
        let Some(file) = line
            .strip_prefix("### ")
            .and_then(|l| l.split('`').nth(1))
            .filter(|f| f.ends_with(".sql"))
        else {
            continue;
        };
        let Some(next) = lines.get(i + 1).or_else(|| lines.get(i + 2)) else {
            continue;
        };
        let next = if next.is_empty() {
            lines.get(i + 2).copied().unwrap_or_default()
        } else {
            next
        };
        if !next.contains("(the file; it includes no other file)") {
            continue;
        }
        let printed = next.split('`').nth(1).expect("a sha256");
        let bytes = std::fs::read(common::sample_dir().join(file)).expect("read the script");
        let real: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(printed, real, "{file}");
        compared += 1;
    }
    assert!(compared > 0, "no script in the plan:\n{}", out.stdout);
}

/// The sample bundle, copied, with `edit` applied to its bundle.toml.
fn edited_bundle(edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let copy = common::copy_bundle(&common::sample_dir());
    let manifest = copy.path().join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).expect("read");
    std::fs::write(&manifest, edit(text)).expect("write");
    copy
}

/// (b) every change is confirmed in the report; (c) times carry milliseconds and the
/// duration comes from them; (d) after a fixed-name cut-over the report says what each
/// database is now.
#[test]
fn the_report_of_a_fixed_name_upgrade_says_what_was_confirmed_when_and_what_is_now() {
    let copy = edited_bundle(|t| {
        t.replace(
            "naming = \"versioned\"\nname = \"clinic_v{major}\"",
            "naming = \"fixed\"\nname = \"clinic\"\naside = \"{name}_v{major}_old\"",
        )
    });
    let bundle = pgstep::bundle::load(copy.path()).unwrap_or_else(|e| panic!("{e}"));
    let pg = Pg::start();
    let mut rec = common::Recorder::default();
    common::with_ctx(&pg, &bundle, &mut rec, |ctx| {
        pgstep::engine::bootstrap::bootstrap(
            ctx,
            "clinic",
            Some(pgstep::bundle::Version::new(1, 0)),
            false,
        )
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let data = tempfile::tempdir().expect("tempdir");
    let out = upgrade_headless(&pg, data.path(), &copy.path().to_string_lossy());
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let (report, md) = report_of(data.path());

    // Both fingerprints are recorded: the source's before and the upgraded clone's after.
    for when in ["before", "after"] {
        let hash = report["fingerprints"][when].as_str().unwrap_or_default();
        assert!(
            hash.starts_with("sha256:") && hash.len() > 20,
            "{when}: {report}"
        );
    }

    let changes = report["changes"].as_array().expect("changes");
    assert!(changes.len() >= 6, "{report}");
    for c in changes {
        assert_eq!(c["confirmed"], true, "{c}");
    }

    let time = |v: &serde_json::Value| {
        let t = v.as_str().expect("a time");
        assert!(t.contains('.'), "milliseconds in {t}");
        chrono::DateTime::parse_from_rfc3339(t).expect("rfc 3339")
    };
    let started = time(&report["info"]["started_at"]);
    let finished = time(&report["finished_at"]);
    let took = (finished - started).num_milliseconds() as f64 / 1000.0;
    let said = if took < 10.0 {
        format!("It took {took:.1} s.")
    } else {
        format!("It took {} s.", took.round())
    };
    assert!(md.contains(&said), "{said} in:\n{md}");

    let blocked = md
        .lines()
        .find(|l| l.contains("new connections to \"clinic\" blocked"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(
        blocked.contains("\"clinic_v1_old\"") && blocked.contains("closed to users"),
        "{blocked}"
    );
    assert!(
        !blocked.trim_end_matches([' ', '|']).ends_with("in place"),
        "{blocked}"
    );
}

/// (e) a failed sanity check of the upgraded clone is a failure, exit 1, everything undone;
/// README and --help say so.
#[test]
fn a_failed_sanity_check_exits_1_as_readme_and_help_say() {
    let copy = edited_bundle(|t| {
        t + "\n[[plausibility]]\nname = \"always differs\"\nold = \"SELECT 1\"\nnew = \"SELECT 2\"\n"
    });
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let before = common::source_state(&pg, "clinic_v1");
    let data = tempfile::tempdir().expect("tempdir");
    let out = upgrade_headless(&pg, data.path(), &copy.path().to_string_lossy());
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("sanity check(s) failed"),
        "{}",
        out.stderr
    );
    assert_eq!(common::source_state(&pg, "clinic_v1"), before);
    assert!(!pg.exists("clinic_v2"));

    // The exit-code paragraph of the README: the sanity check is under `1`, not under `3`.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let start = readme.find("**Exit codes**").expect("exit codes in README");
    let para = readme[start..].split("\n\n").next().expect("paragraph");
    let (one, three) = (para.find("`1`").expect("1"), para.find("`3`").expect("3"));
    let sanity = para
        .find("sanity")
        .expect("sanity checks in the exit codes");
    assert!(one < sanity && sanity < three, "{para}");

    let help = common::run_pgstep(&pg, data.path(), &["--help"]);
    let text = help.stdout.replace('\n', " ");
    let codes = &text[text.find("Exit codes").expect("exit codes in --help")..];
    let (one, three) = (
        codes.find("1 failed").expect("1"),
        codes.find("3 ").expect("3"),
    );
    let sanity = codes.find("sanity").expect("sanity in --help");
    assert!(one < sanity && sanity < three, "{codes}");
}

/// (f) SIGTERM and SIGHUP are reported as what they are, not as the operator's cancel.
#[test]
fn sigterm_and_sighup_are_reported_as_what_happened() {
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let before = common::source_state(&pg, "clinic_v1");
    for (signal, words) in [
        (libc::SIGTERM, "stopped by SIGTERM"),
        (libc::SIGHUP, "the terminal went away (SIGHUP)"),
    ] {
        let data = tempfile::tempdir().expect("tempdir");
        let (run, gate) = upgrade_waiting_at(&pg, data.path(), "clone_upgrade");
        run.signal(signal);
        // The driver sees the signal within its poll; the step then ends at the gate.
        let mut run = run;
        run.wait_for("interrupted: stopping at the next safe point");
        open_gate(&gate);
        let (code, err) = run.finish();
        assert_eq!(code, 130, "{words}: {err}");
        // The closing message on stderr ("pgstep: <what stopped the run>…").
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("pgstep: {words}"))),
            "{words}: {err}"
        );
        assert!(
            !err.lines()
                .any(|l| l.starts_with("pgstep: cancelled by the operator")),
            "{err}"
        );
        let (report, md) = report_of(data.path());
        assert!(
            report["failure"]["error"]
                .as_str()
                .is_some_and(|e| e.starts_with(words)),
            "{report}"
        );
        let summary = md
            .lines()
            .find(|l| l.contains("was CANCELLED"))
            .unwrap_or_else(|| panic!("{md}"));
        assert!(
            summary.contains(&format!(": {words}.")) && !summary.contains("by the operator"),
            "{summary}"
        );
        assert_eq!(common::source_state(&pg, "clinic_v1"), before, "{words}");
    }
}

/// Finding 4, in a rehearsal with users connected: the copy restored from the backup is, like
/// a clone, closed to the application's roles while it is upgraded.
#[test]
fn a_rehearsal_copy_restored_from_the_backup_is_closed_while_it_is_upgraded() {
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    pg.exec("postgres", "ALTER ROLE clinic_app LOGIN");
    let _user = pg.client("clinic_v1");
    let data = tempfile::tempdir().expect("tempdir");
    let gate = data.path().join("gate");
    let mut cmd = common::pgstep_cmd(&pg, data.path());
    cmd.env("PGSTEP_FAULT", "clone_upgrade:wait")
        .env("PGSTEP_FAULT_GATE", &gate)
        .args([
            "rehearse",
            "--bundle",
            &sample_arg(),
            "--database",
            "clinic_v1",
            "--headless",
            "--yes",
        ]);
    let mut run = Running::start(cmd);
    run.wait_for("fault point clone_upgrade reached");
    let copies: Vec<String> = pg
        .databases()
        .into_iter()
        .filter(|d| d != "clinic_v1")
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_blocked(&pg, "clinic_app", &copies[0]);
    open_gate(&gate);
    let (code, out) = run.finish();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("restoring the backup into"), "{out}");
}

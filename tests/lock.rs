//! The run lock against a real server: one pgstep run per source database, whoever and wherever
//! the second run is, and a killed run's leftovers never block the next one.

mod common;

use std::fs;
use std::path::Path;

use common::Pg;
use pgstep::journal::{RunInfo, RunKind};
use pgstep::lock::{self, LockError, LockFileContent, RunLock};

/// A run on `db` as if made by process `pid` on `host`.
fn run(pg: &Pg, db: &str, host: &str, pid: u32) -> RunInfo {
    let mut info = RunInfo::new(RunKind::Upgrade, server(pg), db);
    info.host = host.to_owned();
    info.pid = pid;
    info
}

fn server(pg: &Pg) -> String {
    pg.settings("postgres").host_display()
}

fn acquire(pg: &Pg, locks: &Path, info: &RunInfo) -> Result<RunLock, LockError> {
    lock::acquire_in(locks, &pg.settings("postgres"), &info.source_db, info)
}

fn held_by(result: Result<RunLock, LockError>) -> String {
    match result {
        Err(e @ LockError::Held { .. }) => e.to_string(),
        Err(e) => panic!("expected the lock to be held, got: {e}"),
        Ok(_) => panic!("a second run on the same database was allowed"),
    }
}

#[test]
fn a_second_run_on_the_same_database_is_refused_naming_the_holder() {
    let pg = Pg::start();
    let locks = tempfile::tempdir().expect("tempdir");
    let first = run(&pg, "clinic", "ward-pc", 4242);
    let _held = acquire(&pg, locks.path(), &first).expect("first run");

    let message = held_by(acquire(
        &pg,
        locks.path(),
        &run(&pg, "clinic", "ward-pc", 4343),
    ));
    assert!(message.contains("\"clinic\""), "{message}");
    assert!(
        message.contains("pid 4242 on host ward-pc since "),
        "{message}"
    );
    assert!(
        message.contains(&format!("run {}", first.run_id)),
        "{message}"
    );
    assert!(
        message.contains("Only one pgstep run may work on a database at a time"),
        "{message}"
    );
}

#[test]
fn a_run_from_another_machine_is_refused_by_the_server_lock() {
    let pg = Pg::start();
    let first = run(&pg, "clinic", "ward-pc", 4242);
    let here = tempfile::tempdir().expect("tempdir");
    let _held = acquire(&pg, here.path(), &first).expect("first run");

    // Another machine: its own lock files, the same server.
    let there = tempfile::tempdir().expect("tempdir");
    let message = held_by(acquire(&pg, there.path(), &run(&pg, "clinic", "desk", 99)));
    assert!(
        message.contains("pid 4242 on host ward-pc since "),
        "{message}"
    );
    // The server keeps 63 bytes of application_name: the run id's time part always fits.
    assert!(
        message.contains(&format!("run {}", &first.run_id[..16])),
        "{message}"
    );
    assert!(message.contains("pg_terminate_backend("), "{message}");
    assert!(
        message.contains("Only one pgstep run may work on a database at a time"),
        "{message}"
    );
    assert!(
        fs::read_dir(there.path())
            .expect("ls")
            .flatten()
            .all(|e| fs::read(e.path()).expect("read").is_empty()),
        "the refused run leaves no details in its lock file"
    );
}

#[test]
fn another_database_is_not_blocked() {
    let pg = Pg::start();
    let locks = tempfile::tempdir().expect("tempdir");
    let _clinic = acquire(&pg, locks.path(), &run(&pg, "clinic", "h", 1)).expect("clinic");
    let _images = acquire(&pg, locks.path(), &run(&pg, "images", "h", 2)).expect("images");
    let other_machine = tempfile::tempdir().expect("tempdir");
    let _catalog =
        acquire(&pg, other_machine.path(), &run(&pg, "catalog", "h", 3)).expect("catalog");
}

#[test]
fn dropping_the_lock_frees_it_at_once() {
    let pg = Pg::start();
    let locks = tempfile::tempdir().expect("tempdir");
    let held = acquire(&pg, locks.path(), &run(&pg, "clinic", "h", 1)).expect("first");
    let file = held.lock_file().to_path_buf();
    drop(held);
    assert!(
        fs::read(&file).expect("lock file kept").is_empty(),
        "released cleanly: emptied, not deleted"
    );

    // Both halves are free: the same machine, and (through other lock files) the server.
    let again = acquire(&pg, locks.path(), &run(&pg, "clinic", "h", 2)).expect("same machine");
    again.release().expect("release");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let _third =
        acquire(&pg, elsewhere.path(), &run(&pg, "clinic", "h", 3)).expect("another machine");
}

#[test]
fn a_stale_lock_file_of_a_dead_process_does_not_block() {
    let pg = Pg::start();
    let locks = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let dead_pid = child.id();
    child.wait().expect("wait");
    let path = lock::lock_file_path(locks.path(), &server(&pg), "clinic");
    let stale = LockFileContent {
        host: pgstep::journal::hostname(),
        pid: dead_pid,
        run_id: "20260101T000000Z-clinic-1".to_owned(),
        since: "2026-01-01T00:00:00Z".to_owned(),
        server: server(&pg),
        source_db: "clinic".to_owned(),
    };
    fs::create_dir_all(locks.path()).expect("mkdir");
    fs::write(&path, serde_json::to_string(&stale).expect("json")).expect("write stale");

    let info = run(&pg, "clinic", &pgstep::journal::hostname(), 4242);
    let held = acquire(&pg, locks.path(), &info).expect("a stale lock file does not block");
    let warning = held.warnings().join("\n");
    assert!(warning.contains("stale lock file"), "{warning}");
    assert!(warning.contains(&format!("pid {dead_pid}")), "{warning}");
    assert!(warning.contains("no longer running"), "{warning}");
    assert!(warning.contains("20260101T000000Z-clinic-1"), "{warning}");
    let now: LockFileContent =
        serde_json::from_slice(&fs::read(&path).expect("read")).expect("lock file content");
    assert_eq!((now.pid, now.run_id), (4242, info.run_id));
}

#[test]
fn the_lock_session_is_named_and_a_lost_lock_is_noticed() {
    let pg = Pg::start();
    let locks = tempfile::tempdir().expect("tempdir");
    let info = run(&pg, "clinic", "h", 7);
    let mut held = acquire(&pg, locks.path(), &info).expect("lock");
    assert_eq!(held.maintenance_db(), "postgres");
    held.verify().expect("held");
    let backend: i32 = held
        .client()
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("pid")
        .get(0);

    let mut admin = pg.client("postgres");
    let name: String = admin
        .query_one(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1",
            &[&backend],
        )
        .expect("session")
        .get(0);
    let expected = format!("pgstep h pid 7 run {}", info.run_id);
    assert_eq!(name, expected[..expected.len().min(63)]);

    // An administrator ends the session (waiting until it is gone): the run must notice.
    let ended: bool = admin
        .query_one("SELECT pg_terminate_backend($1, 10000)", &[&backend])
        .expect("terminate")
        .get(0);
    assert!(ended);
    assert!(matches!(held.verify(), Err(LockError::Lost { .. })));
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let _next =
        acquire(&pg, elsewhere.path(), &run(&pg, "clinic", "h", 8)).expect("lock was freed");
}

#[test]
fn without_the_postgres_database_the_lock_is_held_through_template1() {
    let pg = Pg::start();
    pg.exec("template1", "DROP DATABASE postgres");
    let locks = tempfile::tempdir().expect("tempdir");
    let held = acquire(&pg, locks.path(), &run(&pg, "clinic", "h", 1)).expect("lock");
    assert_eq!(held.maintenance_db(), "template1");
    let warning = held.warnings().join("\n");
    assert!(warning.contains("template1"), "{warning}");
    assert!(warning.contains("CREATE DATABASE"), "{warning}");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    held_by(acquire(&pg, elsewhere.path(), &run(&pg, "clinic", "h", 2)));
}

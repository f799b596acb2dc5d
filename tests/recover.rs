//! The journal is the only truth of what is pending: a run stays listed by `pgstep status`
//! until `pgstep recover` has undone — and read back — everything it changed, whatever stopped
//! it (the server going away, `kill -9` while a statement runs), on the run's own server only,
//! without the bundle, and past a damaged journal. A run that is alive is called running.
//! No sleeps: the tests wait on output lines, on files and on pg_stat_activity.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Pg, access_of, sample_dir, user_content};

fn cluster_with_clinic_v1() -> Pg {
    common::clinic_v1(&common::sample_bundle(), 0)
}

/// What users and the next run depend on, catalog values included.
fn before_state(pg: &Pg, db: &str) -> (String, String, String) {
    let catalog: String = pg.query_one(
        "postgres",
        &format!(
            "SELECT datconnlimit::text || ' ' || datallowconn::text FROM pg_database WHERE datname = '{db}'"
        ),
    );
    (user_content(pg, db), access_of(pg, db), catalog)
}

fn pgstep(pg: &Pg, data_dir: &Path) -> Command {
    common::pgstep_cmd(pg, data_dir)
}

fn output(mut cmd: Command, args: &[&str]) -> (i32, String, String) {
    let out = cmd.args(args).output().expect("run pgstep");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Lines of a child's pipe, read on a thread.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Waits for a line containing `needle`; returns every line seen until then.
fn wait_for_line(rx: &mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(line) if line.contains(needle) => return seen,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no line with {needle:?}: {e}\n{}", seen.join("\n")),
        }
    }
}

/// An upgrade of clinic_v1 with `bundle`, started in `cwd`, with the fault points `fault`.
fn upgrade(pg: &Pg, bundle: &str, cwd: &Path, fault: Option<&str>, gate: Option<&Path>) -> Child {
    let mut cmd = pgstep(pg, &pg.data_dir());
    if let Some(f) = fault {
        cmd.env("PGSTEP_FAULT", f);
    }
    if let Some(g) = gate {
        cmd.env("PGSTEP_FAULT_GATE", g);
    }
    cmd.current_dir(cwd)
        .args(["upgrade", "--bundle", bundle, "--headless", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pgstep")
}

/// Starts an upgrade that waits to be killed at the end of `step`; returns once it waits.
fn upgrade_paused_at(pg: &Pg, step: &str) -> Child {
    let dir = sample_dir();
    let mut child = upgrade(
        pg,
        &dir.to_string_lossy(),
        &dir,
        Some(&format!("{step}:pause")),
        None,
    );
    let rx = lines_of(child.stderr.take().expect("stderr"));
    wait_for_line(&rx, &format!("fault point {step} reached"));
    child
}

fn kill_9(mut child: Child) {
    let status = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let _ = child.wait();
}

fn exit_code_within(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "pgstep did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// After a good recover: the source as before, no clone, nothing listed, nothing to redo.
fn assert_clean_after_recover(pg: &Pg, before: &(String, String, String)) {
    assert_eq!(
        &before_state(pg, "clinic_v1"),
        before,
        "source content, banner and access as before"
    );
    assert!(!pg.exists("clinic_v2"), "no clone left");
    let (code, status, _) = output(pgstep(pg, &pg.data_dir()), &["status"]);
    assert_eq!(code, 0, "{status}");
    assert!(status.contains("No interrupted run"), "{status}");
    let (code, again, _) = output(pgstep(pg, &pg.data_dir()), &["recover"]);
    assert_eq!(
        (code, again.trim()),
        (0, "No interrupted run: nothing to recover."),
        "a second recover finds nothing"
    );
}

#[test]
fn server_stopped_during_the_clone_upgrade_leaves_the_run_listed_until_recover_undoes_it() {
    let pg = cluster_with_clinic_v1();
    let before = before_state(&pg, "clinic_v1");
    let gate_dir = tempfile::tempdir().expect("tempdir");
    let gate = gate_dir.path().join("open");
    let dir = sample_dir();
    let mut child = upgrade(
        &pg,
        &dir.to_string_lossy(),
        &dir,
        Some("clone_upgrade:wait"),
        Some(&gate),
    );
    let rx = lines_of(child.stderr.take().expect("stderr"));
    wait_for_line(&rx, "fault point clone_upgrade reached");
    pg.cluster.stop_server("fast").expect("pg_ctl stop -m fast");
    std::fs::write(&gate, b"").expect("open the gate");
    let code = exit_code_within(&mut child, Duration::from_secs(120));
    let said: Vec<String> = rx.try_iter().collect();
    let said = said.join("\n");
    assert_eq!(code, pgstep::exit::FAILED, "{said}");
    assert!(
        said.contains("new connections to \"clinic_v1\" are still blocked")
            && said.contains("Run `pgstep recover`"),
        "the failure says plainly what is still pending: {said}"
    );
    assert!(
        !said.contains("allowed connections to \"clinic_v1\" again"),
        "no claim of an undo that was not made: {said}"
    );

    pg.cluster.start_again().expect("pg_ctl start");
    // A retry before recover is refused: it would take the leftover clone for the application's.
    let (code, out, err) = output(
        pgstep(&pg, &pg.data_dir()),
        &[
            "upgrade",
            "--bundle",
            &dir.to_string_lossy(),
            "--headless",
            "--yes",
        ],
    );
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("did not finish and left changes pending") && err.contains("pgstep recover"),
        "{out}{err}"
    );
    let (code, status, _) = output(pgstep(&pg, &pg.data_dir()), &["status"]);
    assert_eq!(code, 0, "{status}");
    assert!(
        status.contains("interrupted: run")
            && status.contains("pending: new connections to \"clinic_v1\" are blocked")
            && status.contains("pending: the unfinished database \"clinic_v2\" may exist")
            && status.contains("pending: the logon banner of \"clinic_v1\""),
        "{status}"
    );
    let (code, recovered, err) = output(pgstep(&pg, &pg.data_dir()), &["recover"]);
    assert_eq!(code, 0, "{recovered}{err}");
    assert!(
        recovered.contains("the server is back to a clean state")
            && recovered.contains("dropped the unfinished database \"clinic_v2\""),
        "{recovered}"
    );
    assert_clean_after_recover(&pg, &before);
}

#[test]
fn killed_while_its_statement_runs_on_the_server_recover_ends_the_session_and_drops_the_clone() {
    let copy = common::copy_bundle(&sample_dir());
    let script = copy.path().join("v1-v2/02_functions.sql");
    let text = std::fs::read_to_string(&script).expect("read");
    std::fs::write(&script, format!("{text}\nSELECT pg_sleep(600);\n")).expect("write");
    let pg = cluster_with_clinic_v1();
    let before = before_state(&pg, "clinic_v1");
    let mut child = upgrade(&pg, &copy.path().to_string_lossy(), copy.path(), None, None);
    let _stderr = lines_of(child.stderr.take().expect("stderr"));
    // Wait until the server is busy with the statement, in the clone.
    let deadline = Instant::now() + Duration::from_secs(120);
    let busy = loop {
        let rows = pg
            .client("postgres")
            .query(
                "SELECT application_name, datname::text FROM pg_stat_activity \
                 WHERE state = 'active' AND query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()",
                &[],
            )
            .expect("pg_stat_activity");
        if let Some(r) = rows.first() {
            break (r.get::<_, String>(0), r.get::<_, String>(1));
        }
        assert!(Instant::now() < deadline, "the statement never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(busy.1, "clinic_v2");
    assert!(
        busy.0.starts_with("pgstep ") && busy.0.contains(" run "),
        "the run's sessions are named after it: {busy:?}"
    );
    kill_9(child);

    let (code, recovered, err) = output(pgstep(&pg, &pg.data_dir()), &["recover"]);
    assert_eq!(code, 0, "{recovered}{err}");
    assert!(
        recovered.contains("dropped the unfinished database \"clinic_v2\"")
            && recovered.contains("the server is back to a clean state"),
        "{recovered}"
    );
    let left: i64 = pg.query_one(
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgstep %'",
    );
    assert_eq!(left, 0, "no session of the killed run is left");
    assert_clean_after_recover(&pg, &before);
}

#[test]
fn recover_refuses_a_run_of_another_server_and_says_which_one_it_belongs_to() {
    let a = cluster_with_clinic_v1();
    let b = cluster_with_clinic_v1();
    b.exec("postgres", "CREATE DATABASE clinic_v2");
    b.exec(
        "clinic_v2",
        "CREATE TABLE precious AS SELECT g AS n FROM generate_series(1, 100) g",
    );
    let before_a = before_state(&a, "clinic_v1");
    let before_b = before_state(&b, "clinic_v1");
    kill_9(upgrade_paused_at(&a, "clone_upgrade"));

    // A's journal, B's connection options.
    let (code, out, err) = output(pgstep(&b, &a.data_dir()), &["recover"]);
    assert_eq!(code, pgstep::exit::REFUSED, "{out}{err}");
    let a_server = a.settings("postgres").host_display();
    assert!(
        out.contains("belongs to the server") && out.contains(&a_server),
        "names the run's server {a_server}: {out}"
    );
    assert_eq!(
        before_state(&b, "clinic_v1"),
        before_b,
        "B's source untouched"
    );
    assert_eq!(
        b.query_one::<i64>("clinic_v2", "SELECT count(*) FROM precious"),
        100,
        "B's clinic_v2 untouched"
    );
    let (_, status, _) = output(pgstep(&a, &a.data_dir()), &["status"]);
    assert!(
        status.contains("interrupted: run") && status.contains("system identifier"),
        "the run is still listed, with its server: {status}"
    );

    let (code, out, err) = output(pgstep(&a, &a.data_dir()), &["recover"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_clean_after_recover(&a, &before_a);
}

#[test]
fn killed_at_the_cut_over_recover_from_elsewhere_without_the_bundle_resets_the_banner() {
    let pg = cluster_with_clinic_v1();
    let before = before_state(&pg, "clinic_v1");
    // The bundle typed as a relative path, as an operator would.
    let work = tempfile::tempdir().expect("tempdir");
    common::copy_bundle_into(&sample_dir(), &work.path().join("clinic"));
    let mut child = upgrade(&pg, "clinic", work.path(), Some("cut_over:pause"), None);
    let rx = lines_of(child.stderr.take().expect("stderr"));
    wait_for_line(&rx, "fault point cut_over reached");
    assert_ne!(
        user_content(&pg, "clinic_v1"),
        before.0,
        "the banner is set during the run"
    );
    kill_9(child);
    drop(work); // the bundle is gone, too

    let elsewhere = tempfile::tempdir().expect("tempdir");
    let mut cmd = pgstep(&pg, &pg.data_dir());
    cmd.current_dir(elsewhere.path());
    let (code, out, err) = output(cmd, &["recover"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("the logon banner") || out.contains("banner"),
        "{out}"
    );
    assert_clean_after_recover(&pg, &before);
}

#[test]
fn a_damaged_journal_is_set_aside_and_the_other_runs_are_still_listed_and_recovered() {
    let pg = cluster_with_clinic_v1();
    let before = before_state(&pg, "clinic_v1");
    kill_9(upgrade_paused_at(&pg, "banner"));
    let journals = pg.data_dir().join("journal");
    let damaged = |name: &str| {
        let path = journals.join(format!("{name}.jsonl"));
        std::fs::write(&path, b"garbage at line 1\n{\"at\":\"x\"}\n").expect("write");
        path
    };

    let first = damaged("20990101T000000Z-other-1");
    let (code, status, _) = output(pgstep(&pg, &pg.data_dir()), &["status"]);
    assert_eq!(code, pgstep::exit::FAILED, "needs attention: {status}");
    assert!(
        status.contains("damaged journal") && status.contains("line 1"),
        "{status}"
    );
    assert!(
        status.contains("interrupted: run")
            && status.contains("pending: new connections to \"clinic_v1\" are blocked"),
        "the other run is listed: {status}"
    );
    assert!(!first.exists(), "set aside");
    let mut aside = first.into_os_string();
    aside.push(".damaged");
    assert!(Path::new(&aside).exists(), "kept for the operator");

    damaged("20990102T000000Z-other-2");
    let (code, out, err) = output(pgstep(&pg, &pg.data_dir()), &["recover"]);
    assert_eq!(code, pgstep::exit::FAILED, "needs attention: {out}{err}");
    assert!(
        out.contains("damaged journal") && out.contains("the server is back to a clean state"),
        "{out}"
    );
    assert_clean_after_recover(&pg, &before);
}

#[test]
fn status_calls_a_live_run_running_not_interrupted() {
    let pg = cluster_with_clinic_v1();
    let child = upgrade_paused_at(&pg, "banner");
    let (code, status, _) = output(pgstep(&pg, &pg.data_dir()), &["status"]);
    assert_eq!(code, 0, "{status}");
    assert!(
        status.contains("running: run") && status.contains(&format!("pid {}", child.id())),
        "{status}"
    );
    assert!(
        !status.contains("interrupted") && !status.contains("pgstep recover"),
        "{status}"
    );
    kill_9(child);
    let (_, status, _) = output(pgstep(&pg, &pg.data_dir()), &["status"]);
    assert!(status.contains("interrupted: run"), "{status}");
    let (code, out, err) = output(pgstep(&pg, &pg.data_dir()), &["recover"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn recover_drops_only_the_clone_the_run_created_never_a_database_that_took_its_name_since() {
    let pg = cluster_with_clinic_v1();
    let before = before_state(&pg, "clinic_v1");
    kill_9(upgrade_paused_at(&pg, "clone_upgrade"));
    // Someone drops the half-upgraded copy and makes a database of their own under its name.
    pg.exec("postgres", "DROP DATABASE clinic_v2 WITH (FORCE)");
    pg.exec("postgres", "CREATE DATABASE clinic_v2");
    pg.exec(
        "clinic_v2",
        "CREATE TABLE precious AS SELECT g AS n FROM generate_series(1, 10) g",
    );

    let (code, out, err) = output(pgstep(&pg, &pg.data_dir()), &["recover"]);
    assert_eq!(code, pgstep::exit::FAILED, "needs a look: {out}{err}");
    assert!(
        out.contains("\"clinic_v2\" is not the database this run created"),
        "{out}"
    );
    assert_eq!(
        pg.query_one::<i64>("clinic_v2", "SELECT count(*) FROM precious"),
        10,
        "the other clinic_v2 is untouched"
    );
    assert_eq!(
        before_state(&pg, "clinic_v1"),
        before,
        "the source as before"
    );
    let (_, status, _) = output(pgstep(&pg, &pg.data_dir()), &["status"]);
    assert!(status.contains("No interrupted run"), "{status}");
}

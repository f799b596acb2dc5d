//! The real binary killed with SIGKILL in the middle of an upgrade, at several steps: `pgstep
//! status` lists the interrupted run, `pgstep recover` returns the server to a clean state. And
//! while a run works, a second run on the same database is refused and told who holds it.
//! The binary waits at a fault point (test builds only) until it is killed: no sleeps.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Pg, access_of, sample_dir, user_content};

fn cluster_with_clinic_v1() -> Pg {
    common::clinic_v1(&common::sample_bundle(), 0)
}

fn pgstep(pg: &Pg, fault: Option<&str>) -> Command {
    let mut cmd = common::pgstep_cmd(pg, &pg.data_dir());
    if let Some(f) = fault {
        cmd.env("PGSTEP_FAULT", f);
    }
    cmd
}

/// Starts an upgrade that stops at the end of `step` and waits there; returns once it waits.
fn upgrade_paused_at(pg: &Pg, step: &str) -> Child {
    let mut child = pgstep(pg, Some(&format!("{step}:pause")))
        .args([
            "upgrade",
            "--bundle",
            &sample_dir().to_string_lossy(),
            "--headless",
            "--yes",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pgstep");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wanted = format!("fault point {step} reached");
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains(&wanted) => return child,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("pgstep never reached {step}: {e}");
            }
        }
    }
}

fn kill_9(mut child: Child) {
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let _ = child.wait();
}

fn output(mut cmd: Command, args: &[&str]) -> (i32, String, String) {
    let out = cmd.args(args).output().expect("run pgstep");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn killed_at_any_of_several_steps_then_recover_leaves_a_clean_server() {
    let pg = cluster_with_clinic_v1();
    let before = (user_content(&pg, "clinic_v1"), access_of(&pg, "clinic_v1"));
    for step in ["connected_users", "banner", "clone_upgrade", "cut_over"] {
        let child = upgrade_paused_at(&pg, step);
        // While the run waits, what it changed is visible: access blocked, and so on.
        assert_ne!(
            access_of(&pg, "clinic_v1"),
            before.1,
            "{step}: access is blocked during the run"
        );
        kill_9(child);

        let (code, status, _) = output(pgstep(&pg, None), &["status"]);
        assert_eq!(code, 0);
        assert!(
            status.contains("interrupted: run")
                && status.contains("pending: new connections to \"clinic_v1\" are blocked"),
            "{step}: {status}"
        );

        let (code, recovered, err) = output(pgstep(&pg, None), &["recover"]);
        assert_eq!(code, 0, "{step}: {recovered}{err}");
        assert!(
            recovered.contains("the server is back to a clean state"),
            "{step}: {recovered}"
        );
        assert_eq!(
            (user_content(&pg, "clinic_v1"), access_of(&pg, "clinic_v1")),
            before,
            "{step}: source, banner and access as before"
        );
        assert!(!pg.exists("clinic_v2"), "{step}: no clone left");

        let (_, status, _) = output(pgstep(&pg, None), &["status"]);
        assert!(status.contains("No interrupted run"), "{step}: {status}");
        let (code, again, _) = output(pgstep(&pg, None), &["recover"]);
        assert_eq!(
            (code, again.trim()),
            (0, "No interrupted run: nothing to recover."),
            "{step}: recovering twice is harmless"
        );
    }
}

#[test]
fn killed_while_the_backup_is_written_recover_removes_the_partial_backup_and_nothing_else() {
    let pg = cluster_with_clinic_v1();
    let backups = pg.data_dir().join("backups");
    // A complete backup from an earlier night, and a file that is not pgstep's: both stay.
    std::fs::create_dir_all(&backups).expect("backup dir");
    let earlier = backups.join("clinic_v1-v1-20261101T020000.dump");
    std::fs::write(&earlier, b"an earlier backup").expect("write");
    std::fs::write(backups.join("notes.txt"), b"the operator's notes").expect("write");
    // pg_dump has written everything; the backup is not yet verified and renamed.
    let child = upgrade_paused_at(&pg, "backup_written");
    let partial: Vec<String> = names_in(&backups)
        .into_iter()
        .filter(|n| n.ends_with(".dump.partial"))
        .collect();
    assert_eq!(partial.len(), 1, "{:?}", names_in(&backups));
    kill_9(child);

    let (_, status, _) = output(pgstep(&pg, None), &["status"]);
    assert!(
        status.contains(&format!(
            "pending: the backup {}",
            backups
                .join(partial[0].trim_end_matches(".partial"))
                .display()
        )) && status.contains("was being written"),
        "{status}"
    );
    let (code, recovered, err) = output(pgstep(&pg, None), &["recover"]);
    assert_eq!(code, 0, "{recovered}{err}");
    assert!(
        recovered.contains("removed the unfinished backup") && recovered.contains(&partial[0]),
        "{recovered}"
    );
    assert_eq!(
        names_in(&backups),
        vec![
            "clinic_v1-v1-20261101T020000.dump".to_owned(),
            "notes.txt".to_owned()
        ],
        "only the partial backup was removed"
    );
    assert!(!pg.exists("clinic_v2"), "no clone left");
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_second_run_on_the_same_database_is_refused_and_told_who_holds_it() {
    let pg = cluster_with_clinic_v1();
    let first = upgrade_paused_at(&pg, "connected_users");
    let (code, _, err) = output(
        pgstep(&pg, None),
        &[
            "upgrade",
            "--bundle",
            &sample_dir().to_string_lossy(),
            "--headless",
            "--yes",
        ],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("another run is working on database \"clinic_v1\""),
        "{err}"
    );
    assert!(
        err.contains(&format!("pid {}", first.id())),
        "names the holder: {err}"
    );
    kill_9(first);
    let (code, out, err) = output(pgstep(&pg, None), &["recover"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// Waits, with a deadline, for a line containing `needle` from a reader thread's channel.
fn wait_for_line(rx: &mpsc::Receiver<String>, needle: &str) {
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains(needle) => return,
            Ok(_) => {}
            Err(e) => panic!("no line with {needle:?}: {e}"),
        }
    }
}

/// Waits for the process to end, with a deadline (never a bare wait).
fn exit_code_within(child: &mut Child, limit: Duration) -> i32 {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code().unwrap_or(-1);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pgstep did not stop after the interrupts"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_twice_cancels_the_running_statement_and_takes_the_failure_path() {
    let copy = common::copy_bundle(&sample_dir());
    let script = copy.path().join("v1-v2/02_functions.sql");
    let text = std::fs::read_to_string(&script).expect("read");
    std::fs::write(
        &script,
        format!("{text}\n\\echo pgstep-test: sleeping\nSELECT pg_sleep(600);\n"),
    )
    .expect("write");
    let pg = cluster_with_clinic_v1();
    let before = (user_content(&pg, "clinic_v1"), access_of(&pg, "clinic_v1"));
    let mut child = pgstep(&pg, None)
        .args([
            "upgrade",
            "--bundle",
            &copy.path().to_string_lossy(),
            "--headless",
            "--yes",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let interrupt = |pid: u32| {
        // The process may already have stopped after the first interrupt.
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
    };
    wait_for_line(&rx, "pgstep-test: sleeping");
    interrupt(child.id());
    wait_for_line(&rx, "interrupted: stopping at the next safe point");
    interrupt(child.id());
    let code = exit_code_within(&mut child, Duration::from_secs(60));
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err);
    assert_eq!(code, pgstep::exit::CANCELLED, "{err}");
    assert!(err.contains("cancel"), "{err}");
    assert!(!pg.exists("clinic_v2"), "the clone was dropped");
    assert_eq!(
        (user_content(&pg, "clinic_v1"), access_of(&pg, "clinic_v1")),
        before
    );
    assert!(
        pgstep::recover::interrupted(&pg.data_dir())
            .expect("journals")
            .is_empty(),
        "nothing left to recover"
    );
}

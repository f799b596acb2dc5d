//! The wizard in a real pseudo-terminal, driven by keys as a sysadmin drives it: a full upgrade
//! of the sample, a failure with what was undone, a cancel. The tests wait on screen content
//! (with deadlines), never on fixed sleeps, and check that the terminal is restored at the end.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Pg, copy_bundle, sample_dir};
use portable_pty::{CommandBuilder, NativePtySystem, PtySize, PtySystem};

const WAIT: Duration = Duration::from_secs(90);

struct Wizard {
    screen: Arc<Mutex<vt100::Parser>>,
    /// None once the terminal was hung up.
    writer: Option<Box<dyn Write + Send>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    /// Tells the reader thread to close the terminal's master side (see [`Wizard::hang_up`]).
    hang_up: Arc<AtomicBool>,
    /// The reader thread has read everything the terminal will ever give (or let go of it).
    drained: Arc<AtomicBool>,
}

impl Wizard {
    fn start(pg: &Pg, bundle: &std::path::Path) -> Self {
        Self::start_with(pg, bundle, None)
    }

    fn start_with(pg: &Pg, bundle: &std::path::Path, fault: Option<&str>) -> Self {
        let pty = NativePtySystem::default()
            .openpty(PtySize {
                rows: 24,
                cols: 80,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_pgstep"));
        cmd.env_clear();
        // portable-pty starts the child in $HOME unless told otherwise.
        cmd.cwd(std::env::current_dir().expect("cwd"));
        cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        cmd.env("HOME", pg.data_dir());
        cmd.env("PGSTEP_DATA_DIR", pg.data_dir());
        cmd.env("TERM", "xterm-256color");
        cmd.env("RUST_BACKTRACE", "0");
        if let Some(f) = fault {
            cmd.env("PGSTEP_FAULT", f);
        }
        cmd.args([
            "-h",
            &pg.cluster.socket_dir().to_string_lossy(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ]);
        cmd.args(["upgrade", "--bundle", &bundle.to_string_lossy()]);
        let child = pty.slave.spawn_command(cmd).expect("spawn pgstep in a pty");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("reader");
        let writer = pty.master.take_writer().expect("writer");
        let (rows, cols) = (
            std::num::NonZeroU16::new(24).expect("rows"),
            std::num::NonZeroU16::new(80).expect("cols"),
        );
        let screen = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 1000)));
        let feed = Arc::clone(&screen);
        let hang_up = Arc::new(AtomicBool::new(false));
        let closing = Arc::clone(&hang_up);
        let drained = Arc::new(AtomicBool::new(false));
        let reader_done = Arc::clone(&drained);
        std::thread::spawn(move || {
            // The master stays open as long as this thread reads from it; leaving the loop
            // closes the terminal (both are dropped here).
            let _master = pty.master;
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || closing.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(mut p) = feed.lock() {
                    p.process(&buf[..n]);
                }
            }
            reader_done.store(true, Ordering::SeqCst);
        });
        Self {
            screen,
            writer: Some(writer),
            child,
            hang_up,
            drained,
        }
    }

    /// Closes the terminal under the wizard, as a dropped SSH session does: the reader thread
    /// lets go of the master side at its next read (the wizard redraws its clock every
    /// second), and the writer goes now.
    fn hang_up(&mut self) {
        self.hang_up.store(true, Ordering::SeqCst);
        self.writer = None;
    }

    fn pid(&self) -> String {
        self.child.process_id().map(|p| p.to_string()).expect("pid")
    }

    fn contents(&self) -> String {
        self.screen
            .lock()
            .map(|p| p.screen().contents())
            .unwrap_or_default()
    }

    fn alternate(&self) -> bool {
        self.screen
            .lock()
            .map(|p| p.screen().alternate_screen())
            .unwrap_or(true)
    }

    /// Waits until the screen shows `text`.
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.contents().contains(text) {
            assert!(
                Instant::now() < deadline,
                "the screen never showed {text:?}; it shows:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn keys(&mut self, bytes: &str) {
        let writer = self.writer.as_mut().expect("the terminal is open");
        writer
            .write_all(bytes.as_bytes())
            .expect("write to the pty");
        writer.flush().expect("flush");
    }

    /// Waits for the process to end and for the screen to show everything it wrote before it
    /// ended (with a deadline), and returns its exit code.
    fn exit_code(&mut self) -> u32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                while !self.drained.load(Ordering::SeqCst) {
                    assert!(
                        Instant::now() < deadline,
                        "the terminal never reached its end"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                return status.exit_code();
            }
            assert!(
                Instant::now() < deadline,
                "pgstep did not exit; the screen shows:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ticks the four manual items and confirms them.
    fn confirm_manual_items(&mut self) {
        self.wait_for("Tick each one");
        self.keys("    ");
        self.wait_for("4 of 4 ticked");
        self.keys("\r");
    }
}

/// A test that fails half-way must not leave a wizard running (it would hold its cluster and
/// a core long after the test run).
impl Drop for Wizard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn a_full_upgrade_of_the_sample_walked_with_the_keys() {
    let pg = common::clinic_v1(&common::sample_bundle(), 500);
    let mut w = Wizard::start(&pg, &sample_dir());
    w.wait_for("clinic_v1 → clinic_v2");
    w.confirm_manual_items();
    w.wait_for("Every check passed");
    w.keys("\r");
    w.wait_for("Type the new database's name");
    w.keys("clinic_v2\r");
    w.wait_for("Upgraded to version 2");
    assert!(w.contents().contains("users now use"), "{}", w.contents());
    w.keys("\r");
    assert_eq!(w.exit_code(), 0);
    // Let the reader thread take the last bytes; the restored screen shows the summary.
    w.wait_for("Upgraded \"clinic_v1\" from version 1 to 2");
    assert!(!w.alternate(), "the terminal was restored");
    assert!(pg.exists("clinic_v2"));
}

#[test]
fn a_failure_shows_what_failed_and_what_was_undone() {
    let copy = copy_bundle(&sample_dir());
    let script = copy.path().join("v1-v2/02_functions.sql");
    let text = std::fs::read_to_string(&script).expect("read");
    std::fs::write(
        &script,
        format!("{text}\nSELECT 1 / 0 AS deliberate_failure;\n"),
    )
    .expect("write");
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let mut w = Wizard::start(&pg, copy.path());
    w.confirm_manual_items();
    w.wait_for("What pgstep undid");
    let screen = w.contents();
    assert!(
        screen.contains("Failed") && screen.contains("22012"),
        "{screen}"
    );
    assert!(
        screen.contains("dropped the unfinished database"),
        "{screen}"
    );
    w.keys("\r");
    assert_eq!(w.exit_code(), 1);
    assert!(!w.alternate(), "the terminal was restored");
    assert!(!pg.exists("clinic_v2"));
}

#[test]
fn cancel_asks_then_undoes_and_a_second_ctrl_c_interrupts_the_statement() {
    let copy = copy_bundle(&sample_dir());
    let script = copy.path().join("v1-v2/02_functions.sql");
    let text = std::fs::read_to_string(&script).expect("read");
    std::fs::write(
        &script,
        format!("{text}\n\\echo pgstep-test: sleeping\nSELECT pg_sleep(600);\n"),
    )
    .expect("write");
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let mut w = Wizard::start(&pg, copy.path());
    w.confirm_manual_items();
    // The statement runs when the server says so (the log pane may have scrolled past the
    // script's \echo: the backup's lines arrive alongside).
    wait_until_sleeping(&pg);
    w.keys("\x03");
    w.wait_for("Cancel the run?");
    w.keys("y");
    w.wait_for("cancelling");
    w.keys("\x03");
    w.wait_for("Cancelled");
    assert!(
        w.contents().contains("dropped the unfinished database"),
        "{}",
        w.contents()
    );
    w.keys("\r");
    assert_eq!(w.exit_code(), 130);
    assert!(!w.alternate(), "the terminal was restored");
    assert!(!pg.exists("clinic_v2"));
}

/// Waits until a session runs the script's `pg_sleep(600)`.
fn wait_until_sleeping(pg: &common::Pg) {
    let deadline = Instant::now() + WAIT;
    while pg.query_one::<i64>(
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(600)%'",
    ) == 0
    {
        assert!(
            Instant::now() < deadline,
            "the script never reached pg_sleep"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_panic_in_the_executor_is_a_failed_step_not_a_hang() {
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let mut w = Wizard::start_with(&pg, &sample_dir(), Some("clone_upgrade:panic"));
    w.confirm_manual_items();
    w.wait_for("internal error");
    w.wait_for("pgstep recover");
    w.keys("\r");
    assert_eq!(w.exit_code(), 1);
    assert!(!w.alternate(), "the terminal was restored");
}

#[test]
fn sigterm_takes_the_failure_path_and_restores_the_terminal() {
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let mut w = Wizard::start(&pg, &sample_dir());
    w.wait_for("Tick each one");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &w.pid()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert_eq!(w.exit_code(), 130);
    assert!(!w.alternate(), "the terminal was restored");
    // Said as what happened (issue 11, finding 12), not "cancelled by the operator".
    w.wait_for("stopped by SIGTERM");
    assert!(
        pgstep::recover::interrupted(&pg.data_dir())
            .expect("journals")
            .is_empty(),
        "nothing left to recover"
    );
}

#[test]
fn a_panic_in_the_ui_thread_restores_the_terminal() {
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let mut w = Wizard::start_with(&pg, &sample_dir(), Some("ui:panic"));
    let code = w.exit_code();
    assert_ne!(code, 0);
    assert!(!w.alternate(), "the terminal was restored");
    w.wait_for("injected panic in the UI thread");
}

/// Appends a statement that sleeps for ten minutes to the bundle's second script.
fn bundle_with_a_long_statement() -> tempfile::TempDir {
    let copy = copy_bundle(&sample_dir());
    let script = copy.path().join("v1-v2/02_functions.sql");
    let text = std::fs::read_to_string(&script).expect("read");
    std::fs::write(&script, format!("{text}\nSELECT pg_sleep(600);\n")).expect("write");
    copy
}

#[test]
fn a_terminal_that_hangs_up_mid_statement_stops_the_run_at_once_and_undoes_it() {
    let copy = bundle_with_a_long_statement();
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let before = common::source_state(&pg, "clinic_v1");
    let mut w = Wizard::start(&pg, copy.path());
    w.confirm_manual_items();
    wait_until_sleeping(&pg);
    w.hang_up();
    // Well before the statement's ten minutes: nobody is left to press Ctrl-C a second time.
    assert_eq!(w.exit_code(), 130, "cancelled");
    assert!(!pg.exists("clinic_v2"), "the unfinished clone was dropped");
    assert_eq!(
        common::source_state(&pg, "clinic_v1"),
        before,
        "the source is as users left it: content, access, writable"
    );
    assert!(
        pgstep::recover::interrupted(&pg.data_dir())
            .expect("journals")
            .is_empty(),
        "nothing left to recover"
    );
}

#[test]
fn a_terminal_that_hangs_up_at_the_final_screen_ends_the_wizard() {
    let copy = copy_bundle(&sample_dir());
    let script = copy.path().join("v1-v2/02_functions.sql");
    let text = std::fs::read_to_string(&script).expect("read");
    std::fs::write(&script, format!("{text}\nSELECT 1 / 0;\n")).expect("write");
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let mut w = Wizard::start(&pg, copy.path());
    w.confirm_manual_items();
    w.wait_for("What pgstep undid");
    w.hang_up();
    assert_eq!(w.exit_code(), 1, "the run's own exit code: it failed");
}

#[test]
fn sighup_at_the_final_screen_ends_the_wizard() {
    let copy = copy_bundle(&sample_dir());
    let script = copy.path().join("v1-v2/02_functions.sql");
    let text = std::fs::read_to_string(&script).expect("read");
    std::fs::write(&script, format!("{text}\nSELECT 1 / 0;\n")).expect("write");
    let pg = common::clinic_v1(&common::sample_bundle(), 0);
    let mut w = Wizard::start(&pg, copy.path());
    w.confirm_manual_items();
    w.wait_for("What pgstep undid");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &w.pid()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert_eq!(w.exit_code(), 1);
    assert!(!w.alternate(), "the terminal was restored");
}

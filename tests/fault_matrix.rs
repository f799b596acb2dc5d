//! The fault matrix: the real binary (`pgstep upgrade --headless --yes` of the sample bundle)
//! stopped at every step boundary and in the middle of the long steps, by each fault:
//!
//! - `kill`: pgstep killed with SIGKILL;
//! - `stop`: the server stopped with `pg_ctl stop -m fast`, pgstep let go on, the server started
//!   again once pgstep has ended;
//! - `crash`: the same with `pg_ctl stop -m immediate` (a crash);
//! - `full`: the backup directory (a small tmpfs) filled up, pgstep let go on.
//!
//! After each case: while something is left to undo, `pgstep status` lists the run; after
//! `pgstep recover` (or pgstep's own failure path), the source's content, banner, settings,
//! schema fingerprint and access catalog values (datacl as stored, datconnlimit, datallowconn)
//! are as before, no clone is left, no partial backup, no session of the run, and a second
//! recover finds nothing. A run that completed despite the fault (the fault came after
//! everything it could hurt) must have rolled forward: the new database at version 2, nothing
//! pending.
//!
//! The matrix is printed (`cargo test --test fault_matrix -- --nocapture`) and every cell must
//! be green. Fault points: `PGSTEP_FAULT=<point>:pause` (waits to be killed) and
//! `<point>:wait` with `PGSTEP_FAULT_GATE` (waits until the test opens the gate).
//!
//! While working on one cell: `PGSTEP_MATRIX_ONLY=<row label or point>[,…]` and
//! `PGSTEP_MATRIX_FAULTS=kill,stop,crash,full` run part of the matrix. A cell that leaves the
//! cluster unclean (or rolled forward) gives the next cell a fresh cluster; clean cells share one.
//! The `full` column mounts a 32 MB tmpfs (root needed); where that fails, its cells are red
//! and say why.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Pg, access_of, sample_dir, user_content};

/// Step boundaries and points inside the long steps, in the order a run reaches them.
const POINTS: &[&str] = &[
    "connected_users",
    "disk_space",
    "fingerprint",
    "clone_created",
    "clone",
    "backup_written",
    "backup",
    "banner",
    "upgrade_statement",
    "clone_upgrade",
    "sanity_checks_fingerprint",
    "sanity_checks",
    "cut_over_banner_reset",
    "cut_over",
];

/// Points of the cut-over that only an application with one fixed database name reaches (the
/// sample bundle made `naming = "fixed"`): the source renamed aside, the new database renamed
/// into place.
const FIXED_POINTS: &[&str] = &["cut_over_renamed", "cut_over"];

/// Not a fault point: the fault hits while the upgrade of the clone runs a statement (a
/// `pg_sleep` the test adds to a copy of the sample), so that a server session is busy.
const RUNNING: &str = "statement_running";

/// Which bundle a row runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Sample,
    Fixed,
    Sleeping,
}

/// The matrix's rows: (label, fault point, bundle).
fn rows() -> Vec<(String, &'static str, Variant)> {
    let mut r: Vec<(String, &'static str, Variant)> = POINTS
        .iter()
        .map(|p| (p.to_string(), *p, Variant::Sample))
        .collect();
    r.push((
        "upgrade: statement running".to_owned(),
        RUNNING,
        Variant::Sleeping,
    ));
    r.extend(
        FIXED_POINTS
            .iter()
            .map(|p| (format!("{p} (fixed name)"), *p, Variant::Fixed)),
    );
    r
}

/// The sample bundle whose 1 -> 2 step sleeps 20 s in the middle, announced by an echo.
fn sleeping_bundle() -> tempfile::TempDir {
    let copy = common::copy_bundle(&sample_dir());
    let script = copy.path().join("v1-v2/02_functions.sql");
    let text = std::fs::read_to_string(&script).expect("read");
    std::fs::write(
        &script,
        format!("{text}\n\\echo pgstep-test: sleeping\nSELECT pg_sleep(20);\n"),
    )
    .expect("write");
    copy
}

/// The sample bundle with one fixed database name, `clinic_v1`, the old one put aside as
/// `clinic_v1_old{major}`.
fn fixed_naming_bundle() -> tempfile::TempDir {
    let copy = common::copy_bundle(&sample_dir());
    let manifest = copy.path().join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).expect("read bundle.toml");
    let fixed = text.replace(
        "naming = \"versioned\"\nname = \"clinic_v{major}\"",
        "naming = \"fixed\"\nname = \"clinic_v1\"\naside = \"clinic_v1_old{major}\"",
    );
    assert_ne!(
        fixed, text,
        "the sample's naming lines changed: update this test"
    );
    std::fs::write(&manifest, fixed).expect("write bundle.toml");
    copy
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    Kill,
    StopFast,
    Crash,
    DiskFull,
}

const FAULTS: [Fault; 4] = [Fault::Kill, Fault::StopFast, Fault::Crash, Fault::DiskFull];

impl Fault {
    fn column(self) -> &'static str {
        match self {
            Fault::Kill => "kill -9",
            Fault::StopFast => "stop -m fast",
            Fault::Crash => "crash",
            Fault::DiskFull => "backup disk full",
        }
    }
}

/// What must be true of the source after any failed run is undone.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SourceState {
    content: String,
    fingerprint: String,
    access: String,
    catalog: String,
    databases: Vec<String>,
}

fn source_state(pg: &Pg) -> SourceState {
    if !pg.exists("clinic_v1") {
        let missing = "clinic_v1 does not exist".to_owned();
        return SourceState {
            content: missing.clone(),
            fingerprint: missing.clone(),
            access: missing.clone(),
            catalog: missing,
            databases: pg.databases(),
        };
    }
    let data = pg.data_dir();
    let fp = common::run_pgstep(pg, &data, &["fingerprint", "--database", "clinic_v1"]);
    SourceState {
        content: user_content(pg, "clinic_v1"),
        fingerprint: format!("{} {}", fp.code, fp.stdout.trim()),
        access: access_of(pg, "clinic_v1"),
        catalog: pg.query_one(
            "postgres",
            "SELECT coalesce(datacl::text, 'NULL') || ' connlimit ' || datconnlimit || ' allowconn ' \
             || datallowconn FROM pg_database WHERE datname = 'clinic_v1'",
        ),
        databases: pg.databases(),
    }
}

fn differences(before: &SourceState, after: &SourceState) -> Vec<String> {
    let mut d = Vec::new();
    if before.databases != after.databases {
        d.push(format!(
            "databases {:?} (before: {:?}): a clone or a renamed database is left",
            after.databases, before.databases
        ));
    }
    if before.content != after.content {
        d.push(format!(
            "content/banner/settings differ: {}",
            first_diff(&before.content, &after.content)
        ));
    }
    if before.fingerprint != after.fingerprint {
        d.push(format!(
            "fingerprint differs: {}",
            first_diff(&before.fingerprint, &after.fingerprint)
        ));
    }
    if before.access != after.access {
        d.push(format!(
            "access {} (before: {}); catalog {} (before: {})",
            after.access, before.access, after.catalog, before.catalog
        ));
    } else if before.catalog != after.catalog {
        // Equivalent, but not the value that was there (issue 11, finding 6).
        d.push(format!(
            "access equivalent but the catalog value is not restored: {} (before: {})",
            after.catalog, before.catalog
        ));
    }
    d
}

fn first_diff(a: &str, b: &str) -> String {
    for (x, y) in a.lines().zip(b.lines()) {
        if x != y {
            return format!("{y:?} (before: {x:?})");
        }
    }
    format!(
        "{} lines now, {} before",
        b.lines().count(),
        a.lines().count()
    )
}

// --- the server ---

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn pg_ctl(pg: &Pg, args: &[&str]) -> Result<(), String> {
    let exe = pg.cluster.bin_dir().join("pg_ctl");
    let mut cmd = if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let data = pg.cluster.data_dir();
    let log = pg.cluster.log_file();
    let out = cmd
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .args(args)
        .current_dir(pg.cluster.dir())
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("pg_ctl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "pg_ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn stop_server(pg: &Pg, mode: &str) -> Result<(), String> {
    pg_ctl(pg, &["-m", mode, "-w", "-t", "60", "stop"])
}

fn start_server(pg: &Pg) -> Result<(), String> {
    pg_ctl(pg, &["-w", "-t", "60", "start"])
}

fn server_up(pg: &Pg) -> bool {
    pg.settings("postgres").connect(None).is_ok()
}

// --- the backup disk ---

/// A small tmpfs for the backup directory, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cannot mount a tmpfs for the backup directory (root needed): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Writes until the disk is full.
    fn fill(&self) -> Result<(), String> {
        let mut f = std::fs::File::create(self.filler()).map_err(|e| e.to_string())?;
        let block = vec![0u8; 64 * 1024];
        loop {
            match f.write(&block) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return Ok(()),
                Err(e) => return Err(format!("fill the backup disk: {e}")),
            }
        }
    }

    fn empty(&self) {
        let _ = std::fs::remove_file(self.filler());
        if let Ok(entries) = std::fs::read_dir(self.path()) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

// --- one run of the binary ---

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Waits for a line containing `needle`; Err with the last lines if pgstep ends first.
    fn wait_for(&mut self, needle: &str, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.seen.push(line);
                    if hit {
                        return Ok(());
                    }
                }
                Err(_) => {
                    let code = self.child.try_wait().ok().flatten().and_then(|s| s.code());
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!(
                        "the point was never reached (pgstep {}): {}",
                        code.map_or("still running".to_owned(), |c| format!("exited {c}")),
                        self.tail()
                    ));
                }
            }
        }
    }

    fn tail(&self) -> String {
        let n = self.seen.len();
        self.seen[n.saturating_sub(3)..].join(" | ")
    }

    /// The exit code, or None if it did not end within `limit`.
    fn exit_within(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Collect what it said last.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill_9(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn start_upgrade(pg: &Pg, bundle: &Path, fault: &str, gate: &Path, backup_dir: &Path) -> Running {
    let mut child = common::pgstep_cmd(pg, &pg.data_dir())
        .env("PGSTEP_FAULT", fault)
        .env("PGSTEP_FAULT_GATE", gate)
        .args([
            "upgrade",
            "--bundle",
            &bundle.to_string_lossy(),
            "--headless",
            "--yes",
            "--backup-dir",
            &backup_dir.to_string_lossy(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pgstep");
    let (tx, rx) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    Running {
        child,
        lines: rx,
        seen: Vec::new(),
    }
}

// --- one cell ---

/// A cell's result: Ok(note) or Err(reason); `dirty` when the cluster must be rebuilt.
struct Outcome {
    result: Result<String, String>,
    dirty: bool,
}

struct Setup<'a> {
    pg: &'a Pg,
    bundle: &'a Path,
    fixed: bool,
    before: &'a SourceState,
    backup_dir: PathBuf,
    disk: Option<&'a SmallDisk>,
    gate: PathBuf,
}

fn run_cell(s: &Setup<'_>, point: &str, fault: Fault) -> Outcome {
    let _ = std::fs::remove_file(&s.gate);
    let action = if fault == Fault::Kill {
        "pause"
    } else {
        "wait"
    };
    let (fault_env, needle) = if point == RUNNING {
        ("none:pause".to_owned(), "pgstep-test: sleeping".to_owned())
    } else {
        (
            format!("{point}:{action}"),
            format!("fault point {point} reached"),
        )
    };
    let mut run = start_upgrade(s.pg, s.bundle, &fault_env, &s.gate, &s.backup_dir);
    if let Err(e) = run.wait_for(&needle, Duration::from_secs(120)) {
        return Outcome {
            result: Err(e),
            dirty: true,
        };
    }
    let mut problems: Vec<String> = Vec::new();
    let code = match fault {
        Fault::Kill => {
            run.kill_9();
            None
        }
        Fault::StopFast | Fault::Crash => {
            let mode = if fault == Fault::StopFast {
                "fast"
            } else {
                "immediate"
            };
            if let Err(e) = stop_server(s.pg, mode) {
                problems.push(e);
            }
            open_gate(&s.gate);
            // pgstep meets the stopped server; it must end (not hang) and say what is left.
            let code = run.exit_within(Duration::from_secs(90));
            if let Err(e) = start_server(s.pg) {
                problems.push(format!("restart: {e}"));
            }
            match code {
                Some(c) => Some(c),
                None => {
                    problems.push(format!(
                        "pgstep did not end within 90 s of meeting the stopped server: {}",
                        run.tail()
                    ));
                    run.exit_within(Duration::from_secs(60)).or_else(|| {
                        run.kill_9();
                        None
                    })
                }
            }
        }
        Fault::DiskFull => {
            let disk = s.disk.expect("a disk for the disk-full column");
            if let Err(e) = disk.fill() {
                problems.push(e);
            }
            open_gate(&s.gate);
            let code = run.exit_within(Duration::from_secs(180));
            let _ = std::fs::remove_file(disk.filler());
            if code.is_none() {
                problems.push(format!("pgstep did not end: {}", run.tail()));
                run.kill_9();
            }
            code
        }
    };
    if !server_up(s.pg) {
        problems.push("the server is not up after the case".into());
        let _ = start_server(s.pg);
    }
    if !problems.is_empty() {
        return Outcome {
            result: Err(problems.join("; ")),
            dirty: true,
        };
    }
    let said = run.tail();
    match code {
        Some(0) => check_rolled_forward(s, &run.seen.join(" | ")),
        _ => check_undone(s, code, &said),
    }
}

fn open_gate(gate: &Path) {
    std::fs::write(gate, b"open").expect("open the gate");
}

fn pgstep_says(pg: &Pg, args: &[&str]) -> (i32, String) {
    let r = common::run_pgstep(pg, &pg.data_dir(), args);
    (
        r.code,
        format!("{}{}", r.stdout, r.stderr).trim().to_owned(),
    )
}

fn nothing_pending(pg: &Pg) -> Vec<String> {
    let mut p = Vec::new();
    let (code, status) = pgstep_says(pg, &["status"]);
    if code != 0 || !status.contains("No interrupted run") {
        p.push(format!(
            "status still lists a run (exit {code}): {}",
            first_line(&status)
        ));
    }
    let (code, again) = pgstep_says(pg, &["recover"]);
    if (code, again.as_str()) != (0, "No interrupted run: nothing to recover.") {
        p.push(format!(
            "a second recover: exit {code}: {}",
            first_line(&again)
        ));
    }
    p
}

fn first_line(s: &str) -> String {
    let mut l: String = s.lines().take(2).collect::<Vec<_>>().join(" / ");
    if l.len() > 200 {
        let mut cut = 200;
        while !l.is_char_boundary(cut) {
            cut -= 1;
        }
        l.truncate(cut);
        l.push('…');
    }
    l
}

/// Partial backups left in the backup directory (or the default one).
fn partial_backups(s: &Setup<'_>) -> Vec<String> {
    let mut found = Vec::new();
    for dir in [s.backup_dir.clone(), s.pg.data_dir().join("backups")] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.contains(".partial") {
                    found.push(name);
                }
            }
        }
    }
    found
}

/// Sessions of the run still on the server (pgstep's own or its pg_dump), waited for a little.
fn leftover_sessions(pg: &Pg) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found: String = pg.query_one(
            "postgres",
            "SELECT coalesce(string_agg(pid || ' ' || coalesce(application_name, '') || ' on ' \
             || coalesce(datname, '-') || ' ' || coalesce(state, ''), ', '), '') \
             FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' \
             AND (datname IN ('clinic_v1', 'clinic_v2', 'clinic_v1_old1') OR application_name LIKE 'pgstep%' OR application_name = 'pg_dump')",
        );
        if found.is_empty() {
            return None;
        }
        if Instant::now() >= deadline {
            return Some(found);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The run failed (or was killed): status lists it until recover has undone it, and then
/// everything is as before.
fn check_undone(s: &Setup<'_>, code: Option<i32>, said: &str) -> Outcome {
    let pg = s.pg;
    let mut problems = Vec::new();
    let (status_code, status) = pgstep_says(pg, &["status"]);
    let listed = !status.contains("No interrupted run");
    let mut note = match code {
        None => "killed".to_owned(),
        Some(c) => format!("pgstep exit {c}"),
    };
    if listed {
        let (rc, recovered) = pgstep_says(pg, &["recover"]);
        if rc != 0 {
            problems.push(format!("recover exit {rc}: {}", first_line(&recovered)));
        }
        note.push_str(", recovered");
    } else {
        // Nothing listed: pgstep's own failure path must have undone everything.
        if status_code != 0 {
            problems.push(format!(
                "status exit {status_code}: {}",
                first_line(&status)
            ));
        }
        note.push_str(", undone by pgstep");
    }
    let after = source_state(pg);
    let mut left = differences(s.before, &after);
    let partial = partial_backups(s);
    if !partial.is_empty() {
        left.push(format!("partial backup left: {}", partial.join(", ")));
    }
    if let Some(sessions) = leftover_sessions(pg) {
        left.push(format!("sessions left: {sessions}"));
    }
    if !left.is_empty() && !listed {
        problems.push(format!(
            "status says no interrupted run, yet: {} (pgstep said: {})",
            left.join("; "),
            first_line(said)
        ));
    } else {
        problems.extend(left);
    }
    problems.extend(nothing_pending(pg));
    if problems.is_empty() {
        Outcome {
            result: Ok(note),
            dirty: false,
        }
    } else {
        Outcome {
            result: Err(problems.join("; ")),
            dirty: true,
        }
    }
}

/// The run completed although the fault hit: the upgrade is done and nothing is pending.
fn check_rolled_forward(s: &Setup<'_>, said: &str) -> Outcome {
    let pg = s.pg;
    let mut problems = Vec::new();
    // A cut-over whose tidying the fault cut short (the old database not yet retired) says
    // so, and its run stays listed until recover has finished it.
    let (_, status) = pgstep_says(pg, &["status"]);
    let mut note = "completed: rolled forward".to_owned();
    if !status.contains("No interrupted run") {
        if !said.contains("still open to users") {
            problems.push(format!(
                "pgstep exit 0 left a run pending without saying the old database is still open: {}",
                first_line(said)
            ));
        }
        let (rc, recovered) = pgstep_says(pg, &["recover"]);
        if rc != 0 {
            problems.push(format!("recover exit {rc}: {}", first_line(&recovered)));
        }
        note.push_str(", old database retired by recover");
    }
    let (new, old) = if s.fixed {
        ("clinic_v1", "clinic_v1_old1")
    } else {
        ("clinic_v2", "clinic_v1")
    };
    if !pg.exists(new) || !pg.exists(old) {
        problems.push(format!(
            "pgstep exit 0 but the databases are {:?} ({})",
            pg.databases(),
            first_line(said)
        ));
    } else {
        let v: String = pg.query_one(
            new,
            "SELECT major || '.' || minor FROM clinic.schema_version",
        );
        if !v.starts_with("2.") {
            problems.push(format!("{new} is at version {v}"));
        }
        let banner: Option<String> =
            pg.query_one(new, "SELECT message FROM clinic.logon_banner WHERE id = 1");
        if banner.is_some() {
            problems.push(format!("{new} still shows the banner {banner:?}"));
        }
        let opened: String = pg.query_one(
            "postgres",
            &format!(
                "SELECT coalesce(datacl::text, 'NULL') || ' connlimit ' || datconnlimit || ' allowconn ' \
                 || datallowconn FROM pg_database WHERE datname = '{new}'"
            ),
        );
        if opened != s.before.catalog {
            problems.push(format!(
                "{new} opened with {opened}, not the source's access ({})",
                s.before.catalog
            ));
        }
    }
    // The old database is kept read-only and closed to everyone but its owner.
    let read_only: bool = pg.query_one(
        "postgres",
        &format!("SELECT EXISTS (SELECT FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase \
         WHERE d.datname = '{old}' AND s.setrole = 0 \
         AND 'default_transaction_read_only=on' = ANY (s.setconfig))"),
    );
    if !read_only {
        problems.push(format!("the old {old} was not made read-only"));
    }
    let open_to: String = pg.query_one(
        "postgres",
        &format!("SELECT coalesce(string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, ','), '') \
         FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a \
         WHERE d.datname = '{old}' AND a.privilege_type = 'CONNECT' AND a.grantee <> d.datdba"),
    );
    if !open_to.is_empty() {
        problems.push(format!("the old {old} is still open to {open_to}"));
    }
    let partial = partial_backups(s);
    if !partial.is_empty() {
        problems.push(format!("partial backup left: {}", partial.join(", ")));
    }
    if let Some(sessions) = leftover_sessions(pg) {
        problems.push(format!("sessions left: {sessions}"));
    }
    problems.extend(nothing_pending(pg));
    Outcome {
        result: if problems.is_empty() {
            Ok(note)
        } else {
            Err(problems.join("; "))
        },
        dirty: true, // the cluster now holds the upgraded database
    }
}

// --- the matrix ---

struct Cluster {
    pg: Pg,
    before: SourceState,
}

fn fresh_cluster(bundle: &Path) -> Cluster {
    let bundle = pgstep::bundle::load(bundle).unwrap_or_else(|e| panic!("{e}"));
    let pg = common::clinic_v1(&bundle, 0);
    // The throw-away cluster commits asynchronously; a crash (`-m immediate`) would then lose
    // pgstep's last changes (the block, the banner) and hide what is left to undo. Commits wait
    // for their WAL write here, as on a production server (fsync stays off: the OS does not
    // crash).
    pg.exec("postgres", "ALTER SYSTEM SET synchronous_commit = on");
    pg.exec("postgres", "SELECT pg_reload_conf()");
    let before = source_state(&pg);
    Cluster { pg, before }
}

fn print_matrix(results: &[(String, Fault, Result<String, String>)]) -> String {
    let mut out = String::new();
    let rows = rows();
    let w = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(10);
    out.push_str(&format!("{:w$} |", "point \\ fault"));
    for f in FAULTS {
        out.push_str(&format!(" {:^16} |", f.column()));
    }
    out.push('\n');
    out.push_str(&format!("{}|", "-".repeat(w + 1)));
    for _ in FAULTS {
        out.push_str(&format!("{}|", "-".repeat(18)));
    }
    out.push('\n');
    for (p, _, _) in &rows {
        out.push_str(&format!("{p:w$} |"));
        for f in FAULTS {
            let cell = results
                .iter()
                .find(|(q, g, _)| q == p && *g == f)
                .map(|(_, _, r)| match r {
                    Ok(_) => "✓",
                    Err(_) => "✗",
                })
                .unwrap_or("-");
            out.push_str(&format!(" {cell:^16} |"));
        }
        out.push('\n');
    }
    let mut failed = false;
    for (p, f, r) in results {
        if let Err(reason) = r {
            if !failed {
                out.push_str("\nred cells:\n");
                failed = true;
            }
            out.push_str(&format!("✗ {p} × {}: {reason}\n", f.column()));
        }
    }
    out
}

#[test]
fn fault_matrix_every_point_every_fault_leaves_a_recoverable_clean_server() {
    // PGSTEP_MATRIX_ONLY=point[,point…] and PGSTEP_MATRIX_FAULTS=kill,stop,crash,full narrow
    // the matrix while working on one cell.
    let only: Option<Vec<String>> = std::env::var("PGSTEP_MATRIX_ONLY")
        .ok()
        .map(|s| s.split(',').map(str::to_owned).collect());
    let faults: Vec<Fault> = match std::env::var("PGSTEP_MATRIX_FAULTS") {
        Ok(s) => FAULTS
            .into_iter()
            .filter(|f| {
                s.split(',').any(|k| {
                    matches!(
                        (k, f),
                        ("kill", Fault::Kill)
                            | ("stop", Fault::StopFast)
                            | ("crash", Fault::Crash)
                            | ("full", Fault::DiskFull)
                    )
                })
            })
            .collect(),
        Err(_) => FAULTS.to_vec(),
    };
    let started = Instant::now();
    let gate_dir = tempfile::tempdir().expect("gate dir");
    let gate = gate_dir.path().join("gate");
    let fixed_bundle = fixed_naming_bundle();
    let sleeping = sleeping_bundle();
    let mut results: Vec<(String, Fault, Result<String, String>)> = Vec::new();
    for fault in faults {
        let disk = if fault == Fault::DiskFull {
            match SmallDisk::mount() {
                Ok(d) => Some(d),
                Err(e) => {
                    eprintln!("\n!!! FAULT MATRIX: the backup-disk-full column cannot run: {e}\n");
                    for (label, _, _) in rows() {
                        results.push((label, fault, Err(e.clone())));
                    }
                    continue;
                }
            }
        } else {
            None
        };
        let mut cluster: Option<(Variant, Cluster)> = None;
        for (label, point, variant) in rows() {
            if only
                .as_ref()
                .is_some_and(|o| !o.iter().any(|x| *x == label || x == point))
            {
                continue;
            }
            let bundle = match variant {
                Variant::Sample => sample_dir(),
                Variant::Fixed => fixed_bundle.path().to_path_buf(),
                Variant::Sleeping => sleeping.path().to_path_buf(),
            };
            if cluster.as_ref().is_some_and(|(v, _)| *v != variant) {
                cluster = None;
            }
            let (_, c) = cluster.get_or_insert_with(|| (variant, fresh_cluster(&bundle)));
            if let Some(d) = &disk {
                d.empty();
            }
            let backup_dir = match &disk {
                Some(d) => d.path().to_path_buf(),
                None => c.pg.data_dir().join("backups"),
            };
            let setup = Setup {
                pg: &c.pg,
                bundle: &bundle,
                fixed: variant == Variant::Fixed,
                before: &c.before,
                backup_dir,
                disk: disk.as_ref(),
                gate: gate.clone(),
            };
            let t = Instant::now();
            // A panic in a check is a red cell, not the end of the matrix.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_cell(&setup, point, fault)
            }))
            .unwrap_or_else(|panic| Outcome {
                result: Err(format!(
                    "the check panicked: {}",
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                )),
                dirty: true,
            });
            eprintln!(
                "fault matrix: {label} × {} in {:.1} s: {}",
                fault.column(),
                t.elapsed().as_secs_f64(),
                match &outcome.result {
                    Ok(n) => format!("✓ {n}"),
                    Err(e) => format!("✗ {e}"),
                }
            );
            results.push((label, fault, outcome.result));
            if outcome.dirty {
                cluster = None; // the next cell starts on a fresh cluster
            }
        }
    }
    let table = print_matrix(&results);
    println!(
        "\nFault matrix ({} cells, {:.0} s):\n{table}",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    let red = results.iter().filter(|r| r.2.is_err()).count();
    assert_eq!(red, 0, "{red} red cell(s) in the fault matrix:\n{table}");
}

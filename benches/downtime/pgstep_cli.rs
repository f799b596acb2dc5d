//! Contender "pgstep": the real binary, `pgstep upgrade --headless --yes --json`, on its own
//! copy of the source, with its data directory and backup in the scratch directory.
//!
//! Its step timings come from the `result` event (the last JSON line); every line is also
//! time-stamped as it arrives, which gives the downtime's wall-clock span and the parts of the
//! "clone and upgrade" step. pgstep's own CPU time (user + sys of the pgstep process itself, all
//! threads, without pg_dump and the other programs it runs) is read from `/proc/<pid>/stat`
//! once the process has exited but is not yet reaped (a zombie keeps its final counters).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::manual::Part;
use crate::workload::Workload;

/// The downtime: from the connected-user check (new connections blocked) to the cut-over.
const DOWNTIME_FIRST: &str = "connected_users";
const DOWNTIME_LAST: &str = "cut_over";

pub struct PgstepRun {
    /// Every step of the checklist with its elapsed time, in order.
    pub steps: Vec<Part>,
    /// The brief's definition: the sum of the steps from connected_users to cut_over.
    pub downtime: Duration,
    /// Wall clock from the start of connected_users to the end of cut_over (differs from the
    /// sum once steps overlap).
    pub span: Duration,
    /// The whole process, from spawn to exit (plan and confirmations included).
    pub wall: Duration,
    pub cpu: Cpu,
    pub backup_bytes: u64,
    /// Time-stamped milestones inside the run (seconds since spawn, and what happened).
    pub milestones: Vec<(Duration, String)>,
}

/// CPU time of one process (its threads, not its children).
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    pub user: Duration,
    pub sys: Duration,
}

impl Cpu {
    pub fn total(self) -> Duration {
        self.user + self.sys
    }
}

/// Upgrades `source` (at version 1) with the pgstep binary; the new database is the bundle's
/// name for version 2 (clinic_v2).
pub fn run(w: &Workload, source: &str) -> PgstepRun {
    let backup_dir = w.scratch().join("pgstep-backups");
    let stderr_file = w.scratch().join("pgstep-stderr.txt");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgstep"));
    cmd.args(["upgrade", "--bundle"])
        .arg(&w.bundle.root)
        .args(["--database", source, "--headless", "--yes", "--json"])
        .arg("--backup-dir")
        .arg(&backup_dir)
        .env("PGSTEP_DATA_DIR", w.scratch().join("pgstep-data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // A file, not a pipe: nobody reads it while pgstep runs.
        .stderr(std::fs::File::create(&stderr_file).expect("create pgstep's stderr file"));
    w.client_env(&mut cmd);

    let started = Instant::now();
    let mut child = cmd.spawn().expect("start pgstep");
    let lines = read_lines(&mut child, started);
    let cpu = cpu_at_exit(child.id());
    let wall = started.elapsed();
    let status = child.wait().expect("wait for pgstep");
    let lines = lines.join().expect("the output reader");
    let stderr = std::fs::read_to_string(&stderr_file).unwrap_or_default();
    assert!(
        status.success(),
        "pgstep upgrade failed ({status}):\n{}\n{stderr}",
        tail(&lines)
    );
    let backup_bytes = dir_size(&backup_dir);
    std::fs::remove_dir_all(&backup_dir).expect("remove pgstep's backup");
    summarise(&lines, wall, cpu, backup_bytes)
}

/// Reads pgstep's stdout on a thread (so that the pipe never fills), stamping each line.
fn read_lines(child: &mut Child, started: Instant) -> thread::JoinHandle<Vec<(Duration, Value)>> {
    let stdout = child.stdout.take().expect("pgstep's stdout");
    thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| Some((started.elapsed(), serde_json::from_str(&l).ok()?)))
            .collect()
    })
}

/// Waits until the process has exited (a zombie: not yet reaped, counters final) and returns
/// its CPU time. Polls every 5 ms; the wall time measured after it is late by at most that.
fn cpu_at_exit(pid: u32) -> Cpu {
    let ticks = clock_ticks_per_second();
    let path = format!("/proc/{pid}/stat");
    let mut last = Cpu::default();
    loop {
        let Ok(stat) = std::fs::read_to_string(&path) else {
            return last;
        };
        // "pid (comm) state ppid …": comm may hold spaces, so fields are counted after ')'.
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, r)| r)
            .split_whitespace()
            .collect();
        let field = |n: usize| -> u64 { rest.get(n - 3).and_then(|v| v.parse().ok()).unwrap_or(0) };
        last = Cpu {
            user: Duration::from_secs_f64(field(14) as f64 / ticks),
            sys: Duration::from_secs_f64(field(15) as f64 / ticks),
        };
        if rest.first() == Some(&"Z") {
            return last;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 on every Linux in practice).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Step timings from the result event, the downtime and the milestones.
fn summarise(
    lines: &[(Duration, Value)],
    wall: Duration,
    cpu: Cpu,
    backup_bytes: u64,
) -> PgstepRun {
    let result = &lines
        .iter()
        .rev()
        .find(|(_, v)| v["event"] == "result")
        .expect("pgstep's result event")
        .1;
    assert!(result["ok"] == true, "pgstep did not succeed: {result}");
    let steps: Vec<Part> = result["steps"]
        .as_array()
        .expect("the result's steps")
        .iter()
        .map(|s| Part {
            name: s["id"].as_str().unwrap_or("?").to_owned(),
            took: Duration::from_secs_f64(s["elapsed"].as_f64().unwrap_or(0.0)),
        })
        .collect();
    let downtime = steps
        .iter()
        .skip_while(|s| s.name != DOWNTIME_FIRST)
        .take_while(|s| s.name != DOWNTIME_LAST)
        .map(|s| s.took)
        .sum::<Duration>()
        + steps
            .iter()
            .find(|s| s.name == DOWNTIME_LAST)
            .map_or(Duration::ZERO, |s| s.took);
    let at = |event: &str, step: &str| {
        lines
            .iter()
            .find(|(_, v)| v["event"] == event && v["step"] == step)
            .map(|(t, _)| *t)
            .expect("a step's event in pgstep's output")
    };
    let span = at("step_done", DOWNTIME_LAST) - at("step_started", DOWNTIME_FIRST);
    PgstepRun {
        steps,
        downtime,
        span,
        wall,
        cpu,
        backup_bytes,
        milestones: milestones(lines),
    }
}

/// Step starts and the engine's log lines about cloning and running scripts, with their time.
fn milestones(lines: &[(Duration, Value)]) -> Vec<(Duration, String)> {
    lines
        .iter()
        .filter_map(|(t, v)| {
            let text = match v["event"].as_str()? {
                "step_started" => format!("step {}", v["step"].as_str()?),
                "step_done" => format!("step {} done", v["step"].as_str()?),
                _ => {
                    let text = v["text"].as_str()?;
                    let wanted = [
                        "cloned",
                        "running",
                        "version marker",
                        "pg_dump of",
                        "pg_dump: dumping contents",
                        "backup verified",
                        "the backup took",
                        "waiting for the backup",
                        "cloning",
                        "NOTICE:",
                        "every check passed",
                        "backup: ",
                    ];
                    if !wanted.iter().any(|w| text.starts_with(w)) {
                        return None;
                    }
                    text.lines().next()?.to_owned()
                }
            };
            Some((*t, text))
        })
        .collect()
}

/// The last lines of pgstep's output, for a failure message.
fn tail(lines: &[(Duration, Value)]) -> String {
    let from = lines.len().saturating_sub(20);
    lines[from..]
        .iter()
        .map(|(_, v)| v.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Bytes in the files under `dir`.
fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

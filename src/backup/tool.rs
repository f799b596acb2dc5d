//! Following a PostgreSQL client tool (pg_dump, pg_restore) as it runs: its progress, its
//! errors, cancellation; and finding a tool new enough for the server.

use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::cancel::Cancel;
use crate::events::{Event, Level, Observer, Unit, log};

/// How often the size of the output is measured and cancellation looked at while a tool runs.
pub const POLL: Duration = Duration::from_millis(200);

/// How long a tool asked to stop may take before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How many of a failed tool's last stderr lines its error message quotes (when it printed no
/// error line).
const TAIL_LINES: usize = 6;

/// How many lines, from the first error line on, a failed tool's error message quotes.
const ERROR_LINES: usize = 8;

/// How to follow one run of pg_dump or pg_restore.
pub(crate) struct ToolRun<'a> {
    /// The program's name, prefixed to its log lines.
    pub tool: &'static str,
    /// A `--verbose` line containing this marks one more table done.
    pub counted: &'static str,
    /// Tables expected, for the progress total.
    pub tables: Option<u64>,
    /// Bytes written (or read) so far, measured every [`POLL`].
    pub bytes: &'a dyn Fn() -> Option<u64>,
    /// When set, the tool's stdout is read and thrown away, counting its bytes here.
    pub stdout_counter: Option<Arc<AtomicU64>>,
    /// Run the tool at a lower CPU priority: it works alongside the upgrade, which is what the
    /// downtime waits for.
    pub yield_cpu: bool,
}

/// How a tool run ended.
#[derive(Debug)]
pub(crate) enum ToolEnd {
    Done {
        tables: u64,
    },
    /// `tail`: the lines from the first error on, or else the last lines.
    Failed {
        status: ExitStatus,
        tail: Vec<String>,
    },
    Cancelled,
}

/// Runs the tool with stderr read line by line on a thread: each line is logged, table lines
/// are counted as progress, the output size is reported every [`POLL`], and a cancellation
/// request (soft or hard: a dump has no safe point inside) stops the tool. A cancellation
/// requested at any time before the tool was seen to succeed counts, so that the outcome does
/// not depend on timing.
pub(crate) fn run_tool(
    mut cmd: Command,
    run: &ToolRun,
    cancel: &Cancel,
    obs: &mut dyn Observer,
) -> io::Result<ToolEnd> {
    // Messages are matched in English, whatever the operator's locale.
    cmd.env("LC_ALL", "C")
        .env_remove("LANGUAGE")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    if run.stdout_counter.is_none() {
        cmd.stdout(Stdio::null());
    }
    stop_with_parent(&mut cmd, run.yield_cpu);
    let mut child = cmd.spawn()?;
    let stdout_thread = match (&run.stdout_counter, child.stdout.take()) {
        (Some(counter), Some(out)) => Some(count_stdout(out, Arc::clone(counter))),
        _ => None,
    };
    let Some(stderr) = child.stderr.take() else {
        stop_tool(&mut child);
        return Err(io::Error::other("the tool's stderr could not be read"));
    };
    let lines = read_lines(stderr);
    let mut follow = Follow::new(run);
    follow.report_tables(obs);
    let outcome = follow.until_exit(&mut child, &lines, cancel, obs);
    if let Some(t) = stdout_thread {
        // Ends when the tool (and its workers) closed stdout, which they have once stderr is closed.
        let _ = t.join();
    }
    follow.report_bytes(obs, true);
    let status = match outcome {
        Some(status) => status,
        None => return Ok(ToolEnd::Cancelled),
    };
    if cancel.requested() {
        return Ok(ToolEnd::Cancelled);
    }
    if status.success() {
        Ok(ToolEnd::Done {
            tables: follow.tables_done,
        })
    } else {
        Ok(ToolEnd::Failed {
            status,
            tail: if follow.errors.is_empty() {
                follow.tail
            } else {
                follow.errors
            },
        })
    }
}

/// The state of a tool run being followed.
struct Follow<'r, 'a> {
    run: &'r ToolRun<'a>,
    tables_done: u64,
    last_bytes: Option<u64>,
    tail: Vec<String>,
    errors: Vec<String>,
}

impl<'r, 'a> Follow<'r, 'a> {
    fn new(run: &'r ToolRun<'a>) -> Self {
        Self {
            run,
            tables_done: 0,
            last_bytes: None,
            tail: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Follows the tool until it exits (its status) or is stopped on cancellation (`None`).
    fn until_exit(
        &mut self,
        child: &mut Child,
        lines: &mpsc::Receiver<String>,
        cancel: &Cancel,
        obs: &mut dyn Observer,
    ) -> Option<ExitStatus> {
        let mut last_poll = Instant::now();
        loop {
            if cancel.requested() {
                stop_tool(child);
                // Drain until every holder of stderr (parallel workers too) has gone.
                while lines.recv_timeout(Duration::from_secs(10)).is_ok() {}
                return None;
            }
            match lines.recv_timeout(POLL) {
                Ok(line) => self.line(line, obs),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_poll.elapsed() >= POLL {
                last_poll = Instant::now();
                self.report_bytes(obs, false);
            }
        }
        match child.wait() {
            Ok(status) => Some(status),
            Err(_) => {
                stop_tool(child);
                None
            }
        }
    }

    fn line(&mut self, line: String, obs: &mut dyn Observer) {
        if line.trim().is_empty() {
            return;
        }
        let counted = line.contains(self.run.counted);
        let text = if line.starts_with(&format!("{}:", self.run.tool)) {
            line
        } else {
            format!("{}: {line}", self.run.tool)
        };
        if self.tail.len() == TAIL_LINES {
            self.tail.remove(0);
        }
        self.tail.push(text.clone());
        // The first error and what follows it ("Command was: …") say more than the last lines.
        if (!self.errors.is_empty() || text.contains("error:")) && self.errors.len() < ERROR_LINES {
            self.errors.push(text.clone());
        }
        log(obs, Level::Info, text);
        if counted {
            self.tables_done += 1;
            self.report_tables(obs);
        }
    }

    fn report_tables(&self, obs: &mut dyn Observer) {
        obs.event(Event::Progress {
            unit: Unit::Tables,
            done: self.tables_done,
            total: self.run.tables.map(|t| t.max(self.tables_done)),
        });
    }

    fn report_bytes(&mut self, obs: &mut dyn Observer, always: bool) {
        let Some(bytes) = (self.run.bytes)() else {
            return;
        };
        if always || self.last_bytes != Some(bytes) {
            self.last_bytes = Some(bytes);
            obs.event(Event::Progress {
                unit: Unit::Bytes,
                done: bytes,
                total: None,
            });
        }
    }
}

/// Stops the tool: SIGTERM first, on which pg_dump and pg_restore stop their parallel workers
/// and cancel their queries on the server (killed outright, the leader leaves its workers
/// copying to the end of their current table); SIGKILL if it has not ended within
/// [`STOP_GRACE`]. std sends only SIGKILL, so SIGTERM goes through kill(1); the child is not
/// reaped before this, so its pid cannot have been reused.
fn stop_tool(child: &mut Child) {
    let asked = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if asked {
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Has the kernel stop the tool (SIGTERM) when the thread that started it ends — pgstep killed
/// with SIGKILL included — so that no pg_dump goes on writing, or holds the source open, after
/// the run that wanted it is gone (`pgstep recover` then finds nothing running).
/// With `yield_cpu`, the tool also runs at nice 10 (its parallel workers inherit it).
#[cfg(target_os = "linux")]
fn stop_with_parent(cmd: &mut Command, yield_cpu: bool) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and calls only prctl(2) and
    // setpriority(2), which are async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(io::Error::last_os_error());
            }
            // A lower priority is a courtesy: failing to get it is no reason not to run.
            if yield_cpu {
                let _ = libc::setpriority(libc::PRIO_PROCESS, 0, 10);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn stop_with_parent(_cmd: &mut Command, _yield_cpu: bool) {}

/// The lines of a stream, sent one by one from a thread; the channel closes at end of stream.
fn read_lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Reads a stream to its end, counting its bytes.
fn count_stdout(mut stream: impl Read + Send + 'static, counter: Arc<AtomicU64>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                return;
            }
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    })
}

pub(crate) fn indent_lines(lines: &[String]) -> String {
    if lines.is_empty() {
        return "  (it printed nothing)".to_owned();
    }
    lines
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What went wrong with a PostgreSQL client program itself.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(
        "no {name} for PostgreSQL {server_major} or later was found ({}); install the client programs of version {server_major} \
         (Debian/Ubuntu: apt-get install postgresql-client-{server_major})",
        found_only(found)
    )]
    NotFound {
        name: String,
        server_major: u32,
        /// The version lines of the programs found, all too old.
        found: Vec<String>,
    },
    #[error("cannot run {}: {source}", tool.display())]
    CannotRun { tool: PathBuf, source: io::Error },
    #[error("the archive {} does not verify (pg_restore --list): {stderr}", path.display())]
    ArchiveUnreadable { path: PathBuf, stderr: String },
}

fn found_only(found: &[String]) -> String {
    if found.is_empty() {
        "none at all".to_owned()
    } else {
        format!("found only: {}", found.join(", "))
    }
}

/// A PostgreSQL client program at least as new as the server (pg_dump refuses newer servers),
/// and its version line.
pub fn find_client_tool(
    name: &str,
    server_version_num: u32,
) -> Result<(PathBuf, String), ToolError> {
    let server_major = server_version_num / 10_000;
    let mut candidates = vec![PathBuf::from(format!(
        "/usr/lib/postgresql/{server_major}/bin/{name}"
    ))];
    if let Ok(dir) = crate::cluster::find_bin_dir() {
        candidates.push(dir.join(name));
    }
    candidates.push(PathBuf::from(name));
    let mut found = Vec::new();
    for c in candidates {
        let Ok(out) = Command::new(&c)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
        else {
            continue;
        };
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let major = line
            .split_whitespace()
            .last()
            .and_then(|v| v.split('.').next()?.parse::<u32>().ok())
            .unwrap_or(0);
        if major >= server_major {
            return Ok((c, line));
        }
        found.push(line);
    }
    Err(ToolError::NotFound {
        name: name.to_owned(),
        server_major,
        found,
    })
}

//! Interrupted runs — killed, crashed, cut off — found by their journals, and the undoing of
//! what they left behind (`pgstep status`, `pgstep recover`).
//!
//! The journal is the only truth of what is pending: a run is listed until its journal ends
//! with `Finished`, which is written only when every change it made has been undone and the
//! undo read back. Recovery is idempotent: it can be retried as often as needed, and a server
//! that cannot be reached leaves the run pending.

use std::path::Path;
use std::time::{Duration, Instant};

use postgres::Client;

use crate::bundle;
use crate::conn::ConnSettings;
use crate::events::Observer;
use crate::executor::undo::{still_pending, undo_run};
use crate::journal::{self, Change, Entry, Journal, RunOutcome, RunRecord, SetAside};
use crate::lock::LockError;

/// How long a killed run's server session may take to end (and free its lock).
const LOCK_GRACE: Duration = Duration::from_secs(5);
/// How long the sessions of a killed run may take to end once told to.
const SESSION_GRACE: Duration = Duration::from_secs(10);
/// PostgreSQL keeps the first NAMEDATALEN - 1 bytes of an `application_name`.
const APPLICATION_NAME_MAX: usize = 63;

/// The runs in `data_dir` that never finished, newest first. Damaged journals are set aside
/// (see [`interrupted_and_damaged`]).
pub fn interrupted(data_dir: &Path) -> Result<Vec<RunRecord>, journal::JournalError> {
    interrupted_and_damaged(data_dir).map(|(runs, _)| runs)
}

/// The runs in `data_dir` that never finished, newest first, and the journals that could not
/// be read (each set aside as `<name>.damaged`, so that it blocks no other run).
pub fn interrupted_and_damaged(
    data_dir: &Path,
) -> Result<(Vec<RunRecord>, Vec<SetAside>), journal::JournalError> {
    let dir = data_dir.join("journal");
    if !dir.exists() {
        return Ok((Vec::new(), Vec::new()));
    }
    let (runs, damaged) = journal::runs_setting_aside_damaged(&dir)?;
    Ok((
        runs.into_iter().filter(RunRecord::is_interrupted).collect(),
        damaged,
    ))
}

/// What recovering one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub run_id: String,
    pub undone: Vec<String>,
    /// What could not be undone, or why the run was not touched.
    pub advice: Vec<String>,
    /// The run still holds its lock: it is alive, and was left alone.
    pub still_running: bool,
    /// The run belongs to another server than the one the connection options point at: it
    /// was left alone.
    pub other_server: bool,
    /// What is still pending after this attempt: the run stays listed until it is empty.
    pub pending: Vec<String>,
}

impl Recovered {
    pub fn clean(&self) -> bool {
        self.advice.is_empty()
            && !self.still_running
            && !self.other_server
            && self.pending.is_empty()
    }
}

/// Undoes what every interrupted run in `data_dir` left pending, idempotently.
pub fn recover_all(
    server: &ConnSettings,
    data_dir: &Path,
    bundle_dir: Option<&Path>,
    keep_failed: bool,
    obs: &mut dyn Observer,
) -> Result<Vec<Recovered>, journal::JournalError> {
    recover_all_reporting(server, data_dir, bundle_dir, keep_failed, obs).map(|(r, _)| r)
}

/// [`recover_all`], also returning the damaged journals that were set aside.
pub fn recover_all_reporting(
    server: &ConnSettings,
    data_dir: &Path,
    bundle_dir: Option<&Path>,
    keep_failed: bool,
    obs: &mut dyn Observer,
) -> Result<(Vec<Recovered>, Vec<SetAside>), journal::JournalError> {
    let (runs, damaged) = interrupted_and_damaged(data_dir)?;
    let recovered = runs
        .iter()
        .map(|r| recover_run(server, data_dir, r, bundle_dir, keep_failed, obs))
        .collect();
    Ok((recovered, damaged))
}

fn recover_run(
    server: &ConnSettings,
    data_dir: &Path,
    record: &RunRecord,
    bundle_dir: Option<&Path>,
    keep_failed: bool,
    obs: &mut dyn Observer,
) -> Recovered {
    let mut out = Recovered {
        run_id: record.info.run_id.clone(),
        undone: vec![],
        advice: vec![],
        still_running: false,
        other_server: false,
        pending: vec![],
    };
    let undone = take_over(server, data_dir, record, obs, &mut out).and_then(|lock| {
        undo_and_finish(server, record, bundle_dir, keep_failed, obs, &mut out)?;
        drop(lock);
        Ok(())
    });
    if let Err(left) = undone {
        out.pending = record
            .pending_changes()
            .iter()
            .map(|(_, c)| still_pending(c))
            .collect();
        out.still_running = left.still_running;
        out.other_server = left.other_server;
        out.advice.push(left.why);
    }
    out
}

/// Why recovery left a run alone: every change stays pending.
struct LeftAlone {
    why: String,
    still_running: bool,
    other_server: bool,
}

impl LeftAlone {
    fn because(why: String) -> Self {
        LeftAlone {
            why,
            still_running: false,
            other_server: false,
        }
    }
}

/// Makes sure the run is the server's, is dead, and has no session left working; returns its
/// lock, held until the undo is done.
fn take_over(
    server: &ConnSettings,
    data_dir: &Path,
    record: &RunRecord,
    obs: &mut dyn Observer,
    out: &mut Recovered,
) -> Result<crate::lock::RunLock, LeftAlone> {
    let mut maint = crate::db::maintenance(server).map_err(|e| {
        LeftAlone::because(format!(
            "cannot reach the server {}: {e}; nothing was undone. Run `pgstep recover` again once it is reachable",
            server.host_display()
        ))
    })?;
    // Never act on another server than the run's own.
    check_server(&mut maint, record, server).map_err(|e| LeftAlone {
        other_server: true,
        ..LeftAlone::because(e.to_string())
    })?;
    // A run that still holds its lock is alive: never undo under its feet.
    let mut lock = acquire_settled(server, data_dir, record).map_err(|e| match e {
        LockError::Held { by, .. } => LeftAlone {
            still_running: true,
            ..LeftAlone::because(format!(
                "the run is still working ({by}); it was not touched"
            ))
        },
        e => LeftAlone::because(e.to_string()),
    })?;
    // The run is dead, but a session of it may still be executing a statement: end them all.
    let own_pid: Option<i32> = lock
        .client()
        .query_one("SELECT pg_catalog.pg_backend_pid()", &[])
        .ok()
        .map(|r| r.get(0));
    match end_run_sessions(&mut maint, &run_application_name(record), own_pid) {
        Ok(0) => {}
        Ok(n) => crate::events::log(
            obs,
            crate::events::Level::Info,
            format!("ended {n} server session(s) the killed run had left working"),
        ),
        Err(e) => out.advice.push(format!(
            "could not end the killed run's server sessions: {e}"
        )),
    }
    Ok(lock)
}

/// Undoes what the journal lists as pending and, when nothing is left, records the run as
/// recovered.
fn undo_and_finish(
    server: &ConnSettings,
    record: &RunRecord,
    bundle_dir: Option<&Path>,
    keep_failed: bool,
    obs: &mut dyn Observer,
    out: &mut Recovered,
) -> Result<(), LeftAlone> {
    let banner = banner_without_journal(record, bundle_dir);
    let mut journal = Journal::open_existing(&record.path).map_err(|e| {
        LeftAlone::because(format!(
            "cannot open the journal {}: {e}",
            record.path.display()
        ))
    })?;
    let report = undo_run(server, banner.as_ref(), &mut journal, keep_failed, obs);
    out.undone.extend(report.undone);
    out.advice.extend(report.advice);
    out.pending = report.pending;
    if out.pending.is_empty() {
        let detail = format!("{} change(s) undone by pgstep recover", out.undone.len());
        if let Err(e) = journal.append(Entry::Finished {
            outcome: RunOutcome::Recovered,
            detail: Some(detail),
        }) {
            out.advice.push(format!(
                "everything was undone, but the journal {} could not record it: {e}; `pgstep recover` will check again",
                record.path.display()
            ));
        }
    }
    Ok(())
}

/// The banner statements from the run's bundle, for older journals that do not carry them
/// (None when the journal has them: undoing takes them from there).
fn banner_without_journal(record: &RunRecord, bundle_dir: Option<&Path>) -> Option<bundle::Banner> {
    if record.context().and_then(|c| c.banner.as_ref()).is_some() {
        return None;
    }
    bundle_dir
        .map(Path::to_path_buf)
        .or_else(|| record.info.bundle.as_ref().map(std::path::PathBuf::from))
        .and_then(|p| bundle::load(&p).ok())
        .and_then(|b| b.banner)
}

/// The `application_name` every session of the run had, as the server keeps it.
fn run_application_name(record: &RunRecord) -> String {
    let name = record
        .context()
        .and_then(|c| c.application_name.clone())
        .unwrap_or_else(|| crate::lock::application_name(&record.info));
    server_kept_application_name(&name)
}

/// `name` cut the way the server cuts it (at most 63 bytes, on a character boundary).
pub fn server_kept_application_name(name: &str) -> String {
    let mut end = name.len().min(APPLICATION_NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

/// Ends every session named `application_name` (but `keep`) and waits until they are gone.
/// Returns how many there were.
fn end_run_sessions(
    maint: &mut Client,
    application_name: &str,
    keep: Option<i32>,
) -> Result<usize, EndSessionsError> {
    let me: i32 = maint
        .query_one("SELECT pg_catalog.pg_backend_pid()", &[])?
        .get(0);
    let keep = keep.unwrap_or(me);
    let list = |m: &mut Client| -> Result<Vec<i32>, postgres::Error> {
        Ok(m.query(
            "SELECT pid FROM pg_catalog.pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_catalog.pg_backend_pid() AND pid <> $2",
            &[&application_name, &keep],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
    };
    let pids = list(maint)?;
    if pids.is_empty() {
        return Ok(0);
    }
    for pid in &pids {
        maint.execute("SELECT pg_catalog.pg_terminate_backend($1)", &[pid])?;
    }
    let deadline = Instant::now() + SESSION_GRACE;
    while !list(maint)?.is_empty() {
        if Instant::now() >= deadline {
            return Err(EndSessionsError::StillThere(pids));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(pids.len())
}

/// Why the sessions of a killed run could not be ended.
#[derive(Debug, thiserror::Error)]
enum EndSessionsError {
    #[error("{}", crate::db::describe(.0))]
    Query(#[from] postgres::Error),
    #[error("sessions {0:?} were told to end and are still there")]
    StillThere(Vec<i32>),
}

/// The server's system identifier (None when this role may not read it) and the oid of `db`
/// (None when it does not exist).
pub fn server_identity(client: &mut Client, db: &str) -> (Option<String>, Option<u32>) {
    let system_identifier = client
        .query_one(
            "SELECT system_identifier::text FROM pg_catalog.pg_control_system()",
            &[],
        )
        .ok()
        .map(|r| r.get(0));
    (system_identifier, database_oid(client, db))
}

fn database_oid(client: &mut Client, db: &str) -> Option<u32> {
    client
        .query_opt(
            "SELECT oid FROM pg_catalog.pg_database WHERE datname = $1",
            &[&db],
        )
        .ok()
        .flatten()
        .map(|r| r.get(0))
}

/// Err, saying which server the run belongs to, when `server` is not the run's server: by
/// the cluster's system identifier, else by the source database's oid, else (journals from
/// before pgstep recorded either) by the server's name as the run displayed it.
fn check_server(
    maint: &mut Client,
    record: &RunRecord,
    server: &ConnSettings,
) -> Result<(), NotTheRunServer> {
    let here = server.host_display();
    let info = &record.info;
    let (id_here, _) = server_identity(maint, &info.source_db);
    let Some(why) = not_the_run_server(maint, record, &here, id_here.as_deref()) else {
        return Ok(());
    };
    let theirs = match record
        .context()
        .and_then(|c| c.system_identifier.as_deref())
    {
        Some(id) => format!("{} (system identifier {id})", info.server),
        None => info.server.clone(),
    };
    let ours = match &id_here {
        Some(id) => format!("{here} (system identifier {id})"),
        None => here.clone(),
    };
    Err(NotTheRunServer {
        run_id: info.run_id.clone(),
        server: info.server.clone(),
        theirs,
        ours,
        why,
    })
}

/// A run found through another server than its own: it is left alone.
#[derive(Debug, thiserror::Error)]
#[error(
    "run {run_id} belongs to the server {theirs}, not to the server the connection options point at, {ours} ({why}); it was not touched. Run `pgstep recover` with the connection options of {server}"
)]
struct NotTheRunServer {
    run_id: String,
    /// The run's server as it displayed it.
    server: String,
    /// The run's server, with its system identifier when journalled.
    theirs: String,
    /// The server the connection options reach, with its system identifier when readable.
    ours: String,
    why: String,
}

/// Why the server reached as `here` (system identifier `id_here`) is not the run's, or None
/// when it is.
fn not_the_run_server(
    maint: &mut Client,
    record: &RunRecord,
    here: &str,
    id_here: Option<&str>,
) -> Option<String> {
    if let Some(c) = record.context() {
        if let (Some(a), Some(b)) = (&c.system_identifier, id_here) {
            return (a != b).then(|| "another cluster".to_owned());
        }
        if let Some(oid) = c.source_oid {
            return not_the_run_source(maint, record, oid);
        }
    }
    (record.info.server != here).then(|| {
        "another server name, and the run's journal does not identify its server".to_owned()
    })
}

/// Why this server's source database (or the name a fixed-name cut-over renamed it to) is not
/// the run's, whose oid was `oid`; None when it is.
fn not_the_run_source(maint: &mut Client, record: &RunRecord, oid: u32) -> Option<String> {
    let source = &record.info.source_db;
    let mut names = vec![source.clone()];
    names.extend(
        record
            .pending_changes()
            .into_iter()
            .filter_map(|(_, ch)| match ch {
                Change::Renamed { from, to } if from == *source => Some(to),
                _ => None,
            }),
    );
    for name in names {
        if let Some(found) = database_oid(maint, &name) {
            return (found != oid).then(|| {
                format!("its \"{name}\" is another database: oid {found}, the run's was {oid}")
            });
        }
    }
    Some(format!("\"{source}\" is not on this server"))
}

/// Why no new run may start on this server: an earlier run there did not finish and left
/// changes pending (a source still blocked, a leftover clone that a new run could take for the
/// application's database). None when there is none. A run is on this server when its
/// journalled system identifier is `system_identifier` (whatever name reached it), or, for a
/// journal or a role without one, when it was reached as `server_display`. Unreadable journals
/// are skipped here (`pgstep status` reports them).
pub fn pending_on_server(
    data_dir: &Path,
    server_display: &str,
    system_identifier: Option<&str>,
) -> Option<String> {
    let paths = journal::run_paths(&data_dir.join("journal")).ok()?;
    let mut runs = Vec::new();
    for path in paths {
        let Ok(r) = journal::read_run(&path) else {
            continue;
        };
        let pending = r.pending_changes();
        let journalled = r.context().and_then(|c| c.system_identifier.clone());
        let same_server = match (journalled.as_deref(), system_identifier) {
            (Some(theirs), Some(ours)) => theirs == ours,
            _ => r.info.server == server_display,
        };
        if !r.is_interrupted()
            || !same_server
            || pending.is_empty()
            || live_holder(data_dir, &r).is_some()
        {
            continue;
        }
        let what: Vec<String> = pending.iter().map(|(_, c)| still_pending(c)).collect();
        runs.push(format!("run {} ({})", r.info.run_id, what.join("; ")));
    }
    (!runs.is_empty()).then(|| {
        format!(
            "an earlier run on this server did not finish and left changes pending: {}. Run \
             `pgstep recover` first (`pgstep status` lists what is pending); pgstep starts no \
             new run while one is left undone",
            runs.join("; ")
        )
    })
}

/// Whether the run is alive: its lock file on this machine names it, and its process still
/// runs pgstep. Some(description of the holder) when it is (or may be: another host).
pub fn live_holder(data_dir: &Path, record: &RunRecord) -> Option<String> {
    let info = &record.info;
    let path = crate::lock::lock_file_path(&data_dir.join("locks"), &info.server, &info.source_db);
    let text = std::fs::read_to_string(path).ok()?;
    let content: crate::lock::LockFileContent = serde_json::from_str(&text).ok()?;
    if content.run_id != info.run_id {
        return None;
    }
    let holder = format!(
        "pid {} on host {}, since {}",
        content.pid, content.host, content.since
    );
    if content.host != journal::hostname() {
        return Some(format!(
            "{holder} (another host: pgstep cannot tell from here whether it still runs)"
        ));
    }
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", content.pid)).ok()?;
    String::from_utf8_lossy(&cmdline)
        .contains("pgstep")
        .then_some(holder)
}

/// Takes the dead run's lock, giving its server session a moment to end.
fn acquire_settled(
    server: &ConnSettings,
    data_dir: &Path,
    record: &RunRecord,
) -> Result<crate::lock::RunLock, LockError> {
    let deadline = Instant::now() + LOCK_GRACE;
    loop {
        match crate::lock::acquire_in(
            &data_dir.join("locks"),
            server,
            &record.info.source_db,
            &record.info,
        ) {
            Err(LockError::Held { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{RunInfo, RunKind};

    #[test]
    fn recover_application_names_are_cut_like_the_server_cuts_them() {
        let short = "pgstep h pid 1 run r";
        assert_eq!(server_kept_application_name(short), short);
        let long = format!("pgstep {} pid 1 run r", "x".repeat(80));
        assert_eq!(server_kept_application_name(&long).len(), 63);
        // Never in the middle of a character.
        let wide = format!("{}é", "x".repeat(62));
        assert_eq!(server_kept_application_name(&wide), "x".repeat(62));
    }

    #[test]
    fn recover_a_pending_run_blocks_new_runs_on_its_server_only() {
        let data = tempfile::tempdir().expect("tempdir");
        let dir = data.path().join("journal");
        let info = RunInfo::new(RunKind::Upgrade, "db1:5432", "clinic_v1");
        let mut j = Journal::create_in(&dir, info).expect("journal");
        assert_eq!(pending_on_server(data.path(), "db1:5432", None), None);
        let id = j
            .change(Change::CloneCreating {
                name: "clinic_v2".into(),
                source: "clinic_v1".into(),
            })
            .expect("change");
        let why = pending_on_server(data.path(), "db1:5432", None).expect("refused");
        assert!(
            why.contains("\"clinic_v2\" may still exist") && why.contains("pgstep recover"),
            "{why}"
        );
        assert_eq!(pending_on_server(data.path(), "db2:5432", None), None);
        j.append(Entry::Undone {
            id,
            how: "dropped".into(),
        })
        .expect("undone");
        assert_eq!(pending_on_server(data.path(), "db1:5432", None), None);
    }

    #[test]
    fn recover_a_pending_run_is_found_by_its_system_identifier_under_any_name() {
        let data = tempfile::tempdir().expect("tempdir");
        let dir = data.path().join("journal");
        let info = RunInfo::new(RunKind::Upgrade, "localhost:5432", "clinic_v1");
        let mut j = Journal::create_in(&dir, info).expect("journal");
        j.append(Entry::Context(crate::journal::RunContext {
            system_identifier: Some("7300000000000000001".into()),
            ..Default::default()
        }))
        .expect("context");
        j.change(Change::CloneCreating {
            name: "clinic_v2".into(),
            source: "clinic_v1".into(),
        })
        .expect("change");
        // The same cluster reached by another name: still refused.
        assert!(
            pending_on_server(data.path(), "127.0.0.1:5432", Some("7300000000000000001")).is_some()
        );
        // Another cluster reached by the same name: not this run's server.
        assert_eq!(
            pending_on_server(data.path(), "localhost:5432", Some("7300000000000000002")),
            None
        );
        // A role that cannot read the identifier: the name decides.
        assert!(pending_on_server(data.path(), "localhost:5432", None).is_some());
    }
}

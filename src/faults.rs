//! Fault points, one per step and a few inside the backup, compiled in only with the
//! `fault-injection` feature (which only the test build enables). `PGSTEP_FAULT` names one or
//! more, separated by commas, each `<point>:<action>`:
//! - `fail`: the step fails after it has done its work, so that the failure path must undo it;
//! - `pause`: the process announces the point and waits there, to be killed (SIGKILL) by a test;
//! - `panic`: the step panics;
//! - `hold` (the points inside the backup): the backup waits there until it is stopped — for
//!   at most a minute, then it goes on — so that a test can stop a backup that is still running.
//! - `wait`: the process announces the point and waits until the file named by
//!   `PGSTEP_FAULT_GATE` exists (two minutes at most), then goes on — so that a test can stop
//!   or crash the server, or fill a disk, at exactly that point and watch what pgstep does next.
//!
//! Points: the end of every step (its `StepId` key: `connected_users` … `cut_over`, the last one
//! before the cut-over declares itself done), and inside the long steps: `backup_written`
//! (pg_dump has written the file, not yet verified), `backup_alongside` (the end of a backup
//! taken alongside the upgrade), `clone_created` (the clone exists, its settings and access are
//! not yet carried over), `upgrade_statement` (between the third and fourth statement of a
//! script), `sanity_checks_fingerprint` (the clone's fingerprint and version are checked, the
//! other checks not yet), `cut_over_banner_reset` (the new database's banner is reset, nothing
//! renamed yet) and `cut_over_renamed` (fixed naming: the source is renamed aside, the new
//! database not yet into place). `tests/fault_matrix.rs` drives them all.

use crate::cancel::Cancel;
use crate::checklist::StepId;

/// The `fail` action of a fault point: the step (titled `title`) fails there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("injected fault at the end of step {title}")]
pub struct InjectedFault {
    pub title: String,
}

/// Err when a fault is injected at the end of `step` (`fault` is the run's `PGSTEP_FAULT`).
pub fn at(step: StepId, fault: Option<&str>) -> Result<(), InjectedFault> {
    at_point(step.key(), step.title(), fault)
}

/// The action asked for at the named point, if any.
#[cfg(feature = "fault-injection")]
fn action_at<'a>(key_here: &str, fault: Option<&'a str>) -> Option<&'a str> {
    fault?
        .split(',')
        .filter_map(|f| f.trim().split_once(':'))
        .find(|(key, _)| *key == key_here)
        .map(|(_, action)| action)
}

/// Err when a fault is injected at the named point: `backup_alongside` is the end of the
/// backup taken on its own thread, alongside the upgrade.
#[cfg(feature = "fault-injection")]
pub fn at_point(key_here: &str, title: &str, fault: Option<&str>) -> Result<(), InjectedFault> {
    match action_at(key_here, fault) {
        Some("fail") => Err(InjectedFault {
            title: title.to_owned(),
        }),
        Some("pause") => pause(key_here),
        Some("panic") => panic!("injected panic at step {title}"),
        Some("wait") => {
            wait_for_gate(key_here);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Waits at the named point until the test opens the gate (creates the file named by
/// `PGSTEP_FAULT_GATE`); without a gate, or after two minutes, it goes on.
#[cfg(feature = "fault-injection")]
fn wait_for_gate(key: &str) {
    let Some(gate) = std::env::var_os("PGSTEP_FAULT_GATE") else {
        return;
    };
    let gate = std::path::PathBuf::from(gate);
    errln!("pgstep: fault point {key} reached; waiting for the gate");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !gate.exists() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A point inside a long piece of work that can be stopped: `hold` waits there until `cancel`
/// is requested (a minute at most), `pause` waits to be killed.
#[cfg(feature = "fault-injection")]
pub fn hold_at(key_here: &str, fault: Option<&str>, cancel: &Cancel) {
    match action_at(key_here, fault) {
        Some("pause") => pause(key_here),
        Some("wait") => wait_for_gate(key_here),
        Some("hold") => {
            errln!("pgstep: fault point {key_here} reached; holding until stopped");
            let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !cancel.requested() && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        _ => {}
    }
}

#[cfg(feature = "fault-injection")]
fn pause(key: &str) -> ! {
    errln!("pgstep: fault point {key} reached; waiting to be killed");
    loop {
        std::thread::park();
    }
}

#[cfg(not(feature = "fault-injection"))]
pub fn at_point(_key: &str, _title: &str, _fault: Option<&str>) -> Result<(), InjectedFault> {
    Ok(())
}

#[cfg(not(feature = "fault-injection"))]
pub fn hold_at(_key: &str, _fault: Option<&str>, _cancel: &Cancel) {}

/// [`hold_at`] for code that has no run spec at hand (the script runner): the fault is read
/// from `PGSTEP_FAULT` itself.
#[cfg(feature = "fault-injection")]
pub fn hold_at_env(key_here: &str, cancel: &Cancel) {
    let fault = std::env::var("PGSTEP_FAULT").ok();
    hold_at(key_here, fault.as_deref(), cancel);
}

#[cfg(not(feature = "fault-injection"))]
pub fn hold_at_env(_key: &str, _cancel: &Cancel) {}

//! Fault points, one per step, compiled in only with the `fault-injection` feature (which only
//! the test build enables): `PGSTEP_FAULT=<step key>:fail` makes a step fail after it has done
//! its work, so that the failure path must undo it; `PGSTEP_FAULT=<step key>:pause` makes the
//! process announce the point and wait there, to be killed (SIGKILL) by a test.

use crate::checklist::StepId;

/// Err when a fault is injected at the end of `step` (`fault` is the run's `PGSTEP_FAULT`).
pub fn at(step: StepId, fault: Option<&str>) -> Result<(), String> {
    at_point(step.key(), step.title(), fault)
}

/// Err when a fault is injected at the named point: `backup_alongside` is the end of the
/// backup taken on its own thread, alongside the upgrade.
#[cfg(feature = "fault-injection")]
pub fn at_point(key_here: &str, title: &str, fault: Option<&str>) -> Result<(), String> {
    let Some(spec) = fault else { return Ok(()) };
    let Some((key, action)) = spec.split_once(':') else {
        return Ok(());
    };
    if key != key_here {
        return Ok(());
    }
    match action {
        "fail" => Err(format!("injected fault at the end of step {title}")),
        "pause" => {
            errln!("pgstep: fault point {key} reached; waiting to be killed");
            loop {
                std::thread::park();
            }
        }
        "panic" => panic!("injected panic at step {title}"),
        _ => Ok(()),
    }
}

#[cfg(not(feature = "fault-injection"))]
pub fn at_point(_key: &str, _title: &str, _fault: Option<&str>) -> Result<(), String> {
    Ok(())
}

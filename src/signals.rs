//! Ctrl-C, SIGTERM and SIGHUP during a run: counted, never fatal. The front end turns the
//! first into "stop at the next safe point and take the failure path", the next into
//! "interrupt the running statement or child process now" — so that a sysadmin's Ctrl-C, a
//! `kill`, or a dropped SSH session never leaves a half-done upgrade without its undo.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// How a run stopped by SIGTERM is reported.
pub const STOPPED_BY_SIGTERM: &str = "stopped by SIGTERM";
/// How a run whose terminal went away (SIGHUP, or its input failed) is reported.
pub const TERMINAL_GONE: &str = "the terminal went away (SIGHUP)";
/// How the checklist and the executor word a cancellation; a signal's cause replaces it.
const CANCELLED_BY_OPERATOR: &str = "cancelled by the operator";

/// Says what really stopped a cancelled run: `cause` (see [`Interrupts::cause`]) replaces
/// "cancelled by the operator" in the outcome's words, or leads them. Other outcomes, and
/// no cause (the operator's Ctrl-C), are left as they are.
pub fn name_the_cause(outcome: &mut crate::checklist::Outcome, cause: Option<&str>) {
    let (
        crate::checklist::Outcome::Failed {
            what,
            cancelled: true,
            ..
        },
        Some(cause),
    ) = (outcome, cause)
    else {
        return;
    };
    *what = if what.contains(CANCELLED_BY_OPERATOR) {
        what.replacen(CANCELLED_BY_OPERATOR, cause, 1)
    } else {
        format!("{cause}: {what}")
    };
}

/// How many interrupting signals arrived since [`Interrupts::install`].
#[derive(Debug, Clone)]
pub struct Interrupts {
    count: Arc<AtomicUsize>,
    /// SIGHUP among them: the terminal is gone.
    hangups: Arc<AtomicUsize>,
    /// The first interrupting signal that arrived (0: none yet).
    first: Arc<AtomicI32>,
    ids: Vec<signal_hook::SigId>,
}

impl Interrupts {
    /// Counts SIGINT, SIGTERM and SIGHUP instead of letting them end the process.
    pub fn install() -> std::io::Result<Self> {
        let count = Arc::new(AtomicUsize::new(0));
        let hangups = Arc::new(AtomicUsize::new(0));
        let first = Arc::new(AtomicI32::new(0));
        let mut ids = Vec::new();
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            let c = Arc::clone(&count);
            let h = Arc::clone(&hangups);
            let f = Arc::clone(&first);
            // SAFETY: the handler only updates atomics, which is async-signal-safe.
            let id = unsafe {
                signal_hook::low_level::register(signal, move || {
                    if signal == SIGHUP {
                        h.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = f.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
                    c.fetch_add(1, Ordering::SeqCst);
                })
            }?;
            ids.push(id);
        }
        Ok(Self {
            count,
            hangups,
            first,
            ids,
        })
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Whether a SIGHUP arrived: the controlling terminal (an SSH session, a closed window) is
    /// gone, so nobody can answer a question any more.
    pub fn hung_up(&self) -> bool {
        self.hangups.load(Ordering::SeqCst) > 0
    }

    /// What stopped the run, in words, when it was not the operator's Ctrl-C: "stopped by
    /// SIGTERM", "the terminal went away (SIGHUP)". None for SIGINT or no signal.
    pub fn cause(&self) -> Option<&'static str> {
        if self.hung_up() {
            return Some(TERMINAL_GONE);
        }
        match self.first.load(Ordering::SeqCst) {
            SIGTERM => Some(STOPPED_BY_SIGTERM),
            SIGHUP => Some(TERMINAL_GONE),
            _ => None,
        }
    }

    /// Gives the signals back their default meaning (the run is over).
    pub fn uninstall(self) {
        for id in self.ids {
            signal_hook::low_level::unregister(id);
        }
    }
}

//! Ctrl-C, SIGTERM and SIGHUP during a run: counted, never fatal. The front end turns the
//! first into "stop at the next safe point and take the failure path", the next into
//! "interrupt the running statement or child process now" — so that a sysadmin's Ctrl-C, a
//! `kill`, or a dropped SSH session never leaves a half-done upgrade without its undo.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// How many interrupting signals arrived since [`Interrupts::install`].
#[derive(Debug, Clone)]
pub struct Interrupts {
    count: Arc<AtomicUsize>,
    /// SIGHUP among them: the terminal is gone.
    hangups: Arc<AtomicUsize>,
    ids: Vec<signal_hook::SigId>,
}

impl Interrupts {
    /// Counts SIGINT, SIGTERM and SIGHUP instead of letting them end the process.
    pub fn install() -> std::io::Result<Self> {
        let count = Arc::new(AtomicUsize::new(0));
        let hangups = Arc::new(AtomicUsize::new(0));
        let mut ids = Vec::new();
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            let c = Arc::clone(&count);
            let h = Arc::clone(&hangups);
            // SAFETY: the handler only increments atomic counters, which is async-signal-safe.
            let id = unsafe {
                signal_hook::low_level::register(signal, move || {
                    if signal == SIGHUP {
                        h.fetch_add(1, Ordering::SeqCst);
                    }
                    c.fetch_add(1, Ordering::SeqCst);
                })
            }?;
            ids.push(id);
        }
        Ok(Self {
            count,
            hangups,
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

    /// Gives the signals back their default meaning (the run is over).
    pub fn uninstall(self) {
        for id in self.ids {
            signal_hook::low_level::unregister(id);
        }
    }
}

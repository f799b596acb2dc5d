//! Cooperative cancellation shared between the front end and the executor thread.
//!
//! The first request asks work to stop at the next safe point (between statements, between
//! tables); the second asks to interrupt what is running (cancel the query, stop the child
//! process). The failure path then undoes what was done.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// What interrupts the running work at once: cancel a query, stop a child process.
pub type Interrupt = Box<dyn Fn() + Send>;

#[derive(Clone, Default)]
pub struct Cancel {
    level: Arc<AtomicU8>,
    interrupt: Arc<Mutex<Option<Interrupt>>>,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cancel({:?})", self.level())
    }
}

/// How hard the operator has asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CancelLevel {
    None,
    /// Stop at the next safe point.
    Soft,
    /// Interrupt the running query or child process now.
    Hard,
}

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the level by one step (None → Soft → Hard) and returns the new level.
    pub fn request(&self) -> CancelLevel {
        let before = self
            .level
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| Some((v + 1).min(2)))
            .unwrap_or(2);
        let now = level((before + 1).min(2));
        if now == CancelLevel::Hard {
            self.interrupt_now();
        }
        now
    }

    pub fn level(&self) -> CancelLevel {
        level(self.level.load(Ordering::SeqCst))
    }

    /// Registers how to interrupt the work that is starting (None when it is over). If a hard
    /// cancellation is already requested, the work is interrupted at once.
    pub fn set_interrupt(&self, interrupt: Option<Interrupt>) {
        if let Ok(mut slot) = self.interrupt.lock() {
            *slot = interrupt;
        }
        if self.level() == CancelLevel::Hard {
            self.interrupt_now();
        }
    }

    fn interrupt_now(&self) {
        if let Ok(slot) = self.interrupt.lock()
            && let Some(f) = slot.as_ref()
        {
            f();
        }
    }

    /// Whether work should stop at the next safe point.
    pub fn requested(&self) -> bool {
        self.level() != CancelLevel::None
    }
}

fn level(v: u8) -> CancelLevel {
    match v {
        0 => CancelLevel::None,
        1 => CancelLevel::Soft,
        _ => CancelLevel::Hard,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalates_once_per_request_and_stays_hard() {
        let c = Cancel::new();
        let seen = c.clone();
        assert_eq!(c.level(), CancelLevel::None);
        assert_eq!(c.request(), CancelLevel::Soft);
        assert!(seen.requested());
        assert_eq!(c.request(), CancelLevel::Hard);
        assert_eq!(c.request(), CancelLevel::Hard);
        assert_eq!(seen.level(), CancelLevel::Hard);
    }

    #[test]
    fn the_second_request_interrupts_the_registered_work() {
        use std::sync::atomic::AtomicBool;
        let c = Cancel::new();
        let hit = Arc::new(AtomicBool::new(false));
        let h = hit.clone();
        c.set_interrupt(Some(Box::new(move || h.store(true, Ordering::SeqCst))));
        c.request();
        assert!(!hit.load(Ordering::SeqCst), "the first request only asks");
        c.request();
        assert!(hit.load(Ordering::SeqCst), "the second interrupts");
    }
}

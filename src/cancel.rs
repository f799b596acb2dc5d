//! Cooperative cancellation shared between the front end and the executor thread.
//!
//! The first request asks work to stop at the next safe point (between statements, between
//! tables); the second asks to interrupt what is running (cancel the query, stop the child
//! process). The failure path then undoes what was done.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicU8>);

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
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| Some((v + 1).min(2)))
            .unwrap_or(2);
        level((before + 1).min(2))
    }

    pub fn level(&self) -> CancelLevel {
        level(self.0.load(Ordering::SeqCst))
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
}

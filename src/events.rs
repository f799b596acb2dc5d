//! What the engine reports while it works: log lines, progress, phases and check results.
//!
//! The engine never prints; it hands events to an [`Observer`]. The headless printer is one
//! observer; the checklist state machine and the wizard consume the same stream.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Notice,
    Warning,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Statements,
    Scripts,
    Steps,
    Bytes,
    Tables,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A phase of the work began ("clone", "step 1 → 2", "verify").
    Phase { name: String },
    /// A line for the operator: server NOTICEs, script \echo, pgstep's own messages.
    Log { level: Level, text: String },
    /// Progress within the current phase.
    Progress {
        unit: Unit,
        done: u64,
        total: Option<u64>,
    },
    /// One check's result.
    Check {
        name: String,
        ok: bool,
        detail: String,
    },
}

/// Receives the engine's events.
pub trait Observer {
    fn event(&mut self, event: Event);

    fn log(&mut self, level: Level, text: impl Into<String>)
    where
        Self: Sized,
    {
        self.event(Event::Log {
            level,
            text: text.into(),
        });
    }
}

impl<F: FnMut(Event)> Observer for F {
    fn event(&mut self, event: Event) {
        self(event);
    }
}

/// Convenience for `&mut dyn Observer`.
pub fn log(obs: &mut dyn Observer, level: Level, text: impl Into<String>) {
    obs.event(Event::Log {
        level,
        text: text.into(),
    });
}

pub fn phase(obs: &mut dyn Observer, name: impl Into<String>) {
    obs.event(Event::Phase { name: name.into() });
}

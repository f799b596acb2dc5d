//! Headless output: readable lines (`--headless`) or one JSON object per line (`--json`), from
//! the same event stream the wizard follows.

use std::io::{self, Write};
use std::time::Instant;

use serde::Serialize;

use crate::events::{Event, Level, Observer};

pub struct Printer {
    json: bool,
    started: Instant,
    out: io::Stdout,
}

impl Printer {
    pub fn new(json: bool) -> Self {
        Self {
            json,
            started: Instant::now(),
            out: io::stdout(),
        }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// The final result as one JSON object (json mode) or nothing (text mode prints its own).
    pub fn result<T: Serialize>(&mut self, ok: bool, value: &T) {
        if self.json {
            let line = serde_json::json!({ "event": "result", "ok": ok, "result": value });
            self.write(&line.to_string());
        }
    }

    /// A plain line in text mode, a log event in json mode.
    pub fn say(&mut self, text: &str) {
        if self.json {
            self.event(Event::Log {
                level: Level::Info,
                text: text.to_owned(),
            });
        } else {
            self.write(text);
        }
    }

    fn write(&mut self, line: &str) {
        // A closed stdout (`pgstep … | head`) must not abort an upgrade half-way.
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    fn text(&mut self, event: &Event) -> Option<String> {
        Some(match event {
            Event::Phase { name } => {
                format!("[{:>7.1}s] == {name}", self.started.elapsed().as_secs_f64())
            }
            Event::Log { level, text } => {
                let tag = match level {
                    Level::Info => "   ",
                    Level::Notice => "   notice:",
                    Level::Warning => "   WARNING:",
                    Level::Error => "   ERROR:",
                };
                indent(&format!("{tag} {text}"))
            }
            Event::Check { name, ok, detail } => indent(&format!(
                "   [{}] {name}: {detail}",
                if *ok { "ok" } else { "FAILED" }
            )),
            Event::Progress { .. } => return None,
        })
    }
}

fn indent(s: &str) -> String {
    s.replace('\n', "\n      ")
}

impl Observer for Printer {
    fn event(&mut self, event: Event) {
        if self.json {
            if let Ok(line) = serde_json::to_string(&event) {
                self.write(&line);
            }
        } else if let Some(line) = self.text(&event) {
            self.write(&line);
        }
    }
}

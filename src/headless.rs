//! Headless output: readable lines (`--headless`) or one JSON object per line (`--json`), from
//! the same event stream the wizard follows.

use std::io::{self, Write};
use std::time::Instant;

use serde_json::json;

use crate::checklist::{Checklist, ExecEvent, Outcome, StepStatus};
use crate::events::{Event, Level, Observer};
use crate::session::{Reporter, Shown};

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

    fn stamp(&self) -> String {
        format!("[{:>7.1}s]", self.started.elapsed().as_secs_f64())
    }

    /// One thing the driver shows: an executor event or how a question was answered.
    pub fn shown(&mut self, checklist: &Checklist, shown: &Shown<'_>) {
        if let (false, Shown::Exec(ExecEvent::StepStarted(step))) = (self.json, shown) {
            // The step's expected duration, from the latest rehearsal.
            if let Some(secs) = checklist.plan().and_then(|p| p.expected_seconds(*step)) {
                let line = format!(
                    "{} == {} (expected about {secs:.1} s)",
                    self.stamp(),
                    step.title()
                );
                self.write(&line);
                return;
            }
        }
        match shown {
            Shown::Answered(words) if words.is_empty() => {}
            Shown::Answered(words) if self.json => {
                let line = json!({ "event": "answer", "text": words });
                self.write(&line.to_string());
            }
            Shown::Answered(words) => self.write(&indent(&format!("    {words}"))),
            Shown::Exec(e) => self.exec(e),
        }
    }

    fn exec(&mut self, e: &ExecEvent) {
        if self.json {
            if let Some(line) = exec_json(e) {
                self.write(&line.to_string());
            }
            return;
        }
        let line = match e {
            ExecEvent::StepStarted(step) => format!("{} == {}", self.stamp(), step.title()),
            ExecEvent::Engine(event) => match self.text(event) {
                Some(l) => l,
                None => return,
            },
            ExecEvent::StepDone {
                status,
                elapsed,
                output,
                ..
            } => {
                let note = match output {
                    // The step's own log line said what goes on.
                    _ if *status == StepStatus::Running => String::new(),
                    crate::checklist::StepOutput::Nothing { note }
                    | crate::checklist::StepOutput::Rehearsed { note, .. }
                        if !note.is_empty() =>
                    {
                        format!(": {note}")
                    }
                    _ => String::new(),
                };
                format!(
                    "    {} ({:.1} s){note}",
                    status_word(*status),
                    elapsed.as_secs_f64()
                )
            }
            ExecEvent::StepFailed { error, elapsed, .. } => indent(&format!(
                "    FAILED ({:.1} s): {error}",
                elapsed.as_secs_f64()
            )),
            ExecEvent::FailurePathDone { undone, .. } => {
                let mut s = format!("{} == failure path", self.stamp());
                for u in undone {
                    s.push_str(&format!("\n    undone: {u}"));
                }
                s
            }
            ExecEvent::BackgroundEnded { step, ok, took } => format!(
                "    {} {} alongside ({:.1} s)",
                step.title(),
                if *ok { "finished" } else { "FAILED" },
                took.as_secs_f64()
            ),
            ExecEvent::Crashed(why) => format!("    ERROR: the executor stopped: {why}"),
        };
        self.write(&line);
    }

    fn text(&self, event: &Event) -> Option<String> {
        Some(match event {
            Event::Phase { name } => format!("    -- {name}"),
            Event::Log { level, text } => {
                let tag = match level {
                    Level::Info => "   ",
                    Level::Notice => "   notice:",
                    Level::Warning => "   WARNING:",
                    Level::Error => "   ERROR:",
                };
                indent(&format!("{tag} {text}"))
            }
            Event::Check { name, ok, detail } => {
                indent(&format!("   {}", check_line(name, *ok, detail)))
            }
            Event::Progress { .. } => return None,
        })
    }

    /// The final line in json mode: the outcome and every step.
    pub fn result(&mut self, checklist: &Checklist, outcome: &Outcome) {
        if self.json {
            let line = json!({
                "event": "result",
                "ok": matches!(outcome, Outcome::Success),
                "exit_code": outcome.exit_code(),
                "outcome": serde_json::to_value(outcome).unwrap_or(serde_json::Value::Null),
                "still_connected": crate::run_report::still_connected(checklist, outcome),
                "steps": serde_json::to_value(&checklist.steps).unwrap_or(serde_json::Value::Null),
            });
            self.write(&line.to_string());
        }
    }
}

fn status_word(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Done => "done",
        StepStatus::Warning => "done, with a warning",
        StepStatus::Skipped => "skipped",
        StepStatus::Failed => "FAILED",
        StepStatus::Pending => "pending",
        StepStatus::Running => "going on in the background",
    }
}

fn exec_json(e: &ExecEvent) -> Option<serde_json::Value> {
    Some(match e {
        ExecEvent::StepStarted(step) => json!({ "event": "step_started", "step": step }),
        ExecEvent::Engine(event) => serde_json::to_value(event).ok()?,
        ExecEvent::StepDone {
            step,
            status,
            output,
            elapsed,
        } => {
            // Never panic over output: a value that cannot be serialised is shown as null.
            let output = serde_json::to_value(output).unwrap_or(serde_json::Value::Null);
            json!({ "event": "step_done", "step": step, "status": status, "seconds": elapsed.as_secs_f64(), "output": output })
        }
        ExecEvent::StepFailed {
            step,
            error,
            elapsed,
            refused,
            location: _,
        } => {
            json!({ "event": "step_failed", "step": step, "error": error, "refused": refused, "seconds": elapsed.as_secs_f64() })
        }
        ExecEvent::FailurePathDone {
            undone,
            advice,
            changed_anything,
            source,
        } => {
            json!({ "event": "failure_path_done", "undone": undone, "advice": advice, "changed_anything": changed_anything, "source": source })
        }
        ExecEvent::BackgroundEnded { step, ok, took } => {
            json!({ "event": "background_ended", "step": step, "ok": ok, "seconds": took.as_secs_f64() })
        }
        ExecEvent::Crashed(why) => json!({ "event": "crashed", "error": why }),
    })
}

/// One check's result as a line: "[ok] name: detail" or "[FAILED] name: detail" — in the
/// headless output, the wizard's log and the demo's summary alike.
pub fn check_line(name: &str, ok: bool, detail: &str) -> String {
    format!("[{}] {name}: {detail}", if ok { "ok" } else { "FAILED" })
}

fn indent(s: &str) -> String {
    s.replace('\n', "\n      ")
}

/// The printer follows a session's events; its final lines are the command's to print.
impl Reporter for Printer {
    fn shown(&mut self, checklist: &Checklist, shown: &Shown<'_>) {
        Printer::shown(self, checklist, shown);
    }
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

#[cfg(test)]
mod tests {
    use super::exec_json;
    use crate::checklist::{ExecEvent, SourceVerdict, TableWrites};

    #[test]
    fn the_failure_path_event_carries_the_measured_verdict_on_the_source() {
        let event = ExecEvent::FailurePathDone {
            undone: vec![],
            advice: vec![],
            changed_anything: true,
            source: Some(SourceVerdict::Changed {
                db: "clinic_v1".into(),
                rows_written: 1,
                tables_written: vec![TableWrites {
                    table: "clinic.patient".into(),
                    rows: 1,
                }],
                fingerprint_changed: false,
                tables_rewritten: vec![],
                backup: None,
            }),
        };
        let json = exec_json(&event).expect("json");
        assert_eq!(json["event"], "failure_path_done");
        assert_eq!(json["source"]["verdict"], "changed");
        assert_eq!(json["source"]["rows_written"], 1);
        assert_eq!(
            json["source"]["tables_written"][0]["table"],
            "clinic.patient"
        );
    }
}

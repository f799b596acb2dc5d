//! A step's screen: what it does (the help text's first sentence), its status, live progress
//! (a gauge with units, rate and time left), the question it waits on, and its result.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Wrap};

use super::help_text;
use crate::checklist::{BackupOutput, Question, StepOutput, StepStatus};
use crate::events::Unit;
use crate::ui::app::App;
use crate::ui::theme::Theme;
use crate::ui::view::short;

pub fn render(f: &mut Frame, area: Rect, app: &App, index: usize, theme: &Theme) {
    let Some(view) = app.checklist.steps.get(index) else {
        return;
    };
    let block = Block::default().borders(Borders::NONE).title(Span::styled(
        format!(" {} ", view.id.title()),
        theme.title(),
    ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let running =
        view.status == StepStatus::Running && app.progress.is_some() && app.question().is_none();
    let [about, gauge, body] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(if running { 2 } else { 0 }),
        Constraint::Min(1),
    ])
    .areas(inner);
    f.render_widget(
        Paragraph::new(Span::styled(summary(help_text(view.id)), theme.dim()))
            .wrap(Wrap { trim: true }),
        about,
    );
    if running {
        render_gauge(f, gauge, app, theme);
    }
    let mut lines = vec![Line::from(Span::styled(
        status_line(app, index),
        theme.title(),
    ))];
    if let (Some(q), true) = (app.question(), app.checklist.current() == Some(index)) {
        lines.extend(question_lines(app, q, theme));
    }
    if let Some(e) = &view.error {
        lines.push(Line::from(Span::styled(format!("Error: {e}"), theme.bad())));
    }
    if let Some(output) = &view.output {
        lines.extend(output_lines(output, theme));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), body);
}

/// The help text's first sentence, without the "Title — " it starts with (? shows it all).
fn summary(help: &str) -> String {
    let body = help.split_once(" — ").map_or(help, |(_, b)| b);
    let first = body.split_inclusive(". ").next().unwrap_or(body).trim();
    let mut s = first.to_owned();
    if let Some(c) = s.get(..1) {
        s.replace_range(..1, &c.to_uppercase());
    }
    s
}

fn status_line(app: &App, index: usize) -> String {
    let view = &app.checklist.steps[index];
    let time = app.step_elapsed(index).map(short).unwrap_or_default();
    let word = match view.status {
        StepStatus::Pending => "waiting",
        StepStatus::Running if app.question().is_some() => "waiting for you",
        StepStatus::Running => "running",
        StepStatus::Done => "done",
        StepStatus::Warning => "done, with a warning",
        StepStatus::Failed => "FAILED",
        StepStatus::Skipped => "skipped",
    };
    format!("Status: {word} {time}")
}

fn render_gauge(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some(p) = app.progress else { return };
    let unit = unit_word(p.unit);
    let ratio = p
        .total
        .filter(|t| *t > 0)
        .map_or(0.0, |t| (p.done as f64 / t as f64).clamp(0.0, 1.0));
    let mut label = match p.total {
        Some(t) => format!("{} / {} {unit}", amount(p.unit, p.done), amount(p.unit, t)),
        None => format!("{} {unit}", amount(p.unit, p.done)),
    };
    if let Some((rate, left)) = app.rate_and_left() {
        label.push_str(&format!(" · {}/s", amount(p.unit, rate as u64)));
        if let Some(left) = left {
            label.push_str(&format!(
                " · {} left",
                short(std::time::Duration::from_secs_f64(left))
            ));
        }
    }
    f.render_widget(
        Gauge::default()
            .gauge_style(theme.gauge())
            .ratio(ratio)
            .label(label),
        area,
    );
}

fn unit_word(u: Unit) -> &'static str {
    match u {
        Unit::Statements => "statements",
        Unit::Scripts => "scripts",
        Unit::Steps => "steps",
        Unit::Bytes => "",
        Unit::Tables => "tables",
    }
}

fn amount(u: Unit, n: u64) -> String {
    if u == Unit::Bytes {
        crate::diskspace::human_bytes(n)
    } else {
        n.to_string()
    }
}

fn question_lines(app: &App, q: &Question, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = vec![Line::raw("")];
    match q {
        Question::Confirmations { items } => {
            lines.push(Line::from(Span::styled(
                "Tick each item when it is true (Space), then Enter:",
                theme.warn(),
            )));
            for (i, item) in items.iter().enumerate() {
                let ticked = app.ticks.get(i).copied().unwrap_or(item.ticked);
                let mark = if ticked { "[x]" } else { "[ ]" };
                let style = if i == app.cursor {
                    theme.selected()
                } else {
                    theme.normal()
                };
                lines.push(Line::from(Span::styled(
                    format!(" {mark} {}", item.text),
                    style,
                )));
            }
        }
        Question::Sessions { sessions } => {
            lines.push(Line::from(Span::styled(
                format!("{} session(s) still connected:", sessions.len()),
                theme.warn(),
            )));
            lines.push(Line::from(Span::styled(
                format!(
                    "  {:>7}  {:<14} {:<16} {:<15} {:>8}  {}",
                    "pid", "user", "application", "client", "since", "state"
                ),
                theme.dim(),
            )));
            for (i, s) in sessions.iter().enumerate() {
                let style = if i == app.cursor {
                    theme.selected()
                } else {
                    theme.normal()
                };
                let since = short(std::time::Duration::from_secs(
                    u64::try_from(s.age_seconds).unwrap_or(0),
                ));
                lines.push(Line::from(Span::styled(
                    format!(
                        "  {:>7}  {:<14} {:<16} {:<15} {:>8}  {}",
                        s.pid, s.user, s.application, s.client, since, s.state
                    ),
                    style,
                )));
            }
            lines.push(Line::raw("r refresh while they log off · n notify the application's clients · t terminate (they lose unsaved work)"));
        }
        Question::FingerprintMismatch { diff } => {
            lines.push(Line::from(Span::styled(
                "The schema differs from the reference:",
                theme.warn(),
            )));
            lines.extend(diff.lines().map(|l| Line::raw(l.to_owned())));
            lines.push(Line::raw("Enter proceeds anyway (you will type the database's name; it is recorded) · Esc stops"));
        }
        Question::DiskUnmeasurable { .. } => {
            lines.push(Line::from(Span::styled("Free space cannot be measured here: the server is on another machine. Check it there, then Enter.", theme.warn())));
        }
        Question::CutOver => {
            lines.push(Line::from(Span::styled(
                "Every check passed. Enter cuts over (you will type the new database's name).",
                theme.ok(),
            )));
        }
    }
    lines
}

fn output_lines(output: &StepOutput, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = vec![Line::raw("")];
    match output {
        StepOutput::Plan(p) => {
            lines.push(Line::raw(format!(
                "{} on {}: \"{}\" at version {} → \"{}\" at version {}",
                p.application, p.server, p.source_db, p.from, p.target_db, p.to
            )));
            lines.extend(p.lines.iter().map(|l| Line::raw(format!("  {l}"))));
        }
        StepOutput::Confirmed(items) => {
            lines.extend(items.iter().map(|i| Line::raw(format!(" [x] {}", i.text))))
        }
        StepOutput::Sessions {
            sessions,
            unblockable,
        } => {
            if sessions.is_empty() {
                lines.push(Line::from(Span::styled(
                    "Nobody else is connected; new connections are blocked for the downtime.",
                    theme.ok(),
                )));
            }
            if !unblockable.is_empty() {
                lines.push(Line::raw(format!(
                    "Can still connect: {}",
                    unblockable.join(", ")
                )));
            }
        }
        StepOutput::Disk(items) => {
            for i in items {
                let (mark, style) = match i.ok() {
                    Some(true) => ("✓", theme.ok()),
                    Some(false) => ("✗", theme.bad()),
                    None => ("?", theme.warn()),
                };
                lines.push(Line::from(Span::styled(
                    format!("{mark} {}", i.what),
                    style,
                )));
            }
        }
        StepOutput::Fingerprint {
            hash,
            matches,
            reference,
            diff,
        } => {
            let r = reference.map_or_else(String::new, |v| v.to_string());
            if *matches {
                lines.push(Line::from(Span::styled(
                    format!("✓ sha256:{hash} matches the reference for version {r}"),
                    theme.ok(),
                )));
            } else {
                lines.push(Line::from(Span::styled(
                    format!("! sha256:{hash} differs from the reference for version {r}"),
                    theme.warn(),
                )));
                lines.extend(diff.lines().map(|l| Line::raw(l.to_owned())));
            }
        }
        StepOutput::Backup(BackupOutput::Taken {
            path,
            size,
            sha256,
            entries,
        }) => {
            lines.push(Line::from(Span::styled(format!("✓ {path}"), theme.ok())));
            lines.push(Line::raw(format!(
                "  {} · {entries} archive entries · verified with pg_restore --list",
                crate::diskspace::human_bytes(*size)
            )));
            lines.push(Line::raw(format!("  sha256 {sha256}")));
        }
        StepOutput::Backup(BackupOutput::Skipped { reason, bytes_read }) => {
            lines.push(Line::from(Span::styled(
                format!("! no backup, because: {reason}"),
                theme.warn(),
            )));
            lines.push(Line::raw(format!(
                "  the database was read once instead ({}), to find damaged pages",
                crate::diskspace::human_bytes(*bytes_read)
            )));
        }
        StepOutput::Banner { message } => lines.push(Line::raw(format!(
            "Banner: {}",
            message.as_deref().unwrap_or("(none)")
        ))),
        StepOutput::Upgraded(steps) => {
            for s in steps {
                lines.push(Line::from(Span::styled(
                    format!(
                        "✓ step {} → {}: {} script(s), {} statement(s), {:.1} s",
                        s.from,
                        s.to,
                        s.scripts,
                        s.statements,
                        s.elapsed.as_secs_f64()
                    ),
                    theme.ok(),
                )));
            }
        }
        StepOutput::Checks(checks) => {
            for c in checks {
                let (mark, style) = if c.ok {
                    ("✓", theme.ok())
                } else {
                    ("✗", theme.bad())
                };
                lines.push(Line::from(Span::styled(
                    format!(
                        "{mark} {}: {}",
                        c.name,
                        c.detail.lines().next().unwrap_or_default()
                    ),
                    style,
                )));
            }
        }
        StepOutput::CutOver { new_db, old_db } => {
            lines.push(Line::from(Span::styled(
                format!("✓ users now use \"{new_db}\"; \"{old_db}\" is kept read-only and closed"),
                theme.ok(),
            )));
        }
        StepOutput::Fixups {
            applied,
            skipped,
            version,
        } => {
            lines.push(Line::raw(format!(
                "version {version}: {} file(s) applied, {} already recorded",
                applied.len(),
                skipped.len()
            )));
            lines.extend(applied.iter().map(|a| Line::raw(format!("  ✓ {a}"))));
        }
        StepOutput::Restored {
            db,
            fingerprint_matches,
        } => {
            let fp = match fingerprint_matches {
                Some(true) => "its fingerprint matches the backup's",
                Some(false) => "its fingerprint DIFFERS from the backup's",
                None => "the backup records no fingerprint to compare",
            };
            lines.push(Line::raw(format!("restored into \"{db}\"; {fp}")));
        }
        StepOutput::Bootstrapped { db, version } => {
            lines.push(Line::raw(format!("created \"{db}\" at version {version}")))
        }
        StepOutput::Nothing { note } if note.is_empty() => {}
        StepOutput::Nothing { note } => lines.push(Line::raw(note.clone())),
    }
    lines
}

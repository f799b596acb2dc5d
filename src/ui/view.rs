//! The wizard's frame: a header (server, database, application, versions, elapsed time), the
//! checklist as a sidebar, the current step's screen, the log pane and the key bar — with the
//! confirmation dialog and the help overlay on top. Pure rendering of [`App`].

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, Paragraph, Wrap};

use super::app::{App, Dialog};
use super::screens;
use super::screens::text::{ellipsize, wrap};
use super::theme::Theme;
use crate::checklist::{Question, StepStatus};
use crate::events::Level;

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub fn render(f: &mut Frame, app: &App) {
    let area = f.area();
    let theme = Theme::new(app.no_color);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let mut text = format!(
            "The terminal is {}×{}; pgstep needs at least {MIN_WIDTH}×{MIN_HEIGHT}.\nEnlarge the window: the run goes on meanwhile.",
            area.width, area.height
        );
        let now = match (&app.outcome, app.question()) {
            (Some(_), _) => "The run is over: enlarge the window to read how it ended.".to_owned(),
            (None, q) => {
                let step = app.checklist.current().unwrap_or(0);
                let title = app.checklist.steps.get(step).map_or("", |s| s.id.title());
                let state = if q.is_some() {
                    "waiting for you"
                } else {
                    "running"
                };
                format!(
                    "Now: step {} of {}, {title} — {state}.",
                    step + 1,
                    app.checklist.steps.len()
                )
            }
        };
        text.push_str(&format!("\n\n{now}"));
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    // While the operator decides (a question, a dialog, the final screen), the screen gets the
    // room and the log keeps its last two lines.
    let deciding = app.question().is_some() || app.dialog.is_some() || app.outcome.is_some();
    let log_height = match (area.height >= 40, deciding) {
        (true, _) => 12,
        (false, true) => 3,
        (false, false) => 5,
    };
    let [header, body, log, keys] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(8),
        Constraint::Length(log_height),
        Constraint::Length(1),
    ])
    .areas(area);
    let [sidebar, screen] =
        Layout::horizontal([Constraint::Length(35), Constraint::Min(40)]).areas(body);
    render_header(f, header, app, &theme);
    render_sidebar(f, sidebar, app, &theme);
    screens::render(f, screen, app, &theme);
    render_log(f, log, app, &theme);
    render_keys(f, keys, app, &theme);
    if let Some(dialog) = &app.dialog {
        render_dialog(f, area, dialog, &theme);
    }
    if app.help {
        render_help(f, area, app, &theme);
    }
}

fn render_header(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let elapsed = clock(Duration::from_millis(app.now_ms));
    // What matters most first: a narrow terminal cuts the end of the line, not the databases.
    let line1 = match app.plan() {
        Some(p) => format!(
            "pgstep {} · {} · {}",
            kind_word(app),
            databases(app.checklist.kind, p),
            p.application
        ),
        None => format!("pgstep {}", kind_word(app)),
    };
    let undoing = matches!(app.checklist.phase, crate::checklist::Phase::Undoing { .. });
    let status = match (&app.outcome, app.checklist.cancel_was_requested(), undoing) {
        (Some(crate::checklist::Outcome::Success), _, _) => "finished",
        (Some(_), _, _) => "stopped",
        (None, true, _) => "cancelling",
        (None, false, true) => "undoing the run's changes",
        (None, false, false) if app.question().is_some() => "waiting for you",
        (None, false, false) => "running",
    };
    let mut line2 = vec![
        Span::raw(format!("elapsed {elapsed} · ")),
        Span::styled(status, theme.dim()),
    ];
    if let Some(left) = app.expected_left() {
        line2.push(Span::raw(format!(
            " · about {} left (rehearsal)",
            crate::format::duration(Duration::from_secs_f64(left))
        )));
    }
    if let Some(p) = app.plan() {
        line2.push(Span::styled(format!(" · {}", p.server), theme.dim()));
    }
    let width = usize::from(area.width);
    let lines = vec![
        Line::from(Span::styled(ellipsize(&line1, width), theme.title())),
        Line::from(line2),
    ];
    f.render_widget(Paragraph::new(lines), area);
}

/// "clinic → clinic_v3 · version 1 → 3", in each checklist's terms.
fn databases(kind: crate::checklist::PlanKind, p: &crate::checklist::PlanSummary) -> String {
    use crate::checklist::PlanKind;
    match kind {
        PlanKind::Upgrade => format!(
            "{} → {} · version {} → {}",
            p.source_db, p.target_db, p.from, p.to
        ),
        PlanKind::Fixup => format!("{} · version {} → {}", p.target_db, p.from, p.to),
        PlanKind::Restore => format!("into {} · version {}", p.target_db, p.to),
        PlanKind::Bootstrap => format!("new {} · version {}", p.target_db, p.to),
        PlanKind::Rehearsal => {
            format!("rehearsing {} · version {} → {}", p.source_db, p.from, p.to)
        }
    }
}

fn kind_word(app: &App) -> &'static str {
    match app.checklist.kind {
        crate::checklist::PlanKind::Upgrade => "upgrade",
        crate::checklist::PlanKind::Rehearsal => "rehearsal",
        crate::checklist::PlanKind::Fixup => "fixup",
        crate::checklist::PlanKind::Restore => "restore",
        crate::checklist::PlanKind::Bootstrap => "bootstrap",
    }
}

fn render_sidebar(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    // On the final screen no step is shown: none is highlighted.
    let final_screen = app.outcome.is_some() && app.viewing.is_none();
    let shown = (!final_screen).then(|| app.shown_step());
    let items: Vec<ListItem> = app
        .checklist
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (mark, style) = match s.status {
                // Ended in the background; recorded when the checklist gets to it.
                StepStatus::Running if s.background_took.is_some() => ("✓", theme.ok()),
                StepStatus::Pending => ("·", theme.dim()),
                StepStatus::Running => ("▶", theme.running()),
                StepStatus::Done => ("✓", theme.ok()),
                StepStatus::Warning => ("!", theme.warn()),
                StepStatus::Failed => ("✗", theme.bad()),
                StepStatus::Skipped => ("-", theme.dim()),
            };
            // The time it took, or (from the latest rehearsal) the time it is expected to take.
            let time = match (app.step_elapsed(i), app.expected(i)) {
                (Some(d), _) => crate::format::duration(d),
                (None, Some(e)) if s.status == StepStatus::Pending => {
                    format!("~{}", crate::format::duration(Duration::from_secs_f64(e)))
                }
                _ => String::new(),
            };
            let title = format!("{mark} {:<25}{time:>6}", ellipsize(s.id.title(), 25));
            let style = if Some(i) == shown {
                style.patch(theme.selected())
            } else {
                style
            };
            ListItem::new(Line::from(Span::styled(title, style)))
        })
        .collect();
    f.render_widget(
        List::new(items).block(Block::default().borders(Borders::RIGHT).title("Checklist")),
        area,
    );
}

fn render_log(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let inner = area.height.saturating_sub(1) as usize;
    let end = app.log.len().saturating_sub(app.log_scroll);
    let start = end.saturating_sub(inner);
    let lines: Vec<Line> = app
        .log
        .range(start..end)
        .map(|l| {
            let style = match l.level {
                Level::Info => theme.normal(),
                Level::Notice => theme.dim(),
                Level::Warning => theme.warn(),
                Level::Error => theme.bad(),
            };
            Line::from(Span::styled(
                ellipsize(&l.text, usize::from(area.width)),
                style,
            ))
        })
        .collect();
    let title = if app.log_scroll > 0 {
        format!("Log (scrolled back {} lines; End follows)", app.log_scroll)
    } else {
        "Log".to_owned()
    };
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::TOP).title(title)),
        area,
    );
}

fn render_keys(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    if let Some(n) = &app.notice {
        f.render_widget(Paragraph::new(Span::styled(n.clone(), theme.warn())), area);
        return;
    }
    let keys = match (app.help, &app.dialog, app.outcome.is_some(), app.question()) {
        (true, _, _, _) => "? or Esc closes the help",
        (_, Some(Dialog::Confirm { .. }), _, _) => "y/Enter yes · n/Esc no",
        (_, Some(Dialog::TypeName { .. }), _, _) => {
            "type the name, then Enter · Backspace corrects · Esc goes back"
        }
        (_, _, true, _) => "Enter/q quit · Tab/←→ steps · PgUp/PgDn log · ? help",
        (_, _, _, Some(Question::Confirmations { .. })) => {
            "Space tick · ↑↓ move · Enter proceed · Esc cancel · ? help"
        }
        (_, _, _, Some(Question::Sessions { .. })) => {
            "r refresh · n notify · t terminate · Esc cancel · ? help"
        }
        (_, _, _, Some(Question::FingerprintMismatch { .. })) => {
            "Enter proceed anyway (recorded) · Esc cancel · ? help"
        }
        (_, _, _, Some(Question::DiskUnmeasurable { .. })) => {
            "Enter confirm there is room · Esc cancel · ? help"
        }
        (_, _, _, Some(Question::CutOver)) => {
            "Enter cut over · Esc cancel · Tab/←→ review steps · ? help"
        }
        (_, _, false, None) => "Ctrl-C cancel · Tab/←→ steps · PgUp/PgDn log · ? help",
    };
    f.render_widget(Paragraph::new(Span::styled(keys, theme.dim())), area);
}

/// The dialog sits at the bottom, over the log, so that what it asks about (the sessions, the
/// schema's differences) stays in sight above it.
fn render_dialog(f: &mut Frame, area: Rect, dialog: &Dialog, theme: &Theme) {
    let (title, body) = match dialog {
        Dialog::Confirm { title, text, .. } => (title.clone(), text.clone()),
        Dialog::TypeName {
            title, text, typed, ..
        } => (title.clone(), format!("{text}\n> {typed}▏")),
    };
    let width = area.width.saturating_sub(4).min(76);
    let inner = usize::from(width.saturating_sub(2));
    let lines: Vec<Line> = body
        .lines()
        .flat_map(|l| wrap(l, inner))
        .map(Line::raw)
        .collect();
    let height = u16::try_from(lines.len() + 2)
        .unwrap_or(u16::MAX)
        .min(area.height.saturating_sub(1));
    let box_area = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.bottom().saturating_sub(height + 1),
        width,
        height,
    };
    f.render_widget(Clear, box_area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(format!(" {title} "), theme.warn()));
    f.render_widget(Paragraph::new(lines).block(block), box_area);
}

const KEYS: [(&str, &str); 9] = [
    ("Enter", "proceed, or confirm"),
    ("Space", "tick the item under the cursor"),
    ("Tab ← →", "show another step's screen"),
    ("↑ ↓", "move the cursor"),
    ("r n t", "sessions: refresh, notify, terminate"),
    ("PgUp PgDn", "scroll the log (End follows it again)"),
    ("Esc Ctrl-C", "cancel (Ctrl-C again interrupts at once)"),
    ("q", "quit, when nothing runs"),
    ("?", "close this help"),
];

fn render_help(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let width = area.width * 4 / 5;
    let inner = usize::from(width.saturating_sub(2));
    let step = app.checklist.steps.get(app.shown_step()).map(|s| s.id);
    let mut lines: Vec<Line> = wrap(step.map_or("", screens::help_text), inner)
        .into_iter()
        .map(Line::raw)
        .collect();
    lines.push(Line::raw(""));
    for (key, what) in KEYS {
        lines.push(Line::from(vec![
            Span::styled(format!("{key:<11}"), theme.title()),
            Span::raw(what),
        ]));
    }
    let height = u16::try_from(lines.len() + 2)
        .unwrap_or(u16::MAX)
        .min(area.height * 4 / 5);
    let box_area = area.centered(Constraint::Length(width), Constraint::Length(height));
    f.render_widget(Clear, box_area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(" Help ", theme.title()));
    f.render_widget(Paragraph::new(lines).block(block), box_area);
}

/// `1:02:03` or `02:03`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}
